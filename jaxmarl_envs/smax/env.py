"""SMAX in pure JAX: StarCraft-style unit micromanagement, matching JaxMARL 0.2.0's SMAX."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng, specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.smax import constants as C
from jaxmarl_envs.smax.generator import Generator, ScenarioGenerator
from jaxmarl_envs.smax.heuristic import EnemyPolicy, FunctionPolicy, HeuristicPolicy
from jaxmarl_envs.smax.scenarios import Scenario, get_scenario
from jaxmarl_envs.smax.types import Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart


def _movement_table() -> np.ndarray:
    """`(5, 2)` float32 movement vectors of NORTH, EAST, SOUTH, WEST and STOP: as the
    original, the diagonal unit vectors (+,+), (+,-), (-,-), (-,+) rotated 45 degrees
    anticlockwise, computed with the same float32 operations (so the tiny residues match)."""
    s = 1.0 / jnp.sqrt(2.0)
    diagonals = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]]) * s
    rotation = jnp.array([[s, -s], [s, s]])
    moves = jax.vmap(lambda v: rotation @ v)(diagonals)
    return np.concatenate([np.asarray(moves, np.float32), np.zeros((1, 2), np.float32)])


class SMAX(Environment[State]):
    """SMAX: two teams of StarCraft units fight on a 32x32 continuous map.

    A pure-JAX reimplementation of JaxMARL 0.2.0's `SMAX` with its heuristic enemy
    (`HeuristicEnemySMAX`), identical in dynamics, observations ("unit list"), world state,
    rewards and action masks, and drawing the same random numbers from the same keys
    (`step_with_key` takes the key the original's `step_env` takes).

    Units `0..A-1` are the allies (team 0, the agents), `A..U-1` the enemies (team 1), played
    by the heuristic (default), by a user `EnemyPolicy` / function, or by agents too
    (`opponent="self_play"`: `N = U` agents, allies first). Each unit type (`constants.UNIT_TYPES`:
    marine, marauder, stalker, zealot, zergling, hydralisk) has a speed, damage, attack
    range, sight range, radius, health and weapon cooldown.

    - observation: `Observation`
        - agents_view: `(N, 13 * (U - 1) + 10)` float32 (with the 6 default types). For each
          other unit, own team first (allies in index order; enemies see their team, then
          the allies, both in reverse index order), 13 features: health / max health,
          relative x and y divided by the observer's sight range, last movement vector (2;
          zeros for opponents unless `see_enemy_actions`), last attack action / (its
          number of actions - 1), cooldown / weapon cooldown (clipped to [0, 1]), type
          one-hot (6); all zero unless both are alive and the unit is strictly within sight.
          Then own features (10): health / max, x / width, y / height, cooldown fraction,
          type one-hot; zeros when dead.
        - action_mask: `(N, 5 + max team size)` bool: moves only when alive, STOP always,
          attack `k` when the `k`-th opponent (in observation order) is alive and strictly
          within attack range of a live agent. Columns beyond an agent's own number of
          actions are False (self-play with unequal teams).
        - step_count: `()` int32.
    - action: `(N,)` int32: 0 NORTH (+y), 1 EAST (+x), 2 SOUTH, 3 WEST, 4 STOP, `5 + k`
      attack opponent `k`. An illegal action does nothing (an attack out of range, on a
      dead unit or while cooling down simply does not fire; the unit stands still).
    - reward: `(N,)` float32, shared by the team (dead agents included): the opposing
      team's health lost this step, each unit's loss as a fraction of its type's maximum,
      summed and divided by the opposing team size; plus `won_battle_bonus` when every
      opponent is dead and a team-mate lives (simultaneous elimination is a draw). With
      `self_play_reward` (zero-sum): no health term, and `-won_battle_bonus` on a loss.
    - termination: a team is eliminated. truncation: `time_limit` steps (100) pass first.
      `extras["won_episode"]` `()` float32 is 1 on the step the allies win, else 0.
    - state: `State`: positions `(U, 2)`, health, alive, types, cooldowns `(U,)`, last
      movement `(U, 2)` and attack `(U,)`, opponent policy state, PRNG key, step count.
    - global state (`global_state`, put in `extras["global_state"]` by the `GlobalState`
      wrapper): `(12 * U,)` float32, per unit health fraction, x, y, cooldown (seconds),
      type one-hot (zeros when dead), then every unit's team and type id.

    Dynamics per step (`world_steps_per_env_step` = 8 sub-steps of `time_per_step` = 1/16
    s): every live unit moves `velocity * time_per_step` (clipped to the map); attacks are
    checked against the sub-step's start positions and land when the target is alive and
    in range and the weapon is ready, resetting the cooldown to the type's value plus a
    uniform jitter in `[-1, 2] * time_per_step` (otherwise it decreases by
    `time_per_step`); units touching the map border die (`walls_cause_death`); units at
    zero health die; overlapping live units push each other apart.

    Deviations: (1) the time limit counts steps: an episode lasts at most `time_limit`
    steps, whereas JaxMARL's `max_steps=T` reads the step count before incrementing it and
    ends at step `T + 1` (pass `time_limit=101` for JaxMARL's default episodes). (2) unit
    type ids are int32 (the original: uint8).

    Example:
        >>> import jax, jaxmarl_envs
        >>> env = jaxmarl_envs.make("smax-3m")
        >>> state, ts = env.reset(jax.random.PRNGKey(0))
        >>> state, ts = jax.jit(env.step)(state, jax.numpy.full((3,), 4, jax.numpy.int32))
        >>> ts.observation.agents_view.shape
        (3, 75)
    """

    name = "smax"

    def __init__(
        self,
        scenario: str | Scenario = "3m",
        time_limit: int = C.TIME_LIMIT,
        opponent: str | EnemyPolicy | Callable = "heuristic",
        attack_mode: str = "closest",
        enemy_shoots: bool = True,
        self_play_reward: bool = False,
        won_battle_bonus: float = C.WON_BATTLE_BONUS,
        walls_cause_death: bool = True,
        see_enemy_actions: bool = True,
        map_width: float = C.MAP_WIDTH,
        map_height: float = C.MAP_HEIGHT,
        world_steps_per_env_step: int = C.WORLD_STEPS_PER_ENV_STEP,
        time_per_step: float = C.TIME_PER_STEP,
        unit_types: Sequence[C.UnitType] = C.UNIT_TYPES,
        generator: Generator | None = None,
        viewer: Any | None = None,
        render_size: int | None = None,
    ):
        """Builds the environment; every argument is checked here (ValueError naming it).

        Args:
            scenario: a registered scenario name (see `scenarios.SCENARIOS`) or a `Scenario`.
            time_limit: steps until truncation.
            opponent: "heuristic" (JaxMARL's scripted enemy), "self_play" (agents control
                both teams), an `EnemyPolicy`, or a function `fn(key, obs, action_mask) ->
                actions` over the enemies' observations `(E, obs_dim)` and masks.
            attack_mode: the heuristic's target choice, "closest" or "random".
            enemy_shoots: the heuristic attacks (False: it only moves).
            self_play_reward: zero-sum rewards (no health term, a loss costs the bonus).
            won_battle_bonus: reward for winning.
            walls_cause_death: units touching the map border die.
            see_enemy_actions: observations include opponents' last actions.
            map_width, map_height: map size.
            world_steps_per_env_step: physics sub-steps per step.
            time_per_step: seconds per sub-step.
            unit_types: the unit-type table (scenarios name its entries).
            generator: initial positions and types (default: the scenario's rules).
            viewer: object with `render(state) -> uint8 (H, W, 3)` (default `SmaxViewer`).
            render_size: frame side in pixels of the default viewer (not with `viewer`).
        """
        if isinstance(scenario, str):
            scenario = get_scenario(scenario)
        if not isinstance(scenario, Scenario):
            raise ValueError(f"scenario must be a name or a Scenario, got {type(scenario)}.")
        unit_types = tuple(unit_types)
        if not unit_types or not all(isinstance(t, C.UnitType) for t in unit_types):
            raise ValueError("unit_types must be a non-empty sequence of constants.UnitType.")
        names = tuple(t.name for t in unit_types)
        type_ids = scenario.type_ids(names)
        for field in (
            "velocity",
            "attack",
            "attack_range",
            "sight_range",
            "radius",
            "health",
            "weapon_cooldown",
        ):
            values = [getattr(t, field) for t in unit_types]
            if not all(np.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"unit_types: every {field} must be positive, got {values}.")
        if int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be a positive integer, got {time_limit!r}.")
        if not (
            np.isfinite(map_width) and map_width > 0 and np.isfinite(map_height) and map_height > 0
        ):
            raise ValueError(f"map size must be positive, got {map_width!r} x {map_height!r}.")
        if (
            int(world_steps_per_env_step) != world_steps_per_env_step
            or world_steps_per_env_step < 1
        ):
            raise ValueError(
                "world_steps_per_env_step must be a positive integer, "
                f"got {world_steps_per_env_step!r}."
            )
        if not (np.isfinite(time_per_step) and time_per_step > 0):
            raise ValueError(f"time_per_step must be positive, got {time_per_step!r}.")
        if not np.isfinite(won_battle_bonus):
            raise ValueError(f"won_battle_bonus must be finite, got {won_battle_bonus!r}.")
        if attack_mode not in C.ATTACK_MODES:
            raise ValueError(f"attack_mode must be one of {C.ATTACK_MODES}, got {attack_mode!r}.")

        self.scenario = scenario
        self.num_allies = scenario.num_allies
        self.num_enemies = scenario.num_enemies
        self.num_units = self.num_allies + self.num_enemies
        self.unit_types = unit_types
        self._time_limit = int(time_limit)
        self.map_width, self.map_height = float(map_width), float(map_height)
        self.world_steps_per_env_step = int(world_steps_per_env_step)
        self.time_per_step = float(time_per_step)
        self.won_battle_bonus = float(won_battle_bonus)
        self.walls_cause_death = bool(walls_cause_death)
        self.see_enemy_actions = bool(see_enemy_actions)
        self.self_play_reward = bool(self_play_reward)

        table = np.array(
            [
                [
                    t.velocity,
                    t.attack,
                    t.attack_range,
                    t.sight_range,
                    t.radius,
                    t.health,
                    t.weapon_cooldown,
                ]
                for t in unit_types
            ],
            np.float32,
        )
        (
            self._velocity,
            self._attack,
            self._attack_range,
            self._sight_range,
            self._radius,
            self._max_health,
            self._max_cooldown,
        ) = (table[:, i].copy() for i in range(7))
        self.num_unit_types = len(unit_types)

        if generator is None:
            generator = ScenarioGenerator(
                type_ids,
                self.num_allies,
                scenario.random_positions,
                scenario.random_unit_types,
                self.map_width,
                self.map_height,
                self.num_unit_types,
            )
        elif not isinstance(generator, Generator):
            raise ValueError(f"generator must be an smax Generator, got {type(generator)}.")
        elif (generator.num_allies, generator.num_enemies) != (self.num_allies, self.num_enemies):
            raise ValueError(
                f"generator has {generator.num_allies} allies and {generator.num_enemies} "
                f"enemies; the scenario has {self.num_allies} and {self.num_enemies}."
            )
        self.generator = generator

        if isinstance(opponent, str):
            if opponent not in C.OPPONENTS:
                raise ValueError(
                    f"opponent must be one of {C.OPPONENTS}, an EnemyPolicy or a function, "
                    f"got {opponent!r}."
                )
            self.self_play = opponent == "self_play"
            policy = (
                None
                if self.self_play
                else HeuristicPolicy(
                    self.num_allies,
                    self.num_enemies,
                    1,
                    self._attack_range,
                    self._sight_range,
                    self.map_width,
                    self.map_height,
                    attack_mode,
                    enemy_shoots,
                )
            )
        elif isinstance(opponent, EnemyPolicy):
            self.self_play, policy = False, opponent
        elif callable(opponent):
            self.self_play, policy = False, FunctionPolicy(opponent)
        else:
            raise ValueError(
                f"opponent must be a string, an EnemyPolicy or a function, got {type(opponent)}."
            )
        self.enemy_policy = policy
        self._num_agents = self.num_units if self.self_play else self.num_allies

        # Static tables.
        a, u = self.num_allies, self.num_units
        idx = np.arange(u)
        self._is_ally = idx < a
        self._num_actions_of = np.where(
            self._is_ally, C.NUM_MOVEMENT_ACTIONS + self.num_enemies, C.NUM_MOVEMENT_ACTIONS + a
        ).astype(np.int32)
        self._moves = _movement_table()
        # Sub-steps as a rolled loop: unrolled, XLA fused each sub-step's cooldown and damage
        # chain (and the jitter hash) into every later one, recomputing them many times
        # (measured at batch 1024 on 2s3z: rolled 0.33 s vs unrolled 1.29 s per 25 steps).
        self._unroll = 1
        self._map_size = np.array([self.map_width, self.map_height], np.float32)
        self._teams = (~self._is_ally).astype(np.float32)
        self._ally_rows = np.arange(a)
        self._enemy_rows = np.arange(a, u)
        self._agent_rows = idx if self.self_play else self._ally_rows
        self._mask_width = int(self._num_actions_of[self._agent_rows].max())

        if render_size is not None:
            if viewer is not None:
                raise ValueError("give render_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.smax.viewer import SmaxViewer

            viewer = SmaxViewer(self, render_size)
        self._viewer = viewer

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self._num_agents

    @property
    def agent_ids(self) -> tuple[str, ...]:
        ids = tuple(f"ally_{i}" for i in range(self.num_allies))
        if self.self_play:
            ids += tuple(f"enemy_{i}" for i in range(self.num_enemies))
        return ids

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def num_unit_features(self) -> int:
        return C.NUM_UNIT_BASE_FEATURES + self.num_unit_types

    @property
    def obs_dim(self) -> int:
        return self.num_unit_features * (self.num_units - 1) + (
            C.NUM_OWN_BASE_FEATURES + self.num_unit_types
        )

    @property
    def observation_spec(self) -> specs.Structured:
        n, f = self._num_agents, self.num_unit_features
        low = np.full((n, self.obs_dim), -1.0, np.float32)
        high = np.ones((n, self.obs_dim), np.float32)
        own = (self.num_units - 1) * f
        # Own position over the map size: a live unit can be pushed (or start, SMACv2
        # surround) slightly off the map; a generous band of one map size either side.
        low[:, own + 1 : own + 3], high[:, own + 1 : own + 3] = -1.0, 2.0
        view = specs.BoundedArray((n, self.obs_dim), np.float32, low, high, "agents_view")
        return specs.Structured(
            Observation,
            "observation",
            agents_view=view,
            action_mask=specs.Array((n, self._mask_width), bool, "action_mask"),
            step_count=specs.BoundedArray((), np.int32, 0, self._time_limit, "step_count"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(self._num_actions_of[self._agent_rows], np.int32, "action")

    # ------------------------------------------------------------------ reset / step
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples a battle with the generator (from the second half of `split(key)`, as the
        original's `HeuristicEnemySMAX.reset`).

        Returns:
            The state and the FIRST timestep (zero reward, discount one).
        """
        key, reset_key = jax.random.split(key)
        state_key, policy_key = jax.random.split(key)
        positions, types = self.generator(reset_key)
        types = jnp.asarray(types, jnp.int32)
        u = self.num_units
        alive = jnp.ones((u,), bool)
        state = State(
            positions=self._push_apart(jnp.asarray(positions, jnp.float32), alive, types),
            health=jnp.asarray(self._max_health)[types],
            alive=alive,
            unit_types=types,
            cooldowns=jnp.zeros((u,), jnp.float32),
            prev_movement=jnp.zeros((u, 2), jnp.float32),
            prev_attack=jnp.zeros((u,), jnp.int32),
            enemy_policy_state=()
            if self.enemy_policy is None
            else self.enemy_policy.init(policy_key),
            key=state_key,
            step_count=jnp.zeros((), jnp.int32),
        )
        return state, restart(self._observe(state), self._num_agents, self._extras(state))

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """One step with the joint `action` `(N,)`, drawing from the state's key.

        Returns:
            The next state and its timestep.
        """
        key, step_key = rng.split(state.key)
        return self.step_with_key(state.replace(key=key), action, step_key)

    def step_with_key(
        self, state: State, action: chex.Array, key: chex.PRNGKey
    ) -> tuple[State, TimeStep]:
        """`step` with the random draws (opponent policy, cooldown jitter) taken from `key`
        instead of the state's key (which is left as it is): the same draws as the
        original's `step_env(key, ...)`, for differential tests."""
        key, policy_key = rng.split(key)
        action = jnp.asarray(action, jnp.int32)
        policy_state = state.enemy_policy_state
        if self.self_play:
            actions = action
        else:
            enemy_obs, enemy_mask = self._team_view(
                state, 1, C.NUM_MOVEMENT_ACTIONS + self.num_allies
            )
            enemy_actions, policy_state = self.enemy_policy(
                policy_key, policy_state, enemy_obs, enemy_mask
            )
            actions = jnp.concatenate([action, jnp.asarray(enemy_actions, jnp.int32)])
        new_state = self._world_step(state, actions, key)
        new_state = new_state.replace(enemy_policy_state=policy_state)
        rewards, won, lost = self._rewards(state, new_state)
        truncated = new_state.step_count >= self._time_limit
        ts = make_timestep(
            self._observe(new_state), rewards, won | lost, truncated, self._extras(new_state)
        )
        return new_state, ts

    # ------------------------------------------------------------------ dynamics
    def _world_step(self, state: State, actions: chex.Array, key: chex.PRNGKey) -> State:
        u, a = self.num_units, self.num_allies
        m = C.NUM_MOVEMENT_ACTIONS
        idx = jnp.arange(u, dtype=jnp.int32)
        types = state.unit_types
        movement = jnp.asarray(self._moves)[jnp.clip(actions, 0, m - 1)]  # (U, 2)
        is_attack = actions >= m
        attack_actions = jnp.where(is_attack, actions, 0)
        target = jnp.where(jnp.asarray(self._is_ally), actions - m + a, a - 1 - (actions - m))
        target = jnp.where(is_attack, jnp.clip(target, 0, u - 1), idx)
        target_onehot = (target[:, None] == idx[None, :]).astype(jnp.float32)  # (U, U)
        velocity = jnp.asarray(self._velocity)[types]
        step_x = movement[:, 0] * velocity * self.time_per_step
        step_y = movement[:, 1] * velocity * self.time_per_step
        attack_range = jnp.asarray(self._attack_range)[types]
        damage = jnp.asarray(self._attack)[types]
        cooldown = jnp.asarray(self._max_cooldown)[types]
        radius = jnp.asarray(self._radius)[types]
        radius_sum = radius[:, None] + radius[None, :]
        tps = self.time_per_step
        jitter = self._cooldown_jitter(key)  # (S, U)
        width, height = self.map_width, self.map_height
        not_self = target != idx

        # Coordinates as separate (U,) arrays, targets read by gathers and damage summed
        # with a one-hot: exact, and far faster on CPU once vmapped than (U, 2) rows, a
        # scatter or small batched matmuls.
        def substep(carry, jitter_s):
            x, y, health, alive, cd = carry
            mx = jnp.where(alive, jnp.clip(x + step_x, 0.0, width), x)
            my = jnp.where(alive, jnp.clip(y + step_y, 0.0, height), y)
            dx = x - x[target]  # gathers of (U,) rows: faster than one-hot sums here
            dy = y - y[target]
            in_range = jnp.sqrt(dx * dx + dy * dy) < attack_range
            target_alive = alive[target]
            fires = in_range & alive & target_alive & not_self & (cd <= 0.0)
            dealt = jnp.sum(jnp.where(fires, damage, 0.0)[:, None] * target_onehot, axis=0)
            health = jnp.maximum(health - dealt, 0.0)
            cd = cd + jnp.where(fires, cooldown + jitter_s - cd, -tps)
            if self.walls_cause_death:
                touching = (mx <= 0.0) | (my <= 0.0) | (mx >= width) | (my >= height)
                health = jnp.where(touching, 0.0, health)
            alive = health > 0
            x, y = self._push_apart_xy(mx, my, alive, radius_sum)
            return (x, y, health, alive, cd), None

        pos = state.positions
        carry = (pos[:, 0], pos[:, 1], state.health, state.alive, state.cooldowns)
        (x, y, health, alive, cd), _ = jax.lax.scan(substep, carry, jitter, unroll=self._unroll)
        return state.replace(
            positions=jnp.stack([x, y], axis=1),
            health=health,
            alive=alive,
            cooldowns=cd,
            prev_movement=movement,
            prev_attack=attack_actions,
            step_count=state.step_count + 1,
        )

    def _push_apart_xy(self, x, y, alive, radius_sum):
        """`_push_apart` on coordinate arrays `(U,)` with the pairwise radius sums `(U, U)`."""
        dx = x[:, None] - x[None, :]
        dy = y[:, None] - y[None, :]
        dist = jnp.sqrt(dx * dx + dy * dy) + jnp.eye(self.num_units) + 1e-6
        both = alive[:, None] & alive[None, :]
        overlap = jnp.where(both, jax.nn.relu(radius_sum / dist - 1.0), 0.0)
        px = x + 1.0 * jnp.sum(dx * overlap, axis=1) / 2
        py = y + 1.0 * jnp.sum(dy * overlap, axis=1) / 2
        return jnp.where(alive, px, x), jnp.where(alive, py, y)

    def _cooldown_jitter(self, key: chex.PRNGKey) -> chex.Array:
        """`(S, U)` cooldown jitter per sub-step and unit, uniform in `[-1, 2] * dt`, drawn as
        the original: sub-step keys chained by `split`, one key per unit from each (the
        same values as `jax.random`, computed by `rng` without JAX's rolled hash loop)."""
        world_keys = []
        for _ in range(self.world_steps_per_env_step):
            key, world_key = rng.split(key)
            world_keys.append(world_key)
        unit_keys = rng.split_many(jnp.stack(world_keys), self.num_units)  # (S, U, 2)
        tps = self.time_per_step
        return rng.uniform_each(unit_keys, -tps, 2 * tps)

    def _push_apart(self, pos, alive, types) -> chex.Array:
        """Live overlapping units push each other apart (half the overlap each); dead units
        stay where they are. `pos` `(U, 2)`."""
        radius = jnp.asarray(self._radius)[types]
        x, y = self._push_apart_xy(pos[:, 0], pos[:, 1], alive, radius[:, None] + radius[None, :])
        return jnp.stack([x, y], axis=1)

    def _rewards(self, before: State, after: State):
        """Per-agent rewards `(N,)`, and whether the allies won / lost (`()` bool)."""
        a = self.num_allies
        lost_health = (after.health - before.health) / jnp.asarray(self._max_health)[
            after.unit_types
        ]
        ally_dead = jnp.all(~after.alive[:a])
        enemy_dead = jnp.all(~after.alive[a:])
        bonus = self.won_battle_bonus

        def team_reward(opp_loss, opp_size, won, lost):
            r = 0.0 if self.self_play_reward else jnp.abs(jnp.sum(opp_loss)) / opp_size
            r = r + jnp.where(won & ~lost, bonus, 0.0)
            if self.self_play_reward:
                r = r + jnp.where(lost & ~won, -bonus, 0.0)
            return r

        ally_r = team_reward(lost_health[a:], self.num_enemies, enemy_dead, ally_dead)
        rewards = jnp.full((self.num_allies,), ally_r, jnp.float32)
        if self.self_play:
            enemy_r = team_reward(lost_health[:a], self.num_allies, ally_dead, enemy_dead)
            rewards = jnp.concatenate(
                [rewards, jnp.full((self.num_enemies,), enemy_r, jnp.float32)]
            )
        return rewards, enemy_dead & ~ally_dead, ally_dead

    # ------------------------------------------------------------------ observations
    def _observe(self, state: State) -> Observation:
        views = [self._team_view(state, 0, self._mask_width)]
        if self.self_play:
            views.append(self._team_view(state, 1, self._mask_width))
        return Observation(
            agents_view=jnp.concatenate([v[0] for v in views]),
            action_mask=jnp.concatenate([v[1] for v in views]),
            step_count=state.step_count,
        )

    def _extras(self, state: State) -> dict:
        a = self.num_allies
        won = jnp.all(~state.alive[a:]) & jnp.any(state.alive[:a])
        return {"won_episode": won.astype(jnp.float32)}

    def _unit_features(self, state: State) -> chex.Array:
        """`(U, F)` features of each unit as others see it, before masking."""
        types = state.unit_types
        onehot = (types[:, None] == jnp.arange(self.num_unit_types)).astype(jnp.float32)
        attack_frac = state.prev_attack.astype(jnp.float32) / (
            jnp.asarray(self._num_actions_of, jnp.float32) - 1.0
        )
        return jnp.concatenate(
            [
                (state.health / jnp.asarray(self._max_health)[types])[:, None],
                state.prev_movement,
                attack_frac[:, None],
                jnp.clip(state.cooldowns / jnp.asarray(self._max_cooldown)[types], 0.0, 1.0)[
                    :, None
                ],
                onehot,
            ],
            axis=1,
        )

    def _team_view(self, state: State, team: int, width: int):
        """Unit-list observations `(R, obs_dim)` and legal actions `(R, width)` bool of every
        unit of `team` (0 allies, 1 enemies), sharing one pairwise-distance computation.

        Row `r`'s other units are its team's `order` (allies: index order; enemies: reversed)
        without itself: slot `k` holds `order[k]` before its own position and `order[k + 1]`
        from there on, so every per-other array is a select between two static slices (no
        gathers). Its opponents (attack actions) are the last slots, in the same order.
        """
        a, u, m = self.num_allies, self.num_units, C.NUM_MOVEMENT_ACTIONS
        rows = self._ally_rows if team == 0 else self._enemy_rows
        team_size = len(rows)
        own_pos = rows if team == 0 else u - 1 - rows  # own position in `order`
        before = np.arange(u - 1)[None, :] < own_pos[:, None]  # (R, U - 1) static

        def others(v):
            """`(U, ...)` per unit -> `(R, U - 1, ...)` per row and other unit."""
            v = v if team == 0 else v[::-1]
            cond = before.reshape(before.shape + (1,) * (v.ndim - 1))
            return jnp.where(cond, v[None, :-1], v[None, 1:])

        types, alive = state.unit_types, state.alive
        x, y = state.positions[:, 0], state.positions[:, 1]
        row_alive = alive[rows]
        sight = jnp.asarray(self._sight_range)[types[rows]][:, None]  # (R, 1)
        dx = others(x) - x[rows][:, None]
        dy = others(y) - y[rows][:, None]
        dist = jnp.sqrt(dx * dx + dy * dy)
        alive_others = others(alive)
        visible = (dist < sight) & alive_others & row_alive[:, None]
        feats = self._unit_features(state)  # (U, F): health, move (2), attack, cooldown, type
        feats_others = others(feats)
        if not self.see_enemy_actions:
            order = np.arange(u) if team == 0 else np.arange(u)[::-1]
            other_ids = np.where(before, order[None, :-1], order[None, 1:])
            same = (other_ids < a) == (team == 0)  # (R, U - 1) static
            hide = np.ones(feats.shape[1], bool)
            hide[[0, 4, *range(5, feats.shape[1])]] = False  # zero moves and attack only
            feats_others = jnp.where(same[:, :, None] | ~hide, feats_others, 0.0)
        pair = jnp.concatenate(
            [
                feats_others[:, :, :1],
                (dx / sight)[:, :, None],
                (dy / sight)[:, :, None],
                feats_others[:, :, 1:],
            ],
            axis=-1,
        )
        pair = jnp.where(visible[:, :, None], pair, 0.0)  # (R, U - 1, F)
        own = jnp.concatenate(
            [feats[rows, :1], state.positions[rows] / jnp.asarray(self._map_size), feats[rows, 4:]],
            axis=1,
        )
        own = jnp.where(row_alive[:, None], own, 0.0)
        obs = jnp.concatenate([pair.reshape(team_size, -1), own], axis=1)

        opp = slice(team_size - 1, None)
        attack_range = jnp.asarray(self._attack_range)[types[rows]][:, None]
        shootable = (dist[:, opp] < attack_range) & alive_others[:, opp] & row_alive[:, None]
        moves = jnp.broadcast_to(row_alive[:, None], (team_size, m - 1))
        stop = jnp.ones((team_size, 1), bool)
        pad = jnp.zeros((team_size, width - m - shootable.shape[1]), bool)
        return obs, jnp.concatenate([moves, stop, shootable, pad], axis=1)

    # ------------------------------------------------------------------ global state
    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """The original's world state, `(12 * U,)` float32 (see the class docstring)."""
        types = state.unit_types
        onehot = (types[:, None] == jnp.arange(self.num_unit_types)).astype(jnp.float32)
        units = jnp.concatenate(
            [
                (state.health / jnp.asarray(self._max_health)[types])[:, None],
                state.positions,
                state.cooldowns[:, None],
                onehot,
            ],
            axis=1,
        )
        units = jnp.where(state.alive[:, None], units, 0.0)
        return jnp.concatenate(
            [units.reshape(-1), jnp.asarray(self._teams), types.astype(jnp.float32)]
        )

    def global_state_spec(self) -> specs.Array:
        size = (C.NUM_OWN_BASE_FEATURES + self.num_unit_types + 2) * self.num_units
        return specs.Array((size,), np.float32, "global_state")

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame of one (unbatched) state."""
        if self._viewer is None:
            from jaxmarl_envs.smax.viewer import SmaxViewer

            self._viewer = SmaxViewer(self)
        return self._viewer.render(state)

    def close(self) -> None:
        if self._viewer is not None and hasattr(self._viewer, "close"):
            self._viewer.close()

    def __repr__(self) -> str:
        opp = "self_play" if self.self_play else type(self.enemy_policy).__name__
        return (
            f"SMAX(allies={self.num_allies}, enemies={self.num_enemies}, "
            f"num_agents={self._num_agents}, opponent={opp}, time_limit={self._time_limit})"
        )
