"""Off-screen pygame viewer of the Robot Warehouse: grid, shelves, requests, goals, agents."""

from __future__ import annotations

import jax
import numpy as np

from jaxmarl_envs.rware import constants as C
from jaxmarl_envs.rware.types import Layout, State

#: Pixels per grid cell by default.
DEFAULT_CELL_SIZE = 24
#: Smallest cell that still shows shelves inside their margins and an agent's heading.
MIN_CELL_SIZE = 8


class RwareViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Shelves are purple, requested shelves teal, goals dark grey; agents are orange circles
    (red when carrying a shelf) with a black line pointing in their direction. The grid,
    goals and a shelf on every shelf cell are drawn once per layout and reused; each frame
    corrects only the shelves that moved or are requested, then draws the agents.

    Args:
        layout: the static map.
        cell_size: pixels per grid cell (>= 8); the frame is
            `(height * cell_size + 1, width * cell_size + 1, 3)`.

    Raises:
        ValueError: `cell_size` is not an integer in range, or the frame would be too large.
    """

    def __init__(self, layout: Layout, cell_size: int = DEFAULT_CELL_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.cell = check_pixels(cell_size, "cell_size", MIN_CELL_SIZE, "RwareViewer")
        check_frame(layout.width * self.cell + 1, layout.height * self.cell + 1, "RwareViewer")
        self.layout = layout
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """`(height, width, 3)` of the frames `render` returns."""
        return (self.layout.height * self.cell + 1, self.layout.width * self.cell + 1, 3)

    def _shelf_rect(self, row: int, col: int) -> tuple[int, int, int, int]:
        c = self.cell
        margin = max(2, c // 10)
        return (col * c + margin, row * c + margin, c - 2 * margin, c - 2 * margin)

    def _draw_background(self, surf) -> None:
        """White cells, goals, grid lines and a shelf on every shelf cell of the layout (where
        most shelves stay): everything that depends on the layout only."""
        import pygame

        lay, c = self.layout, self.cell
        width, height = surf.get_size()
        surf.fill(C.COLOR_BACKGROUND)
        for row, col in np.asarray(lay.goals).tolist():
            pygame.draw.rect(surf, C.COLOR_GOAL, (col * c, row * c, c, c))
        for y in range(lay.height + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (0, y * c), (width, y * c))
        for x in range(lay.width + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (x * c, 0), (x * c, height))
        for row, col in np.argwhere(~np.asarray(lay.highways)).tolist():
            surf.fill(C.COLOR_SHELF, self._shelf_rect(row, col))

    def _draw_shelves(self, surf, shelf_pos: np.ndarray, queue: np.ndarray) -> None:
        """Brings the background's shelves to the state: empties shelf cells without a shelf,
        then draws, in index order, the shelves that the background does not already show
        (requested, off their shelf cells, or sharing a cell)."""
        lay = self.layout
        shelf_pos = np.asarray(shelf_pos, np.int64).reshape(-1, 2)
        num = shelf_pos.shape[0]
        requested = np.zeros(num, bool)
        queue = np.asarray(queue, np.int64).reshape(-1)
        requested[queue[(queue >= 0) & (queue < num)]] = True
        rows, cols = shelf_pos[:, 0], shelf_pos[:, 1]
        inside = (rows >= 0) & (rows < lay.height) & (cols >= 0) & (cols < lay.width)
        cell = np.where(inside, rows * lay.width + cols, 0)
        counts = np.bincount(cell[inside], minlength=lay.num_cells)
        home = ~np.asarray(lay.highways).reshape(-1)  # cells the background shows a shelf on
        for flat in np.flatnonzero(home & (counts == 0)).tolist():
            surf.fill(C.COLOR_BACKGROUND, self._shelf_rect(*divmod(flat, lay.width)))
        redraw = requested | ~inside | ~home[cell] | (counts[cell] > 1)
        for i in np.flatnonzero(redraw).tolist():
            color = C.COLOR_REQUESTED_SHELF if requested[i] else C.COLOR_SHELF
            surf.fill(color, self._shelf_rect(int(rows[i]), int(cols[i])))

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(H * cell + 1, W * cell + 1, 3)` of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        lay, c = self.layout, self.cell
        height, width, _ = self.frame_shape
        if self._canvas is None or self._canvas.size != (width, height):
            self._canvas = Canvas(width, height)
        canvas = self._canvas
        pygame = canvas.pygame
        surf = canvas.surface
        highways = np.asarray(lay.highways)
        key = (c, highways.shape, highways.tobytes(), np.asarray(lay.goals).tobytes())
        canvas.background(key, self._draw_background)

        # One transfer for everything the frame needs, then plain Python numbers.
        agent_pos, agent_dir, agent_load, shelf_pos, queue = jax.device_get(
            (
                state.agent_pos,
                state.agent_dir,
                state.agent_load,
                state.shelf_pos,
                state.request_queue,
            )
        )
        self._draw_shelves(surf, shelf_pos, queue)
        radius = c // 3
        line_width = max(2, c // 12)
        dir_dx, dir_dy = C.DIR_DX.tolist(), C.DIR_DY.tolist()
        for (row, col), d, load in zip(
            np.asarray(agent_pos).tolist(),
            np.asarray(agent_dir).tolist(),
            np.asarray(agent_load).tolist(),
            strict=True,
        ):
            center = (col * c + c // 2, row * c + c // 2)
            color = C.COLOR_LOADED_AGENT if load >= 0 else C.COLOR_AGENT
            pygame.draw.circle(surf, color, center, radius)
            tip = (center[0] + dir_dx[d] * radius, center[1] + dir_dy[d] * radius)
            pygame.draw.line(surf, C.COLOR_DIRECTION, center, tip, line_width)
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
