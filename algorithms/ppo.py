"""Multi-agent PPO (IPPO, MAPPO; feed-forward or GRU), Anakin style: one jitted loop."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import jaxmarl_envs
from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.advantages import gae
from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.losses import (
    clipped_surrogate_loss,
    clipped_value_loss,
    entropy_bonus,
    normalize,
)
from jaxmarl_envs.algorithms.networks import (
    Actor,
    Critic,
    MultiAgentNet,
    init_each,
    make_distribution,
)
from jaxmarl_envs.env import Environment

# =============================================================================================
# Config
# =============================================================================================


#: Critic inputs accepted by `PPOConfig.critic_input` (see `critic_features`).
CRITIC_INPUTS = ("local", "global", "agent_specific", "agent_specific_global")


#: Help of the two options MAPPO turns on by default (declared again in `MAPPOConfig`).
CLIP_PER_NETWORK_HELP = (
    "clip the actor's and the critic's gradient norms to max_grad_norm separately (as "
    "MAPPO's reference code does) instead of their joint norm, so that a large critic "
    "gradient does not shrink the actor's step (see `clip_per_network`)"
)
CRITIC_LR_SCALE_HELP = (
    "the critic's learning rate as a multiple of lr (Adam's step scaled, so with anneal_lr "
    "both decay together); MAPPO's centralised critic reads a larger input than the actor and "
    "learns with 10x (its default)"
)
VALUE_NORM_HELP = (
    "normalise the value targets by running statistics (the MAPPO paper's ValueNorm): "
    "the critic predicts normalised values, de-normalised for GAE (see `ValueNorm`)"
)

CRITIC_LAYER_NORM_HELP = (
    "LayerNorm on the critic's input (the MAPPO paper's feature normalisation): keeps a "
    "critic that reads every agent's position sane when a policy wanders far off (on by "
    "default for MAPPO, whose ValueNorm diverged on 1 to 2 seeds of 5 on mpe-simple_spread "
    "without it; off for rec_MAPPO, which it did not help; see RESULTS.md)"
)


@dataclasses.dataclass(frozen=True)
class PPOConfig(training.RunConfig):
    """PPO hyper-parameters and run settings (defaults follow purejaxrl / Mava).

    A "step" is one transition of one environment (all agents act once). Every field is
    overridable from the command line as `--field-name value`. The run settings (environment,
    budget, seeds, evaluation, outputs) come from `training.RunConfig`.
    """

    algorithm: str = field("ippo", "name recorded in results (ippo, mappo, rec_ippo, ...)")
    critic_input: str = field(
        "local",
        "what the critic reads: 'local' own view (IPPO); 'global' the environment's global "
        "state + agent id; 'agent_specific' own view + agent id + every agent's view "
        "(MAPPO's default); 'agent_specific_global' own view + agent id + global state "
        "(see `critic_features`)",
        choices=CRITIC_INPUTS,
    )
    network: str = field("mlp", "feed-forward 'mlp' or recurrent 'gru'", choices=("mlp", "gru"))
    share_params: bool = field(True, "one parameter set for all agents (else one per agent)")
    hidden_sizes: tuple[int, ...] = field((128, 128), "dense layer sizes, comma separated")
    gru_size: int = field(128, "GRU state size (network=gru; the GRU follows the first layer)")
    activation: str = field("relu", "activation", choices=("relu", "tanh", "gelu", "silu"))
    rollout_length: int = field(128, "steps per environment between updates")
    num_epochs: int = field(4, "passes over each rollout")
    num_minibatches: int = field(2, "minibatches per epoch")
    lr: float = field(2.5e-4, "Adam learning rate")
    critic_lr_scale: float = field(1.0, CRITIC_LR_SCALE_HELP)
    anneal_lr: bool = field(False, "decay the learning rate linearly to 0")
    gamma: float = field(0.99, "discount factor")
    gae_lambda: float = field(0.95, "GAE lambda")
    clip_eps: float = field(0.2, "PPO clipping range (policy and value)")
    ent_coef: float = field(0.01, "entropy bonus coefficient")
    vf_coef: float = field(0.5, "value loss coefficient")
    max_grad_norm: float = field(0.5, "global gradient-norm clip")
    clip_per_network: bool = field(
        False,
        CLIP_PER_NETWORK_HELP,
    )
    normalize_advantages: bool = field(True, "normalise advantages per minibatch")
    value_norm: bool = field(
        False,
        VALUE_NORM_HELP,
    )
    critic_layer_norm: bool = field(False, CRITIC_LAYER_NORM_HELP)
    team_reward: bool = field(
        False,
        "train every agent on the team reward (the sum of the agents' rewards, EPyMARL's "
        "common reward) instead of its own; the reported returns are team returns either way. "
        "The warehouse rewards only the delivering agent: with its own reward an agent's "
        "return depends on little beyond its own view, so a centralised critic has nothing "
        "to add; with the team reward it has (see `team_rewards`)",
    )

    @staticmethod
    def upgrade_dict(data: dict[str, Any]) -> dict[str, Any]:
        """Reads configs saved before `critic_input` existed: their `centralised_critic` flag
        meant the global state + agent id ('global') when true, the own view when false. A
        saved config (it has every field, `normalize_advantages` among them) from before
        `value_norm`, `clip_per_network`, `critic_lr_scale` and `critic_layer_norm` existed ran
        without them (value normalisation, the per-network clip and the critic's LayerNorm off,
        the critic's step equal to the actor's; MAPPO's defaults differ now)."""
        if "centralised_critic" in data:
            central = data.pop("centralised_critic")
            data.setdefault("critic_input", "global" if central else "local")
        if "normalize_advantages" in data:
            data.setdefault("value_norm", False)
            data.setdefault("clip_per_network", False)
            data.setdefault("critic_lr_scale", 1.0)
            data.setdefault("critic_layer_norm", False)
        return data

    @property
    def centralised_critic(self) -> bool:
        """Whether the critic reads more than the agent's own view (MAPPO)."""
        return self.critic_input != "local"

    @property
    def needs_global_state(self) -> bool:
        """Whether the critic reads the environment's `global_state`."""
        return self.critic_input in ("global", "agent_specific_global")


@dataclasses.dataclass(frozen=True)
class IPPOConfig(PPOConfig):
    """Independent PPO: each agent's critic sees only its own observation."""


@dataclasses.dataclass(frozen=True)
class MAPPOConfig(PPOConfig):
    """Multi-agent PPO: a centralised critic on an agent-specific global state."""

    algorithm: str = field("mappo", "name recorded in results")
    critic_input: str = field(
        "agent_specific",
        "what the critic reads: 'agent_specific' own view + agent id + every agent's view; "
        "'agent_specific_global' own view + agent id + the environment's global state; "
        "'global' global state + agent id; 'local' own view (see `critic_features`)",
        choices=CRITIC_INPUTS,
    )
    # MAPPO's defaults since issue 19 (benchmarks/logs/mappo_issue19_s27.md): with both, MAPPO
    # on rware-tiny-2ag went from IQM 3.7 to 6.9 at 3M steps and learns LBF sooner.
    value_norm: bool = field(
        True,
        VALUE_NORM_HELP,
    )
    clip_per_network: bool = field(
        True,
        CLIP_PER_NETWORK_HELP,
    )
    # Since stop 28 (benchmarks/logs/mappo_issue19_s28.md, 2 seeds): a 10x critic step lets
    # MAPPO's critic, whose input is 5x IPPO's on rware-tiny-4ag, keep up; MAPPO went from 13.7
    # to 22.0 on rware-tiny-4ag at 2M steps (IPPO 17.3) and from 7.2 to 9.7 on rware-tiny-2ag
    # at 3M (IPPO 5.4), and learns lbf-8x8-2p-2f-coop as before (1.00, 1.00).
    critic_lr_scale: float = field(10.0, CRITIC_LR_SCALE_HELP)
    # Since stop 38 (RESULTS.md, "The check at the baselines settings"; benchmarks/sweeps/
    # mappo_layer_norm.toml): with it no seed of five diverges on mpe-simple_spread (one did
    # without), and no task's IQM falls below the interval of the baselines row trained
    # without it. Not for rec_MAPPO (its preset below): it never diverged, and with the
    # LayerNorm its rware-tiny-4ag IQM fell below that interval (10.6 against [10.7, 15.1]).
    critic_layer_norm: bool = field(True, CRITIC_LAYER_NORM_HELP)


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {
    "ippo": (IPPOConfig, {}),
    "mappo": (MAPPOConfig, {}),
    "rec_ippo": (IPPOConfig, {"network": "gru", "algorithm": "rec_ippo"}),
    "rec_mappo": (
        MAPPOConfig,
        {"network": "gru", "algorithm": "rec_mappo", "critic_layer_norm": False},
    ),
}


def make_config(name: str, **overrides: Any) -> PPOConfig:
    """The config of algorithm `name` (ippo, mappo, rec_ippo, rec_mappo) with overrides."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown PPO algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@dataclasses.dataclass(frozen=True)
class Derived:
    """Values computed from a config and the device count (see `derive`).

    Attributes:
        num_devices: devices the environments are split over.
        steps_per_update: `num_envs * rollout_length`.
        num_updates: updates in the whole run.
        updates_per_eval: updates between evaluations.
        num_evaluations: evaluations (the Python loop's length).
        total_steps: steps actually run (at least `config.total_steps`; see
            `training.loop_sizes`).
        minibatch_size: samples per minibatch (transitions, or sequences if recurrent).
    """

    num_devices: int
    steps_per_update: int
    num_updates: int
    updates_per_eval: int
    num_evaluations: int
    total_steps: int
    minibatch_size: int


def derive(config: PPOConfig, num_devices: int | None = None) -> Derived:
    """Checks a config and derives loop sizes, raising ValueError before any compilation.

    Args:
        config: the PPO config.
        num_devices: devices available (default `len(jax.devices())`).
    """
    c = config
    devices = training.check_run_config(c, num_devices)
    for name in ("rollout_length", "num_epochs", "num_minibatches", "gru_size"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    for name in ("lr", "max_grad_norm", "critic_lr_scale"):
        if not getattr(c, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(c, name)}")
    for name in ("gamma", "gae_lambda"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(c, name)}")
    for name in ("clip_eps", "ent_coef", "vf_coef"):
        if getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)}")
    if not c.hidden_sizes or any(h < 1 for h in c.hidden_sizes):
        raise ValueError(f"hidden_sizes must be non-empty positive sizes, got {c.hidden_sizes}")
    if c.network not in ("mlp", "gru"):
        raise ValueError(f"network must be 'mlp' or 'gru', got {c.network!r}")
    if c.critic_input not in CRITIC_INPUTS:
        raise ValueError(f"critic_input must be one of {CRITIC_INPUTS}, got {c.critic_input!r}")
    steps_per_update = c.num_envs * c.rollout_length
    if c.network == "gru":
        if c.num_envs % c.num_minibatches:
            raise ValueError(
                f"recurrent PPO splits minibatches over environments: num_envs ({c.num_envs}) "
                f"must be divisible by num_minibatches ({c.num_minibatches})"
            )
        minibatch = c.num_envs // c.num_minibatches
    else:
        if steps_per_update % c.num_minibatches:
            raise ValueError(
                f"num_envs * rollout_length ({c.num_envs} * {c.rollout_length} = "
                f"{steps_per_update}) must be divisible by num_minibatches ({c.num_minibatches})"
            )
        minibatch = steps_per_update // c.num_minibatches
    sizes = training.loop_sizes(c.total_steps, steps_per_update, c.num_evaluations)
    return Derived(
        num_devices=devices,
        steps_per_update=steps_per_update,
        num_updates=sizes.num_updates,
        updates_per_eval=sizes.updates_per_eval,
        num_evaluations=sizes.num_evaluations,
        total_steps=sizes.total_steps,
        minibatch_size=minibatch,
    )


# =============================================================================================
# Critic inputs
# =============================================================================================


def critic_features(
    kind: str, views: chex.Array, global_state: chex.Array | None, views_have_ids: bool
) -> chex.Array:
    """The critic's input per agent, `(B, N, F)`.

    With `D` the view size without ids, `S` the global state size and `N` agents, row `i` is:

    - `"local"`: `views[:, i]` as given (IPPO; `F = D (+ N)`).
    - `"global"`: `[global_state, onehot(i)]` (`F = S + N`).
    - `"agent_specific"`: `[own_i, onehot(i), v_0, ..., v_{N-1}]` (`F = D + N + N * D`): the
      agent's own view and id, then every agent's view without ids in agent order (the joint
      observation). This is the MAPPO paper's agent-specific state (Yu et al. 2022) with the
      joint observation as the compact global part, as EPyMARL uses where an environment
      has no state of its own; on the warehouse it is `71 + 2 + 142` values for two agents
      instead of the 1,100-value grid state.
    - `"agent_specific_global"`: `[own_i, onehot(i), global_state]` (`F = D + N + S`): the
      paper's version for environments whose global state is compact (LBF: 13 values).

    Args:
        kind: one of `CRITIC_INPUTS`.
        views: `(B, N, D)` or, when `views_have_ids`, `(B, N, D + N)` per-agent views whose
            last `N` entries are the one-hot agent id (`AgentID`).
        global_state: `(B, S)` the environment's global state (needed by "global" and
            "agent_specific_global"; ignored otherwise).
        views_have_ids: whether `views` end with the one-hot agent id.
    """
    if kind == "local":
        return views
    batch, n = views.shape[:2]
    ids = jnp.broadcast_to(jnp.eye(n, dtype=views.dtype), (batch, n, n))
    plain = views[..., :-n] if views_have_ids else views
    own = jnp.concatenate([plain, ids], axis=-1)
    if kind == "agent_specific":
        joint = plain.reshape(batch, 1, -1)
        return jnp.concatenate([own, jnp.broadcast_to(joint, (batch, n, joint.shape[-1]))], -1)
    if global_state is None:
        raise ValueError(f"critic_input {kind!r} needs the global state")
    gs = jnp.broadcast_to(
        global_state[:, None, :].astype(views.dtype), (batch, n, global_state.shape[-1])
    )
    if kind == "global":
        return jnp.concatenate([gs, ids], axis=-1)
    if kind == "agent_specific_global":
        return jnp.concatenate([own, gs], axis=-1)
    raise ValueError(f"critic_input must be one of {CRITIC_INPUTS}, got {kind!r}")


def team_rewards(reward: chex.Array) -> chex.Array:
    """`reward (..., N)` -> every agent's entry replaced by the sum over the agents."""
    return jnp.broadcast_to(reward.sum(-1, keepdims=True), reward.shape)


def critic_dim(kind: str, view_dim: int, state_dim: int, num_agents: int) -> int:
    """The size `F` of `critic_features(kind, ...)` for views of `view_dim` values without
    ids, a global state of `state_dim` values and `num_agents` agents (`"local"` is
    `view_dim` plus the ids when the views carry them; pass that as `view_dim`)."""
    sizes = {
        "local": view_dim,
        "global": state_dim + num_agents,
        "agent_specific": view_dim + num_agents + num_agents * view_dim,
        "agent_specific_global": view_dim + num_agents + state_dim,
    }
    if kind not in sizes:
        raise ValueError(f"critic_input must be one of {CRITIC_INPUTS}, got {kind!r}")
    return sizes[kind]


# =============================================================================================
# Value normalisation
# =============================================================================================

#: Decay of `ValueNorm`'s running moments per rollout (the MAPPO paper's 0.99999: with the
#: debiasing they are close to the plain average of every target seen so far).
VALUE_NORM_BETA = 0.99999


@struct.dataclass
class ValueNorm:
    """Running moments of the value targets (Yu et al. 2022's ValueNorm).

    Exponential moving averages of the targets' mean and mean square, debiased like Adam's
    moments: `debias` is the weight the averages have accumulated (`1 - beta^updates`).
    """

    mean: chex.Array  # ()
    mean_sq: chex.Array  # ()
    debias: chex.Array  # ()


def value_norm_init() -> ValueNorm:
    """Statistics before any target was seen (mean 0, standard deviation 0.1)."""
    zero = jnp.zeros((), jnp.float32)
    return ValueNorm(mean=zero, mean_sq=zero, debias=zero)


def value_norm_update(
    norm: ValueNorm, targets: chex.Array, beta: float = VALUE_NORM_BETA
) -> ValueNorm:
    """`norm` after a batch of `targets` (any shape; one moment update per batch)."""
    targets = targets.astype(jnp.float32)
    return ValueNorm(
        mean=beta * norm.mean + (1 - beta) * targets.mean(),
        mean_sq=beta * norm.mean_sq + (1 - beta) * jnp.square(targets).mean(),
        debias=beta * norm.debias + (1 - beta),
    )


def value_norm_stats(norm: ValueNorm) -> tuple[chex.Array, chex.Array]:
    """`(mean, std)` of the debiased moments; the variance is floored at 0.01 (as the
    paper's code does), so targets are never scaled up more than tenfold."""
    debias = jnp.maximum(norm.debias, 1e-5)
    mean = norm.mean / debias
    var = jnp.maximum(norm.mean_sq / debias - jnp.square(mean), 1e-2)
    return mean, jnp.sqrt(var)


def normalize_values(norm: ValueNorm, values: chex.Array) -> chex.Array:
    """Raw values -> the critic's normalised scale."""
    mean, std = value_norm_stats(norm)
    return (values - mean) / std


def denormalize_values(norm: ValueNorm, values: chex.Array) -> chex.Array:
    """The critic's normalised outputs -> raw values."""
    mean, std = value_norm_stats(norm)
    return values * std + mean


# =============================================================================================
# State
# =============================================================================================


@struct.dataclass
class Params:
    actor: Any
    critic: Any
    value_norm: ValueNorm | None = None  # running target statistics (config.value_norm)


@struct.dataclass
class Runner:
    """Everything batched over environments (this part is sharded over devices)."""

    env_state: Any  # (B, ...)
    timestep: Any  # (B, ...) the last timestep; its observation is the next input
    actor_hidden: chex.Array  # (B, N, H)
    critic_hidden: chex.Array  # (B, N, H)


@struct.dataclass
class TrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: Params
    opt_state: Any
    runner: Runner
    key: chex.PRNGKey
    update_step: chex.Array  # () int32 updates done
    best_actor: Any  # actor parameters with the best evaluation so far
    best_return: chex.Array  # () their mean evaluation return


@struct.dataclass
class Transition:
    obs: chex.Array  # (B, N, D)
    mask: chex.Array  # (B, N, A) bool (ones for continuous actions)
    critic_in: chex.Array  # (B, N, F)
    resets: chex.Array  # (B, N) bool: first step of an episode
    action: chex.Array  # (B, N) int or (B, N, A) float
    log_prob: chex.Array  # (B, N)
    value: chex.Array  # (B, N)
    next_value: chex.Array  # (B, N) value of the true successor (final obs on truncation)
    reward: chex.Array  # (B, N)
    terminated: chex.Array  # (B, N) bool
    episode_end: chex.Array  # (B, N) bool
    episode_return: chex.Array  # (B,) team return of the episode that just ended
    episode_done: chex.Array  # (B,) bool


# =============================================================================================
# Learner
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class PPOLearner:
    """The compiled-function factory of one PPO configuration.

    `init(key)`, `learn(state)` (one evaluation interval: `updates_per_eval` updates then an
    evaluation) and `evaluate(actor_params, key)` are pure, for one seed; the runner vmaps them
    over seeds and shards the environment batch over devices.
    """

    config: PPOConfig
    derived: Derived
    env: Environment  # the base environment
    train_env: Environment  # EpisodeMetrics(AutoReset(...)), unbatched
    eval_env: Environment  # AgentID(base) or base, unbatched
    actor: MultiAgentNet
    critic: MultiAgentNet
    actions: training.ActionInfo
    obs_dim: int
    critic_dim: int
    optimizer: optax.GradientTransformation

    # -- policy -----------------------------------------------------------------------------

    def act(self, actor_params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """One policy step for a batch: `obs_view (E, N, D)`, `new_episode (E,)` ->
        `(env_action, hidden)` (continuous actions are clipped to the bounds)."""
        resets = jnp.broadcast_to(new_episode[:, None], obs_view.shape[:2])
        hidden, out = self.actor.apply(actor_params, hidden, obs_view[None], resets[None])
        out = jax.tree_util.tree_map(lambda x: x[0], out)
        dist = make_distribution(
            out, None if self.actions.continuous else mask, self.actions.continuous
        )
        action = dist.mode() if greedy else dist.sample(key)
        return self._to_env(action), hidden

    def _to_env(self, action):
        if self.actions.continuous:
            return jnp.clip(action, self.actions.low, self.actions.high)
        return action

    def critic_input(self, obs_view: chex.Array, global_state: chex.Array | None) -> chex.Array:
        """`(B, N, F)` critic inputs for `config.critic_input` (see `critic_features`)."""
        return critic_features(
            self.config.critic_input, obs_view, global_state, self.config.add_agent_id
        )

    def initial_hidden(self, num: int):
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

    # -- init -------------------------------------------------------------------------------

    def init_params(self, actor_key: chex.PRNGKey, critic_key: chex.PRNGKey) -> tuple[Params, Any]:
        """Fresh `(params, opt_state)`: the networks, ValueNorm's statistics when `value_norm`
        is set, and the optimiser's state (it updates the networks only). Sebulba's learner
        builds its parameters with it too."""
        params = Params(
            actor=self.actor.init(actor_key, self.obs_dim),
            critic=self.critic.init(critic_key, self.critic_dim),
            value_norm=value_norm_init() if self.config.value_norm else None,
        )
        return params, self.optimizer.init(params.replace(value_norm=None))

    def init(self, key: chex.PRNGKey) -> TrainState:
        """A fresh training state for one seed."""
        actor_key, critic_key, env_key, key = jax.random.split(key, 4)
        params, opt_state = self.init_params(actor_key, critic_key)
        num_envs = self.config.num_envs
        env_state, ts = jax.vmap(self.train_env.reset)(jax.random.split(env_key, num_envs))
        runner = Runner(
            env_state=env_state,
            timestep=ts,
            actor_hidden=self.actor.initial_hidden((num_envs,)),
            critic_hidden=self.critic.initial_hidden((num_envs,)),
        )
        return TrainState(
            params=params,
            opt_state=opt_state,
            runner=runner,
            key=key,
            update_step=jnp.zeros((), jnp.int32),
            best_actor=params.actor,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    # -- rollout ----------------------------------------------------------------------------

    def _global_state(self, extras):
        return extras["global_state"] if self.config.needs_global_state else None

    def rollout(self, params: Params, runner: Runner, key: chex.PRNGKey):
        """`rollout_length` steps of the vmapped environments under `lax.scan`."""
        env_step = jax.vmap(self.train_env.step)
        continuous = self.actions.continuous

        def step(runner: Runner, step_key):
            ts = runner.timestep
            obs = ts.observation
            num_envs, n = obs.agents_view.shape[:2]
            resets = jnp.broadcast_to((~ts.mid())[:, None], (num_envs, n))
            actor_hidden, out = self.actor.apply(
                params.actor, runner.actor_hidden, obs.agents_view[None], resets[None]
            )
            out = jax.tree_util.tree_map(lambda x: x[0], out)
            mask = obs.action_mask if not continuous else None
            dist = make_distribution(out, mask, continuous)
            action = dist.sample(step_key)
            log_prob = dist.log_prob(action)
            critic_in = self.critic_input(obs.agents_view, self._global_state(ts.extras))
            critic_hidden, value = self.critic.apply(
                params.critic, runner.critic_hidden, critic_in[None], resets[None]
            )
            env_state, next_ts = env_step(runner.env_state, self._to_env(action))
            # Value of the true successor: the final observation where an episode ended
            # (AutoReset already swapped in the next episode's first observation).
            final_in = self.critic_input(
                next_ts.extras["final_observation"].agents_view,
                self._global_state(next_ts.extras["final_extras"]),
            )
            _, next_value = self.critic.apply(
                params.critic, critic_hidden, final_in[None], jnp.zeros_like(resets)[None]
            )
            end = jnp.broadcast_to(next_ts.last()[:, None], (num_envs, n))
            transition = Transition(
                obs=obs.agents_view,
                mask=jnp.ones((num_envs, n, 1), bool) if continuous else obs.action_mask,
                critic_in=critic_in,
                resets=resets,
                action=action,
                log_prob=log_prob,
                value=value[0],
                next_value=next_value[0],
                reward=next_ts.reward,
                terminated=next_ts.terminated,
                episode_end=end,
                episode_return=next_ts.extras["episode_return"],
                episode_done=next_ts.extras["episode_done"],
            )
            runner = Runner(env_state, next_ts, actor_hidden, critic_hidden)
            return runner, transition

        keys = jax.random.split(key, self.config.rollout_length)
        return jax.lax.scan(step, runner, keys)

    # -- update -----------------------------------------------------------------------------

    def loss(self, params: Params, batch: dict) -> tuple[chex.Array, dict]:
        """The PPO loss on one minibatch of sequences `(L, M, N, ...)`."""
        c = self.config
        _, out = self.actor.apply(params.actor, batch["actor_h0"], batch["obs"], batch["resets"])
        mask = None if self.actions.continuous else batch["mask"]
        dist = make_distribution(out, mask, self.actions.continuous)
        log_prob = dist.log_prob(batch["action"])
        entropy = entropy_bonus(dist.entropy())
        _, value = self.critic.apply(
            params.critic, batch["critic_h0"], batch["critic_in"], batch["resets"]
        )
        adv = batch["advantages"]
        if c.normalize_advantages:
            adv = normalize(adv)
        actor_loss, stats = clipped_surrogate_loss(log_prob, batch["log_prob"], adv, c.clip_eps)
        value_loss = clipped_value_loss(value, batch["value"], batch["targets"], c.clip_eps)
        total = actor_loss + c.vf_coef * value_loss - c.ent_coef * entropy
        return total, {
            "total_loss": total,
            "actor_loss": actor_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            **stats,
        }

    def update(self, state: TrainState, _=None) -> tuple[TrainState, dict]:
        """One PPO update: rollout, GAE, `num_epochs` x `num_minibatches` gradient steps."""
        key, rollout_key, perm_key = jax.random.split(state.key, 3)
        start = state.runner
        runner, traj = self.rollout(state.params, start, rollout_key)
        params, opt_state, metrics = self.learn_from_rollout(
            state.params,
            state.opt_state,
            traj,
            (start.actor_hidden, start.critic_hidden),
            perm_key,
        )
        state = state.replace(
            params=params,
            opt_state=opt_state,
            runner=runner,
            key=key,
            update_step=state.update_step + 1,
        )
        return state, metrics

    def learn_from_rollout(
        self, params: Params, opt_state: Any, traj: Transition, start_hidden: tuple, key
    ) -> tuple[Params, Any, dict]:
        """GAE and `num_epochs` x `num_minibatches` gradient steps on one rollout `(T, B, ...)`
        (the update of `update` after its rollout; Sebulba feeds it rollouts from actors).

        Args:
            params, opt_state: the parameters and optimiser state to update.
            traj: the rollout, time-major.
            start_hidden: `(actor_hidden, critic_hidden)` `(B, N, H)` at the rollout's start.
            key: the minibatch permutation key.

        Returns:
            `(params, opt_state, metrics)`.
        """
        c = self.config
        perm_key = key  # the same key use as before the split from `update`
        reward = team_rewards(traj.reward) if c.team_reward else traj.reward
        value, next_value, norm = traj.value, traj.next_value, params.value_norm
        if c.value_norm:
            if norm is None:
                raise ValueError("value_norm is set but params.value_norm is None")
            # The critic's outputs are normalised: GAE runs on raw values, the critic then
            # fits the targets normalised by the statistics updated with them.
            value = denormalize_values(norm, value)
            next_value = denormalize_values(norm, next_value)
        advantages, targets = gae(
            reward,
            value,
            next_value,
            traj.terminated,
            traj.episode_end,
            c.gamma,
            c.gae_lambda,
        )
        if c.value_norm:
            norm = value_norm_update(norm, targets)
            targets = normalize_values(norm, targets)
        data = {
            "obs": traj.obs,
            "mask": traj.mask,
            "critic_in": traj.critic_in,
            "resets": traj.resets,
            "action": traj.action,
            "log_prob": traj.log_prob,
            "value": traj.value,
            "advantages": advantages,
            "targets": targets,
        }
        if c.network == "gru":
            # Sequences of whole rollouts; minibatches split the environment axis.
            data["actor_h0"], data["critic_h0"] = start_hidden
            num_items = traj.reward.shape[1]
        else:
            # Independent transitions: fold time into the batch (sequence length 1).
            t, b = traj.reward.shape[:2]
            data = jax.tree_util.tree_map(lambda x: x.reshape(1, t * b, *x.shape[2:]), data)
            data["actor_h0"] = self.actor.initial_hidden((t * b,))
            data["critic_h0"] = self.critic.initial_hidden((t * b,))
            num_items = t * b

        def batch_axis(name):  # hidden states are (M, N, H); the rest (L, M, N, ...)
            return 0 if name.endswith("_h0") else 1

        num_mb = c.num_minibatches
        grad_fn = jax.value_and_grad(self.loss, has_aux=True)

        def epoch(carry, epoch_key):
            params, opt_state = carry
            perm = jax.random.permutation(epoch_key, num_items)

            def split(name, x):
                ax = batch_axis(name)
                x = jnp.take(x, perm, axis=ax)
                shape = x.shape[:ax] + (num_mb, x.shape[ax] // num_mb) + x.shape[ax + 1 :]
                return jnp.moveaxis(x.reshape(shape), ax, 0)

            minibatches = {k: split(k, v) for k, v in data.items()}

            def minibatch(carry, mb):
                params, opt_state = carry
                (_, stats), grads = grad_fn(params, mb)
                updates, opt_state = self.optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
                stats["grad_norm"] = optax.tree.norm(grads)
                stats["actor_grad_norm"] = optax.tree.norm(grads.actor)
                stats["critic_grad_norm"] = optax.tree.norm(grads.critic)
                # Whether the clip scaled the actor's gradient down in this step.
                clipped = stats["actor_grad_norm" if c.clip_per_network else "grad_norm"]
                stats["grad_clipped"] = (clipped > c.max_grad_norm).astype(jnp.float32)
                return (params, opt_state), stats

            return jax.lax.scan(minibatch, (params, opt_state), minibatches)

        # The optimiser updates the networks only; the target statistics ride along.
        (params, opt_state), stats = jax.lax.scan(
            epoch,
            (params.replace(value_norm=None), opt_state),
            jax.random.split(perm_key, c.num_epochs),
        )
        params = params.replace(value_norm=norm)
        done = traj.episode_done.astype(jnp.float32)
        metrics = {k: v.mean() for k, v in stats.items()}
        if c.value_norm:
            metrics["value_norm_mean"], metrics["value_norm_std"] = value_norm_stats(norm)
        metrics["episode_return_sum"] = jnp.sum(traj.episode_return * done)
        metrics["episodes"] = done.sum()
        return params, opt_state, metrics

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
    config: PPOConfig, env: Environment | None = None, num_devices: int | None = None
) -> PPOLearner:
    """Validates `config` and builds the learner (no compilation happens here).

    Args:
        config: the PPO config.
        env: an environment instance to use instead of `make(config.env_id, **env_kwargs)`.
        num_devices: devices available (default all).
    """
    derived = derive(config, num_devices)
    if env is None:
        env = jaxmarl_envs.make(config.env_id, **config.env_kwargs)
    actions = training.action_info(env)
    train_env = training.wrap_for_training(env, config.add_agent_id, config.needs_global_state)
    eval_env = training.wrap_for_evaluation(env, config.add_agent_id)
    obs_dim = training.observation_dim(eval_env)
    if config.critic_input == "local":
        critic_size = obs_dim
    else:
        critic_size = critic_dim(
            config.critic_input,
            training.observation_dim(env),
            int(np.prod(env.global_state_spec().shape)),
            env.num_agents,
        )
    actor, critic, optimizer = build_networks(config, env.num_agents, actions, derived.num_updates)
    return PPOLearner(
        config,
        derived,
        env,
        train_env,
        eval_env,
        actor,
        critic,
        actions,
        obs_dim,
        critic_size,
        optimizer,
    )


def build_networks(
    config: PPOConfig, num_agents: int, actions: training.ActionInfo, num_updates: int
) -> tuple[MultiAgentNet, MultiAgentNet, optax.GradientTransformation]:
    """`(actor, critic, optimizer)` of a config (shared by `make_learner` and Sebulba)."""
    recurrent = config.network == "gru"
    hidden = config.gru_size if recurrent else 1
    n = num_agents
    actor = MultiAgentNet(
        Actor(
            config.hidden_sizes,
            actions.dim,
            actions.continuous,
            config.activation,
            recurrent,
            config.gru_size,
        ),
        n,
        config.share_params,
        hidden,
    )
    critic = MultiAgentNet(
        Critic(
            config.hidden_sizes,
            config.activation,
            recurrent,
            config.gru_size,
            input_norm=config.critic_layer_norm,
        ),
        n,
        config.share_params,
        hidden,
    )
    steps = num_updates * config.num_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, steps) if config.anneal_lr else config.lr
    if config.clip_per_network:
        clip = clip_per_network(config.max_grad_norm)
    else:
        clip = optax.clip_by_global_norm(config.max_grad_norm)
    parts = [clip, optax.adam(lr, eps=1e-5)]
    if config.critic_lr_scale != 1.0:
        parts.append(scale_critic(config.critic_lr_scale))
    optimizer = optax.chain(*parts)
    return actor, critic, optimizer


def scale_critic(factor: float) -> optax.GradientTransformation:
    """Multiplies the critic's updates (`Params.critic`) by `factor`: after Adam, the same as
    giving the critic its own Adam with learning rate `factor * lr` (Adam's step is linear in
    its learning rate). Chained only when `critic_lr_scale != 1`, so runs and checkpoints
    without it keep their optimiser state."""

    def update(updates: Params, state, params=None):
        critic = jax.tree_util.tree_map(lambda u: u * factor, updates.critic)
        return updates.replace(critic=critic), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def clip_per_network(max_norm: float) -> optax.GradientTransformation:
    """`clip_by_global_norm(max_norm)` applied to the actor's and the critic's gradients
    (`Params` fields) separately. Stateless like the global clip, so the optimiser state has
    the same structure either way."""
    clip = optax.clip_by_global_norm(max_norm)

    def update(grads: Params, state, params=None):
        actor, _ = clip.update(grads.actor, state)
        critic, _ = clip.update(grads.critic, state)
        return grads.replace(actor=actor, critic=critic), state

    return optax.GradientTransformation(clip.init, update)


#: Which parts of `TrainState` are batched over environments (sharded over devices).
BATCHED = TrainState(
    params=False,
    opt_state=False,
    runner=True,
    key=False,
    update_step=False,
    best_actor=False,
    best_return=False,
)


def make_train(config: PPOConfig, env: Environment | None = None):
    """`train(key) -> (state, metrics)`: the whole run for one seed, without files.

    The update loop and evaluation of each interval are one jitted function; the only Python
    loop is over the `num_evaluations` intervals. Metrics are stacked over intervals. `train`
    can be vmapped by calling it on a batch of keys (`train(keys)` with keys `(S, 2)`).
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
