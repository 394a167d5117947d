"""Typed state and observation of the repeated matrix games."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """State of one repeated matrix game.

    Attributes:
        key: PRNG key of the episode (the game itself is deterministic; auto-reset wrappers
            split it).
        step_count: `()` int32, stages played in this episode.
        last_action: `(num_agents,)` int32, the joint action of the previous stage (zeros
            before the first stage; `step_count == 0` tells them apart).
        last_reward: `(num_agents,)` float32, the rewards of the previous stage (zeros at first).
    """

    key: chex.PRNGKey
    step_count: chex.Array  # ()
    last_action: chex.Array  # (num_agents,)
    last_reward: chex.Array  # (num_agents,)


@struct.dataclass
class Observation:
    """Per-agent observation (every agent sees the same public history).

    Attributes:
        agents_view: `(num_agents, sum(num_actions) + 2)` float32: the one-hot of each agent's
            previous action in agent order (all zeros before the first stage), then a
            first-stage flag (1 before the first stage, else 0), then the normalised step
            count `step_count / horizon` in `[0, 1]`.
        action_mask: `(num_agents, max(num_actions))` bool, true for each agent's own actions.
    """

    agents_view: chex.Array  # (num_agents, sum(num_actions) + 2)
    action_mask: chex.Array  # (num_agents, max(num_actions))
