"""Tests of the pure-JAX multi-agent particle environments (physics, specs, episode ends,
properties, jit/vmap, rendering and the adapters on heterogeneous agents)."""

from __future__ import annotations

import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs import AutoReset
from jaxmarl_envs.mpe import MPE, SCENARIOS, World, physics_step
from jaxmarl_envs.mpe.scenarios.simple_spread import SimpleSpread
from jaxmarl_envs.types import StepType

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

MY_SCENARIOS = (
    "simple",
    "simple_spread",
    "simple_reference",
    "simple_speaker_listener",
    "simple_crypto",
)


@functools.cache
def jitted(env_id: str, **overrides):
    env = jaxmarl_envs.make(env_id, **overrides)
    return env, jax.jit(env.reset), jax.jit(env.step)


def random_joint(key, env: MPE):
    """A random valid joint action (discrete or continuous) for `env`."""
    if env.continuous_actions:
        return jax.random.uniform(key, env.action_spec.shape, jnp.float32)
    sizes = jnp.asarray(env.agent_action_sizes)
    return jax.random.randint(key, (env.num_agents,), 0, sizes).astype(jnp.int32)


# ----------------------------------------------------------------------------- registry
def test_registered_ids_and_kwargs():
    ids = jaxmarl_envs.list_envs("mpe")
    for name in MY_SCENARIOS:
        assert f"mpe-{name}" in ids and f"mpe-{name}-continuous" in ids
        assert name in SCENARIOS
    assert "MPE-v0" in ids
    env = jaxmarl_envs.make("mpe-simple_spread", N=5, local_ratio=0.1, max_cycles=40)
    assert env.num_agents == 5 and env.time_limit == 40 and env.scenario.local_ratio == 0.1
    assert env.agent_ids == tuple(f"agent_{i}" for i in range(5))
    assert jaxmarl_envs.make("mpe-simple_spread", time_limit=7).max_cycles == 7
    assert jaxmarl_envs.make("mpe-simple_spread-continuous").continuous_actions
    assert jaxmarl_envs.make("MPE-v0").scenario.name == "simple_spread"
    names = {
        "mpe-simple_speaker_listener": ("speaker_0", "listener_0"),
        "mpe-simple_crypto": ("eve_0", "bob_0", "alice_0"),
        "mpe-simple_reference": ("agent_0", "agent_1"),
        "mpe-simple": ("agent_0",),
    }
    for env_id, agents in names.items():
        assert jaxmarl_envs.make(env_id).agent_ids == agents


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"N": 0}, "N must be"),
        ({"N": 2.5}, "N must be"),
        ({"local_ratio": 1.5}, "local_ratio"),
        ({"local_ratio": "half"}, "local_ratio"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"time_limit": -1}, "time_limit"),
        ({"continuous_actions": "yes"}, "continuous_actions"),
        ({"num_agent_neighbors": 0}, "num_agent_neighbors"),
        ({"curriculum": True, "curriculum_stage": 2}, "curriculum_stage"),
        ({"M": 3}, "unexpected keyword"),
    ],
)
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxmarl_envs.make("mpe-simple_spread", **kwargs)


def test_other_construction_errors():
    with pytest.raises(ValueError, match="unknown MPE scenario"):
        MPE("simple_nothing")
    with pytest.raises(ValueError, match="need a scenario name"):
        MPE(SimpleSpread(), N=3)
    with pytest.raises(ValueError, match="scenario must be"):
        MPE(42)
    with pytest.raises(ValueError, match="unique"):
        World.build(["a", "a"], 1)
    with pytest.raises(ValueError, match="needs 2 values"):
        World.build(["a", "b"], 1, agent_size=[0.1, 0.2, 0.3])
    assert MPE(SimpleSpread(N=2)).num_agents == 2


# ----------------------------------------------------------------------------- specs
@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("name", MY_SCENARIOS)
def test_specs_hold_for_reset_and_steps(name, continuous):
    env, reset, step = jitted(f"mpe-{name}" + ("-continuous" if continuous else ""))
    state, ts = reset(jax.random.PRNGKey(1))
    env.observation_spec.validate(ts.observation)
    env.action_spec.validate(env.action_spec.generate_value())
    sizes = np.array(env.agent_observation_sizes)
    assert ts.observation.agents_view.shape == (env.num_agents, sizes.max())
    mask = np.asarray(ts.observation.action_mask)
    assert np.array_equal(mask.sum(axis=1), np.array(env.agent_action_sizes))
    key = jax.random.PRNGKey(2)
    for _ in range(3):
        key, sub = jax.random.split(key)
        state, ts = step(state, random_joint(sub, env))
        env.observation_spec.validate(ts.observation)
        env.reward_spec.validate(ts.reward)
        view = np.asarray(ts.observation.agents_view)
        for i, size in enumerate(sizes):
            assert np.all(view[i, size:] == 0.0)  # padding convention
        g = env.global_state(state, ts.observation)
        assert g.shape == env.global_state_spec().shape == (int(sizes.sum()),)
        rows = [view[i, :s] for i, s in enumerate(sizes)]
        assert np.array_equal(np.asarray(g), np.concatenate(rows))


