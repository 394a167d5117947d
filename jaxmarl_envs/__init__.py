"""jaxmarl_envs: pure-JAX multi-agent environments with a registry, specs and wrappers."""

from jaxmarl_envs import _xla_flags

_xla_flags.apply()  # before JAX creates its CPU backend; see _xla_flags.py

# ruff: noqa: E402

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.registry import EnvSpec, list_envs, make, register, spec
from jaxmarl_envs.types import Observation, StepType, TimeStep, make_timestep, restart
from jaxmarl_envs.wrappers import (
    AgentID,
    AutoReset,
    CheckedActions,
    EpisodeMetrics,
    GlobalState,
    VmapWrapper,
    Wrapper,
)

# Environment families register their ids on import (cheap: no pygame at import time).
from jaxmarl_envs import lbf as _lbf  # noqa: E402,F401  isort: skip
from jaxmarl_envs import matrix as _matrix  # noqa: E402,F401  isort: skip
from jaxmarl_envs import rware as _rware  # noqa: E402,F401  isort: skip
from jaxmarl_envs import mpe as _mpe  # noqa: E402,F401  isort: skip

__version__ = "0.1.0"

__all__ = [
    "AgentID",
    "AutoReset",
    "CheckedActions",
    "EnvSpec",
    "Environment",
    "EpisodeMetrics",
    "GlobalState",
    "Observation",
    "StepType",
    "TimeStep",
    "VmapWrapper",
    "Wrapper",
    "list_envs",
    "make",
    "make_timestep",
    "register",
    "restart",
    "spec",
    "specs",
]
