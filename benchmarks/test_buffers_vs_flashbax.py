"""Replay-buffer add and sample throughput against Flashbax 0.1.3, same configuration, same run.

Run: `pytest benchmarks/test_buffers_vs_flashbax.py -s` (not `--benchmark-only`, which would
skip the checks that compare the two libraries).

Setting (the buffers issue), on CPU: 64 environments add one step each per `add` of a
transition `{obs (4, 71) f32, action (4,) i32, reward (4,) f32, done () bool}`; capacity
100k transitions (64 rows x 1562 steps); samples of 256 transitions, items or sequences of
20 steps. Each timed call is one jitted `lax.scan` of many adds (state donated) or many
samples (every sampled leaf summed, so nothing is dead code) on a buffer pre-filled past
wrap-around; both libraries go through the same loop. The pytest-benchmark tests record each
implementation; `test_at_least_as_fast_as_flashbax` then times the two alternately (paired
rounds, so load from other processes hits both alike) and asserts, per buffer kind and
operation, median-time ratio Flashbax/ours >= 1 (our throughput at least Flashbax's).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import pytest

fbx = pytest.importorskip("flashbax")

from jaxmarl_envs.algorithms import buffers  # noqa: E402

NUM_ENVS = 64
NUM_AGENTS = 4
OBS_DIM = 71
SAMPLE_BATCH = 256
SEQUENCE_LENGTH = 20
CAPACITY = 100_000
TIME_AXIS = CAPACITY // NUM_ENVS
#: Adds per timed call (one `lax.scan`), and samples per timed call.
ADD_CALLS = 100
SAMPLE_CALLS = 20
#: pytest-benchmark rounds per implementation, and paired rounds of the speed check.
ROUNDS = 11
WARMUP_ROUNDS = 2
PAIRED_ROUNDS = 31
#: Throughput ours / Flashbax that every kind and operation must reach.
TARGET = 1.0

KINDS = ("flat", "item", "trajectory", "prioritised_trajectory", "prioritised_flat")
OPS = ("add", "sample")
IMPLS = ("ours", "flashbax")


def _example() -> dict[str, jax.Array]:
    return {
        "obs": jnp.zeros((NUM_AGENTS, OBS_DIM), jnp.float32),
        "action": jnp.zeros((NUM_AGENTS,), jnp.int32),
        "reward": jnp.zeros((NUM_AGENTS,), jnp.float32),
        "done": jnp.zeros((), bool),
    }


def _add_batches(key: jax.Array, lead: tuple[int, ...]) -> dict[str, jax.Array]:
    """`ADD_CALLS` random add batches stacked on a leading axis (the scan's inputs)."""
    shape = (ADD_CALLS, *lead)
    k_obs, k_act, k_rew, k_done = jax.random.split(key, 4)
    return {
        "obs": jax.random.normal(k_obs, (*shape, NUM_AGENTS, OBS_DIM), jnp.float32),
        "action": jax.random.randint(k_act, (*shape, NUM_AGENTS), 0, 5, jnp.int32),
        "reward": jax.random.normal(k_rew, (*shape, NUM_AGENTS), jnp.float32),
        "done": jax.random.bernoulli(k_done, 0.05, shape),
    }


def _make(kind: str, impl: str) -> tuple[Any, tuple[int, ...]]:
    """The buffer of `kind` from `impl`, identically configured, and its add batch shape."""
    flat_lead, traj_lead = (NUM_ENVS,), (NUM_ENVS, 1)
    if impl == "ours":
        if kind == "flat":
            return buffers.make_flat_buffer(
                CAPACITY, SAMPLE_BATCH, SAMPLE_BATCH, add_batch_size=NUM_ENVS
            ), flat_lead
        if kind == "item":
            return buffers.make_item_buffer(CAPACITY, SAMPLE_BATCH, SAMPLE_BATCH), flat_lead
        if kind == "trajectory":
            return buffers.make_trajectory_buffer(
                NUM_ENVS, TIME_AXIS, SAMPLE_BATCH, SEQUENCE_LENGTH, 1, SEQUENCE_LENGTH
            ), traj_lead
        if kind == "prioritised_trajectory":
            return buffers.make_prioritised_trajectory_buffer(
                NUM_ENVS,
                TIME_AXIS,
                SAMPLE_BATCH,
                SEQUENCE_LENGTH,
                1,
                SEQUENCE_LENGTH,
                priority_exponent=0.6,
            ), traj_lead
        if kind == "prioritised_flat":
            return buffers.make_prioritised_flat_buffer(
                CAPACITY,
                SAMPLE_BATCH,
                SAMPLE_BATCH,
                add_batch_size=NUM_ENVS,
                priority_exponent=0.6,
            ), flat_lead
    else:
        if kind == "flat":
            return fbx.make_flat_buffer(
                CAPACITY, SAMPLE_BATCH, SAMPLE_BATCH, add_batch_size=NUM_ENVS
            ), flat_lead
        if kind == "item":
            return fbx.make_item_buffer(
                CAPACITY, SAMPLE_BATCH, SAMPLE_BATCH, add_batches=True
            ), flat_lead
        if kind == "trajectory":
            return fbx.make_trajectory_buffer(
                add_batch_size=NUM_ENVS,
                sample_batch_size=SAMPLE_BATCH,
                sample_sequence_length=SEQUENCE_LENGTH,
                period=1,
                min_length_time_axis=SEQUENCE_LENGTH,
                max_length_time_axis=TIME_AXIS,
            ), traj_lead
        if kind == "prioritised_trajectory":
            return fbx.make_prioritised_trajectory_buffer(
                add_batch_size=NUM_ENVS,
                sample_batch_size=SAMPLE_BATCH,
                sample_sequence_length=SEQUENCE_LENGTH,
                period=1,
                min_length_time_axis=SEQUENCE_LENGTH,
                max_length_time_axis=TIME_AXIS,
                priority_exponent=0.6,
                device="cpu",
            ), traj_lead
        if kind == "prioritised_flat":
            return fbx.make_prioritised_flat_buffer(
                CAPACITY,
                SAMPLE_BATCH,
                SAMPLE_BATCH,
                add_batch_size=NUM_ENVS,
                priority_exponent=0.6,
                device="cpu",
            ), flat_lead
    raise ValueError(f"unknown buffer kind {kind!r} or implementation {impl!r}")


def _checksum(tree: Any) -> jax.Array:
    """Sum of every leaf, so a sample is fully consumed (same cost for both libraries)."""
    return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree_util.tree_leaves(tree))


