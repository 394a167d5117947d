"""Constants of Search-and-Rescue: defaults (Jumanji 1.1.2's), channels, scenarios, colours."""

from __future__ import annotations

#: Actions per searcher: [rotation, acceleration], each in [-1, 1].
ACTION_DIM = 2
ACTION_NAMES = ("rotate", "accelerate")

#: View channels: other searchers, found targets, targets still to find.
CHANNEL_SEARCHERS = 0
CHANNEL_FOUND = 1
CHANNEL_UNFOUND = 2
NUM_CHANNELS = 3

#: Values appended to each agent's flattened view: targets remaining, episode progress and
#: the agent's own position (x, y over the arena size).
EXTRA_FEATURES = 4

#: Jumanji's `SearchAndRescue` defaults.
DEFAULTS = dict(
    num_searchers=2,
    num_targets=40,
    env_size=1.0,
    target_contact_range=0.02,
    searcher_max_rotate=0.25,
    searcher_max_accelerate=0.005,
    searcher_min_speed=0.005,
    searcher_max_speed=0.02,
    time_limit=400,
    num_vision=128,
    searcher_vision_range=0.4,
    target_vision_range=0.1,
    view_angle=0.4,
    target_acc_std=0.0001,
    target_vel_max=0.002,
)

#: Registered scenarios, smallest first: id suffix -> (searchers, targets).
SCENARIOS = {
    "2s-10t": (2, 10),
    "2s-40t": (2, 40),
    "3s-40t": (3, 40),
    "4s-40t": (4, 40),
    "4s-80t": (4, 80),
    "8s-80t": (8, 80),
}

# Viewer colours (RGB).
COLOR_BACKGROUND = (250, 250, 250)
COLOR_BORDER = (180, 180, 180)
COLOR_SEARCHER = (30, 90, 200)
COLOR_VIEW = (200, 215, 245)
COLOR_TARGET = (220, 40, 40)
COLOR_FOUND = (40, 170, 70)
