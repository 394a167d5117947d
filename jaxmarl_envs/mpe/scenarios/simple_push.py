"""`simple_push`: an adversary pushes the good agent away from its goal landmark (mpe2's
`simple_push_v3`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxmarl_envs.mpe.scenario import Scenario, register_scenario
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

ADVERSARY_COLOUR = (0.75, 0.25, 0.25)
#: Landmark `i` is `(0.1, 0.1, 0.1)` with 0.8 added to channel `i + 1` (green, blue).
LANDMARK_COLOURS = ((0.1, 0.9, 0.1), (0.1, 0.1, 0.9))
#: The good agent is `(0.25, 0.25, 0.25)` with 0.5 added to channel `goal + 1`.
GOOD_COLOURS = ((0.25, 0.75, 0.25), (0.25, 0.25, 0.75))


@register_scenario
class SimplePush(Scenario):
    """One adversary (`adversary_0`) and one good agent (`agent_0`), two landmarks; the
    good agent knows which landmark is its goal (it is coloured like it), the adversary
    does not.

    Agents: size 0.05, colliding, silent (dim_c 2, never observed); landmarks do not
    collide. Observations (mpe2's layout; sizes `(8, 19)`, the adversary row zero-padded):
    adversary `[self_vel, landmark_rel (2 x 2), other_agent_rel]`; good agent `[self_vel,
    goal_rel, self_colour (3), landmark_rel (2 x 2), landmark_colour (2 x 3),
    other_agent_rel]`. Rewards: good agent `-|agent - goal|`; adversary
    `|agent - goal| - |adversary - goal|`. No early termination; no arguments (as mpe2).
    `State.extra["goal"]` is the goal landmark's index `()` int32; colours live in
    `State.colour` (the good agent observes them).
    """

    name = "simple_push"
    description = "MPE simple_push: an adversary keeps the good agent away from its goal."
    mpe2_module = "simple_push_v3"

    def __init__(self):
        self.world = World.build(
            ["adversary_0", "agent_0"], 2, dim_c=2, landmark_collide=False, silent=True
        )
        self.obs_sizes = (8, 19)

    def reset(self, key: chex.PRNGKey) -> State:
        goal_key, pos_key = jax.random.split(key)
        goal = jax.random.randint(goal_key, (), 0, 2, jnp.int32)
        colour = jnp.concatenate(
            [
                jnp.asarray([ADVERSARY_COLOUR], jnp.float32),
                jnp.asarray(GOOD_COLOURS, jnp.float32)[goal][None, :],
                jnp.asarray(LANDMARK_COLOURS, jnp.float32),
            ]
        )
        return self.new_state(self.uniform_positions(pos_key), colour, {"goal": goal})

    def observation(self, state: State) -> chex.Array:
        pos, vel = state.p_pos[:2], state.p_vel[:2]
        lm = state.p_pos[2:]
        goal = lm[state.extra["goal"]]
        adversary = jnp.concatenate([vel[0], (lm - pos[0]).reshape(-1), pos[1] - pos[0]])
        good = jnp.concatenate(
            [
                vel[1],
                goal - pos[1],
                state.colour[1],
                (lm - pos[1]).reshape(-1),
                state.colour[2:].reshape(-1),
                pos[0] - pos[1],
            ]
        )
        return self.pad_rows([adversary, good])

    def reward(self, state: State) -> chex.Array:
        goal = state.p_pos[2 + state.extra["goal"]]
        dist = jnp.sqrt(jnp.sum(jnp.square(state.p_pos[:2] - goal[None, :]), axis=-1))
        return jnp.stack([dist[1] - dist[0], -dist[1]]).astype(jnp.float32)
