"""Typed state and observation of Level-Based Foraging."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """Full state of one Level-Based Foraging episode.

    Food never moves and its level never changes; eaten food only flips `food_present`.
    A food slot that could not be spawned has level 0 and `food_present=False`.

    Attributes:
        key: PRNG key the episode was sampled from (auto-reset wrappers fold it).
        step_count: `()` int32, steps taken in this episode.
        agent_pos: `(num_agents, 2)` int32 (row, col) of each agent.
        agent_level: `(num_agents,)` int32 level of each agent.
        food_pos: `(num_food, 2)` int32 (row, col) of each food slot.
        food_level: `(num_food,)` int32 level of each food slot (0 if never spawned).
        food_present: `(num_food,)` bool, whether the food is still on the field.
    """

    key: chex.PRNGKey
    step_count: chex.Array  # ()
    agent_pos: chex.Array  # (num_agents, 2)
    agent_level: chex.Array  # (num_agents,)
    food_pos: chex.Array  # (num_food, 2)
    food_level: chex.Array  # (num_food,)
    food_present: chex.Array  # (num_food,)

    @property
    def food_spawned(self) -> chex.Array:
        """`()` int32, total level of the food spawned at reset (the reward normaliser)."""
        return self.food_level.sum()


@struct.dataclass
class Observation:
    """Per-agent observation.

    Attributes:
        agents_view: `(num_agents, obs_dim)` float32 for the "vector" observation (the
            original's layout: `(row, col, level)` per food slot, then `(row, col[, level])`
            per agent slot, self first, `-1, -1, 0` where nothing is seen), or
            `(num_agents, 3, 2 * sight + 1, 2 * sight + 1)` float32 for the "grid"
            observation (agent levels, food levels, accessible cells).
        action_mask: `(num_agents, 6)` bool, the original's valid actions.
        step_count: `(num_agents,)` int32, steps taken in this episode (same for all agents).
    """

    agents_view: chex.Array  # (num_agents, obs_dim) or (num_agents, 3, 2s+1, 2s+1)
    action_mask: chex.Array  # (num_agents, 6)
    step_count: chex.Array  # (num_agents,)
