"""Helpers shared by the adapters: resolving ids, keys from seeds, and host conversion."""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from jaxmarl_envs import registry, specs
from jaxmarl_envs.env import Environment


def resolve_env(env_or_id: Environment | str, overrides: dict[str, Any]) -> Environment:
    """The environment for a registered id (built with `overrides`) or an existing instance.

    Raises:
        ValueError: unknown id, overrides given with an instance, or a wrong type.
    """
    if isinstance(env_or_id, Environment):
        if overrides:
            raise ValueError(
                f"scenario overrides {sorted(overrides)} can only be used with an environment id, "
                "not with an already built environment."
            )
        return env_or_id
    if isinstance(env_or_id, str):
        return registry.make(env_or_id, **overrides)
    raise ValueError(
        f"expected an environment id (str) or a jaxmarl_envs.Environment, got "
        f"{type(env_or_id).__name__}."
    )


class JittedEnv:
    """`jax.jit`-ed `reset`, `step` and `global_state` of one environment."""

    def __init__(self, env: Environment):
        self.reset = jax.jit(env.reset)
        self.step = jax.jit(env.step)
        self.global_state = jax.jit(env.global_state)


@functools.lru_cache(maxsize=32)
def _cached_jitted(env_id: str, overrides: tuple) -> JittedEnv:
    return JittedEnv(registry.make(env_id, **dict(overrides)))


def jitted_env(env_or_id: Environment | str, env: Environment, overrides: dict) -> JittedEnv:
    """Jitted functions of `env`, shared by every adapter built from the same id and overrides
    (an id and its overrides determine the environment), so repeated constructions, as in the
    ecosystems' checkers, trace and compile once. Built fresh for environment instances."""
    if isinstance(env_or_id, str):
        key = tuple(sorted(overrides.items()))
        try:
            hash(key)
        except TypeError:
            return JittedEnv(env)
        return _cached_jitted(env_or_id, key)
    return JittedEnv(env)


def key_from_rng(rng: np.random.Generator) -> jax.Array:
    """A JAX PRNG key carrying 64 bits drawn from a numpy generator."""
    hi, lo = (int(x) for x in rng.integers(0, 2**32, size=2, dtype=np.uint64))
    return jax.random.fold_in(jax.random.PRNGKey(hi), lo)


def validate_action(env: Environment, action: Any) -> np.ndarray:
    """Checks a concrete joint action outside jit and returns it as a numpy array.

    `env.validate_action` (shape, dtype, bounds) plus a finiteness check for float actions,
    which bounds comparisons let through (NaN compares false both ways).

    Raises:
        ValueError: wrong shape or dtype, out of bounds, or non-finite.
    """
    arr = env.validate_action(action)
    check_finite(arr, f"{type(env).__name__}: invalid action")
    return arr


def check_finite(action: np.ndarray, label: str) -> None:
    """Raises ValueError naming the first non-finite entry of a float action."""
    if np.issubdtype(action.dtype, np.floating) and not np.all(np.isfinite(action)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(action))[0])
        raise ValueError(f"{label}: non-finite value {action[idx]} at index {idx}.")


def to_numpy(tree: Any) -> Any:
    """Fetches a pytree of arrays to the host in one transfer, as writable numpy copies."""
    host = jax.device_get(tree)
    return jax.tree_util.tree_map(lambda x: np.array(x, copy=True), host)


def structured_to_dict(value: Any, spec: specs.Spec) -> Any:
    """A (possibly nested) structured value as nested dicts keyed like `spec.fields`."""
    if isinstance(spec, specs.Structured):
        out = {}
        for name, field_spec in spec.fields.items():
            field = value[name] if isinstance(value, dict) else getattr(value, name)
            out[name] = structured_to_dict(field, field_spec)
        return out
    return value


def action_mask_of(observation: Any) -> Any:
    """The `(num_agents, num_actions)` action mask of an observation, or None."""
    if isinstance(observation, dict):
        return observation.get("action_mask")
    return getattr(observation, "action_mask", None)
