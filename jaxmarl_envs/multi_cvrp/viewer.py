"""Off-screen pygame viewer of the Multi-CVRP: depot, customers, routes and vehicles."""

from __future__ import annotations

import jax
import numpy as np

from jaxmarl_envs.multi_cvrp import constants as C
from jaxmarl_envs.multi_cvrp.generator import Problem

#: Frame side in pixels by default.
DEFAULT_SIZE = 480
MIN_SIZE = 120


class MultiCVRPViewer:
    """Draws one state to an RGB array (pygame surface, no window needed).

    The depot is a dark square; customers are blue discs whose area grows with their
    remaining demand (grey rings once served); each vehicle's route so far is a line in its
    colour, ending at a disc on its current node. A caption shows the step and the total
    distance travelled.

    Args:
        problem: the static problem parameters (map size).
        size: frame side in pixels (>= 120); frames are `(size, size, 3)`.

    Raises:
        ValueError: `size` is not an integer in range.
    """

    def __init__(self, problem: Problem, size: int = DEFAULT_SIZE):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        self.size = check_pixels(size, "size", MIN_SIZE, "MultiCVRPViewer")
        check_frame(self.size, self.size, "MultiCVRPViewer")
        self.problem = problem
        self._margin = max(12, self.size // 20)
        self._canvas = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def _to_px(self, xy: np.ndarray) -> np.ndarray:
        span = self.size - 2 * self._margin
        px = self._margin + np.asarray(xy, np.float64) / self.problem.map_max * span
        px[..., 1] = self.size - px[..., 1]  # y up
        return px.round().astype(int)

    def _draw_background(self, surf) -> None:
        import pygame

        surf.fill(C.COLOR_BACKGROUND)
        m = self._margin
        pygame.draw.rect(surf, C.COLOR_BORDER, (m, m, self.size - 2 * m, self.size - 2 * m), 1)

    def render(self, state) -> np.ndarray:
        """An RGB `uint8` frame `(size, size, 3)` of one unbatched state."""
        from jaxmarl_envs.rendering import Canvas

        if self._canvas is None:
            self._canvas = Canvas(self.size, self.size)
        canvas = self._canvas
        pygame = canvas.pygame
        surf = canvas.surface
        canvas.background(("cvrp", self.size), self._draw_background)
        coords, demands, positions, order, step, dist = jax.device_get(
            (
                state.coordinates,
                state.demands,
                state.positions,
                state.order,
                state.step_count,
                state.distances,
            )
        )
        px = self._to_px(coords)
        unit = max(3, self.size // 80)
        cap = max(self.problem.max_capacity, 1)
        for i in range(1, px.shape[0]):
            if demands[i] > 0:
                radius = int(unit + 2 * unit * np.sqrt(demands[i] / cap))
                pygame.draw.circle(surf, C.COLOR_CUSTOMER, px[i].tolist(), radius)
            else:
                pygame.draw.circle(surf, C.COLOR_SERVED, px[i].tolist(), unit, 1)
        d = px[C.DEPOT]
        pygame.draw.rect(surf, C.COLOR_DEPOT, (d[0] - unit, d[1] - unit, 2 * unit, 2 * unit))
        steps = int(step)
        for v in range(order.shape[0]):
            colour = C.VEHICLE_COLORS[v % len(C.VEHICLE_COLORS)]
            route = px[order[v, : steps + 1]]
            if len(route) > 1:
                pygame.draw.lines(surf, colour, False, route.tolist(), max(1, unit // 2))
            pygame.draw.circle(surf, colour, px[positions[v]].tolist(), unit + 1)
        canvas.text(
            max(14, self.size // 30),
            f"step {steps}   distance {float(np.sum(dist)):.1f}",
            C.COLOR_TEXT,
            (self.size // 2, self._margin // 2 + 2),
        )
        return canvas.to_array()

    def close(self) -> None:
        self._canvas = None
