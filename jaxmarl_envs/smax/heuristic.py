"""Opponent policies of SMAX: the heuristic (JaxMARL's scripted enemy) and user functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng
from jaxmarl_envs.smax import constants as C
from jaxmarl_envs.smax.types import HeuristicState


class EnemyPolicy:
    """Interface of an opponent policy over the `E` units of one team.

    `init(key)` returns the policy state (any pytree, kept in `State.enemy_policy_state`);
    `__call__(key, policy_state, obs, action_mask)` maps the units' observations `(E,
    obs_dim)` and masks `(E, num_actions)` to actions `(E,)` int32 and the next state.
    """

    def init(self, key: chex.PRNGKey) -> Any:
        return ()

    def __call__(
        self, key: chex.PRNGKey, policy_state: Any, obs: chex.Array, action_mask: chex.Array
    ) -> tuple[chex.Array, Any]:
        raise NotImplementedError


class FunctionPolicy(EnemyPolicy):
    """A stateless opponent from a function `fn(key, obs, action_mask) -> actions (E,)`."""

    def __init__(self, fn: Callable[[chex.PRNGKey, chex.Array, chex.Array], chex.Array]):
        self.fn = fn

    def __call__(self, key, policy_state, obs, action_mask):
        return jnp.asarray(self.fn(key, obs, action_mask), jnp.int32), policy_state


class HeuristicPolicy(EnemyPolicy):
    """The scripted micro of JaxMARL's `HeuristicEnemySMAX`, for the units of `team`.

    Each unit reads only its own observation. If an opponent is in attack range it attacks
    the one it attacked last while that one stays in range, else the closest (or, with
    `attack_mode="random"`, a uniformly random) opponent in range. Otherwise it moves (the
    one of the four directions best aligned) towards a uniformly random visible opponent,
    or, seeing none, towards its default target: its first position rotated 180 degrees
    about the map centre (so it crosses the middle).

    Args:
        num_allies, num_enemies: team sizes of the battle.
        team: 0 (allies) or 1 (enemies), the team whose units it controls.
        attack_ranges, sight_ranges: per unit type.
        map_width, map_height: map size.
        attack_mode: "closest" or "random".
        shoot: when False the units only move.
    """

    def __init__(
        self,
        num_allies: int,
        num_enemies: int,
        team: int,
        attack_ranges: np.ndarray,
        sight_ranges: np.ndarray,
        map_width: float = C.MAP_WIDTH,
        map_height: float = C.MAP_HEIGHT,
        attack_mode: str = "closest",
        shoot: bool = True,
    ):
        if attack_mode not in C.ATTACK_MODES:
            raise ValueError(f"attack_mode must be one of {C.ATTACK_MODES}, got {attack_mode!r}.")
        if team not in (0, 1):
            raise ValueError(f"team must be 0 or 1, got {team!r}.")
        self.team = team
        self.team_size = num_allies if team == 0 else num_enemies
        self.num_opponents = num_enemies if team == 0 else num_allies
        self.num_units = num_allies + num_enemies
        self.attack_ranges = np.asarray(attack_ranges, np.float32)
        self.sight_ranges = np.asarray(sight_ranges, np.float32)
        self.num_types = len(self.attack_ranges)
        self.num_features = C.NUM_UNIT_BASE_FEATURES + self.num_types
        self.map_size = np.array([map_width, map_height], np.float32)
        self.attack_mode = attack_mode
        self.shoot = bool(shoot)

    def init(self, key: chex.PRNGKey) -> HeuristicState:
        return HeuristicState(
            default_target=jnp.zeros((self.team_size, 2), jnp.float32),
            last_attacked=jnp.full((self.team_size,), -1, jnp.int32),
        )

    def __call__(
        self, key: chex.PRNGKey, policy_state: HeuristicState, obs: chex.Array, action_mask=None
    ) -> tuple[chex.Array, HeuristicState]:
        """Actions `(E,)` int32 of the team's units from their observations `(E, obs_dim)`."""
        f, m = self.num_features, C.NUM_MOVEMENT_ACTIONS
        own = (self.num_units - 1) * f
        first = (self.team_size - 1) * f
        unit_type = jnp.argmax(obs[:, -self.num_types :], axis=-1)  # zeros (dead): type 0
        sight = jnp.asarray(self.sight_ranges)[unit_type]
        attack_range = jnp.asarray(self.attack_ranges)[unit_type]
        own_pos = obs[:, own + 1 : own + 3] * self.map_size
        opp = obs[:, first:own].reshape(obs.shape[0], self.num_opponents, f)
        opp_pos = opp[:, :, 1:3] * sight[:, None, None]  # relative positions
        visible = opp[:, :, 0] > 0
        dist = jnp.linalg.norm(opp_pos, axis=-1)
        shootable = (dist < attack_range[:, None]) & visible
        can_shoot = jnp.any(shootable, axis=-1)

        keys = rng.split(key, obs.shape[0])  # per unit: split(key) = [move key, attack key]
        if self.attack_mode == "random":
            new_attack = _masked_choice(rng.split_index(keys, 1, 2), shootable)
        else:
            far = jnp.linalg.norm(self.map_size)
            new_attack = jnp.argmin(jnp.where(shootable, dist, far), axis=-1)
        last = policy_state.last_attacked
        last_in_range = jnp.take_along_axis(shootable, jnp.maximum(last, 0)[:, None], 1)[:, 0]
        attacked = jnp.where((last != -1) & last_in_range, last, new_attack).astype(jnp.int32)
        attacked_in_range = jnp.take_along_axis(shootable, attacked[:, None], 1)[:, 0]
        new_last = jnp.where(attacked_in_range, attacked, -1).astype(jnp.int32)

        chased = _masked_choice(rng.split_index(keys, 0, 2), visible)
        chase_target = jnp.take_along_axis(opp_pos, chased[:, None, None], 1)[:, 0] + own_pos
        first_call = jnp.all(policy_state.default_target == 0.0, axis=-1) & (last == -1)
        centre = self.map_size / 2
        default_target = jnp.where(
            first_call[:, None], -(own_pos - centre) + centre, policy_state.default_target
        )
        target = jnp.where(jnp.any(visible, axis=-1)[:, None], chase_target, default_target)
        to_target = target - own_pos
        # Alignment with NORTH (+y), EAST (+x), SOUTH, WEST; the first maximum wins.
        alignment = jnp.stack(
            [to_target[:, 1], to_target[:, 0], -to_target[:, 1], -to_target[:, 0]], -1
        )
        move = jnp.argmax(alignment, axis=-1)
        shoots = can_shoot if self.shoot else jnp.zeros_like(can_shoot)
        actions = jnp.where(shoots, attacked + m, move).astype(jnp.int32)
        return actions, HeuristicState(default_target=default_target, last_attacked=new_last)


def _masked_choice(keys: chex.Array, mask: chex.Array) -> chex.Array:
    """Per row of `mask` `(E, n)`, a uniformly random index where it holds (0 when none),
    drawing what `jax.random.choice(key, n, p=mask / mask.sum())` draws with that row's key
    (`keys` `(E, 2)`): `searchsorted(cumsum(p), total * (1 - u))`, written as a count."""
    weights = mask.astype(jnp.float32)
    p = weights / jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), 1.0)
    p_cuml = jnp.cumsum(p, axis=-1)
    r = p_cuml[:, -1:] * (1 - rng.uniform_each(keys))[:, None]
    return jnp.sum(p_cuml < r, axis=-1).astype(jnp.int32)
