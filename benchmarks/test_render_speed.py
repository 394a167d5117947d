"""Rendering speed (issue 17 item 6): milliseconds per `env.render(state)` frame at each
family's default size, and steps/s of a Gymnasium `RecordVideo`-like loop (step + render).

Run: `pytest benchmarks/test_render_speed.py -s -p no:randomly -p no:cacheprovider`.
Before/after in one process: `RENDER_BASELINE=<commit> pytest ...` also loads the viewers
and `jaxmarl_envs/rendering.py` of that commit (`git show`) and times them in rounds
interleaved with the current ones, so both see the same load; the baseline's frames must
equal the current ones pixel for pixel.

Frames are drawn from `FRAMES` distinct states of a jitted random rollout (device arrays,
as `env.render` gets them after a jitted step), cycled `ROUNDS` times; the figure is the
median over rounds of the mean time per frame. Target (issue 17): at most 5 ms per frame
for every scenario below, asserted here only. The load average is printed and stored
with every figure (the machine is shared).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium
import jax
import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.adapters.gymnasium import gymnasium_id
from jaxmarl_envs.rollout import random_action
from jaxmarl_envs.wrappers import AutoReset

ENV_IDS = [
    "rware-tiny-4ag",
    "rware-small-4ag-easy",
    "lbf-8x8-2p-2f-coop",
    "lbf-15x15-4p-3f",
    "mpe-simple_spread",
    "mpe-simple_tag",
    "matrix-climbing",
]
GYM_IDS = ["mpe-simple_spread", "lbf-15x15-4p-3f", "rware-tiny-4ag"]
FRAMES = 64
ROUNDS = 7
GYM_STEPS = 200
TARGET_MS = 5.0
BASELINE = os.environ.get("RENDER_BASELINE")
ROOT = Path(__file__).resolve().parents[1]

_ROWS: list[dict[str, Any]] = []


def _load_source(name: str, source: str):
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def _baseline_viewer(env) -> Any:
    """The default viewer of `env` as the commit `RENDER_BASELINE` built it."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{BASELINE}:{path}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    rendering = "_render_baseline_rendering"
    if rendering not in sys.modules:
        _load_source(rendering, show("jaxmarl_envs/rendering.py"))
    family = env.name
    source = show(f"jaxmarl_envs/{family}/viewer.py").replace("jaxmarl_envs.rendering", rendering)
    module = _load_source(f"_render_baseline_{family}", source)
    if family == "rware":
        return module.RwareViewer(env.layout)
    if family == "lbf":
        return module.LBFViewer(env.rows, env.cols)
    if family == "mpe":
        return module.MPEViewer(env.world, continuous_actions=env.continuous_actions)
    current = env.viewer  # built by the env.render call before this one
    return module.MatrixViewer(current.payoffs, current.action_names, current.game, current.horizon)


