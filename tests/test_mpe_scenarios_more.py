"""MPE scenarios simple_adversary, simple_tag, simple_push and simple_world_comm: whole
episodes against mpe2 1.1.1 in both action modes (with policies that trigger every rule),
heterogeneous sizes, hand-built rule checks, errors and the PettingZoo adapter."""

from __future__ import annotations

import functools
import os
import warnings

import jax
import jax.numpy as jnp
import mpe_reference
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import jaxmarl_envs
from jaxmarl_envs.adapters.pettingzoo import parallel_env
from jaxmarl_envs.mpe import MPE
from jaxmarl_envs.mpe.scenarios.simple_tag import boundary_penalty

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

SCENARIOS = ("simple_adversary", "simple_tag", "simple_push", "simple_world_comm")
SEEDS = (0, 1, 2)


def goal_extra(world, env) -> dict:
    """`State.extra` of the goal scenarios from an mpe2 world: the goal landmark's index."""
    return {"goal": world.landmarks.index(world.agents[0].goal_a)}


mpe_reference.EXTRA_EXTRACTORS.setdefault("simple_adversary", goal_extra)
mpe_reference.EXTRA_EXTRACTORS.setdefault("simple_push", goal_extra)


@functools.cache
def make(scenario: str, continuous: bool, **kwargs) -> MPE:
    return jaxmarl_envs.make(f"mpe-{scenario}" + ("-continuous" if continuous else ""), **kwargs)


# ----------------------------------------------------------------------------- policies
def _dist(a, b) -> float:
    return float(np.sqrt(np.sum(np.square(np.asarray(a) - np.asarray(b)))))


def _nearest(pos, entities):
    return min(entities, key=lambda e: _dist(e.state.p_pos, pos)).state.p_pos


def steering(ref, targets, events, p_random=0.25):
    """An `action_fn` for `run_episode`: each agent steers towards `targets(world)[i]`
    (random where None, or with probability `p_random`; messages stay random), and
    `events(world)` records which rules the current mpe2 state exercises."""

    def action_fn(rng, env):
        world = ref.unwrapped.world
        events(world)
        joint, per_agent = mpe_reference.random_actions(rng, env)
        for i, (agent, goal) in enumerate(zip(env.agent_ids, targets(world), strict=True)):
            if goal is None or rng.random() < p_random:
                continue
            d = np.asarray(goal) - world.agents[i].state.p_pos
            if env.continuous_actions:
                push = np.clip(3.0 * np.array([-d[0], d[0], -d[1], d[1]]), 0.0, 1.0)
                joint[i, 0] = 0.0
                joint[i, 1:5] = push
                per_agent[agent] = joint[i, : env.agent_action_sizes[i]].copy()
            else:
                if abs(d[0]) >= abs(d[1]):
                    move = 2 if d[0] > 0 else 1
                else:
                    move = 4 if d[1] > 0 else 3
                joint[i] = joint[i] - joint[i] % 5 + move  # keep the message word
                per_agent[agent] = int(joint[i])
        return joint, per_agent

    return action_fn


def chase_targets(world):
    """Adversaries chase the nearest good agent; good agents run to the right edge."""
    good = [a for a in world.agents if not a.adversary]
    return [
        _nearest(a.state.p_pos, good) if a.adversary else np.array([1.6, 0.0]) for a in world.agents
    ]


def world_comm_targets(world):
    """Adversaries chase; good agents alternate between the nearest forest and food."""
    good = [a for a in world.agents if not a.adversary]
    out = []
    for a in world.agents:
        if a.adversary:
            out.append(_nearest(a.state.p_pos, good))
        else:
            k = good.index(a)
            places = world.forests if k % 2 == 0 and world.forests else world.food
            out.append(_nearest(a.state.p_pos, places))
    return out


def push_targets(world):
    return [world.agents[1].state.p_pos, world.agents[1].goal_a.state.p_pos]


