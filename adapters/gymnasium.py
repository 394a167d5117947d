"""Gymnasium adapter: a joint-action `gymnasium.Env` and a jitted, vmapped `VectorEnv`.

Every registered id `<id>` is exposed to Gymnasium as `jaxmarl_envs/<id>-v0` (ids that already
end in a version, such as `RobotWarehouse-v0`, keep it: `jaxmarl_envs/RobotWarehouse-v0`).

Registration. Gymnasium 1.x no longer loads `gymnasium.envs` entry-point plugins on
`import gymnasium` (0.26-0.29 did), so with Gymnasium 1.x the ids exist only once this module
has been imported. `import jaxmarl_envs` alone does not import it (the environments never
import the adapters). Two ways work:

1. From a fresh interpreter, with nothing of ours imported: prefix the id with this module,
   which Gymnasium imports before looking the id up::

       gymnasium.make("jaxmarl_envs.adapters.gymnasium:jaxmarl_envs/rware-tiny-4ag-v0")

2. Import the adapters first (`jaxmarl_envs.adapters` or `jaxmarl_envs.adapters.gymnasium`),
   then use the plain id::

       import jaxmarl_envs.adapters
       gymnasium.make("jaxmarl_envs/rware-tiny-4ag-v0")

The plain id in a fresh interpreter raises `gymnasium.error.NamespaceNotFound`. The same holds
for `gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`. The `gymnasium.envs`
entry point declared in pyproject.toml (`register_gymnasium_envs`) serves only Gymnasium
versions that still load plugins (< 1.0). Registration is cheap: entry-point strings and the
id, no environment is built.

The single-environment view (`JaxMarlGymEnv`):
- observation: a `Box` of the agents' views with a leading agent axis, `(num_agents, ...)`
  (the `agents_view` field of the observation spec). A `Box` rather than a `Dict` so that
  standard Gymnasium tooling (vector batching, flattening, networks) works directly; the
  action mask and any other observation field are in `info`.
- action: the joint action, `MultiDiscrete` with one entry per agent (a `Box` for
  continuous action specs), from the shared spec conversion.
- reward: the team reward, the sum of the agents' rewards (`reward_aggregation="mean"`
  averages instead).
- terminated: the episode ended and every agent terminated; truncated: the episode ended
  otherwise (time limit, or some agents were cut off), so learners bootstrap.
- info (fixed keys every step): `agent_rewards` `(num_agents,)` float32, `agent_terminated`
  and `agent_truncated` `(num_agents,)` bool, `action_mask` `(num_agents, num_actions)`
  bool, the environment's own `extras`, and any observation field other than `agents_view`.
  On the step that ends an episode, `info["episode_metrics"] = {"return": return (aggregated
  like the reward), "length": length, "agent_returns": (num_agents,)}`. The key `episode` is
  left to Gymnasium's `RecordEpisodeStatistics` wrappers (single and vector), which write it
  themselves and refuse an info that already holds it; stacked on our adapters they report
  the same returns and lengths as `episode_metrics`.

The vector environment (`JaxMarlVectorEnv`, from
`gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")`) steps the whole
batch in one jitted `vmap` call and supports `AutoresetMode.NEXT_STEP` (default),
`SAME_STEP` (with `info["final_obs"]`/`info["final_info"]`) and `DISABLED` (reset finished
environments with `reset(options={"reset_mask": mask})`). Infos follow Gymnasium's vector
layout: every key `k` is batched along the first axis and paired with a `(num_envs,)` bool
mask `_k` saying which environments carry it.

Seeding (reproducible from outside, see tests/test_adapters_roundtrip.py): `reset(seed=s)`
seeds `np_random` as Gymnasium does (`gymnasium.utils.seeding.np_random(s)`); the single env
resets from `key_from_rng(np_random)` (`jaxmarl_envs.adapters._common`), one draw per reset.
The vector env draws `keys = jax.random.split(key_from_rng(np_random), num_envs)` on a full
reset, and every reset of environment `i` (first or automatic) does
`keys[i], sub = jax.random.split(keys[i])` and calls `env.reset(sub)`.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from jaxmarl_envs import registry, specs
from jaxmarl_envs.adapters._common import (
    ActionCheck,
    HostFunction,
    check_finite,
    key_from_rng,
    resolve_env,
    shared_build,
)
from jaxmarl_envs.env import Environment
from jaxmarl_envs.wrappers import EpisodeMetrics

__all__ = [
    "NAMESPACE",
    "JaxMarlGymEnv",
    "JaxMarlVectorEnv",
    "gymnasium_id",
    "register_gymnasium_envs",
]

NAMESPACE = "jaxmarl_envs"
#: The info key of our episode statistics. Not "episode": that key belongs to Gymnasium's
#: `RecordEpisodeStatistics` wrappers, which refuse an info that already holds it.
EPISODE_KEY = "episode_metrics"
RENDER_MODES = ("rgb_array", "human")
DEFAULT_RENDER_FPS = 8
_METRIC_KEYS = ("episode_return", "episode_return_per_agent", "episode_length", "episode_done")
_VERSIONED = re.compile(r"-v\d+$")


def gymnasium_id(env_id: str) -> str:
    """The Gymnasium id of a jaxmarl_envs id: `jaxmarl_envs/<id>-v0` (or `/<id>` if versioned)."""
    return f"{NAMESPACE}/{env_id}" if _VERSIONED.search(env_id) else f"{NAMESPACE}/{env_id}-v0"


def register_gymnasium_envs() -> list[str]:
    """Registers every jaxmarl_envs id with Gymnasium (idempotent; new ids are added).

    Cheap: only entry-point strings and the id are stored; nothing is built.

    Returns:
        The Gymnasium ids registered by this call.
    """
    added = []
    for env_id in registry.list_envs():
        gym_id = gymnasium_id(env_id)
        if gym_id in gymnasium.registry:
            continue
        # Inserted directly: `gymnasium.register` rescans the whole registry per id (quadratic
        # in the thousands of scenario ids); our ids are always versioned and unique.
        gymnasium.registry[gym_id] = EnvSpec(
            id=gym_id,
            entry_point=f"{__name__}:JaxMarlGymEnv",
            vector_entry_point=f"{__name__}:JaxMarlVectorEnv",
            kwargs={"env_id": env_id},
        )
        added.append(gym_id)
    return added


# ----------------------------------------------------------------------------- pure core


class _Out(NamedTuple):
    """What one environment step produces, already in Gymnasium's terms (device arrays)."""

    obs: jax.Array  # (num_agents, ...) agents_view
    reward: jax.Array  # () team reward
    terminated: jax.Array  # () bool
    truncated: jax.Array  # () bool
    info: dict  # fixed-structure per-step info
    episode: dict  # statistics of the episode this step ended (valid where `done`)
    done: jax.Array  # () bool, the step ended the episode


