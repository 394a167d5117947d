"""MATD3+BC: multi-agent TD3 with centralised twin critics and a behaviour-cloning term."""

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
from jaxmarl_envs.algorithms.offline.kernels import smoothed_target_action, td3_bc_actor_loss
from jaxmarl_envs.algorithms.value_kernels import soft_update
from jaxmarl_envs.env import Environment


@dataclasses.dataclass(frozen=True)
class MATD3BCConfig(common.OfflineConfig):
    """MATD3+BC for continuous actions (TD3+BC, Fujimoto & Gu 2021, with MADDPG-style
    centralised critics).

    Each agent has a deterministic tanh-bounded actor and twin critics
    `Q_i(o_i, s, a_1..a_N)` that see its observation, the global state and the joint action;
    they learn the team reward (the sum over agents) with clipped double-Q targets and target
    policy smoothing. Every `policy_delay` steps each actor maximises its first critic with
    the other agents' dataset actions held fixed, plus a squared-error pull towards its own
    dataset action: `-alpha / mean|Q| * Q + |pi(o) - a|^2`.
    """

    algorithm: str = field("matd3-bc", "name recorded in results")
    alpha: float = field(2.5, "weight of the Q term against the BC term (TD3+BC's alpha)")
    policy_delay: int = field(2, "critic steps per actor (and target) update")
    policy_noise: float = field(0.2, "target smoothing noise std (relative to half the range)")
    noise_clip: float = field(0.5, "target smoothing noise clip (relative to half the range)")
    actor_lr: float = field(3e-4, "actor learning rate (critics use lr)")


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"matd3-bc": (MATD3BCConfig, {})}


def make_config(name: str = "matd3-bc", **overrides: Any) -> MATD3BCConfig:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown MATD3+BC algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@struct.dataclass
class TD3Params:
    actor: Any
    critic: Any  # twin critics, stacked on axis 0


@struct.dataclass
class TD3TrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: TD3Params
    target_params: TD3Params
    actor_opt: Any
    critic_opt: Any
    key: chex.PRNGKey
    step: chex.Array
    best_policy: Any  # actor parameters
    best_return: chex.Array


def joint_inputs(obs: chex.Array, state: chex.Array, joint: chex.Array) -> chex.Array:
    """Critic inputs `(B, N, D + S + N * dim)`: each agent's view, the state and a joint action.

    Args:
        obs: `(B, N, D)`; state: `(B, S)`.
        joint: `(B, N * dim)` one joint action for every agent, or `(B, N, N * dim)` one per
            agent (agent i's own action replaced by its policy's).
    """
    b, n = obs.shape[:2]
    if joint.ndim == 2:
        joint = jnp.broadcast_to(joint[:, None], (b, n, joint.shape[-1]))
    state = jnp.broadcast_to(state[:, None], (b, n, state.shape[-1]))
    return jnp.concatenate([obs, state, joint], axis=-1)


def own_action_joints(policy_action: chex.Array, data_action: chex.Array) -> chex.Array:
    """`(B, N, N * dim)`: for agent i, the dataset joint action with action i replaced by
    `policy_action[:, i]` (the other agents' actions held at the data)."""
    b, n, dim = data_action.shape
    eye = jnp.eye(n, dtype=bool)[None, :, :, None]  # (1, i, j, 1)
    joint = jnp.where(eye, policy_action[:, None], data_action[:, None])  # (B, i, j, dim)
    return joint.reshape(b, n, n * dim)


