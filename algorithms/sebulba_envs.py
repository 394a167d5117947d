"""Host-side environment batches for Sebulba: ours, Gymnasium ids and PettingZoo factories.

Every batch steps `num_envs` Python environments and hands back numpy arrays in one layout,
agent-major like the JAX environments (B environments, N agents, D observation features,
A actions):

- `obs` `(B, N, D)` float32, `mask` `(B, N, A)` bool: the next observation and action mask
  (the new episode's after an episode ended: batches reset themselves);
- `reward` `(B, N)` float32, `terminated` `(B, N)` bool (no bootstrap), `agent_end` `(B, N)`
  bool (the agent's episode ended on this step);
- `final_obs` `(B, N, D)`: the observation the step produced, before any reset (for the
  bootstrap value on truncation);
- `end` `(B,)` bool, `episode_return` `(B,)` team return of the episode that ended there,
  `episode_length` `(B,)`.

Specs (`resolve`): a registered jaxmarl_envs id (stepped through our Gymnasium vector adapter,
one jitted call for the batch); `gymnasium:<id>` (any Gymnasium id, `module:Id` forms included,
joint-action view: a Tuple of Discrete, a MultiDiscrete or a Discrete action space, a Box or
Tuple of Boxes observation space, per-agent or team rewards); `pettingzoo:<module>:<function>`
(a function returning a PettingZoo `ParallelEnv`; agents that leave the `agents` list are
padded: zero observation, only action 0 allowed, reward 0, terminated, so they add nothing to
the policy gradient and a value target of 0). Action masks are read from `info["action_mask"]`
or a Dict observation's `action_mask` wherever the environment provides them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass
class StepOut:
    """One batched step (see the module docstring for shapes)."""

    obs: np.ndarray
    mask: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    agent_end: np.ndarray
    final_obs: np.ndarray
    end: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    """What the networks need: agents, flat observation size, number of discrete actions."""

    num_agents: int
    obs_dim: int
    num_actions: int
    kind: str  # "jaxmarl", "gymnasium" or "pettingzoo"


class HostBatch:
    """A batch of Python environments stepped one after the other (subclasses convert one
    environment's reset and step; this class keeps returns and resets ended episodes)."""

    info: EnvInfo
    #: Held around every reset and step; Sebulba shares one lock between the batches of a run
    #: when environments are not thread-safe (see `SebulbaSettings.env_lock`).
    lock: Any = contextlib.nullcontext()

    def __init__(self, make_one: Callable[[], Any], num_envs: int, info: EnvInfo):
        self.envs = [make_one() for _ in range(num_envs)]
        self.info = info
        self.num_envs = num_envs
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._seed = 0

    # subclasses: one environment
    def _reset_one(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _step_one(self, i: int, action: np.ndarray):
        """-> `(obs (N, D), mask (N, A), reward (N,), terminated (N,), agent_end (N,), end)`."""
        raise NotImplementedError

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Resets every environment (environment i from `seed + i`); `(obs, mask)`."""
        self._seed = int(seed) + self.num_envs
        with self.lock:
            pairs = [self._reset_one(i, int(seed) + i) for i in range(self.num_envs)]
        self._returns[:] = 0
        self._lengths[:] = 0
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def step(self, actions: np.ndarray) -> StepOut:
        with self.lock:
            return self._step(actions)

    def _step(self, actions: np.ndarray) -> StepOut:
        b, n = self.num_envs, self.info.num_agents
        obs = np.empty((b, n, self.info.obs_dim), np.float32)
        final = np.empty_like(obs)
        mask = np.empty((b, n, self.info.num_actions), bool)
        reward = np.empty((b, n), np.float32)
        terminated = np.empty((b, n), bool)
        agent_end = np.empty((b, n), bool)
        end = np.zeros(b, bool)
        ep_return = np.zeros(b, np.float32)
        ep_length = np.zeros(b, np.int64)
        for i in range(b):
            o, m, r, t, ae, done = self._step_one(i, actions[i])
            final[i], reward[i], terminated[i], agent_end[i] = o, r, t, ae | done
            self._returns[i] += float(r.sum())
            self._lengths[i] += 1
            if done:
                end[i] = True
                ep_return[i], ep_length[i] = self._returns[i], self._lengths[i]
                self._returns[i], self._lengths[i] = 0.0, 0
                o, m = self._reset_one(i, self._seed)
                self._seed += 1
            obs[i], mask[i] = o, m
        return StepOut(obs, mask, reward, terminated, agent_end, final, end, ep_return, ep_length)

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001  closing must not mask the run's own error
                pass


# ---------------------------------------------------------------------------------------------
# Gymnasium (joint-action view)
# ---------------------------------------------------------------------------------------------


def _gym_layout(env: Any, spec: str) -> tuple[EnvInfo, list[int], bool]:
    """Checks a Gymnasium env's spaces; returns `(info, actions per agent, tuple actions)`."""
    from gymnasium import spaces

    obs_space, act_space = env.observation_space, env.action_space
    if isinstance(act_space, spaces.Tuple):
        if not all(isinstance(s, spaces.Discrete) for s in act_space.spaces):
            raise ValueError(
                f"{spec}: Sebulba PPO needs discrete actions; got action space {act_space} "
                "(continuous actions are not supported)"
            )
        per_agent, as_tuple = [int(s.n) for s in act_space.spaces], True
    elif isinstance(act_space, spaces.MultiDiscrete) and act_space.nvec.ndim == 1:
        per_agent, as_tuple = [int(v) for v in act_space.nvec], False
    elif isinstance(act_space, spaces.Discrete):
        per_agent, as_tuple = [int(act_space.n)], False
    else:
        raise ValueError(
            f"{spec}: Sebulba PPO needs discrete actions (Discrete, MultiDiscrete or a Tuple "
            f"of Discrete); got action space {act_space} (continuous actions are not supported)"
        )
    n = len(per_agent)
    if isinstance(obs_space, spaces.Tuple):
        if len(obs_space.spaces) != n or not all(
            isinstance(s, spaces.Box) for s in obs_space.spaces
        ):
            raise ValueError(f"{spec}: observations must be Box (one per agent); got {obs_space}")
        dims = {int(np.prod(s.shape)) for s in obs_space.spaces}
        if len(dims) != 1:
            raise ValueError(f"{spec}: agents' observations differ in size: {sorted(dims)}")
        obs_dim = dims.pop()
    elif isinstance(obs_space, spaces.Box):
        if n > 1 and (not obs_space.shape or obs_space.shape[0] != n):
            raise ValueError(
                f"{spec}: a Box observation for {n} agents needs a leading agent axis, got "
                f"shape {obs_space.shape}"
            )
        obs_dim = int(np.prod(obs_space.shape[1:] if n > 1 else obs_space.shape))
    else:
        raise ValueError(f"{spec}: observations must be Box (or a Tuple of Boxes); got {obs_space}")
    return EnvInfo(n, obs_dim, max(per_agent), "gymnasium"), per_agent, as_tuple


class GymnasiumBatch(HostBatch):
    """`gymnasium:<id>`: a list of Gymnasium environments with a joint action."""

    def __init__(self, gym_id: str, num_envs: int, kwargs: dict, spec: str):
        import gymnasium

        def make():
            return gymnasium.make(gym_id, **kwargs)

        probe = make()
        info, self._per_agent, self._as_tuple = _gym_layout(probe, spec)
        probe.close()
        super().__init__(make, num_envs, info)
        base = np.zeros((info.num_agents, info.num_actions), bool)
        for k, a in enumerate(self._per_agent):
            base[k, :a] = True
        self._base_mask = base

    def _obs(self, obs: Any) -> np.ndarray:
        n = self.info.num_agents
        return np.asarray(obs, np.float32).reshape(n, self.info.obs_dim)

    def _mask(self, info: dict) -> np.ndarray:
        m = info.get("action_mask") if isinstance(info, dict) else None
        if m is None:
            return self._base_mask
        m = np.asarray(m, bool).reshape(self.info.num_agents, -1)
        out = self._base_mask.copy()
        out[:, : m.shape[1]] &= m
        return out

    def _reset_one(self, i, seed):
        obs, info = self.envs[i].reset(seed=seed)
        return self._obs(obs), self._mask(info)

    def _step_one(self, i, action):
        act = tuple(int(a) for a in action) if self._as_tuple else action
        if not self._as_tuple and len(self._per_agent) == 1:
            act = int(action[0])
        obs, reward, terminated, truncated, info = self.envs[i].step(act)
        n = self.info.num_agents
        if isinstance(info, dict) and "agent_rewards" in info:
            r = np.asarray(info["agent_rewards"], np.float32).reshape(n)
        else:
            r = np.broadcast_to(np.asarray(reward, np.float32).reshape(-1), (n,)).copy()
        if isinstance(info, dict) and "agent_terminated" in info:
            term = np.asarray(info["agent_terminated"], bool).reshape(n)
        else:
            term = np.broadcast_to(np.asarray(terminated, bool).reshape(-1), (n,)).copy()
        done = bool(np.all(terminated)) or bool(np.all(truncated))
        return self._obs(obs), self._mask(info), r, term, term, done


# ---------------------------------------------------------------------------------------------
# Ours, through the Gymnasium vector adapter (one jitted call per batch step)
# ---------------------------------------------------------------------------------------------


class JaxMarlBatch:
    """A registered jaxmarl_envs id stepped by `JaxMarlVectorEnv` (SAME_STEP autoreset)."""

    def __init__(self, env_id: str, num_envs: int, kwargs: dict):
        from gymnasium.vector import AutoresetMode

        from jaxmarl_envs.adapters.gymnasium import JaxMarlVectorEnv

        self.vec = JaxMarlVectorEnv(
            env_id, num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
        )
        env = self.vec.environment
        spec = env.action_spec
        from jaxmarl_envs import specs

        if not isinstance(spec, specs.MultiDiscreteArray):
            raise ValueError(
                f"{env_id}: Sebulba PPO needs discrete actions; got {spec!r} (continuous "
                "actions are not supported)"
            )
        n = env.num_agents
        shape = env.observation_spec.agents_view.shape
        self.info = EnvInfo(n, int(np.prod(shape[1:])), int(np.max(spec.num_values)), "jaxmarl")
        self.num_envs = num_envs

    def _flat(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, np.float32).reshape(self.num_envs, self.info.num_agents, -1)

    def reset(self, seed: int):
        obs, info = self.vec.reset(seed=int(seed))
        return self._flat(obs), np.asarray(info["action_mask"], bool)

    def step(self, actions: np.ndarray) -> StepOut:
        obs, _, _, _, info = self.vec.step(np.asarray(actions))
        obs = self._flat(obs)
        reward = np.asarray(info["agent_rewards"], np.float32).copy()
        term = np.asarray(info["agent_terminated"], bool).copy()
        final = obs.copy()
        end = np.zeros(self.num_envs, bool)
        ep_ret = np.zeros(self.num_envs, np.float32)
        ep_len = np.zeros(self.num_envs, np.int64)
        if "final_obs" in info:
            end = np.asarray(info["_final_obs"], bool)
            fi = info["final_info"]
            for i in np.flatnonzero(end):
                final[i] = np.asarray(info["final_obs"][i], np.float32).reshape(final[i].shape)
            reward[end] = np.asarray(fi["agent_rewards"], np.float32)[end]
            term[end] = np.asarray(fi["agent_terminated"], bool)[end]
            ep = info["episode_metrics"]
            ep_ret[end] = np.asarray(ep["return"], np.float32)[end]
            ep_len[end] = np.asarray(ep["length"])[end]
        agent_end = term | end[:, None]
        mask = np.asarray(info["action_mask"], bool)
        return StepOut(obs, mask, reward, term, agent_end, final, end, ep_ret, ep_len)

    def close(self) -> None:
        self.vec.close()


# ---------------------------------------------------------------------------------------------
# PettingZoo parallel environments
# ---------------------------------------------------------------------------------------------


class PettingZooBatch(HostBatch):
    """`pettingzoo:<module>:<function>`: parallel environments with masks for absent agents."""

    def __init__(self, factory: Callable[..., Any], num_envs: int, kwargs: dict, spec: str):
        from gymnasium import spaces

        def make():
            return factory(**kwargs)

        probe = make()
        if not hasattr(probe, "possible_agents") or not hasattr(probe, "observation_space"):
            raise ValueError(f"{spec}: the factory did not return a PettingZoo ParallelEnv")
        agents = list(probe.possible_agents)
        dims, acts, self._dict_obs = set(), [], False
        for a in agents:
            o, act = probe.observation_space(a), probe.action_space(a)
            if isinstance(o, spaces.Dict) and "observation" in o.spaces:
                self._dict_obs = True
                o = o.spaces["observation"]
            if not isinstance(o, spaces.Box):
                raise ValueError(f"{spec}: observations must be Box; agent {a!r} has {o}")
            if not isinstance(act, spaces.Discrete):
                raise ValueError(
                    f"{spec}: Sebulba PPO needs discrete actions; agent {a!r} has {act} "
                    "(continuous actions are not supported)"
                )
            dims.add(int(np.prod(o.shape)))
            acts.append(int(act.n))
        if len(dims) != 1:
            raise ValueError(f"{spec}: agents' observations differ in size: {sorted(dims)}")
        probe.close()
        self.agents = agents
        self._per_agent = acts
        super().__init__(make, num_envs, EnvInfo(len(agents), dims.pop(), max(acts), "pettingzoo"))
        self._absent_mask = np.zeros(self.info.num_actions, bool)
        self._absent_mask[0] = True

    def _agent_obs(self, k: int, obs: dict, infos: dict) -> tuple[np.ndarray, np.ndarray]:
        name = self.agents[k]
        mask = np.zeros(self.info.num_actions, bool)
        mask[: self._per_agent[k]] = True
        if name not in obs:
            return np.zeros(self.info.obs_dim, np.float32), self._absent_mask
        o = obs[name]
        if self._dict_obs:
            if "action_mask" in o:
                mask[: self._per_agent[k]] &= np.asarray(o["action_mask"], bool)
            o = o["observation"]
        info = infos.get(name, {}) if isinstance(infos, dict) else {}
        if isinstance(info, dict) and "action_mask" in info:
            mask[: self._per_agent[k]] &= np.asarray(info["action_mask"], bool)
        return np.asarray(o, np.float32).reshape(-1), mask

    def _gather(self, obs: dict, infos: dict):
        pairs = [self._agent_obs(k, obs, infos) for k in range(self.info.num_agents)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _reset_one(self, i, seed):
        obs, infos = self.envs[i].reset(seed=seed)
        return self._gather(obs, infos)

    def _step_one(self, i, action):
        env = self.envs[i]
        live = set(env.agents)
        acts = {a: int(action[k]) for k, a in enumerate(self.agents) if a in live}
        obs, rewards, terms, truncs, infos = env.step(acts)
        n = self.info.num_agents
        r = np.array([float(rewards.get(a, 0.0)) for a in self.agents], np.float32)
        # Absent before this step: padding (terminated); leaving now: its own flags.
        term = np.array(
            [a not in live or bool(terms.get(a, False)) for a in self.agents], bool
        ).reshape(n)
        ended = np.array(
            [
                a not in live or bool(terms.get(a, False)) or bool(truncs.get(a, False))
                for a in self.agents
            ],
            bool,
        )
        still = set(env.agents)
        ended |= np.array([a not in still for a in self.agents], bool)
        done = not still
        o, m = self._gather(obs, infos)
        return o, m, r, term, ended, done


# ---------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------


def resolve(spec: str, kwargs: dict | None = None) -> Callable[[int], Any]:
    """Checks an environment spec and returns `make_batch(num_envs)`; the first batch is
    built here (one environment), so a spec that cannot be resolved, continuous actions or
    observations that are not Box raise ValueError now, before any thread starts.

    Args:
        spec: a registered jaxmarl_envs id, `gymnasium:<id>` or
            `pettingzoo:<module>:<function>`.
        kwargs: keyword arguments for the environment constructor.
    """
    kwargs = dict(kwargs or {})
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"environment spec must be a non-empty string, got {spec!r}")
    if spec.startswith("gymnasium:"):
        gym_id = spec[len("gymnasium:") :]
        import gymnasium

        try:
            gymnasium.make(gym_id, **kwargs).close()
        except (gymnasium.error.Error, ModuleNotFoundError, ImportError) as err:
            raise ValueError(f"environment spec {spec!r}: cannot make {gym_id!r}: {err}") from err
        GymnasiumBatch(gym_id, 1, kwargs, spec).close()  # checks the spaces
        return lambda num_envs: GymnasiumBatch(gym_id, num_envs, kwargs, spec)
    if spec.startswith("pettingzoo:"):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ValueError(
                f"environment spec {spec!r}: expected pettingzoo:<module>:<function>, e.g. "
                "pettingzoo:pettingzoo.mpe:simple_spread_v3.parallel_env"
            )
        _, module_name, attr = parts
        try:
            obj: Any = importlib.import_module(module_name)
            for name in attr.split("."):
                obj = getattr(obj, name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"environment spec {spec!r}: {type(err).__name__}: {err}") from err
        if not callable(obj):
            raise ValueError(f"environment spec {spec!r}: {attr} is not callable")
        PettingZooBatch(obj, 1, kwargs, spec).close()
        return lambda num_envs: PettingZooBatch(obj, num_envs, kwargs, spec)
    import jaxmarl_envs

    if spec not in jaxmarl_envs.list_envs():
        raise ValueError(
            f"environment spec {spec!r}: not a registered jaxmarl_envs id; use an id from "
            "`jaxmarl list`, gymnasium:<id> or pettingzoo:<module>:<function>"
        )
    JaxMarlBatch(spec, 1, kwargs).close()
    return lambda num_envs: JaxMarlBatch(spec, num_envs, kwargs)
