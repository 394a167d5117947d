"""Constants of the Multi-CVRP: the depot index, the published scenario settings, colours."""

from __future__ import annotations

#: Node 0 is the depot; customers are nodes 1..num_customers.
DEPOT = 0

#: Length of every customer's time window (Jumanji uses 20 for all scenarios).
TIME_WINDOW_LENGTH = 20.0

#: Vehicles travel one unit of distance per unit of time (as in Zhang et al. 2020).
SPEED = 1.0

#: Scenario settings of Zhang et al. (2020) as Jumanji 1.1.2 tabulates them, by number of
#: customers: `map_max, max_capacity, max_start_window, early_coef_range, late_coef_range`
#: and the maximum customer demand per number of vehicles.
SETTINGS = {
    6: dict(
        map_max=10.0,
        max_capacity=20,
        max_start_window=10.0,
        early_coef_range=(0.0, 0.2),
        late_coef_range=(0.0, 1.0),
        demand_max={2: 10, 3: 20},
    ),
    20: dict(
        map_max=10.0,
        max_capacity=60,
        max_start_window=10.0,
        early_coef_range=(0.0, 0.2),
        late_coef_range=(0.0, 1.0),
        demand_max={2: 10, 3: 15},
    ),
    50: dict(
        map_max=20.0,
        max_capacity=150,
        max_start_window=20.0,
        early_coef_range=(0.0, 0.2),
        late_coef_range=(0.0, 1.0),
        demand_max={2: 10, 3: 15, 4: 20, 5: 25},
    ),
    100: dict(
        map_max=20.0,
        max_capacity=300,
        max_start_window=40.0,
        early_coef_range=(0.0, 0.2),
        late_coef_range=(0.0, 1.0),
        demand_max={2: 10, 3: 15, 4: 20, 5: 25},
    ),
    150: dict(
        map_max=20.0,
        max_capacity=180,
        max_start_window=60.0,
        early_coef_range=(0.1, 0.1),
        late_coef_range=(0.5, 0.5),
        demand_max={5: 10},
    ),
}

#: Values per vehicle and per node in `agents_view` (see `MultiCVRP`).
VEHICLE_FEATURES = 4  # x, y, local time, capacity
NODE_FEATURES = 7  # x, y, demand, window start, window end, early coef, late coef

# Viewer colours (RGB).
COLOR_BACKGROUND = (255, 255, 255)
COLOR_BORDER = (180, 180, 180)
COLOR_DEPOT = (40, 40, 40)
COLOR_CUSTOMER = (70, 130, 180)
COLOR_SERVED = (200, 200, 200)
COLOR_TEXT = (0, 0, 0)
VEHICLE_COLORS = (
    (230, 25, 75),
    (60, 180, 75),
    (245, 130, 48),
    (145, 30, 180),
    (0, 130, 200),
    (128, 128, 0),
    (240, 50, 230),
    (70, 240, 240),
)
