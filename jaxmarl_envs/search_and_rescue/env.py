"""Search-and-Rescue in pure JAX, matching Jumanji 1.1.2's `SearchAndRescue-v0`: searchers
with continuous steering look for randomly walking targets in a wrapped square arena."""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.search_and_rescue import constants as C
from jaxmarl_envs.search_and_rescue.generator import Generator, RandomGenerator
from jaxmarl_envs.search_and_rescue.types import Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart

_TWO_PI = 2 * jnp.pi


def wrapped_delta(a: chex.Array, b: chex.Array, length: float) -> chex.Array:
    """The shortest `b - a` on a circle (or torus, per coordinate) of circumference `length`."""
    x = b - a
    x_other = jnp.sign(x) * (jnp.abs(x) - length)
    return jnp.where(jnp.abs(x) < jnp.abs(x_other), x, x_other)


def wrapped_sq_distance(a: chex.Array, b: chex.Array, length: float) -> chex.Array:
    """Squared shortest distance on the torus, `(...)` from `(..., 2)` positions (the range
    test of the neighbour search Jumanji uses, with its own rounding)."""
    x = jnp.abs(a - b)
    d = jnp.where(x > 0.5 * length, length - x, x)
    return jnp.sum(jnp.square(d), axis=-1)


def _bearing(delta: chex.Array, heading: chex.Array) -> chex.Array:
    """Angle of `delta` `(..., 2)` relative to `heading` `(...)`, wrapped to `(-pi, pi]`
    (as `heading - angle`, the sign convention of Jumanji's views)."""
    phi = jnp.arctan2(delta[..., 1], delta[..., 0]) % _TWO_PI
    return wrapped_delta(phi, heading, _TWO_PI)


