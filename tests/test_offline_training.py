"""Offline learners learn from recorded toy datasets: BC on good beats BC on poor, IQL+CQL
beats the random behaviour, and (slow) every learner reaches 80% of the good behaviour policy's
return; plus the shared runner (results layout, resume) and config validation."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from continuous_toy_env import ContinuousToyEnv
from test_offline_data import continuous_policy, record, toy_dataset
from toy_env import ToyEnv
from training_checks import leaves

from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.algorithms.offline import bc, common, iql, maicq, matd3_bc, omar
from jaxmarl_envs.algorithms.offline.data import (
    Batch,
    Transitions,
    load_transitions,
    sample_batch,
)
from jaxmarl_envs.algorithms.offline.kernels import (
    continuous_cql_penalty,
    omar_search,
    smoothed_target_action,
)

SMALL = dict(
    env_id="toy-5",
    total_steps=900,
    num_evaluations=3,
    batch_size=64,
    hidden_sizes=(32, 32),
    lr=3e-3,
    gamma=0.9,
    eval_episodes=64,
    gif=False,
)
#: Team return of the uniformly random (legal) policy on ContinuousToyEnv(5) actions in
#: [-2, 2]^2: E|a - t|^2 = 4/3 + 1/3 per dimension, 2 dimensions, 2 agents, 5 steps.
CONTINUOUS_RANDOM = -2 * 2 * 5 * (4 / 3 + 1 / 3)


@pytest.fixture(scope="module")
def toy_tiers(tmp_path_factory):
    """`{tier: (path, behaviour mean return)}` for a good (90% on target) and a poor (uniform
    random) ToyEnv dataset of equal shapes."""
    root = tmp_path_factory.mktemp("offline_toy")
    out = {}
    for tier, skill in (("good", 0.9), ("poor", 0.0)):
        path = toy_dataset(root / tier, skill)
        out[tier] = (path, Vault(path).metadata["returns"]["mean"])
    assert out["good"][1] > 2.0 * out["poor"][1]
    return out


def final_return(metrics) -> float:
    """Mean evaluation return over the last two evaluations (and all seeds)."""
    returns = np.asarray(metrics["eval"].episode_return)  # (S, evals, E)
    return float(returns[:, -2:].mean())


def test_bc_on_good_beats_bc_on_poor(toy_tiers):
    good, poor = toy_tiers["good"][0], toy_tiers["poor"][0]
    env = ToyEnv(time_limit=5)
    train = bc.make_train(bc.make_config(dataset=good, **SMALL), env=env)
    keys = training.seed_keys(0, 2)
    _, on_good = train(keys)
    poor_data, _ = load_transitions(poor, env, add_agent_id=True)
    _, on_poor = train(keys, data=poor_data)  # same shapes: the compiled functions are reused
    good_return, poor_return = final_return(on_good), final_return(on_poor)
    assert good_return > 1.5 * poor_return + 0.5, (good_return, poor_return)
    assert good_return >= 0.8 * toy_tiers["good"][1]
    accuracy = np.asarray(on_good["train"]["accuracy"])
    assert accuracy.shape == (2, 3) and accuracy[:, -1].min() > 0.8


def test_iql_cql_learns_clearly_above_the_random_behaviour(toy_tiers):
    """From uniformly random data, conservative Q-learning still finds the rewarded actions."""
    poor, random_return = toy_tiers["poor"]
    config = iql.make_config("iql-cql", dataset=poor, **SMALL)
    _, metrics = iql.make_train(config, env=ToyEnv(time_limit=5))(jax.random.PRNGKey(0))
    ret = float(np.asarray(metrics["eval"].episode_return)[-2:].mean())
    assert ret > 2.5 * random_return, (ret, random_return)
    assert float(np.asarray(metrics["train"]["cql_penalty"])[-1]) > 0.0


def test_runner_writes_results_and_resumes_bitwise(toy_tiers, tmp_path):
    """Through `training.run_experiment`: marl-eval results per seed with gradient steps as
    step counts, checkpoints, and a resumed run equal to an uninterrupted one."""
    config = iql.make_config(
        "iql-bcq",
        dataset=toy_tiers["good"][0],
        **{**SMALL, "total_steps": 60, "eval_episodes": 8, "num_seeds": 2, "checkpoint_keep": 2},
    )
    learner = iql.make_learner(config, env=ToyEnv(time_limit=5))
    full = training.run_experiment(learner, str(tmp_path / "full"), verbose=False)
    assert full["finished"] and full["total_steps_per_seed"] == 60
    with open(tmp_path / "full" / "metrics.json") as f:
        runs = json.load(f)["toy"]["toy-5"]["iql-bcq"]
    assert sorted(runs) == ["seed_0", "seed_1"]
    assert runs["seed_0"]["step_2"]["step_count"] == 60
    assert len(runs["seed_1"]["absolute_metrics"]["episode_return"]) == 80
    state = full["state"]
    assert np.asarray(state.step).tolist() == [60, 60]
    assert any(not np.array_equal(x[0], x[1]) for x in leaves(state.params))
    out = str(tmp_path / "resumed")
    assert not training.run_experiment(learner, out, stop_after=1, verbose=False)["finished"]
    second = training.run_experiment(learner, out, resume=True, verbose=False)
    assert second["finished"]
    for a, b in zip(leaves(state), leaves(second["state"]), strict=True):
        assert np.array_equal(a, b)
    assert sorted(os.listdir(tmp_path / "full" / "checkpoints")) == ["2", "3"]


def test_bad_configs_and_action_types_are_refused(toy_tiers):
    good = toy_tiers["good"][0]
    env = ToyEnv(time_limit=5)
    with pytest.raises(ValueError, match="dataset is required"):
        bc.make_learner(bc.make_config(**SMALL), env=env)
    with pytest.raises(ValueError, match="batch_size"):
        bc.make_learner(bc.make_config(dataset=good, **{**SMALL, "batch_size": 0}), env=env)
    with pytest.raises(ValueError, match="bcq_threshold"):
        iql.make_learner(iql.make_config("iql-bcq", dataset=good, bcq_threshold=2.0), env=env)
    with pytest.raises(ValueError, match="alpha"):
        maicq.make_learner(maicq.make_config(dataset=good, alpha=0.0), env=env)
    with pytest.raises(ValueError, match="continuous actions"):
        matd3_bc.make_learner(matd3_bc.make_config(dataset=good, **SMALL), env=env)
    with pytest.raises(ValueError, match="continuous actions"):
        omar.make_learner(omar.make_config(dataset=good, **SMALL), env=env)
    with pytest.raises(ValueError, match="does not match|continuous|discrete"):
        iql.make_learner(iql.make_config("iql-cql", dataset=good), env=ContinuousToyEnv())
    with pytest.raises(ValueError, match="eval_epsilon"):
        iql.make_learner(iql.make_config("iql-cql", dataset=good, eval_epsilon=1.5), env=env)


def test_iql_evaluation_is_epsilon_greedy_over_the_allowed_actions(toy_tiers):
    """Non-greedy (default) evaluation: the allowed argmax with probability 1 - eval_epsilon,
    else uniform over the allowed actions; epsilon 0 is the greedy policy."""
    good = toy_tiers["good"][0]
    env = ToyEnv(time_limit=5)
    learner = iql.make_learner(iql.make_config("iql-cql", dataset=good, **SMALL), env=env)
    assert learner.config.eval_greedy is False and learner.config.eval_epsilon == 0.05
    params = learner.init(jax.random.PRNGKey(0)).params
    e, n, a = 4000, env.num_agents, learner.action_dim
    obs = jax.random.normal(jax.random.PRNGKey(1), (e, n, learner.obs_dim))
    mask = jnp.ones((e, n, a), bool).at[:, :, 0].set(False)  # action 0 illegal
    hidden, new = learner.initial_hidden(e), jnp.zeros((e,), bool)
    greedy, _ = learner.act(params, hidden, obs, mask, new, jax.random.PRNGKey(2), greedy=True)
    act = jax.jit(lambda p, k: learner.act(p, hidden, obs, mask, new, k, greedy=False)[0])
    sampled = np.asarray(act(params, jax.random.PRNGKey(3)))
    assert sampled.min() >= 1  # never the illegal action
    differs = float(np.mean(sampled != np.asarray(greedy)))
    # A random pick differs from the argmax with probability eps * (A' - 1) / A' (A' legal).
    expected = 0.05 * (a - 2) / (a - 1)
    assert abs(differs - expected) < 0.015, (differs, expected)
    zero = dataclasses.replace(
        learner, config=dataclasses.replace(learner.config, eval_epsilon=0.0)
    )
    none, _ = zero.act(params, hidden, obs, mask, new, jax.random.PRNGKey(3), greedy=False)
    assert bool(jnp.array_equal(none, greedy))


def hand_built_bcq(toy_tiers, behaviour_logits, q_values, **overrides):
    """An IQL+BCQ learner on the toy dataset and parameters whose outputs do not depend on the
    observation: zero head kernels, the behaviour model's logits and the Q-values as the head
    biases (the same for every agent and observation)."""
    config = iql.make_config("iql-bcq", dataset=toy_tiers["good"][0], **{**SMALL, **overrides})
    learner = iql.make_learner(config, env=ToyEnv(time_limit=5))
    params = learner.init(jax.random.PRNGKey(0)).params

    def constant(net_params, bias):
        head = net_params["params"]["head"]
        head = {"kernel": jnp.zeros_like(head["kernel"]), "bias": jnp.asarray(bias, jnp.float32)}
        return {"params": {**net_params["params"], "head": head}}

    params = params.replace(
        q=constant(params.q, q_values), behaviour=constant(params.behaviour, behaviour_logits)
    )
    return learner, params


#: Behaviour probabilities proportional to (1, 0.7, 0.1): with the default threshold (0.5)
#: actions 0 and 1 are allowed and action 2 is not, although its Q-value is the largest.
BCQ_LOGITS = np.log([1.0, 0.7, 0.1])
BCQ_Q = [0.0, 1.0, 5.0]


def test_bcq_target_bootstraps_from_the_best_allowed_action(toy_tiers):
    """Hand-built batch: reward 0, not terminated, dataset action 0 (Q 0). The bootstrap takes
    the best ALLOWED next action (1, Q 1), not the global argmax (2, Q 5): td = 0 - gamma * 1;
    the behaviour loss is -log p(0) = log(1.8)."""
    learner, params = hand_built_bcq(toy_tiers, BCQ_LOGITS, BCQ_Q)
    b, n, a, d = 8, learner.num_agents, learner.action_dim, learner.obs_dim
    obs = jax.random.normal(jax.random.PRNGKey(1), (b, n, d))
    mask = jnp.ones((b, n, a), bool)
    batch = Batch(
        obs=obs,
        next_obs=obs[::-1],
        mask=mask,
        next_mask=mask,
        state=jnp.zeros((b, learner.state_dim)),
        next_state=jnp.zeros((b, learner.state_dim)),
        action=jnp.zeros((b, n), jnp.int32),
        reward=jnp.zeros((b, n)),
        terminated=jnp.zeros((b, n), bool),
        bootstrap=jnp.ones((b,), bool),
    )
    allowed = learner.allowed(params, obs, mask)
    assert np.asarray(allowed).tolist() == [[[True, True, False]] * n] * b
    gamma = learner.config.gamma
    loss, stats = learner.loss(params, params.q, batch)
    assert abs(float(stats["td_loss"]) - 0.5 * gamma**2) < 1e-5, stats
    assert abs(float(stats["bc_loss"]) - np.log(1.8)) < 1e-5, stats
    assert abs(float(loss) - (0.5 * gamma**2 + np.log(1.8))) < 1e-5
    # Without the filter (threshold 0: every legal action) the bootstrap is the max, Q 5.
    loose = dataclasses.replace(
        learner, config=dataclasses.replace(learner.config, bcq_threshold=0.0)
    )
    _, stats = loose.loss(params, params.q, batch)
    assert abs(float(stats["td_loss"]) - 0.5 * (5 * gamma) ** 2) < 1e-4, stats


def test_bcq_evaluation_explores_over_the_legal_actions_not_only_the_allowed(toy_tiers):
    """Greedy: the best allowed action (1), never the filtered-out global argmax (2). Non-greedy
    (eval_epsilon 0.3): with probability 0.3 a uniform LEGAL action, the filtered-out one
    included (random actions drawn from the allowed set alone would rarely change anything
    when the filter keeps one or two actions); never an illegal one."""
    learner, params = hand_built_bcq(toy_tiers, BCQ_LOGITS, BCQ_Q, eval_epsilon=0.3)
    e, n, a, d = 6000, learner.num_agents, learner.action_dim, learner.obs_dim
    obs = jax.random.normal(jax.random.PRNGKey(1), (e, n, d))
    # First half: every action legal; second half: action 2 illegal.
    mask = jnp.ones((e, n, a), bool).at[e // 2 :, :, 2].set(False)
    hidden, new = learner.initial_hidden(e), jnp.zeros((e,), bool)
    greedy, _ = learner.act(params, hidden, obs, mask, new, jax.random.PRNGKey(2), greedy=True)
    assert bool(jnp.all(greedy == 1))
    act = jax.jit(lambda p, k: learner.act(p, hidden, obs, mask, new, k, greedy=False)[0])
    sampled = np.asarray(act(params, jax.random.PRNGKey(3)))
    full, cut = sampled[: e // 2], sampled[e // 2 :]
    # All legal: each action is drawn at random with probability 0.3 / 3 = 0.1.
    assert abs(float(np.mean(full == 2)) - 0.1) < 0.015
    assert abs(float(np.mean(full == 0)) - 0.1) < 0.015
    # Action 2 illegal: never taken; the random pick is 0 or 1, so 0 comes with 0.3 / 2.
    assert not bool(np.any(cut == 2))
    assert abs(float(np.mean(cut == 0)) - 0.15) < 0.015
    assert np.array_equal(
        np.asarray(act(params, jax.random.PRNGKey(3))), sampled
    )  # same key, same actions


# =============================================================================================
# Slow: every learner reaches 80% of the good behaviour policy's return
# =============================================================================================


@pytest.mark.slow
@pytest.mark.parametrize(
    "module,name",
    [(iql, "iql-cql"), (iql, "iql-bcq"), (maicq, "maicq"), (bc, "bc")],
)
def test_discrete_learner_reaches_80_percent_of_good_behaviour(toy_tiers, module, name):
    good, behaviour = toy_tiers["good"]
    config = module.make_config(name, dataset=good, **{**SMALL, "total_steps": 2000})
    _, metrics = module.make_train(config, env=ToyEnv(time_limit=5))(training.seed_keys(0, 2))
    ret = final_return(metrics)
    assert ret >= 0.8 * behaviour, (name, ret, behaviour)


@pytest.fixture(scope="module")
def continuous_good(tmp_path_factory):
    path = record(ContinuousToyEnv(), continuous_policy(0.8), tmp_path_factory.mktemp("c") / "good")
    return path, Vault(path).metadata["returns"]["mean"]


@pytest.mark.slow
@pytest.mark.parametrize("module,name", [(matd3_bc, "matd3-bc"), (omar, "omar"), (bc, "bc")])
def test_continuous_learner_reaches_80_percent_of_good_behaviour(continuous_good, module, name):
    """Returns are negative here, so 80% is measured between the random policy (0%) and the
    behaviour policy (100%)."""
    good, behaviour = continuous_good
    config = module.make_config(
        name, dataset=good, **{**SMALL, "env_id": "ctoy-5", "total_steps": 2000, "lr": 1e-3}
    )
    _, metrics = module.make_train(config, env=ContinuousToyEnv(5))(training.seed_keys(0, 2))
    ret = final_return(metrics)
    score = (ret - CONTINUOUS_RANDOM) / (behaviour - CONTINUOUS_RANDOM)
    assert score >= 0.8, (name, ret, behaviour, score)


def synthetic_continuous_data(env, num: int = 512):
    """`num` random transitions shaped like `env`'s (agent ids appended), for loss checks."""
    n, info = env.num_agents, training.action_info(env)
    d = env.observation_spec.agents_view.shape[-1] + n
    s = int(np.prod(env.global_state_spec().shape))
    ks = jax.random.split(jax.random.PRNGKey(11), 4)
    data = Transitions(
        obs=jax.random.normal(ks[1], (num, n, d)),
        mask=jnp.ones((num, n, 1), bool),
        state=jax.random.normal(ks[2], (num, s)),
        action=jax.random.uniform(ks[0], (num, n, info.dim), minval=info.low, maxval=info.high),
        reward=jax.random.uniform(ks[3], (num, n)),
        terminated=jnp.zeros((num, n), bool),
        next_index=(jnp.arange(num, dtype=jnp.int32) + 1) % num,
        bootstrap=jnp.arange(num) % 7 != 0,
        sample_index=jnp.arange(num, dtype=jnp.int32),
    )
    return data, {"path": "synthetic", "transitions": num}


