"""Multi-agent soft actor-critic (ISAC, MASAC; continuous and discrete actions), Anakin style."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import jaxmarl_envs
from jaxmarl_envs.algorithms import ppo, training
from jaxmarl_envs.algorithms.buffers import make_item_buffer
from jaxmarl_envs.algorithms.buffers.item import ItemBuffer
from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.distributions import MaskedCategorical
from jaxmarl_envs.algorithms.networks import Actor, MultiAgentNet, Torso, init_each
from jaxmarl_envs.env import Environment

# =============================================================================================
# Config
# =============================================================================================


#: Help of `centralised_critic` (declared again in `MASACConfig` with its other default).
JOINT_ACTION_HELP = (
    "critics also see the other agents' actions (the joint action): MASAC; else only "
    "the agent's own action: ISAC"
)


@dataclasses.dataclass(frozen=True)
class SACConfig(training.RunConfig):
    """SAC hyper-parameters and run settings.

    A "step" is one transition of one environment (all agents act once). Each update runs
    `rollout_length` steps in every environment, adds them to the replay buffer, then takes
    `grad_steps` gradient steps (critics, actor, temperature, target networks). The run
    settings (environment, budget, seeds, evaluation, outputs) come from `training.RunConfig`.

    The defaults learn on the grid tasks (LBF, the warehouse) and on continuous MPE without
    flags (issue 19; figures in benchmarks/RESULTS.md). They differ from the textbook SAC in
    four ways: no entropy term in the TD target (`entropy_backup`: with it, an episode that
    ends early, as collecting all food does on LBF, loses the entropy bonus of the steps it
    skips, so agents learn to avoid finishing), a small initial temperature (0.05), learning
    rates of 1e-3, and for discrete actions a target entropy of 0.95 log(#legal actions).
    `--entropy-backup --init-alpha 1 --actor-lr 3e-4 --critic-lr 3e-4 --alpha-lr 3e-4
    --target-entropy-scale 0.5 --hidden-sizes 128,128` restores the textbook settings.
    """

    algorithm: str = field("isac", "name recorded in results (isac, masac)")
    centralised_critic: bool = field(False, JOINT_ACTION_HELP)
    critic_input: str = field(
        "local",
        "what the critics read besides the actions (PPO's option, see `ppo.critic_features`): "
        "'local' own view; 'global' the environment's global state + agent id; "
        "'agent_specific' own view + agent id + every agent's view; 'agent_specific_global' "
        "own view + agent id + global state",
        choices=ppo.CRITIC_INPUTS,
    )
    share_params: bool = field(True, "one parameter set for all agents (else one per agent)")
    hidden_sizes: tuple[int, ...] = field((64, 64), "dense layer sizes, comma separated")
    activation: str = field("relu", "activation", choices=("relu", "tanh", "gelu", "silu"))
    rollout_length: int = field(8, "steps per environment between training phases")
    grad_steps: int = field(8, "gradient steps after each rollout")
    batch_size: int = field(256, "transitions per gradient step")
    buffer_size: int = field(100_000, "replay buffer capacity (transitions)")
    learning_starts: int = field(
        5_000, "environment steps of uniform random actions before training starts"
    )
    actor_lr: float = field(1e-3, "actor Adam learning rate")
    critic_lr: float = field(1e-3, "critic Adam learning rate")
    alpha_lr: float = field(1e-3, "temperature Adam learning rate")
    gamma: float = field(0.99, "discount factor")
    tau: float = field(0.005, "soft target update rate per gradient step")
    init_alpha: float = field(0.05, "initial temperature")
    autotune: bool = field(True, "learn the temperature (else keep init_alpha)")
    target_entropy_per_dim: float = field(
        -1.0, "continuous: target entropy = value * action_dim (default -action_dim)"
    )
    target_entropy_scale: float = field(
        0.95, "discrete: target entropy = scale * log(#actions), in [0, 1]"
    )
    target_entropy_legal: bool = field(
        True, "discrete: count only legal actions (per state) in the target entropy"
    )
    entropy_backup: bool = field(
        False,
        "include -alpha log pi in the TD target (soft Q); off keeps the entropy out of the "
        "returns, so episodes that end early (foraging) are not penalised by lost entropy bonus",
    )
    max_grad_norm: float = field(10.0, "global gradient-norm clip")
    reward_scale: float = field(
        1.0,
        "rewards are multiplied by this in the TD targets (Q-values in scaled units; the "
        "temperature acts on that scale). Below 1 for large returns (Multi-CVRP's distances "
        "and penalties: 0.02), which Adam's small steps otherwise take long to fit",
    )
    eval_greedy: bool = field(True, "evaluate with the mode (argmax / tanh of the mean)")

    @staticmethod
    def upgrade_dict(data: dict[str, Any]) -> dict[str, Any]:
        """Reads configs saved before `critic_input` existed: a centralised critic read the
        global state + agent id ('global'), or with `critic_own_view` the own view too
        ('agent_specific_global'); an independent one its own view ('local')."""
        own_view = data.pop("critic_own_view", False)
        if "critic_input" not in data and "centralised_critic" in data:
            if data["centralised_critic"]:
                data["critic_input"] = "agent_specific_global" if own_view else "global"
            else:
                data["critic_input"] = "local"
        return data

    @property
    def needs_global_state(self) -> bool:
        """Whether the critics read `extras['global_state']` (stored in the replay buffer)."""
        return self.critic_input in ("global", "agent_specific_global")


@dataclasses.dataclass(frozen=True)
class ISACConfig(SACConfig):
    """Independent SAC: each agent's critics see its own observation and action."""


@dataclasses.dataclass(frozen=True)
class MASACConfig(SACConfig):
    """Multi-agent SAC: critics conditioned on the joint action (every other agent's action).

    By default the critics read the agent's own view, like ISAC's: on the warehouse, critics
    that also read the global state (`critic_input='global'`, 1,100 values that do not say
    which agent is which) or every agent's view ('agent_specific') learned nothing, or on one
    or two seeds of five, in 500k steps, where the own view learns on four or five
    (benchmarks/RESULTS.md, "MASAC's critic input"). The other inputs stay one flag away.
    """

    algorithm: str = field("masac", "name recorded in results")
    centralised_critic: bool = field(True, JOINT_ACTION_HELP)


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"isac": (ISACConfig, {}), "masac": (MASACConfig, {})}