@dataclasses.dataclass(frozen=True)
class MATD3BCLearner(common.OfflineLearner):
    """MATD3+BC over the shared offline loop."""

    actor: MultiAgentNet = None  # type: ignore[assignment]
    critic: MultiAgentNet = None  # type: ignore[assignment]
    actor_opt: optax.GradientTransformation = None  # type: ignore[assignment]
    critic_opt: optax.GradientTransformation = None  # type: ignore[assignment]

    def act(self, params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """Deterministic actions (evaluation is the same greedy or not)."""
        obs = obs_view.astype(jnp.float32)
        action = common.actor_action(self.actor, params, obs, self.action_low, self.action_high)
        return action, hidden

    def policy_params(self, state: TD3TrainState) -> Any:
        return state.params.actor

    def critic_dim(self) -> int:
        return self.obs_dim + self.state_dim + self.num_agents * self.action_dim

    def init(self, key: chex.PRNGKey) -> TD3TrainState:
        a_key, c_key, key = jax.random.split(key, 3)
        params = TD3Params(
            actor=self.actor.init(a_key, self.obs_dim),
            critic=common.twin_init(self.critic, c_key, self.critic_dim()),
        )
        return TD3TrainState(
            params=params,
            target_params=params,
            actor_opt=self.actor_opt.init(params.actor),
            critic_opt=self.critic_opt.init(params.critic),
            key=key,
            step=jnp.zeros((), jnp.int32),
            best_policy=params.actor,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    def norm(self, action: chex.Array) -> chex.Array:
        return common.normalise_action(action, self.action_low, self.action_high)

    def critic_loss(self, critic: Any, target: TD3Params, batch: Batch, key: chex.PRNGKey):
        c = self.config
        b = batch.obs.shape[0]
        low, high = self.action_low, self.action_high
        next_a = common.actor_action(self.actor, target.actor, batch.next_obs, low, high)
        next_a = smoothed_target_action(key, next_a, c.policy_noise, c.noise_clip, low, high)
        next_in = joint_inputs(batch.next_obs, batch.next_state, self.norm(next_a).reshape(b, -1))
        next_q = common.twin_apply(self.critic, target.critic, next_in).min(0)  # (B, N)
        reward = batch.reward.sum(-1, keepdims=True)  # team reward for every agent's critic
        not_done = 1.0 - batch.terminated.all(-1, keepdims=True).astype(jnp.float32)
        y = jax.lax.stop_gradient(c.reward_scale * reward + c.gamma * not_done * next_q)
        q = common.twin_apply(
            self.critic,
            critic,
            joint_inputs(batch.obs, batch.state, self.norm(batch.action).reshape(b, -1)),
        )  # (2, B, N)
        w = jnp.broadcast_to(batch.bootstrap[None, :, None], q.shape).astype(jnp.float32)
        loss = 0.5 * jnp.sum(w * (q - y) ** 2) / jnp.maximum(w.sum(), 1.0)
        return loss, {"critic_loss": loss, "q_mean": q.mean()}

    def actor_loss(self, actor: Any, critic: Any, batch: Batch):
        pi = common.actor_action(self.actor, actor, batch.obs, self.action_low, self.action_high)
        joints = own_action_joints(self.norm(pi), self.norm(batch.action))
        q = common.twin_apply(self.critic, critic, joint_inputs(batch.obs, batch.state, joints))[0]
        loss, bc = td3_bc_actor_loss(q, self.norm(pi), self.norm(batch.action), self.config.alpha)
        return loss, {"actor_loss": loss, "bc_term": bc}

    def train_step(self, state: TD3TrainState, batch: Batch):
        c = self.config
        key, noise_key = jax.random.split(state.key)
        p = state.params
        (_, c_stats), c_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            p.critic, state.target_params, batch, noise_key
        )
        updates, critic_opt = self.critic_opt.update(c_grads, state.critic_opt, p.critic)
        critic = optax.apply_updates(p.critic, updates)
        (_, a_stats), a_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            p.actor, critic, batch
        )
        updates, new_actor_opt = self.actor_opt.update(a_grads, state.actor_opt, p.actor)
        new_actor = optax.apply_updates(p.actor, updates)
        # Delayed actor and target updates: every `policy_delay` critic steps.
        do = (state.step % c.policy_delay) == 0
        pick = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
            lambda x, y: jnp.where(do, x, y), new, old
        )
        params = TD3Params(actor=pick(new_actor, p.actor), critic=critic)
        target = pick(soft_update(state.target_params, params, c.tau), state.target_params)
        stats = {**c_stats, **a_stats}
        return (
            state.replace(
                params=params,
                target_params=target,
                actor_opt=pick(new_actor_opt, state.actor_opt),
                critic_opt=critic_opt,
                key=key,
            ),
            stats,
        )


def make_learner(
    config: MATD3BCConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: Any = None,
) -> MATD3BCLearner:
    """Validates `config`, loads and checks the dataset, builds the learner (no compilation)."""
    if config.alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {config.alpha}")
    if config.policy_delay < 1:
        raise ValueError(f"policy_delay must be >= 1, got {config.policy_delay}")
    for name in ("policy_noise", "noise_clip"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    if not config.actor_lr > 0:
        raise ValueError(f"actor_lr must be > 0, got {config.actor_lr}")
    fields = common.learner_fields(config, env, num_devices, data)
    if not fields["continuous"]:
        raise ValueError(
            f"matd3-bc needs continuous actions; {config.env_id} has discrete actions "
            "(use bc, iql-cql, iql-bcq or maicq)"
        )
    n, dim = fields["num_agents"], fields["action_dim"]
    actor = common.make_net(config, n, dim)
    critic = MultiAgentNet(
        common.MLPHead(tuple(config.hidden_sizes), 1, config.activation, head_scale=1.0),
        n,
        config.share_params,
    )
    return MATD3BCLearner(
        **fields,
        actor=actor,
        critic=critic,
        actor_opt=common.make_optimizer(config, config.actor_lr),
        critic_opt=common.make_optimizer(config),
    )


def make_train(config: MATD3BCConfig, env: Environment | None = None, data: Any = None):
    """`train(key, data=None) -> (state, metrics)` for one seed or a `(S, 2)` batch of keys."""
    import sys

    return common.make_train(sys.modules[__name__], config, env, data)
