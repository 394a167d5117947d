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

from functools import partial

import pytest
from common import StrictComparison, make_strict_run, ours

jumanji = pytest.importorskip("jumanji")

BATCH = 1024
ROUNDS = 7
#: Our id -> Jumanji's id.
PEERS = {"Cleaner-v0": "Cleaner-v0", "Connector-v3": "Connector-v3"}


def _jumanji(env_id: str):
    """`(reset, step, mask_of)` of Jumanji's registered peer, with auto-reset."""
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(PEERS[env_id]))
    return env.reset, env.step, lambda ts: ts.observation.action_mask


def _side(side, env_id):
    """The strict call of one side (`ours` or `_jumanji`) for `env_id`."""
    return make_strict_run(*side(env_id), batch=BATCH)


#: Speed-up targets of issue 22 (ours / Jumanji, same run): id -> (ours, Jumanji, target).
TABLE = {
    env_id: (partial(_side, ours, env_id), partial(_side, _jumanji, env_id), target)
    for env_id, target in {"Cleaner-v0": 3.0, "Connector-v3": 3.0}.items()
}
SUITE = StrictComparison(TABLE, peer="jumanji", rounds=ROUNDS, batch=BATCH)
test_strict_vs_jumanji = SUITE.test_strict
test_speedup_target = SUITE.test_target
test_print_table = SUITE.test_print_table
