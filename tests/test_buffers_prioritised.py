"""Sum tree and prioritised buffers: frequencies, importance weights, zero priorities, validity."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from jaxmarl_envs.algorithms.buffers import (
    make_prioritised_flat_buffer,
    make_prioritised_item_buffer,
    make_prioritised_trajectory_buffer,
    sum_tree,
)

EXAMPLE = {
    "t": jnp.zeros((), jnp.int32),
    "row": jnp.zeros((), jnp.int32),
    "done": jnp.zeros((), bool),
}


def make_batch(rows, start, t, done=None):
    tt = np.broadcast_to(np.arange(start, start + t), (rows, t))
    row = np.repeat(np.arange(rows)[:, None], t, axis=1)
    d = np.zeros((rows, t), bool) if done is None else np.vectorize(done)(row, tt)
    return {
        "t": jnp.asarray(tt, jnp.int32),
        "row": jnp.asarray(row, jnp.int32),
        "done": jnp.asarray(d),
    }


def valid_ids(rows, max_time, length, period, total, done=None):
    ids = set()
    for r in range(rows):
        for s in range(max(0, total - max_time), total - length + 1):
            if s % period or (done is not None and any(done(r, s + j) for j in range(length - 1))):
                continue
            ids.add(r * max_time + s % max_time)
    return ids


@functools.cache
def jitted(rows, max_time, n, length, period, mode="any", alpha=0.6):
    buf = make_prioritised_trajectory_buffer(
        rows, max_time, n, length, period, 1, alpha, 0.4, mode, None if mode == "any" else "done"
    )
    return (
        buf,
        jax.jit(buf.add, donate_argnums=0),
        jax.jit(buf.sample),
        jax.jit(buf.set_priorities),
    )


# ----------------------------------------------------------------------------- sum tree


def test_sum_tree_update_total_and_frequencies():
    tree = sum_tree.init(5)
    assert tree.capacity == 8
    values = np.array([0.0, 1.0, 3.0, 0.0, 6.0], np.float32)
    tree = sum_tree.update(tree, jnp.arange(5), jnp.asarray(values))
    assert float(tree.total) == pytest.approx(10.0)
    assert np.allclose(np.asarray(sum_tree.get(tree, jnp.arange(5))), values)
    tree = sum_tree.update(tree, jnp.array([1, 9, -1]), jnp.array([2.0, 5.0, 5.0]))  # 9, -1 ignored
    assert float(tree.total) == pytest.approx(11.0)
    idx = np.asarray(
        jax.jit(sum_tree.sample, static_argnums=2)(tree, jax.random.PRNGKey(0), 20_000)
    )
    counts = np.bincount(idx, minlength=8)
    assert counts[[0, 3, 5, 6, 7]].sum() == 0
    probs = np.array([2.0, 3.0, 6.0]) / 11.0
    assert stats.chisquare(counts[[1, 2, 4]], probs * counts.sum()).pvalue > 1e-3


def test_sum_tree_find_skips_zero_leaves_at_the_boundaries():
    tree = sum_tree.update(sum_tree.init(5), jnp.arange(5), jnp.array([0.0, 1.0, 3.0, 0.0, 0.0]))
    u = jnp.array([0.0, 0.999, 1.0, 3.999, 4.0, 4.5])  # 4.0 and 4.5: at or past the total
    assert np.asarray(sum_tree.find(tree, u)).tolist() == [1, 1, 2, 2, 2, 2]


def test_sum_tree_never_returns_zero_leaf_with_tiny_mass():
    tree = sum_tree.init(1000)
    vals = np.zeros(1000, np.float32)
    vals[::97] = 1e-30
    vals[500] = 1e6
    tree = sum_tree.update(tree, jnp.arange(1000), jnp.asarray(vals))
    idx = np.asarray(sum_tree.sample(tree, jax.random.PRNGKey(3), 50_000))
    assert bool(np.all(vals[idx] > 0))


# ----------------------------------------------------------------------------- buffers


@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 3), max_time=st.integers(1, 8), data=st.data())
def test_positive_priorities_are_exactly_the_valid_sequences(rows, max_time, data):
    """After any adds (with wrap-around), items with priority > 0 are the valid starts."""
    length = data.draw(st.integers(1, max_time), label="length")
    period = data.draw(st.integers(1, 3), label="period")
    t_add = data.draw(st.integers(1, max_time), label="t_add")
    adds = data.draw(st.integers(1, 6), label="adds")
    within = data.draw(st.booleans(), label="within")
    table = np.random.default_rng(adds).random((4, 64)) < 0.3
    done = (lambda r, t: table[r, t % 64]) if within else None
    buf, add, sample, set_p = jitted(
        rows, max_time, 256, length, period, "within" if within else "any"
    )
    state = buf.init(EXAMPLE)
    total = 0
    for i in range(adds):
        state = add(state, make_batch(rows, total, t_add, done))
        total += t_add
        if i == 1 and bool(buf.can_sample(state)):  # non-default priorities survive later adds
            out = sample(state, jax.random.PRNGKey(i))
            state = set_p(state, out.indices, jnp.full(out.indices.shape, 3.0))
        leaves = np.asarray(state.priorities.leaves)
        assert {int(i) for i in np.flatnonzero(leaves > 0)} == valid_ids(
            rows, max_time, length, period, total, done
        )
    if bool(buf.can_sample(state)):
        out = sample(state, jax.random.PRNGKey(0))
        t = np.asarray(out.experience["t"])
        assert bool(np.all(np.diff(t, axis=1) == 1)) and bool(np.all(t[:, -1] < total))
        assert {int(i) for i in np.asarray(out.indices)} <= valid_ids(
            rows, max_time, length, period, total, done
        )


def _filled(rows=2, max_time=9, length=3, period=1, alpha=0.6, n=40_000):
    buf, add, sample, set_p = jitted(rows, max_time, n, length, period, "any", alpha)
    state = buf.init(EXAMPLE)
    for i in range(4):
        state = add(state, make_batch(rows, 4 * i, 4))
    return buf, state, sample, set_p, 16


def test_sampling_frequencies_match_priorities_and_weights_match_definition():
    alpha, beta = 0.6, 0.7
    buf, state, sample, set_p, total = _filled(alpha=alpha)
    ids = np.array(sorted(valid_ids(2, 9, 3, 1, total)))
    raw = np.arange(1, len(ids) + 1, dtype=np.float32)
    raw[3] = 0.0  # a zero priority is never sampled
    state = set_p(state, jnp.asarray(ids), jnp.asarray(raw))
    out = sample(state, jax.random.PRNGKey(0), beta)
    scaled = np.where(raw > 0, raw.astype(np.float64) ** alpha, 0.0)
    probs = scaled / scaled.sum()
    drawn = np.asarray(out.indices)
    assert ids[3] not in set(drawn.tolist())
    pos = {int(i): k for k, i in enumerate(ids)}
    counts = np.bincount([pos[int(i)] for i in drawn], minlength=len(ids))
    keep = probs > 0
    assert stats.chisquare(counts[keep], probs[keep] * counts.sum()).pvalue > 1e-3
    p_out = np.asarray(out.probabilities)
    assert np.allclose(p_out, probs[[pos[int(i)] for i in drawn]], rtol=1e-4)
    n_items = np.count_nonzero(scaled)
    w = (n_items * p_out) ** (-beta)
    assert np.allclose(np.asarray(out.weights), w / w.max(), rtol=1e-4)
    # The sample matches its ids: row and start come from the id.
    t = np.asarray(out.experience["t"])[:, 0]
    row = np.asarray(out.experience["row"])[:, 0]
    assert bool(np.all(row * 9 + t % 9 == drawn))


def test_default_beta_and_alpha_zero_is_uniform():
    buf, state, sample, set_p, total = _filled(alpha=0.0, n=20_000)
    ids = np.array(sorted(valid_ids(2, 9, 3, 1, total)))
    state = set_p(state, jnp.asarray(ids), jnp.linspace(0.1, 9.0, len(ids)))
    out = sample(state, jax.random.PRNGKey(1))
    assert np.allclose(np.asarray(out.probabilities), 1 / len(ids))
    assert np.allclose(np.asarray(out.weights), 1.0)


def test_set_priorities_ignores_invalid_items_and_tracks_max():
    buf, state, sample, set_p, total = _filled()
    invalid = sorted(set(range(18)) - valid_ids(2, 9, 3, 1, total))
    before = np.asarray(state.priorities.leaves).copy()
    state = set_p(state, jnp.asarray(invalid + [-3, 400]), jnp.full(len(invalid) + 2, 50.0))
    assert np.array_equal(np.asarray(state.priorities.leaves), before)
    assert float(state.max_priority) == 1.0
    vid = sorted(valid_ids(2, 9, 3, 1, total))
    state = set_p(state, jnp.asarray(vid[:2]), jnp.array([7.0, jnp.nan]))
    assert float(state.max_priority) == 7.0
    assert float(state.priorities.leaves[vid[1]]) == 0.0  # NaN counts as zero
    # New data gets the max priority seen so far.
    state = jax.jit(buf.add)(state, make_batch(2, total, 1))
    new_id = (total + 1 - 3) % 9
    assert float(state.priorities.leaves[new_id]) == pytest.approx(7.0**0.6)


def test_all_zero_priorities_cannot_sample():
    buf, state, sample, set_p, total = _filled()
    assert bool(buf.can_sample(state))
    ids = jnp.asarray(sorted(valid_ids(2, 9, 3, 1, total)))
    state = set_p(state, ids, jnp.zeros(ids.shape))
    assert not bool(buf.can_sample(state))


def test_prioritised_flat_and_item_buffers():
    flat = make_prioritised_flat_buffer(12, 2, 2000, add_batch_size=2, priority_exponent=1.0)
    ex = {"t": jnp.zeros((), jnp.int32)}
    s = flat.init(ex)
    add, sample = jax.jit(flat.add), jax.jit(flat.sample)
    for i in range(9):
        s = add(s, {"t": jnp.array([i, 100 + i])})
    out = sample(s, jax.random.PRNGKey(0))
    assert bool(jnp.all(out.second["t"] == out.first["t"] + 1))
    s = jax.jit(flat.set_priorities)(s, out.indices[:1], jnp.zeros(1))
    again = sample(s, jax.random.PRNGKey(1))
    assert int(out.indices[0]) not in set(np.asarray(again.indices).tolist())

    item = make_prioritised_item_buffer(6, 1, 3000, priority_exponent=1.0)
    s = item.init(ex)
    s = jax.jit(item.add)(s, {"t": jnp.arange(8, 14)})
    s = jax.jit(item.set_priorities)(s, jnp.arange(6), jnp.array([1.0, 0.0, 2.0, 0.0, 3.0, 0.0]))
    out = jax.jit(item.sample)(s, jax.random.PRNGKey(2))
    counts = np.bincount(np.asarray(out.indices), minlength=6)
    assert counts[[1, 3, 5]].sum() == 0
    assert stats.chisquare(counts[[0, 2, 4]], np.array([1, 2, 3]) / 6 * 3000).pvalue > 1e-3
    assert bool(jnp.all(out.experience["t"] == 8 + out.indices))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(priority_exponent=-1.0), "priority_exponent"),
        (dict(importance_sampling_exponent=float("nan")), "importance_sampling_exponent"),
        (dict(sample_sequence_length=20), "sample_sequence_length"),
        (dict(episode_mode="mask"), "done_key"),
    ],
)
def test_prioritised_factory_rejects_bad_arguments(kwargs, match):
    args = dict(add_batch_size=2, max_length_time=8, sample_batch_size=4, sample_sequence_length=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_prioritised_trajectory_buffer(**args)


def test_prioritised_add_in_scan_matches_sequential_adds_and_donates():
    buf = make_prioritised_trajectory_buffer(2, 5, 4, 2, period=1)
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
        assert old.priorities.nodes.is_deleted(), "add did not donate the priorities"
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert all(bool(jnp.array_equal(x, y)) for x, y in zip(la, lb, strict=True))
    assert {int(i) for i in np.flatnonzero(np.asarray(a.priorities.leaves) > 0)} == valid_ids(
        2, 5, 2, 1, 12
    )
