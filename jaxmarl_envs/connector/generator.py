"""Initial-state generators of Connector (swappable): Jumanji's random-walk boards, fixed
boards, and `make_state` to build a consistent state from a board."""

from __future__ import annotations

import abc

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.connector import constants as C
from jaxmarl_envs.connector.types import State


def compute_action_mask(grid: chex.Array, positions: chex.Array, targets: chex.Array) -> chex.Array:
    """`(N, 5)` bool: no-op always; a move if the agent is not connected and the next cell
    is on the grid and empty or its own target.

    Args:
        grid: `(G, G)` board.
        positions: `(N, 2)` heads.
        targets: `(N, 2)` targets.
    """
    size = grid.shape[0]
    n = positions.shape[0]
    nxt = positions[:, None, :] + jnp.asarray(C.MOVES[1:])[None]  # (N, 4, 2)
    r, c = nxt[..., 0], nxt[..., 1]
    inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
    value = grid.reshape(-1)[jnp.where(inside, r * size + c, 0)]
    own_target = (C.TARGET + 3 * jnp.arange(n, dtype=jnp.int32))[:, None]
    free = (value == C.EMPTY) | (value == own_target)
    connected = jnp.all(positions == targets, axis=-1)
    moves = inside & free & ~connected[:, None]
    return jnp.concatenate([jnp.ones((n, 1), bool), moves], axis=1)


def make_state(
    grid: chex.Array,
    starts: chex.Array,
    targets: chex.Array,
    positions: chex.Array,
    key: chex.PRNGKey,
    step_count: chex.Array | int = 0,
) -> State:
    """A consistent `State` (action mask included) from a board in Jumanji's encoding; jittable.

    Args:
        grid: `(G, G)` board (heads `2 + 3i` at `positions`, targets `3 + 3i` unless
            reached, paths `1 + 3i`).
        starts, targets, positions: `(N, 2)` `(row, col)` cells.
        key: PRNG key kept in the state.
        step_count: steps already taken.
    """
    grid = jnp.asarray(grid, jnp.int32)
    positions = jnp.asarray(positions, jnp.int32).reshape(-1, 2)
    targets = jnp.asarray(targets, jnp.int32).reshape(-1, 2)
    return State(
        grid=grid,
        starts=jnp.asarray(starts, jnp.int32).reshape(-1, 2),
        targets=targets,
        positions=positions,
        action_mask=compute_action_mask(grid, positions, targets),
        step_count=jnp.asarray(step_count, jnp.int32),
        key=key,
    )


def board_from_agents(size: int, starts: chex.Array, targets: chex.Array) -> chex.Array:
    """`(G, G)` int32 initial board: heads at `starts`, targets at `targets`."""
    n = starts.shape[0]
    ids = jnp.arange(n, dtype=jnp.int32)
    grid = jnp.zeros((size, size), jnp.int32)
    grid = grid.at[starts[:, 0], starts[:, 1]].set(C.POSITION + 3 * ids)
    return grid.at[targets[:, 0], targets[:, 1]].set(C.TARGET + 3 * ids)


def _choice(key: chex.PRNGKey, weights: chex.Array) -> chex.Array:
    """Index drawn with probability proportional to `weights` `(K,)`; the same draw as
    `jax.random.choice(key, K, p=weights)` (inverse CDF of one uniform), computed with a
    comparison count instead of a binary search (no inner loop under `vmap`)."""
    cumulative = jnp.cumsum(weights.astype(jnp.float32))
    r = cumulative[-1] * (1 - jax.random.uniform(key, (), jnp.float32))
    return jnp.sum(cumulative < r, dtype=jnp.int32)


