"""Sebulba for the Q family (IQL, VDN): actor threads act epsilon-greedy on Python
environments, the learner trains with `q_learning`'s own update.

Layout (the same threads, queue, staleness tickets and shutdown as `sebulba`'s PPO):

    actor thread k (x actor_threads)                      learner (main thread)
    ------------------------------                        ---------------------
    wait for parameters fresh enough  <-- _Control  <---  publish agent params (version u)
    rollout_length epsilon-greedy steps
    of a batch of Python environments
    (recurrent Q-network, GRU state
    carried across rollouts)
    put the stored steps -----------> bounded queue --->  take actor_threads rollouts, drop any
                                                          staler than the bound, then
                                                          `QLearner.learn_from_items`: add to
                                                          the replay buffer, `grad_steps`
                                                          gradient steps (Anakin's own phase)

An update consumes `num_envs * rollout_length` steps, as in Anakin; epsilon follows the same
linear schedule, computed from the steps collected before the acquired parameters' version.
The replay rows (one per environment) are sharded over the learner devices.

Limits: one process (no `jax.distributed` yet), no checkpoints or resume, no QMIX (Python
environments give no global state for its mixer).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmarl_envs.algorithms import q_learning, training
from jaxmarl_envs.algorithms.sebulba import (
    SebulbaError,
    SebulbaSettings,
    _Control,
    _Rollout,
    _Stats,
    check_common,
    check_joined,
    collect_batch,
    config_extra,
    host_env_factory,
    learner_failure,
    put_rollout,
    start_actors,
    stop_and_join,
    with_agent_ids,
)
from jaxmarl_envs.algorithms.value_kernels import epsilon_greedy, linear_epsilon

__all__ = ["SebulbaError", "SebulbaQ", "SebulbaSettings", "check_settings", "train"]


def check_settings(config: q_learning.QLearningConfig, settings: SebulbaSettings) -> int:
    """Validates a Q config and the settings for Sebulba; returns the learner device count."""
    devices = check_common(config, settings)
    if config.mixer == "qmix":
        raise ValueError(
            "Sebulba Q supports IQL and VDN (mixer none or vdn): Python environments give no "
            "global state for the QMIX mixer"
        )
    if jax.process_count() != 1:
        raise ValueError("Sebulba Q runs in one process (multi-process: Sebulba PPO only)")
    return devices


class SebulbaQ:
    """A validated Sebulba Q-learning run: environments resolved, learner built, no thread.

    Args:
        config: a Q-learning config (`env_id` holds the environment spec, see
            `sebulba_envs`); `make_config("iql" | "vdn", ...)`.
        settings: the architecture's settings (shared with Sebulba PPO).

    Raises:
        ValueError: a bad spec, continuous actions, observations that are not Box, QMIX, or
            settings that do not fit (all before any thread starts).
    """

    def __init__(self, config: q_learning.QLearningConfig, settings: SebulbaSettings | None = None):
        self.settings = settings = settings or SebulbaSettings()
        self.config = config
        num_learner = check_settings(config, settings)
        self.make_batch = host_env_factory(config.env_id, config.env_kwargs, settings.env_lock)
        probe = self.make_batch(1)
        self.env_info = info = probe.info
        probe.close()
        self.derived = d = q_learning.derive(config, num_learner)
        n = info.num_agents
        self.obs_dim = info.obs_dim + (n if config.add_agent_id else 0)
        q_net, buffer, optimizer = q_learning.build_parts(config, d, n, info.num_actions)
        # No JAX environment: the learner's env fields stay None (only its network, loss,
        # buffer and update are used).
        self.learner = q_learning.QLearner(
            config,
            d,
            None,
            None,
            None,
            q_net,
            None,
            buffer,
            optimizer,
            info.num_actions,
            self.obs_dim,
            0,
        )
        local = jax.local_devices()
        self.actor_device = local[settings.actor_device]
        self.mesh = Mesh(np.asarray(local[:num_learner]), (training.DATA_AXIS,))
        self.envs_per_thread = config.num_envs // settings.actor_threads
        self._build_functions()

    # -- compiled functions -------------------------------------------------------------------

    def _build_functions(self) -> None:
        lrn, c = self.learner, self.config

        def policy(agent_params, hidden, obs, mask, new_episode, epsilon, key):
            hidden, q = lrn.q_net.apply(agent_params, hidden, obs[None], new_episode[None])
            return epsilon_greedy(key, q[0], mask, epsilon), hidden

        self._policy = jax.jit(policy)
        self._act = jax.jit(
            lambda p, h, o, m, new, key: lrn.act(p, h, o, m, new, key, c.eval_greedy)
        )
        rep = NamedSharding(self.mesh, P())
        self._rep = rep
        self._items_sharding = NamedSharding(self.mesh, P(None, training.DATA_AXIS))
        self._rows_sharding = NamedSharding(self.mesh, P(training.DATA_AXIS))

        def learn(carry, buffer_state, items, steps_before, key):
            return lrn.learn_from_items(carry, buffer_state, items, steps_before, key)

        self._learn = jax.jit(learn, donate_argnums=(1,))

    def _with_ids(self, obs: np.ndarray) -> np.ndarray:
        return with_agent_ids(obs, self.config.add_agent_id)

    def init_state(self, key: jax.Array):
        """Fresh `(carry, buffer_state)`: carry `(params, target_params, opt_state,
        grad_steps)` replicated over the learner devices, the replay rows sharded."""
        lrn = self.learner
        params = q_learning.QParams(agent=lrn.q_net.init(key, self.obs_dim), mixer=None)
        carry = (params, params, lrn.optimizer.init(params), jnp.zeros((), jnp.int32))
        carry = jax.device_put(carry, self._rep)
        buffer_state = lrn.buffer.init(lrn.example_item())
        shardings = buffer_state.replace(
            experience=jax.tree_util.tree_map(
                lambda _: self._rows_sharding, buffer_state.experience
            ),
            current_index=self._rep,
            is_full=self._rep,
            total_added=self._rep,
        )
        return carry, jax.device_put(buffer_state, shardings)

    # -- actor --------------------------------------------------------------------------------

    def _actor_loop(self, index, env, control: _Control, rollouts: queue.Queue) -> None:
        c, d = self.config, self.derived
        key = jax.random.fold_in(jax.random.PRNGKey(c.seed), 1 + index)
        obs, mask = env.reset(seed=c.seed * 100_003 + index * 10_007)
        obs = self._with_ids(obs)
        new_episode = np.ones(obs.shape[:2], bool)
        hidden = jax.device_put(self.learner.initial_hidden(obs.shape[0]), self.actor_device)
        hook = getattr(self, "_actor_hook", None)
        while not control.stop.is_set():
            got = control.acquire()
            if got is None:
                return
            params, version, waited = got
            epsilon = float(
                linear_epsilon(
                    version * d.steps_per_update, c.eps_start, c.eps_end, c.eps_decay_steps
                )
            )
            start = time.perf_counter()
            env_s = policy_s = 0.0
            rec: dict[str, list] = {k: [] for k in self.learner.example_item()}
            returns, dones = [], []
            for _ in range(c.rollout_length):
                if control.stop.is_set():
                    return
                key, step_key = jax.random.split(key)
                t0 = time.perf_counter()
                action, hidden = self._policy(
                    params, hidden, obs, mask, new_episode, epsilon, step_key
                )
                action = np.asarray(action)
                t1 = time.perf_counter()
                out = env.step(action)
                if hook is not None:
                    hook(index)
                t2 = time.perf_counter()
                env_s, policy_s = env_s + t2 - t1, policy_s + t1 - t0
                rec["obs"].append(obs.astype(np.float32))
                rec["mask"].append(mask.astype(bool))
                rec["action"].append(action.astype(np.int32))
                rec["reward"].append(out.reward.astype(np.float32))
                rec["terminated"].append(out.terminated.astype(bool))
                rec["reset"].append(new_episode)
                rec["next_obs"].append(self._with_ids(out.final_obs).astype(np.float32))
                # Where an agent's episode ended the next mask is unknown (the batch reset):
                # all legal (a terminated step does not bootstrap anyway).
                rec["next_mask"].append(out.mask.astype(bool) | out.agent_end[..., None])
                returns.append(out.episode_return)
                dones.append(out.end)
                obs, mask, new_episode = self._with_ids(out.obs), out.mask, out.agent_end
            items = {k: np.stack(v) for k, v in rec.items()}
            traj = (items, np.stack(returns), np.stack(dones))
            item = _Rollout(
                traj, version, index, env_s, policy_s, waited, time.perf_counter() - start
            )
            put_rollout(control, rollouts, item)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, agent_params: Any, num_episodes: int, seed: int) -> dict[str, np.ndarray]:
        """`num_episodes` episodes (one per environment of a fresh batch) with `QLearner.act`
        (greedy unless `eval_greedy` is off); per-episode `episode_return`, `episode_length`."""
        cache = self.__dict__.setdefault("_eval_envs", {})
        if num_episodes not in cache:
            cache[num_episodes] = self.make_batch(num_episodes)
        env = cache[num_episodes]
        obs, mask = env.reset(seed=seed)
        key = jax.random.PRNGKey(seed)
        hidden = self.learner.initial_hidden(num_episodes)
        new_episode = np.ones(num_episodes, bool)
        done = np.zeros(num_episodes, bool)
        returns = np.zeros(num_episodes, np.float64)
        lengths = np.zeros(num_episodes, np.int64)
        for _ in range(100_000):
            key, sub = jax.random.split(key)
            action, hidden = self._act(
                agent_params, hidden, self._with_ids(obs), mask, new_episode, sub
            )
            out = env.step(np.asarray(action))
            live = ~done
            returns[live] += out.reward.sum(-1)[live]
            lengths[live] += 1
            done |= out.end
            obs, mask, new_episode = out.obs, out.mask, out.end
            if done.all():
                break
        return {"episode_return": returns, "episode_length": lengths.astype(np.float64)}

    # -- the run ------------------------------------------------------------------------------

    def train(self, out_dir: str | None = None, verbose: bool = True) -> dict[str, Any]:
        """Runs the budget; writes `config.json`, `metrics.json` (marl-eval layout) and
        `summary.json` under `out_dir`; returns the summary (with the final `params`)."""
        from jaxmarl_envs.algorithms.config import save_config
        from jaxmarl_envs.algorithms.evaluation.results import JsonLogger

        cfg, d, s = self.config, self.derived, self.settings
        out = out_dir or training.run_dir(cfg)
        os.makedirs(out, exist_ok=True)
        progress = training.Progress(d.total_steps, 1, enabled=verbose)
        progress.message(
            f"{cfg.algorithm} (Sebulba) on {cfg.env_id}: {s.actor_threads} actor thread(s) x "
            f"{self.envs_per_thread} env(s) on {self.actor_device}, learner on "
            f"{self.mesh.devices.size} device(s), max staleness {s.max_staleness}; "
            + training.budget_note(cfg, d)
        )
        save_config(
            cfg,
            os.path.join(out, "config.json"),
            extra=config_extra(cfg, s, d, self.env_info),
        )
        run = f"seed_{cfg.seed}"
        logger = JsonLogger(
            os.path.join(out, "metrics.json"),
            self.env_info.kind,
            cfg.env_id,
            cfg.algorithm,
            run_name=run,
            if_exists="overwrite",
        )
        key = jax.random.PRNGKey(cfg.seed)
        init_key, key = jax.random.split(key)
        carry, buffer_state = self.init_state(init_key)
        control = _Control(s.actor_threads, s.max_staleness)
        rollouts: queue.Queue = queue.Queue(maxsize=s.queue_size)
        control.publish(jax.device_put(carry[0].agent, self.actor_device), 0)
        threads: list[threading.Thread] = []
        stats = _Stats()
        history: list[dict[str, float]] = []
        best_mean, best_agent = -np.inf, None
        steps_per_interval = d.updates_per_eval * d.steps_per_update
        t_start = time.perf_counter()
        try:
            threads = start_actors(
                lambda i, env: self._actor_loop(i, env, control, rollouts),
                lambda: self.make_batch(self.envs_per_thread),
                control,
                s.actor_threads,
            )
            for interval in range(d.num_evaluations):
                interval_start = time.perf_counter()
                stats.begin_interval()
                train_metrics, ep_sum, ep_count = [], 0.0, 0.0
                interval_key = jax.random.fold_in(key, interval)
                for u in range(d.updates_per_eval):
                    update = interval * d.updates_per_eval + u
                    batch = collect_batch(
                        control, rollouts, threads, update, s.actor_threads, s.max_staleness, stats
                    )
                    # Thread order, not arrival order: each thread owns the same replay rows
                    # (with max_staleness 0 a run is then reproducible).
                    batch.sort(key=lambda b: b.thread)
                    items = jax.tree_util.tree_map(
                        lambda *xs: np.concatenate(xs, axis=1), *[b.traj[0] for b in batch]
                    )
                    for b in batch:
                        ep_sum += float((b.traj[1] * b.traj[2]).sum())
                        ep_count += float(b.traj[2].sum())
                    items = jax.device_put(items, self._items_sharding)
                    steps_before = jnp.asarray(update * d.steps_per_update, jnp.int32)
                    u0 = time.perf_counter()
                    carry, buffer_state, metrics = self._learn(
                        carry,
                        buffer_state,
                        items,
                        steps_before,
                        jax.random.fold_in(interval_key, u),
                    )
                    metrics = training.to_host(metrics)
                    stats.learner_busy += time.perf_counter() - u0
                    control.publish(jax.device_put(carry[0].agent, self.actor_device), update + 1)
                    train_metrics.append(metrics)
                e0 = time.perf_counter()
                ev = self.evaluate(
                    carry[0].agent, cfg.eval_episodes, cfg.seed + 7919 * (interval + 1)
                )
                stats.eval_seconds += time.perf_counter() - e0
                steps = (interval + 1) * steps_per_interval
                logger.log_step(steps, ev)
                mean_return = float(ev["episode_return"].mean())
                losses = [m["loss"] for m in train_metrics if np.isfinite(m["loss"])]
                interval_stats = stats.interval_summary(time.perf_counter() - interval_start)
                fields = {
                    "eval_return": mean_return,
                    "train_return": ep_sum / ep_count if ep_count else float("nan"),
                    "loss": float(np.mean(losses)) if losses else float("nan"),
                    **{
                        k: interval_stats[k]
                        for k in ("staleness_mean", "actor_util", "learner_util", "queue_wait_s")
                    },
                }
                seconds = time.perf_counter() - interval_start
                progress.update(steps, steps_per_interval, seconds, fields)
                train_seconds = e0 - interval_start
                history.append(
                    {
                        "steps": steps,
                        "seconds": seconds,
                        "train_seconds": train_seconds,
                        "train_sps": steps_per_interval / max(train_seconds, 1e-9),
                        "grad_steps": int(carry[3]),
                        **fields,
                        **interval_stats,
                    }
                )
                if mean_return > best_mean:
                    best_agent = jax.device_get(carry[0].agent)
                best_mean = max(best_mean, mean_return)
            # The absolute metric (as Anakin's runner): the best parameters re-evaluated on
            # absolute_metric_factor x eval_episodes episodes, once the actors stopped.
            stop_and_join(control, threads, s.join_timeout)
            check_joined(threads)
            absolute = self.evaluate(
                best_agent, cfg.eval_episodes * cfg.absolute_metric_factor, cfg.seed + 104_729
            )
            logger.log_absolute(absolute)
        except BaseException as err:
            raise learner_failure(control, progress, err)  # noqa: B904 (it chains err)
        finally:
            stop_and_join(control, threads, s.join_timeout)
            for env in self.__dict__.pop("_eval_envs", {}).values():
                env.close()
        check_joined(threads)
        wall = time.perf_counter() - t_start
        summary: dict[str, Any] = {
            "run_dir": out,
            "finished": True,
            "architecture": "sebulba",
            "learner_devices": int(self.mesh.devices.size),
            "total_steps_per_seed": d.total_steps,
            "steps_done": d.total_steps,
            "wall_seconds": wall,
            "sps": d.total_steps / max(wall - stats.eval_seconds, 1e-9),
            "final_return": history[-1]["eval_return"] if history else float("nan"),
            "best_return": best_mean,
            "absolute_return": float(absolute["episode_return"].mean()),
            "grad_steps": int(carry[3]),
            **stats.run_summary(wall),
            "history": history,
        }
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        summary["params"] = carry[0]
        return summary


def train(
    config: q_learning.QLearningConfig,
    settings: SebulbaSettings | None = None,
    out_dir: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Validates everything (ValueError before any thread starts), then trains; see
    `SebulbaQ.train`."""
    return SebulbaQ(config, settings).train(out_dir, verbose)
