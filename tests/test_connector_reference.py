"""Differential tests: our Connector against Jumanji 1.1.2's `Connector` (Connector-v3).

Both sides run the same episodes in lockstep: our rollout draws random legal actions (and,
now and then, an arbitrary possibly illegal one) and records them with the reset keys; the
reference replays them. Boards, masks, rewards, discounts, step types and extras must be
equal, across episode ends (the next episode starts from the same key on both sides and the
initial boards must agree too). Other tests start both sides from one state translated
from Jumanji's (mid-episode boards reached by Jumanji itself) and check every reward type.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs.connector import Connector, make_state
from jaxmarl_envs.connector import constants as C
from jaxmarl_envs.rollout import random_action
from jaxmarl_envs.types import StepType

jumanji = pytest.importorskip("jumanji")
from jumanji.environments.routing.connector import Connector as JConnector  # noqa: E402
from jumanji.environments.routing.connector import reward as jreward  # noqa: E402
from jumanji.environments.routing.connector import types as jtypes  # noqa: E402
from jumanji.environments.routing.connector.generator import (  # noqa: E402
    RandomWalkGenerator as JRandomWalkGenerator,
)

pytestmark = pytest.mark.reference

ARBITRARY_P = 0.05
_REWARDS = {
    "dense": jreward.DenseRewardFn,
    "shared_dense": jreward.SharedDenseRewardFn,
    "sparse": jreward.SparseRewardFn,
    "shared_sparse": jreward.SharedSparseRewardFn,
}


# ----------------------------------------------------------------------------- translation
def to_jumanji(state) -> jtypes.State:
    n = state.positions.shape[0]
    agents = jtypes.Agent(
        id=jnp.arange(n), start=state.starts, target=state.targets, position=state.positions
    )
    return jtypes.State(
        grid=state.grid,
        step_count=state.step_count,
        agents=agents,
        key=state.key,
        action_mask=state.action_mask,
    )


def from_jumanji(jstate: jtypes.State):
    a = jstate.agents
    return make_state(jstate.grid, a.start, a.target, a.position, jstate.key, jstate.step_count)


def make_pair(size: int, agents: int, time_limit: int, reward_type: str = "dense"):
    ours = Connector(size, agents, time_limit=time_limit, reward_type=reward_type)
    ref = JConnector(
        generator=JRandomWalkGenerator(size, agents),
        reward_fn=_REWARDS[reward_type](),
        time_limit=time_limit,
    )
    return ours, ref


# ----------------------------------------------------------------------------- rollouts
def sample_action(key, mask):
    k_legal, k_flip, k_any = jax.random.split(key, 3)
    action = random_action(k_legal, mask)
    flip = jax.random.uniform(k_flip, action.shape) < ARBITRARY_P
    arbitrary = jax.random.randint(k_any, action.shape, 0, C.NUM_ACTIONS)
    return jnp.where(flip, arbitrary, action).astype(jnp.int32)


def record(ts):
    obs = ts.observation
    return {
        "grid": obs.grid,
        "action_mask": obs.action_mask,
        "step_count": obs.step_count,
        "reward": ts.reward,
        "discount": ts.discount,
        "step_type": jnp.asarray(ts.step_type, jnp.int32),
        **{k: ts.extras[k] for k in ("num_connections", "ratio_connections", "total_path_length")},
    }


def our_rollout(env, state, ts, key, steps):
    def body(carry, step_key):
        state, ts = carry
        k_act, k_reset = jax.random.split(step_key)
        action = sample_action(k_act, ts.observation.action_mask)
        reset = ts.last()
        new = env.reset(k_reset)
        stepped = env.step(state, action)
        state, ts = jax.tree_util.tree_map(lambda a, b: jnp.where(reset, a, b), new, stepped)
        rec = {
            **record(ts),
            "terminated": ts.terminated,
            "truncated": ts.truncated,
            "agents_view": ts.observation.agents_view,
            "positions": state.positions,
            "targets": state.targets,
        }
        return (state, ts), (rec, action, reset, k_reset)

    _, out = jax.lax.scan(body, (state, ts), jax.random.split(key, steps))
    return out


def ref_replay(ref, jstate, jts, actions, resets, reset_keys):
    def body(carry, xs):
        state, ts = carry
        action, reset, k_reset = xs
        new = ref.reset(k_reset)
        stepped = ref.step(state, action)
        state, ts = jax.tree_util.tree_map(lambda a, b: jnp.where(reset, a, b), new, stepped)
        return (state, ts), record(ts)

    _, out = jax.lax.scan(body, (jstate, jts), (actions, resets, reset_keys))
    return out


def assert_match(env, ours: dict, ref: dict, time_limit: int) -> None:
    ours, ref = jax.device_get(ours), jax.device_get(ref)
    for name in ref:
        if name == "ratio_connections":
            assert np.allclose(ours[name], ref[name], rtol=0, atol=1e-6), name
        else:
            assert np.array_equal(ours[name], np.asarray(ref[name]).astype(ours[name].dtype)), name
    # Termination/truncation flags agree with the discounts and step types.
    last = ours["step_type"] == StepType.LAST
    assert np.array_equal(ours["discount"] == 0.0, ours["terminated"])
    assert np.array_equal(last, (ours["terminated"] | ours["truncated"]).all(-1))
    assert not np.any(ours["truncated"] & ~last[..., None])
    assert np.array_equal(
        ours["truncated"].any(-1),
        last & (ours["step_count"] >= time_limit) & ~ours["terminated"].all(-1),
    )
    # The per-agent view agrees with the board.
    g, n = env.grid_size, env.num_agents
    view = ours["agents_view"].reshape(*ours["grid"].shape[:-2], n, 3, g * g)
    grid = ours["grid"].reshape(*ours["grid"].shape[:-2], 1, g * g)
    ids = np.arange(n).reshape(n, 1)
    assert np.array_equal(view[..., 0, :] == 1, grid == C.POSITION + 3 * ids)
    assert np.array_equal(view[..., 1, :] == 1, grid == C.TARGET + 3 * ids)
    own = (grid == C.POSITION + 3 * ids) | (grid == C.TARGET + 3 * ids)
    assert np.array_equal(view[..., 2, :] == 1, (grid != 0) & ~own)


@functools.cache
def lockstep(size: int, agents: int, time_limit: int, steps: int):
    """Jitted `run(keys)`: per stream, both sides reset from one key (initial records
    compared), Jumanji then takes 0 to 3 random steps and its state is translated into ours
    (so mid-episode boards reached by Jumanji itself are covered), then the lockstep."""
    env, ref = make_pair(size, agents, time_limit)

    def one(key):
        k_reset, k_walk, k_len, k_run = jax.random.split(key, 4)
        state, ts = env.reset(k_reset)
        jstate, jts = ref.reset(k_reset)
        start = (record(ts), record(jts))
        walk_len = jax.random.randint(k_len, (), 0, 4)

        def walk(carry, xs):
            s, t = carry
            i, k = xs
            s2, t2 = ref.step(s, random_action(k, s.action_mask))
            go = (i < walk_len) & ~t.last()
            return jax.tree_util.tree_map(lambda a, b: jnp.where(go, a, b), (s2, t2), (s, t)), None

        (jstate, jts), _ = jax.lax.scan(
            walk, (jstate, jts), (jnp.arange(3), jax.random.split(k_walk, 3))
        )
        state = from_jumanji(jstate)
        ts = ts.replace(
            observation=env._observe(state), step_type=jnp.asarray(jts.step_type, jnp.int8)
        )
        rec, actions, resets, keys = our_rollout(env, state, ts, k_run, steps)
        jrec = ref_replay(ref, jstate, jts, actions, resets, keys)
        return start, rec, jrec, resets, (state.action_mask, jstate.action_mask)

    return env, jax.jit(jax.vmap(one))


def run_lockstep(size, agents, time_limit, batch, steps, seed):
    env, run = lockstep(size, agents, time_limit, steps)
    (start, jstart), ours, ref, resets, masks = run(
        jax.random.split(jax.random.PRNGKey(seed), batch)
    )
    for name in jstart:
        assert np.allclose(np.asarray(start[name]), np.asarray(jstart[name])), name
    assert np.array_equal(np.asarray(masks[0]), np.asarray(masks[1]))  # translated state
    assert_match(env, ours, ref, time_limit)
    return np.asarray(resets), ours


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    "size,agents",
    [
        (5, 3),
        (10, 10),
        pytest.param(7, 5, marks=pytest.mark.slow),
        pytest.param(15, 23, marks=pytest.mark.slow),
    ],
)
def test_initial_states_match_jumanji(size, agents):
    """Same key, same board: our generator reproduces Jumanji's RandomWalkGenerator."""
    env, ref = make_pair(size, agents, 50)
    keys = jax.random.split(jax.random.PRNGKey(size), 64)
    ours = jax.jit(jax.vmap(env.reset))(keys)[0]
    theirs = jax.jit(jax.vmap(ref.reset))(keys)[0]
    assert np.array_equal(np.asarray(ours.grid), np.asarray(theirs.grid))
    assert np.array_equal(np.asarray(ours.starts), np.asarray(theirs.agents.start))
    assert np.array_equal(np.asarray(ours.targets), np.asarray(theirs.agents.target))
    assert np.array_equal(np.asarray(ours.positions), np.asarray(theirs.agents.position))
    assert np.array_equal(np.asarray(ours.action_mask), np.asarray(theirs.action_mask))


