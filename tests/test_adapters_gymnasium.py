"""Gymnasium adapter: `check_env` with warnings as errors on the representative ids, the
documented VectorEnv contract in every autoreset mode, seeding and action validation."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, VectorEnv
from test_adapters_common import REPRESENTATIVE_IDS, TOY_ID, is_deterministic
from toy_env import ToyEnv

from jaxmarl_envs.adapters.gymnasium import JaxMarlGymEnv, JaxMarlVectorEnv, gymnasium_id

NUM_ENVS = 3
SHORT = 2  # time_limit override so episodes end within a few steps


def make_vec(env_id: str, mode: AutoresetMode, **kwargs) -> VectorEnv:
    return gymnasium.make_vec(
        gymnasium_id(env_id),
        num_envs=NUM_ENVS,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        **kwargs,
    )


def random_actions(space: gymnasium.spaces.Space, rng: np.random.Generator, n: int):
    if isinstance(space, gymnasium.spaces.Box):  # continuous actions (e.g. Search-and-Rescue)
        return [rng.uniform(space.low, space.high).astype(space.dtype) for _ in range(n)]
    return [rng.integers(0, space.nvec, dtype=space.dtype) for _ in range(n)]


# ----------------------------------------------------------------------------- single env


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_check_env_without_warnings(env_id):
    env = gymnasium.make(gymnasium_id(env_id), render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # also builds the "human" mode through env.spec
    env.close()


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_single_env_joint_view(env_id):
    env = gymnasium.make(gymnasium_id(env_id), time_limit=SHORT)
    inner = env.unwrapped.environment
    n = inner.num_agents
    assert isinstance(env.action_space, (gymnasium.spaces.MultiDiscrete, gymnasium.spaces.Box))
    assert env.action_space.shape == inner.action_spec.shape  # (n,) or (n, dim) if continuous
    assert isinstance(env.observation_space, gymnasium.spaces.Box)
    assert env.observation_space.shape == inner.observation_spec.agents_view.shape
    obs, info = env.reset(seed=3)
    assert obs in env.observation_space
    assert info["action_mask"].shape == inner.observation_spec.action_mask.shape
    assert info["action_mask"].dtype == np.bool_
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert type(terminated) is bool and type(truncated) is bool and type(reward) is float
        assert info["agent_rewards"].shape == (n,) and info["agent_rewards"].dtype == np.float32
        assert np.isclose(reward, info["agent_rewards"].sum(), atol=1e-5)
        assert info["agent_terminated"].shape == (n,) and info["agent_truncated"].shape == (n,)
        total += reward
        steps += 1
        done = terminated or truncated
        assert ("episode_metrics" in info) == done
    assert steps <= SHORT
    assert np.isclose(info["episode_metrics"]["return"], total, atol=1e-5)
    assert int(info["episode_metrics"]["length"]) == steps
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.unwrapped.step(env.action_space.sample())
    env.close()


def test_reward_aggregation_mean_and_invalid():
    env = JaxMarlGymEnv(TOY_ID, reward_aggregation="mean")
    env.reset(seed=0)
    rewards = []
    for _ in range(5):
        _, r, term, trunc, info = env.step(np.array([0, 0], np.int32))
        assert np.isclose(r, info["agent_rewards"].mean())
        rewards.append(r)
        if term or trunc:
            break
    assert np.isclose(info["episode_metrics"]["return"], sum(rewards))
    with pytest.raises(ValueError, match="reward_aggregation"):
        JaxMarlGymEnv(TOY_ID, reward_aggregation="max")
    with pytest.raises(ValueError, match="render_mode"):
        JaxMarlGymEnv(TOY_ID, render_mode="ansi")


def test_toy_termination_and_truncation_flags():
    env = JaxMarlGymEnv(ToyEnv(time_limit=3))
    env.reset(seed=0)
    _, _, term, trunc, info = env.step(np.array([2, 2], np.int32))  # both pick 2: terminate
    assert term and not trunc and info["agent_terminated"].all()
    env.reset(seed=0)
    for _ in range(3):
        _, _, term, trunc, info = env.step(np.array([0, 0], np.int32))
    assert trunc and not term and info["agent_truncated"].all()


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_single_env_seeding(env_id):
    def rollout(seed: int | None, env):
        obs, _ = env.reset(seed=seed)
        out = [obs]
        rng = np.random.default_rng(0)
        for action in random_actions(env.action_space, rng, 6):
            obs, r, term, trunc, _ = env.step(action)
            out += [obs, np.float32(r)]
            if term or trunc:
                obs, _ = env.reset()
                out.append(obs)
        return out

    env = gymnasium.make(gymnasium_id(env_id), time_limit=4)
    a, b = rollout(5, env), rollout(5, env)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = gymnasium.make(gymnasium_id(env_id), time_limit=4)
    c = rollout(5, other)
    assert all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # Different seeds give different episodes (over several seeds, for envs with few layouts).
    firsts = {rollout(s, env)[0].tobytes() for s in range(4)}
    assert len(firsts) == 1 if is_deterministic(env_id) else len(firsts) > 1


def test_single_env_action_errors():
    env = JaxMarlGymEnv(TOY_ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.array([0, 0, 0], np.int32))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="out of bounds"):
        env.step(np.array([0, 3], np.int32))
    with pytest.raises(ValueError, match="out of bounds"):
        env.step(np.array([-1, 0], np.int32))
    fresh = JaxMarlGymEnv(TOY_ID)
    with pytest.raises(gymnasium.error.ResetNeeded):
        fresh.step(np.array([0, 0], np.int32))


def test_render_modes(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = JaxMarlGymEnv(TOY_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    human = JaxMarlGymEnv(TOY_ID, render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert human._window is not None  # the HumanWindow was opened
    human.close()
    human.close()  # closing twice is allowed
    assert human._window is None


# ----------------------------------------------------------------------------- vector env


def _check_batch(venv: VectorEnv, obs, info, n_agents: int):
    assert obs.shape == (NUM_ENVS, *venv.single_observation_space.shape)
    assert obs.dtype == venv.single_observation_space.dtype
    assert obs in venv.observation_space
    assert info["action_mask"].shape[:2] == (NUM_ENVS, n_agents)
    assert info["_action_mask"].dtype == np.bool_ and info["_action_mask"].shape == (NUM_ENVS,)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_vector_contract(env_id, mode):
    venv = make_vec(env_id, mode, time_limit=SHORT)
    assert isinstance(venv, JaxMarlVectorEnv) and isinstance(venv, VectorEnv)
    assert venv.metadata["autoreset_mode"] is mode
    assert venv.num_envs == NUM_ENVS
    n = venv.unwrapped.environment.num_agents
    action_shape = venv.unwrapped.environment.action_spec.shape  # (n,) or (n, dim)
    assert venv.single_action_space.shape == action_shape
    assert venv.action_space.shape == (NUM_ENVS, *action_shape)
    obs, info = venv.reset(seed=1)
    _check_batch(venv, obs, info, n)
    running = np.zeros(NUM_ENVS)
    lengths = np.zeros(NUM_ENVS, int)
    autoreset = np.zeros(NUM_ENVS, bool)
    seen_end = 0
    venv.action_space.seed(0)
    for t in range(3 * SHORT + 1):
        obs, reward, term, trunc, info = venv.step(venv.action_space.sample())
        if t == 0:
            compiled = venv.unwrapped._step_fn.cache_size()
        _check_batch(venv, obs, info, n)
        assert reward.shape == (NUM_ENVS,) and reward.dtype == np.float32
        assert term.shape == trunc.shape == (NUM_ENVS,)
        assert term.dtype == trunc.dtype == np.bool_
        assert not (term & trunc).any()
        done = term | trunc
        if mode is AutoresetMode.NEXT_STEP:
            # The step after an episode end is a reset: zero reward, nothing ended.
            assert np.all(reward[autoreset] == 0.0)
            assert not done[autoreset].any()
            running[autoreset], lengths[autoreset] = 0.0, 0
            stepped = ~autoreset
            running[stepped] += reward[stepped]
            lengths[stepped] += 1
            autoreset = done
        else:
            running += reward
            lengths += 1
        assert np.all(lengths <= SHORT)
        assert ("episode_metrics" in info) == bool(done.any())
        if done.any():
            seen_end += int(done.sum())
            assert np.array_equal(info["_episode_metrics"], done)
            assert np.allclose(info["episode_metrics"]["return"][done], running[done], atol=1e-5)
            assert np.array_equal(info["episode_metrics"]["length"][done], lengths[done])
        if mode is AutoresetMode.SAME_STEP:
            assert ("final_obs" in info) == bool(done.any())
            if done.any():
                assert np.array_equal(info["_final_obs"], done)
                assert np.array_equal(info["_final_info"], done)
                assert info["final_obs"].dtype == object
                for i in range(NUM_ENVS):
                    if done[i]:
                        assert info["final_obs"][i] in venv.single_observation_space
                    else:
                        assert info["final_obs"][i] is None
                final_info = info["final_info"]
                assert np.array_equal(final_info["_agent_rewards"], done)
                assert np.allclose(
                    final_info["agent_rewards"][done].sum(-1), reward[done], atol=1e-5
                )
                assert np.array_equal(final_info["episode_metrics"]["length"][done], lengths[done])
            running[done], lengths[done] = 0.0, 0
    assert seen_end >= NUM_ENVS  # every sub-environment reached an episode end
    # One jitted program steps the batch; stepping never retraces it.
    assert venv.unwrapped._step_fn.cache_size() == compiled
    venv.close()


def test_vector_autoreset_exact_on_toy():
    """On the toy env the view holds the step count, so resets are visible exactly."""
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        venv = JaxMarlVectorEnv(TOY_ID, num_envs=2, autoreset_mode=mode, time_limit=2)
        obs, _ = venv.reset(seed=0)
        assert np.all(obs[..., 3] == 0)
        zeros = np.zeros((2, 2), np.int32)
        terminate = np.array([[2, 2], [0, 0]], np.int32)  # env 0 terminates, env 1 goes on
        obs, _, term, trunc, info = venv.step(terminate)
        assert term.tolist() == [True, False] and not trunc.any()
        if mode is AutoresetMode.SAME_STEP:
            assert obs[0, :, 3].tolist() == [0, 0]  # already the new episode
            assert info["final_obs"][0][:, 3].tolist() == [1, 1]
            assert info["final_obs"][1] is None
        else:
            assert obs[0, :, 3].tolist() == [1, 1]
        assert obs[1, :, 3].tolist() == [1, 1]
        obs, reward, term, trunc, info = venv.step(zeros)
        if mode is AutoresetMode.NEXT_STEP:
            assert obs[0, :, 3].tolist() == [0, 0] and reward[0] == 0.0  # the reset step
            assert not term[0] and not trunc[0]
        else:
            assert obs[0, :, 3].tolist() == [1, 1]
        assert trunc[1] and info["episode_metrics"]["length"][1] == 2
        venv.close()


def test_vector_disabled_mode_and_partial_reset():
    venv = make_vec(TOY_ID, AutoresetMode.DISABLED, time_limit=2)
    obs, _ = venv.reset(seed=0)
    step = np.zeros((NUM_ENVS, 2), np.int32)
    step[0] = 2  # env 0 terminates now
    obs, _, term, _, _ = venv.step(step)
    assert term.tolist() == [True, False, False]
    with pytest.raises(ValueError, match="reset_mask"):
        venv.step(np.zeros((NUM_ENVS, 2), np.int32))
    before = obs.copy()
    mask = np.array([True, False, False])
    obs, info = venv.reset(options={"reset_mask": mask})
    assert np.all(obs[0, :, 3] == 0)
    assert np.array_equal(obs[1:], before[1:])  # untouched environments keep their state
    assert np.array_equal(info["_action_mask"], mask)
    obs, _, term, trunc, _ = venv.step(np.zeros((NUM_ENVS, 2), np.int32))
    assert obs[0, 0, 3] == 1 and trunc[1:].all() and not (term[0] or trunc[0])
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.zeros(NUM_ENVS, bool)})
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.ones(NUM_ENVS + 1, bool)})


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_vector_seeding(env_id):
    def rollout(venv):
        out = list(venv.reset(seed=11)[:1])
        rng = np.random.default_rng(1)
        for _ in range(5):
            acts = np.stack(random_actions(venv.single_action_space, rng, NUM_ENVS))
            obs, r, term, trunc, _ = venv.step(acts)
            out += [obs, r, term, trunc]
        return out

    venv = make_vec(env_id, AutoresetMode.SAME_STEP, time_limit=SHORT)
    a, b = rollout(venv), rollout(venv)
    c = rollout(make_vec(env_id, AutoresetMode.SAME_STEP, time_limit=SHORT))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_vector_action_errors_and_arguments():
    venv = JaxMarlVectorEnv(TOY_ID, num_envs=2)
    with pytest.raises(gymnasium.error.ResetNeeded):
        venv.step(np.zeros((2, 2), np.int32))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 2), np.int32))
    with pytest.raises(ValueError, match="dtype"):
        venv.step(np.zeros((2, 2), np.float32))
    bad = np.zeros((2, 2), np.int32)
    bad[1, 1] = 3
    with pytest.raises(ValueError, match=r"out of range at index \(1, 1\)"):
        venv.step(bad)
    with pytest.raises(ValueError, match="num_envs"):
        JaxMarlVectorEnv(TOY_ID, num_envs=0)
    with pytest.raises(ValueError, match="autoreset_mode"):
        JaxMarlVectorEnv(TOY_ID, autoreset_mode="Sometimes")
    with pytest.raises(ValueError, match="seed"):
        venv.reset(seed=[1, 2])


def test_vector_render():
    venv = JaxMarlVectorEnv(TOY_ID, num_envs=2, render_mode="rgb_array")
    venv.reset(seed=0)
    frames = venv.render()
    assert isinstance(frames, tuple) and len(frames) == 2
    assert all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)


def test_continuous_actions_are_boxes():
    from continuous_toy_env import ContinuousToyEnv

    env = JaxMarlGymEnv(ContinuousToyEnv(time_limit=3))
    assert isinstance(env.action_space, gymnasium.spaces.Box)
    assert env.action_space.shape == (2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)  # no viewer; built without a spec
    venv = JaxMarlVectorEnv(ContinuousToyEnv(time_limit=2), num_envs=2)
    venv.reset(seed=0)
    obs, reward, *_ = venv.step(np.zeros((2, 2, 2), np.float32))
    assert obs.shape == (2, 2, 2) and reward.shape == (2,)
    big = np.zeros((2, 2, 2), np.float32)
    big[1, 0, 1] = 3.0
    with pytest.raises(ValueError, match=r"out of range at index \(1, 0, 1\)"):
        venv.step(big)
