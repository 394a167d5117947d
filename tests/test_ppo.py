"""PPO family: short learning checks per variant, reproducibility, config validation, sizes."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from continuous_toy_env import ContinuousToyEnv
from toy_env import ToyEnv
from training_checks import leaves

from jaxmarl_envs.algorithms import ppo

# ToyEnv (5 steps): both agents must pick the target shown; random play scores about 1.
FAST = dict(
    total_steps=20 * 16 * 16,
    num_envs=16,
    rollout_length=16,
    num_evaluations=5,
    hidden_sizes=(32, 32),
    gru_size=16,
    lr=3e-3,
    eval_episodes=32,
    eval_greedy=True,
)


def _random_return(train, key):
    """Mean team return of the untrained, sampling policy (about uniform random)."""
    learner = train.learner
    state = learner.init(key)
    out = jax.jit(learner.make_evaluate(256, greedy=False))(state.params.actor, key)
    return float(out.episode_return.mean())


@pytest.fixture(scope="module")
def ippo_train():
    return ppo.make_train(ppo.make_config("ippo", **FAST), env=ToyEnv(time_limit=5))


@pytest.fixture(scope="module")
def ippo_run(ippo_train):
    return ippo_train(jax.random.PRNGKey(0))


def test_ippo_learns_toy_task(ippo_train, ippo_run):
    state, metrics = ippo_run
    final = float(metrics["eval"].episode_return[-1].mean())
    baseline = _random_return(ippo_train, jax.random.PRNGKey(5))
    assert baseline < 1.8
    assert final >= 2.5, (final, baseline)
    assert metrics["eval"].episode_return.shape == (5, 32)
    assert int(state.update_step) == 20
    assert float(state.best_return) >= final


def test_same_seed_identical_different_seed_differs(ippo_train, ippo_run):
    state_a, metrics_a = ippo_run
    state_b, metrics_b = ippo_train(jax.random.PRNGKey(0))
    state_c, _ = ippo_train(jax.random.PRNGKey(1))
    for a, b in zip(
        jax.tree_util.tree_leaves(state_a), jax.tree_util.tree_leaves(state_b), strict=True
    ):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(metrics_a["eval"].episode_return, metrics_b["eval"].episode_return)
    leaves_a = jax.tree_util.tree_leaves(state_a.params)
    leaves_c = jax.tree_util.tree_leaves(state_c.params)
    assert any(not np.allclose(a, c) for a, c in zip(leaves_a, leaves_c, strict=True))


def test_mappo_per_agent_params_learns_toy_task():
    cfg = ppo.make_config("mappo", share_params=False, **FAST)
    train = ppo.make_train(cfg, env=ToyEnv(time_limit=5))
    state, metrics = train(jax.random.PRNGKey(0))
    # The default agent-specific state: own view (4) + id (2) + both views (2 x 4).
    assert cfg.centralised_critic and cfg.critic_input == "agent_specific"
    assert train.learner.critic_dim == 4 + 2 + 2 * 4
    # Per-agent parameters: a leading agent axis on every leaf.
    networks = (state.params.actor, state.params.critic)
    assert all(x.shape[0] == 2 for x in jax.tree_util.tree_leaves(networks))
    assert float(metrics["eval"].episode_return[-1].mean()) >= 2.5


@pytest.mark.parametrize("name, share", [("rec_ippo", True), ("rec_mappo", False)])
def test_recurrent_learns_toy_task(name, share):
    cfg = ppo.make_config(name, share_params=share, **FAST)
    train = ppo.make_train(cfg, env=ToyEnv(time_limit=5))
    state, metrics = train(jax.random.PRNGKey(0))
    assert state.runner.actor_hidden.shape == (16, 2, 16)
    assert float(metrics["eval"].episode_return[-1].mean()) >= 2.5


def test_continuous_ippo_learns():
    cfg = ppo.make_config(
        "ippo", **{**FAST, "total_steps": 40 * 16 * 16, "lr": 1e-2, "ent_coef": 0.0}
    )
    train = ppo.make_train(cfg, env=ContinuousToyEnv(time_limit=5))
    assert train.learner.actions.continuous and train.learner.actions.dim == 2
    _, metrics = train(jax.random.PRNGKey(0))
    returns = metrics["eval"].episode_return.mean(-1)
    # Random Gaussian play scores about -16.7, the optimum 0.
    assert float(returns[-1]) > -5.0, returns
    assert np.all(np.isnan(metrics["eval"].win))


def test_derive_sizes():
    d = ppo.derive(
        ppo.make_config(
            "ippo", total_steps=10_000, num_envs=8, rollout_length=16, num_evaluations=3
        ),
        num_devices=1,
    )
    # 10,000 steps need ceil(10000 / 128) = 79 updates: 3 intervals of ceil(79 / 3) = 27.
    assert d.steps_per_update == 128 and d.num_updates == 81 and d.num_evaluations == 3
    assert d.updates_per_eval == 27 and d.total_steps == 81 * 128 >= 10_000
    assert d.minibatch_size == 64
    r = ppo.derive(ppo.make_config("rec_ippo", num_envs=8, num_minibatches=4), 1)
    assert r.minibatch_size == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_envs=3, rollout_length=5, num_minibatches=2), "divisible by num_minibatches"),
        (
            dict(network="gru", num_envs=3, rollout_length=4, num_minibatches=2),
            "num_envs (3) must be divisible by num_minibatches",
        ),
        (dict(total_steps=100), "fewer than num_evaluations"),
        (dict(gamma=1.5), "gamma must be in [0, 1]"),
        (dict(num_envs=0), "num_envs must be >= 1"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(num_devices=3), "num_devices"),
    ],
)
def test_config_errors_before_compilation(overrides, message):
    cfg = dataclasses.replace(ppo.IPPOConfig(), **overrides)
    with pytest.raises(ValueError) as err:
        ppo.make_learner(cfg, env=ToyEnv())
    assert message in str(err.value)


def test_num_envs_divisible_by_devices():
    with pytest.raises(ValueError, match="divisible by the number of devices"):
        ppo.derive(ppo.make_config("ippo", num_envs=6, num_devices=4), num_devices=4)


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="unknown PPO algorithm"):
        ppo.make_config("dqn")


def test_rollout_bootstrap_uses_final_observation_on_truncation():
    """In a rollout the stored successor value on a truncated step is V(final observation)."""
    cfg = ppo.make_config(
        "ippo", **{**FAST, "num_envs": 2, "rollout_length": 6, "num_minibatches": 1}
    )
    learner = ppo.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(3))
    _, traj = jax.jit(learner.rollout)(state.params, state.runner, jax.random.PRNGKey(4))
    values = jax.jit(
        lambda x: learner.critic.apply(
            state.params.critic,
            learner.critic.initial_hidden((x.shape[1],)),
            x,
            jnp.zeros(x.shape[:3], bool),
        )[1]
    )(traj.obs)
    assert np.allclose(values, traj.value, atol=1e-5)
    end = np.asarray(traj.episode_end[..., 0])
    cont = ~end[:-1]
    # Within an episode the successor value is the next step's value ...
    assert np.allclose(
        np.asarray(traj.next_value[:-1])[cont], np.asarray(values[1:])[cont], atol=1e-5
    )
    # ... but at an episode end it is not the next (reset) observation's value.
    ends = end[:-1]
    assert ends.any()
    assert not np.allclose(
        np.asarray(traj.next_value[:-1])[ends], np.asarray(values[1:])[ends], atol=1e-4
    )
    assert np.array_equal(np.asarray(traj.resets[1:, :, 0]), end[:-1])


# ---------------------------------------------------------------------------------------------
# Critic inputs (hand-built numbers)
# ---------------------------------------------------------------------------------------------

#: One environment, 2 agents with 3-value views (1, 2, 3) and (4, 5, 6), then their ids.
VIEWS = np.array([[[1.0, 2.0, 3.0, 1.0, 0.0], [4.0, 5.0, 6.0, 0.0, 1.0]]], np.float32)
STATE = np.array([[7.0, 8.0]], np.float32)


def test_critic_features_agent_specific_hand_built():
    out = np.asarray(ppo.critic_features("agent_specific", jnp.asarray(VIEWS), None, True))
    expected = np.array(
        [
            [
                [1, 2, 3, 1, 0, 1, 2, 3, 4, 5, 6],
                [4, 5, 6, 0, 1, 1, 2, 3, 4, 5, 6],
            ]
        ],
        np.float32,
    )
    assert out.shape == (1, 2, ppo.critic_dim("agent_specific", 3, 2, 2))
    assert np.array_equal(out, expected)
    # Views without ids give the same rows (the ids are added).
    plain = np.asarray(
        ppo.critic_features("agent_specific", jnp.asarray(VIEWS[..., :3]), None, False)
    )
    assert np.array_equal(plain, expected)


def test_critic_features_global_and_agent_specific_global_hand_built():
    gs = jnp.asarray(STATE)
    glob = np.asarray(ppo.critic_features("global", jnp.asarray(VIEWS), gs, True))
    assert np.array_equal(glob, np.array([[[7, 8, 1, 0], [7, 8, 0, 1]]], np.float32))
    asg = np.asarray(ppo.critic_features("agent_specific_global", jnp.asarray(VIEWS), gs, True))
    expected = np.array([[[1, 2, 3, 1, 0, 7, 8], [4, 5, 6, 0, 1, 7, 8]]], np.float32)
    assert np.array_equal(asg, expected)
    assert glob.shape[-1] == ppo.critic_dim("global", 3, 2, 2)
    assert asg.shape[-1] == ppo.critic_dim("agent_specific_global", 3, 2, 2)
    local = np.asarray(ppo.critic_features("local", jnp.asarray(VIEWS), gs, True))
    assert np.array_equal(local, VIEWS)


def test_critic_features_errors():
    with pytest.raises(ValueError, match="needs the global state"):
        ppo.critic_features("global", jnp.asarray(VIEWS), None, True)
    with pytest.raises(ValueError, match="critic_input must be one of"):
        ppo.critic_dim("joint", 3, 2, 2)
    with pytest.raises(ValueError, match="critic_input must be one of"):
        ppo.make_learner(ppo.make_config("mappo", **FAST, critic_input="joint"), env=ToyEnv())


@pytest.mark.parametrize("kind", ["global", "agent_specific_global"])
def test_mappo_critic_reads_the_learner_inputs(kind):
    """The rollout stores exactly `critic_features` of the views and the global state."""
    cfg = ppo.make_config("mappo", **{**FAST, "critic_input": kind, "num_envs": 4})
    learner = ppo.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(0))
    ts = state.runner.timestep
    expected = ppo.critic_features(
        kind, ts.observation.agents_view, ts.extras["global_state"], True
    )
    _, traj = jax.jit(learner.rollout)(state.params, state.runner, jax.random.PRNGKey(1))
    assert traj.critic_in.shape[-1] == learner.critic_dim
    assert np.array_equal(np.asarray(traj.critic_in[0]), np.asarray(expected))


def test_config_saved_before_critic_input_loads():
    """A config.json written before `critic_input` existed carries `centralised_critic`:
    true meant the global state + agent id, false the agent's own view."""
    from jaxmarl_envs.algorithms.config import from_dict, to_dict

    old = {k: v for k, v in to_dict(ppo.MAPPOConfig()).items() if k != "critic_input"}
    cfg = from_dict(ppo.MAPPOConfig, {**old, "centralised_critic": True})
    assert cfg.critic_input == "global" and cfg.centralised_critic
    cfg = from_dict(ppo.IPPOConfig, {**old, "algorithm": "ippo", "centralised_critic": False})
    assert cfg.critic_input == "local" and not cfg.centralised_critic
    # A current config is unchanged by the upgrade.
    assert from_dict(ppo.MAPPOConfig, to_dict(ppo.MAPPOConfig())) == ppo.MAPPOConfig()
    # One saved before value_norm, clip_per_network, critic_lr_scale and critic_layer_norm
    # existed ran without.
    new = ("value_norm", "clip_per_network", "critic_lr_scale", "critic_layer_norm")
    before = {k: v for k, v in to_dict(ppo.MAPPOConfig()).items() if k not in new}
    cfg = from_dict(ppo.MAPPOConfig, before)
    assert not cfg.value_norm and not cfg.clip_per_network and cfg.critic_lr_scale == 1.0
    assert not cfg.critic_layer_norm
    partial = from_dict(ppo.MAPPOConfig, {})  # a partial dict keeps the defaults
    assert partial.value_norm and partial.critic_lr_scale == 10.0 and partial.critic_layer_norm
    assert ppo.IPPOConfig().critic_lr_scale == 1.0


