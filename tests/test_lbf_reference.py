"""Differential tests: jaxmarl_envs' Level-Based Foraging against the original lbforaging 2.0.0."""

from __future__ import annotations

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.lbf import LevelBasedForaging, State

lbforaging = pytest.importorskip("lbforaging")
from lbforaging.foraging.environment import Action, ForagingEnv  # noqa: E402

pytestmark = pytest.mark.reference


class _GridForagingEnv(ForagingEnv):
    """The original with its grid observation space built without the `shape=[3]` argument
    that gymnasium >= 1.0 rejects for 3-d bounds (everything else is the original code)."""

    def _get_observation_space(self):
        if not self._grid_observation:
            return super()._get_observation_space()
        w = 1 + 2 * self.sight
        levels = sorted(self.max_player_level)
        food_max = max(self.max_food_level) if self.max_food_level is not None else sum(levels[:3])
        agent_max = max(self.max_player_level) if self._observe_agent_levels else 1
        low = np.zeros((3, w, w), np.float32)
        high = np.stack(
            [np.full((w, w), agent_max), np.full((w, w), food_max), np.ones((w, w))]
        ).astype(np.float32)
        return gym.spaces.Box(low=low, high=high, dtype=np.float32)


def reference_for(env: LevelBasedForaging, generator_kwargs: dict) -> ForagingEnv:
    """The original environment with the same scenario as `env`."""
    cls = _GridForagingEnv if env.observation_type == "grid" else ForagingEnv
    return cls(
        players=env.num_agents,
        min_player_level=generator_kwargs.get("min_player_level", 1),
        max_player_level=generator_kwargs.get("max_player_level", 2),
        min_food_level=generator_kwargs.get("min_food_level", 1),
        max_food_level=generator_kwargs.get("max_food_level"),
        field_size=(env.rows, env.cols),
        max_num_food=env.num_food,
        sight=env.sight,
        max_episode_steps=env.time_limit,
        force_coop=env.force_coop,
        normalize_reward=env.normalize_reward,
        grid_observation=env.observation_type == "grid",
        observe_agent_levels=env.observe_agent_levels,
        penalty=env.penalty,
    )


def state_from_reference(ref: ForagingEnv, num_food: int, step_count: int = 0) -> State:
    """Copies the original's players and food field into our `State`."""
    rows, cols = np.nonzero(ref.field)
    food_pos = np.zeros((num_food, 2), np.int32)
    food_level = np.zeros((num_food,), np.int32)
    present = np.zeros((num_food,), bool)
    k = len(rows)
    food_pos[:k, 0], food_pos[:k, 1] = rows, cols
    food_level[:k] = ref.field[rows, cols]
    present[:k] = True
    return State(
        key=jax.random.PRNGKey(0),
        step_count=jnp.asarray(step_count, jnp.int32),
        agent_pos=jnp.asarray([p.position for p in ref.players], jnp.int32),
        agent_level=jnp.asarray([p.level for p in ref.players], jnp.int32),
        food_pos=jnp.asarray(food_pos),
        food_level=jnp.asarray(food_level),
        food_present=jnp.asarray(present),
    )


def reference_mask(ref: ForagingEnv) -> np.ndarray:
    return np.array(
        [[Action(a) in ref._valid_actions[p] for a in range(6)] for p in ref.players], bool
    )


def reference_field(state: State, rows: int, cols: int) -> np.ndarray:
    field = np.zeros((rows, cols), np.int64)
    for (r, c), lvl, here in zip(
        np.asarray(state.food_pos),
        np.asarray(state.food_level),
        np.asarray(state.food_present),
        strict=True,
    ):
        if here:
            field[r, c] = lvl
    return field


