"""Behaviour cloning (discrete and continuous actions) from an offline dataset."""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.distributions import mask_logits
from jaxmarl_envs.algorithms.networks import MultiAgentNet
from jaxmarl_envs.algorithms.offline import common
from jaxmarl_envs.algorithms.offline.data import Batch
from jaxmarl_envs.algorithms.offline.kernels import bc_continuous_loss, bc_discrete_loss
from jaxmarl_envs.env import Environment


@dataclasses.dataclass(frozen=True)
class BCConfig(common.OfflineConfig):
    """Behaviour cloning: a per-agent policy fitted to the dataset's actions by maximum
    likelihood (discrete: masked categorical cross-entropy; continuous: a deterministic
    tanh-bounded policy fitted by squared error)."""

    algorithm: str = field("bc", "name recorded in results")
    eval_greedy: bool = field(
        False,
        "evaluate with argmax/mean actions; default: sample the cloned policy, since the "
        "behaviour policies are stochastic and their mode can deadlock (BC on the good "
        "lbf-8x8-2p-2f-coop tier: 0.36 greedy, 0.97 sampled after 3000 steps)",
    )
    weight_decay: float = field(0.0, "AdamW weight decay (0: plain Adam)")


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"bc": (BCConfig, {})}


@struct.dataclass
class BCTrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: Any
    opt_state: Any
    key: chex.PRNGKey
    step: chex.Array  # () int32 gradient steps done
    best_policy: Any
    best_return: chex.Array


@dataclasses.dataclass(frozen=True)
class BCLearner(common.OfflineLearner):
    """Behaviour cloning over the shared offline loop."""

    policy: MultiAgentNet = None  # type: ignore[assignment]
    optimizer: optax.GradientTransformation = None  # type: ignore[assignment]

    def act(self, params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        out = common.apply_net(self.policy, params, obs_view.astype(jnp.float32))
        if self.continuous:
            return common.scale_action(out, self.action_low, self.action_high), hidden
        logits = mask_logits(out, mask.astype(bool))
        if greedy:
            return jnp.argmax(logits, -1).astype(jnp.int32), hidden
        return jax.random.categorical(key, logits).astype(jnp.int32), hidden

    def policy_params(self, state: BCTrainState) -> Any:
        return state.params

    def init(self, key: chex.PRNGKey) -> BCTrainState:
        net_key, key = jax.random.split(key)
        params = self.policy.init(net_key, self.obs_dim)
        return BCTrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            key=key,
            step=jnp.zeros((), jnp.int32),
            best_policy=params,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    def loss(self, params: Any, batch: Batch) -> tuple[chex.Array, dict]:
        out = common.apply_net(self.policy, params, batch.obs)
        if self.continuous:
            predicted = common.scale_action(out, self.action_low, self.action_high)
            loss = bc_continuous_loss(predicted, batch.action)
            return loss, {"bc_loss": loss}
        loss = bc_discrete_loss(out, batch.action, batch.mask)
        accuracy = jnp.mean(
            jnp.argmax(mask_logits(out, batch.mask), -1) == batch.action.astype(jnp.int32)
        )
        return loss, {"bc_loss": loss, "accuracy": accuracy}

    def train_step(self, state: BCTrainState, batch: Batch) -> tuple[BCTrainState, dict]:
        (_, stats), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        stats["grad_norm"] = optax.tree.norm(grads)
        return state.replace(params=params, opt_state=opt_state), stats


def make_config(name: str = "bc", **overrides: Any) -> BCConfig:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown BC algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


def make_learner(
    config: BCConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: Any = None,
) -> BCLearner:
    """Validates `config`, loads and checks the dataset, builds the learner (no compilation).

    Args:
        config: the BC config.
        env: an environment to use instead of `make(config.env_id, **env_kwargs)`.
        num_devices: devices available (default all).
        data: an already loaded `(Transitions, info)` pair (skips reading the vault).
    """
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {config.weight_decay}")
    fields = common.learner_fields(config, env, num_devices, data)
    policy = common.make_net(config, fields["num_agents"], fields["action_dim"])
    if config.weight_decay > 0:
        optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.adamw(config.lr, weight_decay=config.weight_decay),
        )
    else:
        optimizer = common.make_optimizer(config)
    return BCLearner(**fields, policy=policy, optimizer=optimizer)


def make_train(config: BCConfig, env: Environment | None = None, data: Any = None):
    """`train(key) -> (state, metrics)` for one seed or a `(S, 2)` batch of keys."""
    import sys

    return common.make_train(sys.modules[__name__], config, env, data)
