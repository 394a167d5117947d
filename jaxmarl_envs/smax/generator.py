"""Initial unit positions and types of SMAX battles (swappable: `SMAX(generator=...)`)."""

from __future__ import annotations

import abc

import chex
import jax
import jax.numpy as jnp
import numpy as np


class Generator(abc.ABC):
    """Samples where the units start and which types they have.

    Attributes:
        num_allies, num_enemies: team sizes (allies are units `0..A-1`).
    """

    num_allies: int
    num_enemies: int

    @property
    def num_units(self) -> int:
        return self.num_allies + self.num_enemies

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> tuple[chex.Array, chex.Array]:
        """Returns `positions` `(U, 2)` float32 and `unit_types` `(U,)` int32."""


class ScenarioGenerator(Generator):
    """The original's start rules, drawing the same random numbers from the same key.

    Fixed positions: each team starts uniformly in a 4x4 square centred at a quarter
    (allies) or three quarters (enemies) of the width, at half the height. SMACv2-style
    positions: with probability 1/2 "surround" (one team, chosen at random, around the
    map centre; the other in four groups on the segments from the corners to the centre)
    else "reflect" (allies uniform on the left half, enemies mirrored; extra enemies uniform
    on the right half). SMACv2-style types: uniform per ally; enemies mirror the allies (in
    JaxMARL 0.2.0 enemies beyond the number of allies get the first unit type).

    Args:
        type_ids: unit type per unit (allies then enemies); placeholders when
            `random_unit_types`.
        num_allies: number of allies.
        random_positions, random_unit_types: SMACv2-style generation.
        map_width, map_height: map size.
        num_unit_types: size of the unit-type table (for random types).
    """

    def __init__(
        self,
        type_ids: tuple[int, ...],
        num_allies: int,
        random_positions: bool = False,
        random_unit_types: bool = False,
        map_width: float = 32.0,
        map_height: float = 32.0,
        num_unit_types: int = 6,
    ):
        self.type_ids = np.asarray(type_ids, np.int32)
        self.num_allies = int(num_allies)
        self.num_enemies = len(type_ids) - self.num_allies
        if self.num_allies < 1 or self.num_enemies < 1:
            raise ValueError("each team needs at least one unit.")
        self.random_positions = bool(random_positions)
        self.random_unit_types = bool(random_unit_types)
        self.map_width = float(map_width)
        self.map_height = float(map_height)
        self.num_unit_types = int(num_unit_types)

    def __call__(self, key: chex.PRNGKey) -> tuple[chex.Array, chex.Array]:
        a, e = self.num_allies, self.num_enemies
        w, h = self.map_width, self.map_height
        key, ally_key, enemy_key = jax.random.split(key, 3)
        if self.random_positions:
            key, pos_key = jax.random.split(key)
            positions = self._surround_or_reflect(pos_key)
        else:
            ally = jnp.array([w / 4, h / 2]) + jax.random.uniform(
                ally_key, (a, 2), minval=-2, maxval=2
            )
            enemy = jnp.array([w / 4 * 3, h / 2]) + jax.random.uniform(
                enemy_key, (e, 2), minval=-2, maxval=2
            )
            positions = jnp.concatenate([ally, enemy])
            key, _ = jax.random.split(key)
        if self.random_unit_types:
            _, type_key = jax.random.split(key)
            types = self._random_types(type_key)
        else:
            types = jnp.asarray(self.type_ids)
        return positions.astype(jnp.float32), types

    def _uniform_logits(self, n: int) -> chex.Array:
        return jnp.log(jnp.full((n,), 1.0 / n, jnp.float32))

    def _random_types(self, key: chex.PRNGKey) -> chex.Array:
        a, e = self.num_allies, self.num_enemies
        _, ally_key = jax.random.split(key)
        ally = jax.random.categorical(
            ally_key, self._uniform_logits(self.num_unit_types), shape=(a,)
        ).astype(jnp.int32)
        enemy = ally[:e] if e <= a else jnp.concatenate([ally, jnp.zeros((e - a,), jnp.int32)])
        return jnp.concatenate([ally, enemy])

    def _surround_or_reflect(self, key: chex.PRNGKey) -> chex.Array:
        draw_key, surround_key, reflect_key = jax.random.split(key, 3)
        surround = jax.random.uniform(draw_key) < 0.5
        return jnp.where(surround, self._surround(surround_key), self._reflect(reflect_key))

    def _reflect(self, key: chex.PRNGKey) -> chex.Array:
        a, e = self.num_allies, self.num_enemies
        w, h = self.map_width, self.map_height
        key, ally_key = jax.random.split(key)
        ally = jax.random.uniform(
            ally_key, (a, 2), minval=jnp.array([0.0, 0.0]), maxval=jnp.array([w / 2, h])
        )
        mirrored = jnp.stack([w - ally[: min(a, e), 0], ally[: min(a, e), 1]], axis=1)
        if e > a:
            extra = jax.random.uniform(
                key, (e - a, 2), minval=jnp.array([w / 2, 0.0]), maxval=jnp.array([w, h])
            )
            mirrored = jnp.concatenate([mirrored, extra])
        return jnp.concatenate([ally, mirrored])

    def _groups(self, key: chex.PRNGKey, n_inside: int, n_outside: int):
        """`n_inside` units around the centre, `n_outside` in four groups between the
        corners and the centre."""
        w, h = self.map_width, self.map_height
        centre = jnp.array([w / 2, h / 2])
        key, noise_key = jax.random.split(key)
        inside = centre + jax.random.uniform(noise_key, (n_inside, 2), minval=-2, maxval=2)
        key, group_key = jax.random.split(key)
        groups = jax.random.categorical(group_key, self._uniform_logits(4), shape=(n_outside,))
        corners = jnp.array([[0.0, 0.0], [0.0, h], [w, 0.0], [w, h]])
        key, t_key = jax.random.split(key)
        t = jax.random.uniform(t_key, (4, 1), minval=0.0, maxval=1.0)
        group_pos = t * jnp.broadcast_to(centre, (4, 2)) + (1 - t) * corners
        _, noise_key = jax.random.split(key)
        outside = group_pos[groups] + jax.random.uniform(
            noise_key, (n_outside, 2), minval=-2, maxval=2
        )
        return inside, outside

    def _surround(self, key: chex.PRNGKey) -> chex.Array:
        a, e = self.num_allies, self.num_enemies
        key, ally_key, enemy_key = jax.random.split(key, 3)
        ally_in, enemy_out = self._groups(ally_key, a, e)
        enemy_in, ally_out = self._groups(enemy_key, e, a)
        allies_inside = jax.random.randint(key, (), 0, 2)
        return jnp.where(
            allies_inside == 1,
            jnp.concatenate([ally_in, enemy_out]),
            jnp.concatenate([ally_out, enemy_in]),
        )


class FixedGenerator(Generator):
    """Always the same start: given positions `(U, 2)` and type ids `(U,)`."""

    def __init__(self, positions, unit_types, num_allies: int):
        self.positions = np.asarray(positions, np.float32)
        self.unit_types = np.asarray(unit_types, np.int32)
        self.num_allies = int(num_allies)
        self.num_enemies = self.unit_types.shape[0] - self.num_allies
        if self.positions.shape != (self.unit_types.shape[0], 2):
            raise ValueError(
                f"positions must have shape ({self.unit_types.shape[0]}, 2), "
                f"got {self.positions.shape}."
            )
        if self.num_allies < 1 or self.num_enemies < 1:
            raise ValueError("each team needs at least one unit.")

    def __call__(self, key: chex.PRNGKey) -> tuple[chex.Array, chex.Array]:
        return jnp.asarray(self.positions), jnp.asarray(self.unit_types)
