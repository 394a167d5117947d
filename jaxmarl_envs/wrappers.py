"""Pure-JAX wrappers: auto-reset, batching, episode metrics, agent ids, global state and
checked actions. Each exposes the inner environment's interface through explicit
properties (no `__getattr__` forwarding).

A typical training stack, innermost first::

    env = EpisodeMetrics(AutoReset(GlobalState(AgentID(make("rware-tiny-4ag")))))
    env = VmapWrapper(env)
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import checkify

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.types import TimeStep


class Wrapper(Environment):
    """Base wrapper: delegates everything to the wrapped environment explicitly."""

    def __init__(self, env: Environment):
        self._env = env
        self.name = env.name

    @property
    def unwrapped(self) -> Environment:
        env = self._env
        while isinstance(env, Wrapper):
            env = env._env
        return env

    @property
    def env(self) -> Environment:
        return self._env

    @property
    def num_agents(self) -> int:
        return self._env.num_agents

    @property
    def agent_ids(self) -> tuple[str, ...]:
        return self._env.agent_ids

    @property
    def time_limit(self) -> int:
        return self._env.time_limit

    @property
    def observation_spec(self) -> specs.Structured:
        return self._env.observation_spec

    @property
    def action_spec(self) -> specs.Spec:
        return self._env.action_spec

    @property
    def reward_spec(self) -> specs.Array:
        return self._env.reward_spec

    @property
    def discount_spec(self) -> specs.BoundedArray:
        return self._env.discount_spec

    def reset(self, key: chex.PRNGKey):
        return self._env.reset(key)

    def step(self, state, action):
        return self._env.step(state, action)

    def global_state(self, state, observation):
        return self._env.global_state(self.inner_state(state), observation)

    def global_state_spec(self) -> specs.Array:
        return self._env.global_state_spec()

    @property
    def integer_valued(self) -> frozenset[str]:
        return self._env.integer_valued

    def validate_action(self, action: Any) -> np.ndarray:
        return self._env.validate_action(action)

    def inner_state(self, state):
        """The wrapped environment's state inside this wrapper's state."""
        return state

    def render(self, state) -> np.ndarray:
        return self._env.render(self.inner_state(state))

    def close(self) -> None:
        self._env.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"


def _select_rows(pred: chex.Array, on_true: Any, on_false: Any) -> Any:
    """Per-row select: `pred` `(B,)` picks rows of same-shaped `(B, ...)` leaves."""

    def pick(a, b):
        return jnp.where(pred.reshape(pred.shape + (1,) * (jnp.ndim(b) - 1)), a, b)

    return jax.tree_util.tree_map(pick, on_true, on_false)


class AutoReset(Wrapper):
    """Starts a new episode as soon as one ends, inside the jitted step.

    On the step that ends an episode the returned timestep keeps the final step's
    `step_type` (LAST), reward, discount, terminated and truncated, but its observation
    (and extras) are those of the new episode's first step, ready for the next action.
    The true final observation, needed to bootstrap on truncation, is in
    `extras["final_observation"]`, and the final step's own extras in
    `extras["final_extras"]`. The inner state must carry its PRNG key as `state.key`; the
    new episode is `env.reset(jax.random.fold_in(state.key, 0x5EED))`.

    Cost: the reset is computed only when needed. Unbatched, a `lax.cond` on the episode
    end skips it. Under `jax.vmap` (where a `cond` would compute both branches for every
    environment) a custom batching rule resets nothing while no environment of the batch
    ended, only the ended ones (gathered into a batch of `axis_size // 8`) while few did,
    and the whole batch otherwise. Every path gives the same values.
    """

    def __init__(self, env: Environment):
        super().__init__(env)
        self._finish = jax.custom_batching.custom_vmap(self._finish_one)
        self._finish.def_vmap(self._finish_batched)

    def reset(self, key):
        state, ts = self._env.reset(key)
        return state, self._with_final(ts, ts.observation, ts.extras)

    @staticmethod
    def _with_final(ts: TimeStep, final_obs, final_extras) -> TimeStep:
        return ts.replace(
            extras={**ts.extras, "final_observation": final_obs, "final_extras": final_extras}
        )

    def _new_episode(self, key):
        """`(state, observation, extras)` of the episode that follows one holding `key`."""
        reset_state, reset_ts = self._env.reset(jax.random.fold_in(key, 0x5EED))
        return reset_state, reset_ts.observation, reset_ts.extras

    def _finish_one(self, done, carry):
        """`carry = (state, observation, extras)` after a step, replaced by the next
        episode's start where `done` (one environment)."""
        return jax.lax.cond(done, lambda: self._new_episode(carry[0].key), lambda: carry)

    def _finish_batched(self, axis_size, in_batched, done, carry):
        """Batching rule of `_finish_one`: resets only as many environments as ended."""
        done, carry = jax.tree_util.tree_map(
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
            (done, carry),
            tuple(in_batched),
        )
        batched_new = jax.vmap(self._new_episode)
        chunk = max(1, axis_size // 8)

        def reset_all():
            return _select_rows(done, batched_new(carry[0].key), carry)

        def reset_some():
            rows = jnp.nonzero(done, size=chunk, fill_value=axis_size)[0]
            keys = carry[0].key[jnp.minimum(rows, axis_size - 1)]
            fresh = batched_new(keys)
            return jax.tree_util.tree_map(
                lambda old, new: old.at[rows].set(new, mode="drop"), carry, fresh
            )

        count = jnp.sum(done, dtype=jnp.int32)
        branch = jnp.where(count == 0, 0, jnp.where(count <= chunk, 1, 2))
        out = jax.lax.switch(branch, [lambda: carry, reset_some, reset_all])
        return out, jax.tree_util.tree_map(lambda _: True, out)

    def step(self, state, action):
        state, ts = self._env.step(state, action)
        new_state, obs, extras = self._finish(ts.last(), (state, ts.observation, ts.extras))
        out = ts.replace(observation=obs, extras=extras)
        return new_state, self._with_final(out, ts.observation, ts.extras)


class VmapWrapper(Wrapper):
    """Runs a batch of environments with `jax.vmap`: `reset(keys)` takes `(batch, 2)` keys
    (or a single key plus `num_envs`), `step` takes `(batch, num_agents, ...)` actions."""

    def __init__(self, env: Environment, num_envs: int | None = None):
        super().__init__(env)
        if num_envs is not None and int(num_envs) < 1:
            raise ValueError(f"VmapWrapper: num_envs must be >= 1, got {num_envs}.")
        self.num_envs = None if num_envs is None else int(num_envs)

    def reset(self, key):
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        if jnp.ndim(key) == (0 if typed else 1):  # a single key
            if self.num_envs is None:
                raise ValueError("VmapWrapper.reset: pass a batch of keys or set num_envs.")
            key = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.reset)(key)

    def step(self, state, action):
        return jax.vmap(self._env.step)(state, action)

    def validate_action(self, action: Any) -> np.ndarray:
        action = np.asarray(action)
        for a in action:
            self._env.validate_action(a)
        return action

    def render(self, state, index: int = 0) -> np.ndarray:
        one = jax.tree_util.tree_map(lambda x: x[index], state)
        return self._env.render(one)


