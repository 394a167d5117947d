"""Differential tests: our Cleaner against Jumanji 1.1.2's `Cleaner` (the test oracle).

Both sides run the same episodes in lockstep: our rollout draws random legal actions (and,
now and then, an arbitrary possibly illegal one) and records them with the reset keys; the
reference replays them. Every observation field, mask, reward, extra and episode end must be
equal, across episode ends (the next episode starts from the same key on both sides and the
initial states must agree too). Other tests start both sides from one state translated from
Jumanji's (random partly-cleaned grids, scattered agents), so rare endings (everything clean)
are exercised.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_envs.cleaner import Cleaner, make_state
from jaxmarl_envs.cleaner import constants as C
from jaxmarl_envs.rollout import random_action
from jaxmarl_envs.types import StepType

jumanji = pytest.importorskip("jumanji")
from jumanji.environments.routing.cleaner import Cleaner as JCleaner  # noqa: E402
from jumanji.environments.routing.cleaner import types as jtypes  # noqa: E402
from jumanji.environments.routing.cleaner.generator import (  # noqa: E402
    RandomGenerator as JRandomGenerator,
)

pytestmark = pytest.mark.reference

#: Probability per environment step that one agent takes an arbitrary (maybe illegal) move.
ARBITRARY_P = 0.03


# ----------------------------------------------------------------------------- translation
def to_jumanji(state) -> jtypes.State:
    """Our state as Jumanji's (same grid, cells, mask, step count and key)."""
    return jtypes.State(
        grid=state.grid,
        agents_locations=state.agents_locations,
        action_mask=state.action_mask,
        step_count=state.step_count,
        key=state.key,
    )


def from_jumanji(jstate: jtypes.State):
    """Jumanji's state as ours (the mask is recomputed from the grid)."""
    return make_state(jstate.grid, jstate.agents_locations, jstate.key, jstate.step_count)


def make_pair(rows: int, cols: int, agents: int, time_limit: int | None, penalty: float = 0.5):
    ours = Cleaner(rows, cols, agents, time_limit=time_limit, penalty_per_timestep=penalty)
    ref = JCleaner(
        generator=JRandomGenerator(rows, cols, agents),
        time_limit=time_limit,
        penalty_per_timestep=penalty,
    )
    return ours, ref


# ----------------------------------------------------------------------------- rollouts
def sample_action(key, mask):
    """Random legal actions; with probability ARBITRARY_P one agent moves arbitrarily."""
    k_legal, k_flip, k_agent, k_any = jax.random.split(key, 4)
    action = random_action(k_legal, mask)
    n = mask.shape[0]
    flip = jax.random.uniform(k_flip) < ARBITRARY_P
    agent = jax.random.randint(k_agent, (), 0, n)
    arbitrary = jax.random.randint(k_any, (), 0, C.NUM_ACTIONS)
    return jnp.where(flip & (jnp.arange(n) == agent), arbitrary, action).astype(jnp.int32)


def our_record(env, ts):
    obs = ts.observation
    return {
        "grid": obs.grid,
        "agents_locations": obs.agents_locations,
        "action_mask": obs.action_mask,
        "step_count": obs.step_count,
        "reward": ts.reward,
        "discount": ts.discount,
        "step_type": ts.step_type.astype(jnp.int32),
        "terminated": ts.terminated,
        "truncated": ts.truncated,
        "ratio_dirty_tiles": ts.extras["ratio_dirty_tiles"],
        "num_dirty_tiles": ts.extras["num_dirty_tiles"],
        "agents_view": obs.agents_view,
    }


def ref_record(ts):
    obs = ts.observation
    return {
        "grid": obs.grid,
        "agents_locations": obs.agents_locations,
        "action_mask": obs.action_mask,
        "step_count": obs.step_count,
        "reward": ts.reward,
        "discount": ts.discount,
        "step_type": jnp.asarray(ts.step_type, jnp.int32),
        "ratio_dirty_tiles": ts.extras["ratio_dirty_tiles"],
        "num_dirty_tiles": ts.extras["num_dirty_tiles"],
    }


def our_rollout(env, state, ts, key, steps):
    """Ours from `(state, ts)`: each step either resets (after a LAST, from a fresh key) or
    steps with a sampled action. Returns per-step records, actions, reset flags and keys."""

    def body(carry, step_key):
        state, ts = carry
        k_act, k_reset = jax.random.split(step_key)
        action = sample_action(k_act, ts.observation.action_mask)
        reset = ts.last()
        s_new, ts_new = env.reset(k_reset)
        s_step, ts_step = env.step(state, action)
        state, ts = jax.tree_util.tree_map(
            lambda a, b: jnp.where(reset, a, b), (s_new, ts_new), (s_step, ts_step)
        )
        return (state, ts), (our_record(env, ts), action, reset, k_reset)

    _, out = jax.lax.scan(body, (state, ts), jax.random.split(key, steps))
    return out


