"""Level-Based Foraging: registers `lbf-[<s>s-]<size>x<size>-<n>p-<f>f[-coop][-pen]` ids and
`LevelBasedForaging-v0`, mirroring the original `Foraging-...-v3` registrations."""

from __future__ import annotations

from itertools import product

from jaxmarl_envs.lbf import constants
from jaxmarl_envs.lbf.env import LevelBasedForaging
from jaxmarl_envs.lbf.generator import FixedGenerator, Generator, RandomGenerator
from jaxmarl_envs.lbf.types import Observation, State
from jaxmarl_envs.registry import register

__all__ = [
    "FixedGenerator",
    "Generator",
    "LevelBasedForaging",
    "Observation",
    "RandomGenerator",
    "State",
    "constants",
    "scenario_id",
]

# The original registers sizes 5..19, 2..9 players, 1..4 food, coop or not, full view or
# sight 2 ("-2s"); `-pen` adds the penalty variant (penalty 0.1) its id format provides for.
SIZES = range(5, 20)
PLAYERS = range(2, 10)
FOODS = range(1, 5)


def scenario_id(size: int, players: int, food: int, coop: bool, sight2: bool, pen: bool) -> str:
    """The id of a registered scenario, e.g. `lbf-2s-8x8-2p-2f-coop`."""
    return "lbf-{}{}x{}-{}p-{}f{}{}".format(
        "2s-" if sight2 else "",
        size,
        size,
        players,
        food,
        "-coop" if coop else "",
        "-pen" if pen else "",
    )


def _register_all() -> None:
    for size, players, food, coop, sight2, pen in product(
        SIZES, PLAYERS, FOODS, (True, False), (True, False), (False, True)
    ):
        register(
            scenario_id(size, players, food, coop, sight2, pen),
            LevelBasedForaging,
            family="lbf",
            description=(
                f"Level-Based Foraging {size}x{size}, {players} agents, {food} food"
                + (", cooperative food levels" if coop else "")
                + (", sight 2" if sight2 else "")
                + (", failed-load penalty 0.1" if pen else "")
            ),
            grid_size=size,
            num_agents=players,
            num_food=food,
            sight=2 if sight2 else size,
            min_player_level=1,
            max_player_level=2,
            min_food_level=1,
            max_food_level=None,
            force_coop=coop,
            penalty=constants.DEFAULT_PENALTY if pen else 0.0,
            normalize_reward=True,
            observe_agent_levels=True,
            time_limit=constants.DEFAULT_TIME_LIMIT,
            observation_type="vector",
        )
    register(
        "LevelBasedForaging-v0",
        LevelBasedForaging,
        family="lbf",
        description="Level-Based Foraging, constructor defaults (8x8, 2 agents, 2 food, coop).",
    )


_register_all()