def test_heterogeneous_sizes():
    env = jaxmarl_envs.make("mpe-simple_speaker_listener")
    assert env.agent_observation_sizes == (3, 11)
    assert env.agent_action_sizes == (3, 5)
    assert list(env.action_spec.num_values) == [3, 5]
    cont = jaxmarl_envs.make("mpe-simple_speaker_listener-continuous")
    assert cont.agent_action_sizes == (3, 5) and cont.action_spec.shape == (2, 5)
    assert jaxmarl_envs.make("mpe-simple_reference").agent_action_sizes == (50, 50)
    assert jaxmarl_envs.make("mpe-simple_reference-continuous").agent_action_sizes == (15, 15)
    assert jaxmarl_envs.make("mpe-simple_crypto").agent_observation_sizes == (4, 8, 8)


def test_validate_action():
    env = jaxmarl_envs.make("mpe-simple_speaker_listener")
    assert np.array_equal(env.validate_action(np.array([2, 4])), [2, 4])
    with pytest.raises(ValueError, match="out of bounds"):
        env.validate_action(np.array([3, 0]))  # the speaker has 3 words
    with pytest.raises(ValueError, match="shape"):
        env.validate_action(np.array([0, 0, 0]))
    cont = jaxmarl_envs.make("mpe-simple_spread-continuous")
    with pytest.raises(ValueError, match="out of bounds"):
        cont.validate_action(np.full((3, 5), 1.5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        cont.validate_action(np.full((3, 5), np.nan, np.float32))


# ----------------------------------------------------------------------------- rules
def test_action_decoding():
    env = jaxmarl_envs.make("mpe-simple_reference")
    # agent 0: move +x (2) with word 3 -> 2 + 5*3; agent 1: move -y (3), word 0.
    force, msg = env.decode_action(jnp.array([17, 3], jnp.int32))
    assert np.allclose(np.asarray(force), [[5.0, 0.0], [0.0, -5.0]])
    assert np.asarray(msg).argmax(axis=1).tolist() == [3, 0]
    assert np.allclose(np.asarray(msg).sum(axis=1), 1.0)
    cont = jaxmarl_envs.make("mpe-simple_speaker_listener-continuous")
    a = jnp.array([[0.1, 0.2, 0.3, 0.0, 0.0], [0.9, 0.2, 0.7, 0.6, 0.1]], jnp.float32)
    force, msg = cont.decode_action(a)
    assert np.allclose(np.asarray(force), [[0.0, 0.0], [2.5, -2.5]])  # speaker cannot move
    assert np.allclose(np.asarray(msg), [[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])  # listener silent
    force, _ = cont.decode_action(jnp.full((2, 5), 2.0).at[1, 1].set(-3.0))
    # Clipped to [0, 1] first: (1 - 0, 1 - 1) * 5, not (2 + 3, 0) * 5.
    assert np.allclose(np.asarray(force)[1], [5.0, 0.0])


def test_contact_forces_push_overlapping_agents_apart():
    env, _, step = jitted("mpe-simple_spread", N=2)
    pos = jnp.array([[0.0, 0.0], [0.1, 0.0], [0.9, 0.9], [-0.9, -0.9]], jnp.float32)
    state = env.scenario.new_state(pos, jnp.zeros((4, 3)))
    state, ts = step(state, jnp.zeros(2, jnp.int32))
    vel = np.asarray(state.p_vel)
    assert vel[0, 0] < 0 < vel[1, 0] and np.allclose(vel[0], -vel[1])
    assert np.allclose(vel[2:], 0.0) and np.allclose(np.asarray(state.p_pos[2:]), pos[2:])
    # Both overlap: local -1 each, mixed 50/50 with the global coverage reward.
    dists = np.linalg.norm(np.asarray(pos[:2])[:, None] - np.asarray(pos[2:])[None], axis=-1)
    expected = 0.5 * -dists.min(axis=0).sum() + 0.5 * -1.0
    assert np.allclose(np.asarray(ts.reward), expected, atol=1e-5)


def test_integration_order_and_speed_cap():
    world = World.build(["a", "b"], 0, agent_max_speed=[0.5, None], agent_collide=False)
    pos = jnp.zeros((2, 2))
    vel = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    force = jnp.array([[10.0, 0.0], [10.0, 0.0]])
    new_pos, new_vel = physics_step(world, pos, vel, force)
    assert np.allclose(np.asarray(new_pos), [[0.1, 0.0], [0.1, 0.0]])  # old velocity * dt
    assert np.allclose(np.asarray(new_vel[1]), [0.75 + 1.0, 0.0])  # damping then force
    assert np.allclose(np.asarray(new_vel[0]), [0.5, 0.0])  # capped


def test_truncation_exactly_at_max_cycles():
    env, reset, step = jitted("mpe-simple_crypto", max_cycles=3)
    state, ts = reset(jax.random.PRNGKey(0))
    types = []
    for _ in range(3):
        state, ts = step(state, jnp.zeros(3, jnp.int32))
        types.append(int(ts.step_type))
        assert not bool(ts.terminated.any())
    assert types == [StepType.MID, StepType.MID, StepType.LAST]
    assert bool(ts.truncated.all()) and np.all(np.asarray(ts.discount) == 1.0)


def test_terminate_on_success():
    env = jaxmarl_envs.make("mpe-simple_spread", N=2, terminate_on_success=True)
    pos = jnp.array([[0.5, 0.5], [-0.5, -0.5], [0.52, 0.5], [-0.5, -0.45]], jnp.float32)
    state = env.scenario.new_state(pos, jnp.zeros((4, 3)))
    _, ts = env.step(state, jnp.zeros(2, jnp.int32))
    assert int(ts.step_type) == StepType.LAST and bool(ts.terminated.all())
    assert np.all(np.asarray(ts.discount) == 0.0)
    far = state.replace(p_pos=pos.at[0].set(jnp.array([0.0, 0.0])))
    _, ts = env.step(far, jnp.zeros(2, jnp.int32))
    assert int(ts.step_type) == StepType.MID


def test_crypto_rewards():
    env, reset, step = jitted("mpe-simple_crypto")
    state, _ = reset(jax.random.PRNGKey(3))
    goal = int(state.extra["goal"])
    # Eve guesses right, Bob wrong: Eve 0, good agents -2 (Bob) + 0 (Eve's error).
    wrong = (goal + 1) % 4
    state, ts = step(state, jnp.array([goal, wrong, 0], jnp.int32))
    assert np.allclose(np.asarray(ts.reward), [0.0, -2.0, -2.0])
    state, ts = step(state, jnp.array([wrong, goal, 0], jnp.int32))
    assert np.allclose(np.asarray(ts.reward), [-2.0, 2.0, 2.0])


# ----------------------------------------------------------------------------- jit / vmap
def test_jit_vmap_and_plain_agree():
    env, reset, step = jitted("mpe-simple_speaker_listener-continuous")
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    states, tss = jax.vmap(reset)(keys)
    actions = jax.vmap(lambda k: random_joint(k, env))(jax.random.split(jax.random.PRNGKey(5), 3))
    b_states, b_ts = jax.jit(jax.vmap(env.step))(states, actions)
    for i in range(3):
        s_i, ts_i = env.reset(keys[i])
        assert np.allclose(np.asarray(ts_i.observation.agents_view), tss.observation.agents_view[i])
        with jax.disable_jit():
            _, plain = env.step(s_i, actions[i])
        _, jit_ts = step(s_i, actions[i])
        for ts in (plain, jit_ts):
            assert np.allclose(
                np.asarray(ts.observation.agents_view),
                np.asarray(b_ts.observation.agents_view[i]),
                atol=1e-6,
            )
            assert np.allclose(np.asarray(ts.reward), np.asarray(b_ts.reward[i]), atol=1e-6)


def test_keys_reproduce_and_vary():
    env, reset, step = jitted("mpe-simple_reference")

    def episode(key):
        state, _ = reset(key)
        out = [np.asarray(state.p_pos)]
        for k in jax.random.split(jax.random.fold_in(key, 1), 5):
            state, ts = step(state, random_joint(k, env))
            out.append(np.asarray(ts.observation.agents_view))
        return out

    a, b = episode(jax.random.PRNGKey(7)), episode(jax.random.PRNGKey(7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = episode(jax.random.PRNGKey(8))
    assert not np.array_equal(a[0], c[0])
    goals = {tuple(np.asarray(reset(jax.random.PRNGKey(k))[0].extra["goal"])) for k in range(30)}
    assert len(goals) > 3  # goals are drawn from the key
    pos = np.asarray(
        jax.vmap(lambda k: reset(k)[0].p_pos)(jax.random.split(jax.random.PRNGKey(0), 64))
    )
    assert pos.min() >= -1.0 and pos.max() < 1.0 and pos.std() > 0.4


# ----------------------------------------------------------------------------- properties
_PROP_ENVS = ("mpe-simple_spread", "mpe-simple_spread-continuous", "mpe-simple_speaker_listener")


@settings(max_examples=8, deadline=None)
@given(
    env_id=st.sampled_from(_PROP_ENVS),
    seed=st.integers(0, 2**31 - 1),
    max_cycles=st.integers(1, 6),
)
def test_invariants_under_random_play(env_id, seed, max_cycles):
    env, reset, step = jitted(env_id)
    key = jax.random.PRNGKey(seed)
    state, ts = reset(key)
    fixed = ~env.world.movable
    start = np.asarray(state.p_pos)
    for t in range(1, max_cycles + 1):
        key, sub = jax.random.split(key)
        state, ts = step(state, random_joint(sub, env))
        pos, vel = np.asarray(state.p_pos), np.asarray(state.p_vel)
        assert np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))
        assert np.all(np.isfinite(np.asarray(ts.reward)))
        assert np.array_equal(pos[fixed], start[fixed]) and np.all(vel[fixed] == 0)
        assert int(state.step_count) == t
        # Truncation is a function of the step count alone (time_limit 25 here).
        assert bool(ts.truncated.any()) == (t >= env.time_limit)
    short = state.replace(step_count=jnp.asarray(max_cycles - 1, jnp.int32))
    env_short = jaxmarl_envs.make(env_id, max_cycles=max_cycles)
    _, last = env_short.step(short, random_joint(key, env))
    assert int(last.step_type) == StepType.LAST and bool(last.truncated.all())


@functools.cache
def _capped_step(cap: float):
    world = World.build(["a", "b", "c"], 2, agent_max_speed=cap, agent_size=0.2)
    return jax.jit(functools.partial(physics_step, world))


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    cap=st.sampled_from([0.3, 1.0, 1.3]),
    scale=st.floats(0.0, 50.0),
)
def test_speed_never_exceeds_max_speed(seed, cap, scale):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    pos = jax.random.uniform(k1, (5, 2), jnp.float32, -0.3, 0.3)
    vel = jax.random.normal(k2, (5, 2)) * scale
    vel = vel.at[3:].set(0.0)
    force = jax.random.normal(k3, (3, 2)) * scale
    _, new_vel = _capped_step(cap)(pos, vel, force)
    speed = np.linalg.norm(np.asarray(new_vel[:3]), axis=1)
    assert np.all(np.isfinite(speed)) and np.all(speed <= cap * (1 + 1e-5))


def test_coincident_entities_stay_finite():
    world = World.build(["a", "b"], 1)
    pos = jnp.zeros((3, 2))
    new_pos, new_vel = physics_step(world, pos, jnp.zeros((3, 2)), jnp.zeros((2, 2)))
    # mpe2 divides by zero here (NaN); we keep the state finite.
    assert np.all(np.isfinite(np.asarray(new_pos))) and np.all(np.isfinite(np.asarray(new_vel)))


# ----------------------------------------------------------------------------- wrappers
def test_auto_reset_rollout():
    env = AutoReset(jaxmarl_envs.make("mpe-simple_spread", max_cycles=4))
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))

    def body(carry, key):
        state, ts = carry
        state, ts = env.step(state, random_joint(key, env.env))
        return (state, ts), ts.step_type

    _, types = jax.jit(lambda c, k: jax.lax.scan(body, c, k))(
        (state, ts), jax.random.split(jax.random.PRNGKey(1), 10)
    )
    assert np.asarray(types).tolist().count(StepType.LAST) == 2


