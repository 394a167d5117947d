"""Offline independent Q-learning with a conservative (CQL) or batch-constrained (BCQ) fix."""

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
    bc_discrete_loss,
    bcq_allowed,
    cql_penalty,
    masked_log_probs,
)
from jaxmarl_envs.algorithms.value_kernels import (
    double_q_select,
    epsilon_greedy,
    masked_argmax,
    soft_update,
)
from jaxmarl_envs.env import Environment

CONSTRAINTS = ("cql", "bcq")

# =============================================================================================
# Config
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class OfflineIQLConfig(common.OfflineConfig):
    """Independent Q-learning from a dataset: each agent learns its own Q from its own reward
    (double-DQN targets, soft target network), with one of two fixes for the values of
    actions the dataset never took:

    - `cql`: conservative Q-learning (Kumar et al., 2020), adding `cql_alpha` times
      `logsumexp_a Q(o, a) - Q(o, a_data)` to the TD loss, which pushes unseen actions down;
    - `bcq`: discrete BCQ (Fujimoto et al., 2019), learning a behaviour model and restricting
      both the greedy policy and the bootstrap's argmax to actions whose behaviour probability
      is at least `bcq_threshold` times the most likely one's.
    """

    algorithm: str = field("iql-cql", "name recorded in results (iql-cql, iql-bcq)")
    constraint: str = field("cql", "offline fix: cql or bcq", choices=CONSTRAINTS)
    cql_alpha: float = field(1.0, "weight of the CQL term (cql)")
    bcq_threshold: float = field(
        0.5,
        "relative behaviour probability an action needs (bcq). 0.5, not discrete BCQ's 0.3: "
        "on a stochastic behaviour (rware-tiny-4ag good, action entropy 0.83 of the maximum) "
        "0.3 admits 1.6 actions per state and leaves the choice to a Q-function that sparse "
        "rewards teach slowly (2 seeds, 1000 steps: 0.17 with 0.3, 1.83 with 0.5; 5000 "
        "steps: 3.16 and 3.09; lbf good, 3000 steps: 0.955 and 0.960; benchmarks/RESULTS.md)",
    )
    bc_weight: float = field(1.0, "weight of the behaviour model's cross-entropy (bcq)")
    eval_greedy: bool = field(
        False,
        "evaluate with the (allowed) argmax; default: eval_epsilon-greedy, as DQN evaluates, "
        "since a deterministic feed-forward joint policy can loop where the stochastic "
        "behaviour never went (iql-cql on the good lbf-8x8-2p-2f-coop tier after 3000 steps: "
        "0.83 greedy, 0.94 with epsilon 0.05, 512 episodes)",
    )
    eval_epsilon: float = field(0.05, "random legal action rate of non-greedy evaluation")


@dataclasses.dataclass(frozen=True)
class IQLCQLConfig(OfflineIQLConfig):
    """IQL+CQL."""


@dataclasses.dataclass(frozen=True)
class IQLBCQConfig(OfflineIQLConfig):
    """IQL+BCQ (discrete, behaviour-constrained argmax)."""

    algorithm: str = field("iql-bcq", "name recorded in results (iql-cql, iql-bcq)")
    constraint: str = field("bcq", "offline fix: cql or bcq", choices=CONSTRAINTS)


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"iql-cql": (IQLCQLConfig, {}), "iql-bcq": (IQLBCQConfig, {})}


