"""Recurrent multi-agent Q-learning (IQL, VDN, QMIX), Anakin style: one jitted loop."""

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
from flax import struct

import jaxmarl_envs
from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.buffers import (
    TrajectoryBuffer,
    TrajectoryBufferState,
    make_trajectory_buffer,
)
from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.algorithms.networks import MultiAgentNet, Torso, init_each
from jaxmarl_envs.algorithms.value_kernels import (
    QMixer,
    double_q_select,
    epsilon_greedy,
    linear_epsilon,
    masked_argmax,
    max_q_select,
    n_step_targets,
    periodic_update,
    scale_to_unit,
    soft_update,
    vdn_mix,
)
from jaxmarl_envs.env import Environment

MIXERS = ("none", "vdn", "qmix")
TARGET_UPDATES = ("soft", "hard")

# =============================================================================================
# Config
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class QLearningConfig(training.RunConfig):
    """Recurrent Q-learning hyper-parameters and run settings (defaults close to Mava's
    recurrent IQL).

    A "step" is one transition of one environment (all agents act once). The mixed variants
    (VDN, QMIX) learn from the team reward, the SUM of the agents' rewards (the same team
    return the evaluator reports), and the team termination (every agent terminated).
    IQL learns each agent's own reward and termination. Every field is overridable from the
    command line as `--field-name value`.
    """

    algorithm: str = field("iql", "name recorded in results (iql, vdn, qmix)")
    mixer: str = field("none", "value mixer: none (IQL), vdn (sum), qmix", choices=MIXERS)
    eval_greedy: bool = field(True, "evaluate with the masked argmax (else eval_epsilon-greedy)")
    eval_epsilon: float = field(0.05, "exploration rate of non-greedy evaluation")
    share_params: bool = field(True, "one Q-network for all agents (else one per agent)")
    hidden_sizes: tuple[int, ...] = field((128, 128), "dense sizes; the GRU follows the first")
    gru_size: int = field(128, "GRU state size")
    recurrent: bool = field(
        True, "GRU after the first dense layer (else a feed-forward Q-network, no memory)"
    )
    activation: str = field("relu", "activation", choices=("relu", "tanh", "gelu", "silu"))
    rollout_length: int = field(8, "steps per environment between training phases")
    grad_steps: int = field(2, "gradient steps after every rollout")
    buffer_size: int = field(20_000, "replay capacity in transitions over all environments")
    sequence_length: int = field(20, "steps per sampled sequence (GRU unrolled from zeros)")
    sample_period: int = field(1, "spacing of valid sequence starts in the buffer")
    batch_size: int = field(32, "sequences per gradient step")
    learning_starts: int = field(1_000, "environment steps collected before training starts")
    lr: float = field(3e-4, "Adam learning rate")
    gamma: float = field(0.99, "discount factor")
    reward_scale: float = field(
        10.0,
        "rewards are multiplied by this in the TD targets (Q-values in scaled units). With "
        "1.0, LBF's normalised rewards (a team total of at most 1) leave the values of "
        "neighbouring actions about 1e-3 apart, below the noise of Adam's fixed-size steps, "
        "and IQL stalls near 0.3 on lbf-8x8-2p-2f-coop; 10 reaches about 0.9 in 2.5e5 steps "
        "(issue 19, benchmarks/RESULTS.md)",
    )
    n_step: int = field(
        3,
        "rewards summed before bootstrapping (n-step targets, cut at episode and sequence "
        "ends; 1: one-step TD). 3 roughly halves the steps IQL needs to reach 0.25 on "
        "lbf-8x8-2p-2f-coop (issue 19, benchmarks/RESULTS.md)",
    )
    max_grad_norm: float = field(10.0, "global gradient-norm clip")
    double_q: bool = field(True, "double DQN targets (online argmax, target evaluation)")
    eps_start: float = field(1.0, "initial exploration rate")
    eps_end: float = field(0.05, "final exploration rate")
    eps_decay_steps: int = field(100_000, "environment steps of the linear epsilon decay")
    target_update: str = field(
        "soft", "target network update: soft (tau every step) or hard", choices=TARGET_UPDATES
    )
    tau: float = field(0.01, "soft target update rate")
    target_period: int = field(200, "gradient steps between hard target copies")
    mixer_embed_dim: int = field(32, "QMIX mixing embedding size")
    mixer_hypernet_hidden: int = field(64, "QMIX hypernetwork hidden size")
    mixer_state_norm: bool = field(
        True,
        "scale the global state to [0, 1] by its spec bounds before the QMIX mixer (where the "
        "spec is bounded). LBF's raw state (positions up to 7) makes the freshly initialised "
        "mixer's gain dQ_tot/dq_i about 70, varying 20-150 with the state, and QMIX stalls "
        "near 0.3 on lbf-8x8-2p-2f-coop (issue 19, benchmarks/RESULTS.md)",
    )


