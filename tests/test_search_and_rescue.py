"""Search-and-Rescue: hand-built finds, views and rewards; invariants (hypothesis); jit/vmap/
plain agreement; determinism; argument errors; continuous actions through every adapter;
rendering."""

from __future__ import annotations

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs.search_and_rescue import FixedGenerator, SearchAndRescue
from jaxmarl_envs.search_and_rescue import constants as C

SMALL = "sar-2s-10t"


@functools.cache
def small_env():
    env = jaxmarl_envs.make(SMALL, time_limit=30)
    return env, jax.jit(env.reset), jax.jit(env.step)


@functools.cache
def fixed(pos, heading, target_pos, **kw):
    """`(env, reset, step)` with still targets and searchers at the minimum speed 0.005."""
    n = len(pos)
    gen = FixedGenerator(
        searcher_pos=np.array(pos),
        searcher_heading=np.array(heading),
        searcher_speed=np.full(n, 0.005),
        target_pos=np.array(target_pos),
    )
    env = SearchAndRescue(generator=gen, target_acc_std=0.0, num_vision=33, **kw)
    return env, jax.jit(env.reset), jax.jit(env.step)


# ----------------------------------------------------------------------------- hand-built
def test_find_ahead_rewards_and_terminates():
    env, reset, step = fixed(((0.5, 0.5),), (0.0,), ((0.52, 0.5),), time_limit=10)
    state, ts = reset(jax.random.PRNGKey(0))
    view = np.asarray(ts.observation.agents_view)[0]
    v = env.num_vision
    unfound = view[C.CHANNEL_UNFOUND * v : (C.CHANNEL_UNFOUND + 1) * v]
    # Straight ahead at distance 0.02 over the target range 0.1: the middle ray sees 0.2.
    assert np.isclose(unfound[v // 2], 0.2, atol=1e-5)
    assert np.all(view[: 2 * v] == -1.0)  # no other searcher, nothing found yet
    assert np.isclose(view[3 * v], 1.0) and np.isclose(view[3 * v + 1], 0.0)  # remaining, t
    state, ts = step(state, jnp.zeros((1, 2)))  # moves to x = 0.505, 0.015 from the target
    assert bool(state.target_found[0])
    assert np.allclose(ts.reward, [1.0])  # scaled by (10 - 0) / 10
    assert bool(ts.last()) and bool(ts.terminated[0]) and float(ts.discount[0]) == 0.0
    found = np.asarray(ts.observation.agents_view)[0, C.CHANNEL_FOUND * v : 2 * v]
    assert np.isclose(found[v // 2], 0.15, atol=1e-4)


def test_target_behind_is_not_found_and_time_limit_truncates():
    env, reset, step = fixed(((0.5, 0.5),), (np.pi,), ((0.51, 0.5),), time_limit=2)
    state, _ = reset(jax.random.PRNGKey(0))
    state, ts = step(state, jnp.zeros((1, 2)))  # heading away: outside the view cone
    assert not bool(state.target_found[0]) and float(ts.reward[0]) == 0.0
    state, ts = step(state, jnp.zeros((1, 2)))
    assert bool(ts.last()) and bool(ts.truncated[0]) and not bool(ts.terminated[0])
    assert float(ts.discount[0]) == 1.0


def test_simultaneous_finders_split_and_late_finds_pay_less():
    pos = ((0.5, 0.5), (0.54, 0.5))
    env, reset, step = fixed(pos, (0.0, np.pi), ((0.52, 0.5),), time_limit=4)
    state, _ = reset(jax.random.PRNGKey(0))
    state, ts = step(state, jnp.zeros((2, 2)))
    assert np.allclose(ts.reward, [0.5, 0.5])  # both see it: the reward is shared
    env2, reset2, step2 = fixed(
        pos, (0.0, np.pi), ((0.52, 0.5),), time_limit=4, split_rewards=False
    )
    state, _ = reset2(jax.random.PRNGKey(0))
    state, ts = step2(state, jnp.zeros((2, 2)))
    assert np.allclose(ts.reward, [1.0, 1.0])
    # Searchers see each other on channel 0, straight ahead (distance 0.04 / 0.4).
    view = np.asarray(ts.observation.agents_view)
    assert np.isclose(view[0, env.num_vision // 2], 0.03 / 0.4, atol=1e-4)


def test_views_and_finds_wrap_around_the_arena():
    env, reset, step = fixed(((0.995, 0.5),), (0.0,), ((0.01, 0.5),), time_limit=5)
    state, ts = reset(jax.random.PRNGKey(0))
    v = env.num_vision
    unfound = np.asarray(ts.observation.agents_view)[0, 2 * v : 3 * v]
    assert np.isclose(unfound[v // 2], 0.15, atol=1e-4)  # 0.015 across the edge
    state, ts = step(state, jnp.zeros((1, 2)))
    assert bool(state.target_found[0]) and 0.0 <= float(state.searcher_pos[0, 0]) < 0.01


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.floats(-2.0, 2.0, width=32), min_size=2 * 2 * 10, max_size=2 * 2 * 10),
)
def test_invariants_random_play(seed, actions):
    env, reset, step = small_env()
    state, ts = reset(jax.random.PRNGKey(seed))
    acts = np.asarray(actions, np.float32).reshape(10, 2, 2)
    spec = env.observation_spec
    for t in range(10):
        prev = state
        state, ts = step(state, acts[t])
        spec.validate(jax.device_get(ts.observation))
        pos, speed, heading = map(
            np.asarray, (state.searcher_pos, state.searcher_speed, state.searcher_heading)
        )
        assert np.all((pos >= 0) & (pos < env.env_size))
        assert np.all((speed >= env.searcher_min_speed - 1e-7) & (speed <= env.searcher_max_speed))
        assert np.all((heading >= 0) & (heading < 2 * np.pi + 1e-6))
        assert np.all(np.asarray(state.target_found) >= np.asarray(prev.target_found))
        new = int(np.sum(state.target_found)) - int(np.sum(prev.target_found))
        reward = np.asarray(ts.reward)
        assert np.all(reward >= 0) and np.sum(reward) <= new + 1e-5
        assert (
            np.linalg.norm(np.asarray(state.target_vel), axis=1).max() <= env.target_vel_max + 1e-7
        )
        step_len = np.abs(pos - np.asarray(prev.searcher_pos))
        step_len = np.minimum(step_len, env.env_size - step_len)
        assert np.all(np.linalg.norm(step_len, axis=1) <= env.searcher_max_speed + 1e-6)
        assert np.all(np.asarray(ts.observation.action_mask))


def test_jit_vmap_plain_agree():
    env = jaxmarl_envs.make(SMALL)
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    actions = jax.random.uniform(jax.random.PRNGKey(5), (3, 3, 2, 2), minval=-1, maxval=1)
    vstate, vts = jax.jit(jax.vmap(env.reset))(keys)
    vstep = jax.jit(jax.vmap(env.step))
    state, _ = env.reset(keys[1])
    jstep = jax.jit(env.step)
    jstate = state
    for t in range(3):
        vstate, vts = vstep(vstate, actions[t])
        jstate, jts = jstep(jstate, actions[t, 1])
        if t == 0:  # op by op once (slow), compiled and vmapped throughout
            state, ts = env.step(state, actions[t, 1])
        else:
            state, ts = jstate, jts
        for a, b, c in zip(
            jax.tree_util.tree_leaves((state, ts)),
            jax.tree_util.tree_leaves((jstate, jts)),
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[1], (vstate, vts))),
            strict=True,
        ):
            assert np.allclose(a, b, atol=1e-6) and np.allclose(a, c, atol=1e-6)


def test_deterministic_and_key_dependent():
    env, reset, step = small_env()
    runs = []
    for seed in (1, 1, 2):
        state, _ = reset(jax.random.PRNGKey(seed))
        for _ in range(3):
            state, ts = step(state, jnp.full((2, 2), 0.3))
        runs.append(jax.device_get((state, ts)))
    same = [
        np.array_equal(x, y) for x, y in zip(*map(jax.tree_util.tree_leaves, runs[:2]), strict=True)
    ]
    assert all(same)
    assert not np.array_equal(runs[0][0].target_pos, runs[2][0].target_pos)


def test_registry_ids():
    ids = jaxmarl_envs.list_envs("search_and_rescue")
    assert "SearchAndRescue-v0" in ids and "sar-2s-10t" in ids
    env = jaxmarl_envs.make("SearchAndRescue-v0")
    assert (env.num_agents, env.num_targets, env.time_limit) == (2, 40, 400)
    assert env.observation_spec.agents_view.shape == (2, 3 * 128 + 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_searchers=0), "num_searchers must be a positive integer"),
        (dict(num_targets=1.5), "num_targets must be a positive integer"),
        (dict(env_size=-1.0), "env_size must be a positive finite number"),
        (dict(searcher_min_speed=0.1), "searcher_min_speed=0.1 exceeds"),
        (dict(view_angle=1.5), "view_angle must be at most 1.0"),
        (dict(searcher_vision_range=2.0), "searcher_vision_range must be at most 1.0"),
        (dict(target_acc_std=-1.0), "target_acc_std must be >= 0"),
        (dict(time_limit=0), "time_limit must be a positive integer"),
        (dict(num_vision=0), "num_vision must be a positive integer"),
        (dict(generator=object()), "generator must be a search_and_rescue Generator"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchAndRescue(**kwargs)


def test_fixed_generator_checks_its_arrays():
    with pytest.raises(ValueError, match="searcher_heading has shape"):
        FixedGenerator([[0.1, 0.1]], [0.0, 1.0], [0.01], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="target_pos must lie in"):
        FixedGenerator([[0.1, 0.1]], [0.0], [0.01], [[1.5, 0.5]])


# ----------------------------------------------------------------------------- adapters
def test_continuous_actions_through_every_adapter():
    """Box spaces (Gymnasium, PettingZoo), dm-env bounded specs; in-range actions step and
    out-of-range ones are refused with a ValueError."""
    from dm_env import specs as dm_specs

    from jaxmarl_envs.adapters import DmEnv
    from jaxmarl_envs.adapters.gymnasium import gymnasium_id
    from jaxmarl_envs.adapters.pettingzoo import parallel_env

    gym_env = gymnasium.make(gymnasium_id(SMALL), time_limit=3)
    space = gym_env.action_space
    assert isinstance(space, gymnasium.spaces.Box) and space.shape == (2, 2)
    assert np.all(space.low == -1.0) and np.all(space.high == 1.0) and space.dtype == np.float32
    gym_env.reset(seed=0)
    obs, reward, term, trunc, info = gym_env.step(np.full((2, 2), 0.5, np.float32))
    assert obs.shape == (2, 3 * 128 + 4) and isinstance(reward, float)
    with pytest.raises(ValueError, match="out of bounds"):
        gym_env.step(np.full((2, 2), 1.5, np.float32))

    venv = gymnasium.make_vec(
        gymnasium_id(SMALL), num_envs=3, vectorization_mode="vector_entry_point", time_limit=3
    )
    assert isinstance(venv.single_action_space, gymnasium.spaces.Box)
    assert venv.action_space.shape == (3, 2, 2)
    venv.reset(seed=0)
    obs, *_ = venv.step(venv.action_space.sample())
    assert obs.shape == (3, 2, 3 * 128 + 4)

    dm = DmEnv(SMALL, seed=0, time_limit=3)
    spec = dm.action_spec()
    assert isinstance(spec, dm_specs.BoundedArray) and spec.shape == (2, 2)
    assert np.all(spec.minimum == -1.0) and np.all(spec.maximum == 1.0)
    dm.reset()
    ts = dm.step(np.zeros((2, 2), np.float32))
    assert ts.reward.shape == (2,)
    with pytest.raises(ValueError):
        dm.step(np.full((2, 2), np.nan, np.float32))

    pz = parallel_env(SMALL, time_limit=3)
    obs, _ = pz.reset(seed=0)
    for agent in pz.possible_agents:
        box = pz.action_space(agent)
        assert isinstance(box, gymnasium.spaces.Box) and box.shape == (2,)
        assert isinstance(pz.observation_space(agent), gymnasium.spaces.Box)
        assert obs[agent] in pz.observation_space(agent)
    obs, rew, term, trunc, _ = pz.step({a: np.array([0.2, -0.3], np.float32) for a in pz.agents})
    assert set(rew) == set(pz.possible_agents)
    with pytest.raises(ValueError):
        pz.step({a: np.array([3.0, 0.0], np.float32) for a in pz.agents})


def test_render_and_gif(tmp_path):
    import imageio.v2 as imageio

    env, reset, step = fixed(((0.5, 0.5),), (0.0,), ((0.52, 0.5), (0.2, 0.8)), time_limit=10)
    state, _ = reset(jax.random.PRNGKey(0))
    states = [state]
    for _ in range(2):
        state, _ = step(state, jnp.zeros((1, 2)))
        states.append(state)
    frame = env.render(states[0])
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert not np.array_equal(frame, env.render(states[1]))  # the find changes a colour
    path = env.animate(states, str(tmp_path / "sar.gif"))
    assert len(imageio.mimread(path)) == len(states)
    env.close()
