"""Shared parts of the offline learners: the run config, loop sizes, feed-forward networks and
the evaluation-interval loop (`learn(state, data)`) that every offline family reuses."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxmarl_envs
from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.networks import MultiAgentNet, Torso, init_each
from jaxmarl_envs.algorithms.offline.data import Batch, Transitions, load_transitions, sample_batch
from jaxmarl_envs.env import Environment

# =============================================================================================
# Config
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class OfflineConfig(training.RunConfig):
    """Settings every offline learner has. A "step" is one gradient step (there are no
    environment steps in training); `total_steps` counts them, and the environment is only
    stepped to evaluate the policy `num_evaluations` times."""

    algorithm: str = field("bc", "name recorded in results")
    dataset: str = field("", "vault directory of the dataset (recorder layout)")
    total_steps: int = field(20_000, "gradient steps to train for (per seed)")
    num_envs: int = field(1, "unused offline (kept for the shared run settings)")
    num_devices: int = field(1, "devices (offline learners run on one; the dataset is replicated)")
    num_evaluations: int = field(10, "evaluations (online, in the environment) during training")
    eval_greedy: bool = field(True, "evaluate with argmax/deterministic actions (else sample)")
    max_transitions: int = field(0, "use at most this many dataset steps (0: all)")
    batch_size: int = field(256, "transitions per gradient step")
    hidden_sizes: tuple[int, ...] = field((128, 128), "dense layer sizes of every network")
    activation: str = field("relu", "activation", choices=("relu", "tanh", "gelu", "silu"))
    share_params: bool = field(True, "one network for all agents (agent ids tell them apart)")
    lr: float = field(3e-4, "Adam learning rate")
    max_grad_norm: float = field(10.0, "global gradient-norm clip")
    gamma: float = field(0.99, "discount factor")
    reward_scale: float = field(1.0, "rewards are multiplied by this in TD targets")
    tau: float = field(0.005, "soft target-network update rate")


@dataclasses.dataclass(frozen=True)
class Derived:
    """Loop sizes of an offline run (see `derive`); the fields `training.run_experiment`
    reads. One update is one gradient step, so `steps_per_update` is 1."""

    num_devices: int
    steps_per_update: int
    num_updates: int
    updates_per_eval: int
    num_evaluations: int
    total_steps: int
    budget_shape: str


def derive(config: OfflineConfig, num_devices: int | None = None) -> Derived:
    """Checks the shared offline fields (ValueError naming the field) and sizes the loop."""
    c = config
    devices = training.check_run_config(c, num_devices)
    if not c.dataset:
        raise ValueError("dataset is required: pass --dataset <vault-dir>")
    for name in ("batch_size",):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.max_transitions < 0:
        raise ValueError(f"max_transitions must be >= 0, got {c.max_transitions}")
    for name in ("lr", "max_grad_norm", "reward_scale"):
        if not getattr(c, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(c, name)}")
    if not 0.0 <= c.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {c.gamma}")
    if not 0.0 < c.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {c.tau}")
    if not c.hidden_sizes or any(h < 1 for h in c.hidden_sizes):
        raise ValueError(f"hidden_sizes must be non-empty positive sizes, got {c.hidden_sizes}")
    sizes = training.loop_sizes(c.total_steps, 1, c.num_evaluations)
    return Derived(
        num_devices=devices,
        steps_per_update=1,
        num_updates=sizes.num_updates,
        updates_per_eval=sizes.updates_per_eval,
        num_evaluations=sizes.num_evaluations,
        total_steps=sizes.total_steps,
        budget_shape=(
            f"{sizes.num_evaluations} evaluations x {sizes.updates_per_eval} gradient steps "
            f"of {c.batch_size} transitions"
        ),
    )


# =============================================================================================
# Networks
# =============================================================================================


class MLPHead(nn.Module):
    """`Torso` (feed-forward) then a linear head of `num_outputs`; `(T, ..., D) -> (T, ...,
    num_outputs)`. Used for Q-values, logits and critics."""

    hidden_sizes: tuple[int, ...]
    num_outputs: int
    activation: str = "relu"
    head_scale: float = 0.01

    @nn.compact
    def __call__(self, hidden, x, resets):
        hidden, h = Torso(self.hidden_sizes, self.activation, name="torso")(hidden, x, resets)
        init = nn.initializers.orthogonal(self.head_scale)
        return hidden, nn.Dense(self.num_outputs, kernel_init=init, name="head")(h)


def make_net(config: OfflineConfig, num_agents: int, num_outputs: int) -> MultiAgentNet:
    """A feed-forward per-agent MLP (shared or per-agent parameters)."""
    module = MLPHead(tuple(config.hidden_sizes), num_outputs, config.activation)
    return MultiAgentNet(module, num_agents, config.share_params)


def apply_net(net: MultiAgentNet, params: Any, x: chex.Array) -> chex.Array:
    """A feed-forward `MultiAgentNet` on `x (..., N, D)` with any leading axes ->
    `(..., N, out)`."""
    lead, (n, d) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape(1, -1, n, d)
    hidden = net.initial_hidden(flat.shape[1:2])
    _, out = net.apply(params, hidden, flat, jnp.zeros((1, *flat.shape[1:3]), bool))
    return out[0].reshape(*lead, *out.shape[2:])


def make_optimizer(config: OfflineConfig, lr: float | None = None) -> optax.GradientTransformation:
    """Adam with global-norm clipping."""
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr or config.lr))


# =============================================================================================
# Learner base
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class OfflineLearner:
    """The parts every offline learner shares; a family subclasses it and defines `init`,
    `train_step(state, batch) -> (state, metrics)`, `act` and `policy_params`.

    Training states are flax dataclasses with at least `key`, `step` (gradient steps done),
    `best_policy` and `best_return`. `learn(state, data)` runs `updates_per_eval` gradient
    steps on minibatches drawn from `data` under `lax.scan`, then evaluates the policy online
    and tracks the best parameters; `training.run_experiment` drives it, passing the dataset
    as an argument (see its `data` protocol).
    """

    config: OfflineConfig
    derived: Derived
    env: Environment  # the base environment
    eval_env: Environment  # AgentID(base) or base
    data: Transitions
    data_info: dict
    num_agents: int
    obs_dim: int  # per-agent input size (agent ids included)
    state_dim: int
    action_dim: int  # discrete actions or continuous dimensions
    continuous: bool
    action_low: Any  # (N, dim) float32 bounds (continuous only)
    action_high: Any

    # -- policy interface used by the evaluator and run_experiment -------------------------

    def initial_hidden(self, num: int) -> chex.Array:
        """Feed-forward policies carry a dummy state `(num, N, 1)`."""
        return jnp.zeros((num, self.num_agents, 1), jnp.float32)

    def make_evaluate(self, num_episodes: int, greedy: bool | None = None):
        """`evaluate(policy_params, key) -> EvalOutput` over `num_episodes` episodes."""
        greedy = self.config.eval_greedy if greedy is None else greedy
        return training.make_evaluator(
            self.eval_env,
            functools.partial(self.act, greedy=greedy),
            self.initial_hidden,
            num_episodes,
        )

    @property
    def batched(self) -> bool:
        """Nothing in an offline state is per-environment (all of it is replicated)."""
        return False

    def best_policy_params(self, state: Any) -> Any:
        """The policy parameters with the best evaluation return so far."""
        return state.best_policy

    # -- one evaluation interval ------------------------------------------------------------

    def learn(self, state: Any, data: Transitions) -> tuple[Any, dict]:
        """`updates_per_eval` gradient steps on minibatches of `data`, then an evaluation."""

        def step(state, _):
            key, sample_key = jax.random.split(state.key)
            batch = sample_batch(data, sample_key, self.config.batch_size)
            state, metrics = self.train_step(state.replace(key=key), batch)
            return state.replace(step=state.step + 1), metrics

        state, metrics = jax.lax.scan(step, state, None, self.derived.updates_per_eval)
        train = {k: jnp.nanmean(v) for k, v in metrics.items()}
        key, eval_key = jax.random.split(state.key)
        params = self.policy_params(state)
        evaluation = self.make_evaluate(self.config.eval_episodes)(params, eval_key)
        best, best_return = training.track_best(
            evaluation, params, state.best_policy, state.best_return
        )
        state = state.replace(key=key, best_policy=best, best_return=best_return)
        return state, {"train": train, "eval": evaluation}

    def train_step(self, state: Any, batch: Batch) -> tuple[Any, dict]:  # pragma: no cover
        raise NotImplementedError

    def policy_params(self, state: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def act(self, params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        raise NotImplementedError  # pragma: no cover


def learner_fields(
    config: OfflineConfig,
    env: Environment | None = None,
    num_devices: int | None = None,
    data: tuple[Transitions, dict] | None = None,
) -> dict[str, Any]:
    """Validates the shared config fields, makes the environment, loads and checks the
    dataset, and returns the `OfflineLearner` constructor arguments.

    Args:
        config: any offline config.
        env: an environment to use instead of `make(config.env_id, **env_kwargs)`.
        num_devices: devices available (default all).
        data: already loaded `(transitions, info)` (skips reading the vault again).
    """
    derived = derive(config, num_devices)
    if env is None:
        env = jaxmarl_envs.make(config.env_id, **config.env_kwargs)
    actions = training.action_info(env)
    eval_env = training.wrap_for_evaluation(env, config.add_agent_id)
    obs_dim = training.observation_dim(eval_env)
    if data is None:
        data = load_transitions(config.dataset, env, config.add_agent_id, config.max_transitions)
    transitions, info = data
    if int(transitions.obs.shape[-1]) != obs_dim:
        raise ValueError(
            f"dataset views have {transitions.obs.shape[-1]} features with add_agent_id="
            f"{config.add_agent_id}, the evaluation environment {obs_dim}"
        )
    low = high = None
    if actions.continuous:
        low, high = jnp.asarray(actions.low), jnp.asarray(actions.high)
        if not (np.all(np.isfinite(actions.low)) and np.all(np.isfinite(actions.high))):
            raise ValueError(f"{config.env_id}: continuous offline learners need bounded actions")
    return dict(
        config=config,
        derived=derived,
        env=env,
        eval_env=eval_env,
        data=transitions,
        data_info=info,
        num_agents=env.num_agents,
        obs_dim=obs_dim,
        state_dim=int(transitions.state.shape[-1]),
        action_dim=actions.dim,
        continuous=actions.continuous,
        action_low=low,
        action_high=high,
    )


def scale_action(raw: chex.Array, low: chex.Array, high: chex.Array) -> chex.Array:
    """`tanh(raw)` mapped onto `[low, high]`."""
    return low + (jnp.tanh(raw) + 1.0) * 0.5 * (high - low)


def make_train(module: Any, config: OfflineConfig, env: Environment | None = None, data=None):
    """`train(key) -> (state, metrics)`: a whole offline run of `module`'s learner for one
    seed or a `(S, 2)` batch of keys, without files (metrics stacked over evaluations)."""
    learner = module.make_learner(config, env, data=data)
    init = jax.jit(functools.partial(init_each, learner.init))
    learn = jax.jit(jax.vmap(learner.learn, in_axes=(0, None)))

    def train(key: chex.PRNGKey, data: Transitions | None = None):
        """Trains on the learner's dataset, or on `data` (another dataset of the same
        shapes, which reuses the compiled functions)."""
        data = learner.data if data is None else data
        batched = key.ndim == 2
        keys = key if batched else key[None]
        state = init(keys)
        history = []
        for _ in range(learner.derived.num_evaluations):
            state, metrics = learn(state, data)
            history.append(metrics)
        metrics = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs, axis=1), *history)
        if not batched:
            state, metrics = jax.tree_util.tree_map(lambda x: x[0], (state, metrics))
        return state, metrics

    train.learner = learner  # type: ignore[attr-defined]
    return train


# =============================================================================================
# Continuous actions: deterministic actors and twin critics
# =============================================================================================


def twin_init(net: Any, key: chex.PRNGKey, input_dim: int) -> Any:
    """Two independent parameter sets of `net` (TD3's twin critics), stacked on axis 0."""
    return init_each(lambda k: net.init(k, input_dim), jax.random.split(key, 2))


def twin_apply(net: Any, params: Any, x: chex.Array) -> chex.Array:
    """`(2, ..., N)` values of both critics on `x (..., N, D)` (one output unit each).

    Two separate applications rather than a `vmap` over the stacked parameters: the `vmap`
    broadcasts `x` to both critics, which measured about 15% slower on CPU for OMAR's critic.
    """
    return jnp.stack(
        [apply_net(net, jax.tree.map(lambda p: p[i], params), x)[..., 0] for i in (0, 1)]
    )


def actor_action(net: Any, params: Any, obs: chex.Array, low: chex.Array, high: chex.Array):
    """`(..., N, dim)` deterministic tanh-bounded actions of a per-agent actor."""
    return scale_action(apply_net(net, params, obs), low, high)


def normalise_action(action: chex.Array, low: chex.Array, high: chex.Array) -> chex.Array:
    """Actions mapped from `[low, high]` to `[-1, 1]` (critic inputs)."""
    return 2.0 * (action - low) / (high - low) - 1.0
