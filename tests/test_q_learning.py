"""Q-learning family (IQL, VDN, QMIX): kernels, wiring, config checks and fast learning runs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from continuous_toy_env import ContinuousToyEnv
from toy_env import ToyEnv, WholeToyEnv

from jaxmarl_envs.algorithms import q_learning as ql
from jaxmarl_envs.algorithms import value_kernels as vk

# ToyEnv (5 steps): both agents must pick the shown target; agent 1 may never pick action 1.
# ToyEnv shows the step count, and Q-learning bootstraps at the time limit from the final
# observation, a step count never acted in; with a long horizon the values extrapolated there
# feed back into the targets (QMIX's state-conditioned hypernetworks diverge with gamma 0.99).
# A short horizon (gamma 0.5) keeps this toy task well posed.
FAST = dict(
    total_steps=6000,
    num_envs=8,
    rollout_length=4,
    num_evaluations=3,
    hidden_sizes=(32,),
    gru_size=32,
    sequence_length=5,
    batch_size=32,
    buffer_size=8 * 500,
    learning_starts=200,
    grad_steps=1,
    lr=3e-3,
    gamma=0.5,
    tau=0.05,
    eps_decay_steps=2500,
    eval_episodes=32,
    mixer_embed_dim=16,
    mixer_hypernet_hidden=32,
)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


# =============================================================================================
# Kernels
# =============================================================================================


def test_td_target_terminates_but_bootstraps_on_truncation():
    reward = jnp.array([1.0, 1.0, 0.5, -2.0])
    next_value = jnp.array([10.0, 10.0, 4.0, 3.0])
    # Steps 0 and 3 terminate; step 1 is truncated (episode ends, but not by termination)
    # and step 2 is an ordinary step: both bootstrap.
    terminated = jnp.array([True, False, False, True])
    target = vk.td_target(reward, next_value, terminated, 0.9)
    assert np.allclose(target, [1.0, 10.0, 0.5 + 0.9 * 4.0, -2.0])


def test_double_q_selection_ignores_masked_actions():
    online = jnp.array([[1.0, 9.0, 3.0], [5.0, 0.0, 2.0]])  # action 1 is best in row 0 ...
    target = jnp.array([[10.0, 100.0, 20.0], [7.0, 8.0, -1.0]])
    mask = jnp.array([[True, False, True], [False, True, True]])  # ... but illegal there
    # Online net picks the best LEGAL action (2 then 2), the target net evaluates it.
    assert np.array_equal(vk.masked_argmax(online, mask), [2, 2])
    assert np.allclose(vk.double_q_select(online, target, mask), [20.0, -1.0])
    # Plain DQN: the max of the target over legal actions.
    assert np.allclose(vk.max_q_select(target, mask), [20.0, 8.0])
    # The masked action would be chosen without the mask.
    assert np.allclose(vk.double_q_select(online, target, jnp.ones_like(mask)), [100.0, 7.0])


def test_masked_argmax_with_very_negative_values():
    q = jnp.array([[-1e30, -5e29, 3.0]])
    assert int(vk.masked_argmax(q, jnp.array([[True, True, False]]))[0]) == 1


def test_epsilon_greedy_only_legal_actions():
    key = jax.random.PRNGKey(0)
    q = jax.random.normal(key, (4000, 5))
    mask = jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, (4000, 5)).at[:, 3].set(True)
    for eps in (0.0, 0.3, 1.0):
        a = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(2), q, mask, eps))
        assert np.all(np.asarray(mask)[np.arange(4000), a])
    greedy = np.asarray(vk.masked_argmax(q, mask))
    a0 = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(2), q, mask, 0.0))
    assert np.array_equal(a0, greedy)
    # eps = 1: uniform over the legal actions (rows where all five are legal).
    full = jnp.ones((20000, 5), bool)
    a1 = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(3), q[:1].repeat(20000, 0), full, 1.0))
    freq = np.bincount(a1, minlength=5) / a1.size
    assert np.all(np.abs(freq - 0.2) < 0.02), freq
    a3 = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(4), q, mask, 0.3))
    assert 0.1 < np.mean(a3 != greedy) < 0.3


def test_epsilon_greedy_greedy_mask_restricts_only_the_argmax():
    # Q prefers action 2; the greedy choice may only use actions {0, 1} (a BCQ filter), the
    # random choice is uniform over all three legal actions (3 is illegal).
    q = jnp.tile(jnp.array([0.0, 1.0, 5.0, 9.0]), (30000, 1))
    mask = jnp.tile(jnp.array([True, True, True, False]), (30000, 1))
    allowed = jnp.tile(jnp.array([True, True, False, False]), (30000, 1))
    a0 = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(0), q, mask, 0.0, greedy_mask=allowed))
    assert np.all(a0 == 1)
    a = np.asarray(vk.epsilon_greedy(jax.random.PRNGKey(1), q, mask, 0.3, greedy_mask=allowed))
    freq = np.bincount(a, minlength=4) / a.size
    # 0.1 each from the random draws on actions 0 and 2, 0.7 + 0.1 on the argmax 1, never 3.
    assert np.allclose(freq, [0.1, 0.8, 0.1, 0.0], atol=0.01), freq
    # Without greedy_mask it is the plain epsilon-greedy over `mask` (same draws).
    plain = vk.epsilon_greedy(jax.random.PRNGKey(1), q, mask, 0.3)
    same = vk.epsilon_greedy(jax.random.PRNGKey(1), q, mask, 0.3, greedy_mask=mask)
    assert np.array_equal(np.asarray(plain), np.asarray(same))


def test_linear_epsilon_schedule():
    values = [float(vk.linear_epsilon(s, 1.0, 0.05, 1000)) for s in (0, 500, 1000, 5000)]
    assert np.allclose(values, [1.0, 0.525, 0.05, 0.05])


def test_soft_and_periodic_target_updates():
    target = {"w": jnp.array([0.0, 10.0]), "b": jnp.array(4.0)}
    online = {"w": jnp.array([1.0, 0.0]), "b": jnp.array(2.0)}
    soft = vk.soft_update(target, online, 0.1)
    assert np.allclose(soft["w"], [0.1, 9.0]) and np.isclose(soft["b"], 3.8)
    for step in range(1, 7):
        hard = vk.periodic_update(target, online, jnp.asarray(step), 3)
        expect = online if step % 3 == 0 else target
        assert all(
            np.array_equal(a, b) for a, b in zip(_leaves(hard), _leaves(expect), strict=True)
        )


def test_vdn_is_the_sum():
    q = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
    assert np.allclose(vk.vdn_mix(q), np.asarray(q).sum(-1), atol=1e-6)


def test_qmix_is_monotonic_in_every_agent_value():
    n, s = 4, 7
    mixer = vk.QMixer(n, embed_dim=8, hypernet_hidden=16)
    dq = jax.grad(lambda p, q, st: mixer.apply(p, q, st), argnums=1)
    grad = jax.jit(jax.vmap(dq, (None, 0, 0)))
    apply = jax.jit(mixer.apply)
    init_fn = jax.jit(lambda k: mixer.init(k, jnp.zeros((n,)), jnp.zeros((s,))))
    outputs = []
    for draw in range(4):
        key = jax.random.PRNGKey(draw)
        init = init_fn(key)
        # Also random parameters far from the initialisation (signs everywhere).
        wild = jax.tree_util.tree_map(
            lambda x, k=key: 3.0 * jax.random.normal(jax.random.fold_in(k, x.size), x.shape),
            init,
        )
        for params in (init, wild):
            q = 10.0 * jax.random.normal(jax.random.fold_in(key, 1), (256, n))
            states = 5.0 * jax.random.normal(jax.random.fold_in(key, 2), (256, s))
            g = np.asarray(grad(params, q, states))
            assert g.shape == (256, n)
            assert np.all(g >= 0.0), g.min()
            assert np.mean(g > 0.0) > 0.5  # strictly increasing almost everywhere
            outputs.append(np.asarray(apply(params, q, states)))
    # Not trivially monotonic: the mix depends on the state (two states, same agent values).
    q0 = jnp.ones((2, n))
    two = apply(params, q0, jnp.stack([jnp.zeros(s), jnp.ones(s)]))
    assert abs(float(two[0] - two[1])) > 1e-3
    assert outputs[0].shape == (256,)


def test_scale_to_unit_hand_values():
    x = jnp.asarray([[-1.0, 7.0, 3.0], [3.0, 0.0, 1.0]])
    low, high = jnp.asarray([-1.0, 0.0, 1.0]), jnp.asarray([3.0, 7.0, 2.0])
    expected = np.asarray([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    assert np.allclose(vk.scale_to_unit(x, low, high), expected, atol=1e-7)


def test_state_bounds_of_specs():
    from jaxmarl_envs import specs

    bounded = specs.BoundedArray((3,), np.float32, [-1.0, 0.0, 0.0], [1.0, 7.0, 2.0], "s")
    assert ql.state_bounds_of(bounded) == ((-1.0, 0.0, 0.0), (1.0, 7.0, 2.0))
    scalar = specs.BoundedArray((2,), np.float32, 0.0, 4.0, "s")  # scalar bounds broadcast
    assert ql.state_bounds_of(scalar) == ((0.0, 0.0), (4.0, 4.0))
    assert ql.state_bounds_of(specs.Array((3,), np.float32, "s")) is None
    infinite = specs.BoundedArray((2,), np.float32, [0.0, 0.0], [1.0, np.inf], "s")
    assert ql.state_bounds_of(infinite) is None
    empty = specs.BoundedArray((2,), np.float32, [0.0, 1.0], [1.0, 1.0], "s")
    assert ql.state_bounds_of(empty) is None


def test_qmix_mixes_on_the_state_scaled_by_its_bounds():
    """LBF's global state is bounded: by default the mixer sees it in [0, 1] (the loss uses
    `mixer_state`), with `mixer_state_norm=False` the raw state; IQL/VDN keep no bounds."""
    cfg = ql.make_config("qmix", **FAST, env_id="lbf-8x8-2p-2f-coop")
    learner = ql.make_learner(cfg)
    spec = learner.env.global_state_spec()
    low, high = np.asarray(spec.minimum), np.asarray(spec.maximum)
    assert np.allclose(learner.mixer_state(jnp.asarray(low)), 0.0)
    assert np.allclose(learner.mixer_state(jnp.asarray(high)), 1.0)
    mid = (low + high) / 2
    assert np.allclose(learner.mixer_state(jnp.asarray(np.stack([mid, mid]))), 0.5)
    raw = ql.make_learner(dataclasses.replace(cfg, mixer_state_norm=False))
    assert raw.state_bounds is None
    assert np.array_equal(raw.mixer_state(jnp.asarray(high)), high)
    assert ql.make_learner(ql.make_config("vdn", **FAST, env_id=cfg.env_id)).state_bounds is None
    # The loss feeds the scaled state (all-terminated batch: target = 10 x team reward).
    state = learner.init(jax.random.PRNGKey(0))
    batch = _all_terminated_batch(learner, jax.random.PRNGKey(1))
    batch["state"] = jnp.broadcast_to(jnp.asarray(high), batch["state"].shape)
    loss, _ = learner.loss(state.params, state.target_params, batch)
    q, _ = learner.unroll(state.params.agent, batch["obs"], batch["next_obs"], batch["reset"])
    chosen = jnp.take_along_axis(q, batch["action"][..., None], -1)[..., 0]
    target = cfg.reward_scale * batch["reward"].sum(-1)
    for mixer_input, same in ((jnp.ones_like(batch["state"]), True), (batch["state"], False)):
        predicted = learner.mixer.apply(state.params.mixer, chosen, mixer_input)
        expected = 0.5 * jnp.mean((predicted - target) ** 2)
        assert np.isclose(float(loss), float(expected), rtol=1e-5) == same


# =============================================================================================
# Config
# =============================================================================================


def test_make_config_presets():
    assert isinstance(ql.make_config("iql"), ql.IQLConfig) and ql.make_config("iql").mixer == "none"
    assert ql.make_config("vdn").mixer == "vdn" and ql.make_config("vdn").algorithm == "vdn"
    qmix = ql.make_config("qmix", lr=1e-3)
    assert isinstance(qmix, ql.QMIXConfig) and qmix.mixer == "qmix" and qmix.lr == 1e-3
    assert qmix.eval_greedy and qmix.gru_size == 128 and qmix.sequence_length == 20
    assert qmix.n_step == 3 and qmix.recurrent and qmix.reward_scale == 50.0
    assert ql.make_config("iql").reward_scale == ql.make_config("vdn").reward_scale == 10.0
    assert ql.make_config("qmix", reward_scale=2.0).reward_scale == 2.0
    with pytest.raises(ValueError, match="unknown Q-learning algorithm"):
        ql.make_config("dqn")


@pytest.mark.parametrize("name", ["iql", "vdn", "qmix"])
def test_rware_settings_are_valid_configs(name):
    """The documented warehouse overrides build valid configs for the whole family: 20
    500-step episodes of replay per environment, 10-step targets within 20-step sequences,
    epsilon annealed over 5e5 steps."""
    cfg = ql.make_config(name, env_id="rware-tiny-2ag", total_steps=1_000_000, **ql.RWARE_SETTINGS)
    d = ql.derive(cfg, num_devices=1)
    assert d.buffer_time == 10_000 and d.steps_per_update == 256
    assert cfg.n_step == 10 <= cfg.sequence_length and cfg.eps_decay_steps == 500_000
    assert cfg.mixer == {"iql": "none", "vdn": "vdn", "qmix": "qmix"}[name]


def test_derive_sizes():
    cfg = ql.make_config("iql", total_steps=10_000, num_envs=8, rollout_length=4, num_evaluations=3)
    d = ql.derive(dataclasses.replace(cfg, buffer_size=1000), num_devices=1)
    # 10,000 steps need ceil(10000 / 32) = 313 updates: 3 intervals of ceil(313 / 3) = 105.
    assert d.steps_per_update == 32 and d.num_updates == 315 and d.num_evaluations == 3
    assert d.updates_per_eval == 105 and d.total_steps == 315 * 32 >= 10_000
    assert d.buffer_time == 125 and d.num_devices == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(total_steps=100), "fewer than num_evaluations"),
        (dict(buffer_size=100, num_envs=16), "must hold at least"),
        (dict(gamma=1.5), "gamma must be in [0, 1]"),
        (dict(eps_end=-0.1), "eps_end must be in [0, 1]"),
        (dict(tau=0.0), "tau must be in (0, 1]"),
        (dict(mixer="sum"), "mixer must be one of"),
        (dict(target_update="polyak"), "target_update must be one of"),
        (dict(sequence_length=0), "sequence_length must be >= 1"),
        (dict(grad_steps=0), "grad_steps must be >= 1"),
        (dict(learning_starts=-1), "learning_starts must be >= 0"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(num_envs=0), "num_envs must be >= 1"),
        (dict(num_devices=3), "num_devices"),
        (dict(n_step=0), "n_step must be >= 1"),
        (dict(reward_scale=0.0), "reward_scale must be > 0"),
        (dict(n_step=21, sequence_length=20), "n_step (21) must be <= sequence_length"),
    ],
)
def test_config_errors_before_compilation(overrides, message):
    cfg = dataclasses.replace(ql.IQLConfig(), **overrides)
    with pytest.raises(ValueError) as err:
        ql.make_learner(cfg, env=ToyEnv())
    assert message in str(err.value)


def test_continuous_actions_rejected():
    with pytest.raises(ValueError, match="discrete actions"):
        ql.make_learner(ql.make_config("iql", **FAST), env=ContinuousToyEnv())


# =============================================================================================
# Wiring
# =============================================================================================


@pytest.fixture(scope="module")
def learners():
    out = {
        name: ql.make_learner(ql.make_config(name, **FAST), env=ToyEnv(time_limit=3))
        for name in ("iql", "vdn", "qmix")
    }
    unshared = ql.make_config("iql", **FAST, share_params=False)
    out["iql_unshared"] = ql.make_learner(unshared, env=ToyEnv(time_limit=3))
    return out


def test_rollout_stores_true_final_observation(learners):
    learner = learners["qmix"]
    state = learner.init(jax.random.PRNGKey(3))
    rollout = jax.jit(learner.rollout)
    _, (items, (_, ep_done)) = rollout(
        state.params.agent, state.runner, jnp.asarray(1.0), jax.random.PRNGKey(4)
    )
    step_count = np.asarray(items["obs"][..., 0, 3])  # (T, B) ToyEnv's step counter
    next_count = np.asarray(items["next_obs"][..., 0, 3])
    # The successor is always one step later, also at the time limit (3), where the next
    # stored observation is already the new episode's first one (count 0).
    assert np.array_equal(next_count, step_count + 1)
    truncated = next_count == 3
    assert truncated.any()
    assert np.all(step_count[1:][truncated[:-1]] == 0)
    # Termination (both agents pick 2) is stored per agent; a truncated step is not terminated
    # unless both also picked 2.
    both_two = np.all(np.asarray(items["action"]) == 2, axis=-1)
    terminated = np.asarray(items["terminated"])
    assert np.array_equal(terminated, np.stack([both_two, both_two], -1))
    assert np.any(truncated & ~both_two)
    ended = truncated | both_two
    assert np.array_equal(np.asarray(ep_done), ended)
    assert np.array_equal(np.asarray(items["reset"][1:, :, 0]), ended[:-1])
    # Global state of the final observation is kept for the QMIX target.
    assert np.allclose(items["next_state"][..., 3], next_count)
    # Illegal action 1 of agent 1 is never taken, even with epsilon = 1.
    assert not np.any(np.asarray(items["action"][..., 1]) == 1)


def _all_terminated_batch(learner, key, shape=(4, 3)):
    """A random batch `(L, M, ...)` (or any leading `shape`) whose steps all terminate."""
    example = learner.example_item()
    keys = iter(jax.random.split(key, len(example)))
    batch = {}
    for name, x in example.items():
        k = next(keys)
        if x.dtype == bool:
            batch[name] = jnp.ones(shape + x.shape, bool)
        elif name == "action":
            batch[name] = jax.random.randint(k, shape + x.shape, 0, 2)
        else:
            batch[name] = jax.random.normal(k, shape + x.shape)
    batch["reset"] = batch["reset"].at[1:].set(False)
    return batch


@pytest.mark.parametrize("name", ["iql", "vdn", "qmix", "iql_unshared"])
def test_loss_targets_reward_on_termination(learners, name):
    """With every step terminated the target is the (team) reward: checks the mixing and the
    team reward = SUM of agent rewards."""
    learner = learners[name]
    state = learner.init(jax.random.PRNGKey(0))
    batch = _all_terminated_batch(learner, jax.random.PRNGKey(1))
    loss, stats = learner.loss(state.params, state.target_params, batch)
    q, _ = learner.unroll(state.params.agent, batch["obs"], batch["next_obs"], batch["reset"])
    chosen = jnp.take_along_axis(q, batch["action"][..., None], -1)[..., 0]
    if name.startswith("iql"):
        predicted, reward = chosen, batch["reward"]
    elif name == "vdn":
        predicted, reward = chosen.sum(-1), batch["reward"].sum(-1)
    else:
        predicted = learner.mixer.apply(state.params.mixer, chosen, batch["state"])
        reward = batch["reward"].sum(-1)
    scale = learner.config.reward_scale  # 10 by default
    target = scale * reward
    assert np.isclose(float(loss), float(0.5 * jnp.mean((predicted - target) ** 2)), rtol=1e-5)
    # reward_scale multiplies the rewards in the targets.
    scaled = ql.make_learner(
        dataclasses.replace(learner.config, reward_scale=3.0), env=ToyEnv(time_limit=3)
    )
    loss3, _ = scaled.loss(state.params, state.target_params, batch)
    assert np.isclose(float(loss3), float(0.5 * jnp.mean((predicted - 3 * reward) ** 2)), rtol=1e-5)
    assert np.isclose(float(stats["q_mean"]), float(predicted.mean()), rtol=1e-5, atol=1e-6)
    if name == "iql_unshared":  # one parameter set per agent: a leading (N,) axis
        assert all(x.shape[0] == 2 for x in _leaves(state.params.agent))


@pytest.mark.parametrize("name", ["iql", "vdn"])
def test_loss_n_step_targets_cut_where_the_next_step_resets(learners, name):
    """n-step (n=3) targets in the loss: rewards summed along the sequence, the sum cut where
    the NEXT step starts an episode (here step 1 is truncated) and at the sequence end,
    bootstrapping from the successor values of the stopping step (target network evaluation
    of the online network's choice); computed here step by step in Python."""
    cfg = dataclasses.replace(learners[name].config, n_step=3, gamma=0.5)
    learner = ql.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(0))
    target_params = jax.tree_util.tree_map(lambda x: x * 0.5, state.params)
    batch = _all_terminated_batch(learner, jax.random.PRNGKey(2), (5, 3))
    batch["terminated"] = jnp.zeros_like(batch["terminated"])
    batch["reset"] = batch["reset"].at[2].set(True)  # step 1 ends an episode (truncated)
    loss, _ = learner.loss(state.params, target_params, batch)
    q, q_next = learner.unroll(state.params.agent, batch["obs"], batch["next_obs"], batch["reset"])
    _, q_next_t = learner.unroll(
        target_params.agent, batch["obs"], batch["next_obs"], batch["reset"]
    )
    best = jnp.argmax(jnp.where(batch["next_mask"], q_next, -jnp.inf), -1)
    value = np.asarray(jnp.take_along_axis(q_next_t, best[..., None], -1)[..., 0])
    chosen = np.asarray(jnp.take_along_axis(q, batch["action"][..., None], -1)[..., 0])
    reward = np.asarray(batch["reward"]) * cfg.reward_scale
    if name == "vdn":
        value, chosen, reward = value.sum(-1), chosen.sum(-1), reward.sum(-1)
    stops = {0: 1, 1: 1, 2: 4, 3: 4, 4: 4}  # last summed step: episode end or sequence end
    target = np.stack(
        [
            sum(0.5**k * reward[t + k] for k in range(stops[t] - t + 1))
            + 0.5 ** (stops[t] - t + 1) * value[stops[t]]
            for t in range(5)
        ]
    )
    assert np.isclose(float(loss), float(0.5 * np.mean((chosen - target) ** 2)), rtol=1e-5)


