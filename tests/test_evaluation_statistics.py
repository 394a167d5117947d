"""Tests of the aggregate metrics and their stratified-bootstrap confidence intervals."""

import itertools
import math

import numpy as np
import pytest

from jaxmarl_envs.algorithms.evaluation import statistics as st

# Small matrix (num_runs=2, num_tasks=3) used for hand-computed values.
HAND = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 9.0]])


def _pooled_sorted(scores):
    values = [float(v) for row in scores for v in row]
    return sorted(values)


def _iqm_by_hand(scores):
    values = _pooled_sorted(scores)
    cut = int(0.25 * len(values))  # as scipy.stats.trim_mean
    kept = values[cut : len(values) - cut]
    return sum(kept) / len(kept)


def _task_means_by_hand(scores):
    num_runs, num_tasks = len(scores), len(scores[0])
    return [sum(scores[r][t] for r in range(num_runs)) / num_runs for t in range(num_tasks)]


def _poi_by_hand(x, y):
    total = 0.0
    num_tasks = len(x[0])
    for t in range(num_tasks):
        wins = 0.0
        for a in (row[t] for row in x):
            for b in (row[t] for row in y):
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
        total += wins / (len(x) * len(y))
    return total / num_tasks


def test_point_estimates_by_hand():
    # Task means (1, 2, 7): mean 10/3, median 2.
    assert math.isclose(st.aggregate_mean(HAND), 10.0 / 3.0)
    assert st.aggregate_median(HAND) == 2.0
    # Pooled sorted (0, 1, 2, 3, 5, 9); int(0.25 * 6) = 1 dropped from each end -> (1+2+3+5)/4.
    assert st.aggregate_iqm(HAND) == 2.75
    # min(score, 1) = (0, 1, 1, 1, 1, 1) -> gap = 1 - 5/6.
    assert math.isclose(st.aggregate_optimality_gap(HAND), 1.0 / 6.0)
    # min(score, 3) = (0, 1, 3, 2, 3, 3) -> gap = 3 - 12/6.
    assert math.isclose(st.aggregate_optimality_gap(HAND, gamma=3.0), 1.0)


@pytest.mark.parametrize("shape", [(3, 1), (4, 5), (5, 4), (7, 3), (10, 10)])
def test_point_estimates_match_independent_loops(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    scores = rng.normal(size=shape)
    nested = scores.tolist()
    means = _task_means_by_hand(nested)
    assert math.isclose(st.aggregate_mean(scores), sum(means) / len(means))
    ordered = sorted(means)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    assert math.isclose(st.aggregate_median(scores), median)
    assert math.isclose(st.aggregate_iqm(scores), _iqm_by_hand(nested))
    clipped = [min(v, 1.0) for v in _pooled_sorted(nested)]
    assert math.isclose(st.aggregate_optimality_gap(scores), 1.0 - sum(clipped) / len(clipped))


def test_iqm_equals_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n_runs, n_tasks in [(3, 2), (5, 5), (10, 7)]:
        scores = rng.normal(size=(n_runs, n_tasks))
        assert math.isclose(st.aggregate_iqm(scores), stats.trim_mean(scores.flatten(), 0.25))


def test_probability_of_improvement_by_hand():
    x = np.array([[1.0], [2.0], [3.0]])
    y = np.array([[2.0], [2.0]])
    # Pairs: (1,2) (1,2) lose, (2,2) (2,2) tie, (3,2) (3,2) win -> (0+0+.5+.5+1+1)/6.
    assert st.probability_of_improvement(x, y) == 0.5
    x2 = np.array([[3.0, 0.0], [4.0, 1.0]])
    y2 = np.array([[1.0, 5.0], [3.0, 6.0]])
    # Task 0: (3>1)=1, (3=3)=.5, (4>1)=1, (4>3)=1 -> 3.5/4; task 1: all losses -> 0.
    assert st.probability_of_improvement(x2, y2) == (3.5 / 4 + 0.0) / 2
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, size=(5, 3)).astype(float), rng.integers(0, 4, size=(4, 3))
    assert math.isclose(st.probability_of_improvement(a, b), _poi_by_hand(a.tolist(), b.tolist()))


def test_probability_of_improvement_matches_mann_whitney():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 5, size=(6, 4)).astype(float), rng.integers(0, 5, size=(5, 4))
    expected = np.mean(
        [
            stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / 30
            for t in range(4)
        ]
    )
    assert math.isclose(st.probability_of_improvement(x, y), expected)


