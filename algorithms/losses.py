"""PPO losses (clipped surrogate, clipped value, entropy) as small pure kernels."""

from __future__ import annotations

import chex
import jax.numpy as jnp


def normalize(x: chex.Array, eps: float = 1e-8) -> chex.Array:
    """Zero-mean, unit-std over all elements."""
    return (x - x.mean()) / (x.std() + eps)


def clipped_surrogate_loss(
    log_prob: chex.Array,
    old_log_prob: chex.Array,
    advantages: chex.Array,
    clip_eps: float,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """PPO's clipped policy objective, negated (to minimise).

    `loss = -mean(min(rho * A, clip(rho, 1 - eps, 1 + eps) * A))`, `rho = exp(logp - logp_old)`.

    Args:
        log_prob: `(...)` log-probabilities under the current policy.
        old_log_prob: `(...)` log-probabilities under the behaviour policy.
        advantages: `(...)` advantages (already normalised if desired).
        clip_eps: clipping range.

    Returns:
        `(loss, stats)` with stats `clip_fraction` and `approx_kl`.
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    stats = {
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
    }
    return loss, stats


def clipped_value_loss(
    values: chex.Array, old_values: chex.Array, targets: chex.Array, clip_eps: float
) -> chex.Array:
    """PPO's clipped value loss: `0.5 * mean(max((v - G)^2, (v_clip - G)^2))` with
    `v_clip = v_old + clip(v - v_old, -eps, eps)`.

    Args:
        values: `(...)` current value predictions.
        old_values: `(...)` predictions at collection time.
        targets: `(...)` value targets.
        clip_eps: clipping range.

    Returns:
        `()` loss.
    """
    clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum((values - targets) ** 2, (clipped - targets) ** 2))


def entropy_bonus(entropy: chex.Array) -> chex.Array:
    """`()` mean entropy (the PPO loss subtracts `ent_coef` times this)."""
    return jnp.mean(entropy)