def test_unroll_successor_values_match_sequence(learners):
    """Inside an episode q_next[t] equals q[t + 1]; the GRU resets where `reset` is set."""
    learner = learners["iql"]
    state = learner.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 2, 2, learner.obs_dim))
    next_obs = jnp.concatenate([obs[1:], obs[:1]])
    resets = jnp.zeros((6, 2, 2), bool).at[0].set(True)
    q, q_next = learner.unroll(state.params.agent, obs, next_obs, resets)
    assert np.allclose(q_next[:-1], q[1:], atol=1e-5)
    resets2 = resets.at[3].set(True)
    q2, _ = learner.unroll(state.params.agent, obs, next_obs, resets2)
    assert np.allclose(q2[:3], q[:3]) and not np.allclose(q2[3], q[3])
    fresh, _ = learner.unroll(state.params.agent, obs[3:], next_obs[3:], resets2[3:])
    assert np.allclose(q2[3:], fresh, atol=1e-5)


def test_feed_forward_q_network_has_no_memory(learners):
    """`recurrent=False`: each step's values depend on that step's observation only."""
    cfg = dataclasses.replace(learners["iql"].config, recurrent=False)
    learner = ql.make_learner(cfg, env=ToyEnv(time_limit=3))
    params = learner.init(jax.random.PRNGKey(0)).params.agent
    assert "gru" not in params["params"]["torso"]
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 2, learner.obs_dim))
    resets = jnp.zeros((4, 2, 2), bool)
    q, q_next = learner.unroll(params, obs, obs[::-1], resets)
    alone, _ = learner.unroll(params, obs[2:3], obs[2:3], resets[:1])
    assert np.allclose(q[2], alone[0], atol=1e-6) and np.allclose(q_next[::-1], q, atol=1e-6)


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_train_step_updates_target_network(learners, mode):
    base = learners["vdn"]
    cfg = dataclasses.replace(base.config, target_update=mode, target_period=3, tau=0.25)
    learner = ql.make_learner(cfg, env=ToyEnv(time_limit=3))
    state = learner.init(jax.random.PRNGKey(0))
    # Fill the buffer with random terminated steps (one sequence per environment row).
    batch = _all_terminated_batch(learner, jax.random.PRNGKey(9), (cfg.num_envs, 5))
    buffer = learner.buffer.add(state.buffer, batch)
    assert bool(learner.buffer.can_sample(buffer))
    step = jax.jit(learner.train_step)
    # Make the target differ from the online network first.
    carry = (state.params, jax.tree_util.tree_map(jnp.zeros_like, state.params), state.opt_state)
    carry = (*carry, jnp.zeros((), jnp.int32))
    for i in range(1, 5):
        old_target = carry[1]
        carry, stats = step(buffer, carry, jax.random.PRNGKey(i))
        params, target = carry[0], carry[1]
        assert int(carry[3]) == i and np.isfinite(float(stats["loss"]))
        if mode == "soft":
            expect = jax.tree_util.tree_map(lambda t, p: 0.75 * t + 0.25 * p, old_target, params)
        else:
            expect = params if i % 3 == 0 else old_target
        assert all(
            np.allclose(a, b, atol=1e-6)
            for a, b in zip(_leaves(target), _leaves(expect), strict=True)
        )