@dataclasses.dataclass(frozen=True)
class IQLConfig(QLearningConfig):
    """Independent Q-learning: every agent learns its own Q from its own reward."""


@dataclasses.dataclass(frozen=True)
class VDNConfig(QLearningConfig):
    """Value decomposition networks: the team Q is the sum of the agents' Qs."""

    algorithm: str = field("vdn", "name recorded in results")
    mixer: str = field("vdn", "value mixer: none (IQL), vdn (sum), qmix", choices=MIXERS)


@dataclasses.dataclass(frozen=True)
class QMIXConfig(QLearningConfig):
    """QMIX: a monotonic hypernetwork mixer conditioned on the global state."""

    algorithm: str = field("qmix", "name recorded in results")
    mixer: str = field("qmix", "value mixer: none (IQL), vdn (sum), qmix", choices=MIXERS)
    reward_scale: float = field(
        50.0,
        "rewards are multiplied by this in the TD targets (Q-values in scaled units). QMIX "
        "needs more than IQL/VDN's 10: the mixer's gain dQ_tot/dq_i (about 3 at "
        "initialisation, learned) divides the agents' value gaps; on lbf-8x8-2p-2f-coop 50 "
        "reaches 0.81/0.81 at 2e5 steps where 10 gives 0.89/0.34 (issue 19)",
    )


#: Algorithm names accepted by `make_config` and the CLI.
ALGORITHMS = {"iql": (IQLConfig, {}), "vdn": (VDNConfig, {}), "qmix": (QMIXConfig, {})}

#: Overrides with which IQL, VDN and QMIX learn the warehouse (rware-tiny-2ag) within 1M steps
#: (`make_config("iql", env_id="rware-tiny-2ag", **RWARE_SETTINGS)`; on the command line
#: `--num-envs 32 --buffer-size 320000 --n-step 10 --eps-decay-steps 500000
#: --learning-starts 20000`). The defaults suit LBF, whose 50-step episodes random play
#: solves now and then; with them IQL stays at 0 on the warehouse, where random play
#: delivers about once in 20 episodes of 500 steps and epsilon reached 0.05 after 1e5 steps.
#: The longer exploration (epsilon over 5e5 steps) is what matters: IQL with only it and
#: the 32 environments changed (default 20k replay, 3-step targets) learned as fast on seed
#: 0. The larger replay (20 episodes per environment instead of 1.25, so rare deliveries
#: stay sampled) and 10-step targets are what all three were measured with. Evaluate
#: eps-greedy (`eval_greedy=False`): greedy Q policies stall (same view, same action; two
#: agents can block each other for the rest of an episode). Measured in issue 19
#: (benchmarks/RESULTS.md, "Q family on the warehouse").
RWARE_SETTINGS = {
    "num_envs": 32,
    "rollout_length": 8,
    "grad_steps": 2,
    "buffer_size": 320_000,
    "n_step": 10,
    "sequence_length": 20,
    "eps_decay_steps": 500_000,
    "learning_starts": 20_000,
}