def _aggregate(x: jax.Array, how: str) -> jax.Array:
    return jnp.sum(x, axis=-1) if how == "sum" else jnp.mean(x, axis=-1)


def _convert(ts, obs_fields: tuple[str, ...], how: str) -> _Out:
    """Turns a (metrics-wrapped) timestep into Gymnasium's terms, inside jit."""
    extras = {k: v for k, v in ts.extras.items() if k not in _METRIC_KEYS}
    info = {
        "agent_rewards": ts.reward.astype(jnp.float32),
        "agent_terminated": ts.terminated,
        "agent_truncated": ts.truncated,
        **{name: getattr(ts.observation, name) for name in obs_fields},
        **extras,
    }
    done = ts.last()
    terminated = done & jnp.all(ts.terminated)
    per_agent = ts.extras["episode_return_per_agent"]
    episode = {
        "return": _aggregate(per_agent, how).astype(jnp.float32),
        "length": ts.extras["episode_length"].astype(jnp.int32),
        "agent_returns": per_agent.astype(jnp.float32),
    }
    return _Out(
        obs=ts.observation.agents_view,
        reward=_aggregate(ts.reward, how).astype(jnp.float32),
        terminated=terminated,
        truncated=done & ~terminated,
        info=info,
        episode=episode,
        done=done,
    )


