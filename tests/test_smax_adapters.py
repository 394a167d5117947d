"""SMAX through the three adapters: Gymnasium's `check_env`, PettingZoo's `parallel_api_test`
and dm-env's `EnvironmentTestMixin` on every registered SMAX scenario (most in the slow set)."""

from __future__ import annotations

import re
import unittest
import warnings

import gymnasium
import numpy as np
import pytest
from dm_env import test_utils
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import jaxmarl_envs
from jaxmarl_envs.adapters import DmEnv
from jaxmarl_envs.adapters.gymnasium import gymnasium_id, register_gymnasium_envs
from jaxmarl_envs.adapters.pettingzoo import parallel_env

SHORT = 3
#: Run by default (smax-3m, the family's first id, also runs in tests/test_adapters_*.py);
#: every other scenario is marked slow (each adapter compiles its own reset and step).
DEFAULT_IDS = ("smax-2s3z",)
# PettingZoo flags every {"observation", "action_mask"} dict observation (see
# tests/test_adapters_pettingzoo.py); only these convention warnings are allowed.
ALLOWED_WARNINGS = (
    "Observation space for each agent probably should be gymnasium.spaces.box",
    "Observation is not a NumPy array",
)


def _ids():
    params = []
    for env_id in jaxmarl_envs.list_envs("smax"):
        marks = [] if env_id in DEFAULT_IDS else [pytest.mark.slow]
        params.append(pytest.param(env_id, marks=marks, id=env_id))
    return params


SMAX_IDS = _ids()


def test_every_issue_scenario_is_registered():
    expected = {
        "3m", "2s3z", "3s5z", "8m", "25m", "5m_vs_6m", "10m_vs_11m", "27m_vs_30m",
        "3s5z_vs_3s6z", "3s_vs_5z", "6h_vs_8z", "smacv2-5-units", "smacv2-10-units",
        "smacv2-20-units",
    }  # fmt: skip
    assert {f"smax-{name}" for name in expected} <= set(jaxmarl_envs.list_envs("smax"))
    assert jaxmarl_envs.list_envs("smax") and len(SMAX_IDS) >= len(expected)


@pytest.mark.parametrize("env_id", SMAX_IDS)
def test_gymnasium_check_env(env_id):
    register_gymnasium_envs()
    env = gymnasium.make(gymnasium_id(env_id), time_limit=SHORT, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", SMAX_IDS)
def test_pettingzoo_parallel_api(env_id):
    env = parallel_env(env_id, time_limit=SHORT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=4 * SHORT)
    assert [str(w.message) for w in caught if not str(w.message).startswith(ALLOWED_WARNINGS)] == []
    assert env.agents == []  # the episode ended within num_cycles


@pytest.mark.parametrize("env_id", SMAX_IDS)
def test_dm_env_mixin(env_id):
    class Case(test_utils.EnvironmentTestMixin, unittest.TestCase):
        def make_object_under_test(self):
            return DmEnv(env_id, seed=0, time_limit=SHORT)

        def make_action_sequence(self):
            spec = self.environment.action_spec()
            rng = np.random.default_rng(0)
            for _ in range(3 * SHORT + 2):  # crosses several episode ends
                yield rng.integers(spec.minimum, spec.maximum + 1).astype(spec.dtype)

    Case.__name__ = "TestSmaxDmEnv_" + re.sub(r"\W", "_", env_id)
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun > 0
    assert result.wasSuccessful(), [str(e[1]) for e in result.errors + result.failures]
