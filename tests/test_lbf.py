"""Tests of the pure-JAX Level-Based Foraging environment (rules, specs, properties, rendering)."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs import AutoReset, specs
from jaxmarl_envs.lbf import FixedGenerator, LevelBasedForaging, RandomGenerator, constants
from jaxmarl_envs.types import StepType

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

N, S, W, E, L, X = (
    constants.NORTH,
    constants.SOUTH,
    constants.WEST,
    constants.EAST,
    constants.LOAD,
    constants.NONE,
)


@functools.cache
def jitted(env_id: str, **overrides):
    env = jaxmarl_envs.make(env_id, **overrides)
    return env, jax.jit(env.reset), jax.jit(env.step)


def fixed_env(agent_pos, agent_level, food_pos, food_level, size=6, **kwargs):
    gen = FixedGenerator(size, agent_pos, agent_level, food_pos, food_level)
    return LevelBasedForaging(
        grid_size=size,
        num_agents=len(agent_pos),
        num_food=len(food_pos),
        generator=gen,
        **kwargs,
    )


# ----------------------------------------------------------------------------- registry
def test_registered_ids():
    ids = jaxmarl_envs.list_envs("lbf")
    for env_id in [
        "lbf-8x8-2p-2f-coop",
        "lbf-2s-8x8-2p-2f-coop",
        "lbf-15x15-4p-3f",
        "lbf-10x10-3p-3f-pen",
        "lbf-2s-19x19-9p-4f-coop-pen",
        "lbf-5x5-2p-1f",
        "LevelBasedForaging-v0",
    ]:
        assert env_id in ids
    # sizes 5..19 x players 2..9 x food 1..4 x coop x sight x penalty, plus the class id.
    assert len(ids) == 15 * 8 * 4 * 2 * 2 * 2 + 1
    env = jaxmarl_envs.make("lbf-8x8-2p-2f-coop")
    assert env.observation_spec.agents_view.shape == (2, 12)
    assert env.observation_spec.action_mask.shape == (2, 6)
    assert env.action_spec.shape == (2,) and env.num_actions == 6
    assert env.time_limit == 50 and env.sight == 8 and env.force_coop
    partial = jaxmarl_envs.make("lbf-2s-8x8-2p-2f-coop")
    assert partial.sight == 2
    assert jaxmarl_envs.make("lbf-15x15-4p-3f").observation_spec.agents_view.shape == (4, 21)
    assert jaxmarl_envs.make("lbf-8x8-2p-2f-pen").penalty == pytest.approx(0.1)
    default = jaxmarl_envs.make("LevelBasedForaging-v0")
    assert default.num_agents == 2 and default.num_food == 2 and default.rows == 8
    grid = jaxmarl_envs.make("lbf-2s-8x8-3p-2f", observation_type="grid")
    assert grid.observation_spec.agents_view.shape == (3, 3, 5, 5)


def test_specs_hold_for_reset_and_steps():
    for env_id, kw in [
        ("lbf-2s-8x8-3p-2f", {}),
        ("lbf-2s-8x8-3p-2f", {"observation_type": "grid"}),
    ]:
        env, reset, step = jitted(env_id, **kw)
        state, ts = reset(jax.random.PRNGKey(1))
        env.observation_spec.validate(jax.device_get(ts.observation))
        for t in range(10):
            action = jnp.asarray([t % 6, (t + 1) % 6, 5], jnp.int32)
            state, ts = step(state, action)
            env.observation_spec.validate(jax.device_get(ts.observation))
            env.reward_spec.validate(np.asarray(ts.reward))
            gs = np.asarray(env.global_state(state, ts.observation))
            env.global_state_spec().validate(gs)
            # The view is whole numbers: replay stores it in int8 (-1 marks a missing item in
            # the vector view) or uint8 (grid layers).
            view = np.asarray(ts.observation.agents_view)
            spec = env.observation_spec.agents_view
            assert env.integer_valued == {"agents_view"}
            dtype = specs.exact_storage_dtype(spec, True)
            assert dtype == (np.uint8 if kw else np.int8)
            np.testing.assert_array_equal(view.astype(dtype).astype(np.float32), view)


# ----------------------------------------------------------------------------- rules
def test_collision_rule_and_swaps():
    # Agents 0 and 1 both aim at (2, 2): both stay. Agents 2 and 3 swap places.
    env = fixed_env([[2, 1], [2, 3], [4, 1], [4, 2]], [1, 1, 1, 1], [[1, 4]], [3])
    state, _ = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    state, ts = step(state, jnp.asarray([E, W, E, W]))
    np.testing.assert_array_equal(state.agent_pos, [[2, 1], [2, 3], [4, 2], [4, 1]])
    # A staying agent blocks the one moving into it.
    state, ts = step(state, jnp.asarray([X, X, W, X]))
    np.testing.assert_array_equal(state.agent_pos[2:], [[4, 2], [4, 1]])


def test_loading_rule_rewards_and_termination():
    # Levels 1 and 2 next to a level-3 food: only together can they load it.
    env = fixed_env([[2, 1], [2, 3]], [1, 2], [[2, 2], [4, 4]], [3, 1], penalty=0.25)
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    assert bool(ts.observation.action_mask[0, L]) and bool(ts.observation.action_mask[1, L])
    state, ts = step(state, jnp.asarray([L, X]))  # alone: fails, penalty
    np.testing.assert_allclose(ts.reward, [-0.25, 0.0])
    assert bool(state.food_present[0])
    state, ts = step(state, jnp.asarray([L, L]))  # together: 1*3/(3*4), 2*3/(3*4)
    np.testing.assert_allclose(ts.reward, [0.25, 0.5], rtol=1e-6)
    assert not bool(state.food_present[0]) and int(ts.step_type) == StepType.MID
    # Agent 1 (level 2) walks to the level-1 food at (4, 4) and loads it alone.
    for a in [S, S, E]:
        state, ts = step(state, jnp.asarray([X, a]))
    np.testing.assert_array_equal(state.agent_pos[1], [4, 3])
    state, ts = step(state, jnp.asarray([X, L]))
    np.testing.assert_allclose(ts.reward, [0.0, 0.25], rtol=1e-6)
    assert bool(ts.last()) and bool(ts.terminated.all()) and not bool(ts.truncated.any())
    assert np.all(np.asarray(ts.discount) == 0.0)


def test_truncation_at_time_limit():
    env = fixed_env([[0, 0], [5, 5]], [1, 1], [[2, 2]], [2], time_limit=3)
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(3):
        assert not bool(ts.last())
        state, ts = step(state, jnp.asarray([X, X]))
    assert bool(ts.last()) and bool(ts.truncated.all()) and not bool(ts.terminated.any())
    assert np.all(np.asarray(ts.discount) == 1.0)
    assert int(state.step_count) == 3


def test_masked_and_out_of_range_actions_become_none():
    env = fixed_env([[0, 0], [2, 3]], [1, 1], [[2, 2]], [2])
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    mask = np.asarray(ts.observation.action_mask)
    assert mask[0].tolist() == [True, False, True, False, True, False]
    assert mask[1].tolist() == [True, True, True, False, True, True]  # west is food
    new, ts = step(state, jnp.asarray([N, W]))  # both masked
    np.testing.assert_array_equal(new.agent_pos, state.agent_pos)
    new, ts = step(state, jnp.asarray([17, -3]))  # out of range (unchecked path)
    np.testing.assert_array_equal(new.agent_pos, state.agent_pos)


def test_observation_layout_with_sight():
    # Agent 0 at (0, 0) with sight 1 sees food at (1, 1) and agent 1 at (2, 2)? No: (2, 2)
    # lies at window coordinates (2, 2) = 2 * sight, which the original counts as seen.
    env = fixed_env([[0, 0], [2, 2], [5, 5]], [1, 2, 1], [[1, 1], [4, 4]], [3, 1], sight=1)
    _, ts = env.reset(jax.random.PRNGKey(0))
    view = np.asarray(ts.observation.agents_view)
    assert view.shape == (3, 2 * 3 + 3 * 3)
    np.testing.assert_array_equal(view[0], [1, 1, 3, -1, -1, 0, 0, 0, 1, 2, 2, 2, -1, -1, 0])
    # Agent 1 at (2, 2): window origin (1, 1); sees food (1, 1) -> (0, 0), itself at (1, 1).
    np.testing.assert_array_equal(view[1], [0, 0, 3, -1, -1, 0, 1, 1, 2, -1, -1, 0, -1, -1, 0])
    # Agent 2 at (5, 5): sees food (4, 4) -> (0, 0); agent 1 is out of view.
    np.testing.assert_array_equal(view[2], [0, 0, 1, -1, -1, 0, 1, 1, 1, -1, -1, 0, -1, -1, 0])


def test_argument_validation():
    bad = [
        dict(sight=0),
        dict(grid_size=2),
        dict(grid_size=(8, 2)),
        dict(num_agents=0),
        dict(num_food=0),
        dict(grid_size=3, num_agents=9, num_food=1),
        dict(grid_size=5, num_food=5),
        dict(min_player_level=3, max_player_level=2),
        dict(min_player_level=0),
        dict(max_player_level=[1, 2, 3]),
        dict(min_food_level=3, max_food_level=2),
        dict(min_food_level=5, force_coop=False),
        dict(time_limit=0),
        dict(penalty=-0.1),
        dict(observation_type="pixels"),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            LevelBasedForaging(**kwargs)
    gen = RandomGenerator(grid_size=6, num_agents=3, num_food=1)
    with pytest.raises(ValueError, match="generator"):
        LevelBasedForaging(grid_size=6, num_agents=2, num_food=1, generator=gen)
    with pytest.raises(ValueError, match="distinct"):
        FixedGenerator(5, [[1, 1], [1, 1]], [1, 1], [[2, 2]], [1])
    with pytest.raises(ValueError, match="outside"):
        FixedGenerator(5, [[1, 5]], [1], [[2, 2]], [1])
    with pytest.raises(ValueError, match="unknown environment id"):
        jaxmarl_envs.make("lbf-8x8-2p-2f-cop")


def test_validate_action():
    env = jaxmarl_envs.make("lbf-8x8-2p-2f-coop")
    assert env.validate_action([5, 0]).dtype == np.int32
    for action in ([6, 0], [-1, 0], [0, 0, 0], [[0, 1]], np.array([0.5, 1.0])):
        with pytest.raises(ValueError):
            env.validate_action(action)


# ----------------------------------------------------------------------------- jax behaviour
def _rollout_fn(env, steps):
    wrapped = AutoReset(env)

    def run(key, actions):
        state, ts = wrapped.reset(key)

        def body(state, action):
            state, ts = wrapped.step(state, action)
            return state, (state, ts)

        return jax.lax.scan(body, state, actions)[1]

    return run


def test_jit_vmap_and_plain_agree():
    env = jaxmarl_envs.make("lbf-2s-6x6-3p-2f")
    steps = 8
    actions = jax.random.randint(jax.random.PRNGKey(3), (2, steps, 3), 0, 6, dtype=jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    run = _rollout_fn(env, steps)
    single = jax.jit(run)(keys[0], actions[0])
    batched = jax.jit(jax.vmap(run))(keys, actions)
    # Plain, op by op: the same episode without any compilation of the whole step.
    wrapped = AutoReset(env)
    state, _ = wrapped.reset(keys[0])
    for t in range(steps):
        state, ts = wrapped.step(state, actions[0, t])
        for plain, jitted_leaf, batched_leaf in zip(
            jax.tree_util.tree_leaves((state, ts)),
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, t=t: x[t], single)),
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, t=t: x[0, t], batched)),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(plain), np.asarray(jitted_leaf))
            np.testing.assert_array_equal(np.asarray(plain), np.asarray(batched_leaf))
    # The second batch element is its own episode, equal to running it alone.
    other = jax.jit(run)(keys[1], actions[1])
    for a, b in zip(
        jax.tree_util.tree_leaves(other),
        jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[1], batched)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_keys_reproduce_and_vary_layouts():
    env, reset, _ = jitted("lbf-8x8-2p-2f-coop")
    a, _ = reset(jax.random.PRNGKey(7))
    b, _ = reset(jax.random.PRNGKey(7))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(8), 32))[0]
    layouts = {
        (tuple(np.asarray(p).ravel()), tuple(np.asarray(f).ravel()))
        for p, f in zip(states.agent_pos, states.food_pos, strict=True)
    }
    assert len(layouts) >= 30
    # Same key, same actions: identical rollouts across episode ends.
    _, run = property_rollout("lbf-8x8-2p-2f-coop")
    acts = jax.random.randint(jax.random.PRNGKey(9), (STEPS, 2), 0, 6, dtype=jnp.int32)
    first, second = run(jax.random.PRNGKey(5), acts), run(jax.random.PRNGKey(5), acts)
    for x, y in zip(
        jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(second), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    other = run(jax.random.PRNGKey(6), acts)
    assert not np.array_equal(np.asarray(first[0].agent_pos), np.asarray(other[0].agent_pos))
    # Typed keys work too.
    s, _ = env.reset(jax.random.key(7))
    assert jax.dtypes.issubdtype(s.key.dtype, jax.dtypes.prng_key)


# ----------------------------------------------------------------------------- properties
PROPERTY_SCENARIOS = ["lbf-5x5-2p-1f", "lbf-6x6-3p-2f", "lbf-8x8-2p-2f-coop"]
STEPS = 60


@functools.cache
def property_rollout(env_id: str):
    env = jaxmarl_envs.make(env_id)
    return env, jax.jit(_rollout_fn(env, STEPS))


def _adjacent(a, b):
    return abs(int(a[0]) - int(b[0])) + abs(int(a[1]) - int(b[1])) == 1


@pytest.mark.parametrize("env_id", PROPERTY_SCENARIOS)
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(
        st.sampled_from([0, 1, 2, 3, 4, 5, 5, 5]), min_size=STEPS * 3, max_size=STEPS * 3
    ),
)
def test_invariants_under_random_play(env_id, seed, actions):
    env, run = property_rollout(env_id)
    n = env.num_agents
    acts = jnp.asarray(np.asarray(actions[: STEPS * n]).reshape(STEPS, n), jnp.int32)
    key = jax.random.PRNGKey(seed)
    first, _ = env.reset(key)
    states, ts = jax.device_get(run(key, acts))
    prev = jax.device_get(first)
    episode_return = 0.0
    for t in range(STEPS):
        cur = jax.tree_util.tree_map(lambda x, t=t: x[t], states)
        reward = np.asarray(ts.reward[t])
        last = bool(ts.step_type[t] == StepType.LAST)
        episode_return += float(reward.sum())
        # Rewards are normalised shares: each in [0, 1].
        assert np.all(reward >= 0.0) and np.all(reward <= 1.0 + 1e-6)
        if not last:
            # Food never moves and never changes level; it only disappears when loaded by
            # an adjacent agent that was rewarded.
            assert np.array_equal(cur.food_pos, prev.food_pos)
            assert np.array_equal(cur.food_level, prev.food_level)
            assert not np.any(cur.food_present & ~prev.food_present)
            for f in np.nonzero(prev.food_present & ~cur.food_present)[0]:
                loaders = [
                    i
                    for i in range(n)
                    if _adjacent(cur.agent_pos[i], cur.food_pos[f])
                    and int(acts[t, i]) == L
                    and reward[i] > 0
                ]
                assert sum(int(cur.agent_level[i]) for i in loaders) >= int(cur.food_level[f])
            assert int(cur.step_count) == int(prev.step_count) + 1
            # Agents move at most one cell.
            assert np.all(np.abs(cur.agent_pos - prev.agent_pos).sum(-1) <= 1)
        else:
            assert episode_return <= 1.0 + 1e-5
            if bool(ts.terminated[t].all()):
                # Every food spawned was loaded: the team collected exactly 1.
                assert abs(episode_return - 1.0) < 1e-5
            else:
                assert bool(ts.truncated[t].all()) and int(prev.step_count) + 1 == env.time_limit
            episode_return = 0.0
        # Layout invariants of every state (including fresh resets).
        assert not np.any(
            np.all(cur.agent_pos[:, None, :] == cur.food_pos[None, cur.food_present, :], -1)
        )
        assert np.all((cur.agent_pos >= 0) & (cur.agent_pos < [env.rows, env.cols]))
        if n == 2:  # with two agents the original never stacks them (see test_lbf_reference)
            assert not np.array_equal(cur.agent_pos[0], cur.agent_pos[1])
        # LOAD is valid exactly when food is adjacent.
        mask = np.asarray(ts.observation.action_mask[t])
        if not last:
            for i in range(n):
                adj = any(
                    _adjacent(cur.agent_pos[i], cur.food_pos[f])
                    for f in np.nonzero(cur.food_present)[0]
                )
                assert bool(mask[i, L]) == adj
        prev = cur


# ----------------------------------------------------------------------------- global state
def test_global_state_tracks_food():
    env = fixed_env([[2, 1], [2, 3]], [1, 2], [[2, 2], [4, 4]], [3, 1])
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    gs = np.asarray(env.global_state(state, ts.observation))
    assert gs.shape == env.global_state_spec().shape == (3 * 2 + 3 * 2 + 1,)
    np.testing.assert_array_equal(gs[:6], [2, 2, 3, 4, 4, 1])
    state, ts = step(state, jnp.asarray([L, L]))
    gs = np.asarray(env.global_state(state, ts.observation))
    np.testing.assert_array_equal(gs[:6], [-1, -1, 0, 4, 4, 1])
    np.testing.assert_array_equal(gs[6:12], [2, 1, 1, 2, 3, 2])
    assert gs[-1] == pytest.approx(1 / 50)


# ----------------------------------------------------------------------------- rendering
def test_render_headless_and_animate(tmp_path):
    env = fixed_env([[0, 0], [5, 5]], [1, 2], [[2, 2]], [3])
    state, _ = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    frame = env.render(state)
    assert frame.dtype == np.uint8 and frame.shape == (6 * 48, 6 * 48, 3)
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4  # grid, food, agents, digits
    moved, _ = step(state, jnp.asarray([S, X]))
    frame2 = env.render(moved)
    assert frame2.shape == frame.shape and not np.array_equal(frame, frame2)
    # The moved agent's old cell is now empty; its new cell is not.
    cell = 48
    assert np.any(frame[:cell, :cell] != frame2[:cell, :cell])
    path = env.animate([state, moved], str(tmp_path / "lbf.gif"), fps=4)
    assert os.path.getsize(path) > 0
    env.close()
