"""Sebulba PPO: bad specs fail before any thread, PettingZoo agents that leave are masked,
an exception in an actor or Ctrl-C stops every thread, and IPPO learns numpy lbforaging."""

from __future__ import annotations

import _thread
import gc
import signal
import threading
import types

import gymnasium
import jax
import numpy as np
import pytest
from gymnasium import spaces

from jaxmarl_envs.algorithms import ppo, sebulba
from jaxmarl_envs.algorithms.sebulba_envs import PettingZooBatch, resolve

LBF_ORIGINAL = "gymnasium:lbforaging:Foraging-8x8-2p-2f-coop-v3"


# ---------------------------------------------------------------------------------------------
# A tiny PettingZoo parallel environment whose agents leave early
# ---------------------------------------------------------------------------------------------


class ShrinkingEnv:
    """Agents `a`, `b`, `c` see `(step, id, 0, 1)` and get reward 1 for action 1; `c` is
    terminated after 2 steps, `b` truncated after 3, `a` ends the episode at 5 steps.
    `fail_at`: step() raises RuntimeError on this global step (for the shutdown tests).
    Agent `a` has only 2 actions and sees an action mask in `info`."""

    metadata = {"name": "shrinking_v0"}

    def __init__(self, fail_at: int | None = None):
        self.possible_agents = ["a", "b", "c"]
        self.agents: list[str] = []
        self.fail_at = fail_at
        self._global = 0
        self._t = 0

    def observation_space(self, agent):
        return spaces.Box(-1.0, 10.0, (4,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2 if agent == "a" else 3)

    def _obs(self):
        return {
            a: np.array([self._t, i, 0, 1], np.float32)
            for i, a in enumerate(self.possible_agents)
            if a in self.agents
        }

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self._t = 0
        infos = {a: {} for a in self.agents}
        infos["a"] = {"action_mask": np.array([1, 1], np.int8)}
        return self._obs(), infos

    def step(self, actions):
        self._global += 1
        if self.fail_at is not None and self._global >= self.fail_at:
            raise RuntimeError("ShrinkingEnv: planned failure")
        assert set(actions) == set(self.agents), (actions, self.agents)
        self._t += 1
        rewards = {a: float(actions[a] == 1) for a in self.agents}
        terms = {a: (a == "c" and self._t >= 2) or (a == "a" and self._t >= 5) for a in self.agents}
        truncs = {a: a == "b" and self._t >= 3 for a in self.agents}
        obs = self._obs()
        infos = {a: {} for a in self.agents}
        if "a" in self.agents:
            infos["a"] = {"action_mask": np.array([1, self._t % 2 == 0], np.int8)}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        if "a" not in self.agents:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def close(self):
        pass


def shrinking_env(**kwargs):
    return ShrinkingEnv(**kwargs)


SHRINKING = "pettingzoo:test_sebulba:shrinking_env"


def test_pettingzoo_agents_that_leave_are_padded_with_masks():
    batch = PettingZooBatch(shrinking_env, 2, {}, SHRINKING)
    assert batch.info.num_agents == 3 and batch.info.obs_dim == 4 and batch.info.num_actions == 3
    obs, mask = batch.reset(seed=0)
    assert obs.shape == (2, 3, 4) and mask.shape == (2, 3, 3)
    # Agent a has 2 actions: its third is never allowed.
    assert not mask[:, 0, 2].any() and mask[:, 1:].all()
    ones = np.ones((2, 3), np.int64)
    out = [batch.step(ones) for _ in range(5)]
    # Step 2: c terminates (agent_end, terminated); step 3: b is truncated (agent_end only).
    assert out[1].terminated[:, 2].all() and out[1].agent_end[:, 2].all()
    assert out[2].agent_end[:, 1].all() and not out[2].terminated[:, 1].any()
    # Afterwards absent agents are padding: zero view, only action 0, reward 0, terminated.
    assert np.all(out[3].obs[:, 2] == 0) and np.all(out[3].mask[:, 2] == [True, False, False])
    assert np.all(out[3].reward[:, 1:] == 0) and out[3].terminated[:, 1:].all()
    assert np.all(out[3].reward[:, 0] == 1)
    # a's mask from info: action 1 allowed on even steps only.
    assert np.all(out[0].mask[:, 0, :2] == [True, False])
    assert np.all(out[1].mask[:, 0, :2] == [True, True])
    # The episode ends at step 5 (team return 2 + 3 + 5 = 10) and the batch resets itself.
    assert out[4].end.all() and np.all(out[4].episode_return == 10)
    assert np.all(out[4].episode_length == 5)
    assert np.all(out[4].obs[:, :, 0] == 0) and out[4].mask[:, 1:].all()


# ---------------------------------------------------------------------------------------------
# Bad input: one ValueError before any thread starts
# ---------------------------------------------------------------------------------------------


def _config(env_id: str, **overrides) -> ppo.PPOConfig:
    base = dict(
        env_id=env_id,
        total_steps=2 * 2 * 4 * 8,
        num_envs=4,
        rollout_length=8,
        num_evaluations=2,
        eval_episodes=2,
        hidden_sizes=(16,),
        num_epochs=1,
        gif=False,
        checkpoint_keep=0,
    )
    return ppo.make_config("ippo", **{**base, **overrides})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-env-id", "not a registered jaxmarl_envs id"),
        ("gymnasium:NoSuchEnvironment-v0", "cannot make"),
        ("gymnasium:Pendulum-v1", "continuous actions are not supported"),
        ("gymnasium:FrozenLake-v1", "observations must be Box"),
        ("pettingzoo:no_such_module_xyz:env", "ModuleNotFoundError"),
        ("pettingzoo:test_sebulba:no_such_function", "AttributeError"),
        ("pettingzoo:test_sebulba", "expected pettingzoo:<module>:<function>"),
    ],
)
def test_bad_specs_fail_before_any_thread(spec, message):
    before = threading.active_count()
    with pytest.raises(ValueError, match=message):
        sebulba.Sebulba(_config(spec), sebulba.SebulbaSettings(actor_threads=2))
    assert threading.active_count() == before