def test_team_rewards_hand_built():
    reward = jnp.array([[[1.0, 0.0], [0.5, 2.0]], [[0.0, 0.0], [0.0, 3.0]]])
    expected = np.array([[[1.0, 1.0], [2.5, 2.5]], [[0.0, 0.0], [3.0, 3.0]]])
    assert np.array_equal(np.asarray(ppo.team_rewards(reward)), expected)


def test_team_reward_trains_on_the_summed_reward():
    """With `team_reward` the update on a rollout where only agent 0 is rewarded equals the
    default update on the same rollout whose rewards were replaced by their sum over agents,
    and differs from the default update on the original rewards."""
    small = {**FAST, "num_envs": 4, "rollout_length": 8, "num_minibatches": 1}
    envs = ToyEnv(time_limit=3)
    own = ppo.make_learner(ppo.make_config("mappo", **small), env=envs)
    team = ppo.make_learner(ppo.make_config("mappo", team_reward=True, **small), env=envs)
    state = own.init(jax.random.PRNGKey(5))
    _, traj = jax.jit(own.rollout)(state.params, state.runner, jax.random.PRNGKey(6))
    # ToyEnv rewards both agents alike; keep agent 0's reward only, as the warehouse does.
    traj = traj.replace(reward=traj.reward * jnp.array([1.0, 0.0]))
    assert float(traj.reward[..., 0].max()) > 0
    hidden = (state.runner.actor_hidden, state.runner.critic_hidden)
    key = jax.random.PRNGKey(7)
    summed = traj.replace(reward=ppo.team_rewards(traj.reward))

    def update(learner, rollout):
        return jax.jit(learner.learn_from_rollout)(
            state.params, state.opt_state, rollout, hidden, key
        )[0]

    with_team, by_hand, with_own = update(team, traj), update(own, summed), update(own, traj)
    team_leaves = jax.tree_util.tree_leaves(with_team)
    hand_leaves = jax.tree_util.tree_leaves(by_hand)
    own_leaves = jax.tree_util.tree_leaves(with_own)
    assert all(np.array_equal(a, b) for a, b in zip(team_leaves, hand_leaves, strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(team_leaves, own_leaves, strict=True))


# ---------------------------------------------------------------------------------------------
# Value normalisation and gradient-norm metrics
# ---------------------------------------------------------------------------------------------


def test_value_norm_hand_built():
    norm = ppo.value_norm_init()
    mean, std = ppo.value_norm_stats(norm)
    assert float(mean) == 0.0 and np.isclose(float(std), 0.1)  # variance floor before data
    # beta 0.5, targets (1, 3): moments 1, 2.5 with weight 0.5 -> mean 2, mean square 5, std 1.
    norm = ppo.value_norm_update(norm, jnp.array([1.0, 3.0]), beta=0.5)
    mean, std = ppo.value_norm_stats(norm)
    assert np.isclose(float(mean), 2.0) and np.isclose(float(std), 1.0)
    assert np.isclose(float(ppo.normalize_values(norm, jnp.array(3.0))), 1.0)
    assert np.isclose(float(ppo.denormalize_values(norm, jnp.array(-1.0))), 1.0)
    # then (5, 5): moments 0.5 * (1, 2.5) + 0.5 * (5, 25) = (3, 13.75), weight 0.75
    # -> mean 4, mean square 18.33, variance 2.33.
    norm = ppo.value_norm_update(norm, jnp.array([[5.0], [5.0]]), beta=0.5)
    mean, std = ppo.value_norm_stats(norm)
    assert np.isclose(float(mean), 4.0) and np.isclose(float(std) ** 2, 55 / 3 - 16, atol=1e-5)
    # Near-constant targets: the variance floor 0.01 holds the scale at 0.1.
    flat = ppo.value_norm_update(ppo.value_norm_init(), jnp.full((4,), 0.02), beta=0.5)
    assert np.isclose(float(ppo.value_norm_stats(flat)[1]), 0.1)


def test_value_norm_update_runs_gae_on_raw_values():
    """With `value_norm` the rollout's critic outputs are de-normalised for GAE and the new
    statistics are the old ones updated with those targets; the optimiser state is the
    default one (the statistics are not optimised) and the networks move differently."""
    from jaxmarl_envs.algorithms.advantages import gae

    small = {**FAST, "num_envs": 4, "rollout_length": 8, "num_minibatches": 1}
    env = ToyEnv(time_limit=3)
    plain = ppo.make_learner(ppo.make_config("mappo", value_norm=False, **small), env=env)
    normed = ppo.make_learner(ppo.make_config("mappo", **small), env=env)
    state = normed.init(jax.random.PRNGKey(5))
    assert state.params.value_norm is not None
    assert plain.init(jax.random.PRNGKey(5)).params.value_norm is None
    # Statistics with mean 2 and standard deviation 3.
    stats = ppo.ValueNorm(mean=jnp.array(2.0), mean_sq=jnp.array(13.0), debias=jnp.array(1.0))
    params = state.params.replace(value_norm=stats)
    _, traj = jax.jit(normed.rollout)(params, state.runner, jax.random.PRNGKey(6))
    hidden = (state.runner.actor_hidden, state.runner.critic_hidden)
    key = jax.random.PRNGKey(7)
    new, opt_state, metrics = jax.jit(normed.learn_from_rollout)(
        params, state.opt_state, traj, hidden, key
    )
    _, targets = gae(
        traj.reward,
        traj.value * 3.0 + 2.0,
        traj.next_value * 3.0 + 2.0,
        traj.terminated,
        traj.episode_end,
        normed.config.gamma,
        normed.config.gae_lambda,
    )
    expected = ppo.value_norm_update(stats, targets)
    for a, b in zip(
        jax.tree_util.tree_leaves(new.value_norm), jax.tree_util.tree_leaves(expected), strict=True
    ):
        assert np.isclose(float(a), float(b), rtol=1e-6)
    assert np.isclose(float(metrics["value_norm_mean"]), float(ppo.value_norm_stats(expected)[0]))
    plain_state = plain.init(jax.random.PRNGKey(5))
    assert jax.tree_util.tree_structure(opt_state) == jax.tree_util.tree_structure(
        plain_state.opt_state
    )
    base, _, base_metrics = jax.jit(plain.learn_from_rollout)(
        plain_state.params, plain_state.opt_state, traj, hidden, key
    )
    assert not np.allclose(
        jax.tree_util.tree_leaves(new.critic)[0], jax.tree_util.tree_leaves(base.critic)[0]
    )
    # Per-network gradient norms are parts of the global one (per step, hence in the mean).
    norm = float(base_metrics["grad_norm"])
    parts = float(base_metrics["actor_grad_norm"]), float(base_metrics["critic_grad_norm"])
    assert norm > 0 and all(0 < p <= norm * (1 + 1e-6) for p in parts)
    assert 0.0 <= float(base_metrics["grad_clipped"]) <= 1.0
    assert "value_norm_mean" not in base_metrics


def test_mappo_value_norm_learns_toy_task():
    cfg = ppo.make_config("mappo", **FAST)
    assert cfg.value_norm and cfg.clip_per_network  # MAPPO's defaults; not IPPO's
    assert not ppo.make_config("ippo").value_norm
    train = ppo.make_train(cfg, env=ToyEnv(time_limit=5))
    state, metrics = train(jax.random.PRNGKey(0))
    assert float(metrics["eval"].episode_return[-1].mean()) >= 2.5
    mean, std = ppo.value_norm_stats(state.params.value_norm)
    assert float(mean) > 0.1 and float(std) > 0.1


def test_critic_lr_scale_scales_only_the_critic_step():
    """`critic_lr_scale=k`: the critic's Adam step is k times the unscaled one (the same as an
    Adam of its own at k * lr), over several steps; the actor's step is unchanged; at 1 the
    optimiser is the plain chain (same state structure as before the option existed)."""
    learners = {
        k: ppo.make_learner(ppo.make_config("mappo", critic_lr_scale=k, **FAST), env=ToyEnv())
        for k in (1.0, 3.0)
    }
    params = learners[1.0].init(jax.random.PRNGKey(0)).params.replace(value_norm=None)
    key = jax.random.PRNGKey(1)
    states = {k: lrn.optimizer.init(params) for k, lrn in learners.items()}
    for _ in range(3):
        key, sub = jax.random.split(key)
        shapes, treedef = jax.tree_util.tree_flatten(params)
        noise = jax.random.split(sub, len(shapes))
        grads = jax.tree_util.tree_unflatten(
            treedef, [jax.random.normal(k, x.shape) for k, x in zip(noise, shapes, strict=True)]
        )
        updates = {}
        for k, lrn in learners.items():
            updates[k], states[k] = lrn.optimizer.update(grads, states[k], params)
        for a, b in zip(leaves(updates[3.0].actor), leaves(updates[1.0].actor), strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(leaves(updates[3.0].critic), leaves(updates[1.0].critic), strict=True):
            np.testing.assert_allclose(a, 3.0 * b, rtol=1e-6)
        assert float(optax.tree.norm(updates[1.0].critic)) > 0
    plain = optax.chain(optax.identity(), optax.identity()).init(params)
    assert len(states[1.0]) == len(plain) and len(states[3.0]) == 3
    with pytest.raises(ValueError, match="critic_lr_scale must be > 0"):
        ppo.make_learner(ppo.make_config("mappo", critic_lr_scale=0.0, **FAST), env=ToyEnv())


def test_critic_layer_norm_normalises_the_critic_input():
    """`critic_layer_norm`: the critic's value does not change when an input vector is scaled
    and shifted (`a * x + b`, per vector), as LayerNorm removes both; without it, it does.
    The option adds only the LayerNorm's scale and offset to the critic, nothing to the actor."""
    from jaxmarl_envs.algorithms.networks import Critic

    x = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 3, 7))  # (T, B, N, D)
    scale = jnp.array([1.0, 10.0, 0.1, 100.0])[None, :, None, None]  # one per environment
    moved = scale * x + jnp.array([0.0, -5.0, 3.0, 50.0])[None, :, None, None]
    resets = jnp.zeros((1, 4, 3), bool)
    for norm in (True, False):
        net = Critic((16, 16), input_norm=norm)
        params = net.init(jax.random.PRNGKey(1), None, x, resets)
        _, v = net.apply(params, None, x, resets)
        _, v_moved = net.apply(params, None, moved, resets)
        assert v.shape == (1, 4, 3)
        if norm:
            np.testing.assert_allclose(v_moved, v, rtol=1e-4, atol=1e-5)
        else:
            assert not np.allclose(v_moved[:, 1:], v[:, 1:], atol=1e-3)
    cfg = ppo.make_config("mappo", critic_layer_norm=False, **FAST)
    plain = ppo.make_learner(cfg, env=ToyEnv())
    normed = ppo.make_learner(ppo.make_config("mappo", **FAST), env=ToyEnv())
    p_plain = plain.init(jax.random.PRNGKey(0)).params
    p_norm = normed.init(jax.random.PRNGKey(0)).params
    assert jax.tree_util.tree_structure(p_norm.actor) == jax.tree_util.tree_structure(p_plain.actor)
    extra = sum(x.size for x in leaves(p_norm.critic)) - sum(x.size for x in leaves(p_plain.critic))
    assert extra == 2 * plain.critic_dim  # LayerNorm's scale and offset over the input
    # On by default for MAPPO (since stop 38), off for rec_MAPPO and the IPPO family.
    assert ppo.make_config("mappo").critic_layer_norm
    assert not ppo.make_config("rec_mappo").critic_layer_norm
    assert not ppo.make_config("ippo").critic_layer_norm
    assert not ppo.make_config("rec_ippo").critic_layer_norm


