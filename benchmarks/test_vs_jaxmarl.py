"""Our MPE against JaxMARL 0.2.0's MPE under the strict protocol of issue 18 (optional:
needs `pip install --no-deps jaxmarl==0.2.0 jaxtyping wadler_lindig`, see pyproject's
`bench` extra).

Run: `pytest benchmarks/test_vs_jaxmarl.py -s -p no:randomly` (not `--benchmark-only`,
which would skip the speed-up checks that compare the measurements).

Protocol (`common.make_strict_run`, `common.interleaved_ratio`): every timed call resets the
whole batch of 1024 from a fresh key, then runs 100 random legal discrete actions in one
`lax.scan`, reducing every observation array and the reward into a checksum every step;
ours and JaxMARL's calls alternate A/B/A/B in this process and the speed-up is the median
(and range) over rounds of `time_jaxmarl / time_ours`. Batch 1: a Python loop over a jitted
single-environment step, the observation and reward pulled to numpy every step, interleaved
likewise.

Like for like: the same scenario sizes (simple_spread: 3 agents, 3 landmarks, observation
18; simple_tag: 3 adversaries, 1 good agent, 2 obstacles, observations 16/14), discrete
actions (5 per agent) on both sides, both auto-resetting inside the step, and equal
episodes of 25 steps: JaxMARL ends an episode on the step taken at `state.step >=
max_steps` (so its default `max_steps=25` gives 26-step episodes) and we set
`max_steps=24`; ours ends on the step that makes the count reach `max_cycles=25`.
JaxMARL's observations are a dict of per-agent arrays and its rewards a dict of scalars;
the adapter below stacks the rewards inside the jitted step and the checksum reduces every
observation array of the dict.

Targets (issue 18), on a 2-core CPU: batch 1024, mpe-simple_spread and mpe-simple_tag
>= 3x JaxMARL; batch-1 Python loop on mpe-simple_spread >= 2x JaxMARL (not met: see
`test_python_loop_breakdown`, which times the same loop with steps that do no environment
work behind each side's pytrees, and the cheapest step the loop could drive:
`pytest benchmarks/test_vs_jaxmarl.py -s -p no:randomly -n 0 -k breakdown`).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from common import (
    benchmark_ratio,
    check_target,
    format_ratio_table,
    make_python_loop,
    make_strict_run,
    ours,
)

# Any ImportError skips: also a JaxMARL whose own imports (jaxtyping) are missing.
jaxmarl = pytest.importorskip(
    "jaxmarl",
    reason="JaxMARL 0.2.0 is an optional peer: pip install --no-deps jaxmarl==0.2.0 jaxtyping",
    exc_type=ImportError,
)

BATCH = 1024
ROUNDS = 7
LOOP_STEPS = 500
LOOP_ROUNDS = 7
#: JaxMARL's id of each of our environments.
PEERS = {"mpe-simple_spread": "MPE_simple_spread_v3", "mpe-simple_tag": "MPE_simple_tag_v3"}
#: JaxMARL's `max_steps` giving our 25-step episodes (it ends at `step >= max_steps`).
JAXMARL_MAX_STEPS = 24
#: Speed-up targets of issue 18 (ours / JaxMARL, same run).
TARGETS = {"mpe-simple_spread": 3.0, "mpe-simple_tag": 3.0}
LOOP_ENV = "mpe-simple_spread"
LOOP_TARGET = 2.0
_MEASURED: dict[str, dict] = {}


def _jaxmarl(name: str):
    """`(reset, step, mask_of, obs_of)` of JaxMARL's peer of our `name` in our calling
    convention: state `(jaxmarl_state, key)`, action `(num_agents,)` int32, timestep a dict
    with the observation dict and the stacked rewards. JaxMARL's `step` auto-resets."""
    env = jaxmarl.make(PEERS[name], max_steps=JAXMARL_MAX_STEPS)
    agents = tuple(env.agents)
    num_actions = int(env.action_space(agents[0]).n)
    if any(int(env.action_space(a).n) != num_actions for a in agents):
        raise ValueError(f"{PEERS[name]}: agents have different action counts")

    def reset(key):
        key, sub = jax.random.split(key)
        obs, state = env.reset(sub)
        reward = jax.numpy.zeros((len(agents),), jax.numpy.float32)
        return (state, key), {"observation": obs, "reward": reward}

    def step(carry, action):
        state, key = carry
        key, sub = jax.random.split(key)
        actions = {a: action[i] for i, a in enumerate(agents)}
        obs, state, rewards, _, _ = env.step(sub, state, actions)
        reward = jax.numpy.stack([rewards[a] for a in agents]).astype(jax.numpy.float32)
        return (state, key), {"observation": obs, "reward": reward}

    def mask_of(ts):
        # Every action is legal (a constant, like a user would hold it: no device transfer).
        return np.ones(np.shape(ts["reward"]) + (num_actions,), bool)

    def obs_of(ts):
        return (ts["observation"], ts["reward"])

    return reset, step, mask_of, obs_of


