"""dm-env adapter: one jaxmarl_envs environment as a `dm_env.Environment`, jitted inside."""

from __future__ import annotations

from typing import Any

import dm_env
import jax
import numpy as np

from jaxmarl_envs.adapters._common import (
    ActionCheck,
    HostFunction,
    resolve_env,
    shared_build,
    structured_to_dict,
)
from jaxmarl_envs.env import Environment

__all__ = ["DmEnv"]


def _build_fns(env: Environment) -> tuple[HostFunction, HostFunction, ActionCheck]:
    """Jitted reset and step returning exactly what a dm-env TimeStep holds (one transfer)."""
    obs_spec = env.observation_spec

    def reset(key):
        key, sub = jax.random.split(key)
        state, ts = env.reset(sub)
        return (key, state), structured_to_dict(ts.observation, obs_spec)

    def step(state, action):
        state, ts = env.step(state, action)
        obs = structured_to_dict(ts.observation, obs_spec)
        return state, (ts.step_type, ts.reward, ts.discount, obs)

    return HostFunction(reset), HostFunction(step), ActionCheck(env)


class DmEnv(dm_env.Environment):
    """A `dm_env.Environment` over one (unbatched) jaxmarl_envs environment.

    Observations are dicts of numpy arrays keyed like the environment's structured
    observation spec (at least `agents_view` `(num_agents, ...)` and `action_mask`
    `(num_agents, num_actions)`); rewards and discounts are per agent, `(num_agents,)` float32.
    The episode is a pure function of `seed` and the actions: the key chain starts at
    `jax.random.PRNGKey(seed)` and every reset does `key, sub = jax.random.split(key)` and
    calls `env.reset(sub)`.

    `step` before the first `reset`, or after a LAST step, starts a new episode and returns
    its FIRST timestep (the action is ignored), as dm-env requires.

    Args:
        env_or_id: a registered id (see `jaxmarl_envs.list_envs()`) or an `Environment`.
        seed: seed of the key chain used for resets.
        **overrides: scenario keyword overrides (ids only), e.g. `time_limit=50`.

    Example:
        >>> env = DmEnv("rware-tiny-2ag", seed=0)
        >>> ts = env.reset()
        >>> ts = env.step(env.action_spec().generate_value())
    """

    def __init__(self, env_or_id: Environment | str, seed: int = 0, **overrides: Any):
        self._env = resolve_env(env_or_id, overrides)
        self._key = jax.random.PRNGKey(int(seed))
        self._reset_fn, self._step_fn, self._check_action = shared_build(
            _build_fns, env_or_id, self._env, overrides
        )
        # Specs converted once, through the shared conversion in jaxmarl_envs.specs.
        self._obs_spec = self._env.observation_spec
        self._dm_observation_spec = self._obs_spec.to_dm_env()
        self._dm_action_spec = self._env.action_spec.to_dm_env()
        self._dm_reward_spec = self._env.reward_spec.to_dm_env()
        self._dm_discount_spec = self._env.discount_spec.to_dm_env()
        self._state: Any = None
        self._needs_reset = True

    @property
    def environment(self) -> Environment:
        """The wrapped jaxmarl_envs environment."""
        return self._env

    @property
    def state(self) -> Any:
        """The current environment state (None before the first reset)."""
        return self._state

    def reset(self) -> dm_env.TimeStep:
        """Starts a new episode; returns its FIRST timestep (reward and discount None)."""
        (self._key, self._state), obs = self._reset_fn(self._key)
        self._needs_reset = False
        return dm_env.TimeStep(dm_env.StepType.FIRST, None, None, obs)

    def step(self, action: Any) -> dm_env.TimeStep:
        """Advances with the joint `action` `(num_agents,)`.

        Raises:
            ValueError: the action has the wrong shape, dtype or range (or is not finite).
        """
        if self._needs_reset:
            return self.reset()
        action = self._check_action(action)
        self._state, (step_type, reward, discount, obs) = self._step_fn(self._state, action)
        step_type = dm_env.StepType(int(step_type))
        if step_type is dm_env.StepType.FIRST:
            raise RuntimeError(f"{self._env!r} returned a FIRST timestep from step().")
        self._needs_reset = step_type is dm_env.StepType.LAST
        return dm_env.TimeStep(
            step_type,
            reward.astype(self._dm_reward_spec.dtype, copy=False),
            discount.astype(self._dm_discount_spec.dtype, copy=False),
            obs,
        )

    def observation_spec(self) -> dict:
        return self._dm_observation_spec

    def action_spec(self) -> Any:
        return self._dm_action_spec

    def reward_spec(self) -> Any:
        return self._dm_reward_spec

    def discount_spec(self) -> Any:
        return self._dm_discount_spec

    def render(self) -> np.ndarray:
        """An RGB `uint8` frame `(height, width, 3)` of the current state."""
        if self._state is None:
            raise RuntimeError("DmEnv.render: call reset() first.")
        return self._env.render(self._state)

    def close(self) -> None:
        self._env.close()
