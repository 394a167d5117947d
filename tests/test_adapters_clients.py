"""Adapters under the wrappers and clients people actually put around them, whole episodes
across resets: Gymnasium's single-env and vector wrappers, SuperSuit, and (optional `clients`
extra, PyTorch) Stable-Baselines3 and TorchRL.

Statistics from Gymnasium's `RecordEpisodeStatistics` must equal the adapter's own
(`info["episode_metrics"]`), episode for episode.
"""

from __future__ import annotations

import os
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from test_adapters_common import REAL_IDS

from jaxmarl_envs.adapters.gymnasium import EPISODE_KEY, gymnasium_id
from jaxmarl_envs.adapters.pettingzoo import parallel_env

LBF = "lbf-8x8-2p-2f-coop"
SHORT = 3  # time_limit override: episodes end within a few steps
EPISODES = 4


def _run_single(env, episodes: int, seed: int = 0):
    """Random episodes; yields (steps, final info, summed reward) for each finished episode."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    total, steps = 0.0, 0
    done_episodes = 0
    while done_episodes < episodes:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        steps += 1
        if terminated or truncated:
            yield steps, info, total
            done_episodes += 1
            total, steps = 0.0, 0
            if done_episodes < episodes:
                env.reset()


# ----------------------------------------------------------------------------- Gymnasium


@pytest.mark.parametrize("env_id", REAL_IDS)
def test_record_episode_statistics_equals_ours(env_id):
    env = gymnasium.wrappers.RecordEpisodeStatistics(
        gymnasium.make(gymnasium_id(env_id), time_limit=SHORT)
    )
    seen = 0
    for steps, info, total in _run_single(env, EPISODES):
        ours, theirs = info[EPISODE_KEY], info["episode"]
        assert int(theirs["l"]) == int(ours["length"]) == steps
        assert np.isclose(float(theirs["r"]), float(ours["return"]), rtol=1e-6, atol=1e-6)
        assert np.isclose(float(ours["return"]), total, rtol=1e-6, atol=1e-6)
        seen += 1
    assert seen == EPISODES
    assert len(env.return_queue) == len(env.length_queue) == EPISODES


def test_time_limit_and_flatten_observation_wrappers():
    base = gymnasium.make(gymnasium_id(LBF), max_episode_steps=5)
    assert isinstance(base, gymnasium.wrappers.TimeLimit) or any(
        isinstance(w, gymnasium.wrappers.TimeLimit) for w in _wrappers(base)
    )
    env = gymnasium.wrappers.FlattenObservation(base)
    size = int(np.prod(base.observation_space.shape))
    assert env.observation_space.shape == (size,)
    lengths = []
    for steps, info, _ in _run_single(env, EPISODES):
        lengths.append(steps)
        if steps < 5:  # the environment ended the episode itself: our statistics are there
            assert int(info[EPISODE_KEY]["length"]) == steps
        else:  # Gymnasium's TimeLimit cut it: the environment's episode goes on
            assert EPISODE_KEY not in info or int(info[EPISODE_KEY]["length"]) == 5
    # Gymnasium's TimeLimit (5) cuts the 50-step LBF episodes, unless food is all eaten.
    assert all(n <= 5 for n in lengths) and 5 in lengths
    obs, _ = env.reset(seed=1)
    assert obs.shape == (size,) and obs in env.observation_space


def _wrappers(env):
    while isinstance(env, gymnasium.Wrapper):
        yield env
        env = env.env


def test_record_video_writes_every_episode(tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo needs moviepy (in the dev extra)")
    env = gymnasium.make(gymnasium_id("rware-tiny-2ag"), render_mode="rgb_array", time_limit=6)
    folder = tmp_path / "videos"  # a new folder: RecordVideo warns when overwriting one
    env = gymnasium.wrappers.RecordVideo(
        env, str(folder), episode_trigger=lambda _: True, disable_logger=True
    )
    episodes = list(_run_single(env, 2))
    env.close()
    assert [steps for steps, _, _ in episodes] == [6, 6]
    videos = sorted(p for p in os.listdir(folder) if p.endswith(".mp4"))
    assert len(videos) == 2
    assert all(os.path.getsize(folder / v) > 0 for v in videos)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", [LBF, "rware-tiny-2ag"])
def test_vector_record_episode_statistics_equals_ours(env_id, mode):
    num_envs = 4
    venv = gymnasium.make_vec(
        gymnasium_id(env_id),
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        time_limit=SHORT,
    )
    venv = gymnasium.wrappers.vector.RecordEpisodeStatistics(venv)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    ended = 0
    for _ in range(4 * (SHORT + 1)):
        actions = venv.action_space.sample()
        assert actions in venv.action_space
        _, _, terminated, truncated, info = venv.step(actions)
        done = terminated | truncated
        assert ("episode" in info) == bool(done.any()) == (EPISODE_KEY in info)
        if done.any():
            assert np.array_equal(info["_episode"], done)
            assert np.array_equal(info[f"_{EPISODE_KEY}"], done)
            ours, theirs = info[EPISODE_KEY], info["episode"]
            assert np.array_equal(theirs["l"][done], ours["length"][done])
            assert np.allclose(theirs["r"][done], ours["return"][done], rtol=1e-6, atol=1e-6)
            ended += int(done.sum())
    assert ended >= 3 * num_envs
    venv.close()


def test_vector_normalize_reward_runs_across_resets():
    venv = gymnasium.make_vec(
        gymnasium_id("rware-tiny-2ag"),
        num_envs=4,
        vectorization_mode="vector_entry_point",
        time_limit=SHORT,
    )
    venv = gymnasium.wrappers.vector.NormalizeReward(
        gymnasium.wrappers.vector.RecordEpisodeStatistics(venv)
    )
    venv.reset(seed=0)
    venv.action_space.seed(0)
    dones = 0
    for _ in range(5 * SHORT):
        _, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
        assert reward.shape == (4,) and np.all(np.isfinite(reward))
        dones += int((terminated | truncated).sum())
    assert dones >= 8
    venv.close()


def test_action_spaces_contain_what_clients_produce():
    env = gymnasium.make(gymnasium_id(LBF))
    env.reset(seed=0)
    space = env.action_space
    assert isinstance(space, gymnasium.spaces.MultiDiscrete)
    assert space.sample() in space
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32):
        action = np.array([1, 2], dtype)
        assert action in space, dtype
        env.step(action)
    env.step(np.array([1, 2], np.uint64))  # valid values in any integer dtype step
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="out of bounds"):
        env.step(np.array([1, 200], np.int64))

    venv = gymnasium.make_vec(
        gymnasium_id(LBF), num_envs=3, vectorization_mode="vector_entry_point"
    )
    vspace = venv.action_space
    assert isinstance(vspace, gymnasium.spaces.MultiDiscrete)
    assert vspace.shape == (3, 2) and np.array_equal(vspace.nvec, np.full((3, 2), 6))
    single = venv.single_action_space
    batched = gymnasium.vector.utils.batch_space(single, 3)  # Gymnasium's bounds: a Box
    assert np.array_equal(batched.low, vspace.start) and np.array_equal(
        batched.high, vspace.start + vspace.nvec - 1
    )
    venv.reset(seed=0)
    venv.step(np.ones((3, 2), np.int64))
    assert np.ones((3, 2), np.int64) in vspace and vspace.sample() in vspace
    venv.close()


# ----------------------------------------------------------------------------- SuperSuit


def test_supersuit_vector_env_on_parallel_env():
    ss = pytest.importorskip("supersuit", reason="SuperSuit is in the dev extra")
    env = parallel_env(LBF, time_limit=SHORT)
    n_agents = len(env.possible_agents)
    vec = ss.pettingzoo_env_to_vec_env_v1(env)
    vec = ss.concat_vec_envs_v1(vec, 2, num_cpus=0, base_class="gymnasium")
    num = vec.num_envs
    assert num == 2 * n_agents
    obs, _ = vec.reset(seed=0)
    assert obs["observation"].shape[0] == num and obs["action_mask"].shape == (num, 6)
    dones = 0
    rng = np.random.default_rng(0)
    for _ in range(4 * SHORT):
        # A legal action per agent from its mask, as a masked policy would pick.
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])
        obs, reward, terminated, truncated, _ = vec.step(actions)
        assert reward.shape == (num,) and obs["observation"].shape[0] == num
        dones += int(np.sum(terminated | truncated))
    assert dones >= 3 * num  # every copy ended (and restarted) at least three times
    vec.close()


# ----------------------------------------------------------------------------- PyTorch clients


def test_stable_baselines3_check_env_and_ppo():
    pytest.importorskip("stable_baselines3", reason="needs the 'clients' extra (PyTorch)")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(gymnasium_id(LBF), time_limit=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The joint view is (num_agents, dim); SB3 suggests flattening (its MlpPolicy does).
        warnings.filterwarnings("ignore", message=".*unconventional shape", category=UserWarning)
        sb3_check_env(env.unwrapped, warn=True)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, verbose=0)
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=0)
    for _ in range(25):  # across episode ends
        action, _ = model.predict(obs)
        assert action in env.action_space
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()


def test_torchrl_wrappers_pass_check_env_specs():
    pytest.importorskip("torchrl", reason="needs the 'clients' extra (PyTorch)")
    from torchrl.envs.libs.gym import GymWrapper
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    pz = PettingZooWrapper(parallel_env(LBF, time_limit=SHORT), use_mask=True, seed=0)
    check_env_specs(pz)
    rollout = pz.rollout(4 * SHORT, break_when_any_done=False)
    assert rollout.batch_size[0] == 4 * SHORT
    gym = GymWrapper(gymnasium.make(gymnasium_id(LBF), time_limit=SHORT))
    gym.set_seed(0)
    check_env_specs(gym)
    rollout = gym.rollout(4 * SHORT, break_when_any_done=False)
    assert rollout.batch_size[0] == 4 * SHORT
    assert int(rollout["next", "done"].sum()) >= 3  # episodes ended and were reset
