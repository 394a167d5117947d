"""`simple_adversary`: good agents hide the goal landmark from one adversary (mpe2's
`simple_adversary_v3`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import Scenario, check_int, register_scenario
from jaxmarl_envs.mpe.scenarios.simple_spread import nearest_slots
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

ADVERSARY_COLOUR = (0.85, 0.35, 0.35)
GOOD_COLOUR = (0.35, 0.35, 0.85)
LANDMARK_COLOUR = (0.15, 0.15, 0.15)
GOAL_COLOUR = (0.15, 0.65, 0.15)


def optional_count(value, name: str) -> int | None:
    """None, or `value` as an int >= 1 (a neighbour count); else `ValueError`."""
    return None if value is None else check_int(value, name, 1)


def _distance(a: chex.Array, b: chex.Array) -> chex.Array:
    """Euclidean distance over the last axis."""
    return jnp.sqrt(jnp.sum(jnp.square(a - b), axis=-1))


def nearest_relative(rel: chex.Array, count: int | None) -> chex.Array:
    """The `count` nearest relative positions per row, closest first, zero-padded slots
    (mpe2's `padded_relative_positions`); all of them in order when `count` is None.

    Args:
        rel: `(N, K, 2)` positions relative to each agent.
        count: slots per agent, or None.

    Returns:
        `(N, count or K, 2)`.
    """
    if count is None:
        return rel
    idx, valid = nearest_slots(jnp.sqrt(jnp.sum(rel**2, axis=-1)), count)
    return jnp.take_along_axis(rel, idx[..., None], axis=1) * valid[..., None]


@register_scenario
class SimpleAdversary(Scenario):
    """One adversary (`adversary_0`) and N good agents (`agent_0..`) near N landmarks; one
    landmark is the goal, known to the good agents only.

    Agents: size 0.15, no collisions, silent (dim_c 2, never observed). Landmarks: size 0.08,
    no collisions. Observations (mpe2's layout; the adversary's is shorter, so its row is
    zero-padded: sizes `(4N, 4N + 2, ...)`, `(8, 10, 10)` for N=2):
    adversary `[landmark_rel (N x 2), other_agent_rel (N x 2)]`, good agent
    `[goal_rel, landmark_rel (N x 2), other_agent_rel (N x 2)]`. With
    `num_landmark_neighbors` / `num_agent_neighbors` only the nearest ones are listed
    (closest first, zero-padded to the given count; the goal is always observed).
    Rewards: adversary `-|adversary - goal|`; every good agent
    `-min_good |good - goal| + |adversary - goal|`. No early termination.
    `State.extra["goal"]` is the goal landmark's index `()` int32.

    Args:
        N: number of good agents and of landmarks (>= 1).
        num_agent_neighbors: observe only this many nearest other agents (None: all).
        num_landmark_neighbors: observe only this many nearest landmarks (None: all).
    """

    name = "simple_adversary"
    description = "MPE simple_adversary: good agents cover landmarks to hide the goal."
    mpe2_module = "simple_adversary_v3"

    def __init__(
        self,
        N: int = 2,  # noqa: N803 (mpe2's argument name)
        num_agent_neighbors: int | None = None,
        num_landmark_neighbors: int | None = None,
    ):
        n = check_int(N, "N", 1)
        self.N = n
        self.num_agent_neighbors = optional_count(num_agent_neighbors, "num_agent_neighbors")
        self.num_landmark_neighbors = optional_count(
            num_landmark_neighbors, "num_landmark_neighbors"
        )
        names = ["adversary_0"] + [f"agent_{i}" for i in range(n)]
        self.world = World.build(
            names,
            n,
            dim_c=2,
            agent_size=0.15,
            landmark_size=0.08,
            agent_collide=False,
            landmark_collide=False,
            silent=True,
        )
        n_lm = n if self.num_landmark_neighbors is None else self.num_landmark_neighbors
        n_ag = n if self.num_agent_neighbors is None else self.num_agent_neighbors
        adversary_size = 2 * n_lm + 2 * n_ag
        self.obs_sizes = (adversary_size,) + (adversary_size + 2,) * n
        self._colour = np.array(
            [ADVERSARY_COLOUR] + [GOOD_COLOUR] * n + [LANDMARK_COLOUR] * n, np.float32
        )
        self._others = self.others()

    def reset(self, key: chex.PRNGKey) -> State:
        goal_key, pos_key = jax.random.split(key)
        goal = jax.random.randint(goal_key, (), 0, self.N, jnp.int32)
        is_goal = jnp.arange(self.world.num_entities) == self.num_agents + goal
        colour = jnp.where(is_goal[:, None], jnp.asarray(GOAL_COLOUR), self._colour)
        return self.new_state(self.uniform_positions(pos_key), colour, {"goal": goal})

    def _goal_pos(self, state: State) -> chex.Array:
        return state.p_pos[self.num_agents + state.extra["goal"]]

    def observation(self, state: State) -> chex.Array:
        a = self.num_agents
        pos = state.p_pos[:a]
        lm_rel = nearest_relative(
            state.p_pos[None, a:, :] - pos[:, None, :], self.num_landmark_neighbors
        )
        other_rel = nearest_relative(pos[self._others] - pos[:, None, :], self.num_agent_neighbors)
        body = jnp.concatenate([lm_rel.reshape(a, -1), other_rel.reshape(a, -1)], axis=1)
        good = jnp.concatenate([self._goal_pos(state)[None, :] - pos[1:], body[1:]], axis=1)
        view = jnp.zeros((a, self.max_obs_size), jnp.float32)
        view = view.at[0, : self.obs_sizes[0]].set(body[0])
        return view.at[1:, : self.obs_sizes[1]].set(good)

    def reward(self, state: State) -> chex.Array:
        a = self.num_agents
        dist = _distance(state.p_pos[:a], self._goal_pos(state)[None, :])  # (A,)
        good = -jnp.min(dist[1:]) + dist[0]
        return jnp.concatenate([-dist[:1], jnp.full((a - 1,), good)]).astype(jnp.float32)
