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


def _final_returns(name: str, env_id: str, seeds: int, **overrides) -> tuple[float, np.ndarray]:
    """Mean over seeds 0..seeds-1 (vmapped, as `jaxmarl train --seeds`) of the last 3
    evaluations, and the per-seed curves."""
    cfg = ppo.make_config(name, env_id=env_id, **overrides)
    _, metrics = ppo.make_train(cfg)(training.seed_keys(0, seeds))
    curves = np.asarray(metrics["eval"].episode_return).mean(-1)  # (seeds, evaluations)
    return float(curves[:, -3:].mean()), curves


@pytest.mark.parametrize(
    ("env_id", "total_steps"), [("rware-tiny-2ag", 3_000_000), ("rware-tiny-4ag", 2_000_000)]
)
def test_rware_mappo_at_least_ippo_at_equal_steps(env_id, total_steps):
    # Issue 19: MAPPO >= IPPO on the warehouse at equal steps, both at their defaults. With the
    # raw 1,100-value grid state MAPPO reached 3.4 against IPPO's 9.4 (tiny-2ag, 4M steps);
    # with the agent-specific state, ValueNorm, the per-network clip and the 10x critic step
    # (benchmarks/logs/mappo_issue19_s28.md, the same seeds and settings), the mean of the last
    # 3 evaluations over seeds 0 and 1 was MAPPO 7.5 against IPPO 3.9 on tiny-2ag at 3M steps
    # and 17.6 against 14.0 on tiny-4ag at 2M.
    run = dict(total_steps=total_steps, num_envs=64, num_evaluations=10, eval_greedy=False)
    ippo_final, ippo_curves = _final_returns("ippo", env_id, 2, **run)
    mappo_final, mappo_curves = _final_returns("mappo", env_id, 2, **run)
    assert mappo_final >= ippo_final, (mappo_curves, ippo_curves)