@pytest.mark.parametrize("size,agents,time_limit", [(5, 3, 15), (10, 10, 20)])
def test_lockstep_short(size, agents, time_limit):
    resets, ours = run_lockstep(size, agents, time_limit, batch=32, steps=80, seed=0)
    assert resets.sum() >= 32  # every stream crossed at least one episode end
    assert np.any(ours["terminated"] & ~ours["terminated"].all(-1, keepdims=True))  # mid-episode
    assert np.any(np.asarray(ours["reward"]) > 0.5)  # some agent connected
    assert np.any(np.asarray(ours["truncated"]))  # some episode reached the time limit


@pytest.mark.slow
@pytest.mark.parametrize(
    "size,agents,time_limit",
    [(5, 3, 100), (7, 5, 100), (10, 5, 100), (10, 10, 50), (15, 10, 100), (15, 23, 100)],
)
def test_lockstep_sweep(size, agents, time_limit):
    for seed in range(3):
        resets, _ = run_lockstep(size, agents, time_limit, batch=256, steps=200, seed=seed)
        assert resets.any()


@pytest.mark.parametrize("reward_type", list(_REWARDS))
def test_reward_types_match(reward_type):
    """Each reward type against Jumanji's reward function on the transitions of our rollout
    (the dynamics are pinned by the lockstep tests; this needs no second environment)."""
    env = Connector(5, 3, time_limit=20, reward_type=reward_type)
    fn = _REWARDS[reward_type]()

    def one(key):
        k_reset, k_run = jax.random.split(key)
        state, ts = env.reset(k_reset)

        def body(carry, k):
            s, _ = carry
            s2, t2 = env.step(s, random_action(k, s.action_mask))
            return (s2, t2), (to_jumanji(s), to_jumanji(s2), t2.reward)

        _, (before, after, reward) = jax.lax.scan(body, (state, ts), jax.random.split(k_run, 20))
        expected = jax.vmap(lambda a, b: fn(a, None, b))(before, after)
        return reward, expected

    reward, expected = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(2), 32))
    assert np.allclose(np.asarray(reward), np.asarray(expected), rtol=0, atol=1e-6)
    assert np.any(np.asarray(expected) > 0.5)


def test_state_translation_roundtrip():
    env, ref = make_pair(5, 3, 50)
    jstate, _ = jax.jit(ref.reset)(jax.random.PRNGKey(3))
    back = to_jumanji(from_jumanji(jstate))
    assert np.array_equal(np.asarray(back.grid), np.asarray(jstate.grid))
    assert np.array_equal(np.asarray(back.action_mask), np.asarray(jstate.action_mask))
    assert np.array_equal(np.asarray(back.agents.target), np.asarray(jstate.agents.target))
