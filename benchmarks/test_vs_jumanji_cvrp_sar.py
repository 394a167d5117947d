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

from functools import partial

import pytest
from common import StrictComparison, make_strict_run, ours, uniform_action

import jaxmarl_envs

jumanji = pytest.importorskip("jumanji")

BATCH = 1024
ROUNDS = 5
CONTINUOUS = {"SearchAndRescue-v0"}


def _jumanji(name: str):
    """`(reset, step, mask_of)` of Jumanji's environment `name`, with auto-reset."""
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(name))
    mask_of = None if name in CONTINUOUS else (lambda ts: ts.observation.action_mask)
    return env.reset, env.step, mask_of


def _strict(reset, step, mask_of, env_id):
    if env_id in CONTINUOUS:
        # Uniform within our action spec: `[-1, 1]` (rotation, acceleration) per searcher,
        # the same bounds and shape as Jumanji's.
        steering = uniform_action(jaxmarl_envs.make(env_id).action_spec)
        return make_strict_run(reset, step, None, batch=BATCH, sample_action=steering)
    return make_strict_run(reset, step, mask_of, batch=BATCH)


def _side(side, env_id):
    """The strict call of one side (`ours` or `_jumanji`) for `env_id`."""
    return _strict(*side(env_id), env_id)


#: Speed-up targets of issue 22 (ours / Jumanji, same run): id -> (ours, Jumanji, target).
TABLE = {
    env_id: (partial(_side, ours, env_id), partial(_side, _jumanji, env_id), target)
    for env_id, target in {"MultiCVRP-v0": 1.5, "SearchAndRescue-v0": 1.5}.items()
}
SUITE = StrictComparison(TABLE, peer="jumanji", rounds=ROUNDS, batch=BATCH)
test_strict_vs_jumanji = SUITE.test_strict
test_speedup_target = SUITE.test_target
test_print_table = SUITE.test_print_table