def make_config(name: str, **overrides: Any) -> QLearningConfig:
    """The config of algorithm `name` (iql, vdn, qmix) with overrides."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown Q-learning algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, preset = ALGORITHMS[name]
    return cls(**{**preset, **overrides})


@dataclasses.dataclass(frozen=True)
class Derived:
    """Values computed from a config and the device count (see `derive`).

    Attributes:
        num_devices: devices the environments are split over.
        steps_per_update: `num_envs * rollout_length`.
        num_updates: updates (rollout + training phase) in the whole run.
        updates_per_eval: updates between evaluations.
        num_evaluations: evaluations (the Python loop's length).
        total_steps: steps actually run (at least `config.total_steps`; see
            `training.loop_sizes`).
        buffer_time: time steps stored per environment (`buffer_size // num_envs`).
    """

    num_devices: int
    steps_per_update: int
    num_updates: int
    updates_per_eval: int
    num_evaluations: int
    total_steps: int
    buffer_time: int


def derive(config: QLearningConfig, num_devices: int | None = None) -> Derived:
    """Checks a config and derives loop sizes, raising ValueError before any compilation.

    Args:
        config: the Q-learning config.
        num_devices: devices available (default `len(jax.devices())`).
    """
    c = config
    devices = training.check_run_config(c, num_devices)
    positive = (
        "rollout_length",
        "grad_steps",
        "n_step",
        "sequence_length",
        "sample_period",
        "batch_size",
        "gru_size",
        "eps_decay_steps",
        "target_period",
        "mixer_embed_dim",
        "mixer_hypernet_hidden",
    )
    for name in positive:
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.learning_starts < 0:
        raise ValueError(f"learning_starts must be >= 0, got {c.learning_starts}")
    for name in ("lr", "max_grad_norm", "reward_scale"):
        if not getattr(c, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(c, name)}")
    for name in ("gamma", "eps_start", "eps_end", "eval_epsilon"):
        if not 0.0 <= getattr(c, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(c, name)}")
    if not 0.0 < c.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {c.tau}")
    if c.mixer not in MIXERS:
        raise ValueError(f"mixer must be one of {MIXERS}, got {c.mixer!r}")
    if c.target_update not in TARGET_UPDATES:
        raise ValueError(f"target_update must be one of {TARGET_UPDATES}, got {c.target_update!r}")
    if not c.hidden_sizes or any(h < 1 for h in c.hidden_sizes):
        raise ValueError(f"hidden_sizes must be non-empty positive sizes, got {c.hidden_sizes}")
    if c.n_step > c.sequence_length:
        raise ValueError(
            f"n_step ({c.n_step}) must be <= sequence_length ({c.sequence_length}): n-step "
            "targets are cut at the end of each sampled sequence"
        )
    buffer_time = c.buffer_size // c.num_envs
    needed = max(c.sequence_length, c.rollout_length)
    if buffer_time < needed:
        raise ValueError(
            f"buffer_size ({c.buffer_size}) holds {buffer_time} steps per environment "
            f"(buffer_size // num_envs); it must hold at least max(sequence_length, "
            f"rollout_length) = {needed}"
        )
    steps_per_update = c.num_envs * c.rollout_length
    sizes = training.loop_sizes(c.total_steps, steps_per_update, c.num_evaluations)
    return Derived(
        num_devices=devices,
        steps_per_update=steps_per_update,
        num_updates=sizes.num_updates,
        updates_per_eval=sizes.updates_per_eval,
        num_evaluations=sizes.num_evaluations,
        total_steps=sizes.total_steps,
        buffer_time=buffer_time,
    )


# =============================================================================================
# Network and state
# =============================================================================================


class QNetwork(nn.Module):
    """Recurrent agent Q-network: `Torso` (Dense -> GRU -> Dense ...) then a linear head,
    `(T, ..., D) -> (T, ..., A)`."""

    hidden_sizes: tuple[int, ...]
    num_actions: int
    activation: str = "relu"
    gru_size: int = 128
    recurrent: bool = True

    @nn.compact
    def __call__(self, hidden, x, resets):
        torso = Torso(
            self.hidden_sizes, self.activation, self.recurrent, self.gru_size, name="torso"
        )
        hidden, h = torso(hidden, x, resets)
        return hidden, nn.Dense(self.num_actions, name="head")(h)


@struct.dataclass
class QParams:
    agent: Any  # the agent Q-network (shared or per-agent)
    mixer: Any  # QMIX mixer parameters; None for IQL and VDN


@struct.dataclass
class QRunner:
    """Everything batched over environments (this part is sharded over devices)."""

    env_state: Any  # (B, ...)
    timestep: Any  # (B, ...) the last timestep; its observation is the next input
    hidden: chex.Array  # (B, N, H) acting GRU state


@struct.dataclass
class QTrainState:
    """The complete training state of one seed (a checkpoint holds exactly this)."""

    params: QParams
    target_params: QParams
    opt_state: Any
    buffer: TrajectoryBufferState  # experience (B, buffer_time, ...)
    runner: QRunner
    key: chex.PRNGKey
    update_step: chex.Array  # () int32 updates done
    grad_steps: chex.Array  # () int32 gradient steps done
    best_agent: Any  # agent parameters with the best evaluation so far
    best_return: chex.Array  # () their mean evaluation return


# One stored step of one environment (the buffer's item), as a dict of arrays:
#   obs (N, D), mask (N, A) bool, action (N,) int32, reward (N,), terminated (N,) bool,
#   reset (N,) bool (first step of an episode: the GRU state is zeroed before it),
#   next_obs (N, D) and next_mask (N, A): the TRUE successor (the final observation where
#   the episode ended), and with QMIX state (S,) and next_state (S,).


# =============================================================================================
# Learner
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class QLearner:
    """The compiled-function factory of one Q-learning configuration.

    `init(key)`, `learn(state)` (one evaluation interval: `updates_per_eval` updates, each a
    rollout, a buffer add and `grad_steps` gradient steps, then an evaluation) and
    `make_evaluate(n)(agent_params, key)` are pure, for one seed; the runner vmaps them over
    seeds and shards the environment batch (and the replay rows) over devices.
    """

    config: QLearningConfig
    derived: Derived
    env: Environment  # the base environment
    train_env: Environment  # EpisodeMetrics(AutoReset([GlobalState](...))), unbatched
    eval_env: Environment  # AgentID(base) or base, unbatched
    q_net: MultiAgentNet
    mixer: QMixer | None
    buffer: TrajectoryBuffer
    optimizer: optax.GradientTransformation
    num_actions: int
    obs_dim: int
    state_dim: int
    state_bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (low, high)
    # Replay dtypes of observations and states (`training.storage_dtypes`: uint8 for the
    # warehouse's whole-number views and 0/1 state, exact; float32 where values are not).
    obs_dtype: Any = np.float32
    state_dtype: Any = np.float32

    def mixer_state(self, state: chex.Array) -> chex.Array:
        """The mixer's input: `state (..., S)` (as stored) in float32, scaled to [0, 1] when
        `state_bounds` is set."""
        state = state.astype(jnp.float32)
        if self.state_bounds is None:
            return state
        low, high = (jnp.asarray(b, jnp.float32) for b in self.state_bounds)
        return scale_to_unit(state, low, high)

    # -- policy -----------------------------------------------------------------------------

    def act(self, agent_params, hidden, obs_view, mask, new_episode, key, greedy: bool):
        """One policy step for a batch: `obs_view (E, N, D)`, `mask (E, N, A)`,
        `new_episode (E,)` -> `(action (E, N) int32, hidden)`; greedy is the masked argmax,
        else `eval_epsilon`-greedy over legal actions."""
        resets = jnp.broadcast_to(new_episode[:, None], obs_view.shape[:2])
        hidden, q = self.q_net.apply(agent_params, hidden, obs_view[None], resets[None])
        mask = mask.astype(bool)
        if greedy:
            return masked_argmax(q[0], mask), hidden
        return epsilon_greedy(key, q[0], mask, self.config.eval_epsilon), hidden

    def initial_hidden(self, num: int):
        return self.q_net.initial_hidden((num,))

    def make_evaluate(self, num_episodes: int, greedy: bool | None = None):
        """`evaluate(agent_params, key) -> EvalOutput` over `num_episodes` episodes."""
        greedy = self.config.eval_greedy if greedy is None else greedy
        return training.make_evaluator(
            self.eval_env,
            functools.partial(self.act, greedy=greedy),
            self.initial_hidden,
            num_episodes,
        )

    @property
    def batched(self) -> QTrainState:
        """Which parts of the state are batched over environments (sharded over devices)."""
        return BATCHED

    def policy_params(self, state: QTrainState) -> Any:
        """The current agent Q-network parameters."""
        return state.params.agent

    def best_policy_params(self, state: QTrainState) -> Any:
        """The agent parameters with the best evaluation return so far."""
        return state.best_agent

    # -- init -------------------------------------------------------------------------------

    def example_item(self) -> dict:
        """One zero step of one environment, shaped like the buffer's items."""
        n, a, d = self.q_net.num_agents, self.num_actions, self.obs_dim
        item = {
            "obs": jnp.zeros((n, d), self.obs_dtype),
            "mask": jnp.zeros((n, a), bool),
            "action": jnp.zeros((n,), jnp.int32),
            "reward": jnp.zeros((n,), jnp.float32),
            "terminated": jnp.zeros((n,), bool),
            "reset": jnp.zeros((n,), bool),
            "next_obs": jnp.zeros((n, d), self.obs_dtype),
            "next_mask": jnp.zeros((n, a), bool),
        }
        if self.mixer is not None:
            item["state"] = jnp.zeros((self.state_dim,), self.state_dtype)
            item["next_state"] = jnp.zeros((self.state_dim,), self.state_dtype)
        return item

    def init(self, key: chex.PRNGKey) -> QTrainState:
        """A fresh training state for one seed."""
        agent_key, mixer_key, env_key, key = jax.random.split(key, 4)
        mixer_params = None
        if self.mixer is not None:
            n = self.env.num_agents
            mixer_params = self.mixer.init(
                mixer_key, jnp.zeros((n,), jnp.float32), jnp.zeros((self.state_dim,))
            )
        params = QParams(agent=self.q_net.init(agent_key, self.obs_dim), mixer=mixer_params)
        num_envs = self.config.num_envs
        env_state, ts = jax.vmap(self.train_env.reset)(jax.random.split(env_key, num_envs))
        runner = QRunner(env_state, ts, self.q_net.initial_hidden((num_envs,)))
        return QTrainState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            buffer=self.buffer.init(self.example_item()),
            runner=runner,
            key=key,
            update_step=jnp.zeros((), jnp.int32),
            grad_steps=jnp.zeros((), jnp.int32),
            best_agent=params.agent,
            best_return=jnp.full((), -jnp.inf, jnp.float32),
        )

    # -- rollout ----------------------------------------------------------------------------

    def rollout(self, agent_params, runner: QRunner, epsilon: chex.Array, key: chex.PRNGKey):
        """`rollout_length` epsilon-greedy steps of the vmapped environments (`lax.scan`).

        Returns:
            `(runner, (items, episode_return (T, B), episode_done (T, B)))` with the items'
            leaves `(T, B, ...)`.
        """
        env_step = jax.vmap(self.train_env.step)

        def step(runner: QRunner, step_key):
            ts = runner.timestep
            obs = ts.observation
            num_envs, n = obs.agents_view.shape[:2]
            resets = jnp.broadcast_to((~ts.mid())[:, None], (num_envs, n))
            hidden, q = self.q_net.apply(
                agent_params, runner.hidden, obs.agents_view[None], resets[None]
            )
            mask = obs.action_mask.astype(bool)
            action = epsilon_greedy(step_key, q[0], mask, epsilon)
            env_state, next_ts = env_step(runner.env_state, action)
            # The true successor: AutoReset already swapped in the next episode's first
            # observation where an episode ended; the final one is kept in extras.
            final = next_ts.extras["final_observation"]
            item = {
                "obs": obs.agents_view.astype(self.obs_dtype),
                "mask": mask,
                "action": action,
                "reward": next_ts.reward.astype(jnp.float32),
                "terminated": next_ts.terminated,
                "reset": resets,
                "next_obs": final.agents_view.astype(self.obs_dtype),
                "next_mask": final.action_mask.astype(bool),
            }
            if self.mixer is not None:
                item["state"] = ts.extras["global_state"].astype(self.state_dtype)
                final_state = next_ts.extras["final_extras"]["global_state"]
                item["next_state"] = final_state.astype(self.state_dtype)
            metrics = (next_ts.extras["episode_return"], next_ts.extras["episode_done"])
            return QRunner(env_state, next_ts, hidden), (item, metrics)

        keys = jax.random.split(key, self.config.rollout_length)
        return jax.lax.scan(step, runner, keys)

    # -- loss -------------------------------------------------------------------------------

    def unroll(self, agent_params, obs, next_obs, resets):
        """Q-values along sequences, and of each step's true successor.

        Args:
            agent_params: agent network parameters.
            obs: `(L, M, N, D)` observations; `next_obs` the same shape.
            resets: `(L, M, N)` bool, zero the GRU state before that step.

        Returns:
            `(q, q_next)`, both `(L, M, N, A)`: `q[t]` from the GRU state after `obs[:t+1]`
            (unrolled from zeros at the sequence start) and `q_next[t]` one more step from
            there on `next_obs[t]` (exact also where step t ends an episode).
        """
        h0 = self.q_net.initial_hidden(obs.shape[1:2])

        def body(hidden, inputs):
            o, next_o, reset = inputs
            hidden, q = self.q_net.apply(agent_params, hidden, o[None], reset[None])
            _, q_next = self.q_net.apply(
                agent_params, hidden, next_o[None], jnp.zeros_like(reset)[None]
            )
            return hidden, (q[0], q_next[0])

        _, (q, q_next) = jax.lax.scan(body, h0, (obs, next_obs, resets))
        return q, q_next

    def loss(self, params: QParams, target_params: QParams, batch: dict):
        """Mean squared TD error on a time-major batch of sequences `(L, M, ...)`."""
        c = self.config
        obs = batch["obs"].astype(jnp.float32)  # stored narrow where exact (obs_dtype)
        next_obs = batch["next_obs"].astype(jnp.float32)
        q, q_next_online = self.unroll(params.agent, obs, next_obs, batch["reset"])
        _, q_next_target = self.unroll(target_params.agent, obs, next_obs, batch["reset"])
        chosen = jnp.take_along_axis(q, batch["action"][..., None], axis=-1)[..., 0]  # (L,M,N)
        if c.double_q:
            next_value = double_q_select(
                jax.lax.stop_gradient(q_next_online), q_next_target, batch["next_mask"]
            )
        else:
            next_value = max_q_select(q_next_target, batch["next_mask"])
        # Step t ends its episode when step t + 1 starts a new one (unknown at the
        # sequence's last step, where n-step targets stop anyway).
        resets = batch["reset"]
        ends = jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])], axis=0)
        if c.mixer == "none":
            predicted, reward, terminated = chosen, batch["reward"], batch["terminated"]
        else:
            reward = batch["reward"].sum(-1)  # team reward: the sum over agents
            terminated = batch["terminated"].all(-1)  # team termination
            ends = ends.any(-1)
            if c.mixer == "vdn":
                predicted, next_value = vdn_mix(chosen), vdn_mix(next_value)
            else:
                state = self.mixer_state(batch["state"])
                next_state = self.mixer_state(batch["next_state"])
                predicted = self.mixer.apply(params.mixer, chosen, state)
                next_value = self.mixer.apply(target_params.mixer, next_value, next_state)
        reward = reward * c.reward_scale
        target = n_step_targets(reward, next_value, terminated, ends, c.gamma, c.n_step)
        target = jax.lax.stop_gradient(target)
        td = predicted - target
        loss = 0.5 * jnp.mean(td**2)
        return loss, {"loss": loss, "q_mean": predicted.mean(), "td_abs": jnp.abs(td).mean()}

    # -- update -----------------------------------------------------------------------------

    def train_step(self, buffer_state: TrajectoryBufferState, carry, key: chex.PRNGKey):
        """One gradient step on a sampled batch, then the target update."""
        c = self.config
        params, target_params, opt_state, grad_steps = carry
        sample = self.buffer.sample(buffer_state, key)
        batch = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), sample.experience)
        (_, stats), grads = jax.value_and_grad(self.loss, has_aux=True)(
            params, target_params, batch
        )
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        grad_steps = grad_steps + 1
        if c.target_update == "soft":
            target_params = soft_update(target_params, params, c.tau)
        else:
            target_params = periodic_update(target_params, params, grad_steps, c.target_period)
        stats["grad_norm"] = optax.tree.norm(grads)
        return (params, target_params, opt_state, grad_steps), stats

    def learn_from_items(self, carry, buffer_state, items, steps_before, key):
        """The training phase after a rollout (Anakin's `update` and Sebulba's learner both
        call it): adds `items` (leaves `(T, B, ...)`, time-major) to the buffer, then runs
        `grad_steps` gradient steps once the buffer can sample and `learning_starts` steps
        were collected (counting these).

        Args:
            carry: `(params, target_params, opt_state, grad_steps)`.
            buffer_state: the replay buffer before the add.
            items: the rollout's stored steps.
            steps_before: environment steps collected before this rollout.
            key: the training key.

        Returns:
            `(carry, buffer_state, metrics)`; metrics hold the mean loss statistics (NaN
            where no gradient step ran).
        """
        c, d = self.config, self.derived
        buffer_state = self.buffer.add(
            buffer_state, jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), items)
        )
        ready = self.buffer.can_sample(buffer_state) & (
            steps_before + d.steps_per_update >= c.learning_starts
        )
        keys = jax.random.split(key, c.grad_steps)

        def train(carry):
            step = functools.partial(self.train_step, buffer_state)
            return jax.lax.scan(step, carry, keys)

        def skip(carry):
            stats = jax.eval_shape(train, carry)[1]
            return carry, jax.tree_util.tree_map(lambda s: jnp.full(s.shape, jnp.nan), stats)

        carry, stats = jax.lax.cond(ready, train, skip, carry)
        return carry, buffer_state, {k: jnp.nanmean(v) for k, v in stats.items()}

    def update(self, state: QTrainState, _=None) -> tuple[QTrainState, dict]:
        """One update: an epsilon-greedy rollout into the buffer, then `grad_steps` gradient
        steps once the buffer can sample and `learning_starts` steps were collected."""
        c, d = self.config, self.derived
        key, rollout_key, train_key = jax.random.split(state.key, 3)
        steps_before = state.update_step * d.steps_per_update
        epsilon = linear_epsilon(steps_before, c.eps_start, c.eps_end, c.eps_decay_steps)
        runner, (items, (ep_return, ep_done)) = self.rollout(
            state.params.agent, state.runner, epsilon, rollout_key
        )
        carry = (state.params, state.target_params, state.opt_state, state.grad_steps)
        carry, buffer_state, metrics = self.learn_from_items(
            carry, state.buffer, items, steps_before, train_key
        )
        params, target_params, opt_state, grad_steps = carry
        done = ep_done.astype(jnp.float32)
        metrics["epsilon"] = epsilon
        metrics["episode_return_sum"] = jnp.sum(ep_return * done)
        metrics["episodes"] = done.sum()
        state = state.replace(
            params=params,
            target_params=target_params,
            opt_state=opt_state,
            buffer=buffer_state,
            runner=runner,
            key=key,
            update_step=state.update_step + 1,
            grad_steps=grad_steps,
        )
        return state, metrics

    # -- one evaluation interval ------------------------------------------------------------

    def learn(self, state: QTrainState) -> tuple[QTrainState, dict]:
        """`updates_per_eval` updates, then an evaluation and best-parameter tracking."""
        state, metrics = jax.lax.scan(self.update, state, None, self.derived.updates_per_eval)
        train = training.summarize_updates(metrics)
        train["grad_steps"] = state.grad_steps.astype(jnp.float32)
        key, eval_key = jax.random.split(state.key)
        evaluation = self.make_evaluate(self.config.eval_episodes)(state.params.agent, eval_key)
        best_agent, best_return = training.track_best(
            evaluation, state.params.agent, state.best_agent, state.best_return
        )
        state = state.replace(key=key, best_agent=best_agent, best_return=best_return)
        return state, {"train": train, "eval": evaluation}