def make_config(name: str, **overrides: Any) -> SACConfig:
    """The config of algorithm `name` (isac, masac) with overrides."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown SAC algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@dataclasses.dataclass(frozen=True)
class Derived:
    """Values computed from a config and the device count (see `derive`).

    Attributes:
        num_devices: devices the environments are split over.
        steps_per_update: `num_envs * rollout_length` (transitions added per update).
        num_updates: updates in the whole run.
        updates_per_eval: updates between evaluations.
        num_evaluations: evaluations (the Python loop's length).
        total_steps: steps actually run (at least `config.total_steps`; see
            `training.loop_sizes`).
        explore_updates: updates that act uniformly at random (`learning_starts` rounded up).
    """

    num_devices: int
    steps_per_update: int
    num_updates: int
    updates_per_eval: int
    num_evaluations: int
    total_steps: int
    explore_updates: int


def derive(config: SACConfig, num_devices: int | None = None) -> Derived:
    """Checks a config and derives loop sizes, raising ValueError before any compilation.

    Args:
        config: the SAC config.
        num_devices: devices available (default `len(jax.devices())`).
    """
    c = config
    devices = training.check_run_config(c, num_devices)
    for name in ("rollout_length", "grad_steps", "batch_size", "buffer_size"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    positive = ("actor_lr", "critic_lr", "alpha_lr", "max_grad_norm", "init_alpha", "reward_scale")
    for name in positive:
        if not getattr(c, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(c, name)}")
    if not 0.0 <= c.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {c.gamma}")
    if not 0.0 < c.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {c.tau}")
    if not 0.0 <= c.target_entropy_scale <= 1.0:
        raise ValueError(f"target_entropy_scale must be in [0, 1], got {c.target_entropy_scale}")
    if c.learning_starts < 0:
        raise ValueError(f"learning_starts must be >= 0, got {c.learning_starts}")
    if not c.hidden_sizes or any(h < 1 for h in c.hidden_sizes):
        raise ValueError(f"hidden_sizes must be non-empty positive sizes, got {c.hidden_sizes}")
    steps_per_update = c.num_envs * c.rollout_length
    if c.buffer_size < steps_per_update:
        raise ValueError(
            f"buffer_size ({c.buffer_size}) must hold one rollout: num_envs * rollout_length "
            f"({c.num_envs} * {c.rollout_length} = {steps_per_update})"
        )
    sizes = training.loop_sizes(c.total_steps, steps_per_update, c.num_evaluations)
    num_updates = sizes.num_updates
    explore = -(-c.learning_starts // steps_per_update)
    if explore >= num_updates:
        raise ValueError(
            f"learning_starts ({c.learning_starts}) leaves no training: the run has only "
            f"{num_updates * steps_per_update} steps"
        )
    return Derived(
        num_devices=devices,
        steps_per_update=steps_per_update,
        num_updates=num_updates,
        updates_per_eval=sizes.updates_per_eval,
        num_evaluations=sizes.num_evaluations,
        total_steps=sizes.total_steps,
        explore_updates=explore,
    )


# =============================================================================================
# Kernels: squashed Gaussian and the SAC losses (pure functions, unit-tested)
# =============================================================================================

#: Range the Gaussian policy's log standard deviation is squashed into.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@struct.dataclass
class TanhGaussian:
    """`a = low + (tanh(u) + 1) / 2 * (high - low)` with `u ~ N(mean, exp(log_std))`.

    Densities are of the action in the environment's bounds: the Gaussian log-density minus
    the log-Jacobian `sum log(1 - tanh(u)^2) + sum log((high - low) / 2)`.

    Attributes:
        mean: `(..., dim)` pre-squash mean.
        log_std: `(..., dim)` pre-squash log standard deviation.
        low: `(..., dim)` lower bounds (broadcastable).
        high: `(..., dim)` upper bounds (broadcastable).
    """

    mean: chex.Array
    log_std: chex.Array
    low: chex.Array
    high: chex.Array

    def _scale(self, squashed: chex.Array) -> chex.Array:
        return self.low + (squashed + 1.0) * 0.5 * (self.high - self.low)

    def _log_det(self, u: chex.Array) -> chex.Array:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
        log_dtanh = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
        return jnp.sum(log_dtanh + jnp.log(0.5 * (self.high - self.low)), axis=-1)

    def _gaussian_log_prob(self, u: chex.Array) -> chex.Array:
        z = (u - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)

    def sample_and_log_prob(self, key: chex.PRNGKey) -> tuple[chex.Array, chex.Array]:
        """Reparameterised `(squashed (..., dim) in [-1, 1], log_prob (...))`; map the
        squashed action to the bounds with `to_bounds`."""
        u = self.mean + jnp.exp(self.log_std) * jax.random.normal(key, self.mean.shape)
        return jnp.tanh(u), self._gaussian_log_prob(u) - self._log_det(u)

    def to_bounds(self, squashed: chex.Array) -> chex.Array:
        """`(..., dim)` squashed actions in [-1, 1] -> actions in `[low, high]`."""
        return self._scale(squashed)

    def log_prob(self, action: chex.Array) -> chex.Array:
        """`(...)` log-density of an action in `[low, high]` (clipped just inside)."""
        squashed = 2.0 * (action - self.low) / (self.high - self.low) - 1.0
        u = jnp.arctanh(jnp.clip(squashed, -1.0 + 1e-6, 1.0 - 1e-6))
        return self._gaussian_log_prob(u) - self._log_det(u)

    def mode(self) -> chex.Array:
        """`(..., dim)` squashed mean `tanh(mean)` in [-1, 1] (map with `to_bounds`)."""
        return jnp.tanh(self.mean)


def soft_target(
    reward: chex.Array, terminated: chex.Array, next_value: chex.Array, gamma: float
) -> chex.Array:
    """`r + gamma * (1 - terminated) * V(s')`: bootstraps on truncation, not termination.

    Args:
        reward: `(...)` rewards.
        terminated: `(...)` bool, the episode ended by the task's rules for this agent.
        next_value: `(...)` soft value of the true successor (the final observation when an
            episode was truncated).
        gamma: discount.
    """
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * next_value


def legal(mask: chex.Array) -> chex.Array:
    """The mask `MaskedCategorical` acts on: rows without a legal action count as all legal."""
    mask = jnp.asarray(mask, bool)
    return jnp.where(mask.any(-1, keepdims=True), mask, True)


def discrete_soft_value(
    q: chex.Array, log_probs: chex.Array, mask: chex.Array, alpha: chex.Array
) -> chex.Array:
    """`V(s) = sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s))` over legal actions only.

    Args:
        q: `(..., A)` action values (illegal entries may hold anything finite or not).
        log_probs: `(..., A)` policy log-probabilities (illegal actions have probability 0).
        mask: `(..., A)` bool legal actions.
        alpha: temperature.

    Returns:
        `(...)` soft state values.
    """
    ok = legal(mask)
    terms = jnp.exp(log_probs) * (q - alpha * log_probs)
    return jnp.sum(jnp.where(ok, terms, 0.0), axis=-1)


def discrete_actor_loss(
    q: chex.Array, log_probs: chex.Array, mask: chex.Array, alpha: chex.Array
) -> chex.Array:
    """`mean[sum_a pi(a) (alpha log pi(a) - Q(a))]` over legal actions (`q` held fixed)."""
    return -jnp.mean(discrete_soft_value(jax.lax.stop_gradient(q), log_probs, mask, alpha))


def continuous_actor_loss(log_prob: chex.Array, q: chex.Array, alpha: chex.Array) -> chex.Array:
    """`mean[alpha log pi(a~|s) - Q(s, a~)]` with `a~` the reparameterised sample."""
    return jnp.mean(alpha * log_prob - q)


def temperature_loss(
    log_alpha: chex.Array, entropy: chex.Array, target_entropy: chex.Array
) -> chex.Array:
    """`mean[log_alpha * (H - H_target)]` with the entropy held fixed.

    Its gradient in `log_alpha` is `mean(H - H_target)`: gradient descent raises the
    temperature when the policy's entropy is below the target and lowers it when above.
    """
    gap = jax.lax.stop_gradient(entropy - target_entropy)
    return jnp.mean(log_alpha * gap)


def joint_action_order(num_agents: int, egocentric: bool) -> np.ndarray:
    """`(N, N)` int32: row `i` lists the agents in the order agent `i`'s critic reads their
    actions: `[i, the others in index order]` when `egocentric`, else `[0, ..., N - 1]`."""
    if egocentric:
        rows = [[i] + [j for j in range(num_agents) if j != i] for i in range(num_agents)]
    else:
        rows = [list(range(num_agents))] * num_agents
    return np.asarray(rows, np.int32)


def soft_update(target: Any, online: Any, tau: float) -> Any:
    """Polyak averaging `target <- tau * online + (1 - tau) * target`, leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


# =============================================================================================
# Networks
# =============================================================================================


class GaussianPolicy(nn.Module):
    """Pre-squash Gaussian: `(..., D) -> (mean, log_std)`, each `(..., action_dim)`, with
    `log_std` squashed into `[LOG_STD_MIN, LOG_STD_MAX]`."""

    hidden_sizes: Sequence[int]
    action_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, hidden, x, resets):
        hidden, h = Torso(self.hidden_sizes, self.activation, name="torso")(hidden, x, resets)
        small = nn.initializers.orthogonal(0.01)
        mean = nn.Dense(self.action_dim, kernel_init=small, name="mean")(h)
        log_std = nn.Dense(self.action_dim, kernel_init=small, name="log_std")(h)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return hidden, (mean, log_std)


