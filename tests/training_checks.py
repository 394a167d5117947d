"""Checks shared by the training-runner tests of every algorithm family (PPO, Q-learning,
SAC): state leaves, a bitwise-resume comparison of results, and runs on 4 forced CPU devices."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np

from jaxmarl_envs.algorithms.evaluation.results import load_results

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def leaves(tree) -> list[np.ndarray]:
    """The leaves of a pytree as numpy arrays (for exact comparisons)."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_resumed_results_equal(full_dir: str, resumed_dir: str, algorithm: str) -> None:
    """A resumed run's `metrics.json` logs the same evaluations (first and last of 4) and the
    same absolute metric as the uninterrupted run, for both seeds of the toy task."""
    full = load_results(os.path.join(full_dir, "metrics.json"))["toy"]["toy-5"][algorithm]
    resumed = load_results(os.path.join(resumed_dir, "metrics.json"))["toy"]["toy-5"][algorithm]
    for seed in ("seed_0", "seed_1"):
        for step in ("step_0", "step_3"):
            assert full[seed][step]["episode_return"] == resumed[seed][step]["episode_return"]
            assert full[seed][step]["step_count"] == resumed[seed][step]["step_count"]
        assert full[seed]["absolute_metrics"] == resumed[seed]["absolute_metrics"]


def run_on_four_cpu_devices(script_template: str, **fields) -> str:
    """Runs `script_template.format(tests=TESTS_DIR, **fields)` in a fresh interpreter with 4
    forced CPU devices (reusing the suite's persistent compile cache); asserts it succeeded
    and printed its `MAXDIFF` line, and returns its stdout."""
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    cache = jax.config.jax_compilation_cache_dir  # reuse the suite's persistent cache
    if cache:
        env.update(
            JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5"
        )
    script = script_template.format(tests=TESTS_DIR, **fields)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "MAXDIFF" in proc.stdout
    return proc.stdout
