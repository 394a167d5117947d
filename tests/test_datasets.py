"""Offline datasets: recording (layout, true next observations, reproducibility, resuming,
whole-episode commits), dataset tools, bad input (env mismatch, truncated/corrupted vaults)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.algorithms import cli
from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.algorithms.datasets import (
    DatasetMismatchError,
    check_dataset_matches_env,
    check_integrity,
    episode_table,
    iter_dataset,
    load_dataset,
    record_dataset,
)
from jaxmarl_envs.algorithms.datasets.catalogue import pick_tiers
from jaxmarl_envs.algorithms.datasets.tools import (
    combine_datasets,
    describe_dataset,
    subsample_dataset,
)

ENV = "lbf-8x8-2p-2f-coop"
EPISODES, WAVE = 20, 8  # 3 waves, the last one partly committed


def vault_files_equal(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A random-policy dataset recorded through the command line (epsilon is moot: random)."""
    out = tmp_path_factory.mktemp("rec") / "random"
    argv = ["record", "--env", ENV, "--policy", "random", "--episodes", str(EPISODES)]
    argv += ["--out", str(out), "--seed", "3", "--num-envs", str(WAVE), "--tier", "poor"]
    assert cli.main([*argv, "--quiet"]) == 0
    return out


def test_recorded_layout_next_observations_and_metadata(recorded):
    data = load_dataset(recorded)
    view, nxt = data["observation"]["agents_view"], data["next_observation"]["agents_view"]
    first, last, ids = data["first"], data["last"], data["episode_id"]
    steps = len(last)
    assert view.shape == (steps, 2, 12) and data["action"].shape == (steps, 2)
    assert data["next_action_mask"].shape == data["action_mask"].shape == (steps, 2, 6)
    assert data["next_global_state"].shape == data["global_state"].shape
    # Whole episodes, numbered densely; `first` exactly after each `last`.
    assert bool(last[-1]) and int(last.sum()) == EPISODES
    assert bool(first[0]) and bool(np.array_equal(first[1:], last[:-1]))
    assert bool(np.array_equal(np.cumsum(first) - 1, ids))
    # Inside an episode the next observation is the following step's observation.
    inner = ~last[:-1]
    assert bool(np.array_equal(nxt[:-1][inner], view[1:][inner]))
    # At the end of a truncated episode it is the true final observation (step count at the
    # time limit), not the first observation of a reset.
    count = data["next_observation"]["step_count"][:, 0]
    trunc = last & data["truncated"].all(-1)
    assert bool(trunc.any()) and bool(np.all(count[trunc] == jaxmarl_envs.make(ENV).time_limit))
    assert bool(np.array_equal(data["discount"] == 0, data["terminated"]))
    meta = Vault(recorded).metadata
    table = episode_table(recorded)
    assert meta["returns"]["num_episodes"] == EPISODES == len(table)
    assert meta["returns"]["mean"] == pytest.approx(table.episode_return.mean())
    assert meta["behaviour_return"] == meta["returns"]["mean"]
    assert meta["env_id"] == ENV and meta["tier"] == "poor" and meta["num_agents"] == 2
    assert meta["recording"]["num_envs"] == WAVE and meta["policy"]["kind"] == "random"
    chunks = list(iter_dataset(recorded, 37, fields=["reward", "last"]))
    assert sum(len(c["last"]) for c in chunks) == steps
    assert bool(np.array_equal(np.concatenate([c["reward"] for c in chunks]), data["reward"]))


def test_same_command_gives_byte_identical_vaults_and_resumes(recorded, tmp_path):
    argv = ["record", "--env", ENV, "--policy", "random", "--out"]
    opts = ["--seed", "3", "--num-envs", str(WAVE), "--tier", "poor", "--quiet"]
    again = tmp_path / "again"
    assert cli.main([*argv, str(again), "--episodes", str(EPISODES), *opts]) == 0
    assert vault_files_equal(recorded, again)
    # An interrupted recording (fewer episodes so far) continues to the same bytes.
    part = tmp_path / "part"
    assert cli.main([*argv, str(part), "--episodes", "5", *opts]) == 0
    assert len(episode_table(part)) == 5
    assert cli.main([*argv, str(part), "--episodes", str(EPISODES), *opts]) == 0
    assert vault_files_equal(recorded, part)
    # Other settings on an existing vault are refused, naming the setting.
    opts[1] = "4"
    assert cli.main([*argv, str(part), "--episodes", str(EPISODES), *opts]) == 2


