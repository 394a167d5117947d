"""Cleaner: registry, parameter checks, hand-drawn steps, invariants, jit/vmap agreement,
determinism, rendering."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs.cleaner import Cleaner, FixedGenerator, compute_action_mask, make_state
from jaxmarl_envs.cleaner import constants as C
from jaxmarl_envs.types import StepType

U, R, D, L = C.UP, C.RIGHT, C.DOWN, C.LEFT
STEPS = 30

# A 4x5 hand-drawn maze: '#' wall, '.' dirty, 'o' clean.
MAZE = """
o..#.
.#.#.
.#...
...#.
"""


def parse(text: str) -> np.ndarray:
    rows = [line for line in text.strip().splitlines()]
    table = {".": C.DIRTY, "o": C.CLEAN, "#": C.WALL}
    return np.array([[table[ch] for ch in row] for row in rows], np.int8)


@pytest.fixture(scope="module")
def small():
    env = Cleaner(5, 5, 3, time_limit=STEPS)

    def rollout(key, actions):
        state, ts = env.reset(key)

        def body(s, a):
            s, t = env.step(s, a)
            return s, (s, t)

        return (state, ts), jax.lax.scan(body, state, actions)[1]

    return env, jax.jit(rollout), jax.jit(env.step)


# ----------------------------------------------------------------------------- registry/params
def test_registry_ids_smallest_first():
    ids = jaxmarl_envs.list_envs("cleaner")
    assert "Cleaner-v0" in ids and "clean-10x10x3a" in ids
    first = next(i for i, e in jaxmarl_envs.registry._REGISTRY.items() if e.family == "cleaner")
    assert first == "clean-5x5x2a"
    env = jaxmarl_envs.make("clean-15x15x5a")
    assert env.grid_shape == (15, 15) and env.num_agents == 5 and env.time_limit == 100
    assert jaxmarl_envs.make("Cleaner-v0").time_limit == 100  # Jumanji's rows * cols


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_rows": 1}, "num_rows"),
        ({"num_cols": 2.5}, "num_cols"),
        ({"num_agents": 0}, "num_agents"),
        ({"time_limit": 0}, "time_limit"),
        ({"penalty_per_timestep": float("nan")}, "penalty_per_timestep"),
        ({"penalty_per_timestep": "x"}, "penalty_per_timestep"),
        ({"observation_type": "image"}, "observation_type"),
        ({"generator": object()}, "generator"),
        ({"render_cell_size": 16, "viewer": object()}, "render_cell_size"),
        ({"render_cell_size": 2}, "cell_size"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Cleaner(**kwargs)


def test_fixed_generator_checks():
    grid = parse(MAZE)
    with pytest.raises(ValueError, match="wall"):
        FixedGenerator(grid, [[0, 3]])
    with pytest.raises(ValueError, match="outside"):
        FixedGenerator(grid, [[4, 0]])
    with pytest.raises(ValueError, match="values"):
        FixedGenerator(np.full((3, 3), 7))
    with pytest.raises(ValueError, match="2-D"):
        FixedGenerator(np.zeros(3))


# ----------------------------------------------------------------------------- hand-drawn
def test_hand_drawn_steps():
    grid = parse(MAZE)
    env = Cleaner(generator=FixedGenerator(grid, [[0, 0], [0, 0]]), time_limit=50)
    state, ts = env.reset(jax.random.PRNGKey(0))
    mask = np.asarray(ts.observation.action_mask)
    assert mask.tolist() == [[False, True, True, False]] * 2  # top-left corner
    # Both agents go right onto the same dirty tile: one tile cleaned, shared reward.
    state, ts = env.step(state, jnp.array([R, R]))
    assert np.asarray(state.agents_locations).tolist() == [[0, 1], [0, 1]]
    assert np.allclose(np.asarray(ts.reward), 1.0 - 0.5)
    assert int(ts.step_type) == StepType.MID
    # Split up: one right, one down; two tiles cleaned.
    state, ts = env.step(state, jnp.array([R, D]))
    # (1, 1) is a wall: the down move was illegal, so that agent stayed and the episode ended.
    assert np.asarray(state.agents_locations).tolist() == [[0, 2], [0, 1]]
    assert int(ts.step_type) == StepType.LAST
    assert np.asarray(ts.terminated).all() and np.all(np.asarray(ts.discount) == 0.0)
    assert np.allclose(np.asarray(ts.reward), 1.0 - 0.5)


def test_episode_ends_when_everything_is_clean():
    grid = np.full((2, 3), C.CLEAN, np.int8)
    grid[1, 2] = C.DIRTY
    grid[0, 1] = C.WALL
    env = Cleaner(generator=FixedGenerator(grid, [[1, 1]]), penalty_per_timestep=0.25)
    state, _ = env.reset(jax.random.PRNGKey(0))
    state, ts = env.step(state, jnp.array([R]))
    assert int(ts.step_type) == StepType.LAST and bool(ts.terminated.all())
    assert float(ts.reward[0]) == 0.75
    assert int(ts.extras["num_dirty_tiles"]) == 0 and float(ts.extras["ratio_dirty_tiles"]) == 0


def test_time_limit_truncates_with_discount_one():
    env = Cleaner(5, 5, 1, time_limit=3)
    state, ts = env.reset(jax.random.PRNGKey(1))
    for _ in range(3):
        action = jnp.argmax(ts.observation.action_mask, axis=-1)
        state, ts = env.step(state, action)
    assert int(ts.step_type) == StepType.LAST
    if not bool(ts.terminated.any()):
        assert bool(ts.truncated.all()) and np.all(np.asarray(ts.discount) == 1.0)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(
        st.lists(st.integers(0, 3), min_size=3, max_size=3), min_size=STEPS, max_size=STEPS
    ),
)
def test_invariants_along_rollouts(small, seed, actions):
    env, rollout, _ = small
    (s0, ts0), (states, tss) = rollout(jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    grids = np.concatenate([np.asarray(s0.grid)[None], np.asarray(states.grid)])
    walls = grids[0] == C.WALL
    assert np.all((grids == C.WALL) == walls)  # walls never change
    assert np.all(np.diff((grids == C.DIRTY).sum((1, 2))) <= 0)  # dirt only decreases
    assert np.all(~((grids[:-1] == C.CLEAN) & (grids[1:] == C.DIRTY)))  # clean stays clean
    locs = np.asarray(states.agents_locations)
    assert np.all((locs >= 0) & (locs < 5))
    assert not walls[locs[..., 0], locs[..., 1]].any()  # never on a wall
    assert np.all(grids[1:][np.arange(STEPS)[:, None], locs[..., 0], locs[..., 1]] == C.CLEAN)
    cleaned = (grids[:-1] != grids[1:]).sum((1, 2))
    assert np.allclose(np.asarray(tss.reward), (cleaned - 0.5)[:, None])
    masks = np.asarray(jax.vmap(compute_action_mask)(states.grid, states.agents_locations))
    assert np.array_equal(masks, np.asarray(tss.observation.action_mask))
    # Termination exactly when a move was illegal or nothing is dirty (until the first LAST).
    prev_masks = np.concatenate([np.asarray(s0.action_mask)[None], masks[:-1]])
    acts = np.asarray(actions)
    illegal = ~np.take_along_axis(prev_masks, acts[..., None], -1)[..., 0]
    end = illegal.any(-1) | ((grids[1:] == C.DIRTY).sum((1, 2)) == 0)
    last = np.asarray(tss.step_type) == StepType.LAST
    first_end = int(np.argmax(last)) if last.any() else STEPS
    assert np.array_equal(end[: first_end + 1], np.asarray(tss.terminated)[: first_end + 1, 0])
    view = np.asarray(tss.observation.agents_view).reshape(STEPS, 3, 4, 25)
    assert np.array_equal(
        view[:, :, 0], np.broadcast_to((grids[1:] == C.DIRTY).reshape(STEPS, 1, 25), (STEPS, 3, 25))
    )
    assert np.all(view[:, :, 2].sum(-1) == 1) and np.all(view[:, :, 3].sum(-1) == 2)
    spec = env.observation_spec
    assert np.all(view >= 0) and np.all(view.reshape(STEPS, 3, -1) <= spec.agents_view.maximum)


def test_jit_vmap_and_plain_agree(small):
    env, _, step = small
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    actions = jnp.array([[R, D, R], [D, D, R]], jnp.int32)
    vstates, vts = jax.jit(jax.vmap(env.reset))(keys)
    vstates, vts = jax.jit(jax.vmap(env.step))(vstates, actions)
    for i in range(2):
        s, _ = env.reset(keys[i])
        s_plain, ts_plain = env.step(s, actions[i])
        s_jit, ts_jit = step(s, actions[i])
        for a, b, c in zip(
            jax.tree_util.tree_leaves((s_plain, ts_plain)),
            jax.tree_util.tree_leaves((s_jit, ts_jit)),
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, i=i: x[i], (vstates, vts))),
            strict=True,
        ):
            assert np.array_equal(np.asarray(a), np.asarray(b))
            assert np.array_equal(np.asarray(a), np.asarray(c))


def test_same_key_same_episode(small):
    env, rollout, _ = small
    actions = jax.random.randint(jax.random.PRNGKey(9), (STEPS, 3), 0, 4)
    a = rollout(jax.random.PRNGKey(4), actions)
    b = rollout(jax.random.PRNGKey(4), actions)
    c = rollout(jax.random.PRNGKey(5), actions)
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in leaves)
    assert not np.array_equal(np.asarray(a[0][0].grid), np.asarray(c[0][0].grid))


def test_grid_observation_and_global_state():
    env = Cleaner(5, 5, 2, observation_type="grid")
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert ts.observation.agents_view.shape == (2, 4, 5, 5)
    env.observation_spec.validate(ts.observation)
    gs = env.global_state(state, ts.observation)
    assert gs.shape == env.global_state_spec().shape == (75,)
    assert float(gs[50]) == 2.0  # both agents on cell (0, 0)


def test_make_state_computes_the_mask():
    grid = parse(MAZE)
    state = make_state(grid, [[2, 2]], jax.random.PRNGKey(0))
    assert np.asarray(state.action_mask).tolist() == [[True, True, True, False]]


def test_render_and_animate(tmp_path):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = Cleaner(5, 5, 2, render_cell_size=16)
    state, _ = env.reset(jax.random.PRNGKey(0))
    frame = env.render(state)
    assert frame.dtype == np.uint8 and frame.shape == (81, 81, 3)
    moved, _ = env.step(state, jnp.argmax(state.action_mask, -1))
    frame2 = env.render(moved)
    assert frame2.shape == frame.shape and not np.array_equal(frame, frame2)
    path = env.animate([state, moved], str(tmp_path / "cleaner.gif"))
    assert os.path.getsize(path) > 0
