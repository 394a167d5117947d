"""Pure offline-RL loss kernels (BC, CQL, BCQ filtering, ICQ weights, TD3+BC, OMAR), tested
with hand-built numbers in tests/test_offline_kernels.py."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxmarl_envs.algorithms.distributions import mask_logits

# =============================================================================================
# Behaviour cloning
# =============================================================================================


def masked_log_probs(logits: chex.Array, mask: chex.Array) -> chex.Array:
    """`(..., A)` log-probabilities of a categorical over the legal actions only.

    Args:
        logits: `(..., A)` unnormalised log-probabilities.
        mask: `(..., A)` bool, True for legal actions.
    """
    return jax.nn.log_softmax(mask_logits(logits, mask), axis=-1)


def bc_discrete_loss(
    logits: chex.Array, action: chex.Array, mask: chex.Array, weight: chex.Array | None = None
) -> chex.Array:
    """Behaviour cloning of discrete actions: the mean negative log-likelihood
    `-log pi(a | o)` of the dataset actions under the masked categorical.

    Args:
        logits: `(..., A)` policy logits.
        action: `(...)` int dataset actions.
        mask: `(..., A)` bool legal actions.
        weight: optional `(...)` per-sample weights (a weighted mean; default uniform).

    Returns:
        `()` float32 loss.
    """
    logp = masked_log_probs(logits, mask)
    nll = -jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    if weight is None:
        return nll.mean()
    weight = jnp.broadcast_to(weight, nll.shape).astype(jnp.float32)
    return jnp.sum(weight * nll) / jnp.maximum(weight.sum(), 1e-8)


def bc_continuous_loss(predicted: chex.Array, action: chex.Array) -> chex.Array:
    """Behaviour cloning of continuous actions: the squared error summed over action
    dimensions, averaged over everything else.

    Args:
        predicted: `(..., dim)` deterministic policy actions.
        action: `(..., dim)` dataset actions.
    """
    return jnp.mean(jnp.sum((predicted - action) ** 2, axis=-1))


# =============================================================================================
# Conservative Q-learning (discrete)
# =============================================================================================


def cql_penalty(q: chex.Array, action: chex.Array, mask: chex.Array) -> chex.Array:
    """The CQL(H) regulariser per sample: `logsumexp_a' Q(o, a') - Q(o, a_data)` over the
    legal actions.

    It is never negative (the log-sum-exp is at least the largest legal value); minimising it
    pushes down the values of actions the dataset did not take and up the dataset action's.
    With all legal values equal it is `log(number of legal actions)`.

    Args:
        q: `(..., A)` action values.
        action: `(...)` int dataset actions.
        mask: `(..., A)` bool legal actions.

    Returns:
        `(...)` penalties (the loss adds `cql_alpha * mean`).
    """
    lse = jax.nn.logsumexp(jnp.where(mask, q, -jnp.inf), axis=-1)
    data_q = jnp.take_along_axis(q, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return lse - data_q


# =============================================================================================
# BCQ (discrete): actions the behaviour model deems likely enough
# =============================================================================================


def bcq_allowed(behaviour_log_probs: chex.Array, mask: chex.Array, threshold: float) -> chex.Array:
    """Discrete BCQ's action filter (Fujimoto et al., 2019): the legal actions whose behaviour
    probability is at least `threshold` times the most likely legal action's.

    The most likely legal action always passes, so every row keeps at least one action.

    Args:
        behaviour_log_probs: `(..., A)` log-probabilities of the learnt behaviour model.
        mask: `(..., A)` bool legal actions.
        threshold: in `[0, 1]`; 0 keeps every legal action, 1 only the most likely ones.

    Returns:
        `(..., A)` bool allowed actions (a subset of `mask`).
    """
    logp = jnp.where(mask, behaviour_log_probs, -jnp.inf)
    best = jnp.max(logp, axis=-1, keepdims=True)
    if threshold <= 0.0:
        return mask.astype(bool)
    return mask & (logp >= best + jnp.log(threshold))


# =============================================================================================
# ICQ / MAICQ: implicit-constraint weights
# =============================================================================================


def implicit_constraint_weights(
    q: chex.Array, behaviour_log_probs: chex.Array, mask: chex.Array, alpha: float
) -> chex.Array:
    """The implicit-constraint policy `pi*(a | o) = mu(a | o) exp(Q(o, a) / alpha) / Z(o)`
    (ICQ, Yang et al., 2021): the best policy within a KL ball around the behaviour `mu`.

    Evaluating the next state under these weights instead of a max keeps the target on
    actions the dataset supports (no out-of-distribution maximisation). The weights are a
    softmax over the legal actions, so they sum to one in every state.

    Args:
        q: `(..., A)` action values.
        behaviour_log_probs: `(..., A)` log-probabilities of the behaviour model.
        mask: `(..., A)` bool legal actions.
        alpha: temperature (> 0); small alpha approaches the best supported action, large
            alpha the behaviour policy.

    Returns:
        `(..., A)` weights, zero on illegal actions, summing to one over the last axis.
    """
    logits = jnp.where(mask, behaviour_log_probs + q / alpha, -jnp.inf)
    return jax.nn.softmax(logits, axis=-1)


def weighted_value(q: chex.Array, weights: chex.Array) -> chex.Array:
    """`(...)` expected value `sum_a w(a) Q(a)` (illegal actions have weight 0)."""
    return jnp.sum(jnp.where(weights > 0, weights * q, 0.0), axis=-1)


# =============================================================================================
# Continuous actions: TD3+BC, target smoothing, OMAR
# =============================================================================================


def td3_bc_actor_loss(
    q: chex.Array, predicted: chex.Array, action: chex.Array, alpha: float
) -> tuple[chex.Array, chex.Array]:
    """TD3+BC's actor loss (Fujimoto & Gu, 2021): `-lambda mean Q(o, pi(o)) + mean |pi(o) - a|^2`
    with `lambda = alpha / mean |Q|` (held constant), so the BC term keeps its scale whatever
    the reward scale.

    Args:
        q: `(...)` critic values of the policy's actions.
        predicted: `(..., dim)` policy actions.
        action: `(..., dim)` dataset actions.
        alpha: weight of the Q term (2.5 in the paper).

    Returns:
        `(loss, bc_term)`, both `()`.
    """
    lam = jax.lax.stop_gradient(alpha / jnp.maximum(jnp.mean(jnp.abs(q)), 1e-6))
    bc = bc_continuous_loss(predicted, action)
    return -lam * jnp.mean(q) + bc, bc


def smoothed_target_action(
    key: chex.PRNGKey,
    action: chex.Array,
    noise_std: float,
    noise_clip: float,
    low: chex.Array,
    high: chex.Array,
) -> chex.Array:
    """TD3 target policy smoothing: `clip(a + clip(noise, -c, c), low, high)`, with the noise
    scaled by half the action range (so `noise_std` is relative to a [-1, 1] range)."""
    scale = (high - low) / 2.0
    noise = jnp.clip(jax.random.normal(key, action.shape) * noise_std, -noise_clip, noise_clip)
    return jnp.clip(action + noise * scale, low, high)


def continuous_cql_penalty(q_sampled: chex.Array, q_data: chex.Array) -> chex.Array:
    """CQL for continuous actions with sampled actions: `logsumexp_k Q(o, a_k) - log K -
    Q(o, a_data)` per sample (the log-mean-exp of the sampled values minus the data value).

    Args:
        q_sampled: `(..., K)` values of K sampled actions (uniform and policy actions).
        q_data: `(...)` values of the dataset actions.
    """
    k = q_sampled.shape[-1]
    return jax.nn.logsumexp(q_sampled, axis=-1) - jnp.log(k) - q_data


def omar_search(
    key: chex.PRNGKey,
    q_fn,
    mean: chex.Array,
    low: chex.Array,
    high: chex.Array,
    num_samples: int,
    num_elites: int,
    iterations: int,
    init_std: float,
    mean_value: chex.Array | None = None,
) -> chex.Array:
    """OMAR's zeroth-order action search (Pan et al., 2022): a few cross-entropy-method
    iterations of a Gaussian around the policy's action, refitted to the `num_elites` samples
    with the highest `q_fn` values; returns the best sample found (held constant, the target
    the actor is pulled towards).

    Args:
        key: PRNG key.
        q_fn: `q_fn(actions (K, ..., dim)) -> (K, ...)` values of candidate actions.
        mean: `(..., dim)` the policy's actions (the search starts here).
        low, high: `(..., dim)` action bounds (broadcastable).
        num_samples: K candidates per iteration.
        num_elites: candidates the Gaussian is refitted to.
        iterations: CEM iterations.
        init_std: initial standard deviation, relative to half the action range.
        mean_value: optional `(...)` `q_fn` value of `mean` when the caller already has it
            (saves one critic pass); computed here otherwise.

    Returns:
        `(..., dim)` the best candidate of all iterations (the policy's action included).
    """
    scale = (high - low) / 2.0
    std = jnp.broadcast_to(init_std * scale, mean.shape)
    best_a = mean
    best_q = q_fn(mean[None])[0] if mean_value is None else mean_value

    def iteration(carry, k):
        mean, std, best_a, best_q = carry
        samples = jnp.clip(mean + std * jax.random.normal(k, (num_samples, *mean.shape)), low, high)
        values = q_fn(samples)  # (K, ...)
        order = jnp.argsort(-values, axis=0)[:num_elites]  # (E, ...)
        elites = jnp.take_along_axis(samples, order[..., None], axis=0)
        top = jnp.take_along_axis(values, order[:1], axis=0)[0]
        better = top > best_q
        best_a = jnp.where(better[..., None], elites[0], best_a)
        best_q = jnp.where(better, top, best_q)
        return (elites.mean(0), elites.std(0) + 1e-3 * scale, best_a, best_q), None

    carry = (mean, std, best_a, best_q)
    (_, _, best_a, _), _ = jax.lax.scan(iteration, carry, jax.random.split(key, iterations))
    return jax.lax.stop_gradient(best_a)