def ref_replay(ref, jstate, jts, actions, resets, reset_keys):
    """Jumanji replays the recorded actions and resets."""

    def body(carry, xs):
        state, ts = carry
        action, reset, k_reset = xs
        s_new, ts_new = ref.reset(k_reset)
        s_step, ts_step = ref.step(state, action)
        state, ts = jax.tree_util.tree_map(
            lambda a, b: jnp.where(reset, a, b), (s_new, ts_new), (s_step, ts_step)
        )
        return (state, ts), ref_record(ts)

    _, out = jax.lax.scan(body, (jstate, jts), (actions, resets, reset_keys))
    return out


def assert_match(env, ours: dict, ref: dict, time_limit: int) -> None:
    """Every field equal; the reference's scalar reward is ours for every agent; discounts
    differ only at the time limit (ours truncates with discount 1)."""
    ours = jax.device_get(ours)
    ref = jax.device_get(ref)
    for name in ("grid", "agents_locations", "action_mask", "step_count", "step_type"):
        assert np.array_equal(ours[name], ref[name]), name
    assert np.array_equal(ours["num_dirty_tiles"], ref["num_dirty_tiles"])
    assert np.allclose(ours["ratio_dirty_tiles"], ref["ratio_dirty_tiles"], rtol=0, atol=1e-6)
    assert np.array_equal(
        ours["reward"], np.broadcast_to(ref["reward"][..., None], ours["reward"].shape)
    )
    last = ours["step_type"] == StepType.LAST
    timeout = last & (ours["step_count"] >= time_limit)
    truncated_only = ours["truncated"].all(-1)
    # Truncated exactly at the time limit when the rules did not also terminate the episode.
    assert np.array_equal(truncated_only, timeout & ~ours["terminated"].any(-1))
    assert np.array_equal(ours["terminated"].any(-1), last & ~truncated_only)
    expected_discount = np.where(truncated_only[..., None], 1.0, ref["discount"][..., None])
    assert np.array_equal(
        ours["discount"], np.broadcast_to(expected_discount, ours["discount"].shape)
    )
    # The per-agent view agrees with Jumanji's grid and agent cells.
    n, rows, cols = env.num_agents, env.num_rows, env.num_cols
    view = ours["agents_view"].reshape(*ours["grid"].shape[:-2], n, 4, rows, cols)
    grid = ref["grid"][..., None, :, :]
    assert np.array_equal(
        view[..., 0, :, :], np.broadcast_to(grid == C.DIRTY, view[..., 0, :, :].shape)
    )
    assert np.array_equal(
        view[..., 1, :, :], np.broadcast_to(grid == C.WALL, view[..., 1, :, :].shape)
    )
    loc = ref["agents_locations"]
    own = view[..., 2, :, :]
    r_idx = np.take_along_axis(
        own.reshape(*own.shape[:-2], -1), (loc[..., :1] * cols + loc[..., 1:]), -1
    )
    assert np.all(r_idx == 1.0) and np.all(own.sum((-1, -2)) == 1.0)
    assert np.all(view[..., 3, :, :].sum((-3, -2, -1)) == n * (n - 1))


@functools.cache
def lockstep(rows: int, cols: int, agents: int, time_limit: int, batch: int, steps: int):
    """Jitted `run(key) -> (ours, ref)` records of `batch` lockstep episodes streams."""
    env, ref = make_pair(rows, cols, agents, time_limit)

    def one(key):
        k_reset, k_run = jax.random.split(key)
        state, ts = env.reset(k_reset)
        jstate, jts = ref.reset(k_reset)
        start = (our_record(env, ts), ref_record(jts))
        rec, actions, resets, keys = our_rollout(env, state, ts, k_run, steps)
        jrec = ref_replay(ref, jstate, jts, actions, resets, keys)
        return start, rec, jrec, resets

    return env, jax.jit(jax.vmap(one))


def run_lockstep(rows, cols, agents, time_limit, batch, steps, seed):
    env, run = lockstep(rows, cols, agents, time_limit, batch, steps)
    (start_ours, start_ref), ours, ref, resets = run(
        jax.random.split(jax.random.PRNGKey(seed), batch)
    )
    ours_start = {k: v for k, v in start_ours.items() if k in start_ref or k == "agents_view"}
    assert_match(env, ours, ref, time_limit)
    for name in ("grid", "agents_locations", "action_mask", "step_count"):
        assert np.array_equal(np.asarray(ours_start[name]), np.asarray(start_ref[name])), name
    return np.asarray(resets), np.asarray(ours["step_type"])


