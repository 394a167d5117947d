"""Static description of an MPE world (entity properties) and its vectorised physics step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe import constants


def _per(value, count: int, name: str, dtype) -> np.ndarray:
    """`value` (scalar or sequence) broadcast to `(count,)`; ValueError on a length mismatch."""
    arr = np.asarray(value, dtype)
    if arr.ndim == 0:
        return np.full((count,), arr, dtype)
    if arr.shape != (count,):
        raise ValueError(f"World: '{name}' needs {count} values, got shape {arr.shape}.")
    return arr.copy()


@dataclasses.dataclass(frozen=True, eq=False)
class World:
    """Static per-entity properties of a scenario (numpy; constants inside jit).

    Entities are the agents first (in `agent_names` order), then the landmarks. Build one
    with `World.build`, which applies mpe2's defaults.

    Attributes:
        agent_names: agent ids, mpe2's `possible_agents`.
        num_landmarks: number of landmarks.
        dim_c: communication channel size (0 when nobody talks).
        size: `(E,)` radii.
        movable: `(E,)` bool, moved by forces.
        collide: `(E,)` bool, takes part in contact forces.
        mass: `(E,)` masses.
        max_speed: `(E,)` speed caps (`inf` where mpe2 has None).
        sensitivity: `(N,)` action force multiplier (mpe2's `accel`, 5 where None).
        silent: `(N,)` bool, agents that cannot communicate (their `c` stays zero).
        dt, damping, contact_force, contact_margin: world constants.
    """

    agent_names: tuple[str, ...]
    num_landmarks: int
    dim_c: int
    size: np.ndarray
    movable: np.ndarray
    collide: np.ndarray
    mass: np.ndarray
    max_speed: np.ndarray
    sensitivity: np.ndarray
    silent: np.ndarray
    dt: float = constants.DT
    damping: float = constants.DAMPING
    contact_force: float = constants.CONTACT_FORCE
    contact_margin: float = constants.CONTACT_MARGIN

    @classmethod
    def build(
        cls,
        agent_names: Sequence[str],
        num_landmarks: int,
        dim_c: int = 0,
        agent_size: float | Sequence[float] = constants.DEFAULT_SIZE,
        landmark_size: float | Sequence[float] = constants.DEFAULT_SIZE,
        agent_movable: bool | Sequence[bool] = True,
        landmark_movable: bool | Sequence[bool] = False,
        agent_collide: bool | Sequence[bool] = True,
        landmark_collide: bool | Sequence[bool] = True,
        agent_mass: float | Sequence[float] = constants.DEFAULT_MASS,
        landmark_mass: float | Sequence[float] = constants.DEFAULT_MASS,
        agent_max_speed: float | Sequence[float | None] | None = None,
        landmark_max_speed: float | Sequence[float | None] | None = None,
        agent_accel: float | Sequence[float | None] | None = None,
        silent: bool | Sequence[bool] = False,
    ) -> World:
        """A world with mpe2's defaults (agents: size 0.05, movable, colliding, mass 1,
        no speed cap, sensitivity 5, not silent; landmarks: size 0.05, fixed, colliding).

        Every per-entity argument is a scalar or one value per agent (per landmark);
        `None` speed caps / accelerations mean mpe2's None.
        """
        names = tuple(str(a) for a in agent_names)
        n, m = len(names), int(num_landmarks)
        if n < 1:
            raise ValueError("World: at least one agent is needed.")
        if len(set(names)) != n:
            raise ValueError(f"World: agent names must be unique, got {names}.")
        if m < 0 or int(dim_c) < 0:
            raise ValueError("World: num_landmarks and dim_c must be >= 0.")

        def none_to(value, count, name, default):
            if value is None:
                return np.full((count,), default, np.float32)
            if np.ndim(value) == 0:
                return _per(value, count, name, np.float32)
            vals = [default if v is None else v for v in value]
            return _per(vals, count, name, np.float32)

        def both(a, b, name, dtype):
            return np.concatenate([_per(a, n, name, dtype), _per(b, m, name, dtype)])

        max_speed = np.concatenate(
            [
                none_to(agent_max_speed, n, "agent_max_speed", np.inf),
                none_to(landmark_max_speed, m, "landmark_max_speed", np.inf),
            ]
        )
        world = cls(
            agent_names=names,
            num_landmarks=m,
            dim_c=int(dim_c),
            size=both(agent_size, landmark_size, "size", np.float32),
            movable=both(agent_movable, landmark_movable, "movable", bool),
            collide=both(agent_collide, landmark_collide, "collide", bool),
            mass=both(agent_mass, landmark_mass, "mass", np.float32),
            max_speed=max_speed,
            sensitivity=none_to(agent_accel, n, "agent_accel", constants.DEFAULT_SENSITIVITY),
            silent=_per(silent, n, "silent", bool),
        )
        if np.any(world.size <= 0) or np.any(world.mass <= 0):
            raise ValueError("World: sizes and masses must be > 0.")
        return world

    @property
    def num_agents(self) -> int:
        return len(self.agent_names)

    @property
    def num_entities(self) -> int:
        return self.num_agents + self.num_landmarks

    @property
    def agent_movable(self) -> np.ndarray:
        """`(N,)` bool."""
        return self.movable[: self.num_agents]

    @property
    def discrete_action_sizes(self) -> tuple[int, ...]:
        """mpe2's `Discrete` sizes: `(5 if movable else 1) * (dim_c if not silent else 1)`."""
        return tuple(
            (constants.NUM_MOVES if mov else 1) * (1 if sil else self.dim_c)
            for mov, sil in zip(self.agent_movable, self.silent, strict=True)
        )

    @property
    def continuous_action_sizes(self) -> tuple[int, ...]:
        """mpe2's `Box` sizes: `(5 if movable else 0) + (0 if silent else dim_c)`."""
        return tuple(
            (constants.NUM_MOVES if mov else 0) + (0 if sil else self.dim_c)
            for mov, sil in zip(self.agent_movable, self.silent, strict=True)
        )


