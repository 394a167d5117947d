"""Tests of the marl-eval JSON layout: reading, the atomic logger, merging and validation."""

import copy
import json
import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from jaxmarl_envs.algorithms.evaluation import (
    JsonLogger,
    load_results,
    merge_results,
    metric_means,
    save_results,
    validate_results,
)

FIXTURE = Path(__file__).parent / "data" / "marl_eval_results.json"
ENV, TASK = "lbf", "8x8-2p-2f"


@pytest.fixture
def fixture_data():
    with open(FIXTURE) as f:
        return json.load(f)


def test_hand_written_marl_eval_file_is_read(fixture_data):
    data = load_results(FIXTURE)
    assert data == fixture_data
    means = metric_means(data, "return")
    # absolute_metrics means, computed by hand from the fixture.
    assert means[ENV][TASK]["ippo"] == {"seed_0": 2.0, "seed_1": 2.0}
    assert means[ENV][TASK]["mappo"] == {"seed_0": 4.0, "seed_1": 4.0}
    assert means[ENV]["10x10-3p-3f"]["ippo"] == {"run_1": 30.0, "run_2": 30.0}
    assert means[ENV]["10x10-3p-3f"]["mappo"] == {"run_1": 55.0, "run_2": 40.0}
    final = metric_means(data, "return", source="final_step")
    assert final[ENV][TASK]["ippo"] == {"seed_0": 1.5, "seed_1": 2.5}
    assert final[ENV]["10x10-3p-3f"]["mappo"] == {"run_1": 45.0, "run_2": 50.0}
    assert metric_means(data, "win_rate")[ENV][TASK]["ippo"] == {"seed_0": 0.5, "seed_1": 1.0}


def _log_run(path, algorithm, seed, offset=0.0, task=TASK):
    logger = JsonLogger(path, ENV, task, algorithm, seed=seed)
    for k in range(3):
        returns = np.arange(4, dtype=np.float32) + k + offset  # (num_episodes,)
        logger.log_step(100 * (k + 1), {"return": returns, "win_rate": 0.25 * k})
    logger.log_absolute({"return": np.full(40, 3.0 + offset), "win_rate": [1.0]})
    return logger


def test_logger_writes_the_marl_eval_layout(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    _log_run(path, "ippo", seed=3)
    with open(path) as f:
        data = json.load(f)
    validate_results(data)
    run = data[ENV][TASK]["ippo"]["seed_3"]
    assert sorted(run) == ["absolute_metrics", "step_0", "step_1", "step_2"]
    assert [run[f"step_{k}"]["step_count"] for k in range(3)] == [100, 200, 300]
    assert run["step_1"]["return"] == [1.0, 2.0, 3.0, 4.0]  # per-episode values, not means
    assert run["step_2"]["win_rate"] == [0.5]
    assert run["step_0"]["elapsed_time"] == 0.0
    assert run["step_2"]["elapsed_time"] >= run["step_1"]["elapsed_time"] >= 0.0
    assert run["absolute_metrics"]["return"] == [3.0] * 40
    assert isinstance(run["step_0"]["step_count"], int)
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0o600


def test_logger_is_incremental_and_shares_one_file(tmp_path):
    path = tmp_path / "metrics.json"
    logger = JsonLogger(path, ENV, TASK, "ippo", seed=0)
    logger.log_step(10, {"return": [1.0, 2.0]})
    # Readable after each write, before the run ends (absolute metrics still empty).
    partial = load_results(path, complete=False)
    assert partial[ENV][TASK]["ippo"]["seed_0"]["step_0"]["return"] == [1.0, 2.0]
    with pytest.raises(ValueError, match="absolute_metrics"):
        load_results(path)
    # A second run of another algorithm and task lands in the same file; neither is lost.
    _log_run(path, "mappo", seed=1, task="other-task")
    with pytest.raises(ValueError, match="1 values but 2 at earlier steps"):
        logger.log_step(20, {"return": [3.0]})
    logger.log_step(20, {"return": [3.0, 4.0]})
    logger.log_absolute({"return": [5.0]})
    data = load_results(path)
    assert set(data[ENV]) == {TASK, "other-task"}
    assert data[ENV][TASK]["ippo"]["seed_0"]["step_1"]["return"] == [3.0, 4.0]
    assert "seed_1" in data[ENV]["other-task"]["mappo"]


def _log_in_subprocess(path, seed):
    _log_run(path, "ippo", seed=seed, offset=float(seed))


def test_concurrent_loggers_keep_every_run(tmp_path):
    # Seeds running in parallel processes append to one file without losing each other's runs.
    # "spawn": forking a process that has started JAX's threads can deadlock.
    path = tmp_path / "metrics.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_log_in_subprocess, args=(path, s)) for s in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    runs = load_results(path)[ENV][TASK]["ippo"]
    assert sorted(runs) == ["seed_0", "seed_1", "seed_2", "seed_3"]
    assert [runs[f"seed_{s}"]["absolute_metrics"]["return"][0] for s in range(4)] == [3, 4, 5, 6]
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]  # no lock or temporary file left


