"""Core typed containers: step types, TimeStep and the default Observation."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
from flax import struct


class StepType:
    """dm-env step types as int8 constants (usable inside jit)."""

    FIRST = 0
    MID = 1
    LAST = 2


@struct.dataclass
class Observation:
    """Default per-agent observation; every environment observation has these two fields.

    Attributes:
        agents_view: per-agent view, `(num_agents, ...)`.
        action_mask: legal actions per agent, `(num_agents, num_actions)` bool.
    """

    agents_view: chex.Array  # (num_agents, ...)
    action_mask: chex.Array  # (num_agents, num_actions)


@struct.dataclass
class TimeStep:
    """What an environment returns from `reset` and `step`, agent-major.

    Attributes:
        step_type: `()` int8, one of `StepType.FIRST`, `MID`, `LAST`.
        reward: `(num_agents,)` float32 reward of the step that produced this timestep.
        discount: `(num_agents,)` float32; 0 where an agent terminated, 1 otherwise
            (truncation by the time limit keeps discount 1 so learners bootstrap).
        observation: environment observation pytree (at least `agents_view`, `action_mask`).
        terminated: `(num_agents,)` bool, the episode ended by the task's own rules.
        truncated: `(num_agents,)` bool, the episode was cut (time limit) without terminating.
        extras: dict of extra arrays (metrics, global state, final observation...).
    """

    step_type: chex.Array
    reward: chex.Array
    discount: chex.Array
    observation: Any
    terminated: chex.Array
    truncated: chex.Array
    extras: dict = struct.field(default_factory=dict)

    def first(self) -> chex.Array:
        return self.step_type == StepType.FIRST

    def mid(self) -> chex.Array:
        return self.step_type == StepType.MID

    def last(self) -> chex.Array:
        return self.step_type == StepType.LAST

    @property
    def done(self) -> chex.Array:
        """`(num_agents,)` bool: terminated or truncated."""
        return jnp.logical_or(self.terminated, self.truncated)


def restart(observation: Any, num_agents: int, extras: dict | None = None) -> TimeStep:
    """The FIRST timestep of an episode: zero reward, discount one, nothing ended."""
    return TimeStep(
        step_type=jnp.asarray(StepType.FIRST, jnp.int8),
        reward=jnp.zeros((num_agents,), jnp.float32),
        discount=jnp.ones((num_agents,), jnp.float32),
        observation=observation,
        terminated=jnp.zeros((num_agents,), bool),
        truncated=jnp.zeros((num_agents,), bool),
        extras={} if extras is None else extras,
    )


def make_timestep(
    observation: Any,
    reward: chex.Array,
    terminated: chex.Array,
    truncated: chex.Array,
    extras: dict | None = None,
) -> TimeStep:
    """A MID or LAST timestep from explicit per-agent termination and truncation.

    The step is LAST when every agent is terminated or truncated. Truncation only counts
    where an agent did not also terminate (termination wins when both happen at once), and
    the discount is zero exactly where an agent terminated.

    Args:
        observation: observation pytree.
        reward: `(num_agents,)` rewards.
        terminated: `()` or `(num_agents,)` bool.
        truncated: `()` or `(num_agents,)` bool.
        extras: optional dict of extra arrays.
    """
    reward = jnp.asarray(reward, jnp.float32)
    terminated = jnp.broadcast_to(jnp.asarray(terminated, bool), reward.shape)
    truncated = jnp.broadcast_to(jnp.asarray(truncated, bool), reward.shape) & ~terminated
    last = jnp.all(terminated | truncated)
    return TimeStep(
        step_type=jnp.where(last, StepType.LAST, StepType.MID).astype(jnp.int8),
        reward=reward,
        discount=jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
        observation=observation,
        terminated=terminated,
        truncated=truncated,
        extras={} if extras is None else extras,
    )