def _check_like_for_like(name: str) -> None:
    """Same agent count, observation sizes and episode length on both sides."""
    import jaxmarl_envs

    mine = jaxmarl_envs.make(name)
    peer = jaxmarl.make(PEERS[name], max_steps=JAXMARL_MAX_STEPS)
    sizes = tuple(peer.observation_space(a).shape[0] for a in peer.agents)
    assert mine.agent_observation_sizes == sizes
    assert mine.agent_action_sizes == tuple(peer.action_space(a).n for a in peer.agents)
    # Episode length: count steps until JaxMARL's done on a fixed action.
    _, state = peer.reset(jax.random.PRNGKey(0))
    noop = {a: 0 for a in peer.agents}
    length = 0
    done = False
    while not done:
        _, state, _, dones, _ = peer.step_env(jax.random.PRNGKey(1), state, noop)
        length += 1
        done = bool(dones["__all__"])
    assert length == mine.max_cycles == 25


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_strict_vs_jaxmarl(benchmark, env_id):
    _check_like_for_like(env_id)
    run_ours = make_strict_run(*ours(env_id), batch=BATCH)
    reset, step, mask_of, obs_of = _jaxmarl(env_id)
    run_peer = make_strict_run(reset, step, mask_of, obs_of, batch=BATCH)
    res = benchmark_ratio(
        benchmark,
        run_ours,
        run_peer,
        peer="jaxmarl",
        group=f"vs-jaxmarl-strict-{env_id}",
        label=env_id,
        work=BATCH * 100,
        rounds=ROUNDS,
        info={
            "env_id": env_id,
            "peer": f"jaxmarl 0.2.0 {PEERS[env_id]} max_steps={JAXMARL_MAX_STEPS}",
            "batch": BATCH,
            "protocol": "strict (issue 18)",
        },
    )
    _MEASURED[env_id] = res
    assert res["median"] > 0


#: The batch-1 loops: key -> (our loop resets on LAST from Python, label, protocol).
LOOPS = {
    "loop": (
        False,
        f"{LOOP_ENV} batch-1 loop",
        "Python loop over a jitted step, observation and reward to numpy",
    ),
    "loop_reset_on_last": (
        True,
        f"{LOOP_ENV} batch-1 loop, ours resets on LAST",
        "Python loop; ours: env.step + jitted reset on LAST; JaxMARL: auto-reset",
    ),
}


