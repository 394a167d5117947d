"""Typed containers of SMAX: the state and the observation (`U` units, `N` controlled agents)."""

from __future__ import annotations

from typing import Any

import chex
from flax import struct


@struct.dataclass
class State:
    """Dynamic state of one battle. Units `0..A-1` are the allies (team 0), `A..U-1` the
    enemies (team 1).

    Attributes:
        positions: `(U, 2)` float32 `(x, y)` map coordinates.
        health: `(U,)` float32 remaining health (0 when dead).
        alive: `(U,)` bool.
        unit_types: `(U,)` int32 index into the unit-type table.
        cooldowns: `(U,)` float32 seconds until the weapon can fire (<= 0: ready).
        prev_movement: `(U, 2)` float32 movement vector of the last action (zeros for stop
            and attacks).
        prev_attack: `(U,)` int32 last action if it was an attack (`>= 5`), else 0.
        enemy_policy_state: pytree of the opponent policy (e.g. the heuristic's targets);
            an empty tuple in self-play.
        key: `(2,)` PRNG key of the next step.
        step_count: `()` int32 steps taken in this episode.
    """

    positions: chex.Array  # (U, 2)
    health: chex.Array  # (U,)
    alive: chex.Array  # (U,)
    unit_types: chex.Array  # (U,)
    cooldowns: chex.Array  # (U,)
    prev_movement: chex.Array  # (U, 2)
    prev_attack: chex.Array  # (U,)
    enemy_policy_state: Any
    key: chex.PRNGKey  # (2,)
    step_count: chex.Array  # ()


@struct.dataclass
class Observation:
    """Per-agent observation.

    Attributes:
        agents_view: `(N, obs_dim)` float32 "unit list" features, `obs_dim = 13 * (U - 1) +
            10` with the six default unit types: each other unit's features (own team first),
            then own features (see `SMAX`).
        action_mask: `(N, num_actions)` bool legal actions.
        step_count: `()` int32 steps taken in this episode.
    """

    agents_view: chex.Array  # (N, obs_dim)
    action_mask: chex.Array  # (N, num_actions)
    step_count: chex.Array  # ()


@struct.dataclass
class HeuristicState:
    """State of the heuristic policy, one row per unit it controls (`E` units).

    Attributes:
        default_target: `(E, 2)` float32 point the unit heads to when it sees no enemy
            (`(0, 0)` before its first decision).
        last_attacked: `(E,)` int32 opponent (in observation order) attacked last, -1 none.
    """

    default_target: chex.Array  # (E, 2)
    last_attacked: chex.Array  # (E,)