def make_config(name: str, **overrides: Any) -> OfflineIQLConfig:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown offline IQL algorithm {name!r}; choose {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


# =============================================================================================
# State
# =============================================================================================


@struct.dataclass
class IQLParams:
    q: Any  # agent Q-network
    behaviour: Any  # behaviour model logits (bcq); None for cql


@struct.dataclass
class IQLTrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: IQLParams
    target_q: Any
    opt_state: Any
    key: chex.PRNGKey
    step: chex.Array  # () int32 gradient steps done
    best_policy: IQLParams
    best_return: chex.Array


# =============================================================================================
# Learner
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class OfflineIQLLearner(common.OfflineLearner):
    """IQL+CQL / IQL+BCQ over the shared offline loop."""

    q_net: MultiAgentNet = None  # type: ignore[assignment]
    optimizer: optax.GradientTransformation = None  # type: ignore[assignment]

    def allowed(self, params: IQLParams, obs: chex.Array, mask: chex.Array) -> chex.Array:
        """Actions the policy may pick: the legal ones, filtered by BCQ's behaviour model."""
        mask = mask.astype(bool)
        if self.config.constraint != "bcq":
            return mask
        logp = masked_log_probs(common.apply_net(self.q_net, params.behaviour, obs), mask)
        return bcq_allowed(logp, mask, self.config.bcq_threshold)

    def act(self, params: IQLParams, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """Greedy: the argmax over the allowed (legal, BCQ-filtered) actions. Non-greedy
        evaluation replaces it, with probability `eval_epsilon`, by a uniform LEGAL action, as
        discrete BCQ's reference evaluation does: the random actions are there to break the
        loops of a deterministic policy, and drawn from the allowed set only (often just the
        argmax) they would not (rware-tiny-4ag good, threshold 0.3, 2 seeds, 5000 steps: 2.19
        drawn from the allowed actions, 3.16 from the legal ones; benchmarks/RESULTS.md)."""
        obs = obs_view.astype(jnp.float32)
        q = common.apply_net(self.q_net, params.q, obs)
        mask = mask.astype(bool)
        allowed = self.allowed(params, obs, mask)
        if greedy:
            return masked_argmax(q, allowed), hidden
        return epsilon_greedy(key, q, mask, self.config.eval_epsilon, greedy_mask=allowed), hidden

    def policy_params(self, state: IQLTrainState) -> IQLParams:
        return state.params

    def init(self, key: chex.PRNGKey) -> IQLTrainState:
        q_key, b_key, key = jax.random.split(key, 3)
        behaviour = None
        if self.config.constraint == "bcq":
            behaviour = self.q_net.init(b_key, self.obs_dim)
        params = IQLParams(q=self.q_net.init(q_key, self.obs_dim), behaviour=behaviour)
        return IQLTrainState(
            params=params,
            target_q=params.q,
            opt_state=self.optimizer.init(params),
            key=key,
            step=jnp.zeros((), jnp.int32),
            best_policy=params,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    def loss(self, params: IQLParams, target_q: Any, batch: Batch) -> tuple[chex.Array, dict]:
        c = self.config
        q_all = common.apply_net(self.q_net, params.q, jnp.concatenate([batch.obs, batch.next_obs]))
        q, next_q_online = jnp.split(q_all, 2)
        next_q_target = common.apply_net(self.q_net, target_q, batch.next_obs)
        stats = {}
        next_allowed = batch.next_mask.astype(bool)
        aux = 0.0
        if c.constraint == "bcq":
            logits = common.apply_net(self.q_net, params.behaviour, batch.obs)
            bc = bc_discrete_loss(logits, batch.action, batch.mask)
            aux = c.bc_weight * bc
            stats["bc_loss"] = bc
            next_allowed = self.allowed(
                jax.lax.stop_gradient(params), batch.next_obs, batch.next_mask
            )
        next_online = jax.lax.stop_gradient(next_q_online)
        next_value = double_q_select(next_online, next_q_target, next_allowed)
        not_done = 1.0 - batch.terminated.astype(jnp.float32)  # (B, N) per agent
        target = c.reward_scale * batch.reward + c.gamma * not_done * next_value
        target = jax.lax.stop_gradient(target)
        chosen = jnp.take_along_axis(q, batch.action[..., None].astype(jnp.int32), -1)[..., 0]
        weight = jnp.broadcast_to(batch.bootstrap[:, None], chosen.shape).astype(jnp.float32)
        td = chosen - target
        td_loss = 0.5 * jnp.sum(weight * td**2) / jnp.maximum(weight.sum(), 1.0)
        loss = td_loss + aux
        stats.update(td_loss=td_loss, q_mean=chosen.mean())
        if c.constraint == "cql":
            penalty = cql_penalty(q, batch.action, batch.mask.astype(bool)).mean()
            loss = loss + c.cql_alpha * penalty
            stats["cql_penalty"] = penalty
        return loss, stats

    def train_step(self, state: IQLTrainState, batch: Batch) -> tuple[IQLTrainState, dict]:
        grad_fn = jax.value_and_grad(self.loss, has_aux=True)
        (loss, stats), grads = grad_fn(state.params, state.target_q, batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_q = soft_update(state.target_q, params.q, self.config.tau)
        stats.update(loss=loss, grad_norm=optax.tree.norm(grads))
        return state.replace(params=params, target_q=target_q, opt_state=opt_state), stats


def make_learner(
    config: OfflineIQLConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: Any = None,
) -> OfflineIQLLearner:
    """Validates `config`, loads and checks the dataset, builds the learner (no compilation)."""
    if config.constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}, got {config.constraint!r}")
    if config.cql_alpha < 0:
        raise ValueError(f"cql_alpha must be >= 0, got {config.cql_alpha}")
    if not 0.0 <= config.bcq_threshold <= 1.0:
        raise ValueError(f"bcq_threshold must be in [0, 1], got {config.bcq_threshold}")
    if config.bc_weight < 0:
        raise ValueError(f"bc_weight must be >= 0, got {config.bc_weight}")
    if not 0.0 <= config.eval_epsilon <= 1.0:
        raise ValueError(f"eval_epsilon must be in [0, 1], got {config.eval_epsilon}")
    fields = common.learner_fields(config, env, num_devices, data)
    if fields["continuous"]:
        raise ValueError(
            f"{config.algorithm} needs discrete actions; {config.env_id} has continuous actions "
            "(use bc, omar or matd3-bc)"
        )
    q_net = common.make_net(config, fields["num_agents"], fields["action_dim"])
    return OfflineIQLLearner(**fields, q_net=q_net, optimizer=common.make_optimizer(config))


def make_train(config: OfflineIQLConfig, env: Environment | None = None, data: Any = None):
    """`train(key, data=None) -> (state, metrics)` for one seed or a `(S, 2)` batch of keys."""
    import sys

    return common.make_train(sys.modules[__name__], config, env, data)
