"""Helpers shared by the adapters: resolving ids, keys from seeds, and host conversion."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
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


def _overrides_key(env_or_id: Environment | str, overrides: dict) -> tuple | None:
    """A hashable cache key for (id, overrides), or None (instances, unhashable overrides)."""
    if not isinstance(env_or_id, str):
        return None
    key = tuple(sorted(overrides.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


@functools.lru_cache(maxsize=64)
def _cached_build(build: Callable, env_id: str, overrides: tuple, extra: tuple) -> Any:
    return build(registry.make(env_id, **dict(overrides)), *extra)


def shared_build(
    build: Callable, env_or_id: Environment | str, env: Environment, overrides: dict, *extra
) -> Any:
    """`build(env, *extra)`, shared by every adapter built from the same id, overrides and
    `extra` (an id and its overrides determine the environment), so repeated constructions, as
    in the ecosystems' checkers, trace and compile once. Built fresh for environment instances.

    `build` must be a module-level function (it is part of the cache key)."""
    key = _overrides_key(env_or_id, overrides)
    if key is None:
        return build(env, *extra)
    return _cached_build(build, env_or_id, key, tuple(extra))


def _word_dtype(dtype: np.dtype) -> np.dtype:
    """The 4-byte dtype a leaf of `dtype` travels as in `HostFunction`'s buffer: itself for
    4- and 8-byte dtypes, else the 4-byte type of its kind that holds every value exactly."""
    if dtype.itemsize >= 4:
        return dtype
    if dtype == np.bool_ or np.issubdtype(dtype, np.unsignedinteger):
        return np.dtype(np.uint32)
    if np.issubdtype(dtype, np.signedinteger):
        return np.dtype(np.int32)
    return np.dtype(np.float32)  # float16, bfloat16


class HostFunction:
    """A jitted `fn(*args) -> (keep, host)` whose `host` pytree reaches the host in one transfer.

    `keep` stays on the device (environment states, keys). `host` is packed inside the jitted
    call into one `uint32` buffer (4- and 8-byte leaves bitcast to words; narrower ones, such
    as bool masks, widened to a 4-byte type of their kind first), fetched with a single
    device-to-host copy and unpacked into numpy arrays of that fresh buffer (views, or casts
    back for the widened leaves): writable arrays that no later call overwrites. One transfer
    instead of one per leaf is most of an adapter's per-step overhead on small environments.
    Words rather than bytes: a same-width bitcast is free, while splitting every element into
    bytes is elementwise work that XLA's CPU cost model counts (over 1,000 flops for one
    `(3, 18)` float32 observation), and a computation it counts under 1,000 flops runs
    inline in the calling thread instead of being handed to a worker thread.

    Calling returns `(keep, host_numpy)` with `host_numpy` structured like `host`.
    """

    def __init__(self, fn: Callable):
        self._fn = fn
        # Layouts recorded while tracing, keyed by the packed size (for one function the
        # size determines the shapes: only batch sizes vary between calls).
        self._layouts: dict[int, tuple] = {}
        self._jitted = jax.jit(self._packed)

    def _packed(self, *args):
        keep, host = self._fn(*args)
        leaves, treedef = jax.tree_util.tree_flatten(host)
        parts, entries, offset = [], [], 0
        for leaf in leaves:
            x = jnp.asarray(leaf)
            dtype = np.dtype(x.dtype)
            word = _word_dtype(dtype)
            if word != dtype:
                x = x.astype(word)
            w = jax.lax.bitcast_convert_type(x, jnp.uint32)  # (..., 2) for 8-byte dtypes
            words = int(np.prod(w.shape, dtype=np.int64))
            entries.append((offset, words, word, dtype, tuple(x.shape)))
            parts.append(w.reshape(-1))
            offset += words
        self._layouts[offset] = (treedef, tuple(entries))
        buf = jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.uint32)
        return keep, buf

    def cache_size(self) -> int:
        """How many programs the jitted function holds (traced and compiled)."""
        return self._jitted._cache_size()

    def __call__(self, *args):
        keep, buf = self._jitted(*args)
        host = np.array(buf)  # the one transfer, into a fresh writable buffer
        treedef, entries = self._layouts[host.size]
        leaves = []
        for offset, words, word, dtype, shape in entries:
            x = host[offset : offset + words].view(word).reshape(shape)
            leaves.append(x if word == dtype else x.astype(dtype))
        return keep, jax.tree_util.tree_unflatten(treedef, leaves)


class ActionCheck:
    """Validates concrete joint actions outside jit, fast on the common (valid) path.

    Any dtype that casts to the spec's within its kind is accepted (any integer dtype for
    discrete actions, so numpy's default int64 and Stable-Baselines3's predictions pass);
    values are range-checked before the cast (which could wrap). Invalid input falls back to
    the spec's own validation for a precise message.

    Raises:
        ValueError: wrong shape or dtype, out of bounds, or non-finite (naming the problem).
    """

    def __init__(self, env: Environment):
        self._spec = env.action_spec
        self._label = type(env).__name__
        self.shape = tuple(self._spec.shape)
        self.dtype = np.dtype(self._spec.dtype)
        bounded = isinstance(self._spec, specs.BoundedArray)
        self._low = self._spec.minimum if bounded else None
        self._high = self._spec.maximum if bounded else None
        self._dtype_ok: dict[np.dtype, bool] = {}

    def _accepts(self, dtype: np.dtype) -> bool:
        ok = self._dtype_ok.get(dtype)
        if ok is None:
            ok = bool(np.can_cast(dtype, self.dtype, casting="same_kind")) and not (
                np.issubdtype(self.dtype, np.integer) and not np.issubdtype(dtype, np.integer)
            )
            self._dtype_ok[dtype] = ok
        return ok

    def __call__(self, action: Any) -> np.ndarray:
        arr = np.asarray(action)
        if arr.shape == self.shape and self._accepts(arr.dtype):
            if self._low is not None:
                # NaN fails both comparisons and drops to the precise error below.
                if np.all(arr >= self._low) and np.all(arr <= self._high):
                    return arr.astype(self.dtype, copy=False)
            elif arr.dtype.kind != "f" or np.all(np.isfinite(arr)):
                return arr.astype(self.dtype, copy=False)
        try:
            self._spec.validate(arr)
        except ValueError as err:
            raise ValueError(f"{self._label}: invalid action: {err}") from err
        check_finite(arr, f"{self._label}: invalid action")
        raise ValueError(f"{self._label}: invalid action {arr!r}.")  # pragma: no cover


def key_from_rng(rng: np.random.Generator) -> jax.Array:
    """A JAX PRNG key carrying 64 bits drawn from a numpy generator."""
    hi, lo = (int(x) for x in rng.integers(0, 2**32, size=2, dtype=np.uint64))
    return jax.random.fold_in(jax.random.PRNGKey(hi), lo)


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