def _rows(x: chex.Array, index: np.ndarray) -> chex.Array:
    """`x[index]` for a static index (a slice when it is a contiguous range)."""
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return x[int(index[0]) : int(index[0]) + index.size]
    return x[index]


def _set_rows(x: chex.Array, index: np.ndarray, rows: chex.Array) -> chex.Array:
    """`x` with `x[index] = rows` for a static index (concatenation for a leading range)."""
    if index.size == x.shape[0]:
        return rows
    if np.array_equal(index, np.arange(index.size)):
        return jnp.concatenate([rows, x[index.size :]], axis=0)
    return x.at[index].set(rows)


# XLA's CPU backend may fuse a product and the sum that consumes it into one multiply-add
# (a different rounding), and whether it does depends on the surrounding program (fusion,
# register allocation), so one step could round differently with and without `vmap` or
# inside a larger program. The products below that feed sums therefore go through a select
# on a runtime value, which the backend does not fuse through; the values are exactly those
# of the plain product (zeros keep their sign).


def scaled(x: chex.Array, factor: float) -> chex.Array:
    """`x * factor` (a static factor >= 0), never contracted into a later sum."""
    return jnp.where(x != 0, x * factor, x)


def square(x: chex.Array) -> chex.Array:
    """`x * x`, never contracted into a later sum."""
    return jnp.where(x != 0, x * x, 0.0)


