"""Tests of result processing: normalisation, score matrices and curve tensors."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from jaxmarl_envs.algorithms.evaluation import (
    curve_tensors,
    load_reference_scores,
    load_results,
    observed_ranges,
    score_matrices,
    task_curves,
    tasks_with_metric,
)

FIXTURE = Path(__file__).parent / "data" / "marl_eval_results.json"
SMALL, LARGE = ("lbf", "8x8-2p-2f"), ("lbf", "10x10-3p-3f")


@pytest.fixture
def data():
    return load_results(FIXTURE)


def _run(values_by_step, absolute):
    run = {
        f"step_{k}": {"step_count": 10 * (k + 1), "r": list(values)}
        for k, values in enumerate(values_by_step)
    }
    run["absolute_metrics"] = {"r": list(absolute)}
    return run


def test_observed_ranges_when_one_block_sets_both_min_and_max():
    # The second block holds both a new minimum and a new maximum: both must be taken
    # (an if/elif update would keep the old maximum 6).
    data = {"e": {"t": {"a": {"s0": _run([[5.0, 6.0], [0.0, 10.0]], [5.0, 5.0])}}}}
    assert observed_ranges(data, "r") == {("e", "t"): (0.0, 10.0)}
    # Ranges are per task, over every algorithm, run, step and the absolute metrics.
    data["e"]["t"]["b"] = {"s0": _run([[2.0, 2.0], [3.0, 3.0]], [-4.0, 12.0])}
    data["e"]["u"] = {"a": {"s0": _run([[1.0], [2.0]], [3.0])}}
    assert observed_ranges(data, "r") == {("e", "t"): (-4.0, 12.0), ("e", "u"): (1.0, 3.0)}


def test_fixture_ranges_and_normalised_matrices(data):
    # By hand from the fixture: task 8x8 values span [0, 5], task 10x10 [0, 60].
    assert observed_ranges(data, "return") == {SMALL: (0.0, 5.0), LARGE: (0.0, 60.0)}
    raw = score_matrices(data, "return")
    assert raw.tasks == (SMALL, LARGE)  # natural order: 8x8 before 10x10
    assert raw.ranges is None
    assert np.array_equal(raw.scores["ippo"], [[2.0, 30.0], [2.0, 30.0]])
    assert np.array_equal(raw.scores["mappo"], [[4.0, 55.0], [4.0, 40.0]])
    assert raw.runs["mappo"] == (("seed_0", "seed_1"), ("run_1", "run_2"))
    norm = score_matrices(data, "return", "observed")
    assert np.allclose(norm.scores["ippo"], [[2 / 5, 30 / 60], [2 / 5, 30 / 60]])
    assert np.allclose(norm.scores["mappo"], [[4 / 5, 55 / 60], [4 / 5, 40 / 60]])
    final = score_matrices(data, "return", "observed", source="final_step")
    assert np.allclose(final.scores["ippo"][:, 0], [1.5 / 5, 2.5 / 5])
    assert norm.task_labels == ["lbf/8x8-2p-2f", "lbf/10x10-3p-3f"]


def test_reference_score_normalisation(tmp_path, data):
    refs = {"lbf": {"8x8-2p-2f": {"min": 1.0, "max": 3.0}, "10x10-3p-3f": {"min": 0, "max": 100}}}
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(refs))
    ranges = load_reference_scores(path)
    matrices = score_matrices(data, "return", ranges)
    assert np.allclose(matrices.scores["mappo"], [[1.5, 0.55], [1.5, 0.40]])  # may exceed 1
    del refs["lbf"]["10x10-3p-3f"]
    path.write_text(json.dumps(refs))
    with pytest.raises(ValueError, match=r"reference scores missing for tasks \['lbf/10x10"):
        score_matrices(data, "return", load_reference_scores(path))
    path.write_text(json.dumps({"lbf": {"8x8-2p-2f": {"min": 2.0, "max": 2.0}}}))
    with pytest.raises(ValueError, match="min != max"):
        load_reference_scores(path)
    path.write_text(json.dumps({"lbf": {"8x8-2p-2f": {"random": 0.0, "expert": 2.0}}}))
    with pytest.raises(ValueError, match="expected {'min': x, 'max': y}"):
        load_reference_scores(path)


def test_metric_selection_by_task(data):
    # win_rate is only logged on the 8x8 task.
    assert tasks_with_metric(data, "win_rate") == [SMALL]
    matrices = score_matrices(data, "win_rate")
    assert matrices.tasks == (SMALL,)
    assert np.array_equal(matrices.scores["ippo"], [[0.5], [1.0]])
    with pytest.raises(ValueError, match="no task logs metric 'steps'"):
        score_matrices(data, "steps")
    with pytest.raises(ValueError, match=r"task '10x10-3p-3f' / algorithm 'ippo' / run 'run_1'"):
        score_matrices(data, "win_rate", tasks=[SMALL, LARGE])


def test_ragged_runs_raise_a_clear_error(data):
    ragged = copy.deepcopy(data)
    ragged["lbf"]["10x10-3p-3f"]["ippo"]["run_3"] = copy.deepcopy(
        ragged["lbf"]["10x10-3p-3f"]["ippo"]["run_1"]
    )
    with pytest.raises(ValueError, match=r"'ippo' has different numbers of runs per task"):
        score_matrices(ragged, "return")
    with pytest.raises(ValueError, match=r"lbf/8x8-2p-2f: 2, lbf/10x10-3p-3f: 3"):
        curve_tensors(ragged, "return")
    # Per task, every algorithm keeps its own number of runs.
    curves = task_curves(ragged, "lbf", "10x10-3p-3f", "return")
    assert curves.values["ippo"].shape == (3, 1, 2)
    assert curves.values["mappo"].shape == (2, 1, 2)
    missing = copy.deepcopy(data)
    del missing["lbf"]["10x10-3p-3f"]["mappo"]
    with pytest.raises(ValueError, match=r"task '10x10-3p-3f': no runs for \['mappo'\]"):
        score_matrices(missing, "return")


def test_observed_normalisation_with_zero_range_raises():
    data = {"e": {"t": {"a": {"s0": _run([[1.0], [1.0]], [1.0])}}}}
    with pytest.raises(ValueError, match="observed min/max normalisation is undefined"):
        score_matrices(data, "r", "observed")
    assert np.array_equal(score_matrices(data, "r").scores["a"], [[1.0]])


def test_curve_tensors(data):
    # The fixture's two tasks log at different step counts (100s vs 1000s): warned about.
    with pytest.warns(UserWarning, match="differs by more than 5%"):
        curves = curve_tensors(data, "return", "observed")
    assert curves.values["ippo"].shape == (2, 2, 2)  # runs x tasks x steps
    # ippo seed_0 on 8x8: step means 0.5 then 1.5, normalised by 5.
    assert np.allclose(curves.values["ippo"][0, 0], [0.5 / 5, 1.5 / 5])
    # mappo run_1 on 10x10: step means 20 then 45, normalised by 60.
    assert np.allclose(curves.values["mappo"][0, 1], [20 / 60, 45 / 60])
    # x axis: mean step_count over runs and tasks ((100 + 1000) / 2, (200 + 2000) / 2).
    assert np.array_equal(curves.step_counts["ippo"], [550.0, 1100.0])
    single = task_curves(data, "lbf", "8x8-2p-2f", "return")
    assert np.array_equal(single.step_counts["mappo"], [100.0, 200.0])
    assert np.allclose(single.values["mappo"][:, 0, :], [[1.0, 3.5], [1.0, 4.0]])
    uneven = copy.deepcopy(data)
    del uneven["lbf"]["10x10-3p-3f"]["ippo"]["run_2"]["step_2"]
    with pytest.raises(ValueError, match="different numbers of steps"):
        curve_tensors(uneven, "return")
