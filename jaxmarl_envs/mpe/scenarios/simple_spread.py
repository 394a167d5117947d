"""`simple_spread`: N agents cover N landmarks without colliding (mpe2's `simple_spread_v3`)."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import (
    Scenario,
    check_int,
    check_local_ratio,
    register_scenario,
)
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World, square

#: An agent within this distance of a landmark covers it (mpe2's `CAPTURE_RADIUS`).
CAPTURE_RADIUS = 0.1


def nearest_slots(dist: chex.Array, count: int) -> tuple[chex.Array, chex.Array]:
    """The `count` nearest of `K` candidates per row, closest first, as mpe2's
    `nearest_entities` (zero-padded slots when `count > K`).

    Args:
        dist: `(N, K)` distances.
        count: slots per row.

    Returns:
        `(index (N, count) int32, valid (N, count) bool)`.
    """
    k = dist.shape[1]
    order = jnp.argsort(dist, axis=1, stable=True)[:, : min(count, k)]
    valid = jnp.ones(order.shape, bool)
    if count > k:
        pad = count - k
        order = jnp.pad(order, ((0, 0), (0, pad)))
        valid = jnp.pad(valid, ((0, 0), (0, pad)))
    return order.astype(jnp.int32), valid


@register_scenario
class SimpleSpread(Scenario):
    """N agents (`agent_0..`, size 0.15, colliding, silent) and N landmarks.

    Observation (`4 + 2N + 4(N - 1)`; 18 for N=3): `[self_vel, self_pos,
    landmark_rel_pos (N x 2), other_agent_rel_pos ((N-1) x 2), other_comm ((N-1) x 2)]`
    (comm is always zero: agents are silent, dim_c=2). With `num_landmark_neighbors` /
    `num_agent_neighbors` only the nearest ones are listed (closest first, zero-padded).
    Reward: global `-sum_l min_a |a - l|`, local `-1` per other agent overlapping this one,
    mixed with `local_ratio`. `terminate_on_success` ends the episode once every landmark
    has an agent within 0.1.

    Args:
        N: number of agents and landmarks (>= 1).
        local_ratio: weight of the local (collision) reward, in [0, 1].
        terminate_on_success: end the episode when every landmark is covered.
        num_agent_neighbors: observe only this many nearest other agents (None: all).
        num_landmark_neighbors: observe only this many nearest landmarks (None: all).
        curriculum: mpe2's curriculum mode: stage 0 has no collision penalty, stage 1
            restores it.
        curriculum_stage: the stage (0 or 1), fixed per environment: mpe2 changes it on the
            live object (`set_curriculum_stage`), here one builds an environment per stage.
            (In mpe2 1.1.1 the stage never leaves 0: its scenario's `curriculum_stage`
            property ignores assignments; `curriculum=True` with stage 0 is what it runs.)
    """

    name = "simple_spread"
    description = "MPE simple_spread: agents cover all landmarks while avoiding collisions."
    mpe2_module = "simple_spread_v3"

    def __init__(
        self,
        N: int = 3,  # noqa: N803 (mpe2's argument name)
        local_ratio: float = 0.5,
        terminate_on_success: bool = False,
        num_agent_neighbors: int | None = None,
        num_landmark_neighbors: int | None = None,
        curriculum: bool = False,
        curriculum_stage: int = 0,
    ):
        n = check_int(N, "N", 1)
        stage = check_int(curriculum_stage, "curriculum_stage", 0)
        if stage > 1:
            raise ValueError(f"curriculum_stage must be 0 or 1, got {curriculum_stage!r}.")
        self.curriculum, self.curriculum_stage = bool(curriculum), stage
        self.collision_penalty = not self.curriculum or stage == 1
        self.local_ratio = check_local_ratio(local_ratio)
        self.terminate_on_success = bool(terminate_on_success)
        self.num_agent_neighbors = (
            None
            if num_agent_neighbors is None
            else check_int(num_agent_neighbors, "num_agent_neighbors", 1)
        )
        self.num_landmark_neighbors = (
            None
            if num_landmark_neighbors is None
            else check_int(num_landmark_neighbors, "num_landmark_neighbors", 1)
        )
        self.N = n
        self.world = World.build(
            [f"agent_{i}" for i in range(n)],
            n,
            dim_c=2,
            agent_size=0.15,
            landmark_collide=False,
            silent=True,
        )
        n_lm = n if self.num_landmark_neighbors is None else self.num_landmark_neighbors
        n_ag = n - 1 if self.num_agent_neighbors is None else self.num_agent_neighbors
        self.obs_sizes = (4 + 2 * n_lm + 2 * n_ag + self.world.dim_c * n_ag,) * n
        self._colour = np.array([[0.35, 0.35, 0.85]] * n + [[0.25, 0.25, 0.25]] * n, np.float32)
        self._others = self.others()

    def reset(self, key: chex.PRNGKey) -> State:
        return self.new_state(self.uniform_positions(key), self._colour)

    def observation(self, state: State) -> chex.Array:
        n = self.N
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        lm_rel = state.p_pos[None, n:, :] - pos[:, None, :]  # (N, L, 2)
        if self.num_landmark_neighbors is not None:
            dist = jnp.sqrt(jnp.sum(lm_rel**2, axis=-1))
            idx, valid = nearest_slots(dist, self.num_landmark_neighbors)
            lm_rel = jnp.take_along_axis(lm_rel, idx[..., None], axis=1) * valid[..., None]
        others = self._others
        other_rel = pos[others] - pos[:, None, :]  # (N, N-1, 2)
        comm = state.c[others]  # (N, N-1, dim_c)
        if self.num_agent_neighbors is not None:
            dist = jnp.sqrt(jnp.sum(other_rel**2, axis=-1))
            idx, valid = nearest_slots(dist, self.num_agent_neighbors)
            other_rel = jnp.take_along_axis(other_rel, idx[..., None], axis=1) * valid[..., None]
            comm = jnp.take_along_axis(comm, idx[..., None], axis=1) * valid[..., None]
        parts = [vel, pos, lm_rel.reshape(n, -1), other_rel.reshape(n, -1), comm.reshape(n, -1)]
        return jnp.concatenate(parts, axis=1)

    def _agent_landmark_dist(self, state: State) -> chex.Array:
        n = self.N
        delta = state.p_pos[:n, None, :] - state.p_pos[None, n:, :]
        return jnp.sqrt(square(delta[..., 0]) + square(delta[..., 1]))  # (N agents, N landmarks)

    def _closest_agent_dist(self, state: State) -> chex.Array:
        """`(N,)` distance from each landmark to its closest agent."""
        dist = self._agent_landmark_dist(state)
        # An elementwise minimum over the agents' rows: XLA's CPU reduction over this short
        # leading axis was one of the slowest operations of a batched step.
        closest = dist[0]
        for a in range(1, self.N):
            closest = jnp.minimum(closest, dist[a])
        return closest

    def reward(self, state: State) -> chex.Array:
        n = self.N
        if not self.collision_penalty:
            return jnp.zeros((n,), jnp.float32)
        pos = state.p_pos[:n]
        delta = pos[:, None, :] - pos[None, :, :]
        dist = jnp.sqrt(square(delta[..., 0]) + square(delta[..., 1]))
        size = self.world.size[:n]
        hit = (dist < size[:, None] + size[None, :]) & ~np.eye(n, dtype=bool)
        return -jnp.sum(hit, axis=1).astype(jnp.float32)

    def global_reward(self, state: State) -> chex.Array:
        return -jnp.sum(self._closest_agent_dist(state))

    def is_terminal(self, state: State) -> chex.Array:
        if not self.terminate_on_success:
            return jnp.zeros((), bool)
        covered = self._closest_agent_dist(state) < CAPTURE_RADIUS
        return jnp.all(covered)