@dataclasses.dataclass
class _Runner:
    """One implementation of one kind: compiled timed loops, a full buffer and its inputs."""

    add_many: Callable
    sample_many: Callable
    state: Any
    batches: Any
    calls: int = 0

    def add(self) -> None:
        self.state = jax.block_until_ready(self.add_many(self.state, self.batches))

    def sample(self) -> float:
        self.calls += 1
        total = self.sample_many(self.state, jax.random.PRNGKey(self.calls))
        return float(jax.block_until_ready(total))

    def run(self, op: str) -> float:
        """Seconds taken by one timed call of `op`."""
        start = time.perf_counter()
        self.add() if op == "add" else self.sample()
        return time.perf_counter() - start


_RUNNERS: dict[tuple[str, str], _Runner] = {}
_MEDIANS: dict[tuple[str, str, str], float] = {}


def _runner(kind: str, impl: str) -> _Runner:
    if (kind, impl) in _RUNNERS:
        return _RUNNERS[(kind, impl)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf, lead = _make(kind, impl)

        def add_many(state, batches):
            return jax.lax.scan(lambda s, b: (buf.add(s, b), None), state, batches)[0]

        def sample_many(state, key):
            def body(total, k):
                return total + _checksum(buf.sample(state, k)), None

            keys = jax.random.split(key, SAMPLE_CALLS)
            return jax.lax.scan(body, jnp.zeros((), jnp.float32), keys)[0]

        runner = _Runner(
            add_many=jax.jit(add_many, donate_argnums=0),
            sample_many=jax.jit(sample_many),
            state=jax.jit(buf.init)(_example()),
            batches=_add_batches(jax.random.PRNGKey(1), lead),
        )
        # Fill past wrap-around (well beyond the minimum length) before anything is timed.
        for _ in range(math.ceil(TIME_AXIS * NUM_ENVS / (ADD_CALLS * NUM_ENVS)) + 1):
            runner.add()
        assert bool(jax.jit(buf.can_sample)(runner.state))
        runner.sample()
    _RUNNERS[(kind, impl)] = runner
    return runner


def _per_second(op: str, seconds: float) -> float:
    """Transitions added per second, or sampled items/sequences per second."""
    if op == "add":
        return NUM_ENVS * ADD_CALLS / seconds
    return SAMPLE_BATCH * SAMPLE_CALLS / seconds


def _calls(op: str) -> int:
    return ADD_CALLS if op == "add" else SAMPLE_CALLS


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", KINDS)
def test_buffer_throughput(benchmark, kind, op, impl):
    runner = _runner(kind, impl)
    benchmark.group = f"buffers-{kind}-{op}"
    benchmark.pedantic(
        runner.add if op == "add" else runner.sample,
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    median = benchmark.stats.stats.median
    rate = _per_second(op, median)
    _MEDIANS[(kind, op, impl)] = median
    benchmark.extra_info.update(
        {"impl": impl, "kind": kind, "op": op, "per_call_us": median / _calls(op) * 1e6}
    )
    unit = "transitions added" if op == "add" else "samples drawn"
    print(
        f"\n{impl:8s} {kind:22s} {op:6s} {median / _calls(op) * 1e6:8.1f} us/call "
        f"({rate:,.0f} {unit}/s)"
    )
    assert math.isfinite(rate) and rate > 0


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", KINDS)
def test_at_least_as_fast_as_flashbax(kind, op):
    """Paired, alternating rounds of both libraries; asserts median-time Flashbax/ours >= 1."""
    ours, theirs = _runner(kind, "ours"), _runner(kind, "flashbax")
    times: dict[str, list[float]] = {"ours": [], "flashbax": []}
    for _ in range(WARMUP_ROUNDS):
        ours.run(op), theirs.run(op)
    for r in range(PAIRED_ROUNDS):
        order = [("ours", ours), ("flashbax", theirs)]
        for name, runner in order if r % 2 == 0 else order[::-1]:
            times[name].append(runner.run(op))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["flashbax"] / med["ours"]
    bench = ""
    if (kind, op, "ours") in _MEDIANS and (kind, op, "flashbax") in _MEDIANS:
        b_ratio = _MEDIANS[(kind, op, "flashbax")] / _MEDIANS[(kind, op, "ours")]
        bench = f"; pytest-benchmark medians give {b_ratio:.2f}x"
    print(
        f"\n{kind:22s} {op:6s} ours {med['ours'] / _calls(op) * 1e6:8.1f} us/call, "
        f"flashbax {med['flashbax'] / _calls(op) * 1e6:8.1f} us/call: "
        f"{ratio:.2f}x Flashbax's throughput (paired, {PAIRED_ROUNDS} rounds){bench}"
    )
    assert ratio >= TARGET
