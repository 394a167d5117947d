"""Typed containers of Cleaner: the state and the observation (`N` agents, `R x C` grid)."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """Dynamic state of one maze.

    Attributes:
        grid: `(R, C)` int8 tiles: 0 dirty, 1 clean, 2 wall (Jumanji's values).
        agents_locations: `(N, 2)` int32 `(row, col)` of each agent.
        action_mask: `(N, 4)` bool legal moves (up, right, down, left) of each agent.
        step_count: `()` int32 steps taken in this episode.
        key: PRNG key (the dynamics are deterministic; `AutoReset` derives the next
            episode from it).
    """

    grid: chex.Array  # (R, C)
    agents_locations: chex.Array  # (N, 2)
    action_mask: chex.Array  # (N, 4)
    step_count: chex.Array  # ()
    key: chex.PRNGKey  # (2,)


@struct.dataclass
class Observation:
    """Per-agent observation; the fields after `agents_view` are Jumanji's observation.

    Attributes:
        agents_view: `(N, 4 * R * C)` float32 ("vector") or `(N, 4, R, C)` ("grid"): per
            cell, channels dirty, wall, this agent, number of other agents.
        action_mask: `(N, 4)` bool legal moves.
        grid: `(R, C)` int8 tiles (0 dirty, 1 clean, 2 wall), shared by all agents.
        agents_locations: `(N, 2)` int32 `(row, col)` of every agent.
        step_count: `()` int32 steps taken in this episode.
    """

    agents_view: chex.Array  # (N, 4 * R * C) or (N, 4, R, C)
    action_mask: chex.Array  # (N, 4)
    grid: chex.Array  # (R, C)
    agents_locations: chex.Array  # (N, 2)
    step_count: chex.Array  # ()
