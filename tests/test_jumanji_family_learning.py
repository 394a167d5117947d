"""Issue 22: the PPO and SAC families learn on each Jumanji-family environment.

One short IPPO and one short ISAC run per environment (Cleaner, Connector, Multi-CVRP,
Search-and-Rescue). Each check evaluates the trained policy and a uniformly random legal
policy with the same evaluator (same episodes count, same key) and asserts the trained mean
team return beats random by a margin that a non-learning policy cannot pass: `k` standard
errors of the difference plus a fixed minimum gain measured from the runs
(/work/notes/jumanji-learn-results.md has the figures).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs.algorithms import ppo, sac, training
from jaxmarl_envs.algorithms.distributions import MaskedCategorical

EVAL_EPISODES = 128
K_STDERR = 4.0


def _random_act(learner):
    """A uniformly random legal policy in the evaluator's `act` signature."""
    info = learner.actions

    def act(params, hidden, obs_view, mask, new_episode, key):
        if info.continuous:
            low, high = jnp.asarray(info.low), jnp.asarray(info.high)
            u = jax.random.uniform(key, (*obs_view.shape[:2], info.dim))
            return low + u * (high - low), hidden
        return MaskedCategorical.create(jnp.zeros(mask.shape), mask).sample(key), hidden

    return act


def _returns(family, name: str, env_id: str, episodes: int = EVAL_EPISODES, **overrides):
    """`(trained, random)` per-episode team returns, both from the same evaluator and key."""
    cfg = family.make_config(
        name, env_id=env_id, gif=False, checkpoint_keep=0, num_evaluations=1, **overrides
    )
    train = family.make_train(cfg)
    state, _ = train(jax.random.PRNGKey(0))
    learner = train.learner
    key = jax.random.PRNGKey(123)
    trained = jax.jit(learner.make_evaluate(episodes))(learner.policy_params(state), key)
    evaluate_random = training.make_evaluator(
        learner.eval_env, _random_act(learner), learner.initial_hidden, episodes
    )
    random = jax.jit(evaluate_random)(None, key)
    return np.asarray(trained.episode_return), np.asarray(random.episode_return)


def _assert_beats_random(trained, random, min_gain):
    stderr = np.sqrt(trained.var(ddof=1) / trained.size + random.var(ddof=1) / random.size)
    gain = trained.mean() - random.mean()
    assert gain > max(K_STDERR * stderr, min_gain), (trained.mean(), random.mean(), stderr)


#: Small PPO settings shared by the environments (64 x 64 networks, 16 environments).
PPO_SMALL = dict(num_envs=16, rollout_length=32, hidden_sizes=(64, 64), lr=1e-3)

#: Small SAC settings; evaluation samples from the policy (greedy ISAC policies on Cleaner
#: can stand still for a whole episode: measured -80 against random's -63).
SAC_SMALL = dict(
    num_envs=16,
    rollout_length=8,
    grad_steps=4,
    batch_size=128,
    buffer_size=20_000,
    learning_starts=1_000,
    hidden_sizes=(64, 64),
    eval_greedy=False,
)

#: `(env_id, total_steps, min_gain)` per family, from the seed-0 runs in the notes: trained
#: minus random, IPPO: Cleaner +44 (-18.5 vs -62.9), Connector +1.8 (2.23 vs 0.45),
#: Search-and-Rescue +3.8 (5.19 vs 1.35) at 5e4 steps; ISAC: Cleaner +48 (-15.3 vs -62.9),
#: Connector +1.2 (1.64 vs 0.45), Search-and-Rescue +1.7 (3.04 vs 1.35) at 4e4 steps.
PPO_CASES = [
    pytest.param("clean-5x5x2a", 50_000, 15.0, id="cleaner"),
    pytest.param("con-5x5x3a", 50_000, 0.5, id="connector", marks=pytest.mark.slow),
    pytest.param("sar-2s-10t", 50_000, 1.0, id="search_and_rescue"),
]
SAC_CASES = [
    pytest.param("clean-5x5x2a", 40_000, 15.0, id="cleaner"),
    pytest.param("con-5x5x3a", 40_000, 0.5, id="connector", marks=pytest.mark.slow),
    pytest.param("sar-2s-10t", 40_000, 0.5, id="search_and_rescue"),
]


@pytest.mark.parametrize(("env_id", "total_steps", "min_gain"), PPO_CASES)
def test_ippo_beats_random(env_id, total_steps, min_gain):
    trained, random = _returns(ppo, "ippo", env_id, total_steps=total_steps, **PPO_SMALL)
    _assert_beats_random(trained, random, min_gain)


@pytest.mark.parametrize(("env_id", "total_steps", "min_gain"), SAC_CASES)
def test_isac_beats_random(env_id, total_steps, min_gain):
    trained, random = _returns(sac, "isac", env_id, total_steps=total_steps, **SAC_SMALL)
    _assert_beats_random(trained, random, min_gain)


@pytest.mark.slow
def test_ippo_beats_random_multi_cvrp():
    # A smaller gain: IPPO plateaus near -84 against random's -91.8 (5e4 to 2e5 steps), so
    # 512 episodes (stderr of the difference 1.5) separate the two.
    trained, random = _returns(
        ppo, "ippo", "multicvrp-6c-2v", episodes=512, total_steps=50_000, **PPO_SMALL
    )
    _assert_beats_random(trained, random, 3.0)


#: ISAC on Multi-CVRP: the step-limit penalty (Jumanji's worst case for unserved customers)
#: comes up to 12 steps after the choices that cause it while the depot looks free now, so a
#: short run learns a myopic critic (greedy: stays at the depot, about -280; sampled with
#: the default temperature: -137 at 4e4 steps). A longer run with faster target networks,
#: twice the gradient steps, TD targets in units of 0.02 reward and a lower target entropy
#: learns it (notes: jfam2-results.md).
SAC_MULTI_CVRP = dict(
    SAC_SMALL,
    total_steps=400_000,
    grad_steps=8,
    tau=0.05,
    reward_scale=0.02,
    target_entropy_scale=0.5,
)


@pytest.mark.slow
def test_isac_beats_random_multi_cvrp():
    # Measured (seed 0, 512 episodes): trained -80.7 against random's -91.8, stderr of the
    # difference 1.4; 4.5 minutes at load 13 (IPPO's check reaches -84).
    trained, random = _returns(sac, "isac", "multicvrp-6c-2v", episodes=512, **SAC_MULTI_CVRP)
    _assert_beats_random(trained, random, 5.0)
