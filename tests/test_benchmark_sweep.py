"""`jaxmarl benchmark`: a tiny sweep end to end, resuming a killed sweep, refusing bad files."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jaxmarl_envs.algorithms import cli, sweep, training
from jaxmarl_envs.algorithms.evaluation.results import load_results

#: 2 algorithms (two families) x 2 tasks x 2 seeds, 2,048 steps per seed.
TINY_SWEEP = """
[sweep]
name = "tiny"
seeds = 2

[report]
reps = 200
formats = ["png"]

[defaults]
total_steps = 2048
num_envs = 8
num_evaluations = 2
eval_episodes = 4
absolute_metric_factor = 2
hidden_sizes = [16]
gif = false
checkpoint_keep = 2

[algorithms.ippo]
rollout_length = 16

[algorithms.iql]
rollout_length = 4
gru_size = 16
sequence_length = 4
batch_size = 8
buffer_size = 256
learning_starts = 32

[tasks.matrix-climbing]

[tasks.lbf-5x5-2p-1f]
env_kwargs = {time_limit = 25}
"""

RUNS = [
    ("ippo", "matrix-climbing"),
    ("iql", "matrix-climbing"),
    ("ippo", "lbf-5x5-2p-1f"),
    ("iql", "lbf-5x5-2p-1f"),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """`{relative path: (mtime_ns, contents)}` of every file under `folder`."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Runs the tiny sweep in three invocations: (a) `--max-runs 1`; (b) killed while training
    its second run (after one of two evaluation intervals, so a checkpoint exists); (c) to the
    end. Returns what each step left behind."""
    root = tmp_path_factory.mktemp("sweep")
    path = root / "tiny.toml"
    path.write_text(TINY_SWEEP)
    out = root / "out"
    argv = ["benchmark", str(path), "--out", str(out)]
    record: dict = {"out": out, "path": path}

    def invoke(extra: list[str]) -> tuple[int, str]:
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream):
            code = cli.main(argv + extra)
        return code, stream.getvalue()

    # (a) one run, then stop.
    record["a"] = invoke(["--max-runs", "1"])
    record["results_a"] = json.loads((out / "results.json").read_text())
    record["report_a"] = (out / "report").exists()
    record["runs_csv_a"] = (out / "runs.csv").read_text()
    first_run = out / "runs" / "ippo" / "matrix-climbing"
    record["first_before"] = _snapshot(first_run)

    # (b) killed in the middle of the second run: it trains one interval, then "dies".
    original = training.run_experiment
    calls = []

    def killed(learner, out_dir=None, resume=False, stop_after=None, verbose=True):
        calls.append(out_dir)
        original(learner, out_dir, resume=resume, stop_after=1, verbose=verbose)
        raise KeyboardInterrupt("killed")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "run_experiment", killed)
        with pytest.raises(KeyboardInterrupt):
            invoke([])
    record["killed_calls"] = calls
    record["summary_b"] = json.loads((out / "summary.json").read_text())
    second_run = out / "runs" / "iql" / "matrix-climbing"
    record["second_checkpoints"] = sorted(os.listdir(second_run / "checkpoints"))
    record["dry_run"] = invoke(["--dry-run"])

    # (c) to the end.
    record["c"] = invoke(["--verbose"])
    record["first_after"] = _snapshot(first_run)
    return record


def test_max_runs_stops_and_results_are_updated_after_each_run(killed_and_resumed):
    code, text = killed_and_resumed["a"]
    assert code == 0
    assert "[1/4] ippo on matrix-climbing (2 seeds, 2,048 steps): done in" in text
    assert "stopping after 1 run(s) (--max-runs)" in text
    # The sweep's one JSON holds the finished run already; the report waits for all runs.
    assert killed_and_resumed["results_a"] == {
        "matrix": {
            "matrix-climbing": {
                "ippo": killed_and_resumed["results_a"]["matrix"]["matrix-climbing"]["ippo"]
            }
        }
    }
    assert sorted(killed_and_resumed["results_a"]["matrix"]["matrix-climbing"]["ippo"]) == [
        "seed_0",
        "seed_1",
    ]
    assert not killed_and_resumed["report_a"]
    assert "1/4 runs finished" in text


def test_killed_run_leaves_a_checkpoint_and_dry_run_shows_statuses(killed_and_resumed):
    # The killed invocation skipped the finished run and died inside the second one.
    calls = killed_and_resumed["killed_calls"]
    assert len(calls) == 1 and calls[0].endswith(os.path.join("iql", "matrix-climbing"))
    assert killed_and_resumed["second_checkpoints"] == ["1"]
    # The interrupted invocation still recorded where the sweep stood.
    summary = killed_and_resumed["summary_b"]
    assert [r["status"] for r in summary["runs"]] == ["finished", "partial", "new", "new"]
    assert len(summary["invocations"]) == 2  # (a) and (b)
    code, text = killed_and_resumed["dry_run"]
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith("sweep tiny: 2 algorithm(s) x 2 task(s) x 2 seed(s) = 4 run(s)")
    assert lines[1].endswith(": finished, skipped") and "[1/4] ippo on matrix-climbing" in lines[1]
    assert lines[2].endswith(": resumes") and "[2/4] iql on matrix-climbing" in lines[2]
    assert lines[3].endswith(": new") and lines[4].endswith(": new")
    assert lines[5] == "4 selected, 3 to train: 12,288 environment steps over all seeds"
    assert lines[6].startswith("about ") and lines[6].endswith(
        " with --jobs 1, at the pace of 1 finished run(s) (on the machines that trained them)"
    )


def test_resumed_sweep_skips_finished_runs_and_resumes_from_the_checkpoint(killed_and_resumed):
    code, text = killed_and_resumed["c"]
    assert code == 0
    assert "[1/4] ippo on matrix-climbing (2 seeds, 2,048 steps): finished earlier, skipped" in text
    assert (
        "[2/4] iql on matrix-climbing (2 seeds, 2,048 steps): resuming from its checkpoint" in text
    )
    # run_experiment restarted the killed run from its checkpoint after the first interval.
    assert "resumed from " in text and os.path.join("checkpoints", "1") in text
    for i, (algo, task) in enumerate(RUNS[1:], 2):
        assert f"[{i}/4] {algo} on {task} (2 seeds, 2,048 steps): done in" in text
    assert "[4/4] iql on lbf-5x5-2p-1f (2 seeds, 2,048 steps): done in" in text
    assert "; sweep ETA " in text and "; sweep done" in text
    # Resumed, the sweep prices the runs left from the one finished by an earlier invocation.
    assert "3 run(s) left; sweep ETA " in text and "at the pace of 1 finished run(s)" in text
    # The finished run's files were not touched (same bytes, same modification times).
    assert killed_and_resumed["first_after"] == killed_and_resumed["first_before"]


def test_sweep_writes_one_valid_results_file_report_and_records(killed_and_resumed):
    out = killed_and_resumed["out"]
    data = load_results(out / "results.json")  # validates the marl-eval layout, runs complete
    assert sorted(data) == ["lbf", "matrix"]
    for algo, task in RUNS:
        env = task.split("-")[0]
        runs = data[env][task][algo]
        assert sorted(runs) == ["seed_0", "seed_1"]
        assert [k for k in runs["seed_0"] if k.startswith("step_")] == ["step_0", "step_1"]
        assert runs["seed_1"]["step_1"]["step_count"] == 2048
        assert len(runs["seed_1"]["absolute_metrics"]["episode_return"]) == 8
    # The resumed run logged each evaluation once (pruned past its checkpoint, then re-logged).
    assert len(data["matrix"]["matrix-climbing"]["iql"]["seed_0"]) == 3
    report = out / "report"
    for name in (
        "aggregate_scores.png",
        "performance_profile.png",
        "probability_of_improvement.png",
        "sample_efficiency.png",
        "single_task/matrix__matrix-climbing.png",
        "single_task/lbf__lbf-5x5-2p-1f.png",
        "aggregate_scores.csv",
        "aggregate_scores.tex",
        "probability_of_improvement.tex",
        "per_task_scores.csv",
        "per_task_scores.tex",
        "per_task_iqm.csv",
        "per_task_iqm.tex",
        "per_task_iqm.md",
        "aggregate_scores.md",
    ):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    stats = json.loads((report / "statistics.json").read_text())
    assert sorted(stats["aggregate"]) == ["ippo", "iql"]
    assert [(p["x"], p["y"]) for p in stats["probability_of_improvement"]] == [("ippo", "iql")]
    # Records: the sweep file, the resolved configs, the wall-clock summary.
    assert (out / "sweep.toml").read_text() == TINY_SWEEP
    plan = json.loads((out / "plan.json").read_text())
    assert [(r["algorithm"], r["task"]) for r in plan["runs"]] == RUNS
    assert plan["runs"][3]["config"]["env_kwargs"] == {"time_limit": 25}
    assert plan["runs"][1]["config"]["sequence_length"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == summary["total"] == 4 and summary["failed"] == []
    # One entry per invocation that trained (a, b killed, c; not the dry run), the total
    # their sum.
    invocations = summary["invocations"]
    assert len(invocations) == 3 and all(i["seconds"] > 0 for i in invocations)
    assert invocations[-1]["seconds"] == summary["wall_clock_seconds"]
    assert summary["wall_clock_seconds_total"] == pytest.approx(
        sum(i["seconds"] for i in invocations)
    )
    assert summary["wall_clock_seconds_total"] > summary["wall_clock_seconds"] > 0
    # Each invocation names its machine (a sweep resumed elsewhere mixes CPUs).
    import jax

    for entry in invocations:
        assert entry["machine"]["jax"] == jax.__version__
        assert entry["machine"]["cores"] == os.cpu_count() and entry["machine"]["cpu"]
    runs = {r["algorithm"] + "/" + r["task"]: r for r in summary["runs"]}
    assert all(r["status"] == "finished" and r["seconds"] > 0 for r in runs.values())
    # The run killed in (b) counts its first interval from the checkpoint's `train_seconds`.
    iql = runs["iql/matrix-climbing"]
    assert iql["seconds_total"] > iql["seconds"]
    first = json.loads((out / "runs" / "ippo" / "matrix-climbing" / "sweep_run.json").read_text())
    assert runs["ippo/matrix-climbing"]["seconds_total"] == first["seconds_total"]
    assert first["seconds_total"] == pytest.approx(first["seconds"])  # never interrupted
    assert first["machine"] == invocations[0]["machine"]
    assert summary["train_seconds"] == pytest.approx(sum(r["seconds_total"] for r in runs.values()))
    # Records name run folders relative to the sweep folder (true once it is moved/committed).
    assert runs["iql/matrix-climbing"]["run_dir"] == "runs/iql/matrix-climbing"
    assert plan["runs"][1]["run_dir"] == "runs/iql/matrix-climbing"


def test_runs_table_lists_every_finished_run_per_seed_with_its_time(killed_and_resumed):
    out = killed_and_resumed["out"]
    data = load_results(out / "results.json")
    summary = json.loads((out / "summary.json").read_text())
    seconds = {(r["algorithm"], r["task"]): r["seconds_total"] for r in summary["runs"]}
    with open(out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["algorithm"], r["task"], r["seed"]) for r in rows] == [
        (a, t, s) for a, t in RUNS for s in ("0", "1")
    ]
    for row in rows:
        env = row["task"].split("-")[0]
        episodes = data[env][row["task"]][row["algorithm"]]["seed_" + row["seed"]]
        expected = sum(episodes["absolute_metrics"]["episode_return"]) / 8
        assert float(row["episode_return"]) == pytest.approx(expected, rel=1e-9)
        assert int(row["total_steps"]) == 2048 and row["env_id"] == row["task"]
        assert float(row["train_seconds"]) == seconds[(row["algorithm"], row["task"])]
    # After the first invocation (one run finished) the table held that run alone.
    first = list(csv.DictReader(io.StringIO(killed_and_resumed["runs_csv_a"])))
    assert [(r["algorithm"], r["task"]) for r in first] == [RUNS[0]] * 2
    lines = (out / "runs.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert table[0].startswith("| algorithm | task | steps per seed | absolute episode_return")
    cells = [c.strip() for c in table[2].strip("|").split("|")]  # iql on matrix-climbing
    assert cells[:3] == ["iql", "matrix-climbing", "2,048"]
    per_seed = [float(v) for v in cells[3].split(", ")]
    scores = [float(r["episode_return"]) for r in rows[2:4]]
    decimals = len(cells[3].split(", ")[0].split(".")[-1]) if "." in cells[3] else 0
    assert per_seed == pytest.approx(scores, abs=0.51 * 10**-decimals)
    assert float(cells[4]) == pytest.approx(sum(scores) / 2, abs=0.51 * 10**-decimals)
    assert cells[5] == sweep.fmt_duration(seconds[("iql", "matrix-climbing")])
    rate = 2 * 2048 / seconds[("iql", "matrix-climbing")]
    assert float(cells[6].replace(",", "")) == pytest.approx(rate, abs=0.51)
    # Decimals per task (from its median |score|): LBF's returns (at most 1) keep 3 decimals
    # beside the climbing game's hundreds.
    for row in table[3:5]:
        assert "lbf-5x5-2p-1f" in row
        assert all(len(v.strip().split(".")[1]) == 3 for v in row.split("|")[4].split(", "))
    # Written atomically (temporary file + rename) with a plain file's mode, nothing left over.
    plain = out / "plain.txt"
    plain.write_text("")
    for name in ("runs.md", "runs.csv", "summary.json"):
        assert (out / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, name
    plain.unlink()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_report_only_and_changed_config_refused(killed_and_resumed, capsys):
    out, path = killed_and_resumed["out"], killed_and_resumed["path"]
    (out / "report" / "aggregate_scores.png").unlink()
    (out / "runs.md").unlink()
    before = json.loads((out / "summary.json").read_text())
    assert cli.main(["benchmark", str(path), "--out", str(out), "--report-only"]) == 0
    assert (out / "report" / "aggregate_scores.png").is_file()
    assert (out / "runs.md").is_file()
    # Redrawing the report trains nothing and adds no time to the sweep's wall clock.
    after = json.loads((out / "summary.json").read_text())
    for key in ("invocations", "wall_clock_seconds", "wall_clock_seconds_total", "runs"):
        assert after[key] == before[key], key
    text = capsys.readouterr().out
    assert "training" not in text and "report: " in text
    changed = path.with_name("changed.toml")
    changed.write_text(TINY_SWEEP.replace("rollout_length = 16", "rollout_length = 32"))
    assert cli.main(["benchmark", str(changed), "--out", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "runs on disk differ from the sweep file" in err
    assert "rollout_length: 16 in the folder, 32 now" in err


def test_report_only_on_a_partial_sweep_covers_the_tasks_every_algorithm_finished(
    killed_and_resumed, tmp_path, capsys
):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(killed_and_resumed["out"], out)
    shutil.rmtree(out / "report")
    argv = ["benchmark", str(killed_and_resumed["path"]), "--out", str(out), "--report-only"]
    (out / "runs" / "iql" / "lbf-5x5-2p-1f" / "summary.json").unlink()  # not finished now
    assert cli.main(argv) == 0
    assert "tasks with every algorithm finished: matrix-climbing)" in capsys.readouterr().out
    stats = json.loads((out / "report" / "statistics.json").read_text())
    assert stats["tasks"] == ["matrix/matrix-climbing"]
    assert sorted(stats["aggregate"]) == ["ippo", "iql"]
    (out / "runs" / "ippo" / "matrix-climbing" / "summary.json").unlink()
    assert cli.main(argv) == 1
    assert "report skipped: no task has every algorithm finished yet" in capsys.readouterr().out


def test_fields_added_after_a_run_are_not_differences_at_their_default(
    killed_and_resumed, tmp_path, capsys
):
    """A run folder saved before a config field existed has no such key: at the field's
    default (the old behaviour) the run still counts as trained with the sweep's config; a
    missing key whose planned value is not the default is a difference. The sweep folder is
    a moved copy here: a moved sweep still resumes."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(killed_and_resumed["out"], out)
    path = killed_and_resumed["path"]
    config_path = out / "runs" / "ippo" / "matrix-climbing" / "config.json"
    saved = json.loads(config_path.read_text())
    assert saved["config"]["critic_lr_scale"] == 1.0 and saved["config"]["rollout_length"] == 16
    del saved["config"]["critic_lr_scale"]
    config_path.write_text(json.dumps(saved))
    assert cli.main(["benchmark", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "[1/4] ippo on matrix-climbing" in capsys.readouterr().out
    del saved["config"]["rollout_length"]  # the sweep sets 16, the default is 128
    config_path.write_text(json.dumps(saved))
    assert cli.main(["benchmark", str(path), "--out", str(out), "--dry-run"]) == 2
    assert "rollout_length: '<missing>' in the folder, 16 now" in capsys.readouterr().err


def _returns(data: dict) -> dict:
    """`{(env, task, algo, seed, step): episode returns}` of a marl-eval results dict."""
    return {
        (env, task, algo, seed, step): values["episode_return"]
        for env, tasks in data.items()
        for task, algos in tasks.items()
        for algo, seeds in algos.items()
        for seed, steps in seeds.items()
        for step, values in steps.items()
    }


def test_parallel_jobs_give_the_serial_results(killed_and_resumed, tmp_path, monkeypatch):
    """`--jobs 2`: the runs train two at a time in child processes (their output in the run
    folders' logs) and give the same numbers as the serial (killed and resumed) sweep."""
    cache = os.environ.get("JAXMARL_TEST_CACHE")
    if cache != "off":  # the children share the suite's compilation cache
        monkeypatch.setenv(
            "JAX_COMPILATION_CACHE_DIR",
            cache or str(Path.home() / ".cache" / "jaxmarl_envs" / "jax"),
        )
        monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    path = _write(tmp_path, TINY_SWEEP)
    out = tmp_path / "out"
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        code = cli.main(["benchmark", str(path), "--out", str(out), "--jobs", "2"])
    text = stream.getvalue()
    assert code == 0, text
    for i, (algo, task) in enumerate(RUNS, 1):
        head = f"[{i}/4] {algo} on {task} (2 seeds, 2,048 steps)"
        log = out / "runs" / algo / task / "sweep_worker.log"
        assert f"{head}: training (process " in text and f"log {log})..." in text
        assert f"{head}: done in " in text
        assert f"{algo}/{task}: done in " in log.read_text()
        assert "absolute metric" in log.read_text()  # the run's own progress lines
    # Two at a time: the second run started before the first one ended.
    assert text.index("[2/4] iql on matrix-climbing (2 seeds, 2,048 steps): training") < text.index(
        "[1/4] ippo on matrix-climbing (2 seeds, 2,048 steps): done in"
    )
    assert "; sweep done" in text and "report: " in text
    parallel = load_results(out / "results.json")
    serial = load_results(killed_and_resumed["out"] / "results.json")
    assert _returns(parallel) == _returns(serial)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == 4 and all(r["seconds"] > 0 for r in summary["runs"])


def test_terminated_parallel_sweep_leaves_no_training_process(tmp_path):
    """SIGTERM to a `--jobs 2` sweep (a batch scheduler's kill) ends its children too, then
    the sweep itself; nothing keeps training in the background."""
    import re
    import signal
    import time

    slow = TINY_SWEEP.replace("total_steps = 2048", "total_steps = 2_000_000")
    path = _write(tmp_path, slow)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "benchmark", str(path)]
    argv += ["--out", str(out), "--jobs", "2"]
    log = tmp_path / "parent.log"
    with open(log, "w") as handle:
        parent = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while len(re.findall(r"\(process (\d+),", log.read_text())) < 2:
            assert parent.poll() is None, log.read_text()
            assert time.time() < deadline, log.read_text()
            time.sleep(0.2)
        children = [int(pid) for pid in re.findall(r"\(process (\d+),", log.read_text())]
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=60)
    assert parent.returncode != 0
    for pid in children:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # Still listed: only as a zombie reaped by nobody, never as a live process.
        with open(f"/proc/{pid}/stat") as stat:
            assert stat.read().split()[2] == "Z", f"child {pid} still running"


