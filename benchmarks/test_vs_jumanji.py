"""Our environments against Jumanji 1.1.2 on the same layouts, under the strict protocol of
issue 18 (optional: needs `pip install .[bench]`).

Run: `pytest benchmarks/test_vs_jumanji.py -s -p no:randomly` (not `--benchmark-only`, which
would skip the speed-up checks that compare the measurements).

Protocol (`common.make_strict_run`, `common.interleaved_ratio`): every timed call resets the
whole batch of 1024 from a fresh key, then runs 100 random masked steps in one `lax.scan`,
reducing every observation array and the reward into a checksum every step; ours and
Jumanji's calls alternate A/B/A/B in this process and the speed-up is the median (and range)
over rounds of `time_jumanji / time_ours`. Batch 1: a Python loop over a jitted
single-environment step, the observation pulled to numpy every step, interleaved likewise.

Targets (issue 18), on a 2-core CPU: rware-tiny-4ag >= 10x Jumanji's RobotWarehouse with a
tiny-4ag generator; rware-small-4ag-easy >= 10x Jumanji's default RobotWarehouse-v0 (that
layout); lbf-8x8-2p-2f-coop >= 3x Jumanji's LevelBasedForaging (8x8, 2 agents, 2 food,
coop, time limit 50 as ours); batch-1 loop on rware-tiny-4ag >= 1x.
Jumanji's warehouse ends episodes on collisions, so random rollouts reset more often there.
"""

from __future__ import annotations

import os
from functools import partial

import pytest
from common import (
    StrictComparison,
    benchmark_ratio,
    check_target,
    make_python_loop,
    make_strict_run,
    ours,
)

jumanji = pytest.importorskip("jumanji")

BATCH = 1024
ROUNDS = 7
LOOP_STEPS = 300
LOOP_ROUNDS = 5
LOOP_ENV = "rware-tiny-4ag"
LOOP_TARGET = 1.0


def _jumanji(name: str):
    """`(reset, step, mask_of)` of Jumanji's peer of our `name`, with auto-reset."""
    from jumanji.wrappers import AutoResetWrapper

    if name == "rware-tiny-4ag":
        from jumanji.environments import RobotWarehouse
        from jumanji.environments.routing.robot_warehouse.generator import RandomGenerator

        gen = RandomGenerator(
            shelf_rows=1,
            shelf_columns=3,
            column_height=8,
            num_agents=4,
            sensor_range=1,
            request_queue_size=4,
        )
        env = RobotWarehouse(generator=gen)
    elif name == "rware-small-4ag-easy":
        env = jumanji.make("RobotWarehouse-v0")  # 2x3 shelf blocks, 4 agents, queue 8, 500
    elif name == "lbf-8x8-2p-2f-coop":
        from jumanji.environments import LevelBasedForaging

        # Default generator: 8x8, full view, 2 agents, 2 food, levels <= 2, force_coop.
        env = LevelBasedForaging(time_limit=50)
    else:
        raise ValueError(f"no Jumanji peer for {name!r}")
    env = AutoResetWrapper(env)
    return env.reset, env.step, lambda ts: ts.observation.action_mask


def _side(side, env_id):
    """The strict call of one side (`ours` or `_jumanji`) for `env_id`."""
    return make_strict_run(*side(env_id), batch=BATCH)


#: Speed-up targets of issue 18 (ours / Jumanji, same run): id -> (ours, Jumanji, target).
TABLE = {
    env_id: (partial(_side, ours, env_id), partial(_side, _jumanji, env_id), target)
    for env_id, target in {
        "rware-tiny-4ag": 10.0,
        "rware-small-4ag-easy": 10.0,
        "lbf-8x8-2p-2f-coop": 3.0,
    }.items()
}
SUITE = StrictComparison(TABLE, peer="jumanji", rounds=ROUNDS, batch=BATCH)
test_strict_vs_jumanji = SUITE.test_strict


def test_python_loop_vs_jumanji(benchmark):
    run_ours = make_python_loop(*ours(LOOP_ENV), steps=LOOP_STEPS)
    run_peer = make_python_loop(*_jumanji(LOOP_ENV), steps=LOOP_STEPS)
    res = benchmark_ratio(
        benchmark,
        run_ours,
        run_peer,
        peer="jumanji",
        group=f"vs-jumanji-loop-{LOOP_ENV}",
        label=f"{LOOP_ENV} batch-1 loop",
        work=LOOP_STEPS,
        rounds=LOOP_ROUNDS,
        info={
            "env_id": LOOP_ENV,
            "batch": 1,
            "protocol": "Python loop over a jitted step, observation to numpy every step",
        },
    )
    SUITE.record("loop", res, f"{LOOP_ENV} batch-1 loop", LOOP_STEPS)
    assert res["median"] > 0


test_speedup_target = SUITE.test_target


def test_python_loop_target():
    """The issue's batch-1 target: the Python loop is at least as fast as Jumanji's."""
    check_target(SUITE.measured, "loop", LOOP_TARGET, f"{LOOP_ENV} batch-1 loop vs Jumanji")


BREAKDOWN = {
    "strict": {},
    "no reset in call": {"reset_in_call": False},
    "no per-step consumption": {"consume": False},
    "old protocol (neither)": {"reset_in_call": False, "consume": False},
}


@pytest.mark.parametrize("env_id", ["rware-tiny-4ag", "lbf-8x8-2p-2f-coop"])
def test_protocol_breakdown(benchmark, env_id):
    """Where the old protocol and the strict one differ: each side timed with the reset in
    the call and the per-step observation checksum switched off one at a time (round-robin
    over the eight calls, 3 rounds, medians)."""
    import statistics
    import time

    import jax

    fns = {"ours": ours(env_id), "jumanji": _jumanji(env_id)}
    runs = {
        (side, name): make_strict_run(*fns[side], batch=BATCH, **kw)
        for side in fns
        for name, kw in BREAKDOWN.items()
    }

    def measure():
        key = jax.random.PRNGKey(0)
        times = {k: [] for k in runs}
        for r in range(4):  # the first round compiles
            for k, run in runs.items():
                key, sub = jax.random.split(key)
                start = time.perf_counter()
                jax.block_until_ready(run(sub))
                if r:
                    times[k].append(time.perf_counter() - start)
        return {k: statistics.median(v) for k, v in times.items()}

    benchmark.group = f"vs-jumanji-breakdown-{env_id}"
    load = os.getloadavg()
    med = benchmark.pedantic(measure, rounds=1)
    print(f"\n{env_id} (load {load} -> {os.getloadavg()})")
    for name in BREAKDOWN:
        o, j = med[("ours", name)], med[("jumanji", name)]
        print(f"  {name:24s} ours {o * 1e3:8.1f} ms  jumanji {j * 1e3:8.1f} ms  ratio {j / o:5.2f}")
        benchmark.extra_info[name] = {"ours_s": o, "jumanji_s": j, "ratio": j / o}
    assert all(v > 0 for v in med.values())


test_print_table = SUITE.test_print_table
