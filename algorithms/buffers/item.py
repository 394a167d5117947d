"""Item buffers: independent items (no time structure), uniform and prioritised."""

from __future__ import annotations

import dataclasses
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
class ItemSample:
    """Uniform item batch: `experience` leaves `(sample_batch_size, ...)`."""

    experience: Experience


@struct.dataclass
class PrioritisedItemSample:
    """Prioritised item batch (see `PrioritisedTrajectorySample` for the fields)."""

    experience: Experience
    indices: chex.Array
    probabilities: chex.Array
    weights: chex.Array


@dataclasses.dataclass(frozen=True)
class ItemBuffer:
    """Pure functions of an item buffer.

    Attributes:
        init: `init(example) -> state` (example: one item).
        add: `add(state, items) -> state`; leaves `(num_items, ...)`, any static
            `num_items <= max_length`.
        can_sample: `can_sample(state) -> () bool`.
        sample: `sample(state, key) -> ItemSample` (prioritised: `sample(state, key,
            beta=None) -> PrioritisedItemSample`).
        set_priorities: prioritised buffers only, else None.
    """

    init: Callable
    add: Callable
    can_sample: Callable
    sample: Callable
    set_priorities: Callable | None
    max_length: int
    sample_batch_size: int


def _sizes(max_length: int, min_length: int) -> tuple[int, int]:
    max_length = check_positive_int("max_length", max_length)
    min_length = check_positive_int("min_length", min_length)
    if min_length > max_length:
        raise ValueError(f"min_length ({min_length}) must be <= max_length ({max_length}).")
    return max_length, min_length


def _row(items):
    return jax.tree_util.tree_map(lambda x: x[None], items)


def _squeeze(seq):
    return jax.tree_util.tree_map(lambda x: x[:, 0], seq)


def make_item_buffer(max_length: int, min_length: int, sample_batch_size: int) -> ItemBuffer:
    """Makes a uniform buffer of items: the last `max_length` items added, each equally
    likely to be sampled once `min_length` items were added."""
    max_length, min_length = _sizes(max_length, min_length)
    core = make_trajectory_buffer(1, max_length, sample_batch_size, 1, 1, min_length)
    return ItemBuffer(
        init=core.init,
        add=lambda state, items: core.add(state, _row(items)),
        can_sample=core.can_sample,
        sample=lambda state, key: ItemSample(
            experience=_squeeze(core.sample(state, key).experience)
        ),
        set_priorities=None,
        max_length=max_length,
        sample_batch_size=core.sample_batch_size,
    )


def make_prioritised_item_buffer(
    max_length: int,
    min_length: int,
    sample_batch_size: int,
    priority_exponent: float = 0.6,
    importance_sampling_exponent: float = 0.4,
) -> ItemBuffer:
    """Makes a prioritised item buffer; an item's id is its slot in `[0, max_length)`."""
    max_length, min_length = _sizes(max_length, min_length)
    core = make_prioritised_trajectory_buffer(
        1,
        max_length,
        sample_batch_size,
        1,
        1,
        min_length,
        priority_exponent=priority_exponent,
        importance_sampling_exponent=importance_sampling_exponent,
    )

    def sample(state, key, beta=None):
        out = core.sample(state, key, beta)
        return PrioritisedItemSample(
            experience=_squeeze(out.experience),
            indices=out.indices,
            probabilities=out.probabilities,
            weights=out.weights,
        )

    return ItemBuffer(
        init=core.init,
        add=lambda state, items: core.add(state, _row(items)),
        can_sample=core.can_sample,
        sample=sample,
        set_priorities=core.set_priorities,
        max_length=max_length,
        sample_batch_size=core.sample_batch_size,
    )
