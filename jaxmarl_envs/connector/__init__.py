"""Connector: registers `con-<G>x<G>x<N>a` (Mava's scenario names) and `Connector-v3`."""

from __future__ import annotations

from jaxmarl_envs.connector import constants
from jaxmarl_envs.connector.env import Connector
from jaxmarl_envs.connector.generator import (
    FixedGenerator,
    Generator,
    RandomWalkGenerator,
    board_from_agents,
    compute_action_mask,
    make_state,
)
from jaxmarl_envs.connector.types import Observation, State
from jaxmarl_envs.registry import register

__all__ = [
    "Connector",
    "FixedGenerator",
    "Generator",
    "Observation",
    "RandomWalkGenerator",
    "State",
    "board_from_agents",
    "compute_action_mask",
    "make_state",
]


def _register_all() -> None:
    # Smallest scenario first: the adapter tests take the first id of each family.
    for size, agents in constants.SCENARIOS:
        register(
            f"con-{size}x{size}x{agents}a",
            Connector,
            family="connector",
            description=f"Connector, {size}x{size} grid, {agents} agents, time limit "
            f"{constants.SCENARIO_TIME_LIMIT}.",
            grid_size=size,
            num_agents=agents,
            time_limit=constants.SCENARIO_TIME_LIMIT,
        )
    register(
        "Connector-v3",
        Connector,
        family="connector",
        description="Connector as Jumanji's Connector-v3: 10x10 grid, 10 agents, time limit 50.",
        grid_size=10,
        num_agents=10,
        time_limit=constants.DEFAULT_TIME_LIMIT,
    )


_register_all()
