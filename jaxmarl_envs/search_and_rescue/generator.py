"""Initial-state generators of Search-and-Rescue (swappable: `SearchAndRescue(generator=...)`)."""

from __future__ import annotations

import abc

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.search_and_rescue.types import State


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class Generator(abc.ABC):
    """Samples first states with `num_searchers` searchers and `num_targets` targets.

    Args:
        num_searchers: searchers `N` (the agents).
        num_targets: targets `T`.
        env_size: side of the wrapped square arena.
    """

    def __init__(self, num_searchers: int, num_targets: int, env_size: float = 1.0):
        self.num_searchers = _positive_int("num_searchers", num_searchers)
        self.num_targets = _positive_int("num_targets", num_targets)
        if not np.isfinite(env_size) or env_size <= 0:
            raise ValueError(f"env_size must be a positive finite number, got {env_size!r}.")
        self.env_size = float(env_size)

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey, min_speed: float, max_speed: float) -> State:
        """A first state drawn from `key` (speeds in `[min_speed, max_speed]`)."""


class RandomGenerator(Generator):
    """Jumanji's `RandomGenerator`: the same draws from the same key.

    Searchers and targets uniform on the arena, headings uniform in `[0, 2 pi)`, speeds
    uniform in `[min_speed, max_speed)`, targets at rest and not found.
    """

    def __call__(self, key: chex.PRNGKey, min_speed: float, max_speed: float) -> State:
        n, t, size = self.num_searchers, self.num_targets, self.env_size
        key, searcher_key, target_key = jax.random.split(key, 3)
        k_pos, k_head, k_speed = jax.random.split(searcher_key, 3)
        return State(
            searcher_pos=jax.random.uniform(k_pos, (n, 2), minval=0.0, maxval=size),
            searcher_heading=jax.random.uniform(k_head, (n,), minval=0.0, maxval=2.0 * jnp.pi),
            searcher_speed=jax.random.uniform(k_speed, (n,), minval=min_speed, maxval=max_speed),
            target_pos=jax.random.uniform(target_key, (t, 2), minval=0.0, maxval=size),
            target_vel=jnp.zeros((t, 2), jnp.float32),
            target_found=jnp.zeros((t,), bool),
            key=key,
            step_count=jnp.zeros((), jnp.int32),
        )


class FixedGenerator(Generator):
    """Always the same first state (searchers' and targets' positions, headings, speeds).

    Args:
        searcher_pos: `(N, 2)`; searcher_heading, searcher_speed: `(N,)`;
        target_pos: `(T, 2)`; env_size: arena side.

    Raises:
        ValueError: wrong shapes, non-finite values, positions off the arena.
    """

    def __init__(self, searcher_pos, searcher_heading, searcher_speed, target_pos, env_size=1.0):
        arrays = dict(
            searcher_pos=np.asarray(searcher_pos, np.float32),
            searcher_heading=np.asarray(searcher_heading, np.float32),
            searcher_speed=np.asarray(searcher_speed, np.float32),
            target_pos=np.asarray(target_pos, np.float32),
        )
        n = arrays["searcher_pos"].shape[0] if arrays["searcher_pos"].ndim == 2 else 0
        t = arrays["target_pos"].shape[0] if arrays["target_pos"].ndim == 2 else 0
        super().__init__(n, t, env_size)
        want = dict(
            searcher_pos=(n, 2), searcher_heading=(n,), searcher_speed=(n,), target_pos=(t, 2)
        )
        for name, arr in arrays.items():
            if arr.shape != want[name]:
                raise ValueError(f"{name} has shape {arr.shape}, expected {want[name]}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} has non-finite values.")
        for name in ("searcher_pos", "target_pos"):
            if np.any(arrays[name] < 0) or np.any(arrays[name] >= self.env_size):
                raise ValueError(f"{name} must lie in [0, env_size={self.env_size}).")
        self._arrays = arrays

    def __call__(self, key: chex.PRNGKey, min_speed: float, max_speed: float) -> State:
        a = self._arrays
        return State(
            searcher_pos=jnp.asarray(a["searcher_pos"]),
            searcher_heading=jnp.asarray(a["searcher_heading"]) % (2 * jnp.pi),
            searcher_speed=jnp.clip(jnp.asarray(a["searcher_speed"]), min_speed, max_speed),
            target_pos=jnp.asarray(a["target_pos"]),
            target_vel=jnp.zeros((self.num_targets, 2), jnp.float32),
            target_found=jnp.zeros((self.num_targets,), bool),
            key=jax.random.split(key, 3)[0],
            step_count=jnp.zeros((), jnp.int32),
        )
