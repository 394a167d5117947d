"""Registry of environment ids: each environment module registers its own scenarios."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from jaxmarl_envs.env import Environment


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A registered id: the factory and the keyword arguments that define the scenario."""

    id: str
    entry_point: Callable[..., Environment]
    kwargs: dict[str, Any]
    family: str
    description: str = ""


_REGISTRY: dict[str, EnvSpec] = {}


def register(
    id: str,
    entry_point: Callable[..., Environment],
    family: str,
    description: str = "",
    **kwargs: Any,
) -> None:
    """Registers a scenario id. Re-registering the same id raises `ValueError`."""
    if id in _REGISTRY:
        raise ValueError(f"environment id '{id}' is already registered.")
    _REGISTRY[id] = EnvSpec(id, entry_point, dict(kwargs), family, description)


def spec(id: str) -> EnvSpec:
    """The registered `EnvSpec` for `id`; unknown ids raise `ValueError` with close matches."""
    try:
        return _REGISTRY[id]
    except KeyError:
        close = difflib.get_close_matches(id, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown environment id '{id}'.{hint} See jaxmarl_envs.list_envs() for all ids."
        ) from None


def make(id: str, **overrides: Any) -> Environment:
    """Builds the environment registered as `id`, with keyword overrides of its scenario.

    Example:
        >>> env = jaxmarl_envs.make("rware-tiny-4ag", time_limit=100)
    """
    entry = spec(id)
    return entry.entry_point(**{**entry.kwargs, **overrides})


def list_envs(family: str | None = None) -> list[str]:
    """All registered ids (optionally of one family), sorted."""
    return sorted(k for k, v in _REGISTRY.items() if family is None or v.family == family)
