"""Robot Warehouse: registry, validation, hand-drawn collision scenarios, properties, render."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs import specs
from jaxmarl_envs.rware import (
    FixedGenerator,
    RobotWarehouse,
    layout_from_params,
    layout_from_str,
    make_state,
)
from jaxmarl_envs.rware import constants as C
from jaxmarl_envs.wrappers import AutoReset

N_, F_, L_, R_, T_ = C.NOOP, C.FORWARD, C.LEFT, C.RIGHT, C.TOGGLE_LOAD
UP, DOWN, LEFT, RIGHT = C.UP, C.DOWN, C.LEFT_DIR, C.RIGHT_DIR


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny4():
    env = jaxmarl_envs.make("rware-tiny-4ag")
    return env, jax.jit(env.reset), jax.jit(env.step)


_SCENARIO_ENVS: dict = {}


def scenario_env(num_agents: int, reward_type: str = "individual"):
    """A tiny-layout env (11 x 10 grid) for hand-drawn states, with a jitted step."""
    key = (num_agents, reward_type)
    if key not in _SCENARIO_ENVS:
        env = RobotWarehouse(num_agents=num_agents, request_queue_size=2, reward_type=reward_type)
        _SCENARIO_ENVS[key] = (env, jax.jit(env.step))
    return _SCENARIO_ENVS[key]


def shelf_at(env, row, col) -> int:
    matches = np.nonzero((env.layout.shelf_pos == (row, col)).all(1))[0]
    assert matches.size == 1
    return int(matches[0])


def hand_state(env, agents, queue=(0, 1), shelf_moves=()):
    """A State from `(row, col, dir, carried_shelf_or_None)` per agent. A carried shelf is
    moved to its agent's cell; `shelf_moves` lists further `(shelf, row, col)` moves."""
    shelf_pos = env.layout.shelf_pos.copy()
    load = []
    for row, col, _, shelf in agents:
        load.append(-1 if shelf is None else shelf)
        if shelf is not None:
            shelf_pos[shelf] = (row, col)
    for shelf, row, col in shelf_moves:
        shelf_pos[shelf] = (row, col)
    return make_state(
        env.layout,
        np.array([[a[0], a[1]] for a in agents]),
        np.array([a[2] for a in agents]),
        np.array(queue),
        jax.random.PRNGKey(0),
        shelf_pos=shelf_pos,
        agent_load=np.array(load),
    )


# Hand-drawn collision scenarios on the tiny layout (row 0 is a corridor; (1, 1) holds a
# shelf). Each: agents (row, col, dir, carried shelf), actions, expected cells after a step.
# Expected outcomes follow the original's graph rules and are cross-checked against it in
# tests/test_rware_reference.py::test_hand_drawn_scenarios_match_reference.
SCENARIOS = {
    "chain_into_free_cell": (
        [(0, 1, RIGHT, None), (0, 2, RIGHT, None), (0, 3, RIGHT, None)],
        [F_, F_, F_],
        [(0, 2), (0, 3), (0, 4)],
    ),
    "chain_blocked_by_stationary_head": (
        [(0, 1, RIGHT, None), (0, 2, RIGHT, None), (0, 3, RIGHT, None)],
        [F_, F_, N_],
        [(0, 1), (0, 2), (0, 3)],
    ),
    "chain_blocked_by_turning_head": (
        [(0, 1, RIGHT, None), (0, 2, RIGHT, None)],
        [F_, L_],
        [(0, 1), (0, 2)],
    ),
    "swap_moves_nobody": (
        [(0, 1, RIGHT, None), (0, 2, LEFT, None)],
        [F_, F_],
        [(0, 1), (0, 2)],
    ),
    "swap_blocks_its_queue": (
        [(0, 0, RIGHT, None), (0, 1, RIGHT, None), (0, 2, LEFT, None)],
        [F_, F_, F_],
        [(0, 0), (0, 1), (0, 2)],
    ),
    "four_cycle_rotates": (
        [(0, 1, RIGHT, None), (0, 2, DOWN, None), (1, 2, LEFT, None), (1, 1, UP, None)],
        [F_, F_, F_, F_],
        [(0, 2), (1, 2), (1, 1), (0, 1)],
    ),
    "four_cycle_tail_waits": (
        [
            (0, 1, RIGHT, None),
            (0, 2, DOWN, None),
            (1, 2, LEFT, None),
            (1, 1, UP, None),
            (0, 0, RIGHT, None),
        ],
        [F_, F_, F_, F_, F_],
        [(0, 2), (1, 2), (1, 1), (0, 1), (0, 0)],
    ),
    "equal_rivals_first_agent_wins": (
        [(0, 1, RIGHT, None), (0, 3, LEFT, None)],
        [F_, F_],
        [(0, 2), (0, 3)],
    ),
    "longer_chain_wins": (
        [(0, 1, RIGHT, None), (0, 3, LEFT, None), (0, 4, LEFT, None)],
        [F_, F_, F_],
        [(0, 1), (0, 2), (0, 3)],
    ),
    "border_move_is_noop": (
        [(0, 0, UP, None), (0, 1, LEFT, None)],
        [F_, F_],
        [(0, 0), (0, 1)],
    ),
    "unloaded_goes_under_shelf": (
        [(0, 1, DOWN, None)],
        [F_],
        [(1, 1)],
    ),
    "loaded_blocked_by_standing_shelf": (
        [(0, 1, DOWN, (1, 7))],  # carries the shelf from (1, 7); (1, 1) holds one
        [F_],
        [(0, 1)],
    ),
    "loaded_follows_loaded": (
        [(0, 1, RIGHT, (1, 7)), (0, 2, RIGHT, (1, 8))],
        [F_, F_],
        [(0, 2), (0, 3)],
    ),
    "loaded_into_waiting_loaded": (
        [(0, 1, RIGHT, (1, 7)), (0, 2, RIGHT, (1, 8))],
        [F_, N_],
        [(0, 1), (0, 2)],
    ),
}


