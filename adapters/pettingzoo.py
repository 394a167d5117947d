"""PettingZoo adapter: a jaxmarl_envs environment as a `pettingzoo.ParallelEnv` (and AEC).

Per-agent observations are PettingZoo's action-masking dicts, `{"observation": view,
"action_mask": int8 (num_actions,)}` with a `Dict` observation space (as in PettingZoo's
classic environments; `Discrete.sample(mask)` takes the mask directly). With
`action_mask_in_obs=False` the observation is the bare view (a `Box`) and the mask moves to
`infos[agent]["action_mask"]`, the other place PettingZoo looks for it.

Heterogeneous agents: if the environment defines `agent_observation_sizes` (one int per
agent) its `agents_view` `(num_agents, max_dim)` is taken as padded and agent `i` sees
`view[i, :sizes[i]]`; otherwise every agent sees its full row `view[i]`. Likewise, a
continuous-action environment defining `agent_action_sizes` takes `(num_agents, max_dim)`
actions padded at the end: agent `i` acts with a `Box` of its first `sizes[i]` entries.

Seeding: `reset(seed=s)` seeds a numpy generator `gymnasium.utils.seeding.np_random(s)`;
every reset (seeded or not) calls `env.reset(key_from_rng(generator))`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from jaxmarl_envs import specs
from jaxmarl_envs.adapters._common import (
    HostFunction,
    action_mask_of,
    check_finite,
    key_from_rng,
    resolve_env,
    shared_build,
    to_numpy,
)
from jaxmarl_envs.env import Environment

__all__ = ["JaxMarlParallelEnv", "aec_env", "parallel_env"]

RENDER_MODES = ("rgb_array", "human")


def _build_fns(env: Environment, with_mask: bool) -> tuple[HostFunction, HostFunction, Any]:
    """Jitted reset, step and global state. Reset and step return exactly the arrays the
    adapter hands out, in one transfer; the state and the observation (for `state()`) stay
    on the device."""

    def host_obs(observation):
        return observation.agents_view, action_mask_of(observation) if with_mask else None

    def reset(key):
        state, ts = env.reset(key)
        return (state, ts.observation), host_obs(ts.observation)

    def step(state, action):
        state, ts = env.step(state, action)
        host = (*host_obs(ts.observation), ts.reward, ts.terminated, ts.truncated, ts.last())
        return (state, ts.observation), host

    return HostFunction(reset), HostFunction(step), jax.jit(env.global_state)


def _row_box(spec: specs.Array, i: int, size: int | None = None) -> gymnasium.spaces.Space:
    """The space of row `i` of an agent-major spec (optionally its first `size` entries)."""
    shape = spec.shape[1:] if size is None else (size,)
    if spec.dtype == np.bool_:
        return gymnasium.spaces.MultiBinary(list(shape))
    if isinstance(spec, specs.BoundedArray):
        low, high = spec.minimum[i], spec.maximum[i]
        if size is not None:
            low, high = low[:size], high[:size]
        return gymnasium.spaces.Box(low, high, shape, spec.dtype)
    return specs.Array(shape, spec.dtype).to_gymnasium()


class JaxMarlParallelEnv(ParallelEnv):
    """One jaxmarl_envs environment as a `pettingzoo.ParallelEnv` (see module docstring).

    Agents whose episode ends (terminated or truncated) are removed from `agents`; `agents`
    is empty once the episode is over and `reset()` starts the next one. Actions of removed
    agents are not needed (the environment receives action 0 for them).

    Args:
        env_or_id: a registered id or an `Environment` instance.
        render_mode: None, "rgb_array" or "human".
        action_mask_in_obs: observations as `{"observation", "action_mask"}` dicts (default)
            or bare views with the mask in `infos`.
        **overrides: scenario keyword overrides (ids only), e.g. `time_limit=50`.
    """

    metadata = {
        "name": "jaxmarl_envs",
        "render_modes": list(RENDER_MODES),
        "render_fps": 8,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        env_or_id: Environment | str,
        render_mode: str | None = None,
        action_mask_in_obs: bool = True,
        **overrides: Any,
    ):
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}."
            )
        self._env = resolve_env(env_or_id, overrides)
        env = self._env
        self.render_mode = render_mode
        self.metadata = {
            **self.metadata,
            "name": f"jaxmarl_envs/{env.name}",
            "render_fps": int(getattr(env, "render_fps", 8)),
        }
        self.possible_agents = list(env.agent_ids)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._mask_in_obs = bool(action_mask_in_obs)

        obs_spec = env.observation_spec
        view = obs_spec.agents_view
        n = env.num_agents
        sizes = getattr(env, "agent_observation_sizes", None)
        if sizes is not None:
            sizes = [int(s) for s in sizes]
            if (
                len(sizes) != n
                or len(view.shape) != 2
                or not all(0 < s <= view.shape[1] for s in sizes)
            ):
                raise ValueError(
                    f"{env!r}: agent_observation_sizes {sizes} must give one size in "
                    f"[1, {view.shape[-1]}] per agent for a (num_agents, dim) agents_view."
                )
        self._obs_sizes = sizes

        action_spec = env.action_spec
        self._discrete = isinstance(action_spec, specs.MultiDiscreteArray)
        self._has_mask = self._discrete and "action_mask" in obs_spec.fields
        self._action_spec = action_spec
        self._num_values = [int(v) for v in action_spec.num_values] if self._discrete else None
        act_sizes = None if self._discrete else getattr(env, "agent_action_sizes", None)
        if act_sizes is not None:
            act_sizes = [int(s) for s in act_sizes]
            if (
                len(act_sizes) != n
                or len(action_spec.shape) != 2
                or not all(0 < s <= action_spec.shape[1] for s in act_sizes)
            ):
                raise ValueError(
                    f"{env!r}: agent_action_sizes {act_sizes} must give one size in "
                    f"[1, {action_spec.shape[-1]}] per agent for (num_agents, dim) actions."
                )
        self._act_sizes = act_sizes
        self._obs_spaces: dict[str, gymnasium.spaces.Space] = {}
        self._act_spaces: dict[str, gymnasium.spaces.Space] = {}
        for a, i in self._index.items():
            box = _row_box(view, i, None if sizes is None else sizes[i])
            if self._discrete:
                act = gymnasium.spaces.Discrete(self._num_values[i])
            else:
                act = _row_box(action_spec, i, None if act_sizes is None else act_sizes[i])
            if self._has_mask and self._mask_in_obs:
                mask_space = gymnasium.spaces.Box(0, 1, (self._num_values[i],), np.int8)
                box = gymnasium.spaces.Dict({"observation": box, "action_mask": mask_space})
            self._obs_spaces[a] = box
            self._act_spaces[a] = act
        self.state_space = env.global_state_spec().to_gymnasium()

        self._reset_fn, self._step_fn, self._global_state_fn = shared_build(
            _build_fns, env_or_id, env, overrides, self._has_mask
        )
        self._np_random: np.random.Generator | None = None
        self._state: Any = None
        self._observation: Any = None
        self._window = None

    @property
    def environment(self) -> Environment:
        """The wrapped jaxmarl_envs environment."""
        return self._env

    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        """The (cached, always the same object) observation space of `agent`."""
        try:
            return self._obs_spaces[agent]
        except KeyError:
            raise ValueError(
                f"unknown agent {agent!r}; agents are {self.possible_agents}."
            ) from None

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        """The (cached, always the same object) action space of `agent`."""
        try:
            return self._act_spaces[agent]
        except KeyError:
            raise ValueError(
                f"unknown agent {agent!r}; agents are {self.possible_agents}."
            ) from None

    # -- conversion -----------------------------------------------------------------------

    def _per_agent(self, agents: list[str], view: np.ndarray, mask: np.ndarray | None):
        obs, infos = {}, {}
        for a in agents:
            i = self._index[a]
            # Rows of a buffer fresh from this step: no later step overwrites them.
            o = view[i] if self._obs_sizes is None else view[i, : self._obs_sizes[i]]
            info: dict[str, Any] = {}
            if mask is not None:
                m = mask[i, : self._num_values[i]].astype(np.int8)
                if self._mask_in_obs:
                    o = {"observation": o, "action_mask": m}
                else:
                    info["action_mask"] = m
            obs[a] = o
            infos[a] = info
        return obs, infos

    # -- API ------------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        """Starts an episode; the JAX key comes from a numpy generator seeded by `seed`."""
        if seed is not None or self._np_random is None:
            self._np_random, _ = seeding.np_random(None if seed is None else int(seed))
        (self._state, self._observation), (view, mask) = self._reset_fn(
            key_from_rng(self._np_random)
        )
        self.agents = list(self.possible_agents)
        obs, infos = self._per_agent(self.agents, view, mask)
        if self.render_mode == "human":
            self.render()
        return obs, infos

    def _joint_action(self, actions: dict[str, Any]) -> np.ndarray:
        if not isinstance(actions, dict):
            raise ValueError(
                f"actions must be a dict agent -> action, got {type(actions).__name__}."
            )
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise ValueError(
                f"actions for unknown agents {unknown}; agents are {self.possible_agents}."
            )
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing actions for live agents {missing}.")
        spec = self._action_spec
        joint = spec.generate_value()
        for a in self.agents:
            act, i = actions[a], self._index[a]
            if (
                self._discrete
                and isinstance(act, (int, np.integer))
                and not isinstance(act, bool)
                and 0 <= act < self._num_values[i]
            ):  # the common case, a valid scalar from Discrete.sample() or a policy
                joint[i] = act
                continue
            act = np.asarray(act)
            size = None if self._act_sizes is None else self._act_sizes[i]
            expected = spec.shape[1:] if size is None else (size,)
            if act.shape != expected:
                raise ValueError(f"action of {a!r} has shape {act.shape}, expected {expected}.")
            if np.issubdtype(spec.dtype, np.integer) and not np.issubdtype(act.dtype, np.integer):
                raise ValueError(f"action of {a!r} has dtype {act.dtype}, expected integers.")
            if not np.can_cast(act.dtype, spec.dtype, casting="same_kind"):
                raise ValueError(f"action of {a!r} has dtype {act.dtype}, expected {spec.dtype}.")
            check_finite(act, f"action of {a!r}")
            # Bounds are checked before the cast into the joint array, which would wrap.
            if isinstance(spec, specs.BoundedArray):
                low, high = spec.minimum[i], spec.maximum[i]
                if size is not None:
                    low, high = low[:size], high[:size]
                if np.any(act < low) or np.any(act > high):
                    raise ValueError(
                        f"action of {a!r} is out of bounds: {act} not in [{low}, {high}]."
                    )
            if size is None:
                joint[i] = act
            else:
                joint[i, :size] = act
        return joint  # every entry checked above; the rest keeps the spec's default value

    def step(self, actions: dict[str, Any]):
        """Steps with one action per live agent.

        Returns:
            `(observations, rewards, terminations, truncations, infos)`, dicts over the agents
            that were live before this step; finished agents are then removed from `agents`.

        Raises:
            ValueError: missing/unknown agents, wrong action shape, dtype or range, or a step
                after the episode ended.
        """
        if not self.agents:
            raise ValueError("no live agents: the episode is over (or never began); call reset().")
        joint = self._joint_action(actions)
        (self._state, self._observation), host = self._step_fn(self._state, joint)
        view, mask, reward, term, trunc, last = host
        live = self.agents
        obs, infos = self._per_agent(live, view, mask)
        reward, term, trunc, last = reward.tolist(), term.tolist(), trunc.tolist(), bool(last)
        rewards = {a: reward[self._index[a]] for a in live}
        terminations = {a: term[self._index[a]] for a in live}
        # Every agent is done on a LAST step; whoever did not terminate was cut off.
        truncations = {a: trunc[self._index[a]] or (last and not terminations[a]) for a in live}
        self.agents = [a for a in live if not (terminations[a] or truncations[a])]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """The global state `state_space` describes (`env.global_state`)."""
        if self._state is None:
            raise ValueError("state(): call reset() first.")
        return to_numpy(self._global_state_fn(self._state, self._observation))

    def render(self) -> np.ndarray | None:
        """An RGB `uint8` frame ("rgb_array"), or shows it in a window ("human")."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode.")
            return None
        if self._state is None:
            raise ValueError("render(): call reset() first.")
        frame = np.asarray(self._env.render(self._state))
        if self.render_mode == "rgb_array":
            return frame
        from jaxmarl_envs.rendering import HumanWindow

        if self._window is None:
            self._window = HumanWindow(self.metadata["name"])
        self._window.show(frame, fps=self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._env.close()


def parallel_env(
    id_or_env: Environment | str, render_mode: str | None = None, **overrides: Any
) -> JaxMarlParallelEnv:
    """A PettingZoo `ParallelEnv` over a registered id (with overrides) or an environment.

    Example:
        >>> env = parallel_env("rware-tiny-4ag", time_limit=100)
        >>> obs, infos = env.reset(seed=0)
    """
    return JaxMarlParallelEnv(id_or_env, render_mode=render_mode, **overrides)


def aec_env(id_or_env: Environment | str, render_mode: str | None = None, **overrides: Any):
    """The AEC form, through PettingZoo's own `parallel_to_aec` conversion."""
    return parallel_to_aec(parallel_env(id_or_env, render_mode=render_mode, **overrides))
