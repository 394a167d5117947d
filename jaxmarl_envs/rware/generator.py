"""Layouts and initial-state generators of the Robot Warehouse (swappable by users)."""

from __future__ import annotations

import abc

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.rware import constants as C
from jaxmarl_envs.rware.types import Layout, State


def layout_from_params(shelf_columns: int, shelf_rows: int, column_height: int) -> Layout:
    """The original's parametric warehouse (see `rware.warehouse.Warehouse`).

    The grid is `((column_height + 1) * shelf_rows + 2) x (3 * shelf_columns + 1)`, with two
    goals in the middle of the bottom row and a free queue column above them.

    Raises:
        ValueError: for non-positive sizes or an even number of shelf columns.
    """
    for name, value in (
        ("shelf_columns", shelf_columns),
        ("shelf_rows", shelf_rows),
        ("column_height", column_height),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if shelf_columns % 2 != 1:
        raise ValueError(f"shelf_columns must be odd (as in the original), got {shelf_columns}.")
    height = (column_height + 1) * shelf_rows + 2
    width = 3 * shelf_columns + 1
    ys, xs = np.indices((height, width))
    highways = (
        (xs % 3 == 0)
        | (ys % (column_height + 1) == 0)
        | (ys == height - 1)
        | ((ys > height - (column_height + 3)) & ((xs == width // 2 - 1) | (xs == width // 2)))
    )
    goals = np.array([[height - 1, width // 2 - 1], [height - 1, width // 2]], np.int32)
    return _finish_layout(highways, goals)


def layout_from_str(layout: str) -> Layout:
    """A layout from the original's string format: `x` shelf, `.` corridor, `g` goal.

    Raises:
        ValueError: for a non-rectangular layout, unknown characters or no goal.
    """
    lines = layout.strip().replace(" ", "").split("\n")
    width = len(lines[0])
    if any(len(line) != width for line in lines):
        raise ValueError("layout must be rectangular (all lines the same length).")
    highways = np.zeros((len(lines), width), bool)
    goals = []
    for y, line in enumerate(lines):
        for x, char in enumerate(line.lower()):
            if char not in "gx.":
                raise ValueError(f"layout has unknown character {char!r} at row {y}, col {x}.")
            highways[y, x] = char in "g."
            if char == "g":
                goals.append((y, x))
    if not goals:
        raise ValueError("layout needs at least one goal ('g').")
    return _finish_layout(highways, np.array(goals, np.int32))


def _finish_layout(highways: np.ndarray, goals: np.ndarray) -> Layout:
    highways = np.asarray(highways, bool)
    ys, xs = np.nonzero(~highways)  # row-major, the original's shelf order
    shelf_pos = np.stack([ys, xs], axis=1).astype(np.int32).reshape(-1, 2)
    for arr in (highways, goals, shelf_pos):
        arr.setflags(write=False)
    return Layout(highways=highways, goals=goals.astype(np.int32), shelf_pos=shelf_pos)


def make_state(
    layout: Layout,
    agent_pos: chex.Array,
    agent_dir: chex.Array,
    request_queue: chex.Array,
    key: chex.PRNGKey,
    shelf_pos: chex.Array | None = None,
    agent_load: chex.Array | None = None,
    has_delivered: chex.Array | None = None,
    step_count: chex.Array | int = 0,
) -> State:
    """Builds a consistent `State` (grids included) from entity positions; jittable.

    Args:
        layout: the static map.
        agent_pos: `(N, 2)` `(row, col)` of the agents (distinct cells).
        agent_dir: `(N,)` directions.
        request_queue: `(Q,)` distinct shelf indices.
        key: PRNG key kept in the state.
        shelf_pos: `(S, 2)` shelf cells (default: the layout's initial cells).
        agent_load: `(N,)` carried shelf index or -1 (default: nothing carried). A carried
            shelf must be at its agent's cell.
        has_delivered: `(N,)` bool (default: False).
        step_count: steps already taken.
    """
    agent_pos = jnp.asarray(agent_pos, jnp.int32).reshape(-1, 2)
    n = agent_pos.shape[0]
    if shelf_pos is None:
        shelf_pos, shelf_grid = jnp.asarray(layout.shelf_pos), jnp.asarray(layout.shelf_grid)
    else:
        shelf_pos = jnp.asarray(shelf_pos, jnp.int32)
        shelf_grid = jnp.zeros((layout.height, layout.width), jnp.int32)
        shelf_grid = shelf_grid.at[shelf_pos[:, 0], shelf_pos[:, 1]].set(
            jnp.arange(1, shelf_pos.shape[0] + 1, dtype=jnp.int32)
        )
    agent_load = jnp.full((n,), -1, jnp.int32) if agent_load is None else agent_load
    has_delivered = jnp.zeros((n,), bool) if has_delivered is None else has_delivered
    shape = (layout.height, layout.width)
    agent_grid = (
        jnp.zeros(shape, jnp.int32)
        .at[agent_pos[:, 0], agent_pos[:, 1]]
        .set(jnp.arange(1, n + 1, dtype=jnp.int32))
    )
    return State(
        agent_pos=agent_pos,
        agent_dir=jnp.asarray(agent_dir, jnp.int32),
        agent_load=jnp.asarray(agent_load, jnp.int32),
        has_delivered=jnp.asarray(has_delivered, bool),
        shelf_pos=shelf_pos,
        request_queue=jnp.asarray(request_queue, jnp.int32),
        agent_grid=agent_grid,
        shelf_grid=shelf_grid,
        key=key,
        step_count=jnp.asarray(step_count, jnp.int32),
    )


def split_bits(key: chex.PRNGKey, num_words: int) -> tuple[chex.PRNGKey, chex.Array]:
    """A fresh key and `num_words` random uint32 words from one threefry call.

    With raw `uint32` keys (`jax.random.PRNGKey`) the first words of one `random.bits` draw
    become the new key and the rest are returned (one hash instead of a split plus a draw:
    rolled threefry loops are slow on CPU). Typed keys fall back to `split` + `bits`.

    Returns:
        `(new_key, words)` with `words` of shape `(num_words,)` uint32.
    """
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        new_key, sub = jax.random.split(key)
        return new_key, jax.random.bits(sub, (num_words,), jnp.uint32)
    size = key.shape[-1]
    words = jax.random.bits(key, (size + num_words,), jnp.uint32)
    return words[:size].astype(key.dtype), words[size:]


def sample_without_replacement(words: chex.Array, n: int, k: int, shuffle: bool = True):
    """`k` distinct integers of `[0, n)`, `(k,)` int32 (uniformly random order if `shuffle`).

    Floyd's algorithm draws a uniform `k`-subset from `k` bounded draws with `O(k^2)`
    comparisons (no sort over `n`); an argsort of `k` more random words makes the order
    uniform. Bounded draws use a modulo (bias below `n / 2**32`, negligible).

    Args:
        words: `(2k,)` uint32 random words (`(k,)` suffice without `shuffle`).
        n: population size.
        k: sample size, `k <= n`.
        shuffle: randomise the order of the picks.
    """
    if k == 0:
        return jnp.zeros((0,), jnp.int32)
    bounds = jnp.arange(n - k + 1, n + 1, dtype=jnp.uint32)  # t in [0, j] for j = n-k..n-1
    draws = (words[:k] % bounds).astype(jnp.int32)
    picks = jnp.full((k,), -1, jnp.int32)
    for i in range(k):  # k is static and small
        t = draws[i]
        picks = picks.at[i].set(jnp.where(jnp.any(picks == t), n - k + i, t))
    if not shuffle or k == 1:
        return picks
    return picks[jnp.argsort(words[k : 2 * k])]


class Generator(abc.ABC):
    """Samples initial states for one layout, number of agents and request-queue size.

    Args:
        layout: the static map.
        num_agents: number of agents.
        request_queue_size: number of simultaneously requested shelves.
    """

    def __init__(self, layout: Layout, num_agents: int, request_queue_size: int):
        self.layout = layout
        self.num_agents = int(num_agents)
        self.request_queue_size = int(request_queue_size)

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> State:
        """An initial `State` (step count 0) from `key`."""


class RandomGenerator(Generator):
    """The original's distribution: agents on distinct uniformly random cells (shelf cells
    included) with uniform directions, shelves on every non-highway cell, and a uniformly
    random set of distinct requested shelves."""

    def __call__(self, key: chex.PRNGKey) -> State:
        n, q, lay = self.num_agents, self.request_queue_size, self.layout
        key, words = split_bits(key, 3 * n + q)
        cells = sample_without_replacement(words[: 2 * n], lay.num_cells, n)
        agent_pos = jnp.stack([cells // lay.width, cells % lay.width], axis=1)
        agent_dir = (words[2 * n : 3 * n] % C.NUM_DIRECTIONS).astype(jnp.int32)
        # The queue's order never matters (only membership), so it is not shuffled.
        queue = sample_without_replacement(words[3 * n :], lay.num_shelves, q, shuffle=False)
        return make_state(lay, agent_pos, agent_dir, queue, key)


class FixedGenerator(Generator):
    """Always the same start: given agent cells, directions and requested shelves.

    Args:
        layout: the static map.
        agent_pos: `(N, 2)` distinct `(row, col)` cells.
        agent_dir: `(N,)` directions.
        request_queue: `(Q,)` distinct shelf indices.
    """

    def __init__(self, layout: Layout, agent_pos, agent_dir, request_queue):
        agent_pos = np.asarray(agent_pos, np.int32).reshape(-1, 2)
        agent_dir = np.asarray(agent_dir, np.int32).reshape(-1)
        request_queue = np.asarray(request_queue, np.int32).reshape(-1)
        super().__init__(layout, agent_pos.shape[0], request_queue.shape[0])
        if agent_dir.shape[0] != agent_pos.shape[0]:
            raise ValueError("agent_dir needs one direction per agent.")
        if np.any(agent_pos < 0) or np.any(agent_pos >= (layout.height, layout.width)):
            raise ValueError("agent_pos has a cell outside the grid.")
        if len({tuple(p) for p in agent_pos}) != agent_pos.shape[0]:
            raise ValueError("agent_pos must hold distinct cells.")
        if np.any((agent_dir < 0) | (agent_dir >= C.NUM_DIRECTIONS)):
            raise ValueError("agent_dir values must be in [0, 4).")
        if len(set(request_queue.tolist())) != request_queue.shape[0] or np.any(
            (request_queue < 0) | (request_queue >= layout.num_shelves)
        ):
            raise ValueError("request_queue must hold distinct shelf indices in range.")
        self.agent_pos, self.agent_dir, self.request_queue = agent_pos, agent_dir, request_queue

    def __call__(self, key: chex.PRNGKey) -> State:
        return make_state(self.layout, self.agent_pos, self.agent_dir, self.request_queue, key)