class QNetwork(nn.Module):
    """Action values: `(..., F) -> (..., num_outputs)` (one per discrete action, or 1 for a
    continuous action given in the input). The head starts near zero, so that with sparse
    rewards (foraging, warehouses) the initial value noise does not drown the first rewards."""

    hidden_sizes: Sequence[int]
    num_outputs: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, hidden, x, resets):
        hidden, h = Torso(self.hidden_sizes, self.activation, name="torso")(hidden, x, resets)
        q = nn.Dense(self.num_outputs, kernel_init=nn.initializers.orthogonal(0.01), name="q")(h)
        return hidden, q


def _apply(net: MultiAgentNet, params: Any, x: chex.Array) -> Any:
    """A feed-forward `MultiAgentNet` on `x (..., N, D)` with any leading batch axes."""
    lead, (n, d) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape(1, -1, n, d)
    _, out = net.apply(
        params, net.initial_hidden(flat.shape[1:2]), flat, jnp.zeros((1, *flat.shape[1:3]), bool)
    )
    return jax.tree_util.tree_map(lambda o: o[0].reshape(*lead, *o.shape[2:]), out)


# =============================================================================================
# State
# =============================================================================================


@struct.dataclass
class Params:
    actor: Any
    critic: Any  # twin critics: every leaf has a leading (2,) axis
    target_critic: Any
    log_alpha: chex.Array  # ()


