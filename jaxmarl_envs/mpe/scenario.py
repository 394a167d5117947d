"""The scenario interface of the MPE family, the scenario registry and shared helpers."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

#: Scenario classes by name (e.g. "simple_spread"), filled by `register_scenario`.
SCENARIOS: dict[str, type[Scenario]] = {}


def register_scenario(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: adds a `Scenario` subclass to `SCENARIOS` under `cls.name`.

    `jaxmarl_envs.mpe` imports every module of `jaxmarl_envs.mpe.scenarios` and registers
    the ids `mpe-<name>` and `mpe-<name>-continuous` for each registered class.
    """
    if not cls.name or cls.name in SCENARIOS:
        raise ValueError(f"scenario name {cls.name!r} is empty or already registered.")
    SCENARIOS[cls.name] = cls
    return cls


class Scenario(abc.ABC):
    """One MPE scenario: its static world, initial states, observations and rewards.

    Subclasses set the class attributes, build `self.world` (a `World`) and
    `self.obs_sizes` in `__init__` (validating their keyword arguments with `ValueError`),
    and implement `reset`, `observation` and `reward` as pure jittable functions of the
    state (static shapes; Python loops only over static indices, never over traced values).

    Attributes:
        name: scenario name (mpe2's module name without the version, e.g. "simple_spread").
        description: one line for the registry.
        mpe2_module: the mpe2 module it mirrors (e.g. "simple_spread_v3").
        world: static entity properties (set in `__init__`).
        obs_sizes: true observation size of each agent (set in `__init__`).
        local_ratio: None, or the weight of the local reward: the env then returns
            `global_reward * (1 - local_ratio) + reward * local_ratio` (mpe2's mixing).
    """

    name: str = ""
    description: str = ""
    mpe2_module: str = ""
    world: World
    obs_sizes: tuple[int, ...]
    local_ratio: float | None = None

    @abc.abstractmethod
    def reset(self, key: chex.PRNGKey) -> State:
        """Samples an initial state (positions, zero velocities and comm, colours, extra).

        `state.key` and `state.step_count` may be anything; the environment sets them.
        """

    @abc.abstractmethod
    def observation(self, state: State) -> chex.Array:
        """Per-agent observations, `(num_agents, max(obs_sizes))` float32, each row
        zero-padded after its agent's true size (use `pad_rows`)."""

    @abc.abstractmethod
    def reward(self, state: State) -> chex.Array:
        """Per-agent (local) rewards after a world step, `(num_agents,)` float32."""

    def global_reward(self, state: State) -> chex.Array:
        """The shared reward mixed in when `local_ratio` is not None, `()` float32."""
        return jnp.zeros((), jnp.float32)

    def is_terminal(self, state: State) -> chex.Array:
        """`()` bool: the episode ends early (mpe2's `is_terminal`); False by default."""
        return jnp.zeros((), bool)

    # -- helpers shared by scenarios -----------------------------------------------------

    @property
    def num_agents(self) -> int:
        return self.world.num_agents

    @property
    def max_obs_size(self) -> int:
        return max(self.obs_sizes)

    def new_state(
        self,
        p_pos: chex.Array,
        colour: chex.Array,
        extra: Any = None,
        key: chex.PRNGKey | None = None,
    ) -> State:
        """A state at rest: given positions `(E, 2)` and colours `(E, 3)`, zero velocity
        and zero comm."""
        w = self.world
        return State(
            key=jax.random.PRNGKey(0) if key is None else key,
            step_count=jnp.zeros((), jnp.int32),
            p_pos=jnp.asarray(p_pos, jnp.float32),
            p_vel=jnp.zeros((w.num_entities, 2), jnp.float32),
            c=jnp.zeros((w.num_agents, w.dim_c), jnp.float32),
            colour=jnp.asarray(colour, jnp.float32),
            extra={} if extra is None else extra,
        )

    def uniform_positions(
        self, key: chex.PRNGKey, low: float = -1.0, high: float = 1.0
    ) -> chex.Array:
        """`(E, 2)` positions uniform in `[low, high)` (mpe2's `np_random.uniform(-1, 1)`)."""
        return rng.uniform(key, (self.world.num_entities, 2), low, high)

    def pad_rows(self, rows: Sequence[chex.Array]) -> chex.Array:
        """Stacks one 1-D observation per agent into `(N, max_obs_size)`, zero-padded."""
        width = self.max_obs_size
        padded = [jnp.pad(r.astype(jnp.float32), (0, width - r.shape[0])) for r in rows]
        return jnp.stack(padded)

    def others(self) -> np.ndarray:
        """`(N, N - 1)` int32: for agent `i`, the other agents in index order."""
        n = self.num_agents
        return np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32).reshape(
            n, n - 1
        )


def check_local_ratio(value: Any) -> float:
    """`value` as a float in `[0, 1]`, else `ValueError` (mpe2 asserts the same range)."""
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"local_ratio must be a number in [0, 1], got {value!r}.") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"local_ratio is a proportion and must be in [0, 1], got {value!r}.")
    return ratio


def check_int(value: Any, name: str, minimum: int) -> int:
    """`value` as an int `>= minimum`, else `ValueError`."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)