def test_omar_losses_equal_the_direct_formulation():
    """OMAR's batched critic pass (dataset, uniform and policy actions in one call; the
    deterministic policy's value computed once for its `cql_samples` copies) and its
    first-critic-only search give the same losses and gradients as the direct formulation:
    2k separate evaluations of both twin critics, and a search on twin 0 of both."""
    env = ContinuousToyEnv(5)
    config = omar.make_config(**{**SMALL, "env_id": "ctoy-5", "dataset": "synthetic"})
    learner = omar.make_learner(config, env=env, data=synthetic_continuous_data(env))
    state = learner.init(jax.random.PRNGKey(0))
    p, key = state.params, jax.random.PRNGKey(5)
    batch = sample_batch(learner.data, jax.random.PRNGKey(3), config.batch_size)
    low, high, c = learner.action_low, learner.action_high, config

    def q(critic, obs, action):  # both twins, obs and action with the same leading axes
        a = common.normalise_action(action, low, high)
        x = jnp.concatenate([obs, a], -1)
        return jax.vmap(lambda w: common.apply_net(learner.critic, w, x)[..., 0])(critic)

    def direct_critic_loss(critic):
        noise_key, uniform_key = jax.random.split(key)
        next_a = common.actor_action(
            learner.actor, state.target_params.actor, batch.next_obs, low, high
        )
        next_a = smoothed_target_action(noise_key, next_a, c.policy_noise, c.noise_clip, low, high)
        next_q = q(state.target_params.critic, batch.next_obs, next_a).min(0)
        y = c.reward_scale * batch.reward + c.gamma * (1.0 - batch.terminated) * next_q
        qd = q(critic, batch.obs, batch.action)
        w = jnp.broadcast_to(batch.bootstrap[None, :, None], qd.shape).astype(jnp.float32)
        td = 0.5 * jnp.sum(w * (qd - y) ** 2) / jnp.maximum(w.sum(), 1.0)
        k = c.cql_samples
        uniform = jax.random.uniform(uniform_key, (k, *batch.action.shape), minval=low, maxval=high)
        pi = common.actor_action(learner.actor, p.actor, batch.obs, low, high)
        sampled = jnp.concatenate([uniform, jnp.broadcast_to(pi, (k, *pi.shape))])
        q_s = jax.vmap(lambda a: q(critic, batch.obs, a), out_axes=-1)(sampled)
        return td + c.cql_alpha * continuous_cql_penalty(q_s, qd).mean()

    def direct_actor_loss(actor):
        pi = common.actor_action(learner.actor, actor, batch.obs, low, high)
        q_pi = q(p.critic, batch.obs, pi)[0]

        def q_fn(a):
            return q(p.critic, jnp.broadcast_to(batch.obs, (*a.shape[:1], *batch.obs.shape)), a)[0]

        best = omar_search(
            key,
            q_fn,
            jax.lax.stop_gradient(pi),
            low,
            high,
            c.omar_samples,
            c.omar_elites,
            c.omar_iterations,
            c.omar_std,
        )
        lam = jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.mean(jnp.abs(q_pi)), 1e-6))
        n = lambda a: common.normalise_action(a, low, high)  # noqa: E731
        pull = jnp.mean(jnp.sum((n(pi) - n(best)) ** 2, -1))
        return (1.0 - c.omar_coe) * -lam * q_pi.mean() + c.omar_coe * pull

    pairs = [
        (
            lambda w: learner.critic_loss(w, p, state.target_params, batch, key)[0],
            direct_critic_loss,
            p.critic,
        ),
        (lambda w: learner.actor_loss(w, p.critic, batch, key)[0], direct_actor_loss, p.actor),
    ]
    for fast, direct, params in pairs:
        (fast_loss, fast_grad), (loss, grad) = (
            jax.jit(jax.value_and_grad(f))(params) for f in (fast, direct)
        )
        assert np.allclose(fast_loss, loss, rtol=1e-5, atol=1e-6), (fast_loss, loss)
        for a, b in zip(jax.tree.leaves(fast_grad), jax.tree.leaves(grad), strict=True):
            assert np.allclose(a, b, rtol=1e-4, atol=1e-6)
