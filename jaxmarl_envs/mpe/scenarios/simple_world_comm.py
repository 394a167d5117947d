"""`simple_world_comm`: predator-prey with food, hiding forests and a talking leader
adversary (mpe2's `simple_world_comm_v3`)."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng
from jaxmarl_envs.mpe.scenario import Scenario, check_int, register_scenario
from jaxmarl_envs.mpe.scenarios.simple_tag import boundary_penalty, collisions
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

GOOD_COLOUR = (0.45, 0.95, 0.45)
ADVERSARY_COLOUR = (0.95, 0.45, 0.45)
LEADER_COLOUR = (0.65, 0.15, 0.15)
OBSTACLE_COLOUR = (0.25, 0.25, 0.25)
FOOD_COLOUR = (0.15, 0.15, 0.65)
FOREST_COLOUR = (0.6, 0.9, 0.6)
OBSTACLE_SIZE = 0.2
FOOD_SIZE = 0.03
FOREST_SIZE = 0.3
DIM_C = 4


@register_scenario
class SimpleWorldComm(Scenario):
    """Predator-prey as `simple_tag`, plus food, forests and a leader adversary.

    Agents, in order: `leadadversary_0`, `adversary_0..` (`num_adversaries - 1` of them;
    size 0.075, accel 3, max speed 1), `agent_0..` (size 0.045, accel 4, max speed 1.3); all
    collide. Only the leader talks (dim_c 4: discrete actions `5 x 4 = 20`, continuous
    `5 + 4 = 9`); every adversary observes the leader's message. Landmarks, in order:
    obstacles (size 0.2, colliding), food (0.03) and forests (0.3), neither colliding.

    An agent is in a forest when it overlaps it. Agent `i` sees another agent `o` when
    they share a forest, or when neither is in any forest, or when `i` is the leader;
    otherwise `o`'s relative position (and velocity, for good agents) reads as zeros.
    Observations (mpe2's layout, `L` landmarks of all kinds, `F` forests): adversaries and
    leader `[self_vel, self_pos, landmark_rel (L x 2), other_agent_rel ((N-1) x 2),
    good_agent_vel (num_good x 2), in_forest (F; 1 or -1), leader_message (4)]`; good agents
    `[self_vel, self_pos, landmark_rel, other_agent_rel, in_forest, other_good_agent_vel
    ((num_good - 1) x 2)]`. Sizes 34 (adversaries) and 28 (good agents, zero-padded) by
    default. Rewards: good agent `-5` per adversary touching it, `-2 * boundary_penalty`,
    `+2` per food it touches, `-0.05 * (distance to the nearest food)`; every adversary
    `+5` per touching (good, adversary) pair and `-0.1 * (its distance to the nearest good
    agent)`. No early termination.

    Args:
        num_good: good agents (>= 1).
        num_adversaries: adversaries including the leader (>= 1).
        num_obstacles: obstacles (>= 0).
        num_food: food landmarks (>= 1).
        num_forests: forests (>= 0).
    """

    name = "simple_world_comm"
    description = "MPE simple_world_comm: predator-prey with food, forests and a leader."
    mpe2_module = "simple_world_comm_v3"

    def __init__(
        self,
        num_good: int = 2,
        num_adversaries: int = 4,
        num_obstacles: int = 1,
        num_food: int = 2,
        num_forests: int = 2,
    ):
        self.num_good = check_int(num_good, "num_good", 1)
        self.num_adversaries = check_int(num_adversaries, "num_adversaries", 1)
        self.num_obstacles = check_int(num_obstacles, "num_obstacles", 0)
        self.num_food = check_int(num_food, "num_food", 1)
        self.num_forests = check_int(num_forests, "num_forests", 0)
        n_adv, n_good = self.num_adversaries, self.num_good
        n = n_adv + n_good
        names = (
            ["leadadversary_0"]
            + [f"adversary_{i}" for i in range(n_adv - 1)]
            + [f"agent_{i}" for i in range(n_good)]
        )
        n_obs, n_food, n_for = self.num_obstacles, self.num_food, self.num_forests
        self.world = World.build(
            names,
            n_obs + n_food + n_for,
            dim_c=DIM_C,
            agent_size=[0.075] * n_adv + [0.045] * n_good,
            landmark_size=[OBSTACLE_SIZE] * n_obs + [FOOD_SIZE] * n_food + [FOREST_SIZE] * n_for,
            landmark_collide=[True] * n_obs + [False] * (n_food + n_for),
            agent_accel=[3.0] * n_adv + [4.0] * n_good,
            agent_max_speed=[1.0] * n_adv + [1.3] * n_good,
            silent=[False] + [True] * (n - 1),
        )
        num_landmarks = self.world.num_landmarks
        base = 4 + 2 * num_landmarks + 2 * (n - 1) + n_for
        self.obs_sizes = (base + 2 * n_good + DIM_C,) * n_adv + (base + 2 * (n_good - 1),) * n_good
        self._colour = np.array(
            [LEADER_COLOUR]
            + [ADVERSARY_COLOUR] * (n_adv - 1)
            + [GOOD_COLOUR] * n_good
            + [OBSTACLE_COLOUR] * n_obs
            + [FOOD_COLOUR] * n_food
            + [FOREST_COLOUR] * n_for,
            np.float32,
        )
        self._others = self.others()
        good = np.arange(n_adv, n)
        self._good = good
        self._good_others = np.stack([good[good != i] for i in good]).reshape(n_good, n_good - 1)
        self._leader = np.arange(n) == 0
        first = n + n_obs
        self._food = np.arange(first, first + n_food)
        self._forests = np.arange(first + n_food, first + n_food + n_for)

    def reset(self, key: chex.PRNGKey) -> State:
        agent_key, lm_key = rng.split(key)
        agents = rng.uniform(agent_key, (self.num_agents, 2), -1.0, 1.0)
        landmarks = rng.uniform(lm_key, (self.world.num_landmarks, 2), -0.9, 0.9)
        return self.new_state(jnp.concatenate([agents, landmarks]), self._colour)

    def in_forest(self, state: State) -> chex.Array:
        """`(N, F)` bool: agent `i` overlaps forest `f`."""
        n = self.num_agents
        sizes = self.world.size
        return collisions(
            state.p_pos[:n], sizes[:n], state.p_pos[self._forests], sizes[self._forests]
        )

    def visible(self, state: State) -> chex.Array:
        """`(N, N)` bool: agent `i` sees agent `o` (shared forest, both outside every
        forest, or `i` is the leader)."""
        inside = self.in_forest(state)
        shared = jnp.any(inside[:, None, :] & inside[None, :, :], axis=-1)
        outside = ~jnp.any(inside, axis=1)
        return shared | (outside[:, None] & outside[None, :]) | self._leader[:, None]

    def observation(self, state: State) -> chex.Array:
        n, n_adv, n_good = self.num_agents, self.num_adversaries, self.num_good
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        lm_rel = (state.p_pos[None, n:, :] - pos[:, None, :]).reshape(n, -1)
        seen = self.visible(state)
        others = jnp.asarray(self._others)
        seen_other = jnp.take_along_axis(seen, others, axis=1)  # (N, N-1)
        other_rel = jnp.where(seen_other[..., None], pos[others] - pos[:, None, :], 0.0)
        forest = jnp.where(self.in_forest(state), 1.0, -1.0)  # (N, F)
        head = jnp.concatenate([vel, pos, lm_rel, other_rel.reshape(n, -1)], axis=1)
        # Adversaries (and leader): every good agent's velocity, then forests, then the
        # leader's message.
        good = self._good
        adv_vel = jnp.where(seen[:n_adv, good, None], vel[good][None, :, :], 0.0)
        message = jnp.broadcast_to(state.c[0], (n_adv, DIM_C))
        adv_rows = jnp.concatenate(
            [head[:n_adv], adv_vel.reshape(n_adv, -1), forest[:n_adv], message], axis=1
        )
        # Good agents: forests, then the other good agents' velocities.
        go = self._good_others  # (G, G-1)
        seen_go = jnp.take_along_axis(seen[good], jnp.asarray(go), axis=1)
        good_vel = jnp.where(seen_go[..., None], vel[go], 0.0).reshape(n_good, -1)
        good_rows = jnp.concatenate([head[n_adv:], forest[n_adv:], good_vel], axis=1)
        view = jnp.zeros((n, self.max_obs_size), jnp.float32)
        view = view.at[:n_adv, : self.obs_sizes[0]].set(adv_rows)
        return view.at[n_adv:, : self.obs_sizes[-1]].set(good_rows)

    def reward(self, state: State) -> chex.Array:
        n_adv, n = self.num_adversaries, self.num_agents
        sizes = self.world.size
        good_pos, adv_pos = state.p_pos[n_adv:n], state.p_pos[:n_adv]
        caught = collisions(good_pos, sizes[n_adv:n], adv_pos, sizes[:n_adv])  # (G, A)
        food_pos = state.p_pos[self._food]
        eats = collisions(good_pos, sizes[n_adv:n], food_pos, sizes[self._food])  # (G, food)
        food_dist = jnp.sqrt(jnp.sum(jnp.square(good_pos[:, None] - food_pos[None]), axis=-1))
        good = (
            -5.0 * jnp.sum(caught, axis=1)
            - 2.0 * boundary_penalty(good_pos)
            + 2.0 * jnp.sum(eats, axis=1)
            - 0.05 * jnp.min(food_dist, axis=1)
        )
        chase = jnp.sqrt(jnp.sum(jnp.square(adv_pos[:, None] - good_pos[None]), axis=-1))
        adversary = -0.1 * jnp.min(chase, axis=1) + 5.0 * jnp.sum(caught)
        return jnp.concatenate([adversary, good]).astype(jnp.float32)
