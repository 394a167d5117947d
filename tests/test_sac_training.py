"""SAC through the shared runner: results and checkpoints, bitwise resume, seeds, devices."""

from __future__ import annotations

import json
import os
import textwrap

import jax
import numpy as np
import pytest
from continuous_toy_env import ContinuousToyEnv
from toy_env import ToyEnv
from training_checks import assert_resumed_results_equal, leaves, run_on_four_cpu_devices

from jaxmarl_envs.algorithms import sac, training
from jaxmarl_envs.algorithms.evaluation.results import load_results

TINY = dict(
    env_id="toy-5",
    total_steps=4 * 2 * 8 * 4,
    num_envs=8,
    rollout_length=4,
    grad_steps=2,
    batch_size=32,
    buffer_size=512,
    learning_starts=64,
    num_evaluations=4,
    hidden_sizes=(16,),
    actor_lr=3e-3,
    critic_lr=3e-3,
    alpha_lr=3e-3,
    eval_episodes=8,
    num_seeds=2,
    gif=False,
    checkpoint_keep=2,
)


@pytest.fixture(scope="module")
def learner():
    return sac.make_learner(sac.make_config("isac", **TINY), env=ToyEnv(time_limit=5))


@pytest.fixture(scope="module")
def full_run(learner, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("full"))
    return out, training.run_experiment(learner, out, verbose=False)


def test_run_writes_results_and_checkpoints(full_run):
    out, summary = full_run
    assert summary["finished"]
    runs = load_results(os.path.join(out, "metrics.json"))["toy"]["toy-5"]["isac"]
    assert sorted(runs) == ["seed_0", "seed_1"]
    assert len([k for k in runs["seed_0"] if k.startswith("step_")]) == 4
    assert runs["seed_0"]["step_3"]["step_count"] == 4 * 2 * 8 * 4
    assert len(runs["seed_1"]["absolute_metrics"]["episode_return"]) == 80
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["config_class"] == "ISACConfig"
    assert cfg["derived"]["updates_per_eval"] == 2 and cfg["derived"]["explore_updates"] == 2
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["3", "4"]
    assert len(os.listdir(os.path.join(out, "best"))) == 1
    state = summary["state"]
    # Every seed's buffer holds all 256 transitions of its run; the updates ran.
    assert np.array_equal(np.asarray(state.buffer.total_added), [256, 256])
    assert np.array_equal(np.asarray(state.update_step), [8, 8])


def test_resume_equals_uninterrupted(learner, full_run, tmp_path):
    _, summary = full_run
    out = str(tmp_path / "resumed")
    first = training.run_experiment(learner, out, stop_after=2, verbose=False)
    assert not first["finished"]
    second = training.run_experiment(learner, out, resume=True, verbose=False)
    assert second["finished"]
    for a, b in zip(leaves(summary["state"]), leaves(second["state"]), strict=True):
        assert np.array_equal(a, b)
    assert_resumed_results_equal(full_run[0], out, "isac")


def test_seed_keys_do_not_depend_on_batch(learner, full_run):
    """Seed 1 alone starts exactly as seed_1 of the two-seed run; the seeds then differ."""
    keys = training.seed_keys(0, 2)
    both = jax.jit(jax.vmap(learner.init))(keys)
    alone = jax.jit(learner.init)(jax.random.PRNGKey(1))
    for a, b in zip(leaves(alone), leaves(both), strict=True):
        assert np.array_equal(a, b[1])
    params = full_run[1]["state"].params
    assert any(not np.allclose(x[0], x[1]) for x in leaves(params))


@pytest.mark.slow
def test_same_config_reproduces_run_bitwise(learner, full_run, tmp_path):
    """A second run of the same config through the runner reproduces the first bitwise
    (the fast in-process version is tests/test_sac.py::test_same_seed_identical...)."""
    again = training.run_experiment(learner, str(tmp_path / "again"), verbose=False)
    for a, b in zip(leaves(full_run[1]["state"]), leaves(again["state"]), strict=True):
        assert np.array_equal(a, b)


_MULTI_DEVICE = textwrap.dedent(
    """
    import sys, numpy as np, jax
    sys.path.insert(0, {tests!r})
    from toy_env import ToyEnv
    from continuous_toy_env import ContinuousToyEnv
    from jaxmarl_envs.algorithms import sac, training
    assert len(jax.devices()) == 4, jax.devices()
    env = ToyEnv(time_limit=5) if {discrete!r} else ContinuousToyEnv(time_limit=5)
    leaves = {{}}
    for n in (4, 1):
        cfg = sac.make_config({name!r}, total_steps=2 * 2 * 8 * 4, num_envs=8, rollout_length=4,
                              grad_steps=2, batch_size=32, buffer_size=256,
                              learning_starts=32, num_evaluations=2, hidden_sizes=(16,),
                              eval_episodes=4, num_seeds=2, num_devices=n, checkpoint_keep=0,
                              gif=False, **{extra!r})
        learner = sac.make_learner(cfg, env=env)
        out = training.run_experiment(learner, {out!r} + str(n), verbose=False)
        state = out["state"]
        if n == 4:
            shard = state.runner.env_state.key.sharding
            assert len(shard.device_set) == 4, shard
            assert state.runner.env_state.key.addressable_shards[0].data.shape[1] == 2
        leaves[n] = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
    diffs = [float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
             for a, b in zip(leaves[4], leaves[1]) if a.size]
    print("MAXDIFF", max(diffs))
    assert max(diffs) < 1e-4, max(diffs)
    """
)


def _multi_device(tmp_path, name: str, discrete: bool, **extra) -> None:
    run_on_four_cpu_devices(
        _MULTI_DEVICE, out=str(tmp_path / "run"), name=name, discrete=discrete, extra=extra
    )


def test_multi_device_equals_single_device_masac_discrete(tmp_path):
    # The global state in the critic: its replay columns are sharded with the rest.
    _multi_device(tmp_path, "masac", discrete=True, critic_input="global")


@pytest.mark.slow
def test_multi_device_equals_single_device_isac_continuous(tmp_path):
    _multi_device(tmp_path, "isac", discrete=False)


@pytest.mark.slow
def test_masac_continuous_resume_equals_uninterrupted(tmp_path):
    cfg = sac.make_config("masac", **{**TINY, "env_id": "continuous-toy-5"})
    learner = sac.make_learner(cfg, env=ContinuousToyEnv(time_limit=5))
    full = training.run_experiment(learner, str(tmp_path / "full"), verbose=False)
    out = str(tmp_path / "resumed")
    training.run_experiment(learner, out, stop_after=1, verbose=False)
    resumed = training.run_experiment(learner, out, resume=True, verbose=False)
    assert resumed["finished"]
    for a, b in zip(leaves(full["state"]), leaves(resumed["state"]), strict=True):
        assert np.array_equal(a, b)
