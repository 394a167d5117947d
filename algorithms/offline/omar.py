"""OMAR: offline multi-agent RL with actor rectification (independent CQL critics, continuous)."""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.networks import MultiAgentNet
from jaxmarl_envs.algorithms.offline import common
from jaxmarl_envs.algorithms.offline.data import Batch
from jaxmarl_envs.algorithms.offline.kernels import (
    continuous_cql_penalty,
    omar_search,
    smoothed_target_action,
)
from jaxmarl_envs.algorithms.value_kernels import soft_update
from jaxmarl_envs.env import Environment


@dataclasses.dataclass(frozen=True)
class OMARConfig(common.OfflineConfig):
    """OMAR (Pan et al., 2022) for continuous actions.

    Independent learners: agent i has twin critics `Q_i(o_i, a_i)` trained on its own reward
    with clipped double-Q targets and a CQL penalty (log-mean-exp of the values of
    `cql_samples` uniform and `cql_samples` policy actions minus the dataset action's value),
    and a deterministic actor. The actor loss mixes policy gradient with a pull towards the
    best action a zeroth-order search finds on the critic (a few cross-entropy-method
    iterations around the policy's action): `(1 - omar_coe) * -Q(o, pi(o)) / mean|Q| +
    omar_coe * |pi(o) - a_best|^2`, which keeps the actor out of the critic's poor local optima.
    """

    algorithm: str = field("omar", "name recorded in results")
    cql_alpha: float = field(1.0, "weight of the CQL penalty on the critics")
    cql_samples: int = field(10, "uniform (and as many policy) actions per state for CQL")
    omar_coe: float = field(0.7, "weight of the pull towards the searched action (0: TD3)")
    omar_iterations: int = field(2, "cross-entropy-method iterations of the action search")
    omar_samples: int = field(20, "candidate actions per iteration")
    omar_elites: int = field(5, "candidates the search distribution is refitted to")
    omar_std: float = field(0.3, "initial search std (relative to half the action range)")
    policy_noise: float = field(0.2, "target smoothing noise std (relative to half the range)")
    noise_clip: float = field(0.5, "target smoothing noise clip (relative to half the range)")
    actor_lr: float = field(3e-4, "actor learning rate (critics use lr)")


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"omar": (OMARConfig, {})}


def make_config(name: str = "omar", **overrides: Any) -> OMARConfig:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown OMAR algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@struct.dataclass
class OMARParams:
    actor: Any
    critic: Any  # twin critics, stacked on axis 0


@struct.dataclass
class OMARTrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: OMARParams
    target_params: OMARParams
    actor_opt: Any
    critic_opt: Any
    key: chex.PRNGKey
    step: chex.Array
    best_policy: Any
    best_return: chex.Array


