"""SAC family: loss kernels on hand-built inputs, squashed Gaussian, targets, configs, learning."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from continuous_toy_env import ContinuousToyEnv
from toy_env import ToyEnv, WholeToyEnv

from jaxmarl_envs.algorithms import sac, training

# Small, fast settings shared by the learning tests (2-core CPU: compile time dominates).
FAST = dict(
    num_envs=8,
    rollout_length=4,
    grad_steps=4,
    batch_size=128,
    buffer_size=20_000,
    learning_starts=500,
    hidden_sizes=(32, 32),
    num_evaluations=5,
    eval_episodes=32,
    actor_lr=3e-3,
    critic_lr=3e-3,
    alpha_lr=3e-3,
    init_alpha=0.2,
    tau=0.05,
    gamma=0.9,
    gif=False,
)


# =============================================================================================
# Temperature and actor losses
# =============================================================================================


def test_temperature_gradient_raises_alpha_below_target_and_lowers_it_above():
    grad = jax.grad(sac.temperature_loss)
    log_alpha = jnp.asarray(np.log(0.2), jnp.float32)
    below = grad(log_alpha, jnp.array([0.5, 1.0]), jnp.asarray(1.2))
    above = grad(log_alpha, jnp.array([2.0, 1.6]), jnp.asarray(1.2))
    assert np.isclose(float(below), -0.45, atol=1e-6)  # mean(0.5 - 1.2, 1.0 - 1.2)
    assert np.isclose(float(above), 0.6, atol=1e-6)  # mean(2.0 - 1.2, 1.6 - 1.2)
    # A gradient-descent step therefore raises alpha below the target and lowers it above.
    assert float(jnp.exp(log_alpha - 0.1 * below)) > 0.2
    assert float(jnp.exp(log_alpha - 0.1 * above)) < 0.2
    # Per-state targets (discrete, legal-action counts) broadcast against the entropies.
    per_state = grad(log_alpha, jnp.array([[0.1, 1.0]]), jnp.array([[0.3, 0.6]]))
    assert np.isclose(float(per_state), 0.5 * (-0.2 + 0.4), atol=1e-6)


def test_temperature_loss_value_holds_entropy_fixed():
    entropy = jnp.array([0.5, 1.0])
    value = sac.temperature_loss(jnp.asarray(0.3), entropy, jnp.asarray(1.2))
    assert np.isclose(float(value), 0.3 * -0.45, atol=1e-6)
    # No gradient flows into the entropy (the actor is not trained by the alpha loss).
    g = jax.grad(lambda h: sac.temperature_loss(jnp.asarray(0.3), h, jnp.asarray(1.2)))(entropy)
    assert np.all(np.asarray(g) == 0.0)


def test_discrete_actor_loss_hand_built():
    probs = np.array([0.5, 0.25, 0.25])
    q = np.array([1.0, 2.0, 3.0])
    alpha = 0.1
    expected = np.sum(probs * (alpha * np.log(probs) - q))
    loss = sac.discrete_actor_loss(
        jnp.asarray(q, jnp.float32),
        jnp.log(jnp.asarray(probs, jnp.float32)),
        jnp.ones(3, bool),
        jnp.asarray(alpha),
    )
    assert np.isclose(float(loss), expected, atol=1e-6)
    # A masked action contributes nothing, however large its Q.
    dist = sac.MaskedCategorical.create(jnp.zeros(3), jnp.array([True, False, True]))
    masked = sac.discrete_actor_loss(
        jnp.array([1.0, 1e6, 3.0]), dist.log_probs, jnp.array([True, False, True]), alpha
    )
    expected = 0.5 * (alpha * np.log(0.5) - 1.0) + 0.5 * (alpha * np.log(0.5) - 3.0)
    assert np.isclose(float(masked), expected, atol=1e-5)


def test_discrete_actor_gradient_moves_probability_to_the_best_action():
    q = jnp.array([1.0, 2.0, 3.0])
    logits = jnp.zeros(3)

    def loss(logits):
        return sac.discrete_actor_loss(q, jax.nn.log_softmax(logits), jnp.ones(3, bool), 0.1)

    new = logits - 0.5 * jax.grad(loss)(logits)
    probs = np.asarray(jax.nn.softmax(new))
    assert probs[2] > 1 / 3 > probs[0] and probs[1] < probs[2]


def test_continuous_actor_loss_hand_built():
    loss = sac.continuous_actor_loss(jnp.array([-1.0, 0.5]), jnp.array([2.0, 3.0]), 0.2)
    assert np.isclose(float(loss), np.mean([0.2 * -1.0 - 2.0, 0.2 * 0.5 - 3.0]), atol=1e-6)


# =============================================================================================
# Targets
# =============================================================================================


def test_soft_target_termination_vs_truncation():
    reward = jnp.array([1.0, 1.0])
    next_value = jnp.array([10.0, 10.0])
    # Agent 0 terminated (no bootstrap); agent 1 was truncated (bootstrap from V(s')).
    target = sac.soft_target(reward, jnp.array([True, False]), next_value, 0.9)
    assert np.allclose(np.asarray(target), [1.0, 10.0], atol=1e-6)


def test_masked_expected_value_ignores_masked_actions():
    mask = jnp.array([True, False, True])
    dist = sac.MaskedCategorical.create(jnp.array([0.3, 5.0, -0.2]), mask)
    alpha = 0.3
    q_huge = jnp.array([1.0, 1e9, 2.0])
    q_nan = jnp.array([1.0, jnp.nan, 2.0])
    v_huge = float(sac.discrete_soft_value(q_huge, dist.log_probs, mask, alpha))
    v_nan = float(sac.discrete_soft_value(q_nan, dist.log_probs, mask, alpha))
    # The same value as the two-action distribution without the masked action.
    p = np.exp(np.array([0.3, -0.2])) / np.exp(np.array([0.3, -0.2])).sum()
    expected = float(np.sum(p * (np.array([1.0, 2.0]) - alpha * np.log(p))))
    assert np.isclose(v_huge, expected, atol=1e-5)
    assert np.isclose(v_nan, expected, atol=1e-5)
    # With no legal action at all the row counts as unmasked (as MaskedCategorical does).
    none = jnp.zeros(3, bool)
    uniform = sac.MaskedCategorical.create(jnp.zeros(3), none)
    v = float(sac.discrete_soft_value(jnp.array([1.0, 2.0, 3.0]), uniform.log_probs, none, 0.0))
    assert np.isclose(v, 2.0, atol=1e-6)


# =============================================================================================
# Squashed Gaussian
# =============================================================================================


def _cdf(dist_params, a):
    """P(A <= a) of the 1-D squashed Gaussian, through the inverse transform."""
    mean, std, low, high = dist_params
    u = np.arctanh(2.0 * (a - low) / (high - low) - 1.0)
    return 0.5 * (1.0 + math.erf((u - mean) / (std * math.sqrt(2.0))))


def test_tanh_gaussian_log_prob_matches_numerical_change_of_variables():
    mean, log_std, low, high = 0.3, -0.2, -2.0, 3.0
    dist = sac.TanhGaussian(
        jnp.array([mean]), jnp.array([log_std]), jnp.array([low]), jnp.array([high])
    )
    params = (mean, np.exp(log_std), low, high)
    eps = 1e-4
    for a in (-1.7, -0.5, 0.0, 0.9, 2.5):
        numeric = (_cdf(params, a + eps) - _cdf(params, a - eps)) / (2 * eps)
        analytic = float(jnp.exp(dist.log_prob(jnp.array([a], jnp.float32))))
        assert np.isclose(analytic, numeric, rtol=2e-3), (a, analytic, numeric)
    # The density integrates to one over [low, high].
    grid = np.linspace(low + 1e-4, high - 1e-4, 20001, dtype=np.float32)
    density = np.exp(np.asarray(jax.vmap(lambda x: dist.log_prob(x[None]))(jnp.asarray(grid))))
    assert np.isclose(np.trapezoid(density, grid), 1.0, atol=2e-3)


def test_tanh_gaussian_sample_log_prob_is_consistent_and_bounded():
    dist = sac.TanhGaussian(
        jnp.array([[0.5, -3.0], [0.0, 1.0]]),
        jnp.array([[-1.0, 0.5], [0.2, -2.0]]),
        jnp.array([-2.0, 0.0]),
        jnp.array([2.0, 1.0]),
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    squashed, log_prob = jax.vmap(dist.sample_and_log_prob)(keys)
    action = dist.to_bounds(squashed)
    assert squashed.shape == (256, 2, 2) and log_prob.shape == (256, 2)
    assert np.all(np.abs(np.asarray(squashed)) <= 1.0)
    assert np.all(np.asarray(action) >= np.array([-2.0, 0.0]))
    assert np.all(np.asarray(action) <= np.array([2.0, 1.0]))
    # Densities agree (away from the saturated edges where arctanh loses precision).
    inner = np.all(np.abs(np.asarray(squashed)) < 0.999, axis=-1)
    again = np.asarray(jax.vmap(dist.log_prob)(action))
    assert inner.mean() > 0.5
    assert np.allclose(again[inner], np.asarray(log_prob)[inner], atol=2e-3)
    assert np.allclose(
        np.asarray(dist.to_bounds(dist.mode()))[0],
        [2.0 * np.tanh(0.5), 0.5 * (1 + np.tanh(-3.0)) * 1.0],
    )


# =============================================================================================
# Target networks and one gradient step
# =============================================================================================


def test_soft_update_exact():
    target = {"w": jnp.zeros(3), "b": jnp.array([2.0])}
    online = {"w": jnp.ones(3), "b": jnp.array([0.0])}
    once = sac.soft_update(target, online, 0.1)
    twice = sac.soft_update(once, online, 0.1)
    assert np.allclose(once["w"], 0.1) and np.allclose(once["b"], 1.8)
    assert np.allclose(twice["w"], 0.19) and np.allclose(twice["b"], 1.62)
    assert np.allclose(sac.soft_update(target, online, 1.0)["w"], 1.0)


def _batch(learner, key, num=16):
    """A random replay batch with the shapes `rollout` stores."""
    example = learner.example_transition()
    keys = iter(jax.random.split(key, 16))

    def fill(x):
        shape = (num, *x.shape)
        if x.dtype == bool:
            return jax.random.bernoulli(next(keys), 0.7, shape)
        if jnp.issubdtype(x.dtype, jnp.integer):
            return jax.random.randint(next(keys), shape, 0, learner.actions.dim)
        return jax.random.uniform(next(keys), shape, minval=-1.0, maxval=1.0)

    return jax.tree_util.tree_map(fill, example)


@pytest.fixture(scope="module")
def masac_discrete():
    # The soft (entropy-backup) target, so the hand-built targets below include alpha log pi.
    cfg = sac.make_config("masac", **FAST, total_steps=5 * 32 * 40, entropy_backup=True)
    learner = sac.make_learner(cfg, env=ToyEnv(time_limit=5))
    return learner, learner.init(jax.random.PRNGKey(0))


def test_gradient_step_soft_updates_targets(masac_discrete):
    learner, state = masac_discrete
    batch = _batch(learner, jax.random.PRNGKey(1))
    buffer_state = learner.buffer.add(learner.buffer.init(learner.example_transition()), batch)
    # Make the targets differ from the online critics first.
    params = state.params.replace(
        target_critic=jax.tree_util.tree_map(lambda x: x + 0.5, state.params.critic)
    )
    (new, _), stats = jax.jit(learner.gradient_step)(
        (params, state.opt_state), jax.random.PRNGKey(2), buffer_state
    )
    tau = learner.config.tau
    for t_new, t_old, c_new, c_old in zip(
        jax.tree_util.tree_leaves(new.target_critic),
        jax.tree_util.tree_leaves(params.target_critic),
        jax.tree_util.tree_leaves(new.critic),
        jax.tree_util.tree_leaves(params.critic),
        strict=True,
    ):
        assert np.allclose(t_new, tau * c_new + (1 - tau) * t_old, atol=1e-6)
        assert not np.allclose(c_new, c_old)
    assert np.isfinite(float(stats["critic_loss"]))
    assert float(stats["alpha"]) != pytest.approx(learner.config.init_alpha)


def test_td_target_bootstraps_only_without_termination(masac_discrete):
    learner, state = masac_discrete
    batch = _batch(learner, jax.random.PRNGKey(3))
    key = jax.random.PRNGKey(4)
    ended = batch.replace(terminated=jnp.ones_like(batch.terminated))
    going = batch.replace(terminated=jnp.zeros_like(batch.terminated))
    t_end = np.asarray(learner.td_target(state.params, ended, key))
    t_go = np.asarray(learner.td_target(state.params, going, key))
    assert np.allclose(t_end, np.asarray(batch.reward), atol=1e-6)
    assert not np.allclose(t_go, t_end, atol=1e-3)
    # The bootstrapped part is gamma * V(true successor): it moves with next_obs only.
    moved = going.replace(next_obs=going.next_obs + 1.0)
    assert not np.allclose(np.asarray(learner.td_target(state.params, moved, key)), t_go)


def test_reward_scale_scales_only_the_reward_of_the_td_target(masac_discrete):
    import copy

    learner, state = masac_discrete
    batch = _batch(learner, jax.random.PRNGKey(3))
    key = jax.random.PRNGKey(4)
    scaled = copy.copy(learner)  # a frozen dataclass: same networks, only the config differs
    object.__setattr__(scaled, "config", dataclasses.replace(learner.config, reward_scale=0.25))
    ended = batch.replace(terminated=jnp.ones_like(batch.terminated))
    t_end = np.asarray(scaled.td_target(state.params, ended, key))
    assert np.allclose(t_end, 0.25 * np.asarray(batch.reward), atol=1e-6)
    going = batch.replace(terminated=jnp.zeros_like(batch.terminated))
    t_go = np.asarray(learner.td_target(state.params, going, key))
    t_go_scaled = np.asarray(scaled.td_target(state.params, going, key))
    # The bootstrapped part is unchanged: the difference is 0.75 of the reward.
    assert np.allclose(t_go - t_go_scaled, 0.75 * np.asarray(batch.reward), atol=1e-5)


def test_td_target_is_masked_expected_value(masac_discrete):
    """The learner's target equals r + gamma * sum over legal a of pi(a) (min Q_targ(a) -
    alpha log pi(a)), whatever the target critics say about the masked action."""
    learner, state = masac_discrete
    batch = _batch(learner, jax.random.PRNGKey(5))
    # Agent 1 of ToyEnv can never take action 1.
    mask = jnp.broadcast_to(jnp.array([[True, True, True], [True, False, True]]), batch.mask.shape)
    batch = batch.replace(next_mask=mask, terminated=jnp.zeros_like(batch.terminated))
    key = jax.random.PRNGKey(6)
    target = np.asarray(learner.td_target(state.params, batch, key))
    # Recompute by hand with the same sampled next actions of the other agent.
    dist = learner.distribution(state.params.actor, batch.next_obs, mask)
    features = learner.critic_features(batch.next_obs, batch.next_state)
    q = learner.q_values(state.params.target_critic, features, dist.sample(key), None)
    q = np.asarray(q.min(0), np.float64)
    q[:, 1, 1] = 1e9  # the masked action's value must not matter
    probs = np.asarray(jnp.exp(dist.log_probs), np.float64)
    assert np.all(probs[:, 1, 1] == 0.0)
    alpha = learner.config.init_alpha
    legal_terms = np.where(
        np.asarray(mask), probs * (q - alpha * np.log(np.maximum(probs, 1e-30))), 0.0
    )
    expected = np.asarray(batch.reward) + learner.config.gamma * legal_terms.sum(-1)
    assert np.allclose(target, expected, atol=1e-4)


def test_td_target_without_entropy_backup_is_expected_q(masac_discrete):
    learner, state = masac_discrete
    plain = dataclasses.replace(
        learner, config=dataclasses.replace(learner.config, entropy_backup=False)
    )
    batch = _batch(learner, jax.random.PRNGKey(8))
    batch = batch.replace(terminated=jnp.zeros_like(batch.terminated))
    key = jax.random.PRNGKey(9)
    dist = learner.distribution(state.params.actor, batch.next_obs, batch.next_mask)
    features = learner.critic_features(batch.next_obs, batch.next_state)
    q = learner.q_values(state.params.target_critic, features, dist.sample(key), None).min(0)
    probs = jnp.exp(dist.log_probs)
    expected_q = jnp.sum(jnp.where(sac.legal(batch.next_mask), probs * q, 0.0), -1)
    expected = batch.reward + learner.config.gamma * expected_q
    assert np.allclose(plain.td_target(state.params, batch, key), expected, atol=1e-5)
    # The soft target adds the entropy bonus gamma * alpha * H(pi(.|s')) > 0.
    soft = learner.td_target(state.params, batch, key)
    bonus = learner.config.gamma * learner.config.init_alpha * dist.entropy()
    assert np.allclose(soft - expected, bonus, atol=1e-4)


def test_masac_discrete_critic_sees_others_actions_not_its_own(masac_discrete):
    learner, state = masac_discrete
    batch = _batch(learner, jax.random.PRNGKey(7))
    features = learner.critic_features(batch.obs, batch.state)
    q = np.asarray(learner.q_values(state.params.critic, features, batch.action, None))
    changed = batch.action.at[:, 0].set((batch.action[:, 0] + 1) % 3)
    q2 = np.asarray(learner.q_values(state.params.critic, features, changed, None))
    assert q.shape == (2, 16, 2, 3)
    assert np.allclose(q[:, :, 0], q2[:, :, 0])  # agent 0's Q covers all its own actions
    assert not np.allclose(q[:, :, 1], q2[:, :, 1])  # agent 1 conditions on agent 0's action


@pytest.mark.parametrize(
    "critic_input, size",
    [
        # ToyEnv: views of 4 values (+ 2 id entries), a global state of 8, 2 agents, 3 actions;
        # every MASAC critic also reads the other agents' one-hot actions (2 * 3).
        ("local", 4 + 2),
        ("global", 8 + 2),
        ("agent_specific", 4 + 2 + 2 * 4),
        ("agent_specific_global", 4 + 2 + 8),
    ],
)
def test_masac_critic_input_option(critic_input, size):
    cfg = sac.make_config("masac", **FAST, total_steps=5 * 32 * 40, critic_input=critic_input)
    learner = sac.make_learner(cfg, env=ToyEnv(time_limit=5))
    assert learner.critic_dim == size + 2 * 3
    # Only the inputs that read the global state store it in the replay buffer.
    needs_state = critic_input in ("global", "agent_specific_global")
    assert (learner.example_transition().state is not None) == needs_state
    batch = _batch(learner, jax.random.PRNGKey(0))
    features = np.asarray(learner.critic_features(batch.obs, batch.state))
    assert features.shape == (16, 2, size)
    obs = np.asarray(batch.obs)
    if critic_input == "local":
        np.testing.assert_array_equal(features, obs)  # the view as the actor sees it
    if critic_input in ("agent_specific", "agent_specific_global"):  # own view, then its id
        np.testing.assert_array_equal(features[..., :4], obs[..., :4])
        np.testing.assert_array_equal(features[..., 4:6], np.broadcast_to(np.eye(2), (16, 2, 2)))
    if critic_input == "agent_specific":  # then both agents' views without ids
        np.testing.assert_array_equal(features[:, 0, 6:], obs[:, :, :4].reshape(16, 8))
        np.testing.assert_array_equal(features[:, 1, 6:], features[:, 0, 6:])
    if critic_input == "global":  # the state, then the id
        np.testing.assert_array_equal(features[:, 1, :8], np.asarray(batch.state))
        np.testing.assert_array_equal(features[:, 1, 8:], np.broadcast_to([0.0, 1.0], (16, 2)))
    if critic_input == "agent_specific_global":  # own view and id, then the state
        np.testing.assert_array_equal(features[:, 1, -8:], np.asarray(batch.state))
    state = learner.init(jax.random.PRNGKey(1))
    q = learner.q_values(state.params.critic, jnp.asarray(features), batch.action, None)
    assert q.shape == (2, 16, 2, 3)


def test_joint_action_order():
    np.testing.assert_array_equal(
        sac.joint_action_order(3, True), [[0, 1, 2], [1, 0, 2], [2, 0, 1]]
    )
    np.testing.assert_array_equal(sac.joint_action_order(3, False), [[0, 1, 2]] * 3)


@pytest.mark.parametrize("critic_input", ["local", "global"])
def test_masac_critic_reads_the_joint_action_in_its_inputs_order(critic_input):
    """With its own view ('local', which lists itself first, then the others in index order)
    agent i reads `[own, the others in index order]`; with the global state (agents in index
    order) the joint action in index order. Discrete: the own slot is zero; continuous: it
    holds the own action."""
    cfg = sac.make_config("masac", **FAST, total_steps=5 * 32 * 40, critic_input=critic_input)
    ego = critic_input == "local"
    for env in (ToyEnv(time_limit=5), ContinuousToyEnv(time_limit=5)):
        learner = sac.make_learner(cfg, env=env)
        state = learner.init(jax.random.PRNGKey(0))
        batch = _batch(learner, jax.random.PRNGKey(1))
        features = learner.critic_features(batch.obs, batch.state)
        continuous = learner.actions.continuous
        own = jnp.full_like(batch.action, 0.5) if continuous else None
        q = learner.q_values(state.params.critic, features, batch.action, own)
        dim = learner.actions.dim
        acts = batch.action if continuous else jax.nn.one_hot(batch.action, dim)
        rows = []
        for i in range(2):
            slots = [acts[:, j] for j in range(2)]
            slots[i] = own[:, i] if continuous else jnp.zeros_like(slots[i])
            if ego and i == 1:
                slots = [slots[1], slots[0]]
            rows.append(jnp.concatenate(slots, axis=-1))
        x = jnp.concatenate([features, jnp.stack(rows, axis=1)], axis=-1)
        expected = jax.vmap(lambda p, x=x, lr=learner: sac._apply(lr.critic, p, x))(
            state.params.critic
        )
        expected = expected[..., 0] if continuous else expected
        np.testing.assert_allclose(np.asarray(q), np.asarray(expected), atol=1e-6)


def test_isac_critic_can_read_the_global_state_too():
    """ISAC with `critic_input='global'`: the state and id, plus only its own action (none
    for discrete actions: the critic outputs one value per own action)."""
    cfg = sac.make_config("isac", **FAST, total_steps=5 * 32 * 40, critic_input="global")
    learner = sac.make_learner(cfg, env=ToyEnv(time_limit=5))
    assert learner.critic_dim == 8 + 2
    continuous = sac.make_learner(cfg, env=ContinuousToyEnv(time_limit=5))
    assert continuous.critic_dim == continuous.env.global_state_spec().shape[0] + 2 + 2


def test_sac_config_saved_before_critic_input_reads_as_what_it_ran():
    """A config.json written before `critic_input` existed: MASAC read the global state
    (+ the own view with `critic_own_view`), ISAC its own view."""
    from jaxmarl_envs.algorithms.config import from_dict, to_dict

    old = to_dict(sac.make_config("masac"))
    del old["critic_input"]
    cfg = from_dict(sac.MASACConfig, {**old, "critic_own_view": False})
    assert cfg.critic_input == "global" and cfg.centralised_critic
    cfg = from_dict(sac.MASACConfig, {**old, "critic_own_view": True})
    assert cfg.critic_input == "agent_specific_global"
    old_isac = {**old, "algorithm": "isac", "centralised_critic": False, "critic_own_view": False}
    cfg = from_dict(sac.ISACConfig, old_isac)
    assert cfg.critic_input == "local" and not cfg.centralised_critic


def test_masac_continuous_joint_action_puts_own_action_in_its_slot():
    cfg = sac.make_config("masac", **FAST, total_steps=5 * 32 * 40)
    learner = sac.make_learner(cfg, env=ContinuousToyEnv(time_limit=5))
    state = learner.init(jax.random.PRNGKey(0))
    batch = _batch(learner, jax.random.PRNGKey(1))
    features = learner.critic_features(batch.obs, batch.state)
    own = jnp.full_like(batch.action, 0.25)
    q = np.asarray(learner.q_values(state.params.critic, features, batch.action, own))
    # Agent 0's value with own=0.25 equals its value on the joint action with slot 0 = 0.25.
    joint0 = batch.action.at[:, 0].set(0.25)
    ref0 = np.asarray(learner.q_values(state.params.critic, features, joint0, joint0))
    joint1 = batch.action.at[:, 1].set(0.25)
    ref1 = np.asarray(learner.q_values(state.params.critic, features, joint1, joint1))
    # Own view (2) + agent id (2) + the joint action (2 agents x 2 dimensions).
    assert learner.critic_dim == 2 + 2 + 2 * 2
    assert np.allclose(q[:, :, 0], ref0[:, :, 0], atol=1e-6)
    assert np.allclose(q[:, :, 1], ref1[:, :, 1], atol=1e-6)


def test_rollout_stores_true_successor_on_truncation():
    cfg = sac.make_config("isac", **{**FAST, "rollout_length": 8, "num_envs": 4})
    cfg = dataclasses.replace(cfg, total_steps=5 * 32 * 40)
    learner = sac.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(3))
    _, (traj, _, done) = jax.jit(learner.rollout)(
        state.params.actor, state.runner, jax.random.PRNGKey(4), jnp.asarray(True)
    )
    step_count = np.asarray(traj.obs[..., 0, 3])  # ToyEnv views end with the step count
    next_count = np.asarray(traj.next_obs[..., 0, 3])
    ended = np.asarray(done)
    truncated = ended & ~np.asarray(traj.terminated[..., 0])
    assert truncated.any()
    # On a truncated step the stored successor is the final observation (count 3), while
    # the next stored step starts the new episode (count 0).
    assert np.all(next_count[truncated] == 3)
    assert np.all(step_count[1:][truncated[:-1]] == 0)
    assert np.all(next_count[~ended] == step_count[~ended] + 1)
    # Uniform exploration never takes agent 1's masked action.
    assert not np.any(np.asarray(traj.action[..., 1]) == 1)


def test_masac_replay_stores_whole_numbers_narrow_and_learns_from_them_as_floats():
    """MASAC stores what the environment declares whole numbers in a narrow dtype (uint8 for
    the warehouse's view and 0/1 global state: 4x less replay memory); a rollout stores
    exactly the environment's values, and the sampled batch is float32 again before any
    network sees it."""
    rware_cfg = {**FAST, "env_id": "rware-tiny-2ag", "buffer_size": 64, "critic_input": "global"}
    cfg = sac.make_config("masac", **rware_cfg)
    rware = sac.make_learner(cfg)
    assert (rware.obs_dtype, rware.state_dtype) == (np.uint8, np.uint8)
    item = rware.example_transition()
    assert item.obs.dtype == item.next_obs.dtype == item.state.dtype == np.uint8
    mpe = sac.make_learner(sac.make_config("isac", **{**FAST, "env_id": "mpe-simple_spread"}))
    assert (mpe.obs_dtype, mpe.example_transition().state) == (np.float32, None)

    cfg = dataclasses.replace(cfg, env_id="toy", buffer_size=FAST["buffer_size"])
    learner = sac.make_learner(cfg, env=WholeToyEnv(time_limit=3))
    plain = sac.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(0))
    args = (state.params.actor, state.runner, jax.random.PRNGKey(1), jnp.asarray(True))
    _, (traj, _, _) = jax.jit(learner.rollout)(*args)
    _, (float_traj, _, _) = jax.jit(plain.rollout)(*args)
    assert traj.obs.dtype == traj.state.dtype == traj.next_state.dtype == np.uint8
    assert float_traj.state.dtype == np.float32
    as_float = learner.as_float(traj)
    for name in ("obs", "next_obs", "state", "next_state"):
        assert getattr(as_float, name).dtype == np.float32
        np.testing.assert_array_equal(getattr(as_float, name), getattr(float_traj, name))
    assert as_float.action.dtype == traj.action.dtype  # actions and masks untouched
    np.testing.assert_array_equal(as_float.action, float_traj.action)


# =============================================================================================
# Configs
# =============================================================================================


def test_defaults_are_the_ones_that_learn_on_grid_tasks_and_mpe():
    """The documented defaults (see `SACConfig`; measured in benchmarks/RESULTS.md)."""
    for name in ("isac", "masac"):
        c = sac.make_config(name)
        assert not c.entropy_backup and c.init_alpha == 0.05 and c.autotune
        assert c.actor_lr == c.critic_lr == c.alpha_lr == 1e-3
        assert c.target_entropy_scale == 0.95 and c.hidden_sizes == (64, 64)


def test_configs_and_names():
    assert sac.make_config("isac").algorithm == "isac"
    masac = sac.make_config("masac")
    assert isinstance(masac, sac.MASACConfig) and masac.centralised_critic
    assert masac.critic_input == "local" and not masac.needs_global_state
    assert not sac.make_config("isac").centralised_critic
    assert sac.make_config("isac", batch_size=7).batch_size == 7
    with pytest.raises(ValueError, match="unknown SAC algorithm"):
        sac.make_config("sac")


def test_unbounded_continuous_actions_are_rejected():
    from jaxmarl_envs import specs

    class Unbounded(ContinuousToyEnv):
        @property
        def action_spec(self):
            return specs.Array((2, 2), np.float32, "action")

    with pytest.raises(ValueError, match="must be bounded"):
        sac.make_learner(sac.make_config("isac", **FAST, total_steps=5 * 32 * 40), Unbounded())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(total_steps=100), "fewer than num_evaluations"),
        (dict(gamma=1.5), "gamma must be in [0, 1]"),
        (dict(tau=0.0), "tau must be in (0, 1]"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(grad_steps=0), "grad_steps must be >= 1"),
        (dict(buffer_size=64, num_envs=16, rollout_length=8), "must hold one rollout"),
        (dict(actor_lr=0.0), "actor_lr must be > 0"),
        (dict(init_alpha=-1.0), "init_alpha must be > 0"),
        (dict(reward_scale=0.0), "reward_scale must be > 0"),
        (dict(target_entropy_scale=1.5), "target_entropy_scale"),
        (dict(learning_starts=-1), "learning_starts must be >= 0"),
        (dict(learning_starts=10**9), "leaves no training"),
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(num_envs=0), "num_envs must be >= 1"),
        (dict(num_devices=3), "num_devices"),
    ],
)
def test_derive_errors(overrides, message):
    cfg = dataclasses.replace(sac.ISACConfig(), **overrides)
    with pytest.raises(ValueError) as err:
        sac.derive(cfg, num_devices=1)
    assert message in str(err.value)


def test_derive_sizes():
    d = sac.derive(
        sac.make_config(
            "isac",
            total_steps=10_000,
            num_envs=8,
            rollout_length=4,
            num_evaluations=3,
            learning_starts=100,
        ),
        num_devices=1,
    )
    # 10,000 steps need ceil(10000 / 32) = 313 updates: 3 intervals of ceil(313 / 3) = 105.
    assert d.steps_per_update == 32 and d.num_updates == 315 and d.num_evaluations == 3
    assert d.updates_per_eval == 105 and d.total_steps == 315 * 32 >= 10_000
    assert d.explore_updates == 4  # ceil(100 / 32)


# =============================================================================================
# Learning (random policy measured in the same test)
# =============================================================================================


def _random_return(learner, key, episodes=256):
    """Mean team return of uniformly random legal actions (the exploration policy)."""

    def act(params, hidden, obs_view, mask, new_episode, key):
        return learner.to_env(learner.random_action(key, obs_view, mask)), hidden

    evaluate = training.make_evaluator(learner.eval_env, act, learner.initial_hidden, episodes)
    return float(jax.jit(evaluate)(None, key).episode_return.mean())


@pytest.fixture(scope="module")
def isac_discrete_train():
    cfg = sac.make_config("isac", **FAST, total_steps=5 * 32 * 40)
    return sac.make_train(cfg, env=ToyEnv(time_limit=5))


@pytest.fixture(scope="module")
def isac_discrete_run(isac_discrete_train):
    return isac_discrete_train(jax.random.PRNGKey(0))


def test_discrete_isac_learns_toy_task(isac_discrete_train, isac_discrete_run):
    state, metrics = isac_discrete_run
    returns = np.asarray(metrics["eval"].episode_return).mean(-1)
    baseline = _random_return(isac_discrete_train.learner, jax.random.PRNGKey(5))
    assert baseline < 1.8, baseline
    assert returns[-1] >= 2.5, (returns, baseline)
    assert int(state.update_step) == 200 and float(state.best_return) >= returns[-1]
    assert np.all(np.isnan(metrics["eval"].win))


def test_same_seed_identical_different_seed_differs(isac_discrete_train, isac_discrete_run):
    state_a, metrics_a = isac_discrete_run
    state_b, metrics_b = isac_discrete_train(jax.random.PRNGKey(0))
    state_c, _ = isac_discrete_train(jax.random.PRNGKey(1))
    for a, b in zip(
        jax.tree_util.tree_leaves(state_a), jax.tree_util.tree_leaves(state_b), strict=True
    ):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(metrics_a["eval"].episode_return, metrics_b["eval"].episode_return)
    leaves_a = jax.tree_util.tree_leaves(state_a.params)
    leaves_c = jax.tree_util.tree_leaves(state_c.params)
    assert any(not np.allclose(a, c) for a, c in zip(leaves_a, leaves_c, strict=True))


def test_discrete_masac_per_agent_params_learns_toy_task():
    cfg = sac.make_config("masac", share_params=False, **FAST, total_steps=5 * 32 * 40)
    train = sac.make_train(cfg, env=ToyEnv(time_limit=5))
    state, metrics = train(jax.random.PRNGKey(0))
    # Own view (4) + agent id (2) + the other agents' one-hot actions (2 * 3).
    assert train.learner.critic_dim == 4 + 2 + 6
    assert all(x.shape[0] == 2 for x in jax.tree_util.tree_leaves(state.params.actor))
    returns = np.asarray(metrics["eval"].episode_return).mean(-1)
    baseline = _random_return(train.learner, jax.random.PRNGKey(5))
    assert returns[-1] >= 2.5 and returns[-1] > baseline + 1.0, (returns, baseline)


@pytest.mark.parametrize("name", ["isac", "masac"])
def test_continuous_learns(name):
    cfg = sac.make_config(name, **FAST, total_steps=5 * 32 * 40)
    train = sac.make_train(cfg, env=ContinuousToyEnv(time_limit=5))
    assert train.learner.actions.continuous and train.learner.actions.dim == 2
    _, metrics = train(jax.random.PRNGKey(0))
    returns = np.asarray(metrics["eval"].episode_return).mean(-1)
    baseline = _random_return(train.learner, jax.random.PRNGKey(5))
    # Uniform random actions in [-2, 2]^2 score about -33; the optimum is 0.
    assert baseline < -25.0, baseline
    assert returns[-1] > -3.0, (returns, baseline)
    # The temperature is learnt (it moved away from its initial value).
    alpha = np.asarray(metrics["train"]["alpha"])
    assert np.isfinite(alpha[-1]) and abs(alpha[-1] - cfg.init_alpha) > 0.01, alpha