def adversary_targets(world):
    lms = world.landmarks
    return [world.agents[0].goal_a.state.p_pos] + [
        lms[i % len(lms)].state.p_pos for i in range(len(world.agents) - 1)
    ]


class Events:
    """Counts of the rule situations seen in mpe2's states during the episodes."""

    def __init__(self, scenario: str):
        self.scenario = scenario
        self.counts: dict[str, int] = {}

    def add(self, name: str, happened: bool) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(bool(happened))

    def __call__(self, world) -> None:
        agents = world.agents
        hits = lambda a, b: _dist(a.state.p_pos, b.state.p_pos) < a.size + b.size  # noqa: E731
        if self.scenario in ("simple_tag", "simple_world_comm"):
            good = [a for a in agents if not a.adversary]
            adv = [a for a in agents if a.adversary]
            self.add("caught", any(hits(g, a) for g in good for a in adv))
            self.add("boundary", any(np.abs(g.state.p_pos).max() > 0.9 for g in good))
        if self.scenario == "simple_world_comm":
            inside = {a.name: [hits(a, f) for f in world.forests] for a in agents}
            self.add("in_forest", any(any(v) for v in inside.values()))
            self.add("food", any(hits(g, f) for g in good for f in world.food))
            hidden = [
                (a, o)
                for a in agents
                for o in agents
                if o is not a
                and not any(x and y for x, y in zip(inside[a.name], inside[o.name], strict=True))
                and (any(inside[a.name]) or any(inside[o.name]))
            ]
            self.add("hidden", any(not a.leader for a, _ in hidden))
            self.add("leader_sees_hidden", any(a.leader for a, _ in hidden))
            self.add("message", bool(np.any(agents[0].state.c)))
        if self.scenario == "simple_push":
            self.add("contact", hits(agents[0], agents[1]))


POLICIES = {
    "simple_adversary": adversary_targets,
    "simple_tag": chase_targets,
    "simple_push": push_targets,
    "simple_world_comm": world_comm_targets,
}
REQUIRED_EVENTS = {
    "simple_adversary": (),
    "simple_tag": ("caught", "boundary"),
    "simple_push": ("contact",),
    "simple_world_comm": (
        "caught",
        "boundary",
        "in_forest",
        "food",
        "hidden",
        "leader_sees_hidden",
        "message",
    ),
}


def run_against_mpe2(env: MPE, seeds, setup=None, **scenario_kwargs) -> Events:
    """Whole episodes against mpe2 from mpe2's initial states, with steering policies."""
    ref = mpe_reference.mpe2_parallel_env(env, **scenario_kwargs)
    if setup is not None:
        setup(ref)
    events = Events(env.scenario.name)
    action_fn = steering(ref, POLICIES[env.scenario.name], events)
    for seed in seeds:
        length = mpe_reference.run_episode(env, ref, seed, action_fn=action_fn)
        assert length <= env.max_cycles
    return events


# ----------------------------------------------------------------------------- differential
@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_whole_episodes_match_mpe2(scenario, continuous):
    env = make(scenario, continuous)
    events = run_against_mpe2(env, SEEDS)
    for name in REQUIRED_EVENTS[scenario]:
        assert events.counts.get(name, 0) > 0, f"{scenario}: no '{name}' situation was compared"