@struct.dataclass
class OptStates:
    actor: Any
    critic: Any
    alpha: Any


@struct.dataclass
class Runner:
    """Everything batched over environments (this part is sharded over devices)."""

    env_state: Any  # (B, ...)
    timestep: Any  # (B, ...) the last timestep; its observation is the next input


@struct.dataclass
class Transition:
    """One replay item: a step of one environment, all agents (agent-major)."""

    obs: chex.Array  # (N, D)
    action: chex.Array  # (N,) int, or (N, dim) float squashed into [-1, 1]
    reward: chex.Array  # (N,)
    terminated: chex.Array  # (N,) bool
    next_obs: chex.Array  # (N, D) the true successor (final observation at episode ends)
    mask: chex.Array | None = None  # (N, A) bool, discrete only
    next_mask: chex.Array | None = None  # (N, A) bool, discrete only
    state: chex.Array | None = None  # (S,) global state, when the critic input reads it
    next_state: chex.Array | None = None  # (S,) the successor's, likewise


@struct.dataclass
class TrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: Params
    opt_state: OptStates
    buffer: Any  # item buffer state (replicated over devices)
    runner: Runner
    key: chex.PRNGKey
    update_step: chex.Array  # () int32 updates done
    best_actor: Any  # actor parameters with the best evaluation so far
    best_return: chex.Array  # () their mean evaluation return


#: Which parts of `TrainState` are batched over environments (sharded over devices).
BATCHED = TrainState(
    params=False,
    opt_state=False,
    buffer=False,
    runner=True,
    key=False,
    update_step=False,
    best_actor=False,
    best_return=False,
)


