"""Offline datasets for the offline learners: small recorded toy datasets (helpers the other
test_offline files import), loading into transitions, and refusing mismatched datasets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from continuous_toy_env import ContinuousToyEnv
from toy_env import ToyEnv

from jaxmarl_envs.algorithms.buffers import make_trajectory_buffer
from jaxmarl_envs.algorithms.buffers.recorder import (
    DONE_KEY,
    make_rollout_recorder,
    record_to_vault,
)
from jaxmarl_envs.algorithms.offline.data import (
    check_dataset_matches_env,
    load_transitions,
    sample_batch,
)

NUM_ENVS, LENGTH = 8, 25


def toy_policy(skill: float):
    """ToyEnv behaviour: with probability `skill` both agents pick the target (when legal),
    else a uniform legal action each."""

    def policy(key, ts):
        obs = ts.observation
        target = jnp.argmax(obs.agents_view[0, :3])
        k1, k2 = jax.random.split(key)
        mask = obs.action_mask
        noise = jax.random.uniform(k1, mask.shape)
        random = jnp.argmax(jnp.where(mask, noise, -1.0), -1).astype(jnp.int32)
        legal_target = mask[jnp.arange(2), target]
        use = (jax.random.uniform(k2, (2,)) < skill) & legal_target
        return jnp.where(use, target, random).astype(jnp.int32)

    return policy


def continuous_policy(skill: float):
    """ContinuousToyEnv behaviour: the target plus Gaussian noise of std `1 - skill`."""

    def policy(key, ts):
        target = ts.observation.agents_view
        return target + (1.0 - skill) * jax.random.normal(key, target.shape)

    return policy


def record(env, policy, path, rollouts: int = 4, seed: int = 0, record_global_state=True):
    """Records `rollouts * NUM_ENVS * LENGTH` steps of `policy` into a vault at `path`."""
    buf = make_trajectory_buffer(NUM_ENVS, LENGTH, 1, 1, episode_mode="within", done_key=DONE_KEY)
    rec = make_rollout_recorder(
        env, policy, buf, NUM_ENVS, LENGTH, record_global_state=record_global_state
    )
    vault = record_to_vault(rec, buf, jax.random.PRNGKey(seed), rollouts, path, {"env": "toy"})
    vault.close()
    return str(path)


def toy_dataset(path, skill: float, rollouts: int = 4, seed: int = 0) -> str:
    return record(ToyEnv(time_limit=5), toy_policy(skill), path, rollouts, seed)


# =============================================================================================
# Tests
# =============================================================================================


def test_transitions_link_successors_and_skip_unknown_bootstraps(tmp_path):
    from jaxmarl_envs.algorithms.datasets import load_dataset

    env = ToyEnv(time_limit=5)
    path = toy_dataset(tmp_path / "toy", 0.5, rollouts=2)
    data, info = load_transitions(path, env, add_agent_id=True)
    raw = load_dataset(path)  # complete episodes, back to back, in the loader's order
    total = raw["reward"].shape[0]
    assert 0 < total <= NUM_ENVS * 2 * LENGTH and info["transitions"] == total
    assert data.obs.shape == (total, 2, 4 + 2) and data.sample_index.shape == (total,)
    assert bool(jnp.all(data.obs[:, :, 4:] == jnp.eye(2)))  # agent ids appended
    nxt, boot = np.asarray(data.next_index), np.asarray(data.bootstrap)
    obs = np.asarray(data.obs)
    last, terminated = raw["last"], raw["terminated"].all(-1)
    assert last[-1] and terminated.any() and (last & ~terminated).any()
    # Inside an episode the successor is the next step (its step count is one more).
    inner = np.flatnonzero(~last)
    assert np.all(nxt[inner] == inner + 1) and np.all(boot[inner])
    assert np.all(obs[nxt[inner], 0, 3] == obs[inner, 0, 3] + 1)
    # Time-limit ends have no recorded successor (this recorder stores none): no bootstrap;
    # terminated ends need none.
    assert not boot[last & ~terminated].any() and boot[terminated].all()
    batch = sample_batch(data, jax.random.PRNGKey(0), 16)
    assert batch.obs.shape == (16, 2, 6) and batch.next_state.shape == (16, 8)


def test_mismatched_dataset_is_refused_naming_the_mismatch(tmp_path):
    path = toy_dataset(tmp_path / "toy", 0.5, rollouts=1)
    from jaxmarl_envs.algorithms.buffers.vault import Vault

    vault = Vault(path)
    check_dataset_matches_env(vault, ToyEnv())  # matches
    with pytest.raises(ValueError, match="continuous"):
        check_dataset_matches_env(vault, ContinuousToyEnv())
    import jaxmarl_envs

    with pytest.raises(ValueError, match="agents|observation"):
        load_transitions(path, jaxmarl_envs.make("rware-tiny-4ag"), True)
    cont = record(ContinuousToyEnv(), continuous_policy(0.5), tmp_path / "cont", rollouts=1)
    with pytest.raises(ValueError, match="discrete|continuous"):
        load_transitions(cont, ToyEnv(), True)
    with pytest.raises(ValueError, match="does not exist"):
        load_transitions(str(tmp_path / "missing"), ToyEnv(), True)


def test_recorded_final_observations_let_truncated_steps_bootstrap(tmp_path):
    """With `next_observation` (as `jaxmarl record` writes it), every episode end points at an
    appended copy of its true final observation, mask and state, and bootstraps."""
    from jaxmarl_envs.algorithms.buffers.vault import Vault

    rng = np.random.default_rng(0)
    t, n = 12, 2
    last = np.zeros(t, bool)
    last[[3, 7, 11]] = True
    obs = rng.normal(size=(t, n, 4)).astype(np.float32)
    final = rng.normal(size=(t, n, 4)).astype(np.float32)
    next_obs = np.where(last[:, None, None], final, np.roll(obs, -1, axis=0))
    terminated = np.zeros((t, n), bool)
    terminated[7] = True
    exp = {
        "observation": obs,
        "action_mask": np.ones((t, n, 3), bool),
        "global_state": obs.reshape(t, -1),
        "action": rng.integers(0, 3, (t, n)).astype(np.int32),
        "reward": np.ones((t, n), np.float32),
        "discount": np.ones((t, n), np.float32),
        "terminated": terminated,
        "truncated": np.where(last & ~terminated.all(-1), True, False)[:, None].repeat(n, 1),
        "first": np.roll(last, 1),
        "last": last,
        "next_observation": next_obs,
        "next_action_mask": np.tile([True, False, True], (t, n, 1)),
        "next_global_state": next_obs.reshape(t, -1),
    }
    exp = {k: v[None] for k, v in exp.items()}
    with Vault.create(tmp_path / "v", exp) as vault:
        vault.append(exp)
    data, info = load_transitions(str(tmp_path / "v"), ToyEnv(), add_agent_id=False)
    assert info["has_final_observation"] and data.obs.shape == (t + 3, n, 4)
    assert bool(jnp.all(data.bootstrap))
    nxt = np.asarray(data.next_index)
    assert nxt[[3, 7, 11]].tolist() == [12, 13, 14] and nxt[0] == 1
    assert np.array_equal(np.asarray(data.obs)[nxt], next_obs)
    assert np.asarray(data.mask)[12:].tolist() == exp["next_action_mask"][0, last].tolist()
    assert np.array_equal(np.asarray(data.state)[nxt], next_obs.reshape(t, -1))