def test_bad_settings_fail_before_any_thread():
    with pytest.raises(ValueError, match="divisible by actor_threads"):
        sebulba.Sebulba(_config(SHRINKING), sebulba.SebulbaSettings(actor_threads=3))
    with pytest.raises(ValueError, match="max_staleness"):
        sebulba.Sebulba(_config(SHRINKING), sebulba.SebulbaSettings(max_staleness=-1))
    with pytest.raises(ValueError, match="critic_input=local"):
        sebulba.Sebulba(_config(SHRINKING, critic_input="global"))
    with pytest.raises(ValueError, match="continuous"):
        resolve("gymnasium:MountainCarContinuous-v0")


# ---------------------------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------------------------


def _sebulba_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sebulba-")]


def test_actor_exception_stops_the_run_once_with_its_origin(tmp_path, capsys):
    config = _config(SHRINKING, env_kwargs={"fail_at": 20}, total_steps=10 * 4 * 8)
    run = sebulba.Sebulba(config, sebulba.SebulbaSettings(actor_threads=2, join_timeout=20))
    with pytest.raises(sebulba.SebulbaError) as info:
        run.train(str(tmp_path), verbose=False)
    message = str(info.value)
    assert "actor thread" in message and "ShrinkingEnv: planned failure" in message
    assert isinstance(info.value.__cause__, RuntimeError) or "RuntimeError" in message
    assert _sebulba_threads() == []
    # Reported once: by the exception, not by a thread's own traceback on stderr.
    assert "planned failure" not in capsys.readouterr().err


