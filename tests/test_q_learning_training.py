"""Q-learning through the shared runner: results, bitwise resume, seeds, several devices."""

from __future__ import annotations

import os
import textwrap

import jax
import numpy as np
import pytest
from toy_env import ToyEnv
from training_checks import assert_resumed_results_equal, leaves, run_on_four_cpu_devices

from jaxmarl_envs.algorithms import q_learning as ql
from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.evaluation.results import load_results

TINY = dict(
    env_id="toy-5",
    total_steps=4 * 3 * 8 * 4,
    num_envs=8,
    rollout_length=4,
    num_evaluations=4,
    hidden_sizes=(16,),
    gru_size=16,
    sequence_length=4,
    batch_size=8,
    buffer_size=8 * 32,
    learning_starts=32,
    lr=3e-3,
    gamma=0.5,
    eps_decay_steps=300,
    mixer_embed_dim=8,
    mixer_hypernet_hidden=16,
    eval_episodes=8,
    num_seeds=2,
    gif=False,
    checkpoint_keep=2,
)


@pytest.mark.parametrize("name", [pytest.param("qmix", marks=pytest.mark.slow), "iql"])
def test_resume_equals_uninterrupted(name, tmp_path):
    """QMIX (mixer parameters, global state) and IQL (no mixer parameters) both resume from
    an orbax checkpoint to a state bitwise equal to an uninterrupted run's."""
    learner = ql.make_learner(ql.make_config(name, **TINY), env=ToyEnv(time_limit=5))
    full_dir = str(tmp_path / "full")
    full = training.run_experiment(learner, full_dir, verbose=False)
    assert full["finished"]
    state = full["state"]
    assert state.update_step.shape == (2,) and np.all(np.asarray(state.grad_steps) > 0)
    data = load_results(os.path.join(full_dir, "metrics.json"))
    runs = data["toy"]["toy-5"][name]
    assert sorted(runs) == ["seed_0", "seed_1"]
    assert runs["seed_0"]["step_3"]["step_count"] == TINY["total_steps"]
    assert len(runs["seed_1"]["absolute_metrics"]["episode_return"]) == 80
    assert sorted(os.listdir(os.path.join(full_dir, "checkpoints"))) == ["3", "4"]
    # The two seeds differ (independent keys), so the runner did not share a constant key.
    assert any(not np.array_equal(x[0], x[1]) for x in leaves(state.params))

    out = str(tmp_path / "resumed")
    first = training.run_experiment(learner, out, stop_after=2, verbose=False)
    assert not first["finished"]
    second = training.run_experiment(learner, out, resume=True, verbose=False)
    assert second["finished"]
    for a, b in zip(leaves(state), leaves(second["state"]), strict=True):
        assert np.array_equal(a, b)
    assert_resumed_results_equal(full_dir, out, name)


def test_seed_in_batch_starts_like_seed_alone():
    """Run seed_1 of a 2-seed batch starts from exactly the state PRNGKey(1) gives alone."""
    learner = ql.make_learner(ql.make_config("qmix", **TINY), env=ToyEnv(time_limit=5))
    keys = training.seed_keys(0, 2)
    assert np.array_equal(keys[1], jax.random.PRNGKey(1))
    alone = jax.jit(learner.init)(keys[1])
    both = jax.jit(jax.vmap(learner.init))(keys)
    for a, b in zip(leaves(alone), leaves(both), strict=True):
        assert np.array_equal(a, b[1])
    assert any(not np.array_equal(x[0], x[1]) for x in leaves(both.params))


_MULTI_DEVICE = textwrap.dedent(
    """
    import sys, numpy as np, jax
    sys.path.insert(0, {tests!r})
    from toy_env import ToyEnv
    from jaxmarl_envs.algorithms import q_learning as ql, training
    assert len(jax.devices()) == 4, jax.devices()
    leaves = {{}}
    for n in (4, 1):
        cfg = ql.make_config("qmix", **{{**{tiny!r}, "num_devices": n, "checkpoint_keep": 0,
                                        "num_evaluations": 2, "total_steps": 2 * 3 * 8 * 4}})
        learner = ql.make_learner(cfg, env=ToyEnv(time_limit=5))
        out = training.run_experiment(learner, {out!r} + str(n), verbose=False)
        state = out["state"]
        if n == 4:
            for leaf in (state.runner.env_state.key, state.buffer.experience["obs"]):
                assert len(leaf.sharding.device_set) == 4, leaf.sharding
                assert leaf.addressable_shards[0].data.shape[1] == 2
        leaves[n] = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
    assert int(np.min(np.asarray(state.grad_steps))) > 0
    diffs = [float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
             for a, b in zip(leaves[4], leaves[1]) if a.size]
    print("MAXDIFF", max(diffs))
    assert max(diffs) < 1e-4, max(diffs)
    """
)