def test_a_failed_run_does_not_stop_the_sweep(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, TINY_SWEEP)
    out = tmp_path / "out"
    calls = []

    def broken(learner, out_dir=None, resume=False, stop_after=None, verbose=True):
        calls.append(out_dir)
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(training, "run_experiment", broken)
    assert cli.main(["benchmark", str(path), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert len(calls) == 4
    assert text.count(": FAILED after ") == 4 and "out of memory (simulated)" in text
    assert "failed runs: ippo/matrix-climbing, iql/matrix-climbing, ippo/lbf-5x5-2p-1f" in text
    assert not (out / "results.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["failed"]) == 4 and summary["finished"] == 0


def test_a_run_trained_by_another_invocation_is_skipped_not_trained_twice(
    tmp_path, monkeypatch, capsys
):
    """Two invocations on one output folder: a run whose lock another process holds is skipped
    (and shown as such by --dry-run); training it anyway is refused; the lock goes with its
    holder."""
    path = _write(tmp_path, TINY_SWEEP)
    out = tmp_path / "out"
    jobs = sweep.plan_sweep(sweep.parse_sweep(path), out)
    calls = []
    monkeypatch.setattr(training, "run_experiment", lambda *a, **k: calls.append(a) or {})
    argv = ["benchmark", str(path), "--out", str(out), "--only", "ippo/matrix-climbing"]
    pid = str(os.getpid())
    with sweep._run_lock(jobs[0]):  # the "other" invocation (a separate open file: it conflicts)
        assert sweep.busy_pid(jobs[0]) == pid and sweep.busy_pid(jobs[1]) is None
        assert cli.main([*argv, "--dry-run"]) == 0
        assert f"matrix-climbing: being trained by another process (pid {pid})" in (
            capsys.readouterr().out
        )
        assert cli.main(argv) == 0
        text = capsys.readouterr().out
        assert f"being trained by another process (pid {pid}), skipped" in text
        with pytest.raises(sweep.RunBusy, match=f"ippo/matrix-climbing is .* \\(pid {pid}\\)"):
            sweep._train_job(jobs[0], verbose=False)
    assert calls == []
    assert sweep.busy_pid(jobs[0]) is None
    with sweep._run_lock(jobs[0]):  # free again
        pass


def test_eta_prices_each_run_at_its_algorithm_and_environment_pace():
    def job(algorithm, environment, steps, seeds=2):
        return sweep.Job(
            label=algorithm,
            name=algorithm,
            algorithm=algorithm,
            task=f"{environment}-task",
            env_id=f"{environment}-task",
            environment=environment,
            seeds=tuple(range(seeds)),
            config=None,
            requested_steps=steps,
            total_steps=steps,
            run_dir=Path("unused"),
        )

    # ippo: 100 s for 2 x 1,000 steps on lbf, 600 s for 2 x 1,000 on rware; iql: 50 s on lbf.
    spent = [(job("ippo", "lbf", 1000), 100.0), (job("ippo", "rware", 1000), 600.0)]
    spent.append((job("iql", "lbf", 1000), 50.0))
    estimate = sweep.estimate_seconds_left
    assert estimate([job("ippo", "rware", 2000)], spent, 1) == pytest.approx(1200.0)
    assert estimate([job("ippo", "lbf", 500, seeds=4)], spent, 1) == pytest.approx(100.0)
    # No iql run on rware yet: iql's pace over its environments (50 s per 2,000 steps).
    assert estimate([job("iql", "rware", 1000)], spent, 1) == pytest.approx(50.0)
    # An algorithm not seen yet: every finished run's pace (750 s per 6,000 steps).
    assert estimate([job("qmix", "mpe", 3000)], spent, 1) == pytest.approx(750.0)
    # Two workers share the runs left; never more workers than runs.
    left = [job("ippo", "lbf", 1000), job("iql", "lbf", 1000)]
    assert estimate(left, spent, 2) == pytest.approx(75.0)
    assert estimate(left[:1], spent, 2) == pytest.approx(100.0)
    assert estimate(left, [], 2) == 0.0


def test_summary_keeps_one_entry_per_invocation_and_totals_them(tmp_path):
    """Invocations that write the summary in turn (one after the other, or two side by side)
    each keep their own entry, updated in place; a summary from before the entries existed
    counts as one."""
    import time
    import types

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"wall_clock_seconds_total": 100.0}))
    fake = types.SimpleNamespace(name="s", path=tmp_path / "s.toml", report={})
    now = time.time()
    for started in (now - 50.0, now - 20.0, now - 50.0):  # a, b, a again (later)
        sweep._write_summary(fake, [], out, started, [])
    summary = json.loads((out / "summary.json").read_text())
    entries = summary["invocations"]
    assert [e["started_unix"] for e in entries[1:]] == [now - 20.0, now - 50.0]
    assert entries[0]["seconds"] == 100.0 and entries[0]["started"] is None
    assert entries[2]["seconds"] >= 50.0 and 20.0 <= entries[1]["seconds"] < 50.0
    assert summary["wall_clock_seconds_total"] == pytest.approx(sum(e["seconds"] for e in entries))
    assert not (out / "summary.json.lock").exists()


