"""Flat (transition) buffers: uniform and prioritised pairs of consecutive steps."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import chex
import jax
from flax import struct

from jaxmarl_envs.algorithms.buffers.prioritised import make_prioritised_trajectory_buffer
from jaxmarl_envs.algorithms.buffers.trajectory import (
    Experience,
    check_positive_int,
    make_trajectory_buffer,
)


@struct.dataclass
class TransitionSample:
    """Consecutive steps `(t, t + 1)` of one row.

    Attributes:
        first: experience at `t`, leaves `(sample_batch_size, ...)`.
        second: experience at `t + 1`, leaves `(sample_batch_size, ...)`.
    """

    first: Experience
    second: Experience


@struct.dataclass
class PrioritisedTransitionSample:
    """A prioritised transition batch (see `PrioritisedTrajectorySample` for the fields)."""

    first: Experience
    second: Experience
    indices: chex.Array
    probabilities: chex.Array
    weights: chex.Array


@dataclasses.dataclass(frozen=True)
class FlatBuffer:
    """Pure functions of a flat buffer.

    Attributes:
        init: `init(example) -> state` (example: one step, no batch axis).
        add: `add(state, batch) -> state`; leaves `(add_batch_size, ...)`, or
            `(add_batch_size, time, ...)` when made with `add_sequences=True`.
        can_sample: `can_sample(state) -> () bool`.
        sample: `sample(state, key) -> TransitionSample` (prioritised: `sample(state, key,
            beta=None) -> PrioritisedTransitionSample`).
        set_priorities: `set_priorities(state, indices, priorities) -> state` (prioritised
            buffers only, else None).
    """

    init: Callable
    add: Callable
    can_sample: Callable
    sample: Callable
    set_priorities: Callable | None
    add_batch_size: int
    max_length_time: int
    sample_batch_size: int


def _time_sizes(max_length: int, min_length: int, add_batch_size: int) -> tuple[int, int]:
    max_length = check_positive_int("max_length", max_length)
    min_length = check_positive_int("min_length", min_length)
    rows = check_positive_int("add_batch_size", add_batch_size)
    max_time = max_length // rows
    if max_time < 2:
        raise ValueError(
            f"max_length ({max_length}) must be >= 2 * add_batch_size ({2 * rows}) so each row "
            "holds at least one transition."
        )
    if min_length > max_time * rows:
        raise ValueError(f"min_length ({min_length}) must be <= max_length ({max_time * rows}).")
    return max_time, max(2, math.ceil(min_length / rows))


def _expand(add_sequences: bool):
    if add_sequences:
        return lambda batch: batch
    return lambda batch: jax.tree_util.tree_map(lambda x: x[:, None], batch)


def make_flat_buffer(
    max_length: int,
    min_length: int,
    sample_batch_size: int,
    add_batch_size: int = 1,
    add_sequences: bool = False,
) -> FlatBuffer:
    """Makes a uniform transition buffer over `add_batch_size` rows.

    Each row keeps `max_length // add_batch_size` steps; a sample is `sample_batch_size`
    pairs of consecutive steps of one row, uniformly over all stored pairs (never across the
    write head). Episode ends are data: keep a done flag in the experience.

    Args:
        max_length: total steps stored (all rows).
        min_length: total steps needed before sampling.
        sample_batch_size: transitions per sample.
        add_batch_size: rows per add (e.g. environments).
        add_sequences: adds carry a time axis `(add_batch_size, time, ...)`.

    Returns:
        A frozen `FlatBuffer`.
    """
    max_time, min_time = _time_sizes(max_length, min_length, add_batch_size)
    core = make_trajectory_buffer(
        add_batch_size=add_batch_size,
        max_length_time=max_time,
        sample_batch_size=sample_batch_size,
        sample_sequence_length=2,
        period=1,
        min_length_time=min_time,
    )
    expand = _expand(add_sequences)

    def sample(state, key):
        seq = core.sample(state, key).experience
        return TransitionSample(
            first=jax.tree_util.tree_map(lambda x: x[:, 0], seq),
            second=jax.tree_util.tree_map(lambda x: x[:, 1], seq),
        )

    return FlatBuffer(
        init=core.init,
        add=lambda state, batch: core.add(state, expand(batch)),
        can_sample=core.can_sample,
        sample=sample,
        set_priorities=None,
        add_batch_size=core.add_batch_size,
        max_length_time=max_time,
        sample_batch_size=core.sample_batch_size,
    )


def make_prioritised_flat_buffer(
    max_length: int,
    min_length: int,
    sample_batch_size: int,
    add_batch_size: int = 1,
    add_sequences: bool = False,
    priority_exponent: float = 0.6,
    importance_sampling_exponent: float = 0.4,
) -> FlatBuffer:
    """Makes a prioritised transition buffer (arguments as `make_flat_buffer` plus alpha and
    default beta); samples are `PrioritisedTransitionSample`."""
    max_time, min_time = _time_sizes(max_length, min_length, add_batch_size)
    core = make_prioritised_trajectory_buffer(
        add_batch_size=add_batch_size,
        max_length_time=max_time,
        sample_batch_size=sample_batch_size,
        sample_sequence_length=2,
        period=1,
        min_length_time=min_time,
        priority_exponent=priority_exponent,
        importance_sampling_exponent=importance_sampling_exponent,
    )
    expand = _expand(add_sequences)

    def sample(state, key, beta=None):
        out = core.sample(state, key, beta)
        seq = out.experience
        return PrioritisedTransitionSample(
            first=jax.tree_util.tree_map(lambda x: x[:, 0], seq),
            second=jax.tree_util.tree_map(lambda x: x[:, 1], seq),
            indices=out.indices,
            probabilities=out.probabilities,
            weights=out.weights,
        )

    return FlatBuffer(
        init=core.init,
        add=lambda state, batch: core.add(state, expand(batch)),
        can_sample=core.can_sample,
        sample=sample,
        set_priorities=core.set_priorities,
        add_batch_size=core.add_batch_size,
        max_length_time=max_time,
        sample_batch_size=core.sample_batch_size,
    )
