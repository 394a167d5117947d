"""Speed of the evaluation statistics (issue 5): the four aggregate metrics (mean, median,
IQM, optimality gap) with 50,000 stratified-bootstrap replicates on 5 algorithms x 10 runs x
4 tasks must take under 5 s on 2 CPU cores (rliable 1.2.0: about 37 s); one probability-of-
improvement pair at 2,000 replicates is timed too (rliable: about 3 s).

Run: `pytest benchmarks/test_statistics_speed.py -s`
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxmarl_envs.algorithms.evaluation import (
    aggregate_metrics,
    probability_of_improvement_interval,
)

ALGORITHMS = [f"algo_{i}" for i in range(5)]


@pytest.fixture(scope="module")
def scores() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: rng.uniform(0.0, 1.0, size=(10, 4)) for name in ALGORITHMS}


def test_aggregate_metrics_50k_reps(benchmark, scores):
    benchmark.group = "statistics"
    result = benchmark.pedantic(
        aggregate_metrics, args=(scores,), kwargs={"reps": 50_000}, rounds=3, iterations=1
    )
    seconds = benchmark.stats.stats.median
    print(f"\naggregate metrics, 5 algos x 10 runs x 4 tasks, 50k reps: {seconds:.2f}s")
    assert set(result) == set(ALGORITHMS)
    assert seconds < 5.0


def test_probability_of_improvement_pair_2k_reps(benchmark, scores):
    benchmark.group = "statistics"
    x, y = scores["algo_0"], scores["algo_1"]
    benchmark.pedantic(
        probability_of_improvement_interval,
        args=(x, y),
        kwargs={"reps": 2_000},
        rounds=3,
        iterations=1,
    )
    seconds = benchmark.stats.stats.median
    print(f"\nprobability of improvement, one pair, 2k reps: {seconds:.3f}s")
    assert seconds < 3.0
