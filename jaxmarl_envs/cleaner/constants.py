"""Constants of Cleaner: tile values, actions and moves, observation types, scenarios, colours."""

from __future__ import annotations

import numpy as np

# Tile values of the grid (as in jumanji.environments.routing.cleaner.constants).
DIRTY = 0
CLEAN = 1
WALL = 2

# Actions: one step up, right, down or left; (d_row, d_col) per action.
UP = 0
RIGHT = 1
DOWN = 2
LEFT = 3
NUM_ACTIONS = 4
ACTION_NAMES = ("UP", "RIGHT", "DOWN", "LEFT")
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)

# Channels of the per-agent view: dirty tile, wall, own position, other agents on the cell.
NUM_CHANNELS = 4
CHANNEL_NAMES = ("dirty", "wall", "self", "others")

# "vector": `(N, 4 * R * C)` flat view (what the networks take); "grid": `(N, 4, R, C)`.
OBSERVATION_TYPES = ("vector", "grid")

DEFAULT_PENALTY = 0.5

# Registered scenarios (the names Mava's configs use): (rows, cols, agents); Mava's time limit.
SCENARIOS = (
    (5, 5, 2),
    (5, 5, 3),
    (5, 5, 5),
    (10, 10, 3),
    (10, 10, 10),
    (15, 15, 5),
    (15, 15, 15),
    (15, 15, 23),
    (20, 20, 20),
    (20, 20, 40),
    (30, 30, 30),
)
SCENARIO_TIME_LIMIT = 100

# Viewer colours (RGB).
COLOR_DIRTY = (120, 200, 90)
COLOR_CLEAN = (255, 255, 255)
COLOR_WALL = (40, 40, 40)
COLOR_GRID = (205, 205, 205)
COLOR_AGENT = (220, 40, 40)
COLOR_TEXT = (255, 255, 255)