# ----------------------------------------------------------------------------- rendering
def test_render_headless_and_animate(tmp_path):
    for env_id in ("mpe-simple_spread", "mpe-simple_speaker_listener-continuous"):
        env, reset, step = jitted(env_id)
        state, _ = reset(jax.random.PRNGKey(0))
        states = [state]
        for k in jax.random.split(jax.random.PRNGKey(1), 3):
            state, _ = step(state, random_joint(k, env))
            states.append(state)
        frame = env.render(states[-1])
        assert frame.shape == (700, 700, 3) and frame.dtype == np.uint8
        assert (frame != 255).any() and (frame == 255).any()
        assert not np.array_equal(frame, env.render(states[0]))
        path = env.animate(states, str(tmp_path / f"{env_id}.gif"), fps=5)
        assert os.path.getsize(path) > 0
        env.close()
    # The speaker's message is written on the frame: a different word changes pixels.
    env, reset, _ = jitted("mpe-simple_speaker_listener")
    state, _ = reset(jax.random.PRNGKey(0))
    a = env.render(state.replace(c=jnp.array([[1.0, 0, 0], [0, 0, 0]])))
    b = env.render(state.replace(c=jnp.array([[0, 1.0, 0], [0, 0, 0]])))
    assert not np.array_equal(a, b)


