"""Cleaner and Connector against Jumanji 1.1.2 under the strict protocol of issue 18
(optional: needs `pip install .[bench]`).

Run: `pytest benchmarks/test_vs_jumanji_cleaner_connector.py -s -p no:randomly` (not
`--benchmark-only`, which would skip the speed-up checks that compare the measurements).

Protocol (`common.make_strict_run`, `common.interleaved_ratio`): every timed call resets the
whole batch of 1024 from a fresh key, then runs 100 random masked steps in one `lax.scan`,
reducing every observation array and the reward into a checksum every step; ours and
Jumanji's calls alternate A/B/A/B in this process and the speed-up is the median (and range)
over rounds of `time_jumanji / time_ours`. Both sides auto-reset (ours: `AutoReset`;
Jumanji: `AutoResetWrapper`). Our observation includes the per-agent view on top of
Jumanji's fields, so ours reduces more data per step.

Targets (issue 22), on a 2-core CPU: Cleaner-v0 (10x10 maze, 3 agents, time limit 100) and
Connector-v3 (10x10 grid, 10 agents, time limit 50) >= 3x Jumanji's `Cleaner-v0` and
`Connector-v3`.
"""

from __future__ import annotations

import pytest
from common import benchmark_ratio, check_target, format_ratio_table, make_strict_run, ours

jumanji = pytest.importorskip("jumanji")

BATCH = 1024
ROUNDS = 7
#: Speed-up targets of issue 22 (ours / Jumanji, same run); our id -> Jumanji's id.
TARGETS = {"Cleaner-v0": 3.0, "Connector-v3": 3.0}
PEERS = {"Cleaner-v0": "Cleaner-v0", "Connector-v3": "Connector-v3"}
_MEASURED: dict[str, dict] = {}


def _jumanji(env_id: str):
    """`(reset, step, mask_of)` of Jumanji's registered peer, with auto-reset."""
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(PEERS[env_id]))
    return env.reset, env.step, lambda ts: ts.observation.action_mask


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_strict_vs_jumanji(benchmark, env_id):
    run_ours = make_strict_run(*ours(env_id), batch=BATCH)
    run_peer = make_strict_run(*_jumanji(env_id), batch=BATCH)
    res = benchmark_ratio(
        benchmark,
        run_ours,
        run_peer,
        peer="jumanji",
        group=f"vs-jumanji-strict-{env_id}",
        label=env_id,
        work=BATCH * 100,
        rounds=ROUNDS,
        info={"env_id": env_id, "batch": BATCH, "protocol": "strict (issue 18)"},
    )
    _MEASURED[env_id] = res
    assert res["median"] > 0


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_speedup_target(env_id):
    """The issue's batch-1024 target from the interleaved measurement above (same run)."""
    check_target(_MEASURED, env_id, TARGETS[env_id], f"{env_id} vs Jumanji")


def test_print_table():
    """Prints every comparison of this run in one table (for RESULTS.md)."""
    rows = list(_MEASURED.items())
    if not rows:
        pytest.skip("nothing measured in this run")
    work = {k: BATCH * 100 for k, _ in rows}
    print("\nA = ours, B = Jumanji; ratio = B time / A time\n" + format_ratio_table(rows, work))
    assert all(r["median"] > 0 for _, r in rows)