@pytest.mark.parametrize("key", list(LOOPS))
def test_python_loop_vs_jaxmarl(benchmark, key):
    """Batch 1, interleaved. `loop`: both sides step an auto-resetting jitted step.
    `loop_reset_on_last`: our side the Gymnasium way, our environment's own step (no
    auto-reset inside the jitted call) and a jitted `reset` from Python when the timestep is
    LAST (read every step); JaxMARL's public `step` always auto-resets, so its side is the
    same loop. Every episode is played to its end and reset on both sides."""
    import jaxmarl_envs

    reset_on_last, label, protocol = LOOPS[key]
    if reset_on_last:
        env = jaxmarl_envs.make(LOOP_ENV)
        mine = (env.reset, env.step, lambda ts: ts.observation.action_mask)
    else:
        mine = ours(LOOP_ENV)
    run_ours = make_python_loop(*mine, steps=LOOP_STEPS, reset_on_last=reset_on_last)
    reset, step, mask_of, obs_of = _jaxmarl(LOOP_ENV)
    run_peer = make_python_loop(reset, step, mask_of, steps=LOOP_STEPS, obs_of=obs_of)
    res = benchmark_ratio(
        benchmark,
        run_ours,
        run_peer,
        peer="jaxmarl",
        group=f"vs-jaxmarl-{key.replace('_', '-')}-{LOOP_ENV}",
        label=label,
        work=LOOP_STEPS,
        rounds=LOOP_ROUNDS,
        info={"env_id": LOOP_ENV, "batch": 1, "protocol": protocol},
    )
    _MEASURED[key] = res
    assert res["median"] > 0


@pytest.mark.parametrize("env_id", list(TARGETS))
def test_speedup_target(env_id):
    """The issue's batch-1024 target from the interleaved measurement above (same run)."""
    check_target(_MEASURED, env_id, TARGETS[env_id], f"{env_id} vs JaxMARL")


def test_python_loop_target():
    """The issue's batch-1 target on simple_spread."""
    check_target(_MEASURED, "loop", LOOP_TARGET, f"{LOOP_ENV} batch-1 loop vs JaxMARL")


def test_print_table():
    """Prints every comparison of this run in one table (for RESULTS.md)."""
    rows = [(k, v) for k, v in _MEASURED.items() if not k.startswith("loop")]
    work = {k: BATCH * 100 for k, _ in rows}
    for key, (_, label, _) in LOOPS.items():
        if key in _MEASURED:
            rows.append((label, _MEASURED[key]))
            work[label] = LOOP_STEPS
    if not rows:
        pytest.skip("nothing measured in this run")
    head = "A = ours, B = JaxMARL 0.2.0; ratio = B time / A time"
    print(f"\n{head}\n" + format_ratio_table(rows, work))
    assert all(r["median"] > 0 for _, r in rows)


def _example_args(reset, mask_of):
    """`(state, action)` to trace or compile a step with: a reset state and all-zero actions."""
    state, ts = jax.jit(reset)(jax.random.PRNGKey(0))
    return state, np.zeros(np.shape(mask_of(ts))[:-1], np.int32)


def _empty_step(reset, step, mask_of):
    """A jitted-step stand-in with the same input and output pytrees as `step` that does no
    environment work: it reads one element of every input array (so none is pruned and the
    action is still transferred) and writes every output as that sum broadcast to the real
    output's shape and dtype. What the loop costs for the interface alone: dispatch, argument
    and output buffers, transfers, the loop's own Python and numpy (well under XLA's
    1,000-flop threshold, so it always runs inline)."""
    import jax.numpy as jnp

    shapes = jax.eval_shape(step, *_example_args(reset, mask_of))

    def empty(state, action):
        leaves = jax.tree_util.tree_leaves((state, action))
        dep = sum(jnp.ravel(x)[0].astype(jnp.int32) for x in leaves if x.size)
        return jax.tree_util.tree_map(lambda s: jnp.full(s.shape, dep).astype(s.dtype), shapes)

    return reset, empty, mask_of


def _least_step():
    """The cheapest step the loop can drive: a scalar state and only the three arrays the loop
    reads (observation `(3, 18)`, action mask `(3, 5)`, reward `(3,)`). Any environment with
    a jitted step pays at least this per step in this loop."""
    import jax.numpy as jnp

    def reset(key):
        ts = {"obs": jnp.zeros((3, 18)), "mask": jnp.ones((3, 5), bool), "reward": jnp.zeros(3)}
        return jnp.zeros((), jnp.int32), ts

    def step(state, action):
        obs = jnp.zeros((3, 18)) + action[:, None]
        return state + 1, {"obs": obs, "mask": jnp.ones((3, 5), bool), "reward": jnp.zeros(3)}

    return reset, step, lambda ts: ts["mask"], lambda ts: (ts["obs"], ts["reward"])