@struct.dataclass
class MetricsState:
    """State of `EpisodeMetrics`: the inner state and running/last-episode statistics."""

    env_state: Any
    running_return: chex.Array  # (num_agents,) return so far in this episode
    running_length: chex.Array  # () steps so far in this episode
    episode_return: chex.Array  # (num_agents,) return of the last completed episode
    episode_length: chex.Array  # () length of the last completed episode

    @property
    def key(self) -> chex.PRNGKey:
        return self.env_state.key


class EpisodeMetrics(Wrapper):
    """Adds episode statistics to `extras`, as training loops need.

    `extras["episode_return"]` is the team return (sum over agents) of the most recently
    completed episode, `extras["episode_return_per_agent"]` its per-agent split
    `(num_agents,)`, `extras["episode_length"]` its length, and `extras["episode_done"]`
    is True on the step that completed it. Place it outside `AutoReset`.
    """

    def inner_state(self, state: MetricsState):
        return state.env_state

    def _extras(self, ts, state: MetricsState, done) -> dict:
        return {
            **ts.extras,
            "episode_return": state.episode_return.sum(),
            "episode_return_per_agent": state.episode_return,
            "episode_length": state.episode_length,
            "episode_done": done,
        }

    def reset(self, key):
        env_state, ts = self._env.reset(key)
        n = self.num_agents
        state = MetricsState(
            env_state=env_state,
            running_return=jnp.zeros((n,), jnp.float32),
            running_length=jnp.zeros((), jnp.int32),
            episode_return=jnp.zeros((n,), jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
        )
        return state, ts.replace(extras=self._extras(ts, state, jnp.asarray(False)))

    def step(self, state: MetricsState, action):
        env_state, ts = self._env.step(state.env_state, action)
        done = ts.last()
        ret = state.running_return + ts.reward
        length = state.running_length + 1
        new = MetricsState(
            env_state=env_state,
            running_return=jnp.where(done, 0.0, ret),
            running_length=jnp.where(done, 0, length),
            episode_return=jnp.where(done, ret, state.episode_return),
            episode_length=jnp.where(done, length, state.episode_length),
        )
        return new, ts.replace(extras=self._extras(ts, new, done))


class AgentID(Wrapper):
    """Appends a one-hot agent id to each agent's flat view: `(N, D) -> (N, D + N)`."""

    def __init__(self, env: Environment):
        super().__init__(env)
        view = env.observation_spec.agents_view
        if len(view.shape) != 2:
            raise ValueError(
                f"AgentID needs a flat per-agent view (num_agents, dim); got {view.shape}. "
                "Use the vector observation type."
            )
        self._eye = np.eye(env.num_agents, dtype=view.dtype)

    @property
    def observation_spec(self) -> specs.Structured:
        spec = self._env.observation_spec
        view = spec.agents_view
        shape = (view.shape[0], view.shape[1] + self.num_agents)
        if isinstance(view, specs.BoundedArray):
            lo = np.concatenate([view.minimum, np.zeros_like(self._eye)], axis=1)
            hi = np.concatenate([view.maximum, np.ones_like(self._eye)], axis=1)
            new = specs.BoundedArray(shape, view.dtype, lo, hi, view.name)
        else:
            new = specs.Array(shape, view.dtype, view.name)
        return spec.replace(agents_view=new)

    def global_state(self, state, observation):
        # The centralised state is the inner environment's: strip the ids again.
        view = observation.agents_view[..., : -self.num_agents]
        return self._env.global_state(state, observation.replace(agents_view=view))

    def _add_id(self, ts: TimeStep) -> TimeStep:
        obs = ts.observation
        view = jnp.concatenate([obs.agents_view, jnp.asarray(self._eye)], axis=-1)
        return ts.replace(observation=obs.replace(agents_view=view))

    def reset(self, key):
        state, ts = self._env.reset(key)
        return state, self._add_id(ts)

    def step(self, state, action):
        state, ts = self._env.step(state, action)
        return state, self._add_id(ts)


class GlobalState(Wrapper):
    """Puts a centralised state `(state_dim,)` in `extras["global_state"]`, computed by
    `env.global_state(state, observation)` (the environment's true global view where it
    defines one, else the concatenation of all agents' views)."""

    def _add(self, state, ts: TimeStep) -> TimeStep:
        gs = self._env.global_state(state, ts.observation)
        return ts.replace(extras={**ts.extras, "global_state": gs})

    def reset(self, key):
        state, ts = self._env.reset(key)
        return state, self._add(state, ts)

    def step(self, state, action):
        state, ts = self._env.step(state, action)
        return state, self._add(state, ts)


class CheckedActions(Wrapper):
    """Checks actions inside jit with `checkify` (opt-in; costs a little speed).

    Wrap the jitted call with `checkify.checkify` to surface errors::

        env = CheckedActions(make("rware-tiny-4ag"))
        err, out = jax.jit(checkify.checkify(env.step))(state, action)
        err.throw()  # ValueError-like JaxRuntimeError naming the bad action
    """

    def step(self, state, action):
        spec = self.action_spec
        if tuple(action.shape) != spec.shape:
            raise ValueError(f"action has shape {tuple(action.shape)}, expected {spec.shape}.")
        if isinstance(spec, specs.BoundedArray):
            ok = jnp.all((action >= spec.minimum) & (action <= spec.maximum))
            checkify.check(
                ok,
                "action out of range: got {a}, bounds [{lo}, {hi}]",
                a=action,
                lo=jnp.asarray(spec.minimum),
                hi=jnp.asarray(spec.maximum),
            )
        return self._env.step(state, action)
