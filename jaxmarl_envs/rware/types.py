"""Typed containers of the Robot Warehouse: the static layout, the state and the observation."""

from __future__ import annotations

import dataclasses

import chex
import numpy as np
from flax import struct


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """The static map of a warehouse (numpy, never changes during an episode).

    Coordinates are `(row, col)` = `(y, x)` of the original.

    Attributes:
        highways: `(height, width)` bool, corridor cells (shelves cannot be put down there).
        goals: `(num_goals, 2)` int32 delivery cells in the original's order.
        shelf_pos: `(num_shelves, 2)` int32 initial shelf cells (every non-highway cell,
            row-major, so shelf `i` is the original's shelf id `i + 1`).
    """

    highways: np.ndarray
    goals: np.ndarray
    shelf_pos: np.ndarray

    @property
    def height(self) -> int:
        return int(self.highways.shape[0])

    @property
    def width(self) -> int:
        return int(self.highways.shape[1])

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    @property
    def num_shelves(self) -> int:
        return int(self.shelf_pos.shape[0])

    @property
    def shelf_grid(self) -> np.ndarray:
        """`(height, width)` int32 initial shelf grid: shelf index + 1, 0 where none."""
        grid = np.zeros((self.height, self.width), np.int32)
        grid[self.shelf_pos[:, 0], self.shelf_pos[:, 1]] = np.arange(1, self.num_shelves + 1)
        return grid

    @property
    def num_goals(self) -> int:
        return int(self.goals.shape[0])


@struct.dataclass
class State:
    """Dynamic state of one warehouse (`N` agents, `S` shelves, `Q` requests, `H x W` grid).

    Attributes:
        agent_pos: `(N, 2)` int32 `(row, col)` of each agent.
        agent_dir: `(N,)` int32 direction (UP=0, DOWN=1, LEFT=2, RIGHT=3).
        agent_load: `(N,)` int32 index of the carried shelf, -1 when unloaded.
        has_delivered: `(N,)` bool, delivered a shelf and not yet put it back (two-stage reward).
        shelf_pos: `(S, 2)` int32 `(row, col)` of each shelf (a carried shelf is at its agent).
        request_queue: `(Q,)` int32 indices of the requested shelves (distinct).
        agent_grid: `(H, W)` int32, agent index + 1 per cell, 0 when empty.
        shelf_grid: `(H, W)` int32, shelf index + 1 per cell, 0 when empty.
        key: PRNG key for request refills.
        step_count: `()` int32 steps taken in this episode.
    """

    agent_pos: chex.Array  # (N, 2)
    agent_dir: chex.Array  # (N,)
    agent_load: chex.Array  # (N,)
    has_delivered: chex.Array  # (N,)
    shelf_pos: chex.Array  # (S, 2)
    request_queue: chex.Array  # (Q,)
    agent_grid: chex.Array  # (H, W)
    shelf_grid: chex.Array  # (H, W)
    key: chex.PRNGKey  # (2,)
    step_count: chex.Array  # ()


@struct.dataclass
class Observation:
    """Per-agent observation.

    Attributes:
        agents_view: `(N, obs_dim)` float32 for the "vector" type (the original flattened
            observation: 71 values with sensor range 1), or `(N, L, 2r+1, 2r+1)` float32 for
            the "grid" type (the original image observation, `L` layers).
        action_mask: `(N, 5)` bool, actions that can change something (NOOP and turns always).
        step_count: `()` int32 steps taken in this episode.
    """

    agents_view: chex.Array  # (N, obs_dim) or (N, L, 2r+1, 2r+1)
    action_mask: chex.Array  # (N, 5)
    step_count: chex.Array  # ()
