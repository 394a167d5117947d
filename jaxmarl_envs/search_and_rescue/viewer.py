"""Off-screen pygame viewer of Search-and-Rescue: arena, targets, searchers and view cones."""

from __future__ import annotations

import math

import jax
import numpy as np

from jaxmarl_envs.search_and_rescue import constants as C

#: Frame side in pixels by default.
DEFAULT_SIZE = 480
MIN_SIZE = 120


class SearchAndRescueViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Targets are red dots (green once found); searchers are blue discs with a line along
    their heading and their view cone (to the target vision range) shaded. A caption shows
    the step and the targets found.

    Args:
        env: the `SearchAndRescue` environment (arena size, view angle and ranges).
        size: frame side in pixels (>= 120); frames are `(size, size, 3)`.

    Raises:
        ValueError: `size` is not an integer in range.
    """

    def __init__(self, env, size: int = DEFAULT_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.size = check_pixels(size, "size", MIN_SIZE, "SearchAndRescueViewer")
        check_frame(self.size, self.size, "SearchAndRescueViewer")
        self.env_size = float(env.env_size)
        self.view_angle = float(env.view_angle)
        self.cone_range = float(env.target_vision_range)
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def _scale(self) -> float:
        return self.size / self.env_size

    def _to_px(self, xy: np.ndarray) -> np.ndarray:
        px = np.asarray(xy, np.float64) * self._scale()
        px[..., 1] = self.size - px[..., 1]  # y up
        return px

    def _draw_background(self, surf) -> None:
        import pygame

        surf.fill(C.COLOR_BACKGROUND)
        pygame.draw.rect(surf, C.COLOR_BORDER, (0, 0, self.size, self.size), 1)

    def render(self, state) -> np.ndarray:
        """An RGB `uint8` frame `(size, size, 3)` of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        if self._canvas is None:
            self._canvas = Canvas(self.size, self.size)
        canvas = self._canvas
        pygame = canvas.pygame
        surf = canvas.surface
        canvas.background(("sar", self.size), self._draw_background)
        pos, heading, tpos, found, step = jax.device_get(
            (
                state.searcher_pos,
                state.searcher_heading,
                state.target_pos,
                state.target_found,
                state.step_count,
            )
        )
        spx, tpx = self._to_px(pos), self._to_px(tpos)
        cone = self.cone_range * self._scale()
        half = self.view_angle * math.pi
        for (x, y), h in zip(spx.tolist(), heading.tolist(), strict=True):
            angles = np.linspace(h - half, h + half, 12)
            points = [(x, y)] + [(x + cone * math.cos(a), y - cone * math.sin(a)) for a in angles]
            pygame.draw.polygon(surf, C.COLOR_VIEW, points)
        dot = max(2, self.size // 160)
        for (x, y), f in zip(tpx.tolist(), found.tolist(), strict=True):
            colour = C.COLOR_FOUND if f else C.COLOR_TARGET
            pygame.draw.circle(surf, colour, (round(x), round(y)), dot)
        body = max(3, self.size // 80)
        for (x, y), h in zip(spx.tolist(), heading.tolist(), strict=True):
            pygame.draw.circle(surf, C.COLOR_SEARCHER, (round(x), round(y)), body)
            tip = (x + 2 * body * math.cos(h), y - 2 * body * math.sin(h))
            pygame.draw.line(surf, C.COLOR_SEARCHER, (x, y), tip, 2)
        canvas.text(
            max(14, self.size // 30),
            f"step {int(step)}   found {int(np.sum(found))}/{found.shape[0]}",
            (0, 0, 0),
            (self.size // 2, 12),
        )
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