def build_scenario(name):
    agents, actions, expected = SCENARIOS[name]
    env, step = scenario_env(len(agents))
    resolved = []
    for row, col, d, home in agents:  # home: the carried shelf's initial cell, or None
        resolved.append((row, col, d, None if home is None else shelf_at(env, *home)))
    return env, step, hand_state(env, resolved), np.array(actions), expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_hand_drawn_collision_scenarios(name):
    env, step, state, actions, expected = build_scenario(name)
    new_state, ts = step(state, jnp.asarray(actions, jnp.int32))
    assert np.array_equal(np.asarray(new_state.agent_pos), np.array(expected))
    # collisions never end the episode
    assert not bool(ts.last()) and not np.any(np.asarray(ts.terminated))
    _assert_consistent(env, new_state)


def test_pick_up_carry_and_put_down():
    env, step = scenario_env(1)
    shelf = shelf_at(env, 1, 1)
    state = hand_state(env, [(1, 1, UP, None)])
    state, _ = step(state, jnp.array([T_]))
    assert int(state.agent_load[0]) == shelf
    state, _ = step(state, jnp.array([F_]))  # up onto the corridor, shelf carried along
    assert np.array_equal(np.asarray(state.shelf_pos[shelf]), [0, 1])
    state, _ = step(state, jnp.array([T_]))  # no putting down on a corridor
    assert int(state.agent_load[0]) == shelf
    state, _ = step(state, jnp.array([R_]))
    state, _ = step(state, jnp.array([R_]))  # now facing down
    state, _ = step(state, jnp.array([F_]))  # back into its (now empty) cell
    state, _ = step(state, jnp.array([T_]))
    assert int(state.agent_load[0]) == -1
    assert int(state.shelf_grid[1, 1]) == shelf + 1
    _assert_consistent(env, state)


@pytest.mark.parametrize("reward_type,expected", [("individual", 1.0), ("global", 1.0)])
def test_delivery_rewards_and_refill(reward_type, expected):
    env, step = scenario_env(2, reward_type)
    shelf = 0
    goal = tuple(env.layout.goals[0])
    state = hand_state(env, [(goal[0] - 1, goal[1], DOWN, shelf), (0, 0, UP, None)], queue=(0, 5))
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    states = jax.vmap(lambda k: state.replace(key=k))(keys)
    new, ts = jax.vmap(step)(states, jnp.tile(jnp.array([F_, N_]), (64, 1)))
    reward = np.asarray(ts.reward)
    assert np.all(reward[:, 0] == expected)
    assert np.all(reward[:, 1] == (expected if reward_type == "global" else 0.0))
    queue = np.asarray(new.request_queue)
    assert np.all(queue[:, 1] == 5)  # the untouched slot stays
    assert np.all((queue[:, 0] != 0) & (queue[:, 0] != 5))  # a previously unrequested shelf
    assert len(set(queue[:, 0].tolist())) > 10  # and drawn at random


