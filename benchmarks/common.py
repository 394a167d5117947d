"""Shared benchmark machinery: a jitted, vmapped random-action rollout and its timing, and
the strict comparison protocol (issue 18) used for every comparison with another library.

Strict protocol (`make_strict_run`, `interleaved_ratio`): each timed call resets the whole
batch from a fresh key, then runs `steps` random masked actions under one `lax.scan` and,
every step, reduces every observation array (and the reward) into a float32 checksum that
the call returns, so nothing a policy would read can be skipped. The two libraries are
timed alternately (A/B/A/B) in one process and the speed-up is reported per round as the
median and range of `time_b / time_a`, with the load average before and after.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.rollout import random_action
from jaxmarl_envs.types import StepType

#: Steps per environment in one timed call (one `lax.scan`).
SCAN_STEPS = 100


def make_rollout(
    reset: Callable, step: Callable, mask_of: Callable, batch: int, steps: int = SCAN_STEPS
) -> tuple[Callable, Any]:
    """Builds `run(carry) -> carry`: `steps` random masked actions for `batch` environments.

    `reset`/`step` are single-environment functions that auto-reset; `mask_of(timestep)`
    returns the `(num_agents, num_actions)` action mask. The same loop serves our
    environments and peers (Jumanji), so comparisons measure the environments only.
    """
    v_reset, v_step = jax.vmap(reset), jax.vmap(step)

    def init(key):
        state, ts = v_reset(jax.random.split(key, batch))
        return state, ts, key

    def run(carry):
        def body(c, _):
            state, ts, key = c
            key, sub = jax.random.split(key)
            action = random_action(sub, mask_of(ts))
            state, ts = v_step(state, action)
            return (state, ts, key), None

        carry, _ = jax.lax.scan(body, carry, None, length=steps)
        return carry

    carry = jax.jit(init)(jax.random.PRNGKey(0))
    return run, carry


def compile_and_time(run: Callable, carry: Any) -> tuple[Callable, Any, float]:
    """Compiles `run` ahead of time; returns the compiled function, a warm carry, seconds."""
    start = time.perf_counter()
    compiled = jax.jit(run, donate_argnums=0).lower(carry).compile()
    compile_s = time.perf_counter() - start
    carry = compiled(carry)
    jax.block_until_ready(carry)
    return compiled, carry, compile_s


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def steps_per_second(batch: int, seconds: float, steps: int = SCAN_STEPS) -> float:
    return batch * steps / seconds


def ours(env_id: str, **overrides: Any) -> tuple[Callable, Callable, Callable]:
    """`(reset, step, mask_of)` for one of our environments with auto-reset."""
    import jaxmarl_envs
    from jaxmarl_envs.wrappers import AutoReset

    env = AutoReset(jaxmarl_envs.make(env_id, **overrides))
    return env.reset, env.step, lambda ts: ts.observation.action_mask


def uniform_action(spec: Any) -> Callable:
    """`sample_action(key, batched_timestep)` for `make_strict_run` with continuous actions:
    uniform within the bounds of `spec` (an environment's `BoundedArray` action spec), one
    joint action per environment of the batch (batch size read from the reward)."""
    low, high = jnp.asarray(spec.minimum), jnp.asarray(spec.maximum)

    def sample(key, ts):
        return jax.random.uniform(key, (*ts.reward.shape[:1], *spec.shape), minval=low, maxval=high)

    return sample


# --------------------------------------------------------------------------------------
# Strict protocol (issue 18)


def observation_and_reward(ts: Any) -> Any:
    """Default `obs_of`: every array of the observation pytree plus the reward."""
    return (ts.observation, ts.reward)


def checksum(tree: Any) -> jax.Array:
    """Float32 sum over every element of every array in `tree` (so all must be computed)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return sum((jnp.sum(x.astype(jnp.float32)) for x in leaves), jnp.zeros((), jnp.float32))


def make_strict_run(
    reset: Callable,
    step: Callable,
    mask_of: Callable | None,
    obs_of: Callable = observation_and_reward,
    batch: int = 1024,
    steps: int = SCAN_STEPS,
    *,
    sample_action: Callable | None = None,
    reset_in_call: bool = True,
    consume: bool = True,
) -> Callable:
    """Builds the jitted strict-protocol call `run(key) -> checksum` for `batch` environments.

    Args:
        reset, step: single-environment functions that auto-reset (`reset(key)`,
            `step(state, action)`, both returning `(state, timestep)`).
        mask_of: `mask_of(timestep) -> (num_agents, num_actions)` bool mask for discrete
            actions (`jaxmarl_envs.rollout.random_action`); None with `sample_action`.
        obs_of: `obs_of(timestep)` -> pytree of everything a policy would read (default: the
            whole observation and the reward); every array is reduced into the checksum.
        sample_action: `sample_action(key, batched_timestep) -> batched action`, for
            continuous peers (replaces the masked random action).
        reset_in_call, consume: both True is the strict protocol. For the "where does the
            difference come from" breakdown only: `reset_in_call=False` starts every call
            from one batch state reset once outside; `consume=False` checksums only the
            last step's observation (the old protocol, which returned the final carry).

    Returns:
        `run(key) -> float32 checksum`, jitted.
    """
    if mask_of is None and sample_action is None:
        raise ValueError("make_strict_run: pass mask_of (discrete) or sample_action.")
    v_reset, v_step = jax.vmap(reset), jax.vmap(step)

    def act(key, ts):
        if sample_action is not None:
            return sample_action(key, ts)
        return random_action(key, mask_of(ts))

    def batch_reset(key):
        return v_reset(jax.random.split(key, batch))

    def scan_from(state, ts, key):
        def body(c, sub):
            state, ts, acc = c
            state, ts = v_step(state, act(sub, ts))
            if consume:
                acc = acc + checksum(obs_of(ts))
            return (state, ts, acc), None

        acc0 = checksum(obs_of(ts)) if consume else jnp.zeros((), jnp.float32)
        (state, ts, acc), _ = jax.lax.scan(body, (state, ts, acc0), jax.random.split(key, steps))
        return acc if consume else checksum(obs_of(ts))

    if reset_in_call:

        @jax.jit
        def run(key):
            reset_key, key = jax.random.split(key)
            state, ts = batch_reset(reset_key)
            return scan_from(state, ts, key)

        return run

    state0, ts0 = jax.jit(batch_reset)(jax.random.PRNGKey(12345))
    jitted = jax.jit(scan_from)
    return lambda key: jitted(state0, ts0, key)


def _load() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())


