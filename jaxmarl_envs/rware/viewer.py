"""Off-screen pygame viewer of the Robot Warehouse: grid, shelves, requests, goals, agents."""

from __future__ import annotations

import numpy as np

from jaxmarl_envs.rware import constants as C
from jaxmarl_envs.rware.types import Layout, State


class RwareViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Shelves are purple, requested shelves teal, goals dark grey; agents are orange circles
    (red when carrying a shelf) with a black line pointing in their direction.

    Args:
        layout: the static map.
        cell_size: pixels per grid cell.
    """

    def __init__(self, layout: Layout, cell_size: int = 24):
        self.layout = layout
        self.cell = int(cell_size)
        self._surface = None

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(H * cell + 1, W * cell + 1, 3)` of one unbatched state."""
        from jaxmarl_envs.rendering import init_pygame, surface_to_array

        pygame = init_pygame(headless=True)
        lay, c = self.layout, self.cell
        size = (lay.width * c + 1, lay.height * c + 1)
        if self._surface is None:
            self._surface = pygame.Surface(size)
        surf = self._surface
        surf.fill(C.COLOR_BACKGROUND)
        agent_pos = np.asarray(state.agent_pos)
        agent_dir = np.asarray(state.agent_dir)
        agent_load = np.asarray(state.agent_load)
        shelf_pos = np.asarray(state.shelf_pos)
        requested = set(np.asarray(state.request_queue).tolist())
        for row, col in lay.goals:
            pygame.draw.rect(surf, C.COLOR_GOAL, (col * c, row * c, c, c))
        for y in range(lay.height + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (0, y * c), (size[0], y * c))
        for x in range(lay.width + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (x * c, 0), (x * c, size[1]))
        margin = max(2, c // 10)
        for i, (row, col) in enumerate(shelf_pos):
            color = C.COLOR_REQUESTED_SHELF if i in requested else C.COLOR_SHELF
            rect = (col * c + margin, row * c + margin, c - 2 * margin, c - 2 * margin)
            pygame.draw.rect(surf, color, rect)
        radius = c // 3
        for (row, col), d, load in zip(agent_pos, agent_dir, agent_load, strict=True):
            center = (int(col * c + c // 2), int(row * c + c // 2))
            color = C.COLOR_LOADED_AGENT if load >= 0 else C.COLOR_AGENT
            pygame.draw.circle(surf, color, center, radius)
            tip = (
                center[0] + int(C.DIR_DX[d]) * radius,
                center[1] + int(C.DIR_DY[d]) * radius,
            )
            pygame.draw.line(surf, C.COLOR_DIRECTION, center, tip, max(2, c // 12))
        return surface_to_array(surf)

    def close(self) -> None:
        self._surface = None
