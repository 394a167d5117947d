"""Differential tests: our Multi-CVRP against Jumanji 1.1.2's `MultiCVRP`, step by step.

Both environments run side by side (vmapped over seeds, scanned over steps) from the same
state: each episode starts from our reset translated into Jumanji's state, and restarts (with
a new key) on every episode end, so the sweeps cross many episode boundaries. Every step
compares the full state, the observation (Jumanji's fields against the matching slices of
our `agents_view`), the action mask, the reward and the step type / discount.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_envs
from jaxmarl_envs.multi_cvrp import MultiCVRP, State

jumanji = pytest.importorskip("jumanji")
from jumanji.environments.routing.multi_cvrp import types as jt  # noqa: E402
from jumanji.environments.routing.multi_cvrp.env import MultiCVRP as JMultiCVRP  # noqa: E402
from jumanji.environments.routing.multi_cvrp.generator import (  # noqa: E402
    UniformRandomGenerator as JGenerator,
)

pytestmark = pytest.mark.reference


# ----------------------------------------------------------------------------- translation
def to_jumanji(state: State) -> jt.State:
    """Our state as Jumanji's (its step count starts at 1; its route history has no slot for
    the last step)."""
    horizon = state.order.shape[-1] - 1
    return jt.State(
        nodes=jt.Node(coordinates=state.coordinates, demands=state.demands.astype(jnp.int16)),
        windows=jt.TimeWindow(start=state.window_start, end=state.window_end),
        coeffs=jt.PenalityCoeff(early=state.early_coef, late=state.late_coef),
        vehicles=jt.StateVehicle(
            local_times=state.local_times,
            capacities=state.capacities.astype(jnp.int16),
            positions=state.positions.astype(jnp.int16),
            distances=state.distances,
            time_penalties=state.time_penalties,
        ),
        order=state.order[..., :horizon].astype(jnp.int16),
        step_count=(state.step_count + 1).astype(jnp.int16),
        action_mask=jaxmarl_envs.multi_cvrp.generator.action_mask(state.demands, state.capacities),
        key=state.key,
    )


def expected_view(env: MultiCVRP, obs) -> jax.Array:
    """The `agents_view` that Jumanji's observation `obs` stands for (our documented layout)."""
    p = env.problem
    n = env.num_agents
    t_scale, cap = p.max_end_window, p.max_capacity
    veh = jnp.concatenate(
        [
            obs.vehicles.coordinates / p.map_max,
            (obs.vehicles.local_times / t_scale)[:, None],
            (obs.vehicles.capacities.astype(jnp.int32) / cap)[:, None],
        ],
        axis=1,
    )
    roll = (np.arange(n)[:, None] + np.arange(n)[None, :]) % n
    nodes = jnp.concatenate(
        [
            obs.nodes.coordinates[:, 0] / p.map_max,
            obs.nodes.coordinates[:, 1] / p.map_max,
            obs.nodes.demands.astype(jnp.int32) / cap,
            obs.windows.start / t_scale,
            obs.windows.end / t_scale,
            obs.coeffs.early,
            obs.coeffs.late,
        ]
    )
    return jnp.concatenate(
        [veh[roll].reshape(n, -1), jnp.broadcast_to(nodes, (n, nodes.shape[0]))], axis=1
    ).astype(jnp.float32)


def make_pair(num_customers: int, num_vehicles: int):
    ours = MultiCVRP(num_customers=num_customers, num_vehicles=num_vehicles)
    ref = JMultiCVRP(generator=JGenerator(num_customers=num_customers, num_vehicles=num_vehicles))
    return ours, ref


