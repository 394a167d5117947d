"""Initial-state generators of the Multi-CVRP (swappable: give `MultiCVRP(generator=...)`)."""

from __future__ import annotations

import abc
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import rng
from jaxmarl_envs.multi_cvrp import constants as C
from jaxmarl_envs.multi_cvrp.types import State


@dataclasses.dataclass(frozen=True)
class Problem:
    """The static parameters of a family of problems (checked on construction).

    Attributes:
        num_customers: customers `C` (nodes `1..C`; node 0 is the depot).
        num_vehicles: vehicles `N`.
        map_max: nodes lie in `[0, map_max]^2`.
        max_capacity: capacity of an empty vehicle (restored at the depot).
        max_start_window: window starts are uniform in `[0, max_start_window)`.
        early_coef_range, late_coef_range: `(low, high)` of the uniform penalty coefficients.
        demand_max: customer demands are drawn in `[0, demand_max)` before rescaling.
        time_window_length: every window's length.
    """

    num_customers: int
    num_vehicles: int
    map_max: float
    max_capacity: int
    max_start_window: float
    early_coef_range: tuple[float, float]
    late_coef_range: tuple[float, float]
    demand_max: int
    time_window_length: float = C.TIME_WINDOW_LENGTH

    def __post_init__(self) -> None:
        for name in ("num_customers", "num_vehicles", "max_capacity", "demand_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.demand_max > self.max_capacity:
            raise ValueError(
                f"demand_max={self.demand_max} exceeds max_capacity={self.max_capacity}: some "
                "customers could never be served."
            )
        for name in ("map_max", "max_start_window", "time_window_length"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
        for name in ("early_coef_range", "late_coef_range"):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high < low:
                raise ValueError(
                    f"{name} must be (low, high) with 0 <= low <= high, got "
                    f"{getattr(self, name)!r}."
                )

    @property
    def max_end_window(self) -> float:
        """The latest possible window end."""
        return float(self.max_start_window + self.time_window_length)

    @property
    def num_nodes(self) -> int:
        return self.num_customers + 1

    @property
    def time_limit(self) -> int:
        """Steps after which an episode ends (Jumanji's `2 * num_customers`)."""
        return 2 * self.num_customers


def problem_from_settings(num_customers: int, num_vehicles: int) -> Problem:
    """The published scenario for `num_customers` in {6, 20, 50, 100, 150} (see constants).

    Raises:
        ValueError: no published scenario for this pair.
    """
    if num_customers not in C.SETTINGS:
        raise ValueError(
            f"no published scenario for num_customers={num_customers}; choose one of "
            f"{sorted(C.SETTINGS)} or give every problem parameter (map_max, max_capacity, "
            "max_start_window, demand_max, ...)."
        )
    s = C.SETTINGS[num_customers]
    if num_vehicles not in s["demand_max"]:
        raise ValueError(
            f"no published scenario with {num_vehicles} vehicles for {num_customers} customers; "
            f"choose num_vehicles in {sorted(s['demand_max'])}."
        )
    return Problem(
        num_customers=num_customers,
        num_vehicles=num_vehicles,
        map_max=s["map_max"],
        max_capacity=s["max_capacity"],
        max_start_window=s["max_start_window"],
        early_coef_range=s["early_coef_range"],
        late_coef_range=s["late_coef_range"],
        demand_max=s["demand_max"][num_vehicles],
    )


def action_mask(demands: chex.Array, capacities: chex.Array) -> chex.Array:
    """`(N, C + 1)` bool: a customer with demand that fits in the vehicle, or the depot."""
    depot = jnp.arange(demands.shape[-1]) == C.DEPOT  # elementwise: fuses under vmap
    return ((capacities[:, None] >= demands[None, :]) & (demands[None, :] > 0)) | depot


def make_state(
    problem: Problem,
    coordinates: chex.Array,
    demands: chex.Array,
    window_start: chex.Array,
    early_coef: chex.Array,
    late_coef: chex.Array,
    key: chex.PRNGKey,
) -> State:
    """The first state of a problem: every vehicle empty at the depot, at time zero."""
    n, nodes = problem.num_vehicles, problem.num_nodes
    return State(
        coordinates=jnp.asarray(coordinates, jnp.float32).reshape(nodes, 2),
        demands=jnp.asarray(demands, jnp.int32).reshape(nodes),
        window_start=jnp.asarray(window_start, jnp.float32).reshape(nodes),
        window_end=(jnp.asarray(window_start, jnp.float32) + problem.time_window_length).reshape(
            nodes
        ),
        early_coef=jnp.asarray(early_coef, jnp.float32).reshape(nodes),
        late_coef=jnp.asarray(late_coef, jnp.float32).reshape(nodes),
        positions=jnp.full((n,), C.DEPOT, jnp.int32),
        local_times=jnp.zeros((n,), jnp.float32),
        capacities=jnp.full((n,), problem.max_capacity, jnp.int32),
        distances=jnp.zeros((n,), jnp.float32),
        time_penalties=jnp.zeros((n,), jnp.float32),
        order=jnp.zeros((n, problem.time_limit + 1), jnp.int32),
        key=key,
        step_count=jnp.zeros((), jnp.int32),
    )


class Generator(abc.ABC):
    """Samples initial states of one `Problem`."""

    def __init__(self, problem: Problem):
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a multi_cvrp Problem, got {type(problem)}.")
        self.problem = problem

    @abc.abstractmethod
    def __call__(self, key: chex.PRNGKey) -> State:
        """A first state drawn from `key`."""


class UniformRandomGenerator(Generator):
    """Jumanji's `UniformRandomGenerator`: the same draws from the same key, so a reset key
    gives the same problem in both.

    Nodes are uniform on the map; customer demands are uniform integers in
    `[0, demand_max)`, rescaled so they add up to about the fleet's total capacity
    (truncated to integers, capped at `demand_max`); windows start uniformly in
    `[0, max_start_window)`; penalty coefficients are uniform in their ranges, zero at the
    depot. (Where every drawn demand is zero, which Jumanji turns into undefined integers,
    demands stay zero.)
    """

    def __call__(self, key: chex.PRNGKey) -> State:
        p = self.problem
        nodes = p.num_nodes
        # `rng.split` / `rng.uniform` / `rng.randint`: `jax.random`'s values from an unrolled
        # Threefry (XLA's rolled loops on CPU made these draws most of an auto-reset).
        problem_key, key = rng.split(key)
        k_coord, k_demand, k_window, k_early, k_late = rng.split(problem_key, 5)
        coordinates = rng.uniform(k_coord, (nodes, 2), 0.0, p.map_max)
        demands = rng.randint(k_demand, (nodes,), 0, p.demand_max)
        demands = demands.at[C.DEPOT].set(0)
        total = jnp.sum(demands)
        scale = (p.max_capacity * p.num_vehicles) / jnp.maximum(total, 1)
        demands = jnp.where(total > 0, (demands * scale).astype(jnp.int32), 0)
        demands = jnp.minimum(demands, p.demand_max)
        window_start = rng.uniform(k_window, (nodes,), 0.0, p.max_start_window)
        early = rng.uniform(k_early, (nodes,), *p.early_coef_range)
        late = rng.uniform(k_late, (nodes,), *p.late_coef_range)
        early = early.at[C.DEPOT].set(0.0)
        late = late.at[C.DEPOT].set(0.0)
        return make_state(p, coordinates, demands, window_start, early, late, key)


class FixedGenerator(Generator):
    """Always the same problem (e.g. a hand-made instance for tests or curricula).

    Args:
        problem: the static parameters (sizes, capacity, map and window scales).
        coordinates: `(C + 1, 2)` node positions.
        demands: `(C + 1,)` integer demands (0 at the depot).
        window_start: `(C + 1,)` window starts.
        early_coef, late_coef: `(C + 1,)` penalty coefficients.

    Raises:
        ValueError: wrong shapes, negative or too large demands, demand at the depot.
    """

    def __init__(self, problem, coordinates, demands, window_start, early_coef, late_coef):
        super().__init__(problem)
        nodes = problem.num_nodes
        arrays = dict(
            coordinates=np.asarray(coordinates, np.float32),
            demands=np.asarray(demands),
            window_start=np.asarray(window_start, np.float32),
            early_coef=np.asarray(early_coef, np.float32),
            late_coef=np.asarray(late_coef, np.float32),
        )
        for name, arr in arrays.items():
            want = (nodes, 2) if name == "coordinates" else (nodes,)
            if arr.shape != want:
                raise ValueError(f"{name} has shape {arr.shape}, expected {want}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} has non-finite values.")
        d = arrays["demands"]
        if not np.issubdtype(d.dtype, np.integer):
            raise ValueError(f"demands must be integers, got dtype {d.dtype}.")
        if d[C.DEPOT] != 0 or np.any(d < 0) or np.any(d > problem.max_capacity):
            raise ValueError(
                f"demands must be 0 at the depot and in [0, {problem.max_capacity}] elsewhere."
            )
        self._arrays = arrays

    def __call__(self, key: chex.PRNGKey) -> State:
        a = self._arrays
        return make_state(
            self.problem,
            a["coordinates"],
            a["demands"],
            a["window_start"],
            a["early_coef"],
            a["late_coef"],
            jax.random.split(key)[1],
        )
