"""Off-screen pygame drawing of Level-Based Foraging states (agents, food and their levels)."""

from __future__ import annotations

import jax
import numpy as np

from jaxmarl_envs.lbf.types import State

_BACKGROUND = (245, 241, 230)
_GRID = (190, 185, 170)
_FOOD = (70, 150, 60)
_TEXT = (255, 255, 255)
_AGENT_COLOURS = (
    (200, 60, 50),
    (50, 100, 200),
    (230, 150, 30),
    (140, 70, 170),
    (30, 160, 160),
    (120, 120, 120),
    (200, 90, 150),
    (100, 70, 40),
    (20, 20, 20),
)


#: Pixels per cell by default.
DEFAULT_CELL_SIZE = 48
#: Smallest cell that still fits an agent disc and a readable level.
MIN_CELL_SIZE = 8


class LBFViewer:
    """Draws a state onto an off-screen pygame surface and returns RGB frames.

    Food is a green square with its level; each agent is a coloured disc with its level
    (agents sharing a cell are drawn side by side). Nothing is shown on screen unless
    `show` is called where a display exists. The grid is drawn once and reused, and level
    digits are rendered once per value; each frame draws only food and agents.

    Args:
        rows: grid rows.
        cols: grid columns.
        cell_size: pixels per cell (>= 8); the frame is
            `(rows * cell_size, cols * cell_size, 3)`.

    Raises:
        ValueError: `rows`/`cols` below 1, `cell_size` not an integer in range, or a frame
            too large.
    """

    def __init__(self, rows: int, cols: int, cell_size: int = DEFAULT_CELL_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        if rows < 1 or cols < 1:
            raise ValueError(f"LBFViewer needs rows, cols >= 1, got {rows!r}, {cols!r}.")
        self.rows, self.cols = int(rows), int(cols)
        self.cell = check_pixels(cell_size, "cell_size", MIN_CELL_SIZE, "LBFViewer")
        check_frame(self.cols * self.cell, self.rows * self.cell, "LBFViewer")
        self._font_size = max(12, int(self.cell * 0.6))
        self._canvas = None
        self._window = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """`(height, width, 3)` of the frames `render` returns."""
        return (self.rows * self.cell, self.cols * self.cell, 3)

    def _draw_background(self, surf) -> None:
        import pygame

        c = self.cell
        surf.fill(_BACKGROUND)
        for i in range(self.rows + 1):
            pygame.draw.line(surf, _GRID, (0, i * c), (self.cols * c, i * c), 1)
        for j in range(self.cols + 1):
            pygame.draw.line(surf, _GRID, (j * c, 0), (j * c, self.rows * c), 1)

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(rows * cell_size, cols * cell_size, 3)` uint8 of one state."""
        from jaxmarl_envs.rendering import Canvas

        height, width, _ = self.frame_shape
        if self._canvas is None or self._canvas.size != (width, height):
            self._canvas = Canvas(width, height)
        canvas, c, fs = self._canvas, self.cell, self._font_size
        pygame, surf = canvas.pygame, canvas.surface
        canvas.background((self.rows, self.cols, c), self._draw_background)

        # One transfer for everything the frame needs, then plain Python numbers.
        food_pos, food_level, present, agent_pos, agent_level = (
            np.asarray(x).tolist()
            for x in jax.device_get(
                (
                    state.food_pos,
                    state.food_level,
                    state.food_present,
                    state.agent_pos,
                    state.agent_level,
                )
            )
        )
        pad = c // 8
        for (r, col), level, here in zip(food_pos, food_level, present, strict=True):
            if not here:
                continue
            rect = pygame.Rect(int(col) * c + pad, int(r) * c + pad, c - 2 * pad, c - 2 * pad)
            pygame.draw.rect(surf, _FOOD, rect, border_radius=c // 6)
            canvas.text(fs, str(int(level)), _TEXT, rect.center)

        cells: dict[tuple[int, int], list[int]] = {}
        for i, (r, col) in enumerate(agent_pos):
            cells.setdefault((int(r), int(col)), []).append(i)
        for (r, col), members in cells.items():
            k = len(members)
            radius = max(4, int(c * 0.4 / (1 if k == 1 else 1.6)))
            for m, i in enumerate(members):
                cx = int(col * c + c * (m + 1) / (k + 1)) if k > 1 else col * c + c // 2
                cy = r * c + c // 2
                colour = _AGENT_COLOURS[i % len(_AGENT_COLOURS)]
                pygame.draw.circle(surf, colour, (cx, cy), radius)
                canvas.text(fs, str(int(agent_level[i])), _TEXT, (cx, cy))
        return canvas.to_array()

    def show(self, state: State, fps: float = 0.0) -> None:
        """Displays the frame in a window (needs a display)."""
        from jaxmarl_envs.rendering import HumanWindow

        if self._window is None:
            self._window = HumanWindow("Level-Based Foraging")
        self._window.show(self.render(state), fps=fps)

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._canvas = None