def test_epsilon_and_learning_start_in_updates(learners):
    learner = learners["iql"]
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    update = jax.jit(learner.update)
    eps, steps = [], []
    for _ in range(10):
        state, metrics = update(state)
        eps.append(float(metrics["epsilon"]))
        steps.append(int(state.grad_steps))
    spu = learner.derived.steps_per_update  # 32
    decay = learner.config.eps_decay_steps
    expected = [max(1.0 - u * spu / decay * 0.95, 0.05) for u in range(10)]
    assert np.allclose(eps, expected, atol=1e-6)
    # learning_starts = 200 steps: the first gradient step follows the 7th rollout (224 steps).
    assert steps == [0] * 6 + [1, 2, 3, 4]


def test_greedy_act_never_picks_masked_action(learners):
    learner = learners["iql"]
    params = learner.init(jax.random.PRNGKey(0)).params.agent
    # Make action 1 look best for everyone.
    params = jax.tree_util.tree_map(lambda x: x, params)
    bias = params["params"]["head"]["bias"]
    params["params"]["head"]["bias"] = bias.at[1].set(100.0)
    obs = jax.random.normal(jax.random.PRNGKey(1), (16, 2, learner.obs_dim))
    mask = jnp.broadcast_to(jnp.array([[True, True, True], [True, False, True]]), (16, 2, 3))
    hidden = learner.initial_hidden(16)
    new = jnp.ones((16,), bool)
    greedy, _ = learner.act(params, hidden, obs, mask, new, jax.random.PRNGKey(2), greedy=True)
    assert np.all(np.asarray(greedy[:, 0]) == 1) and not np.any(np.asarray(greedy[:, 1]) == 1)
    sampled, _ = learner.act(params, hidden, obs, mask, new, jax.random.PRNGKey(2), greedy=False)
    assert not np.any(np.asarray(sampled[:, 1]) == 1)