def _timed(run: Callable, key: Any) -> float:
    start = time.perf_counter()
    jax.block_until_ready(run(key))
    return time.perf_counter() - start


def interleaved_ratio(
    run_a: Callable, run_b: Callable, rounds: int = 7, warmup: int = 1, seed: int = 0
) -> dict:
    """Times `run_a(key)` and `run_b(key)` alternately (A/B/A/B) in this process.

    Each call gets a fresh key and is blocked on. The first `warmup` rounds (compilation)
    are not recorded. `ratio` per round is `time_b / time_a`: the speed-up of A over B.

    Returns:
        dict with `times_a`, `times_b`, `ratios` (lists, seconds / ratio per round),
        `median`, `min`, `max` (of the ratio), `median_a_s`, `median_b_s` and the load
        averages `load_before` / `load_after` (1, 5, 15 minutes).
    """
    if rounds < 1:
        raise ValueError(f"interleaved_ratio: rounds must be >= 1, got {rounds}.")
    key = jax.random.PRNGKey(seed)
    load_before = _load()
    times_a, times_b = [], []
    for r in range(warmup + rounds):
        key, ka, kb = jax.random.split(key, 3)
        ta, tb = _timed(run_a, ka), _timed(run_b, kb)
        if r >= warmup:
            times_a.append(ta)
            times_b.append(tb)
    ratios = [b / a for a, b in zip(times_a, times_b, strict=True)]
    return {
        "times_a": times_a,
        "times_b": times_b,
        "ratios": ratios,
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "median_a_s": statistics.median(times_a),
        "median_b_s": statistics.median(times_b),
        "load_before": load_before,
        "load_after": _load(),
    }


def benchmark_ratio(
    benchmark: Any,
    run_ours: Callable,
    run_peer: Callable,
    *,
    peer: str,
    group: str,
    label: str,
    work: int,
    rounds: int,
    info: dict[str, Any],
) -> dict:
    """Runs `interleaved_ratio(run_ours, run_peer)` once under pytest-benchmark, records the
    standard figures in `benchmark.extra_info` (`info` plus steps/s of both sides, the ratio's
    median/min/max and the load averages), prints the row and returns the result.

    `work` is env-steps per call; `peer` names the other side in the recorded keys."""
    benchmark.group = group
    res = benchmark.pedantic(
        interleaved_ratio, args=(run_ours, run_peer), kwargs={"rounds": rounds}, rounds=1
    )
    benchmark.extra_info.update(
        {
            **info,
            "ours_env_steps_per_s": round(work / res["median_a_s"]),
            f"{peer}_env_steps_per_s": round(work / res["median_b_s"]),
            "ratio_median": round(res["median"], 2),
            "ratio_min": round(res["min"], 2),
            "ratio_max": round(res["max"], 2),
            "load_before": res["load_before"],
            "load_after": res["load_after"],
        }
    )
    print("\n" + format_ratio_table([(label, res)], {label: work}))
    return res


