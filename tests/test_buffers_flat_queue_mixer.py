"""Flat and item buffers, the FIFO trajectory queue and the mixer."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from jaxmarl_envs.algorithms.buffers import (
    make_flat_buffer,
    make_item_buffer,
    make_mixer,
    make_trajectory_queue,
)

EX = {"t": jnp.zeros((), jnp.int32), "row": jnp.zeros((), jnp.int32)}


def step_batch(rows, t):
    return {"t": jnp.full((rows,), t, jnp.int32), "row": jnp.arange(rows, dtype=jnp.int32)}


def test_flat_pairs_are_consecutive_and_uniform_after_wrap():
    buf = make_flat_buffer(max_length=12, min_length=4, sample_batch_size=20_000, add_batch_size=2)
    assert buf.max_length_time == 6
    add, sample, can = (
        jax.jit(buf.add, donate_argnums=0),
        jax.jit(buf.sample),
        jax.jit(buf.can_sample),
    )
    state = buf.init(EX)
    for t in range(10):
        assert bool(can(state)) == (t >= 2)  # min_length 4 over 2 rows: 2 steps per row
        state = add(state, step_batch(2, t))
    out = sample(state, jax.random.PRNGKey(0))
    first, second = np.asarray(out.first["t"]), np.asarray(out.second["t"])
    assert bool(np.all(second == first + 1))
    assert bool(np.all(out.first["row"] == out.second["row"]))
    assert set(first.tolist()) == {4, 5, 6, 7, 8}  # stored 4..9, pairs start 4..8
    counts = np.bincount(first * 2 + np.asarray(out.first["row"]))[8:]
    assert stats.chisquare(counts, np.full(10, 2000.0)).pvalue > 1e-3


def test_flat_add_sequences():
    buf = make_flat_buffer(8, 2, 16, add_batch_size=1, add_sequences=True)
    state = buf.add(buf.init(EX), {"t": jnp.arange(5)[None], "row": jnp.zeros((1, 5), jnp.int32)})
    out = buf.sample(state, jax.random.PRNGKey(1))
    assert bool(jnp.all(out.second["t"] == out.first["t"] + 1))
    assert bool(jnp.all(out.first["t"] <= 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(max_length=3, add_batch_size=2), "max_length"),
        (dict(min_length=100), "min_length"),
        (dict(sample_batch_size=0), "sample_batch_size"),
    ],
)
def test_flat_rejects_bad_arguments(kwargs, match):
    args = dict(max_length=16, min_length=2, sample_batch_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_flat_buffer(**args)


@settings(max_examples=10, deadline=None)
@given(max_length=st.integers(1, 9), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_item_buffer_keeps_the_last_items(max_length, sizes):
    buf = make_item_buffer(max_length, 1, 256)
    state = buf.init({"t": jnp.zeros((), jnp.int32)})
    total = 0
    for n in sizes:
        if n > max_length:
            with pytest.raises(ValueError, match="time length"):
                buf.add(state, {"t": jnp.arange(n)})
            continue
        state = buf.add(state, {"t": jnp.arange(total, total + n)})
        total += n
    if total == 0:
        assert not bool(buf.can_sample(state))
        return
    drawn = set(np.asarray(buf.sample(state, jax.random.PRNGKey(0)).experience["t"]).tolist())
    assert drawn == set(range(max(0, total - max_length), total))


def test_item_buffer_add_with_vmapped_seeds_writes_in_place():
    """Seeds vmapped (as the trainers do), a scan of adds and samples must not copy the
    store: XLA's CPU layouts once copied every leaf on every add (through a flattened view
    with a size-1 axis), which made SAC's update cost grow with the replay size. Checked on
    the compiled program: no copy of a store-sized array inside the loop."""
    max_length, seeds = 1237, 2
    buf = make_item_buffer(max_length, 1, 64)
    example = {"obs": jnp.zeros((3, 5), jnp.uint8), "reward": jnp.zeros((3,), jnp.float32)}

    def run(state, key):
        def body(state, k):
            items = {"obs": jnp.ones((16, 3, 5), jnp.uint8), "reward": jnp.ones((16, 3))}
            state = buf.add(state, items)
            return state, buf.sample(state, k).experience["reward"].sum()

        return jax.lax.scan(body, state, jax.random.split(key, 4))

    states = jax.vmap(lambda _: buf.init(example))(jnp.arange(seeds))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    compiled = jax.jit(jax.vmap(run)).lower(states, keys).compile()
    store_copy = re.compile(rf"\[[^\]]*{max_length}[^\]]*\]\S* copy\(")
    text, computation, copies = compiled.as_text(), "", []
    for line in text.splitlines():
        if line and not line.startswith(" ") and "{" in line:
            computation = line
        if "ENTRY" not in computation and store_copy.search(line):
            copies.append(line.strip()[:120])
    assert not copies, copies
    states, sums = compiled(states, keys)
    assert int(states.total_added[0]) == 64 and np.all(np.asarray(sums) == 64.0 * 3)


def test_queue_is_fifo_and_counts_drops():
    q = make_trajectory_queue(add_batch_size=2, max_length_time=6, sample_sequence_length=3)
    ex = {"t": jnp.zeros((), jnp.int32)}
    add, sample = jax.jit(q.add), jax.jit(q.sample)
    state = q.init(ex)
    batch = lambda a, b: {"t": jnp.stack([jnp.arange(a, b), 100 + jnp.arange(a, b)])}
    state, out = sample(state)
    assert not bool(out.valid) and int(state.read_index) == 0
    state = add(state, batch(0, 4))
    assert bool(q.can_add(state, 2)) and not bool(q.can_add(state, 3))
    state, out = sample(state)
    assert bool(out.valid)
    assert np.asarray(out.experience["t"]).tolist() == [[0, 1, 2], [100, 101, 102]]
    assert not bool(q.can_sample(state))
    state = add(state, batch(4, 9))  # 6 unread > capacity 6? 1 + 5 = 6 fits
    assert int(state.num_dropped) == 0
    state, out = sample(state)
    assert np.asarray(out.experience["t"])[0].tolist() == [3, 4, 5]
    state = add(state, batch(9, 14))  # 3 unread + 5 > 6: the 2 oldest are dropped
    assert int(state.num_dropped) == 2
    state, out = sample(state)
    assert np.asarray(out.experience["t"])[0].tolist() == [8, 9, 10]
    state, out = sample(state)
    assert np.asarray(out.experience["t"])[1].tolist() == [111, 112, 113]
    assert not bool(q.can_sample(state))
    with pytest.raises(ValueError, match="sample_sequence_length"):
        make_trajectory_queue(1, 2, 3)


def test_mixer_draws_fixed_proportions():
    a = make_flat_buffer(8, 2, 8)
    b = make_flat_buffer(8, 2, 8)
    ex = {"t": jnp.zeros((), jnp.int32)}
    sa, sb = a.init(ex), b.init(ex)
    for t in range(5):
        sa = a.add(sa, {"t": jnp.array([t])})
        sb = b.add(sb, {"t": jnp.array([1000 + t])})
    mixer = make_mixer([a, b], [0.25, 0.75], 8)
    assert mixer.shares == (2, 6)
    assert bool(mixer.can_sample((sa, sb)))
    assert not bool(mixer.can_sample((a.init(ex), sb)))
    out = jax.jit(mixer.sample)((sa, sb), jax.random.PRNGKey(0))
    t = np.asarray(out.sample.first["t"])
    assert np.asarray(out.source).tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert bool(np.all(t[:2] < 1000)) and bool(np.all(t[2:] >= 1000))
    assert make_mixer([a, b], [1, 0], 5).shares == (5, 0)
    with pytest.raises(ValueError, match="share"):
        make_mixer([a, b], [1, 3], 16)
    with pytest.raises(ValueError, match="proportions"):
        make_mixer([a, b], [-1, 2], 4)
    with pytest.raises(ValueError, match="one proportion per buffer"):
        make_mixer([a, b], [1], 4)
