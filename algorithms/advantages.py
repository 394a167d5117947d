"""Advantage and return estimators (GAE, lambda-returns) separating termination from truncation."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: chex.Array,
    values: chex.Array,
    next_values: chex.Array,
    terminated: chex.Array,
    episode_end: chex.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[chex.Array, chex.Array]:
    """Generalised advantage estimation over a time-major rollout.

    Step `t` is the transition `s_t --a_t--> (r_t, s'_t)`. `next_values[t]` is the value of
    the true successor `s'_t`: on a step that ends an episode by truncation (time limit) this
    is the value of the final observation (not of the next episode's first observation), so
    truncated episodes bootstrap; on termination it is ignored (`terminated` zeroes it). The
    eligibility trace is cut wherever an episode ended (`episode_end`), so no advantage leaks
    across episodes. The last step bootstraps on `next_values[-1]`.

    ::

        delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
        A_t     = delta_t + gamma * lambda * (1 - episode_end_t) * A_{t+1}

    Args:
        rewards: `(T, ...)` rewards.
        values: `(T, ...)` values of `s_t`.
        next_values: `(T, ...)` values of the successor observations.
        terminated: `(T, ...)` bool, the transition terminated the episode (no bootstrap).
        episode_end: `(T, ...)` bool, the episode ended at `t` (terminated or truncated).
        gamma: discount factor.
        gae_lambda: GAE lambda.

    Returns:
        `(advantages, targets)`, both `(T, ...)`, with `targets = advantages + values`.
    """
    not_term = 1.0 - jnp.asarray(terminated, values.dtype)
    not_end = 1.0 - jnp.asarray(episode_end, values.dtype)
    deltas = rewards + gamma * not_term * next_values - values

    def body(carry, inputs):
        delta, cont = inputs
        adv = delta + gamma * gae_lambda * cont * carry
        return adv, adv

    _, advantages = jax.lax.scan(body, jnp.zeros_like(values[0]), (deltas, not_end), reverse=True)
    return advantages, advantages + values


def lambda_returns(
    rewards: chex.Array,
    next_values: chex.Array,
    terminated: chex.Array,
    episode_end: chex.Array,
    gamma: float,
    td_lambda: float,
) -> chex.Array:
    """TD(lambda) returns for value-based learners, with the same conventions as `gae`.

    ::

        G_t = r_t + gamma * (1 - terminated_t) *
              [(1 - lambda) * next_values_t + lambda * (1 - episode_end_t) * G_{t+1}
               + lambda * episode_end_t * next_values_t]

    Args:
        rewards: `(T, ...)`.
        next_values: `(T, ...)` bootstrap values of the successors.
        terminated: `(T, ...)` bool.
        episode_end: `(T, ...)` bool.
        gamma: discount factor.
        td_lambda: lambda in [0, 1]; 0 gives one-step targets.

    Returns:
        `(T, ...)` returns.
    """
    not_term = 1.0 - jnp.asarray(terminated, next_values.dtype)
    end = jnp.asarray(episode_end, next_values.dtype)
    last = rewards[-1] + gamma * not_term[-1] * next_values[-1]

    def body(carry, inputs):
        r, nv, nt, e = inputs
        tail = (1.0 - td_lambda) * nv + td_lambda * ((1.0 - e) * carry + e * nv)
        g = r + gamma * nt * tail
        return g, g

    _, out = jax.lax.scan(
        body, last, (rewards[:-1], next_values[:-1], not_term[:-1], end[:-1]), reverse=True
    )
    return jnp.concatenate([out, last[None]], axis=0)