# =============================================================================================
# Learning (fast, toy task)
# =============================================================================================


def _random_return(learner, key) -> float:
    """Mean team return of uniformly random legal actions (epsilon = 1) on the eval env."""
    rand = ql.make_learner(
        dataclasses.replace(learner.config, eval_epsilon=1.0), env=learner.env, num_devices=1
    )
    params = rand.init(key).params.agent
    out = jax.jit(rand.make_evaluate(512, greedy=False))(params, key)
    return float(out.episode_return.mean())


@pytest.fixture(scope="module")
def toy_runs():
    """`{name: (train, (state, metrics))}`: one fast toy-task run per algorithm (cached)."""
    cache = {}

    def get(name):
        if name not in cache:
            train = ql.make_train(ql.make_config(name, **FAST), env=ToyEnv(time_limit=5))
            cache[name] = (train, train(jax.random.PRNGKey(0)))
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["iql", "vdn", "qmix"])
def test_learns_toy_task(toy_runs, name):
    train, (state, metrics) = toy_runs(name)
    returns = np.asarray(metrics["eval"].episode_return).mean(-1)  # (num_evaluations,)
    baseline = _random_return(train.learner, jax.random.PRNGKey(7))
    final = float(returns[-2:].mean())
    assert 0.5 < baseline < 1.5, baseline
    assert final > baseline + 1.5, (returns, baseline)
    assert int(state.grad_steps) > 0 and np.all(np.isfinite(metrics["train"]["loss"][-2:]))
    assert float(state.best_return) >= returns.max() - 1e-6


