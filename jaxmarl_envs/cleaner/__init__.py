"""Cleaner: registers `clean-<R>x<C>x<N>a` (Mava's scenario names) and `Cleaner-v0`."""

from __future__ import annotations

from jaxmarl_envs.cleaner import constants
from jaxmarl_envs.cleaner.env import Cleaner
from jaxmarl_envs.cleaner.generator import (
    FixedGenerator,
    Generator,
    RandomGenerator,
    compute_action_mask,
    make_state,
    random_maze,
)
from jaxmarl_envs.cleaner.types import Observation, State
from jaxmarl_envs.registry import register

__all__ = [
    "Cleaner",
    "FixedGenerator",
    "Generator",
    "Observation",
    "RandomGenerator",
    "State",
    "compute_action_mask",
    "make_state",
    "random_maze",
]


def _register_all() -> None:
    # Smallest scenario first: the adapter tests take the first id of each family.
    for rows, cols, agents in constants.SCENARIOS:
        register(
            f"clean-{rows}x{cols}x{agents}a",
            Cleaner,
            family="cleaner",
            description=f"Cleaner, {rows}x{cols} maze, {agents} agents, time limit "
            f"{constants.SCENARIO_TIME_LIMIT}.",
            num_rows=rows,
            num_cols=cols,
            num_agents=agents,
            time_limit=constants.SCENARIO_TIME_LIMIT,
        )
    register(
        "Cleaner-v0",
        Cleaner,
        family="cleaner",
        description="Cleaner as Jumanji's Cleaner-v0: 10x10 maze, 3 agents, time limit 100.",
        num_rows=10,
        num_cols=10,
        num_agents=3,
    )


_register_all()
