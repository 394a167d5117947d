"""Action distributions for multi-agent policies: masked categorical and diagonal Gaussian."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct

#: Logit given to illegal actions: finite (so `0 * logit` stays 0) yet never sampled.
MASKED_LOGIT = -1e9


def mask_logits(logits: chex.Array, mask: chex.Array | None) -> chex.Array:
    """Replaces the logits of illegal actions with a large negative number.

    A row with no legal action at all is left unmasked (uniform over its logits), so that
    sampling stays well defined on padded or finished agents.

    Args:
        logits: `(..., num_actions)` unnormalised log-probabilities.
        mask: `(..., num_actions)` bool, True where legal; None for no mask.

    Returns:
        `(..., num_actions)` masked logits.
    """
    if mask is None:
        return logits
    mask = jnp.asarray(mask, bool)
    mask = jnp.where(mask.any(-1, keepdims=True), mask, True)
    return jnp.where(mask, logits, MASKED_LOGIT)


@struct.dataclass
class MaskedCategorical:
    """A categorical distribution over `num_actions` with illegal actions masked out.

    Attributes:
        logits: `(..., num_actions)` masked logits (see `mask_logits`).
    """

    logits: chex.Array

    @classmethod
    def create(cls, logits: chex.Array, mask: chex.Array | None = None) -> MaskedCategorical:
        """Builds the distribution from raw logits and a legal-action mask."""
        return cls(logits=mask_logits(logits, mask))

    @property
    def log_probs(self) -> chex.Array:
        """`(..., num_actions)` normalised log-probabilities."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: chex.PRNGKey) -> chex.Array:
        """`(...)` int32 actions, never an illegal one."""
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def mode(self) -> chex.Array:
        """`(...)` int32 greedy (argmax) legal actions."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, action: chex.Array) -> chex.Array:
        """`(...)` log-probability of integer `action`."""
        logp = self.log_probs
        return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self) -> chex.Array:
        """`(...)` entropy over legal actions (illegal ones have probability exactly 0)."""
        logp = self.log_probs
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


@struct.dataclass
class DiagGaussian:
    """A diagonal Gaussian over `action_dim` continuous actions.

    Attributes:
        mean: `(..., action_dim)`.
        log_std: `(..., action_dim)` (broadcastable).
    """

    mean: chex.Array
    log_std: chex.Array

    def sample(self, key: chex.PRNGKey) -> chex.Array:
        """`(..., action_dim)` float32 samples (unclipped; clip to bounds in the env step)."""
        noise = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> chex.Array:
        """`(..., action_dim)` the mean."""
        return self.mean

    def log_prob(self, action: chex.Array) -> chex.Array:
        """`(...)` log-density of `action`, summed over action dimensions."""
        std = jnp.exp(self.log_std)
        z = (action - self.mean) / std
        per_dim = -0.5 * z**2 - self.log_std - 0.5 * jnp.log(2.0 * jnp.pi)
        return jnp.sum(per_dim, axis=-1)

    def entropy(self) -> chex.Array:
        """`(...)` differential entropy, summed over action dimensions."""
        per_dim = jnp.broadcast_to(self.log_std, self.mean.shape) + 0.5 * jnp.log(
            2 * jnp.pi * jnp.e
        )
        return jnp.sum(per_dim, axis=-1)
