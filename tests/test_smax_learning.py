"""SMAX learning checks (issue 21): the PPO family on `smax-3m` against the heuristic enemy.

Reference point, measured with a uniformly random legal action per agent (2,048 episodes of
smax-3m, time limit 100): win rate 0.000, team return per agent 0.176 (std 0.098, max 0.60),
i.e. about 0.53 as the evaluator sums it over the 3 agents. The settings of the slow tests are
the ones measured in /work/notes/smax-learn-results.md (the integrator moves them to
benchmarks/RESULTS.md); they differ from the PPO defaults (more environments, a higher
annealed learning rate, 4 minibatches) and are passed explicitly here.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxmarl_envs.algorithms import ppo

#: Random legal play on smax-3m (see the module docstring): evaluator return ~0.53, never wins.
RANDOM_RETURN = 0.53

#: IPPO/MAPPO settings for smax-3m (feed-forward), passed explicitly (the PPO defaults are
#: 16 environments, lr 2.5e-4 constant, 2 minibatches).
SMAX_3M = dict(
    num_envs=128,
    rollout_length=128,
    lr=2e-3,
    anneal_lr=True,
    num_minibatches=4,
    eval_greedy=False,
    gif=False,
    checkpoint_keep=0,
)


def _curves(name: str, seed: int = 0, **overrides) -> tuple[np.ndarray, np.ndarray]:
    """(win rate, evaluator return) per evaluation, each averaged over the episodes."""
    cfg = ppo.make_config(name, env_id="smax-3m", **overrides)
    _, metrics = ppo.make_train(cfg)(jax.random.PRNGKey(seed))
    ev = metrics["eval"]
    return np.asarray(ev.win).mean(-1), np.asarray(ev.episode_return).mean(-1)


def test_ippo_smax_3m_beats_random_quickly():
    # A short IPPO run (12 updates of 64 envs x 64 steps, ~49k steps; ~35 s with compilation
    # at load 4.5 on 2 cores). Random play returns ~0.53 and never wins; measured after this
    # budget: return 2.11 (seed 0) and 2.30 (seed 1), win rate 0.03-0.05.
    win, ret = _curves(
        "ippo",
        total_steps=49_152,
        num_envs=64,
        rollout_length=64,
        lr=2e-3,
        num_minibatches=4,
        num_evaluations=1,
        eval_episodes=64,
        gif=False,
        checkpoint_keep=0,
    )
    assert bool(np.isfinite(win).all()), win  # the evaluator found SMAX's win flag
    assert bool(ret[-1] > 2 * RANDOM_RETURN), ret


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "total_steps", "eval_episodes"),
    [
        ("ippo", 2_000_000, 128),
        ("mappo", 2_000_000, 128),
        ("rec_ippo", 2_000_000, 128),
        ("rec_mappo", 3_000_000, 256),
    ],
)
def test_ppo_smax_3m_reaches_win_rate(name, total_steps, eval_episodes):
    # Mean of the last 3 of 8 evaluations (sampled episodes) against the heuristic enemy.
    # Measured with these settings (seed 0): IPPO 0.846 (seed 1: 0.818), MAPPO 0.865, both
    # through `jaxmarl train`, first passing 0.8 near 1M steps; recurrent IPPO 0.846 (this
    # function). Recurrent MAPPO reached only 0.807 at 2M steps / 128 episodes (too thin a
    # margin), so it gets 3M steps (3,014,656: 184 updates, an evaluation every 377k) and 256
    # episodes per evaluation: win rates 0.60 0.74 0.80 0.81 0.89 0.82 0.91 0.92, last-3 mean
    # 0.883 (this function, 1921 s at load 6-7 beside 3 other jobs; 2M took 578 s at load ~3).
    # IPPO/MAPPO 2.5-4 min each on the shared 2-core CPU (load ~3), recurrent IPPO ~10 min.
    win, ret = _curves(
        name,
        total_steps=total_steps,
        num_evaluations=8,
        eval_episodes=eval_episodes,
        **SMAX_3M,
    )
    assert bool(win[-3:].mean() >= 0.8), (win, ret)