class _Core:
    """The pure single-environment functions both Gymnasium views are built from."""

    def __init__(self, env: Environment, reward_aggregation: str):
        if reward_aggregation not in ("sum", "mean"):
            raise ValueError(
                f"reward_aggregation must be 'sum' or 'mean', got {reward_aggregation!r}."
            )
        obs_spec = env.observation_spec
        if not isinstance(obs_spec, specs.Structured) or "agents_view" not in obs_spec.fields:
            raise ValueError(
                f"{env!r}: the Gymnasium adapter needs a structured observation spec with an "
                f"'agents_view' field, got {obs_spec!r}."
            )
        self.env = env
        self.metrics_env = EpisodeMetrics(env)
        self.how = reward_aggregation
        self.obs_fields = tuple(k for k in obs_spec.fields if k != "agents_view")
        self.single_observation_space = obs_spec.agents_view.to_gymnasium()
        self.single_action_space = env.action_spec.to_gymnasium()

    def reset(self, key: jax.Array):
        state, ts = self.metrics_env.reset(key)
        return state, _convert(ts, self.obs_fields, self.how)

    def step(self, state: Any, action: jax.Array):
        state, ts = self.metrics_env.step(state, action)
        return state, _convert(ts, self.obs_fields, self.how)


def _build_single(env: Environment, how: str):
    """The single env's jitted reset and step, each returning what the adapter hands out in
    one transfer (shared by adapters of the same id and overrides through `shared_build`, so
    `check_env` and repeated `gymnasium.make` calls compile once)."""
    core = _Core(env, how)

    def reset(key):
        state, out = core.reset(key)
        return state, (out.obs, out.info)

    return core, HostFunction(reset), HostFunction(core.step), ActionCheck(env)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}.")


def _render_fps(env: Environment) -> int:
    return int(getattr(env, "render_fps", DEFAULT_RENDER_FPS))


# ----------------------------------------------------------------------------- single env


