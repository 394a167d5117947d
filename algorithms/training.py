"""Shared Anakin skeleton: env stacks, the greedy evaluator, seeds, device sharding, progress."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmarl_envs import specs
from jaxmarl_envs.algorithms import networks
from jaxmarl_envs.algorithms.config import field
from jaxmarl_envs.env import Environment
from jaxmarl_envs.wrappers import AgentID, AutoReset, EpisodeMetrics, GlobalState

#: Name of the mesh axis the environment batch is split over.
DATA_AXIS = "data"

#: Keys of `extras` that count as a win flag (first one present is used).
WIN_KEYS = ("won_episode", "won", "win", "battle_won")


# ---------------------------------------------------------------------------------------------
# Run settings shared by every algorithm family
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings every algorithm config has (environment, budget, seeds, evaluation, outputs).

    Algorithm configs subclass this and add their hyper-parameters; `run_experiment`, the
    CLI and `load_policy` rely only on these fields.
    """

    algorithm: str = field("ippo", "name recorded in results")
    env_id: str = field("rware-tiny-2ag", "registered environment id")
    env_kwargs: dict = field({}, "keyword overrides for jaxmarl_envs.make, as JSON")
    add_agent_id: bool = field(True, "append one-hot agent ids to observations")
    total_steps: int = field(1_000_000, "environment steps to train for (per seed)")
    num_envs: int = field(16, "parallel environments per seed (split over devices)")
    seed: int = field(0, "base seed: run i uses PRNGKey(seed + i) and is named seed_<seed+i>")
    num_seeds: int = field(1, "seeds trained together (vmapped)")
    num_evaluations: int = field(20, "evaluations (log points) during training")
    eval_episodes: int = field(32, "episodes per evaluation")
    eval_greedy: bool = field(
        False, "evaluate with argmax/mean actions (default: sample, as Mava does)"
    )
    absolute_metric_factor: int = field(
        10, "the absolute metric re-evaluates the best parameters on factor x eval_episodes"
    )
    num_devices: int = field(0, "devices to shard environments over (0: all)")
    checkpoint_keep: int = field(3, "latest checkpoints kept (0 disables checkpointing)")
    tensorboard: bool = field(False, "also write TensorBoard scalars")
    gif: bool = field(True, "render a greedy episode to a GIF at the end")
    out: str = field("results", "output root; the run goes to <out>/<run_name>")
    run_name: str = field("", "run folder name (default <algorithm>_<env_id>_s<seed>)")


def check_run_config(config: RunConfig, num_devices: int | None = None) -> int:
    """Validates the `RunConfig` fields of `config` (ValueError naming the field) and returns
    the number of devices the environments are split over.

    Args:
        config: any algorithm config (a `RunConfig` subclass).
        num_devices: devices available (default `len(jax.devices())`).
    """
    c = config
    for name in (
        "num_envs",
        "total_steps",
        "num_seeds",
        "num_evaluations",
        "eval_episodes",
        "absolute_metric_factor",
    ):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.checkpoint_keep < 0:
        raise ValueError(f"checkpoint_keep must be >= 0, got {c.checkpoint_keep}")
    if not isinstance(c.env_kwargs, dict):
        raise ValueError(f"env_kwargs must be a dict, got {type(c.env_kwargs).__name__}")
    available = len(jax.devices()) if num_devices is None else int(num_devices)
    devices = c.num_devices or available
    if c.num_devices < 0 or devices > available:
        raise ValueError(f"num_devices must be in [0, {available}], got {c.num_devices}")
    if c.num_envs % devices:
        raise ValueError(
            f"num_envs ({c.num_envs}) must be divisible by the number of devices ({devices})"
        )
    return devices


@dataclasses.dataclass(frozen=True)
class LoopSizes:
    """The training loop's sizes for a step budget (see `loop_sizes`).

    Attributes:
        num_updates: updates in the whole run (`num_evaluations * updates_per_eval`).
        updates_per_eval: updates between evaluations.
        num_evaluations: evaluations (the Python loop's length; at most the requested number).
        total_steps: steps the run trains (per seed), at least the requested budget.
    """

    num_updates: int
    updates_per_eval: int
    num_evaluations: int
    total_steps: int


