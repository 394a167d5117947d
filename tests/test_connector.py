"""Connector: registry, parameter checks, hand-drawn steps (collisions, connecting,
blocking), invariants, jit/vmap agreement, determinism, rendering."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs.connector import Connector, FixedGenerator, compute_action_mask
from jaxmarl_envs.connector import constants as C
from jaxmarl_envs.types import StepType

NO, U, R, D, L = C.NOOP, C.UP, C.RIGHT, C.DOWN, C.LEFT
STEPS = 25


@pytest.fixture(scope="module")
def small():
    env = Connector(6, 4, time_limit=STEPS)

    def rollout(key, actions):
        state, ts = env.reset(key)

        def body(s, a):
            s, t = env.step(s, a)
            return s, (s, t)

        return (state, ts), jax.lax.scan(body, state, actions)[1]

    return env, jax.jit(rollout), jax.jit(env.step)


# ----------------------------------------------------------------------------- registry/params
def test_registry_ids_smallest_first():
    ids = jaxmarl_envs.list_envs("connector")
    assert "Connector-v3" in ids and "con-10x10x10a" in ids
    first = next(i for i, e in jaxmarl_envs.registry._REGISTRY.items() if e.family == "connector")
    assert first == "con-5x5x3a"
    env = jaxmarl_envs.make("con-7x7x5a")
    assert env.grid_size == 7 and env.num_agents == 5 and env.time_limit == 100
    v3 = jaxmarl_envs.make("Connector-v3")
    assert (v3.grid_size, v3.num_agents, v3.time_limit) == (10, 10, 50)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"grid_size": 2}, "grid_size"),
        ({"num_agents": 0}, "num_agents"),
        ({"grid_size": 4, "num_agents": 9}, "num_agents"),
        ({"time_limit": -1}, "time_limit"),
        ({"reward_type": "global"}, "reward_type"),
        ({"connected_reward": float("inf")}, "connected_reward"),
        ({"observation_type": "image"}, "observation_type"),
        ({"generator": "random"}, "generator"),
        ({"render_cell_size": 16, "viewer": object()}, "render_cell_size"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Connector(**kwargs)


def test_fixed_generator_checks():
    with pytest.raises(ValueError, match="distinct"):
        FixedGenerator(4, [[0, 0], [1, 1]], [[1, 1], [2, 2]])
    with pytest.raises(ValueError, match="outside"):
        FixedGenerator(4, [[0, 0]], [[4, 0]])
    with pytest.raises(ValueError, match="one cell per start"):
        FixedGenerator(4, [[0, 0], [1, 0]], [[3, 3]])


# ----------------------------------------------------------------------------- hand-drawn
def fixed(starts, targets, size=4, **kwargs):
    env = Connector(generator=FixedGenerator(size, starts, targets), **kwargs)
    state, ts = env.reset(jax.random.PRNGKey(0))
    return env, state, ts


def test_collision_keeps_the_lower_index_in_place():
    # Agents 0 and 1 both move into (1, 1): agent 1 (the higher index) gets it.
    env, state, _ = fixed([[0, 1], [1, 0]], [[3, 3], [3, 0]])
    state, ts = env.step(state, jnp.array([D, R]))
    assert np.asarray(state.positions).tolist() == [[0, 1], [1, 1]]
    grid = np.asarray(state.grid)
    assert grid[0, 1] == C.POSITION and grid[1, 0] == C.PATH + 3 and grid[1, 1] == C.POSITION + 3
    assert np.allclose(np.asarray(ts.reward), [-0.03, -0.03])


def test_connecting_and_blocking():
    # Agent 0 is one step from its target; agent 1 sits in a corner it can leave only down.
    env, state, ts = fixed([[0, 0], [3, 3]], [[0, 1], [1, 3]], time_limit=10)
    state, ts = env.step(state, jnp.array([R, U]))
    assert np.asarray(state.positions).tolist() == [[0, 1], [2, 3]]
    assert np.allclose(np.asarray(ts.reward), [1.0 - 0.03, -0.03])
    assert np.asarray(ts.terminated).tolist() == [True, False]  # agent 0 is connected
    assert np.asarray(ts.discount).tolist() == [0.0, 1.0] and int(ts.step_type) == StepType.MID
    mask = np.asarray(ts.observation.action_mask)
    assert mask[0].tolist() == [True, False, False, False, False]  # connected: no-op only
    assert int(state.grid[0, 1]) == C.POSITION  # the target became the head
    assert int(ts.extras["num_connections"]) == 1
    # Agent 1 reaches its target: everyone done, the episode terminates.
    state, ts = env.step(state, jnp.array([R, U]))  # agent 0's move is illegal (a no-op)
    assert int(ts.step_type) == StepType.LAST and np.all(np.asarray(ts.discount) == 0.0)
    assert np.allclose(np.asarray(ts.reward), [0.0, 1.0 - 0.03])
    assert int(ts.extras["total_path_length"]) == 3 + 2  # paths 1 + 2 cells, plus two heads


def test_blocked_agent_is_done():
    # Agent 0 in the corner (0, 0) with agent 1's head and target beside it: blocked.
    env, state, ts = fixed([[0, 0], [1, 0]], [[3, 3], [0, 1]])
    mask = np.asarray(ts.observation.action_mask)
    assert mask[0].tolist() == [True, False, False, False, False]
    state, ts = env.step(state, jnp.array([NO, NO]))
    assert np.asarray(ts.terminated).tolist() == [True, False]


@pytest.mark.parametrize("reward_type", C.REWARD_TYPES)
def test_reward_types(reward_type):
    env, state, _ = fixed([[0, 0], [3, 3]], [[0, 1], [1, 3]], reward_type=reward_type)
    _, ts = env.step(state, jnp.array([R, U]))
    individual = {"dense": [0.97, -0.03], "sparse": [1.0, 0.0]}[reward_type.split("_")[-1]]
    expected = [sum(individual)] * 2 if reward_type.startswith("shared") else individual
    assert np.allclose(np.asarray(ts.reward), expected)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(
        st.lists(st.integers(0, 4), min_size=4, max_size=4), min_size=STEPS, max_size=STEPS
    ),
)
def test_invariants_along_rollouts(small, seed, actions):
    env, rollout, _ = small
    (s0, ts0), (states, tss) = rollout(jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    grids = np.concatenate([np.asarray(s0.grid)[None], np.asarray(states.grid)])
    pos = np.concatenate([np.asarray(s0.positions)[None], np.asarray(states.positions)])
    targets = np.asarray(s0.targets)
    last = np.asarray(tss.step_type) == StepType.LAST
    horizon = int(np.argmax(last)) + 1 if last.any() else STEPS  # steps up to the first end
    g, n = grids[: horizon + 1], pos[: horizon + 1]
    ids = np.arange(4)
    # Occupied cells stay occupied; heads are where the board says, one cell each.
    assert np.all((g[1:] != 0) | (g[:-1] == 0))
    assert np.all(g[np.arange(len(g))[:, None], n[..., 0], n[..., 1]] == C.POSITION + 3 * ids)
    heads = [(g == C.POSITION + 3 * i).sum((1, 2)) for i in ids]
    assert all(np.all(h == 1) for h in heads)
    # A head moves at most one cell per step; each move adds one path cell.
    step_len = np.abs(np.diff(n, axis=0)).sum(-1)
    assert np.all(step_len <= 1)
    paths = ((g > 0) & ((g - 1) % 3 == 0)).sum((1, 2))
    assert np.array_equal(np.diff(paths), step_len.sum(-1))
    # Done agents stay done (discount 0 from then on); the mask matches the board.
    disc = np.asarray(tss.discount)[:horizon]
    assert np.all(np.diff(disc, axis=0) <= 0)
    masks = np.asarray(
        jax.vmap(compute_action_mask, (0, 0, None))(states.grid, states.positions, s0.targets)
    )
    assert np.array_equal(masks, np.asarray(tss.observation.action_mask))
    connected = (n[1:] == targets).all(-1)
    assert np.array_equal(connected.sum(-1), np.asarray(tss.extras["num_connections"])[:horizon])
    assert np.all(np.asarray(tss.reward)[:horizon] <= 1.0)


def test_jit_vmap_and_plain_agree(small):
    env, _, step = small
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    actions = jnp.array([[R, D, L, U], [U, U, R, NO]], jnp.int32)
    vstates, vts = jax.jit(jax.vmap(env.reset))(keys)
    vstates, vts = jax.jit(jax.vmap(env.step))(vstates, actions)
    reset = jax.jit(env.reset)
    for i in range(2):
        s, _ = reset(keys[i])
        plain = env.step(s, actions[i])
        jitted = step(s, actions[i])
        batched = jax.tree_util.tree_map(lambda x, i=i: x[i], (vstates, vts))
        for a, b, c in zip(
            jax.tree_util.tree_leaves(plain),
            jax.tree_util.tree_leaves(jitted),
            jax.tree_util.tree_leaves(batched),
            strict=True,
        ):
            assert np.array_equal(np.asarray(a), np.asarray(b))
            assert np.array_equal(np.asarray(a), np.asarray(c))


def test_same_key_same_episode(small):
    env, rollout, _ = small
    actions = jax.random.randint(jax.random.PRNGKey(9), (STEPS, 4), 0, 5)
    a = rollout(jax.random.PRNGKey(4), actions)
    b = rollout(jax.random.PRNGKey(4), actions)
    c = rollout(jax.random.PRNGKey(5), actions)
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in leaves)
    assert not np.array_equal(np.asarray(a[0][0].grid), np.asarray(c[0][0].grid))


def test_grid_observation_and_global_state():
    env, state, ts = fixed([[0, 0], [3, 3]], [[0, 1], [1, 3]], observation_type="grid")
    view = np.asarray(ts.observation.agents_view)
    assert view.shape == (2, 3, 4, 4)
    env.observation_spec.validate(ts.observation)
    assert view[0, 0, 0, 0] == 1 and view[0, 1, 0, 1] == 1 and view[0, 2].sum() == 2
    gs = np.asarray(env.global_state(state, ts.observation))
    assert gs.shape == env.global_state_spec().shape == (48,)
    assert gs[:16].sum() == 2 and gs[16:32].sum() == 2 and gs[32:].sum() == 0


def test_render_and_animate(tmp_path):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env, state, _ = fixed([[0, 0], [3, 3]], [[0, 2], [1, 3]], render_cell_size=16)
    frame = env.render(state)
    assert frame.dtype == np.uint8 and frame.shape == (65, 65, 3)
    moved, _ = env.step(state, jnp.array([R, U]))
    frame2 = env.render(moved)
    assert frame2.shape == frame.shape and not np.array_equal(frame, frame2)
    path = env.animate([state, moved], str(tmp_path / "connector.gif"))
    assert os.path.getsize(path) > 0
