"""Off-screen pygame viewer of Cleaner: dirty and clean tiles, walls, agents."""

from __future__ import annotations

import jax
import numpy as np

from jaxmarl_envs.cleaner import constants as C
from jaxmarl_envs.cleaner.types import State

#: Pixels per grid cell by default.
DEFAULT_CELL_SIZE = 24
#: Smallest cell that still shows an agent and its count.
MIN_CELL_SIZE = 8


class CleanerViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Dirty tiles are green, clean tiles white, walls dark grey; agents are red circles, with
    the number of agents written on a cell holding several.

    Args:
        num_rows, num_cols: grid size.
        cell_size: pixels per grid cell (>= 8); the frame is
            `(num_rows * cell_size + 1, num_cols * cell_size + 1, 3)`.

    Raises:
        ValueError: `cell_size` is not an integer in range, or the frame would be too large.
    """

    def __init__(self, num_rows: int, num_cols: int, cell_size: int = DEFAULT_CELL_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.cell = check_pixels(cell_size, "cell_size", MIN_CELL_SIZE, "CleanerViewer")
        check_frame(num_cols * self.cell + 1, num_rows * self.cell + 1, "CleanerViewer")
        self.num_rows, self.num_cols = int(num_rows), int(num_cols)
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """`(height, width, 3)` of the frames `render` returns."""
        return (self.num_rows * self.cell + 1, self.num_cols * self.cell + 1, 3)

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        c = self.cell
        height, width, _ = self.frame_shape
        if self._canvas is None or self._canvas.size != (width, height):
            self._canvas = Canvas(width, height)
        canvas = self._canvas
        pygame, surf = canvas.pygame, canvas.surface
        grid, locations = jax.device_get((state.grid, state.agents_locations))
        grid = np.asarray(grid)
        colours = {C.DIRTY: C.COLOR_DIRTY, C.CLEAN: C.COLOR_CLEAN, C.WALL: C.COLOR_WALL}
        surf.fill(C.COLOR_CLEAN)
        for (row, col), value in np.ndenumerate(grid):
            if value != C.CLEAN:
                surf.fill(colours[int(value)], (col * c, row * c, c, c))
        for y in range(self.num_rows + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (0, y * c), (width, y * c))
        for x in range(self.num_cols + 1):
            pygame.draw.line(surf, C.COLOR_GRID, (x * c, 0), (x * c, height))
        cells, counts = np.unique(np.asarray(locations).reshape(-1, 2), axis=0, return_counts=True)
        for (row, col), count in zip(cells.tolist(), counts.tolist(), strict=True):
            center = (col * c + c // 2, row * c + c // 2)
            pygame.draw.circle(surf, C.COLOR_AGENT, center, max(2, c // 3))
            if count > 1 and c >= 16:
                canvas.text(max(10, c // 2), str(count), C.COLOR_TEXT, center)
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
