"""Trajectory buffer: contiguity, write head, can_sample, coverage and uniformity, episodes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from jaxmarl_envs.algorithms.buffers import make_trajectory_buffer

EXAMPLE = {
    "t": jnp.zeros((), jnp.int32),
    "row": jnp.zeros((), jnp.int32),
    "done": jnp.zeros((), bool),
}


def make_batch(rows: int, start: int, t: int, done_fn=None) -> dict:
    """Rows of logical times `start..start+t-1`; row id in `row`; `done` from `done_fn(row, t)`."""
    times = np.arange(start, start + t)
    row = np.repeat(np.arange(rows)[:, None], t, axis=1)
    tt = np.broadcast_to(times, (rows, t))
    done = np.zeros((rows, t), bool) if done_fn is None else done_fn(row, tt)
    return {
        "t": jnp.asarray(tt, jnp.int32),
        "row": jnp.asarray(row, jnp.int32),
        "done": jnp.asarray(done),
    }


def valid_starts(rows, max_time, length, period, total, done=None, mode="any"):
    """Brute-force set of valid (row, logical start) pairs; `done(row, t)` gives episode ends."""
    out = set()
    for r in range(rows):
        for s in range(max(0, total - max_time), total - length + 1):
            if s % period:
                continue
            if mode == "within" and any(done(r, s + j) for j in range(length - 1)):
                continue
            out.add((r, s))
    return out


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(stats.chisquare(counts, expected).pvalue)


@functools.cache
def jitted(rows, max_time, n, length, period, min_time, mode):
    buf = make_trajectory_buffer(
        rows, max_time, n, length, period, min_time, mode, None if mode == "any" else "done"
    )
    return buf, jax.jit(buf.add, donate_argnums=0), jax.jit(buf.can_sample), jax.jit(buf.sample)


def episode_done(seed: int):
    rng = np.random.default_rng(seed)
    table = rng.random((8, 512)) < 0.25
    return lambda r, t: table[r % 8, t % 512]


def fill(buf, add, adds, t_add, done=None):
    state = buf.init(EXAMPLE)
    total = 0
    for _ in range(adds):
        dfn = None if done is None else np.vectorize(done)
        state = add(state, make_batch(buf.add_batch_size, total, t_add, dfn))
        total += t_add
    return state, total


def check_samples(out, total, max_time, length, period, valid, mode, done=None):
    t = np.asarray(out.experience["t"])
    row = np.asarray(out.experience["row"])
    assert bool(np.all(np.diff(t, axis=1) == 1)), "sequence not contiguous in time"
    assert bool(np.all(row == row[:, :1])), "sequence mixes rows"
    assert bool(np.all(t[:, -1] < total)), "sequence crosses the write head"
    assert bool(np.all(t[:, 0] >= max(0, total - max_time))), "sequence reads overwritten data"
    assert bool(np.all(t[:, 0] % period == 0))
    pairs = set(zip(row[:, 0].tolist(), t[:, 0].tolist(), strict=True))
    assert pairs <= valid
    mask = np.asarray(out.mask)
    if mode == "mask":
        d = np.asarray(out.experience["done"]).astype(int)
        assert bool(np.array_equal(mask, (np.cumsum(d, 1) - d) == 0))
    else:
        assert bool(mask.all())
    return pairs


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 3),
    max_time=st.integers(1, 9),
    data=st.data(),
)
def test_samples_contiguous_valid_and_cover_all_starts(rows, max_time, data):
    length = data.draw(st.integers(1, max_time), label="length")
    period = data.draw(st.integers(1, 3), label="period")
    t_add = data.draw(st.integers(1, max_time), label="t_add")
    adds = data.draw(st.integers(0, 6), label="adds")
    min_time = data.draw(st.integers(1, max_time), label="min_time")
    mode = data.draw(st.sampled_from(["any", "within", "mask"]), label="mode")
    done = episode_done(data.draw(st.integers(0, 3), label="seed"))
    buf, add, can_sample, sample = jitted(rows, max_time, 512, length, period, min_time, mode)
    state, total = fill(buf, add, adds, t_add, done)
    assert int(state.total_added) == total
    valid = valid_starts(rows, max_time, length, period, total, done, mode)
    assert bool(can_sample(state)) == (bool(valid) and total >= min_time)
    if not valid:
        # Nothing valid to return: the mask says so.
        assert not bool(sample(state, jax.random.PRNGKey(0)).mask.any())
        return
    out = sample(state, jax.random.PRNGKey(adds))
    pairs = check_samples(out, total, max_time, length, period, valid, mode, done)
    # 512 draws over at most 27 equally likely starts: missing one has probability < 1e-5.
    assert pairs == valid


def test_uniform_frequencies_chi_square_after_wrap():
    rows, max_time, length, period = 2, 11, 3, 2
    buf, add, _, sample = jitted(rows, max_time, 20_000, length, period, 1, "any")
    state, total = fill(buf, add, 5, 4)  # 20 steps into a ring of 11: wrapped
    valid = sorted(valid_starts(rows, max_time, length, period, total))
    out = sample(state, jax.random.PRNGKey(0))
    check_samples(out, total, max_time, length, period, set(valid), "any")
    index = {v: i for i, v in enumerate(valid)}
    keys = zip(
        np.asarray(out.experience["row"][:, 0]).tolist(),
        np.asarray(out.experience["t"][:, 0]).tolist(),
        strict=True,
    )
    counts = np.bincount([index[k] for k in keys], minlength=len(valid))
    assert chi2_pvalue(counts, np.full(len(valid), 1 / len(valid))) > 1e-3


def test_within_frequencies_chi_square():
    rows, max_time, length, period = 2, 12, 3, 1
    done = episode_done(7)
    buf, add, _, sample = jitted(rows, max_time, 20_000, length, period, 1, "within")
    state, total = fill(buf, add, 4, 5, done)
    valid = sorted(valid_starts(rows, max_time, length, period, total, done, "within"))
    assert len(valid) >= 3
    out = sample(state, jax.random.PRNGKey(1))
    check_samples(out, total, max_time, length, period, set(valid), "within", done)
    d = np.asarray(out.experience["done"])
    assert not bool(d[:, :-1].any()), "a 'within' sequence contains an internal episode end"
    index = {v: i for i, v in enumerate(valid)}
    keys = zip(
        np.asarray(out.experience["row"][:, 0]).tolist(),
        np.asarray(out.experience["t"][:, 0]).tolist(),
        strict=True,
    )
    counts = np.bincount([index[k] for k in keys], minlength=len(valid))
    assert chi2_pvalue(counts, np.full(len(valid), 1 / len(valid))) > 1e-3


def test_statistical_test_detects_a_biased_sampler():
    # The chi-square check must be able to fail: a sampler that never draws one start.
    counts = np.array([1000, 1000, 1000, 0])
    assert chi2_pvalue(counts, np.full(4, 0.25)) < 1e-3


def test_mask_mode_masks_after_first_episode_end():
    buf, add, _, sample = jitted(1, 8, 64, 4, 1, 1, "mask")
    state = buf.init(EXAMPLE)
    batch = make_batch(1, 0, 8, lambda r, t: t == 2)
    state = add(state, batch)
    out = sample(state, jax.random.PRNGKey(0))
    t0 = np.asarray(out.experience["t"][:, 0])
    mask = np.asarray(out.mask)
    for s, m in zip(t0, mask, strict=True):
        expected = [s + j <= 2 or s > 2 for j in range(4)]
        assert m.tolist() == expected


def test_within_cannot_sample_when_every_sequence_crosses_an_episode():
    buf, add, can_sample, _ = jitted(1, 6, 4, 3, 1, 1, "within")
    state = add(buf.init(EXAMPLE), make_batch(1, 0, 6, lambda r, t: t % 2 == 0))
    assert not bool(can_sample(state))
    state = add(state, make_batch(1, 6, 3, lambda r, t: np.zeros_like(t, bool)))
    assert bool(can_sample(state))


def test_add_in_scan_matches_sequential_adds_and_donates():
    buf = make_trajectory_buffer(2, 5, 4, 2)
    batches = [make_batch(2, 3 * i, 3) for i in range(4)]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *batches)

    @jax.jit
    def scanned(state, xs):
        return jax.lax.scan(lambda s, b: (buf.add(s, b), None), state, xs)[0]

    a = scanned(buf.init(EXAMPLE), stacked)
    add = jax.jit(buf.add, donate_argnums=0)
    b = buf.init(EXAMPLE)
    for batch in batches:
        old = b
        b = add(b, batch)
        assert old.experience["t"].is_deleted(), "add did not donate (update in place)"
    assert all(
        bool(jnp.array_equal(x, y))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )
    assert int(a.total_added) == 12 and int(a.current_index) == 12 % 5 and bool(a.is_full)
    # The ring holds the last 5 steps of each row at slots t % 5.
    assert np.asarray(a.experience["t"])[0].tolist() == [10, 11, 7, 8, 9]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(add_batch_size=0), "add_batch_size"),
        (dict(max_length_time=2, sample_sequence_length=3), "sample_sequence_length"),
        (dict(period=0), "period"),
        (dict(sample_batch_size=1.5), "sample_batch_size"),
        (dict(min_length_time=20), "min_length_time"),
        (dict(episode_mode="inside"), "episode_mode"),
        (dict(episode_mode="within"), "done_key"),
        (dict(add_batch_size=True), "add_batch_size"),
    ],
)
def test_factory_rejects_bad_arguments(kwargs, match):
    args = dict(add_batch_size=2, max_length_time=8, sample_batch_size=4, sample_sequence_length=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_trajectory_buffer(**args)


def test_add_rejects_bad_batches():
    buf = make_trajectory_buffer(2, 4, 4, 2)
    state = buf.init(EXAMPLE)
    with pytest.raises(ValueError, match="time length"):
        buf.add(state, make_batch(2, 0, 5))
    with pytest.raises(ValueError, match="add_batch_size"):
        buf.add(state, make_batch(3, 0, 2))
    with pytest.raises(ValueError, match="structure"):
        buf.add(state, {"t": jnp.zeros((2, 2), jnp.int32)})
    within = make_trajectory_buffer(2, 4, 4, 2, episode_mode="within", done_key="done")
    with pytest.raises(ValueError, match="scalar"):
        within.init({**EXAMPLE, "done": jnp.zeros((3,), bool)})
    with pytest.raises(ValueError, match="not a field"):
        within.init({"t": EXAMPLE["t"]})
