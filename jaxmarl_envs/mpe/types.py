"""Typed state of a multi-agent particle environment episode."""

from __future__ import annotations

from typing import Any

import chex
from flax import struct

from jaxmarl_envs.types import Observation

__all__ = ["Observation", "State"]


@struct.dataclass
class State:
    """Full state of one MPE episode; entities are the agents first, then the landmarks.

    Attributes:
        key: PRNG key of the episode (scenarios with noise or wrappers may use it).
        step_count: `()` int32, world steps taken in this episode.
        p_pos: `(num_entities, 2)` float32 positions.
        p_vel: `(num_entities, 2)` float32 velocities.
        c: `(num_agents, dim_c)` float32 communication state (zeros for silent agents;
            `dim_c` may be 0).
        colour: `(num_entities, 3)` float32 RGB colours in `[0, 1]` (some scenarios pick
            them at reset; they are drawn by the viewer and some scenarios observe them).
        extra: scenario-specific pytree (a dict of arrays; e.g. goal indices), `{}` if none.
    """

    key: chex.PRNGKey
    step_count: chex.Array  # ()
    p_pos: chex.Array  # (num_entities, 2)
    p_vel: chex.Array  # (num_entities, 2)
    c: chex.Array  # (num_agents, dim_c)
    colour: chex.Array  # (num_entities, 3)
    extra: Any = struct.field(default_factory=dict)