def foraging_policy(ref: ForagingEnv, rng: np.random.Generator, noise: float) -> list[int]:
    """All agents head for the same food and load next to it; with probability `noise` an
    agent takes a uniformly random action (masked or not), so invalid actions, collisions
    and failed loads all happen."""
    food = np.argwhere(ref.field > 0)
    actions = []
    for p in ref.players:
        if rng.random() < noise or len(food) == 0:
            actions.append(int(rng.integers(0, 6)))
            continue
        r, c = p.position
        fr, fc = food[0]
        if abs(fr - r) + abs(fc - c) == 1:
            actions.append(Action.LOAD.value)
            continue
        options = []
        if fr < r - 1 or (fr < r and fc != c):
            options.append(Action.NORTH.value)
        if fr > r + 1 or (fr > r and fc != c):
            options.append(Action.SOUTH.value)
        if fc < c - 1 or (fc < c and fr != r):
            options.append(Action.WEST.value)
        if fc > c + 1 or (fc > c and fr != r):
            options.append(Action.EAST.value)
        if fr == r and fc != c and not options:
            options.append(Action.NORTH.value if r > 0 else Action.SOUTH.value)
        if fc == c and fr != r and not options:
            options.append(Action.WEST.value if c > 0 else Action.EAST.value)
        actions.append(int(rng.choice(options)) if options else Action.LOAD.value)
    return actions


@functools.cache
def _jitted(env_id: str, overrides: tuple) -> tuple:
    env = jaxmarl_envs.make(env_id, **dict(overrides))
    return env, jax.jit(env.step), jax.jit(env._observe)


def compare_episodes(
    env_id: str,
    seeds: range,
    noise: float = 0.3,
    **overrides,
) -> dict:
    """Runs both environments side by side from the original's resets; asserts equality of
    observations, rewards, episode ends, action masks and states at every step.

    Returns:
        Counts of terminations, truncations, loads (positive rewards) and penalties seen.
    """
    env, step, observe = _jitted(env_id, tuple(sorted(overrides.items())))
    spec_kwargs = {**jaxmarl_envs.spec(env_id).kwargs, **overrides}
    ref = reference_for(env, spec_kwargs)
    counts = {"terminated": 0, "truncated": 0, "loads": 0, "penalties": 0, "steps": 0}
    for seed in seeds:
        ref_obs, _ = ref.reset(seed=seed)
        state = state_from_reference(ref, env.num_food)
        obs = observe(state)
        np.testing.assert_array_equal(np.asarray(obs.agents_view), np.stack(ref_obs))
        np.testing.assert_array_equal(np.asarray(obs.action_mask), reference_mask(ref))
        assert int(state.food_spawned) == int(ref._food_spawned)
        rng = np.random.default_rng(seed)
        for t in range(1, env.time_limit + 1):
            actions = foraging_policy(ref, rng, noise)
            ref_obs, ref_rew, ref_done, ref_trunc, _ = ref.step(list(actions))
            state, ts = step(state, jnp.asarray(actions, jnp.int32))
            where = f"{env_id} seed {seed} step {t} actions {actions}"
            np.testing.assert_array_equal(
                np.asarray(state.agent_pos),
                np.asarray([p.position for p in ref.players]),
                err_msg=where,
            )
            np.testing.assert_array_equal(
                reference_field(state, env.rows, env.cols), ref.field, err_msg=where
            )
            np.testing.assert_array_equal(
                np.asarray(ts.observation.agents_view), np.stack(ref_obs), err_msg=where
            )
            np.testing.assert_array_equal(
                np.asarray(ts.observation.action_mask), reference_mask(ref), err_msg=where
            )
            np.testing.assert_allclose(
                np.asarray(ts.reward),
                np.asarray(ref_rew, np.float64),
                rtol=1e-6,
                atol=1e-7,
                err_msg=where,
            )
            assert not ref_trunc
            terminated = bool(np.asarray(ts.terminated).all())
            truncated = bool(np.asarray(ts.truncated).all())
            assert bool(ts.last()) == bool(ref_done), where
            assert terminated == (ref.field.sum() == 0), where
            assert truncated == (bool(ref_done) and ref.field.sum() > 0), where
            assert np.all(np.asarray(ts.discount) == (0.0 if terminated else 1.0)), where
            assert int(state.step_count) == ref.current_step == t
            counts["loads"] += int(np.sum(np.asarray(ref_rew) > 0))
            counts["penalties"] += int(np.sum(np.asarray(ref_rew) < 0))
            counts["steps"] += 1
            if ref_done:
                counts["terminated"] += terminated
                counts["truncated"] += truncated
                break
    return counts


