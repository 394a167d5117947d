"""Training runner: resume equals uninterrupted, multi-device equals one device, CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from toy_env import ToyEnv
from training_checks import assert_resumed_results_equal, leaves, run_on_four_cpu_devices

from jaxmarl_envs.algorithms import ppo, training
from jaxmarl_envs.algorithms.evaluation.results import load_results

TINY = dict(
    env_id="toy-5",
    total_steps=4 * 2 * 16 * 8 - 100,  # 924: rounded up to 4 intervals x 2 updates x 128 steps
    num_envs=8,
    rollout_length=16,
    num_evaluations=4,
    hidden_sizes=(16,),
    lr=3e-3,
    eval_episodes=8,
    num_seeds=2,
    gif=False,
    checkpoint_keep=2,
)


@pytest.fixture(scope="module")
def learner():
    return ppo.make_learner(ppo.make_config("ippo", **TINY), env=ToyEnv(time_limit=5))


@pytest.fixture(scope="module")
def full_run(learner, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("full"))
    return out, training.run_experiment(learner, out, verbose=False)


def test_run_writes_results_and_checkpoints(full_run):
    out, summary = full_run
    assert summary["finished"]
    data = load_results(os.path.join(out, "metrics.json"))
    runs = data["toy"]["toy-5"]["ippo"]
    assert sorted(runs) == ["seed_0", "seed_1"]
    assert len([k for k in runs["seed_0"] if k.startswith("step_")]) == 4
    assert len(runs["seed_0"]["step_3"]["episode_return"]) == 8
    assert runs["seed_0"]["step_3"]["step_count"] == 4 * 2 * 16 * 8
    assert len(runs["seed_1"]["absolute_metrics"]["episode_return"]) == 80
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["config"]["num_envs"] == 8 and cfg["derived"]["updates_per_eval"] == 2
    # The requested budget and the (larger) one trained are both recorded.
    assert cfg["total_steps_requested"] == cfg["config"]["total_steps"] == 924
    assert cfg["total_steps"] == summary["total_steps_per_seed"] == 1024
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["3", "4"]
    assert len(os.listdir(os.path.join(out, "best"))) == 1


def test_seed_keys_do_not_depend_on_batch(learner, full_run):
    """Run seed_1 of a 2-seed batch starts from exactly the state PRNGKey(1) gives alone."""
    _, summary = full_run
    state = summary["state"]
    keys = training.seed_keys(0, 2)
    assert np.array_equal(keys[1], jax.random.PRNGKey(1))
    init = jax.jit(learner.init)(keys[1])
    assert all(
        np.array_equal(a, b[1])
        for a, b in zip(
            leaves(init.runner), leaves(jax.jit(jax.vmap(learner.init))(keys).runner), strict=True
        )
    )
    assert state.update_step.shape == (2,)


def test_resume_equals_uninterrupted(learner, full_run, tmp_path, capsys):
    _, summary = full_run
    out = str(tmp_path / "resumed")
    first = training.run_experiment(learner, out, stop_after=2, verbose=True)
    assert not first["finished"]
    lines = capsys.readouterr().out.splitlines()
    # The header states the budget once; a line announces the compile, the next its duration.
    assert sum("total steps:" in line for line in lines) == 1
    assert "total steps: requested 924 -> training 1,024 (4 evaluations x 2 updates" in lines[0]
    assert lines[1].startswith("compiling the training step")
    assert lines[2].startswith("compiled in ") and lines[2].endswith(" s")
    partial = load_results(os.path.join(out, "metrics.json"), False)
    assert len(partial["toy"]["toy-5"]["ippo"]["seed_0"]) == 2 + 1  # 2 steps + absolute
    second = training.run_experiment(learner, out, resume=True, verbose=False)
    assert second["finished"]
    # Training time adds up over the calls: the second counts the first's up to its checkpoint.
    assert first["train_seconds_total"] == first["train_seconds"] > 0
    assert second["train_seconds_total"] > second["train_seconds"] > 0
    assert second["train_seconds_total"] - second["train_seconds"] <= first["train_seconds"]
    for a, b in zip(leaves(summary["state"]), leaves(second["state"]), strict=True):
        assert np.array_equal(a, b)
    assert_resumed_results_equal(full_run[0], out, "ippo")


_MULTI_DEVICE = textwrap.dedent(
    """
    import sys, numpy as np, jax
    sys.path.insert(0, {tests!r})
    from toy_env import ToyEnv
    from jaxmarl_envs.algorithms import ppo, training
    assert len(jax.devices()) == 4, jax.devices()
    leaves = {{}}
    for n in (4, 1):
        cfg = ppo.make_config("mappo", total_steps=2 * 8 * 8, num_envs=8, rollout_length=8,
                              num_evaluations=2, hidden_sizes=(16,), eval_episodes=4,
                              num_seeds=2, num_devices=n, checkpoint_keep=0, gif=False)
        learner = ppo.make_learner(cfg, env=ToyEnv(time_limit=5))
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