def run_resynced(env: MPE, seed: int, **scenario_kwargs) -> Events:
    """A long episode where every step starts from mpe2's exact state (copied into ours):
    one-step observations and rewards must agree closely. Free-running float32 episodes
    drift from mpe2's float64 ones after many stiff contacts (about 1e-3 after 40 contact-
    heavy steps); resyncing separates the rules from that drift."""
    ref = mpe_reference.mpe2_parallel_env(env, **scenario_kwargs)
    events = Events(env.scenario.name)
    action_fn = steering(ref, POLICIES[env.scenario.name], events)
    step = jax.jit(env.step)
    ref.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t = 0
    while ref.agents:
        state = mpe_reference.state_from_mpe2(env, ref.unwrapped.world)
        joint, per_agent = action_fn(rng, env)
        ref_obs, ref_rew, ref_term, _, _ = ref.step(per_agent)
        _, ts = step(state.replace(step_count=jnp.asarray(t, jnp.int32)), jnp.asarray(joint))
        t += 1
        view = np.asarray(ts.observation.agents_view)
        for i, agent in enumerate(env.agent_ids):
            size = env.agent_observation_sizes[i]
            assert np.allclose(view[i, :size], ref_obs[agent], atol=1e-5), f"step {t} {agent}"
        reward = np.asarray(ts.reward)
        assert np.allclose(reward, [ref_rew[a] for a in env.agent_ids], atol=1e-5), f"step {t}"
        assert bool(ts.last()) == (not ref.agents)
    assert t == env.max_cycles
    return events


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("scenario", ["simple_tag", "simple_world_comm"])
def test_long_contact_heavy_episodes_step_by_step(scenario, continuous):
    env = make(scenario, continuous, max_cycles=100)
    events = run_resynced(env, seed=7)
    for name in REQUIRED_EVENTS[scenario]:
        assert events.counts.get(name, 0) > 0, f"{scenario}: no '{name}' situation was compared"


VARIANTS = [
    ("simple_adversary", {"N": 3}),
    ("simple_adversary", {"N": 3, "num_agent_neighbors": 2, "num_landmark_neighbors": 4}),
    ("simple_tag", {"num_good": 2, "num_adversaries": 2, "num_obstacles": 3}),
    ("simple_tag", {"num_good": 2, "num_adversaries": 3, "num_agent_neighbors": 3}),
    ("simple_tag", {"num_landmark_neighbors": 1, "num_agent_neighbors": 4}),
    ("simple_world_comm", {"num_good": 3, "num_adversaries": 2, "num_food": 1, "num_forests": 3}),
    ("simple_world_comm", {"num_good": 1, "num_adversaries": 1, "num_forests": 0}),
]


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize(("scenario", "kwargs"), VARIANTS, ids=lambda v: str(v))
def test_variants_match_mpe2(scenario, kwargs, continuous):
    env = jaxmarl_envs.make(
        f"mpe-{scenario}" + ("-continuous" if continuous else ""), max_cycles=30, **kwargs
    )
    run_against_mpe2(env, (3,) if continuous else (4,), **kwargs)


def test_tag_termination_on_success_matches_mpe2():
    """Four chasers catch one slow prey: the episode terminates early in both."""
    kwargs = {"num_adversaries": 4, "terminate_on_success": True, "curriculum": True}
    env = jaxmarl_envs.make("mpe-simple_tag", max_cycles=60, **kwargs)
    ref = mpe_reference.mpe2_parallel_env(env, **kwargs)
    events = Events("simple_tag")

    def targets(world):  # everybody chases, the prey stays put
        prey = world.agents[-1].state.p_pos
        return [prey] * 4 + [prey]

    lengths = [
        mpe_reference.run_episode(env, ref, seed, action_fn=steering(ref, targets, events, 0.0))
        for seed in range(3)
    ]
    assert min(lengths) < env.max_cycles  # terminated before truncation at least once


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_tag_curriculum_stages_match_mpe2(stage):
    """Prey speed per curriculum stage. mpe2 1.1.1 cannot leave stage 0 (its `BaseScenario`
    makes `curriculum_stage` a property whose setter does nothing), so stages 1 and 2 are
    compared against mpe2 with its stage table patched to use that stage's factor at 0."""
    env = jaxmarl_envs.make("mpe-simple_tag", curriculum=True, curriculum_stage=stage)
    factor = (0.5, 0.75, 1.0)[stage]
    assert env.world.max_speed[3] == pytest.approx(1.3 * factor)
    assert env.world.sensitivity[3] == pytest.approx(4.0 * factor)
    assert env.world.max_speed[0] == pytest.approx(1.0) and env.world.sensitivity[0] == 3.0

    def setup(ref):
        scenario = ref.unwrapped.scenario
        ref.unwrapped.set_curriculum_stage(stage)
        assert scenario.curriculum_stage == 0  # the mpe2 1.1.1 behaviour described above
        scenario.CURRICULUM_STAGES = [{"prey_speed_factor": factor}] * 3

    run_against_mpe2(env, (5,), setup=setup, curriculum=True)