def test_identical_algorithms_give_one_half_exactly():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(7, 5)).round(1)  # with ties
    assert st.probability_of_improvement(scores, scores) == 0.5
    assert st.probability_of_improvement(scores, scores[::-1]) == 0.5
    interval = st.probability_of_improvement_interval(scores, scores.copy(), reps=500)
    assert interval.point == 0.5
    assert interval.lower < 0.5 < interval.upper


def test_performance_profile_by_hand():
    scores = {"a": np.array([[0.1, 0.5], [0.9, 0.5]])}
    taus, profile = st.performance_profile(scores, taus=np.array([0.0, 0.5, 1.0]), reps=200)
    point, lower, upper = profile["a"]
    # > 0: all four; > 0.5: only 0.9 (0.5 is not strictly greater); > 1: none.
    assert np.array_equal(point, [1.0, 0.25, 0.0])
    assert np.all(lower <= point) and np.all(point <= upper)
    assert lower[0] == upper[0] == 1.0 and lower[2] == upper[2] == 0.0


def test_all_equal_scores_give_zero_width_intervals():
    scores = np.full((5, 3), 0.7)
    for method in ("percentile", "bca"):
        result = st.aggregate_metrics({"a": scores}, reps=1000, method=method)["a"]
        for name, interval in result.items():
            assert interval.lower == interval.upper == interval.point, (name, method)
    curves = st.sample_efficiency_curves({"a": np.full((4, 2, 3), 0.3)}, reps=300)
    point, lower, upper = curves["a"]
    assert np.array_equal(lower, upper) and np.array_equal(lower, point)
    mean, lo, hi = st.single_task_curve(np.full((4, 3), 2.0))
    assert np.array_equal(lo, hi) and np.array_equal(lo, mean)


def test_stratified_resample_never_mixes_tasks():
    # Every task has its own disjoint set of values.
    scores = np.arange(24, dtype=float).reshape(6, 4) * 10 + np.arange(4)
    samples = st.stratified_resample(scores, reps=500, seed=4)
    assert samples.shape == (500, 6, 4)
    for t in range(4):
        assert set(samples[:, :, t].ravel()) <= set(scores[:, t])
    # Every run of a task gets drawn somewhere (resampling really happens with replacement).
    assert set(samples[:, :, 0].ravel()) == set(scores[:, 0])
    assert any(len(set(s[:, 0])) < 6 for s in samples)


def test_bootstrap_is_stratified_not_pooled():
    # Constant within each task, different across tasks: a stratified resample keeps one value
    # per task in every column, so the mean never moves; a pooled resample would.
    scores = np.tile(np.array([0.0, 1.0, 2.0]), (5, 1))
    result = st.aggregate_metrics({"a": scores}, reps=2000)["a"]
    assert result["mean"].lower == result["mean"].upper == 1.0
    assert result["median"].lower == result["median"].upper == 1.0


def _permute_within_tasks(scores, rng):
    out = scores.copy()
    for t in range(scores.shape[1]):
        out[:, t] = rng.permutation(scores[:, t])
    return out


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_permuting_runs_within_a_task_changes_nothing(method):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    base = st.aggregate_metrics({"x": x, "y": y}, reps=2000, method=method, seed=11)
    px, py = _permute_within_tasks(x, rng), _permute_within_tasks(y, rng)
    assert not np.array_equal(px, x)
    permuted = st.aggregate_metrics({"x": px, "y": py}, reps=2000, method=method, seed=11)
    assert permuted == base
    poi = st.probability_of_improvement_interval(x, y, reps=1000, method=method, seed=3)
    assert st.probability_of_improvement_interval(px, py, 1000, method=method, seed=3) == poi
    curves = rng.normal(size=(6, 4, 3))
    perm = rng.permutation(6)
    shuffled = curves[perm]  # whole runs permuted (the same permutation for every task)
    a = st.sample_efficiency_curves({"c": curves}, reps=500, method=method)["c"]
    b = st.sample_efficiency_curves({"c": shuffled}, reps=500, method=method)["c"]
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_reproducible_and_independent_of_other_algorithms():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    alone = st.aggregate_metrics({"x": x}, reps=1000, seed=1)
    together = st.aggregate_metrics({"y": y, "x": x}, reps=1000, seed=1)
    assert alone["x"] == together["x"]
    assert st.aggregate_metrics({"x": x}, reps=1000, seed=1) == alone
    assert st.aggregate_metrics({"x": x}, reps=1000, seed=2) != alone