def test_ctrl_c_stops_every_thread(tmp_path):
    # pytest-xdist workers ignore SIGINT (the controller handles Ctrl-C), and
    # `interrupt_main` does nothing while SIGINT is ignored: restore Python's handler.
    # Automatic garbage collection is off for the test: a KeyboardInterrupt that lands in a gc
    # callback (hypothesis registers one once a property test ran in the same worker) is
    # "ignored" by the interpreter, and the run never sees the Ctrl-C (seen once in CI).
    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _ctrl_c_stops_every_thread(tmp_path)
    finally:
        if gc_was_enabled:
            gc.enable()
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_stops_every_thread(tmp_path):
    config = _config(SHRINKING, total_steps=1000 * 4 * 8, num_evaluations=2)
    run = sebulba.Sebulba(config, sebulba.SebulbaSettings(actor_threads=2, join_timeout=20))
    calls = []

    def hook(index):  # Ctrl-C arrives once the actors are stepping
        calls.append(index)
        if len(calls) == 30:
            _thread.interrupt_main()

    run._actor_hook = hook
    with pytest.raises(KeyboardInterrupt):
        run.train(str(tmp_path), verbose=False)
    assert _sebulba_threads() == []


def test_pettingzoo_run_reports_staleness_and_utilisation(tmp_path):
    config = _config(SHRINKING, total_steps=4 * 4 * 8, num_evaluations=2)
    settings = sebulba.SebulbaSettings(actor_threads=2, max_staleness=1)
    summary = sebulba.train(config, settings, str(tmp_path), verbose=False)
    assert summary["finished"] and summary["staleness_max"] <= 1
    assert 0.0 <= summary["actor_utilisation"] <= 1.0
    assert 0.0 < summary["learner_utilisation"] <= 1.0
    assert len(summary["history"]) == 2 and _sebulba_threads() == []


def test_value_norm_trains_its_statistics(tmp_path):
    """`value_norm=True` under Sebulba: the parameters carry ValueNorm's running statistics
    (they failed in the learner with "params.value_norm is None" before) and they move."""
    config = _config(SHRINKING, total_steps=4 * 4 * 8, num_evaluations=2, value_norm=True)
    summary = sebulba.train(config, sebulba.SebulbaSettings(), str(tmp_path), verbose=False)
    assert summary["finished"]
    norm = summary["params"].value_norm
    assert norm is not None and float(norm.debias) > 0
    mean, std = ppo.value_norm_stats(norm)
    assert float(mean) > 0 and float(std) > 0  # ShrinkingEnv pays 1 for action 1


def test_stopped_run_resumes_from_its_checkpoint(tmp_path):
    from jaxmarl_envs.algorithms.evaluation import load_results

    config = _config(SHRINKING, total_steps=3 * 4 * 8, num_evaluations=3, checkpoint_keep=2)
    settings = sebulba.SebulbaSettings(actor_threads=2)
    first = sebulba.train(config, settings, str(tmp_path), verbose=False, stop_after=1)
    assert not first["finished"] and first["steps_done"] == 32
    run = sebulba.Sebulba(config, settings)
    restored = run.abstract_state()
    second = run.train(str(tmp_path), verbose=False, resume=True)
    assert second["finished"] and second["resumed_from_interval"] == 1
    assert [h["steps"] for h in second["history"]] == [64, 96]
    assert second["staleness_max"] <= 1 and _sebulba_threads() == []
    runs = load_results(tmp_path / "metrics.json", complete=False)["pettingzoo"]
    logged = runs[SHRINKING]["ippo"]["seed_0"]
    steps = sorted(v["step_count"] for k, v in logged.items() if k.startswith("step_"))
    assert steps == [32, 64, 96]
    # The resumed parameters have the checkpoint's structure and shardings.
    assert jax.tree_util.tree_structure(restored["params"]) == jax.tree_util.tree_structure(
        second["params"]
    )
    # The checkpoint records its topology (processes, learner devices) for later resumes.
    from jaxmarl_envs.algorithms import checkpointing

    meta = checkpointing.Checkpointer(tmp_path / "checkpoints", 2).restore_metadata()
    assert meta["topology"] == [1, run.mesh.devices.size] and meta["interval"] == 3


# ---------------------------------------------------------------------------------------------
# Learning on the numpy original of LBF
# ---------------------------------------------------------------------------------------------


def _random_return(gym_id: str, episodes: int = 64) -> float:
    """Mean team return of uniformly random joint actions (the numpy original)."""
    env = gymnasium.make(gym_id)
    env.action_space.seed(0)
    total = 0.0
    for ep in range(episodes):
        env.reset(seed=1000 + ep)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(np.sum(r))
            done = term or trunc
    return total / episodes


