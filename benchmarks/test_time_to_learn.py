"""Time to learn (issue 19): wall-clock seconds for one documented `jaxmarl train ippo` command
to reach an absolute metric of 0.97 on LBF, compilation and start-up included.

The command runs in a subprocess with a fresh, empty JAX compilation cache (cold compile). The
absolute metric is the mean team return of the best parameters re-evaluated on 10 x 64 sampled
episodes at the end of training (`summary.json`, `absolute_return_per_seed`). LBF runs with
`time_limit=100` (Jumanji's default, so Mava's setting; this project's default is 50, under which
IPPO plateaus near 0.85). Anchor: Mava's ff_ippo reaches 0.975 on lbf-2s-8x8-2p-2f-coop in 2M
steps and 113 s; the target is 40 s on 2 CPU cores. Wall-clock time depends on machine load, so
the load average is recorded with each figure and the user+sys CPU time of the subprocess too.

Run: `pytest benchmarks/test_time_to_learn.py --benchmark-only -s -p no:randomly`
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time

import pytest

THRESHOLD = 0.97
TARGET_SECONDS = 40.0

#: The documented command (README / benchmarks/RESULTS.md), without --env, --seed and --out.
COMMAND = [
    "train",
    "ippo",
    "--env-kwargs",
    '{"time_limit": 100}',
    "--num-envs",
    "64",
    "--rollout-length",
    "32",
    "--hidden-sizes",
    "64,64",
    "--lr",
    "1e-3",
    "--anneal-lr",
    "--ent-coef",
    "0.0005",
    "--total-steps",
    "1e6",
    "--num-evaluations",
    "2",
    "--eval-episodes",
    "64",
    "--no-gif",
    "--no-plots",
    "--checkpoint-keep",
    "0",
    "--quiet",
]


def _jaxmarl() -> list[str]:
    exe = shutil.which("jaxmarl")
    return [exe] if exe else [sys.executable, "-m", "jaxmarl_envs.algorithms.cli"]


def run_once(env_id: str, seed: int, tmp: str) -> dict:
    """Runs the command once (cold compile cache) and returns its timings and results."""
    cache = os.path.join(tmp, "jax_cache")
    os.makedirs(cache)
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "SDL_VIDEODRIVER": "dummy"}
    args = [*_jaxmarl(), *COMMAND, "--env", env_id, "--seed", str(seed), "--out", tmp]
    args += ["--run-name", "run"]
    load_before = os.getloadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(tmp, "run", "summary.json")) as f:
        summary = json.load(f)
    return {
        "env_id": env_id,
        "seed": seed,
        "wall_s": round(wall, 2),
        "cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 2),
        "compile_s": round(summary["compile_seconds"], 2),
        "absolute_metric": round(summary["absolute_return_per_seed"][0], 4),
        "total_steps": summary["total_steps_per_seed"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


@pytest.mark.parametrize("env_id", ["lbf-2s-8x8-2p-2f-coop", "lbf-8x8-2p-2f-coop"])
def test_time_to_learn(benchmark, env_id, tmp_path):
    result: dict = {}

    def once():
        result.clear()
        result.update(run_once(env_id, 0, str(tmp_path / f"r{len(os.listdir(tmp_path))}")))

    benchmark.group = "time-to-learn"
    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(result)
    print(f"\n{json.dumps(result)}")
    if env_id == "lbf-2s-8x8-2p-2f-coop":
        assert result["absolute_metric"] >= THRESHOLD, result
        assert result["wall_s"] <= TARGET_SECONDS, result
    else:
        # Reported, not held to the target: with this entropy coefficient seed 0 of the
        # full-view task collapses to a policy that never loads food (benchmarks/RESULTS.md).
        assert 0.0 <= result["absolute_metric"] <= 1.0, result
