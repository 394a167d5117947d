"""`jax.random.split` and `jax.random.uniform`, bit for bit, with an unrolled Threefry.

On CPU, JAX lowers its Threefry-2x32 hash as a rolled loop (an XLA `while` of 5 iterations,
each a few small kernels), which made the random draws of an MPE reset the largest cost of
an auto-resetting step (the reset is computed every step and selected where an episode
ends). The same hash written here in plain elementwise operations compiles to one fused
kernel. The results are identical to `jax.random` (tests/test_mpe_rng.py): same keys, same
values, so environments behave exactly as before.

The fast path covers the default configuration: Threefry keys (raw `uint32[2]` keys with
the default implementation, or typed `jax.random.key` keys) and
`jax_threefry_partitionable=True` (JAX's default since 0.5). Anything else (other key
implementations, the non-partitionable layout) falls back to `jax.random` itself.
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
