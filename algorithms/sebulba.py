"""Sebulba PPO: actor threads step Python environments, the learner runs Anakin's PPO update.

Layout (Hessel et al. 2021, "Podracer architectures"):

    actor thread k (x actor_threads)                      learner (main thread)
    ------------------------------                        ---------------------
    wait for parameters fresh enough  <-- ParamStore <--  publish params (version u)
    rollout_length steps of a batch of
    Python environments, policy on the
    actor device (one jitted call per step)
    put the rollout ----------------> bounded queue --->  take actor_threads rollouts,
                                                          drop any staler than the bound,
                                                          `PPOLearner.learn_from_rollout`
                                                          sharded over the learner devices

The update is `ppo.PPOLearner.learn_from_rollout`, the function Anakin's `update` calls after
its rollout, so both architectures train with the same loss, GAE and minibatching; an update
consumes `num_envs * rollout_length` steps in both.

Staleness: a rollout's policy lag is the number of updates between the parameters that
collected it and the update that consumes it. Actors wait before a rollout until the learner is
close enough (ticket order), and the learner drops any rollout whose lag still exceeds
`max_staleness` (counted as `dropped_rollouts`); lag, queue waits and utilisation are logged
at every evaluation and in `summary.json`.

Shutdown: every blocking wait polls a shared stop event. The first exception in any thread
stops every thread; `train` joins them and raises one `SebulbaError` naming the thread. Ctrl-C
(KeyboardInterrupt in the main thread) stops and joins the actors before it propagates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import threading
import time
import traceback
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmarl_envs.algorithms import ppo, sebulba_envs, training
from jaxmarl_envs.algorithms.networks import make_distribution

#: Seconds between checks of the stop event in every blocking wait.
POLL_SECONDS = 0.05


@dataclasses.dataclass(frozen=True)
class SebulbaSettings:
    """Settings of the Sebulba architecture (the PPO config holds everything else).

    Attributes:
        actor_threads: actor threads, each stepping `num_envs / actor_threads` environments.
        max_staleness: the largest policy lag (updates) of a rollout the learner trains on.
            PPO has no off-policy correction: 0 (actors wait for the newest parameters)
            matched Anakin's learning curve per step on lbf-8x8-2p-2f-coop, 1 lagged it by
            about 300k steps mid-curve (benchmarks/sebulba_vs_anakin.py).
        queue_size: rollouts the queue holds before actors block.
        actor_device: index into `jax.local_devices()` of the device actors run the policy on.
        learner_devices: how many local devices the update is sharded over (0: all).
        join_timeout: seconds to wait for each thread at shutdown.
        env_lock: serialise the Python environments' reset and step calls across threads.
            Many Python environments are not thread-safe (the original rware numbers its
            agents and shelves with class-level counters that a concurrent reset corrupts);
            pure-Python environments hold the GIL while stepping anyway, so threads still
            overlap stepping with policy inference and the learner. Our JAX environments
            never take the lock.
    """

    actor_threads: int = 2
    max_staleness: int = 1
    queue_size: int = 2
    actor_device: int = 0
    learner_devices: int = 0
    join_timeout: float = 30.0
    env_lock: bool = True


class SebulbaError(RuntimeError):
    """A thread of a Sebulba run failed; the message names the thread and its error."""


def check_settings(config: ppo.PPOConfig, settings: SebulbaSettings) -> int:
    """Validates the config for Sebulba and the settings; returns the learner device count."""
    devices = check_common(config, settings)
    if config.network != "mlp":
        raise ValueError("Sebulba PPO supports feed-forward networks (network=mlp) only")
    if config.critic_input != "local":
        raise ValueError(
            "Sebulba PPO supports IPPO (critic_input=local); Python environments give no "
            f"global state, got critic_input={config.critic_input!r}"
        )
    return devices


def check_common(config: Any, settings: SebulbaSettings) -> int:
    """The checks every Sebulba learner shares (settings, environment split over threads and
    processes, one seed); returns the learner device count."""
    s = settings
    if s.actor_threads < 1:
        raise ValueError(f"actor_threads must be >= 1, got {s.actor_threads}")
    if s.max_staleness < 0:
        raise ValueError(f"max_staleness must be >= 0, got {s.max_staleness}")
    if s.queue_size < 1:
        raise ValueError(f"queue_size must be >= 1, got {s.queue_size}")
    local = jax.local_devices()
    if not 0 <= s.actor_device < len(local):
        raise ValueError(f"actor_device must be in [0, {len(local)}), got {s.actor_device}")
    if not 0 <= s.learner_devices <= len(local):
        raise ValueError(f"learner_devices must be in [0, {len(local)}], got {s.learner_devices}")
    procs = jax.process_count()
    if config.num_envs % (s.actor_threads * procs):
        raise ValueError(
            f"num_envs ({config.num_envs}) must be divisible by actor_threads ({s.actor_threads})"
            + (f" x processes ({procs})" if procs > 1 else "")
        )
    if config.eval_episodes % procs:
        raise ValueError(
            f"eval_episodes ({config.eval_episodes}) must be divisible by the number of "
            f"processes ({procs}): each process runs its share"
        )
    if config.num_seeds != 1:
        raise ValueError(f"Sebulba trains one seed per run; got num_seeds={config.num_seeds}")
    return s.learner_devices or len(local)


def host_env_factory(spec: str, kwargs: dict, env_lock: bool):
    """`make_batch(num_envs)` for the environment `spec` (see `sebulba_envs.resolve`; raises
    ValueError for a bad spec); with `env_lock`, every batch shares one lock around its
    construction, resets and steps (see `SebulbaSettings.env_lock`)."""
    make_batch = sebulba_envs.resolve(spec, kwargs)
    lock = threading.Lock() if env_lock else None

    def locked_batch(num_envs: int):
        with lock or contextlib.nullcontext():  # construction may touch shared state too
            batch = make_batch(num_envs)
        if lock is not None and isinstance(batch, sebulba_envs.HostBatch):
            batch.lock = lock
        return batch

    return locked_batch


def learner_mesh(devices_per_process: int) -> Mesh:
    """The learner's 1-D `data` mesh: the first `devices_per_process` local devices of every
    process, grouped by process (so each process's rollouts land on its own devices)."""
    per_process: dict[int, list] = {}
    for dev in jax.devices():
        per_process.setdefault(dev.process_index, []).append(dev)
    devices = [
        dev
        for p in sorted(per_process)
        for dev in sorted(per_process[p], key=lambda d: d.id)[:devices_per_process]
    ]
    return Mesh(np.asarray(devices), (training.DATA_AXIS,))


def _local_copy(tree: Any) -> Any:
    """This process's copy of replicated arrays (a replicated array spanning several processes
    cannot be moved to one device as a whole)."""

    def local(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x.addressable_data(0)
        return x

    return jax.tree_util.tree_map(local, tree)


# ---------------------------------------------------------------------------------------------
# Shared state between threads
# ---------------------------------------------------------------------------------------------


class _Control:
    """The stop event, the first failure, the parameter store and the rollout tickets."""

    def __init__(self, per_update: int, max_staleness: int, first_update: int = 0):
        self.first_update = first_update
        self.stop = threading.Event()
        self.failure: tuple[str, BaseException, str] | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._params: Any = None
        self._version = -1
        self._dropped = 0
        self._tickets = 0
        self.per_update = per_update
        self.max_staleness = max_staleness

    def fail(self, origin: str, err: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = (origin, err, traceback.format_exc())
            self._cond.notify_all()
        self.stop.set()

    def publish(self, params: Any, version: int) -> None:
        with self._cond:
            self._params, self._version = params, version
            self._cond.notify_all()

    def dropped(self) -> None:
        """The learner dropped a rollout as too stale (later tickets move up one place)."""
        with self._cond:
            self._dropped += 1
            self._cond.notify_all()

    def acquire(self) -> tuple[Any, int, float] | None:
        """Takes the next rollout ticket and waits until the learner is close enough for it;
        returns `(params, version, seconds waited)`, or None once stopping."""
        start = time.perf_counter()
        with self._cond:
            ticket = self._tickets
            self._tickets += 1
            k = self.per_update
            # Ticket t (less the drops before it) is consumed by update
            # first_update + (t - drops) // k (first_update > 0 after a resume); start
            # only with parameters at most `max_staleness` updates older than that. If every
            # actor waits with the queue empty, the lowest ticket's update is the current
            # version, so the wait cannot deadlock.
            while not self.stop.is_set() and not (
                self._version
                >= self.first_update + (ticket - self._dropped) // k - self.max_staleness
            ):
                self._cond.wait(POLL_SECONDS)
            if self.stop.is_set():
                return None
            return self._params, self._version, time.perf_counter() - start


@dataclasses.dataclass
class _Rollout:
    traj: ppo.Transition  # numpy, (T, B, ...)
    version: int
    thread: int
    env_seconds: float
    policy_seconds: float
    wait_seconds: float
    wall_seconds: float


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Thread plumbing shared by the Sebulba learners (PPO here, the Q family in `sebulba_q`)
# ---------------------------------------------------------------------------------------------


def start_actors(actor, make_env, control: _Control, count: int) -> list[threading.Thread]:
    """Starts `count` daemon threads, each running `actor(index, env)` on its own `make_env()`
    (closed when the actor returns or fails); an exception in one is recorded once in
    `control` (which stops every thread) and re-raised by `next_rollout`."""

    def guarded(index: int) -> None:
        try:
            env = make_env()
            try:
                actor(index, env)
            finally:
                env.close()
        except BaseException as err:  # noqa: BLE001  reported once by the learner
            control.fail(f"actor thread {index}", err)

    threads = [
        threading.Thread(target=guarded, args=(i,), name=f"sebulba-actor-{i}", daemon=True)
        for i in range(count)
    ]
    for t in threads:
        t.start()
    return threads


def with_agent_ids(obs: np.ndarray, add: bool) -> np.ndarray:
    """`(B, N, D)` observations with each agent's one-hot id appended (when `add`), as the
    learners' networks read them."""
    if not add:
        return obs
    b, n = obs.shape[:2]
    ids = np.broadcast_to(np.eye(n, dtype=np.float32), (b, n, n))
    return np.concatenate([obs, ids], axis=-1)


def put_rollout(control: _Control, rollouts: queue.Queue, item: _Rollout) -> None:
    """Puts `item` on the bounded queue, waiting while it is full (until stopping); the wait
    is added to `item.wait_seconds`."""
    put_start = time.perf_counter()
    while not control.stop.is_set():
        try:
            rollouts.put(item, timeout=POLL_SECONDS)
            break
        except queue.Full:
            continue
    item.wait_seconds += time.perf_counter() - put_start


def next_rollout(control: _Control, rollouts: queue.Queue, threads) -> _Rollout:
    """The next rollout from the queue; raises `SebulbaError` (naming the thread) once any
    thread failed or every actor has exited."""
    while True:
        if control.failure is not None:
            origin, err, _ = control.failure
            raise SebulbaError(
                f"Sebulba stopped: {origin} raised {type(err).__name__}: {err}"
            ) from err
        if not any(t.is_alive() for t in threads):
            raise SebulbaError("Sebulba stopped: every actor thread has exited")
        try:
            return rollouts.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


def collect_batch(
    control: _Control,
    rollouts: queue.Queue,
    threads,
    update: int,
    count: int,
    max_staleness: int,
    stats: _Stats,
) -> list[_Rollout]:
    """`count` rollouts for update `update`, dropping (and counting) any whose policy lag
    exceeds `max_staleness`; queue waits and lags go to `stats`."""
    batch: list[_Rollout] = []
    while len(batch) < count:
        w0 = time.perf_counter()
        item = next_rollout(control, rollouts, threads)
        stats.learner_wait += time.perf_counter() - w0
        lag = update - item.version
        if lag > max_staleness:
            stats.dropped += 1
            control.dropped()
            continue
        stats.add_rollout(item, lag)
        batch.append(item)
    return batch


def config_extra(config: Any, settings: SebulbaSettings, derived: Any, env_info: Any, **more):
    """The Sebulba fields of a run's `config.json` (next to the learner's config): settings,
    budget, derived sizes and the environment, then `more`, then the JAX version."""
    return {
        "architecture": "sebulba",
        "sebulba": dataclasses.asdict(settings),
        "total_steps_requested": config.total_steps,
        "total_steps": derived.total_steps,
        "derived": dataclasses.asdict(derived),
        "env": dataclasses.asdict(env_info),
        **more,
        "jax_version": jax.__version__,
    }


def learner_failure(control: _Control, progress: Any, err: BaseException) -> BaseException:
    """What the learner loop raises for `err`: Sebulba's own errors, Ctrl-C (announced on
    `progress`) and other non-`Exception`s as they are; any other exception is recorded as the
    learner's failure (so the actors stop) and wrapped in a `SebulbaError` naming it."""
    if isinstance(err, KeyboardInterrupt):
        progress.message("Sebulba: interrupted; stopping the actor threads")
    if isinstance(err, SebulbaError) or not isinstance(err, Exception):
        return err
    control.fail("the learner (main thread)", err)
    wrapped = SebulbaError(
        f"Sebulba stopped: the learner (main thread) raised {type(err).__name__}: {err}"
    )
    wrapped.__cause__ = err
    return wrapped


def stop_and_join(control: _Control, threads, join_timeout: float) -> None:
    """Stops every thread and joins each for at most `join_timeout` seconds."""
    control.stop.set()
    for t in threads:
        t.join(join_timeout)


def check_joined(threads) -> None:
    """Raises `SebulbaError` naming any thread still running after `stop_and_join`."""
    hung = [t.name for t in threads if t.is_alive()]
    if hung:
        raise SebulbaError(f"Sebulba: threads still running after shutdown: {hung}")


class Sebulba:
    """A validated Sebulba PPO run: environments resolved and networks built, no thread yet.

    Args:
        config: a PPO config (`env_id` holds the environment spec, see `sebulba_envs`).
        settings: the architecture's settings.

    Raises:
        ValueError: an unresolvable spec, continuous actions, observations that are not Box,
            or settings that do not fit (all before any thread starts).
    """

    def __init__(self, config: ppo.PPOConfig, settings: SebulbaSettings | None = None):
        self.settings = settings = settings or SebulbaSettings()
        self.config = config
        num_learner = check_settings(config, settings)
        self.make_batch = host_env_factory(config.env_id, config.env_kwargs, settings.env_lock)
        probe = self.make_batch(1)
        self.env_info = probe.info
        probe.close()
        self.num_processes = jax.process_count()
        self.process_index = jax.process_index()
        self.derived = ppo.derive(config, num_learner * self.num_processes)
        info = self.env_info
        self.obs_dim = info.obs_dim + (info.num_agents if config.add_agent_id else 0)
        actions = training.ActionInfo(continuous=False, dim=info.num_actions)
        actor, critic, optimizer = ppo.build_networks(
            config, info.num_agents, actions, self.derived.num_updates
        )
        self.learner = ppo.PPOLearner(
            config,
            self.derived,
            None,
            None,
            None,
            actor,
            critic,
            actions,
            self.obs_dim,
            self.obs_dim,
            optimizer,
        )
        local = jax.local_devices()
        self.actor_device = local[settings.actor_device]
        if self.num_processes == 1:
            self.mesh = Mesh(np.asarray(local[:num_learner]), (training.DATA_AXIS,))
        else:  # every process's learner devices: the update is one program over all of them
            self.mesh = learner_mesh(num_learner)
        #: environments this process steps (its share of `num_envs`) and per actor thread
        self.local_envs = config.num_envs // self.num_processes
        self.envs_per_thread = self.local_envs // settings.actor_threads
        self._start = 0  # the interval a (resumed) run starts from
        self._build_functions()

    # -- compiled functions -------------------------------------------------------------------

    def _build_functions(self) -> None:
        lrn, n = self.learner, self.env_info.num_agents

        def policy_step(params, obs, mask, prev_final, key):
            b = obs.shape[0]
            resets = jnp.zeros((1, b, n), bool)
            _, out = lrn.actor.apply(
                params.actor, lrn.actor.initial_hidden((b,)), obs[None], resets
            )
            dist = make_distribution(jax.tree_util.tree_map(lambda x: x[0], out), mask, False)
            action = dist.sample(key)
            both = jnp.concatenate([obs, prev_final])[None]
            _, values = lrn.critic.apply(
                params.critic,
                lrn.critic.initial_hidden((2 * b,)),
                both,
                jnp.zeros((1, 2 * b, n), bool),
            )
            return action, dist.log_prob(action), values[0, :b], values[0, b:]

        def value(params, obs):
            b = obs.shape[0]
            _, v = lrn.critic.apply(
                params.critic,
                lrn.critic.initial_hidden((b,)),
                obs[None],
                jnp.zeros((1, b, n), bool),
            )
            return v[0]

        self._policy_step = jax.jit(policy_step)
        self._value = jax.jit(value)
        greedy = self.config.eval_greedy

        def act(actor_params, obs, mask, key):
            b = obs.shape[0]
            action, _ = lrn.act(
                actor_params, lrn.initial_hidden(b), obs, mask, jnp.ones((b,), bool), key, greedy
            )
            return action

        self._act = jax.jit(act)
        rep = NamedSharding(self.mesh, P())
        self._traj_sharding = NamedSharding(self.mesh, P(None, training.DATA_AXIS))
        total = self.config.num_envs
        h0 = (lrn.actor.initial_hidden((total,)), lrn.critic.initial_hidden((total,)))

        def learn(params, opt_state, traj, key):
            return lrn.learn_from_rollout(params, opt_state, traj, h0, key)

        self._learn = jax.jit(learn, out_shardings=(rep, rep, rep))
        self._rep = rep

    def _with_ids(self, obs: np.ndarray) -> np.ndarray:
        return with_agent_ids(obs, self.config.add_agent_id)

    def init_params(self, key: jax.Array) -> tuple[ppo.Params, Any]:
        """Fresh `(params, opt_state)` (replicated over the learner devices)."""

        def init(key):
            return self.learner.init_params(*jax.random.split(key))

        # Computed by every process in one jitted program: identical replicated copies.
        return jax.jit(init, out_shardings=(self._rep, self._rep))(key)

    def abstract_state(self) -> Any:
        """Shapes, dtypes and shardings of `{"params", "opt_state"}` (for restoring)."""
        from jaxmarl_envs.algorithms import checkpointing

        params, opt_state = jax.eval_shape(self.init_params, jax.random.PRNGKey(0))
        state = {"params": params, "opt_state": opt_state}
        return checkpointing.abstract_like(
            state, jax.tree_util.tree_map(lambda _: self._rep, state)
        )

    # -- actor --------------------------------------------------------------------------------

    def _actor_loop(self, index, env, control: _Control, rollouts: queue.Queue) -> None:
        c, t_len = self.config, self.config.rollout_length
        # Actors of every process draw their own streams (process 0's are the 1-process ones).
        slot = self.process_index * self.settings.actor_threads + index
        key = jax.random.fold_in(jax.random.PRNGKey(c.seed), 1 + slot + 1_000_003 * self._start)
        obs, mask = env.reset(seed=c.seed * 100_003 + slot * 10_007 + 7_777_777 * self._start)
        obs = self._with_ids(obs)
        prev_final = obs
        new_episode = np.ones(obs.shape[:2], bool)
        hook = getattr(self, "_actor_hook", None)
        while not control.stop.is_set():
            got = control.acquire()
            if got is None:
                return
            params, version, waited = got
            start = time.perf_counter()
            env_s = policy_s = 0.0
            rec: dict[str, list] = {k: [] for k in ppo.Transition.__dataclass_fields__}
            for _ in range(t_len):
                if control.stop.is_set():
                    return
                key, step_key = jax.random.split(key)
                t0 = time.perf_counter()
                action, log_prob, value, prev_value = jax.device_get(
                    self._policy_step(params, obs, mask, prev_final, step_key)
                )
                t1 = time.perf_counter()
                out = env.step(np.asarray(action))
                if hook is not None:
                    hook(index)
                t2 = time.perf_counter()
                env_s, policy_s = env_s + t2 - t1, policy_s + t1 - t0
                if rec["value"]:
                    rec["next_value"].append(prev_value)
                rec["obs"].append(obs)
                rec["mask"].append(mask)
                rec["critic_in"].append(obs)
                rec["resets"].append(new_episode)
                rec["action"].append(action)
                rec["log_prob"].append(log_prob)
                rec["value"].append(value)
                rec["reward"].append(out.reward)
                rec["terminated"].append(out.terminated)
                rec["episode_end"].append(out.agent_end)
                rec["episode_return"].append(out.episode_return)
                rec["episode_done"].append(out.end)
                prev_final = self._with_ids(out.final_obs)
                obs, mask, new_episode = self._with_ids(out.obs), out.mask, out.agent_end
            t0 = time.perf_counter()
            rec["next_value"].append(jax.device_get(self._value(params, prev_final)))
            policy_s += time.perf_counter() - t0
            traj = ppo.Transition(**{k: np.stack(v) for k, v in rec.items()})
            item = _Rollout(
                traj, version, index, env_s, policy_s, waited, time.perf_counter() - start
            )
            put_rollout(control, rollouts, item)

    # -- learner ------------------------------------------------------------------------------

    def _next_rollout(self, control: _Control, rollouts: queue.Queue, threads) -> _Rollout:
        return next_rollout(control, rollouts, threads)

    def evaluate_all(self, actor_params: Any, num_episodes: int, seed: int) -> dict:
        """`num_episodes` episodes shared out over the processes (each runs its part with its
        own seeds; gathered on every process, a collective when there are several)."""
        if self.num_processes == 1:
            return self.evaluate(actor_params, num_episodes, seed)
        from jax.experimental import multihost_utils

        part = self.evaluate(
            actor_params, num_episodes // self.num_processes, seed + 104_729 * self.process_index
        )
        both = np.stack([part["episode_return"], part["episode_length"]])
        every = np.asarray(multihost_utils.process_allgather(both))  # (processes, 2, k)
        return {
            "episode_return": every[:, 0].reshape(-1),
            "episode_length": every[:, 1].reshape(-1),
        }

    def evaluate(self, actor_params: Any, num_episodes: int, seed: int) -> dict[str, np.ndarray]:
        """`num_episodes` episodes (one per environment of a fresh batch) with the policy, in
        this process; returns per-episode `episode_return` and `episode_length`."""
        cache = getattr(self, "_eval_envs", None)
        if cache is None:
            cache = self._eval_envs = {}
        if num_episodes not in cache:  # built once, reset with a new seed per evaluation
            cache[num_episodes] = self.make_batch(num_episodes)
        env = cache[num_episodes]
        obs, mask = env.reset(seed=seed)
        key = jax.random.PRNGKey(seed)
        done = np.zeros(num_episodes, bool)
        returns = np.zeros(num_episodes, np.float64)
        lengths = np.zeros(num_episodes, np.int64)
        for _ in range(100_000):
            key, sub = jax.random.split(key)
            action = np.asarray(self._act(actor_params, self._with_ids(obs), mask, sub))
            out = env.step(action)
            live = ~done
            returns[live] += out.reward.sum(-1)[live]
            lengths[live] += 1
            done |= out.end
            obs, mask = out.obs, out.mask
            if done.all():
                break
        return {"episode_return": returns, "episode_length": lengths.astype(np.float64)}

    def train(
        self,
        out_dir: str | None = None,
        verbose: bool = True,
        resume: bool = False,
        stop_after: int | None = None,
    ) -> dict[str, Any]:
        """Runs the budget; writes `config.json`, `metrics.json` (marl-eval layout),
        `checkpoints/` and `best/` (orbax), `summary.json` under `out_dir`; returns the summary
        (with the final `params`).

        Over several processes (`jax.distributed`), every process runs its own actor threads
        on its share of the environments, the update runs over every process's learner
        devices, the evaluation episodes are shared out, and process 0 writes the files
        (every process takes part in the orbax checkpoints).

        Args:
            out_dir: run folder (default `<config.out>/<run name>`).
            verbose: print progress lines (process 0).
            resume: continue from the latest checkpoint in `out_dir` (same topology: the
                number of processes and learner devices of the run that wrote it).
            stop_after: stop after this many intervals in this call (an interrupted run that
                `resume` continues); the summary then has `finished` False.
        """
        from jaxmarl_envs.algorithms import checkpointing
        from jaxmarl_envs.algorithms.config import save_config
        from jaxmarl_envs.algorithms.evaluation.results import JsonLogger

        cfg, d, s = self.config, self.derived, self.settings
        out = out_dir or training.run_dir(cfg)
        primary = self.process_index == 0
        os.makedirs(out, exist_ok=True)
        progress = training.Progress(d.total_steps, 1, enabled=verbose)
        procs = self.num_processes
        progress.message(
            f"{cfg.algorithm} (Sebulba) on {cfg.env_id}: "
            + (f"{procs} processes x " if procs > 1 else "")
            + f"{s.actor_threads} actor thread(s) x {self.envs_per_thread} env(s) on "
            f"{self.actor_device}, learner on {self.mesh.devices.size} device(s), "
            f"max staleness {s.max_staleness}; " + training.budget_note(cfg, d)
        )
        ckpt = best_ckpt = None
        if cfg.checkpoint_keep > 0:
            ckpt = checkpointing.Checkpointer(os.path.join(out, "checkpoints"), cfg.checkpoint_keep)
            best_ckpt = checkpointing.Checkpointer(os.path.join(out, "best"), 1, "mean_return")
        elif resume:
            raise ValueError("resume needs checkpoints (checkpoint_keep > 0)")
        start, best_mean = 0, -np.inf
        restored = None
        if resume and ckpt.latest_step() is not None:
            saved = ckpt.restore_metadata()
            topology = (procs, int(self.mesh.devices.size))
            if tuple(saved.get("topology", topology)) != topology:
                raise ValueError(
                    f"resume needs the topology that wrote the checkpoint: (processes, learner "
                    f"devices) {tuple(saved['topology'])}, this run has {topology}"
                )
            restored, meta = ckpt.restore(None, self.abstract_state())
            start = int(meta["interval"])
            best_mean = float(meta.get("best_mean_return", -np.inf))
            progress.message(f"resumed from {ckpt.directory}/{start} ({meta['steps']:,} steps)")
        self._start = start
        steps_per_interval = d.updates_per_eval * d.steps_per_update
        run = f"seed_{cfg.seed}"
        family = self.env_info.kind
        metrics_path = os.path.join(out, "metrics.json")
        logger = None
        if primary:
            save_config(
                cfg,
                os.path.join(out, "config.json"),
                extra=config_extra(
                    cfg,
                    s,
                    d,
                    self.env_info,
                    num_processes=procs,
                    learner_devices=[str(dev) for dev in self.mesh.devices.flat],
                ),
            )
            if start:
                training._prune_results(
                    metrics_path,
                    family,
                    cfg.env_id,
                    cfg.algorithm,
                    [run],
                    start * steps_per_interval,
                )
            logger = JsonLogger(
                metrics_path,
                family,
                cfg.env_id,
                cfg.algorithm,
                run_name=run,
                if_exists="resume" if start else "overwrite",
            )

        key = jax.random.PRNGKey(cfg.seed)
        init_key, key = jax.random.split(key)
        params, opt_state = self.init_params(init_key)
        if restored is not None:
            params, opt_state = restored["params"], restored["opt_state"]
        first_update = start * d.updates_per_eval
        control = _Control(s.actor_threads, s.max_staleness, first_update)
        rollouts: queue.Queue = queue.Queue(maxsize=s.queue_size)
        control.publish(jax.device_put(_local_copy(params), self.actor_device), first_update)

        threads: list[threading.Thread] = []
        stats = _Stats()
        history: list[dict[str, float]] = []
        end = (
            d.num_evaluations if stop_after is None else min(d.num_evaluations, start + stop_after)
        )
        t_start = time.perf_counter()
        try:
            threads = start_actors(
                lambda i, env: self._actor_loop(i, env, control, rollouts),
                lambda: self.make_batch(self.envs_per_thread),
                control,
                s.actor_threads,
            )
            for interval in range(start, end):
                interval_start = time.perf_counter()
                stats.begin_interval()
                train_metrics = []
                interval_key = jax.random.fold_in(key, interval)
                for u in range(d.updates_per_eval):
                    update = interval * d.updates_per_eval + u
                    batch = collect_batch(
                        control, rollouts, threads, update, s.actor_threads, s.max_staleness, stats
                    )
                    traj = jax.tree_util.tree_map(
                        lambda *xs: np.concatenate(xs, axis=1), *[b.traj for b in batch]
                    )
                    traj = self._to_learner(traj)
                    learn_key = jax.random.fold_in(interval_key, u)
                    u0 = time.perf_counter()
                    params, opt_state, metrics = self._learn(params, opt_state, traj, learn_key)
                    metrics = training.to_host(metrics)
                    stats.learner_busy += time.perf_counter() - u0
                    local = jax.device_put(_local_copy(params), self.actor_device)
                    control.publish(local, update + 1)
                    train_metrics.append(metrics)
                # -- evaluation, logs, checkpoints
                e0 = time.perf_counter()
                ev = self.evaluate_all(
                    _local_copy(params.actor), cfg.eval_episodes, cfg.seed + 7919 * (interval + 1)
                )
                stats.eval_seconds += time.perf_counter() - e0
                steps = (interval + 1) * steps_per_interval
                if logger is not None:
                    logger.log_step(steps, ev)
                train = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *train_metrics)
                summary_train = {k: float(v) for k, v in training.summarize_updates(train).items()}
                mean_return = float(ev["episode_return"].mean())
                interval_stats = stats.interval_summary(time.perf_counter() - interval_start)
                fields = {
                    "eval_return": mean_return,
                    "train_return": summary_train["train_episode_return"],
                    **{
                        k: interval_stats[k]
                        for k in ("staleness_mean", "actor_util", "learner_util", "queue_wait_s")
                    },
                }
                seconds = time.perf_counter() - interval_start
                progress.update(steps, steps_per_interval, seconds, fields)
                train_seconds = e0 - interval_start  # collection and updates, no evaluation
                history.append(
                    {
                        "steps": steps,
                        "seconds": seconds,
                        "train_seconds": train_seconds,
                        "train_sps": steps_per_interval / max(train_seconds, 1e-9),
                        **fields,
                        **interval_stats,
                    }
                )
                meta = {
                    "interval": interval + 1,
                    "steps": steps,
                    "mean_return": mean_return,
                    "best_mean_return": max(best_mean, mean_return),
                    "topology": [procs, int(self.mesh.devices.size)],
                }
                if ckpt is not None:
                    ckpt.save(interval + 1, {"params": params, "opt_state": opt_state}, meta)
                    if mean_return > best_mean:
                        best_ckpt.save(interval + 1, params.actor, meta)
                best_mean = max(best_mean, mean_return)
        except BaseException as err:
            raise learner_failure(control, progress, err)  # noqa: B904 (it chains err)
        finally:
            stop_and_join(control, threads, s.join_timeout)
            if ckpt is not None:
                ckpt.wait()
                best_ckpt.wait()
            for env in getattr(self, "_eval_envs", {}).values():
                env.close()
            self._eval_envs = {}
        check_joined(threads)
        wall = time.perf_counter() - t_start
        done = end * steps_per_interval
        trained = (end - start) * steps_per_interval
        summary: dict[str, Any] = {
            "run_dir": out,
            "finished": end == d.num_evaluations,
            "architecture": "sebulba",
            "num_processes": procs,
            "learner_devices": int(self.mesh.devices.size),
            "total_steps_per_seed": d.total_steps,
            "steps_done": done,
            "resumed_from_interval": start,
            "wall_seconds": wall,
            "sps": trained / max(wall - stats.eval_seconds, 1e-9),
            "final_return": history[-1]["eval_return"] if history else float("nan"),
            "best_return": best_mean,
            **stats.run_summary(wall),
            "history": history,
        }
        if primary:
            with open(os.path.join(out, "summary.json"), "w") as f:
                json.dump(summary, f, indent=2)
        summary["params"] = params
        return summary

    def _to_learner(self, traj: ppo.Transition) -> ppo.Transition:
        """This process's rollouts (numpy, environments on axis 1) as the global batch sharded
        over the learner devices (over several processes: each gives its own environments)."""
        if self.num_processes == 1:
            return jax.device_put(traj, self._traj_sharding)

        def part(x):
            shape = (x.shape[0], x.shape[1] * self.num_processes, *x.shape[2:])
            return jax.make_array_from_process_local_data(self._traj_sharding, x, shape)

        return jax.tree_util.tree_map(part, traj)


class _Stats:
    """Staleness, queue waits and utilisation, per interval and for the whole run."""

    def __init__(self):
        self.lags: list[int] = []
        self.run_lags: list[int] = []
        self.dropped = 0
        self.learner_wait = self.learner_busy = self.eval_seconds = 0.0
        self.actor_env = self.actor_policy = self.actor_wait = self.actor_wall = 0.0
        self._totals = dict.fromkeys(("learner_wait", "learner_busy"), 0.0)
        self._actor_totals = dict.fromkeys(("env", "policy", "wait", "wall"), 0.0)

    def begin_interval(self) -> None:
        self.lags = []
        self.learner_wait = self.learner_busy = 0.0
        self.actor_env = self.actor_policy = self.actor_wait = self.actor_wall = 0.0

    def add_rollout(self, item: _Rollout, lag: int) -> None:
        self.lags.append(lag)
        self.run_lags.append(lag)
        self.actor_env += item.env_seconds
        self.actor_policy += item.policy_seconds
        self.actor_wait += item.wait_seconds
        self.actor_wall += item.wall_seconds + item.wait_seconds
        for k, v in (
            ("env", item.env_seconds),
            ("policy", item.policy_seconds),
            ("wait", item.wait_seconds),
            ("wall", item.wall_seconds + item.wait_seconds),
        ):
            self._actor_totals[k] += v

    def interval_summary(self, seconds: float) -> dict[str, float]:
        self._totals["learner_wait"] += self.learner_wait
        self._totals["learner_busy"] += self.learner_busy
        return {
            "staleness_mean": float(np.mean(self.lags)) if self.lags else float("nan"),
            "staleness_max": float(np.max(self.lags)) if self.lags else float("nan"),
            "actor_util": (self.actor_env + self.actor_policy) / max(self.actor_wall, 1e-9),
            "actor_env_frac": self.actor_env / max(self.actor_wall, 1e-9),
            "learner_util": self.learner_busy / max(seconds, 1e-9),
            "queue_wait_s": self.learner_wait,
            "actor_wait_s": self.actor_wait,
            "dropped_rollouts": float(self.dropped),
        }

    def run_summary(self, wall: float) -> dict[str, float]:
        a = self._actor_totals
        lags = self.run_lags
        return {
            "staleness_mean": float(np.mean(lags)) if lags else float("nan"),
            "staleness_max": int(np.max(lags)) if lags else 0,
            "dropped_rollouts": self.dropped,
            "actor_utilisation": (a["env"] + a["policy"]) / max(a["wall"], 1e-9),
            "actor_env_fraction": a["env"] / max(a["wall"], 1e-9),
            "actor_wait_seconds": a["wait"],
            "learner_utilisation": self._totals["learner_busy"] / max(wall, 1e-9),
            "learner_queue_wait_seconds": self._totals["learner_wait"],
        }


def train(
    config: ppo.PPOConfig,
    settings: SebulbaSettings | None = None,
    out_dir: str | None = None,
    verbose: bool = True,
    resume: bool = False,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Validates everything (ValueError before any thread starts), then trains; see
    `Sebulba.train`."""
    return Sebulba(config, settings).train(out_dir, verbose, resume, stop_after)
