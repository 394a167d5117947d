"""Initial-state generators for Level-Based Foraging: the original's random spawn rules and
fixed layouts."""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.lbf.constants import MAX_SPAWN_ATTEMPTS
from jaxmarl_envs.lbf.types import State

# Interior cells up to which the food-spacing rule is a precomputed (M, M) table.
_MAX_TABLE_CELLS = 1024


def _per_item(value: int | Sequence[int], count: int, name: str) -> np.ndarray:
    """A scalar or a sequence of `count` integers as an int array `(count,)`."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full((count,), arr)
    if arr.shape != (count,):
        raise ValueError(f"{name} must be a scalar or a sequence of length {count}, got {value!r}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integers, got {value!r}.")
    return arr.astype(np.int32)


def grid_shape_of(grid_size: int | Sequence[int]) -> tuple[int, int]:
    """`(rows, cols)` from an int or a pair; `ValueError` for grids the original cannot use."""
    shape = np.asarray(grid_size).reshape(-1)
    if shape.size == 1:
        shape = np.repeat(shape, 2)
    if shape.size != 2 or not np.all(np.equal(np.mod(shape, 1), 0)):
        raise ValueError(f"grid_size must be an int or a (rows, cols) pair, got {grid_size!r}.")
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 3 or cols < 3:
        raise ValueError(
            f"grid_size must be at least 3x3 (food spawns off the border), got {rows}x{cols}."
        )
    return rows, cols


def max_food_capacity(rows: int, cols: int) -> int:
    """An upper bound on how many food items the spawn rules can ever place on the grid.

    Food goes strictly inside the border and no two items may share a 2x2 block (they
    must not touch, even diagonally), so at most one item fits in each 2x2 block of the
    `(rows - 2) x (cols - 2)` interior.
    """
    return math.ceil((rows - 2) / 2) * math.ceil((cols - 2) / 2)


class Generator(abc.ABC):
    """Samples initial states. Subclasses set the scenario attributes the environment checks.

    Attributes:
        grid_shape: `(rows, cols)`.
        num_agents: number of agents.
        num_food: number of food slots.
        max_agent_level: the highest agent level it can produce.
        max_food_level_bound: the highest food level it can produce.
    """

    grid_shape: tuple[int, int]
    num_agents: int
    num_food: int
    max_agent_level: int
    max_food_level_bound: int

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> State:
        """An initial state (`step_count` 0) holding a key for later episodes."""


class RandomGenerator(Generator):
    """The original `lbforaging` spawn rules, sampled with JAX PRNG.

    Agents: the per-agent `[min, max]` level ranges are shuffled over agents (as the
    original does), then each agent in turn takes a uniformly random empty cell and a
    uniform level in its range. Food: the per-food level ranges are shuffled (with
    `force_coop` every food's minimum is its maximum); then each food in turn takes a
    uniformly random cell off the border that holds no agent, does not touch other food
    (not even diagonally) and has no food two cells away in its row or column. The
    original finds those cells by rejection sampling with 1000 attempts in total; here each
    food's number of attempts is drawn from the matching geometric law, so food that the
    original would fail to place is left out with the same probability. A missing
    `max_food_level` means the sum of the three lowest agent levels of the episode.

    The original's placement also avoids the cells agents held in the previous episode
    (stale positions); episodes here are independent, as in its first reset.

    Randomness: the 64 bits of the JAX key seed a counter-based integer hash (two
    MurmurHash3 finaliser rounds, a bijection of the counter) that yields every uniform
    draw and one distinct priority per interior cell; the state keeps the key, from which
    wrappers derive the next episode's key with `jax.random.fold_in`. No Threefry call is
    needed (only for shuffling unequal per-item level ranges), which keeps reset cheap
    enough to run on every step under `AutoReset`, and layouts stay a pure function of
    the key. Uniform choices among free cells are exact (no rejection loop with a fixed
    number of tries).

    Args:
        grid_size: side of a square grid, or `(rows, cols)`.
        num_agents: number of agents.
        num_food: number of food items.
        min_player_level: minimum agent level (scalar or per agent).
        max_player_level: maximum agent level (scalar or per agent).
        min_food_level: minimum food level (scalar or per food).
        max_food_level: maximum food level (scalar or per food), or None.
        force_coop: every food gets its maximum level.
    """

    def __init__(
        self,
        grid_size: int | Sequence[int] = 8,
        num_agents: int = 2,
        num_food: int = 2,
        min_player_level: int | Sequence[int] = 1,
        max_player_level: int | Sequence[int] = 2,
        min_food_level: int | Sequence[int] = 1,
        max_food_level: int | Sequence[int] | None = None,
        force_coop: bool = False,
    ):
        rows, cols = grid_shape_of(grid_size)
        if int(num_agents) != num_agents or num_agents < 1:
            raise ValueError(f"num_agents must be a positive integer, got {num_agents!r}.")
        if int(num_food) != num_food or num_food < 1:
            raise ValueError(f"num_food must be a positive integer, got {num_food!r}.")
        num_agents, num_food = int(num_agents), int(num_food)
        if num_agents + num_food > rows * cols:
            raise ValueError(
                f"{num_agents} agents and {num_food} food do not fit on a {rows}x{cols} grid."
            )
        capacity = max_food_capacity(rows, cols)
        if num_food > capacity:
            raise ValueError(
                f"{num_food} food items cannot be placed on a {rows}x{cols} grid: food spawns "
                f"off the border and apart from other food, so at most {capacity} fit."
            )
        min_pl = _per_item(min_player_level, num_agents, "min_player_level")
        max_pl = _per_item(max_player_level, num_agents, "max_player_level")
        if np.any(min_pl < 1):
            raise ValueError(f"min_player_level must be >= 1, got {min_player_level!r}.")
        if np.any(min_pl > max_pl):
            raise ValueError(
                f"min_player_level {min_player_level!r} exceeds max_player_level "
                f"{max_player_level!r} for some agent."
            )
        min_fl = _per_item(min_food_level, num_food, "min_food_level")
        if np.any(min_fl < 1):
            raise ValueError(f"min_food_level must be >= 1, got {min_food_level!r}.")
        if max_food_level is None:
            max_fl = None
            lowest = int(np.sort(min_pl)[:3].sum())
            if not force_coop and np.any(min_fl > lowest):
                raise ValueError(
                    f"min_food_level {min_food_level!r} exceeds the smallest possible automatic "
                    f"maximum food level (sum of the three lowest agent levels, {lowest}); "
                    "pass max_food_level explicitly."
                )
            bound = int(np.sort(max_pl)[:3].sum())
        else:
            max_fl = _per_item(max_food_level, num_food, "max_food_level")
            if np.any(min_fl > max_fl):
                raise ValueError(
                    f"min_food_level {min_food_level!r} exceeds max_food_level "
                    f"{max_food_level!r} for some food."
                )
            bound = int(max_fl.max())

        self.grid_shape = (rows, cols)
        self.num_agents = num_agents
        self.num_food = num_food
        self.force_coop = bool(force_coop)
        self.min_player_level = min_pl
        self.max_player_level = max_pl
        self.min_food_level = min_fl
        self.max_food_level = max_fl
        self.max_agent_level = int(max_pl.max())
        self.max_food_level_bound = bound
        # Static data: the interior cells where food may spawn.
        r, c = np.meshgrid(np.arange(1, rows - 1), np.arange(1, cols - 1), indexing="ij")
        self._interior = np.stack([r.reshape(-1), c.reshape(-1)], axis=1).astype(np.int32)
        # near[i, j]: food on interior cell i forbids food on interior cell j (same cell,
        # touching, or two apart in a row/column). A table while it stays small.
        num_interior = self._interior.shape[0]
        if num_interior <= _MAX_TABLE_CELLS:
            d = np.abs(self._interior[:, None, :] - self._interior[None, :, :])
            self._near_table = (d.max(-1) <= 1) | ((d.min(-1) == 0) & (d.max(-1) <= 2))
        else:
            self._near_table = None
        self._shuffle_agents = bool(np.any(min_pl != min_pl[0]) or np.any(max_pl != max_pl[0]))
        self._shuffle_food = bool(
            np.any(min_fl != min_fl[0]) or (max_fl is not None and np.any(max_fl != max_fl[0]))
        )

    def _spawn_agents(self, key, uniforms):
        """Agent cells `(N, 2)` and levels `(N,)`."""
        n = self.num_agents
        rows, cols = self.grid_shape
        num_cells = rows * cols
        lo = jnp.asarray(self.min_player_level)
        hi = jnp.asarray(self.max_player_level)
        if self._shuffle_agents:
            perm = jax.random.permutation(key, n)
            lo, hi = lo[perm], hi[perm]
        u_cell, u_level = uniforms[:n], uniforms[n : 2 * n]
        # Agent k takes the r-th free cell, r uniform in [0, cells - k): sampling without
        # replacement. The cell is the least fixed point of x = r + #{taken cells <= x},
        # reached from x = r in at most k iterations. The loops unroll at trace time over
        # the (small, static) number of agents into one fused elementwise kernel.
        ranks = jnp.minimum(
            jnp.floor(u_cell * (num_cells - jnp.arange(n))).astype(jnp.int32),
            num_cells - 1 - jnp.arange(n),
        )
        taken: list[chex.Array] = []
        for k in range(n):
            cell = ranks[k]
            for _ in range(k):
                cell = ranks[k] + sum((t <= cell).astype(jnp.int32) for t in taken)
            taken.append(cell)
        cells = jnp.stack(taken)
        pos = jnp.stack([cells // cols, cells % cols], axis=1)
        return pos.astype(jnp.int32), _uniform_int(u_level, lo, hi)

    def _spawn_food(self, key, uniforms, priority, agent_pos, agent_level):
        """Food cells `(F, 2)`, levels `(F,)` (0 where not placed) and presence `(F,)`."""
        f = self.num_food
        if self.max_food_level is None:
            auto = _sum_lowest(agent_level, 3)
            hi = jnp.full((f,), auto, jnp.int32)
        else:
            hi = jnp.asarray(self.max_food_level)
        lo = hi if self.force_coop else jnp.asarray(self.min_food_level)
        if self._shuffle_food:
            perm = jax.random.permutation(key, f)
            lo, hi = lo[perm], hi[perm]
        u_level, u_tries = uniforms[:f], uniforms[f : 2 * f]
        rows, cols = self.grid_shape
        interior = jnp.asarray(self._interior)  # (M, 2)
        num_interior = interior.shape[0]
        r, c = agent_pos[:, 0] - 1, agent_pos[:, 1] - 1
        inner = (r >= 0) & (r < rows - 2) & (c >= 0) & (c < cols - 2)
        agent_cell = jnp.where(inner, r * (cols - 2) + c, -1)  # (N,) interior index or -1
        cell_ids = jnp.arange(num_interior)
        on_agent = functools.reduce(
            jnp.logical_or, [cell_ids == agent_cell[i] for i in range(self.num_agents)]
        )  # (M,), unrolled over agents into one elementwise kernel

        def place(carry, u_t):
            blocked, attempts, alive = carry
            valid = ~blocked
            count = jnp.sum(valid, dtype=jnp.int32)
            # Attempts the original's rejection sampler spends on this food: geometric with
            # success probability count / num_interior (total capped at 1000).
            p = jnp.minimum(count.astype(jnp.float32) / num_interior, 0.9999999)
            tries = jnp.maximum(jnp.ceil(jnp.log1p(-u_t) / jnp.log1p(-p)), 1.0)
            tries = jnp.where(count == num_interior, 1.0, tries)
            tries = jnp.where(count > 0, tries, jnp.inf)
            attempts = attempts + tries
            ok = alive & (attempts <= MAX_SPAWN_ATTEMPTS)
            # A uniform valid cell: the valid cell of highest priority. Sharing one set of
            # i.i.d. priorities across foods keeps every pick uniform over its valid cells
            # (the priorities left after an argmax are still exchangeable).
            # Priorities are distinct (the hash is a bijection of the counter), so the
            # highest one marks a single cell; max and sum vectorise better than argmax.
            top = jnp.max(jnp.where(valid, priority, 0))
            idx = jnp.sum(jnp.where(valid & (priority == top), cell_ids, 0))
            cell = interior[idx]
            if self._near_table is not None:
                near = jnp.asarray(self._near_table)[idx]
            else:
                d = jnp.abs(interior - cell)
                near = (jnp.max(d, axis=1) <= 1) | (
                    (jnp.min(d, axis=1) == 0) & (jnp.max(d, axis=1) <= 2)
                )
            blocked = blocked | (near & ok)
            return (blocked, attempts, ok), (cell, ok)

        carry0 = (on_agent, jnp.zeros((), jnp.float32), jnp.ones((), bool))
        _, (cells, placed) = jax.lax.scan(place, carry0, u_tries, unroll=True)
        level = jnp.where(placed, _uniform_int(u_level, lo, hi), 0)
        return cells.astype(jnp.int32), level.astype(jnp.int32), placed

    def __call__(self, key: chex.PRNGKey) -> State:
        """A random initial state.

        Args:
            key: PRNG key (raw `uint32` or typed).

        Returns:
            A `State` with `step_count` 0 that holds `key` (wrappers derive the next
            episode's key from it with `jax.random.fold_in`).
        """
        n, f = self.num_agents, self.num_food
        num_interior = self._interior.shape[0]
        data = jax.random.key_data(key) if _is_typed(key) else key
        seed = data.reshape(-1)[:2].astype(jnp.uint32)
        bits = _hash_stream(seed, 2 * n + 2 * f + num_interior)
        uniforms = (bits[: 2 * n + 2 * f] >> 8).astype(jnp.float32) * (1.0 / (1 << 24))
        priority = bits[2 * n + 2 * f :]
        if self._shuffle_agents or self._shuffle_food:
            k_agents, k_food = jax.random.split(key)
        else:
            k_agents = k_food = key  # unused
        agent_pos, agent_level = self._spawn_agents(k_agents, uniforms[: 2 * n])
        food_pos, food_level, present = self._spawn_food(
            k_food, uniforms[2 * n :], priority, agent_pos, agent_level
        )
        return State(
            key=key,
            step_count=jnp.zeros((), jnp.int32),
            agent_pos=agent_pos,
            agent_level=agent_level,
            food_pos=food_pos,
            food_level=food_level,
            food_present=present,
        )


def _is_typed(key) -> bool:
    return jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _mix32(x: chex.Array) -> chex.Array:
    """The MurmurHash3 32-bit finaliser (a bijection with full avalanche), on uint32."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _hash_stream(seed: chex.Array, count: int) -> chex.Array:
    """`(count,)` uint32 pseudo-random words from a `(2,)` uint32 seed (counter-based)."""
    counter = jnp.arange(count, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    return _mix32(_mix32(counter + seed[0]) ^ seed[1])


def _sum_lowest(values: chex.Array, k: int) -> chex.Array:
    """Sum of the `k` smallest entries of `values` `(N,)` (without a sort)."""
    n = values.shape[0]
    if n <= k:
        return values.sum()
    idx = jnp.arange(n)
    before = (values[None, :] < values[:, None]) | (
        (values[None, :] == values[:, None]) & (idx[None, :] < idx[:, None])
    )
    rank = jnp.sum(before, axis=1)
    return jnp.sum(jnp.where(rank < k, values, 0))


def _uniform_int(u: chex.Array, lo: chex.Array, hi: chex.Array) -> chex.Array:
    """Integers uniform in `[lo, hi]` from uniforms `u` in `[0, 1)` (all same shape)."""
    span = (hi - lo + 1).astype(jnp.float32)
    return (lo + jnp.minimum(jnp.floor(u * span).astype(jnp.int32), hi - lo)).astype(jnp.int32)


class FixedGenerator(Generator):
    """Always the same hand-drawn layout (for tests, demos and curricula).

    Args:
        grid_size: side of a square grid, or `(rows, cols)`.
        agent_pos: `(N, 2)` (row, col) of each agent.
        agent_level: `(N,)` agent levels (>= 1).
        food_pos: `(F, 2)` (row, col) of each food.
        food_level: `(F,)` food levels (>= 1).
    """

    def __init__(self, grid_size, agent_pos, agent_level, food_pos, food_level):
        rows, cols = grid_shape_of(grid_size)
        agent_pos = np.asarray(agent_pos, np.int32).reshape(-1, 2)
        food_pos = np.asarray(food_pos, np.int32).reshape(-1, 2)
        agent_level = np.asarray(agent_level, np.int32).reshape(-1)
        food_level = np.asarray(food_level, np.int32).reshape(-1)
        if agent_pos.shape[0] < 1 or food_pos.shape[0] < 1:
            raise ValueError("FixedGenerator needs at least one agent and one food.")
        if agent_level.shape[0] != agent_pos.shape[0]:
            raise ValueError("agent_level must have one entry per agent position.")
        if food_level.shape[0] != food_pos.shape[0]:
            raise ValueError("food_level must have one entry per food position.")
        for name, pos in (("agent_pos", agent_pos), ("food_pos", food_pos)):
            if np.any(pos < 0) or np.any(pos[:, 0] >= rows) or np.any(pos[:, 1] >= cols):
                raise ValueError(f"{name} has a cell outside the {rows}x{cols} grid.")
        if np.any(agent_level < 1) or np.any(food_level < 1):
            raise ValueError("agent and food levels must be >= 1.")
        cells = [tuple(p) for p in agent_pos] + [tuple(p) for p in food_pos]
        if len(set(cells)) != len(cells):
            raise ValueError("agents and food must all be on distinct cells.")
        self.grid_shape = (rows, cols)
        self.num_agents = int(agent_pos.shape[0])
        self.num_food = int(food_pos.shape[0])
        self.max_agent_level = int(agent_level.max())
        self.max_food_level_bound = int(food_level.max())
        self._layout = (agent_pos, agent_level, food_pos, food_level)

    def __call__(self, key: chex.PRNGKey) -> State:
        """The fixed layout, holding `key`."""
        agent_pos, agent_level, food_pos, food_level = self._layout
        return State(
            key=key,
            step_count=jnp.zeros((), jnp.int32),
            agent_pos=jnp.asarray(agent_pos),
            agent_level=jnp.asarray(agent_level),
            food_pos=jnp.asarray(food_pos),
            food_level=jnp.asarray(food_level),
            food_present=jnp.ones((self.num_food,), bool),
        )
