"""SMAX properties: health bounds, dead units inert, positions, episode-end rules, rewards,
opponent options, user scenarios, jit/vmap/plain agreement, determinism, errors, rendering."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmarl_envs
from jaxmarl_envs.smax import (
    SCENARIOS,
    SMAX,
    EnemyPolicy,
    FixedGenerator,
    Scenario,
    constants,
    register_scenario,
)

T = 40  # steps per rollout (episodes restart inside it)


def random_actions(key, mask):
    """A uniformly random legal action per agent."""
    logits = jnp.where(mask, 0.0, -1e9)
    return jax.random.categorical(key, logits).astype(jnp.int32)


@functools.cache
def rollout_fn(scenario: str, time_limit: int = 25, **kwargs):
    """A jitted `key -> (states, timesteps)` of `T` steps of random legal actions, restarting
    episodes (states[t] is the state before step t, timesteps[t] its result)."""
    env = SMAX(scenario, time_limit=time_limit, **kwargs)

    def run(key):
        key, reset_key = jax.random.split(key)
        state, ts = env.reset(reset_key)

        def body(carry, k):
            state, ts = carry
            act_key, reset_key = jax.random.split(k)
            action = random_actions(act_key, ts.observation.action_mask)
            new_state, new_ts = env.step(state, action)
            fresh_state, fresh_ts = env.reset(reset_key)
            out = (state, action, new_state, new_ts)
            last = new_ts.last()
            nxt = jax.tree.map(lambda a, b: jnp.where(last, a, b), (fresh_state, fresh_ts),
                               (new_state, new_ts))  # fmt: skip
            return nxt, out

        _, out = jax.lax.scan(body, (state, ts), jax.random.split(key, T))
        return out

    return env, jax.jit(run)


def np_tree(x):
    return jax.tree.map(np.asarray, x)


@pytest.fixture(scope="module")
def rollouts_3m():
    env, run = rollout_fn("3m")
    return env, [np_tree(run(jax.random.PRNGKey(s))) for s in range(3)]


# ----------------------------------------------------------------------------- invariants
def check_invariants(env: SMAX, out) -> None:
    before, action, after, ts = out
    a, u = env.num_allies, env.num_units
    max_health = np.asarray(env._max_health)[after.unit_types]
    # Health bounds; alive exactly when health is positive; nobody revives.
    assert np.all(after.health >= 0) and np.all(after.health <= max_health)
    assert np.array_equal(after.alive, after.health > 0)
    assert not np.any(after.alive & ~before.alive)
    # Dead units neither move nor get damaged nor fire (no health change of their targets).
    dead = ~before.alive
    assert np.array_equal(
        np.where(dead[..., None], after.positions, 0),
        np.where(dead[..., None], before.positions, 0),
    )
    assert np.all(np.where(dead, after.health == before.health, True))
    # Dead agents may only stop; attacks only on live opponents.
    mask = ts.observation.action_mask
    agent_alive = after.alive[:, : env.num_agents]
    assert np.all(mask[..., constants.STOP])
    dead_mask = mask & ~agent_alive[..., None]
    assert np.array_equal(dead_mask.sum(-1), (~agent_alive).astype(int))
    enemies_alive = after.alive[:, a:]
    assert not np.any(mask[:, :a, constants.NUM_MOVEMENT_ACTIONS :] & ~enemies_alive[:, None, :])
    # Live units stay on the map up to the push of overlapping neighbours.
    margin = (u - 1) * float(np.max(env._radius)) + 1e-4
    inside = (after.positions >= -margin) & (after.positions <= np.asarray(env._map_size) + margin)
    assert np.all(inside.all(-1) | ~after.alive)
    # Episode end: termination exactly on elimination, truncation exactly at the time limit.
    allies_dead = ~after.alive[:, :a].any(-1)
    enemies_dead = ~after.alive[:, a:].any(-1)
    eliminated = allies_dead | enemies_dead
    timeout = after.step_count >= env.time_limit
    assert np.array_equal(ts.terminated.all(-1), eliminated)
    assert np.array_equal(ts.terminated.any(-1), eliminated)
    assert np.array_equal(ts.truncated.any(-1), timeout & ~eliminated)
    assert np.array_equal(ts.step_type == 2, eliminated | timeout)
    assert np.array_equal(ts.discount == 0, np.broadcast_to(eliminated[:, None], ts.discount.shape))
    won = enemies_dead & ~allies_dead
    assert np.array_equal(ts.extras["won_episode"], won.astype(np.float32))
    # Rewards: shared by the team; the health term is in [0, 1], plus the bonus on a win.
    r = ts.reward
    assert np.all(r == r[:, :1])
    health_term = r[:, 0] - np.where(won, env.won_battle_bonus, 0.0)
    assert np.all(health_term >= -1e-6) and np.all(health_term <= 1 + 1e-6)


def test_invariants_on_random_rollouts(rollouts_3m):
    env, outs = rollouts_3m
    for out in outs:
        check_invariants(env, out)
    steps = np.concatenate([out[3].step_type for out in outs])
    assert np.sum(steps == 2) >= 2  # episodes ended inside the rollouts


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_invariants_hypothesis(seed):
    env, run = rollout_fn("2s3z")
    check_invariants(env, np_tree(run(jax.random.PRNGKey(seed))))


@pytest.mark.slow
def test_invariants_smacv2_and_self_play():
    for scenario, kwargs in [("smacv2-5-units", {}), ("5m_vs_6m", {"opponent": "self_play"})]:
        env, run = rollout_fn(scenario, **kwargs)
        check_invariants(env, np_tree(run(jax.random.PRNGKey(1))))


def test_health_reward_counts_the_enemy_health_lost():
    env, run = rollout_fn("3m")
    before, _, after, ts = np_tree(run(jax.random.PRNGKey(5)))
    a = env.num_allies
    fresh = after.step_count > before.step_count  # not across resets
    maxh = np.asarray(env._max_health)[after.unit_types]
    lost = ((before.health - after.health) / maxh)[:, a:].sum(-1) / env.num_enemies
    won = ts.extras["won_episode"]
    assert np.allclose((ts.reward[:, 0] - won)[fresh], lost[fresh], atol=1e-6)
    assert np.any(lost > 0)


# ----------------------------------------------------------------------------- opponents
def test_function_opponent_and_enemy_policy():
    stop = lambda key, obs, mask: jnp.full((obs.shape[0],), constants.STOP, jnp.int32)  # noqa: E731
    env = SMAX("3m", opponent=stop)
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(5):
        state, ts = step(state, jnp.full((3,), constants.STOP, jnp.int32))
    start, _ = env.reset(jax.random.PRNGKey(0))
    assert np.allclose(state.positions, start.positions)  # nobody moved
    assert np.all(np.asarray(state.health) == np.asarray(start.health))

    class Counter(EnemyPolicy):
        def init(self, key):
            return jnp.zeros((), jnp.int32)

        def __call__(self, key, count, obs, mask):
            assert obs.shape == (3, env.obs_dim) and mask.shape == (3, 8)
            return jnp.full((3,), constants.EAST, jnp.int32), count + 1

    env2 = SMAX("3m", opponent=Counter())
    state, _ = env2.reset(jax.random.PRNGKey(0))
    x0 = np.asarray(state.positions[3:, 0])
    for _ in range(3):
        state, _ = jax.jit(env2.step)(state, jnp.full((3,), constants.STOP, jnp.int32))
    assert int(state.enemy_policy_state) == 3
    assert np.all(np.asarray(state.positions[3:, 0]) > x0)  # the enemies walked east


def test_self_play_specs():
    env = SMAX("5m_vs_6m", opponent="self_play")
    assert env.num_agents == 11 and len(env.agent_ids) == 11
    assert list(env.action_spec.num_values) == [11] * 5 + [10] * 6
    assert env.observation_spec.action_mask.shape == (11, 11)
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert ts.observation.agents_view.shape == (11, env.obs_dim)
    assert not np.any(np.asarray(ts.observation.action_mask)[5:, 10])  # enemies: 10 actions


def test_heuristic_enemy_wins_against_standing_still():
    env = SMAX("3m")
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(env.time_limit):
        state, ts = step(state, jnp.full((3,), constants.STOP, jnp.int32))
        if ts.last():
            break
    assert bool(ts.terminated.all()) and not np.asarray(state.alive[:3]).any()
    assert float(ts.extras["won_episode"]) == 0.0


# ----------------------------------------------------------------------------- scenarios
def test_user_scenario_registration():
    name = "2m_vs_1z_test"
    scenario = Scenario(("marine",) * 2, ("zealot",))
    env_id = f"smax-{name}"
    if env_id not in jaxmarl_envs.list_envs("smax"):
        assert register_scenario(name, scenario, time_limit=30) == env_id
    env = jaxmarl_envs.make(env_id)
    assert env.num_agents == 2 and env.num_enemies == 1 and env.time_limit == 30
    state, _ = env.reset(jax.random.PRNGKey(0))
    assert list(np.asarray(state.unit_types)) == [0, 0, 3]
    assert SCENARIOS[name] == scenario
    with pytest.raises(ValueError, match="already registered"):
        register_scenario(name, Scenario(("marine",), ("zealot",)))
    with pytest.raises(ValueError, match="unknown unit type"):
        register_scenario("bad_units", Scenario(("tank",), ("marine",)))
    # A Scenario object works without registering anything.
    env = SMAX(Scenario(("stalker",), ("zergling",) * 2))
    assert env.num_agents == 1 and env.num_units == 3


def test_fixed_generator_and_unit_table_override():
    table = constants.UNIT_TYPES[:1] + (
        constants.UnitType("tank", "t", 1.0, 30.0, 7.0, 11.0, 1.0, 200.0, 2.0),
    )
    gen = FixedGenerator([[10.0, 16.0], [20.0, 16.0]], [1, 0], num_allies=1)
    env = SMAX(Scenario(("tank",), ("marine",)), unit_types=table, generator=gen)
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert np.allclose(state.positions, [[10.0, 16.0], [20.0, 16.0]])
    assert env.obs_dim == (7 + 2) * 1 + 4 + 2
    assert float(state.health[0]) == 200.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scenario": "4m"}, "unknown SMAX scenario"),
        ({"time_limit": 0}, "time_limit"),
        ({"opponent": "human"}, "opponent"),
        ({"opponent": 3}, "opponent"),
        ({"attack_mode": "weakest"}, "attack_mode"),
        ({"map_width": -1.0}, "map size"),
        ({"world_steps_per_env_step": 0}, "world_steps_per_env_step"),
        ({"time_per_step": 0.0}, "time_per_step"),
        ({"generator": object()}, "generator"),
        ({"generator": FixedGenerator([[1.0, 1.0]] * 3, [0, 0, 0], 1)}, "generator has 1 allies"),
        ({"unit_types": ()}, "unit_types"),
        ({"render_size": 10}, "size"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SMAX(**{"scenario": "3m", **kwargs})


def test_bad_scenarios():
    with pytest.raises(ValueError, match="at least one ally"):
        Scenario((), ("marine",))
    with pytest.raises(ValueError, match="unknown keyword"):
        jaxmarl_envs.make("smax-3m", bogus=1)


# ----------------------------------------------------------------------------- API
def test_jit_vmap_and_plain_agree():
    env = SMAX("3m")
    key = jax.random.PRNGKey(7)
    s_plain, ts_plain = env.reset(key)
    s_jit, ts_jit = jax.jit(env.reset)(key)
    s_vm, ts_vm = jax.vmap(env.reset)(jnp.stack([key, key]))
    step_jit, step_vm = jax.jit(env.step), jax.jit(jax.vmap(env.step))
    rng = np.random.default_rng(0)
    for _ in range(1):  # one step: un-jitted dispatch of the 8 unrolled sub-steps is slow
        mask = np.asarray(ts_plain.observation.action_mask)
        action = jnp.asarray([rng.choice(np.flatnonzero(m)) for m in mask], jnp.int32)
        s_plain, ts_plain = env.step(s_plain, action)
        s_jit, ts_jit = step_jit(s_jit, action)
        s_vm, ts_vm = step_vm(s_vm, jnp.stack([action, action]))
        for x, y, z in zip(jax.tree.leaves((s_plain, ts_plain)), jax.tree.leaves((s_jit, ts_jit)),
                           jax.tree.leaves((s_vm, ts_vm)), strict=True):  # fmt: skip
            assert np.allclose(x, y, atol=1e-5) and np.allclose(x, z[0], atol=1e-5)
            assert np.array_equal(np.asarray(z[0]), np.asarray(z[1]))


def test_same_key_same_episode_and_different_keys_differ():
    env, run = rollout_fn("3m")
    a, b = np_tree(run(jax.random.PRNGKey(3))), np_tree(run(jax.random.PRNGKey(3)))
    c = np_tree(run(jax.random.PRNGKey(4)))
    assert all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    assert not np.allclose(a[0].positions, c[0].positions)


def test_specs_and_global_state():
    env = jaxmarl_envs.make("smax-2s3z")
    state, ts = env.reset(jax.random.PRNGKey(0))
    env.observation_spec.validate(ts.observation)
    assert env.observation_spec.agents_view.shape == (5, 13 * 9 + 10)
    assert list(env.action_spec.num_values) == [10] * 5
    wrapped = jaxmarl_envs.GlobalState(env)
    _, wts = wrapped.reset(jax.random.PRNGKey(0))
    gs = np.asarray(wts.extras["global_state"])
    assert gs.shape == env.global_state_spec().shape == (12 * 10,)
    assert np.array_equal(gs[-20:-10], [0] * 5 + [1] * 5)  # teams, then types
    assert np.array_equal(gs[-10:], [2, 2, 3, 3, 3] * 2)
    assert env.agent_ids == tuple(f"ally_{i}" for i in range(5))


# ----------------------------------------------------------------------------- rendering
def test_render_and_animate(tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = SMAX("2s3z", render_size=128)
    state, _ = env.reset(jax.random.PRNGKey(0))
    states = [state]
    step = jax.jit(env.step)
    for _ in range(4):
        state, _ = step(state, jnp.full((5,), constants.EAST, jnp.int32))
        states.append(state)
    frame = env.render(state)
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 3  # units drawn on the background
    blue, red = np.array(constants.COLOR_TEAMS[0]), np.array(constants.COLOR_TEAMS[1])
    assert np.any(np.all(frame == blue, -1)) and np.any(np.all(frame == red, -1))
    path = env.animate(states, str(tmp_path / "battle.gif"))
    assert (tmp_path / "battle.gif").stat().st_size > 0 and path.endswith(".gif")
    from jaxmarl_envs.smax.viewer import SmaxViewer

    big = SmaxViewer(env, 200, show_sight=True).render(state)
    assert big.shape == (200, 200, 3)
