"""Experience recorder: jitted-rollout or Python-loop transitions into a buffer and a Vault."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.env import Environment
from jaxmarl_envs.types import TimeStep
from jaxmarl_envs.wrappers import AutoReset, GlobalState, VmapWrapper

# The transition layout shared by both recording paths (one step of one environment):
#   observation   the observation at t without its action mask: `agents_view` when that is
#                 the only other field, else a dict of the remaining fields
#   action_mask   (num_agents, num_actions) legal actions at t
#   global_state  (state_dim,) centralised state at t (only when recorded)
#   action        (num_agents, ...) action taken at t
#   reward        (num_agents,) reward of that step
#   discount      (num_agents,) discount of that step (0 where an agent terminated)
#   terminated    (num_agents,) bool;  truncated  (num_agents,) bool
#   first         () bool, t is the first step of an episode
#   last          () bool, the step ended the episode (the done field for episode_mode)
# Added by the episode recorder (`make_episode_recorder`, used by `jaxmarl record`; the
# rollout recorder and `ExperienceRecorder` do not write them):
#   next_observation   same structure as `observation`: the true observation after the step
#                      (== observation at t+1 inside an episode; on the last step the true
#                      final observation, also of truncated episodes, for bootstrapping)
#   next_action_mask   (num_agents, num_actions) legal actions in next_observation
#   next_global_state  (state_dim,) centralised state after the step (when recorded)
#   episode_id         () int32, episode index in the vault (0, 1, 2, ... in storage order)
# and by `jaxmarl dataset combine`:
#   tier               () int32, index into the vault metadata's "tier_names"
DONE_KEY = "last"


def split_observation(observation: Any) -> tuple[Any, Any]:
    """Splits an environment observation into (observation without mask, action mask)."""
    if dataclasses.is_dataclass(observation) and hasattr(observation, "action_mask"):
        rest = {
            f.name: getattr(observation, f.name)
            for f in dataclasses.fields(observation)
            if f.name != "action_mask"
        }
        obs = rest["agents_view"] if list(rest) == ["agents_view"] else rest
        return obs, observation.action_mask
    return observation, None


def _transition(ts: TimeStep, action, next_ts: TimeStep, first, with_global_state: bool) -> dict:
    obs, mask = split_observation(ts.observation)
    out = {"observation": obs}
    if mask is not None:
        out["action_mask"] = mask
    if with_global_state:
        out["global_state"] = ts.extras["global_state"]
    out.update(
        action=action,
        reward=next_ts.reward,
        discount=next_ts.discount,
        terminated=next_ts.terminated,
        truncated=next_ts.truncated,
        first=first,
        last=next_ts.last(),
    )
    return out


@struct.dataclass
class RolloutState:
    """Carry of a recording rollout over `num_envs` environments.

    Attributes:
        env_state: batched environment state (leading `num_envs` axis).
        timestep: batched current timestep.
        first: `(num_envs,)` bool, the current timestep starts an episode.
        key: PRNG key for the policy.
    """

    env_state: Any
    timestep: TimeStep
    first: chex.Array
    key: chex.PRNGKey


@dataclasses.dataclass(frozen=True)
class RolloutRecorder:
    """Records a policy's rollouts into a trajectory-style buffer, natively in JAX.

    Attributes:
        init: `init(key) -> RolloutState`; resets `num_envs` environments with keys
            `jax.random.split(jax.random.split(key)[0], num_envs)`.
        example: `example() -> dict`, one transition of one environment (for `buffer.init`).
        run: `run(rollout_state, buffer_state) -> (rollout_state, buffer_state)`, jitted, the
            buffer state donated: `rollout_length` steps under `lax.scan`, one `add` of
            `(num_envs, rollout_length)` transitions.
        env: the wrapped, batched environment actually stepped.
    """

    init: Callable
    example: Callable
    run: Callable
    env: Environment
    num_envs: int
    rollout_length: int


def make_rollout_recorder(
    env: Environment,
    policy: Callable[[chex.PRNGKey, TimeStep], chex.Array],
    buffer: Any,
    num_envs: int,
    rollout_length: int,
    record_global_state: bool = True,
) -> RolloutRecorder:
    """Makes a jitted recorder of `policy` on `num_envs` copies of `env`.

    The environment is wrapped as `VmapWrapper(AutoReset(GlobalState(env)))` (without
    `GlobalState` when `record_global_state` is False), so episodes restart inside the scan.

    Args:
        env: an (unbatched, not auto-resetting) environment.
        policy: `policy(key, timestep) -> action` for one environment (vmapped here); it may
            read `timestep.observation.action_mask` and `timestep.extras["global_state"]`.
        buffer: a buffer with `add(state, batch)` taking `(num_envs, time, ...)` batches
            (trajectory, prioritised trajectory or flat with `add_sequences=True`).
        num_envs: environments stepped in parallel (the buffer's `add_batch_size`).
        rollout_length: steps per `run` call.

    Returns:
        A frozen `RolloutRecorder`.
    """
    for name, value in (("num_envs", num_envs), ("rollout_length", rollout_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    rows = getattr(buffer, "add_batch_size", num_envs)
    if rows != num_envs:
        raise ValueError(f"the buffer's add_batch_size ({rows}) must equal num_envs ({num_envs}).")
    max_time = getattr(buffer, "max_length_time", rollout_length)
    if rollout_length > max_time:
        raise ValueError(
            f"rollout_length ({rollout_length}) must be <= the buffer's max_length_time "
            f"({max_time})."
        )
    inner = GlobalState(env) if record_global_state else env
    venv = VmapWrapper(AutoReset(inner), num_envs=num_envs)

    def init(key: chex.PRNGKey) -> RolloutState:
        env_key, policy_key = jax.random.split(key)
        env_state, ts = venv.reset(jax.random.split(env_key, num_envs))
        return RolloutState(env_state, ts, jnp.ones((num_envs,), bool), policy_key)

    def step(carry: RolloutState, _):
        key, sub = jax.random.split(carry.key)
        action = jax.vmap(policy)(jax.random.split(sub, num_envs), carry.timestep)
        env_state, next_ts = venv.step(carry.env_state, action)
        tr = jax.vmap(lambda a, b, c, d: _transition(a, b, c, d, record_global_state))(
            carry.timestep, action, next_ts, carry.first
        )
        return RolloutState(env_state, next_ts, next_ts.last(), key), tr

    def run(rollout_state: RolloutState, buffer_state):
        rollout_state, trs = jax.lax.scan(step, rollout_state, None, rollout_length)
        batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), trs)
        return rollout_state, buffer.add(buffer_state, batch)

    def example() -> dict:
        shapes = jax.eval_shape(lambda k: step(init(k), None)[1], jax.random.PRNGKey(0))
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape[1:], s.dtype), shapes)

    return RolloutRecorder(
        init=jax.jit(init),
        example=example,
        run=jax.jit(run, donate_argnums=1),
        env=venv,
        num_envs=num_envs,
        rollout_length=rollout_length,
    )


class ExperienceRecorder:
    """Records transitions from a Python loop (adapters, external code) into a buffer and,
    optionally, a Vault, in the same layout as `make_rollout_recorder`.

    Every `record` call adds one step for each of the buffer's `add_batch_size`
    environments (leading axis `num_envs` on every argument). With a vault path the buffer is
    written to the vault before the ring would overwrite unwritten steps, and on `flush`.

    Example::

        rec = ExperienceRecorder(buffer, vault_path="data/run0", metadata={"policy": "random"})
        rec.record(obs, action, reward, discount, terminated, truncated, action_mask=mask)
        rec.flush()
    """

    def __init__(
        self,
        buffer: Any,
        vault_path: str | os.PathLike | None = None,
        metadata: dict | None = None,
    ):
        self.buffer = buffer
        self.num_envs = int(buffer.add_batch_size)
        self.max_length_time = int(buffer.max_length_time)
        self.vault_path = vault_path
        self.metadata = dict(metadata or {})
        self.vault: Vault | None = None
        self.state = None
        self._first = np.ones((self.num_envs,), bool)
        self._unwritten = 0
        self._add = jax.jit(buffer.add, donate_argnums=0)

    def _check(self, name: str, value: Any, ndim_min: int = 1) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim < ndim_min or arr.shape[0] != self.num_envs:
            raise ValueError(
                f"record: {name} must have a leading axis of num_envs={self.num_envs}, got "
                f"shape {arr.shape}."
            )
        return arr

    def record(
        self,
        observation: Any,
        action: Any,
        reward: Any,
        discount: Any,
        terminated: Any,
        truncated: Any,
        action_mask: Any = None,
        global_state: Any = None,
        last: Any = None,
    ) -> None:
        """Adds one step per environment.

        Args:
            observation: observation at t (pytree; an `Observation` has its mask split off).
            action: `(num_envs, num_agents, ...)` actions taken at t.
            reward, discount: `(num_envs, num_agents)` of that step.
            terminated, truncated: `(num_envs, num_agents)` (or `(num_envs,)`) bool.
            action_mask: `(num_envs, num_agents, num_actions)` legal actions at t.
            global_state: `(num_envs, state_dim)` centralised state at t.
            last: `(num_envs,)` bool episode end; default: every agent terminated or
                truncated.
        """
        obs, mask = split_observation(observation)
        if action_mask is None:
            action_mask = mask
        terminated = self._check("terminated", terminated).astype(bool)
        truncated = self._check("truncated", truncated).astype(bool)
        if last is None:
            done = terminated | truncated
            last = done.reshape(self.num_envs, -1).all(axis=1)
        last = self._check("last", last).astype(bool).reshape(self.num_envs)
        step = {"observation": jax.tree_util.tree_map(lambda x: self._check("observation", x), obs)}
        if action_mask is not None:
            step["action_mask"] = self._check("action_mask", action_mask).astype(bool)
        if global_state is not None:
            step["global_state"] = self._check("global_state", global_state)
        step.update(
            action=self._check("action", action),
            reward=self._check("reward", reward).astype(np.float32),
            discount=self._check("discount", discount).astype(np.float32),
            terminated=terminated,
            truncated=truncated,
            first=self._first.copy(),
            last=last,
        )
        batch = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[:, None], step)
        if self.state is None:
            self.state = self.buffer.init(jax.tree_util.tree_map(lambda x: x[0, 0], batch))
        if self.vault_path is not None and self._unwritten + 1 > self.max_length_time:
            self.flush()
        self.state = self._add(self.state, batch)
        self._unwritten += 1
        self._first = last.copy()

    def flush(self) -> int:
        """Writes the steps not yet in the vault (creating it on first use); returns how many."""
        if self.vault_path is None:
            raise ValueError("flush needs a vault_path.")
        if self.state is None:
            return 0
        if self.vault is None:
            self.vault = Vault.create(self.vault_path, self.state, metadata=self.metadata)
        written = self.vault.write(self.state)
        self._unwritten = 0
        return written

    def close(self) -> None:
        """Flushes and releases the vault."""
        if self.vault_path is not None:
            self.flush()
        if self.vault is not None:
            self.vault.close()


@dataclasses.dataclass(frozen=True)
class EpisodeRecorder:
    """Records whole episodes of `num_envs` environments in one jitted call ("a wave").

    Attributes:
        run: `run(key, policy_input) -> (transitions, lengths)`, jitted: resets `num_envs`
            environments with `jax.random.split(jax.random.split(key)[0], num_envs)`, steps
            them `max_steps` times without auto-reset and returns transitions with leaves
            `(num_envs, max_steps, ...)` in the layout above (with the `next_*` fields but
            without `episode_id`) and `lengths (num_envs,)` int32: steps of environment `e`'s
            episode are `[0, lengths[e])`, later steps are padding to drop.
        env: the environment stepped (with `GlobalState` when recorded).
    """

    run: Callable
    env: Environment
    num_envs: int
    max_steps: int


def make_episode_recorder(
    env: Environment,
    policy: Callable,
    init_policy_state: Callable[[int], Any],
    num_envs: int,
    max_steps: int | None = None,
    record_global_state: bool = True,
) -> EpisodeRecorder:
    """Makes a recorder of one whole episode per environment, with the true next observation.

    Unlike `make_rollout_recorder` (auto-reset, fixed-length rollouts) every call starts new
    episodes and runs them to their end, so a caller can commit whole episodes only, and an
    episode is a pure function of the call's key.

    Args:
        env: an (unbatched, not auto-resetting) environment with a time limit.
        policy: batched, stateful: `policy(key, timestep, policy_state, policy_input) ->
            (action, policy_state)` with timestep leaves `(num_envs, ...)`.
        init_policy_state: `init_policy_state(num_envs)` -> the policy's initial state (e.g. a
            recurrent hidden state; return None for none).
        num_envs: episodes per call.
        max_steps: scan length (default `env.time_limit`); episodes still running at the
            end are cut there (their last step is marked `last` and `truncated`).
        record_global_state: record `global_state` and `next_global_state`.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}.")
    steps = max_steps if max_steps is not None else getattr(env, "time_limit", None)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"max_steps must be an int >= 1 (or the environment must have a time_limit), got "
            f"{steps!r}."
        )
    inner = GlobalState(env) if record_global_state else env
    venv = VmapWrapper(inner, num_envs=num_envs)

    def step(carry, key, policy_input):
        env_state, ts, pstate, alive, first = carry
        action, pstate = policy(key, ts, pstate, policy_input)
        env_state, next_ts = venv.step(env_state, action)
        tr = jax.vmap(lambda a, b, c, d: _transition(a, b, c, d, record_global_state))(
            ts, action, next_ts, first
        )
        next_obs, next_mask = split_observation(next_ts.observation)
        tr["next_observation"] = next_obs
        if next_mask is not None:
            tr["next_action_mask"] = next_mask
        if record_global_state:
            tr["next_global_state"] = next_ts.extras["global_state"]
        valid = alive
        alive = alive & ~next_ts.last()
        return (env_state, next_ts, pstate, alive, jnp.zeros_like(first)), (tr, valid)

    def run(key, policy_input=None):
        env_key, policy_key = jax.random.split(key)
        env_state, ts = venv.reset(jax.random.split(env_key, num_envs))
        ones = jnp.ones((num_envs,), bool)
        carry = (env_state, ts, init_policy_state(num_envs), ones, ones)
        keys = jax.random.split(policy_key, steps)
        _, (trs, valid) = jax.lax.scan(lambda c, k: step(c, k, policy_input), carry, keys)
        trs = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), trs)
        valid = valid.T  # (num_envs, steps)
        lengths = valid.sum(axis=1).astype(jnp.int32)
        # Episodes cut by max_steps end at the last scanned step: mark it last and truncated.
        cut = valid[:, -1] & ~trs["last"][:, -1]
        at_end = jnp.arange(steps)[None, :] == steps - 1
        trs["last"] = trs["last"] | (at_end & cut[:, None])
        trunc = trs["truncated"]
        cut_b = (at_end & cut[:, None]).reshape(num_envs, steps, *([1] * (trunc.ndim - 2)))
        trs["truncated"] = trunc | cut_b
        return trs, lengths

    return EpisodeRecorder(run=jax.jit(run), env=inner, num_envs=num_envs, max_steps=steps)