def test_lock_file_removed_and_writers_still_exclusive(tmp_path):
    # Each writer unlinks the lock file it holds before releasing it; writers waiting on the
    # unlinked file must retry on the new one, or two would read-modify-write at once and one
    # run's steps would be lost. Threads take the lock through separate file descriptions.
    path = tmp_path / "metrics.json"
    steps = 15

    def write(seed):
        logger = JsonLogger(path, ENV, TASK, "ippo", seed=seed)
        for k in range(steps):
            logger.log_step(k + 1, {"return": [float(seed)]})
        logger.log_absolute({"return": [float(seed)]})

    threads = [threading.Thread(target=write, args=(s,)) for s in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    runs = load_results(path)[ENV][TASK]["ippo"]
    assert sorted(runs) == [f"seed_{s}" for s in range(6)]
    assert all(len([k for k in run if k.startswith("step_")]) == steps for run in runs.values())
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_logger_if_exists_modes(tmp_path):
    path = tmp_path / "metrics.json"
    _log_run(path, "ippo", seed=0)
    with pytest.raises(ValueError, match="already exists"):
        JsonLogger(path, ENV, TASK, "ippo", seed=0)
    resumed = JsonLogger(path, ENV, TASK, "ippo", seed=0, if_exists="resume")
    four = [1.0, 2.0, 3.0, 4.0]
    assert resumed.log_step(400, {"return": four, "win_rate": [1.0]}) == "step_3"
    with pytest.raises(ValueError, match="not greater than"):
        resumed.log_step(400, {"return": four, "win_rate": [1.0]})
    with pytest.raises(ValueError, match="differ from those logged"):
        resumed.log_step(500, {"return": four})
    JsonLogger(path, ENV, TASK, "ippo", seed=0, if_exists="overwrite")
    run = load_results(path, complete=False)[ENV][TASK]["ippo"]["seed_0"]
    assert run == {"absolute_metrics": {}}


def test_logger_rejects_bad_arguments(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="exactly one"):
        JsonLogger(path, ENV, TASK, "ippo")
    with pytest.raises(ValueError, match="non-empty string"):
        JsonLogger(path, ENV, "", "ippo", seed=0)
    logger = JsonLogger(path, ENV, TASK, "ippo", seed=0)
    with pytest.raises(ValueError, match="finite"):
        logger.log_step(1, {"return": [float("nan")]})
    with pytest.raises(ValueError, match="step_count must be an int"):
        logger.log_step(1.5, {"return": [1.0]})
    with pytest.raises(ValueError, match="reserved"):
        logger.log_step(1, {"step_count": [1.0]})


def test_crash_mid_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    logger = _log_run(path, "ippo", seed=0)
    before = path.read_bytes()

    def crashing_fsync(fd):
        os.write(fd, b'{"lbf": {"8x8')  # a torn write, then the process "dies" before rename
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(os, "fsync", crashing_fsync)
    with pytest.raises(RuntimeError, match="simulated crash"):
        logger.log_absolute({"return": [9.0]})
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_results(load_results(path), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_results(path)[ENV][TASK]["ippo"]["seed_0"]["absolute_metrics"]["return"][0] == 3.0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_merge_results(tmp_path, fixture_data):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _log_run(a, "ippo", seed=0)
    _log_run(b, "ippo", seed=1, offset=1.0)
    _log_run(b, "mappo", seed=0)
    other_task = tmp_path / "other.json"
    other_task.write_text(json.dumps({ENV: {"10x10-3p-3f": fixture_data[ENV]["10x10-3p-3f"]}}))
    out = tmp_path / "merged" / "all.json"
    merged = merge_results([a, b, other_task], out)
    assert load_results(out) == merged
    assert sorted(merged[ENV][TASK]["ippo"]) == ["seed_0", "seed_1"]
    assert sorted(merged[ENV][TASK]["mappo"]) == ["seed_0"]
    assert merged[ENV]["10x10-3p-3f"] == fixture_data[ENV]["10x10-3p-3f"]
    assert merged[ENV][TASK]["ippo"]["seed_0"]["step_0"]["return"] == [0.0, 1.0, 2.0, 3.0]
    # Identical duplicates merge silently; different contents under one name conflict.
    assert merge_results([a, a]) == load_results(a)
    c = tmp_path / "c.json"
    _log_run(c, "ippo", seed=0, offset=5.0)
    with pytest.raises(ValueError, match=r"algorithm 'ippo' / run 'seed_0'.*already comes"):
        merge_results([a, c])
    with pytest.raises(ValueError, match="already comes"):
        merge_results([a, FIXTURE])  # the fixture's lbf/8x8 ippo seed_0 differs from ours
    renamed = merge_results([a, c], on_conflict="rename")
    assert sorted(renamed[ENV][TASK]["ippo"]) == ["seed_0", "seed_0_1"]


def _mutations():
    where = "environment 'lbf' / task '8x8-2p-2f' / algorithm 'ippo' / run 'seed_0'"

    def missing_step_count(d):
        del d[ENV][TASK]["ippo"]["seed_0"]["step_1"]["step_count"]

    def non_numeric(d):
        d[ENV][TASK]["ippo"]["seed_0"]["step_1"]["return"][1] = "3.5"

    def nan_value(d):
        d[ENV][TASK]["ippo"]["seed_0"]["step_0"]["return"][0] = float("nan")

    def scalar_value(d):
        d[ENV][TASK]["ippo"]["seed_0"]["step_0"]["return"] = 1.0

    def mismatched_metrics(d):
        del d[ENV][TASK]["ippo"]["seed_0"]["step_1"]["win_rate"]

    def mismatched_length(d):
        d[ENV][TASK]["ippo"]["seed_0"]["step_1"]["return"].append(4.0)

    def not_increasing(d):
        d[ENV][TASK]["ippo"]["seed_0"]["step_1"]["step_count"] = 100

    def absolute_missing(d):
        del d[ENV][TASK]["ippo"]["seed_0"]["absolute_metrics"]

    def absolute_bad(d):
        d[ENV][TASK]["ippo"]["seed_0"]["absolute_metrics"]["return"] = []

    def unknown_key(d):
        d[ENV][TASK]["ippo"]["seed_0"]["final"] = {}

    def runs_differ(d):
        for step in ("step_0", "step_1"):
            del d[ENV][TASK]["ippo"]["seed_1"][step]["win_rate"]

    return [
        (missing_step_count, f"{where} / step 'step_1': missing 'step_count'"),
        (non_numeric, f"{where} / step 'step_1' / metric 'return': value [1] = '3.5' is not a"),
        (nan_value, f"{where} / step 'step_0' / metric 'return': value [0] = nan is not finite"),
        (scalar_value, f"{where} / step 'step_0' / metric 'return': expected a list"),
        (mismatched_metrics, f"{where} / step 'step_1': mismatched metric lists: missing"),
        (mismatched_length, f"{where} / step 'step_1' / metric 'return': mismatched metric lists"),
        (not_increasing, f"{where} / step 'step_1': steps not increasing"),
        (absolute_missing, f"{where}: 'absolute_metrics' missing"),
        (absolute_bad, f"{where} / absolute_metrics / metric 'return': empty list"),
        (unknown_key, f"{where}: unknown keys ['final']"),
        (runs_differ, "run 'seed_1': mismatched metric lists across runs"),
    ]


@pytest.mark.parametrize("mutate, message", _mutations(), ids=lambda v: getattr(v, "__name__", ""))
def test_validation_messages_name_the_offending_path(fixture_data, mutate, message):
    validate_results(fixture_data)
    broken = copy.deepcopy(fixture_data)
    mutate(broken)
    with pytest.raises(ValueError) as info:
        validate_results(broken)
    assert message in str(info.value)


def test_validation_of_top_levels_and_files(tmp_path):
    with pytest.raises(ValueError, match="non-empty object"):
        validate_results({})
    with pytest.raises(ValueError, match="environment 'e' / task 't': expected a non-empty"):
        validate_results({"e": {"t": {}}})
    with pytest.raises(ValueError, match="no 'step_<k>' entries"):
        validate_results({"e": {"t": {"a": {"r": {"absolute_metrics": {"x": [1.0]}}}}}})
    bad = tmp_path / "bad.json"
    bad.write_text('{"lbf": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results(bad)
    # Step keys are ordered numerically: step_10 comes after step_9.
    run = {f"step_{k}": {"step_count": 10 * k, "x": [1.0]} for k in (10, 9, 1)}
    run["absolute_metrics"] = {"x": [1.0]}
    validate_results({"e": {"t": {"a": {"r": run}}}})
    run["step_10"]["step_count"] = 85
    with pytest.raises(ValueError, match="step 'step_10': steps not increasing"):
        validate_results({"e": {"t": {"a": {"r": run}}}})
