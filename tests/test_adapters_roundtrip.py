"""Adapters against the native JAX rollout (same keys, same fixed actions: exactly the same
observations and rewards, across episode ends), and bad input through every adapter."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from test_adapters_common import REAL_IDS, REPRESENTATIVE_IDS, TOY_ID

from jaxmarl_envs import make
from jaxmarl_envs.adapters import DmEnv, JaxMarlGymEnv, JaxMarlVectorEnv, parallel_env
from jaxmarl_envs.adapters._common import key_from_rng, structured_to_dict

SHORT = 2  # time_limit of the gymnasium tests too, so the compiled programs are shared
STEPS = 3 * SHORT + 3  # several episode ends
NUM_ENVS = 3
SEED = 5


@functools.cache
def native(env_id: str, time_limit: int):
    """`(env, jit(reset), jit(step))` of the unbatched environment."""
    env = make(env_id, time_limit=time_limit)
    return env, jax.jit(env.reset), jax.jit(env.step)


def fixed_actions(env, steps: int, batch: int | None = None) -> list[np.ndarray]:
    """In-range joint actions `(num_agents,)` (or `(batch, num_agents)`), fixed by a seed."""
    spec = env.action_spec
    rng = np.random.default_rng(123)
    shape = spec.shape if batch is None else (batch, *spec.shape)
    return [
        rng.integers(spec.minimum, spec.maximum + 1, size=shape).astype(spec.dtype)
        for _ in range(steps)
    ]


def host(x) -> np.ndarray:
    return np.asarray(jax.device_get(x))


def assert_tree_equal(got, expected) -> None:
    got_leaves, expected_leaves = jax.tree.leaves(got), jax.tree.leaves(expected)
    assert len(got_leaves) == len(expected_leaves) > 0
    for g, e in zip(got_leaves, expected_leaves, strict=True):
        assert np.array_equal(np.asarray(g), host(e))


def team_reward(ts) -> float:
    return float(jnp.sum(ts.reward))


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_dm_env_round_trip(env_id):
    """Key chain: `PRNGKey(seed)`, and every reset does `key, sub = split(key)`."""
    env, reset, step = native(env_id, SHORT)
    adapter = DmEnv(env_id, seed=SEED, time_limit=SHORT)
    key = jax.random.PRNGKey(SEED)
    key, sub = jax.random.split(key)
    state, ts = reset(sub)
    got = adapter.reset()
    assert_tree_equal(got.observation, structured_to_dict(ts.observation, env.observation_spec))
    episodes, needs_reset = 1, False
    for action in fixed_actions(env, STEPS):
        got = adapter.step(action)
        if needs_reset:  # dm-env: the step after LAST starts a new episode
            key, sub = jax.random.split(key)
            state, ts = reset(sub)
            episodes += 1
            assert got.first()
        else:
            state, ts = step(state, action)
            assert int(got.step_type) == int(ts.step_type)
            assert np.array_equal(got.reward, host(ts.reward))
            assert np.array_equal(got.discount, host(ts.discount))
        obs = structured_to_dict(ts.observation, env.observation_spec)
        assert_tree_equal(got.observation, obs)
        needs_reset = bool(ts.last())
    assert episodes >= 2


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_gymnasium_single_round_trip(env_id):
    """Keys: `key_from_rng(np_random)` per reset, `np_random` seeded by `reset(seed=...)`."""
    env, reset, step = native(env_id, SHORT)
    adapter = JaxMarlGymEnv(env_id, time_limit=SHORT)
    rng, _ = seeding.np_random(SEED)
    state, ts = reset(key_from_rng(rng))
    obs, info = adapter.reset(seed=SEED)
    assert np.array_equal(obs, host(ts.observation.agents_view))
    assert np.array_equal(info["action_mask"], host(ts.observation.action_mask))
    episodes = 1
    for action in fixed_actions(env, STEPS):
        obs, reward, terminated, truncated, info = adapter.step(action)
        state, ts = step(state, action)
        assert np.array_equal(obs, host(ts.observation.agents_view))
        assert np.array_equal(info["action_mask"], host(ts.observation.action_mask))
        assert np.array_equal(info["agent_rewards"], host(ts.reward))
        assert reward == team_reward(ts)
        last, all_terminated = bool(ts.last()), bool(jnp.all(ts.terminated))
        assert terminated == (last and all_terminated)
        assert truncated == (last and not all_terminated)
        if terminated or truncated:
            obs, info = adapter.reset()
            state, ts = reset(key_from_rng(rng))
            episodes += 1
            assert np.array_equal(obs, host(ts.observation.agents_view))
    assert episodes >= 2


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_gymnasium_vector_round_trip(env_id, mode):
    """Keys: `split(key_from_rng(np_random), num_envs)`, one chain per environment; each
    (auto)reset does `key, sub = split(key)` and resets from `sub`."""
    env, reset, step = native(env_id, SHORT)
    adapter = JaxMarlVectorEnv(env_id, num_envs=NUM_ENVS, autoreset_mode=mode, time_limit=SHORT)
    rng, _ = seeding.np_random(SEED)
    keys = list(jax.random.split(key_from_rng(rng), NUM_ENVS))
    states = [None] * NUM_ENVS

    def native_reset(i):
        keys[i], sub = jax.random.split(keys[i])
        states[i], ts = reset(sub)
        return ts

    obs, _ = adapter.reset(seed=SEED)
    for i in range(NUM_ENVS):
        assert np.array_equal(obs[i], host(native_reset(i).observation.agents_view))
    autoreset = [False] * NUM_ENVS
    ends = 0
    for actions in fixed_actions(env, STEPS, batch=NUM_ENVS):
        obs, reward, terminated, truncated, info = adapter.step(actions)
        for i in range(NUM_ENVS):
            if autoreset[i]:  # NEXT_STEP: this step only resets environment i
                ts = native_reset(i)
                autoreset[i] = False
                assert reward[i] == 0.0 and not terminated[i] and not truncated[i]
                assert np.array_equal(obs[i], host(ts.observation.agents_view))
                continue
            states[i], ts = step(states[i], actions[i])
            assert reward[i] == np.float32(team_reward(ts))
            last, all_terminated = bool(ts.last()), bool(jnp.all(ts.terminated))
            assert terminated[i] == (last and all_terminated)
            assert truncated[i] == (last and not all_terminated)
            ends += last
            expected_obs = ts.observation.agents_view
            if last and mode is AutoresetMode.NEXT_STEP:
                autoreset[i] = True
            elif last:  # SAME_STEP: the final observation moves to info, the new one is shown
                assert np.array_equal(info["final_obs"][i], host(expected_obs))
                assert np.array_equal(info["final_info"]["agent_rewards"][i], host(ts.reward))
                expected_obs = native_reset(i).observation.agents_view
            if not (last and mode is AutoresetMode.SAME_STEP):
                assert np.array_equal(info["agent_rewards"][i], host(ts.reward))
            assert np.array_equal(obs[i], host(expected_obs))
    assert ends >= NUM_ENVS


@pytest.mark.parametrize("env_id", REPRESENTATIVE_IDS)
def test_pettingzoo_round_trip(env_id):
    """Keys: `key_from_rng(np_random)` per reset, `np_random` seeded by `reset(seed=...)`."""
    env, reset, step = native(env_id, SHORT)
    adapter = parallel_env(env_id, time_limit=SHORT)
    sizes = getattr(env, "agent_observation_sizes", None)
    agents = adapter.possible_agents

    def check_obs(obs, ts):
        view, mask = host(ts.observation.agents_view), host(ts.observation.action_mask)
        for i, agent in enumerate(agents):
            if agent not in obs:
                continue
            expected = view[i] if sizes is None else view[i, : sizes[i]]
            if not isinstance(obs[agent], dict):  # continuous actions: the bare view
                assert np.array_equal(obs[agent], expected)
                continue
            assert np.array_equal(obs[agent]["observation"], expected)
            n_actions = adapter.action_space(agent).n
            assert np.array_equal(obs[agent]["action_mask"], mask[i, :n_actions].astype(np.int8))

    rng, _ = seeding.np_random(SEED)
    state, ts = reset(key_from_rng(rng))
    obs, _ = adapter.reset(seed=SEED)
    check_obs(obs, ts)
    episodes = 1
    for action in fixed_actions(env, STEPS):
        if not adapter.agents:
            obs, _ = adapter.reset()
            state, ts = reset(key_from_rng(rng))
            check_obs(obs, ts)
            episodes += 1
            continue
        live = list(adapter.agents)
        joint = env.action_spec.generate_value()  # removed agents act with the minimum
        for agent in live:
            joint[agents.index(agent)] = action[agents.index(agent)]
        obs, rewards, terms, truncs, _ = adapter.step({a: joint[agents.index(a)] for a in live})
        state, ts = step(state, joint)
        check_obs(obs, ts)
        reward, term, trunc = host(ts.reward), host(ts.terminated), host(ts.truncated)
        last = bool(ts.last())
        assert set(rewards) == set(live)
        for agent in live:
            i = agents.index(agent)
            assert rewards[agent] == float(reward[i])
            assert terms[agent] == bool(term[i])
            assert truncs[agent] == (bool(trunc[i]) or (last and not bool(term[i])))
    assert episodes >= 2


# ----------------------------------------------------------------------------- bad input


class _Adapter:
    """One adapter behind a joint-action `step` (so each bad action is tried everywhere)."""

    def __init__(self, kind: str, env_id: str):
        self.kind = kind
        if kind == "dm_env":
            self.env = DmEnv(env_id, time_limit=SHORT)
            self.env.reset()
        elif kind == "gymnasium":
            self.env = JaxMarlGymEnv(env_id, time_limit=SHORT)
            self.env.reset(seed=0)
        elif kind == "vector":
            self.env = JaxMarlVectorEnv(env_id, num_envs=NUM_ENVS, time_limit=SHORT)
            self.env.reset(seed=0)
        else:
            self.env = parallel_env(env_id, time_limit=SHORT)
            self.env.reset(seed=0)
        self.inner = self.env.unwrapped.environment if kind != "dm_env" else self.env.environment

    def step(self, joint):
        if self.kind == "vector":
            batch = joint if joint is None or isinstance(joint, str) else np.stack([joint] * 3)
            return self.env.step(batch)
        if self.kind == "pettingzoo":
            if joint is None or isinstance(joint, str) or np.ndim(joint) != 1:
                return self.env.step({a: joint for a in self.env.agents})
            return self.env.step(dict(zip(self.env.agents, joint, strict=False)))
        return self.env.step(joint)


KINDS = ["dm_env", "gymnasium", "vector", "pettingzoo"]
BAD_ID = REAL_IDS[0] if REAL_IDS else TOY_ID


@functools.cache
def adapter(kind: str, env_id: str) -> _Adapter:
    return _Adapter(kind, env_id)


def bad_actions(env) -> dict[str, tuple[object, tuple[str, ...]]]:
    """Name -> (joint action, words one of which the error message must contain)."""
    spec = env.action_spec
    n, dtype = spec.shape[0], spec.dtype
    bounds = ("out of bounds", "out of range")
    return {
        "too_many_agents": (np.zeros(n + 1, dtype), ("shape",)),
        "matrix": (np.zeros((n, 2), dtype), ("shape",)),
        "float": (np.zeros(n, np.float32), ("dtype",)),
        "bool": (np.zeros(n, bool), ("dtype",)),
        "string": ("up", ("shape", "dtype")),
        "none": (None, ("shape", "dtype")),
        "above_range": ((spec.maximum + 1).astype(dtype), bounds),
        "negative": (np.full(n, -1, dtype), bounds),
        "int64_overflow": (np.full(n, 2**40, np.int64), bounds),
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("env_id", [BAD_ID, TOY_ID])
def test_bad_actions_raise_clear_value_errors(kind, env_id):
    ad = adapter(kind, env_id)
    for name, (action, words) in bad_actions(ad.inner).items():
        if kind == "pettingzoo" and name == "too_many_agents":
            continue  # actions are one per agent: the unknown-agent check covers extras
        with pytest.raises(ValueError) as err:
            ad.step(action)
        message = str(err.value)
        # Our own ValueError, raised before anything reached JAX, naming the problem.
        assert type(err.value) is ValueError, (name, type(err.value))
        assert any(word in message for word in words), (name, message)
    # The adapter is still usable: the rejected actions stepped nothing.
    assert ad.step(ad.inner.action_spec.generate_value()) is not None


@pytest.mark.parametrize("env_id", [BAD_ID, TOY_ID])
def test_pettingzoo_agent_errors(env_id):
    env = adapter("pettingzoo", env_id).env
    env.reset(seed=0)
    agents = list(env.agents)
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({**{a: 0 for a in agents}, "agent_99": 0})
    with pytest.raises(ValueError, match="missing actions"):
        env.step({a: 0 for a in agents[1:]})
    with pytest.raises(ValueError, match="dict"):
        env.step([0] * len(agents))
    with pytest.raises(ValueError, match="unknown agent"):
        env.action_space("agent_99")


def test_continuous_non_finite_actions():
    from continuous_toy_env import ContinuousToyEnv

    nan = np.zeros((2, 2), np.float32)
    nan[1, 0] = np.nan
    dm = DmEnv(ContinuousToyEnv(time_limit=3))
    dm.reset()
    single = JaxMarlGymEnv(ContinuousToyEnv(time_limit=3))
    single.reset(seed=0)
    vector = JaxMarlVectorEnv(ContinuousToyEnv(time_limit=3), num_envs=2)
    vector.reset(seed=0)
    pz = parallel_env(ContinuousToyEnv(time_limit=3))
    pz.reset(seed=0)
    for step in (dm.step, single.step, lambda a: vector.step(np.stack([a, a]))):
        with pytest.raises(ValueError, match="non-finite"):
            step(nan)
    with pytest.raises(ValueError, match="non-finite"):
        pz.step({"agent_0": nan[0], "agent_1": nan[1]})
    with pytest.raises(ValueError, match="out of bounds"):
        pz.step({"agent_0": nan[0] + 5.0, "agent_1": np.zeros(2, np.float32)})
