"""Payoff tables of the registered matrix games, from the literature, and their defaults."""

from __future__ import annotations

import numpy as np

# Every table has shape `(num_agents, A_0, A_1)`: `table[i, a0, a1]` is agent `i`'s reward
# when agent 0 (the row player) plays `a0` and agent 1 (the column player) plays `a1`.

DEFAULT_HORIZON = 25
"""Steps per episode of the registered ids (`horizon=1` gives the one-shot game)."""


def common_payoff(matrix) -> np.ndarray:
    """A fully cooperative table: both agents receive `matrix[a0, a1]`, `(2, A_0, A_1)`."""
    matrix = np.asarray(matrix, np.float32)
    return np.stack([matrix, matrix])


def bimatrix(row, col) -> np.ndarray:
    """A general-sum table from the row player's and column player's matrices, `(2, A_0, A_1)`."""
    return np.stack([np.asarray(row, np.float32), np.asarray(col, np.float32)])


# Climbing game (Claus & Boutilier 1998, Table 3), fully cooperative. The optimum (a, a) = 11
# sits next to the -30 miscoordination penalties; (c, c) = 5 is the "safe" equilibrium.
CLIMBING = common_payoff(
    [
        [11.0, -30.0, 0.0],
        [-30.0, 7.0, 6.0],
        [0.0, 0.0, 5.0],
    ]
)
CLIMBING_ACTIONS = ("a", "b", "c")


def penalty(k: float) -> np.ndarray:
    """The penalty game (Claus & Boutilier 1998, Table 4) with penalty `k <= 0`, `(2, 3, 3)`.

    Two optimal joint actions (a, a) and (c, c) pay 10, miscoordinating between them pays
    `k`, and (b, b) = 2 is the safe choice.

    Raises:
        ValueError: `k` is positive or not finite.
    """
    k = float(k)
    if not np.isfinite(k) or k > 0:
        raise ValueError(f"penalty game: k must be a finite number <= 0, got {k!r}.")
    return common_payoff(
        [
            [10.0, 0.0, k],
            [0.0, 2.0, 0.0],
            [k, 0.0, 10.0],
        ]
    )


PENALTY_ACTIONS = ("a", "b", "c")
PENALTY_KS = (0, -25, -50, -100)
"""Values of `k` registered as `matrix-penalty-k-<k>` (the range Claus & Boutilier study)."""

# Prisoner's dilemma with the usual values T=5 > R=3 > P=1 > S=0 (Axelrod 1984).
# Actions: 0 = cooperate, 1 = defect.
PRISONERS_DILEMMA = bimatrix(
    [[3.0, 0.0], [5.0, 1.0]],
    [[3.0, 5.0], [0.0, 1.0]],
)
PRISONERS_DILEMMA_ACTIONS = ("C", "D")

# Stag hunt: stag/stag 4 > hare/stag 3 >= hare/hare 3 > stag/hare 1 (the payoff-dominant
# equilibrium is (stag, stag), the risk-dominant one (hare, hare)). Actions: 0 = stag, 1 = hare.
STAG_HUNT = bimatrix(
    [[4.0, 1.0], [3.0, 3.0]],
    [[4.0, 3.0], [1.0, 3.0]],
)
STAG_HUNT_ACTIONS = ("stag", "hare")

# Matching pennies, zero-sum: the row player wins 1 when the coins match, loses 1 otherwise.
MATCHING_PENNIES = bimatrix(
    [[1.0, -1.0], [-1.0, 1.0]],
    [[-1.0, 1.0], [1.0, -1.0]],
)
MATCHING_PENNIES_ACTIONS = ("heads", "tails")

# Chicken (hawk-dove flavour): swerving against a straight driver loses 1, both straight crash
# for -10 each. Actions: 0 = swerve, 1 = straight.
CHICKEN = bimatrix(
    [[0.0, -1.0], [1.0, -10.0]],
    [[0.0, 1.0], [-1.0, -10.0]],
)
CHICKEN_ACTIONS = ("swerve", "straight")

# Battle of the sexes: both want to meet, the row player prefers opera (3 vs 2), the column
# player football. Actions: 0 = opera, 1 = football.
BATTLE_OF_THE_SEXES = bimatrix(
    [[3.0, 0.0], [0.0, 2.0]],
    [[2.0, 0.0], [0.0, 3.0]],
)
BATTLE_OF_THE_SEXES_ACTIONS = ("opera", "football")

# Rock-paper-scissors, zero-sum: win 1, lose -1, draw 0.
_RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], np.float32)
ROCK_PAPER_SCISSORS = bimatrix(_RPS, -_RPS)
ROCK_PAPER_SCISSORS_ACTIONS = ("rock", "paper", "scissors")

# name -> (payoff table, action names, description) of the registered games without parameters.
GAMES: dict[str, tuple[np.ndarray, tuple[str, ...], str]] = {
    "climbing": (CLIMBING, CLIMBING_ACTIONS, "climbing game (Claus & Boutilier 1998)"),
    "prisoners-dilemma": (
        PRISONERS_DILEMMA,
        PRISONERS_DILEMMA_ACTIONS,
        "prisoner's dilemma (T=5, R=3, P=1, S=0)",
    ),
    "stag-hunt": (STAG_HUNT, STAG_HUNT_ACTIONS, "stag hunt"),
    "matching-pennies": (MATCHING_PENNIES, MATCHING_PENNIES_ACTIONS, "matching pennies"),
    "chicken": (CHICKEN, CHICKEN_ACTIONS, "chicken"),
    "battle-of-the-sexes": (
        BATTLE_OF_THE_SEXES,
        BATTLE_OF_THE_SEXES_ACTIONS,
        "battle of the sexes",
    ),
    "rock-paper-scissors": (
        ROCK_PAPER_SCISSORS,
        ROCK_PAPER_SCISSORS_ACTIONS,
        "rock-paper-scissors",
    ),
}
