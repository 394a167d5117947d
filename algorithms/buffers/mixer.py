"""Mixer: one batch drawn from several buffers in fixed proportions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class MixedSample:
    """A mixed batch.

    Attributes:
        sample: the buffers' samples concatenated on the batch axis (first axis of every
            leaf), `(sample_batch_size, ...)`, buffer 0's share first.
        source: `(sample_batch_size,)` int32, which buffer each row came from.
    """

    sample: Any
    source: chex.Array


@dataclasses.dataclass(frozen=True)
class Mixer:
    """Pure functions of a mixer over a tuple of buffer states.

    Attributes:
        can_sample: `can_sample(states) -> () bool`, every buffer with a share can sample.
        sample: `sample(states, key) -> MixedSample`.
        shares: samples taken from each buffer per call.
    """

    can_sample: Callable
    sample: Callable
    shares: tuple[int, ...]
    sample_batch_size: int


def _shares(proportions: Sequence[float], total: int) -> tuple[int, ...]:
    """Largest-remainder rounding of `total * p / sum(p)` (sums to `total` exactly)."""
    p = np.asarray(proportions, np.float64)
    exact = total * p / p.sum()
    base = np.floor(exact).astype(int)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: total - base.sum()]] += 1
    return tuple(int(x) for x in base)


def make_mixer(buffers: Sequence[Any], proportions: Sequence[float], sample_batch_size: int):
    """Makes a mixer drawing `sample_batch_size` rows, `proportions[i]` of them from
    `buffers[i]` (rounded by largest remainder).

    Every buffer is sampled with its own `sample` and the first `share_i` rows kept, so each
    buffer's `sample_batch_size` must be at least its share, and all samples must have the
    same structure (e.g. all flat buffers).

    Args:
        buffers: buffer objects (anything with `sample`, `can_sample`, `sample_batch_size`).
        proportions: non-negative weights, one per buffer, not all zero.
        sample_batch_size: rows per mixed sample.
    """
    if len(buffers) < 1 or len(buffers) != len(proportions):
        raise ValueError(
            f"make_mixer: need one proportion per buffer, got {len(buffers)} buffers and "
            f"{len(proportions)} proportions."
        )
    if isinstance(sample_batch_size, bool) or not isinstance(sample_batch_size, int):
        raise ValueError(f"sample_batch_size must be an int, got {sample_batch_size!r}.")
    if sample_batch_size < 1:
        raise ValueError(f"sample_batch_size must be >= 1, got {sample_batch_size}.")
    p = np.asarray(proportions, np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"proportions must be finite, >= 0 and not all zero, got {proportions}.")
    shares = _shares(p, sample_batch_size)
    for i, (buf, share) in enumerate(zip(buffers, shares, strict=True)):
        if share > buf.sample_batch_size:
            raise ValueError(
                f"buffer {i} must sample at least its share of {share} rows, but its "
                f"sample_batch_size is {buf.sample_batch_size}."
            )
    used = [i for i, s in enumerate(shares) if s > 0]

    def can_sample(states) -> chex.Array:
        if len(states) != len(buffers):
            raise ValueError(f"expected {len(buffers)} buffer states, got {len(states)}.")
        ok = jnp.ones((), bool)
        for i in used:
            ok = ok & buffers[i].can_sample(states[i])
        return ok

    def sample(states, key: chex.PRNGKey) -> MixedSample:
        if len(states) != len(buffers):
            raise ValueError(f"expected {len(buffers)} buffer states, got {len(states)}.")
        keys = jax.random.split(key, len(buffers))
        parts = []
        for i in used:
            out = buffers[i].sample(states[i], keys[i])
            parts.append(jax.tree_util.tree_map(lambda x, s=shares[i]: x[:s], out))
        structs = {jax.tree_util.tree_structure(x) for x in parts}
        if len(structs) != 1:
            raise ValueError("make_mixer: the buffers' samples have different structures.")
        mixed = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)
        source = jnp.concatenate([jnp.full((shares[i],), i, jnp.int32) for i in used])
        return MixedSample(sample=mixed, source=source)

    return Mixer(
        can_sample=can_sample, sample=sample, shares=shares, sample_batch_size=sample_batch_size
    )
