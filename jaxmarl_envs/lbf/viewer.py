"""Off-screen pygame drawing of Level-Based Foraging states (agents, food and their levels)."""

from __future__ import annotations

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


class LBFViewer:
    """Draws a state onto an off-screen pygame surface and returns RGB frames.

    Food is a green square with its level; each agent is a coloured disc with its level
    (agents sharing a cell are drawn side by side). Nothing is shown on screen unless
    `show` is called where a display exists.

    Args:
        rows: grid rows.
        cols: grid columns.
        cell_size: pixels per cell.
    """

    def __init__(self, rows: int, cols: int, cell_size: int = 48):
        if rows < 1 or cols < 1 or cell_size < 8:
            raise ValueError("LBFViewer needs rows, cols >= 1 and cell_size >= 8.")
        self.rows, self.cols, self.cell = int(rows), int(cols), int(cell_size)
        self._surface = None
        self._font = None
        self._window = None

    def _ensure(self):
        import os

        from jaxmarl_envs.rendering import init_pygame

        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # drawing only: no sound device
        pygame = init_pygame(headless=True)
        if self._surface is None:
            self._surface = pygame.Surface((self.cols * self.cell, self.rows * self.cell))
            pygame.font.init()
            self._font = pygame.font.Font(None, max(12, int(self.cell * 0.6)))
        return pygame

    def _text(self, pygame, text: str, centre: tuple[int, int]) -> None:
        glyph = self._font.render(text, True, _TEXT)
        self._surface.blit(glyph, glyph.get_rect(center=centre))

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(rows * cell_size, cols * cell_size, 3)` uint8 of one state."""
        from jaxmarl_envs.rendering import surface_to_array

        pygame = self._ensure()
        surf, c = self._surface, self.cell
        surf.fill(_BACKGROUND)
        for i in range(self.rows + 1):
            pygame.draw.line(surf, _GRID, (0, i * c), (self.cols * c, i * c), 1)
        for j in range(self.cols + 1):
            pygame.draw.line(surf, _GRID, (j * c, 0), (j * c, self.rows * c), 1)

        food_pos = np.asarray(state.food_pos)
        food_level = np.asarray(state.food_level)
        present = np.asarray(state.food_present)
        for (r, col), level, here in zip(food_pos, food_level, present, strict=True):
            if not here:
                continue
            pad = c // 8
            rect = pygame.Rect(int(col) * c + pad, int(r) * c + pad, c - 2 * pad, c - 2 * pad)
            pygame.draw.rect(surf, _FOOD, rect, border_radius=c // 6)
            self._text(pygame, str(int(level)), rect.center)

        agent_pos = np.asarray(state.agent_pos)
        agent_level = np.asarray(state.agent_level)
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
                self._text(pygame, str(int(agent_level[i])), (cx, cy))
        return surface_to_array(surf)

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
        self._surface = None