def test_two_stage_rewards():
    env, step = scenario_env(1, "two_stage")
    goal = tuple(env.layout.goals[0])
    state = hand_state(env, [(goal[0], goal[1] - 1, RIGHT, 0)], queue=(0, 5))
    state, ts = step(state, jnp.array([F_]))
    assert float(ts.reward[0]) == 0.5 and bool(state.has_delivered[0])
    # teleport back to the shelf's empty home cell and put it down: the second half
    state = state.replace(
        agent_pos=jnp.array([[1, 1]]),
        shelf_pos=state.shelf_pos.at[0].set(jnp.array([1, 1])),
        agent_grid=jnp.zeros_like(state.agent_grid).at[1, 1].set(1),
        shelf_grid=state.shelf_grid.at[goal].set(0).at[1, 1].set(1),
    )
    state, ts = step(state, jnp.array([T_]))
    assert float(ts.reward[0]) == 0.5 and not bool(state.has_delivered[0])


# ----------------------------------------------------------------------------- invariants
def _assert_consistent(env, state) -> None:
    """Grids, positions, loads and queue agree; no two agents share a cell."""
    pos = np.asarray(state.agent_pos)
    n = env.num_agents
    assert len({tuple(p) for p in pos}) == n
    agent_grid = np.asarray(state.agent_grid)
    assert np.array_equal(agent_grid[pos[:, 0], pos[:, 1]], np.arange(1, n + 1))
    assert np.count_nonzero(agent_grid) == n
    shelf_pos = np.asarray(state.shelf_pos)
    shelf_grid = np.asarray(state.shelf_grid)
    assert len({tuple(p) for p in shelf_pos}) == env.num_shelves  # one shelf per cell
    assert np.array_equal(
        shelf_grid[shelf_pos[:, 0], shelf_pos[:, 1]], np.arange(1, env.num_shelves + 1)
    )
    assert np.count_nonzero(shelf_grid) == env.num_shelves
    load = np.asarray(state.agent_load)
    carried = load[load >= 0]
    assert len(set(carried.tolist())) == carried.size
    assert np.array_equal(shelf_pos[carried], pos[load >= 0])  # carried shelf moves along
    queue = np.asarray(state.request_queue)
    assert queue.shape == (env.request_queue_size,) and len(set(queue.tolist())) == queue.size
    assert np.all((queue >= 0) & (queue < env.num_shelves))


_ROLLOUTS: dict = {}


def _rollout_fn(env_id, steps, **kwargs):
    key = (env_id, steps, tuple(sorted(kwargs.items())))
    if key not in _ROLLOUTS:
        env = jaxmarl_envs.make(env_id, **kwargs)

        def rollout(key, actions):
            state, _ = env.reset(key)

            def body(s, a):
                s, ts = env.step(s, a)
                return s, (s, ts)

            return jax.lax.scan(body, state, actions)[1]

        _ROLLOUTS[key] = (env, jax.jit(rollout))
    return _ROLLOUTS[key]


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=40, max_size=40),
    reward_type=st.sampled_from(C.REWARD_TYPES),
)
def test_properties_hold_along_random_rollouts(seed, actions, reward_type):
    env, rollout = _rollout_fn("rware-tiny-6ag", 40, reward_type=reward_type)
    states, ts = rollout(jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    for t in range(0, 40, 4):
        _assert_consistent(env, jax.tree_util.tree_map(lambda x, t=t: x[t], states))
    reward = np.asarray(ts.reward)
    bound = env.layout.num_goals if reward_type == "global" else 1.0
    assert np.all((reward >= 0) & (reward <= bound))
    assert np.all(np.asarray(ts.discount) == 1.0)
    assert not np.any(np.asarray(ts.terminated))


@settings(max_examples=5, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=40, max_size=40),
)
def test_global_state_is_flags_stored_exactly_in_uint8(seed, actions):
    env, rollout = _rollout_fn("rware-tiny-6ag", 40)
    states, _ = rollout(jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    if "global_state" not in _ROLLOUTS:
        _ROLLOUTS["global_state"] = jax.jit(jax.vmap(env.global_state))
    gs = np.asarray(_ROLLOUTS["global_state"](states))
    spec = env.global_state_spec()
    assert gs.shape == (40, *spec.shape)
    assert set(np.unique(gs).tolist()) <= {0.0, 1.0}
    assert "global_state" in env.integer_valued
    assert specs.exact_storage_dtype(spec, True) == np.uint8
    # One channel per cell is the agent flag: exactly num_agents set at every step.
    assert np.all(gs.reshape(40, -1, 10)[:, :, 0].sum(-1) == env.num_agents)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), warmup=st.lists(st.integers(0, 4), min_size=30, max_size=30))
