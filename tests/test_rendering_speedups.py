"""Rendering after the speed-ups (issue 17): frame sizes from the viewer and environment
constructors, bad sizes, cached backgrounds that never go stale, fresh writable frames."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.lbf.viewer import LBFViewer
from jaxmarl_envs.matrix import MatrixGame
from jaxmarl_envs.matrix.viewer import MatrixViewer
from jaxmarl_envs.mpe.viewer import MPEViewer
from jaxmarl_envs.rendering import MAX_FRAME_SIDE, Canvas, check_pixels
from jaxmarl_envs.rware.generator import layout_from_str
from jaxmarl_envs.rware.viewer import RwareViewer


def _reset(env, seed: int = 0):
    state, _ = env.reset(jax.random.PRNGKey(seed))
    return state


def _fresh_frame(env, state) -> np.ndarray:
    """The frame of `state` from a new viewer of the same size (no cache history)."""
    viewer = env._viewer if env.name == "rware" else env.viewer
    if env.name == "rware":
        fresh = RwareViewer(viewer.layout, viewer.cell)
    elif env.name == "lbf":
        fresh = LBFViewer(viewer.rows, viewer.cols, viewer.cell)
    elif env.name == "mpe":
        fresh = MPEViewer(viewer.world, viewer.continuous_actions, viewer.size)
    else:
        fresh = MatrixViewer(
            viewer.payoffs,
            viewer.action_names,
            viewer.game,
            viewer.horizon,
            (viewer.cell_w, viewer.cell_h),
        )
    return fresh.render(state)


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "env_id, kwargs, shape",
    [
        ("rware-tiny-4ag", {}, (11 * 24 + 1, 10 * 24 + 1, 3)),
        ("rware-tiny-4ag", {"render_cell_size": 10}, (11 * 10 + 1, 10 * 10 + 1, 3)),
        ("lbf-8x8-2p-2f-coop", {}, (8 * 48, 8 * 48, 3)),
        ("lbf-8x8-2p-2f-coop", {"render_cell_size": 20}, (8 * 20, 8 * 20, 3)),
        ("mpe-simple_spread", {}, (700, 700, 3)),
        ("mpe-simple_spread", {"render_size": 200}, (200, 200, 3)),
        ("matrix-climbing", {}, (36 + 4 * 56 + 40, 4 * 112 + 16, 3)),
        ("matrix-climbing", {"render_cell_size": (60, 30)}, (36 + 4 * 30 + 40, 4 * 60 + 16, 3)),
    ],
)
def test_frame_shape_follows_the_size_argument(env_id, kwargs, shape):
    env = jaxmarl_envs.make(env_id, **kwargs)
    state = _reset(env)
    frame = env.render(state)
    assert frame.shape == shape and frame.dtype == np.uint8
    viewer = env._viewer if env.name == "rware" else env.viewer
    assert viewer.frame_shape == shape
    assert np.array_equal(frame, _fresh_frame(env, state))
    env.close()


def test_viewer_constructors_take_a_size():
    env = jaxmarl_envs.make("lbf-8x8-2p-2f-coop")
    state = _reset(env)
    small, large = LBFViewer(8, 8, 16).render(state), LBFViewer(8, 8, 33).render(state)
    assert small.shape == (128, 128, 3) and large.shape == (264, 264, 3)
    mpe = jaxmarl_envs.make("mpe-simple_tag")
    assert MPEViewer(mpe.world, size=321).render(_reset(mpe)).shape == (321, 321, 3)
    rware = jaxmarl_envs.make("rware-tiny-4ag")
    frame = RwareViewer(rware.layout, cell_size=9).render(_reset(rware))
    assert frame.shape == (11 * 9 + 1, 10 * 9 + 1, 3)


@pytest.mark.parametrize("bad", [0, -5, 7, 12.0, 3.5, True, "48", None, MAX_FRAME_SIDE + 1])
def test_bad_cell_sizes_raise(bad):
    rware = jaxmarl_envs.make("rware-tiny-4ag")
    with pytest.raises(ValueError, match="cell_size"):
        RwareViewer(rware.layout, bad)
    with pytest.raises(ValueError, match="cell_size"):
        LBFViewer(8, 8, bad)
    if bad is not None:  # None means "the default" for the environment keywords
        with pytest.raises(ValueError, match="cell_size"):
            jaxmarl_envs.make("rware-tiny-4ag", render_cell_size=bad)
        with pytest.raises(ValueError, match="cell_size"):
            jaxmarl_envs.make("lbf-8x8-2p-2f-coop", render_cell_size=bad)


@pytest.mark.parametrize("bad", [0, 63, 100.0, False, "700", MAX_FRAME_SIDE + 1])
def test_bad_mpe_sizes_raise(bad):
    env = jaxmarl_envs.make("mpe-simple_spread")
    with pytest.raises(ValueError, match="size"):
        MPEViewer(env.world, size=bad)
    with pytest.raises(ValueError, match="size"):
        jaxmarl_envs.make("mpe-simple_spread", render_size=bad)


@pytest.mark.parametrize("bad", [(39, 56), (112, 23), (112,), 112, (112.5, 56), "ab", (1, 2, 3)])
def test_bad_matrix_cell_sizes_raise(bad):
    with pytest.raises(ValueError, match="cell_size"):
        MatrixViewer(np.zeros((2, 2, 2)), [["a", "b"]] * 2, cell_size=bad)
    with pytest.raises(ValueError, match="cell_size"):
        jaxmarl_envs.make("matrix-climbing", render_cell_size=bad)


def test_frames_too_large_and_size_with_viewer_raise():
    with pytest.raises(ValueError, match="pixels"):
        LBFViewer(2000, 2000, 48)  # 96000 pixels a side
    with pytest.raises(ValueError, match="viewer"):
        jaxmarl_envs.make("lbf-8x8-2p-2f-coop", render_cell_size=20, viewer=LBFViewer(8, 8))
    with pytest.raises(ValueError, match="viewer"):
        jaxmarl_envs.make("mpe-simple_spread", render_size=200, viewer=object())
    assert check_pixels(np.int64(30), "cell_size", 8, "test") == 30


# ----------------------------------------------------------------------------- caches
@pytest.mark.parametrize(
    "env_id", ["rware-tiny-4ag", "lbf-8x8-2p-2f-coop", "mpe-simple_spread", "matrix-climbing"]
)
def test_same_state_same_frame_and_no_stale_cache_across_resets(env_id):
    env = jaxmarl_envs.make(env_id)
    step = jax.jit(env.step)
    states = [_reset(env, 0), _reset(env, 1)]
    moved = states[0]
    for _ in range(5):
        moved, _ = step(moved, jnp.ones(env.num_agents, jnp.int32))
    states.append(moved)
    frames = [env.render(s) for s in states]
    again = [env.render(s) for s in reversed(states)][::-1]
    for frame, repeat, state in zip(frames, again, states, strict=True):
        assert np.array_equal(frame, repeat)
        assert np.array_equal(frame, _fresh_frame(env, state))
    if env.name != "matrix":  # a deterministic game: every reset is the same state
        assert not np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])
    env.close()
    assert np.array_equal(env.render(states[0]), frames[0])  # a closed viewer draws anew


def test_rware_layouts_do_not_share_a_background():
    a = layout_from_str("x.x.x\n.....\n..g..")
    b = layout_from_str("x.x.x\n.....\ng...g")
    env_a = jaxmarl_envs.make(
        "rware-tiny-4ag", layout="x.x.x\n.....\n..g..", num_agents=2, request_queue_size=1
    )
    state = _reset(env_a)
    viewer = RwareViewer(a, 20)
    frame_a = viewer.render(state)
    viewer.layout = b  # same grid, other goals: the cached background must be redrawn
    frame_b = viewer.render(state)
    assert not np.array_equal(frame_a, frame_b)
    assert np.array_equal(frame_b, RwareViewer(b, 20).render(state))
    viewer.layout = a
    assert np.array_equal(viewer.render(state), frame_a)
    # A goal cell is dark grey in its own layout only (row 2, column 0 is a goal of b).
    goal = np.array([60, 60, 60], np.uint8)
    assert np.all(frame_b[2 * 20 + 5, 5] == goal) and not np.all(frame_a[2 * 20 + 5, 5] == goal)


def test_rware_moved_duplicated_and_requested_shelves_are_drawn():
    """Every cell's shelf corner pixel against a naive reference (shelves in index order over
    goals and empty cells), for states that move shelves off and onto shelf cells."""
    from jaxmarl_envs.rware import constants as C

    env = jaxmarl_envs.make("rware-tiny-4ag", render_cell_size=24)
    state = _reset(env)
    lay, rng = env.layout, np.random.default_rng(0)
    margin = max(2, 24 // 10)
    goals = {tuple(g) for g in np.asarray(lay.goals).tolist()}
    for trial in range(12):
        pos = np.array(lay.shelf_pos)
        moved = rng.choice(len(pos), 4, replace=False)
        pos[moved] = np.stack([rng.integers(0, lay.height, 4), rng.integers(0, lay.width, 4)], 1)
        queue = rng.choice(len(pos), state.request_queue.shape[0], replace=False)
        if trial % 2 == 0:  # two shelves on one cell: the later one shows
            first = int(queue.min())
            later = next(k for k in range(first + 1, len(pos)) if k not in set(queue.tolist()))
            pos[first], pos[later] = lay.shelf_pos[first], lay.shelf_pos[first]
        shown = state.replace(
            shelf_pos=jnp.asarray(pos, state.shelf_pos.dtype),
            request_queue=jnp.asarray(queue, state.request_queue.dtype),
        )
        frame = env.render(shown)
        expected = {}
        for i, (row, col) in enumerate(pos.tolist()):
            requested = i in set(queue.tolist())
            expected[(row, col)] = C.COLOR_REQUESTED_SHELF if requested else C.COLOR_SHELF
        for row in range(lay.height):
            for col in range(lay.width):
                empty = C.COLOR_GOAL if (row, col) in goals else C.COLOR_BACKGROUND
                want = expected.get((row, col), empty)
                pixel = frame[row * 24 + margin + 1, col * 24 + margin + 1]
                assert tuple(pixel.tolist()) == want, (trial, row, col)


def test_lbf_grids_and_food_levels_do_not_go_stale():
    env = jaxmarl_envs.make("lbf-8x8-2p-2f-coop")
    state = _reset(env)
    viewer = LBFViewer(8, 8)
    first = viewer.render(state)
    other = state.replace(food_level=state.food_level + 1)  # other digits on the food
    second = viewer.render(other)
    assert not np.array_equal(first, second)
    assert np.array_equal(second, LBFViewer(8, 8).render(other))
    assert np.array_equal(viewer.render(state), first)
    # A viewer of another grid draws its own grid lines.
    wide = jaxmarl_envs.make("lbf-8x8-2p-2f-coop", grid_size=(8, 10))
    wide_state = _reset(wide)
    assert wide.render(wide_state).shape == (8 * 48, 10 * 48, 3)
    assert np.array_equal(wide.render(wide_state), LBFViewer(8, 10).render(wide_state))


def test_mpe_landmark_positions_and_messages_change_the_frame():
    env = jaxmarl_envs.make("mpe-simple_speaker_listener-continuous")
    state = _reset(env)
    first = env.render(state)
    moved = state.replace(p_pos=state.p_pos.at[-1].add(0.3))  # one landmark moves
    assert not np.array_equal(first, env.render(moved))
    said = state.replace(c=state.c.at[0].set(jnp.array([0.25, 0.5, 0.75])))
    assert not np.array_equal(first, env.render(said))
    assert np.array_equal(env.render(said), _fresh_frame(env, said))
    assert np.array_equal(env.render(state), first)


def test_matrix_background_follows_the_other_players_actions():
    table = np.arange(3 * 2 * 2 * 3, dtype=np.float32).reshape(3, 2, 2, 3)
    env = MatrixGame(table, horizon=4, game="three players")
    state = _reset(env)
    step = jax.jit(env.step)
    s1, _ = step(state, jnp.asarray([1, 0, 2]))
    s2, _ = step(s1, jnp.asarray([1, 0, 1]))  # same cell, another slice of the table
    f1, f2 = env.render(s1), env.render(s2)
    assert not np.array_equal(f1, f2)
    assert np.array_equal(f2, _fresh_frame(env, s2))
    assert np.array_equal(env.render(s1), f1)


def test_frames_are_fresh_writable_arrays():
    env = jaxmarl_envs.make("mpe-simple_spread")
    state = _reset(env)
    frame = env.render(state)
    kept = frame.copy()
    assert frame.flags.writeable and frame.flags.c_contiguous
    env.render(state.replace(p_pos=state.p_pos * 0.5))
    assert np.array_equal(frame, kept)  # not a view of the reused surface
    frame[:] = 0
    assert np.array_equal(env.render(state), kept)


def test_canvas_glyph_cache_is_bounded():
    canvas = Canvas(64, 32)
    for i in range(1100):
        canvas.glyph(12, str(i), (0, 0, 0))
    assert len(canvas._glyphs) <= 1024
    assert canvas.to_array().shape == (32, 64, 3)
