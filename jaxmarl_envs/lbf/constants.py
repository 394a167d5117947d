"""Constants of Level-Based Foraging: actions, moves and the original's spawn limits."""

from __future__ import annotations

import numpy as np

# Actions, numbered as in `lbforaging.foraging.environment.Action`.
NONE = 0
NORTH = 1
SOUTH = 2
WEST = 3
EAST = 4
LOAD = 5
NUM_ACTIONS = 6
ACTION_NAMES = ("NONE", "NORTH", "SOUTH", "WEST", "EAST", "LOAD")

# (row, col) displacement of each action; NONE and LOAD stay in place.
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], dtype=np.int32)

# The original gives up spawning food after this many random attempts in total.
MAX_SPAWN_ATTEMPTS = 1000

# Grid-observation layers, in the original's order.
AGENT_LAYER = 0
FOOD_LAYER = 1
ACCESS_LAYER = 2
NUM_GRID_LAYERS = 3

# Penalty used by the `-pen` scenario ids.
DEFAULT_PENALTY = 0.1
# Time limit of every registered id (the original registers max_episode_steps=50).
DEFAULT_TIME_LIMIT = 50
