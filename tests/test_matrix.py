"""Tests of the repeated matrix games (payoffs, observations, horizon, JAX behaviour, errors,
rendering) and the adapters' conformance checkers on a matrix game."""

from __future__ import annotations

import functools
import itertools
import os
import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test
from test_adapters_dm_env import _mixin_case
from test_adapters_pettingzoo import _unexpected

import jaxmarl_envs
from jaxmarl_envs import AutoReset
from jaxmarl_envs.adapters.gymnasium import gymnasium_id
from jaxmarl_envs.adapters.pettingzoo import parallel_env
from jaxmarl_envs.matrix import MatrixGame, constants, penalty_id
from jaxmarl_envs.types import StepType

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# Payoff tables written out from the literature, independently of `constants`:
# {id: (row player's matrix, column player's matrix)}.
CLIMBING = [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]


def _penalty(k):
    return [[10, 0, k], [0, 2, 0], [k, 0, 10]]


EXPECTED = {
    "matrix-climbing": (CLIMBING, CLIMBING),
    "matrix-penalty-k-0": (_penalty(0), _penalty(0)),
    "matrix-penalty-k--25": (_penalty(-25), _penalty(-25)),
    "matrix-penalty-k--50": (_penalty(-50), _penalty(-50)),
    "matrix-penalty-k--100": (_penalty(-100), _penalty(-100)),
    # (cooperate, defect): T=5, R=3, P=1, S=0.
    "matrix-prisoners-dilemma": ([[3, 0], [5, 1]], [[3, 5], [0, 1]]),
    # (stag, hare)
    "matrix-stag-hunt": ([[4, 1], [3, 3]], [[4, 3], [1, 3]]),
    # (heads, tails): the row player wins on a match.
    "matrix-matching-pennies": ([[1, -1], [-1, 1]], [[-1, 1], [1, -1]]),
    # (swerve, straight)
    "matrix-chicken": ([[0, -1], [1, -10]], [[0, 1], [-1, -10]]),
    # (opera, football): the row player prefers opera.
    "matrix-battle-of-the-sexes": ([[3, 0], [0, 2]], [[2, 0], [0, 3]]),
    # (rock, paper, scissors)
    "matrix-rock-paper-scissors": (
        [[0, -1, 1], [1, 0, -1], [-1, 1, 0]],
        [[0, 1, -1], [-1, 0, 1], [1, -1, 0]],
    ),
    "MatrixGame-v0": (CLIMBING, CLIMBING),
}


@functools.cache
def jitted(env_id: str, **overrides):
    env = jaxmarl_envs.make(env_id, **overrides)
    return env, jax.jit(env.reset), jax.jit(env.step)


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


# ----------------------------------------------------------------------------- registry
def test_registered_ids_and_specs():
    ids = jaxmarl_envs.list_envs("matrix")
    assert sorted(EXPECTED) == ids
    assert penalty_id(-25) == "matrix-penalty-k--25"
    # The climbing game is registered first (the family's representative for the adapters).
    first = next(i for i, s in jaxmarl_envs.registry._REGISTRY.items() if s.family == "matrix")
    assert first == "matrix-climbing"
    env = jaxmarl_envs.make("matrix-climbing")
    assert env.num_agents == 2 and env.num_actions == 3
    assert env.horizon == env.time_limit == constants.DEFAULT_HORIZON
    assert env.observation_spec.agents_view.shape == (2, 3 + 3 + 2)
    assert env.observation_spec.action_mask.shape == (2, 3)
    assert env.action_spec.shape == (2,)
    assert np.array_equal(env.action_spec.num_values, [3, 3])
    pd = jaxmarl_envs.make("matrix-prisoners-dilemma")
    assert pd.observation_spec.agents_view.shape == (2, 6) and pd.num_actions == 2
    assert pd.action_names == (("C", "D"), ("C", "D"))
    # horizon and its alias time_limit both override the default.
    assert jaxmarl_envs.make("matrix-stag-hunt", horizon=7).time_limit == 7
    assert jaxmarl_envs.make("matrix-stag-hunt", time_limit=4).horizon == 4
    assert jaxmarl_envs.make("matrix-stag-hunt", horizon=4, time_limit=4).horizon == 4


