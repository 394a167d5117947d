"""Off-screen pygame drawing of MPE states (particles and messages), laid out as mpe2 draws."""

from __future__ import annotations

import jax
import numpy as np

from jaxmarl_envs.mpe import constants
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World

#: Canvas side in pixels by default (mpe2's).
DEFAULT_SIZE = constants.RENDER_SIZE
#: Smallest canvas side.
MIN_SIZE = 64


class MPEViewer:
    """Draws a state onto an off-screen pygame surface and returns RGB frames.

    As mpe2: a white square canvas, the camera zoomed so the farthest entity sits at 90% of
    the half-width, each entity a disc of colour `255 * 200/255 * colour` with a black
    border, and one line "`<agent> sends <word>`" per non-silent agent at the bottom left
    (`_` for a zero message, a letter for a discrete message, the values for continuous
    ones). Radii are `size * 350 * 0.9` pixels, mpe2's radius at the first frame of an
    episode (mpe2 then rescales radii by the zoom since reset, which a stateless viewer of
    one state cannot know). Nothing is static (the zoom follows every entity), so each
    frame is drawn in full on one reused surface; message glyphs are rendered once.

    Args:
        world: the scenario's world (sizes, names, silent agents).
        continuous_actions: messages are shown as numbers (True) or letters (False).
        size: canvas side in pixels (>= 64); the frame is `(size, size, 3)`.

    Raises:
        ValueError: `size` is not an integer in range.
    """

    def __init__(self, world: World, continuous_actions: bool = False, size: int = DEFAULT_SIZE):
        from jaxmarl_envs.rendering import check_pixels

        self.size = check_pixels(size, "size", MIN_SIZE, "MPEViewer")
        self.world = world
        self.continuous_actions = bool(continuous_actions)
        self._font_size = max(12, self.size * 24 // 700)
        scale = self.size / constants.RENDER_SIZE
        self._radii = [
            max(1.0, float(s) * constants.RADIUS_SCALE * constants.RENDER_MARGIN * scale)
            for s in np.asarray(world.size)
        ]
        self._talkers = [
            (i, name) for i, name in enumerate(world.agent_names) if not world.silent[i]
        ]
        self._canvas = None
        self._window = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """`(height, width, 3)` of the frames `render` returns."""
        return (self.size, self.size, 3)

    def _word(self, c: np.ndarray) -> str:
        if c.size == 0 or np.all(c == 0):
            return "_"
        if self.continuous_actions:
            return "[" + ",".join(f"{v:.2f}" for v in c) + "]"
        return constants.COMM_ALPHABET[int(np.argmax(c)) % len(constants.COMM_ALPHABET)]

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(size, size, 3)` uint8 of one (unbatched) state."""
        from jaxmarl_envs.rendering import Canvas

        w = self.size
        if self._canvas is None or self._canvas.size != (w, w):
            self._canvas = Canvas(w, w)
        canvas = self._canvas
        pygame, surf = canvas.pygame, canvas.surface
        surf.fill((255, 255, 255))
        # One transfer for everything the frame needs.
        p_pos, colour, comm = jax.device_get((state.p_pos, state.colour, state.c))
        pos = np.asarray(p_pos, np.float64)
        colour = np.clip(np.asarray(colour, np.float64), 0.0, 1.0)
        cam = float(np.max(np.abs(pos))) if pos.size else 1.0
        cam = cam if np.isfinite(cam) and cam > 0 else 1.0
        half = w // 2
        xs = ((pos[:, 0] / cam) * half * constants.RENDER_MARGIN + half).tolist()
        ys = ((-pos[:, 1] / cam) * half * constants.RENDER_MARGIN + half).tolist()
        rgbs = (colour * 200).astype(np.int64).tolist()
        for x, y, radius, rgb in zip(xs, ys, self._radii, rgbs, strict=True):
            pygame.draw.circle(surf, rgb, (x, y), radius)
            pygame.draw.circle(surf, (0, 0, 0), (x, y), radius, 1)
        comm = np.asarray(comm)
        for line, (i, name) in enumerate(self._talkers):
            glyph = canvas.glyph(self._font_size, f"{name} sends {self._word(comm[i])}", (0, 0, 0))
            surf.blit(glyph, (int(w * 0.05), int(w * 0.95 - w * 0.05 * line) - glyph.get_height()))
        return canvas.to_array()

    def show(self, state: State, fps: float = 0.0) -> None:
        """Displays the frame in a window (needs a display)."""
        from jaxmarl_envs.rendering import HumanWindow

        if self._window is None:
            self._window = HumanWindow("MPE")
        self._window.show(self.render(state), fps=fps)

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._canvas = None
