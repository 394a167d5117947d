"""MAICQ: multi-agent implicit constraint Q-learning with a value-decomposition mixer."""

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
    implicit_constraint_weights,
    masked_log_probs,
    weighted_value,
)
from jaxmarl_envs.algorithms.value_kernels import QMixer, masked_argmax, soft_update, vdn_mix
from jaxmarl_envs.env import Environment

MIXERS = ("qmix", "vdn")


@dataclasses.dataclass(frozen=True)
class MAICQConfig(common.OfflineConfig):
    """MAICQ (Yang et al., 2021) for discrete actions.

    Each agent has a Q-network and a behaviour model `mu_i` (fitted by cross-entropy); a
    mixer (QMIX on the global state, or VDN) combines the agents' values of the dataset's
    joint action into the team value, trained on the team reward (the sum over agents) and
    team termination. The target never maximises over actions: each agent's next value is the
    expectation of its target Q under the implicit-constraint policy
    `pi*_i(a | o) = mu_i(a | o) exp(Q_i(o, a) / alpha) / Z_i(o)` (weights that sum to one per
    state), so it only relies on actions the data supports. The policy is `pi*_i` itself,
    computed in closed form from `mu_i` and `Q_i` (discrete actions make the normaliser
    exact, so no separate actor is distilled); the greedy policy is its mode,
    `argmax_a log mu_i(a | o) + Q_i(o, a) / alpha`.
    """

    algorithm: str = field("maicq", "name recorded in results")
    eval_greedy: bool = field(
        False, "evaluate with the mode of pi* (default: sample pi*, the policy ICQ defines)"
    )
    mixer: str = field("qmix", "value mixer: qmix (global state) or vdn (sum)", choices=MIXERS)
    alpha: float = field(1.0, "implicit-constraint temperature (Q units; small: greedier)")
    bc_weight: float = field(1.0, "weight of the behaviour model's cross-entropy")
    mixer_embed_dim: int = field(32, "QMIX mixing embedding size")
    mixer_hypernet_hidden: int = field(64, "QMIX hypernetwork hidden size")


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"maicq": (MAICQConfig, {})}


def make_config(name: str = "maicq", **overrides: Any) -> MAICQConfig:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown MAICQ algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@struct.dataclass
class MAICQParams:
    q: Any  # agent Q-network
    behaviour: Any  # behaviour model logits
    mixer: Any  # QMIX mixer parameters (None for VDN)


@struct.dataclass
class MAICQTrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: MAICQParams
    target_params: MAICQParams
    opt_state: Any
    key: chex.PRNGKey
    step: chex.Array
    best_policy: MAICQParams
    best_return: chex.Array