def test_clip_per_network_hand_built():
    """A huge critic gradient shrinks the actor's step under the global clip, not under the
    per-network clip, where each network's gradient is clipped to the norm on its own."""
    grads = ppo.Params(actor={"w": jnp.array([0.3, 0.4])}, critic={"w": jnp.array([30.0, 40.0])})
    per_net = ppo.clip_per_network(0.5)
    clipped, _ = per_net.update(grads, per_net.init(grads))
    assert np.allclose(clipped.actor["w"], [0.3, 0.4])  # norm 0.5: untouched
    assert np.allclose(clipped.critic["w"], [0.3, 0.4])  # norm 50 -> 0.5
    joint = optax.clip_by_global_norm(0.5)
    shrunk, _ = joint.update(grads, joint.init(grads))
    assert np.allclose(shrunk.actor["w"], np.array([0.3, 0.4]) * 0.5 / np.hypot(0.5, 50.0))
    # The whole optimiser: the actor's update does not depend on the critic's gradient.
    cfg = ppo.make_config("mappo", clip_per_network=True, **FAST)
    learner = ppo.make_learner(cfg, env=ToyEnv())
    params = learner.init(jax.random.PRNGKey(0)).params
    opt_state = learner.optimizer.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    calm = grads.replace(critic=jax.tree_util.tree_map(jnp.zeros_like, params.critic))
    huge = grads.replace(critic=jax.tree_util.tree_map(lambda x: 1e4 * x, grads.critic))
    reference, _ = learner.optimizer.update(grads, opt_state, params)
    for critic_grads in (calm, huge):
        updates, _ = learner.optimizer.update(critic_grads, opt_state, params)
        for a, b in zip(
            jax.tree_util.tree_leaves(updates.actor),
            jax.tree_util.tree_leaves(reference.actor),
            strict=True,
        ):
            assert np.allclose(a, b)
    # The global clip: the huge critic gradient shrinks the actor's first step
    # (Adam's first step is lr * sign(g) unless the gradient is tiny against eps).
    cfg = ppo.make_config("mappo", clip_per_network=False, **FAST)
    default = ppo.make_learner(cfg, env=ToyEnv())
    small = jax.tree_util.tree_map(lambda x: 1e-6 * x, grads)
    ratio = []
    for g in (small, small.replace(critic=huge.critic)):
        updates, _ = default.optimizer.update(g, default.optimizer.init(params), params)
        ratio.append(float(optax.tree.norm(updates.actor)))
    assert ratio[1] < 0.5 * ratio[0]
    # Same optimiser-state structure either way (checkpoints and Sebulba are unaffected).
    assert jax.tree_util.tree_structure(opt_state) == jax.tree_util.tree_structure(
        default.optimizer.init(params)
    )
