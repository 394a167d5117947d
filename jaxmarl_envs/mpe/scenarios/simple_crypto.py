"""`simple_crypto`: Alice encrypts a goal for Bob with a shared key while Eve eavesdrops
(mpe2's `simple_crypto_v3`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import Scenario, register_scenario
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

DIM_C = 4
NUM_LANDMARKS = 2
EVE_COLOUR = np.array([0.75, 0.25, 0.25], np.float32)
AGENT_COLOUR = np.array([0.25, 0.25, 0.25], np.float32)


@register_scenario
class SimpleCrypto(Scenario):
    """`eve_0` (adversary), `bob_0` (listener), `alice_0` (speaker); none moves, dim_c=4;
    two landmarks whose "colours" are the one-hot codes `e_0`, `e_1` of length 4.

    At reset the goal and the key are independent uniform landmark picks. Observations
    (heterogeneous): Eve `[alice's message]` (4); Bob `[key code, alice's message]` (8);
    Alice `[goal code, key code]` (8). Rewards (a message that is all zeros counts as
    silence and scores 0): Eve `-|c_eve - goal|^2`; Bob and Alice
    `-|c_bob - goal|^2 + |c_eve - goal|^2`. Actions: discrete 4 / continuous 4 (a message).
    `State.extra`: `goal` and `key`, `()` int32 landmark indices.
    Viewer colours: landmarks show the first three entries of their codes.
    """

    name = "simple_crypto"
    description = "MPE simple_crypto: Alice and Bob share a key; Eve listens in."
    mpe2_module = "simple_crypto_v3"

    def __init__(self):
        self.world = World.build(
            ["eve_0", "bob_0", "alice_0"],
            NUM_LANDMARKS,
            dim_c=DIM_C,
            agent_movable=False,
            agent_collide=False,
            landmark_collide=False,
        )
        self.obs_sizes = (DIM_C, 2 * DIM_C, 2 * DIM_C)

    def reset(self, key: chex.PRNGKey) -> State:
        k_goal, k_key, k_pos = jax.random.split(key, 3)
        goal = jax.random.randint(k_goal, (), 0, NUM_LANDMARKS, jnp.int32)
        secret = jax.random.randint(k_key, (), 0, NUM_LANDMARKS, jnp.int32)
        codes = jnp.eye(NUM_LANDMARKS, DIM_C, dtype=jnp.float32)[:, :3]
        agents = jnp.stack([jnp.asarray(EVE_COLOUR), codes[goal], jnp.asarray(AGENT_COLOUR)])
        colour = jnp.concatenate([agents, codes])
        extra = {"goal": goal, "key": secret}
        return self.new_state(self.uniform_positions(k_pos), colour, extra)

    @staticmethod
    def _code(index: chex.Array) -> chex.Array:
        return jax.nn.one_hot(index, DIM_C, dtype=jnp.float32)

    def observation(self, state: State) -> chex.Array:
        goal, secret = self._code(state.extra["goal"]), self._code(state.extra["key"])
        alice = state.c[2]
        return self.pad_rows(
            [alice, jnp.concatenate([secret, alice]), jnp.concatenate([goal, secret])]
        )

    def reward(self, state: State) -> chex.Array:
        goal = self._code(state.extra["goal"])
        spoke = jnp.any(state.c != 0.0, axis=1)  # (3,)
        err = jnp.sum(jnp.square(state.c - goal), axis=1)  # (3,)
        eve = jnp.where(spoke[0], -err[0], 0.0)
        good = jnp.where(spoke[1], -err[1], 0.0) + jnp.where(spoke[0], err[0], 0.0)
        return jnp.stack([eve, good, good]).astype(jnp.float32)
