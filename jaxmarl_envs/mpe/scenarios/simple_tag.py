"""`simple_tag`: adversaries chase faster good agents among obstacles (mpe2's
`simple_tag_v3`)."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng
from jaxmarl_envs.mpe.scenario import Scenario, check_int, register_scenario
from jaxmarl_envs.mpe.scenarios.simple_adversary import nearest_relative, optional_count
from jaxmarl_envs.mpe.scenarios.simple_spread import nearest_slots
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World, square

GOOD_COLOUR = (0.35, 0.85, 0.35)
ADVERSARY_COLOUR = (0.85, 0.35, 0.35)
OBSTACLE_COLOUR = (0.25, 0.25, 0.25)
#: Prey speed factor of each curriculum stage (mpe2's `CURRICULUM_STAGES`).
CURRICULUM_SPEED_FACTORS = (0.5, 0.75, 1.0)
PREY_MAX_SPEED = 1.3
PREY_ACCEL = 4.0


def boundary_penalty(pos: chex.Array) -> chex.Array:
    """mpe2's penalty for leaving the screen, summed over both coordinates, `(N,)`.

    Per coordinate with `x = |p|`: 0 below 0.9, `10 (x - 0.9)` below 1, else
    `min(exp(2x - 2), 10)`.

    Args:
        pos: `(N, 2)` positions.
    """
    x = jnp.abs(pos)
    far = jnp.minimum(jnp.exp(2.0 * x - 2.0), 10.0)
    value = jnp.where(x < 0.9, 0.0, jnp.where(x < 1.0, (x - 0.9) * 10.0, far))
    return jnp.sum(value, axis=-1)


def collisions(pos_a: chex.Array, size_a, pos_b: chex.Array, size_b) -> chex.Array:
    """`(A, B)` bool: entities overlap (`distance < size_a + size_b`, mpe2's `is_collision`)."""
    delta = pos_a[:, None, :] - pos_b[None, :, :]
    dist = jnp.sqrt(square(delta[..., 0]) + square(delta[..., 1]))
    return dist < jnp.asarray(size_a)[:, None] + jnp.asarray(size_b)[None, :]


@register_scenario
class SimpleTag(Scenario):
    """Predator-prey: `adversary_0..` (size 0.075, accel 3, max speed 1) chase
    `agent_0..` (size 0.05, accel 4, max speed 1.3) among fixed obstacles (size 0.2).

    All agents collide and are silent (dim_c 2, never observed). Observation of agent `i`
    (mpe2's layout): `[self_vel, self_pos, obstacle_rel (L x 2), other_agent_rel
    ((N-1) x 2), good_agent_vel]` where the velocities are those of the other good agents
    only, so adversaries see `2 * num_good` velocity values and good agents
    `2 * (num_good - 1)`: sizes 16 (adversaries) and 14 (good agent) by default, good
    rows zero-padded. With `num_agent_neighbors` / `num_landmark_neighbors` only the nearest
    ones are listed (closest first, zero-padded) and the velocity slots follow the agent
    slots (zero for adversaries), so every agent has the same size.
    Rewards: good agent `-10` per adversary touching it minus `boundary_penalty` of its
    position; every adversary `+10` per touching (good, adversary) pair. With
    `terminate_on_success` the episode ends when every good agent touches an adversary.
    With `curriculum` the prey's max speed and accel are scaled by
    `CURRICULUM_SPEED_FACTORS[curriculum_stage]`. Here the stage is a constructor argument
    (default 0, where mpe2 starts); mpe2 1.1.1 documents `set_curriculum_stage` /
    `advance_curriculum`, but its `BaseScenario.curriculum_stage` property ignores writes,
    so mpe2 itself always plays stage 0.

    Args:
        num_good: good agents (>= 1).
        num_adversaries: adversaries (>= 1).
        num_obstacles: obstacles (>= 0).
        curriculum: scale the prey's speed by the curriculum stage.
        terminate_on_success: end the episode once every good agent is caught.
        num_agent_neighbors: observe only this many nearest other agents (None: all).
        num_landmark_neighbors: observe only this many nearest obstacles (None: all).
        curriculum_stage: stage used when `curriculum` is set (0, 1 or 2).
    """

    name = "simple_tag"
    description = "MPE simple_tag: slower adversaries chase good agents among obstacles."
    mpe2_module = "simple_tag_v3"

    def __init__(
        self,
        num_good: int = 1,
        num_adversaries: int = 3,
        num_obstacles: int = 2,
        curriculum: bool = False,
        terminate_on_success: bool = False,
        num_agent_neighbors: int | None = None,
        num_landmark_neighbors: int | None = None,
        curriculum_stage: int = 0,
    ):
        self.num_good = check_int(num_good, "num_good", 1)
        self.num_adversaries = check_int(num_adversaries, "num_adversaries", 1)
        self.num_obstacles = check_int(num_obstacles, "num_obstacles", 0)
        self.curriculum = bool(curriculum)
        self.terminate_on_success = bool(terminate_on_success)
        self.num_agent_neighbors = optional_count(num_agent_neighbors, "num_agent_neighbors")
        self.num_landmark_neighbors = optional_count(
            num_landmark_neighbors, "num_landmark_neighbors"
        )
        stage = check_int(curriculum_stage, "curriculum_stage", 0)
        if stage >= len(CURRICULUM_SPEED_FACTORS):
            raise ValueError(
                f"curriculum_stage must be < {len(CURRICULUM_SPEED_FACTORS)}, got {stage}."
            )
        self.curriculum_stage = stage
        factor = CURRICULUM_SPEED_FACTORS[stage] if self.curriculum else 1.0
        n_adv, n_good = self.num_adversaries, self.num_good
        names = [f"adversary_{i}" for i in range(n_adv)] + [f"agent_{i}" for i in range(n_good)]
        self.world = World.build(
            names,
            self.num_obstacles,
            dim_c=2,
            agent_size=[0.075] * n_adv + [0.05] * n_good,
            landmark_size=0.2,
            agent_accel=[3.0] * n_adv + [PREY_ACCEL * factor] * n_good,
            agent_max_speed=[1.0] * n_adv + [PREY_MAX_SPEED * factor] * n_good,
            silent=True,
        )
        n = n_adv + n_good
        n_lm = (
            self.num_obstacles
            if self.num_landmark_neighbors is None
            else self.num_landmark_neighbors
        )
        if self.num_agent_neighbors is None:
            base = 4 + 2 * n_lm + 2 * (n - 1)
            self.obs_sizes = (base + 2 * n_good,) * n_adv + (base + 2 * (n_good - 1),) * n_good
        else:
            self.obs_sizes = (4 + 2 * n_lm + 4 * self.num_agent_neighbors,) * n
        self._colour = np.array(
            [ADVERSARY_COLOUR] * n_adv
            + [GOOD_COLOUR] * n_good
            + [OBSTACLE_COLOUR] * self.num_obstacles,
            np.float32,
        )
        self._others = self.others()
        good = np.arange(n_adv, n)
        # Other good agents of each agent, in index order: all of them for adversaries.
        self._good_others = [good] * n_adv + [good[good != i] for i in good]

    def reset(self, key: chex.PRNGKey) -> State:
        agent_key, lm_key = rng.split(key)
        n = self.num_agents
        agents = rng.uniform(agent_key, (n, 2), -1.0, 1.0)
        obstacles = rng.uniform(lm_key, (self.num_obstacles, 2), -0.9, 0.9)
        return self.new_state(jnp.concatenate([agents, obstacles]), self._colour)

    def observation(self, state: State) -> chex.Array:
        n, n_adv = self.num_agents, self.num_adversaries
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        lm_rel = nearest_relative(
            state.p_pos[None, n:, :] - pos[:, None, :], self.num_landmark_neighbors
        )
        other_rel = pos[self._others] - pos[:, None, :]  # (N, N-1, 2)
        head = [vel, pos, lm_rel.reshape(n, -1)]
        if self.num_agent_neighbors is not None:
            dist = jnp.sqrt(jnp.sum(other_rel**2, axis=-1))
            idx, valid = nearest_slots(dist, self.num_agent_neighbors)
            chosen = jnp.take_along_axis(jnp.asarray(self._others), idx, axis=1)  # (N, k)
            rel = jnp.take_along_axis(other_rel, idx[..., None], axis=1) * valid[..., None]
            is_good = (chosen >= n_adv) & valid
            other_vel = jnp.where(is_good[..., None], vel[chosen], 0.0)
            parts = head + [rel.reshape(n, -1), other_vel.reshape(n, -1)]
            return jnp.concatenate(parts, axis=1).astype(jnp.float32)
        body = jnp.concatenate(head + [other_rel.reshape(n, -1)], axis=1)
        adv_vel = vel[self._good_others[0]].reshape(-1)  # the same for every adversary
        adv_rows = jnp.concatenate(
            [body[:n_adv], jnp.broadcast_to(adv_vel, (n_adv, adv_vel.shape[0]))], axis=1
        )
        good_idx = np.stack(self._good_others[n_adv:])  # (G, G-1)
        good_rows = jnp.concatenate([body[n_adv:], vel[good_idx].reshape(self.num_good, -1)], 1)
        # Both blocks zero-padded to the widest row and stacked (cheaper on CPU than
        # scattering them into a zero array).
        width = self.max_obs_size
        blocks = [jnp.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in (adv_rows, good_rows)]
        return jnp.concatenate(blocks, axis=0).astype(jnp.float32)

    def _caught(self, state: State) -> chex.Array:
        """`(G, A)` bool: good agent `g` touches adversary `a`."""
        n_adv, n = self.num_adversaries, self.num_agents
        size = self.world.size
        return collisions(state.p_pos[n_adv:n], size[n_adv:n], state.p_pos[:n_adv], size[:n_adv])

    def reward(self, state: State) -> chex.Array:
        n_adv, n = self.num_adversaries, self.num_agents
        caught = self._caught(state)
        good = -10.0 * jnp.sum(caught, axis=1) - boundary_penalty(state.p_pos[n_adv:n])
        adversary = jnp.full((n_adv,), 10.0 * jnp.sum(caught))
        return jnp.concatenate([adversary, good]).astype(jnp.float32)

    def is_terminal(self, state: State) -> chex.Array:
        if not self.terminate_on_success:
            return jnp.zeros((), bool)
        return jnp.all(jnp.any(self._caught(state), axis=1))
