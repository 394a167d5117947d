"""Unit tests of the shared kernels: GAE, lambda-returns, distributions, PPO losses, GRU resets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs.algorithms.advantages import gae, lambda_returns
from jaxmarl_envs.algorithms.distributions import DiagGaussian, MaskedCategorical
from jaxmarl_envs.algorithms.losses import clipped_surrogate_loss, clipped_value_loss, normalize
from jaxmarl_envs.algorithms.networks import Actor, Critic, MultiAgentNet
from jaxmarl_envs.algorithms.value_kernels import n_step_targets, td_target

REWARDS = jnp.array([1.0, 2.0, 3.0])
VALUES = jnp.array([0.5, 1.0, 1.5])
NEXT_VALUES = jnp.array([1.0, 9.0, 2.0])  # 9.0: value of the final observation at step 1


def test_gae_truncation_bootstraps_on_final_observation():
    adv, targets = gae(
        REWARDS,
        VALUES,
        NEXT_VALUES,
        jnp.array([False, False, False]),
        jnp.array([False, True, False]),
        0.9,
        0.8,
    )
    # delta = [1 + .9*1 - .5, 2 + .9*9 - 1, 3 + .9*2 - 1.5] = [1.4, 9.1, 3.3]
    expected = np.array([1.4 + 0.72 * 9.1, 9.1, 3.3])
    assert np.allclose(adv, expected, atol=1e-6)
    assert np.allclose(targets, expected + np.asarray(VALUES), atol=1e-6)


def test_gae_termination_does_not_bootstrap():
    adv, _ = gae(
        REWARDS,
        VALUES,
        NEXT_VALUES,
        jnp.array([False, True, False]),
        jnp.array([False, True, False]),
        0.9,
        0.8,
    )
    expected = np.array([1.4 + 0.72 * 1.0, 1.0, 3.3])
    assert np.allclose(adv, expected, atol=1e-6)


def test_gae_without_episode_end_matches_direct_sum():
    rng = np.random.default_rng(0)
    r, v, nv = (jnp.asarray(rng.normal(size=6), jnp.float32) for _ in range(3))
    nv = jnp.concatenate([v[1:], nv[-1:]])  # consistent successor values
    no = jnp.zeros(6, bool)
    adv, _ = gae(r, v, nv, no, no, 0.97, 0.9)
    deltas = np.asarray(r + 0.97 * nv - v)
    direct = [sum((0.97 * 0.9) ** (k - t) * deltas[k] for k in range(t, 6)) for t in range(6)]
    assert np.allclose(adv, direct, atol=1e-5)


def test_gae_agent_axis_and_lambda_one_gives_returns():
    r = jnp.ones((4, 3))
    v = jnp.zeros((4, 3))
    end = jnp.zeros((4, 3), bool).at[1].set(True)
    term = end
    adv, _ = gae(r, v, jnp.zeros((4, 3)), term, end, 1.0, 1.0)
    assert np.allclose(adv[:, 0], [2.0, 1.0, 2.0, 1.0])


def test_lambda_returns_one_step_and_cut():
    g = lambda_returns(
        REWARDS,
        NEXT_VALUES,
        jnp.array([False, False, False]),
        jnp.array([False, True, False]),
        0.9,
        0.0,
    )
    assert np.allclose(g, np.asarray(REWARDS) + 0.9 * np.asarray(NEXT_VALUES), atol=1e-6)
    g1 = lambda_returns(
        REWARDS,
        NEXT_VALUES,
        jnp.array([False, True, False]),
        jnp.array([False, True, False]),
        0.9,
        1.0,
    )
    # lambda=1: Monte-Carlo within the episode; step 1 terminated.
    assert np.allclose(g1, [1.0 + 0.9 * 2.0, 2.0, 3.0 + 0.9 * 2.0], atol=1e-6)


def test_masked_categorical_never_samples_illegal_actions():
    logits = jnp.array([[1.0, 5.0, 3.0], [0.0, 0.0, 0.0]])
    mask = jnp.array([[True, False, True], [False, False, False]])  # row 2: nothing legal
    dist = MaskedCategorical.create(logits, mask)
    samples = jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(0), 4000))
    assert not np.any(np.asarray(samples[:, 0]) == 1)
    assert set(np.unique(samples[:, 1]).tolist()) == {0, 1, 2}  # no legal action -> uniform
    p2 = np.mean(np.asarray(samples[:, 0]) == 2)
    assert abs(p2 - np.exp(3) / (np.exp(1) + np.exp(3))) < 0.03
    assert int(dist.mode()[0]) == 2


def test_masked_categorical_log_prob_and_entropy():
    dist = MaskedCategorical.create(jnp.array([1.0, 5.0, 3.0]), jnp.array([True, False, True]))
    lse = np.log(np.exp(1.0) + np.exp(3.0))
    assert np.isclose(dist.log_prob(jnp.array(0)), 1.0 - lse, atol=1e-6)
    assert np.isclose(dist.log_prob(jnp.array(2)), 3.0 - lse, atol=1e-6)
    assert float(dist.log_prob(jnp.array(1))) < -1e8
    p = np.array([np.exp(1.0 - lse), np.exp(3.0 - lse)])
    assert np.isclose(dist.entropy(), -(p * np.log(p)).sum(), atol=1e-6)
    assert np.isfinite(float(dist.entropy()))
    grads = jax.grad(
        lambda lg: MaskedCategorical.create(lg, jnp.array([True, False, True])).entropy()
    )(jnp.array([1.0, 5.0, 3.0]))
    assert np.all(np.isfinite(grads)) and float(grads[1]) == 0.0


def test_gaussian_log_prob_and_entropy():
    mean, log_std = jnp.array([0.5, -1.0]), jnp.array([0.1, -0.3])
    dist = DiagGaussian(mean, log_std)
    a = jnp.array([0.0, 0.2])
    ref = jax.scipy.stats.norm.logpdf(a, mean, jnp.exp(log_std)).sum()
    assert np.isclose(dist.log_prob(a), ref, atol=1e-5)
    ref_h = (0.5 * np.log(2 * np.pi * np.e) + np.asarray(log_std)).sum()
    assert np.isclose(dist.entropy(), ref_h, atol=1e-5)
    x = jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(1), 20000))
    assert np.allclose(x.mean(0), mean, atol=0.03)
    assert np.allclose(x.std(0), np.exp(log_std), atol=0.03)


def test_clipped_surrogate_loss_hand_values():
    logp, old = jnp.log(jnp.array([1.5, 1.5, 0.5])), jnp.zeros(3)
    adv = jnp.array([2.0, -2.0, -1.0])
    loss, stats = clipped_surrogate_loss(logp, old, adv, 0.2)
    # min(1.5*2, 1.2*2) = 2.4; min(-3, -2.4) = -3; min(-0.5, -0.8) = -0.8
    assert np.isclose(loss, -(2.4 - 3.0 - 0.8) / 3, atol=1e-6)
    assert np.isclose(stats["clip_fraction"], 1.0)
    loss0, stats0 = clipped_surrogate_loss(jnp.zeros(3), jnp.zeros(3), adv, 0.2)
    assert np.isclose(loss0, -adv.mean()) and np.isclose(stats0["approx_kl"], 0.0)


def test_clipped_value_loss_hand_values():
    v = clipped_value_loss(jnp.array([3.0, 0.5]), jnp.array([1.0, 1.0]), jnp.array([0.0, 3.0]), 0.5)
    # sample 1: max(9, 1.5^2) = 9; sample 2: clipped 0.5 -> max(6.25, 6.25)
    assert np.isclose(v, 0.5 * (9.0 + 6.25) / 2, atol=1e-6)


def test_normalize():
    x = normalize(jnp.array([1.0, 2.0, 3.0, 4.0]))
    assert np.isclose(x.mean(), 0.0, atol=1e-6) and np.isclose(x.std(), 1.0, atol=1e-4)


@pytest.mark.parametrize("share", [True, False])
def test_gru_resets_hidden_state(share):
    net = MultiAgentNet(Actor((8,), 3, recurrent=True, gru_size=6), 2, share, 6)
    params = net.init(jax.random.PRNGKey(0), 4)
    apply = jax.jit(net.apply)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3, 2, 4))  # (T, B, N, D)
    h0 = jax.random.normal(jax.random.PRNGKey(2), (3, 2, 6))
    resets = jnp.zeros((5, 3, 2), bool).at[2, 1].set(True)
    _, out = apply(params, h0, x, resets)
    # Env 1 restarted at t=2: from there its outputs equal a fresh run from zeros.
    _, fresh = apply(params, net.initial_hidden((3,)), x[2:], jnp.zeros((3, 3, 2), bool))
    assert np.allclose(out[2:, 1], fresh[:, 1], atol=1e-5)
    assert not np.allclose(out[2:, 0], fresh[:, 0], atol=1e-3)  # no reset for env 0
    # Stepping one step at a time gives the same outputs as the scanned sequence.
    h, steps = h0, []
    for t in range(5):
        h, o = apply(params, h, x[t : t + 1], resets[t : t + 1])
        steps.append(o[0])
    assert np.allclose(np.stack(steps), out, atol=1e-5)


def test_per_agent_parameters_differ_across_agents():
    net = MultiAgentNet(Critic((8,)), 3, share=False)
    params = net.init(jax.random.PRNGKey(0), 4)
    assert jax.tree_util.tree_leaves(params)[0].shape[0] == 3
    x = jnp.ones((1, 2, 3, 4))
    _, v = net.apply(params, net.initial_hidden((2,)), x, jnp.zeros((1, 2, 3), bool))
    assert v.shape == (1, 2, 3)
    assert not np.isclose(v[0, 0, 0], v[0, 0, 1])  # same input, different agents' params


# Value-learning n-step targets (issue 19): hand-built sequences, gamma 0.5.
N_REWARD = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
N_NEXT = jnp.array([10.0, 20.0, 30.0, 40.0, 50.0])
NO_END = jnp.zeros(5, bool)


def test_n_step_targets_without_episode_end():
    target = n_step_targets(N_REWARD, N_NEXT, NO_END, NO_END, 0.5, 3)
    # t=0: 1 + .5*2 + .25*3 + .125*V(s3)=.125*30; the last steps are cut at the sequence end.
    expected = [
        1 + 1 + 0.75 + 3.75,
        2 + 1.5 + 1 + 0.125 * 40,
        3 + 2 + 1.25 + 0.125 * 50,
        4 + 2.5 + 0.25 * 50,
        5 + 0.5 * 50,
    ]
    assert np.allclose(target, expected, atol=1e-6)


def test_n_step_targets_cut_at_truncation_and_termination():
    terminated = jnp.array([False, False, False, True, False])
    ends = jnp.array([False, True, False, True, False])  # step 1 truncated, step 3 terminated
    target = n_step_targets(N_REWARD, N_NEXT, terminated, ends, 0.5, 3)
    # t=0 stops at the truncation (bootstraps on the final observation's value 20);
    # t=2 stops at the termination (no bootstrap).
    expected = [1 + 0.5 * 2 + 0.25 * 20, 2 + 0.5 * 20, 3 + 0.5 * 4, 4, 5 + 0.5 * 50]
    assert np.allclose(target, expected, atol=1e-6)
    # A termination alone (episode_end not set) also stops the sum.
    alone = n_step_targets(N_REWARD, N_NEXT, terminated, NO_END, 0.5, 3)
    assert np.allclose(alone[2:], expected[2:], atol=1e-6)
    assert np.isclose(float(alone[1]), 2 + 0.5 * 3 + 0.25 * 4)


def test_n_step_one_is_td_target_and_keeps_trailing_axes():
    rng = np.random.default_rng(0)
    r, v = (jnp.asarray(rng.normal(size=(6, 3)), jnp.float32) for _ in range(2))
    term = jnp.asarray(rng.random((6, 3)) < 0.3)
    ends = term | jnp.asarray(rng.random((6, 3)) < 0.3)
    assert np.allclose(n_step_targets(r, v, term, ends, 0.9, 1), td_target(r, v, term, 0.9))
    # Columns are independent sequences: each matches the 1-D computation.
    multi = n_step_targets(r, v, term, ends, 0.9, 4)
    for j in range(3):
        one = n_step_targets(r[:, j], v[:, j], term[:, j], ends[:, j], 0.9, 4)
        assert np.allclose(multi[:, j], one, atol=1e-6)
    with pytest.raises(ValueError, match="n must be >= 1"):
        n_step_targets(r, v, term, ends, 0.9, 0)
