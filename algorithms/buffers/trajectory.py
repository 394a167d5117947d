"""Trajectory buffer: the one ring-store core that flat, item and prioritised buffers build on."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

EPISODE_MODES = ("any", "within", "mask")

Experience = Any  # a pytree of arrays


@struct.dataclass
class TrajectoryBufferState:
    """Ring store of `(add_batch_size, max_length_time, ...)` experience.

    Attributes:
        experience: pytree whose leaves are `(add_batch_size, max_length_time, *item_shape)`.
        current_index: `()` int32, the physical time slot the next add writes first.
        is_full: `()` bool, whether every time slot has been written at least once.
        total_added: `()` int32, time steps added per row since `init` (the logical write
            head; it wraps at 2**31 - 1, far beyond any practical run).
    """

    experience: Experience
    current_index: chex.Array
    is_full: chex.Array
    total_added: chex.Array


@struct.dataclass
class TrajectorySample:
    """A batch of sequences.

    Attributes:
        experience: pytree with leaves `(sample_batch_size, sample_sequence_length, ...)`.
        mask: `(sample_batch_size, sample_sequence_length)` bool; in `episode_mode="mask"`
            False on the steps after the first episode end inside the sequence, else all True.
            All False when the buffer held no valid sequence (then `experience` is
            meaningless: check `can_sample` first).
    """

    experience: Experience
    mask: chex.Array


@dataclasses.dataclass(frozen=True)
class TrajectoryBuffer:
    """Pure functions of a trajectory buffer (all jittable; `add` can donate its state).

    Attributes:
        init: `init(example) -> state`; `example` is one time step of one row (no batch/time
            axes).
        add: `add(state, batch) -> state`; leaves of `batch` are `(add_batch_size, time, ...)`.
        can_sample: `can_sample(state) -> () bool`.
        sample: `sample(state, key) -> TrajectorySample`, `sample_batch_size` sequences
            drawn uniformly with replacement among valid `(row, start)` pairs.
    """

    init: Callable[[Experience], TrajectoryBufferState]
    add: Callable[[TrajectoryBufferState, Experience], TrajectoryBufferState]
    can_sample: Callable[[TrajectoryBufferState], chex.Array]
    sample: Callable[[TrajectoryBufferState, chex.PRNGKey], TrajectorySample]
    add_batch_size: int
    max_length_time: int
    min_length_time: int
    sample_batch_size: int
    sample_sequence_length: int
    period: int
    episode_mode: str
    done_key: str | None


# --------------------------------------------------------------------------------------
# Argument checks (Python, outside jit)
# --------------------------------------------------------------------------------------


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Returns `value` as an int or raises ValueError when it is not an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int | jnp.integer):
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_episode_mode(episode_mode: str, done_key: str | None) -> None:
    """Checks the episode mode and that a done field is named when it needs one."""
    if episode_mode not in EPISODE_MODES:
        raise ValueError(f"episode_mode must be one of {EPISODE_MODES}, got {episode_mode!r}.")
    if episode_mode != "any" and done_key is None:
        raise ValueError(
            f"episode_mode={episode_mode!r} needs done_key, the name of a boolean field of the "
            "experience that is True on the last step of an episode."
        )
    if done_key is not None and not isinstance(done_key, str):
        raise ValueError(f"done_key must be a str naming a field, got {done_key!r}.")


def get_field(experience: Experience, key: str) -> Any:
    """Reads field `key` of a dict-like or attribute-style experience."""
    if isinstance(experience, dict):
        if key not in experience:
            raise ValueError(
                f"done_key {key!r} is not a field of the experience {list(experience)}."
            )
        return experience[key]
    if not hasattr(experience, key):
        raise ValueError(f"done_key {key!r} is not a field of {type(experience).__name__}.")
    return getattr(experience, key)


def check_batch(state_experience: Experience, batch: Experience, rows: int, max_time: int) -> int:
    """Checks an add batch against the store (static shapes) and returns its time length."""
    s_leaves, s_def = jax.tree_util.tree_flatten(state_experience)
    b_leaves, b_def = jax.tree_util.tree_flatten(batch)
    if s_def != b_def:
        raise ValueError(f"add: batch structure {b_def} differs from the buffer's {s_def}.")
    times = set()
    for s, b in zip(s_leaves, b_leaves, strict=True):
        if b.ndim != s.ndim or b.shape[0] != rows or tuple(b.shape[2:]) != tuple(s.shape[2:]):
            raise ValueError(
                f"add: a leaf has shape {tuple(b.shape)}, expected ({rows}, time, "
                f"{', '.join(map(str, s.shape[2:]))}) (add_batch_size, time, *item_shape)."
            )
        times.add(int(b.shape[1]))
    if len(times) != 1:
        raise ValueError(f"add: leaves disagree on the time length: {sorted(times)}.")
    t = times.pop()
    if t < 1 or t > max_time:
        raise ValueError(f"add: time length must be in [1, max_length_time={max_time}], got {t}.")
    return t


# --------------------------------------------------------------------------------------
# Shared kernels (pure JAX)
# --------------------------------------------------------------------------------------


def init_state(example: Experience, rows: int, max_time: int) -> TrajectoryBufferState:
    """An empty store shaped after one example step."""
    experience = jax.tree_util.tree_map(
        lambda x: jnp.zeros((rows, max_time, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return TrajectoryBufferState(
        experience=experience,
        current_index=jnp.zeros((), jnp.int32),
        is_full=jnp.zeros((), bool),
        total_added=jnp.zeros((), jnp.int32),
    )


def write(state: TrajectoryBufferState, batch: Experience, t: int) -> TrajectoryBufferState:
    """Writes `t` time steps of every row at the write head (ring wrap-around)."""
    max_time = jax.tree_util.tree_leaves(state.experience)[0].shape[1]
    if t == 1:
        # One step never wraps: a dynamic slice update is cheaper than a scatter.
        experience = jax.tree_util.tree_map(
            lambda s, b: jax.lax.dynamic_update_slice_in_dim(
                s, b.astype(s.dtype), state.current_index, axis=1
            ),
            state.experience,
            batch,
        )
    else:
        rows = jax.tree_util.tree_leaves(state.experience)[0].shape[0]
        idx = (state.current_index + jnp.arange(t, dtype=jnp.int32)) % max_time
        # The slots written are distinct and in range by construction.
        if rows == 1:

            def put(s, b):
                # One row (the item buffers): scatter along time in place. Through the
                # flattened view below, XLA's CPU layouts copied the whole store every add
                # once seeds were vmapped (a size-1 axis in the reshape).
                return s.at[0, idx].set(
                    b[0].astype(s.dtype), unique_indices=True, mode="promise_in_bounds"
                )

        else:
            flat_idx = (jnp.arange(rows, dtype=jnp.int32)[:, None] * max_time + idx).reshape(-1)

            def put(s, b):
                # Scatter whole steps into a (rows * time, features) view.
                features = math.prod(s.shape[2:])
                view = s.reshape(rows * max_time, features)
                steps = b.astype(s.dtype).reshape(rows * t, features)
                view = view.at[flat_idx].set(steps, unique_indices=True, mode="promise_in_bounds")
                return view.reshape(s.shape)

        experience = jax.tree_util.tree_map(put, state.experience, batch)
    total = state.total_added + t
    return TrajectoryBufferState(
        experience=experience,
        current_index=(state.current_index + t) % max_time,
        is_full=state.is_full | (total >= max_time),
        total_added=total,
    )


def oldest_time(total: chex.Array, max_time: int) -> chex.Array:
    """Logical time of the oldest step still stored."""
    return jnp.maximum(total - max_time, 0)


def start_window(total, max_time: int, length: int, period: int):
    """First valid logical start and the number of valid starts (per row) in mode "any".

    A start `s` is valid when `s` is a multiple of `period` (logical time since `init`), the
    whole sequence is still stored (`s >= total - max_time`) and it ends at or before the
    write head (`s + length <= total`).
    """
    oldest = oldest_time(total, max_time)
    first = ((oldest + period - 1) // period) * period
    last = total - length
    count = jnp.where(last >= first, (last - first) // period + 1, 0)
    return first, count


def logical_of_physical(p: chex.Array, total: chex.Array, max_time: int) -> chex.Array:
    """The logical time currently held by physical slot `p` (may be >= total if unwritten)."""
    oldest = oldest_time(total, max_time)
    return oldest + (p - oldest) % max_time


def done_matrix(experience: Experience, done_key: str) -> chex.Array:
    """The `(rows, max_time)` bool episode-end flags of the store."""
    done = get_field(experience, done_key)
    return done.astype(bool)


def check_done_field(example: Experience, done_key: str | None) -> None:
    """Checks, at init, that the done field is a scalar per step."""
    if done_key is None:
        return
    done = get_field(example, done_key)
    if jnp.ndim(done) != 0:
        raise ValueError(
            f"done field {done_key!r} must be a scalar per step (shape ()), got shape "
            f"{jnp.shape(done)}; store the episode-level flag (e.g. timestep.last())."
        )


def within_mask(state: TrajectoryBufferState, done_key: str, length: int, period: int):
    """`(rows, max_time)` validity of starts indexed by offset from the oldest stored step.

    Entry `[b, i]` is True when the sequence of row `b` starting at logical time
    `oldest + i` is valid in mode "any" and has no episode end before its last step.
    """
    done = done_matrix(state.experience, done_key)
    rows, max_time = done.shape
    total = state.total_added
    oldest = oldest_time(total, max_time)
    offsets = jnp.arange(max_time, dtype=jnp.int32)
    logical = oldest + offsets
    done_log = jnp.take(done, logical % max_time, axis=1).astype(jnp.int32)
    csum = jnp.concatenate([jnp.zeros((rows, 1), jnp.int32), jnp.cumsum(done_log, axis=1)], 1)
    end = jnp.minimum(offsets + length - 1, max_time)
    internal = jnp.take(csum, end, axis=1) - csum[:, :max_time]
    base = (logical + length <= total) & (logical % period == 0)
    return base[None, :] & (internal == 0), logical


def sequence_mask(done_seq: chex.Array) -> chex.Array:
    """`(..., L)` True up to and including the first episode end of each sequence."""
    d = done_seq.astype(jnp.int32)
    return (jnp.cumsum(d, axis=-1) - d) == 0


def gather_sequences(experience: Experience, rows: chex.Array, starts: chex.Array, length: int):
    """Gathers `(n, length, ...)` sequences from rows `rows` and physical starts `starts`."""
    rows_total, max_time = jax.tree_util.tree_leaves(experience)[0].shape[:2]
    t_idx = (starts[:, None] + jnp.arange(length, dtype=jnp.int32)[None, :]) % max_time
    # Materialise the indices: fused into the gather, their producer (random draws, a sum
    # tree descent) would be recomputed for every gathered element.
    flat_idx = jax.lax.optimization_barrier(rows[:, None] * max_time + t_idx)

    def take(x):
        # Gathers of whole steps from a (rows * time, features) view are cheaper on CPU than
        # a two-index gather; indices are in range, so the result is the same. Short
        # sequences gather step by step, so callers that split the steps (flat buffers)
        # slice nothing.
        view = x.reshape(rows_total * max_time, math.prod(x.shape[2:]))
        if length <= 2:
            steps = jnp.stack([view[flat_idx[:, j]] for j in range(length)], axis=1)
        else:
            steps = view[flat_idx.reshape(-1)]
        return steps.reshape(*t_idx.shape, *x.shape[2:])

    return jax.tree_util.tree_map(take, experience)


def uniform_from_mask(key: chex.PRNGKey, mask: chex.Array, n: int) -> chex.Array:
    """`n` flat indices drawn uniformly (exact integer draw) among True entries of `mask`."""
    flat = mask.reshape(-1).astype(jnp.int32)
    csum = jnp.cumsum(flat)
    count = csum[-1]
    r = jax.random.randint(key, (n,), 0, jnp.maximum(count, 1))
    idx = jnp.searchsorted(csum, r, side="right")
    return jnp.minimum(idx, flat.shape[0] - 1).astype(jnp.int32)


def make_sample_mask(experience, done_key, episode_mode, n, length):
    if episode_mode == "mask":
        return sequence_mask(get_field(experience, done_key))
    return jnp.ones((n, length), bool)


# --------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------


def check_trajectory_args(
    add_batch_size: int,
    max_length_time: int,
    sample_batch_size: int,
    sample_sequence_length: int,
    period: int,
    min_length_time: int | None,
    episode_mode: str,
    done_key: str | None,
) -> tuple[int, int, int, int, int, int]:
    """Validates the trajectory-buffer arguments shared by the plain and prioritised factories.

    Returns:
        `(rows, max_time, sample_batch_size, length, period, min_time)` as ints.

    Raises:
        ValueError: naming the bad argument.
    """
    rows = check_positive_int("add_batch_size", add_batch_size)
    max_time = check_positive_int("max_length_time", max_length_time)
    n = check_positive_int("sample_batch_size", sample_batch_size)
    length = check_positive_int("sample_sequence_length", sample_sequence_length)
    period = check_positive_int("period", period)
    if length > max_time:
        raise ValueError(
            f"sample_sequence_length ({length}) must be <= max_length_time ({max_time})."
        )
    if min_length_time is None:
        min_length_time = length
    min_time = check_positive_int("min_length_time", min_length_time)
    if min_time > max_time:
        raise ValueError(f"min_length_time ({min_time}) must be <= max_length_time ({max_time}).")
    check_episode_mode(episode_mode, done_key)
    return rows, max_time, n, length, period, min_time


def make_trajectory_buffer(
    add_batch_size: int,
    max_length_time: int,
    sample_batch_size: int,
    sample_sequence_length: int,
    period: int = 1,
    min_length_time: int | None = None,
    episode_mode: str = "any",
    done_key: str | None = None,
) -> TrajectoryBuffer:
    """Makes a buffer of `(add_batch_size, time)` rows sampled as fixed-length sequences.

    Sequences start at logical times (time steps since `init`, per row) that are multiples
    of `period`, lie entirely in the stored window and end at or before the write head, so a
    sample never crosses the write head nor mixes overwritten data. All valid
    `(row, start)` pairs are equally likely.

    Args:
        add_batch_size: rows written by every add (e.g. number of environments).
        max_length_time: time steps stored per row (ring size).
        sample_batch_size: sequences per sample.
        sample_sequence_length: steps per sequence, `<= max_length_time`.
        period: spacing between valid start times (1: every step may start a sequence;
            `sample_sequence_length`: non-overlapping sequences).
        min_length_time: steps per row needed before sampling (default
            `sample_sequence_length`).
        episode_mode: "any" (sequences may contain episode ends), "within" (only sequences
            with no episode end before their last step are sampled) or "mask" (any sequence,
            with `mask` False after the first episode end).
        done_key: name of a scalar boolean field of the experience that is True on an
            episode's last step; required unless `episode_mode="any"`.

    Returns:
        A frozen `TrajectoryBuffer` of pure functions.
    """
    rows, max_time, n, length, period, min_time = check_trajectory_args(
        add_batch_size,
        max_length_time,
        sample_batch_size,
        sample_sequence_length,
        period,
        min_length_time,
        episode_mode,
        done_key,
    )

    def init(example: Experience) -> TrajectoryBufferState:
        check_done_field(example, done_key)
        return init_state(example, rows, max_time)

    def add(state: TrajectoryBufferState, batch: Experience) -> TrajectoryBufferState:
        t = check_batch(state.experience, batch, rows, max_time)
        return write(state, batch, t)

    def can_sample(state: TrajectoryBufferState) -> chex.Array:
        enough = state.total_added >= min_time
        if episode_mode == "within":
            mask, _ = within_mask(state, done_key, length, period)
            return enough & jnp.any(mask)
        _, count = start_window(state.total_added, max_time, length, period)
        return enough & (count > 0)

    def sample(state: TrajectoryBufferState, key: chex.PRNGKey) -> TrajectorySample:
        if episode_mode == "within":
            mask, logical = within_mask(state, done_key, length, period)
            flat = uniform_from_mask(key, mask, n)
            row, offset = flat // max_time, flat % max_time
            start = logical[offset] % max_time
            ok = jnp.any(mask)
        else:
            first, count = start_window(state.total_added, max_time, length, period)
            ok = count > 0
            count = jnp.maximum(count, 1)
            u = jax.random.randint(key, (n,), 0, rows * count)
            row, k = u // count, u % count
            start = (first + k * period) % max_time
        seqs = gather_sequences(state.experience, row, start.astype(jnp.int32), length)
        mask = make_sample_mask(seqs, done_key, episode_mode, n, length)
        return TrajectorySample(experience=seqs, mask=mask & ok)

    return TrajectoryBuffer(
        init=init,
        add=add,
        can_sample=can_sample,
        sample=sample,
        add_batch_size=rows,
        max_length_time=max_time,
        min_length_time=min_time,
        sample_batch_size=n,
        sample_sequence_length=length,
        period=period,
        episode_mode=episode_mode,
        done_key=done_key,
    )
