"""The multi-agent particle environments (MPE) in pure JAX, matching `mpe2` 1.1.1."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng, specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.mpe import constants
from jaxmarl_envs.mpe.scenario import SCENARIOS, Scenario, check_int
from jaxmarl_envs.mpe.types import Observation, State
from jaxmarl_envs.mpe.world import physics_step, scaled
from jaxmarl_envs.types import TimeStep, make_timestep, restart

_F32_MAX = float(np.finfo(np.float32).max)


def make_scenario(name: str, **kwargs: Any) -> Scenario:
    """Builds the registered scenario `name` with its keyword arguments."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown MPE scenario {name!r}; known: {sorted(SCENARIOS)}.")
    cls = SCENARIOS[name]
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        params = [p for p in inspect.signature(cls).parameters]
        raise ValueError(
            f"MPE scenario {name!r}: {err}; its arguments are {params} (plus the "
            "environment's continuous_actions, max_cycles, generator, viewer, render_size)."
        ) from None
    return cls(**kwargs)


class MPE(Environment):
    """A multi-agent particle environment (Lowe et al. 2017; Mordatch & Abbeel 2018) as in
    Farama's `mpe2` 1.1.1: same physics, observations, rewards and episode length.

    - observation: `Observation` with
        - `agents_view`: `(num_agents, max_obs_dim)` float32, the scenario's observation of
          each agent (mpe2's layout); agents with smaller observations are zero-padded at
          the end, and `agent_observation_sizes` gives each agent's true size (the
          PettingZoo adapter exposes `Box((size,))` per agent).
        - `action_mask`: `(num_agents, max_action_dim)` bool, True on each agent's valid
          entries (discrete: its actions; continuous: its true action components).
    - action: discrete (default): `(num_agents,)` int32, agent `i` in
      `[0, agent_action_sizes[i])` (mpe2's `Discrete`): for a movable agent `a % 5` is the
      move (no-op, -x, +x, -y, +y) and `a // 5` its message (a one-hot of `dim_c`); an
      agent that cannot move sends message `a`. Out-of-range actions are clipped into range
      (use `validate_action` for an error). Continuous: `(num_agents, max_action_dim)`
      float32 in `[0, 1]` (PettingZoo's MPE layout: movable agents
      `[no-op, -x, +x, -y, +y, message...]`, force `(a2 - a1, a4 - a3)`; others
      `[message...]`), clipped to `[0, 1]` as mpe2's `ClipOutOfBoundsWrapper` does;
      entries past `agent_action_sizes[i]` are ignored.
    - reward: `(num_agents,)` float32, the scenario's reward after the world step, mixed
      as `global * (1 - local_ratio) + local * local_ratio` where the scenario has one.
    - termination: the scenario's `is_terminal` (never, by default). Truncation: after
      exactly `max_cycles` steps (the step that makes the count reach `max_cycles` is
      LAST), discount 1.
    - state: `State` with `key`, `step_count ()`, `p_pos (E, 2)`, `p_vel (E, 2)`,
      `c (N, dim_c)`, `colour (E, 3)`, `extra` (scenario data); entities are the agents,
      then the landmarks.

    Differences from mpe2 (everything else matches step for step; tests/test_mpe_reference.py):
    float32 instead of float64 arithmetic (observations and rewards agree to ~1e-5 over
    whole episodes); initial states come from JAX keys, not numpy's generator (same
    distributions; the differential tests copy mpe2's initial state); coincident colliding
    entities feel no contact force where mpe2 divides 0 by 0 (NaN); out-of-range discrete
    actions are clipped where mpe2 raises (`validate_action` raises here); observation
    bounds are the largest finite float32 values where mpe2 has infinities; the viewer
    does not rescale radii with the zoom since reset (see `MPEViewer`).

    Example:
        >>> import jax, jax.numpy as jnp, jaxmarl_envs
        >>> env = jaxmarl_envs.make("mpe-simple_spread")
        >>> state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
        >>> ts.observation.agents_view.shape
        (3, 18)
        >>> state, ts = jax.jit(env.step)(state, jnp.array([1, 2, 0], jnp.int32))

    Args:
        scenario: a registered scenario name (see `jaxmarl_envs.mpe.SCENARIOS`) or a
            `Scenario` instance.
        continuous_actions: continuous (True) or discrete (False) actions, as in mpe2.
        max_cycles: steps per episode (>= 1).
        time_limit: the suite-wide name of `max_cycles`; when given it replaces it.
        generator: optional `key -> State` replacing the scenario's `reset` (fixed layouts).
        viewer: optional viewer; defaults to `MPEViewer` built on first use.
        render_size: canvas side in pixels of the default viewer (>= 64; None: 700, as
            mpe2); frames are `(size, size, 3)`. Not with `viewer`.
        **scenario_kwargs: the scenario's own arguments (e.g. `N`, `local_ratio`), with a
            scenario name only.
    """

    name = "mpe"
    render_fps = 10

    def __init__(
        self,
        scenario: str | Scenario = "simple_spread",
        continuous_actions: bool = False,
        max_cycles: int = constants.DEFAULT_MAX_CYCLES,
        time_limit: int | None = None,
        generator: Callable[[chex.PRNGKey], State] | None = None,
        viewer: Any | None = None,
        render_size: int | None = None,
        **scenario_kwargs: Any,
    ):
        if isinstance(scenario, Scenario):
            if scenario_kwargs:
                raise ValueError(
                    f"scenario keyword arguments {sorted(scenario_kwargs)} need a scenario "
                    "name, not a Scenario instance."
                )
            self.scenario = scenario
        elif isinstance(scenario, str):
            self.scenario = make_scenario(scenario, **scenario_kwargs)
        else:
            raise ValueError(f"scenario must be a name or a Scenario, got {scenario!r}.")
        if not isinstance(continuous_actions, (bool, np.bool_)):
            raise ValueError(f"continuous_actions must be a bool, got {continuous_actions!r}.")
        if time_limit is not None:
            max_cycles = check_int(time_limit, "time_limit", 1)
        self._time_limit = check_int(max_cycles, "max_cycles", 1)
        self.continuous_actions = bool(continuous_actions)
        self.generator = generator if generator is not None else self.scenario.reset
        if render_size is not None:
            if viewer is not None:
                raise ValueError("give render_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.mpe.viewer import MPEViewer

            viewer = MPEViewer(self.scenario.world, self.continuous_actions, render_size)
        self.viewer = viewer

        world = self.scenario.world
        self.world = world
        n = world.num_agents
        sizes = tuple(int(s) for s in self.scenario.obs_sizes)
        if len(sizes) != n or min(sizes) < 1:
            raise ValueError(f"scenario obs_sizes {sizes} must give one size >= 1 per agent.")
        self._obs_sizes = sizes
        if self.continuous_actions:
            self._act_sizes = world.continuous_action_sizes
        else:
            self._act_sizes = world.discrete_action_sizes
        self._max_act = max(self._act_sizes)
        self._mask = np.arange(self._max_act)[None, :] < np.array(self._act_sizes)[:, None]
        movable = world.agent_movable
        # Continuous message components start after the 5 movement entries of movable agents.
        self._comm_index = np.minimum(
            np.where(movable, constants.NUM_MOVES, 0)[:, None] + np.arange(world.dim_c)[None, :],
            self._max_act - 1,
        ).astype(np.int32)
        flat = [i * max(sizes) + j for i in range(n) for j in range(sizes[i])]
        self._true_obs_index = np.array(flat, np.int32)

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self.world.num_agents

    @property
    def agent_ids(self) -> tuple[str, ...]:
        return self.world.agent_names

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def max_cycles(self) -> int:
        return self._time_limit

    @property
    def agent_observation_sizes(self) -> tuple[int, ...]:
        """True observation size of each agent (rows of `agents_view` are padded to the max)."""
        return self._obs_sizes

    @property
    def agent_action_sizes(self) -> tuple[int, ...]:
        """Per agent: its number of discrete actions, or its true continuous action length."""
        return self._act_sizes

    @property
    def observation_spec(self) -> specs.Structured:
        n = self.num_agents
        return specs.Structured(
            Observation,
            "observation",
            # mpe2 declares (-inf, inf); the largest finite float32 bounds say the same of
            # finite values without tripping Gymnasium's checker on infinite bounds.
            agents_view=specs.BoundedArray(
                (n, max(self._obs_sizes)), np.float32, -_F32_MAX, _F32_MAX, "agents_view"
            ),
            action_mask=specs.BoundedArray((n, self._max_act), bool, False, True, "action_mask"),
        )

    @property
    def action_spec(self) -> specs.Spec:
        if self.continuous_actions:
            return specs.BoundedArray(
                (self.num_agents, self._max_act), np.float32, 0.0, 1.0, "action"
            )
        return specs.MultiDiscreteArray(np.array(self._act_sizes, np.int32), np.int32, "action")

    def global_state(self, state: State, observation: Any) -> chex.Array:
        """mpe2's `state()`: every agent's true observation concatenated, `(sum(sizes),)`."""
        return observation.agents_view.reshape(-1)[self._true_obs_index].astype(jnp.float32)

    def global_state_spec(self) -> specs.Array:
        return specs.Array((int(sum(self._obs_sizes)),), np.float32, "global_state")

    # ------------------------------------------------------------------ dynamics
    def observe(self, state: State) -> Observation:
        """The observation of any state (e.g. one copied from mpe2 or built by hand)."""
        view = self.scenario.observation(state).astype(jnp.float32)
        return Observation(agents_view=view, action_mask=jnp.asarray(self._mask))

    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples an initial state; returns it with the FIRST timestep."""
        key, sub = rng.split(key)
        state = self.generator(sub)
        state = state.replace(key=key, step_count=jnp.zeros((), jnp.int32))
        return state, restart(self.observe(state), self.num_agents)

    def decode_action(self, action: chex.Array) -> tuple[chex.Array, chex.Array]:
        """Joint action -> `(force (N, 2), message (N, dim_c))` as mpe2's `_set_action`."""
        world = self.world
        movable = world.agent_movable
        silent = world.silent[:, None]
        sens = world.sensitivity[:, None]
        if self.continuous_actions:
            a = jnp.clip(jnp.asarray(action, jnp.float32), 0.0, 1.0)
            if movable.any():
                u = jnp.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], axis=-1)
            else:
                u = jnp.zeros((self.num_agents, 2), jnp.float32)
            msg = jnp.take_along_axis(a, jnp.asarray(self._comm_index), axis=1)
        else:
            a = jnp.clip(jnp.asarray(action, jnp.int32), 0, np.array(self._act_sizes) - 1)
            move = jnp.where(movable, a % constants.NUM_MOVES, 0)
            word = jnp.where(movable, a // constants.NUM_MOVES, a)
            u = jnp.asarray(constants.MOVE_VECTORS)[move]
            msg = jax.nn.one_hot(word, world.dim_c, dtype=jnp.float32)
        u = jnp.where(movable[:, None], u * sens, 0.0)
        msg = jnp.where(silent, 0.0, msg)
        return u, msg

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """One mpe2 cycle: every agent acts, the world steps, then rewards and observations."""
        force, msg = self.decode_action(action)
        p_pos, p_vel = physics_step(self.world, state.p_pos, state.p_vel, force)
        state = state.replace(p_pos=p_pos, p_vel=p_vel, c=msg, step_count=state.step_count + 1)
        reward = self.scenario.reward(state).astype(jnp.float32)
        ratio = self.scenario.local_ratio
        if ratio is not None:
            glob = self.scenario.global_reward(state).astype(jnp.float32)
            reward = scaled(glob, 1.0 - ratio) + scaled(reward, ratio)
        truncated = state.step_count >= self._time_limit
        terminated = jnp.logical_and(self.scenario.is_terminal(state), ~truncated)
        return state, make_timestep(self.observe(state), reward, terminated, truncated)

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(700, 700, 3)` uint8 drawn as mpe2 draws it."""
        if self.viewer is None:
            from jaxmarl_envs.mpe.viewer import MPEViewer

            self.viewer = MPEViewer(self.world, continuous_actions=self.continuous_actions)
        return self.viewer.render(state)

    def close(self) -> None:
        if self.viewer is not None:
            self.viewer.close()

    def __repr__(self) -> str:
        kind = "continuous" if self.continuous_actions else "discrete"
        return f"MPE({self.scenario.name!r}, num_agents={self.num_agents}, {kind})"
