"""The few `jax.random` draws of the SMAX step, bit for bit, without the rolled hash loop.

On CPU, JAX lowers its Threefry-2x32 hash as a `fori_loop` of five 4-round blocks: a while
loop per draw site, with copies of its carried arrays each iteration, that XLA cannot fuse
with the arithmetic around it. The SMAX step draws a cooldown jitter per unit and sub-step
(and the heuristic a few choices per enemy), so those loops were a third of its time at
batch 1024. Here the same hash (Salmon et al. 2011, "Parallel random numbers: as easy as 1,
2, 3": 20 rounds, key schedule with the 0x1BD11BDA parity constant) is written out as plain
`uint32` arithmetic, which fuses. `split` and `uniform` return exactly what `jax.random.split`
and `jax.random.uniform` return for a raw `uint32[2]` key under JAX's defaults (the
threefry2x32 implementation with `jax_threefry_partitionable`); under any other setting, or
for typed keys, they call `jax.random` itself, so the draws always equal JAX's.
tests/test_smax.py checks both against `jax.random`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x, d: int):
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds) of the counter pair `(x1, x2)` under the key
    `(k1, k2)`; all `uint32`, broadcast together. Returns the two output words."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x1 = x1 + x2
            x2 = _rotl(x2, r) ^ x1
        x1 = x1 + ks[(block + 1) % 3]
        x2 = x2 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x1, x2


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


def _raw(key) -> bool:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    return key.dtype == jnp.uint32 and key.shape[-1:] == (2,)


def split(key, num: int = 2):
    """`jax.random.split(key, num)` of one raw key `(2,)` uint32: `(num, 2)`."""
    if not (fast() and _raw(key)):
        return jax.random.split(key, num)
    lo = jnp.arange(num, dtype=jnp.uint32)
    b1, b2 = threefry2x32(key[0], key[1], jnp.zeros_like(lo), lo)
    return jnp.stack([b1, b2], axis=-1)


def split_many(keys, num: int):
    """`vmap(split)(keys, num)` over raw keys `(..., 2)`: `(..., num, 2)`."""
    if not (fast() and _raw(keys)):
        return _map(lambda k: jax.random.split(k, num), keys)
    lo = jnp.arange(num, dtype=jnp.uint32)
    b1, b2 = threefry2x32(keys[..., 0:1], keys[..., 1:2], jnp.zeros_like(lo), lo)
    return jnp.stack([b1, b2], axis=-1)


def split_index(keys, index: int, num: int):
    """`vmap(lambda k: jax.random.split(k, num)[index])(keys)` over raw keys `(..., 2)`:
    only the one key needed (with JAX's default splitting it does not depend on `num`)."""
    if not (fast() and _raw(keys)):
        return _map(lambda k: jax.random.split(k, num)[index], keys)
    zero, i = jnp.zeros((), jnp.uint32), jnp.full((), index, jnp.uint32)
    b1, b2 = threefry2x32(keys[..., 0], keys[..., 1], zero, i)
    return jnp.stack([b1, b2], axis=-1)


def uniform(keys, minval: float = 0.0, maxval: float = 1.0):
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