def contact_forces(world: World, p_pos: chex.Array) -> chex.Array:
    """Sum of mpe2's pairwise contact forces on every entity, `(E, 2)`.

    For two colliding entities at distance `d`, the force on `a` is
    `contact_force * (p_a - p_b) / d * k * softplus(-(d - (r_a + r_b)) / k)` and the force
    on `b` is its opposite; non-colliding pairs contribute nothing (only the colliding
    entities are compared, a static subset).

    Each unordered pair is computed once (mpe2 does the same: `b` gets exactly `-f_a`), from
    static slices of the x and y coordinates, and each entity's forces are added one by one
    in ascending order of the other entity. There is no reduction over a short axis (XLA's
    CPU reductions over such axes were the slowest part of a batched step), and every
    product feeding a sum goes through `scaled` / `square`, so the result is bit-identical
    with and without `vmap`.
    """
    coll = np.flatnonzero(world.collide)
    out = jnp.zeros_like(p_pos)
    if coll.size < 2:
        return out
    c = coll.size
    pos = _rows(p_pos, coll)  # (C, 2)
    size = world.size[coll]
    # Pairs (a, b), a < b, in row-major order: pair (a, b) is at start[a] + b - a - 1.
    start = np.concatenate([[0], np.cumsum(np.arange(c - 1, 0, -1))])
    r_sum = np.concatenate([size[a] + size[a + 1 :] for a in range(c - 1)]).astype(np.float32)

    def pair_delta(x):  # (C,) -> (P,): x_a - x_b over the pairs
        return jnp.concatenate([x[a] - x[a + 1 :] for a in range(c - 1)])

    dx, dy = pair_delta(pos[:, 0]), pair_delta(pos[:, 1])
    dist2 = square(dx) + square(dy)
    # Coincident entities have d = 0 (mpe2 then divides 0 by 0 and gets NaN); there a safe
    # divisor gives a zero force and keeps values and gradients finite.
    safe = dist2 > 0
    dist = jnp.sqrt(jnp.where(safe, dist2, 1.0))
    k = world.contact_margin
    # k * softplus(y / k) with y = r_a + r_b - d, written as max(y, 0) + k log1p(exp(-|y| / k)):
    # deep overlaps then keep y exactly instead of rounding k * (y / k).
    y = r_sum - dist
    penetration = jnp.maximum(y, 0.0) + scaled(jnp.log1p(jnp.exp(-jnp.abs(y) / k)), k)

    # mpe2's order of operations: contact_force * delta / d * penetration.
    pair = jnp.stack([dx, dy], axis=-1) * world.contact_force / dist[:, None]
    pair = jnp.where(safe[:, None], pair * penetration[:, None], 0.0)  # (P, 2): force on a
    # Entity i receives +f from its pairs (i, j) and -f from its pairs (j, i), j ascending.
    # One gather with static indices reads every pair twice; XLA then computes the pairs
    # (square roots, exponentials) once instead of fusing them into every sum that uses them.
    signed = jnp.concatenate([pair, -pair])
    index = np.array(
        [
            [
                start[min(i, j)] + max(i, j) - min(i, j) - 1 + (0 if i < j else len(r_sum))
                for j in range(c)
                if j != i
            ]
            for i in range(c)
        ],
        np.int32,
    )
    terms = signed[index]  # (C, C - 1, 2)
    total = terms[:, 0]
    for m in range(1, c - 1):
        total = total + terms[:, m]
    return _set_rows(out, coll, total)


def physics_step(
    world: World, p_pos: chex.Array, p_vel: chex.Array, agent_force: chex.Array
) -> tuple[chex.Array, chex.Array]:
    """One mpe2 `World.step` of the physical state (no noise: mpe2's defaults).

    Movable entities: `pos += vel * dt`, then `vel = vel * (1 - damping) + force / mass * dt`,
    then the speed is capped at `max_speed`; fixed entities do not move.

    Args:
        world: static world.
        p_pos: `(E, 2)` positions.
        p_vel: `(E, 2)` velocities.
        agent_force: `(N, 2)` action forces (already multiplied by the sensitivity).

    Returns:
        `(p_pos, p_vel)`, each `(E, 2)`.
    """
    n, e = world.num_agents, world.num_entities
    mov = np.flatnonzero(world.movable)
    if mov.size == 0:
        return p_pos, p_vel
    force = agent_force if e == n else jnp.pad(agent_force, ((0, e - n), (0, 0)))
    force = _rows(force + contact_forces(world, p_pos), mov)
    pos, vel = _rows(p_pos, mov), _rows(p_vel, mov)
    new_pos = pos + scaled(vel, world.dt)
    mass = world.mass[mov][:, None]
    new_vel = scaled(vel, 1.0 - world.damping) + scaled(force / mass, world.dt)
    cap = world.max_speed[mov]
    if np.isfinite(cap).any():
        speed = jnp.sqrt(square(new_vel[:, 0]) + square(new_vel[:, 1]))
        over = speed > cap
        scale = jnp.where(over, cap / jnp.where(over, speed, 1.0), 1.0)
        new_vel = new_vel * scale[:, None]
    return _set_rows(p_pos, mov, new_pos), _set_rows(p_vel, mov, new_vel)