@dataclasses.dataclass(frozen=True)
class OMARLearner(common.OfflineLearner):
    """OMAR over the shared offline loop."""

    actor: MultiAgentNet = None  # type: ignore[assignment]
    critic: MultiAgentNet = None  # type: ignore[assignment]
    actor_opt: optax.GradientTransformation = None  # type: ignore[assignment]
    critic_opt: optax.GradientTransformation = None  # type: ignore[assignment]

    def act(self, params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """Deterministic actions (evaluation is the same greedy or not)."""
        obs = obs_view.astype(jnp.float32)
        action = common.actor_action(self.actor, params, obs, self.action_low, self.action_high)
        return action, hidden

    def policy_params(self, state: OMARTrainState) -> Any:
        return state.params.actor

    def init(self, key: chex.PRNGKey) -> OMARTrainState:
        a_key, c_key, key = jax.random.split(key, 3)
        params = OMARParams(
            actor=self.actor.init(a_key, self.obs_dim),
            critic=common.twin_init(self.critic, c_key, self.obs_dim + self.action_dim),
        )
        return OMARTrainState(
            params=params,
            target_params=params,
            actor_opt=self.actor_opt.init(params.actor),
            critic_opt=self.critic_opt.init(params.critic),
            key=key,
            step=jnp.zeros((), jnp.int32),
            best_policy=params.actor,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    def q(self, critic: Any, obs: chex.Array, action: chex.Array) -> chex.Array:
        """`(2, ..., N)` twin values of `action (..., N, dim)` (normalised to [-1, 1]).

        `obs (..., N, D)` may have fewer leading axes than `action` (it is broadcast over the
        extra leading axes of `action`, e.g. candidate actions of the same states).
        """
        a = common.normalise_action(action, self.action_low, self.action_high)
        obs = jnp.broadcast_to(obs, (*a.shape[:-1], obs.shape[-1]))
        return common.twin_apply(self.critic, critic, jnp.concatenate([obs, a], axis=-1))

    def q1(self, critic: Any, obs: chex.Array, action: chex.Array) -> chex.Array:
        """`(..., N)` values of the first critic only (what the actor and the search use)."""
        a = common.normalise_action(action, self.action_low, self.action_high)
        obs = jnp.broadcast_to(obs, (*a.shape[:-1], obs.shape[-1]))
        first = jax.tree.map(lambda x: x[0], critic)
        return common.apply_net(self.critic, first, jnp.concatenate([obs, a], axis=-1))[..., 0]

    def critic_loss(self, critic: Any, params: OMARParams, target: OMARParams, batch: Batch, key):
        c = self.config
        low, high = self.action_low, self.action_high
        noise_key, uniform_key = jax.random.split(key)
        next_a = common.actor_action(self.actor, target.actor, batch.next_obs, low, high)
        next_a = smoothed_target_action(noise_key, next_a, c.policy_noise, c.noise_clip, low, high)
        next_q = self.q(target.critic, batch.next_obs, next_a).min(0)  # (B, N)
        not_done = 1.0 - batch.terminated.astype(jnp.float32)
        y = jax.lax.stop_gradient(c.reward_scale * batch.reward + c.gamma * not_done * next_q)
        # One critic pass over the dataset action, `cql_samples` uniform actions and the
        # policy's action of every state: (2, 1 + k + 1, B, N).
        k = c.cql_samples
        uniform = jax.random.uniform(uniform_key, (k, *batch.action.shape), minval=low, maxval=high)
        pi = common.actor_action(self.actor, params.actor, batch.obs, low, high)
        candidates = jnp.concatenate([batch.action[None], jax.lax.stop_gradient(uniform), pi[None]])
        q_all = self.q(critic, batch.obs, jax.lax.stop_gradient(candidates))
        q = q_all[:, 0]  # (2, B, N)
        w = jnp.broadcast_to(batch.bootstrap[None, :, None], q.shape).astype(jnp.float32)
        td = 0.5 * jnp.sum(w * (q - y) ** 2) / jnp.maximum(w.sum(), 1.0)
        # CQL: uniform and current-policy actions pushed down, dataset actions up. The policy
        # is deterministic, so its `k` samples are one action: its value is computed once and
        # counted `k` times in the log-mean-exp (the same loss as `k` identical evaluations).
        q_uniform = jnp.moveaxis(q_all[:, 1 : k + 1], 1, -1)  # (2, B, N, k)
        q_pi = jnp.broadcast_to(q_all[:, k + 1, ..., None], q_uniform.shape)
        penalty = continuous_cql_penalty(jnp.concatenate([q_uniform, q_pi], -1), q).mean()
        loss = td + c.cql_alpha * penalty
        return loss, {"td_loss": td, "cql_penalty": penalty, "q_mean": q.mean()}

    def actor_loss(self, actor: Any, critic: Any, batch: Batch, key: chex.PRNGKey):
        c = self.config
        low, high = self.action_low, self.action_high
        pi = common.actor_action(self.actor, actor, batch.obs, low, high)
        q_pi = self.q1(critic, batch.obs, pi)
        best = omar_search(
            key,
            lambda a: self.q1(critic, batch.obs, a),
            jax.lax.stop_gradient(pi),
            low,
            high,
            c.omar_samples,
            c.omar_elites,
            c.omar_iterations,
            c.omar_std,
            mean_value=jax.lax.stop_gradient(q_pi),
        )
        lam = jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.mean(jnp.abs(q_pi)), 1e-6))
        norm = lambda a: common.normalise_action(a, low, high)  # noqa: E731
        pull = jnp.mean(jnp.sum((norm(pi) - norm(best)) ** 2, -1))
        loss = (1.0 - c.omar_coe) * -lam * q_pi.mean() + c.omar_coe * pull
        return loss, {"actor_loss": loss, "search_distance": pull}

    def train_step(self, state: OMARTrainState, batch: Batch):
        c = self.config
        key, critic_key, actor_key = jax.random.split(state.key, 3)
        p = state.params
        (_, c_stats), c_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            p.critic, p, state.target_params, batch, critic_key
        )
        updates, critic_opt = self.critic_opt.update(c_grads, state.critic_opt, p.critic)
        critic = optax.apply_updates(p.critic, updates)
        (_, a_stats), a_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            p.actor, critic, batch, actor_key
        )
        updates, actor_opt = self.actor_opt.update(a_grads, state.actor_opt, p.actor)
        params = OMARParams(actor=optax.apply_updates(p.actor, updates), critic=critic)
        target = soft_update(state.target_params, params, c.tau)
        state = state.replace(
            params=params,
            target_params=target,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            key=key,
        )
        return state, {**c_stats, **a_stats}


def make_learner(
    config: OMARConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: Any = None,
) -> OMARLearner:
    """Validates `config`, loads and checks the dataset, builds the learner (no compilation)."""
    if config.cql_alpha < 0:
        raise ValueError(f"cql_alpha must be >= 0, got {config.cql_alpha}")
    if not 0.0 <= config.omar_coe <= 1.0:
        raise ValueError(f"omar_coe must be in [0, 1], got {config.omar_coe}")
    for name in ("cql_samples", "omar_iterations", "omar_samples", "omar_elites"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.omar_elites > config.omar_samples:
        raise ValueError(
            f"omar_elites ({config.omar_elites}) must be <= omar_samples ({config.omar_samples})"
        )
    for name in ("omar_std", "actor_lr"):
        if not getattr(config, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(config, name)}")
    fields = common.learner_fields(config, env, num_devices, data)
    if not fields["continuous"]:
        raise ValueError(
            f"omar needs continuous actions; {config.env_id} has discrete actions "
            "(use bc, iql-cql, iql-bcq or maicq)"
        )
    n, dim = fields["num_agents"], fields["action_dim"]
    critic = MultiAgentNet(
        common.MLPHead(tuple(config.hidden_sizes), 1, config.activation, head_scale=1.0),
        n,
        config.share_params,
    )
    return OMARLearner(
        **fields,
        actor=common.make_net(config, n, dim),
        critic=critic,
        actor_opt=common.make_optimizer(config, config.actor_lr),
        critic_opt=common.make_optimizer(config),
    )


def make_train(config: OMARConfig, env: Environment | None = None, data: Any = None):
    """`train(key, data=None) -> (state, metrics)` for one seed or a `(S, 2)` batch of keys."""
    import sys

    return common.make_train(sys.modules[__name__], config, env, data)
