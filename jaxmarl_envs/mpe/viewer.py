"""Off-screen pygame drawing of MPE states (particles and messages), laid out as mpe2 draws."""

from __future__ import annotations

import numpy as np

from jaxmarl_envs.mpe import constants
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World


class MPEViewer:
    """Draws a state onto an off-screen pygame surface and returns RGB frames.

    As mpe2: a white square canvas, the camera zoomed so the farthest entity sits at 90% of
    the half-width, each entity a disc of colour `255 * 200/255 * colour` with a black
    border, and one line "`<agent> sends <word>`" per non-silent agent at the bottom left
    (`_` for a zero message, a letter for a discrete message, the values for continuous
    ones). Radii are `size * 350 * 0.9` pixels, mpe2's radius at the first frame of an
    episode (mpe2 then rescales radii by the zoom since reset, which a stateless viewer of
    one state cannot know).

    Args:
        world: the scenario's world (sizes, names, silent agents).
        continuous_actions: messages are shown as numbers (True) or letters (False).
        size: canvas side in pixels.
    """

    def __init__(self, world: World, continuous_actions: bool = False, size: int = 700):
        if int(size) < 64:
            raise ValueError(f"MPEViewer: size must be >= 64 pixels, got {size}.")
        self.world = world
        self.continuous_actions = bool(continuous_actions)
        self.size = int(size)
        self._surface = None
        self._font = None
        self._window = None

    def _ensure(self):
        from jaxmarl_envs.rendering import init_pygame

        pygame = init_pygame(headless=True)
        if self._surface is None:
            self._surface = pygame.Surface((self.size, self.size))
            pygame.font.init()
            self._font = pygame.font.Font(None, max(12, self.size * 24 // 700))
        return pygame

    def _word(self, c: np.ndarray) -> str:
        if c.size == 0 or np.all(c == 0):
            return "_"
        if self.continuous_actions:
            return "[" + ",".join(f"{v:.2f}" for v in c) + "]"
        return constants.COMM_ALPHABET[int(np.argmax(c)) % len(constants.COMM_ALPHABET)]

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(size, size, 3)` uint8 of one (unbatched) state."""
        from jaxmarl_envs.rendering import surface_to_array

        pygame = self._ensure()
        surf, w = self._surface, self.size
        surf.fill((255, 255, 255))
        pos = np.asarray(state.p_pos, np.float64)
        colour = np.clip(np.asarray(state.colour, np.float64), 0.0, 1.0)
        cam = float(np.max(np.abs(pos))) if pos.size else 1.0
        cam = cam if np.isfinite(cam) and cam > 0 else 1.0
        scale = w / constants.RENDER_SIZE
        half = w // 2
        for e in range(self.world.num_entities):
            x = (pos[e, 0] / cam) * half * constants.RENDER_MARGIN + half
            y = (-pos[e, 1] / cam) * half * constants.RENDER_MARGIN + half
            radius = max(
                1.0,
                float(self.world.size[e])
                * constants.RADIUS_SCALE
                * constants.RENDER_MARGIN
                * scale,
            )
            rgb = tuple(int(v) for v in colour[e] * 200)
            pygame.draw.circle(surf, rgb, (x, y), radius)
            pygame.draw.circle(surf, (0, 0, 0), (x, y), radius, 1)
        comm = np.asarray(state.c)
        line = 0
        for i, name in enumerate(self.world.agent_names):
            if self.world.silent[i]:
                continue
            text = f"{name} sends {self._word(comm[i])}"
            glyph = self._font.render(text, True, (0, 0, 0))
            surf.blit(glyph, (int(w * 0.05), int(w * 0.95 - w * 0.05 * line) - glyph.get_height()))
            line += 1
        return surface_to_array(surf)

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
        self._surface = None
