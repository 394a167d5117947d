"""Offline loss kernels on hand-built numbers: BC, CQL's sign and scale, BCQ's filter, MAICQ's
implicit-constraint weights, TD3+BC's BC term, target smoothing and OMAR's search."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxmarl_envs.algorithms.offline.kernels import (
    bc_continuous_loss,
    bc_discrete_loss,
    bcq_allowed,
    continuous_cql_penalty,
    cql_penalty,
    implicit_constraint_weights,
    masked_log_probs,
    omar_search,
    smoothed_target_action,
    td3_bc_actor_loss,
    weighted_value,
)

MASK = jnp.array([[True, True, False], [True, True, True]])


def test_bc_discrete_loss_is_the_nll_over_legal_actions():
    logits = jnp.array([[0.0, jnp.log(3.0), 5.0], [0.0, 0.0, 0.0]])
    action = jnp.array([1, 2])
    # Row 0: action 2 is illegal, so pi = (1/4, 3/4); row 1 uniform over 3.
    expected = (-np.log(0.75) + np.log(3.0)) / 2
    assert np.isclose(float(bc_discrete_loss(logits, action, MASK)), expected, atol=1e-6)
    weighted = bc_discrete_loss(logits, action, MASK, weight=jnp.array([1.0, 0.0]))
    assert np.isclose(float(weighted), -np.log(0.75), atol=1e-6)
    logp = masked_log_probs(logits, MASK)
    assert np.allclose(np.exp(logp).sum(-1), 1.0) and float(jnp.exp(logp[0, 2])) == 0.0


def test_bc_continuous_loss_sums_dimensions_and_averages_the_rest():
    pred = jnp.array([[[0.0, 1.0]], [[2.0, 2.0]]])
    act = jnp.array([[[1.0, 1.0]], [[0.0, 0.0]]])
    assert np.isclose(float(bc_continuous_loss(pred, act)), (1.0 + 8.0) / 2)


def test_cql_penalty_sign_and_scale():
    # Equal values over k legal actions: exactly log(k), whatever the value.
    q = jnp.full((2, 3), 7.0)
    pen = cql_penalty(q, jnp.array([0, 1]), MASK)
    assert np.allclose(pen, [np.log(2.0), np.log(3.0)], atol=1e-6)
    # A large value on an action the data did not take makes the penalty about the gap;
    # the same value on the data action makes it about 0. Illegal actions never count.
    q = jnp.array([[0.0, 10.0, 100.0]])
    gap = cql_penalty(q, jnp.array([0]), MASK[:1])
    assert np.isclose(float(gap[0]), 10.0 + np.log1p(np.exp(-10.0)), atol=1e-5)
    on_data = cql_penalty(q, jnp.array([1]), MASK[:1])
    assert 0.0 < float(on_data[0]) < 1e-4
    # Its gradient pushes the data action's value up and the others' down.
    grad = jax.grad(lambda q: cql_penalty(q, jnp.array([0]), MASK[:1]).sum())(jnp.zeros((1, 3)))
    assert float(grad[0, 0]) < 0 < float(grad[0, 1]) and float(grad[0, 2]) == 0.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=3, max_size=3), st.integers(0, 2))
def test_cql_penalty_is_never_negative(values, action):
    q = jnp.asarray([values], jnp.float32)
    assert float(cql_penalty(q, jnp.array([action]), jnp.ones((1, 3), bool))[0]) >= -1e-5


def test_bcq_filter_keeps_actions_within_the_threshold_of_the_most_likely():
    probs = jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    logp = jnp.log(probs)
    mask = jnp.array([[True, True, True], [True, True, False]])
    allowed = bcq_allowed(logp, mask, 0.5)
    # Row 0: 0.3/0.5 = 0.6 passes, 0.2/0.5 = 0.4 does not. Row 1: action 2 is illegal, so the
    # most likely legal ones (0.1 each) both pass.
    assert allowed.tolist() == [[True, True, False], [True, True, False]]
    assert bcq_allowed(logp, mask, 1.0).tolist() == [[True, False, False], [True, True, False]]
    assert bcq_allowed(logp, mask, 0.0).tolist() == mask.tolist()


def test_implicit_constraint_weights_sum_to_one_per_state_and_interpolate():
    key = jax.random.PRNGKey(0)
    q = jax.random.normal(key, (4, 3, 5)) * 3.0
    mu = jax.nn.log_softmax(jax.random.normal(jax.random.fold_in(key, 1), (4, 3, 5)))
    mask = jax.random.uniform(jax.random.fold_in(key, 2), (4, 3, 5)) > 0.3
    mask = mask.at[..., 0].set(True)
    w = implicit_constraint_weights(q, mu, mask, alpha=0.7)
    assert np.allclose(w.sum(-1), 1.0, atol=1e-6)
    assert bool(jnp.all(jnp.where(mask, True, w == 0.0)))
    # Hand-built: mu = (0.5, 0.5), Q = (0, log 3) with alpha 1 -> weights (1/4, 3/4).
    w = implicit_constraint_weights(
        jnp.array([0.0, np.log(3.0)]), jnp.log(jnp.array([0.5, 0.5])), jnp.array([True, True]), 1.0
    )
    assert np.allclose(w, [0.25, 0.75], atol=1e-6)
    assert np.isclose(float(weighted_value(jnp.array([0.0, 4.0]), w)), 3.0)
    # Large alpha returns the behaviour policy, small alpha the best supported action.
    # Action 2 has the best value but no behaviour support (mu = 0): it never gets weight.
    qv, lmu = jnp.array([1.0, 2.0, 9.0]), jnp.log(jnp.array([0.6, 0.4, 0.0]))
    assert np.allclose(implicit_constraint_weights(qv, lmu, jnp.ones(3, bool), 1e6), [0.6, 0.4, 0])
    greedy = implicit_constraint_weights(qv, lmu, jnp.ones(3, bool), 0.01)
    assert float(greedy[1]) > 0.99 and float(greedy[2]) == 0.0


def test_td3_bc_bc_term_and_q_normalisation():
    pred = jnp.array([[0.5, -0.5], [0.0, 0.0]])
    act = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    # With Q = 0 only the BC term is left: the mean over samples of the summed squares.
    loss, bc = td3_bc_actor_loss(jnp.zeros(2), pred, act, alpha=2.5)
    assert np.isclose(float(bc), (0.5 + 1.0) / 2) and np.isclose(float(loss), float(bc))
    # lambda = alpha / mean|Q|, so scaling Q leaves the loss unchanged.
    q = jnp.array([2.0, 4.0])
    a, _ = td3_bc_actor_loss(q, pred, act, 2.5)
    b, _ = td3_bc_actor_loss(100.0 * q, pred, act, 2.5)
    assert np.isclose(float(a), -2.5 + 0.75) and np.isclose(float(a), float(b), atol=1e-5)


def test_target_smoothing_is_clipped_and_bounded():
    low, high = jnp.full((2,), -1.0), jnp.full((2,), 1.0)
    action = jnp.zeros((1000, 2))
    out = smoothed_target_action(jax.random.PRNGKey(0), action, 10.0, 0.5, low, high)
    assert float(jnp.abs(out).max()) <= 0.5 + 1e-6 and float(jnp.abs(out).max()) > 0.49
    edge = smoothed_target_action(jax.random.PRNGKey(1), action + 0.9, 1.0, 0.5, low, high)
    assert float(edge.max()) <= 1.0


def test_continuous_cql_penalty_is_zero_when_sampled_values_equal_the_data_value():
    q_s = jnp.full((3, 8), 2.0)
    assert np.allclose(continuous_cql_penalty(q_s, jnp.full((3,), 2.0)), 0.0, atol=1e-6)
    assert float(continuous_cql_penalty(q_s, jnp.full((3,), 1.0))[0]) > 0.99


def test_omar_search_finds_a_better_action_than_the_policy():
    target = jnp.array([[0.6, -0.4], [-0.2, 0.3]])

    def q_fn(a):
        return -jnp.sum((a - target) ** 2, -1)

    mean = jnp.zeros((2, 2))
    low, high = -jnp.ones((2, 2)), jnp.ones((2, 2))
    best = omar_search(jax.random.PRNGKey(0), q_fn, mean, low, high, 64, 8, 3, 0.5)
    assert best.shape == (2, 2)
    assert bool(jnp.all(q_fn(best[None])[0] > q_fn(mean[None])[0]))
    assert float(jnp.abs(best - target).max()) < 0.25


def test_omar_search_with_a_known_mean_value_is_the_same_search():
    """Passing the policy action's value (OMAR's actor already has it) changes nothing."""
    target = jnp.array([[0.6, -0.4], [-0.2, 0.3]])

    def q_fn(a):
        return -jnp.sum((a - target) ** 2, -1)

    mean = jnp.array([[0.1, 0.0], [0.0, -0.1]])
    low, high = -jnp.ones((2, 2)), jnp.ones((2, 2))
    args = (jax.random.PRNGKey(1), q_fn, mean, low, high, 16, 4, 2, 0.3)
    computed = omar_search(*args)
    given = omar_search(*args, mean_value=q_fn(mean[None])[0])
    assert bool(jnp.array_equal(computed, given))
    # With a single iteration and one candidate the search keeps the better of the two.
    one = omar_search(jax.random.PRNGKey(2), q_fn, mean, low, high, 1, 1, 1, 0.3)
    assert bool(jnp.all(q_fn(one[None])[0] >= q_fn(mean[None])[0]))