def check_target(measured: dict[str, dict], key: str, target: float, label: str) -> None:
    """Asserts an issue's speed-up target on a ratio measured earlier in this run (skips if
    that measurement did not run, e.g. deselected with `-k`)."""
    import pytest

    if key not in measured:
        pytest.skip("needs the interleaved measurement from this run")
    median = measured[key]["median"]
    print(f"\n{label}: {median:.2f}x (target {target}x)")
    assert median >= target


class StrictComparison:
    """The three tests of a strict comparison against a peer library, from one table.

    `table` maps a comparison id (the test id) to `(ours, peer, target)`: `ours()` and
    `peer()` build the two sides' strict calls (`make_strict_run`, `run(key) -> checksum`,
    built only when that comparison runs) and `target` is the issue's speed-up
    (ours / peer). A benchmark module binds the tests to module-level names so pytest
    collects them with their usual ids:

        suite = StrictComparison(TABLE, peer="jumanji", rounds=5)
        test_strict_vs_jumanji = suite.test_strict
        test_speedup_target = suite.test_target
        test_print_table = suite.test_print_table

    - `test_strict[id]`: `benchmark_ratio` (interleaved A/B rounds under pytest-benchmark,
      group `vs-<peer>-strict-<id>`, steps/s, ratio and load in `extra_info`).
    - `test_target[id]`: `check_target` on that measurement (skips if it did not run).
    - `test_print_table`: every comparison of the run (plus rows added with `record`) in
      one `format_ratio_table` for RESULTS.md.
    """

    def __init__(
        self,
        table: dict[str, tuple[Callable[[], Callable], Callable[[], Callable], float]],
        *,
        peer: str,
        rounds: int,
        batch: int = 1024,
        steps: int = SCAN_STEPS,
        protocol: str = "strict (issue 18)",
    ):
        import pytest

        if not table:
            raise ValueError("StrictComparison: the table is empty.")
        self.table, self.peer, self.rounds = dict(table), peer, int(rounds)
        self.batch, self.steps, self.protocol = int(batch), int(steps), protocol
        #: key -> interleaved_ratio result, in the order measured.
        self.measured: dict[str, dict] = {}
        self._rows: dict[str, tuple[str, int]] = {}  # key -> (table label, work per call)
        ids = list(self.table)

        @pytest.mark.parametrize("env_id", ids)
        def test_strict(benchmark, env_id):
            ours_run, peer_run, _ = self.table[env_id]
            res = benchmark_ratio(
                benchmark,
                ours_run(),
                peer_run(),
                peer=self.peer,
                group=f"vs-{self.peer}-strict-{env_id}",
                label=env_id,
                work=self.batch * self.steps,
                rounds=self.rounds,
                info={"env_id": env_id, "batch": self.batch, "protocol": self.protocol},
            )
            self.record(env_id, res, env_id, self.batch * self.steps)
            assert res["median"] > 0

        @pytest.mark.parametrize("env_id", ids)
        def test_target(env_id):
            """The issue's target from the interleaved measurement above (same run)."""
            check_target(self.measured, env_id, self.table[env_id][2], f"{env_id} vs {peer}")

        def test_print_table():
            """Prints every comparison of this run in one table (for RESULTS.md)."""
            if not self.measured:
                pytest.skip("nothing measured in this run")
            rows = [(self._rows[k][0], r) for k, r in self.measured.items()]
            work = {label: n for label, n in self._rows.values()}
            print(
                f"\nA = ours, B = {self.peer}; ratio = B time / A time\n"
                + format_ratio_table(rows, work)
            )
            assert all(r["median"] > 0 for _, r in rows)

        self.test_strict, self.test_target, self.test_print_table = (
            test_strict,
            test_target,
            test_print_table,
        )

    def record(self, key: str, result: dict, label: str, work: int) -> None:
        """Adds a measurement (e.g. a batch-1 loop) to `measured` and the printed table."""
        self.measured[key] = result
        self._rows[key] = (label, int(work))


