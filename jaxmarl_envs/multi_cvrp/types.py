"""Typed containers of the Multi-CVRP: the state and the observation."""

from __future__ import annotations

import chex
from flax import struct


@struct.dataclass
class State:
    """Dynamic state of one problem (`N` vehicles, `C` customers, node 0 the depot).

    Attributes:
        coordinates: `(C + 1, 2)` float32 node positions in `[0, map_max]`.
        demands: `(C + 1,)` int32 remaining demand per node (0 once served; 0 at the depot).
        window_start: `(C + 1,)` float32 start of each node's time window.
        window_end: `(C + 1,)` float32 end of each node's time window.
        early_coef: `(C + 1,)` float32 penalty per time unit of arriving early (0 at depot).
        late_coef: `(C + 1,)` float32 penalty per time unit of arriving late (0 at depot).
        positions: `(N,)` int32 node each vehicle is at.
        local_times: `(N,)` float32 each vehicle's clock (distance travelled / speed).
        capacities: `(N,)` int32 capacity left in each vehicle.
        distances: `(N,)` float32 distance travelled by each vehicle.
        time_penalties: `(N,)` float32 early/late penalties each vehicle has collected.
        order: `(N, 2 C + 1)` int32 route history: column 0 the depot, column `t + 1` the
            node a vehicle went to at step `t` (for rendering).
        key: PRNG key (the next episode's reset key under `AutoReset`).
        step_count: `()` int32 steps taken in this episode.
    """

    coordinates: chex.Array  # (C + 1, 2)
    demands: chex.Array  # (C + 1,)
    window_start: chex.Array  # (C + 1,)
    window_end: chex.Array  # (C + 1,)
    early_coef: chex.Array  # (C + 1,)
    late_coef: chex.Array  # (C + 1,)
    positions: chex.Array  # (N,)
    local_times: chex.Array  # (N,)
    capacities: chex.Array  # (N,)
    distances: chex.Array  # (N,)
    time_penalties: chex.Array  # (N,)
    order: chex.Array  # (N, 2 C + 1)
    key: chex.PRNGKey  # (2,)
    step_count: chex.Array  # ()


@struct.dataclass
class Observation:
    """Per-vehicle observation.

    Attributes:
        agents_view: `(N, 4 N + 7 (C + 1))` float32. For vehicle `i`: the `N` vehicles in the
            order `i, i + 1, ...` (mod `N`), each as x, y (over `map_max`), local time (over
            the latest window end) and capacity (over `max_capacity`); then per node
            (depot first) the x and y coordinates (over `map_max`), demands (over
            `max_capacity`), window starts and ends (over the latest window end), early and
            late penalty coefficients, each as a block of `C + 1` values.
        action_mask: `(N, C + 1)` bool: the depot always, a customer when it still has demand
            and the vehicle has the capacity for it.
    """

    agents_view: chex.Array  # (N, 4 N + 7 (C + 1))
    action_mask: chex.Array  # (N, C + 1)