# ----------------------------------------------------------------------------- sizes and ids
EXPECTED_SIZES = {
    # scenario: (agent ids, observation sizes, discrete action sizes, continuous sizes)
    "simple_adversary": (("adversary_0", "agent_0", "agent_1"), (8, 10, 10), (5,) * 3, (5,) * 3),
    "simple_tag": (
        ("adversary_0", "adversary_1", "adversary_2", "agent_0"),
        (16, 16, 16, 14),
        (5,) * 4,
        (5,) * 4,
    ),
    "simple_push": (("adversary_0", "agent_0"), (8, 19), (5, 5), (5, 5)),
    "simple_world_comm": (
        (
            "leadadversary_0",
            "adversary_0",
            "adversary_1",
            "adversary_2",
            "agent_0",
            "agent_1",
        ),
        (34, 34, 34, 34, 28, 28),
        (20, 5, 5, 5, 5, 5),
        (9, 5, 5, 5, 5, 5),
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ids_sizes_and_padding(scenario):
    ids, obs_sizes, discrete, continuous = EXPECTED_SIZES[scenario]
    assert f"mpe-{scenario}" in jaxmarl_envs.list_envs("mpe")
    assert f"mpe-{scenario}-continuous" in jaxmarl_envs.list_envs("mpe")
    env = make(scenario, False)
    assert env.agent_ids == ids
    assert env.agent_observation_sizes == obs_sizes
    assert env.agent_action_sizes == discrete
    assert make(scenario, True).agent_action_sizes == continuous
    assert env.observation_spec.agents_view.shape == (len(ids), max(obs_sizes))
    assert env.global_state_spec().shape == (sum(obs_sizes),)
    # mpe2 agrees on names and sizes.
    ref = mpe_reference.mpe2_parallel_env(env)
    assert tuple(ref.possible_agents) == ids
    for i, agent in enumerate(ids):
        assert ref.observation_space(agent).shape == (obs_sizes[i],)
        assert ref.action_space(agent).n == discrete[i]
    # Our own resets: padding is zero, positions in mpe2's ranges, keys vary the layout.
    states, ts = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 16))
    view = np.asarray(ts.observation.agents_view)
    for i, size in enumerate(obs_sizes):
        assert np.all(view[:, i, size:] == 0.0)
    pos = np.asarray(states.p_pos)
    n = len(ids)
    assert np.all(np.abs(pos[:, :n]) <= 1.0)
    assert len({p.tobytes() for p in pos}) == 16
    if scenario in ("simple_tag", "simple_world_comm"):
        assert np.all(np.abs(pos[:, n:]) <= 0.9)


def test_goal_scenarios_reset_goal_and_colours():
    for scenario in ("simple_adversary", "simple_push"):
        env = make(scenario, False)
        states, _ = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(1), 32))
        goals = np.asarray(states.extra["goal"])
        assert set(goals.tolist()) == set(range(env.world.num_landmarks))
        colour = np.asarray(states.colour)
        n = env.num_agents
        if scenario == "simple_adversary":  # the goal landmark is green
            for g, c in zip(goals, colour, strict=True):
                assert np.allclose(c[n + g], [0.15, 0.65, 0.15])
                others = [k for k in range(env.world.num_landmarks) if k != g]
                assert np.allclose(c[n + np.array(others)], [0.15, 0.15, 0.15])
        else:  # the good agent wears its goal's colour channel
            for g, c in zip(goals, colour, strict=True):
                assert int(np.argmax(c[1])) == g + 1 and int(np.argmax(c[2 + g])) == g + 1