def test_intervals_contain_point_and_shrink_with_more_runs():
    rng = np.random.default_rng(7)
    small = st.aggregate_metrics({"a": rng.normal(size=(5, 4))}, reps=2000)["a"]
    large = st.aggregate_metrics({"a": rng.normal(size=(80, 4))}, reps=2000)["a"]
    for name in st.AGGREGATE_METRICS:
        assert small[name].lower <= small[name].point <= small[name].upper
        assert large[name].width < small[name].width


def _coverage(method, data_fn, true_value, num_tasks, runs, experiments=200, reps=1000):
    rng = np.random.default_rng(8)
    statistic = st.metric_statistic("mean")
    hits = 0
    for i in range(experiments):
        scores = data_fn(rng, (runs, num_tasks))
        _, lower, upper = st.bootstrap_interval(scores, statistic, reps, 0.95, method, seed=i)
        hits += bool(lower <= true_value <= upper)
    return hits / experiments


def test_bootstrap_coverage_of_the_mean():
    # Normal samples, one task: the 95% percentile interval of the mean covers the true mean
    # in roughly 95% of repeated experiments (a little less at n = 20: about 93%).
    cover = _coverage("percentile", lambda r, s: r.normal(3.0, 2.0, size=s), 3.0, 1, 20)
    assert 0.88 <= cover <= 0.99
    # Three tasks with different means, stratified: the mean of task means is 1.0.
    shifted = lambda r, s: r.normal(0.0, 1.0, size=s) + np.array([0.0, 1.0, 2.0])
    assert 0.88 <= _coverage("percentile", shifted, 1.0, 3, 10) <= 0.99
    # Skewed data with BCa.
    cover = _coverage("bca", lambda r, s: r.exponential(1.0, size=s), 1.0, 1, 25)
    assert 0.88 <= cover <= 0.99


def test_bca_acceleration_matches_the_jackknife_formula():
    rng = np.random.default_rng(9)
    x = rng.exponential(size=15)
    jack = st._jackknife(st.metric_statistic("mean"), x[:, None])
    d = x - x.mean()
    expected = (d**3).sum() / (6.0 * (d**2).sum() ** 1.5)
    assert math.isclose(float(st._acceleration(jack)), expected, rel_tol=1e-9)


def test_poi_jackknife_matches_brute_force():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 4, size=(4, 3)).astype(float)
    y = rng.integers(0, 4, size=(3, 3)).astype(float)
    jack_x, jack_y = st._poi_jackknife(x, y)
    for t, i in itertools.product(range(3), range(4)):
        reduced = [list(np.delete(x[:, k], i)) if k == t else list(x[:, k]) for k in range(3)]
        expected = np.mean(
            [_poi_by_hand([[v] for v in reduced[k]], [[v] for v in y[:, k]]) for k in range(3)]
        )
        assert math.isclose(jack_x[t, i], expected)
    for t, j in itertools.product(range(3), range(3)):
        reduced = [list(np.delete(y[:, k], j)) if k == t else list(y[:, k]) for k in range(3)]
        expected = np.mean(
            [_poi_by_hand([[v] for v in x[:, k]], [[v] for v in reduced[k]]) for k in range(3)]
        )
        assert math.isclose(jack_y[t, j], expected)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_matches_scipy_bootstrap_for_independent_samples(method):
    # scipy.stats.bootstrap resamples several samples independently: with one sample per task
    # and the mean of task means, that is exactly our stratified bootstrap.
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(11)
    a, b = rng.exponential(size=12), 2.0 * rng.exponential(size=12)

    def mean_of_means(u, v, axis=-1):
        return (u.mean(axis=axis) + v.mean(axis=axis)) / 2

    ref = stats.bootstrap(
        (a, b), mean_of_means, n_resamples=20000, method=method, random_state=0
    ).confidence_interval
    _, lower, upper = st.bootstrap_interval(
        np.stack([a, b], axis=1), st.metric_statistic("mean"), 20000, 0.95, method.lower()
    )
    width = ref.high - ref.low
    assert abs(lower - ref.low) < 0.05 * width
    assert abs(upper - ref.high) < 0.05 * width


