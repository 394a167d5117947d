"""Repeated matrix games: registers `matrix-<game>` ids (climbing, `penalty-k-<k>`, prisoner's
dilemma, stag hunt, ...) and the class id `MatrixGame-v0`."""

from __future__ import annotations

from jaxmarl_envs.matrix import constants
from jaxmarl_envs.matrix.env import MatrixGame
from jaxmarl_envs.matrix.types import Observation, State
from jaxmarl_envs.registry import register

__all__ = ["MatrixGame", "Observation", "State", "constants", "penalty_id"]


def penalty_id(k: int) -> str:
    """The id of a registered penalty game, e.g. `matrix-penalty-k--25` for `k = -25`."""
    return f"matrix-penalty-k-{k}"


def _register_all() -> None:
    # The climbing game first: it is the family's representative in the adapter tests.
    # Every id plays `constants.DEFAULT_HORIZON` stages unless `horizon` (or its alias
    # `time_limit`) is overridden in `make`.
    _register_game("climbing", *constants.GAMES["climbing"])
    for k in constants.PENALTY_KS:
        register(
            penalty_id(k),
            MatrixGame,
            family="matrix",
            description=f"penalty game with k = {k} (Claus & Boutilier 1998), repeated",
            payoffs=constants.penalty(k),
            action_names=constants.PENALTY_ACTIONS,
            game=f"penalty game (k = {k})",
        )
    for game, (table, names, description) in constants.GAMES.items():
        if game != "climbing":
            _register_game(game, table, names, description)
    register(
        "MatrixGame-v0",
        MatrixGame,
        family="matrix",
        description="Repeated matrix game, constructor defaults (the climbing game).",
        action_names=constants.CLIMBING_ACTIONS,
        game="climbing game",
    )


def _register_game(game: str, table, names, description: str) -> None:
    register(
        f"matrix-{game}",
        MatrixGame,
        family="matrix",
        description=f"{description}, repeated",
        payoffs=table,
        action_names=names,
        game=description.split(" (")[0],
    )


_register_all()