def test_crash_mid_commit_leaves_only_whole_episodes(recorded, tmp_path, monkeypatch):
    out = tmp_path / "crash"
    calls = {"n": 0}
    original = Vault._write_leaf

    def failing(self, leaf, offset, data):
        calls["n"] += 1
        if calls["n"] == len(self.leaves) + 3:  # part-way through the second wave's append
            raise OSError("disk full (simulated)")
        return original(self, leaf, offset, data)

    monkeypatch.setattr(Vault, "_write_leaf", failing)
    with pytest.raises(OSError, match="simulated"):
        record_dataset(ENV, "random", EPISODES, out, seed=3, tier="poor", num_envs=WAVE)
    monkeypatch.setattr(Vault, "_write_leaf", original)
    info = check_integrity(out)
    assert info.ok and info.num_episodes == WAVE  # the first wave only, no partial episode
    assert len(load_dataset(out)["last"]) == info.usable_steps
    record_dataset(ENV, "random", EPISODES, out, seed=3, tier="poor", num_envs=WAVE)
    # The resumed vault equals the uninterrupted one, except for its metadata (written once
    # with the settings, and again at the end, identically).
    assert vault_files_equal(recorded, out)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_and_corrupted_vaults_read_up_to_the_last_complete_episode(recorded, tmp_path):
    table = episode_table(recorded)
    vault = Vault(recorded)
    # 1. A leaf file cut in the middle of episode 12 (e.g. an interrupted copy).
    cut = _copy(recorded, tmp_path / "cut")
    leaf = vault.leaves[0]
    middle = int(table.start[12]) + 3
    os.truncate(cut / leaf.file, middle * vault._step_bytes(leaf))
    info = check_integrity(cut)
    assert not info.ok and "truncated" in info.problems[0]
    assert info.usable_steps == int(table.stop[11]) and info.last_episode_id == 11
    with pytest.warns(UserWarning, match="last episode id 11"):
        data = load_dataset(cut)
    assert len(data["last"]) == int(table.stop[11]) and int(data["last"].sum()) == 12
    # 2. Corrupted flags: a `first` flag flipped inside episode 5.
    bad = _copy(recorded, tmp_path / "bad")
    first_leaf = next(x for x in vault.leaves if x.name == "first")
    flags = np.fromfile(bad / first_leaf.file, np.bool_)
    flags[int(table.start[5]) + 2] = True
    flags.tofile(bad / first_leaf.file)
    info = check_integrity(bad)
    assert "inconsistent episode flags" in info.problems[0]
    assert info.num_episodes == 5 and info.usable_steps == int(table.stop[4])
    # 3. A lost commit file: the steps in the files are used, and said so.
    lost = _copy(recorded, tmp_path / "lost")
    (lost / "commit.json").write_text("{not json")
    info = check_integrity(lost)
    assert "commit.json" in info.problems[0] and info.num_episodes == EPISODES
    # The command line reports the last complete episode, exit 1.
    assert cli.main(["dataset", "check", str(cut), "--env", ENV]) == 1


def test_dataset_env_mismatch_is_refused_naming_it(recorded, capsys):
    check_dataset_matches_env(recorded, jaxmarl_envs.make(ENV))
    with pytest.raises(DatasetMismatchError, match=r"number of agents: dataset 2, environment 4"):
        check_dataset_matches_env(recorded, jaxmarl_envs.make("rware-tiny-4ag"))
    with pytest.raises(ValueError, match="observation shape .* dataset \\(2, 12\\)"):
        check_dataset_matches_env(recorded, jaxmarl_envs.make("lbf-8x8-2p-3f-coop"))
    with pytest.raises(ValueError, match="action type: dataset discrete, environment continuous"):
        check_dataset_matches_env(recorded, jaxmarl_envs.make("mpe-simple_spread-continuous"))
    assert cli.main(["dataset", "check", str(recorded), "--env", "rware-tiny-2ag"]) == 2
    assert "observation shape" in capsys.readouterr().err


