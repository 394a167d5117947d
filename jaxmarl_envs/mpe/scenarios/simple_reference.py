"""`simple_reference`: two agents guide each other to goal landmarks by talking
(mpe2's `simple_reference_v3`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import Scenario, check_local_ratio, register_scenario
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

#: Landmark colours (red, green, blue), as mpe2.
LANDMARK_COLOURS = np.array(
    [[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]], np.float32
)


@register_scenario
class SimpleReference(Scenario):
    """Two agents (`agent_0`, `agent_1`, not colliding, dim_c=10) and three landmarks.

    Each agent `i` knows the goal landmark `goal[i]` the *other* agent must reach and
    tells it through its message. At reset each goal is uniform over the landmarks and the
    other agent is painted in the goal's colour. Observation (21): `[self_vel,
    landmark_rel_pos (3 x 2), colour of goal[i] (3), other agent's message (10)]`. Local
    reward of agent `i`: `-|pos(other) - pos(goal[i])|`; global reward: the mean of the two;
    mixed with `local_ratio`. Actions: discrete 50 (5 moves x 10 words), continuous 15.
    `State.extra["goal"]`: `(2,)` int32 goal landmark per agent.

    Args:
        local_ratio: weight of the local reward, in [0, 1].
    """

    name = "simple_reference"
    description = "MPE simple_reference: two agents talk each other to goal landmarks."
    mpe2_module = "simple_reference_v3"

    def __init__(self, local_ratio: float = 0.5):
        self.local_ratio = check_local_ratio(local_ratio)
        self.world = World.build(
            ["agent_0", "agent_1"], 3, dim_c=10, agent_collide=False, landmark_collide=False
        )
        self.obs_sizes = (21, 21)

    def reset(self, key: chex.PRNGKey) -> State:
        k_goal, k_pos = jax.random.split(key)
        goal = jax.random.randint(k_goal, (2,), 0, 3, jnp.int32)
        lm = jnp.asarray(LANDMARK_COLOURS)
        # agent 0's goal colours agent 1 (the agent that must go there) and vice versa.
        agents = jnp.stack([lm[goal[1]], lm[goal[0]]])
        colour = jnp.concatenate([agents, lm])
        return self.new_state(self.uniform_positions(k_pos), colour, {"goal": goal})

    def observation(self, state: State) -> chex.Array:
        pos, vel, goal = state.p_pos, state.p_vel, state.extra["goal"]
        lm_rel = pos[None, 2:, :] - pos[:2, None, :]  # (2, 3, 2)
        goal_colour = state.colour[2 + goal]  # (2, 3)
        other_comm = state.c[::-1]  # agent 0 hears agent 1 and vice versa
        return jnp.concatenate([vel[:2], lm_rel.reshape(2, 6), goal_colour, other_comm], axis=1)

    def reward(self, state: State) -> chex.Array:
        pos, goal = state.p_pos, state.extra["goal"]
        delta = pos[1::-1] - pos[2 + goal]  # other agent's position - own goal landmark
        return -jnp.sqrt(jnp.sum(delta**2, axis=-1))

    def global_reward(self, state: State) -> chex.Array:
        return jnp.mean(self.reward(state))