def test_sample_efficiency_shares_resamples_across_steps():
    rng = np.random.default_rng(12)
    base = rng.normal(size=(6, 3))
    values = np.stack([base, base + 2.0], axis=-1)  # step 1 = step 0 + 2 for every run
    point, lower, upper = st.sample_efficiency_curves({"a": values}, reps=1000)["a"]
    assert np.allclose(point, [st.aggregate_iqm(base), st.aggregate_iqm(base) + 2.0])
    assert np.allclose(lower[1] - lower[0], 2.0) and np.allclose(upper[1] - upper[0], 2.0)
    mean_curve = st.sample_efficiency_curves({"a": values}, "mean", reps=1000)["a"][0]
    assert np.allclose(mean_curve, [base.mean(), base.mean() + 2.0])


def test_single_task_curve_t_interval_uses_the_actual_run_count():
    values = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 3.0], [4.0, 8.0], [5.0, 3.0]])  # 5 runs
    mean, lower, upper = st.single_task_curve(values)
    t_975_4 = 2.7764451051977987  # Student t quantile, 4 degrees of freedom (tables)
    for s in range(2):
        column = values[:, s].tolist()
        m = sum(column) / 5
        sd = math.sqrt(sum((v - m) ** 2 for v in column) / 4)
        assert math.isclose(mean[s], m)
        assert math.isclose(lower[s], m - t_975_4 * sd / math.sqrt(5))
        assert math.isclose(upper[s], m + t_975_4 * sd / math.sqrt(5))
    three = st.single_task_curve(values[:3])
    t_975_2 = 4.302652729911275
    sd = math.sqrt(((1 - 2) ** 2 + 0 + (3 - 2) ** 2) / 2)
    assert math.isclose(three[2][0], 2.0 + t_975_2 * sd / math.sqrt(3))
    one = st.single_task_curve(values[:1])
    assert np.all(np.isnan(one[1])) and np.all(np.isnan(one[2]))
    boot = st.single_task_curve(values, method="bootstrap", reps=2000)
    assert np.all(boot[1] <= mean) and np.all(mean <= boot[2])
    assert np.all(boot[1] >= values.min(axis=0)) and np.all(boot[2] <= values.max(axis=0))


def test_bad_arguments_raise_value_error():
    good = np.ones((3, 2))
    with pytest.raises(ValueError, match="reps"):
        st.aggregate_metrics({"a": good}, reps=0)
    with pytest.raises(ValueError, match="confidence"):
        st.aggregate_metrics({"a": good}, confidence=1.5)
    with pytest.raises(ValueError, match="method"):
        st.aggregate_metrics({"a": good}, method="normal")
    with pytest.raises(ValueError, match="unknown aggregate metric"):
        st.aggregate_metrics({"a": good}, metrics=["max"])
    with pytest.raises(ValueError, match="finite"):
        st.aggregate_metrics({"a": np.array([[np.nan, 1.0]])})
    with pytest.raises(ValueError, match="tasks"):
        st.aggregate_metrics({"a": good, "b": np.ones((3, 3))})
    with pytest.raises(ValueError, match="seed"):
        st.aggregate_metrics({"a": good}, seed=-1)


def test_fifty_thousand_replicates_are_vectorised():
    rng = np.random.default_rng(13)
    scores = {name: rng.normal(size=(10, 10)) for name in ("a", "b", "c")}
    result = st.aggregate_metrics(scores, reps=50_000)
    assert set(result) == {"a", "b", "c"}
    assert all(iv.lower < iv.point < iv.upper for r in result.values() for iv in r.values())


def test_one_run_has_no_bootstrap_interval():
    one = np.array([[0.2, 0.4, 0.9]])
    for method in ("percentile", "bca"):
        result = st.aggregate_metrics({"a": one}, reps=200, method=method)["a"]
        assert abs(result["mean"].point - 0.5) < 1e-12
        assert all(np.isnan(iv.lower) and np.isnan(iv.upper) for iv in result.values())
    poi = st.probability_of_improvement_interval(one, np.array([[0.1, 0.5, 0.8], [0.3] * 3]))
    assert abs(poi.point - 2 / 3) < 1e-12 and np.isnan(poi.lower) and np.isnan(poi.upper)
    point, lower, upper = st.sample_efficiency_curves({"a": one[..., None]}, reps=200)["a"]
    assert point.shape == (1,) and np.all(np.isnan(lower)) and np.all(np.isnan(upper))