# ---------------------------------------------------------------------------------------------
# Planning and validation (nothing trained)
# ---------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_plan_layers_overrides_budget_lists_and_seed_batches(tmp_path):
    path = _write(
        tmp_path,
        """
        [sweep]
        seeds = 3
        seed = 10
        seed_batch = 2
        [defaults]
        total_steps = [1000, 2000]
        num_envs = 8
        num_evaluations = 1
        lr = 1e-3
        [algorithms.ippo]
        rollout_length = 8
        [algorithms.ippo_tanh]
        algorithm = "ippo"
        activation = "tanh"
        rollout_length = 8
        [algorithms.iql]
        rollout_length = 4
        [tasks.spread]
        env_id = "mpe-simple_spread"
        num_envs = 4
        [tasks.spread.override.ppo]
        env_kwargs = {max_cycles = 10}
        [tasks.spread.override.ippo_tanh]
        lr = 5e-4
        """,
    )
    parsed = sweep.parse_sweep(path)
    jobs = sweep.plan_sweep(parsed, tmp_path / "out")
    # 3 algorithms x 1 task x 2 budgets x 2 seed batches (10-11, 12).
    assert len(jobs) == 12
    names = list(dict.fromkeys(j.name for j in jobs))
    assert names == ["ippo_1k", "ippo_2k", "ippo_tanh_1k", "ippo_tanh_2k", "iql_1k", "iql_2k"]
    assert {j.seeds for j in jobs} == {(10, 11), (12,)}
    by = {(j.name, j.seeds): j for j in jobs}
    tanh = by[("ippo_tanh_2k", (12,))]
    assert tanh.task == "spread" and tanh.env_id == "mpe-simple_spread"
    assert tanh.config.algorithm == "ippo_tanh_2k" and tanh.config.activation == "tanh"
    assert tanh.config.lr == 5e-4 and tanh.config.num_envs == 4
    assert tanh.config.env_kwargs == {"max_cycles": 10}
    assert tanh.config.seed == 12 and tanh.config.num_seeds == 1
    assert tanh.run_dir == tmp_path / "out" / "runs" / "ippo_tanh_2k" / "spread" / "seeds_12-12"
    iql = by[("iql_1k", (10, 11))]
    assert iql.config.lr == 1e-3 and iql.config.env_kwargs == {}
    assert iql.requested_steps == 1000 and iql.total_steps >= 1000
    assert type(iql.config).__name__ == "IQLConfig"


