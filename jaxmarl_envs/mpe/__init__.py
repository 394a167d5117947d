"""Multi-agent particle environments (MPE, as Farama's `mpe2` 1.1.1): registers
`mpe-<scenario>` (discrete actions) and `mpe-<scenario>-continuous` for every scenario
module in `jaxmarl_envs.mpe.scenarios`, plus `MPE-v0` (simple_spread, discrete)."""

from __future__ import annotations

import importlib
import pkgutil

from jaxmarl_envs.mpe import constants, scenarios
from jaxmarl_envs.mpe.env import MPE, make_scenario
from jaxmarl_envs.mpe.scenario import SCENARIOS, Scenario, register_scenario
from jaxmarl_envs.mpe.types import Observation, State
from jaxmarl_envs.mpe.world import World, contact_forces, physics_step
from jaxmarl_envs.registry import register

__all__ = [
    "MPE",
    "SCENARIOS",
    "Observation",
    "Scenario",
    "State",
    "World",
    "constants",
    "contact_forces",
    "make_scenario",
    "physics_step",
    "register_scenario",
]


def _register_all() -> None:
    # Every scenario module registers its class on import (no central list to edit).
    for info in sorted(pkgutil.iter_modules(scenarios.__path__), key=lambda m: m.name):
        importlib.import_module(f"{scenarios.__name__}.{info.name}")
    # The first id of a family is the one the adapter suites exercise: simple_spread (the
    # most used scenario) goes first; tests/test_mpe.py runs the adapters on the others.
    first = "simple_spread"
    for name in sorted(SCENARIOS, key=lambda s: (s != first, s)):
        cls = SCENARIOS[name]
        for continuous in (False, True):
            register(
                f"mpe-{name}" + ("-continuous" if continuous else ""),
                MPE,
                family="mpe",
                description=cls.description
                + (" Continuous actions." if continuous else " Discrete actions."),
                scenario=name,
                continuous_actions=continuous,
            )
    register(
        "MPE-v0",
        MPE,
        family="mpe",
        description="MPE, constructor defaults (simple_spread, N=3, discrete actions).",
    )


_register_all()
