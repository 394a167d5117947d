"""`jax.random`'s draws, bit for bit, with an unrolled Threefry hash (shared by MPE, SMAX and
Multi-CVRP).

On CPU, JAX lowers its Threefry-2x32 hash as a rolled loop (an XLA `while` of 5 iterations,
each a few small kernels, copying its carried arrays every iteration) that XLA cannot fuse
with the arithmetic around it. In an auto-resetting step (MPE's and Multi-CVRP's resets, SMAX's
per-sub-step cooldown jitter and heuristic choices) those loops were the largest cost. The same
hash (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3": 20 rounds, key
schedule with the 0x1BD11BDA parity constant) written here in plain uint32 arithmetic compiles
to fused kernels. The results are identical to `jax.random` (tests/test_rng.py, plus each
environment's differential tests): same keys, same values, so environments behave exactly as
with `jax.random`.

The fast path covers the default configuration: Threefry keys (raw `uint32[2]` keys with
the default implementation, or typed `jax.random.key` keys where noted) and
`jax_threefry_partitionable=True` (JAX's default since 0.5). Anything else (other key
implementations, the non-partitionable layout) falls back to `jax.random` itself.

- `split(key, num)`, `uniform(key, shape, minval, maxval)`, `randint(key, shape, lo, hi)`:
  one key, as `jax.random.split` / `uniform` / `randint`.
- `split_many(keys, num)`, `split_index(keys, index, num)`, `uniform_each(keys, ...)`: every
  key of a batch `(..., 2)`, as the `vmap` of the single-key draw (one scalar per key for
  `uniform_each`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KS_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x: chex.Array, d: int) -> chex.Array:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k1: chex.Array, k2: chex.Array, x1: chex.Array, x2: chex.Array):
    """The Threefry-2x32 hash (20 rounds) of counters `(x1, x2)` under key `(k1, k2)`, as
    JAX's `threefry2x32_p`, unrolled; all arguments uint32 and broadcastable."""
    ks = (k1, k2, k1 ^ k2 ^ _KS_PARITY)
    x = [x1 + ks[0], x2 + ks[1]]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ _rotl(x[1], r)
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def _fast_key(key: chex.Array) -> tuple[chex.Array | None, bool]:
    """`(uint32[2] key data, typed)` when the fast path applies, else `(None, typed)`."""
    if not jax.config.jax_threefry_partitionable:
        return None, False
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if typed:
        impl = jax.random.key_impl(key)  # a name for registered implementations
        if key.shape != () or not (isinstance(impl, str) and impl == "threefry2x32"):
            return None, True
        return jax.random.key_data(key), True
    if key.shape != (2,) or key.dtype != jnp.uint32:
        return None, False
    if jax.config.jax_default_prng_impl != "threefry2x32":
        return None, False
    return key, False


def _counters(size: int) -> tuple[np.ndarray, np.ndarray]:
    """JAX's `iota_2x32_shape`: the high and low words of `0..size-1` (size < 2**32)."""
    if size >= 2**32:
        raise ValueError("rng: at most 2**32 - 1 values per call.")
    return np.zeros((size,), np.uint32), np.arange(size, dtype=np.uint32)


def split(key: chex.PRNGKey, num: int = 2) -> chex.Array:
    """`jax.random.split(key, num)`, identical values."""
    data, typed = _fast_key(key)
    if data is None:
        return jax.random.split(key, num)
    hi, lo = _counters(int(num))
    b1, b2 = threefry2x32(data[0], data[1], hi, lo)
    keys = jnp.stack([b1, b2], axis=-1)
    return jax.random.wrap_key_data(keys, impl="threefry2x32") if typed else keys


def uniform(
    key: chex.PRNGKey,
    shape: Sequence[int] = (),
    minval: float = 0.0,
    maxval: float = 1.0,
) -> chex.Array:
    """`jax.random.uniform(key, shape, jnp.float32, minval, maxval)`, identical values."""
    shape = tuple(int(s) for s in shape)
    data, _ = _fast_key(key)
    if data is None:
        return jax.random.uniform(key, shape, jnp.float32, minval, maxval)
    return _uniform(data, shape, minval, maxval)


