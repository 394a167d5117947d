"""Multi-process training on `jax.distributed`: 2 local CPU processes equal 1 process with 2
devices; one process dying stops the other with an error in bounded time; launch settings.

Each case starts fresh interpreters running this file as a script (`worker` below): either
two processes with one CPU device each, joined through a localhost coordinator (Gloo
collectives), or one process with two forced host devices. Both shard the environment batch
over the same 2-device mesh, so their final parameters agree to float tolerance.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

TOY_PPO = dict(
    env_id="toy-5",
    total_steps=2 * 2 * 16 * 8,
    num_envs=8,
    rollout_length=16,
    num_evaluations=2,
    hidden_sizes=(16,),
    lr=3e-3,
    eval_episodes=8,
    num_seeds=1,
    gif=False,
    checkpoint_keep=2,
)

# The Q-learning runs take test_q_learning_training's TINY toy config (imported in the worker,
# after `jax.distributed` is set up), with a shorter run and one seed.
TOY_IQL_OVERRIDES = dict(total_steps=2 * 3 * 8 * 4, num_evaluations=2, num_seeds=1)


# ---------------------------------------------------------------------------------------------
# The worker (runs in a fresh interpreter: `python test_multihost.py <algo> <out>`)
# ---------------------------------------------------------------------------------------------


def worker(algo: str, out: str) -> None:
    """Trains `algo` on the toy task; process 0 saves the final parameters to
    `<out>/params.npz`."""
    sys.path.insert(0, TESTS_DIR)
    from jaxmarl_envs.algorithms import training

    training.maybe_initialize_distributed()
    import jax
    from toy_env import ToyEnv

    if algo == "ippo":
        from jaxmarl_envs.algorithms import ppo as family

        config = family.make_config("ippo", **TOY_PPO)
    else:
        from test_q_learning_training import TINY

        from jaxmarl_envs.algorithms import q_learning as family

        config = family.make_config(algo, **{**TINY, **TOY_IQL_OVERRIDES})
    learner = family.make_learner(config, env=ToyEnv(time_limit=5))
    summary = training.run_experiment(learner, out, verbose=False)
    params = training.to_host(summary["state"].params)
    if jax.process_index() == 0:
        leaves = jax.tree_util.tree_leaves(params)
        np.savez(os.path.join(out, "params.npz"), *leaves)
        print("DEVICES", len(jax.devices()), "PROCESSES", jax.process_count(), flush=True)


# ---------------------------------------------------------------------------------------------
# Launch helpers
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_"))
    }
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="")
    import jax

    cache = jax.config.jax_compilation_cache_dir  # reuse the suite's persistent cache
    if cache:
        env.update(
            JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5"
        )
    env.update(extra)
    return env


def _cmd(algo: str, out: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), algo, out]


def _launch(cmd: list[str], port: int, process_id: int) -> subprocess.Popen:
    env = _env(
        JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
        JAX_NUM_PROCESSES="2",
        JAX_PROCESS_ID=str(process_id),
        JAXMARL_HEARTBEAT_TIMEOUT="10",
    )
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def kill_peer_once_training(cmd: list[str]) -> tuple[int, str, float]:
    """Runs `cmd` as processes 0 and 1 on a localhost coordinator, kills process 1 (SIGKILL, as
    a crashed host) at process 0's first progress line, and returns process 0's
    `(return code, output, seconds from the kill to its exit)`."""
    port = _free_port()
    procs = [_launch(cmd, port, i) for i in range(2)]
    try:
        first_line = procs[0].stdout.readline()
        while first_line and not first_line.startswith("["):  # the first progress line
            first_line = procs[0].stdout.readline()
        assert first_line, "process 0 ended before training"
        procs[1].kill()
        killed = time.monotonic()
        output = procs[0].communicate(timeout=180)[0]
        seconds = time.monotonic() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return procs[0].returncode, output, seconds


def run_two_processes(algo: str, out: str, timeout: float = 540):
    """Runs the worker as processes 0 and 1 on a localhost coordinator; returns
    `(return codes, outputs)`."""
    port = _free_port()
    procs = [_launch(_cmd(algo, out), port, i) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], outputs


def run_one_process_two_devices(algo: str, out: str) -> str:
    proc = subprocess.run(
        _cmd(algo, out),
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _load(path: str) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def _assert_same_as_two_devices(algo: str, tmp_path) -> None:
    multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
    codes, outputs = run_two_processes(algo, multi)
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "DEVICES 2 PROCESSES 2" in outputs[0]
    assert "DEVICES 2 PROCESSES 1" in run_one_process_two_devices(algo, single)
    a, b = _load(os.path.join(multi, "params.npz")), _load(os.path.join(single, "params.npz"))
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b, strict=True))
    assert max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True)) < 1e-5
    # Exactly one process wrote results and checkpoints for both series.
    assert os.path.exists(os.path.join(multi, "metrics.json"))
    assert sorted(os.listdir(os.path.join(multi, "checkpoints"))) == ["1", "2"]
    assert len(os.listdir(os.path.join(multi, "best"))) == 1
    config = json.load(open(os.path.join(multi, "config.json")))
    assert config["num_processes"] == 2 and len(config["devices"]) == 2


def test_ippo_two_processes_equal_two_devices(tmp_path):
    _assert_same_as_two_devices("ippo", tmp_path)


@pytest.mark.slow
def test_iql_two_processes_equal_two_devices(tmp_path):
    _assert_same_as_two_devices("iql", tmp_path)


def test_dead_peer_stops_the_survivor_with_an_error(tmp_path):
    """`jaxmarl train` on 2 processes; process 1 is killed (SIGKILL, as a crashed host) once
    training runs. Process 0 stops with a non-zero status and one line naming the failure,
    in bounded time, instead of hanging in a collective."""
    cmd = [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "train", "ippo"]
    cmd += ["--env", "matrix-climbing", "--total-steps", "2000000", "--num-envs", "2"]
    cmd += ["--rollout-length", "4", "--num-evaluations", "100000", "--eval-episodes", "2"]
    cmd += ["--hidden-sizes", "8", "--no-gif", "--no-plots", "--checkpoint-keep", "0"]
    cmd += ["--out", str(tmp_path)]
    returncode, output, seconds = kill_peer_once_training(cmd)
    assert returncode == 1, output[-3000:]
    assert "jaxmarl train: process 0 of 2 stopped (a peer process failed" in output
    assert seconds < 60, f"survivor took {seconds:.0f} s to stop"


def test_launch_settings_from_flags_environment_and_slurm():
    from jaxmarl_envs.algorithms.training import distributed_settings

    assert distributed_settings(environ={}) is None
    assert distributed_settings(environ={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) is None
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4"}
    assert distributed_settings(process_id=3, environ=env) == {
        "coordinator_address": "10.0.0.1:1234",
        "num_processes": 4,
        "process_id": 3,
    }
    # Flags win over the environment.
    got = distributed_settings("h:1", 2, 1, environ={**env, "JAX_PROCESS_ID": "0"})
    assert got == {"coordinator_address": "h:1", "num_processes": 2, "process_id": 1}
    # SLURM: the task count and rank come from SLURM, the coordinator from JAX's detection.
    slurm = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8", "SLURM_PROCID": "5"}
    assert distributed_settings(environ=slurm) == {
        "coordinator_address": None,
        "num_processes": 8,
        "process_id": 5,
    }
    got = distributed_settings(environ={**slurm, "JAX_COORDINATOR_ADDRESS": "node0:9999"})
    assert got == {"coordinator_address": "node0:9999", "num_processes": 8, "process_id": 5}
    for kwargs, message in [
        ({"coordinator_address": "nohostport", "num_processes": 2, "process_id": 0}, "host:port"),
        ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 2}, r"\[0, 2\)"),
        ({"coordinator_address": "h:1", "num_processes": 0, "process_id": 0}, ">= 1"),
        ({"coordinator_address": "h:1"}, "needs the number of processes"),
        ({"num_processes": 2, "process_id": 0}, "needs a coordinator address"),
    ]:
        with pytest.raises(ValueError, match=message):
            distributed_settings(**kwargs, environ={})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer"):
        distributed_settings(environ={"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "x"})


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
