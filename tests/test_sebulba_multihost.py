"""Sebulba over 2 local processes on `jax.distributed`: each process runs its own actor threads
on its share of the environments, the PPO update runs over both processes' devices, process 0
writes the files, and a stopped run resumes on the same topology.

Each process is a fresh interpreter running this file as a script (`worker` below) with one
CPU device, joined through a localhost coordinator (Gloo collectives), as in test_multihost.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from test_multihost import _free_port, _launch, kill_peer_once_training

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

#: The PettingZoo environment of test_sebulba whose agents leave early (pure Python).
CONFIG = dict(
    env_id="pettingzoo:test_sebulba:shrinking_env",
    total_steps=3 * 2 * 4 * 8,
    num_envs=4,
    rollout_length=8,
    num_evaluations=3,
    eval_episodes=4,
    hidden_sizes=(16,),
    num_epochs=1,
    gif=False,
    checkpoint_keep=2,
)


def worker(out: str, mode: str) -> None:
    """Trains (`mode` "stop": the first interval only; "resume": the rest) and prints what
    the test checks: this process's parameter checksum and summary fields."""
    sys.path.insert(0, TESTS_DIR)
    from jaxmarl_envs.algorithms import training

    training.maybe_initialize_distributed()
    import jax
    import numpy as np

    from jaxmarl_envs.algorithms import ppo, sebulba

    config = ppo.make_config("ippo", **CONFIG)
    run = sebulba.Sebulba(config, sebulba.SebulbaSettings(actor_threads=2))
    if mode == "stop":
        summary = run.train(out, verbose=False, stop_after=1)
    else:
        summary = run.train(out, verbose=False, resume=True)
    leaves = jax.tree_util.tree_leaves(training.to_host(summary["params"]))
    checksum = float(sum(np.abs(x).sum() for x in leaves))
    fields = {
        k: summary[k]
        for k in ("finished", "num_processes", "learner_devices", "resumed_from_interval")
    }
    fields["steps"] = [h["steps"] for h in summary["history"]]
    fields["staleness_max"] = summary["staleness_max"]
    fields["local_envs"] = run.local_envs
    print(f"RESULT {jax.process_index()} {checksum:.9e} {json.dumps(fields)}", flush=True)


def _two_processes(out: str, mode: str, timeout: float = 400) -> list[tuple[str, dict]]:
    port = _free_port()
    cmd = [sys.executable, os.path.abspath(__file__), out, mode]
    procs = [_launch(cmd, port, i) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    results = []
    for i, text in enumerate(outputs):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"RESULT {i} "))
        _, _, checksum, fields = line.split(" ", 3)
        results.append((checksum, json.loads(fields)))
    return results


def test_sebulba_two_processes_train_one_learner_and_resume(tmp_path):
    out = str(tmp_path / "run")
    first = _two_processes(out, "stop")
    # One learner over both processes' devices: identical parameters on both after the
    # update (each process fed its own environments' rollouts into the one global batch).
    assert first[0][0] == first[1][0]
    for _, fields in first:
        assert fields["num_processes"] == 2 and fields["learner_devices"] == 2
        assert fields["local_envs"] == 2 and fields["steps"] == [64]
        assert not fields["finished"] and fields["staleness_max"] <= 1
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["num_processes"] == 2 and len(config["learner_devices"]) == 2
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["1"]

    second = _two_processes(out, "resume")
    assert second[0][0] == second[1][0] and second[0][0] != first[0][0]
    for _, fields in second:
        assert fields["finished"] and fields["resumed_from_interval"] == 1
        assert fields["steps"] == [128, 192]
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["2", "3"]
    # Process 0 wrote the results: every evaluation once, all episodes of both processes.
    from jaxmarl_envs.algorithms.evaluation import load_results

    data = load_results(os.path.join(out, "metrics.json"), complete=False)
    logged = data["pettingzoo"][CONFIG["env_id"]]["ippo"]["seed_0"]
    steps = {k: v for k, v in logged.items() if k.startswith("step_")}
    assert sorted(v["step_count"] for v in steps.values()) == [64, 128, 192]
    assert all(len(v["episode_return"]) == CONFIG["eval_episodes"] for v in steps.values())
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["num_processes"] == 2 and summary["finished"]


@pytest.mark.slow
def test_sebulba_dead_peer_stops_the_survivor_with_an_error(tmp_path):
    """`jaxmarl train --architecture sebulba` on 2 processes; process 1 is killed (SIGKILL)
    once training runs: process 0 stops with status 1 and one line naming the failure within
    bounded time (its learner's next collective fails), its actor threads stopped."""
    cmd = [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "train", "ippo"]
    cmd += ["--architecture", "sebulba", "--env", "matrix-climbing", "--num-envs", "4"]
    cmd += ["--total-steps", "2000000", "--rollout-length", "4", "--num-evaluations", "100000"]
    cmd += ["--eval-episodes", "2", "--hidden-sizes", "8", "--no-gif", "--no-plots"]
    cmd += ["--checkpoint-keep", "0", "--out", str(tmp_path)]
    returncode, output, seconds = kill_peer_once_training(cmd)
    assert returncode == 1, output[-3000:]
    assert "jaxmarl train: Sebulba stopped: the learner (main thread) raised" in output
    assert output.count("Sebulba stopped") == 1, output[-3000:]
    assert seconds < 60, f"survivor took {seconds:.0f} s to stop"


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
