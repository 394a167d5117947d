"""Shared rendering helpers: off-screen pygame surfaces, an optional human window, and
GIF/MP4 writing through imageio. pygame and imageio are imported only when used."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np


def init_pygame(headless: bool = True):
    """Imports and initialises pygame; off-screen unless a display is wanted and present."""
    if headless and "SDL_VIDEODRIVER" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # viewers never play sound
    import pygame

    if not pygame.get_init():
        pygame.init()
    return pygame


def surface_to_array(surface) -> np.ndarray:
    """A pygame surface as an RGB uint8 array `(height, width, 3)`."""
    import pygame

    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)))


class HumanWindow:
    """Shows frames in a pygame window where a display exists."""

    def __init__(self, title: str):
        self.title = title
        self._screen = None

    def show(self, frame: np.ndarray, fps: float = 0.0) -> None:
        pygame = init_pygame(headless=False)
        h, w = frame.shape[:2]
        if self._screen is None:
            pygame.display.set_caption(self.title)
            self._screen = pygame.display.set_mode((w, h))
        surf = pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
        self._screen.blit(surf, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        if fps > 0:
            pygame.time.Clock().tick(fps)

    def close(self) -> None:
        if self._screen is not None:
            import pygame

            pygame.display.quit()
            self._screen = None


def save_animation(frames: Sequence[np.ndarray], path: str, fps: float = 8.0) -> str:
    """Writes frames to `path` (GIF, or MP4 when imageio-ffmpeg is installed), atomically.

    Args:
        frames: RGB uint8 frames `(height, width, 3)`.
        path: output file; the extension picks the format.
        fps: frames per second.

    Returns:
        The path written.
    """
    import imageio.v2 as imageio

    if len(frames) == 0:
        raise ValueError("save_animation: no frames to write.")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1].lower()
    fd, tmp = tempfile.mkstemp(suffix=ext, dir=folder)
    os.close(fd)
    try:
        if ext == ".gif":
            imageio.mimsave(tmp, list(frames), duration=1000.0 / fps, loop=0)
        else:
            imageio.mimsave(tmp, list(frames), fps=fps)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
