"""Typed containers of Connector: the state and the observation (`N` agents, `G x G` grid)."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """Dynamic state of one board.

    Attributes:
        grid: `(G, G)` int32, Jumanji's encoding: 0 empty; for agent `i`, `1 + 3i` path,
            `2 + 3i` head (current position), `3 + 3i` target (until reached).
        starts: `(N, 2)` int32 `(row, col)` where each agent started.
        targets: `(N, 2)` int32 `(row, col)` each agent must reach.
        positions: `(N, 2)` int32 `(row, col)` of each agent's head.
        action_mask: `(N, 5)` bool legal actions (no-op, up, right, down, left).
        step_count: `()` int32 steps taken in this episode.
        key: PRNG key (the dynamics are deterministic; `AutoReset` derives the next
            episode from it).
    """

    grid: chex.Array  # (G, G)
    starts: chex.Array  # (N, 2)
    targets: chex.Array  # (N, 2)
    positions: chex.Array  # (N, 2)
    action_mask: chex.Array  # (N, 5)
    step_count: chex.Array  # ()
    key: chex.PRNGKey  # (2,)


@struct.dataclass
class Observation:
    """Per-agent observation; `grid`, `action_mask` and `step_count` are Jumanji's.

    Attributes:
        agents_view: `(N, 3 * G * G)` float32 ("vector") or `(N, 3, G, G)` ("grid"): per
            cell, channels own head, own target, obstacle (occupied by anything but this
            agent's head or target).
        action_mask: `(N, 5)` bool legal actions.
        grid: `(G, G)` int32 board in Jumanji's encoding, shared by all agents.
        step_count: `()` int32 steps taken in this episode.
    """

    agents_view: chex.Array  # (N, 3 * G * G) or (N, 3, G, G)
    action_mask: chex.Array  # (N, 5)
    grid: chex.Array  # (G, G)
    step_count: chex.Array  # ()
