"""SMAX (StarCraft-style unit micromanagement): registers `smax-<scenario>` for every scenario
in `scenarios.SCENARIOS` (smallest first); `register_scenario` adds new ones."""

from __future__ import annotations

from jaxmarl_envs.smax import constants
from jaxmarl_envs.smax.constants import UNIT_TYPES, UnitType
from jaxmarl_envs.smax.env import SMAX
from jaxmarl_envs.smax.generator import FixedGenerator, Generator, ScenarioGenerator
from jaxmarl_envs.smax.heuristic import EnemyPolicy, FunctionPolicy, HeuristicPolicy
from jaxmarl_envs.smax.scenarios import SCENARIOS, Scenario, get_scenario, register_scenario
from jaxmarl_envs.smax.types import HeuristicState, Observation, State

__all__ = [
    "SCENARIOS",
    "SMAX",
    "UNIT_TYPES",
    "EnemyPolicy",
    "FixedGenerator",
    "FunctionPolicy",
    "Generator",
    "HeuristicPolicy",
    "HeuristicState",
    "Observation",
    "Scenario",
    "ScenarioGenerator",
    "State",
    "UnitType",
    "constants",
    "get_scenario",
    "register_scenario",
]


def _register_all() -> None:
    for name, scenario in list(SCENARIOS.items()):
        register_scenario(name, scenario)


_register_all()
