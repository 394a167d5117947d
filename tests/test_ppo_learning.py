"""Longer PPO learning checks on the real environments (slow: run with `-m slow`)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxmarl_envs.algorithms import ppo, training

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


#: The time-to-learn configuration of issue 19 (benchmarks/test_time_to_learn.py times it; the
#: command is in benchmarks/RESULTS.md). LBF's time limit is 100 steps, Jumanji's default and
#: so Mava's setting: with this project's default of 50 steps IPPO plateaus near 0.85.
TIME_TO_LEARN = dict(
    env_kwargs={"time_limit": 100},
    num_envs=64,
    rollout_length=32,
    hidden_sizes=(64, 64),
    lr=1e-3,
    anneal_lr=True,
    ent_coef=0.0005,
    total_steps=1_000_000,
    num_evaluations=2,
    eval_episodes=64,
    gif=False,
    checkpoint_keep=0,
)


def test_lbf_2s_8x8_time_to_learn_config_reaches_threshold(tmp_path):
    # Absolute metric: the best parameters re-evaluated on 10 x 64 sampled episodes.
    cfg = ppo.make_config("ippo", env_id="lbf-2s-8x8-2p-2f-coop", seed=0, **TIME_TO_LEARN)
    summary = training.run_experiment(ppo.make_learner(cfg), str(tmp_path), verbose=False)
    absolute = summary["absolute_return_per_seed"]
    assert summary["finished"]
    assert absolute[0] >= 0.97, (absolute, summary["final_return_per_seed"])


def test_rware_tiny_2ag_mappo_agent_specific_close_to_ippo_at_equal_steps():
    # Issue 19: with the raw 1,100-value grid state MAPPO reached 3.4 against IPPO's 9.4 at
    # 4M steps. With the agent-specific state (own view + id + joint observation) it rises
    # with IPPO; measured at 3M steps (mean of the last 3 evaluations, seeds 0 and 1): MAPPO
    # 2.75, 3.68 against IPPO 3.76, 3.98 (benchmarks/RESULTS.md). The target,
    # MAPPO >= IPPO, is not reached yet: this asserts what was measured, with some margin.
    run = dict(total_steps=3_000_000, num_envs=64, num_evaluations=10, eval_greedy=False)
    ippo_final, ippo_curve = _final_return("ippo", "rware-tiny-2ag", **run)
    mappo_final, mappo_curve = _final_return("mappo", "rware-tiny-2ag", **run)
    assert mappo_final > 1.0, mappo_curve
    assert mappo_final >= 0.6 * ippo_final, (mappo_curve, ippo_curve)