@dataclasses.dataclass(frozen=True)
class MAICQLearner(common.OfflineLearner):
    """MAICQ over the shared offline loop."""

    q_net: MultiAgentNet = None  # type: ignore[assignment]
    mixer_net: QMixer | None = None
    optimizer: optax.GradientTransformation = None  # type: ignore[assignment]

    def policy_logits(self, params: MAICQParams, obs: chex.Array, mask: chex.Array):
        """`(..., N, A)` log-weights of the implicit-constraint policy (illegal: -inf)."""
        q = common.apply_net(self.q_net, params.q, obs)
        logp = masked_log_probs(common.apply_net(self.q_net, params.behaviour, obs), mask)
        return jnp.where(mask, logp + q / self.config.alpha, -jnp.inf)

    def act(self, params: MAICQParams, hidden, obs_view, mask, new_episode, key, greedy: bool):
        mask = mask.astype(bool)
        logits = self.policy_logits(params, obs_view.astype(jnp.float32), mask)
        if greedy:
            return masked_argmax(logits, mask), hidden
        return jax.random.categorical(key, logits).astype(jnp.int32), hidden

    def policy_params(self, state: MAICQTrainState) -> MAICQParams:
        return state.params

    def mix(self, mixer_params: Any, agent_q: chex.Array, state: chex.Array) -> chex.Array:
        if self.mixer_net is None:
            return vdn_mix(agent_q)
        return self.mixer_net.apply(mixer_params, agent_q, state)

    def init(self, key: chex.PRNGKey) -> MAICQTrainState:
        q_key, b_key, m_key, key = jax.random.split(key, 4)
        mixer = None
        if self.mixer_net is not None:
            mixer = self.mixer_net.init(
                m_key, jnp.zeros((self.num_agents,)), jnp.zeros((self.state_dim,))
            )
        params = MAICQParams(
            q=self.q_net.init(q_key, self.obs_dim),
            behaviour=self.q_net.init(b_key, self.obs_dim),
            mixer=mixer,
        )
        return MAICQTrainState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            key=key,
            step=jnp.zeros((), jnp.int32),
            best_policy=params,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    def loss(self, params: MAICQParams, target: MAICQParams, batch: Batch):
        c = self.config
        mask, next_mask = batch.mask.astype(bool), batch.next_mask.astype(bool)
        # Behaviour model (also the prior of the implicit-constraint policy).
        logits = common.apply_net(self.q_net, params.behaviour, batch.obs)
        bc = bc_discrete_loss(logits, batch.action, mask)
        # Critic: mixed value of the dataset's joint action.
        q = common.apply_net(self.q_net, params.q, batch.obs)
        chosen = jnp.take_along_axis(q, batch.action[..., None].astype(jnp.int32), -1)[..., 0]
        q_tot = self.mix(params.mixer, chosen, batch.state)
        # Target: each agent's expected target value under pi*_i, then the target mixer.
        next_q = common.apply_net(self.q_net, target.q, batch.next_obs)
        next_logp = masked_log_probs(
            common.apply_net(self.q_net, target.behaviour, batch.next_obs), next_mask
        )
        weights = implicit_constraint_weights(next_q, next_logp, next_mask, c.alpha)
        next_v = self.mix(target.mixer, weighted_value(next_q, weights), batch.next_state)
        team_reward = batch.reward.sum(-1)
        not_done = 1.0 - batch.terminated.all(-1).astype(jnp.float32)
        y = jax.lax.stop_gradient(c.reward_scale * team_reward + c.gamma * not_done * next_v)
        w = batch.bootstrap.astype(jnp.float32)
        td_loss = 0.5 * jnp.sum(w * (q_tot - y) ** 2) / jnp.maximum(w.sum(), 1.0)
        loss = td_loss + c.bc_weight * bc
        entropy = -jnp.sum(jnp.where(weights > 0, weights * jnp.log(weights + 1e-12), 0.0), -1)
        return loss, {
            "td_loss": td_loss,
            "bc_loss": bc,
            "q_tot_mean": q_tot.mean(),
            "policy_entropy": entropy.mean(),
        }

    def train_step(self, state: MAICQTrainState, batch: Batch):
        grad_fn = jax.value_and_grad(self.loss, has_aux=True)
        (loss, stats), grads = grad_fn(state.params, state.target_params, batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target = soft_update(state.target_params, params, self.config.tau)
        stats.update(loss=loss, grad_norm=optax.tree.norm(grads))
        return state.replace(params=params, target_params=target, opt_state=opt_state), stats


def make_learner(
    config: MAICQConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: Any = None,
) -> MAICQLearner:
    """Validates `config`, loads and checks the dataset, builds the learner (no compilation)."""
    if config.mixer not in MIXERS:
        raise ValueError(f"mixer must be one of {MIXERS}, got {config.mixer!r}")
    if not config.alpha > 0:
        raise ValueError(f"alpha must be > 0, got {config.alpha}")
    if config.bc_weight < 0:
        raise ValueError(f"bc_weight must be >= 0, got {config.bc_weight}")
    for name in ("mixer_embed_dim", "mixer_hypernet_hidden"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    fields = common.learner_fields(config, env, num_devices, data)
    if fields["continuous"]:
        raise ValueError(
            f"maicq needs discrete actions; {config.env_id} has continuous actions "
            "(use bc, omar or matd3-bc)"
        )
    q_net = common.make_net(config, fields["num_agents"], fields["action_dim"])
    mixer = None
    if config.mixer == "qmix":
        mixer = QMixer(fields["num_agents"], config.mixer_embed_dim, config.mixer_hypernet_hidden)
    return MAICQLearner(
        **fields, q_net=q_net, mixer_net=mixer, optimizer=common.make_optimizer(config)
    )


def make_train(config: MAICQConfig, env: Environment | None = None, data: Any = None):
    """`train(key, data=None) -> (state, metrics)` for one seed or a `(S, 2)` batch of keys."""
    import sys

    return common.make_train(sys.modules[__name__], config, env, data)
