"""One environment through the adapters against the numpy originals, in one process (issue 18).

Run: `pytest benchmarks/test_adapter_latency.py -s -p no:randomly`.

Most Gymnasium and PettingZoo users step one environment at a time from Python, so this is
the latency they see. Each side runs `STEPS` steps of the same pre-drawn random actions
(uniform over each agent's actions, as `action_space.sample()` would give, drawn before the
timed loop so both sides pay the same for actions), resetting when an episode ends; each
step's observation is what the user reads (our adapters hand out numpy arrays, so nothing
is deferred). Ours and the original alternate A/B/A/B; the ratio per round is
`time_original / time_ours` (> 1: ours is faster); median and range, load average recorded.

Pairs (same scenario both sides):
- PettingZoo `parallel_env("rware-tiny-4ag")` and the Gymnasium single env
  `jaxmarl_envs/rware-tiny-4ag-v0` against `rware` 2.0.0 `rware-tiny-4ag-v2` (Gymnasium;
  target: at least as fast, issue 18);
- PettingZoo and Gymnasium `lbf-8x8-2p-2f-coop` against `lbforaging` 2.0.0
  `Foraging-8x8-2p-2f-coop-v3` (reported);
- PettingZoo `mpe-simple_spread` against `mpe2` 1.1.1 `simple_spread_v3.parallel_env()`
  (reported).
"""

from __future__ import annotations

import time

import gymnasium
import numpy as np
import pytest
from common import format_ratio_table, interleaved_ratio

import jaxmarl_envs.adapters  # noqa: F401  registers the Gymnasium ids
from jaxmarl_envs.adapters.pettingzoo import parallel_env

STEPS = 1000
ROUNDS = 7
#: Issue 18: through the adapters, rware-tiny-4ag at least as fast as the numpy original.
TARGET = 1.0
_MEASURED: dict[str, dict] = {}


def _actions(nvec: list[int], steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, steps) for n in nvec], axis=1)  # (steps, num_agents)


def gym_loop(env: gymnasium.Env, nvec: list[int], steps: int = STEPS, joint: bool = True):
    """A timed Gymnasium loop; `joint=False` passes a tuple of per-agent ints (the originals'
    `MultiDiscrete`/`Tuple` spaces take either)."""
    table = _actions(nvec, steps)
    actions = table if joint else [tuple(int(a) for a in row) for row in table]
    env.reset(seed=0)

    def run(_key=None) -> float:
        start = time.perf_counter()
        for t in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[t])
            if _done(terminated, truncated):
                env.reset()
        return time.perf_counter() - start

    return run


def _done(terminated, truncated) -> bool:
    # The originals report per-agent lists on some versions; ours a single bool.
    return bool(np.all(terminated)) or bool(np.all(truncated))


def parallel_loop(env, steps: int = STEPS):
    """A timed PettingZoo parallel loop with pre-drawn actions per agent."""
    agents = list(env.possible_agents)
    nvec = [int(env.action_space(a).n) for a in agents]
    table = _actions(nvec, steps).tolist()
    env.reset(seed=0)

    def run(_key=None) -> float:
        start = time.perf_counter()
        for t in range(steps):
            if not env.agents:
                env.reset()
            row = table[t]
            env.step({a: row[i] for i, a in enumerate(agents) if a in env.agents})
        return time.perf_counter() - start

    return run


def _measure(name: str, ours, original) -> dict:
    ours(), original()  # warm up (compilation, caches)
    res = interleaved_ratio(ours, original, rounds=ROUNDS, warmup=0)
    _MEASURED[name] = res
    return res


def _nvec(space) -> list[int]:
    if isinstance(space, gymnasium.spaces.Tuple):
        return [int(s.n) for s in space.spaces]
    return [int(n) for n in space.nvec]


#: (our id, the original's Gymnasium id, its package, the target of issue 18 or None).
GYM_PAIRS = [
    ("rware-tiny-4ag", "rware-tiny-4ag-v2", "rware", TARGET),
    ("lbf-8x8-2p-2f-coop", "Foraging-8x8-2p-2f-coop-v3", "lbforaging", None),
]


@pytest.mark.parametrize(("env_id", "original_id", "package", "target"), GYM_PAIRS)
def test_through_adapters_vs_numpy_original(env_id, original_id, package, target):
    pytest.importorskip(package, reason=f"{package} is in the dev extra")  # registers its ids
    original = gymnasium.make(original_id, disable_env_checker=True)
    ours_gym = gymnasium.make(f"jaxmarl_envs/{env_id}-v0", disable_env_checker=True)
    nvec = _nvec(original.action_space)
    assert nvec == _nvec(ours_gym.action_space)
    original_loop = gym_loop(original, nvec, joint=False)
    pz = _measure(f"{env_id} pettingzoo", parallel_loop(parallel_env(env_id)), original_loop)
    gym = _measure(f"{env_id} gymnasium", gym_loop(ours_gym, nvec), original_loop)
    if target is not None:
        assert pz["median"] >= target and gym["median"] >= target, (pz["median"], gym["median"])


def test_mpe_through_adapters_vs_mpe2():
    mpe2 = pytest.importorskip("mpe2", reason="pip install --no-deps mpe2==1.1.1")
    from mpe2 import simple_spread_v3

    original = simple_spread_v3.parallel_env()
    assert mpe2 is not None
    res = _measure(
        "mpe-simple_spread pettingzoo",
        parallel_loop(parallel_env("mpe-simple_spread")),
        parallel_loop(original),
    )
    assert res["median"] > 0  # reported, no target


def test_zz_report():
    if not _MEASURED:
        pytest.skip("no comparison ran")
    work = dict.fromkeys(_MEASURED, STEPS)
    print("\n" + format_ratio_table(list(_MEASURED.items()), work))
    assert all(r["median"] > 0 for r in _MEASURED.values())