def _rollout_states(env, n: int) -> list[Any]:
    """`n` successive states of a jitted random rollout with auto-reset."""
    wrapped = AutoReset(env)
    step = jax.jit(wrapped.step)
    state, ts = jax.jit(wrapped.reset)(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    states = []
    for _ in range(n):
        states.append(state)
        key, sub = jax.random.split(key)
        state, ts = step(state, random_action(sub, ts.observation.action_mask))
    jax.block_until_ready(states)
    return states


def _ms_per_frame(render, states) -> float:
    start = time.perf_counter()
    for state in states:
        render(state)
    return (time.perf_counter() - start) / len(states) * 1e3


def _measure_render(env_id: str) -> dict[str, Any]:
    env = jaxmarl_envs.make(env_id)
    states = _rollout_states(env, FRAMES)
    frame = env.render(states[0])  # builds the viewer and warms pygame
    row: dict[str, Any] = {"env_id": env_id, "frame": "x".join(map(str, frame.shape[:2]))}
    impls = {"now": env.render}
    if BASELINE:
        old = _baseline_viewer(env)
        for state in states:
            assert np.array_equal(old.render(state), env.render(state))
        impls["before"] = old.render
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(ROUNDS):
        for name, render in impls.items():  # interleaved: both see the same load
            times[name].append(_ms_per_frame(render, states))
    for name in impls:
        row[f"{name}_ms"] = float(np.median(times[name]))
    row["load"] = os.getloadavg()[0]
    env.close()
    return row


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_ms_per_frame(benchmark, env_id):
    benchmark.group = "render"
    row = benchmark.pedantic(_measure_render, args=(env_id,), rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    _ROWS.append(row)
    before = f", before {row['before_ms']:.2f} ms" if "before_ms" in row else ""
    print(
        f"\n{env_id} ({row['frame']}): {row['now_ms']:.2f} ms per frame{before} "
        f"(load {row['load']:.2f})"
    )
    assert row["now_ms"] <= TARGET_MS


def _gym_loop(env, actions: np.ndarray, render: bool) -> float:
    """Steps/s of `step` (+ `render`) with precomputed actions, resetting at episode ends."""
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if render:
            env.render()
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def _measure_gym(env_id: str) -> dict[str, Any]:
    viewers = {"now": None}
    if BASELINE:
        core = jaxmarl_envs.make(env_id)
        core.render(_rollout_states(core, 1)[0])
        viewers["before"] = _baseline_viewer(core)
    envs = {}
    for name, viewer in viewers.items():
        extra = {} if viewer is None else {"viewer": viewer}
        env = gymnasium.make(gymnasium_id(env_id), render_mode="rgb_array", **extra)
        env.reset(seed=0)
        env.action_space.seed(0)
        envs[name] = env
    actions = np.stack([envs["now"].action_space.sample() for _ in range(GYM_STEPS)])
    for env in envs.values():  # compile and warm up
        _gym_loop(env, actions[:5], render=True)
    rates: dict[str, list[float]] = {"step": []} | {name: [] for name in envs}
    for _ in range(3):
        rates["step"].append(_gym_loop(envs["now"], actions, render=False))
        for name, env in envs.items():
            rates[name].append(_gym_loop(env, actions, render=True))
    row: dict[str, Any] = {"env_id": env_id}
    for name, values in rates.items():
        row[f"{name}_steps_per_s"] = float(np.median(values))
    row["load"] = os.getloadavg()[0]
    for env in envs.values():
        env.close()
    return row


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_gymnasium_step_and_render(benchmark, env_id):
    """`gymnasium.make(..., render_mode="rgb_array")`: steps/s with a frame every step."""
    benchmark.group = "gymnasium-record"
    row = benchmark.pedantic(_measure_gym, args=(env_id,), rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    _ROWS.append({"gym": True, **row})
    before = f", before {row['before_steps_per_s']:.0f}" if "before_steps_per_s" in row else ""
    print(
        f"\n{env_id} gymnasium: step only {row['step_steps_per_s']:.0f} steps/s, "
        f"step+render {row['now_steps_per_s']:.0f}{before} (load {row['load']:.2f})"
    )
    assert row["now_steps_per_s"] > 0


def test_print_table():
    """The figures of this run as markdown rows (for benchmarks/RESULTS.md)."""
    if not _ROWS:
        pytest.skip("no figure measured in this run")
    print("\n| scenario | frame (HxW) | before (ms) | now (ms) | speed-up | load |")
    print("|---|---|---:|---:|---:|---:|")
    for row in (r for r in _ROWS if "gym" not in r):
        before = row.get("before_ms")
        cells = (f"{before:.2f}", f"{before / row['now_ms']:.1f}x") if before else ("-", "-")
        print(
            f"| {row['env_id']} | {row['frame']} | {cells[0]} | {row['now_ms']:.2f} | "
            f"{cells[1]} | {row['load']:.1f} |"
        )
    print("\n| scenario | step only (steps/s) | step+render before | step+render now | load |")
    print("|---|---:|---:|---:|---:|")
    for row in (r for r in _ROWS if "gym" in r):
        before = row.get("before_steps_per_s")
        print(
            f"| {row['env_id']} | {row['step_steps_per_s']:.0f} | "
            f"{f'{before:.0f}' if before else '-'} | {row['now_steps_per_s']:.0f} | "
            f"{row['load']:.1f} |"
        )
    assert all(row["load"] >= 0 for row in _ROWS)