@pytest.mark.parametrize(
    "total, per_update, evaluations, expected",
    [
        # README: 6e5 steps, 64 envs x 128: 74 updates needed -> 19 intervals of 4.
        (600_000, 8192, 20, (76, 4, 19, 622_592)),
        (100_000, 2048, 20, (51, 3, 17, 104_448)),  # 16 envs x 128: 49 needed
        (1024, 128, 4, (8, 2, 4, 1024)),  # exact budgets are kept
        (1, 128, 1, (1, 1, 1, 128)),
    ],
)
def test_loop_sizes_train_at_least_the_budget(total, per_update, evaluations, expected):
    sizes = training.loop_sizes(total, per_update, evaluations)
    assert (sizes.num_updates, sizes.updates_per_eval, sizes.num_evaluations) == expected[:3]
    assert sizes.total_steps == expected[3] >= total


def test_loop_sizes_overshoot_less_than_one_interval():
    for total in range(1000, 60_000, 997):
        for per_update in (32, 128, 2048):
            for evaluations in (1, 3, 20):
                if -(-total // per_update) < evaluations:
                    with pytest.raises(ValueError, match="fewer than num_evaluations"):
                        training.loop_sizes(total, per_update, evaluations)
                    continue
                s = training.loop_sizes(total, per_update, evaluations)
                assert s.num_updates == s.updates_per_eval * s.num_evaluations
                assert s.total_steps == s.num_updates * per_update
                assert 0 <= s.total_steps - total < s.updates_per_eval * per_update
                assert 1 <= s.num_evaluations <= evaluations


def test_multi_device_equals_single_device(tmp_path):
    run_on_four_cpu_devices(_MULTI_DEVICE, out=str(tmp_path / "run"))


def test_cli_train_and_evaluate(tmp_path, capsys):
    from jaxmarl_envs.algorithms import cli

    out = str(tmp_path / "res")
    argv = [
        "train",
        "ippo",
        "--env",
        "lbf-8x8-2p-2f-coop",
        "--env-kwargs",
        '{"time_limit": 10}',
        "--total-steps",
        "1.28e3",
        "--num-envs",
        "8",
        "--rollout-length",
        "16",
        "--num-evaluations",
        "2",
        "--hidden-sizes",
        "16",
        "--eval-episodes",
        "4",
        "--seeds",
        "1",
        "--tensorboard",
        "--out",
        out,
        "--run-name",
        "cli",
        "--quiet",
    ]
    assert cli.main(argv) == 0
    run = os.path.join(out, "cli")
    cfg = json.load(open(os.path.join(run, "config.json")))
    assert cfg["config"]["total_steps"] == 1280 and cfg["config"]["env_kwargs"]["time_limit"] == 10
    data = load_results(os.path.join(run, "metrics.json"))
    assert "seed_0" in data["lbf"]["lbf-8x8-2p-2f-coop"]["ippo"]
    assert os.path.getsize(os.path.join(run, "episode.gif")) > 0
    assert os.listdir(os.path.join(run, "checkpoints"))
    assert any(f.startswith("events") for f in os.listdir(os.path.join(run, "tensorboard")))
    plots = os.path.join(run, "plots")
    assert os.path.getsize(os.path.join(plots, "sample_efficiency.png")) > 0
    assert os.path.getsize(os.path.join(plots, "aggregate_scores.csv")) > 0
    gif = str(tmp_path / "eval.gif")
    res = str(tmp_path / "eval.json")
    capsys.readouterr()
    assert cli.main(["evaluate", run, "--episodes", "6", "--gif", gif, "--json", res]) == 0
    printed = capsys.readouterr().out
    assert "6 sampled episodes" in printed and os.path.getsize(gif) > 0
    assert len(json.load(open(res))["episode_return"]) == 6
    step = sorted(os.listdir(os.path.join(run, "checkpoints")))[-1]
    ckpt = os.path.join(run, "checkpoints", step)
    assert cli.main(["evaluate", ckpt, "--episodes", "3", "--greedy"]) == 0


def test_cli_config_errors(tmp_path, capsys):
    from jaxmarl_envs.algorithms import cli

    argv = [
        "train",
        "ippo",
        "--env",
        "lbf-8x8-2p-2f-coop",
        "--num-envs",
        "3",
        "--rollout-length",
        "5",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 2
    assert "divisible by num_minibatches" in capsys.readouterr().err
    assert cli.main(["train", "ippo", "--env", "no-such-env", "--out", str(tmp_path)]) == 2
    assert "unknown environment id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "ippo", "--total-steps", "1.5"])
    assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2


def test_cli_parses_overrides():
    from jaxmarl_envs.algorithms import cli, train_cli

    parser = cli.build_parser()
    flags = "--env rware-tiny-4ag --total-steps 2e6 --num-envs 64 --seeds 3".split()
    flags += ["--no-share-params", "--set", "lr=1e-3"]
    args = parser.parse_args(["train", "mappo", *flags, "--recurrent"])
    cfg = train_cli.build_config(args)
    assert isinstance(cfg, ppo.MAPPOConfig) and cfg.centralised_critic
    assert (cfg.total_steps, cfg.num_envs, cfg.num_seeds) == (2_000_000, 64, 3)
    assert cfg.network == "gru" and cfg.algorithm == "rec_mappo"
    assert cfg.share_params is False and cfg.lr == 1e-3 and cfg.gamma == 0.99
    # `mappo --recurrent` is rec_mappo: its preset too (no critic LayerNorm), unless asked for.
    assert cfg == train_cli.build_config(parser.parse_args(["train", "rec_mappo", *flags]))
    assert not cfg.critic_layer_norm
    argv = ["train", "mappo", "--env", "rware-tiny-4ag", "--recurrent", "--critic-layer-norm"]
    assert train_cli.build_config(parser.parse_args(argv)).critic_layer_norm
    assert train_cli.build_config(parser.parse_args(argv[:4])).critic_layer_norm


@pytest.mark.slow
def test_multi_seed_training_does_not_deadlock(tmp_path):
    """Regression: this configuration hung forever inside XLA's CPU runtime (all threads
    idle) until `jaxmarl_envs._xla_flags` disabled the concurrency-optimised scheduler."""

    argv = [
        sys.executable,
        "-m",
        "jaxmarl_envs.algorithms.cli",
        "train",
        "mappo",
        "--env",
        "rware-tiny-2ag",
        "--total-steps",
        "2e5",
        "--num-envs",
        "16",
        "--seeds",
        "2",
        "--num-evaluations",
        "1",
        "--eval-episodes",
        "4",
        "--out",
        str(tmp_path),
        "--no-gif",
        "--no-plots",
        "--checkpoint-keep",
        "0",
        "--quiet",
    ]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_seeds_are_initialised_without_the_batched_qr_deadlock():
    """Regression: `jax.jit(jax.vmap(learner.init))` over 5 seeds of rec_IPPO on
    rware-tiny-4ag hung forever on the 2-core machine (batched LAPACK QRs of the orthogonal
    initialisers, each blocked on tasks for XLA's CPU thread pool that no thread was free to
    run; every thread idle), with `_xla_flags` applied. `networks.init_each` maps over the keys
    instead."""
    code = textwrap.dedent(
        """
        import functools
        import jax
        from jaxmarl_envs.algorithms import networks, ppo, training
        learner = ppo.make_learner(ppo.make_config("rec_ippo", env_id="rware-tiny-4ag"))
        init = jax.jit(functools.partial(networks.init_each, learner.init))
        state = jax.block_until_ready(init(training.seed_keys(0, 5)))
        print(jax.tree_util.tree_leaves(state.params)[0].shape[0])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["5"]


def test_init_each_equals_initialising_each_key_alone():
    from jaxmarl_envs.algorithms import networks

    learner = ppo.make_learner(
        ppo.make_config("rec_mappo", env_id="matrix-climbing", hidden_sizes=(8, 8), gru_size=8)
    )
    keys = training.seed_keys(3, 3)
    stacked = jax.jit(lambda k: networks.init_each(learner.init, k))(keys)
    for i in range(3):
        alone = jax.jit(learner.init)(keys[i])
        for a, b in zip(leaves(stacked), leaves(alone), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b))


def test_cli_lists_and_configures_every_family():
    from jaxmarl_envs.algorithms import cli, q_learning, sac, train_cli

    table = train_cli.algorithm_table()
    assert set(table) == {"ippo", "mappo", "rec_ippo", "rec_mappo"} | {
        "iql",
        "vdn",
        "qmix",
        "isac",
        "masac",
    }
    parser = cli.build_parser()
    args = parser.parse_args(["train", "qmix", "--env", "lbf-8x8-2p-2f-coop", "--tau", "0.05"])
    cfg = train_cli.build_config(args)
    assert isinstance(cfg, q_learning.QMIXConfig) and cfg.mixer == "qmix" and cfg.tau == 0.05
    args = parser.parse_args(["train", "masac", "--grad-steps", "3", "--set", "gamma=0.9"])
    cfg = train_cli.build_config(args)
    assert isinstance(cfg, sac.MASACConfig) and cfg.grad_steps == 3 and cfg.gamma == 0.9
    # Options of one family are not accepted by another.
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "iql", "--clip-eps", "0.1"])
    names = train_cli.config_classes()
    assert {"PPOConfig", "QLearningConfig", "SACConfig", "QMIXConfig", "ISACConfig"} <= set(names)


def test_cli_offpolicy_train_and_evaluate(tmp_path, capsys):
    """`jaxmarl train vdn` on a tiny matrix game, then `jaxmarl evaluate` of its run folder
    (load_policy must find the Q-learning config class and learner)."""
    from jaxmarl_envs.algorithms import cli

    out = str(tmp_path / "res")
    argv = ["train", "vdn", "--env", "matrix-climbing", "--env-kwargs", '{"horizon": 4}']
    argv += ["--total-steps", "256", "--num-envs", "4", "--rollout-length", "4"]
    argv += ["--num-evaluations", "2", "--buffer-size", "64", "--sequence-length", "4"]
    argv += ["--batch-size", "4", "--learning-starts", "16", "--hidden-sizes", "8"]
    argv += ["--gru-size", "8", "--eval-episodes", "2", "--out", out, "--run-name", "vdn"]
    argv += ["--quiet", "--no-plots"]
    assert cli.main(argv) == 0
    run = os.path.join(out, "vdn")
    assert json.load(open(os.path.join(run, "config.json")))["config_class"] == "VDNConfig"
    assert (
        "seed_0"
        in load_results(os.path.join(run, "metrics.json"))["matrix"]["matrix-climbing"]["vdn"]
    )
    capsys.readouterr()
    assert cli.main(["evaluate", run, "--episodes", "3"]) == 0
    assert "vdn on matrix-climbing" in capsys.readouterr().out