def _neighbour_counts(occupied: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Occupied 4-neighbours of every cell, and how many 4-neighbours it has on the grid."""
    occ = jnp.pad(occupied.astype(jnp.int32), 1)
    ones = jnp.pad(jnp.ones_like(occupied, jnp.int32), 1)

    def around(x):
        return x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:]

    return around(occ), around(ones)


class Generator(abc.ABC):
    """Samples initial states for one grid size and number of agents.

    Args:
        grid_size: side `G` of the square grid.
        num_agents: number of agents.
    """

    def __init__(self, grid_size: int, num_agents: int):
        if int(grid_size) != grid_size or grid_size < 3:
            raise ValueError(f"grid_size must be an integer >= 3, got {grid_size!r}.")
        if int(num_agents) != num_agents or num_agents < 1:
            raise ValueError(f"num_agents must be a positive integer, got {num_agents!r}.")
        if 2 * num_agents > grid_size**2:
            raise ValueError(
                f"num_agents={num_agents} needs {2 * num_agents} cells (a start and a target "
                f"each) but the {grid_size}x{grid_size} grid has {grid_size**2}."
            )
        self.grid_size = int(grid_size)
        self.num_agents = int(num_agents)

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> State:
        """An initial `State` (step count 0) from `key`."""


class RandomWalkGenerator(Generator):
    """Jumanji's `RandomWalkGenerator` (Connector-v3's default), and for the same key the
    same board: each agent in turn gets a random start that is empty and not surrounded and
    a random empty neighbour as first step; then all agents walk at once (moves drawn with
    probabilities `softmax(displacement . direction / temperature)` over the legal ones,
    collisions resolved as in the environment) for at most `max_steps - 1` steps or until
    none can move. Each agent's target is where its walk ended, so every board is solvable.

    Args:
        grid_size, num_agents: as `Generator`.
        temperature: of the walk's move probabilities.
        max_steps: walk length bound (default `int(1.5 * grid_size)`, Jumanji's).
    """

    def __init__(
        self,
        grid_size: int,
        num_agents: int,
        temperature: float = C.WALK_TEMPERATURE,
        max_steps: int | None = None,
    ):
        super().__init__(grid_size, num_agents)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        if max_steps is None:
            max_steps = int(grid_size * 1.5)
        if int(max_steps) != max_steps or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}.")
        self.temperature = float(temperature)
        self.max_steps = int(max_steps)

    def _place(self, carry, agent):
        """Start and first step of one agent (Jumanji's order of draws)."""
        key, grid = carry
        size = self.grid_size
        start_key, first_key, key = jax.random.split(key, 3)
        occupied, around = _neighbour_counts(grid > 0)
        free = grid == 0
        start = _choice(start_key, (free & (occupied != around)).ravel())
        grid = grid.reshape(-1).at[start].set(C.PATH + 3 * agent).reshape(size, size)
        sr, sc = start // size, start % size
        rows = jnp.arange(size)[:, None]
        cols = jnp.arange(size)[None, :]
        adjacent = (jnp.abs(rows - sr) + jnp.abs(cols - sc)) == 1
        first = _choice(first_key, (adjacent & (grid == 0)).ravel())
        grid = grid.reshape(-1).at[first].set(C.POSITION + 3 * agent).reshape(size, size)
        cells = jnp.stack([jnp.stack([sr, sc]), jnp.stack([first // size, first % size])])
        return (key, grid), cells.astype(jnp.int32)

    def _walk_step(self, carry):
        key, grid, positions, mask, starts, count = carry
        n = self.num_agents
        key, next_key = jax.random.split(key)
        keys = jax.random.split(key, n)
        shift = positions - starts
        scores = jnp.stack([-shift[:, 0], shift[:, 1], shift[:, 0], -shift[:, 1]], axis=1)

        def pick(k, score, legal):
            probs = jax.nn.softmax(score / self.temperature) * legal
            probs = probs / probs.sum()
            action = 1 + jnp.minimum(_choice(k, probs), C.NUM_ACTIONS - 2)
            return action * legal.any()

        actions = jax.vmap(pick)(keys, scores, mask[:, 1:])
        grid, positions = _apply_moves(grid, positions, actions, jnp.ones((n,), bool))[:2]
        mask = compute_action_mask(grid, positions, jnp.full_like(positions, -1))
        return next_key, grid, positions, mask, starts, count + 1

    def __call__(self, key: chex.PRNGKey) -> State:
        n, size = self.num_agents, self.grid_size
        key, board_key = jax.random.split(key)
        place_key, walk_key = jax.random.split(board_key)
        grid = jnp.zeros((size, size), jnp.int32)
        (_, grid), cells = jax.lax.scan(self._place, (place_key, grid), jnp.arange(n))
        starts, positions = cells[:, 0], cells[:, 1]
        mask = compute_action_mask(grid, positions, jnp.full_like(positions, -1))
        carry = (walk_key, grid, positions, mask, starts, jnp.ones((), jnp.int32))
        carry = jax.lax.while_loop(
            lambda c: c[3][:, 1:].any() & (c[5] < self.max_steps), self._walk_step, carry
        )
        targets = carry[2]
        return make_state(board_from_agents(size, starts, targets), starts, targets, starts, key)


def _apply_moves(grid, positions, actions, legal):
    """Moves the heads (Jumanji's simultaneous move): an agent moving into the cell that a
    later agent also moves into stays; a moving head leaves its path behind.

    Returns:
        `(grid, positions, moved)` after the moves.
    """
    n = positions.shape[0]
    size = grid.shape[0]
    ids = jnp.arange(n, dtype=jnp.int32)
    wanted = jnp.where(legal[:, None], positions + jnp.asarray(C.MOVES)[actions], positions)
    same = jnp.all(wanted[:, None, :] == wanted[None, :, :], axis=-1)
    collided = jnp.any(same & (ids[None, :] > ids[:, None]), axis=1)
    moved = jnp.any(wanted != positions, axis=-1) & ~collided
    off = size * size  # out of range: dropped by the scatters
    old = jnp.where(moved, positions[:, 0] * size + positions[:, 1], off)
    new = jnp.where(moved, wanted[:, 0] * size + wanted[:, 1], off)
    flat = grid.reshape(-1).at[old].set(C.PATH + 3 * ids, mode="drop")
    flat = flat.at[new].set(C.POSITION + 3 * ids, mode="drop")
    positions = jnp.where(moved[:, None], wanted, positions)
    return flat.reshape(size, size), positions, moved


class FixedGenerator(Generator):
    """Always the same board: given starts and targets (for tests and curricula).

    Args:
        grid_size: side of the grid.
        starts, targets: `(N, 2)` `(row, col)` cells, all distinct.
    """

    def __init__(self, grid_size: int, starts, targets):
        starts = np.asarray(starts, np.int32).reshape(-1, 2)
        targets = np.asarray(targets, np.int32).reshape(-1, 2)
        super().__init__(grid_size, starts.shape[0])
        if targets.shape != starts.shape:
            raise ValueError("targets needs one cell per start.")
        cells = np.concatenate([starts, targets])
        if np.any(cells < 0) or np.any(cells >= grid_size):
            raise ValueError("starts/targets have a cell outside the grid.")
        if len({tuple(c) for c in cells.tolist()}) != cells.shape[0]:
            raise ValueError("starts and targets must be distinct cells.")
        self.starts, self.targets = starts, targets

    def __call__(self, key: chex.PRNGKey) -> State:
        starts, targets = jnp.asarray(self.starts), jnp.asarray(self.targets)
        grid = board_from_agents(self.grid_size, starts, targets)
        return make_state(grid, starts, targets, starts, key)
