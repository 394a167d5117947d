"""Recording saved policies: run folders and checkpoints of `jaxmarl train`, greedy/sampled,
epsilon mixtures, the replay tier over every checkpoint, reproducibility; the slow catalogue
test asserts good > medium > poor on lbf-8x8-2p-2f-coop."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs.algorithms import cli
from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.algorithms.datasets import (
    check_integrity,
    episode_table,
    load_dataset,
    record_dataset,
)
from jaxmarl_envs.algorithms.train_cli import load_policy

ENV = "lbf-8x8-2p-2f-coop"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny IPPO run with three checkpoints (one per evaluation)."""
    out = tmp_path_factory.mktemp("train")
    argv = ["train", "ippo", "--env", ENV, "--env-kwargs", '{"time_limit": 12}']
    argv += ["--total-steps", "1536", "--num-envs", "8", "--rollout-length", "16"]
    argv += ["--num-evaluations", "3", "--hidden-sizes", "16", "--eval-episodes", "4"]
    argv += ["--checkpoint-keep", "3", "--out", str(out), "--run-name", "r", "--quiet"]
    assert cli.main([*argv, "--no-plots", "--set", "gif=false"]) == 0
    return out / "r"


def _files_equal(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all(
        filecmp.cmp(a / n, b / n, shallow=False) for n in names
    )


def test_a_moved_folder_of_policy_and_dataset_resumes(run, tmp_path):
    """A catalogue folder (a run and a dataset recorded from it) moved elsewhere continues
    recording from the new paths; another policy is still refused."""
    cat = tmp_path / "cat"
    shutil.copytree(run, cat / "run")
    argv = ["record", "--num-envs", "4", "--tier", "good", "--quiet", "--seed", "1"]
    assert (
        cli.main(
            [*argv, "--policy", str(cat / "run"), "--out", str(cat / "good"), "--episodes", "3"]
        )
        == 0
    )
    moved = tmp_path / "moved"
    shutil.move(str(cat), str(moved))
    whole = ["--policy", str(moved / "run"), "--out", str(moved / "good"), "--episodes", "6"]
    assert cli.main([*argv, *whole]) == 0
    ref = tmp_path / "ref"
    assert cli.main([*argv, "--policy", str(run), "--out", str(ref), "--episodes", "6"]) == 0
    a, b = load_dataset(moved / "good"), load_dataset(ref)
    assert len(episode_table(moved / "good")) == 6
    assert sorted(a) == sorted(b)
    assert all(bool(np.array_equal(a[k], b[k])) for k in a if not isinstance(a[k], dict))
    assert bool(np.array_equal(a["observation"]["agents_view"], b["observation"]["agents_view"]))
    # Same vault, another policy (a checkpoint of the run, not the run folder): refused.
    ckpt = moved / "run" / "checkpoints" / sorted(os.listdir(moved / "run" / "checkpoints"))[0]
    other = ["--policy", str(ckpt), "--out", str(moved / "good"), "--episodes", "8"]
    assert cli.main([*argv, *other]) == 2


def test_record_checkpoints_replay_and_mixtures(run, tmp_path, capsys):
    steps = sorted(int(p) for p in os.listdir(run / "checkpoints"))
    assert len(steps) == 3
    # A run folder (best parameters, the run's own sampled evaluation mode).
    best = tmp_path / "best"
    argv = ["record", "--policy", str(run), "--episodes", "6", "--num-envs", "4", "--quiet"]
    assert cli.main([*argv, "--out", str(best), "--tier", "good"]) == 0
    meta = Vault(best).metadata
    policy = meta["policy"]
    assert policy["kind"] == "checkpoint" and policy["algorithm"] == "ippo"
    assert policy["greedy"] is False and policy["env_kwargs"] == {"time_limit": 12}
    assert meta["env_id"] == ENV and meta["tier"] == "good"
    assert isinstance(policy["checkpoints"][0]["eval_return"], float)
    data = load_dataset(best)
    # The env's own time limit (12, from the run's config) bounds every episode.
    assert int(episode_table(best).length.max()) <= 12 and check_integrity(best).ok
    assert bool(
        np.all(
            data["action_mask"][
                np.arange(len(data["action"]))[:, None], np.arange(2)[None], data["action"]
            ]
        )
    )
    # Same command, same bytes (policy sampling included).
    again = tmp_path / "again"
    assert cli.main([*argv, "--out", str(again), "--tier", "good"]) == 0
    assert _files_equal(best, again)
    # A checkpoint folder, greedy: deterministic given the states, so two seeds differ only
    # through the environment; an epsilon=1 mixture acts uniformly at random.
    ckpt = str(run / "checkpoints" / str(steps[0]))
    g = tmp_path / "greedy"
    assert (
        cli.main(
            ["record", "--policy", ckpt, "--episodes", "8", "--out", str(g), "--greedy", "--quiet"]
        )
        == 0
    )
    assert Vault(g).metadata["policy"]["greedy"] is True
    mix = tmp_path / "mix"
    assert (
        cli.main(
            [
                "record",
                "--policy",
                ckpt,
                "--episodes",
                "8",
                "--out",
                str(mix),
                "--greedy",
                "--epsilon",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    acts = load_dataset(mix)["action"]
    counts = np.bincount(acts.ravel(), minlength=6) / acts.size
    assert counts[:5].min() > 0.1  # uniform over legal actions (5, load, is rarely legal)
    # The greedy actions are the checkpoint's argmax on the recorded observations (+ ids).
    learner, params, _ = load_policy(ckpt)
    d = load_dataset(g)
    view = d["observation"]["agents_view"]
    view = np.concatenate(
        [view, np.broadcast_to(np.eye(2, dtype=view.dtype), (len(view), 2, 2))], -1
    )
    expected, _ = learner.act(
        params,
        learner.initial_hidden(len(view)),
        jnp.asarray(view),
        jnp.asarray(d["action_mask"]),
        jnp.asarray(d["first"]),
        jax.random.PRNGKey(0),
        greedy=True,
    )
    assert bool(np.array_equal(np.asarray(expected), d["action"]))
    assert not np.array_equal(acts, d["action"])
    # Replay: every checkpoint in training order, an equal share of episodes each.
    rep = tmp_path / "replay"
    cmd = ["record", "--policy", str(run), "--tier", "replay", "--num-envs", "4", "--quiet"]
    assert cli.main([*cmd, "--episodes", "9", "--out", str(rep)]) == 0
    entries = Vault(rep).metadata["policy"]["checkpoints"]
    assert [e["steps"] for e in entries] == sorted(e["steps"] for e in entries)
    assert [e["episodes"] for e in entries] == [[0, 3], [3, 6], [6, 9]]
    assert Vault(rep).metadata["policy"]["greedy"] is False
    # A replay recording interrupted after its first wave resumes to the same bytes.
    cut = tmp_path / "replay_cut"
    original = Vault._write_leaf
    calls = {"n": 0}

    def failing(self, leaf, offset, data):
        calls["n"] += 1
        if calls["n"] > len(self.leaves):
            raise OSError("killed (simulated)")
        return original(self, leaf, offset, data)

    Vault._write_leaf = failing
    try:
        with pytest.raises(OSError, match="simulated"):
            record_dataset(None, str(run), 9, cut, tier="replay", num_envs=4)
    finally:
        Vault._write_leaf = original
    assert len(episode_table(cut)) == 4
    assert cli.main([*cmd, "--episodes", "9", "--out", str(cut)]) == 0
    assert _files_equal(rep, cut)
    assert cli.main([*cmd, "--episodes", "12", "--out", str(rep)]) == 2
    assert "cannot change --episodes" in capsys.readouterr().err
    # A policy trained on another environment is refused, naming the difference.
    bad = ["record", "--policy", str(run), "--env", "rware-tiny-2ag", "--episodes", "2"]
    assert cli.main([*bad, "--out", str(tmp_path / "bad")]) == 2
    assert "trained on another environment" in capsys.readouterr().err


@pytest.mark.slow
def test_catalogue_tiers_are_ordered_good_medium_poor(tmp_path):
    """The catalogue command on lbf-8x8-2p-2f-coop (a few minutes on 2 cores)."""
    from jaxmarl_envs.algorithms.datasets.catalogue import make_catalogue

    summary = make_catalogue(ENV, tmp_path, episodes=100, small=True, plots=False)
    means = {t: summary["tiers"][t]["returns"]["mean"] for t in summary["tiers"]}
    assert means["good"] > means["medium"] + 0.1 and means["medium"] > means["poor"] + 0.1
    assert summary["ordered"] is True
    assert means["poor"] < means["replay"] < means["good"]
    table = episode_table(tmp_path / ENV / "all")
    assert bool(np.array_equal(np.bincount(table.tier), [100, 100, 100, 100]))
