"""Initial-state generators of Cleaner (swappable): random recursive-division mazes, fixed
layouts, and `make_state` to build a consistent state from a grid and agent cells."""

from __future__ import annotations

import abc

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.cleaner import constants as C
from jaxmarl_envs.cleaner.types import State


def compute_action_mask(grid: chex.Array, agents_locations: chex.Array) -> chex.Array:
    """`(N, 4)` bool: the move stays on the grid and does not enter a wall.

    Args:
        grid: `(R, C)` tiles.
        agents_locations: `(N, 2)` `(row, col)` cells.
    """
    rows, cols = grid.shape
    target = agents_locations[:, None, :] + jnp.asarray(C.MOVES)[None]  # (N, 4, 2)
    r, c = target[..., 0], target[..., 1]
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    flat = jnp.where(inside, r * cols + c, 0)
    return inside & (grid.reshape(-1)[flat] != C.WALL)


def make_state(
    grid: chex.Array,
    agents_locations: chex.Array,
    key: chex.PRNGKey,
    step_count: chex.Array | int = 0,
) -> State:
    """A consistent `State` (action mask included) from tiles and agent cells; jittable.

    Args:
        grid: `(R, C)` tiles (0 dirty, 1 clean, 2 wall).
        agents_locations: `(N, 2)` `(row, col)` cells (off walls; several agents may share one).
        key: PRNG key kept in the state.
        step_count: steps already taken.
    """
    grid = jnp.asarray(grid, jnp.int8)
    agents_locations = jnp.asarray(agents_locations, jnp.int32).reshape(-1, 2)
    return State(
        grid=grid,
        agents_locations=agents_locations,
        action_mask=compute_action_mask(grid, agents_locations),
        step_count=jnp.asarray(step_count, jnp.int32),
        key=key,
    )


def random_maze(key: chex.PRNGKey, num_rows: int, num_cols: int) -> chex.Array:
    """`(num_rows, num_cols)` bool walls of a recursive-division maze.

    The same distribution, and for the same key the same maze, as Jumanji's
    `maze_generation.generate_maze(num_cols, num_rows, key)`: chambers `(x, y, width,
    height)` are split last-in first-out; a chamber at least as wide as high gets a vertical
    wall at a random odd column offset with a passage at a random even row offset,
    otherwise a horizontal wall (odd row offset, passage at an even column offset); the two
    sub-chambers are pushed (left/top first) when both of their sides exceed one cell.
    """
    capacity = num_rows * num_cols
    rows = jnp.arange(num_rows, dtype=jnp.int32)[:, None]
    cols = jnp.arange(num_cols, dtype=jnp.int32)[None, :]
    stack = jnp.zeros((capacity, 4), jnp.int32).at[0].set(jnp.array([0, 0, num_cols, num_rows]))

    def push(stack, top, chamber):
        keep = (chamber[2] > 1) & (chamber[3] > 1)
        stack = stack.at[top].set(jnp.where(keep, chamber, stack[top]))
        return stack, top + keep.astype(jnp.int32)

    def body(carry):
        walls, stack, top, key = carry
        top = top - 1
        x, y, width, height = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        key, wall_key, passage_key = jax.random.split(key, 3)
        vertical = width >= height  # a vertical wall splits the chamber left | right
        span = jnp.where(vertical, width, height)
        across = jnp.where(vertical, height, width)
        offset = jax.random.randint(wall_key, (), 0, span // 2) * 2 + 1
        passage = jax.random.randint(passage_key, (), 0, (across + 1) // 2) * 2
        in_cols = (cols >= x) & (cols < x + width)
        in_rows = (rows >= y) & (rows < y + height)
        v_wall = (cols == x + offset) & in_rows & (rows != y + passage)
        h_wall = (rows == y + offset) & in_cols & (cols != x + passage)
        walls = walls | jnp.where(vertical, v_wall, h_wall)
        first = jnp.where(
            vertical,
            jnp.stack([x, y, offset, height]),
            jnp.stack([x, y, width, offset]),
        )
        second = jnp.where(
            vertical,
            jnp.stack([x + offset + 1, y, width - offset - 1, height]),
            jnp.stack([x, y + offset + 1, width, height - offset - 1]),
        )
        stack, top = push(stack, top, first)
        stack, top = push(stack, top, second)
        return walls, stack, top, key

    walls = jnp.zeros((num_rows, num_cols), bool)
    init = (walls, stack, jnp.ones((), jnp.int32), key)
    walls, *_ = jax.lax.while_loop(lambda c: c[2] > 0, body, init)
    return walls


class Generator(abc.ABC):
    """Samples initial states for one grid size and number of agents.

    Args:
        num_rows, num_cols: grid size.
        num_agents: number of agents.
    """

    def __init__(self, num_rows: int, num_cols: int, num_agents: int):
        for name, value, low in (
            ("num_rows", num_rows, 2),
            ("num_cols", num_cols, 2),
            ("num_agents", num_agents, 1),
        ):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        self.num_rows = int(num_rows)
        self.num_cols = int(num_cols)
        self.num_agents = int(num_agents)

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> State:
        """An initial `State` (step count 0) from `key`."""


class RandomGenerator(Generator):
    """Jumanji's distribution (and, for the same key, Jumanji's state): a random maze, every
    non-wall tile dirty except the top-left one, all agents in the top-left corner."""

    def __call__(self, key: chex.PRNGKey) -> State:
        maze_key, state_key = jax.random.split(key)
        walls = random_maze(maze_key, self.num_rows, self.num_cols)
        grid = jnp.where(walls, C.WALL, C.DIRTY).astype(jnp.int8).at[0, 0].set(C.CLEAN)
        locations = jnp.zeros((self.num_agents, 2), jnp.int32)
        return make_state(grid, locations, state_key)


class FixedGenerator(Generator):
    """Always the same start: a given grid and agent cells (for tests and curricula).

    Args:
        grid: `(R, C)` tiles (0 dirty, 1 clean, 2 wall).
        agents_locations: `(N, 2)` `(row, col)` cells, not on walls (default: all in the
            top-left corner). The tiles under the agents start clean.
    """

    def __init__(self, grid, agents_locations=None):
        grid = np.asarray(grid)
        if grid.ndim != 2:
            raise ValueError(f"grid must be 2-D (rows, cols), got shape {grid.shape}.")
        if not np.all(np.isin(grid, (C.DIRTY, C.CLEAN, C.WALL))):
            raise ValueError("grid values must be 0 (dirty), 1 (clean) or 2 (wall).")
        if agents_locations is None:
            agents_locations = np.zeros((1, 2), np.int32)
        locations = np.asarray(agents_locations, np.int32).reshape(-1, 2)
        super().__init__(grid.shape[0], grid.shape[1], locations.shape[0])
        inside = (locations >= 0).all(1) & (locations < grid.shape).all(1)
        if not inside.all():
            raise ValueError("agents_locations has a cell outside the grid.")
        if np.any(grid[locations[:, 0], locations[:, 1]] == C.WALL):
            raise ValueError("agents_locations has an agent on a wall.")
        grid = grid.astype(np.int8).copy()
        grid[locations[:, 0], locations[:, 1]] = C.CLEAN
        self.grid, self.agents_locations = grid, locations

    def __call__(self, key: chex.PRNGKey) -> State:
        return make_state(self.grid, self.agents_locations, key)