def loop_sizes(total_steps: int, steps_per_update: int, num_evaluations: int) -> LoopSizes:
    """Whole evaluation intervals of whole updates covering at least `total_steps`.

    Every interval has the same number of updates (one compiled `learn`), so the budget is
    rounded up: `n = ceil(total_steps / steps_per_update)` updates are needed, each interval
    gets `ceil(n / num_evaluations)` of them, and the run has as many intervals as it takes to
    reach `n` (at most `num_evaluations`). The run trains fewer than one interval more than
    requested; `budget_note` says so.

    Args:
        total_steps: the requested budget per seed.
        steps_per_update: environment steps of one update (`num_envs * rollout_length`).
        num_evaluations: the requested number of evaluations.

    Raises:
        ValueError: when the budget holds fewer updates than evaluations.
    """
    needed = -(-total_steps // steps_per_update)
    if needed < num_evaluations:
        raise ValueError(
            f"total_steps ({total_steps}) gives {needed} updates of "
            f"{steps_per_update} steps (num_envs * rollout_length), fewer than "
            f"num_evaluations ({num_evaluations}); raise total_steps or lower num_evaluations"
        )
    per_eval = -(-needed // num_evaluations)
    evaluations = -(-needed // per_eval)
    return LoopSizes(
        num_updates=per_eval * evaluations,
        updates_per_eval=per_eval,
        num_evaluations=evaluations,
        total_steps=per_eval * evaluations * steps_per_update,
    )


def budget_note(config: RunConfig, derived: Any) -> str:
    """One line on the step budget, e.g. `total steps: requested 600,000 -> training 622,592
    (19 evaluations x 4 updates x 64 envs x 128 steps)`, naming any change from the request."""
    rollout = getattr(config, "rollout_length", derived.steps_per_update // config.num_envs)
    shape = getattr(derived, "budget_shape", None) or (
        f"{derived.num_evaluations} evaluations x {derived.updates_per_eval} updates x "
        f"{config.num_envs} envs x {rollout} steps"
    )
    if derived.total_steps == config.total_steps:
        text = f"total steps: {derived.total_steps:,} ({shape})"
    else:
        text = (
            f"total steps: requested {config.total_steps:,} -> training "
            f"{derived.total_steps:,} ({shape}; rounded up to whole updates and equal "
            "evaluation intervals)"
        )
    if derived.num_evaluations != config.num_evaluations:
        text += f"; {derived.num_evaluations} evaluations instead of {config.num_evaluations}"
    return text


# ---------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ActionInfo:
    """What a policy head needs to know about the action space.

    Attributes:
        continuous: Gaussian (True) or masked categorical (False) actions.
        dim: number of discrete actions, or continuous action dimensions.
        low: `(num_agents, dim)` lower bounds for continuous actions (None if discrete).
        high: `(num_agents, dim)` upper bounds for continuous actions (None if discrete).
    """

    continuous: bool
    dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def action_info(env: Environment) -> ActionInfo:
    """Reads the action space of `env`: discrete `MultiDiscreteArray (N,)` or continuous
    float `BoundedArray (N, dim)`; anything else raises ValueError."""
    spec = env.action_spec
    if isinstance(spec, specs.MultiDiscreteArray):
        return ActionInfo(continuous=False, dim=int(np.max(spec.num_values)))
    if isinstance(spec, specs.Array) and np.issubdtype(spec.dtype, np.floating):
        if len(spec.shape) != 2 or spec.shape[0] != env.num_agents:
            raise ValueError(
                f"continuous action spec must have shape (num_agents, dim), got {spec.shape}"
            )
        if isinstance(spec, specs.BoundedArray):
            low, high = spec.minimum.astype(np.float32), spec.maximum.astype(np.float32)
        else:
            low = np.full(spec.shape, -np.inf, np.float32)
            high = np.full(spec.shape, np.inf, np.float32)
        return ActionInfo(continuous=True, dim=int(spec.shape[1]), low=low, high=high)
    raise ValueError(f"unsupported action spec {spec!r}: need MultiDiscreteArray or float Array")


def wrap_for_training(env: Environment, add_agent_id: bool, global_state: bool) -> Environment:
    """`EpisodeMetrics(AutoReset([GlobalState]([AgentID](env))))`."""
    if add_agent_id:
        env = AgentID(env)
    if global_state:
        env = GlobalState(env)
    return EpisodeMetrics(AutoReset(env))


def wrap_for_evaluation(env: Environment, add_agent_id: bool) -> Environment:
    """`[AgentID](env)`: evaluation runs whole episodes without auto-reset."""
    return AgentID(env) if add_agent_id else env


def observation_dim(env: Environment) -> int:
    """Flat per-agent view size of a (wrapped) environment; ValueError if not flat."""
    shape = env.observation_spec.agents_view.shape
    if len(shape) != 2:
        raise ValueError(
            f"networks need a flat per-agent view (num_agents, dim); got {shape}. "
            "Use the environment's vector observation type."
        )
    return int(shape[1])


def storage_dtypes(env: Environment) -> tuple[np.dtype, np.dtype]:
    """Replay dtypes of the per-agent view and of the global state of a (wrapped) environment:
    a narrow integer dtype for what the environment declares `integer_valued` (exact; cast
    back to float32 before any arithmetic), else the spec's own dtype."""
    ints = env.integer_valued
    view = specs.exact_storage_dtype(env.observation_spec.agents_view, "agents_view" in ints)
    state = specs.exact_storage_dtype(env.global_state_spec(), "global_state" in ints)
    return view, state


def split_keys(key: chex.PRNGKey, num: int) -> chex.Array:
    """`(num, 2)` keys (a helper so call sites read clearly)."""
    return jax.random.split(key, num)


def seed_keys(seed: int, num_seeds: int) -> chex.Array:
    """`(num_seeds, 2)` keys: run `i` uses `PRNGKey(seed + i)`, so run `seed_k` is the same
    whether it is trained alone or alongside other seeds."""
    return jnp.stack([jax.random.PRNGKey(seed + i) for i in range(num_seeds)])


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class EvalOutput:
    """Per-episode evaluation results.

    Attributes:
        episode_return: `(E,)` team return (sum over agents) of each episode.
        episode_length: `(E,)` steps.
        win: `(E,)` float win flag, or `()` NaN when the environment reports none.
    """

    episode_return: chex.Array
    episode_length: chex.Array
    win: chex.Array


#: `act(params, hidden, obs_view (E,N,D), mask (E,N,A), new_episode (E,), key) -> (action, hidden)`.
ActFn = Callable[..., tuple[chex.Array, Any]]


def make_evaluator(
    env: Environment,
    act: ActFn,
    init_hidden: Callable[[int], Any],
    num_episodes: int,
    max_steps: int | None = None,
) -> Callable[[Any, chex.PRNGKey], EvalOutput]:
    """Builds `evaluate(params, key) -> EvalOutput` running `num_episodes` episodes in parallel.

    Each episode runs from its own reset until its first LAST step (at most `max_steps`,
    default the environment's time limit); steps after the end are masked out, so the
    environment needs no auto-reset. The whole evaluation is one `lax.scan`, jittable and
    vmappable over seeds.

    Args:
        env: an unbatched environment (agent ids already added if the policy expects them).
        act: the policy step (greedy or sampling, the caller decides).
        init_hidden: `init_hidden(num_episodes)` -> the policy's initial recurrent state.
        num_episodes: E.
        max_steps: scan length (default `env.time_limit`).
    """
    steps = int(max_steps or env.time_limit)
    reset = jax.vmap(env.reset)
    step = jax.vmap(env.step)

    def evaluate(params: Any, key: chex.PRNGKey) -> EvalOutput:
        reset_key, key = jax.random.split(key)
        state, ts = reset(jax.random.split(reset_key, num_episodes))
        win_key = next((k for k in WIN_KEYS if k in ts.extras), None)

        def body(carry, step_key):
            state, ts, hidden, done, ret, length, win = carry
            obs = ts.observation
            new_episode = ts.first()
            action, hidden = act(
                params, hidden, obs.agents_view, obs.action_mask, new_episode, step_key
            )
            state, ts = step(state, action)
            alive = ~done
            ret = ret + jnp.where(alive, ts.reward.sum(-1), 0.0)
            length = length + alive.astype(jnp.int32)
            if win_key is not None:
                flag = jnp.asarray(ts.extras[win_key], jnp.float32).reshape(num_episodes, -1)
                win = jnp.where(alive & ts.last(), flag.max(-1), win)
            done = done | ts.last()
            return (state, ts, hidden, done, ret, length, win), None

        carry = (
            state,
            ts,
            init_hidden(num_episodes),
            jnp.zeros((num_episodes,), bool),
            jnp.zeros((num_episodes,), jnp.float32),
            jnp.zeros((num_episodes,), jnp.int32),
            jnp.zeros((num_episodes,), jnp.float32),
        )
        carry, _ = jax.lax.scan(body, carry, jax.random.split(key, steps))
        _, _, _, _, ret, length, win = carry
        if win_key is None:
            win = jnp.full((), jnp.nan, jnp.float32)
        return EvalOutput(episode_return=ret, episode_length=length, win=win)

    return evaluate


def rollout_episode(
    env: Environment,
    act: ActFn,
    init_hidden: Callable[[int], Any],
    params: Any,
    key: chex.PRNGKey,
) -> tuple[list[Any], float]:
    """Runs one episode (outside the training jit) and returns its states for rendering.

    Returns:
        `(states, team_return)`: the unbatched states from reset to the last step inclusive.
    """
    steps = env.time_limit

    @jax.jit
    def run(params, key):
        reset_key, key = jax.random.split(key)
        state, ts = env.reset(reset_key)

        def body(carry, step_key):
            state, ts, hidden = carry
            obs = jax.tree_util.tree_map(lambda x: x[None], ts.observation)
            action, hidden = act(
                params, hidden, obs.agents_view, obs.action_mask, ts.first()[None], step_key
            )
            state, ts = env.step(state, action[0])
            return (state, ts, hidden), (state, ts.reward.sum(), ts.last())

        _, (states, rewards, lasts) = jax.lax.scan(
            body, (state, ts, init_hidden(1)), jax.random.split(key, steps)
        )
        return state, states, rewards, lasts

    first, states, rewards, lasts = jax.device_get(run(params, key))
    lasts = np.asarray(lasts)
    end = int(np.argmax(lasts)) + 1 if lasts.any() else steps
    frames = [first] + [jax.tree_util.tree_map(lambda x, i=i: x[i], states) for i in range(end)]
    return frames, float(np.asarray(rewards)[:end].sum())


# ---------------------------------------------------------------------------------------------
# One evaluation interval (shared by every learner's `learn`)
# ---------------------------------------------------------------------------------------------


def summarize_updates(metrics: dict[str, chex.Array]) -> dict[str, chex.Array]:
    """Train metrics of an interval from per-update metrics stacked by `lax.scan`.

    Each statistic becomes its NaN-ignoring mean (off-policy learners report NaN for updates
    before learning starts). The per-update `episodes` and `episode_return_sum` become
    `train_episodes` and `train_episode_return`, the mean team return of the episodes that
    ended in the interval (NaN if none did).
    """
    episodes = metrics["episodes"].sum()
    train = {
        k: jnp.nanmean(v) for k, v in metrics.items() if k not in ("episodes", "episode_return_sum")
    }
    train["train_episode_return"] = jnp.where(
        episodes > 0, metrics["episode_return_sum"].sum() / jnp.maximum(episodes, 1), jnp.nan
    )
    train["train_episodes"] = episodes
    return train


def track_best(
    evaluation: EvalOutput, params: Any, best_params: Any, best_return: chex.Array
) -> tuple[Any, chex.Array]:
    """`(best_params, best_return)` after an evaluation of `params`: replaced where its mean
    return beats `best_return` (jittable; no host sync)."""
    mean_return = evaluation.episode_return.mean()
    better = mean_return > best_return
    best_params = jax.tree_util.tree_map(
        lambda new, old: jnp.where(better, new, old), params, best_params
    )
    return best_params, jnp.maximum(mean_return, best_return)


# ---------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------


#: Environment variables read by `distributed_settings` (flags take precedence).
DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def distributed_settings(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The `jax.distributed.initialize` arguments of this launch, or None for one process.

    Sources, first match wins per value: the arguments (the CLI's `--coordinator-address`,
    `--num-processes`, `--process-id`), then `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
    `JAX_PROCESS_ID`, then a SLURM allocation (`SLURM_NTASKS`, `SLURM_PROCID`; with no
    coordinator given, JAX's own SLURM detection picks the first node of the step). A launch
    is multi-process when a coordinator is given or SLURM runs more than one task.

    Raises:
        ValueError: a malformed address, a process count below 1, or a process id outside
            `[0, num_processes)`.
    """
    env = os.environ if environ is None else environ
    address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
    slurm_tasks = int(env.get("SLURM_NTASKS", "1") or 1) if env.get("SLURM_JOB_ID") else 1

    def number(value, name, fallback):
        if value is None:
            value = env.get(name) or fallback
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {value!r}") from None

    procs = number(num_processes, "JAX_NUM_PROCESSES", slurm_tasks if slurm_tasks > 1 else None)
    pid = number(process_id, "JAX_PROCESS_ID", env.get("SLURM_PROCID"))
    if address is None and slurm_tasks <= 1 and num_processes is None and process_id is None:
        return None
    if address is None and slurm_tasks > 1:
        # JAX's SLURM cluster detection supplies the coordinator (node 0 of the step).
        return {"coordinator_address": None, "num_processes": procs, "process_id": pid}
    if address is None:
        raise ValueError(
            "a multi-process launch needs a coordinator address (--coordinator-address "
            "host:port or JAX_COORDINATOR_ADDRESS)"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator address must be host:port, got {address!r}")
    if procs is None or pid is None:
        raise ValueError(
            "a multi-process launch needs the number of processes and this process's id "
            "(--num-processes/--process-id or JAX_NUM_PROCESSES/JAX_PROCESS_ID)"
        )
    if procs < 1:
        raise ValueError(f"the number of processes must be >= 1, got {procs}")
    if not 0 <= pid < procs:
        raise ValueError(f"the process id must be in [0, {procs}), got {pid}")
    return {"coordinator_address": address, "num_processes": procs, "process_id": pid}


def maybe_initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    heartbeat_timeout: int | None = None,
) -> bool:
    """Calls `jax.distributed.initialize` when `distributed_settings` finds a multi-process
    launch (flags, `JAX_*` variables or SLURM); returns whether JAX runs distributed.

    Must run before anything touches a JAX backend. On CPU the collectives go through Gloo.
    `heartbeat_timeout` (seconds; `JAXMARL_HEARTBEAT_TIMEOUT`, JAX's default 100 otherwise)
    bounds how long the survivors wait once a process dies before they stop with an error.
    """
    if jax.distributed.is_initialized():
        return True
    settings = distributed_settings(coordinator_address, num_processes, process_id)
    if settings is None:
        return False
    if heartbeat_timeout is None and os.environ.get("JAXMARL_HEARTBEAT_TIMEOUT"):
        heartbeat_timeout = int(os.environ["JAXMARL_HEARTBEAT_TIMEOUT"])
    if heartbeat_timeout is not None:
        if heartbeat_timeout < 1:
            raise ValueError(f"heartbeat timeout must be >= 1 s, got {heartbeat_timeout}")
        settings["heartbeat_timeout_seconds"] = int(heartbeat_timeout)
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**{k: v for k, v in settings.items() if v is not None})
    return True


def to_host(tree: Any) -> Any:
    """Numpy copies of a pytree's arrays that every process can read: fully replicated arrays
    come from the local copy, sharded ones are gathered from all processes (a collective:
    call it on every process)."""

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(get, tree)


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named `data` over the first `num_devices` of `jax.devices()` (all by
    default; across every host after `jax.distributed.initialize`)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else int(num_devices)
    if not 1 <= n <= len(devices):
        raise ValueError(f"num_devices must be in [1, {len(devices)}], got {num_devices}")
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def batch_sharding(mesh: Mesh, batch_axis: int) -> NamedSharding:
    """Sharding that splits axis `batch_axis` over the mesh's data axis."""
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Fully replicated sharding."""
    return NamedSharding(mesh, P())


def state_shardings(state: Any, batched: Any, mesh: Mesh, batch_axis: int = 1) -> Any:
    """Shardings for a training state: leaves under `batched` (a pytree of bools with the
    state's structure, or a prefix of it) are split on `batch_axis`, the rest replicated."""
    split, rep = batch_sharding(mesh, batch_axis), replicated(mesh)
    return jax.tree_util.tree_map(
        lambda b, sub: jax.tree_util.tree_map(lambda _: split if b else rep, sub), batched, state
    )


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


class Progress:
    """Plain-line console progress: steps, SPS (compile time excluded), returns and ETA.

    Steps count environment steps per seed; SPS counts all seeds' steps together.
    """

    def __init__(self, total_steps: int, num_seeds: int = 1, stream=None, enabled: bool = True):
        self.total = int(total_steps)
        self.num_seeds = int(num_seeds)
        self.stream = stream or sys.stdout
        self.enabled = enabled and jax.process_index() == 0
        self.run_time = 0.0
        self.run_steps = 0

    def update(
        self, steps_done: int, interval_steps: int, interval_seconds: float, fields: dict
    ) -> float:
        """Prints one line (`steps_done`, `interval_steps` per seed); returns the interval's
        steps per second over all seeds."""
        self.run_time += interval_seconds
        self.run_steps += interval_steps
        sps = self.num_seeds * interval_steps / max(interval_seconds, 1e-9)
        per_seed_rate = self.run_steps / max(self.run_time, 1e-9)
        eta = max(self.total - steps_done, 0) / max(per_seed_rate, 1e-9)
        if self.enabled:
            body = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
            pct = 100.0 * steps_done / max(self.total, 1)
            print(
                f"[{steps_done:>12,d}/{self.total:,d} {pct:5.1f}%] sps={sps:,.0f} "
                f"eta={_fmt_time(eta)} {body}",
                file=self.stream,
                flush=True,
            )
        return sps

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)


def _fmt(v: float) -> str:
    v = float(v)
    return f"{v:.4g}" if np.isfinite(v) else "nan"


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


class TensorBoardWriter:
    """Optional scalar logging (tensorboardX imported only when constructed)."""

    def __init__(self, logdir: str):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(logdir)

    def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        for k, v in values.items():
            if np.isfinite(v):
                self._writer.add_scalar(f"{prefix}{k}", float(v), int(step))

    def close(self) -> None:
        self._writer.close()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Runs `fn`, blocks on its output, returns `(output, seconds)`."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def nan_mean(x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
    """Mean ignoring NaNs without warnings (NaN where everything is NaN)."""
    x = np.asarray(x, np.float64)
    count = np.sum(np.isfinite(x), axis=axis)
    total = np.sum(np.where(np.isfinite(x), x, 0.0), axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---------------------------------------------------------------------------------------------
# The experiment loop (Python over evaluation intervals; everything else compiled)
# ---------------------------------------------------------------------------------------------


def default_run_name(config: Any) -> str:
    """`<algorithm>_<env_id>_s<seed>` unless `config.run_name` is set."""
    return config.run_name or f"{config.algorithm}_{config.env_id}_s{config.seed}"


def run_dir(config: Any, out: str | None = None) -> str:
    """The run folder: `<out or config.out>/<run name>`."""
    return os.path.join(out or config.out, default_run_name(config))


def _prune_results(
    path: str, environment: str, task: str, algorithm: str, runs: Sequence[str], max_step_count: int
) -> None:
    """Drops logged steps beyond `max_step_count` (evaluations newer than the checkpoint a
    resumed run restarts from, so they are logged again identically)."""
    from jaxmarl_envs.algorithms.evaluation.results import load_results, save_results

    if not os.path.exists(path):
        return
    data = load_results(path, False)
    algo = data.get(environment, {}).get(task, {}).get(algorithm, {})
    for run in runs:
        entries = algo.get(run)
        if entries is None:
            continue
        for key in [k for k in entries if k.startswith("step_")]:
            if entries[key]["step_count"] > max_step_count:
                del entries[key]
        entries.pop("absolute_metrics", None)
        if not any(k.startswith("step_") for k in entries):
            del algo[run]
    # Remove emptied levels bottom-up; delete the file when nothing is left.
    for env_name in list(data):
        for task_name in list(data[env_name]):
            for algo_name in list(data[env_name][task_name]):
                if not data[env_name][task_name][algo_name]:
                    del data[env_name][task_name][algo_name]
            if not data[env_name][task_name]:
                del data[env_name][task_name]
        if not data[env_name]:
            del data[env_name]
    if data:
        save_results(data, path, False)
    else:
        os.remove(path)


def run_experiment(
    learner: Any,
    out_dir: str | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Trains `learner.config.num_seeds` seeds together and writes everything under `out_dir`.

    Files: `config.json` (resolved config, derived values, and the budget as
    `total_steps_requested` and `total_steps` trained, see `loop_sizes`), `metrics.json` (marl-eval
    layout, one run `seed_<k>` per seed, per-episode values at every evaluation plus the
    absolute metric), `checkpoints/<interval>/` (orbax, full state, latest
    `checkpoint_keep`), `best/<interval>/` (best-by-mean-return policy parameters),
    `episode.gif` (a greedy episode of seed 0's best parameters), `summary.json`, and
    `tensorboard/` when enabled.

    The learner protocol (see `ppo.PPOLearner`): `config`, `derived`, `env`, `eval_env`,
    `init(key)`, `learn(state) -> (state, {"train": dict, "eval": EvalOutput})`,
    `make_evaluate(num_episodes)`, `act`, `initial_hidden`, `batched` (which state parts are
    per-environment), `policy_params(state)`, `best_policy_params(state)`; optionally `data`
    (a pytree of arrays, e.g. an offline dataset), then `learn(state, data)`.

    Args:
        learner: the algorithm's learner.
        out_dir: run folder (default `<config.out>/<run name>`).
        resume: continue from the latest checkpoint in `out_dir` if there is one.
        stop_after: stop after this many intervals in this call (simulates an interrupted
            run; the run can later be resumed).
        verbose: print progress lines.

    Returns:
        A summary dict (final and absolute returns per seed, SPS, compile seconds, paths,
        `train_seconds` of this call and `train_seconds_total` over the calls that resumed).
    """
    from jaxmarl_envs.algorithms import checkpointing
    from jaxmarl_envs.algorithms.config import save_config
    from jaxmarl_envs.algorithms.evaluation.results import JsonLogger

    cfg, d = learner.config, learner.derived
    out = out_dir or run_dir(cfg)
    os.makedirs(out, exist_ok=True)
    progress = Progress(d.total_steps, cfg.num_seeds, enabled=verbose)
    mesh = make_mesh(d.num_devices)
    progress.message(
        f"{cfg.algorithm} on {cfg.env_id}: {cfg.num_seeds} seed(s), {d.num_devices} device(s); "
        + budget_note(cfg, d)
    )
    primary = jax.process_index() == 0  # the one process that writes files and logs
    if primary:
        save_config(
            cfg,
            os.path.join(out, "config.json"),
            extra={
                "total_steps_requested": cfg.total_steps,
                "total_steps": d.total_steps,
                "derived": dataclasses.asdict(d),
                "devices": [str(dev) for dev in mesh.devices.flat],
                "num_processes": jax.process_count(),
                "jax_version": jax.__version__,
            },
        )
    keys = seed_keys(cfg.seed, cfg.num_seeds)
    init_seeds = functools.partial(networks.init_each, learner.init)
    abstract = jax.eval_shape(init_seeds, keys)
    shardings = state_shardings(abstract, learner.batched, mesh)

    # Learners that train from a fixed dataset (the offline family) expose it as `data`: it is
    # passed to `learn(state, data)` as an argument (replicated, shared by the seeds), not
    # baked into the compiled function as a constant, and never checkpointed.
    data = getattr(learner, "data", None)
    data_args = () if data is None else (jax.device_put(data, replicated(mesh)),)

    def learn_seeds(state, *data_args):
        in_axes = (0,) + (None,) * len(data_args)
        state, metrics = jax.vmap(learner.learn, in_axes=in_axes)(state, *data_args)
        # Metrics replicated: every process reads them locally (no cross-process gather).
        metrics = jax.lax.with_sharding_constraint(metrics, replicated(mesh))
        return jax.lax.with_sharding_constraint(state, shardings), metrics

    init = jax.jit(init_seeds, out_shardings=shardings)
    learn = jax.jit(learn_seeds, donate_argnums=0 if jax.default_backend() != "cpu" else ())

    ckpt = best_ckpt = None
    if cfg.checkpoint_keep > 0:
        ckpt = checkpointing.Checkpointer(os.path.join(out, "checkpoints"), cfg.checkpoint_keep)
        best_ckpt = checkpointing.Checkpointer(os.path.join(out, "best"), 1, "mean_return")
    start = 0
    best_mean = -np.inf
    seconds_before = 0.0
    state = None
    if resume and ckpt is not None and ckpt.latest_step() is not None:
        state, meta = ckpt.restore(None, checkpointing.abstract_like(abstract, shardings))
        start = int(meta["interval"])
        best_mean = float(meta.get("best_mean_return", -np.inf))
        # Seconds the earlier invocations spent up to this checkpoint (absent in checkpoints
        # written before the field existed: counted as 0).
        seconds_before = float(meta.get("train_seconds", 0.0))
        progress.message(f"resumed from {ckpt.directory}/{start} ({meta['steps']:,} steps)")
    family = getattr(learner.env, "name", "env")
    runs = [f"seed_{cfg.seed + i}" for i in range(cfg.num_seeds)]
    metrics_path = os.path.join(out, "metrics.json")
    steps_per_interval = d.updates_per_eval * d.steps_per_update
    if primary:
        if resume:
            _prune_results(
                metrics_path, family, cfg.env_id, cfg.algorithm, runs, start * steps_per_interval
            )
        loggers = [
            JsonLogger(
                metrics_path,
                family,
                cfg.env_id,
                cfg.algorithm,
                run_name=run,
                if_exists="resume" if resume else "overwrite",
            )
            for run in runs
        ]
    else:
        loggers = []
    tb = None
    if cfg.tensorboard and primary:
        tb = TensorBoardWriter(os.path.join(out, "tensorboard"))

    progress.message(
        "compiling the training step (once per run; a minute or more on a few CPU cores)..."
    )
    t0 = time.perf_counter()  # also the start of this invocation's `train_seconds`
    if state is None:
        state = init(keys)
    compiled = learn.lower(state, *data_args).compile()
    compile_seconds = time.perf_counter() - t0
    progress.message(f"compiled in {compile_seconds:.1f} s")
    sps_values = []
    last_eval = None
    interval = start
    for interval in range(start, d.num_evaluations):
        if stop_after is not None and interval - start >= stop_after:
            break
        (state, metrics), seconds = timed(lambda state=state: compiled(state, *data_args))
        metrics = jax.device_get(metrics)
        steps = (interval + 1) * steps_per_interval
        ev = metrics["eval"]
        returns = np.asarray(ev.episode_return)  # (S, E)
        last_eval = ev
        has_win = np.ndim(ev.win) == 2
        for s, logger in enumerate(loggers):
            entry = {
                "episode_return": returns[s],
                "episode_length": np.asarray(ev.episode_length[s], np.float64),
            }
            if has_win:
                entry["win_rate"] = np.asarray(ev.win[s])
            logger.log_step(steps, entry)
        train = {k: float(nan_mean(v)) for k, v in metrics["train"].items()}
        fields = {
            "eval_return": float(returns.mean()),
            "train_return": train.get("train_episode_return", np.nan),
        }
        if has_win:
            fields["win_rate"] = float(np.mean(ev.win))
        sps = progress.update(steps, steps_per_interval, seconds, fields)
        sps_values.append(sps)
        if tb is not None:
            tb.scalars(steps, {**train, **fields, "sps": sps})
        mean_return = float(returns.mean())
        meta = {
            "interval": interval + 1,
            "steps": steps,
            "mean_return": mean_return,
            "best_mean_return": max(best_mean, mean_return),
            "train_seconds": seconds_before + time.perf_counter() - t0,
        }
        if ckpt is not None:
            ckpt.save(interval + 1, state, meta)
            if mean_return > best_mean:
                best_ckpt.save(interval + 1, learner.policy_params(state), meta)
        best_mean = max(best_mean, mean_return)
    finished = interval + 1 >= d.num_evaluations and (
        stop_after is None or d.num_evaluations - start <= stop_after
    )
    if ckpt is not None:
        ckpt.wait()
        best_ckpt.wait()
    summary: dict[str, Any] = {
        "run_dir": out,
        "finished": bool(finished),
        "compile_seconds": compile_seconds,
        "sps_mean": float(np.mean(sps_values)) if sps_values else float("nan"),
        "total_steps_per_seed": d.total_steps,
    }
    if last_eval is not None:
        summary["final_return_per_seed"] = np.asarray(last_eval.episode_return).mean(-1).tolist()
    if finished:
        n = cfg.eval_episodes * cfg.absolute_metric_factor
        evaluate = jax.jit(jax.vmap(learner.make_evaluate(n)), out_shardings=replicated(mesh))
        abs_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0xAB5))(keys)
        absolute = jax.device_get(evaluate(learner.best_policy_params(state), abs_keys))
        for s, logger in enumerate(loggers):
            entry = {
                "episode_return": np.asarray(absolute.episode_return[s]),
                "episode_length": np.asarray(absolute.episode_length[s], np.float64),
            }
            if np.ndim(absolute.win) == 2:
                entry["win_rate"] = np.asarray(absolute.win[s])
            logger.log_absolute(entry)
        summary["absolute_return_per_seed"] = np.asarray(absolute.episode_return).mean(-1).tolist()
        progress.message(
            f"absolute metric (best params, {n} episodes): "
            f"{np.asarray(absolute.episode_return).mean():.4g}"
        )
        best_host = to_host(learner.best_policy_params(state)) if cfg.gif else None
        if cfg.gif and primary:
            try:
                params0 = jax.tree_util.tree_map(lambda x: x[0], best_host)
                act = functools.partial(learner.act, greedy=True)
                frames, ret = rollout_episode(
                    learner.eval_env,
                    act,
                    learner.initial_hidden,
                    params0,
                    jax.random.fold_in(keys[0], 0x61F),
                )
                path = learner.env.animate(frames, os.path.join(out, "episode.gif"))
                summary["gif"] = path
                progress.message(f"wrote {path} (greedy episode, team return {ret:.3g})")
            except (NotImplementedError, ImportError) as err:
                progress.message(f"no GIF: {type(err).__name__}: {err}")
    # Wall-clock seconds of training: this invocation's (compile, intervals, absolute metric,
    # GIF) and the run's in all (the earlier invocations' up to the checkpoint resumed from;
    # intervals a killed invocation lost are not counted).
    summary["train_seconds"] = time.perf_counter() - t0
    summary["train_seconds_total"] = seconds_before + summary["train_seconds"]
    summary["state"] = state
    if tb is not None:
        tb.close()
    if primary:
        import json

        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump({k: v for k, v in summary.items() if k != "state"}, f, indent=2)
    return summary
