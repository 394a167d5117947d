"""dm-env adapter: dm-env's own `EnvironmentTestMixin` on the representative ids (with an
action sequence that reaches episode ends), specs, restarts, seeding and action errors."""

from __future__ import annotations

import re
import unittest

import dm_env
import numpy as np
import pytest
from dm_env import specs as dm_specs
from dm_env import test_utils
from test_adapters_common import REPRESENTATIVE_IDS, TOY_ID, is_deterministic
from toy_env import ToyEnv

from jaxmarl_envs import make
from jaxmarl_envs.adapters import DmEnv

SHORT = 3


def _mixin_case(env_id: str) -> type:
    class Case(test_utils.EnvironmentTestMixin, unittest.TestCase):
        def make_object_under_test(self):
            return DmEnv(env_id, seed=0, time_limit=SHORT)

        def make_action_sequence(self):
            spec = self.environment.action_spec()
            rng = np.random.default_rng(0)
            for _ in range(3 * SHORT + 2):  # crosses several episode ends
                yield rng.integers(spec.minimum, spec.maximum + 1).astype(spec.dtype)

    Case.__name__ = Case.__qualname__ = "TestDmEnvMixin_" + re.sub(r"\W", "_", env_id)
    return Case


for _env_id in REPRESENTATIVE_IDS:
    _case = _mixin_case(_env_id)
    globals()[_case.__name__] = _case
del _env_id, _case


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_specs_and_episode_end(env_id):
    env = DmEnv(env_id, seed=0, time_limit=SHORT)
    inner = env.environment
    n = inner.num_agents
    obs_spec = env.observation_spec()
    assert set(obs_spec) == set(inner.observation_spec.fields)
    assert obs_spec["agents_view"].shape == inner.observation_spec.agents_view.shape
    assert env.reward_spec().shape == (n,) and env.reward_spec().dtype == np.float32
    assert isinstance(env.discount_spec(), dm_specs.BoundedArray)
    assert env.discount_spec().shape == (n,)
    action_spec = env.action_spec()
    assert isinstance(action_spec, dm_specs.BoundedArray)
    assert action_spec.shape == inner.action_spec.shape  # (n,), or (n, dim) if continuous
    assert env.action_spec() is action_spec  # converted once
    ts = env.step(action_spec.generate_value())  # step before reset starts an episode
    assert ts.first() and ts.reward is None and ts.discount is None
    steps = 0
    while True:
        ts = env.step(action_spec.generate_value())
        steps += 1
        assert ts.step_type in (dm_env.StepType.MID, dm_env.StepType.LAST)
        assert ts.reward.dtype == np.float32 and ts.discount.dtype == np.float32
        for key, value in ts.observation.items():
            obs_spec[key].validate(value)
            assert isinstance(value, np.ndarray)
        if ts.last():
            break
    assert steps <= SHORT
    assert env.step(action_spec.generate_value()).first()  # after LAST: a new episode


def test_discount_on_termination_and_truncation():
    env = DmEnv(ToyEnv(time_limit=2))
    env.reset()
    ts = env.step(np.array([2, 2], np.int32))
    assert ts.last() and np.array_equal(ts.discount, [0.0, 0.0])
    env.reset()
    env.step(np.array([0, 0], np.int32))
    ts = env.step(np.array([0, 0], np.int32))
    assert ts.last() and np.array_equal(ts.discount, [1.0, 1.0])


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_seeding(env_id):
    def rollout(seed: int):
        env = DmEnv(env_id, seed=seed, time_limit=SHORT)
        rng = np.random.default_rng(0)
        spec = env.action_spec()
        out = []
        for _ in range(2 * SHORT + 2):
            ts = env.step(rng.integers(spec.minimum, spec.maximum + 1).astype(spec.dtype))
            out += [ts.observation["agents_view"], ts.reward]
        return out

    a, b = rollout(7), rollout(7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    firsts = {rollout(s)[0].tobytes() for s in range(4)}
    assert len(firsts) == 1 if is_deterministic(env_id) else len(firsts) > 1


def test_action_errors():
    env = DmEnv(TOY_ID)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="out of bounds"):
        env.step(np.array([0, 5], np.int32))
    with pytest.raises(ValueError, match="overrides"):
        DmEnv(make(TOY_ID), time_limit=2)


def test_render(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = DmEnv(TOY_ID)
    with pytest.raises(RuntimeError, match="reset"):
        env.render()
    env.reset()
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3
