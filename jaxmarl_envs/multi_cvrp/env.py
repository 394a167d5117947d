"""Multi-vehicle routing with capacities and soft time windows in pure JAX, matching
Jumanji 1.1.2's `MultiCVRP-v0` step for step."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.multi_cvrp import constants as C
from jaxmarl_envs.multi_cvrp.generator import (
    Generator,
    Problem,
    UniformRandomGenerator,
    action_mask,
    problem_from_settings,
)
from jaxmarl_envs.multi_cvrp.types import Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart


def time_penalties(times, start, end, early, late) -> chex.Array:
    """Early and late penalties of arriving at `times` at windows `[start, end]`."""
    early_pen = jnp.where(times < start, (start - times) * early, 0.0)
    late_pen = jnp.where(times > end, (times - end) * late, 0.0)
    return early_pen + late_pen


def _distance(a: chex.Array, b: chex.Array) -> chex.Array:
    """Euclidean distances between matching rows of `a` and `b` (broadcast), `(..., 2)`.

    Written out (not `jnp.linalg.norm`, whose two-element reduction XLA's CPU backend
    runs as a separate, slow kernel); the same float32 value."""
    d = a - b
    return jnp.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])


class MultiCVRP(Environment[State]):
    """Multi-CVRP: vehicles with capacities serve customers with demands and soft time windows.

    A pure-JAX reimplementation of Jumanji 1.1.2's `MultiCVRP` (Zhang et al. 2020, "Multi-Vehicle
    Routing Problems with Soft Time Windows: A Multi-Agent Reinforcement Learning Approach")
    with its default `DenseReward`: the same problems from the same reset key, the same
    transitions, masks, rewards and episode ends. `N` vehicles start empty at the depot
    (node 0); `C` customers each have a position, a demand, a time window and early/late
    penalty coefficients.

    - observation: `Observation`
        - agents_view: `(N, 4 N + 7 (C + 1))` float32 (details in `types.Observation`): the
          vehicles (own first) and every node, scaled by the map size, the latest window end
          and the vehicle capacity. It carries exactly Jumanji's observation (node
          coordinates, demands, windows, coefficients; vehicle coordinates, local times and
          capacities), rescaled, plus the per-vehicle ordering.
        - action_mask: `(N, C + 1)` bool, Jumanji's mask: the depot always; a customer with
          remaining demand no larger than the vehicle's remaining capacity.
    - action: `(N,)` int32, the next node of each vehicle in `[0, C]`. A masked choice sends
      the vehicle to the depot (as in Jumanji). When several vehicles pick the same customer,
      the lowest-index vehicle goes there and the others go to the depot.
    - reward: `(N,)` float32, one team reward repeated per vehicle: minus the distance all
      vehicles travelled this step minus the early/late penalties they collected (time is
      distance; arriving at `t` before a window's start costs `(start - t) * early`, after its
      end `(t - end) * late`). On the step that reaches the step limit the reward is instead
      Jumanji's estimate of the worst remaining cost (minus twice the depot distances of the
      customers still waiting and their penalties at the vehicles' mean time plus that
      distance).
    - termination: all demands served and every vehicle back at the depot, or `2 C` steps
      taken (Jumanji's step limit, which it ends with a terminal penalty; we report it as
      termination too, with discount 0, since the reward already stands in for the rest).
      Never truncated; `time_limit` (default `2 C`) sets that step limit.
    - state: `State` with the nodes `(C + 1, ...)`, vehicles `(N, ...)`, route history
      `(N, 2 C + 1)`, key and step count.

    Example:
        >>> import jax, jaxmarl_envs
        >>> env = jaxmarl_envs.make("multicvrp-20c-2v")
        >>> state, ts = env.reset(jax.random.PRNGKey(0))
        >>> state, ts = jax.jit(env.step)(state, jax.numpy.zeros(2, jax.numpy.int32))
        >>> ts.observation.action_mask.shape
        (2, 21)
    """

    name = "multi_cvrp"

    def __init__(
        self,
        num_customers: int = 20,
        num_vehicles: int = 2,
        map_max: float | None = None,
        max_capacity: int | None = None,
        max_start_window: float | None = None,
        early_coef_range: tuple[float, float] | None = None,
        late_coef_range: tuple[float, float] | None = None,
        demand_max: int | None = None,
        time_window_length: float = C.TIME_WINDOW_LENGTH,
        time_limit: int | None = None,
        generator: Generator | None = None,
        viewer: Any | None = None,
    ):
        """Builds the environment; every argument is checked here (ValueError naming it).

        Args:
            num_customers, num_vehicles: problem size. With the other problem parameters left
                None, the published scenario of this size is used (customers in
                {6, 20, 50, 100, 150}, see `constants.SETTINGS`); giving all of `map_max`,
                `max_capacity`, `max_start_window`, `early_coef_range`, `late_coef_range`
                and `demand_max` defines a custom problem of any size.
            map_max, max_capacity, max_start_window, early_coef_range, late_coef_range,
            demand_max, time_window_length: problem parameters (see `generator.Problem`).
            time_limit: the step limit (default Jumanji's `2 * num_customers`), where the
                episode ends with the worst-case penalty (see the class docstring). Route
                history for rendering covers the first `2 * num_customers` steps.
            generator: initial-state sampler; when given, its problem defines the scenario
                (the problem arguments above are ignored).
            viewer: object with `render(state) -> uint8 (H, W, 3)` (default
                `MultiCVRPViewer`).
        """
        if generator is None:
            for name, value in (("num_customers", num_customers), ("num_vehicles", num_vehicles)):
                if isinstance(value, bool) or int(value) != value or value < 1:
                    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
            custom = dict(
                map_max=map_max,
                max_capacity=max_capacity,
                max_start_window=max_start_window,
                early_coef_range=early_coef_range,
                late_coef_range=late_coef_range,
                demand_max=demand_max,
            )
            given = [k for k, v in custom.items() if v is not None]
            if not given:
                problem = problem_from_settings(int(num_customers), int(num_vehicles))
                if time_window_length != C.TIME_WINDOW_LENGTH:
                    problem = Problem(
                        **{**problem.__dict__, "time_window_length": float(time_window_length)}
                    )
            elif len(given) == len(custom):
                problem = Problem(
                    num_customers=int(num_customers),
                    num_vehicles=int(num_vehicles),
                    map_max=float(map_max),
                    max_capacity=int(max_capacity),
                    max_start_window=float(max_start_window),
                    early_coef_range=tuple(float(x) for x in early_coef_range),
                    late_coef_range=tuple(float(x) for x in late_coef_range),
                    demand_max=int(demand_max),
                    time_window_length=float(time_window_length),
                )
            else:
                missing = sorted(set(custom) - set(given))
                raise ValueError(
                    f"a custom problem needs every parameter; missing {missing} (or give none "
                    "of them to use the published scenario)."
                )
            generator = UniformRandomGenerator(problem)
        elif not isinstance(generator, Generator):
            raise ValueError(f"generator must be a multi_cvrp Generator, got {type(generator)}.")
        self.generator = generator
        self.problem: Problem = generator.problem
        if time_limit is None:
            time_limit = self.problem.time_limit
        if isinstance(time_limit, bool) or int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be a positive integer, got {time_limit!r}.")
        self._time_limit = int(time_limit)
        self._viewer = viewer
        p = self.problem
        n = p.num_vehicles
        self._earlier = np.tril(np.ones((n, n), bool), -1)  # [i, j]: j < i
        self._nodes = np.arange(p.num_nodes, dtype=np.int32)

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self.problem.num_vehicles

    @property
    def num_customers(self) -> int:
        return self.problem.num_customers

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def obs_dim(self) -> int:
        return C.VEHICLE_FEATURES * self.num_agents + C.NODE_FEATURES * self.problem.num_nodes

    def _view_high(self) -> np.ndarray:
        """`(4 N + 7 (C + 1),)` upper bounds of a view row (all values are >= 0)."""
        p = self.problem
        n, nodes = self.num_agents, p.num_nodes
        # A step travels at most the map's diagonal, so clocks stay below this.
        max_time = self._time_limit * p.map_max * np.sqrt(2.0) / p.max_end_window
        vehicle = np.tile(np.array([1.0, 1.0, max_time, 1.0], np.float32), n)
        node = np.concatenate(
            [
                np.ones(5 * nodes, np.float32),
                np.full(nodes, p.early_coef_range[1], np.float32),
                np.full(nodes, p.late_coef_range[1], np.float32),
            ]
        )
        return np.concatenate([vehicle, node])

    @property
    def observation_spec(self) -> specs.Structured:
        n, nodes = self.num_agents, self.problem.num_nodes
        return specs.Structured(
            Observation,
            "observation",
            agents_view=specs.BoundedArray(
                (n, self.obs_dim), np.float32, 0.0, self._view_high(), "agents_view"
            ),
            action_mask=specs.Array((n, nodes), bool, "action_mask"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(
            np.full((self.num_agents,), self.problem.num_nodes, np.int32), np.int32, "action"
        )

    # ------------------------------------------------------------------ reset / step
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples a problem with the generator; every vehicle at the depot."""
        state = self.generator(key)
        return state, restart(self._observe(state), self.num_agents)

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """Moves every vehicle to its chosen node (or the depot, see the class docstring)."""
        p = self.problem
        action = jnp.asarray(action, jnp.int32)
        demand = state.demands[action]
        servable = (state.capacities >= demand) & (demand > 0)
        nxt = jnp.where(servable, action, C.DEPOT)
        # A customer picked by an earlier vehicle sends the later ones to the depot.
        taken = jnp.any((nxt[:, None] == nxt[None, :]) & self._earlier, axis=1)
        nxt = jnp.where(taken, C.DEPOT, nxt)

        node_feats = jnp.concatenate(
            [
                state.coordinates,
                jnp.stack(
                    [state.window_start, state.window_end, state.early_coef, state.late_coef],
                    axis=1,
                ),
            ],
            axis=1,
        )  # (C + 1, 6)
        to = node_feats[nxt]  # (N, 6): x, y, window start, end, early, late coefficients
        travel = _distance(state.coordinates[state.positions], to[:, :2])
        distances = state.distances + travel
        local_times = state.local_times + travel / C.SPEED
        penalties = state.time_penalties + time_penalties(
            local_times, to[:, 2], to[:, 3], to[:, 4], to[:, 5]
        )
        at_depot = nxt == C.DEPOT
        capacities = jnp.where(at_depot, p.max_capacity, state.capacities - state.demands[nxt])
        served = jnp.any(nxt[:, None] == self._nodes[None, :], axis=0)
        demands = jnp.where(served, 0, state.demands)
        step_count = state.step_count + 1
        column = jnp.arange(state.order.shape[-1]) == step_count
        order = jnp.where(column, nxt[:, None], state.order)
        new = state.replace(
            demands=demands,
            positions=nxt,
            local_times=local_times,
            capacities=capacities,
            distances=distances,
            time_penalties=penalties,
            order=order,
            step_count=step_count,
        )

        out_of_steps = step_count >= self._time_limit
        solved = (jnp.sum(demands) == 0) & jnp.all(at_depot)
        step_reward = (jnp.sum(state.distances) - jnp.sum(distances)) + (
            jnp.sum(state.time_penalties) - jnp.sum(penalties)
        )
        reward = jnp.where(out_of_steps, self._worst_case_remaining(new), step_reward)
        reward = jnp.broadcast_to(reward, (self.num_agents,))
        obs = self._observe(new, to[:, :2])
        return new, make_timestep(obs, reward, solved | out_of_steps, False)

    def _worst_case_remaining(self, state: State) -> chex.Array:
        """Jumanji's penalty at the step limit: every waiting customer served by its own
        depot round trip, at the vehicles' mean time plus that total distance."""
        waiting = state.demands > 0
        dist = 2 * jnp.sum(_distance(state.coordinates[C.DEPOT], state.coordinates) * waiting)
        now = jnp.mean(state.local_times) + dist / C.SPEED
        pen = time_penalties(
            now, state.window_start, state.window_end, state.early_coef, state.late_coef
        )
        return -dist - jnp.sum(pen * waiting)

    # ------------------------------------------------------------------ observation
    def _observe(self, state: State, vehicle_xy: chex.Array | None = None) -> Observation:
        """The observation of `state` (`vehicle_xy`: the vehicles' coordinates if known)."""
        p = self.problem
        if vehicle_xy is None:
            vehicle_xy = state.coordinates[state.positions]
        n, nodes = self.num_agents, p.num_nodes
        t_scale = p.max_end_window
        cap = p.max_capacity
        vehicles = jnp.concatenate(
            [
                vehicle_xy / p.map_max,
                (state.local_times / t_scale)[:, None],
                (state.capacities / cap)[:, None].astype(jnp.float32),
            ],
            axis=1,
        )  # (N, 4)
        # Own vehicle first, then the next ones cyclically (static rolls: slices, no gather).
        vehicles = jnp.concatenate([jnp.roll(vehicles, -k, axis=0) for k in range(n)], axis=1)
        node_view = jnp.concatenate(
            [
                state.coordinates[:, 0] / p.map_max,
                state.coordinates[:, 1] / p.map_max,
                (state.demands / cap).astype(jnp.float32),
                state.window_start / t_scale,
                state.window_end / t_scale,
                state.early_coef,
                state.late_coef,
            ]
        )  # (7 (C + 1),)
        view = jnp.concatenate(
            [vehicles, jnp.broadcast_to(node_view, (n, C.NODE_FEATURES * nodes))], axis=1
        )
        return Observation(
            agents_view=view.astype(jnp.float32),
            action_mask=action_mask(state.demands, state.capacities),
        )

    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """Vehicle 0's view: every vehicle and every node, `(4 N + 7 (C + 1),)`."""
        if observation is None:
            observation = self._observe(state)
        return observation.agents_view[0]

    def global_state_spec(self) -> specs.Array:
        return specs.Array((self.obs_dim,), np.float32, "global_state")

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame of one unbatched state (map, customers, routes, vehicles)."""
        if self._viewer is None:
            from jaxmarl_envs.multi_cvrp.viewer import MultiCVRPViewer

            self._viewer = MultiCVRPViewer(self.problem)
        return self._viewer.render(state)

    def close(self) -> None:
        if self._viewer is not None and hasattr(self._viewer, "close"):
            self._viewer.close()

    def __repr__(self) -> str:
        return f"MultiCVRP(num_customers={self.num_customers}, num_vehicles={self.num_agents})"