@pytest.mark.slow
def test_multi_device_equals_single_device(tmp_path):
    run_on_four_cpu_devices(_MULTI_DEVICE, tiny=TINY, out=str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("name, threshold", [("iql", 0.9), ("vdn", 0.9), ("qmix", 0.85)])
def test_learns_lbf_8x8_2p_2f_coop(name, threshold):
    """Default IQL, VDN and QMIX (rewards x10, x50 for QMIX, in the targets; 3-step targets;
    QMIX mixes on the state scaled to [0, 1]) on the real task, seed 0, 4e5 steps (about 4
    minutes each on two CPU cores). The issue's threshold, 0.9, holds the absolute metric:
    the best parameters (by the 32-episode evaluations) re-evaluated on 1,280 episodes.
    Measured on this seed: IQL 0.939, VDN 0.988, QMIX 0.936 (standard errors 0.006, 0.003,
    0.006); the 5-seed IQMs of benchmarks/sweeps/q_family_lbf.toml are 0.957, 0.968, 0.960.
    The curve's last three evaluations must also be high: 0.953 (IQL), 0.969 (VDN), 0.880
    (QMIX: 0.08 0.70 0.75 0.84 0.91 0.83 0.89 0.92, held to 0.85). Random play scores about
    0.02. benchmarks/RESULTS.md, "Q-learning family" sections."""
    cfg = ql.make_config(name, env_id="lbf-8x8-2p-2f-coop", total_steps=400_000, num_evaluations=8)
    state, metrics = ql.make_train(cfg)(jax.random.PRNGKey(0))
    curve = np.asarray(metrics["eval"].episode_return).mean(-1)
    assert float(curve[-3:].mean()) > threshold, curve
    evaluate = jax.jit(ql.make_learner(cfg).make_evaluate(1280))
    absolute = np.asarray(evaluate(state.best_agent, jax.random.PRNGKey(99)).episode_return)
    assert float(absolute.mean()) >= 0.9, (float(absolute.mean()), curve)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iql", "vdn", "qmix"])
def test_learns_rware_tiny_2ag(name):
    """IQL, VDN and QMIX with `q_learning.RWARE_SETTINGS`, seed 0, 1M steps (7-10 minutes
    each on two CPU cores next to a niced training run), evaluated eps=0.05-greedy
    (greedy Q policies stall: the same view gives the same action, and two agents can block
    each other for the rest of the episode). Random play scores about 0.05. The issue-19 runs
    (2 seeds vmapped, RESULTS.md "Q family on the warehouse") reached eps-greedy training
    returns of 2.45 / 2.04 (IQL), 2.60 / 1.76 (VDN) and 2.32 / 1.67 (QMIX) at 1M steps; the
    baselines sweep's 500k budget stops before the take-off (QMIX still at random there).
    Measured on this seed, the five evaluations (32 episodes): IQL last two 0.5+ (428 s), VDN
    0 0.06 0.16 2.13 2.69 (444 s), QMIX 0 0.09 0.22 0.66 1.31 (603 s)."""
    cfg = ql.make_config(
        name,
        env_id="rware-tiny-2ag",
        total_steps=1_000_000,
        num_evaluations=5,
        eval_greedy=False,
        **ql.RWARE_SETTINGS,
    )
    _, metrics = ql.make_train(cfg)(jax.random.PRNGKey(0))
    curve = np.asarray(metrics["eval"].episode_return).mean(-1)
    print(name, "eps-greedy evaluations", curve)
    assert float(curve[-2:].mean()) > 0.5, curve
