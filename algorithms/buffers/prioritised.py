"""Prioritised trajectory, flat and item buffers: the trajectory core plus a sum tree."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import chex
import jax.numpy as jnp
from flax import struct

from jaxmarl_envs.algorithms.buffers import sum_tree
from jaxmarl_envs.algorithms.buffers.trajectory import (
    Experience,
    TrajectoryBufferState,
    check_batch,
    check_done_field,
    check_trajectory_args,
    gather_sequences,
    get_field,
    init_state,
    logical_of_physical,
    make_sample_mask,
    oldest_time,
    write,
)


@struct.dataclass
class PrioritisedTrajectoryBufferState(TrajectoryBufferState):
    """Trajectory store plus one priority per `(row, physical start)`.

    Attributes:
        priorities: sum tree over `add_batch_size * max_length_time` leaves holding
            `priority ** alpha` (zero for starts that are not valid sequences).
        max_priority: `()` float32, the largest raw priority seen (new data gets it).
    """

    priorities: sum_tree.SumTree = None
    max_priority: chex.Array = None


@struct.dataclass
class PrioritisedTrajectorySample:
    """A prioritised batch of sequences.

    Attributes:
        experience: leaves `(sample_batch_size, sample_sequence_length, ...)`.
        mask: `(sample_batch_size, sample_sequence_length)` bool (see `TrajectorySample`).
        indices: `(sample_batch_size,)` int32 item ids for `set_priorities`.
        probabilities: `(sample_batch_size,)` float32 sampling probability `P(i)`.
        weights: `(sample_batch_size,)` float32 importance weights
            `w_i = (N P(i))^-beta / max_j (N P(j))^-beta`, normalised by the max over the
            sampled batch (so `N`, the number of items, cancels and the largest weight is 1).
    """

    experience: Experience
    mask: chex.Array
    indices: chex.Array
    probabilities: chex.Array
    weights: chex.Array


@dataclasses.dataclass(frozen=True)
class PrioritisedTrajectoryBuffer:
    """Pure functions of a prioritised trajectory buffer (all jittable).

    Attributes:
        init: `init(example) -> state`.
        add: `add(state, batch) -> state`; new sequences get the max priority seen so far.
        can_sample: `can_sample(state) -> () bool`.
        sample: `sample(state, key, beta=None) -> PrioritisedTrajectorySample`.
        set_priorities: `set_priorities(state, indices, priorities) -> state`; updates of
            items that are not currently valid sequences are ignored. An id names a slot, so
            an id sampled before later adds overwrote its slot updates the sequence now there.
    """

    init: Callable
    add: Callable
    can_sample: Callable
    sample: Callable
    set_priorities: Callable
    add_batch_size: int
    max_length_time: int
    min_length_time: int
    sample_batch_size: int
    sample_sequence_length: int
    period: int
    priority_exponent: float
    importance_sampling_exponent: float
    episode_mode: str
    done_key: str | None


def _check_exponent(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a float, got {value!r}.")
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}.")
    return value


def make_prioritised_trajectory_buffer(
    add_batch_size: int,
    max_length_time: int,
    sample_batch_size: int,
    sample_sequence_length: int,
    period: int = 1,
    min_length_time: int | None = None,
    priority_exponent: float = 0.6,
    importance_sampling_exponent: float = 0.4,
    episode_mode: str = "any",
    done_key: str | None = None,
) -> PrioritisedTrajectoryBuffer:
    """Makes a trajectory buffer sampled in proportion to `priority ** priority_exponent`.

    Items are the valid sequence starts of `make_trajectory_buffer` (same period, write-head
    and episode rules); an item's id is `row * max_length_time + physical_start`. An item
    that becomes invalid (overwritten, or its start no longer stored) gets priority zero, and
    a zero-priority item is never sampled. `episode_mode="mask"` samples any sequence and
    returns a mask; "within" gives priority only to sequences inside one episode.

    Args:
        add_batch_size, max_length_time, sample_batch_size, sample_sequence_length, period,
            min_length_time, episode_mode, done_key: as in `make_trajectory_buffer`.
        priority_exponent: alpha, `>= 0` (0: uniform over valid items).
        importance_sampling_exponent: default beta for the importance weights, `>= 0`.

    Returns:
        A frozen `PrioritisedTrajectoryBuffer` of pure functions.
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
    alpha = _check_exponent("priority_exponent", priority_exponent)
    beta0 = _check_exponent("importance_sampling_exponent", importance_sampling_exponent)
    within = episode_mode == "within"

    def _scaled(priorities: chex.Array) -> chex.Array:
        p = jnp.asarray(priorities, jnp.float32)
        positive = (p > 0) & jnp.isfinite(p)  # NaN, inf and negatives count as zero
        return jnp.where(positive, jnp.power(jnp.where(positive, p, 1.0), alpha), 0.0)

    def _no_internal_done(experience, row, logical):
        """`(..)` True where the sequence at `logical` has no episode end before its end."""
        if not within or length == 1:
            return jnp.ones(logical.shape, bool)
        done = get_field(experience, done_key).astype(bool)
        t_idx = (logical[..., None] + jnp.arange(length - 1, dtype=jnp.int32)) % max_time
        return ~jnp.any(done[row[..., None], t_idx], axis=-1)

    def init(example: Experience) -> PrioritisedTrajectoryBufferState:
        check_done_field(example, done_key)
        base = init_state(example, rows, max_time)
        return PrioritisedTrajectoryBufferState(
            experience=base.experience,
            current_index=base.current_index,
            is_full=base.is_full,
            total_added=base.total_added,
            priorities=sum_tree.init(rows * max_time),
            max_priority=jnp.ones((), jnp.float32),
        )

    def add(state: PrioritisedTrajectoryBufferState, batch: Experience):
        t = check_batch(state.experience, batch, rows, max_time)
        old_total = state.total_added
        base = write(state, batch, t)
        new_total = base.total_added
        new_oldest = oldest_time(new_total, max_time)
        # Starts whose priority can change: those completed by this add, logical
        # [old_total - L + 1, old_total - L + t], and those whose slot it overwrites,
        # [old_total, new_total). Starts in between were incomplete (priority zero) and stay
        # so; when the two ranges touch (t >= L - 1) they form [old_total - L + 1, new_total).
        if t >= length - 1:
            offsets = jnp.arange(t + length - 1, dtype=jnp.int32) - (length - 1)
        else:
            steps = jnp.arange(t, dtype=jnp.int32)
            offsets = jnp.concatenate([steps - (length - 1), steps])
        logical = old_total + offsets
        row = jnp.broadcast_to(jnp.arange(rows, dtype=jnp.int32)[:, None], (rows, logical.size))
        logical_b = jnp.broadcast_to(logical[None, :], row.shape)
        valid = (
            (logical_b >= new_oldest)
            & (logical_b + length <= new_total)
            & (logical_b % period == 0)
            & _no_internal_done(base.experience, row, logical_b)
        )
        # A start older than the stored window shares its slot with a newer start in this
        # list (the one T later); skip it so every slot is written once.
        leaf = jnp.where(
            logical_b >= new_oldest, row * max_time + logical_b % max_time, -1
        ).reshape(-1)
        value = jnp.where(valid, _scaled(state.max_priority), 0.0).reshape(-1)
        tree = sum_tree.update(state.priorities, leaf, value)
        return PrioritisedTrajectoryBufferState(
            experience=base.experience,
            current_index=base.current_index,
            is_full=base.is_full,
            total_added=base.total_added,
            priorities=tree,
            max_priority=state.max_priority,
        )

    def _item_valid(state, indices):
        row, phys = indices // max_time, indices % max_time
        logical = logical_of_physical(phys, state.total_added, max_time)
        in_range = (indices >= 0) & (indices < rows * max_time)
        row = jnp.clip(row, 0, rows - 1)
        ok = (logical + length <= state.total_added) & (logical % period == 0)
        return in_range & ok & _no_internal_done(state.experience, row, logical)

    def set_priorities(state, indices: chex.Array, priorities: chex.Array):
        """Sets raw priorities (`(n,)`) of items `indices` (`(n,)`); invalid ids are ignored."""
        indices = jnp.asarray(indices, jnp.int32).reshape(-1)
        priorities = jnp.broadcast_to(
            jnp.asarray(priorities, jnp.float32).reshape(-1), indices.shape
        )
        valid = _item_valid(state, indices)
        tree = sum_tree.update(state.priorities, jnp.where(valid, indices, -1), _scaled(priorities))
        finite = jnp.where(valid & jnp.isfinite(priorities), priorities, 0.0)
        return state.replace(
            priorities=tree, max_priority=jnp.maximum(state.max_priority, jnp.max(finite))
        )

    def can_sample(state) -> chex.Array:
        return (state.total_added >= min_time) & (state.priorities.total > 0)

    def sample(state, key: chex.PRNGKey, beta: float | chex.Array | None = None):
        beta_ = beta0 if beta is None else beta
        idx = sum_tree.sample(state.priorities, key, n)
        idx = jnp.clip(idx, 0, rows * max_time - 1)
        row, start = idx // max_time, idx % max_time
        seqs = gather_sequences(state.experience, row, start, length)
        prob = sum_tree.get(state.priorities, idx) / jnp.maximum(state.priorities.total, 1e-30)
        safe = jnp.maximum(prob, 1e-30)
        log_w = -beta_ * jnp.log(safe)
        weights = jnp.exp(log_w - jnp.max(log_w))
        ok = state.priorities.total > 0
        return PrioritisedTrajectorySample(
            experience=seqs,
            mask=make_sample_mask(seqs, done_key, episode_mode, n, length) & ok,
            indices=idx,
            probabilities=prob,
            weights=weights,
        )

    return PrioritisedTrajectoryBuffer(
        init=init,
        add=add,
        can_sample=can_sample,
        sample=sample,
        set_priorities=set_priorities,
        add_batch_size=rows,
        max_length_time=max_time,
        min_length_time=min_time,
        sample_batch_size=n,
        sample_sequence_length=length,
        period=period,
        priority_exponent=alpha,
        importance_sampling_exponent=beta0,
        episode_mode=episode_mode,
        done_key=done_key,
    )