def test_dataset_tools(recorded, tmp_path, capsys):
    assert cli.main(["dataset", "list", str(recorded.parent), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["episodes"] for r in rows] == [EPISODES] and rows[0]["tier"] == "poor"
    assert cli.main(["dataset", "info", str(recorded)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == EPISODES and info["fields"]["episode_id"] == [[], "int32"]
    returns = episode_table(recorded).episode_return
    # describe: statistics per tier equal numpy's, coverage, and the two plots.
    plots = tmp_path / "plots"
    argv = ["dataset", "describe", str(recorded), "--plots", str(plots), "--json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    stats = out["returns"]["poor"]
    assert stats["count"] == EPISODES and stats["mean"] == pytest.approx(returns.mean())
    assert stats["p75"] == pytest.approx(np.percentile(returns, 75))
    cov = out["coverage"]
    assert 0 < cov["distinct_observations"] <= cov["samples_agent_steps"]
    assert all(0.9 < e <= 1.0 for e in cov["action_entropy_normalised"])  # random actions
    assert all(os.path.getsize(p) > 0 for p in out["plots"]) and len(out["plots"]) == 2
    # subsample by count (random, order kept) and by return percentile.
    sub = subsample_dataset(recorded, tmp_path / "sub", episodes=7, seed=0)
    assert sub["episodes"] == 7 == len(episode_table(tmp_path / "sub"))
    assert check_integrity(tmp_path / "sub").ok
    top = tmp_path / "top"
    assert (
        cli.main(
            ["dataset", "subsample", str(recorded), "--out", str(top)]
            + ["--percentile", "50", "100"]
        )
        == 0
    )
    kept = episode_table(top).episode_return
    assert kept.size >= EPISODES // 2 - 1 and bool(np.all(kept >= np.percentile(returns, 50)))
    # combine: a tier label per episode, returns kept per tier.
    both = tmp_path / "both"
    argv = ["dataset", "combine", str(recorded), str(tmp_path / "sub"), "--out", str(both)]
    assert cli.main([*argv, "--tiers", "poor,subset"]) == 0
    table = episode_table(both)
    assert Vault(both).metadata["tier_names"] == ["poor", "subset"]
    assert bool(np.array_equal(np.bincount(table.tier), [EPISODES, 7]))
    assert bool(np.allclose(table.episode_return[:EPISODES], returns))
    out = describe_dataset(both, coverage=False)
    assert out["returns"]["subset"]["count"] == 7
    with pytest.raises(ValueError, match="already exists"):
        combine_datasets([recorded], both)


def test_record_and_dataset_usage_errors(tmp_path, capsys):
    out = str(tmp_path / "x")
    assert cli.main(["record", "--policy", "random", "--episodes", "3", "--out", out]) == 2
    assert "--env is required" in capsys.readouterr().err
    argv = ["record", "--env", ENV, "--policy", "random", "--out", out]
    assert cli.main([*argv, "--episodes", "0"]) == 2
    assert cli.main([*argv, "--episodes", "2", "--epsilon", "1.5"]) == 2
    assert cli.main([*argv, "--episodes", "2", "--tier", "replay"]) == 2
    assert "replay tier needs a training run" in capsys.readouterr().err
    assert (
        cli.main(
            ["record", "--env", ENV, "--policy", str(tmp_path), "--episodes", "2", "--out", out]
        )
        == 2
    )
    assert cli.main(["dataset", "info", str(tmp_path)]) == 2
    assert not os.path.exists(out)


def test_record_help_imports_no_jax_tools():
    code = (
        "import sys, io, contextlib\n"
        "from jaxmarl_envs.algorithms import cli\n"
        "for argv in (['record', '--help'], ['dataset', 'describe', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: cli.main(argv)\n"
        "        except SystemExit: pass\n"
        "mods = ['jaxmarl_envs.algorithms.datasets.record',"
        " 'jaxmarl_envs.algorithms.datasets.tools', 'matplotlib', 'flashbax', 'tensorstore']\n"
        "print([m for m in mods if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_pick_tiers_follows_the_normalised_return():
    ckpts = [(1, 10, 0.0), (2, 20, 0.12), (3, 30, 0.3), (4, 40, 0.55), (5, 50, 0.9), (6, 60, 1.0)]
    assert pick_tiers(ckpts) == {"good": 6, "medium": 4, "poor": 2}
    # A dip after the peak: good is still the best checkpoint, poor is trained before medium.
    ckpts = [(1, 10, 0.1), (2, 20, 0.2), (3, 30, 2.0), (4, 40, 1.1), (5, 50, 0.3)]
    tiers = pick_tiers(ckpts)
    assert tiers["good"] == 3 and tiers["medium"] == 4 and tiers["poor"] in (1, 2)


def test_load_dataset_warns_nothing_on_a_healthy_vault(recorded):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(recorded, fields=["reward"])
    with pytest.raises(ValueError, match="not in the dataset"):
        load_dataset(recorded, fields=["rewards"])