def test_same_seed_same_result_different_seed_differs(toy_runs):
    train, (a, ma) = toy_runs("vdn")
    b, mb = train(jax.random.PRNGKey(0))
    c, _ = train(jax.random.PRNGKey(1))
    assert all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b), strict=True))
    assert np.array_equal(ma["eval"].episode_return, mb["eval"].episode_return)
    assert not all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(c), strict=True))


# =============================================================================================
# Replay storage
# =============================================================================================


def test_replay_stores_declared_whole_numbers_narrow():
    """uint8 for the warehouse's view and 0/1 state, int8 for LBF's view (-1 marks a missing
    item) beside its float state (it ends with a fraction of the episode), float32 for MPE:
    the buffer's arrays take those dtypes, and QMIX's warehouse replay a quarter the bytes."""
    import jax.tree_util as jtu

    expected = {
        "rware-tiny-2ag": (np.uint8, np.uint8),
        "lbf-8x8-2p-2f-coop": (np.int8, np.float32),
        "mpe-simple_spread": (np.float32, np.float32),
    }
    for env_id, (obs_dtype, state_dtype) in expected.items():
        learner = ql.make_learner(ql.make_config("qmix", **FAST, env_id=env_id))
        assert (learner.obs_dtype, learner.state_dtype) == (obs_dtype, state_dtype), env_id
        state = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
        stored = state.buffer.experience
        assert stored["obs"].dtype == stored["next_obs"].dtype == obs_dtype
        assert stored["state"].dtype == stored["next_state"].dtype == state_dtype
        if env_id == "rware-tiny-2ag":
            # The state's bounds are [0, 1]: scaling it for the mixer changes nothing.
            flags = jnp.asarray(np.random.default_rng(0).integers(0, 2, (3, learner.state_dim)))
            np.testing.assert_array_equal(learner.mixer_state(flags.astype(np.uint8)), flags)
            floats = sum(4 * np.prod(x.shape) for x in jtu.tree_leaves(stored))
            narrow = sum(x.dtype.itemsize * np.prod(x.shape) for x in jtu.tree_leaves(stored))
            assert narrow < 0.3 * floats


def test_narrow_replay_trains_exactly_as_float32_replay(toy_runs):
    """Storage is exact: QMIX on the toy task with its view and state stored in uint8 ends
    with the same parameters and metrics, bit for bit, as with float32 storage. (The plain
    toy's state is unbounded, so the mixer sees it unscaled: the same here.)"""
    _, (float_state, float_metrics) = toy_runs("qmix")
    cfg = ql.make_config("qmix", **FAST, mixer_state_norm=False)
    train = ql.make_train(cfg, env=WholeToyEnv(time_limit=5))
    assert (train.learner.obs_dtype, train.learner.state_dtype) == (np.uint8, np.uint8)
    state, metrics = train(jax.random.PRNGKey(0))
    assert state.buffer.experience["obs"].dtype == np.uint8
    expected = _leaves((float_state.params, float_metrics))
    for a, b in zip(expected, _leaves((state.params, metrics)), strict=True):
        np.testing.assert_array_equal(a, b)
