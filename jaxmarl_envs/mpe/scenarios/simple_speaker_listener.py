"""`simple_speaker_listener`: a static speaker tells a listener which landmark to reach
(mpe2's `simple_speaker_listener_v4`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import Scenario, register_scenario
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

LANDMARK_COLOURS = np.array(
    [[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]], np.float32
)
AGENT_COLOUR = np.array([0.25, 0.25, 0.25], np.float32)
#: Added to the goal's colour to paint the listener.
LISTENER_TINT = np.array([0.45, 0.45, 0.45], np.float32)


@register_scenario
class SimpleSpeakerListener(Scenario):
    """`speaker_0` (cannot move, dim_c=3) and `listener_0` (moves, silent), three landmarks
    (size 0.04); agents have size 0.075; nothing collides.

    Heterogeneous: the speaker observes the goal landmark's colour (3); the listener
    observes `[self_vel, landmark_rel_pos (3 x 2), speaker's message (3)]` (11). Both get
    minus the squared distance from the listener to the goal. Actions: speaker discrete 3 /
    continuous 3 (a message), listener discrete 5 / continuous 5 (a move).
    `State.extra["goal"]`: `()` int32 goal landmark.
    """

    name = "simple_speaker_listener"
    description = "MPE simple_speaker_listener: a speaker guides a listener to a landmark."
    mpe2_module = "simple_speaker_listener_v4"

    def __init__(self):
        self.world = World.build(
            ["speaker_0", "listener_0"],
            3,
            dim_c=3,
            agent_size=0.075,
            landmark_size=0.04,
            agent_movable=[False, True],
            agent_collide=False,
            landmark_collide=False,
            silent=[False, True],
        )
        self.obs_sizes = (3, 11)

    def reset(self, key: chex.PRNGKey) -> State:
        k_goal, k_pos = jax.random.split(key)
        goal = jax.random.randint(k_goal, (), 0, 3, jnp.int32)
        lm = jnp.asarray(LANDMARK_COLOURS)
        listener = lm[goal] + LISTENER_TINT
        colour = jnp.concatenate([jnp.stack([jnp.asarray(AGENT_COLOUR), listener]), lm])
        return self.new_state(self.uniform_positions(k_pos), colour, {"goal": goal})

    def observation(self, state: State) -> chex.Array:
        goal = state.extra["goal"]
        speaker = state.colour[2 + goal]
        lm_rel = (state.p_pos[2:] - state.p_pos[1]).reshape(-1)
        listener = jnp.concatenate([state.p_vel[1], lm_rel, state.c[0]])
        return self.pad_rows([speaker, listener])

    def reward(self, state: State) -> chex.Array:
        d2 = jnp.sum(jnp.square(state.p_pos[1] - state.p_pos[2 + state.extra["goal"]]))
        return jnp.full((2,), -d2, jnp.float32)
