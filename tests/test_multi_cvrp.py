"""Multi-CVRP: hand-built scenarios, invariants (hypothesis), jit/vmap/plain agreement,
determinism, argument errors and rendering."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs.multi_cvrp import FixedGenerator, MultiCVRP, Problem, problem_from_settings

SMALL = "multicvrp-6c-3v"


@functools.cache
def small_env():
    env = jaxmarl_envs.make(SMALL)
    return env, jax.jit(env.reset), jax.jit(env.step)


def tiny_problem(**kw) -> Problem:
    base = dict(
        num_customers=2,
        num_vehicles=2,
        map_max=10.0,
        max_capacity=10,
        max_start_window=5.0,
        early_coef_range=(0.0, 1.0),
        late_coef_range=(0.0, 1.0),
        demand_max=10,
    )
    return Problem(**{**base, **kw})


@functools.cache
def tiny(**kw):
    """`(env, jitted reset, jitted step)` of `tiny_env(**kw)`, compiled once."""
    env = tiny_env(**kw)
    return env, jax.jit(env.reset), jax.jit(env.step)


def tiny_env(**kw) -> MultiCVRP:
    """Depot at (0, 0); customer 1 at (3, 4), demand 6, window [2, 22], early 0.5;
    customer 2 at (0, 1), demand 5, window [4, 24], early 1.0, late 1.0."""
    gen = FixedGenerator(
        tiny_problem(**kw),
        coordinates=[[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]],
        demands=[0, 6, 5],
        window_start=[0.0, 2.0, 4.0],
        early_coef=[0.0, 0.5, 1.0],
        late_coef=[0.0, 0.2, 1.0],
    )
    return MultiCVRP(generator=gen)


# ----------------------------------------------------------------------------- hand-built
def test_hand_built_step_rewards_and_masks():
    env, reset, step = tiny()
    state, ts = reset(jax.random.PRNGKey(0))
    assert np.array_equal(ts.observation.action_mask, [[True, True, True]] * 2)
    # Vehicle 0 to customer 1 (distance 5, in window), vehicle 1 to customer 2 (distance 1,
    # early by 3 at coefficient 1).
    state, ts = step(state, jnp.array([1, 2]))
    assert np.allclose(state.distances, [5.0, 1.0])
    assert np.allclose(state.time_penalties, [0.0, 3.0])
    assert np.allclose(ts.reward, [-(5.0 + 1.0 + 3.0)] * 2)
    assert np.array_equal(state.capacities, [4, 5])
    assert np.array_equal(state.demands, [0, 0, 0])
    # Nothing left to serve: only the depot is legal.
    assert np.array_equal(ts.observation.action_mask, [[True, False, False]] * 2)
    assert not bool(ts.last())
    state, ts = step(state, jnp.array([0, 0]))
    assert np.allclose(ts.reward, [-(5.0 + 1.0)] * 2)
    assert bool(ts.last()) and np.all(ts.terminated) and np.all(ts.discount == 0)
    assert np.array_equal(state.capacities, [10, 10])


def test_conflicts_masked_choices_and_capacity():
    env, reset, step = tiny(max_capacity=6, demand_max=6)
    state, _ = reset(jax.random.PRNGKey(0))
    # Both pick customer 1: vehicle 0 (lower index) goes, vehicle 1 goes to the depot.
    s1, ts = step(state, jnp.array([1, 1]))
    assert np.array_equal(s1.positions, [1, 0])
    assert np.allclose(ts.reward, [-5.0] * 2)
    # Vehicle 0 now has capacity 0: customer 2 (demand 5) is masked for it and picking it
    # anyway sends it to the depot.
    assert np.array_equal(np.asarray(ts.observation.action_mask)[0], [True, False, False])
    s2, _ = step(s1, jnp.array([2, 0]))
    assert np.array_equal(s2.positions, [0, 0])
    assert np.array_equal(s2.demands, [0, 0, 5])


def test_step_limit_gives_worst_case_penalty_and_terminates():
    env, reset, step = tiny()
    state, _ = reset(jax.random.PRNGKey(0))
    assert env.time_limit == 4
    for t in range(4):
        state, ts = step(state, jnp.array([0, 0]))  # idle at the depot
        assert bool(ts.last()) == (t == 3)
    # Both customers still wait at the end: twice their depot distances (5 and 1), then
    # their penalties at the mean time (0) plus that distance (12): late by 12 - 22 < 0 for
    # customer 1 (none) and 12 - 24 for customer 2 (none); on time -> reward -12.
    assert np.allclose(ts.reward, [-12.0] * 2)
    assert np.all(ts.terminated) and not np.any(ts.truncated)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.integers(0, 6), min_size=3 * 12, max_size=3 * 12),
)
def test_invariants_random_play(seed, choices):
    env, reset, step = small_env()
    p = env.problem
    state, ts = reset(jax.random.PRNGKey(seed))
    spec = env.observation_spec
    total_demand = int(np.sum(state.demands))
    for t in range(12):
        action = jnp.asarray(choices[3 * t : 3 * t + 3], jnp.int32)
        prev = state
        state, ts = step(state, action)
        spec.validate(jax.device_get(ts.observation))
        d, cap, pos = map(np.asarray, (state.demands, state.capacities, state.positions))
        mask = np.asarray(ts.observation.action_mask)
        assert np.all(d <= np.asarray(prev.demands)) and d[0] == 0
        assert np.all((cap >= 0) & (cap <= p.max_capacity))
        assert np.all(cap[pos == 0] == p.max_capacity)
        customers = pos[pos > 0]
        assert len(set(customers.tolist())) == len(customers)  # one vehicle per customer
        assert np.all(d[customers] == 0)
        assert np.all(mask[:, 0])
        assert np.array_equal(mask[:, 1:], (cap[:, None] >= d[None, 1:]) & (d[None, 1:] > 0))
        assert np.all(np.asarray(ts.reward) <= 1e-6)
        assert np.all(np.asarray(state.distances) >= np.asarray(prev.distances))
        assert np.allclose(state.local_times, state.distances)
        served = total_demand - int(np.sum(d))
        assert served >= 0
        if bool(ts.last()):
            assert np.all(ts.terminated) and np.all(ts.discount == 0)
            assert int(state.step_count) == env.time_limit or (np.sum(d) == 0 and np.all(pos == 0))
            break
        assert int(state.step_count) < env.time_limit


def test_jit_vmap_plain_agree():
    env = jaxmarl_envs.make(SMALL)
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    actions = jax.random.randint(jax.random.PRNGKey(5), (6, 3, 3), 0, 7)
    vstate, vts = jax.jit(jax.vmap(env.reset))(keys)
    vstep = jax.jit(jax.vmap(env.step))
    state, _ = env.reset(keys[1])
    jstep = jax.jit(env.step)
    jstate = state
    for t in range(3):
        vstate, vts = vstep(vstate, actions[t])
        jstate, jts = jstep(jstate, actions[t, 1])
        if t == 0:  # op by op once (slow), compiled and vmapped throughout
            state, ts = env.step(state, actions[t, 1])
        else:
            state, ts = jstate, jts
        for a, b, c in zip(
            jax.tree_util.tree_leaves((state, ts)),
            jax.tree_util.tree_leaves((jstate, jts)),
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[1], (vstate, vts))),
            strict=True,
        ):
            assert np.allclose(a, b, atol=1e-6) and np.allclose(a, c, atol=1e-6)


def test_deterministic_and_key_dependent():
    env, reset, step = small_env()
    a, _ = reset(jax.random.PRNGKey(1))
    b, _ = reset(jax.random.PRNGKey(1))
    c, _ = reset(jax.random.PRNGKey(2))
    assert all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )
    assert not np.array_equal(a.coordinates, c.coordinates)


def test_registry_scenarios_match_published_settings():
    ids = jaxmarl_envs.list_envs("multi_cvrp")
    assert "MultiCVRP-v0" in ids and "multicvrp-150c-5v" in ids
    env = jaxmarl_envs.make("MultiCVRP-v0")
    assert (env.num_customers, env.num_agents, env.time_limit) == (20, 2, 40)
    assert env.problem == problem_from_settings(20, 2)
    assert jaxmarl_envs.make("multicvrp-50c-4v").problem.demand_max == 20
    assert jaxmarl_envs.make("multicvrp-6c-2v", time_limit=5).time_limit == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_customers=7), "no published scenario for num_customers=7"),
        (dict(num_customers=20, num_vehicles=5), "choose num_vehicles in"),
        (dict(num_vehicles=0), "num_vehicles must be a positive integer"),
        (dict(map_max=5.0), "missing"),
        (dict(time_limit=0), "time_limit must be a positive integer"),
        (dict(generator="x"), "generator must be a multi_cvrp Generator"),
        (
            dict(
                num_customers=3,
                map_max=1.0,
                max_capacity=5,
                max_start_window=1.0,
                early_coef_range=(0.0, 1.0),
                late_coef_range=(0.0, 1.0),
                demand_max=6,
            ),
            "demand_max=6 exceeds max_capacity=5",
        ),
        (
            dict(
                num_customers=3,
                map_max=-1.0,
                max_capacity=5,
                max_start_window=1.0,
                early_coef_range=(0.0, 1.0),
                late_coef_range=(0.0, 1.0),
                demand_max=2,
            ),
            "map_max must be a positive finite number",
        ),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiCVRP(**kwargs)


def test_fixed_generator_checks_its_arrays():
    with pytest.raises(ValueError, match="coordinates has shape"):
        FixedGenerator(tiny_problem(), [[0, 0]], [0, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="0 at the depot"):
        FixedGenerator(tiny_problem(), np.zeros((3, 2)), [1, 1, 1], [0, 0, 0], [0] * 3, [0] * 3)


def test_custom_problem_of_any_size():
    env = MultiCVRP(
        num_customers=9,
        num_vehicles=4,
        map_max=5.0,
        max_capacity=30,
        max_start_window=8.0,
        early_coef_range=(0.0, 0.1),
        late_coef_range=(0.0, 0.5),
        demand_max=7,
    )
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert ts.observation.agents_view.shape == (4, 4 * 4 + 7 * 10)
    assert np.all(np.asarray(state.coordinates) <= 5.0)
    env.observation_spec.validate(jax.device_get(ts.observation))


def test_render_and_gif(tmp_path):
    import imageio.v2 as imageio

    env = tiny_env()
    state, _ = env.reset(jax.random.PRNGKey(0))
    states = [state]
    for action in ([1, 2], [0, 0]):
        state, _ = env.step(state, jnp.array(action))
        states.append(state)
    frame = env.render(states[1])
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert not np.array_equal(frame, env.render(states[0]))  # the routes appear
    path = env.animate(states, str(tmp_path / "cvrp.gif"))
    assert len(imageio.mimread(path)) == len(states)
    env.close()
