"""Constants of the Robot Warehouse: actions, directions, reward types, layers, scenarios."""

from __future__ import annotations

import numpy as np

# Actions (as in rware.warehouse.Action).
NOOP = 0
FORWARD = 1
LEFT = 2
RIGHT = 3
TOGGLE_LOAD = 4
NUM_ACTIONS = 5
ACTION_NAMES = ("NOOP", "FORWARD", "LEFT", "RIGHT", "TOGGLE_LOAD")

# Directions (as in rware.warehouse.Direction).
UP = 0
DOWN = 1
LEFT_DIR = 2
RIGHT_DIR = 3
NUM_DIRECTIONS = 4
DIRECTION_NAMES = ("UP", "DOWN", "LEFT", "RIGHT")

# Row/column offsets of a forward move per direction: (d_row, d_col) = (dy, dx).
DIR_DY = np.array([-1, 1, 0, 0], np.int32)
DIR_DX = np.array([0, 0, -1, 1], np.int32)
# Turning tables over the clockwise order UP -> RIGHT -> DOWN -> LEFT.
TURN_RIGHT = np.array([RIGHT_DIR, LEFT_DIR, UP, DOWN], np.int32)
TURN_LEFT = np.array([LEFT_DIR, RIGHT_DIR, DOWN, UP], np.int32)
# np.rot90 turns (axes (1, 2)) that make an image observation agent-centric (original rule).
IMAGE_ROT90_K = (0, 2, 3, 1)

# Reward types (as in rware.warehouse.RewardType, by name).
REWARD_TYPES = ("global", "individual", "two_stage")

# Observation types: "vector" is the original FLATTENED observation, "grid" the IMAGE one.
OBSERVATION_TYPES = ("vector", "grid")

# Image layers (as in rware.warehouse.ImageLayer, by lower-case name).
IMAGE_LAYERS = (
    "shelves",
    "requests",
    "agents",
    "agent_direction",
    "agent_load",
    "goals",
    "accessible",
)
DEFAULT_IMAGE_LAYERS = ("shelves", "requests", "agents", "goals", "accessible")

# Registered scenarios: size -> (shelf_rows, shelf_columns), difficulty -> queue factor.
SIZES = {"tiny": (1, 3), "small": (2, 3), "medium": (2, 5), "large": (3, 5)}
DIFFICULTIES = {"-easy": 2.0, "": 1.0, "-hard": 0.5}
MAX_REGISTERED_AGENTS = 19
COLUMN_HEIGHT = 8
TIME_LIMIT = 500

# Viewer colours (RGB).
COLOR_BACKGROUND = (255, 255, 255)
COLOR_GRID = (205, 205, 205)
COLOR_GOAL = (60, 60, 60)
COLOR_SHELF = (72, 61, 139)
COLOR_REQUESTED_SHELF = (0, 180, 180)
COLOR_AGENT = (240, 128, 0)
COLOR_LOADED_AGENT = (220, 20, 60)
COLOR_DIRECTION = (0, 0, 0)
