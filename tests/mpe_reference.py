"""Differential-test harness for MPE scenarios against Farama's mpe2 1.1.1 (the oracle).

Usage (any scenario, including ones defined in other test files):

    env = jaxmarl_envs.make("mpe-simple_tag")           # or MPE(...) with kwargs
    ref = mpe2_parallel_env(env, num_good=1)             # same scenario kwargs as `env`
    run_episode(env, ref, seed=0, extract_extra=my_fn)   # asserts at every step

`extract_extra(world, env) -> dict` returns the scenario's `State.extra` built from the
mpe2 world (e.g. goal indices); `EXTRA_EXTRACTORS[name]` is used when it is not given,
and the default is `{}`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe import MPE, State
from jaxmarl_envs.types import StepType

#: Float tolerance: mpe2 runs in float64, we run in float32.
ATOL = 2e-4
RTOL = 2e-4

#: `name -> fn(mpe2_world, env) -> extra dict`, for scenarios whose `State.extra` is not `{}`.
EXTRA_EXTRACTORS: dict[str, Callable[[Any, MPE], dict]] = {}

_JITTED: dict[int, tuple[Callable, Callable]] = {}


def mpe2_parallel_env(env: MPE, **scenario_kwargs: Any):
    """mpe2's parallel env of `env`'s scenario, action type and `max_cycles`.

    Args:
        env: our environment.
        **scenario_kwargs: the scenario keyword arguments `env` was built with.
    """
    module = importlib.import_module(f"mpe2.{env.scenario.mpe2_module}")
    return module.parallel_env(
        continuous_actions=env.continuous_actions, max_cycles=env.max_cycles, **scenario_kwargs
    )


def _colour3(colour: np.ndarray) -> np.ndarray:
    """An mpe2 colour as RGB (crypto's 4-d colours keep their first 3 entries)."""
    c = np.zeros(3, np.float32)
    c[: min(3, len(colour))] = np.asarray(colour, np.float32)[:3]
    return c


def state_from_mpe2(
    env: MPE, world: Any, extract_extra: Callable[[Any, MPE], dict] | None = None
) -> State:
    """Our state holding a copy of an mpe2 world's state (positions, velocities, comm,
    colours and the scenario's extra data)."""
    if extract_extra is None:
        extract_extra = EXTRA_EXTRACTORS.get(env.scenario.name, lambda w, e: {})
    entities = list(world.agents) + list(world.landmarks)
    assert [a.name for a in world.agents] == list(env.agent_ids)
    assert len(entities) == env.world.num_entities
    dim_c = env.world.dim_c
    c = np.zeros((env.num_agents, dim_c), np.float32)
    for i, a in enumerate(world.agents):
        if a.state.c is not None and dim_c:
            c[i] = a.state.c
    extra = jax.tree_util.tree_map(jnp.asarray, extract_extra(world, env))
    return State(
        key=jax.random.PRNGKey(0),
        step_count=jnp.zeros((), jnp.int32),
        p_pos=jnp.asarray(np.array([e.state.p_pos for e in entities]), jnp.float32),
        p_vel=jnp.asarray(np.array([e.state.p_vel for e in entities]), jnp.float32),
        c=jnp.asarray(c),
        colour=jnp.asarray(np.array([_colour3(e.color) for e in entities])),
        extra=extra,
    )


def random_actions(rng: np.random.Generator, env: MPE) -> tuple[np.ndarray, dict[str, Any]]:
    """A random joint action for us and the same actions as mpe2's per-agent dict."""
    sizes = env.agent_action_sizes
    ids = env.agent_ids
    if env.continuous_actions:
        joint = np.zeros((env.num_agents, max(sizes)), np.float32)
        for i, s in enumerate(sizes):
            joint[i, :s] = rng.uniform(0.0, 1.0, s).astype(np.float32)
        return joint, {a: joint[i, : sizes[i]].copy() for i, a in enumerate(ids)}
    joint = np.array([rng.integers(s) for s in sizes], np.int32)
    return joint, {a: int(joint[i]) for i, a in enumerate(ids)}


def assert_spaces_equal(env: MPE, ref: Any) -> None:
    """Per-agent observation sizes and action spaces equal mpe2's."""
    assert list(env.agent_ids) == list(ref.possible_agents)
    for i, a in enumerate(env.agent_ids):
        assert ref.observation_space(a).shape == (env.agent_observation_sizes[i],), a
        space = ref.action_space(a)
        if env.continuous_actions:
            assert space.shape == (env.agent_action_sizes[i],), a
            assert np.all(space.low == 0.0) and np.all(space.high == 1.0), a
        else:
            assert int(space.n) == env.agent_action_sizes[i], a


def _jitted(env: MPE) -> tuple[Callable, Callable]:
    if id(env) not in _JITTED:
        _JITTED[id(env)] = (jax.jit(env.observe), jax.jit(env.step))
    return _JITTED[id(env)]


def assert_obs_equal(env: MPE, view: np.ndarray, ref_obs: dict, where: str) -> None:
    """Each agent's true observation equals mpe2's; padding is zero."""
    for i, a in enumerate(env.agent_ids):
        size = env.agent_observation_sizes[i]
        ref = np.asarray(ref_obs[a])
        assert ref.shape == (size,), f"{where}: {a} obs size {ref.shape} vs ours {size}"
        ok = np.allclose(view[i, :size], ref, atol=ATOL, rtol=RTOL)
        assert ok, f"{where}: obs of {a} differ:\nours {view[i, :size]}\nref  {ref}"
        assert np.all(view[i, size:] == 0.0), f"{where}: padding of {a} is not zero"


def run_episode(
    env: MPE,
    ref: Any,
    seed: int,
    extract_extra: Callable[[Any, MPE], dict] | None = None,
    action_fn: Callable[[np.random.Generator, MPE], tuple[np.ndarray, dict]] = random_actions,
    setup_world: Callable[[Any, np.random.Generator], None] | None = None,
) -> int:
    """Plays one whole episode in both environments from mpe2's initial state with the same
    actions; asserts equal observations, global states (mpe2's `state()`), rewards,
    terminations and truncations at every step and that both end on the same step.
    Returns the episode length.

    Args:
        env: our environment.
        ref: `mpe2_parallel_env(env, ...)`.
        seed: mpe2's reset seed (also seeds the actions).
        extract_extra: see `state_from_mpe2`.
        action_fn: `(rng, env) -> (joint action for us, {agent: action} for mpe2)`.
        setup_world: optional `(mpe2_world, rng) -> None` editing mpe2's world in place
            after its reset (e.g. to force collisions); observations are then re-read.
    """
    observe, step = _jitted(env)
    assert_spaces_equal(env, ref)
    ref_obs, _ = ref.reset(seed=seed)
    if setup_world is not None:
        setup_world(ref.unwrapped.world, np.random.default_rng(seed))
        ref_obs = {a: ref.unwrapped.observe(a) for a in ref.agents}
    state = state_from_mpe2(env, ref.unwrapped.world, extract_extra)
    assert_obs_equal(env, np.asarray(observe(state).agents_view), ref_obs, f"seed {seed} reset")
    rng = np.random.default_rng(seed + 12345)
    t = 0
    while ref.agents:
        joint, per_agent = action_fn(rng, env)
        ref_obs, ref_rew, ref_term, ref_trunc, _ = ref.step(per_agent)
        state, ts = step(state, jnp.asarray(joint))
        t += 1
        where = f"seed {seed} step {t}"
        assert_obs_equal(env, np.asarray(ts.observation.agents_view), ref_obs, where)
        ours_r = np.asarray(ts.reward)
        ref_r = np.array([ref_rew[a] for a in env.agent_ids])
        assert np.allclose(ours_r, ref_r, atol=ATOL, rtol=RTOL), f"{where}: {ours_r} vs {ref_r}"
        ref_t = np.array([ref_term[a] for a in env.agent_ids])
        ref_tr = np.array([ref_trunc[a] for a in env.agent_ids])
        assert np.array_equal(np.asarray(ts.terminated), ref_t), f"{where}: terminated"
        assert np.array_equal(np.asarray(ts.truncated), ref_tr), f"{where}: truncated"
        ours_g = np.asarray(env.global_state(state, ts.observation))
        ref_g = np.asarray(ref.state())
        assert ours_g.shape == ref_g.shape, f"{where}: global state shape"
        assert np.allclose(ours_g, ref_g, atol=ATOL, rtol=RTOL), f"{where}: global state"
        ref_last = not ref.agents
        assert (int(ts.step_type) == StepType.LAST) == ref_last, f"{where}: last step"
        assert int(state.step_count) == t
    return t


def _landmark_index(world: Any, landmark: Any) -> int:
    return next(i for i, lm in enumerate(world.landmarks) if lm is landmark)


def _reference_extra(world: Any, env: MPE) -> dict:
    return {"goal": np.array([_landmark_index(world, a.goal_b) for a in world.agents], np.int32)}


def _speaker_listener_extra(world: Any, env: MPE) -> dict:
    return {"goal": np.int32(_landmark_index(world, world.agents[0].goal_b))}


def _crypto_extra(world: Any, env: MPE) -> dict:
    key = int(np.argmax(world.agents[2].key))
    assert np.array_equal(world.agents[2].key, world.landmarks[key].color)
    return {"goal": np.int32(_landmark_index(world, world.agents[0].goal_a)), "key": np.int32(key)}


EXTRA_EXTRACTORS.update(
    simple_reference=_reference_extra,
    simple_speaker_listener=_speaker_listener_extra,
    simple_crypto=_crypto_extra,
)