def test_masked_actions_are_noops(seed, warmup):
    env, rollout = _rollout_fn("rware-tiny-6ag", 30)
    acts = jnp.tile(jnp.asarray(warmup, jnp.int32)[:, None], (1, 6)) ^ jnp.arange(6) % 5
    acts = jnp.clip(acts, 0, 4)
    states, ts = rollout(jax.random.PRNGKey(seed), acts)
    step = _masked_step(env)
    for t in range(0, 30, 5):
        state = jax.tree_util.tree_map(lambda x, t=t: x[t], states)
        mask = np.asarray(ts.observation.action_mask[t])
        assert mask[:, [N_, L_, R_]].all()
        for agent, action in zip(*np.nonzero(~mask), strict=True):
            a = np.zeros(env.num_agents, np.int32)
            noop_state, noop_ts = step(state, jnp.asarray(a))
            a[agent] = action
            new_state, new_ts = step(state, jnp.asarray(a))
            same = jax.tree_util.tree_map(
                lambda x, y: bool(np.array_equal(x, y)), (new_state, new_ts), (noop_state, noop_ts)
            )
            assert all(jax.tree_util.tree_leaves(same))


_MASKED: dict = {}


def _masked_step(env):
    if id(env) not in _MASKED:
        _MASKED[id(env)] = jax.jit(env.step)
    return _MASKED[id(env)]


def test_mask_marks_impossible_moves():
    env, step = scenario_env(2)
    shelf = shelf_at(env, 1, 7)
    state = hand_state(env, [(0, 0, UP, None), (0, 1, DOWN, shelf)])
    mask = np.asarray(env._action_mask(state))
    assert not mask[0, F_] and not mask[0, T_]  # facing the border; nothing underneath
    assert not mask[1, F_] and not mask[1, T_]  # shelf ahead while loaded; on a corridor
    state = hand_state(env, [(1, 1, UP, None), (0, 1, DOWN, None)])
    mask = np.asarray(env._action_mask(state))
    assert mask[0, F_] and mask[0, T_] and mask[1, F_] and not mask[1, T_]


# ----------------------------------------------------------------------------- API, jit/vmap
def test_registry_ids_and_defaults():
    ids = jaxmarl_envs.list_envs("rware")
    assert "RobotWarehouse-v0" in ids and len(ids) == 1 + 4 * 3 * 19
    for name in ("rware-tiny-2ag", "rware-small-4ag-easy", "rware-medium-19ag-hard"):
        assert name in ids
    env = jaxmarl_envs.make("RobotWarehouse-v0")
    assert env.num_agents == 4 and env.grid_shape == (11, 10) and env.time_limit == 500
    assert env.observation_spec.agents_view.shape == (4, 71)
    assert env.action_spec.shape == (4,) and env.num_actions == 5
    spec = jaxmarl_envs.spec("rware-large-7ag-hard").kwargs
    assert spec["request_queue_size"] == 3 and spec["shelf_rows"] == 3
    assert jaxmarl_envs.spec("rware-small-7ag-easy").kwargs["request_queue_size"] == 14
    env = jaxmarl_envs.make("rware-medium-3ag")
    assert env.grid_shape == (20, 16) and env.request_queue_size == 3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_agents": 200}, "exceeds"),
        ({"num_agents": 0}, "num_agents"),
        ({"request_queue_size": 100}, "request_queue_size"),
        ({"request_queue_size": 0}, "request_queue_size"),
        ({"reward_type": "team"}, "reward_type"),
        ({"observation_type": "image"}, "observation_type"),
        ({"shelf_columns": 2}, "odd"),
        ({"shelf_rows": 0}, "shelf_rows"),
        ({"sensor_range": 0}, "sensor_range"),
        ({"time_limit": 0}, "time_limit"),
        ({"image_layers": ("shelves", "walls")}, "image_layers"),
        ({"layout": "x..\nxx"}, "rectangular"),
        ({"layout": "x..\nx.."}, "goal"),
        ({"generator": object()}, "generator"),
    ],
)
def test_invalid_scenarios_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RobotWarehouse(**kwargs)