def episode_returns(vault: Vault) -> np.ndarray:
    """Team returns (sum over agents and steps) of every complete episode in a vault
    recorded in the recorder layout; `(num_episodes,)` float64, ordered by row then start."""
    eps = vault.episodes(DONE_KEY)
    out = np.zeros(len(eps))
    for i, data in enumerate(vault.read_episodes(eps)):
        out[i] = float(np.sum(data["reward"], dtype=np.float64))
    return out


def return_statistics(returns: np.ndarray) -> dict:
    """Summary statistics for vault metadata: count, mean, std, min, max, median."""
    r = np.asarray(returns, np.float64)
    if r.size == 0:
        return {"num_episodes": 0}
    return {
        "num_episodes": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
        "median": float(np.median(r)),
    }


def record_to_vault(
    recorder: RolloutRecorder,
    buffer: Any,
    key: chex.PRNGKey,
    num_rollouts: int,
    vault_path: str | os.PathLike,
    metadata: dict | None = None,
) -> Vault:
    """Runs `num_rollouts` recording rollouts, writing each into a new vault, then stores the
    episode return statistics in the vault's metadata under "returns".

    Returns:
        The vault, open for appending (close it when done).
    """
    if isinstance(num_rollouts, bool) or not isinstance(num_rollouts, int) or num_rollouts < 1:
        raise ValueError(f"num_rollouts must be an int >= 1, got {num_rollouts!r}.")
    rollout_state = recorder.init(key)
    buffer_state = buffer.init(recorder.example())
    vault = Vault.create(vault_path, buffer_state, metadata=metadata)
    for _ in range(num_rollouts):
        rollout_state, buffer_state = recorder.run(rollout_state, buffer_state)
        vault.write(buffer_state)
    vault.update_metadata(returns=return_statistics(episode_returns(vault)))
    return vault