# ----------------------------------------------------------------------------- rules by hand
def _state(env: MPE, positions, velocities=None, message=None):
    state, _ = env.reset(jax.random.PRNGKey(0))
    pos = jnp.asarray(positions, jnp.float32)
    state = state.replace(p_pos=pos)
    if velocities is not None:
        state = state.replace(p_vel=jnp.asarray(velocities, jnp.float32))
    if message is not None:
        state = state.replace(c=state.c.at[0].set(jnp.asarray(message, jnp.float32)))
    return state


def test_boundary_penalty_values():
    pos = jnp.asarray([[0.5, -0.89], [0.95, 0.0], [-1.2, 0.0], [3.0, -0.99]])
    got = np.asarray(boundary_penalty(pos))
    assert np.allclose(got, [0.0, 0.5, np.exp(0.4), 10.0 + 0.9], atol=1e-5)


def test_world_comm_forests_hide_agents_except_from_the_leader():
    env = jaxmarl_envs.make(
        "mpe-simple_world_comm",
        num_good=1,
        num_adversaries=2,
        num_obstacles=0,
        num_food=1,
        num_forests=2,
    )
    # leader, adversary_0, agent_0 | food, forest 0, forest 1
    positions = [[0.5, 0.5], [-0.5, -0.5], [-0.55, -0.45], [0.8, -0.8], [-0.5, -0.5], [0.5, -0.5]]
    vel = np.zeros((6, 2))
    vel[2] = [0.3, -0.2]
    state = _state(env, positions, vel, message=[0.0, 1.0, 0.0, 0.0])
    view = np.asarray(env.observe(state).agents_view)
    # Sizes: adversaries 4 + 6 + 4 + 2 + 2 + 4 = 22, good agent 4 + 6 + 4 + 2 + 0 = 16.
    assert env.agent_observation_sizes == (22, 22, 16)
    rel = lambda i, o: np.asarray(positions[o]) - np.asarray(positions[i])  # noqa: E731
    # The leader (outside) still sees both, and the prey's velocity.
    assert np.allclose(view[0, 10:14], np.concatenate([rel(0, 1), rel(0, 2)]))
    assert np.allclose(view[0, 14:16], [0.3, -0.2])
    assert view[0, 16:18].tolist() == [-1.0, -1.0] and view[0, 18:22].tolist() == [0, 1, 0, 0]
    # adversary_0 shares forest 0 with the prey: sees the prey; it sees the leader too? No:
    # the leader is outside every forest while adversary_0 is inside one.
    assert np.allclose(view[1, 10:12], [0.0, 0.0])
    assert np.allclose(view[1, 12:14], rel(1, 2)) and np.allclose(view[1, 14:16], [0.3, -0.2])
    assert view[1, 16:18].tolist() == [1.0, -1.0] and view[1, 18:22].tolist() == [0, 1, 0, 0]
    # Move the prey into forest 1: adversary_0 (in forest 0) loses it.
    moved = state.replace(p_pos=state.p_pos.at[2].set(jnp.asarray([0.5, -0.5])))
    view = np.asarray(env.observe(moved).agents_view)
    assert np.allclose(view[1, 12:16], 0.0)
    assert np.allclose(view[0, 12:14], [0.0, -1.0])  # the leader always sees
    assert view[2, 14:16].tolist() == [-1.0, 1.0]  # the prey's own forest flags
    assert np.allclose(view[2, 10:14], 0.0)  # and it cannot see out of its forest
    assert np.all(view[2, 16:] == 0.0)  # padding


