"""Our SMAX against JaxMARL 0.2.0's `HeuristicEnemySMAX` under the strict protocol of issue 18
(optional: needs `pip install --no-deps jaxmarl==0.2.0 jaxtyping wadler_lindig`).

Run: `pytest benchmarks/test_vs_jaxmarl_smax.py -s -p no:randomly` (not `--benchmark-only`,
which would skip the speed-up checks that compare the measurements).

Protocol (`common.make_strict_run`, `common.interleaved_ratio`): every timed call resets the
whole batch of 1024 from a fresh key, then runs 100 random legal actions (from each side's
own action mask) in one `lax.scan`, reducing every agent observation, the action mask and
the reward into a checksum every step; ours and JaxMARL's calls alternate A/B/A/B in this
process and the speed-up is the median (and range) over rounds of `time_jaxmarl /
time_ours`.

Like for like: the same scenario (3m: 3 marines a side; 2s3z: 2 stalkers and 3 zealots a
side), the same heuristic enemy, observations ("unit list", 75 and 127 values per agent),
masks and rewards (tests/test_smax_reference.py checks them equal step by step), both
auto-resetting inside the step, and equal episodes of at most 100 steps: JaxMARL ends an
episode on the step taken at `state.step >= max_steps` (so `max_steps=99` gives 100-step
episodes). Neither side's world state (the centralised-critic input) is consumed: JaxMARL
always builds it inside its step, where XLA drops it as unused; ours builds it only under
the `GlobalState` wrapper.

Targets (issue 21), on a 2-core CPU: batch 1024, smax-3m and smax-2s3z >= 3x JaxMARL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from common import benchmark_ratio, check_target, format_ratio_table, make_strict_run, ours

jaxmarl = pytest.importorskip(
    "jaxmarl",
    reason="JaxMARL 0.2.0 is an optional peer: pip install --no-deps jaxmarl==0.2.0 jaxtyping",
    exc_type=ImportError,
)

BATCH = 1024
ROUNDS = 5
#: JaxMARL's scenario name of each of our ids.
PEERS = {"smax-3m": "3m", "smax-2s3z": "2s3z"}
#: JaxMARL's `max_steps` giving our 100-step episodes (it ends at `step >= max_steps`).
JAXMARL_MAX_STEPS = 99
#: Speed-up targets of issue 21 (ours / JaxMARL, same run).
TARGETS = {"smax-3m": 3.0, "smax-2s3z": 3.0}
_MEASURED: dict[str, dict] = {}


def _peer_env(name: str):
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario

    return HeuristicEnemySMAX(
        scenario=map_name_to_scenario(PEERS[name]), max_steps=JAXMARL_MAX_STEPS
    )


def _jaxmarl(name: str):
    """`(reset, step, mask_of, obs_of)` of JaxMARL's `HeuristicEnemySMAX` in our calling
    convention: state `(jaxmarl_state, key)`, action `(num_agents,)` int32, timestep a dict
    of the stacked agent observations, masks and rewards. JaxMARL's `step` auto-resets."""
    env = _peer_env(name)
    agents = tuple(env.agents)

    def pack(obs, state, reward):
        avail = env.get_avail_actions(state)
        return {
            "observation": jnp.stack([obs[a] for a in agents]),
            "action_mask": jnp.stack([avail[a] for a in agents]).astype(bool),
            "reward": reward,
        }

    def reset(key):
        key, sub = jax.random.split(key)
        obs, state = env.reset(sub)
        return (state, key), pack(obs, state, jnp.zeros((len(agents),), jnp.float32))

    def step(carry, action):
        state, key = carry
        key, sub = jax.random.split(key)
        actions = {a: action[i] for i, a in enumerate(agents)}
        obs, state, rewards, _, _ = env.step(sub, state, actions)
        reward = jnp.stack([rewards[a] for a in agents]).astype(jnp.float32)
        return (state, key), pack(obs, state, reward)

    def obs_of(ts):
        return (ts["observation"], ts["action_mask"], ts["reward"])

    return reset, step, lambda ts: ts["action_mask"], obs_of


def _ours_obs(ts):
    return (ts.observation.agents_view, ts.observation.action_mask, ts.reward)


def _check_like_for_like(name: str) -> None:
    """Same agents, observation and action sizes, and episode length on both sides."""
    import jaxmarl_envs

    mine = jaxmarl_envs.make(name)
    peer = _peer_env(name)
    assert mine.num_agents == len(peer.agents)
    assert mine.obs_dim == peer.observation_space(peer.agents[0]).shape[0]
    assert list(mine.action_spec.num_values) == [peer.action_space(a).n for a in peer.agents]
    _, state = peer.reset(jax.random.PRNGKey(0))
    stop = {a: 4 for a in peer.agents}
    length, done = 0, False
    step = jax.jit(peer.step_env)
    while not done and length < 200:
        # Allies stand still; the heuristic enemy may win first: then compare that length.
        _, state, _, dones, _ = step(jax.random.PRNGKey(length), state, stop)
        length += 1
        done = bool(dones["__all__"])
    assert length <= mine.time_limit == JAXMARL_MAX_STEPS + 1


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_strict_vs_jaxmarl_smax(benchmark, env_id):
    _check_like_for_like(env_id)
    reset, step, mask_of = ours(env_id)
    run_ours = make_strict_run(reset, step, mask_of, _ours_obs, batch=BATCH)
    run_peer = make_strict_run(*_jaxmarl(env_id), batch=BATCH)
    res = benchmark_ratio(
        benchmark,
        run_ours,
        run_peer,
        peer="jaxmarl",
        group=f"vs-jaxmarl-smax-strict-{env_id}",
        label=env_id,
        work=BATCH * 100,
        rounds=ROUNDS,
        info={
            "env_id": env_id,
            "peer": f"jaxmarl 0.2.0 HeuristicEnemySMAX {PEERS[env_id]} max_steps=99",
            "batch": BATCH,
            "protocol": "strict (issue 18)",
        },
    )
    _MEASURED[env_id] = res
    assert res["median"] > 0


def test_memory_per_environment():
    """Bytes of one environment's state and timestep (ours without wrappers; JaxMARL's state,
    key and the stacked observations, masks and rewards), recorded for RESULTS.md."""
    import jaxmarl_envs

    rows = []
    for env_id in TARGETS:
        state, ts = jax.eval_shape(jaxmarl_envs.make(env_id).reset, jax.random.PRNGKey(0))
        mine = sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves((state, ts)))
        peer_reset = _jaxmarl(env_id)[0]
        pstate, pts = jax.eval_shape(peer_reset, jax.random.PRNGKey(0))
        theirs = sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves((pstate, pts)))
        rows.append((env_id, int(mine), int(theirs)))
        print(f"\n{env_id}: ours {mine} B per environment (state + timestep), JaxMARL {theirs} B")
    assert all(m > 0 and t > 0 for _, m, t in rows)


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_speedup_target(env_id):
    """The issue's batch-1024 target from the interleaved measurement above (same run)."""
    check_target(_MEASURED, env_id, TARGETS[env_id], f"{env_id} vs JaxMARL HeuristicEnemySMAX")


def test_print_table():
    """Prints every comparison of this run in one table (for RESULTS.md)."""
    rows = list(_MEASURED.items())
    if not rows:
        pytest.skip("nothing measured in this run")
    head = "A = ours, B = JaxMARL 0.2.0 HeuristicEnemySMAX; ratio = B time / A time"
    print(f"\n{head}\n" + format_ratio_table(rows, {k: BATCH * 100 for k, _ in rows}))
    assert all(r["median"] > 0 for _, r in rows)
