"""The examples/ scripts (one per ecosystem) run end to end on small settings."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _main(name: str):
    return runpy.run_path(str(EXAMPLES / name))["main"]


@pytest.mark.parametrize("mode", ["SameStep", "NextStep"])
def test_gymnasium_vector_example(mode):
    summary = _main("gymnasium_vector.py")(
        ["--num-envs", "2", "--steps", "9", "--time-limit", "4", "--autoreset-mode", mode]
    )
    # 9 steps of 4-step episodes: 2 episodes per env (NextStep spends a step on each reset).
    assert summary["episodes"] == 4
    assert summary["mean_length"] == 4.0
    assert math.isfinite(summary["mean_return"])


def test_pettingzoo_example():
    summary = _main("pettingzoo_random.py")(["--episodes", "2", "--time-limit", "5"])
    assert summary["illegal_actions"] == 0
    assert set(summary["mean_return"]) == {"agent_0", "agent_1"}
    assert summary["state_dim"] > 0


def test_dm_env_example():
    summary = _main("dm_env_loop.py")(["--episodes", "2", "--time-limit", "3"])
    assert summary["episodes"] == 2
    assert all(len(r) == 2 for r in summary["returns"])