BAD_FILES = {
    "unknown algorithm": (
        """
        [algorithms.ipo]
        [tasks.matrix-climbing]
        """,
        "[algorithms.ipo]: unknown algorithm 'ipo' (did you mean 'ippo'?)",
    ),
    "unknown task id": (
        """
        [algorithms.ippo]
        [tasks.lbf-8x8-2p-2f-cop]
        """,
        "[tasks.lbf-8x8-2p-2f-cop]: unknown environment id 'lbf-8x8-2p-2f-cop'",
    ),
    "unknown config field": (
        """
        [algorithms.ippo]
        lrr = 1e-3
        [tasks.matrix-climbing]
        """,
        "[algorithms.ippo].lrr: unknown config field for ippo (IPPOConfig) (did you mean 'lr'?)",
    ),
    "unknown top-level key": (
        """
        [algorithm.ippo]
        [algorithms.ippo]
        [tasks.matrix-climbing]
        """,
        "top-level key 'algorithm': unknown (did you mean 'algorithms'?)",
    ),
    "unknown sweep key": (
        """
        [sweep]
        seed_count = 3
        [algorithms.ippo]
        [tasks.matrix-climbing]
        """,
        "[sweep]: unknown key 'seed_count'",
    ),
    "bad value": (
        """
        [algorithms.ippo]
        hidden_sizes = "64"
        [tasks.matrix-climbing]
        """,
        "[algorithms.ippo].hidden_sizes: expected a list of integers",
    ),
    "field of another family in defaults": (
        """
        [defaults]
        eps_decay_steps = 100
        [algorithms.ippo]
        [algorithms.iql]
        [tasks.matrix-climbing]
        """,
        "[defaults].eps_decay_steps: unknown config field for ippo",
    ),
    "set by task and algorithm": (
        """
        [algorithms.ippo]
        num_envs = 8
        [tasks.matrix-climbing]
        num_envs = 4
        """,
        "[tasks.matrix-climbing] and [algorithms.ippo] both set num_envs",
    ),
    "unknown override target": (
        """
        [algorithms.ippo]
        [tasks.matrix-climbing.override.sac]
        lr = 1.0
        """,
        "[tasks.matrix-climbing.override.sac]: 'sac' is neither an algorithm of this sweep",
    ),
    "reserved field": (
        """
        [algorithms.ippo]
        num_seeds = 4
        [tasks.matrix-climbing]
        """,
        "[algorithms.ippo].num_seeds: set by the sweep",
    ),
    "value refused by the family": (
        """
        [algorithms.ippo]
        total_steps = 100
        num_evaluations = 5
        [tasks.matrix-climbing]
        """,
        "[algorithms.ippo] on [tasks.matrix-climbing]: total_steps (100)",
    ),
    "Q-learning on continuous actions": (
        """
        [algorithms.iql]
        [tasks.mpe-simple_spread-continuous]
        """,
        "[algorithms.iql] on [tasks.mpe-simple_spread-continuous]: iql: Q-learning needs "
        "discrete actions",
    ),
    "not TOML": ("[algorithms.ippo\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_sweep_files_are_refused_before_anything_runs(case, tmp_path, capsys):
    text, message = BAD_FILES[case]
    path = _write(tmp_path, text)
    out = tmp_path / "out"
    assert cli.main(["benchmark", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxmarl benchmark: error: ")
    assert message in err, err
    assert not out.exists()


def test_usage_errors(tmp_path, capsys):
    path = _write(tmp_path, TINY_SWEEP)
    out = tmp_path / "out"
    assert cli.main(["benchmark", str(tmp_path / "missing.toml")]) == 2
    assert cli.main(["benchmark", str(path), "--out", str(out), "--only", "qmix/*"]) == 2
    assert cli.main(["benchmark", str(path), "--out", str(out), "--max-runs", "0"]) == 2
    assert cli.main(["benchmark", str(path), "--out", str(out), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "missing.toml: no such sweep file" in err
    assert "--only 'qmix/*' matches no run; runs: ippo/matrix-climbing, iql/matrix-climbing" in err
    assert "--max-runs must be >= 1" in err
    assert "--jobs must be >= 1, got 0" in err
    assert not out.exists()
    # --only selects in the dry run too.
    assert (
        cli.main(["benchmark", str(path), "--out", str(out), "--dry-run", "--only", "*/lbf*"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ")[1].split(" (")[0] for line in lines[1:-1]] == [
        "ippo on lbf-5x5-2p-1f",
        "iql on lbf-5x5-2p-1f",
    ]
    assert lines[-1].startswith("2 selected, 2 to train")
    assert not out.exists()


def test_help_and_light_errors_import_no_jax(tmp_path):
    """`benchmark --help` and files refused by the light checks never import JAX or a family."""
    bad_algorithm = _write(tmp_path, "[algorithms.dqn]\n[tasks.matrix-climbing]\n")
    bad_table = tmp_path / "top.toml"
    bad_table.write_text("[algorithms.ippo]\n[tasks.matrix-climbing]\n[seeds]\nn = 3\n")
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from jaxmarl_envs.algorithms import cli
        out = []
        for argv in (["benchmark", "--help"], ["benchmark", {str(bad_algorithm)!r}],
                     ["benchmark", {str(bad_table)!r}]):
            stream = io.StringIO()
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                try:
                    status = cli.main(argv)
                except SystemExit as exit:
                    status = exit.code
            heavy = [m for m in ("jax", "flax", "optax", "orbax", "matplotlib",
                                 "jaxmarl_envs.algorithms.ppo", "jaxmarl_envs.algorithms.training")
                     if m in sys.modules]
            out.append([status, heavy, stream.getvalue()])
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    (
        (help_code, help_heavy, help_text),
        (algo_code, algo_heavy, algo_text),
        (top_code, top_heavy, top_text),
    ) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert help_code == 0 and "--dry-run" in help_text and "--only" in help_text
    assert algo_code == 2 and "[algorithms.dqn]: unknown algorithm 'dqn'" in algo_text
    assert top_code == 2 and "top-level key 'seeds': unknown" in top_text
    assert help_heavy == algo_heavy == top_heavy == []


def test_example_sweep_file_is_valid(capsys):
    """The documented example plans without errors (nothing trained)."""
    example = Path(__file__).parents[1] / "benchmarks" / "sweeps" / "example.toml"
    parsed = sweep.parse_sweep(example)
    jobs = sweep.plan_sweep(parsed, Path("unused-out"))
    assert {j.algorithm for j in jobs} == {"ippo", "mappo", "qmix", "isac"}
    sac = [j for j in jobs if j.algorithm == "isac" and j.task == "mpe-simple_spread"]
    assert len(sac) == 1 and sac[0].env_id == "mpe-simple_spread-continuous"
    assert all(len(j.seeds) == 3 for j in jobs)


def test_baselines_sweep_file_is_valid():
    """The committed baselines sweep (issue 19's table) plans every algorithm on every task,
    5 seeds, the per-family budgets, SAC on continuous simple_spread (nothing trained)."""
    path = Path(__file__).parents[1] / "benchmarks" / "sweeps" / "baselines.toml"
    jobs = sweep.plan_sweep(sweep.parse_sweep(path), Path("unused-out"))
    algorithms = {"ippo", "mappo", "rec_ippo", "rec_mappo", "iql", "vdn", "qmix", "isac", "masac"}
    tasks = {
        "lbf-8x8-2p-2f-coop",
        "lbf-2s-8x8-2p-2f-coop",
        "rware-tiny-2ag",
        "rware-tiny-4ag",
        "mpe-simple_spread",
    }
    assert {(j.algorithm, j.task) for j in jobs} == {(a, t) for a in algorithms for t in tasks}
    assert all(len(j.seeds) == 5 for j in jobs)
    for j in jobs:
        # Per-family budgets: feed-forward PPO 3M steps, the costlier families 500k.
        assert j.requested_steps == (3_000_000 if j.algorithm in ("ippo", "mappo") else 500_000)
        sac = j.algorithm in ("isac", "masac")
        continuous = sac and j.task == "mpe-simple_spread"
        assert j.env_id == ("mpe-simple_spread-continuous" if continuous else j.task)
        # The Q family gets q_learning.RWARE_SETTINGS on the warehouse, its defaults elsewhere.
        if j.algorithm in ("iql", "vdn", "qmix"):
            warehouse = j.task.startswith("rware")
            from jaxmarl_envs.algorithms.q_learning import RWARE_SETTINGS

            default = type(j.config)()
            for key, value in RWARE_SETTINGS.items():
                assert getattr(j.config, key) == (value if warehouse else getattr(default, key))
            assert j.config.eval_greedy == (not warehouse)


def test_mappo_layer_norm_sweep_matches_the_baselines_rows():
    """The critic-LayerNorm check trained MAPPO and rec_MAPPO exactly as the baselines sweep
    does (same budgets, seeds, settings and environments), with `critic_layer_norm` on: MAPPO's
    default since then (its runs are the baselines sweep's MAPPO rows), not rec_MAPPO's."""
    from jaxmarl_envs.algorithms.config import to_dict

    folder = Path(__file__).parents[1] / "benchmarks" / "sweeps"
    base = sweep.plan_sweep(sweep.parse_sweep(folder / "baselines.toml"), Path("a"))
    ln = sweep.plan_sweep(sweep.parse_sweep(folder / "mappo_layer_norm.toml"), Path("b"))
    assert {(j.name, j.task) for j in ln} == {
        (a + "_ln", t) for a in ("mappo", "rec_mappo") for t in {j.task for j in base}
    }
    ignore = {"critic_layer_norm", "out", "run_name", "algorithm"}  # algorithm: the results name
    for j in ln:
        (b,) = [x for x in base if x.algorithm == j.algorithm and x.task == j.task]
        assert j.config.critic_layer_norm
        assert b.config.critic_layer_norm == (j.algorithm == "mappo")
        assert (j.env_id, j.seeds, j.total_steps) == (b.env_id, b.seeds, b.total_steps)
        mine, theirs = to_dict(j.config), to_dict(b.config)
        assert {k: v for k, v in mine.items() if k not in ignore} == {
            k: v for k, v in theirs.items() if k not in ignore
        }


def test_committed_baselines_sweep_is_finished_under_the_current_defaults():
    """Every run of benchmarks/sweeps/baselines.toml is committed, finished, and was trained
    with the config the file gives today (so `jaxmarl benchmark` skips them all and the table
    in RESULTS.md is what the current defaults produce: a changed default must retrain or
    replace its rows)."""
    root = Path(__file__).parents[1] / "benchmarks" / "sweeps"
    jobs = sweep.plan_sweep(sweep.parse_sweep(root / "baselines.toml"), root / "data" / "baselines")
    assert len(jobs) == 45
    for job in jobs:
        assert sweep.job_status(job) == "finished", job.key
        assert sweep.config_mismatch(job) == [], job.key
    data = load_results(root / "data" / "baselines" / "results.json")
    for job in jobs:
        assert set(data[job.environment][job.task][job.name]) == {f"seed_{s}" for s in job.seeds}
