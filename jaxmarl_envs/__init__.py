"""jaxmarl_envs: pure-JAX multi-agent environments with a registry, specs and wrappers."""

from jaxmarl_envs import _xla_flags

_xla_flags.apply()  # before JAX creates its CPU backend; see _xla_flags.py

# ruff: noqa: E402

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names and the module defining each: imported on first use, so `import jaxmarl_envs`
# (and `jaxmarl --help`, whose entry point lives under this package) does not import JAX.
_EXPORTS = {
    "specs": "jaxmarl_envs.specs",
    "Environment": "jaxmarl_envs.env",
    "EnvSpec": "jaxmarl_envs.registry",
    "list_envs": "jaxmarl_envs.registry",
    "make": "jaxmarl_envs.registry",
    "register": "jaxmarl_envs.registry",
    "spec": "jaxmarl_envs.registry",
    "Observation": "jaxmarl_envs.types",
    "StepType": "jaxmarl_envs.types",
    "TimeStep": "jaxmarl_envs.types",
    "make_timestep": "jaxmarl_envs.types",
    "restart": "jaxmarl_envs.types",
    "AgentID": "jaxmarl_envs.wrappers",
    "AutoReset": "jaxmarl_envs.wrappers",
    "CheckedActions": "jaxmarl_envs.wrappers",
    "EpisodeMetrics": "jaxmarl_envs.wrappers",
    "GlobalState": "jaxmarl_envs.wrappers",
    "VmapWrapper": "jaxmarl_envs.wrappers",
    "Wrapper": "jaxmarl_envs.wrappers",
}

#: Environment families: each registers its ids when imported (see `registry._load_families`).
FAMILIES = (
    "lbf",
    "matrix",
    "rware",
    "mpe",
    "smax",
    "multi_cvrp",
    "search_and_rescue",
    "cleaner",
    "connector",
)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        value = module if _EXPORTS[name].endswith("." + name) else getattr(module, name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # names for type checkers and IDEs
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

# A literal list (linters read it); a test checks it against _EXPORTS.
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
