"""Pure value-learning kernels: masked greedy/epsilon-greedy actions, TD targets, target
updates, epsilon schedules and the VDN/QMIX mixers."""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

# =============================================================================================
# Actions
# =============================================================================================


def masked_q(q: chex.Array, mask: chex.Array) -> chex.Array:
    """`q` with illegal actions set to the lowest float, so no argmax picks them.

    Args:
        q: `(..., A)` action values.
        mask: `(..., A)` bool, True for legal actions.
    """
    return jnp.where(mask, q, jnp.finfo(q.dtype).min)


def masked_argmax(q: chex.Array, mask: chex.Array) -> chex.Array:
    """`(...)` int32 greedy action among legal actions (ties: lowest index).

    Args:
        q: `(..., A)` action values.
        mask: `(..., A)` bool, True for legal actions (at least one per row).
    """
    return jnp.argmax(masked_q(q, mask), axis=-1).astype(jnp.int32)


def epsilon_greedy(
    key: chex.PRNGKey,
    q: chex.Array,
    mask: chex.Array,
    epsilon: chex.Array,
    greedy_mask: chex.Array | None = None,
) -> chex.Array:
    """Epsilon-greedy actions that only ever pick legal actions.

    With probability `epsilon` (independently per row) the action is uniform over the legal
    actions, else the masked argmax.

    Args:
        key: PRNG key.
        q: `(..., A)` action values.
        mask: `(..., A)` bool legal actions.
        epsilon: `()` exploration probability.
        greedy_mask: `(..., A)` bool subset of `mask` the greedy argmax is restricted to
            (e.g. BCQ's allowed actions; the random actions stay uniform over `mask`).
            Default: `mask`.

    Returns:
        `(...)` int32 actions.
    """
    explore_key, random_key = jax.random.split(key)
    greedy = masked_argmax(q, mask if greedy_mask is None else greedy_mask)
    # Uniform over legal actions: the argmax of uniforms restricted to the mask.
    noise = jax.random.uniform(random_key, q.shape)
    random = jnp.argmax(jnp.where(mask, noise, -1.0), axis=-1).astype(jnp.int32)
    explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
    return jnp.where(explore, random, greedy)


def linear_epsilon(step: chex.Array, start: float, end: float, decay_steps: int) -> chex.Array:
    """`()` float32 epsilon decaying linearly from `start` to `end` over `decay_steps` steps,
    then held at `end`."""
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / max(decay_steps, 1), 0.0, 1.0)
    return jnp.asarray(start + frac * (end - start), jnp.float32)


# =============================================================================================
# Targets
# =============================================================================================


def double_q_select(
    next_q_online: chex.Array, next_q_target: chex.Array, next_mask: chex.Array
) -> chex.Array:
    """Double-DQN bootstrap value: the online network picks the argmax among the LEGAL next
    actions, the target network evaluates it.

    Args:
        next_q_online: `(..., A)` online values of the next observation.
        next_q_target: `(..., A)` target values of the next observation.
        next_mask: `(..., A)` bool legal next actions.

    Returns:
        `(...)` target-network value of the online greedy legal action.
    """
    best = masked_argmax(next_q_online, next_mask)
    return jnp.take_along_axis(next_q_target, best[..., None], axis=-1)[..., 0]


def max_q_select(next_q_target: chex.Array, next_mask: chex.Array) -> chex.Array:
    """Plain DQN bootstrap value: `(...)` max of the target values over legal next actions."""
    return jnp.max(masked_q(next_q_target, next_mask), axis=-1)


def td_target(
    reward: chex.Array, next_value: chex.Array, terminated: chex.Array, gamma: float
) -> chex.Array:
    """One-step TD target `r + gamma * (1 - terminated) * next_value`.

    Truncation (time limit) is not termination: the target still bootstraps from
    `next_value`, which must be the value of the true final observation.

    Args:
        reward: `(...)` rewards.
        next_value: `(...)` bootstrap values.
        terminated: `(...)` bool, True where the episode ended by termination.
        gamma: discount factor.
    """
    not_done = 1.0 - terminated.astype(jnp.float32)
    return reward + gamma * not_done * next_value


