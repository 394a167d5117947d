"""Constants of Connector: grid encoding, actions and moves, rewards, scenarios, colours."""

from __future__ import annotations

import numpy as np

# Grid encoding (as Jumanji's): 0 empty; agent i's path 1 + 3i, head 2 + 3i, target 3 + 3i.
EMPTY = 0
PATH = 1
POSITION = 2
TARGET = 3

# Actions: no-op, up, right, down, left; (d_row, d_col) per action.
NOOP = 0
UP = 1
RIGHT = 2
DOWN = 3
LEFT = 4
NUM_ACTIONS = 5
ACTION_NAMES = ("NOOP", "UP", "RIGHT", "DOWN", "LEFT")
MOVES = np.array([[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)

# Channels of the per-agent view: own head, own target, obstacle (any other occupied cell).
NUM_CHANNELS = 3
CHANNEL_NAMES = ("head", "target", "obstacle")
OBSERVATION_TYPES = ("vector", "grid")

# Reward functions (Jumanji's DenseRewardFn, SharedDenseRewardFn, SparseRewardFn,
# SharedSparseRewardFn by name); Jumanji's default is "dense".
REWARD_TYPES = ("dense", "shared_dense", "sparse", "shared_sparse")
CONNECTED_REWARD = 1.0
TIMESTEP_REWARD = -0.03

# Jumanji's defaults (Connector-v3): 10 x 10 grid, 10 agents, time limit 50.
DEFAULT_TIME_LIMIT = 50
WALK_TEMPERATURE = 1.0

# Registered scenarios (the names Mava's configs use): (grid size, agents); Mava's time limit.
SCENARIOS = ((5, 3), (7, 5), (10, 5), (10, 10), (15, 10), (15, 23))
SCENARIO_TIME_LIMIT = 100

# Viewer colours (RGB).
COLOR_BACKGROUND = (255, 255, 255)
COLOR_GRID = (205, 205, 205)
