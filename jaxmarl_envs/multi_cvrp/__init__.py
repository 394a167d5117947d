"""Multi-CVRP: registers `multicvrp-<C>c-<N>v` (published scenarios) and `MultiCVRP-v0`."""

from __future__ import annotations

from jaxmarl_envs.multi_cvrp import constants
from jaxmarl_envs.multi_cvrp.env import MultiCVRP
from jaxmarl_envs.multi_cvrp.generator import (
    FixedGenerator,
    Generator,
    Problem,
    UniformRandomGenerator,
    make_state,
    problem_from_settings,
)
from jaxmarl_envs.multi_cvrp.types import Observation, State
from jaxmarl_envs.registry import register

__all__ = [
    "FixedGenerator",
    "Generator",
    "MultiCVRP",
    "Observation",
    "Problem",
    "State",
    "UniformRandomGenerator",
    "make_state",
    "problem_from_settings",
]


def _register_all() -> None:
    # Smallest first: the adapter tests use a family's first registered id.
    for customers in sorted(constants.SETTINGS):
        for vehicles in sorted(constants.SETTINGS[customers]["demand_max"]):
            register(
                f"multicvrp-{customers}c-{vehicles}v",
                MultiCVRP,
                family="multi_cvrp",
                description=f"Multi-CVRP, {customers} customers, {vehicles} vehicles.",
                num_customers=customers,
                num_vehicles=vehicles,
            )
    register(
        "MultiCVRP-v0",
        MultiCVRP,
        family="multi_cvrp",
        description="Multi-CVRP as Jumanji's MultiCVRP-v0 (20 customers, 2 vehicles).",
    )


_register_all()
