"""`jaxmarl_envs.rng`: the unrolled Threefry draws (`split`, `uniform`, `randint` and the
batched `split_many` / `split_index` / `uniform_each`) give exactly `jax.random`'s values (raw
and typed keys, eager, jit and vmap), and fall back to `jax.random` for other key
implementations and the non-partitionable layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs import rng

SHAPES = [((6, 2), -1.0, 1.0), ((2, 2), -0.9, 0.9), ((3,), 0.0, 1.0), ((), 0.0, 1.0)]
SHAPES += [((7, 3), -2.5, 0.3), ((0, 2), -1.0, 1.0)]


def _same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("shape,lo,hi", SHAPES)
def test_uniform_matches_jax_random(shape, lo, hi):
    keys = jax.random.split(jax.random.PRNGKey(3), 40)
    ref = jax.vmap(lambda k: jax.random.uniform(k, shape, jnp.float32, lo, hi))(keys)
    ours = jax.jit(jax.vmap(lambda k: rng.uniform(k, shape, lo, hi)))(keys)
    assert _same(np.asarray(ours), np.asarray(ref))
    for i in range(0, 40, 7):
        want = np.asarray(jax.random.uniform(keys[i], shape, jnp.float32, lo, hi))
        assert _same(np.asarray(rng.uniform(keys[i], shape, lo, hi)), want)  # eager
        # Inside a larger jitted program (where XLA may fuse the samplers' arithmetic).
        got = jax.jit(lambda k: rng.uniform(k, shape, lo, hi) * 3.0 + 1.0)(keys[i])
        ref_i = jax.jit(lambda k: jax.random.uniform(k, shape, jnp.float32, lo, hi) * 3.0 + 1.0)
        assert _same(np.asarray(got), np.asarray(ref_i(keys[i])))
    assert np.all(np.asarray(ours) >= lo) and np.all(np.asarray(ours) < hi)


@pytest.mark.parametrize("num", [1, 2, 3, 5])
def test_split_matches_jax_random(num):
    keys = jax.random.split(jax.random.PRNGKey(11), 20)
    ref = jax.vmap(lambda k: jax.random.split(k, num))(keys)
    assert _same(np.asarray(jax.jit(jax.vmap(lambda k: rng.split(k, num)))(keys)), np.asarray(ref))
    assert _same(np.asarray(rng.split(keys[4], num)), np.asarray(jax.random.split(keys[4], num)))


def test_typed_keys_match_and_stay_typed():
    key = jax.random.key(7)
    sub = rng.split(key)
    assert jax.dtypes.issubdtype(sub.dtype, jax.dtypes.prng_key) and sub.shape == (2,)
    want = jax.random.key_data(jax.random.split(key))
    assert np.array_equal(jax.random.key_data(sub), want)
    got = rng.uniform(key, (4, 2), -1.0, 1.0)
    assert np.array_equal(got, jax.random.uniform(key, (4, 2), jnp.float32, -1.0, 1.0))


def test_other_implementations_fall_back_to_jax_random():
    key = jax.random.key(5, impl="rbg")
    assert np.array_equal(
        jax.random.key_data(rng.split(key, 3)), jax.random.key_data(jax.random.split(key, 3))
    )
    assert np.array_equal(
        rng.uniform(key, (3, 2), -1.0, 1.0),
        jax.random.uniform(key, (3, 2), jnp.float32, -1.0, 1.0),
    )
    raw = jax.random.PRNGKey(9)
    with jax.threefry_partitionable(False):
        assert np.array_equal(rng.split(raw), jax.random.split(raw))
        assert np.array_equal(
            rng.uniform(raw, (5,), 0.0, 2.0), jax.random.uniform(raw, (5,), jnp.float32, 0.0, 2.0)
        )


def test_hash_is_one_fused_kernel_without_a_loop():
    """The point of the module: no XLA `while` (JAX's rolled CPU lowering) in the program."""
    hlo = jax.jit(lambda k: rng.uniform(rng.split(k)[1], (6, 2))).lower(jax.random.PRNGKey(0))
    text = hlo.compile().as_text()
    assert " while(" not in text
    ref = jax.jit(lambda k: jax.random.uniform(k, (6, 2))).lower(jax.random.PRNGKey(0))
    assert " while(" in ref.compile().as_text()  # the rolled loop this module avoids


@pytest.mark.parametrize(
    "shape,lo,hi", [((21,), 0, 10), ((7, 3), -5, 70_000), ((), 0, 1), ((151,), 0, 2**31 - 1)]
)
def test_randint_matches_jax_random(shape, lo, hi):
    """`randint` (Multi-CVRP's generator) gives `jax.random.randint`'s values (jitted and
    vmapped, and eagerly), and falls back for other key implementations."""
    randint = rng.randint
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    ref = jax.vmap(lambda k: jax.random.randint(k, shape, lo, hi, jnp.int32))(keys)
    got = jax.jit(jax.vmap(lambda k: randint(k, shape, lo, hi)))(keys)
    assert got.dtype == jnp.int32 and np.array_equal(np.asarray(got), np.asarray(ref))
    assert np.array_equal(np.asarray(randint(keys[5], shape, lo, hi)), np.asarray(ref[5]))
    rbg = jax.random.key(5, impl="rbg")
    want = jax.random.randint(rbg, shape, lo, hi, jnp.int32)
    assert np.array_equal(np.asarray(randint(rbg, shape, lo, hi)), np.asarray(want))


def test_batched_draws_equal_jax_random():
    """The batched draws (SMAX's step: per-key splits and uniform floats) return exactly
    what `jax.random` returns, jitted and batched, raw and typed keys."""
    keys = jax.random.split(jax.random.PRNGKey(7), 64)
    assert rng.fast()
    split = jax.jit(jax.vmap(lambda k: rng.split(k, 5)))(keys)
    assert bool(jnp.all(split == jax.vmap(lambda k: jax.random.split(k, 5))(keys)))
    many = jax.jit(lambda k: rng.split_many(k, 3))(keys)
    assert bool(jnp.all(many == jax.vmap(lambda k: jax.random.split(k, 3))(keys)))
    one = jax.jit(lambda k: rng.split_index(k, 2, 3))(keys)
    assert bool(jnp.all(one == many[:, 2]))
    u = jax.jit(lambda k: rng.uniform_each(k, -0.0625, 0.125))(keys)
    ref = jax.vmap(lambda k: jax.random.uniform(k, (), jnp.float32, -0.0625, 0.125))(keys)
    assert bool(jnp.all(u == ref))
    # Typed keys take jax.random's own path (same values).
    typed = jax.random.wrap_key_data(keys)
    assert bool(jnp.all(jax.random.key_data(rng.split(typed[0], 2)) == split[0, :2]))
    assert bool(jnp.all(jax.random.key_data(rng.split_many(typed, 3)) == many))
    assert bool(jnp.all(jax.random.key_data(rng.split_index(typed, 2, 3)) == one))
    assert bool(jnp.all(rng.uniform_each(typed, -0.0625, 0.125) == ref))