@pytest.mark.parametrize("env_id", sorted(EXPECTED))
def test_exact_payoffs_for_every_joint_action(env_id):
    env, reset, step = jitted(env_id)
    row, col = (np.asarray(m, np.float32) for m in EXPECTED[env_id])
    assert np.array_equal(env.payoffs, np.stack([row, col]))
    state, _ = reset(jax.random.PRNGKey(0))
    n0, n1 = row.shape
    joint = np.array(list(itertools.product(range(n0), range(n1))), np.int32)
    _, ts = jax.vmap(step, in_axes=(None, 0))(state, jnp.asarray(joint))
    rewards = np.asarray(ts.reward)
    for (a0, a1), r in zip(joint, rewards, strict=True):
        assert r.tolist() == [row[a0, a1], col[a0, a1]]
    assert rewards.dtype == np.float32
    env.reward_spec.validate(rewards[0])


def test_game_structure_from_the_literature():
    # Climbing: (a, a) is the unique optimum, (c, c) and (b, b) the other equilibria.
    climbing = constants.CLIMBING[0]
    assert np.argmax(climbing) == 0 and climbing.max() == 11
    for k in constants.PENALTY_KS:
        p = constants.penalty(k)
        assert np.array_equal(p[0], p[1]) and p[0, 0, 2] == p[0, 2, 0] == k
    # Prisoner's dilemma: T > R > P > S and 2R > T + S; defection dominates.
    (r, s), (t, p) = constants.PRISONERS_DILEMMA[0]
    assert t > r > p > s and 2 * r > t + s
    assert np.array_equal(constants.PRISONERS_DILEMMA[1], constants.PRISONERS_DILEMMA[0].T)
    # Stag hunt: A > B >= D > C.
    (a, c), (b, d) = constants.STAG_HUNT[0]
    assert a > b >= d > c
    # Zero-sum games.
    for table in (constants.MATCHING_PENNIES, constants.ROCK_PAPER_SCISSORS):
        assert np.all(table.sum(axis=0) == 0)


# ----------------------------------------------------------------------------- dynamics
def test_observation_of_previous_joint_action():
    env, reset, step = jitted("matrix-climbing", horizon=4)
    state, ts = reset(jax.random.PRNGKey(0))
    view = np.asarray(ts.observation.agents_view)
    assert view.tolist() == [[0, 0, 0, 0, 0, 0, 1, 0]] * 2  # nothing played: first-stage flag
    assert np.asarray(ts.observation.action_mask).all()
    expected = {
        (0, 1): [1, 0, 0, 0, 1, 0],
        (2, 2): [0, 0, 1, 0, 0, 1],
        (1, 0): [0, 1, 0, 1, 0, 0],
    }
    for t, (joint, onehot) in enumerate(expected.items(), start=1):
        state, ts = step(state, jnp.asarray(joint, jnp.int32))
        view = np.asarray(ts.observation.agents_view)
        assert view.shape == (2, 8)
        assert np.array_equal(view[0], view[1])
        assert view[0, :6].tolist() == onehot
        assert view[0, 6] == 0.0 and view[0, 7] == pytest.approx(t / 4)
        assert np.asarray(state.last_action).tolist() == list(joint)
        assert np.array_equal(np.asarray(env.global_state(state, ts.observation)), view[0])
        env.observation_spec.validate(jax.device_get(ts.observation))
        env.global_state_spec().validate(np.asarray(env.global_state(state, ts.observation)))


def test_truncation_at_the_horizon_and_auto_reset():
    env, reset, step = jitted("matrix-penalty-k--50", horizon=3)
    state, ts = reset(jax.random.PRNGKey(0))
    assert int(ts.step_type) == StepType.FIRST
    for t in range(1, 4):
        state, ts = step(state, jnp.asarray([0, 2], jnp.int32))
        assert np.asarray(ts.reward).tolist() == [-50.0, -50.0]
        assert not bool(ts.terminated.any())
        assert np.asarray(ts.discount).tolist() == [1.0, 1.0]
        assert bool(ts.last()) == (t == 3)
        assert bool(ts.truncated.all()) == (t == 3) and bool(ts.truncated.any()) == (t == 3)
    assert int(state.step_count) == 3
    assert float(ts.observation.agents_view[0, -1]) == 1.0
    # One-shot game: every step is the last.
    _, reset1, step1 = jitted("matrix-climbing", horizon=1)
    s, _ = reset1(jax.random.PRNGKey(0))
    _, ts = step1(s, jnp.asarray([0, 0], jnp.int32))
    assert bool(ts.last()) and np.asarray(ts.reward).tolist() == [11.0, 11.0]
    # AutoReset: the ending step returns the new episode's first view, the final one in extras.
    wrapped = AutoReset(jaxmarl_envs.make("matrix-climbing", horizon=2))
    s, _ = wrapped.reset(jax.random.PRNGKey(1))
    s, ts = wrapped.step(s, jnp.asarray([1, 1]))
    s, ts = wrapped.step(s, jnp.asarray([2, 1]))
    assert bool(ts.last()) and np.asarray(ts.reward).tolist() == [0.0, 0.0]
    assert np.asarray(ts.observation.agents_view[0]).tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    final = np.asarray(ts.extras["final_observation"].agents_view[0])
    assert final.tolist() == [0, 0, 1, 0, 1, 0, 0, 1]