def test_world_comm_and_tag_rewards_by_hand():
    env = jaxmarl_envs.make(
        "mpe-simple_world_comm", num_good=1, num_adversaries=2, num_obstacles=0, num_forests=0
    )
    # leader touches the prey (0.075 + 0.045), the prey touches food 0 (0.045 + 0.03),
    # and stands at x = 0.95 (penalty 0.5 per unit, doubled).
    positions = [[0.9, 0.0], [-0.5, 0.5], [0.95, 0.0], [0.97, 0.0], [-0.8, -0.8]]
    state = _state(env, positions)
    reward = np.asarray(env.scenario.reward(state))
    prey = -5.0 - 2.0 * 0.5 + 2.0 - 0.05 * 0.02
    d_lead, d_adv = 0.05, np.hypot(1.45, 0.5)
    assert np.allclose(reward, [5.0 - 0.1 * d_lead, 5.0 - 0.1 * d_adv, prey], atol=1e-5)
    tag = jaxmarl_envs.make("mpe-simple_tag", num_good=2, num_adversaries=2, num_obstacles=0)
    # Both adversaries touch agent_0 (0.075 + 0.05); agent_1 is far out (penalty 10).
    state = _state(tag, [[0.0, 0.1], [0.1, 0.0], [0.0, 0.0], [2.5, 0.0]])
    reward = np.asarray(tag.scenario.reward(state))
    assert np.allclose(reward, [20.0, 20.0, -20.0, -10.0], atol=1e-5)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("scenario", "kwargs", "match"),
    [
        ("simple_adversary", {"N": 0}, "N must be"),
        ("simple_adversary", {"num_agent_neighbors": 0}, "num_agent_neighbors"),
        ("simple_tag", {"num_good": 0}, "num_good"),
        ("simple_tag", {"num_adversaries": 1.5}, "num_adversaries"),
        ("simple_tag", {"num_obstacles": -1}, "num_obstacles"),
        ("simple_tag", {"num_landmark_neighbors": 0}, "num_landmark_neighbors"),
        ("simple_tag", {"curriculum_stage": 3}, "curriculum_stage"),
        ("simple_world_comm", {"num_food": 0}, "num_food"),
        ("simple_world_comm", {"num_adversaries": 0}, "num_adversaries"),
        ("simple_world_comm", {"num_forests": -1}, "num_forests"),
    ],
)
def test_bad_arguments(scenario, kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxmarl_envs.make(f"mpe-{scenario}", **kwargs)


# ----------------------------------------------------------------------------- jax and adapters
def test_jit_and_vmap_agree_on_world_comm():
    env = make("simple_world_comm", True)
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    actions = jax.random.uniform(jax.random.PRNGKey(3), (3, 4, env.num_agents, 9))

    def run(key, acts):
        state, _ = env.reset(key)

        def body(state, a):
            state, ts = env.step(state, a)
            return state, (ts.observation.agents_view, ts.reward)

        return jax.lax.scan(body, state, acts)[1]

    batched = jax.jit(jax.vmap(run))(keys, actions)
    single = jax.jit(run)(keys[1], actions[1])
    for b, s in zip(batched, single, strict=True):
        assert np.allclose(np.asarray(b[1]), np.asarray(s), atol=1e-6)


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
def test_pettingzoo_parallel_api_on_world_comm(continuous):
    env_id = "mpe-simple_world_comm" + ("-continuous" if continuous else "")
    env = parallel_env(env_id, max_cycles=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=10)
    allowed = (
        "Observation space for each agent probably should be gymnasium.spaces.box",
        "Observation is not a NumPy array",
    )
    assert [str(w.message) for w in caught if not str(w.message).startswith(allowed)] == []
    obs, _ = env.reset(seed=0)
    sizes = EXPECTED_SIZES["simple_world_comm"][1]
    for i, agent in enumerate(env.possible_agents):
        view = obs[agent]["observation"] if isinstance(obs[agent], dict) else obs[agent]
        assert view.shape == (sizes[i],)  # continuous actions: no mask, a bare Box
        space = env.action_space(agent)
        expected = EXPECTED_SIZES["simple_world_comm"][3 if continuous else 2][i]
        assert (space.shape == (expected,)) if continuous else (space.n == expected)


def test_render_world_comm():
    env = make("simple_world_comm", False)
    state, _ = env.reset(jax.random.PRNGKey(0))
    frame = env.render(state)
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4
