"""`jaxmarl offline`: a light parser, its algorithm table, usage errors (exit 2) and, slow, an
end-to-end record -> offline train -> results run from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_offline_data import toy_dataset

from jaxmarl_envs.algorithms import cli
from jaxmarl_envs.algorithms.offline import cli as offline_cli

_LIGHT = """
import contextlib, io, json, sys
from jaxmarl_envs.algorithms import cli
out = {}
for argv in (["offline", "--help"], ["offline", "iql-cql", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()) as s:
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    out[" ".join(argv)] = {"code": code, "text": s.getvalue()}
heavy = ("jax", "flax", "optax", "orbax", "jaxmarl_envs.algorithms.offline.common")
out["heavy"] = [m for m in heavy if m in sys.modules]
print(json.dumps(out))
"""


def test_offline_help_is_light_and_lists_every_algorithm():
    proc = subprocess.run(
        [sys.executable, "-c", _LIGHT], capture_output=True, text=True, timeout=300, check=True
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["offline --help"]["code"] == 0
    for name in ("bc", "iql-cql", "iql-bcq", "maicq", "omar", "matd3-bc"):
        assert name in out["offline --help"]["text"]
    text = out["offline iql-cql --help"]["text"]
    assert "--dataset" in text and "--total-steps" in text and "--set" in text


def test_light_table_matches_the_modules():
    for name, (module_name, _) in offline_cli.ALGORITHMS.items():
        module = offline_cli.module_for(name)
        assert module.__name__.endswith(f".offline.{module_name}")
        assert name in module.ALGORITHMS
        assert module.ALGORITHMS[name][0]().algorithm == name
    assert len(offline_cli.ALGORITHMS) == 6


def test_usage_errors_exit_2_with_a_message(tmp_path, capsys):
    assert cli.main(["offline", "bc", "--env", "rware-tiny-2ag"]) == 2
    assert "--dataset" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    assert cli.main(["offline", "bc", "--dataset", missing, "--env", "rware-tiny-2ag"]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = toy_dataset(tmp_path / "toy", 0.5, rollouts=1)
    assert cli.main(["offline", "maicq", "--dataset", path, "--env", "rware-tiny-2ag"]) == 2
    err = capsys.readouterr().err
    assert "does not match" in err and "observation" in err
    assert cli.main(["offline", "bc", "--dataset", path, "--env", "no-such-env"]) == 2
    assert "unknown environment" in capsys.readouterr().err
    args = ["offline", "bc", "--dataset", path, "--env", "rware-tiny-2ag", "--set", "lr=-1"]
    assert cli.main(args) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["offline", "bc", "--total-steps", "many"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_record_then_train_offline_from_the_command_line(tmp_path, capsys):
    """A random rware-tiny-2ag dataset recorded by `jaxmarl record`, then `jaxmarl offline
    iql-cql` on it: exit 0, marl-eval results with one entry per evaluation, and the
    offline summary next to them."""
    data = str(tmp_path / "random")
    code = cli.main(
        ["record", "--env", "rware-tiny-2ag", "--policy", "random", "--episodes", "2",
         "--out", data]
    )  # fmt: skip
    assert code == 0
    argv = ["offline", "iql-cql", "--dataset", data, "--env", "rware-tiny-2ag",
            "--total-steps", "40", "--num-evaluations", "2", "--eval-episodes", "2",
            "--batch-size", "32", "--out", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    run = tmp_path / "runs" / "iql-cql_rware-tiny-2ag_s0"
    results = json.loads((run / "metrics.json").read_text())
    entry = results["rware"]["rware-tiny-2ag"]["iql-cql"]["seed_0"]
    assert entry["step_1"]["step_count"] == 40 and "absolute_metrics" in entry
    summary = json.loads((run / "offline.json").read_text())
    assert summary["transitions"] == 2 * 500 and summary["gradient_steps_per_second"] > 0


def test_offline_config_classes_are_known_to_evaluate():
    """`jaxmarl evaluate` / `load_policy` find an offline run's config class by name."""
    from jaxmarl_envs.algorithms import train_cli
    from jaxmarl_envs.algorithms.offline import bc, iql, maicq, matd3_bc, omar

    classes = train_cli.config_classes()
    for module in (bc, iql, maicq, matd3_bc, omar):
        for cls, _ in module.ALGORITHMS.values():
            assert classes[cls.__name__] == (module, cls)
    assert "MAPPOConfig" in classes  # the online families are still there
