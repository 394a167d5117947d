"""Level-Based Foraging in pure JAX, matching the original `lbforaging` 2.0.0 step for step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.lbf import constants
from jaxmarl_envs.lbf.generator import Generator, RandomGenerator
from jaxmarl_envs.lbf.types import Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart

OBSERVATION_TYPES = ("vector", "grid")


class LevelBasedForaging(Environment):
    """Level-Based Foraging (Albrecht & Ramamoorthy; Papoudakis et al. 2021), as in `lbforaging`.

    Agents with levels move on a grid and collect food. A food item is collected when the
    agents next to it (north, south, west or east) that choose LOAD together have a level
    sum at least the food's level. Every dynamic rule, observation value and reward is the
    one `lbforaging` 2.0.0 computes (tests compare them step by step).

    - observation: `Observation` with
        - `agents_view`: "vector" type, `(num_agents, 3 * num_food + k * num_agents)`
          float32 with `k = 3` (or 2 without `observe_agent_levels`). For each agent:
          first the food it sees, in row-major order, as `(row, col, level)` in the
          coordinates of its view window (`-1, -1, 0` for unused slots); then the agents it
          sees, itself first and the others in index order, as `(row, col[, level])`
          (`-1, -1[, 0]` for unused slots). The window is the agent's `sight` square clipped
          to the grid; its origin is `max(position - sight, 0)`. As in the original, agents
          count as seen when their window coordinates lie in `[0, 2 * sight]`, which near
          the top/left border reaches past the food window. 12 values per agent for
          `lbf-8x8-2p-2f-coop`. "grid" type: `(num_agents, 3, 2 * sight + 1, 2 * sight + 1)`
          float32 layers centred on the agent: agent levels (or 1s), food levels, and
          accessible cells (1 inside the grid where there is neither agent nor food).
        - `action_mask`: `(num_agents, 6)` bool, the original's valid actions: NONE always,
          a move when it stays on the grid and does not enter food, LOAD when food is
          adjacent.
        - `step_count`: `(num_agents,)` int32 steps taken in the episode.
    - action: `(num_agents,)` int32 in `[0, 6)`: NONE, NORTH, SOUTH, WEST, EAST, LOAD.
      A masked-out (or out-of-range) action is replaced by NONE, as the original does.
      Agents moving to the same cell all stay; an agent moving onto a cell whose agent
      stays also stays. As in the original, only targets are compared: an agent may
      enter the cell of an agent that tried to move but was blocked, so with three or
      more agents two agents can end up on one cell.
    - reward: `(num_agents,)` float32. When a group loads a food item, each member gets
      `level * food_level`, divided by `group_level_sum * total_food_level_spawned` when
      `normalize_reward` (then each reward lies in `[0, 1]` and the team's rewards sum to
      at most 1 over an episode, before penalties). Members of a group whose level sum is
      below the food's level each get `-penalty`. A loading agent joins the first food
      found in the original's search order (north if row > 1, south, west if col > 1,
      east); spawned food never shares a neighbour, so a group is exactly the loading
      agents next to one food (hand-made layouts with touching food, where the original's
      result depends on set iteration order, follow this order).
    - termination: all food has been collected (discount 0). Truncation: `time_limit`
      steps (50 for the registered ids, as the original registers), discount 1.
    - state: `State` with `key`, `step_count ()`, `agent_pos (N, 2)`, `agent_level (N,)`,
      `food_pos (F, 2)`, `food_level (F,)`, `food_present (F,)`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxmarl_envs
        >>> env = jaxmarl_envs.make("lbf-8x8-2p-2f-coop")
        >>> state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
        >>> ts.observation.agents_view.shape
        (2, 12)
        >>> state, ts = jax.jit(env.step)(state, jnp.array([5, 0], jnp.int32))
    """

    name = "lbf"

    def __init__(
        self,
        grid_size: int | Sequence[int] = 8,
        num_agents: int = 2,
        num_food: int = 2,
        sight: int | None = None,
        min_player_level: int | Sequence[int] = 1,
        max_player_level: int | Sequence[int] = 2,
        min_food_level: int | Sequence[int] = 1,
        max_food_level: int | Sequence[int] | None = None,
        force_coop: bool = True,
        penalty: float = 0.0,
        normalize_reward: bool = True,
        observe_agent_levels: bool = True,
        time_limit: int = constants.DEFAULT_TIME_LIMIT,
        observation_type: str = "vector",
        generator: Generator | None = None,
        viewer: Any | None = None,
        render_cell_size: int | None = None,
    ):
        """Builds the environment; raises `ValueError` naming any inconsistent argument.

        Args:
            grid_size: side of the square grid, or `(rows, cols)`.
            num_agents: number of agents (the original's `players`).
            num_food: number of food items (`max_num_food`).
            sight: view radius (>= 1); None means the grid size (full view).
            min_player_level: minimum agent level, scalar or per agent.
            max_player_level: maximum agent level, scalar or per agent.
            min_food_level: minimum food level, scalar or per food.
            max_food_level: maximum food level, scalar or per food; None means the sum of
                the three lowest agent levels of the episode.
            force_coop: every food gets its maximum level.
            penalty: subtracted from each agent of a group that fails to load.
            normalize_reward: divide rewards as the original does (see class docstring).
            observe_agent_levels: include agent levels in observations.
            time_limit: steps before truncation (>= 1).
            observation_type: "vector" (the original's default) or "grid".
            generator: samples initial states; defaults to `RandomGenerator` built from the
                arguments above (a custom one must agree with them on grid, agents, food).
            viewer: renders states; defaults to `LBFViewer` built on first use.
            render_cell_size: pixels per cell of the default viewer (>= 8; None: 48);
                frames are `(rows * size, cols * size, 3)`. Not with `viewer`.
        """
        if generator is None:
            generator = RandomGenerator(
                grid_size=grid_size,
                num_agents=num_agents,
                num_food=num_food,
                min_player_level=min_player_level,
                max_player_level=max_player_level,
                min_food_level=min_food_level,
                max_food_level=max_food_level,
                force_coop=force_coop,
            )
        else:
            from jaxmarl_envs.lbf.generator import grid_shape_of

            wanted = (grid_shape_of(grid_size), int(num_agents), int(num_food))
            got = (tuple(generator.grid_shape), generator.num_agents, generator.num_food)
            if wanted != got:
                raise ValueError(
                    f"generator has (grid, agents, food) = {got}, but the environment was "
                    f"given {wanted}."
                )
        rows, cols = generator.grid_shape
        if sight is None:
            sight = max(rows, cols)
        if int(sight) != sight or sight < 1:
            raise ValueError(f"sight must be an integer >= 1, got {sight!r}.")
        if int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be an integer >= 1, got {time_limit!r}.")
        if not np.isfinite(penalty) or penalty < 0:
            raise ValueError(f"penalty must be a finite number >= 0, got {penalty!r}.")
        if observation_type not in OBSERVATION_TYPES:
            raise ValueError(
                f"observation_type must be one of {OBSERVATION_TYPES}, got {observation_type!r}."
            )
        if render_cell_size is not None:
            if viewer is not None:
                raise ValueError("give render_cell_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.lbf.viewer import LBFViewer

            viewer = LBFViewer(rows, cols, render_cell_size)
        self.generator = generator
        self.viewer = viewer
        self.rows, self.cols = int(rows), int(cols)
        self.sight = int(sight)
        self._num_agents = generator.num_agents
        self.num_food = generator.num_food
        self.force_coop = bool(force_coop)
        self.penalty = float(penalty)
        self.normalize_reward = bool(normalize_reward)
        self.observe_agent_levels = bool(observe_agent_levels)
        self._time_limit = int(time_limit)
        self.observation_type = observation_type
        self.max_agent_level = int(generator.max_agent_level)
        self.max_food_level_bound = int(generator.max_food_level_bound)

        # Static data as numpy on self (constants inside jit).
        n = self._num_agents
        self._moves = constants.MOVES
        # Agent `a` lists itself first, then the others in index order.
        self._agent_order = np.array(
            [[a] + [b for b in range(n) if b != a] for a in range(n)], np.int32
        )
        # strictly_before[k, j]: slot j comes before slot k (for compaction ranks).
        self._before_agents = np.tril(np.ones((n, n), bool), -1)
        w = 2 * self.sight + 1
        off = np.arange(w, dtype=np.int32) - self.sight
        gr, gc = np.meshgrid(off, off, indexing="ij")
        self._window_offsets = np.stack([gr, gc], axis=-1).astype(np.int32)  # (w, w, 2)
        self._agent_feats = 3 if self.observe_agent_levels else 2

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self._num_agents

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def obs_dim(self) -> int:
        """Length of one agent's vector observation."""
        return 3 * self.num_food + self._agent_feats * self._num_agents

    @property
    def observation_spec(self) -> specs.Structured:
        n = self._num_agents
        if self.observation_type == "vector":
            lo_food = [-1, -1, 0] * self.num_food
            hi_food = [self.rows - 1, self.cols - 1, self.max_food_level_bound] * self.num_food
            if self.observe_agent_levels:
                lo_agent = [-1, -1, 0] * n
                hi_agent = [self.rows - 1, self.cols - 1, self.max_agent_level] * n
            else:
                lo_agent = [-1, -1] * n
                hi_agent = [self.rows - 1, self.cols - 1] * n
            lo = np.tile(np.asarray(lo_food + lo_agent, np.float32), (n, 1))
            hi = np.tile(np.asarray(hi_food + hi_agent, np.float32), (n, 1))
            view = specs.BoundedArray(lo.shape, np.float32, lo, hi, "agents_view")
        else:
            w = 2 * self.sight + 1
            shape = (n, constants.NUM_GRID_LAYERS, w, w)
            hi = np.ones(shape, np.float32)
            if self.observe_agent_levels:
                hi[:, constants.AGENT_LAYER] = self.max_agent_level
            hi[:, constants.FOOD_LAYER] = self.max_food_level_bound
            view = specs.BoundedArray(shape, np.float32, 0.0, hi, "agents_view")
        return specs.Structured(
            Observation,
            "observation",
            agents_view=view,
            action_mask=specs.BoundedArray(
                (n, constants.NUM_ACTIONS), bool, False, True, "action_mask"
            ),
            step_count=specs.BoundedArray((n,), np.int32, 0, self._time_limit, "step_count"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(
            np.full((self._num_agents,), constants.NUM_ACTIONS), np.int32, "action"
        )

    # ------------------------------------------------------------------ dynamics
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples an initial state with the generator.

        Args:
            key: PRNG key.

        Returns:
            `(state, timestep)` with a FIRST timestep.
        """
        state = self.generator(key)
        return state, restart(self._observe(state), self._num_agents)

    def _food_deltas(self, state: State, agent_pos: chex.Array):
        """Per (agent, food) displacement `(N, F, 2)` food minus agent, and presence `(1, F)`."""
        delta = state.food_pos[None, :, :] - agent_pos[:, None, :]
        return delta, state.food_present[None, :]

    def _action_mask(self, state: State) -> chex.Array:
        """`(N, 6)` bool: the original's `_valid_actions`."""
        delta, present = self._food_deltas(state, state.agent_pos)
        dr, dc = delta[..., 0], delta[..., 1]
        food_n = jnp.any(present & (dr == -1) & (dc == 0), axis=1)
        food_s = jnp.any(present & (dr == 1) & (dc == 0), axis=1)
        food_w = jnp.any(present & (dr == 0) & (dc == -1), axis=1)
        food_e = jnp.any(present & (dr == 0) & (dc == 1), axis=1)
        r, c = state.agent_pos[:, 0], state.agent_pos[:, 1]
        return jnp.stack(
            [
                jnp.ones_like(food_n),
                (r > 0) & ~food_n,
                (r < self.rows - 1) & ~food_s,
                (c > 0) & ~food_w,
                (c < self.cols - 1) & ~food_e,
                food_n | food_s | food_w | food_e,
            ],
            axis=1,
        )

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """One step of the original's rules.

        Args:
            state: current state.
            action: `(num_agents,)` integer actions.

        Returns:
            `(next_state, timestep)`.
        """
        action = jnp.asarray(action, jnp.int32)
        mask = self._action_mask(state)
        in_range = (action >= 0) & (action < constants.NUM_ACTIONS)
        safe = jnp.where(in_range, action, constants.NONE)
        allowed = jnp.take_along_axis(mask, safe[:, None], axis=1)[:, 0]
        act = jnp.where(allowed, safe, constants.NONE)

        # Movement: agents aiming at the same cell (staying agents aim at their own) all stay.
        pos = state.agent_pos
        target = pos + jnp.asarray(self._moves)[act]
        same = jnp.all(target[:, None, :] == target[None, :, :], axis=-1)
        alone = jnp.sum(same, axis=1) == 1
        pos = jnp.where(alone[:, None], target, pos)

        # Loading: each loading agent picks its adjacent food in the original's order
        # (north if row > 1, south, west if col > 1, east); the group of a food is the
        # loading agents that picked it.
        loading = act == constants.LOAD
        delta, present = self._food_deltas(state, pos)
        dr, dc = delta[..., 0], delta[..., 1]
        r, c = pos[:, :1], pos[:, 1:]
        adj_n = present & (dr == -1) & (dc == 0) & (r > 1)
        adj_s = present & (dr == 1) & (dc == 0)
        adj_w = present & (dr == 0) & (dc == -1) & (c > 1)
        adj_e = present & (dr == 0) & (dc == 1)
        has_n = jnp.any(adj_n, axis=1, keepdims=True)
        has_s = jnp.any(adj_s, axis=1, keepdims=True)
        has_w = jnp.any(adj_w, axis=1, keepdims=True)
        chosen = jnp.where(has_n, adj_n, jnp.where(has_s, adj_s, jnp.where(has_w, adj_w, adj_e)))
        chosen = chosen & loading[:, None]  # (N, F)
        level = state.agent_level
        group_level = jnp.sum(jnp.where(chosen, level[:, None], 0), axis=0)  # (F,)
        attempted = jnp.any(chosen, axis=0)
        loaded = attempted & (group_level >= state.food_level)
        if self.normalize_reward:
            denom = group_level.astype(jnp.float32) * state.food_spawned.astype(jnp.float32)
            denom = jnp.where(loaded, denom, 1.0)
        else:
            denom = jnp.ones_like(group_level, jnp.float32)
        share = (level[:, None] * state.food_level[None, :]).astype(jnp.float32) / denom
        per_food = jnp.where(loaded[None, :], share, -self.penalty)
        reward = jnp.sum(jnp.where(chosen, per_food, 0.0), axis=1)

        step_count = state.step_count + 1
        state = state.replace(
            step_count=step_count,
            agent_pos=pos,
            food_present=state.food_present & ~loaded,
        )
        terminated = ~jnp.any(state.food_present)
        truncated = step_count >= self._time_limit
        return state, make_timestep(self._observe(state), reward, terminated, truncated)

    # ------------------------------------------------------------------ observations
    def _observe(self, state: State) -> Observation:
        if self.observation_type == "vector":
            view = self._vector_view(state)
        else:
            view = self._grid_view(state)
        return Observation(
            agents_view=view,
            action_mask=self._action_mask(state),
            step_count=jnp.full((self._num_agents,), state.step_count, jnp.int32),
        )

    def _vector_view(self, state: State) -> chex.Array:
        """`(N, obs_dim)`: the original's `_make_gym_obs` vector for every agent."""
        s = self.sight
        pos = state.agent_pos
        origin = jnp.maximum(pos - s, 0)  # (N, 2) top-left of each agent's window

        # Food: visible when inside the window; slots in row-major order of the grid.
        rel_food = state.food_pos[None, :, :] - origin[:, None, :]  # (N, F, 2)
        near = jnp.all(jnp.abs(state.food_pos[None, :, :] - pos[:, None, :]) <= s, axis=-1)
        seen_food = near & state.food_present[None, :]  # (N, F)
        order = state.food_pos[:, 0] * self.cols + state.food_pos[:, 1]  # (F,)
        earlier = order[None, :] < order[:, None]  # (F, F): g is before f
        food_slot = jnp.sum(seen_food[:, None, :] & earlier[None], axis=-1)  # (N, F)
        food_vals = jnp.concatenate(
            [
                rel_food,
                jnp.broadcast_to(state.food_level[None, :, None], rel_food.shape[:2] + (1,)),
            ],
            axis=-1,
        ).astype(jnp.float32)  # (N, F, 3)
        food_obs = self._compact(seen_food, food_slot, food_vals, self.num_food, [-1.0, -1.0, 0.0])

        # Agents: self first, then the others in index order, when inside [0, 2s].
        idx = jnp.asarray(self._agent_order)  # (N, N)
        rel = pos[idx] - origin[:, None, :]  # (N, N, 2) in each agent's listing order
        seen = jnp.all((rel >= 0) & (rel <= 2 * s), axis=-1)  # (N, N)
        slot = jnp.sum(seen[:, None, :] & jnp.asarray(self._before_agents)[None], axis=-1)
        feats = [rel.astype(jnp.float32)]
        default = [-1.0, -1.0]
        if self.observe_agent_levels:
            feats.append(state.agent_level[idx][..., None].astype(jnp.float32))
            default.append(0.0)
        agent_vals = jnp.concatenate(feats, axis=-1)
        agent_obs = self._compact(seen, slot, agent_vals, self._num_agents, default)
        n = self._num_agents
        return jnp.concatenate([food_obs.reshape(n, -1), agent_obs.reshape(n, -1)], axis=-1)

    @staticmethod
    def _compact(seen, slot, values, num_slots, default):
        """Packs the seen items of each agent into the first slots.

        Args:
            seen: `(N, K)` bool.
            slot: `(N, K)` int, target slot of each seen item.
            values: `(N, K, D)` item features.
            num_slots: number of output slots.
            default: `D` values of an empty slot.

        Returns:
            `(N, num_slots, D)` float32.
        """
        hit = seen[:, None, :] & (slot[:, None, :] == jnp.arange(num_slots)[None, :, None])
        packed = jnp.sum(jnp.where(hit[..., None], values[:, None, :, :], 0.0), axis=2)
        filled = jnp.any(hit, axis=2)
        return jnp.where(filled[..., None], packed, jnp.asarray(default, jnp.float32))

    def _grid_view(self, state: State) -> chex.Array:
        """`(N, 3, 2s+1, 2s+1)`: the original's grid observation for every agent."""
        n = self._num_agents
        cells = state.agent_pos[:, None, None, :] + jnp.asarray(self._window_offsets)[None]
        inside = (
            (cells[..., 0] >= 0)
            & (cells[..., 0] < self.rows)
            & (cells[..., 1] >= 0)
            & (cells[..., 1] < self.cols)
        )  # (N, w, w)
        # Agents layer: where agents share a cell the original writes the last one's level.
        same = jnp.all(state.agent_pos[:, None, :] == state.agent_pos[None, :, :], axis=-1)
        later = jnp.triu(jnp.ones((n, n), bool), 1)
        last = ~jnp.any(same & later, axis=1)  # (N,)
        if self.observe_agent_levels:
            agent_value = state.agent_level.astype(jnp.float32)
        else:
            agent_value = jnp.ones((n,), jnp.float32)
        at_agent = jnp.all(cells[:, :, :, None, :] == state.agent_pos[None, None, None], axis=-1)
        agents_layer = jnp.sum(jnp.where(at_agent & last, agent_value, 0.0), axis=-1)
        at_food = jnp.all(cells[:, :, :, None, :] == state.food_pos[None, None, None], axis=-1)
        at_food = at_food & state.food_present
        food_layer = jnp.sum(jnp.where(at_food, state.food_level.astype(jnp.float32), 0.0), -1)
        access = inside & ~jnp.any(at_agent, axis=-1) & ~jnp.any(at_food, axis=-1)
        return jnp.stack([agents_layer, food_layer, access.astype(jnp.float32)], axis=1)

    # ------------------------------------------------------------------ global state
    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """The full state for centralised critics, `(3 * F + 3 * N + 1,)` float32.

        Each food slot as `(row, col, level)` (`-1, -1, 0` once collected or never
        spawned), each agent as `(row, col, level)`, then `step_count / time_limit`.
        """
        present = state.food_present[:, None]
        food = jnp.concatenate([state.food_pos, state.food_level[:, None]], axis=1)
        food = jnp.where(present, food, jnp.asarray([-1, -1, 0])).astype(jnp.float32)
        agents = jnp.concatenate([state.agent_pos, state.agent_level[:, None]], axis=1)
        frac = (state.step_count / self._time_limit).astype(jnp.float32)[None]
        return jnp.concatenate([food.reshape(-1), agents.reshape(-1).astype(jnp.float32), frac])

    @property
    def integer_valued(self) -> frozenset[str]:
        # Positions, levels and flags; the global state ends with a fraction of the episode.
        return frozenset({"agents_view"})

    def global_state_spec(self) -> specs.BoundedArray:
        f, n = self.num_food, self._num_agents
        lo = np.asarray([-1, -1, 0] * f + [0, 0, 1] * n + [0], np.float32)
        hi = np.asarray(
            [self.rows - 1, self.cols - 1, self.max_food_level_bound] * f
            + [self.rows - 1, self.cols - 1, self.max_agent_level] * n
            + [1],
            np.float32,
        )
        return specs.BoundedArray(lo.shape, np.float32, lo, hi, "global_state")

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(height, width, 3)` uint8 of one (unbatched) state."""
        if self.viewer is None:
            from jaxmarl_envs.lbf.viewer import LBFViewer

            self.viewer = LBFViewer(self.rows, self.cols)
        return self.viewer.render(state)

    def close(self) -> None:
        if self.viewer is not None and hasattr(self.viewer, "close"):
            self.viewer.close()

    def __repr__(self) -> str:
        return (
            f"LevelBasedForaging(grid={self.rows}x{self.cols}, num_agents={self._num_agents}, "
            f"num_food={self.num_food}, sight={self.sight}, force_coop={self.force_coop}, "
            f"penalty={self.penalty}, observation_type={self.observation_type!r})"
        )