def state_bounds_of(spec: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """`(low, high)` of a bounded state spec as float tuples, or None where the spec is not
    bounded, any bound is infinite, or any range is empty (then the state is used as is)."""
    low, high = getattr(spec, "minimum", None), getattr(spec, "maximum", None)
    if low is None or high is None:
        return None
    low = np.broadcast_to(np.asarray(low, np.float64), spec.shape).reshape(-1)
    high = np.broadcast_to(np.asarray(high, np.float64), spec.shape).reshape(-1)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        return None
    return tuple(float(v) for v in low), tuple(float(v) for v in high)


def build_parts(
    config: QLearningConfig, derived: Derived, num_agents: int, num_actions: int
) -> tuple[MultiAgentNet, TrajectoryBuffer, optax.GradientTransformation]:
    """The agent Q-network, the replay buffer and the optimizer of a config (shared by
    `make_learner` and Sebulba's Q learner, which has no JAX environment)."""
    q_net = MultiAgentNet(
        QNetwork(
            tuple(config.hidden_sizes),
            num_actions,
            config.activation,
            config.gru_size,
            config.recurrent,
        ),
        num_agents,
        config.share_params,
        config.gru_size,
    )
    buffer = make_trajectory_buffer(
        add_batch_size=config.num_envs,
        max_length_time=derived.buffer_time,
        sample_batch_size=config.batch_size,
        sample_sequence_length=config.sequence_length,
        period=config.sample_period,
    )
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr))
    return q_net, buffer, optimizer


