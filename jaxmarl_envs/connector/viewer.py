"""Off-screen pygame viewer of Connector: one colour per agent for its path, head and target."""

from __future__ import annotations

import colorsys

import jax
import numpy as np

from jaxmarl_envs.connector import constants as C
from jaxmarl_envs.connector.types import State

#: Pixels per grid cell by default.
DEFAULT_CELL_SIZE = 24
#: Smallest cell that still tells a head, a target and a path apart.
MIN_CELL_SIZE = 8


def agent_colours(num_agents: int) -> list[tuple[int, int, int]]:
    """`num_agents` distinct RGB colours (evenly spaced hues)."""
    out = []
    for i in range(num_agents):
        r, g, b = colorsys.hsv_to_rgb(i / max(num_agents, 1), 0.75, 0.9)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


class ConnectorViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Each agent has a colour: its path fills cells in a light shade, its head is a full
    circle, its target a ring (a filled square once reached).

    Args:
        grid_size: side of the grid.
        num_agents: number of agents (one colour each).
        cell_size: pixels per grid cell (>= 8); the frame is
            `(grid_size * cell_size + 1, grid_size * cell_size + 1, 3)`.

    Raises:
        ValueError: `cell_size` is not an integer in range, or the frame would be too large.
    """

    def __init__(self, grid_size: int, num_agents: int, cell_size: int = DEFAULT_CELL_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.cell = check_pixels(cell_size, "cell_size", MIN_CELL_SIZE, "ConnectorViewer")
        side = grid_size * self.cell + 1
        check_frame(side, side, "ConnectorViewer")
        self.grid_size = int(grid_size)
        self.colours = agent_colours(num_agents)
        self.light = [tuple(int(v + (255 - v) * 0.6) for v in col) for col in self.colours]
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        side = self.grid_size * self.cell + 1
        return (side, side, 3)

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        c, g = self.cell, self.grid_size
        side = g * c + 1
        if self._canvas is None or self._canvas.size != (side, side):
            self._canvas = Canvas(side, side)
        canvas = self._canvas
        pygame, surf = canvas.pygame, canvas.surface
        grid, targets = jax.device_get((state.grid, state.targets))
        grid = np.asarray(grid)
        surf.fill(C.COLOR_BACKGROUND)
        for (row, col), value in np.ndenumerate(grid):
            if value == C.EMPTY:
                continue
            agent, kind = divmod(int(value) - 1, 3)
            rect = (col * c, row * c, c, c)
            center = (col * c + c // 2, row * c + c // 2)
            if kind == C.PATH - 1:
                surf.fill(self.light[agent], rect)
            elif kind == C.POSITION - 1:
                reached = tuple(np.asarray(targets)[agent].tolist()) == (row, col)
                if reached:
                    surf.fill(self.colours[agent], rect)
                pygame.draw.circle(surf, self.colours[agent], center, max(2, c // 3))
            else:
                pygame.draw.circle(
                    surf, self.colours[agent], center, max(2, c // 3), max(1, c // 8)
                )
        for i in range(g + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (0, i * c), (side, i * c))
            pygame.draw.line(surf, C.COLOR_GRID, (i * c, 0), (i * c, side))
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