class JaxMarlGymEnv(gymnasium.Env):
    """One jaxmarl_envs environment as a joint-action `gymnasium.Env` (see module docstring).

    Args:
        env_id: a registered id or an `Environment` instance.
        render_mode: None, "rgb_array" (`render()` returns a frame) or "human" (a window,
            refreshed on every reset and step).
        reward_aggregation: "sum" (default) or "mean" of the agents' rewards.
        **overrides: scenario keyword overrides (ids only), e.g. `time_limit=50`.

    Example:
        >>> import jaxmarl_envs.adapters  # registers the ids (see the module docstring)
        >>> env = gymnasium.make("jaxmarl_envs/rware-tiny-4ag-v0")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": DEFAULT_RENDER_FPS}

    def __init__(
        self,
        env_id: Environment | str,
        render_mode: str | None = None,
        reward_aggregation: str = "sum",
        **overrides: Any,
    ):
        _check_render_mode(render_mode)
        self._env = resolve_env(env_id, overrides)
        self._core, self._reset_fn, self._step_fn, self._check_action = shared_build(
            _build_single, env_id, self._env, overrides, reward_aggregation
        )
        self.metadata = {**self.metadata, "render_fps": _render_fps(self._env)}
        self.render_mode = render_mode
        # Spaces are per instance (they carry their own sampling RNG).
        self.observation_space = self._env.observation_spec.agents_view.to_gymnasium()
        self.action_space = self._env.action_spec.to_gymnasium()
        self._state: Any = None
        self._ended = False
        self._window = None

    @property
    def environment(self) -> Environment:
        """The wrapped jaxmarl_envs environment."""
        return self._env

    @property
    def state(self) -> Any:
        """The current (metrics-wrapped) environment state, None before `reset`."""
        return self._state

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return obs.astype(self.observation_space.dtype, copy=False)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode; the JAX key is drawn from `self.np_random` (seeded by `seed`)."""
        super().reset(seed=seed)
        self._state, (obs, info) = self._reset_fn(key_from_rng(self.np_random))
        self._ended = False
        if self.render_mode == "human":
            self.render()
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advances with the joint action `(num_agents,)`.

        Raises:
            ValueError: the action has the wrong shape, dtype or range.
            gymnasium.error.ResetNeeded: before `reset` or after the episode ended.
        """
        if self._state is None or self._ended:
            raise gymnasium.error.ResetNeeded(
                "JaxMarlGymEnv.step: call reset() first (before the first step and after "
                "an episode ends)."
            )
        action = self._check_action(action)
        self._state, out = self._step_fn(self._state, action)
        obs, reward, terminated, truncated, info, episode, done = out
        if done:
            info[EPISODE_KEY] = {
                "return": episode["return"][()],
                "length": episode["length"][()],
                "agent_returns": episode["agent_returns"],
            }
        self._ended = bool(done)
        if self.render_mode == "human":
            self.render()
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """An RGB `uint8` frame `(height, width, 3)` ("rgb_array"), or shows it ("human")."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "JaxMarlGymEnv.render() called without a render_mode; pass render_mode="
                "'rgb_array' or 'human' when making the environment."
            )
            return None
        if self._state is None:
            raise gymnasium.error.ResetNeeded("JaxMarlGymEnv.render: call reset() first.")
        frame = np.asarray(self._env.render(self._core.metrics_env.inner_state(self._state)))
        if self.render_mode == "rgb_array":
            return frame
        from jaxmarl_envs.rendering import HumanWindow

        if self._window is None:
            self._window = HumanWindow(f"jaxmarl_envs: {self._env.name}")
        self._window.show(frame, fps=self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._env.close()


# ----------------------------------------------------------------------------- vector env


def _masked_info(info: dict, present: np.ndarray) -> dict:
    """Gymnasium's vector info layout: each key `k` with a `(num_envs,)` mask `_k`."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        out[key] = _masked_info(value, present) if isinstance(value, dict) else value
        out[f"_{key}"] = present.copy()
    return out


def _zero_where_absent(tree: Any, present: np.ndarray) -> Any:
    def zero(x: np.ndarray) -> np.ndarray:
        mask = present.reshape(present.shape + (1,) * (x.ndim - 1))
        return np.where(mask, x, np.zeros_like(x))

    return jax.tree_util.tree_map(zero, tree)


def _build_reset(core: _Core):
    """`reset(keys, states, mask)`: resets the batch (or, given states, those under mask)."""

    def reset_one(key):
        key, sub = jax.random.split(key)
        state, out = core.reset(sub)
        return state, key, out

    def reset(keys, states, mask):
        new_states, new_keys, out = jax.vmap(reset_one)(keys)
        if states is None:
            return new_states, new_keys, out
        return _select_batch(mask, new_states, states), new_keys, out

    return reset


def _build_step(core: _Core, mode: AutoresetMode):
    """The batched step with the autoreset rule of `mode`: `step(states, keys, actions,
    autoreset) -> (states, keys, out, final)`.

    Every environment steps under one `vmap`. The resets are computed only on calls where
    some environment needs one (a `lax.cond` on the whole batch, so steps in mid-episode skip
    the reset's cost); environment `i` then splits its key, `next_key, sub = split(key)`,
    resets from `sub` and keeps `next_key`, exactly as an unbatched loop would. `final` is the
    stepped output before any reset (SAME_STEP only; None otherwise).
    """
    v_step = jax.vmap(core.step)
    v_reset = jax.vmap(core.reset)

    def step(states, keys, actions, autoreset):
        stepped_states, stepped = v_step(states, actions)
        if mode is AutoresetMode.DISABLED:
            return stepped_states, keys, stepped, None
        need = autoreset if mode is AutoresetMode.NEXT_STEP else stepped.done

        def with_resets():
            split = jax.vmap(jax.random.split)(keys)  # (num_envs, 2, key)
            next_keys, subs = split[:, 0], split[:, 1]
            reset_states, reset = v_reset(subs)
            new_states = _select_batch(need, reset_states, stepped_states)
            if mode is AutoresetMode.NEXT_STEP:
                out = _select_batch(need, reset, stepped)
            else:  # SAME_STEP: the ending step's outputs with the new episode's obs/info.
                out = stepped._replace(
                    obs=_select_batch(need, reset.obs, stepped.obs),
                    info=_select_batch(need, reset.info, stepped.info),
                )
            return new_states, _select_batch(need, next_keys, keys), out

        def without_resets():
            return stepped_states, keys, stepped

        new_states, new_keys, out = jax.lax.cond(jnp.any(need), with_resets, without_resets)
        return new_states, new_keys, out, stepped if mode is AutoresetMode.SAME_STEP else None

    return step


def _build_vector(env: Environment, how: str, mode: AutoresetMode):
    """The batch's jitted reset and step; states and keys stay on the device, what the
    adapter hands out comes back in one transfer (shared through `shared_build`)."""
    core = _Core(env, how)
    batch_reset, batch_step = _build_reset(core), _build_step(core, mode)

    def reset(keys, states, mask):
        states, keys, out = batch_reset(keys, states, mask)
        return (states, keys), (out.obs, out.info)

    def step(states, keys, actions, autoreset):
        states, keys, out, final = batch_step(states, keys, actions, autoreset)
        return (states, keys), (out, None if final is None else (final.obs, final.info))

    return core, HostFunction(reset), HostFunction(step)


class JaxMarlVectorEnv(VectorEnv):
    """A batch of one jaxmarl_envs environment as a `gymnasium.vector.VectorEnv`.

    The whole batch steps in one jitted `vmap` call. Observations are `(num_envs, num_agents,
    ...)`, actions `(num_envs, num_agents)`, rewards `(num_envs,)` float32 (team reward),
    terminations/truncations `(num_envs,)` bool. Each sub-environment keeps its own PRNG key;
    `reset(seed=s)` makes the whole run a pure function of `s` and the actions.

    Autoreset modes (`metadata["autoreset_mode"]`):
    - NEXT_STEP: the step after an episode ends resets that environment (its action is
      ignored; reward 0, terminated/truncated False, info is the reset info).
    - SAME_STEP: an environment that ends is reset within the same step; the returned
      observation/info are the new episode's, `info["final_obs"]` (object array, None where
      not done) and `info["final_info"]` (the ending step's info, batched with masks) carry
      the ending step's, masked by `info["_final_obs"]`/`info["_final_info"]`.
    - DISABLED: nothing resets by itself; call `reset(options={"reset_mask": mask})`.
    In every mode `info["episode_metrics"]` (masked by `info["_episode_metrics"]`) holds the
    statistics of the episodes that ended on this step (`return`, `length`, `agent_returns`);
    `episode`/`_episode` are left to `gymnasium.wrappers.vector.RecordEpisodeStatistics`.

    Spaces: `observation_space` is Gymnasium's `batch_space` of the single space. For discrete
    actions `action_space` is a `MultiDiscrete` of shape `(num_envs, num_agents)` (Gymnasium's
    `batch_space` would give an integer `Box`), so wrappers and agents that branch on the space
    type treat the batch as discrete; its dtype is int64, numpy's default, and `step` takes
    any integer dtype holding valid values.

    Args:
        env_id: a registered id or an `Environment` instance.
        num_envs: batch size.
        render_mode: None or "rgb_array" (`render()` returns one frame per environment).
        reward_aggregation: "sum" or "mean" of the agents' rewards.
        autoreset_mode: an `AutoresetMode` or its value string.
        **overrides: scenario keyword overrides (ids only).
    """

    def __init__(
        self,
        env_id: Environment | str,
        num_envs: int = 1,
        render_mode: str | None = None,
        reward_aggregation: str = "sum",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise ValueError(f"num_envs must be an int, got {num_envs!r}.")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError as err:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, "
                f"got {autoreset_mode!r}."
            ) from err
        self._env = resolve_env(env_id, overrides)
        self._core, self._reset_fn, self._step_fn = shared_build(
            _build_vector, env_id, self._env, overrides, reward_aggregation, mode
        )
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.autoreset_mode = mode
        self.metadata = {
            "autoreset_mode": mode,
            "render_modes": ["rgb_array"],
            "render_fps": _render_fps(self._env),
        }
        # Spaces are per instance (they carry their own sampling RNG).
        self.single_observation_space = self._env.observation_spec.agents_view.to_gymnasium()
        self.single_action_space = self._env.action_spec.to_gymnasium()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = _batch_action_space(self.single_action_space, self.num_envs)
        self._action_spec = self._env.action_spec
        self._states: Any = None
        self._keys: jax.Array | None = None
        self._autoreset = np.zeros(self.num_envs, bool)
        self._ended = np.zeros(self.num_envs, bool)

    @property
    def environment(self) -> Environment:
        """The wrapped (unbatched) jaxmarl_envs environment."""
        return self._env

    # -- API --------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every environment (or those in `options["reset_mask"]`).

        Args:
            seed: an int seeding `self.np_random`, from which the batch's keys are drawn.
            options: optional `{"reset_mask": (num_envs,) bool}` to reset only some
                environments (the others keep their state; their observations are returned
                unchanged and their info entries are masked out).
        """
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"JaxMarlVectorEnv.reset: seed must be an int or None, got {seed!r}.")
        super().reset(seed=None if seed is None else int(seed))
        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                    f"got {mask.dtype} {mask.shape}."
                )
            if self._states is None:
                raise ValueError("reset_mask needs a previous full reset().")
            if not mask.any():
                raise ValueError("options['reset_mask'] must reset at least one environment.")
        else:
            mask = np.ones(self.num_envs, bool)
        if self._keys is None or seed is not None or mask.all():
            keys = jax.random.split(key_from_rng(self.np_random), self.num_envs)
        else:
            keys = self._keys
        full = bool(mask.all())
        (states, new_keys), (obs, info) = self._reset_fn(keys, None if full else self._states, mask)
        if full:
            self._states, self._keys = states, new_keys
        else:
            self._states = states
            self._keys = _select_batch(mask, new_keys, self._keys)
        self._autoreset = np.where(mask, False, self._autoreset)
        self._ended = np.where(mask, False, self._ended)
        if not full:
            obs = np.where(mask.reshape((-1,) + (1,) * (obs.ndim - 1)), obs, self._last_obs)
        self._last_obs = obs.copy()
        return obs.astype(self.single_observation_space.dtype, copy=False), _masked_info(
            _zero_where_absent(info, mask), mask
        )

    def _validate_actions(self, actions: Any) -> np.ndarray:
        arr = np.asarray(actions)
        spec = self._action_spec
        expected = (self.num_envs, *spec.shape)
        if arr.shape != expected:
            raise ValueError(
                f"{type(self).__name__}: actions have shape {arr.shape}, expected {expected} "
                "(num_envs, num_agents, ...)."
            )
        try:  # dtype (and the first environment's range) through the cached spec
            spec.validate(arr[0])
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: invalid actions: {err}") from err
        if isinstance(spec, specs.BoundedArray):
            bad = (arr < spec.minimum) | (arr > spec.maximum)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"{type(self).__name__}: action out of range at index {idx}: {arr[idx]} "
                    f"not in [{spec.minimum[idx[1:]]}, {spec.maximum[idx[1:]]}]."
                )
        arr = arr.astype(spec.dtype, copy=False)
        check_finite(arr, f"{type(self).__name__}: invalid actions")
        return arr

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every environment with `actions` `(num_envs, num_agents, ...)`.

        Raises:
            ValueError: wrong action shape, dtype or range, or (DISABLED mode) stepping an
                environment whose episode ended without resetting it.
        """
        if self._states is None:
            raise gymnasium.error.ResetNeeded(f"{type(self).__name__}.step: call reset() first.")
        if self.autoreset_mode is AutoresetMode.DISABLED and self._ended.any():
            raise ValueError(
                f"environments {np.flatnonzero(self._ended).tolist()} ended; with autoreset "
                "DISABLED reset them with reset(options={'reset_mask': mask}) before stepping."
            )
        actions = self._validate_actions(actions)
        (self._states, self._keys), (out, final) = self._step_fn(
            self._states, self._keys, actions, self._autoreset
        )
        obs, reward, terminated, truncated, info, episode, done = out
        present = np.ones(self.num_envs, bool)
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            present = ~self._autoreset  # reset steps carry the reset info only
            done = done & present
        infos = _masked_info(info, np.ones(self.num_envs, bool))
        if done.any():
            ep = _zero_where_absent(episode, done)
            infos[EPISODE_KEY] = _masked_info(ep, done)
            infos[f"_{EPISODE_KEY}"] = done.copy()
            if self.autoreset_mode is AutoresetMode.SAME_STEP:
                final_obs, final_info = final
                final_info = {**final_info, EPISODE_KEY: ep}
                obj = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    obj[i] = final_obs[i].astype(self.single_observation_space.dtype)
                infos["final_obs"] = obj
                infos["_final_obs"] = done.copy()
                infos["final_info"] = _masked_info(_zero_where_absent(final_info, done), done)
                infos["_final_info"] = done.copy()
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._autoreset = done.copy()
        elif self.autoreset_mode is AutoresetMode.DISABLED:
            self._ended = done.copy()
        self._last_obs = obs.copy()
        return (
            obs.astype(self.single_observation_space.dtype, copy=False),
            reward,
            terminated,
            truncated,
            infos,
        )

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One RGB frame per environment ("rgb_array"), or None without a render mode."""
        if self.render_mode is None:
            gymnasium.logger.warn("JaxMarlVectorEnv.render() called without a render_mode.")
            return None
        if self._states is None:
            raise gymnasium.error.ResetNeeded("JaxMarlVectorEnv.render: call reset() first.")
        inner = self._core.metrics_env.inner_state(self._states)
        return tuple(
            np.asarray(self._env.render(jax.tree_util.tree_map(lambda x, i=i: x[i], inner)))
            for i in range(self.num_envs)
        )

    def close_extras(self, **kwargs: Any) -> None:
        self._env.close()


def _batch_action_space(space: gymnasium.spaces.Space, n: int) -> gymnasium.spaces.Space:
    """`(n, ...)` copies of `space`: a `MultiDiscrete` stays a `MultiDiscrete` (see the class
    docstring); anything else is Gymnasium's `batch_space`."""
    if isinstance(space, gymnasium.spaces.MultiDiscrete):
        nvec = np.broadcast_to(space.nvec, (n, *space.nvec.shape))
        start = np.broadcast_to(space.start, (n, *space.start.shape))
        return gymnasium.spaces.MultiDiscrete(nvec, dtype=space.dtype, start=start)
    return batch_space(space, n)


def _select_batch(mask: Any, on_true: Any, on_false: Any) -> Any:
    """Per-environment select over a batched pytree (mask `(num_envs,)`)."""
    mask = jnp.asarray(mask)

    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(m, a, b)

    return jax.tree_util.tree_map(pick, on_true, on_false)


register_gymnasium_envs()