# =============================================================================================
# Learner
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class SACLearner:
    """The compiled-function factory of one SAC configuration.

    `init(key)`, `learn(state)` (one evaluation interval: `updates_per_eval` updates then an
    evaluation) and `evaluate(actor_params, key)` are pure, for one seed; the runner vmaps them
    over seeds and shards the environment batch over devices.
    """

    config: SACConfig
    derived: Derived
    env: Environment  # the base environment
    train_env: Environment  # EpisodeMetrics(AutoReset(...)), unbatched
    eval_env: Environment  # AgentID(base) or base, unbatched
    actor: MultiAgentNet
    critic: MultiAgentNet
    actions: training.ActionInfo
    obs_dim: int
    critic_dim: int
    buffer: ItemBuffer
    actor_optimizer: optax.GradientTransformation
    critic_optimizer: optax.GradientTransformation
    alpha_optimizer: optax.GradientTransformation
    # Replay dtypes of observations and states (`training.storage_dtypes`: uint8 for the
    # warehouse's whole-number views and 0/1 state, exact; float32 where values are not).
    obs_dtype: Any = np.float32
    state_dtype: Any = np.float32

    @property
    def num_agents(self) -> int:
        return self.env.num_agents

    def as_float(self, batch: Transition) -> Transition:
        """A sampled batch with its observations and states (stored narrow where exact) back
        in float32."""

        def f32(x):
            return None if x is None else x.astype(jnp.float32)

        return batch.replace(
            obs=f32(batch.obs),
            next_obs=f32(batch.next_obs),
            state=f32(batch.state),
            next_state=f32(batch.next_state),
        )

    # -- policy -----------------------------------------------------------------------------

    def distribution(self, actor_params: Any, obs_view: chex.Array, mask: chex.Array | None):
        """The policy at `obs_view (..., N, D)`: `MaskedCategorical` or `TanhGaussian`."""
        out = _apply(self.actor, actor_params, obs_view)
        if self.actions.continuous:
            mean, log_std = out
            low, high = jnp.asarray(self.actions.low), jnp.asarray(self.actions.high)
            return TanhGaussian(mean, log_std, low, high)
        return MaskedCategorical.create(out, mask)

    def to_env(self, action: chex.Array) -> chex.Array:
        """Stored action (int, or squashed in [-1, 1]) -> environment action."""
        if self.actions.continuous:
            low, high = jnp.asarray(self.actions.low), jnp.asarray(self.actions.high)
            return low + (action + 1.0) * 0.5 * (high - low)
        return action

    def sample_action(self, actor_params, obs_view, mask, key) -> chex.Array:
        """Stored-form sampled actions `(..., N)` int or `(..., N, dim)` in [-1, 1]."""
        dist = self.distribution(actor_params, obs_view, mask)
        if self.actions.continuous:
            return dist.sample_and_log_prob(key)[0]
        return dist.sample(key)

    def random_action(self, key: chex.PRNGKey, obs_view: chex.Array, mask: chex.Array):
        """Uniformly random legal actions `(B, N)`, or `(B, N, dim)` in [-1, 1]."""
        if self.actions.continuous:
            shape = (*obs_view.shape[:2], self.actions.dim)
            return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
        return MaskedCategorical.create(jnp.zeros(mask.shape), mask).sample(key)

    def act(self, actor_params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """One policy step for a batch: `obs_view (E, N, D)` -> `(env_action, hidden)`."""
        dist = self.distribution(actor_params, obs_view, mask)
        if greedy:
            action = dist.mode()
        elif self.actions.continuous:
            action = dist.sample_and_log_prob(key)[0]
        else:
            action = dist.sample(key)
        return self.to_env(action), hidden

    def initial_hidden(self, num: int) -> chex.Array:
        """Dummy recurrent state `(num, N, 1)` (SAC networks are feed-forward)."""
        return self.actor.initial_hidden((num,))

    def make_evaluate(self, num_episodes: int, greedy: bool | None = None):
        """`evaluate(actor_params, key) -> EvalOutput` over `num_episodes` episodes."""
        greedy = self.config.eval_greedy if greedy is None else greedy
        return training.make_evaluator(
            self.eval_env,
            functools.partial(self.act, greedy=greedy),
            self.initial_hidden,
            num_episodes,
        )

    @property
    def batched(self) -> TrainState:
        """Which parts of the state are batched over environments (sharded over devices)."""
        return BATCHED

    def policy_params(self, state: TrainState) -> Any:
        """The current actor parameters."""
        return state.params.actor

    def best_policy_params(self, state: TrainState) -> Any:
        """The actor parameters with the best evaluation return so far."""
        return state.best_actor

    # -- critics ----------------------------------------------------------------------------

    def critic_features(self, obs: chex.Array, global_state: chex.Array | None) -> chex.Array:
        """`(M, N, F)` critic inputs before actions, as `config.critic_input` says (see
        `ppo.critic_features`); `global_state` is `None` unless the input needs it."""
        c = self.config
        return ppo.critic_features(c.critic_input, obs, global_state, c.add_agent_id)

    def q_values(
        self, critic_params: Any, features: chex.Array, actions: chex.Array, own: chex.Array
    ) -> chex.Array:
        """Twin action values.

        Args:
            critic_params: twin critic parameters (leading `(2,)` axis).
            features: `(M, N, F)` from `critic_features`.
            actions: the joint action the other agents took, `(M, N)` int or `(M, N, dim)`
                (MASAC only; ignored by ISAC).
            own: continuous only, each agent's own action `(M, N, dim)` (it replaces the
                agent's slot in the joint action); ignored for discrete actions.

        Returns:
            `(2, M, N, A)` Q for every own action (discrete) or `(2, M, N)` (continuous).
        """
        n = self.num_agents
        # Agent i reads the joint action in the order its input lists the agents: its own view
        # ('local') lists itself, then the others in index order (MPE's relative positions,
        # LBF's agent triples), so its own slot comes first; the other inputs list agents
        # in index order, and so does the joint action.
        order = joint_action_order(n, self.config.critic_input == "local")  # (N, N)
        if self.actions.continuous:
            if self.config.centralised_critic:
                eye = jnp.eye(n, dtype=bool)[None, :, :, None]  # (1, N_self, N_other, 1)
                joint = jnp.where(eye, own[:, :, None, :], actions[:, None, :, :])
                joint = jnp.take_along_axis(joint, jnp.asarray(order)[None, :, :, None], axis=2)
                extra = joint.reshape(*own.shape[:2], -1)
            else:
                extra = own
            x = jnp.concatenate([features, extra], axis=-1)
        elif self.config.centralised_critic:
            onehot = jax.nn.one_hot(actions, self.actions.dim)  # (M, N, A)
            # (M, N_self, N, A) in each agent's order, its own slot zeroed: the critic's
            # output covers every own action.
            others = onehot[:, jnp.asarray(order)] * (order != np.arange(n)[:, None])[..., None]
            x = jnp.concatenate([features, others.reshape(*features.shape[:2], -1)], axis=-1)
        else:
            x = features
        q = jax.vmap(lambda p: _apply(self.critic, p, x))(critic_params)
        return q[..., 0] if self.actions.continuous else q

    def target_entropy(self, mask: chex.Array | None) -> chex.Array:
        """`()` continuous target, or `(M, N)` discrete targets from the legal actions."""
        c = self.config
        if self.actions.continuous:
            return jnp.asarray(c.target_entropy_per_dim * self.actions.dim, jnp.float32)
        if c.target_entropy_legal:
            count = legal(mask).sum(-1)
        else:
            count = jnp.full(mask.shape[:-1], self.actions.dim)
        return c.target_entropy_scale * jnp.log(count.astype(jnp.float32))

    # -- losses -----------------------------------------------------------------------------

    def td_target(self, params: Params, batch: Transition, key: chex.PRNGKey) -> chex.Array:
        """`(M, N)` soft TD targets from the target critics and the current policy."""
        alpha = jnp.exp(params.log_alpha) if self.config.entropy_backup else 0.0
        next_features = self.critic_features(batch.next_obs, batch.next_state)
        dist = self.distribution(params.actor, batch.next_obs, batch.next_mask)
        if self.actions.continuous:
            next_action, next_log_prob = dist.sample_and_log_prob(key)
            q = self.q_values(params.target_critic, next_features, next_action, next_action)
            next_value = q.min(0) - alpha * next_log_prob
        else:
            next_action = dist.sample(key)  # the other agents' next actions (MASAC)
            q = self.q_values(params.target_critic, next_features, next_action, None)
            next_value = discrete_soft_value(q.min(0), dist.log_probs, batch.next_mask, alpha)
        reward = self.config.reward_scale * batch.reward
        return soft_target(reward, batch.terminated, next_value, self.config.gamma)

    def critic_loss(self, critic_params: Any, batch: Transition, target: chex.Array):
        """Mean squared TD error of both critics."""
        features = self.critic_features(batch.obs, batch.state)
        q = self.q_values(critic_params, features, batch.action, batch.action)
        if not self.actions.continuous:
            index = jnp.broadcast_to(batch.action[None, ..., None], (*q.shape[:-1], 1))
            q = jnp.take_along_axis(q, index, axis=-1)[..., 0]
        loss = jnp.mean(jnp.sum((q - target[None]) ** 2, axis=0))
        return loss, {"critic_loss": loss, "q_mean": q.mean()}

    def actor_loss(
        self, actor_params: Any, critic_params: Any, log_alpha: chex.Array, batch, key
    ) -> tuple[chex.Array, tuple[chex.Array, dict]]:
        """The actor's soft policy loss; also returns the `(M, N)` entropy estimate."""
        alpha = jnp.exp(log_alpha)
        features = self.critic_features(batch.obs, batch.state)
        dist = self.distribution(actor_params, batch.obs, batch.mask)
        if self.actions.continuous:
            action, log_prob = dist.sample_and_log_prob(key)
            q = self.q_values(critic_params, features, batch.action, action).min(0)
            loss = continuous_actor_loss(log_prob, q, alpha)
            entropy = -log_prob
        else:
            q = self.q_values(critic_params, features, batch.action, None).min(0)
            loss = discrete_actor_loss(q, dist.log_probs, batch.mask, alpha)
            entropy = dist.entropy()
        return loss, (entropy, {"actor_loss": loss, "entropy": entropy.mean()})

    def gradient_step(self, carry, key, buffer_state):
        """Critics, then actor, then temperature, then target networks, on one sample."""
        params, opt = carry
        c = self.config
        sample_key, target_key, actor_key = jax.random.split(key, 3)
        batch = self.as_float(self.buffer.sample(buffer_state, sample_key).experience)

        target = jax.lax.stop_gradient(self.td_target(params, batch, target_key))
        (_, critic_stats), grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            params.critic, batch, target
        )
        updates, critic_opt = self.critic_optimizer.update(grads, opt.critic, params.critic)
        critic = optax.apply_updates(params.critic, updates)

        (_, (entropy, actor_stats)), grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            params.actor, critic, params.log_alpha, batch, actor_key
        )
        updates, actor_opt = self.actor_optimizer.update(grads, opt.actor, params.actor)
        actor = optax.apply_updates(params.actor, updates)

        log_alpha, alpha_opt = params.log_alpha, opt.alpha
        target_entropy = self.target_entropy(batch.mask)
        alpha_loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, entropy, target_entropy)
        if c.autotune:
            updates, alpha_opt = self.alpha_optimizer.update(grad, opt.alpha, log_alpha)
            log_alpha = optax.apply_updates(log_alpha, updates)

        params = Params(
            actor=actor,
            critic=critic,
            target_critic=soft_update(params.target_critic, critic, c.tau),
            log_alpha=log_alpha,
        )
        opt = OptStates(actor=actor_opt, critic=critic_opt, alpha=alpha_opt)
        stats = {
            **critic_stats,
            **actor_stats,
            "alpha": jnp.exp(log_alpha),
            "alpha_loss": alpha_loss,
            "target_entropy": jnp.mean(target_entropy),
        }
        return (params, opt), stats

    # -- init -------------------------------------------------------------------------------

    def example_transition(self) -> Transition:
        """A zero replay item (shapes and dtypes of what `rollout` stores)."""
        n, d = self.num_agents, self.obs_dim
        continuous = self.actions.continuous
        action = (
            jnp.zeros((n, self.actions.dim), jnp.float32)
            if continuous
            else jnp.zeros((n,), jnp.int32)
        )
        mask = None if continuous else jnp.zeros((n, self.actions.dim), bool)
        state = None
        if self.config.needs_global_state:
            state = jnp.zeros(self.env.global_state_spec().shape, self.state_dtype)
        return Transition(
            obs=jnp.zeros((n, d), self.obs_dtype),
            action=action,
            reward=jnp.zeros((n,), jnp.float32),
            terminated=jnp.zeros((n,), bool),
            next_obs=jnp.zeros((n, d), self.obs_dtype),
            mask=mask,
            next_mask=mask,
            state=state,
            next_state=state,
        )

    def init(self, key: chex.PRNGKey) -> TrainState:
        """A fresh training state for one seed."""
        actor_key, critic_key, env_key, key = jax.random.split(key, 4)
        critic = init_each(
            lambda k: self.critic.init(k, self.critic_dim), jax.random.split(critic_key, 2)
        )
        params = Params(
            actor=self.actor.init(actor_key, self.obs_dim),
            critic=critic,
            target_critic=critic,
            log_alpha=jnp.log(jnp.asarray(self.config.init_alpha, jnp.float32)),
        )
        opt = OptStates(
            actor=self.actor_optimizer.init(params.actor),
            critic=self.critic_optimizer.init(params.critic),
            alpha=self.alpha_optimizer.init(params.log_alpha),
        )
        num_envs = self.config.num_envs
        env_state, ts = jax.vmap(self.train_env.reset)(jax.random.split(env_key, num_envs))
        return TrainState(
            params=params,
            opt_state=opt,
            buffer=self.buffer.init(self.example_transition()),
            runner=Runner(env_state=env_state, timestep=ts),
            key=key,
            update_step=jnp.zeros((), jnp.int32),
            best_actor=params.actor,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    # -- rollout ----------------------------------------------------------------------------

    def rollout(self, actor_params: Any, runner: Runner, key: chex.PRNGKey, explore: chex.Array):
        """`rollout_length` steps of the vmapped environments under `lax.scan`.

        Acts uniformly at random where `explore` (a `()` bool) is set, else samples the
        policy. Returns `(runner, (transitions (L, B, ...), episode_return (L, B),
        episode_done (L, B)))`.
        """
        env_step = jax.vmap(self.train_env.step)
        continuous = self.actions.continuous
        central = self.config.needs_global_state

        def step(runner: Runner, step_key):
            ts = runner.timestep
            obs = ts.observation
            policy_key, random_key = jax.random.split(step_key)
            mask = None if continuous else obs.action_mask
            action = jnp.where(
                explore,
                self.random_action(random_key, obs.agents_view, obs.action_mask),
                self.sample_action(actor_params, obs.agents_view, mask, policy_key),
            )
            env_state, next_ts = env_step(runner.env_state, self.to_env(action))
            # The true successor: AutoReset already swapped in the next episode's first
            # observation where an episode ended; bootstrap from the final one instead.
            final = next_ts.extras["final_observation"]
            state = next_state = None
            if central:
                state = ts.extras["global_state"].astype(self.state_dtype)
                final_state = next_ts.extras["final_extras"]["global_state"]
                next_state = final_state.astype(self.state_dtype)
            transition = Transition(
                obs=obs.agents_view.astype(self.obs_dtype),
                action=action,
                reward=next_ts.reward,
                terminated=next_ts.terminated,
                next_obs=final.agents_view.astype(self.obs_dtype),
                mask=mask,
                next_mask=None if continuous else final.action_mask,
                state=state,
                next_state=next_state,
            )
            out = (transition, next_ts.extras["episode_return"], next_ts.extras["episode_done"])
            return Runner(env_state, next_ts), out

        keys = jax.random.split(key, self.config.rollout_length)
        return jax.lax.scan(step, runner, keys)

    # -- update -----------------------------------------------------------------------------

    def update(self, state: TrainState, _=None) -> tuple[TrainState, dict]:
        """One update: a rollout into the buffer, then `grad_steps` gradient steps (once
        `learning_starts` steps have been collected)."""
        c, d = self.config, self.derived
        key, rollout_key, train_key = jax.random.split(state.key, 3)
        explore = state.update_step < d.explore_updates
        runner, (traj, ep_return, ep_done) = self.rollout(
            state.params.actor, state.runner, rollout_key, explore
        )
        items = jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), traj)
        buffer_state = self.buffer.add(state.buffer, items)
        ready = (state.update_step + 1 >= d.explore_updates) & self.buffer.can_sample(buffer_state)

        def train(carry):
            keys = jax.random.split(train_key, c.grad_steps)
            step = functools.partial(self.gradient_step, buffer_state=buffer_state)
            carry, stats = jax.lax.scan(step, carry, keys)
            return carry, {k: v.mean() for k, v in stats.items()}

        def skip(carry):
            shapes = jax.eval_shape(train, carry)[1]
            return carry, {k: jnp.full(v.shape, jnp.nan, v.dtype) for k, v in shapes.items()}

        (params, opt_state), stats = jax.lax.cond(
            ready, train, skip, (state.params, state.opt_state)
        )
        done = ep_done.astype(jnp.float32)
        stats["episode_return_sum"] = jnp.sum(ep_return * done)
        stats["episodes"] = done.sum()
        state = state.replace(
            params=params,
            opt_state=opt_state,
            buffer=buffer_state,
            runner=runner,
            key=key,
            update_step=state.update_step + 1,
        )
        return state, stats

    # -- one evaluation interval ------------------------------------------------------------

    def learn(self, state: TrainState) -> tuple[TrainState, dict]:
        """`updates_per_eval` updates, then an evaluation and best-parameter tracking."""
        state, metrics = jax.lax.scan(self.update, state, None, self.derived.updates_per_eval)
        train = training.summarize_updates(metrics)
        key, eval_key = jax.random.split(state.key)
        evaluation = self.make_evaluate(self.config.eval_episodes)(state.params.actor, eval_key)
        best_actor, best_return = training.track_best(
            evaluation, state.params.actor, state.best_actor, state.best_return
        )
        state = state.replace(key=key, best_actor=best_actor, best_return=best_return)
        return state, {"train": train, "eval": evaluation}