SCENARIOS = [
    ("lbf-8x8-2p-2f-coop", {}),
    ("lbf-2s-8x8-2p-2f-coop", {}),
    ("lbf-10x10-3p-3f", {}),
    ("lbf-8x8-3p-2f-pen", {}),
    ("lbf-2s-8x8-3p-2f", {"observation_type": "grid"}),
    ("lbf-2s-7x7-4p-2f", {"observe_agent_levels": False, "normalize_reward": False}),
]


@pytest.mark.parametrize("env_id,overrides", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_matches_original_step_by_step(env_id, overrides):
    counts = compare_episodes(env_id, range(6), noise=0.3, **overrides)
    random_play = compare_episodes(env_id, range(6, 8), noise=1.0, **overrides)
    counts = {k: counts[k] + random_play[k] for k in counts}
    # The sweep must exercise both kinds of episode end and real loading.
    assert counts["terminated"] > 0
    assert counts["truncated"] > 0
    assert counts["loads"] > 0
    if "pen" in env_id:
        assert counts["penalties"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("env_id,overrides", SCENARIOS, ids=[s[0] for s in SCENARIOS])
@pytest.mark.parametrize("noise", [0.1, 0.5, 1.0])
def test_matches_original_many_seeds(env_id, overrides, noise):
    counts = compare_episodes(env_id, range(100, 160), noise=noise, **overrides)
    assert counts["steps"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["lbf-5x5-4p-4f", "lbf-12x12-6p-4f-coop", "lbf-2s-15x15-9p-4f"])
def test_matches_original_more_scenarios(env_id):
    counts = compare_episodes(env_id, range(30), noise=0.4)
    assert counts["steps"] > 0


def test_stacked_agents_match_original():
    """With three agents the original compares move targets only, so an agent can follow
    into the cell of an agent whose own move was blocked; we reproduce that."""
    env_id = "lbf-8x8-3p-2f"
    env, step, observe = _jitted(env_id, ())
    ref = reference_for(env, jaxmarl_envs.spec(env_id).kwargs)
    ref.reset(seed=0)
    ref.field[:] = 0
    ref.field[5, 5] = 3
    ref._food_spawned = 3
    for p, pos, lvl in zip(ref.players, [(2, 2), (2, 3), (2, 5)], [1, 2, 1], strict=True):
        p.position, p.level = pos, lvl
    ref._gen_valid_moves()
    state = state_from_reference(ref, env.num_food)
    actions = [4, 4, 3]  # 0 follows 1 east; 1 and 2 both aim at (2, 4) and stay
    ref_obs, *_ = ref.step(actions)
    state, ts = step(state, jnp.asarray(actions, jnp.int32))
    assert [p.position for p in ref.players] == [(2, 3), (2, 3), (2, 5)]
    np.testing.assert_array_equal(np.asarray(state.agent_pos), [[2, 3], [2, 3], [2, 5]])
    np.testing.assert_array_equal(np.asarray(ts.observation.agents_view), np.stack(ref_obs))


def test_registration_matches_original():
    """Our ids carry the original registration's scenario parameters."""
    for size, players, food, coop, sight2 in [
        (8, 2, 2, True, False),
        (8, 2, 2, True, True),
        (15, 4, 3, False, False),
        (5, 9, 1, False, True),
        (19, 3, 4, True, False),
    ]:
        ref_id = "Foraging{}-{}x{}-{}p-{}f{}-v3".format(
            "-2s" if sight2 else "", size, size, players, food, "-coop" if coop else ""
        )
        ours = "lbf-{}{}x{}-{}p-{}f{}".format(
            "2s-" if sight2 else "", size, size, players, food, "-coop" if coop else ""
        )
        ref_kw = gym.spec(ref_id).kwargs
        kw = jaxmarl_envs.spec(ours).kwargs
        assert kw["grid_size"] == ref_kw["field_size"][0] == ref_kw["field_size"][1]
        assert kw["num_agents"] == ref_kw["players"]
        assert kw["num_food"] == ref_kw["max_num_food"]
        assert kw["sight"] == ref_kw["sight"]
        assert kw["min_player_level"] == ref_kw["min_player_level"]
        assert kw["max_player_level"] == ref_kw["max_player_level"]
        assert kw["min_food_level"] == ref_kw["min_food_level"]
        assert kw["max_food_level"] == ref_kw["max_food_level"]
        assert kw["force_coop"] == ref_kw["force_coop"]
        assert kw["penalty"] == ref_kw["penalty"]
        assert kw["time_limit"] == ref_kw["max_episode_steps"]
        assert (kw["observation_type"] == "grid") == ref_kw["grid_observation"]
        pen = jaxmarl_envs.spec(ours + "-pen").kwargs
        assert pen["penalty"] == pytest.approx(0.1)


# ----------------------------------------------------------------------------- spawn laws
def _reference_resets(ref: ForagingEnv, count: int, seed: int):
    ref.reset(seed=seed)
    out = []
    for _ in range(count):
        for p in ref.players:  # start each episode fresh (see RandomGenerator's docstring)
            p.position = None
        ref.reset()
        out.append(
            (
                np.array([p.position for p in ref.players]),
                np.array([p.level for p in ref.players]),
                ref.field.copy(),
            )
        )
    return out


def _our_resets(env: LevelBasedForaging, count: int, seed: int):
    states = jax.jit(jax.vmap(env.generator))(jax.random.split(jax.random.PRNGKey(seed), count))
    s = jax.tree_util.tree_map(np.asarray, states)
    fields = np.zeros((count, env.rows, env.cols), np.int64)
    for f in range(env.num_food):
        rows, cols = s.food_pos[:, f, 0], s.food_pos[:, f, 1]
        idx = np.nonzero(s.food_present[:, f])[0]
        fields[idx, rows[idx], cols[idx]] = s.food_level[idx, f]
    return list(zip(s.agent_pos, s.agent_level, fields, strict=True))


def _summaries(samples, rows, cols):
    agent_cells = np.zeros((rows, cols))
    food_cells = np.zeros((rows, cols))
    food_counts, food_levels, agent_levels = [], [], []
    for pos, lvl, field in samples:
        assert len({tuple(p) for p in pos}) == len(pos)
        for r, c in pos:
            agent_cells[r, c] += 1
        food_cells += field > 0
        food_counts.append(int((field > 0).sum()))
        food_levels.extend(field[field > 0].tolist())
        agent_levels.extend(lvl.tolist())
    n = len(samples)
    return {
        "agent_cells": agent_cells / n,
        "food_cells": food_cells / n,
        "food_count": np.bincount(food_counts, minlength=6)[:6] / n,
        "food_level": np.bincount(food_levels, minlength=8)[:8] / max(len(food_levels), 1),
        "agent_level": np.bincount(agent_levels, minlength=4)[:4] / len(agent_levels),
    }


def _check_spawn_distribution(env_id: str, n: int, tol: float) -> None:
    env = jaxmarl_envs.make(env_id)
    ref = reference_for(env, jaxmarl_envs.spec(env_id).kwargs)
    ours = _summaries(_our_resets(env, n, 0), env.rows, env.cols)
    theirs = _summaries(_reference_resets(ref, n, 0), env.rows, env.cols)
    for key in ours:
        diff = np.max(np.abs(ours[key] - theirs[key]))
        assert diff < tol, (key, diff, ours[key], theirs[key])
    # Food is never spawned on the border.
    border = np.ones((env.rows, env.cols), bool)
    border[1:-1, 1:-1] = False
    assert np.all(ours["food_cells"][border] == 0)


@pytest.mark.parametrize(
    "env_id,n,tol", [("lbf-7x7-3p-3f-coop", 1500, 0.05), ("lbf-5x5-4p-4f", 400, 0.09)]
)
def test_spawn_distribution_matches_original(env_id, n, tol):
    """Marginals of reset layouts (agent and food cells, number of food placed, levels)
    agree with the original's. On 5x5 with 4 food only 1 or 2 items fit, which exercises the
    spacing rules and the give-up rule."""
    _check_spawn_distribution(env_id, n, tol)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["lbf-5x5-4p-4f", "lbf-7x7-3p-3f-coop", "lbf-8x8-2p-2f"])
def test_spawn_distribution_matches_original_large_sample(env_id):
    _check_spawn_distribution(env_id, 4000, 0.035)