def test_out_of_range_actions_are_clipped_inside_jit():
    _, reset, step = jitted("matrix-climbing")
    state, _ = reset(jax.random.PRNGKey(0))
    _, ts = step(state, jnp.asarray([-4, 9], jnp.int32))
    assert np.asarray(ts.reward).tolist() == [0.0, 0.0]  # (a, c)
    _, ts = step(state, jnp.asarray([7, -1], jnp.int32))
    assert np.asarray(ts.reward).tolist() == [0.0, 0.0]  # (c, a)


def _rollout_fn(env):
    wrapped = AutoReset(env)

    def run(key, actions):
        state, _ = wrapped.reset(key)

        def body(state, action):
            state, ts = wrapped.step(state, action)
            return state, (state, ts)

        return jax.lax.scan(body, state, actions)[1]

    return run


def test_jit_vmap_and_plain_agree():
    env = jaxmarl_envs.make("matrix-rock-paper-scissors", horizon=3)
    steps = 7
    actions = jax.random.randint(jax.random.PRNGKey(3), (2, steps, 2), 0, 3, dtype=jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    run = _rollout_fn(env)
    single = jax.jit(run)(keys[0], actions[0])
    batched = jax.jit(jax.vmap(run))(keys, actions)
    wrapped = AutoReset(env)
    state, _ = wrapped.reset(keys[0])
    for t in range(steps):
        state, ts = wrapped.step(state, actions[0, t])
        assert _leaves_equal((state, ts), jax.tree_util.tree_map(lambda x, t=t: x[t], single))
        assert _leaves_equal((state, ts), jax.tree_util.tree_map(lambda x, t=t: x[0, t], batched))
    other = jax.jit(run)(keys[1], actions[1])
    assert _leaves_equal(other, jax.tree_util.tree_map(lambda x: x[1], batched))
    # Rewards follow the table along the batched episode, across auto-resets.
    table = env.payoffs
    acts = np.asarray(actions[1])
    expected = table[:, acts[:, 0], acts[:, 1]].T
    assert np.array_equal(np.asarray(batched[1].reward[1]), expected)


def test_determinism():
    env = jaxmarl_envs.make("matrix-stag-hunt", horizon=4)
    run = jax.jit(_rollout_fn(env))
    acts = jax.random.randint(jax.random.PRNGKey(9), (10, 2), 0, 2, dtype=jnp.int32)
    first, second = run(jax.random.PRNGKey(5), acts), run(jax.random.PRNGKey(5), acts)
    assert _leaves_equal(first, second)
    # The game ignores the key: another key gives the same episode (only the key differs).
    other = run(jax.random.PRNGKey(6), acts)
    assert env.deterministic
    assert _leaves_equal(first[1], other[1])
    assert not np.array_equal(np.asarray(first[0].key), np.asarray(other[0].key))
    # Typed keys work too.
    s, _ = env.reset(jax.random.key(7))
    assert jax.dtypes.issubdtype(s.key.dtype, jax.dtypes.prng_key)


# ----------------------------------------------------------------------------- properties
@st.composite
def games(draw):
    n = draw(st.integers(2, 3))
    counts = tuple(draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)))
    values = draw(
        st.lists(st.integers(-100, 100), min_size=n * int(np.prod(counts)), max_size=n * 64 * 3)
    )
    table = np.asarray(values[: n * int(np.prod(counts))], np.float32).reshape((n, *counts))
    horizon = draw(st.integers(1, 5))
    joint = [
        draw(st.lists(st.integers(0, c - 1), min_size=horizon, max_size=horizon)) for c in counts
    ]
    return table, horizon, np.asarray(joint, np.int32).T  # (horizon, n)