# ----------------------------------------------------------------------------- adapters
_HETERO_WARNINGS = (
    "Agents have different",
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be",
)


@pytest.mark.parametrize(
    "env_id", ["mpe-simple_speaker_listener", "mpe-simple_speaker_listener-continuous"]
)
def test_pettingzoo_true_per_agent_spaces(env_id):
    import gymnasium
    from pettingzoo.test import parallel_api_test

    from jaxmarl_envs.adapters.pettingzoo import parallel_env

    env = parallel_env(env_id, time_limit=3, action_mask_in_obs=False)
    assert env.possible_agents == ["speaker_0", "listener_0"]
    obs_spaces = [env.observation_space(a) for a in env.possible_agents]
    assert [s.shape for s in obs_spaces] == [(3,), (11,)]
    acts = [env.action_space(a) for a in env.possible_agents]
    if env_id.endswith("continuous"):
        assert all(isinstance(s, gymnasium.spaces.Box) for s in acts)
        assert [s.shape for s in acts] == [(3,), (5,)]
        assert all(np.all(s.low == 0.0) and np.all(s.high == 1.0) for s in acts)
    else:
        assert [s.n for s in acts] == [3, 5]
    obs, _ = env.reset(seed=0)
    assert obs["speaker_0"].shape == (3,) and obs["listener_0"].shape == (11,)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    obs, rewards, terms, truncs, _ = env.step(actions)
    assert rewards["speaker_0"] == rewards["listener_0"]
    if env_id.endswith("continuous"):
        with pytest.raises(ValueError, match="shape"):
            env.step({"speaker_0": np.zeros(5, np.float32), "listener_0": np.zeros(5, np.float32)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(parallel_env(env_id, time_limit=3), num_cycles=8)
    unexpected = [str(w.message) for w in caught if not str(w.message).startswith(_HETERO_WARNINGS)]
    assert unexpected == []


@pytest.mark.parametrize("num_colliders", [2, 4, 12])
def test_contact_forces_match_mpe2_world(num_colliders):
    core = pytest.importorskip("mpe2._mpe_utils.core")
    from jaxmarl_envs.mpe import contact_forces

    rng = np.random.default_rng(num_colliders)
    n, m = num_colliders // 2, num_colliders - num_colliders // 2 + 1  # +1 non-colliding
    sizes = rng.uniform(0.05, 0.3, n + m)
    collide = np.array([True] * (n + m - 1) + [False])
    ref = core.World()
    ref.agents = [core.Agent() for _ in range(n)]
    ref.landmarks = [core.Landmark() for _ in range(m)]
    pos = rng.uniform(-0.15, 0.15, (n + m, 2))
    for e, entity in enumerate(ref.entities):
        entity.size, entity.collide = float(sizes[e]), bool(collide[e])
        entity.movable = True  # so mpe2 returns the force on both sides
        entity.state.p_pos = pos[e]
    forces = ref.apply_environment_force([None] * (n + m))
    expected = np.array([np.zeros(2) if f is None else f for f in forces])
    world = World.build(
        [f"a{i}" for i in range(n)],
        m,
        agent_size=sizes[:n],
        landmark_size=sizes[n:],
        landmark_collide=collide[n:],
    )
    ours = np.asarray(contact_forces(world, jnp.asarray(pos, jnp.float32)))
    assert np.abs(expected).max() > 1.0  # some pairs overlap
    assert np.allclose(ours, expected, rtol=1e-4, atol=1e-3)


def test_custom_generator_fixes_the_layout():
    scenario = SimpleSpread(N=2)
    pos = jnp.array([[0.1, 0.2], [0.3, 0.4], [-0.5, 0.5], [0.5, -0.5]], jnp.float32)
    fixed = scenario.new_state(pos, jnp.ones((4, 3)) * 0.5)
    env = MPE(scenario, generator=lambda key: fixed)
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert np.array_equal(np.asarray(state.p_pos), np.asarray(pos))
    assert np.array_equal(np.asarray(ts.observation.agents_view[0, 2:4]), np.asarray(pos[0]))
    assert int(state.step_count) == 0