def n_step_targets(
    reward: chex.Array,
    next_value: chex.Array,
    terminated: chex.Array,
    episode_end: chex.Array,
    gamma: float,
    n: int,
) -> chex.Array:
    """n-step TD targets along a time-major sequence, cut at episode ends and at the
    sequence end.

    The target of step t sums the discounted rewards of steps `t .. j` and bootstraps with
    `gamma ** (j - t + 1) * next_value[j]`, where `j` is the first of: `t + n - 1`, the
    sequence's last step, or an episode's last step (`episode_end` or `terminated`). A
    terminated step `j` does not bootstrap; a truncated one does (from `next_value[j]`, the
    value of the true final observation). `n = 1` is `td_target`.

    Args:
        reward: `(L, ...)` rewards.
        next_value: `(L, ...)` bootstrap values of each step's true successor.
        terminated: `(L, ...)` bool, the episode ended by termination at that step.
        episode_end: `(L, ...)` bool, the step is its episode's last (termination or
            truncation); steps where only `terminated` is set count as ends too.
        gamma: discount factor.
        n: steps summed before bootstrapping (>= 1, static).

    Returns:
        `(L, ...)` float32 targets.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    length = reward.shape[0]
    terminated = terminated.astype(bool)
    seq_end = (jnp.arange(length) == length - 1).reshape((length,) + (1,) * (reward.ndim - 1))
    stop = terminated | episode_end.astype(bool) | seq_end

    def ahead(x, k, fill):
        """`x[t + k]` for every t, `fill` past the sequence end."""
        if k == 0:
            return x
        k = min(k, length)
        pad = jnp.full((k,) + x.shape[1:], fill, x.dtype)
        return jnp.concatenate([x[k:], pad], axis=0)

    target = jnp.zeros(reward.shape, jnp.float32)
    active = jnp.ones(reward.shape, bool)
    for k in range(n):
        stop_k = ahead(stop, k, True) | (k == n - 1)
        target = target + jnp.where(active, gamma**k * ahead(reward, k, 0.0), 0.0)
        bootstrap = active & stop_k & ~ahead(terminated, k, True)
        target = target + jnp.where(bootstrap, gamma ** (k + 1) * ahead(next_value, k, 0.0), 0.0)
        active = active & ~stop_k
    return target


# =============================================================================================
# Target networks
# =============================================================================================


def soft_update(target: Any, online: Any, tau: float) -> Any:
    """Polyak averaging `target <- tau * online + (1 - tau) * target` (leaf by leaf)."""
    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def periodic_update(target: Any, online: Any, step: chex.Array, period: int) -> Any:
    """Hard copy `target <- online` when `step % period == 0`, else `target` unchanged.

    Args:
        target: target parameters.
        online: online parameters.
        step: `()` int count of gradient steps done (including the current one).
        period: copy interval in gradient steps.
    """
    copy = (step % period) == 0
    return jax.tree_util.tree_map(lambda t, o: jnp.where(copy, o, t), target, online)


# =============================================================================================
# Mixers
# =============================================================================================


def scale_to_unit(x: chex.Array, low: chex.Array, high: chex.Array) -> chex.Array:
    """`(x - low) / (high - low)`: a bounded input mapped to [0, 1] (feature by feature).

    Args:
        x: `(..., S)` values.
        low: `(S,)` lower bounds.
        high: `(S,)` upper bounds, each above its `low`.
    """
    return (x - low) / (high - low)


def vdn_mix(agent_q: chex.Array) -> chex.Array:
    """VDN: the team value is the sum of the chosen agents' values, `(..., N) -> (...)`."""
    return agent_q.sum(axis=-1)


class QMixer(nn.Module):
    """QMIX monotonic mixer: `Q_tot = w2 . elu(W1^T q + b1) + b2` with `W1 = |hyper_w1(s)|`,
    `w2 = |hyper_w2(s)|`, so `dQ_tot / dq_i >= 0` for every state.

    Call with `agent_q (..., N)` (the chosen agents' values) and `state (..., S)`; returns
    `(...)`. Hypernetworks are two-layer MLPs (`hypernet_hidden` units) on the state; the
    biases are a linear layer (b1) and a two-layer MLP (b2), as in Rashid et al. (2018).
    """

    num_agents: int
    embed_dim: int = 32
    hypernet_hidden: int = 64

    @nn.compact
    def __call__(self, agent_q: chex.Array, state: chex.Array) -> chex.Array:
        n, e, h = self.num_agents, self.embed_dim, self.hypernet_hidden

        def hyper(out: int, name: str):
            x = nn.relu(nn.Dense(h, name=f"{name}_0")(state))
            return nn.Dense(out, name=f"{name}_1")(x)

        w1 = jnp.abs(hyper(n * e, "hyper_w1")).reshape(*state.shape[:-1], n, e)
        b1 = nn.Dense(e, name="hyper_b1")(state)
        w2 = jnp.abs(hyper(e, "hyper_w2"))
        b2 = hyper(1, "hyper_b2")[..., 0]
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", agent_q, w1) + b1)
        return jnp.einsum("...e,...e->...", hidden, w2) + b2
