"""Off-screen pygame viewer of SMAX: the battlefield, units by team and type, health bars,
attack lines and (optionally) sight ranges."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxmarl_envs.smax import constants as C
from jaxmarl_envs.smax.types import State

#: Frame side in pixels by default.
DEFAULT_SIZE = 512
#: Smallest frame side that still shows unit shapes and health bars.
MIN_SIZE = 64


class SmaxViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    Allies are blue, enemies red; shapes tell the type (marine: circle, marauder: square,
    stalker: diamond, zealot: triangle, zergling: small triangle pointing down, hydralisk:
    hexagon, further types: circles), drawn at the unit's collision radius (at least a few
    pixels). A bar above each live unit shows its health; a line from a unit to its target
    shows an attack ordered in the last step; dead units are grey crosses. The y axis points
    up, as in the map coordinates.

    Args:
        env: the `SMAX` environment (map size, team sizes, unit table).
        size: frame side in pixels (>= 64); the frame is `(size, size * width / height, 3)`.
        show_sight: draw each live unit's sight range.

    Raises:
        ValueError: `size` is not an integer in range.
    """

    def __init__(self, env: Any, size: int = DEFAULT_SIZE, show_sight: bool = False):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.env = env
        height = check_pixels(size, "size", MIN_SIZE, "SmaxViewer")
        self.scale = height / env.map_height
        width = max(MIN_SIZE, round(env.map_width * self.scale))
        self.width, self.height = check_frame(width, height, "SmaxViewer")
        self.show_sight = bool(show_sight)
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    def _px(self, x: float, y: float) -> tuple[int, int]:
        return int(round(x * self.scale)), int(round(self.height - y * self.scale))

    def _draw_background(self, surf) -> None:
        import pygame

        surf.fill(C.COLOR_BACKGROUND)
        for gx in range(0, int(self.env.map_width) + 1, 4):
            x = self._px(gx, 0)[0]
            pygame.draw.line(surf, C.COLOR_GRID, (x, 0), (x, self.height))
        for gy in range(0, int(self.env.map_height) + 1, 4):
            y = self._px(0, gy)[1]
            pygame.draw.line(surf, C.COLOR_GRID, (0, y), (self.width, y))

    def _shape(self, pygame, surf, type_id: int, center, r: int, colour) -> None:
        cx, cy = center
        if type_id == 1:  # marauder
            pygame.draw.rect(surf, colour, (cx - r, cy - r, 2 * r, 2 * r))
        elif type_id == 2:  # stalker
            pygame.draw.polygon(
                surf, colour, [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
            )
        elif type_id == 3:  # zealot
            pygame.draw.polygon(surf, colour, [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)])
        elif type_id == 4:  # zergling
            pygame.draw.polygon(surf, colour, [(cx - r, cy - r), (cx + r, cy - r), (cx, cy + r)])
        elif type_id == 5:  # hydralisk
            angles = np.linspace(0, 2 * np.pi, 7)[:-1]
            pts = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in angles]
            pygame.draw.polygon(surf, colour, pts)
        else:  # marine and user types
            pygame.draw.circle(surf, colour, center, r)

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(height, width, 3)` of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        env = self.env
        if self._canvas is None or self._canvas.size != (self.width, self.height):
            self._canvas = Canvas(self.width, self.height)
        canvas = self._canvas
        pygame = canvas.pygame
        surf = canvas.surface
        canvas.background((self.width, self.height), self._draw_background)
        pos, health, alive, types, attack = jax.device_get(
            (state.positions, state.health, state.alive, state.unit_types, state.prev_attack)
        )
        pos, health, alive = np.asarray(pos), np.asarray(health), np.asarray(alive)
        types, attack = np.asarray(types), np.asarray(attack)
        a, m = env.num_allies, C.NUM_MOVEMENT_ACTIONS
        radius = np.asarray(env._radius)[types]
        sight = np.asarray(env._sight_range)[types]
        max_health = np.asarray(env._max_health)[types]
        team = (np.arange(env.num_units) >= a).astype(int)
        centers = [self._px(x, y) for x, y in pos.tolist()]
        if self.show_sight:
            for i in np.flatnonzero(alive).tolist():
                r = max(1, int(sight[i] * self.scale))
                pygame.draw.circle(surf, C.COLOR_SIGHT[team[i]], centers[i], r, 1)
        for i in np.flatnonzero(alive & (attack >= m)).tolist():
            k = int(attack[i]) - m
            target = k + a if i < a else a - 1 - k
            if 0 <= target < env.num_units:
                pygame.draw.line(surf, C.COLOR_ATTACK[team[i]], centers[i], centers[target], 2)
        for i in range(env.num_units):
            r = max(3, int(round(radius[i] * self.scale)))
            cx, cy = centers[i]
            if not alive[i]:
                pygame.draw.line(surf, C.COLOR_DEAD, (cx - r, cy - r), (cx + r, cy + r), 2)
                pygame.draw.line(surf, C.COLOR_DEAD, (cx - r, cy + r), (cx + r, cy - r), 2)
                continue
            self._shape(pygame, surf, int(types[i]), centers[i], r, C.COLOR_TEAMS[team[i]])
            bar_w, bar_h = 2 * r + 2, max(2, r // 3)
            top = cy - r - bar_h - 2
            frac = float(np.clip(health[i] / max_health[i], 0.0, 1.0))
            pygame.draw.rect(surf, C.COLOR_HEALTH_BACK, (cx - r - 1, top, bar_w, bar_h))
            pygame.draw.rect(surf, C.COLOR_HEALTH, (cx - r - 1, top, round(bar_w * frac), bar_h))
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
