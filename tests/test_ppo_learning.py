"""Longer PPO learning checks on the real environments (slow: run with `-m slow`)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxmarl_envs.algorithms import ppo

pytestmark = pytest.mark.slow


def _final_return(name: str, env_id: str, **overrides) -> tuple[float, np.ndarray]:
    cfg = ppo.make_config(name, env_id=env_id, **overrides)
    _, metrics = ppo.make_train(cfg)(jax.random.PRNGKey(0))
    curve = np.asarray(metrics["eval"].episode_return).mean(-1)
    return float(curve[-3:].mean()), curve


@pytest.mark.parametrize("name", ["ippo", "mappo"])
def test_lbf_8x8_2p_2f_coop_learns(name):
    # Random play collects almost nothing (team return ~0.02 of a maximum of 1).
    final, curve = _final_return(
        name,
        "lbf-8x8-2p-2f-coop",
        total_steps=2_000_000,
        num_envs=64,
        num_evaluations=10,
        eval_greedy=False,
    )
    assert final > 0.25, curve


def test_rware_tiny_2ag_ippo_learns():
    # Random play delivers almost no shelves in 500 steps.
    final, curve = _final_return(
        "ippo",
        "rware-tiny-2ag",
        total_steps=3_000_000,
        num_envs=64,
        num_evaluations=10,
        eval_greedy=False,
    )
    assert final > 0.3, curve