#: The short run learns a smaller task of the same numpy original. On the cooperative
#: 5x5-2p-1f-coop (random 0.03) 40k steps were not enough to beat random reliably (3 of 9 runs
#: over 3 configurations stayed at random level); on 5x5-2p-1f (no forced cooperation,
#: random 0.36) three seeds reached 0.94, 1.00 and 0.92 (lr 2.5e-3, entropy 0.01).
LBF_SMALL = "gymnasium:lbforaging:Foraging-5x5-2p-1f-v3"
LBF_SHORT = dict(
    total_steps=40_000,
    num_envs=16,
    rollout_length=32,
    hidden_sizes=(64, 64),
    lr=2.5e-3,
    ent_coef=0.01,
    num_evaluations=4,
    eval_episodes=64,
    num_epochs=4,
)


def test_sebulba_ippo_beats_random_on_numpy_lbforaging(tmp_path):
    config = _config(LBF_SMALL, **LBF_SHORT)
    summary = sebulba.train(config, sebulba.SebulbaSettings(actor_threads=2), str(tmp_path), False)
    random_return = _random_return(LBF_SMALL.split(":", 1)[1])
    assert summary["best_return"] > random_return + 0.3, (summary["history"], random_return)


#: The configuration of benchmarks/sebulba_vs_anakin.py (with max_staleness 0 it matched
#: Anakin's curve on our lbf-8x8-2p-2f-coop; all 5 seeds >= 0.96 by 700k steps). Measured on
#: the original (seed 0, 2 CPU cores under load 11-15): max_staleness 0 first reached 0.90 at
#: 700k steps, best 0.945, 9 min 48 s wall (253 s CPU); max_staleness 1 reached 0.945 only at
#: 1.3M, best 0.969, 19 min 24 s wall (274 s CPU). 1.5M steps leave about 2x the first run's
#: margin; the original has no action masks and learns more slowly than our lbf.
LBF_SOLVE = dict(
    total_steps=1_500_000,
    num_envs=64,
    rollout_length=32,
    hidden_sizes=(64, 64),
    lr=5e-4,
    ent_coef=0.01,
    num_epochs=4,
    num_minibatches=2,
    num_evaluations=15,
    eval_episodes=64,
)


@pytest.mark.slow
def test_sebulba_ippo_solves_numpy_lbforaging(tmp_path):
    """The issue's target task: >= 0.9 mean evaluation return on the numpy original."""
    config = _config(LBF_ORIGINAL, **LBF_SOLVE)
    settings = sebulba.SebulbaSettings(actor_threads=2, max_staleness=0)
    summary = sebulba.train(config, settings, str(tmp_path), False)
    print({k: v for k, v in summary.items() if k not in ("history", "params")})
    print(
        [
            (h["steps"], round(h["eval_return"], 3), round(h["seconds"], 1))
            for h in summary["history"]
        ]
    )
    assert summary["best_return"] >= 0.9, summary["history"]


def test_learner_failure_wraps_only_foreign_exceptions():
    """The learner loop's exception mapping: a foreign error stops the actors (the control's
    stop event and first failure) and becomes one SebulbaError naming it, chained; Sebulba's own
    errors and Ctrl-C pass unchanged (Ctrl-C announced)."""
    messages = []
    progress = types.SimpleNamespace(message=messages.append)
    control = sebulba._Control(per_update=1, max_staleness=0)
    own = sebulba.SebulbaError("actor 0 failed")
    assert sebulba.learner_failure(control, progress, own) is own
    assert not control.stop.is_set() and messages == []
    interrupt = KeyboardInterrupt()
    assert sebulba.learner_failure(control, progress, interrupt) is interrupt
    assert messages == ["Sebulba: interrupted; stopping the actor threads"]
    err = ValueError("bad batch")
    wrapped = sebulba.learner_failure(control, progress, err)
    assert isinstance(wrapped, sebulba.SebulbaError) and wrapped.__cause__ is err
    assert "learner (main thread) raised ValueError: bad batch" in str(wrapped)
    assert control.stop.is_set() and control.failure[1] is err