def format_ratio_table(rows: list[tuple[str, dict]], work: dict[str, int] | None = None) -> str:
    """A text table of `interleaved_ratio` results: `rows` of `(name, result)`.

    `work[name]` (env-steps per call) adds steps/s columns for both sides.
    """
    work = work or {}
    head = (
        f"{'comparison':34s} {'A s/call':>9s} {'B s/call':>9s} {'A steps/s':>11s} "
        f"{'B steps/s':>11s} {'ratio':>6s} {'[min, max]':>14s}  load before -> after"
    )
    lines = [head, "-" * len(head)]
    for name, r in rows:
        n = work.get(name)
        sa = f"{n / r['median_a_s']:11,.0f}" if n else f"{'':11s}"
        sb = f"{n / r['median_b_s']:11,.0f}" if n else f"{'':11s}"
        lines.append(
            f"{name:34s} {r['median_a_s']:9.4f} {r['median_b_s']:9.4f} {sa} {sb} "
            f"{r['median']:6.2f} [{r['min']:5.2f}, {r['max']:5.2f}]  "
            f"{r['load_before']} -> {r['load_after']}"
        )
    return "\n".join(lines)


def make_python_loop(
    reset: Callable,
    step: Callable,
    mask_of: Callable,
    steps: int,
    obs_of: Callable = observation_and_reward,
    *,
    reset_on_last: bool = False,
) -> Callable:
    """Batch-1 user loop: `run(key) -> checksum` resets one environment, then steps a jitted
    single-environment step `steps` times from Python.

    Each step the observation is consumed as a user would (`np.asarray` of every array of
    `obs_of(ts)`, summed into the checksum) and the random legal action is computed outside
    JAX with numpy from that action mask.

    `step` auto-resets by default. With `reset_on_last=True`, `step` is an environment's own
    step (no auto-reset) and the loop resets from Python, Gymnasium style: it reads the
    timestep's `step_type` every step and calls the jitted `reset` with a fresh key when it
    is LAST (so every episode is still played to its end and reset, and the reset's cost is
    timed).
    """
    j_reset, j_step = jax.jit(reset), jax.jit(step)

    def run(key):
        rng = np.random.default_rng(np.asarray(key).ravel().tolist())
        key, sub = jax.random.split(key)
        state, ts = j_reset(sub)
        total = 0.0
        for _ in range(steps):
            mask = np.asarray(mask_of(ts))
            scores = np.where(mask, rng.random(mask.shape), -1.0)
            action = np.argmax(scores, axis=-1).astype(np.int32)
            state, ts = j_step(state, action)
            total += sum(float(np.asarray(x).sum()) for x in jax.tree_util.tree_leaves(obs_of(ts)))
            if reset_on_last and int(ts.step_type) == StepType.LAST:
                key, sub = jax.random.split(key)
                state, ts = j_reset(sub)
        return total

    return run


def python_loop_steps_per_second(
    reset: Callable,
    step: Callable,
    mask_of: Callable,
    steps: int,
    obs_of: Callable = observation_and_reward,
    rounds: int = 3,
) -> float:
    """Median env-steps/s of `make_python_loop` (after one warm-up call that compiles)."""
    run = make_python_loop(reset, step, mask_of, steps, obs_of)
    run(jax.random.PRNGKey(0))
    times = [_timed(run, jax.random.PRNGKey(r + 1)) for r in range(rounds)]
    return steps / statistics.median(times)


def learner_probe_args(
    doc: str, algorithms, seeds: int, evaluations: int
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Command line of the learning-curve probes (`ppo_seed_probe.py`, `sac_critic_input.py`):
    `ALGORITHM ENV_ID TOTAL_STEPS [--seeds N] [--seed S] [--evaluations E] [FIELD=VALUE ...]`.
    Returns the arguments and the config overrides, each value read as a Python literal
    (a bare word, such as `critic_input=local`, stays a string)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("algorithm", choices=sorted(algorithms))
    p.add_argument("env_id")
    p.add_argument("total_steps", type=float, help="steps per seed")
    p.add_argument("--seeds", type=int, default=seeds)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluations", type=int, default=evaluations)
    p.add_argument("overrides", nargs="*", metavar="FIELD=VALUE", help="config fields")
    args = p.parse_intermixed_args()
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        name, sep, text = item.partition("=")
        if not sep:
            p.error(f"override {item!r} is not FIELD=VALUE")
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name] = text
    return args, overrides
