"""Core API: timesteps, specs, registry and wrappers, on the toy environment."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from toy_env import ToyEnv

import jaxmarl_envs
from jaxmarl_envs import specs
from jaxmarl_envs.types import StepType, make_timestep, restart
from jaxmarl_envs.wrappers import (
    AgentID,
    AutoReset,
    CheckedActions,
    EpisodeMetrics,
    GlobalState,
    VmapWrapper,
)

# ----------------------------------------------------------------------------- timesteps


def test_make_timestep_termination_wins_over_truncation():
    ts = make_timestep(jnp.zeros(2), jnp.ones(2), jnp.array([True, True]), True)
    assert int(ts.step_type) == StepType.LAST
    assert np.array_equal(ts.terminated, [True, True])
    assert np.array_equal(ts.truncated, [False, False])
    assert np.array_equal(ts.discount, [0.0, 0.0])


def test_make_timestep_truncation_keeps_discount_one():
    ts = make_timestep(jnp.zeros(2), jnp.ones(2), False, True)
    assert bool(ts.last())
    assert np.array_equal(ts.discount, [1.0, 1.0])
    assert np.array_equal(ts.truncated, [True, True])


def test_make_timestep_partial_termination_is_mid():
    ts = make_timestep(jnp.zeros(2), jnp.ones(2), jnp.array([True, False]), False)
    assert bool(ts.mid())
    assert np.array_equal(ts.discount, [0.0, 1.0])
    assert np.array_equal(ts.done, [True, False])


def test_restart_is_first():
    ts = restart(jnp.zeros(3), 3)
    assert bool(ts.first())
    assert ts.reward.shape == (3,) and ts.reward.dtype == jnp.float32
    assert not bool(ts.terminated.any() | ts.truncated.any())


# ----------------------------------------------------------------------------- specs


def test_bounded_validate_messages():
    spec = specs.MultiDiscreteArray(np.array([5, 5]), np.int32, "action")
    spec.validate(np.array([0, 4], np.int32))
    with pytest.raises(ValueError, match="shape"):
        spec.validate(np.array([0, 1, 2], np.int32))
    with pytest.raises(ValueError, match="dtype"):
        spec.validate(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="out of bounds at index \\(1,\\)"):
        spec.validate(np.array([0, 5], np.int32))
    with pytest.raises(ValueError, match="out of bounds"):
        spec.validate(np.array([-1, 0], np.int32))


def test_bounded_rejects_nan():
    spec = specs.BoundedArray((2,), np.float32, -1.0, 1.0, "action")
    spec.validate(np.array([0.5, -1.0], np.float32))
    with pytest.raises(ValueError, match="non-finite \\(NaN\\) at index \\(1,\\)"):
        spec.validate(np.array([0.0, np.nan], np.float32))


def test_spec_constructor_errors():
    with pytest.raises(ValueError):
        specs.DiscreteArray(0)
    with pytest.raises(ValueError):
        specs.MultiDiscreteArray([3, 0])
    with pytest.raises(ValueError):
        specs.BoundedArray((2,), np.float32, 1.0, 0.0)


def test_generate_value_validates():
    env = ToyEnv()
    for spec in (env.observation_spec, env.action_spec, env.reward_spec, env.discount_spec):
        value = spec.generate_value()
        assert spec.validate(value) is value


def test_structured_validate_names_field():
    spec = ToyEnv().observation_spec
    value = spec.generate_value().replace(action_mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="field 'action_mask'"):
        spec.validate(value)


def test_gymnasium_conversion():
    from gymnasium import spaces

    env = ToyEnv()
    act = env.action_spec.to_gymnasium()
    assert isinstance(act, spaces.MultiDiscrete) and list(act.nvec) == [3, 3]
    obs = env.observation_spec.to_gymnasium()
    assert isinstance(obs, spaces.Dict)
    assert isinstance(obs["action_mask"], spaces.MultiBinary)
    assert obs["agents_view"].shape == (2, 4)
    assert float(obs["agents_view"].high.max()) == 5.0
    assert isinstance(specs.DiscreteArray(4).to_gymnasium(), spaces.Discrete)
    assert isinstance(specs.Array((2,), np.int8).to_gymnasium(), spaces.Box)


def test_dm_env_conversion():
    from dm_env import specs as dspecs

    env = ToyEnv()
    act = env.action_spec.to_dm_env()
    assert isinstance(act, dspecs.BoundedArray)
    assert np.array_equal(act.maximum, [2, 2]) and act.dtype == np.int32
    obs = env.observation_spec.to_dm_env()
    assert set(obs) == {"agents_view", "action_mask"}
    assert isinstance(specs.DiscreteArray(4).to_dm_env(), dspecs.DiscreteArray)
    disc = env.discount_spec.to_dm_env()
    assert float(disc.minimum.min()) == 0.0 and float(disc.maximum.max()) == 1.0


# ----------------------------------------------------------------------------- registry


def test_registry_make_overrides_and_errors():
    ids = jaxmarl_envs.list_envs()
    assert ids == sorted(ids)
    jaxmarl_envs.register("toy-test-v0", ToyEnv, family="toy", time_limit=3)
    try:
        env = jaxmarl_envs.make("toy-test-v0")
        assert env.time_limit == 3
        assert jaxmarl_envs.make("toy-test-v0", time_limit=7).time_limit == 7
        assert "toy-test-v0" in jaxmarl_envs.list_envs("toy")
        with pytest.raises(ValueError, match="already registered"):
            jaxmarl_envs.register("toy-test-v0", ToyEnv, family="toy")
        with pytest.raises(ValueError, match="Did you mean: toy-test-v0"):
            jaxmarl_envs.make("toy-tset-v0")
        with pytest.raises(ValueError, match="unknown environment id"):
            jaxmarl_envs.make("no-such-environment-at-all")
    finally:
        jaxmarl_envs.registry._REGISTRY.pop("toy-test-v0")


# ----------------------------------------------------------------------------- wrappers


def _rollout(env, key, actions):
    def body(state, action):
        state, ts = env.step(state, action)
        return state, ts

    state, ts0 = env.reset(key)
    _, tss = jax.lax.scan(body, state, actions)
    return ts0, tss


def test_auto_reset_keeps_final_observation_and_restarts():
    env = AutoReset(ToyEnv(time_limit=3))
    actions = jnp.zeros((7, 2), jnp.int32)
    ts0, tss = jax.jit(_rollout, static_argnums=0)(env, jax.random.PRNGKey(1), actions)
    last = np.asarray(tss.last())
    assert last.tolist() == [False, False, True, False, False, True, False]
    step_count = np.asarray(tss.observation.agents_view[:, 0, 3])
    final_count = np.asarray(tss.extras["final_observation"].agents_view[:, 0, 3])
    # Observation after the episode end is the new episode's first; the final one is kept.
    assert step_count.tolist() == [1, 2, 0, 1, 2, 0, 1]
    assert final_count.tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert np.all(np.asarray(tss.truncated)[last])
    assert np.all(np.asarray(tss.discount) == 1.0)


def test_auto_reset_on_termination_discount_zero():
    env = AutoReset(ToyEnv(time_limit=50))
    actions = jnp.full((3, 2), 2, jnp.int32)  # both pick 2 -> terminate every step
    _, tss = jax.jit(_rollout, static_argnums=0)(env, jax.random.PRNGKey(0), actions)
    assert np.all(np.asarray(tss.last()))
    assert np.all(np.asarray(tss.discount) == 0.0)
    assert np.all(np.asarray(tss.terminated)) and not np.any(np.asarray(tss.truncated))


def test_episode_metrics_returns_and_lengths():
    env = EpisodeMetrics(AutoReset(ToyEnv(time_limit=4)))
    key = jax.random.PRNGKey(3)
    state, ts = env.reset(key)
    total = np.zeros(2)
    for t in range(9):
        target = int(state.env_state.target)
        action = jnp.array([target, target if t % 2 == 0 else (target + 1) % 3], jnp.int32)
        state, ts = env.step(state, action)
        total += np.asarray(ts.reward)
        if t == 3 or t == 7:
            assert bool(ts.extras["episode_done"])
            assert int(ts.extras["episode_length"]) == 4
            assert np.allclose(ts.extras["episode_return_per_agent"], total)
            assert float(ts.extras["episode_return"]) == pytest.approx(total.sum())
            total = np.zeros(2)
        else:
            assert not bool(ts.extras["episode_done"])
    # Two of four steps rewarded in each full episode.
    assert float(ts.extras["episode_return"]) == pytest.approx(4.0)


def test_agent_id_and_global_state():
    env = GlobalState(AgentID(ToyEnv()))
    assert env.observation_spec.agents_view.shape == (2, 6)
    state, ts = env.reset(jax.random.PRNGKey(0))
    view = np.asarray(ts.observation.agents_view)
    assert np.array_equal(view[:, 4:], np.eye(2))
    assert ts.extras["global_state"].shape == env.global_state_spec().shape == (8,)
    assert np.array_equal(ts.extras["global_state"], view[:, :4].reshape(-1))
    env.observation_spec.validate(ts.observation)


def test_agent_id_rejects_grid_views():
    class GridToy(ToyEnv):
        @property
        def observation_spec(self):
            spec = super().observation_spec
            return spec.replace(agents_view=specs.Array((2, 3, 3, 1), np.float32))

    with pytest.raises(ValueError, match="flat per-agent view"):
        AgentID(GridToy())


def test_vmap_matches_single_and_keys_differ():
    env = ToyEnv()
    venv = VmapWrapper(env, num_envs=4)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    bstate, bts = jax.jit(venv.reset)(keys)
    for i in range(4):
        s, ts = env.reset(keys[i])
        assert np.array_equal(ts.observation.agents_view, bts.observation.agents_view[i])
    actions = jnp.zeros((4, 2), jnp.int32)
    bstate2, bts2 = jax.jit(venv.step)(bstate, actions)
    s, ts = env.step(jax.tree_util.tree_map(lambda x: x[2], bstate), actions[2])
    assert np.array_equal(ts.reward, bts2.reward[2])
    # A single key with num_envs splits it.
    state_a, _ = venv.reset(jax.random.PRNGKey(0))
    assert state_a.target.shape == (4,)
    with pytest.raises(ValueError, match="num_envs"):
        VmapWrapper(env).reset(jax.random.PRNGKey(0))


def test_same_key_same_rollout_jit_and_plain_agree():
    env = EpisodeMetrics(AutoReset(ToyEnv(time_limit=3)))
    actions = jax.random.randint(jax.random.PRNGKey(9), (10, 2), 0, 3)
    a = _rollout(env, jax.random.PRNGKey(5), actions)
    b = jax.jit(_rollout, static_argnums=0)(env, jax.random.PRNGKey(5), actions)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert np.array_equal(x, y)


def test_validate_action_errors():
    env = VmapWrapper(ToyEnv())
    with pytest.raises(ValueError, match="invalid action"):
        env.validate_action(np.array([[0, 3]], np.int32))
    env.validate_action(np.array([[0, 2], [1, 1]], np.int32))


def test_checked_actions_inside_jit():
    env = CheckedActions(ToyEnv())
    state, _ = env.reset(jax.random.PRNGKey(0))
    checked = jax.jit(checkify.checkify(env.step))
    err, _ = checked(state, jnp.array([0, 1], jnp.int32))
    err.throw()  # valid: no error
    err, _ = checked(state, jnp.array([0, 7], jnp.int32))
    with pytest.raises(Exception, match="action out of range"):
        err.throw()


def test_wrapper_properties_forward():
    base = ToyEnv(time_limit=9)
    env = EpisodeMetrics(AutoReset(AgentID(base)))
    assert env.num_agents == 2 and env.time_limit == 9
    assert env.agent_ids == ("agent_0", "agent_1")
    assert env.unwrapped is base
    assert env.num_actions == 3
    state, _ = env.reset(jax.random.PRNGKey(0))
    assert env.render(state).shape == (16, 16, 3)


# ----------------------------------------------------------------------------- rollouts


def test_random_action_respects_mask():
    from jaxmarl_envs.rollout import random_action

    mask = jnp.array([[True, False, True], [False, False, True], [False, False, False]])
    actions = jax.vmap(lambda k: random_action(k, mask))(
        jax.random.split(jax.random.PRNGKey(0), 2000)
    )
    actions = np.asarray(actions)
    assert set(np.unique(actions[:, 0])) == {0, 2}
    assert np.all(actions[:, 1] == 2)
    assert np.all(actions[:, 2] == 0)  # no legal action: falls back to 0
    # Uniform over the legal ones.
    assert abs(np.mean(actions[:, 0] == 0) - 0.5) < 0.05


def test_random_rollout_batched_shapes():
    from jaxmarl_envs.rollout import random_rollout

    env = VmapWrapper(AutoReset(ToyEnv(time_limit=2)), num_envs=3)
    _, ts0, states, tss = jax.jit(random_rollout, static_argnums=(0, 2))(
        env, jax.random.PRNGKey(0), 4
    )
    assert tss.reward.shape == (4, 3, 2)
    assert states.step_count.shape == (4, 3)
    assert np.asarray(tss.last()).sum() >= 6  # every env ends at least twice in 4 steps
    assert ts0.observation.action_mask.shape == (3, 2, 3)


# ----------------------------------------------------------------------------- XLA flags


def test_xla_flags_apply(monkeypatch):
    from jaxmarl_envs import _xla_flags

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    monkeypatch.delenv("JAXMARL_KEEP_XLA_FLAGS", raising=False)
    _xla_flags.apply()
    _xla_flags.apply()  # idempotent
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_force_host_platform_device_count=4", _xla_flags.CPU_SCHEDULER_FLAG]
    # A user's own setting of the flag wins, and the opt-out leaves XLA_FLAGS alone.
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=true")
    _xla_flags.apply()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("JAXMARL_KEEP_XLA_FLAGS", "1")
    _xla_flags.apply()
    assert os.environ["XLA_FLAGS"] == ""


def test_exact_storage_dtype_picks_the_narrowest_exact_integer():
    def bounded(low, high):
        return specs.BoundedArray((3,), np.float32, low, high, "v")

    store = specs.exact_storage_dtype
    assert store(bounded(0.0, 1.0), True) == np.uint8
    assert store(bounded(0.0, 255.0), True) == np.uint8
    assert store(bounded(-1.0, 7.0), True) == np.int8
    assert store(bounded(0.0, 256.0), True) == np.uint16
    assert store(bounded(-1.0, 200.0), True) == np.int16
    assert store(bounded([-1.0, 0.0, 0.0], [1.0, 1.0, 40_000.0]), True) == np.float32
    assert store(bounded(0.0, np.inf), True) == np.float32
    # Not declared whole, or no bounds to size it by: the spec's dtype.
    assert store(bounded(0.0, 1.0), False) == np.float32
    assert store(specs.Array((3,), np.float32, "v"), True) == np.float32
    assert store(specs.BoundedArray((3,), np.int32, 0, 9, "v"), False) == np.int32


_SYNC_PROBE = """
import json, sys, warnings
import jax, jax.numpy as jnp
if sys.argv[1] == "late":
    jnp.ones(1).block_until_ready()  # starts the CPU backend before jaxmarl_envs
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import jaxmarl_envs  # noqa: F401
x = jnp.ones((1500, 1500), jnp.float32)
f = jax.jit(lambda x: (x @ x) @ x)  # tens of milliseconds on a CPU: far over 1,000 flops
f(x).block_until_ready()
ready = [f(x).is_ready() for _ in range(3)]  # without waiting
print(json.dumps([all(ready), any(ready), [str(w.message) for w in caught]]))
"""


def _sync_probe(sync: str, when: str) -> tuple[bool, bool, list[str]]:
    """Runs `_SYNC_PROBE` in a fresh interpreter with `JAXMARL_CPU_SYNC_DISPATCH=sync`, JAX
    started before (`when="late"`) or after (`"early"`) `import jaxmarl_envs`: whether every
    call / any call of a large computation had finished on return, and the warnings."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "JAXMARL_CPU_SYNC_DISPATCH": sync, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", _SYNC_PROBE, when], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("sync", ["1", "0"])
def test_sync_dispatch_opt_in_runs_computations_inline(sync):
    """`JAXMARL_CPU_SYNC_DISPATCH=1` (read at import): a large computation has finished when
    its call returns; by default it has not (JAX hands it to a worker thread)."""
    all_ready, any_ready, warned = _sync_probe(sync, "early")
    assert warned == []
    assert all_ready if sync == "1" else not any_ready


def test_sync_dispatch_opt_in_warns_when_jax_already_started():
    all_ready, any_ready, warned = _sync_probe("1", "late")
    assert not any_ready and len(warned) == 1 and "has no effect" in warned[0]
