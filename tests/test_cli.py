"""The `jaxmarl` command line: light start-up, `list`, exit codes, no prefix abbreviations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import jaxmarl_envs
from jaxmarl_envs.algorithms import cli, train_cli

#: Modules `--help`, usage errors and `list` must not import (the algorithm families).
HEAVY = (
    "optax",
    "orbax",
    "orbax.checkpoint",
    "tensorboardX",
    "matplotlib",
    "jaxmarl_envs.algorithms.ppo",
    "jaxmarl_envs.algorithms.q_learning",
    "jaxmarl_envs.algorithms.sac",
    "jaxmarl_envs.algorithms.training",
    "jaxmarl_envs.algorithms.networks",
    "jaxmarl_envs.algorithms.checkpointing",
)

_LIGHT_CALLS = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from jaxmarl_envs.algorithms import cli

    heavy = {heavy!r}
    out = {{}}
    for argv in {calls!r}:
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                code = cli.main(argv)
            except SystemExit as exit:
                code = exit.code
        out[" ".join(argv)] = {{
            "code": code,
            "heavy": [m for m in heavy if m in sys.modules],
            "text": stream.getvalue(),
        }}
    print(json.dumps(out))
    """
)


def _run_light(calls: list[list[str]]) -> dict:
    """Runs `cli.main(argv)` for each argv in one fresh interpreter; per call its exit code,
    output and which heavy modules were imported by then."""
    code = _LIGHT_CALLS.format(heavy=HEAVY, calls=calls)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_usage_errors_and_list_import_no_algorithm_family():
    calls = [
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["plot", "--help"],
        ["--bogus"],
        ["train", "dqn"],
        ["train"],
        ["list"],
        ["list", "--family", "nope"],
        ["list", "--fam", "rware"],
        ["render", "rware-tiny-4g"],
        ["render", "rware-tiny-4ag", "--steps", "0"],
    ]
    out = _run_light(calls)
    for argv, result in out.items():
        assert result["heavy"] == [], (argv, result["heavy"])
    codes = {argv: result["code"] for argv, result in out.items()}
    assert codes["--help"] == codes["train --help"] == codes["plot --help"] == 0
    assert codes["list"] == 0
    # Every other call is a usage error: exit status 2.
    assert {v for k, v in codes.items() if "help" not in k and k != "list"} == {2}
    # The sub-parsers still name every algorithm, without importing the families.
    assert all(name in out["train --help"]["text"] for name in train_cli.ALGORITHMS)
    assert "did you mean --family" in out["list --fam rware"]["text"]
    assert "unknown environment id 'rware-tiny-4g'" in out["render rware-tiny-4g"]["text"]


def test_algorithm_options_import_only_that_family():
    out = _run_light([["train", "ippo", "--total-step", "5"], ["train", "ippo", "--help"]])
    first = out["train ippo --total-step 5"]
    assert first["code"] == 2
    assert "did you mean --total-steps (for --total-step)?" in first["text"]
    assert "jaxmarl_envs.algorithms.ppo" in first["heavy"]
    assert not {"jaxmarl_envs.algorithms.q_learning", "jaxmarl_envs.algorithms.sac"} & set(
        out["train ippo --help"]["heavy"]
    )
    assert out["train ippo --help"]["code"] == 0
    assert "--total-steps" in out["train ippo --help"]["text"]


def test_light_algorithm_table_matches_the_families():
    table = train_cli.algorithm_table()
    assert list(table) == list(train_cli.ALGORITHMS)
    for name, (module, cls, _) in table.items():
        family = train_cli.ALGORITHMS[name][0]
        assert module.__name__ == f"jaxmarl_envs.algorithms.{family}"
        assert train_cli.algorithm_entry(name)[1] is cls


def test_no_prefix_abbreviations_and_closest_flag(capsys):
    parser = cli.build_parser(config_options=["ippo"])
    with pytest.raises(SystemExit) as exit:
        parser.parse_args(["train", "ippo", "--total-step", "5"])
    assert exit.value.code == 2
    assert "unrecognized arguments: --total-step 5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "ippo", "--num-env", "4"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean --num-envs (for --num-env)?" in err
    # The short usage line points to --help instead of printing every config option.
    assert err.count("\n") <= 3
    with pytest.raises(SystemExit) as exit:
        cli.main(["render", "rware-tiny-4ag", "--step", "3"])
    assert exit.value.code == 2
    assert "did you mean --steps" in capsys.readouterr().err


def test_list_summarises_families_by_default(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    families = jaxmarl_envs.registry.families()
    assert len(lines) <= len(families) + 4
    for family in families:
        row = next(line for line in lines if line.startswith(family + " "))
        assert str(len(jaxmarl_envs.list_envs(family))) in row.split()
    rware = next(line for line in lines if line.startswith("rware "))
    assert "RobotWarehouse-v0" in rware and "rware-tiny-2ag" in rware
    assert f"{len(jaxmarl_envs.list_envs())} ids in {len(families)} families" in lines[-2]


def test_list_family_and_all(capsys):
    assert cli.main(["list", "--family", "matrix"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == jaxmarl_envs.list_envs("matrix")
    assert cli.main(["list", "--all"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(jaxmarl_envs.list_envs())
    assert cli.main(["list", "--family", "rwar"]) == 2
    err = capsys.readouterr().err
    assert "unknown family 'rwar'" in err and "did you mean 'rware'" in err
    assert "families: " + ", ".join(jaxmarl_envs.registry.families()) in err
    with pytest.raises(SystemExit) as exit:
        cli.main(["list", "--all", "--family", "lbf"])
    assert exit.value.code == 2


def test_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["render", "no-such-env"]) == 2
    assert cli.main(["render", "matrix-climbing", "--fps", "0"]) == 2
    assert cli.main(["plot", str(tmp_path / "missing.json"), "--metric", "r"]) == 2
    assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "unknown environment id 'no-such-env'" in err and "--fps must be > 0" in err
    assert "no such results file" in err


def test_algorithm_help_shows_the_presets_defaults():
    """`jaxmarl train rec_mappo --help` states rec_mappo's defaults (its preset: a GRU, no
    critic LayerNorm), not those of the config class it shares with mappo."""
    import argparse

    parser = cli.build_parser(config_options=["mappo", "rec_mappo"])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = next(a for a in subparsers.choices["train"]._actions if a.dest == "algorithm")

    def help_of(name, flag):
        (action,) = [a for a in train.choices[name]._actions if flag in a.option_strings]
        return " ".join(action.help.split())

    assert help_of("mappo", "--network").endswith("(default: 'mlp')")
    assert help_of("rec_mappo", "--network").endswith("(default: 'gru')")
    assert help_of("mappo", "--critic-layer-norm").endswith("(default: True)")
    assert help_of("rec_mappo", "--critic-layer-norm").endswith("(default: False)")
