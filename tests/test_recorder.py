"""Experience recorder: native jitted rollouts and a Python loop give the same vault."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_env import ToyEnv

import jaxmarl_envs
from jaxmarl_envs.algorithms.buffers import make_trajectory_buffer
from jaxmarl_envs.algorithms.buffers.recorder import (
    DONE_KEY,
    ExperienceRecorder,
    episode_returns,
    make_rollout_recorder,
    record_to_vault,
    return_statistics,
)
from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.wrappers import AutoReset, GlobalState, VmapWrapper

NUM_ENVS, LENGTH = 3, 8


def target_policy(key, ts):
    """Both agents pick the target shown in the observation (reward 1 every step)."""
    del key
    return jnp.full((2,), jnp.argmax(ts.observation.agents_view[0, :3]), jnp.int32)


@pytest.fixture(scope="module")
def toy():
    env = ToyEnv(time_limit=4)
    buf = make_trajectory_buffer(NUM_ENVS, 16, 64, 3, episode_mode="within", done_key=DONE_KEY)
    return env, buf, make_rollout_recorder(env, target_policy, buf, NUM_ENVS, LENGTH)


def test_native_recording_aligns_observation_action_and_outcome(tmp_path, toy):
    env, buf, rec = toy
    vault = record_to_vault(rec, buf, jax.random.PRNGKey(0), 3, tmp_path / "v", {"env": "toy"})
    d = vault.read()
    n = 3 * LENGTH
    assert d["observation"].shape == (NUM_ENVS, n, 2, 4) and d["action"].shape == (NUM_ENVS, n, 2)
    # The policy reads the target from the observation, so every recorded reward is 1.
    assert bool(np.all(d["reward"] == 1.0))
    target = d["observation"][..., 0, :3].argmax(-1)
    assert bool(np.all(d["action"] == target[..., None]))
    # Termination exactly when both agents chose action 2; discount 0 exactly there.
    both2 = np.all(d["action"] == 2, axis=-1)
    assert bool(np.array_equal(d["terminated"].all(-1), both2))
    assert bool(np.array_equal(d["discount"] == 0.0, d["terminated"]))
    # Truncation at the time limit (step count 3 in the observation, then the 4th step).
    steps = d["observation"][..., 0, 3]
    assert bool(np.array_equal(d["truncated"].all(-1), (steps == 3) & ~both2))
    assert bool(np.array_equal(d["last"], both2 | (steps == 3)))
    # `first` follows `last`; the step counter restarts exactly at episode starts.
    assert bool(np.all(d["first"][:, 0]))
    assert bool(np.array_equal(d["first"][:, 1:], d["last"][:, :-1]))
    assert bool(np.array_equal(steps == 0, d["first"]))
    # Global state (default: every agent's view flattened) and action masks.
    assert bool(np.array_equal(d["global_state"], d["observation"].reshape(NUM_ENVS, n, 8)))
    assert bool(np.all(d["action_mask"] == np.array([[1, 1, 1], [1, 0, 1]], bool)))
    # Return statistics in the metadata match the recorded episodes.
    returns = episode_returns(vault)
    assert vault.metadata["returns"] == return_statistics(returns)
    lengths = [e.length for e in vault.episodes(DONE_KEY)]
    assert bool(np.allclose(returns, 2.0 * np.asarray(lengths)))
    vault.close()


def test_within_sampling_on_recorded_data_stays_in_one_episode(toy):
    env, buf, rec = toy
    rs = rec.init(jax.random.PRNGKey(1))
    state = buf.init(rec.example())
    rs, state = rec.run(rs, state)
    rs, state = rec.run(rs, state)
    assert bool(buf.can_sample(state))
    out = jax.jit(buf.sample)(state, jax.random.PRNGKey(2))
    steps = np.asarray(out.experience["observation"][..., 0, 3])
    assert bool(np.all(np.diff(steps, axis=1) == 1))
    assert not bool(np.asarray(out.experience["last"])[:, :-1].any())


def test_python_loop_recorder_matches_native_recorder(tmp_path, toy):
    env, buf, rec = toy
    key = jax.random.PRNGKey(5)
    native = record_to_vault(rec, buf, key, 2, tmp_path / "native")
    # An adapter-like loop: numpy in and out, one jitted step per call.
    venv = VmapWrapper(AutoReset(GlobalState(env)))
    env_state, ts = venv.reset(jax.random.split(jax.random.split(key)[0], NUM_ENVS))
    step = jax.jit(venv.step)
    small = make_trajectory_buffer(NUM_ENVS, 5, 1, 1)  # smaller than the run: auto-flushes
    loop = ExperienceRecorder(small, vault_path=tmp_path / "loop", metadata={"policy": "target"})
    for _ in range(2 * LENGTH):
        obs = jax.tree_util.tree_map(np.asarray, ts.observation)
        action = np.repeat(obs.agents_view[:, 0, :3].argmax(-1)[:, None], 2, axis=1)
        action = action.astype(np.int32)
        gs = np.asarray(ts.extras["global_state"])
        env_state, ts = step(env_state, jnp.asarray(action))
        loop.record(
            obs,
            action,
            np.asarray(ts.reward),
            np.asarray(ts.discount),
            np.asarray(ts.terminated),
            np.asarray(ts.truncated),
            global_state=gs,
        )
    loop.close()
    a, b = native.read(), Vault(tmp_path / "loop").read()
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and bool(np.array_equal(a[k], b[k])), k
    assert Vault(tmp_path / "loop").metadata == {"policy": "target"}
    native.close()


def test_recorder_rejects_bad_arguments(tmp_path, toy):
    env, buf, _ = toy
    with pytest.raises(ValueError, match="num_envs"):
        make_rollout_recorder(env, target_policy, buf, NUM_ENVS + 1, 4)
    with pytest.raises(ValueError, match="rollout_length"):
        make_rollout_recorder(env, target_policy, buf, NUM_ENVS, 17)
    with pytest.raises(ValueError, match="rollout_length"):
        make_rollout_recorder(env, target_policy, buf, NUM_ENVS, 0)
    loop = ExperienceRecorder(make_trajectory_buffer(2, 4, 1, 1))
    z = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="num_envs=2"):
        loop.record(np.zeros((3, 4)), z, z, z, z, z)
    with pytest.raises(ValueError, match="vault_path"):
        loop.flush()


def test_records_a_real_environment(tmp_path):
    available = [e for e in ("lbf-8x8-2p-2f", "rware-tiny-2ag") if e in jaxmarl_envs.list_envs()]
    assert available, "no real environment is registered"
    env_id = available[0]
    env = jaxmarl_envs.make(env_id)

    def random_legal(key, ts):
        mask = ts.observation.action_mask
        logits = jnp.where(mask, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    buf = make_trajectory_buffer(2, 8, 4, 2)
    rec = make_rollout_recorder(env, random_legal, buf, 2, 8)
    vault = record_to_vault(rec, buf, jax.random.PRNGKey(0), 2, tmp_path / "v", {"env": env_id})
    d = vault.read()
    assert d["action"].shape == (2, 16, env.num_agents)
    mask = d["action_mask"]
    chosen = np.take_along_axis(mask, d["action"][..., None].astype(np.int64), axis=-1)
    assert bool(np.all(chosen))
    assert d["global_state"].shape[:2] == (2, 16)
    assert bool(np.all(np.isfinite(d["reward"])))
    assert bool(np.all(d["first"][:, 0]))
    assert vault.metadata["env"] == env_id
    vault.close()
