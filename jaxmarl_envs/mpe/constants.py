"""Constants of the multi-agent particle environments (the values `mpe2` 1.1.1 uses)."""

from __future__ import annotations

import numpy as np

#: Simulation timestep.
DT = 0.1
#: Velocity damping per step.
DAMPING = 0.25
#: Contact force coefficient.
CONTACT_FORCE = 1e2
#: Contact margin `k` of the softplus penetration `k * log(1 + exp(-(d - d_min) / k))`.
CONTACT_MARGIN = 1e-3
#: Position dimensionality.
DIM_P = 2
#: Default entity radius.
DEFAULT_SIZE = 0.05
#: Default entity mass.
DEFAULT_MASS = 1.0
#: Action force multiplier of agents whose `accel` is None.
DEFAULT_SENSITIVITY = 5.0
#: Default episode length (`max_cycles`).
DEFAULT_MAX_CYCLES = 25
#: Discrete movement actions: no-op, -x, +x, -y, +y.
NUM_MOVES = 5
#: `(NUM_MOVES, 2)` unit force of each discrete movement action.
MOVE_VECTORS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)

#: Rendering (as mpe2): square canvas, 350 px per world unit of radius, 0.9 margin.
RENDER_SIZE = 700
RADIUS_SCALE = 350.0
RENDER_MARGIN = 0.9
COMM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
