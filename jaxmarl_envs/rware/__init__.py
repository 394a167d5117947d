"""Robot Warehouse (RWARE): registers `rware-<size>-<n>ag[-easy|-hard]` and `RobotWarehouse-v0`."""

from __future__ import annotations

import itertools

from jaxmarl_envs.registry import register
from jaxmarl_envs.rware import constants
from jaxmarl_envs.rware.env import RobotWarehouse
from jaxmarl_envs.rware.generator import (
    FixedGenerator,
    Generator,
    RandomGenerator,
    layout_from_params,
    layout_from_str,
    make_state,
)
from jaxmarl_envs.rware.types import Layout, Observation, State

__all__ = [
    "FixedGenerator",
    "Generator",
    "Layout",
    "Observation",
    "RandomGenerator",
    "RobotWarehouse",
    "State",
    "layout_from_params",
    "layout_from_str",
    "make_state",
]


def _register_all() -> None:
    register(
        "RobotWarehouse-v0",
        RobotWarehouse,
        family="rware",
        description="Robot Warehouse, tiny layout with 4 agents (rware-tiny-4ag).",
    )
    for size, diff, agents in itertools.product(
        constants.SIZES, constants.DIFFICULTIES, range(1, constants.MAX_REGISTERED_AGENTS + 1)
    ):
        rows, cols = constants.SIZES[size]
        register(
            f"rware-{size}-{agents}ag{diff}",
            RobotWarehouse,
            family="rware",
            description=f"Robot Warehouse, {size} layout, {agents} agents{diff or ''}.",
            shelf_rows=rows,
            shelf_columns=cols,
            column_height=constants.COLUMN_HEIGHT,
            num_agents=agents,
            request_queue_size=int(agents * constants.DIFFICULTIES[diff]),
            sensor_range=1,
            time_limit=constants.TIME_LIMIT,
            reward_type="individual",
        )


_register_all()