@settings(max_examples=25, deadline=None)
@given(game=games())
def test_random_tables_pay_and_show_the_joint_action(game):
    table, horizon, actions = game
    env = MatrixGame(table, horizon=horizon)
    n, counts = env.num_agents, env.num_actions_per_agent
    mask = np.asarray(env.reset(jax.random.PRNGKey(0))[1].observation.action_mask)
    assert mask.tolist() == [[a < c for a in range(max(counts))] for c in counts]
    # Plain (op-by-op) execution: no compilation per drawn table.
    state, ts = env.reset(jax.random.PRNGKey(0))
    for t, joint in enumerate(actions, start=1):
        env.validate_action(joint)
        state, ts = env.step(state, jnp.asarray(joint))
        assert np.array_equal(np.asarray(ts.reward), table[(slice(None), *joint)])
        view = np.asarray(ts.observation.agents_view)
        assert view.shape == (n, sum(counts) + 2)
        decoded = np.split(view[0, :-2], np.cumsum(counts)[:-1])
        assert [int(np.argmax(h)) for h in decoded] == joint.tolist()
        assert all(h.sum() == 1.0 for h in decoded)
        assert view[0, -2] == 0.0 and view[0, -1] == pytest.approx(t / horizon)
        assert bool(ts.last()) == (t == horizon)
        env.observation_spec.validate(jax.device_get(ts.observation))
        env.reward_spec.validate(np.asarray(ts.reward))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(payoffs=[1.0, 2.0]), "common-payoff matrix"),
        (dict(payoffs=np.zeros((2, 2, 2, 2))), "N \\+ 1 axes"),
        (dict(payoffs=np.zeros((3, 2, 2))), "N \\+ 1 axes"),
        (dict(payoffs=5.0), "common-payoff"),
        (dict(payoffs=np.zeros((2, 0, 2))), "at least 1 action"),
        (dict(payoffs=[[1.0, np.nan], [0.0, 0.0]]), "finite"),
        (dict(payoffs=[[1.0, 2.0], [3.0]]), "numeric array"),
        (dict(payoffs="climbing"), "numeric array"),
        (dict(horizon=0), "horizon"),
        (dict(horizon=-3), "horizon"),
        (dict(horizon=2.5), "horizon"),
        (dict(horizon=True), "horizon"),
        (dict(time_limit=0), "horizon"),
        (dict(horizon=3, time_limit=4), "disagree"),
        (dict(action_names=["x", "y"]), "player 0 has 2 names"),
        (dict(action_names=[["a", "b", "c"]]), "one list per player"),
        (dict(action_names=[["a", "b", "c"], ["a", "b"]]), "player 1 has 2 names"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatrixGame(**kwargs)


def test_other_errors():
    with pytest.raises(ValueError, match="k must be"):
        constants.penalty(5)
    with pytest.raises(ValueError, match="k must be"):
        constants.penalty(float("nan"))
    with pytest.raises(ValueError, match="unknown environment id"):
        jaxmarl_envs.make("matrix-climbin")
    with pytest.raises(ValueError, match="disagree"):
        jaxmarl_envs.make("matrix-chicken", horizon=2, time_limit=3)
    env = jaxmarl_envs.make("matrix-prisoners-dilemma")
    assert env.validate_action([1, 0]).dtype == np.int32
    for action, match in [
        ([2, 0], "out of bounds"),
        ([0, -1], "out of bounds"),
        ([0, 0, 0], "shape"),
        (np.array([0.0, 1.0]), "dtype"),
    ]:
        with pytest.raises(ValueError, match=match):
            env.validate_action(action)
    # Asymmetric games: each agent's own bound.
    asym = MatrixGame(np.zeros((2, 2, 3)))
    asym.validate_action([1, 2])
    with pytest.raises(ValueError, match="out of bounds"):
        asym.validate_action([2, 1])


def test_common_payoff_matrix_and_custom_names():
    env = MatrixGame([[1, 2], [3, 4]], action_names=["left", "right"], game="mine", horizon=2)
    assert env.payoffs.shape == (2, 2, 2) and np.array_equal(env.payoffs[0], env.payoffs[1])
    assert env.action_names == (("left", "right"), ("left", "right"))
    state, _ = env.reset(jax.random.PRNGKey(0))
    _, ts = env.step(state, jnp.asarray([1, 0]))
    assert np.asarray(ts.reward).tolist() == [3.0, 3.0]
    assert "mine" in repr(env)


# ----------------------------------------------------------------------------- rendering
def test_render_headless_and_animate(tmp_path):
    env, reset, step = jitted("matrix-climbing", horizon=3)
    state, _ = reset(jax.random.PRNGKey(0))
    frame0 = env.render(state)
    assert frame0.dtype == np.uint8 and frame0.ndim == 3 and frame0.shape[2] == 3
    viewer = env.viewer
    s1, _ = step(state, jnp.asarray([0, 1], jnp.int32))
    frame1 = env.render(s1)
    s2, _ = step(s1, jnp.asarray([2, 2], jnp.int32))
    frame2 = env.render(s2)
    assert frame1.shape == frame0.shape == frame2.shape

    def cell(frame, i, j):
        x = 8 + viewer.label_w + j * viewer.cell_w
        y = viewer.title_h + (i + 1) * viewer.cell_h
        return frame[y + 6 : y + viewer.cell_h - 6, x + 6 : x + 12]  # left strip, no text

    highlight = np.asarray(constants_highlight(), np.uint8)
    assert np.all(cell(frame1, 0, 1) == highlight)  # (a, b) chosen
    assert not np.any(np.all(cell(frame0, 0, 1) == highlight, axis=-1))  # nothing chosen yet
    assert not np.any(np.all(cell(frame1, 2, 2) == highlight, axis=-1))
    assert np.all(cell(frame2, 2, 2) == highlight)
    assert not np.any(np.all(cell(frame2, 0, 1) == highlight, axis=-1))
    path = env.animate([state, s1, s2], str(tmp_path / "climbing.gif"), fps=2)
    assert os.path.getsize(path) > 0
    import imageio.v2 as imageio

    frames = imageio.mimread(path)
    assert len(frames) == 3 and frames[0].shape[:2] == frame0.shape[:2]
    env.close()


def constants_highlight():
    from jaxmarl_envs.matrix import viewer

    return viewer._CHOSEN


def test_render_three_players_and_viewer_errors():
    table = np.arange(3 * 2 * 2 * 3, dtype=np.float32).reshape(3, 2, 2, 3)
    env = MatrixGame(table, horizon=2, game="three players")
    state, _ = env.reset(jax.random.PRNGKey(0))
    frame0 = env.render(state)
    state, _ = env.step(state, jnp.asarray([1, 0, 2]))
    frame1 = env.render(state)
    assert frame1.shape == frame0.shape and not np.array_equal(frame0, frame1)
    env.close()
    from jaxmarl_envs.matrix.viewer import MatrixViewer

    with pytest.raises(ValueError, match="shape"):
        MatrixViewer(np.zeros((2, 2)), [["a", "b"]] * 2)
    with pytest.raises(ValueError, match="cell_size"):
        MatrixViewer(np.zeros((2, 2, 2)), [["a", "b"]] * 2, cell_size=(10, 10))


# ----------------------------------------------------------------------------- adapters
# The adapter suites run on the family's first id (the climbing game); these run the
# ecosystems' checkers on a general-sum game with two actions.
ADAPTER_ID = "matrix-prisoners-dilemma"

TestDmEnvMixinPrisonersDilemma = _mixin_case(ADAPTER_ID)


def test_gymnasium_check_env():
    env = gymnasium.make(gymnasium_id(ADAPTER_ID), render_mode="rgb_array", horizon=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([1, 0], np.int64))
    assert reward == 5.0 and info["agent_rewards"].tolist() == [5.0, 0.0]
    assert not terminated and not truncated
    env.close()


def test_pettingzoo_parallel_api_test():
    env = parallel_env(ADAPTER_ID, time_limit=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=12)
    assert _unexpected(caught) == []
    assert env.agents == []
    obs, _ = env.reset(seed=0)
    _, rewards, term, trunc, _ = env.step({"agent_0": 0, "agent_1": 1})
    assert rewards == {"agent_0": 0.0, "agent_1": 5.0}
    assert not any(term.values()) and not any(trunc.values())
