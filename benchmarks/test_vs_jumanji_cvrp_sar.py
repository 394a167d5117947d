"""Multi-CVRP and Search-and-Rescue against Jumanji 1.1.2 under the strict protocol of issue 18
(optional: needs `pip install .[bench]`).

Run: `pytest benchmarks/test_vs_jumanji_cvrp_sar.py -s -p no:randomly` (not
`--benchmark-only`, which would skip the speed-up checks that compare the measurements).

Protocol (`common.make_strict_run`, `common.interleaved_ratio`): every timed call resets the
whole batch of 1024 from a fresh key, then runs 100 random steps in one `lax.scan` (masked
random nodes for Multi-CVRP; uniform `[-1, 1]` steering for Search-and-Rescue, the same
sampler on both sides), reducing every observation array and the reward into a checksum every
step; both sides auto-reset; ours and Jumanji's calls alternate A/B/A/B in this process and
the speed-up is the median (and range) over rounds of `time_jumanji / time_ours`.

Targets (issue 22), on a 2-core CPU: MultiCVRP-v0 >= 1.5x and SearchAndRescue-v0 >= 1.5x
Jumanji's environments of the same names (default parameters on both sides).
"""

from __future__ import annotations

import jax
import pytest
from common import benchmark_ratio, check_target, format_ratio_table, make_strict_run, ours

jumanji = pytest.importorskip("jumanji")

BATCH = 1024
ROUNDS = 5
#: Speed-up targets of issue 22 (ours / Jumanji, same run).
TARGETS = {"MultiCVRP-v0": 1.5, "SearchAndRescue-v0": 1.5}
CONTINUOUS = {"SearchAndRescue-v0"}
_MEASURED: dict[str, dict] = {}


def _jumanji(name: str):
    """`(reset, step, mask_of)` of Jumanji's environment `name`, with auto-reset."""
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(name))
    mask_of = None if name in CONTINUOUS else (lambda ts: ts.observation.action_mask)
    return env.reset, env.step, mask_of


def _steering(key, ts):
    """Uniform `[-1, 1]` (rotation, acceleration) per searcher, `(batch, N, 2)`."""
    return jax.random.uniform(key, (*ts.reward.shape, 2), minval=-1.0, maxval=1.0)


def _strict(reset, step, mask_of, env_id):
    if env_id in CONTINUOUS:
        return make_strict_run(reset, step, None, batch=BATCH, sample_action=_steering)
    return make_strict_run(reset, step, mask_of, batch=BATCH)


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_strict_vs_jumanji(benchmark, env_id):
    run_ours = _strict(*ours(env_id), env_id)
    run_peer = _strict(*_jumanji(env_id), env_id)
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