def test_invalid_actions_raise(tiny4):
    env = tiny4[0]
    with pytest.raises(ValueError):
        env.validate_action(np.zeros(3, np.int32))
    with pytest.raises(ValueError):
        env.validate_action(np.zeros(4, np.float32))
    with pytest.raises(ValueError):
        env.validate_action(np.array([0, 1, 5, 0], np.int32))
    with pytest.raises(ValueError):
        env.validate_action(np.array([0, -1, 2, 0], np.int32))
    assert env.validate_action(np.array([0, 1, 4, 3], np.int32)).dtype == np.int32


def test_jit_vmap_and_plain_agree(tiny4):
    env, reset, step = tiny4
    actions = jax.random.randint(jax.random.PRNGKey(1), (4, 4), 0, 5)
    vreset, vstep = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
    state, ts = env.reset(jax.random.PRNGKey(7))  # plain (eager) for one step only
    state, ts = env.step(state, actions[0])
    jstate, _ = reset(jax.random.PRNGKey(7))
    vstate, _ = vreset(jax.random.PRNGKey(7)[None])
    for i, a in enumerate(actions):
        jstate, jts = step(jstate, a)
        vstate, vts = vstep(vstate, a[None])
        if i == 0:
            for x, y in zip(
                jax.tree_util.tree_leaves((state, ts)),
                jax.tree_util.tree_leaves((jstate, jts)),
                strict=True,
            ):
                assert np.array_equal(x, y)
    for y, z in zip(
        jax.tree_util.tree_leaves((jstate, jts)),
        jax.tree_util.tree_leaves((vstate, vts)),
        strict=True,
    ):
        assert np.array_equal(y, np.asarray(z)[0])


def test_same_key_same_rollout_different_keys_differ():
    env, rollout = _rollout_fn("rware-tiny-6ag", 40)
    actions = jax.random.randint(jax.random.PRNGKey(2), (40, 6), 0, 5)
    a = rollout(jax.random.PRNGKey(11), actions)
    b = rollout(jax.random.PRNGKey(11), actions)
    assert all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.array_equal, a, b)))
    starts = [np.asarray(rollout(jax.random.PRNGKey(k), actions)[0].agent_pos[0]) for k in range(4)]
    assert len({s.tobytes() for s in starts}) == 4


def test_reset_distribution_and_layout(tiny4):
    env, reset, _ = tiny4
    states, ts = jax.vmap(reset)(jax.random.split(jax.random.PRNGKey(0), 256))
    pos = np.asarray(states.agent_pos)
    cells = pos[..., 0] * 10 + pos[..., 1]
    assert all(len(set(c)) == 4 for c in cells)
    assert len(np.unique(cells)) > 90  # every cell (shelf cells included) is used
    assert set(np.unique(np.asarray(states.agent_dir)).tolist()) == {0, 1, 2, 3}
    queues = np.asarray(states.request_queue)
    assert all(len(set(q)) == 4 for q in queues) and len(np.unique(queues)) == env.num_shelves
    assert np.all(np.asarray(ts.step_type) == 0)
    assert env.num_shelves == 32  # the tiny map: the middle shelf column is the goal queue


