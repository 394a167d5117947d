"""Typed containers of Search-and-Rescue: the state and the observation."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """Dynamic state of one search (`N` searchers, `T` targets, a wrapped square arena).

    Attributes:
        searcher_pos: `(N, 2)` float32 positions in `[0, env_size)`.
        searcher_heading: `(N,)` float32 headings in `[0, 2 pi)`.
        searcher_speed: `(N,)` float32 speeds in `[min_speed, max_speed]`.
        target_pos: `(T, 2)` float32 positions in `[0, env_size)`.
        target_vel: `(T, 2)` float32 velocities (random walk).
        target_found: `(T,)` bool, located by a searcher (stays True).
        key: PRNG key of the targets' random walk (split every step).
        step_count: `()` int32 steps taken in this episode.
    """

    searcher_pos: chex.Array  # (N, 2)
    searcher_heading: chex.Array  # (N,)
    searcher_speed: chex.Array  # (N,)
    target_pos: chex.Array  # (T, 2)
    target_vel: chex.Array  # (T, 2)
    target_found: chex.Array  # (T,)
    key: chex.PRNGKey  # (2,)
    step_count: chex.Array  # ()


@struct.dataclass
class Observation:
    """Per-searcher observation.

    Attributes:
        agents_view: `(N, 3 V + 4)` float32: the searcher's segmented view, channel-major
            (`V` rays each for other searchers, found targets, targets still to find; the
            distance along each ray to the nearest object over that channel's vision range,
            -1 where the ray meets nothing), then the share of targets still to find, the
            episode progress `step / time_limit` and the searcher's own position over the
            arena size. `agents_view[:, :3 V].reshape(N, 3, V)` is Jumanji's `searcher_views`.
        action_mask: `(N, 2)` bool, always True (continuous actions; the adapters' mask
            convention for action dimensions).
        targets_remaining: `()` float32, share of targets not yet found.
        step: `()` int32, steps taken.
        positions: `(N, 2)` float32 searcher positions over the arena size.
    """

    agents_view: chex.Array  # (N, 3 V + 4)
    action_mask: chex.Array  # (N, 2)
    targets_remaining: chex.Array  # ()
    step: chex.Array  # ()
    positions: chex.Array  # (N, 2)