def test_python_loop_breakdown(benchmark):
    """Where the batch-1 loop's time goes: each side's real step against a step with the same
    pytrees that computes nothing (the interface's own cost), plus the cheapest step any
    environment could hand this loop (three output arrays). Round-robin over the five loops
    in one process, 7 rounds of 500 steps after a compiling round; medians in us per step.
    Run with `JAXMARL_CPU_SYNC_DISPATCH=1` in the environment (jaxmarl_envs/_xla_flags.py) to
    see the same loops with every computation run inline in the calling thread (XLA's CPU
    client otherwise runs an executable inline only when its cost analysis is under 1,000
    flops)."""
    import os
    import statistics
    import time

    mine = ours(LOOP_ENV)
    peer = _jaxmarl(LOOP_ENV)
    least = _least_step()
    loops = {
        "ours: environment step": make_python_loop(*mine, steps=LOOP_STEPS),
        "ours: empty step, same pytrees": make_python_loop(*_empty_step(*mine), steps=LOOP_STEPS),
        "jaxmarl: environment step": make_python_loop(*peer[:3], steps=LOOP_STEPS, obs_of=peer[3]),
        "jaxmarl: empty step, same pytrees": make_python_loop(
            *_empty_step(*peer[:3]), steps=LOOP_STEPS, obs_of=peer[3]
        ),
        "least possible step (3 outputs)": make_python_loop(
            *least[:3], steps=LOOP_STEPS, obs_of=least[3]
        ),
    }
    flops = {}
    for side, (reset, step, mask_of, *_) in {"ours": mine, "jaxmarl": peer}.items():
        cost = jax.jit(step).lower(*_example_args(reset, mask_of)).compile().cost_analysis()
        flops[side] = float((cost[0] if isinstance(cost, list) else cost)["flops"])

    def measure():
        times = {k: [] for k in loops}
        for r in range(8):  # the first round compiles
            for name, run in loops.items():
                start = time.perf_counter()
                run(jax.random.PRNGKey(r))
                if r:
                    times[name].append((time.perf_counter() - start) / LOOP_STEPS)
        return times

    benchmark.group = f"vs-jaxmarl-loop-breakdown-{LOOP_ENV}"
    load = os.getloadavg()
    times = benchmark.pedantic(measure, rounds=1)
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    peer_real = times["jaxmarl: environment step"]
    from jaxmarl_envs._xla_flags import SYNC_DISPATCH_ENV  # applied at import

    sync = os.environ.get(SYNC_DISPATCH_ENV) == "1"
    mode = f"off ({SYNC_DISPATCH_ENV}=1)" if sync else "on (default)"
    print(f"\n{LOOP_ENV} batch-1 loop, async dispatch {mode}, load {load} -> {os.getloadavg()}")
    print(
        f"  compiled step cost analysis: ours {flops['ours']:.0f} flops, "
        f"jaxmarl {flops['jaxmarl']:.0f} flops (inline below 1,000)"
    )
    for name, us in med.items():
        ratio = statistics.median(p / t for p, t in zip(peer_real, times[name], strict=True))
        print(f"  {name:36s} {us:7.1f} us/step   jaxmarl environment step / this {ratio:5.2f}x")
    work = {
        s: med[f"{s}: environment step"] - med[f"{s}: empty step, same pytrees"]
        for s in ("ours", "jaxmarl")
    }
    print(
        f"  environment work (step minus empty step): ours {work['ours']:.1f} us, "
        f"jaxmarl {work['jaxmarl']:.1f} us"
    )
    benchmark.extra_info.update({"us_per_step": med, "flops": flops, "async_dispatch": mode})
    assert med["least possible step (3 outputs)"] < med["ours: environment step"]
