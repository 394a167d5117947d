"""Registry of environment ids: each environment module registers its own scenarios."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
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
_FAMILIES_LOADED = False


def _load_families() -> None:
    """Imports the built-in environment families (each registers its ids) once."""
    global _FAMILIES_LOADED
    if not _FAMILIES_LOADED:
        _FAMILIES_LOADED = True
        import importlib

        import jaxmarl_envs

        for family in jaxmarl_envs.FAMILIES:
            importlib.import_module(f"jaxmarl_envs.{family}")


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
    _load_families()
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
    _check_overrides(entry, overrides)
    return entry.entry_point(**{**entry.kwargs, **overrides})


def parameters(id: str) -> list[str] | None:
    """The keyword arguments `make(id, ...)` accepts (the constructor's named parameters), or
    None when the constructor also takes arbitrary keywords (`**kwargs`) and checks them."""
    try:
        signature = inspect.signature(spec(id).entry_point)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return None
    named = []
    for name, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            named.append(name)
    return named


def _check_overrides(entry: EnvSpec, overrides: dict[str, Any]) -> None:
    """ValueError naming unknown keywords and listing the accepted ones (before construction,
    instead of the constructor's bare TypeError)."""
    accepted = parameters(entry.id)
    if accepted is None:
        return
    unknown = [name for name in overrides if name not in accepted]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} for {name!r}")
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    owner = getattr(entry.entry_point, "__name__", "the environment")
    raise ValueError(
        f"make('{entry.id}'): unknown keyword argument(s) {', '.join(map(repr, unknown))}.{hint} "
        f"{owner} accepts: {', '.join(accepted)}."
    )


def list_envs(family: str | None = None) -> list[str]:
    """All registered ids (optionally of one family), sorted."""
    _load_families()
    return sorted(k for k, v in _REGISTRY.items() if family is None or v.family == family)


def families() -> list[str]:
    """The families with registered ids (e.g. `lbf`, `rware`), sorted."""
    _load_families()
    return sorted({entry.family for entry in _REGISTRY.values()})
