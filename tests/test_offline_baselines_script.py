"""The offline baselines script's table (examples/offline/run_offline_baselines.py): IQM over
runs with stratified-bootstrap CIs per environment and tier, behaviour first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "offline" / "run_offline_baselines.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("run_offline_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(values):
    return {
        f"seed_{i}": {
            "step_0": {"step_count": 0, "episode_return": [v]},
            "absolute_metrics": {"episode_return": [v, v]},
        }
        for i, v in enumerate(values)
    }


def test_table_is_iqm_with_bootstrap_interval_per_task(script, tmp_path):
    bc_good = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    results = {
        "lbf": {
            "lbf-x/good": {"bc": _runs(bc_good), "behaviour": _runs([4.0] * 8)},
            "lbf-x/poor": {"bc": _runs([0.5] * 8), "behaviour": _runs([1.0] * 8)},
        },
        "mpe": {"mpe-y/good": {"omar": _runs([-3.0, -1.0, -2.0, -4.0])}},
    }
    rows = script.baselines_table(results, reps=2000)
    assert [(r["task"], r["algorithm"]) for r in rows] == [
        ("lbf-x/good", "behaviour"),
        ("lbf-x/good", "bc"),
        ("lbf-x/poor", "behaviour"),
        ("lbf-x/poor", "bc"),
        ("mpe-y/good", "omar"),
    ]
    bc = rows[1]
    # IQM of 1..8: the mean of the middle half (3, 4, 5, 6).
    assert bc["iqm"] == pytest.approx(4.5)
    assert bc["runs"] == 8
    assert bc["lower"] < bc["iqm"] < bc["upper"]
    assert 1.0 <= bc["lower"] and bc["upper"] <= 8.0
    assert rows[0]["iqm"] == rows[0]["lower"] == rows[0]["upper"] == 4.0
    assert rows[4]["iqm"] == pytest.approx(np.mean([-3.0, -2.0]))

    csv_path, md_path = script.write_table(rows, tmp_path)
    md = md_path.read_text().splitlines()
    assert md[0] == "| task | behaviour | bc | omar |"
    assert md[2].startswith("| lbf-x/good | 4 [4, 4] | 4.5 [")
    assert md[4].startswith("| mpe-y/good | - | - | -2.5 [")
    assert len(csv_path.read_text().splitlines()) == 1 + len(rows)


def test_overrides_need_name_key_value(script):
    pairs = ["mpe-a:hidden_sizes=64,64", "mpe-a:lr=1e-3"]
    assert script._overrides(pairs, "--env-set", "ENV") == {
        "mpe-a": ["hidden_sizes=64,64", "lr=1e-3"]
    }
    with pytest.raises(SystemExit, match="--algo-set expects ALGO:KEY=VALUE"):
        script._overrides(["hidden_sizes=64"], "--algo-set", "ALGO")


def test_env_set_for_an_environment_not_run_is_refused(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--env", "lbf-8x8-2p-2f-coop", "--env-set", "rware-tiny-2ag:lr=1e-3"])
    assert "not in --env: rware-tiny-2ag" in capsys.readouterr().err


def test_algo_set_for_an_unknown_algorithm_is_refused(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--env", "lbf-8x8-2p-2f-coop", "--algo-set", "cql:cql_alpha=2"])
    assert "--algo-set names unknown algorithms: cql" in capsys.readouterr().err


def test_behaviour_runs_are_shuffled_groups_of_every_episode(script, monkeypatch):
    from types import SimpleNamespace

    from jaxmarl_envs.algorithms import datasets

    returns = np.arange(20.0)  # a replay tier: returns rise in storage (training) order
    monkeypatch.setattr(
        datasets, "episode_table", lambda v: SimpleNamespace(episode_return=returns)
    )
    runs = script.behaviour_runs(Path("unused"), 4)
    groups = [runs[f"seed_{i}"]["absolute_metrics"]["episode_return"] for i in range(4)]
    assert [len(g) for g in groups] == [5, 5, 5, 5]
    assert sorted(sum(groups, [])) == list(returns)
    means = [np.mean(g) for g in groups]
    assert max(means) - min(means) < 10.0  # storage order would give means 2, 7, 12, 17
    assert runs == script.behaviour_runs(Path("unused"), 4)  # fixed seed