@partial(jax.jit, static_argnums=1)
def _uniform(data: chex.Array, shape: tuple[int, ...], minval, maxval) -> chex.Array:
    # Jitted as jax.random's own sampler is, so that the final multiply-add compiles the
    # same way (one fused kernel) whether or not the caller is jitted.
    hi, lo = _counters(int(np.prod(shape, dtype=np.int64)))
    b1, b2 = threefry2x32(data[0], data[1], hi, lo)
    bits = (b1 ^ b2).reshape(shape)
    # jax.random.uniform: 23 random mantissa bits under exponent 0, i.e. [1, 2), minus 1.
    one = np.array(1.0, np.float32).view(np.uint32)
    floats = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | one, jnp.float32) - 1.0
    lo_v = jnp.asarray(minval, jnp.float32)
    hi_v = jnp.asarray(maxval, jnp.float32)
    return jnp.maximum(lo_v, floats * (hi_v - lo_v) + lo_v)


def randint(key: chex.PRNGKey, shape: Sequence[int], minval: int, maxval: int) -> chex.Array:
    """`jax.random.randint(key, shape, minval, maxval)` (int32), identical values.

    With the default Threefry keys the bits come from the unrolled hash, then go through
    `jax.random`'s own arithmetic: two 32-bit draws from a split key, combined modulo the
    span. Anything else falls back to `jax.random.randint`.
    """
    shape = tuple(int(s) for s in shape)
    data, _ = _fast_key(key)
    if data is None or not (np.iinfo(np.int32).min <= minval < maxval <= np.iinfo(np.int32).max):
        return jax.random.randint(key, shape, minval, maxval, jnp.int32)
    hi, lo = _counters(int(np.prod(shape, dtype=np.int64)))
    k = split(data)  # (2, 2): the keys of the higher and the lower bits

    def bits(sub):
        b1, b2 = threefry2x32(sub[0], sub[1], hi, lo)
        return (b1 ^ b2).reshape(shape)

    span = maxval - minval  # jax.random's uint32 arithmetic, done here in Python
    multiplier = 2**16 % span
    multiplier, span = np.uint32((multiplier * multiplier & 0xFFFFFFFF) % span), np.uint32(span)
    offset = (bits(k[0]) % span) * multiplier + bits(k[1]) % span
    return minval + (offset % span).astype(jnp.int32)


# ---------------------------------------------------------------------------------------------
# Batches of keys
# ---------------------------------------------------------------------------------------------


def fast() -> bool:
    """Whether the written-out hash reproduces `jax.random` under the current settings."""
    return bool(jax.config.jax_threefry_partitionable) and (
        jax.config.jax_default_prng_impl == "threefry2x32"
    )


def _map(fn, keys):
    """`fn` over every key of `keys` (raw `(..., 2)` or typed `(...)`), by nested vmaps."""
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    for _ in range(keys.ndim if typed else keys.ndim - 1):
        fn = jax.vmap(fn)
    return fn(keys)


def _raw(keys) -> bool:
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    return keys.dtype == jnp.uint32 and keys.shape[-1:] == (2,)


def split_many(keys: chex.Array, num: int) -> chex.Array:
    """`vmap(split)(keys, num)` over raw keys `(..., 2)`: `(..., num, 2)`."""
    if not (fast() and _raw(keys)):
        return _map(lambda k: jax.random.split(k, num), keys)
    lo = jnp.arange(num, dtype=jnp.uint32)
    b1, b2 = threefry2x32(keys[..., 0:1], keys[..., 1:2], jnp.zeros_like(lo), lo)
    return jnp.stack([b1, b2], axis=-1)


def split_index(keys: chex.Array, index: int, num: int) -> chex.Array:
    """`vmap(lambda k: jax.random.split(k, num)[index])(keys)` over raw keys `(..., 2)`:
    only the one key needed (with JAX's default splitting it does not depend on `num`)."""
    if not (fast() and _raw(keys)):
        return _map(lambda k: jax.random.split(k, num)[index], keys)
    zero, i = jnp.zeros((), jnp.uint32), jnp.full((), index, jnp.uint32)
    b1, b2 = threefry2x32(keys[..., 0], keys[..., 1], zero, i)
    return jnp.stack([b1, b2], axis=-1)


def uniform_each(keys: chex.Array, minval: float = 0.0, maxval: float = 1.0) -> chex.Array:
    """`jax.random.uniform(k, (), jnp.float32, minval, maxval)` for every raw key of `keys`
    `(..., 2)`: float32 `(...)`."""
    if not (fast() and _raw(keys)):
        return _map(lambda k: jax.random.uniform(k, (), jnp.float32, minval, maxval), keys)
    zero = jnp.zeros((), jnp.uint32)
    b1, b2 = threefry2x32(keys[..., 0], keys[..., 1], zero, zero)
    bits = b1 ^ b2
    mantissa = (bits >> np.uint32(9)) | np.uint32(0x3F800000)
    floats = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)
    lo, hi = jnp.float32(minval), jnp.float32(maxval)
    return jnp.maximum(lo, floats * (hi - lo) + lo)