# ----------------------------------------------------------------------------- tests
def test_initial_states_match_jumanji():
    """Same key, same maze and start: our generator reproduces Jumanji's initial state."""
    for rows, cols, agents in ((5, 5, 2), (10, 10, 3), (7, 12, 2), (15, 15, 5)):
        env, ref = make_pair(rows, cols, agents, None)
        keys = jax.random.split(jax.random.PRNGKey(rows * cols), 64)
        ours = jax.jit(jax.vmap(env.reset))(keys)[0]
        theirs = jax.jit(jax.vmap(ref.reset))(keys)[0]
        assert np.array_equal(np.asarray(ours.grid), np.asarray(theirs.grid))
        assert np.array_equal(
            np.asarray(ours.agents_locations), np.asarray(theirs.agents_locations)
        )
        assert np.array_equal(np.asarray(ours.action_mask), np.asarray(theirs.action_mask))


@pytest.mark.parametrize("rows,cols,agents,time_limit", [(5, 5, 2, 20), (10, 10, 3, 40)])
def test_lockstep_short(rows, cols, agents, time_limit):
    resets, step_type = run_lockstep(rows, cols, agents, time_limit, batch=32, steps=100, seed=0)
    assert resets.sum() >= 32  # every stream crossed at least one episode end
    assert (step_type == StepType.LAST).sum() >= 32


@pytest.mark.slow
@pytest.mark.parametrize(
    "rows,cols,agents,time_limit",
    [(5, 5, 2, 25), (5, 5, 5, 100), (10, 10, 3, 100), (10, 10, 10, 60), (15, 15, 5, 80)],
)
def test_lockstep_sweep(rows, cols, agents, time_limit):
    for seed in range(3):
        resets, _ = run_lockstep(rows, cols, agents, time_limit, batch=256, steps=300, seed=seed)
        assert resets.any()


def random_midgame(key, jstate, clean_p):
    """A Jumanji state with a random share of floor tiles cleaned and agents scattered on
    random clean floor tiles (translated from Jumanji's own reset)."""
    k_clean, k_pos = jax.random.split(key)
    grid = jstate.grid
    floor = grid != C.WALL
    clean = (jax.random.uniform(k_clean, grid.shape) < clean_p) & floor
    grid = jnp.where(clean, C.CLEAN, grid).astype(jnp.int8)
    n = jstate.agents_locations.shape[0]
    flat_floor = floor.reshape(-1)
    scores = jnp.where(flat_floor, jax.random.uniform(k_pos, (n, flat_floor.size)), -1.0)
    cells = jnp.argmax(scores, axis=-1)
    loc = jnp.stack([cells // grid.shape[1], cells % grid.shape[1]], -1).astype(jnp.int32)
    grid = grid.reshape(-1).at[cells].set(C.CLEAN).reshape(grid.shape)
    return jstate.replace(grid=grid, agents_locations=loc)


@pytest.mark.parametrize("clean_p", [0.5, 0.97])
def test_translated_states_match(clean_p):
    """From translated mid-game states (some nearly clean: episodes end by cleaning)."""
    rows, cols, agents, time_limit = 6, 6, 3, 30
    env, ref = make_pair(rows, cols, agents, time_limit)

    def one(key):
        k_reset, k_mid, k_run = jax.random.split(key, 3)
        jstate, _ = ref.reset(k_reset)
        jstate = random_midgame(k_mid, jstate, clean_p)
        state = from_jumanji(jstate)
        jstate = jstate.replace(
            action_mask=ref._compute_action_mask(jstate.grid, jstate.agents_locations)
        )
        obs = env._observe(state)
        ts = jax.tree_util.tree_map(lambda x: x, env.reset(k_reset)[1]).replace(observation=obs)
        jts = ref.reset(k_reset)[1]
        rec, actions, resets, keys = our_rollout(env, state, ts, k_run, 40)
        jrec = ref_replay(ref, jstate, jts, actions, resets, keys)
        return rec, jrec, state, jstate

    rec, jrec, state, jstate = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(7), 64))
    assert np.array_equal(np.asarray(state.action_mask), np.asarray(jstate.action_mask))
    assert_match(env, rec, jrec, time_limit)
    if clean_p > 0.9:  # some episodes ended with every tile clean
        ended_clean = (np.asarray(rec["num_dirty_tiles"]) == 0) & (
            np.asarray(rec["step_type"]) == 2
        )
        assert ended_clean.any()


def test_state_translation_roundtrip():
    env, ref = make_pair(5, 5, 3, None)
    jstate, _ = ref.reset(jax.random.PRNGKey(3))
    state = from_jumanji(jstate)
    back = to_jumanji(state)
    for name in ("grid", "agents_locations", "action_mask", "step_count"):
        assert np.array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(jstate, name)))
