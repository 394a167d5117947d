"""Env-steps per second of a jitted, vmapped random-action rollout (lax.scan, auto-reset on)
for every environment family, at batch sizes 1, 64, 1024 and 4096, plus compile time.

Run: `pytest benchmarks/test_throughput.py --benchmark-only` (add `-k 1024` for one size).
"""

from __future__ import annotations

import pytest
from common import SCAN_STEPS, block, compile_and_time, make_rollout, ours, steps_per_second

#: One representative scenario per family (extend as families are added).
SCENARIOS = {
    "rware": ["rware-tiny-4ag", "rware-small-4ag-easy"],
    "lbf": ["lbf-8x8-2p-2f-coop", "lbf-15x15-4p-3f"],
}
BATCHES = [1, 64, 1024, 4096]

CASES = [(env_id, b) for ids in SCENARIOS.values() for env_id in ids for b in BATCHES]


@pytest.mark.parametrize("env_id,batch", CASES, ids=[f"{e}-b{b}" for e, b in CASES])
def test_rollout_throughput(benchmark, env_id, batch):
    run, carry = make_rollout(*ours(env_id), batch=batch)
    compiled, carry, compile_s = compile_and_time(run, carry)
    holder = {"carry": carry}

    def once():
        holder["carry"] = block(compiled(holder["carry"]))

    benchmark.group = f"throughput-b{batch}"
    benchmark.pedantic(once, rounds=5 if batch < 4096 else 3, iterations=1, warmup_rounds=1)
    sps = steps_per_second(batch, benchmark.stats.stats.median)
    benchmark.extra_info.update(
        {
            "env_id": env_id,
            "batch": batch,
            "scan_steps": SCAN_STEPS,
            "env_steps_per_s": round(sps),
            "compile_s": round(compile_s, 3),
        }
    )
    print(f"\n{env_id} batch={batch}: {sps:,.0f} env-steps/s, compile {compile_s:.2f}s")
    assert sps > 0
