"""Sebulba throughput: env-steps/s of Sebulba PPO on the numpy originals (lbforaging, rware)
against the plain single-process Python loop, for 1, 2 and 4 actor threads; Anakin against
Sebulba on our JAX `lbf-8x8-2p-2f-coop`; staleness and utilisation reported.

Run: `pytest benchmarks/test_sebulba_throughput.py -s -p no:cacheprovider`. Every figure is
printed with the load average (`os.getloadavg()`) before and after, and all of them are
written to `SEBULBA_RESULTS` (default `sebulba_throughput.json`) at the end.

Protocol:
- Python loop: `NUM_ENVS` Gymnasium environments stepped one after the other with random
  joint actions (drawn up front), resetting ended episodes; steps/s over
  `LOOP_STEPS` batch steps. This is the ceiling of a single Python process that only steps.
- Sebulba: a full training run (collection, the PPO update, parameters back to the actors)
  with `NUM_ENVS` environments split over the actor threads; env-steps/s over every interval
  after the first (the first holds compilation), with the evaluation's time included
  (`env_steps_per_s`, a lower bound) and excluded (`train_phase_steps_per_s`, an upper
  bound). Small networks (64) and one epoch, so the figure is about the architecture.
- Anakin vs Sebulba on our lbf: the same PPO config; Anakin's steps/s is `run_experiment`'s
  (compile excluded), Sebulba's steps our environment through the Gymnasium vector adapter.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from jaxmarl_envs.algorithms import ppo, sebulba

NUM_ENVS = 16
LOOP_STEPS = 200
ROLLOUT = 32
INTERVALS = 4
UPDATES_PER_INTERVAL = 4
ORIGINALS = {
    "lbforaging": "lbforaging:Foraging-8x8-2p-2f-coop-v3",
    "rware": "rware:rware-tiny-2ag-v2",
}
RESULTS: dict[str, dict] = {}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@pytest.fixture(scope="module", autouse=True)
def write_results():
    yield
    path = os.environ.get("SEBULBA_RESULTS", "sebulba_throughput.json")
    with open(path, "w") as f:
        json.dump(RESULTS, f, indent=2)
    print(f"\nwrote {path}")


def _python_loop(gym_id: str) -> float:
    import gymnasium

    envs = [gymnasium.make(gym_id) for _ in range(NUM_ENVS)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    # Random joint actions drawn up front (as tuples, the spaces' type), so the loop times the
    # environments, not Gymnasium's space sampling.
    rng = np.random.default_rng(0)
    nvec = [s.n for s in envs[0].action_space.spaces]
    actions = [
        [tuple(int(rng.integers(n)) for n in nvec) for _ in range(NUM_ENVS)]
        for _ in range(LOOP_STEPS)
    ]
    start = time.perf_counter()
    for step_actions in actions:
        for env, action in zip(envs, step_actions, strict=True):
            _, _, term, trunc, _ = env.step(action)
            if np.all(term) or np.all(trunc):
                env.reset()
    seconds = time.perf_counter() - start
    for env in envs:
        env.close()
    return NUM_ENVS * LOOP_STEPS / seconds


def _config(env_id: str) -> ppo.PPOConfig:
    return ppo.make_config(
        "ippo",
        env_id=env_id,
        total_steps=INTERVALS * UPDATES_PER_INTERVAL * NUM_ENVS * ROLLOUT,
        num_envs=NUM_ENVS,
        rollout_length=ROLLOUT,
        num_evaluations=INTERVALS,
        eval_episodes=2,
        hidden_sizes=(64,),
        num_epochs=1,
        gif=False,
        checkpoint_keep=0,
    )


def _sebulba(env_id: str, threads: int, out: str) -> dict:
    config = _config(env_id)
    settings = sebulba.SebulbaSettings(actor_threads=threads, max_staleness=1, queue_size=threads)
    summary = sebulba.train(config, settings, out, verbose=False)
    later = summary["history"][1:]  # the first interval holds compilation
    steps = sum(UPDATES_PER_INTERVAL * NUM_ENVS * ROLLOUT for _ in later)
    return {
        # Whole intervals, evaluation included (actors keep collecting while it runs).
        "env_steps_per_s": steps / sum(h["seconds"] for h in later),
        # Collection+update phases only: an upper bound (rollouts prefetched during the
        # evaluation, up to the staleness bound, are consumed in this phase).
        "train_phase_steps_per_s": steps / sum(h["train_seconds"] for h in later),
        "staleness_mean": summary["staleness_mean"],
        "staleness_max": summary["staleness_max"],
        "dropped_rollouts": summary["dropped_rollouts"],
        "actor_utilisation": summary["actor_utilisation"],
        "actor_env_fraction": summary["actor_env_fraction"],
        "learner_utilisation": summary["learner_utilisation"],
        "learner_queue_wait_s": summary["learner_queue_wait_seconds"],
    }


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_sebulba_against_python_loop(name, tmp_path, benchmark):
    gym_id = ORIGINALS[name]
    before = _load()
    row: dict = {"python_loop_steps_per_s": _python_loop(gym_id)}
    for threads in (1, 2, 4):
        row[f"sebulba_{threads}_threads"] = _sebulba(
            f"gymnasium:{gym_id}", threads, str(tmp_path / f"t{threads}")
        )
    row["load_before_after"] = [before, _load()]
    RESULTS[name] = row
    benchmark.extra_info.update(row)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\n{name}: {json.dumps(row, indent=1)}")
    assert all(row[f"sebulba_{t}_threads"]["staleness_max"] <= 1 for t in (1, 2, 4))


def test_anakin_against_sebulba_on_our_lbf(tmp_path, benchmark):
    from jaxmarl_envs.algorithms import training

    before = _load()
    config = _config("lbf-8x8-2p-2f-coop")
    anakin = training.run_experiment(ppo.make_learner(config), str(tmp_path / "a"), verbose=False)
    row = {
        "anakin_steps_per_s": anakin["sps_mean"],
        "sebulba_2_threads": _sebulba("lbf-8x8-2p-2f-coop", 2, str(tmp_path / "s")),
        "load_before_after": [before, _load()],
    }
    RESULTS["anakin_vs_sebulba_lbf-8x8-2p-2f-coop"] = row
    benchmark.extra_info.update(row)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\nanakin vs sebulba: {json.dumps(row, indent=1)}")
    assert row["anakin_steps_per_s"] > 0 and row["sebulba_2_threads"]["env_steps_per_s"] > 0
