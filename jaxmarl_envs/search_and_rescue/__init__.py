"""Search-and-Rescue: registers `sar-<N>s-<T>t` and `SearchAndRescue-v0` (continuous actions)."""

from __future__ import annotations

from jaxmarl_envs.registry import register
from jaxmarl_envs.search_and_rescue import constants
from jaxmarl_envs.search_and_rescue.env import SearchAndRescue
from jaxmarl_envs.search_and_rescue.generator import FixedGenerator, Generator, RandomGenerator
from jaxmarl_envs.search_and_rescue.types import Observation, State

__all__ = [
    "FixedGenerator",
    "Generator",
    "Observation",
    "RandomGenerator",
    "SearchAndRescue",
    "State",
]


def _register_all() -> None:
    # Smallest first: the adapter tests use a family's first registered id.
    for suffix, (searchers, targets) in constants.SCENARIOS.items():
        register(
            f"sar-{suffix}",
            SearchAndRescue,
            family="search_and_rescue",
            description=f"Search-and-Rescue, {searchers} searchers, {targets} targets, 400 steps.",
            num_searchers=searchers,
            num_targets=targets,
        )
    register(
        "SearchAndRescue-v0",
        SearchAndRescue,
        family="search_and_rescue",
        description="Search-and-Rescue as Jumanji's SearchAndRescue-v0 (2 searchers, 40 targets).",
    )


_register_all()
