"""Constants of SMAX: the unit-type table, actions, map defaults and viewer colours."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class UnitType:
    """One unit type (the values of JaxMARL 0.2.0's SMAX).

    Attributes:
        name: long name, e.g. "marine".
        shorthand: one-letter name used in scenario names ("m", "s", "Z", ...).
        velocity: map units per second.
        attack: damage per hit.
        attack_range: a target strictly closer than this can be hit.
        sight_range: units strictly closer than this are observed.
        radius: collision radius.
        health: maximum (and starting) health.
        weapon_cooldown: seconds between two hits (before jitter).
    """

    name: str
    shorthand: str
    velocity: float
    attack: float
    attack_range: float
    sight_range: float
    radius: float
    health: float
    weapon_cooldown: float


#: The six unit types, in the order of their one-hot features and type ids.
UNIT_TYPES: tuple[UnitType, ...] = (
    UnitType("marine", "m", 3.15, 9.0, 5.0, 9.0, 0.375, 45.0, 0.61),
    UnitType("marauder", "M", 2.25, 10.0, 6.0, 10.0, 0.5625, 125.0, 1.07),
    UnitType("stalker", "s", 4.13, 13.0, 6.0, 10.0, 0.625, 160.0, 1.87),
    UnitType("zealot", "Z", 3.15, 8.0, 2.0, 9.0, 0.5, 150.0, 0.86),
    UnitType("zergling", "z", 4.13, 5.0, 2.0, 8.0, 0.375, 35.0, 0.5),
    UnitType("hydralisk", "h", 3.15, 12.0, 5.0, 9.0, 0.625, 80.0, 0.59),
)
UNIT_TYPE_NAMES = tuple(t.name for t in UNIT_TYPES)
UNIT_TYPE_IDS = {t.name: i for i, t in enumerate(UNIT_TYPES)}

# Actions: four moves (north = +y, east = +x, south, west), stop, then one attack per
# opposing unit (attack k targets the k-th opposing unit in the observer's order).
NORTH, EAST, SOUTH, WEST, STOP = 0, 1, 2, 3, 4
NUM_MOVEMENT_ACTIONS = 5
ACTION_NAMES = ("NORTH", "EAST", "SOUTH", "WEST", "STOP")

# Defaults of the original.
MAP_WIDTH = 32.0
MAP_HEIGHT = 32.0
WORLD_STEPS_PER_ENV_STEP = 8
TIME_PER_STEP = 1.0 / 16
TIME_LIMIT = 100
WON_BATTLE_BONUS = 1.0

# Observation features: own (health, x, y, cooldown, type one-hot) and per other unit
# (health, dx, dy, last move x, last move y, last target, cooldown, type one-hot).
NUM_OWN_BASE_FEATURES = 4
NUM_UNIT_BASE_FEATURES = 7

# Opponent modes.
OPPONENTS = ("heuristic", "self_play")
ATTACK_MODES = ("closest", "random")

# Viewer colours (RGB).
COLOR_BACKGROUND = (236, 236, 228)
COLOR_GRID = (214, 214, 204)
COLOR_TEAMS = ((40, 90, 200), (200, 50, 40))
COLOR_DEAD = (150, 150, 150)
COLOR_HEALTH = (40, 170, 60)
COLOR_HEALTH_BACK = (90, 20, 20)
COLOR_ATTACK = ((90, 140, 255), (255, 120, 80))
COLOR_SIGHT = ((160, 180, 230), (230, 170, 160))
COLOR_TEXT = (255, 255, 255)
