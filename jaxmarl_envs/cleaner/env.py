"""Cleaner in pure JAX, matching Jumanji 1.1.2's `Cleaner-v0` step for step."""

from __future__ import annotations

import math
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.cleaner import constants as C
from jaxmarl_envs.cleaner.generator import Generator, RandomGenerator, compute_action_mask
from jaxmarl_envs.cleaner.types import Observation, State
from jaxmarl_envs.env import Environment
from jaxmarl_envs.types import TimeStep, make_timestep, restart


class Cleaner(Environment[State]):
    """Cleaner: agents walk a maze and clean every dirty tile they step on.

    A pure-JAX reimplementation of Jumanji 1.1.2's `Cleaner` (`Cleaner-v0`), identical in
    dynamics, observation fields, masks, rewards and episode ends (see "Deviations"). The
    default generator draws Jumanji's recursive-division mazes (for the same key, Jumanji's
    own initial state); all agents start in the top-left corner, whose tile starts clean.

    - observation: `Observation`
        - agents_view: "vector" (default): `(N, 4 * R * C)` float32, per agent four
          row-major `R x C` planes: dirty tile, wall, this agent's cell, number of other
          agents on the cell. "grid": the same as `(N, 4, R, C)`. (Jumanji has no per-agent
          view; networks read this one.)
        - action_mask: `(N, 4)` bool, a move is legal if it stays on the grid and does not
          enter a wall (Jumanji's mask).
        - grid: `(R, C)` int8, 0 dirty, 1 clean, 2 wall (Jumanji's `grid`).
        - agents_locations: `(N, 2)` int32 `(row, col)` (Jumanji's `agents_locations`).
        - step_count: `()` int32.
    - action: `(N,)` int32 in {0: up, 1: right, 2: down, 3: left}. Agents may share a cell.
      An illegal (masked) move leaves that agent in place and ends the episode (Jumanji's
      rule).
    - reward: `(N,)` float32, the same for every agent: the number of tiles cleaned this
      step minus `penalty_per_timestep` (0.5). Jumanji returns it as a scalar.
    - termination: every tile is clean, or some agent took an illegal move (discount 0).
      truncation: after `time_limit` steps (default `R * C`), discount 1.
    - state: `State` with the grid `(R, C)`, agent cells `(N, 2)`, action mask `(N, 4)`,
      step count and PRNG key.
    - extras: `ratio_dirty_tiles` (dirty / non-wall tiles) and `num_dirty_tiles`, as Jumanji.

    Deviations: (1) Jumanji reports the time limit as a termination (discount 0); here it is
    a truncation (discount 1, `truncated` set) unless the episode also terminated on that
    step. (2) Jumanji's mask compares the row with `num_cols` and the column with
    `num_rows`; on non-square grids it can allow moves off the grid. Ours checks each
    coordinate against its own bound (the two agree on square grids, which every registered
    id uses).

    Example:
        >>> import jax, jaxmarl_envs
        >>> env = jaxmarl_envs.make("clean-10x10x3a")
        >>> state, ts = env.reset(jax.random.PRNGKey(0))
        >>> state, ts = jax.jit(env.step)(state, jax.numpy.array([1, 2, 1]))
        >>> ts.observation.agents_view.shape
        (3, 400)
    """

    name = "cleaner"

    def __init__(
        self,
        num_rows: int = 10,
        num_cols: int = 10,
        num_agents: int = 3,
        time_limit: int | None = None,
        penalty_per_timestep: float = C.DEFAULT_PENALTY,
        observation_type: str = "vector",
        generator: Generator | None = None,
        viewer: Any | None = None,
        render_cell_size: int | None = None,
    ):
        """Builds the environment; every argument is checked here (ValueError naming it).

        Args:
            num_rows, num_cols: grid size (>= 2 each).
            num_agents: number of agents (>= 1).
            time_limit: steps until truncation (default `num_rows * num_cols`, Jumanji's).
            penalty_per_timestep: subtracted from the reward every step (finite).
            observation_type: "vector" (flat per-agent view) or "grid".
            generator: initial-state sampler; when given, its grid size and number of agents
                define the scenario (the corresponding arguments are ignored).
            viewer: object with `render(state) -> uint8 (H, W, 3)` (default `CleanerViewer`).
            render_cell_size: pixels per cell of the default viewer (>= 8). Not with `viewer`.
        """
        if generator is None:
            generator = RandomGenerator(num_rows, num_cols, num_agents)
        elif not isinstance(generator, Generator):
            raise ValueError(f"generator must be a cleaner Generator, got {type(generator)}.")
        rows, cols = generator.num_rows, generator.num_cols
        if time_limit is None:
            time_limit = rows * cols
        if int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be a positive integer, got {time_limit!r}.")
        try:
            penalty = float(penalty_per_timestep)
        except (TypeError, ValueError):
            penalty = math.nan
        if not math.isfinite(penalty):
            raise ValueError(
                f"penalty_per_timestep must be a finite number, got {penalty_per_timestep!r}."
            )
        if observation_type not in C.OBSERVATION_TYPES:
            raise ValueError(
                f"observation_type must be one of {C.OBSERVATION_TYPES}, got {observation_type!r}."
            )
        self.generator = generator
        self.num_rows, self.num_cols = rows, cols
        self._num_agents = generator.num_agents
        self._time_limit = int(time_limit)
        self.penalty_per_timestep = penalty
        self.observation_type = observation_type
        if render_cell_size is not None:
            if viewer is not None:
                raise ValueError("give render_cell_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.cleaner.viewer import CleanerViewer

            viewer = CleanerViewer(rows, cols, render_cell_size)
        self._viewer = viewer

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self._num_agents

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def grid_shape(self) -> tuple[int, int]:
        """`(R, C)` of the maze."""
        return self.num_rows, self.num_cols

    @property
    def num_actions(self) -> int:
        return C.NUM_ACTIONS

    @property
    def observation_spec(self) -> specs.Structured:
        n, r, c = self._num_agents, self.num_rows, self.num_cols
        high = np.ones((n, C.NUM_CHANNELS, r, c), np.float32)
        high[:, 3] = n - 1  # other agents sharing the cell
        if self.observation_type == "vector":
            high = high.reshape(n, -1)
        return specs.Structured(
            Observation,
            "observation",
            agents_view=specs.BoundedArray(high.shape, np.float32, 0.0, high, "agents_view"),
            action_mask=specs.Array((n, C.NUM_ACTIONS), bool, "action_mask"),
            grid=specs.BoundedArray((r, c), np.int8, C.DIRTY, C.WALL, "grid"),
            agents_locations=specs.BoundedArray(
                (n, 2), np.int32, 0, np.array([r - 1, c - 1], np.int32), "agents_locations"
            ),
            step_count=specs.BoundedArray((), np.int32, 0, self._time_limit, "step_count"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(
            np.full((self._num_agents,), C.NUM_ACTIONS, np.int32), np.int32, "action"
        )

    # ------------------------------------------------------------------ reset / step
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples an initial state with the generator.

        Returns:
            The state and the FIRST timestep (zero reward, discount one).
        """
        state = self.generator(key)
        return state, restart(self._observe(state), self._num_agents, self._extras(state))

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """One step of all agents with the joint `action` `(N,)`.

        Returns:
            The next state and its timestep.
        """
        n = self._num_agents
        action = jnp.asarray(action, jnp.int32)
        legal = state.action_mask[jnp.arange(n), action]  # (N,)
        moves = jnp.asarray(C.MOVES)[action] * legal[:, None]
        locations = state.agents_locations + moves
        flat = locations[:, 0] * self.num_cols + locations[:, 1]
        old = state.grid.reshape(-1)
        grid = old.at[flat].set(C.CLEAN)
        cleaned = jnp.sum(grid != old, dtype=jnp.int32)
        grid = grid.reshape(self.grid_shape)
        new_state = State(
            grid=grid,
            agents_locations=locations,
            action_mask=compute_action_mask(grid, locations),
            step_count=state.step_count + 1,
            key=state.key,
        )
        reward = cleaned.astype(jnp.float32) - jnp.float32(self.penalty_per_timestep)
        terminated = ~jnp.all(legal) | ~jnp.any(grid == C.DIRTY)
        truncated = new_state.step_count >= self._time_limit
        ts = make_timestep(
            self._observe(new_state),
            jnp.full((n,), reward, jnp.float32),
            terminated,
            truncated,
            self._extras(new_state),
        )
        return new_state, ts

    # ------------------------------------------------------------------ observations
    def _observe(self, state: State) -> Observation:
        n, cells = self._num_agents, self.num_rows * self.num_cols
        tiles = state.grid.reshape(-1)
        flat = state.agents_locations[:, 0] * self.num_cols + state.agents_locations[:, 1]
        own = (flat[:, None] == jnp.arange(cells, dtype=jnp.int32)[None, :]).astype(jnp.float32)
        others = jnp.sum(own, axis=0)[None, :] - own  # (N, cells)
        shared = jnp.stack([tiles == C.DIRTY, tiles == C.WALL]).astype(jnp.float32)  # (2, cells)
        view = jnp.concatenate(
            [jnp.broadcast_to(shared[None], (n, 2, cells)), own[:, None], others[:, None]], axis=1
        )  # (N, 4, cells)
        if self.observation_type == "vector":
            view = view.reshape(n, -1)
        else:
            view = view.reshape(n, C.NUM_CHANNELS, self.num_rows, self.num_cols)
        return Observation(
            agents_view=view,
            action_mask=state.action_mask,
            grid=state.grid,
            agents_locations=state.agents_locations,
            step_count=state.step_count,
        )

    @staticmethod
    def _extras(state: State) -> dict:
        dirty = jnp.sum(state.grid == C.DIRTY, dtype=jnp.int32)
        floor = jnp.sum(state.grid != C.WALL, dtype=jnp.int32)
        return {
            "ratio_dirty_tiles": dirty.astype(jnp.float32) / floor.astype(jnp.float32),
            "num_dirty_tiles": dirty,
        }

    # ------------------------------------------------------------------ global state
    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """The whole maze, `(3 * R * C,)` float32: row-major planes dirty tile, wall, number
        of agents on the cell."""
        cells = self.num_rows * self.num_cols
        tiles = state.grid.reshape(-1)
        flat = state.agents_locations[:, 0] * self.num_cols + state.agents_locations[:, 1]
        count = jnp.zeros((cells,), jnp.float32).at[flat].add(1.0)
        planes = [(tiles == C.DIRTY).astype(jnp.float32), (tiles == C.WALL).astype(jnp.float32)]
        return jnp.concatenate([*planes, count])

    def global_state_spec(self) -> specs.Array:
        return specs.Array((3 * self.num_rows * self.num_cols,), np.float32, "global_state")

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(H_px, W_px, 3)` of one (unbatched) state."""
        if self._viewer is None:
            from jaxmarl_envs.cleaner.viewer import CleanerViewer

            self._viewer = CleanerViewer(self.num_rows, self.num_cols)
        return self._viewer.render(state)

    def close(self) -> None:
        if self._viewer is not None and hasattr(self._viewer, "close"):
            self._viewer.close()

    def __repr__(self) -> str:
        return (
            f"Cleaner(grid={self.grid_shape}, num_agents={self._num_agents}, "
            f"time_limit={self._time_limit}, observation_type={self.observation_type!r})"
        )