class SearchAndRescue(Environment[State]):
    """Search-and-Rescue: searchers steer through a wrapped arena to find moving targets.

    A pure-JAX reimplementation of Jumanji 1.1.2's `SearchAndRescue` (defaults: 2 searchers,
    40 targets, unit arena, 400 steps) with its default observation, reward and target
    dynamics: the same first state from the same reset key, the same random walk of the
    targets from the state's key, the same views, rewards and episode ends.

    - observation: `Observation`
        - agents_view: `(N, 3 V + 4)` float32 (`V = num_vision` rays spread evenly over
          `[-view_angle pi, view_angle pi]` around the heading): per channel (other
          searchers within `searcher_vision_range`, found targets and targets still to find
          within `target_vision_range`) and ray, the distance to the nearest object whose
          disc (radius `agent_radius`) the ray crosses, over the channel's range, or -1;
          then the share of targets left, `step / time_limit` and the own position over
          the arena size. The first `3 V` values are Jumanji's `searcher_views`.
        - action_mask: `(N, 2)` bool, all True.
        - targets_remaining `()`, step `()`, positions `(N, 2)`: Jumanji's other fields.
    - action: `(N, 2)` float32 in `[-1, 1]`: rotation (times `searcher_max_rotate * pi`
      radians) and acceleration (times `searcher_max_accelerate`); values outside are
      clipped, as in Jumanji. Speed stays in `[searcher_min_speed, searcher_max_speed]`.
    - reward: `(N,)` float32. A target is found by a searcher within `target_contact_range`
      whose view cone (`|bearing| <= view_angle * pi`) contains it; each newly found target
      gives 1, split equally between the searchers that found it in the same step, scaled
      by `(time_limit - t) / time_limit` at step `t` (both as Jumanji's defaults, switchable
      with `split_rewards`, `scale_rewards`).
    - termination: every target found. truncation: `time_limit` steps. Deviation: Jumanji
      reports the time limit as a termination (discount 0); we truncate (discount 1), the
      project's contract for time limits. Step types, rewards and observations are the same.
    - state: `State` with searchers `(N, ...)`, targets `(T, ...)`, key and step count.

    Dynamics: headings turn, speeds change (clipped), searchers move `speed` along their
    heading; target velocities get Gaussian kicks (`target_acc_std`) and are capped in norm
    at `target_vel_max`; every position wraps around the arena.

    Example:
        >>> import jax, jaxmarl_envs
        >>> env = jaxmarl_envs.make("SearchAndRescue-v0")
        >>> state, ts = env.reset(jax.random.PRNGKey(0))
        >>> state, ts = jax.jit(env.step)(state, jax.numpy.zeros((2, 2)))
        >>> ts.observation.agents_view.shape
        (2, 388)
    """

    name = "search_and_rescue"

    def __init__(
        self,
        num_searchers: int = C.DEFAULTS["num_searchers"],
        num_targets: int = C.DEFAULTS["num_targets"],
        env_size: float = C.DEFAULTS["env_size"],
        target_contact_range: float = C.DEFAULTS["target_contact_range"],
        searcher_max_rotate: float = C.DEFAULTS["searcher_max_rotate"],
        searcher_max_accelerate: float = C.DEFAULTS["searcher_max_accelerate"],
        searcher_min_speed: float = C.DEFAULTS["searcher_min_speed"],
        searcher_max_speed: float = C.DEFAULTS["searcher_max_speed"],
        time_limit: int = C.DEFAULTS["time_limit"],
        num_vision: int = C.DEFAULTS["num_vision"],
        searcher_vision_range: float = C.DEFAULTS["searcher_vision_range"],
        target_vision_range: float = C.DEFAULTS["target_vision_range"],
        view_angle: float = C.DEFAULTS["view_angle"],
        agent_radius: float | None = None,
        target_acc_std: float = C.DEFAULTS["target_acc_std"],
        target_vel_max: float = C.DEFAULTS["target_vel_max"],
        split_rewards: bool = True,
        scale_rewards: bool = True,
        generator: Generator | None = None,
        viewer: Any | None = None,
    ):
        """Builds the environment; every argument is checked here (ValueError naming it).

        Args:
            num_searchers, num_targets, env_size: scenario (ignored with `generator`).
            target_contact_range: distance at which a searcher finds a target.
            searcher_max_rotate: largest turn per step, a fraction of pi in `[0, 1]`.
            searcher_max_accelerate: largest speed change per step.
            searcher_min_speed, searcher_max_speed: speed bounds.
            time_limit: steps until truncation.
            num_vision: rays per view channel.
            searcher_vision_range, target_vision_range: view ranges per channel.
            view_angle: half the view cone, a fraction of pi in `(0, 1]`.
            agent_radius: visual radius of searchers and targets (default: the contact range).
            target_acc_std, target_vel_max: the targets' random walk.
            split_rewards: share a target's reward among simultaneous finders.
            scale_rewards: reward decays linearly to 0 at the time limit.
            generator: first-state sampler (default `RandomGenerator`).
            viewer: object with `render(state) -> uint8 (H, W, 3)` (default
                `SearchAndRescueViewer`).
        """
        if generator is None:
            generator = RandomGenerator(num_searchers, num_targets, env_size)
        elif not isinstance(generator, Generator):
            raise ValueError(
                f"generator must be a search_and_rescue Generator, got {type(generator)}."
            )
        if agent_radius is None:
            agent_radius = target_contact_range
        size = generator.env_size

        def positive(name: str, value: float, upper: float | None = None) -> float:
            if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
            if upper is not None and value > upper:
                raise ValueError(f"{name} must be at most {upper}, got {value!r}.")
            return float(value)

        self.target_contact_range = positive("target_contact_range", target_contact_range, size)
        self.searcher_max_rotate = positive("searcher_max_rotate", searcher_max_rotate, 1.0)
        self.searcher_max_accelerate = positive("searcher_max_accelerate", searcher_max_accelerate)
        self.searcher_min_speed = positive("searcher_min_speed", searcher_min_speed)
        self.searcher_max_speed = positive("searcher_max_speed", searcher_max_speed)
        if self.searcher_min_speed > self.searcher_max_speed:
            raise ValueError(
                f"searcher_min_speed={searcher_min_speed} exceeds "
                f"searcher_max_speed={searcher_max_speed}."
            )
        self.searcher_vision_range = positive("searcher_vision_range", searcher_vision_range, size)
        self.target_vision_range = positive("target_vision_range", target_vision_range, size)
        self.view_angle = positive("view_angle", view_angle, 1.0)
        self.agent_radius = positive("agent_radius", agent_radius)
        if (
            isinstance(target_acc_std, bool)
            or not np.isfinite(target_acc_std)
            or (target_acc_std < 0)
        ):
            raise ValueError(f"target_acc_std must be >= 0, got {target_acc_std!r}.")
        self.target_acc_std = float(target_acc_std)
        self.target_vel_max = positive("target_vel_max", target_vel_max)
        if isinstance(time_limit, bool) or int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be a positive integer, got {time_limit!r}.")
        if isinstance(num_vision, bool) or int(num_vision) != num_vision or num_vision < 1:
            raise ValueError(f"num_vision must be a positive integer, got {num_vision!r}.")
        self._time_limit = int(time_limit)
        self.num_vision = int(num_vision)
        self.split_rewards = bool(split_rewards)
        self.scale_rewards = bool(scale_rewards)
        self.generator = generator
        self.env_size = size
        self._viewer = viewer
        n = generator.num_searchers
        half = self.view_angle * math.pi
        # The ray angles, exactly as jnp.linspace makes them.
        self._rays = np.asarray(jnp.linspace(-half, half, self.num_vision, endpoint=True))
        self._others = ~np.eye(n, dtype=bool)  # (N, N): a searcher never sees itself

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self.generator.num_searchers

    @property
    def num_targets(self) -> int:
        return self.generator.num_targets

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def obs_dim(self) -> int:
        return C.NUM_CHANNELS * self.num_vision + C.EXTRA_FEATURES

    @property
    def observation_spec(self) -> specs.Structured:
        n = self.num_agents
        return specs.Structured(
            Observation,
            "observation",
            agents_view=specs.BoundedArray((n, self.obs_dim), np.float32, -1.0, 1.0, "agents_view"),
            action_mask=specs.BoundedArray((n, C.ACTION_DIM), bool, False, True, "action_mask"),
            targets_remaining=specs.BoundedArray((), np.float32, 0.0, 1.0, "targets_remaining"),
            step=specs.BoundedArray((), np.int32, 0, self._time_limit, "step"),
            positions=specs.BoundedArray((n, 2), np.float32, 0.0, 1.0, "positions"),
        )

    @property
    def action_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((self.num_agents, C.ACTION_DIM), np.float32, -1.0, 1.0, "action")

    # ------------------------------------------------------------------ reset / step
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples searchers and targets with the generator."""
        state = self.generator(key, self.searcher_min_speed, self.searcher_max_speed)
        return state, restart(self._observe(state), self.num_agents)

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """Steers and moves the searchers, walks the targets, marks and rewards finds."""
        size = self.env_size
        key, walk_key = jax.random.split(state.key)

        # Searchers: turn, change speed, move; all positions wrap around the arena.
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        rotation = action[:, 0] * self.searcher_max_rotate * jnp.pi
        heading = (state.searcher_heading + rotation) % _TWO_PI
        speed = jnp.clip(
            state.searcher_speed + action[:, 1] * self.searcher_max_accelerate,
            self.searcher_min_speed,
            self.searcher_max_speed,
        )
        step_xy = jnp.stack([speed * jnp.cos(heading), speed * jnp.sin(heading)], axis=-1)
        pos = (state.searcher_pos + step_xy) % size

        # Targets: a capped Gaussian random walk.
        vel = state.target_vel + self.target_acc_std * jax.random.normal(
            walk_key, state.target_pos.shape
        )
        norm = jnp.sqrt(jnp.sum(vel * vel, axis=1))[:, None]
        vel = jnp.where(norm > self.target_vel_max, self.target_vel_max * vel / norm, vel)
        target_pos = (state.target_pos + vel) % size

        # Finds: in contact range, inside the view cone, not found before.
        sq = wrapped_sq_distance(pos[:, None, :], target_pos[None, :, :], size)  # (N, T)
        bearing = _bearing(
            wrapped_delta(pos[:, None, :], target_pos[None, :, :], size), heading[:, None]
        )
        cone = self.view_angle * jnp.pi
        finds = (
            (sq <= self.target_contact_range**2)
            & (bearing >= -cone)
            & (bearing <= cone)
            & ~state.target_found[None, :]
        )  # (N, T)
        credit = finds.astype(jnp.float32)
        if self.split_rewards:
            finders = jnp.sum(credit, axis=0, keepdims=True)
            credit = jnp.where(finders > 0, credit / finders, credit)
        reward = jnp.sum(credit, axis=1)
        if self.scale_rewards:
            reward = (self._time_limit - state.step_count) / self._time_limit * reward
        found = state.target_found | jnp.any(finds, axis=0)

        new = State(
            searcher_pos=pos,
            searcher_heading=heading,
            searcher_speed=speed,
            target_pos=target_pos,
            target_vel=vel,
            target_found=found,
            key=key,
            step_count=state.step_count + 1,
        )
        terminated = jnp.all(found)
        truncated = new.step_count >= self._time_limit
        return new, make_timestep(self._observe(new), reward, terminated, truncated)

    # ------------------------------------------------------------------ observation
    def _channel_view(self, pos, heading, other_pos, visible, vision_range) -> chex.Array:
        """`(N, V)`: per ray the nearest visible object crossing it (over the range), or -1.

        Args:
            pos: `(N, 2)` viewers; heading: `(N,)`; other_pos: `(M, 2)` objects;
            visible: `(N, M)` bool, objects this channel shows to each viewer.
        """
        size = self.env_size
        delta = wrapped_delta(pos[:, None, :], other_pos[None, :, :], size)  # (N, M, 2)
        dist = jnp.sqrt(jnp.sum(delta * delta, axis=-1))
        bearing = _bearing(delta, heading[:, None])
        half_width = jnp.arctan2(self.agent_radius, dist)
        left, right = bearing - half_width, bearing + half_width
        in_range = wrapped_sq_distance(pos[:, None, :], other_pos[None, :, :], size) <= (
            vision_range**2
        )
        shown = in_range & visible
        rays = jnp.asarray(self._rays)
        hit = shown[..., None] & (left[..., None] < rays) & (rays < right[..., None])  # (N, M, V)
        nearest = jnp.min(jnp.where(hit, (dist / vision_range)[..., None], jnp.inf), axis=1)
        # The range test's rounding can leave a distance a hair above 1: keep the bound.
        return jnp.where(jnp.isinf(nearest), -1.0, jnp.minimum(nearest, 1.0))

    def _observe(self, state: State) -> Observation:
        n, size = self.num_agents, self.env_size
        pos, heading = state.searcher_pos, state.searcher_heading
        found = state.target_found
        searchers = self._channel_view(
            pos, heading, pos, jnp.asarray(self._others), self.searcher_vision_range
        )
        found_view = self._channel_view(
            pos,
            heading,
            state.target_pos,
            jnp.broadcast_to(found, (n, found.shape[0])),
            self.target_vision_range,
        )
        unfound_view = self._channel_view(
            pos,
            heading,
            state.target_pos,
            jnp.broadcast_to(~found, (n, found.shape[0])),
            self.target_vision_range,
        )
        remaining = 1.0 - jnp.sum(found) / self.num_targets
        positions = pos / size
        extra = jnp.concatenate(
            [
                jnp.broadcast_to(remaining, (n, 1)),
                jnp.broadcast_to(state.step_count / self._time_limit, (n, 1)),
                positions,
            ],
            axis=1,
        )
        view = jnp.concatenate([searchers, found_view, unfound_view, extra], axis=1)
        return Observation(
            agents_view=view.astype(jnp.float32),
            action_mask=jnp.ones((n, C.ACTION_DIM), bool),
            targets_remaining=remaining.astype(jnp.float32),
            step=state.step_count,
            positions=positions.astype(jnp.float32),
        )

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame of one unbatched state (arena, targets, searchers, cones)."""
        if self._viewer is None:
            from jaxmarl_envs.search_and_rescue.viewer import SearchAndRescueViewer

            self._viewer = SearchAndRescueViewer(self)
        return self._viewer.render(state)

    def close(self) -> None:
        if self._viewer is not None and hasattr(self._viewer, "close"):
            self._viewer.close()

    def __repr__(self) -> str:
        return (
            f"SearchAndRescue(num_searchers={self.num_agents}, num_targets={self.num_targets}, "
            f"time_limit={self._time_limit})"
        )