def make_learner(
    config: QLearningConfig, env: Environment | None = None, num_devices: int | None = None
) -> QLearner:
    """Validates `config` and builds the learner (no compilation happens here).

    Args:
        config: the Q-learning config.
        env: an environment instance to use instead of `make(config.env_id, **env_kwargs)`.
        num_devices: devices available (default all).
    """
    derived = derive(config, num_devices)
    if env is None:
        env = jaxmarl_envs.make(config.env_id, **config.env_kwargs)
    actions = training.action_info(env)
    if actions.continuous:
        raise ValueError(
            f"{config.algorithm}: Q-learning needs discrete actions; {config.env_id} has "
            "continuous actions (use a SAC-family or PPO learner)"
        )
    use_state = config.mixer == "qmix"
    train_env = training.wrap_for_training(env, config.add_agent_id, use_state)
    eval_env = training.wrap_for_evaluation(env, config.add_agent_id)
    obs_dim = training.observation_dim(eval_env)
    state_dim = int(np.prod(env.global_state_spec().shape)) if use_state else 0
    state_bounds = None
    if use_state and config.mixer_state_norm:
        state_bounds = state_bounds_of(env.global_state_spec())
    obs_dtype, state_dtype = training.storage_dtypes(train_env)
    n = env.num_agents
    q_net, buffer, optimizer = build_parts(config, derived, n, actions.dim)
    mixer = None
    if use_state:
        mixer = QMixer(n, config.mixer_embed_dim, config.mixer_hypernet_hidden)
    return QLearner(
        config,
        derived,
        env,
        train_env,
        eval_env,
        q_net,
        mixer,
        buffer,
        optimizer,
        actions.dim,
        obs_dim,
        state_dim,
        state_bounds,
        obs_dtype,
        state_dtype,
    )


#: Which parts of `QTrainState` are batched over environments (sharded over devices): the
#: runner and the replay rows (one row per environment).
BATCHED = QTrainState(
    params=False,
    target_params=False,
    opt_state=False,
    buffer=TrajectoryBufferState(
        experience=True, current_index=False, is_full=False, total_added=False
    ),
    runner=True,
    key=False,
    update_step=False,
    grad_steps=False,
    best_agent=False,
    best_return=False,
)


def make_train(config: QLearningConfig, env: Environment | None = None):
    """`train(key) -> (state, metrics)`: the whole run for one seed (or a `(S, 2)` batch of
    keys), without files; metrics are stacked over the `num_evaluations` intervals."""
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