def test_truncation_at_time_limit():
    env = RobotWarehouse(time_limit=5)
    step = jax.jit(env.step)
    state, ts = env.reset(jax.random.PRNGKey(0))
    for t in range(5):
        state, ts = step(state, jnp.zeros(4, jnp.int32))
        assert bool(ts.last()) == (t == 4)
    assert np.all(np.asarray(ts.truncated)) and not np.any(np.asarray(ts.terminated))
    assert np.all(np.asarray(ts.discount) == 1.0) and int(ts.observation.step_count) == 5
    auto = AutoReset(env)
    auto_step = jax.jit(auto.step)
    state, ts = auto.reset(jax.random.PRNGKey(0))
    for _ in range(5):
        state, ts = auto_step(state, jnp.zeros(4, jnp.int32))
    assert bool(ts.last()) and int(state.step_count) == 0


def test_grid_observation_and_global_state():
    env = RobotWarehouse(observation_type="grid", image_layers=C.IMAGE_LAYERS, sensor_range=2)
    state, ts = env.reset(jax.random.PRNGKey(0))
    view = np.asarray(ts.observation.agents_view)
    assert view.shape == (4, 7, 5, 5) and env.observation_spec.agents_view.shape == view.shape
    assert np.all(view[:, 2, 2, 2] == 1.0)  # each agent sees itself in the centre
    assert np.all(view[:, 6, 2, 2] == 0.0)  # and its own cell is not accessible
    env.observation_spec.validate(ts.observation)
    g = env.global_state(state, ts.observation)
    assert g.shape == env.global_state_spec().shape and g.dtype == jnp.float32
    assert float(g.reshape(-1, 10)[:, 0].sum()) == 4.0


def test_fixed_generator_and_layout_string():
    layout = layout_from_str(
        """
        x.x.x
        x.x.x
        ..g..
        """
    )
    assert layout.num_shelves == 6 and layout.num_goals == 1
    gen = FixedGenerator(layout, [[0, 1], [2, 0]], [DOWN, RIGHT], [0, 3])
    env = RobotWarehouse(generator=gen)
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert env.num_agents == 2 and ts.observation.agents_view.shape == (2, 71)
    assert np.array_equal(np.asarray(state.agent_pos), [[0, 1], [2, 0]])
    with pytest.raises(ValueError, match="distinct"):
        FixedGenerator(layout, [[0, 1], [0, 1]], [0, 0], [0])
    assert layout_from_params(3, 1, 8).highways.shape == (11, 10)


def test_render_headless(tiny4, tmp_path):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env, step = scenario_env(2)
    state = hand_state(env, [(0, 1, RIGHT, None), (5, 0, UP, None)])
    frame = env.render(state)
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] > frame.shape[1]  # 11 rows x 10 columns
    moved, _ = step(state, jnp.array([F_, N_]))
    frame2 = env.render(moved)
    assert frame2.shape == frame.shape and not np.array_equal(frame, frame2)
    path = env.animate([state, moved], str(tmp_path / "rware.gif"))
    assert os.path.getsize(path) > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"normalised_coordinates": True},
        {"observation_type": "grid", "image_layers": C.IMAGE_LAYERS},
    ],
    ids=["vector", "normalised", "grid"],
)
def test_observations_stay_within_spec_bounds(kwargs):
    from jaxmarl_envs.rollout import random_rollout
    from jaxmarl_envs.wrappers import AutoReset

    env = RobotWarehouse(time_limit=30, **kwargs)
    spec = env.observation_spec.agents_view
    _, _, _, tss = jax.jit(random_rollout, static_argnums=(0, 2))(
        AutoReset(env), jax.random.PRNGKey(4), 60
    )
    views = np.asarray(tss.observation.agents_view)
    assert np.all(views >= spec.minimum) and np.all(views <= spec.maximum)
    # Declared whole numbers are (replay buffers store them in uint8); normalised ones not.
    whole = "agents_view" in env.integer_valued
    assert whole != bool(kwargs.get("normalised_coordinates"))
    if whole:
        assert specs.exact_storage_dtype(spec, True) == np.uint8
        np.testing.assert_array_equal(views.astype(np.uint8).astype(np.float32), views)
    # The bounds are tight where they can be: coordinates reach beyond 1 unless normalised.
    if "observation_type" not in kwargs:
        assert (views[..., :2].max() > 1.0) != bool(kwargs.get("normalised_coordinates"))
