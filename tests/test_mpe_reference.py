"""Differential tests: jaxmarl_envs' MPE scenarios against Farama's mpe2 1.1.1, whole episodes
from copied initial states with the same (random, discrete and continuous) actions."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.mpe import MPE

pytest.importorskip("mpe2")
import mpe_reference  # noqa: E402

pytestmark = pytest.mark.reference

MY_SCENARIOS = (
    "simple",
    "simple_spread",
    "simple_reference",
    "simple_speaker_listener",
    "simple_crypto",
)
SEEDS = (0, 1)


@functools.cache
def _pair(name: str, continuous: bool, max_cycles: int = 25, kwargs: tuple = ()):
    """(our env, mpe2 parallel env) built once per configuration (jit caches reused)."""
    suffix = "-continuous" if continuous else ""
    env = jaxmarl_envs.make(f"mpe-{name}{suffix}", max_cycles=max_cycles, **dict(kwargs))
    return env, mpe_reference.mpe2_parallel_env(env, **dict(kwargs))


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("name", MY_SCENARIOS)
def test_whole_episodes_match(name, continuous):
    env, ref = _pair(name, continuous)
    for seed in SEEDS:
        assert mpe_reference.run_episode(env, ref, seed) == 25


@pytest.mark.slow
@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("name", MY_SCENARIOS)
def test_many_episodes_match(name, continuous):
    env, ref = _pair(name, continuous)
    for seed in range(2, 22):
        assert mpe_reference.run_episode(env, ref, seed) == 25


@pytest.mark.parametrize(
    "kwargs",
    [
        (("N", 4), ("local_ratio", 0.2)),
        (("num_agent_neighbors", 1), ("num_landmark_neighbors", 2)),
        (("num_agent_neighbors", 4), ("num_landmark_neighbors", 5)),  # zero-padded slots
        (("N", 1),),
    ],
    ids=["N4", "neighbours", "padded-neighbours", "N1"],
)
def test_simple_spread_options_match(kwargs):
    env, ref = _pair("simple_spread", False, 25, kwargs)
    assert mpe_reference.run_episode(env, ref, seed=3) == 25


def _crowd(world, rng) -> None:
    """Puts every agent near agent 0 so contact forces and collision penalties act."""
    base = world.agents[0].state.p_pos
    for a in world.agents[1:]:
        a.state.p_pos = base + rng.uniform(-0.2, 0.2, 2)


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
def test_simple_spread_collisions_match(continuous):
    env, ref = _pair("simple_spread", continuous)
    for seed in SEEDS:
        # The crowded start overlaps in mpe2's own terms and in ours (collision penalties).
        ref.reset(seed=seed)
        world = ref.unwrapped.world
        _crowd(world, np.random.default_rng(seed))
        scenario = ref.unwrapped.scenario
        pairs = [(a, b) for a in world.agents for b in world.agents if a is not b]
        assert any(scenario.is_collision(a, b) for a, b in pairs)
        state = mpe_reference.state_from_mpe2(env, world)
        assert bool(np.any(np.asarray(env.scenario.reward(state)) < 0))
        length = mpe_reference.run_episode(env, ref, seed, setup_world=_crowd)
        assert length == 25


def test_terminate_on_success_matches():
    env, ref = _pair("simple_spread", False, 25, (("terminate_on_success", True),))

    def cover(world, rng):
        for a, lm in zip(world.agents, world.landmarks, strict=True):
            a.state.p_pos = lm.state.p_pos + 0.01

    def idle(rng, env):
        return np.zeros(env.num_agents, np.int32), dict.fromkeys(env.agent_ids, 0)

    assert mpe_reference.run_episode(env, ref, 0, action_fn=idle, setup_world=cover) == 1
    # Without covering, random play runs to the time limit with no termination.
    assert mpe_reference.run_episode(env, ref, 1) == 25


@pytest.mark.parametrize("max_cycles", [1, 2, 7])
def test_episode_length_matches(max_cycles):
    for name in ("simple", "simple_speaker_listener"):
        env, ref = _pair(name, False, max_cycles)
        assert mpe_reference.run_episode(env, ref, 5) == max_cycles


def test_out_of_bounds_continuous_actions_are_clipped_like_mpe2():
    env, ref = _pair("simple_reference", True)

    def wild(rng, env: MPE):
        joint = rng.uniform(-0.5, 1.5, (env.num_agents, max(env.agent_action_sizes)))
        joint = joint.astype(np.float32)
        sizes = env.agent_action_sizes
        return joint, {a: joint[i, : sizes[i]].copy() for i, a in enumerate(env.agent_ids)}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mpe2's ClipOutOfBoundsWrapper warns on every clip
        assert mpe_reference.run_episode(env, ref, 4, action_fn=wild) == 25


def test_state_copy_round_trip():
    env, ref = _pair("simple_crypto", False)
    ref.reset(seed=9)
    world = ref.unwrapped.world
    state = mpe_reference.state_from_mpe2(env, world)
    assert int(state.extra["goal"]) == [
        lm is world.agents[0].goal_a for lm in world.landmarks
    ].index(True)
    assert np.allclose(np.asarray(state.p_pos[0]), world.agents[0].state.p_pos, atol=1e-6)


@pytest.mark.parametrize("stage", [0, 1])
def test_simple_spread_curriculum_stages_match(stage):
    """Stage 0 (no collision penalty) against mpe2's curriculum mode. mpe2 1.1.1 cannot
    leave stage 0 (its scenario's `curriculum_stage` property ignores assignments), so
    stage 1, which restores the penalty, is checked against mpe2 without curriculum."""
    env = jaxmarl_envs.make("mpe-simple_spread", curriculum=True, curriculum_stage=stage)
    ref = mpe_reference.mpe2_parallel_env(env, curriculum=stage == 0)
    ref.reset(seed=0)
    world = ref.unwrapped.world
    _crowd(world, np.random.default_rng(0))
    state = mpe_reference.state_from_mpe2(env, world)
    penalised = bool(np.any(np.asarray(env.scenario.reward(state)) < 0))
    assert penalised == (stage == 1)
    assert mpe_reference.run_episode(env, ref, 0, setup_world=_crowd) == 25