def make_learner(
    config: SACConfig, env: Environment | None = None, num_devices: int | None = None
) -> SACLearner:
    """Validates `config` and builds the learner (no compilation happens here).

    Args:
        config: the SAC config.
        env: an environment instance to use instead of `make(config.env_id, **env_kwargs)`.
        num_devices: devices available (default all).
    """
    derived = derive(config, num_devices)
    if env is None:
        env = jaxmarl_envs.make(config.env_id, **config.env_kwargs)
    actions = training.action_info(env)
    if actions.continuous and not (
        np.isfinite(actions.low).all() and np.isfinite(actions.high).all()
    ):
        raise ValueError(
            "SAC squashes continuous actions into bounds: the action spec must be bounded"
        )
    train_env = training.wrap_for_training(env, config.add_agent_id, config.needs_global_state)
    eval_env = training.wrap_for_evaluation(env, config.add_agent_id)
    obs_dim = training.observation_dim(eval_env)
    n = env.num_agents
    if config.critic_input == "local":
        critic_dim = obs_dim
    else:
        state_dim = 0
        if config.needs_global_state:
            state_dim = int(np.prod(env.global_state_spec().shape))
        view_dim = training.observation_dim(env)
        critic_dim = ppo.critic_dim(config.critic_input, view_dim, state_dim, n)
    # The joint action (MASAC: the others' one-hot actions, or every agent's continuous
    # action with the own one in its slot), or the own continuous action (ISAC).
    if config.centralised_critic:
        critic_dim += n * actions.dim
    elif actions.continuous:
        critic_dim += actions.dim
    if actions.continuous:
        actor_module = GaussianPolicy(config.hidden_sizes, actions.dim, config.activation)
    else:
        actor_module = Actor(config.hidden_sizes, actions.dim, False, config.activation)
    q_outputs = 1 if actions.continuous else actions.dim
    actor = MultiAgentNet(actor_module, n, config.share_params)
    critic = MultiAgentNet(
        QNetwork(config.hidden_sizes, q_outputs, config.activation), n, config.share_params
    )
    buffer = make_item_buffer(
        config.buffer_size, min(config.batch_size, config.buffer_size), config.batch_size
    )

    def adam(lr):
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr))

    return SACLearner(
        config,
        derived,
        env,
        train_env,
        eval_env,
        actor,
        critic,
        actions,
        obs_dim,
        critic_dim,
        buffer,
        adam(config.actor_lr),
        adam(config.critic_lr),
        optax.adam(config.alpha_lr),
        *training.storage_dtypes(train_env),
    )


def make_train(config: SACConfig, env: Environment | None = None):
    """`train(key) -> (state, metrics)`: the whole run for one seed, without files.

    Each interval (updates then an evaluation) is one jitted function; the only Python loop is
    over the `num_evaluations` intervals. Metrics are stacked over intervals. `train(keys)`
    with keys `(S, 2)` trains S seeds together.
    """
    learner = make_learner(config, env)
    init = jax.jit(functools.partial(init_each, learner.init))
    learn = jax.jit(jax.vmap(learner.learn))

    def train(key: chex.PRNGKey):
        batched = key.ndim == 2
        keys = key if batched else key[None]
        state = init(keys)
        history = []
        for _ in range(learner.derived.num_evaluations):
            state, metrics = learn(state)
            history.append(metrics)
        metrics = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs, axis=1), *history)
        if not batched:
            state, metrics = jax.tree_util.tree_map(lambda x: x[0], (state, metrics))
        return state, metrics

    train.learner = learner  # type: ignore[attr-defined]
    return train
