"""First-in first-out trajectory queue for on-policy data: each step is read exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_envs.algorithms.buffers.trajectory import (
    Experience,
    check_batch,
    check_positive_int,
    gather_sequences,
)


@struct.dataclass
class TrajectoryQueueState:
    """Ring store with separate logical read and write heads.

    Attributes:
        experience: leaves `(add_batch_size, max_length_time, ...)`.
        read_index: `()` int32, logical time of the oldest unread step.
        total_added: `()` int32, logical write head (steps added per row since `init`).
        num_dropped: `()` int32, unread steps overwritten because an add did not fit.
    """

    experience: Experience
    read_index: chex.Array
    total_added: chex.Array
    num_dropped: chex.Array


@struct.dataclass
class QueueSample:
    """The oldest unread sequence of every row.

    Attributes:
        experience: leaves `(add_batch_size, sample_sequence_length, ...)`.
        valid: `()` bool, False when the queue held too few unread steps (nothing consumed).
    """

    experience: Experience
    valid: chex.Array


@dataclasses.dataclass(frozen=True)
class TrajectoryQueue:
    """Pure functions of a FIFO trajectory queue.

    Attributes:
        init: `init(example) -> state`.
        add: `add(state, batch) -> state`; leaves `(add_batch_size, time, ...)`. When the
            batch does not fit, the oldest unread steps are overwritten and counted in
            `num_dropped` (check `can_add` first to avoid it).
        can_add: `can_add(state, time) -> () bool` (`time` static).
        can_sample: `can_sample(state) -> () bool`.
        sample: `sample(state) -> (state, QueueSample)`; pops `sample_sequence_length` steps.
    """

    init: Callable
    add: Callable
    can_add: Callable
    can_sample: Callable
    sample: Callable
    add_batch_size: int
    max_length_time: int
    sample_sequence_length: int


def make_trajectory_queue(
    add_batch_size: int, max_length_time: int, sample_sequence_length: int
) -> TrajectoryQueue:
    """Makes a FIFO queue: adds append at the write head, `sample` pops the oldest
    `sample_sequence_length` steps of every row, in order.

    Args:
        add_batch_size: rows per add (environments).
        max_length_time: capacity per row in steps.
        sample_sequence_length: steps popped per sample, `<= max_length_time`.
    """
    rows = check_positive_int("add_batch_size", add_batch_size)
    max_time = check_positive_int("max_length_time", max_length_time)
    length = check_positive_int("sample_sequence_length", sample_sequence_length)
    if length > max_time:
        raise ValueError(
            f"sample_sequence_length ({length}) must be <= max_length_time ({max_time})."
        )

    def init(example: Experience) -> TrajectoryQueueState:
        experience = jax.tree_util.tree_map(
            lambda x: jnp.zeros((rows, max_time, *jnp.shape(x)), jnp.asarray(x).dtype), example
        )
        zero = jnp.zeros((), jnp.int32)
        return TrajectoryQueueState(experience, zero, zero, zero)

    def can_add(state: TrajectoryQueueState, time: int) -> chex.Array:
        return state.total_added + time - state.read_index <= max_time

    def add(state: TrajectoryQueueState, batch: Experience) -> TrajectoryQueueState:
        t = check_batch(state.experience, batch, rows, max_time)
        idx = (state.total_added + jnp.arange(t, dtype=jnp.int32)) % max_time
        experience = jax.tree_util.tree_map(
            lambda s, b: s.at[:, idx].set(b.astype(s.dtype), unique_indices=True),
            state.experience,
            batch,
        )
        total = state.total_added + t
        read = jnp.maximum(state.read_index, total - max_time)
        return TrajectoryQueueState(
            experience=experience,
            read_index=read,
            total_added=total,
            num_dropped=state.num_dropped + (read - state.read_index),
        )

    def can_sample(state: TrajectoryQueueState) -> chex.Array:
        return state.total_added - state.read_index >= length

    def sample(state: TrajectoryQueueState):
        ok = can_sample(state)
        starts = jnp.full((rows,), state.read_index % max_time, jnp.int32)
        seqs = gather_sequences(state.experience, jnp.arange(rows), starts, length)
        new = state.replace(read_index=jnp.where(ok, state.read_index + length, state.read_index))
        return new, QueueSample(experience=seqs, valid=ok)

    return TrajectoryQueue(
        init=init,
        add=add,
        can_add=can_add,
        can_sample=can_sample,
        sample=sample,
        add_batch_size=rows,
        max_length_time=max_time,
        sample_sequence_length=length,
    )