def _select(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


@functools.cache
def lockstep(num_customers: int, num_vehicles: int, steps: int, masked_share: float):
    """A jitted `run(keys) -> per-step records` of both environments over a batch of seeds."""
    ours, ref = make_pair(num_customers, num_vehicles)
    nodes = num_customers + 1

    def one(key):
        key, reset_key = jax.random.split(key)
        state, ts = ours.reset(reset_key)
        jstate = to_jumanji(state)

        def body(carry, key):
            state, jstate = carry
            k_act, k_any, k_mix, k_reset = jax.random.split(key, 4)
            mask = ours._observe(state).action_mask
            logits = jnp.where(mask, 0.0, -jnp.inf)
            legal = jax.random.categorical(k_act, logits, axis=-1)
            anything = jax.random.randint(k_any, (num_vehicles,), 0, nodes)
            pick = jax.random.uniform(k_mix, (num_vehicles,)) < masked_share
            action = jnp.where(pick, anything, legal).astype(jnp.int32)
            state2, ts = ours.step(state, action)
            jstate2, jts = ref.step(jstate, action.astype(jnp.int16))
            record = dict(
                action=action,
                ours_state=state2,
                ref_state=jstate2,
                ours_view=ts.observation.agents_view,
                ref_view=expected_view(ours, jts.observation),
                ours_mask=ts.observation.action_mask,
                ref_mask=jts.observation.action_mask,
                ours_reward=ts.reward,
                ref_reward=jts.reward,
                ours_last=ts.last(),
                ref_last=jts.last(),
                ours_discount=ts.discount,
                ref_discount=jts.discount,
                ours_terminated=ts.terminated,
                ours_truncated=ts.truncated,
            )
            # Compared here (scalars per step), so large sweeps keep little in memory.
            record = {**checks(record, num_customers, jnp), "last": ts.last()}
            # Restart both from a fresh problem (translated) when the episode ended.
            fresh, _ = ours.reset(k_reset)
            state2 = _select(ts.last(), fresh, state2)
            jstate2 = _select(ts.last(), to_jumanji(fresh), jstate2)
            return (state2, jstate2), record

        _, records = jax.lax.scan(body, (state, jstate), jax.random.split(key, steps))
        return records

    return jax.jit(jax.vmap(one))


def checks(r: dict, num_customers: int, xp) -> dict:
    """Named agreement checks of one step's record (`xp`: numpy or jax.numpy)."""
    o, j = r["ours_state"], r["ref_state"]
    horizon = 2 * num_customers
    close = dict(rtol=1e-6, atol=1e-5)
    return {
        "demands": xp.array_equal(o.demands, j.nodes.demands.astype(xp.int32)),
        "positions": xp.array_equal(o.positions, j.vehicles.positions.astype(xp.int32)),
        "capacities": xp.array_equal(o.capacities, j.vehicles.capacities.astype(xp.int32)),
        "step_count": xp.array_equal(o.step_count + 1, j.step_count.astype(xp.int32)),
        "order": xp.array_equal(o.order[..., :horizon], j.order.astype(xp.int32)),
        "coordinates": xp.array_equal(o.coordinates, j.nodes.coordinates),
        "local_times": xp.allclose(o.local_times, j.vehicles.local_times, **close),
        "distances": xp.allclose(o.distances, j.vehicles.distances, **close),
        "time_penalties": xp.allclose(o.time_penalties, j.vehicles.time_penalties, **close),
        "mask": xp.array_equal(r["ours_mask"], r["ref_mask"]),
        "state_mask": xp.array_equal(r["ours_mask"], j.action_mask),
        "view": xp.allclose(r["ours_view"], r["ref_view"], rtol=1e-6, atol=1e-6),
        # One team reward per vehicle; Jumanji's is a scalar.
        "reward": xp.allclose(r["ours_reward"], r["ref_reward"][..., None], rtol=1e-5, atol=1e-4),
        "last": xp.array_equal(r["ours_last"], r["ref_last"]),
        "discount": xp.array_equal(
            r["ours_discount"], r["ref_discount"][..., None] + 0 * r["ours_discount"]
        ),
        # Every end is a termination (Jumanji's step limit included), never a truncation.
        "terminated": xp.array_equal(r["ours_terminated"].all(-1), r["ours_last"]),
        "not_truncated": ~xp.any(r["ours_truncated"]),
    }


def compare(records, num_customers: int) -> int:
    """Asserts every per-step check held; returns how many episode ends were crossed."""
    flags = jax.device_get(records)
    for name, ok in flags.items():
        if name != "last":
            assert np.all(ok), f"{name} differs from Jumanji at {np.argwhere(~ok)[:5].tolist()}"
    return int(np.sum(flags["last"]))


@pytest.mark.parametrize(("customers", "vehicles"), [(20, 2)])
def test_reset_matches_jumanji_reset(customers, vehicles):
    """The same reset key gives the same problem as Jumanji's generator."""
    ours, ref = make_pair(customers, vehicles)
    keys = jax.random.split(jax.random.PRNGKey(7), 16)
    state, ts = jax.jit(jax.vmap(ours.reset))(keys)
    jstate, jts = jax.jit(jax.vmap(ref.reset))(keys)
    assert np.array_equal(state.coordinates, jstate.nodes.coordinates)
    assert np.array_equal(state.demands, np.asarray(jstate.nodes.demands, np.int32))
    assert np.array_equal(state.window_start, jstate.windows.start)
    assert np.array_equal(state.window_end, jstate.windows.end)
    assert np.array_equal(state.early_coef, jstate.coeffs.early)
    assert np.array_equal(state.late_coef, jstate.coeffs.late)
    assert np.array_equal(state.capacities, np.asarray(jstate.vehicles.capacities, np.int32))
    assert np.array_equal(ts.observation.action_mask, jts.observation.action_mask)
    view = jax.jit(jax.vmap(lambda o: expected_view(ours, o)))(jts.observation)
    assert np.allclose(ts.observation.agents_view, view)


@pytest.mark.parametrize(
    ("customers", "vehicles", "masked_share"), [(6, 2, 0.0), (6, 3, 0.3), (20, 2, 0.1)]
)
def test_lockstep_short(customers, vehicles, masked_share):
    """A short sweep (default run): 32 seeds, 40 steps, several episode ends each."""
    run = lockstep(customers, vehicles, 40, masked_share)
    ends = compare(run(jax.random.split(jax.random.PRNGKey(customers + vehicles), 32)), customers)
    assert ends >= 32


@pytest.mark.slow
@pytest.mark.parametrize(
    ("customers", "vehicles"), [(6, 2), (6, 3), (20, 2), (20, 3), (50, 4), (100, 5), (150, 5)]
)
def test_lockstep_sweep(customers, vehicles):
    """Large sweep: 256 seeds, 6 episodes' worth of steps, legal and masked actions."""
    run = lockstep(customers, vehicles, 12 * customers, 0.2)
    ends = compare(run(jax.random.split(jax.random.PRNGKey(customers * vehicles), 256)), customers)
    assert ends >= 256
