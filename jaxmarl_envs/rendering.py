"""Shared rendering helpers: off-screen pygame surfaces, an optional human window, and
GIF/MP4 writing through imageio. pygame and imageio are imported only when used."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

#: Largest frame side (pixels) a viewer accepts; larger sizes are almost surely a mistake.
MAX_FRAME_SIDE = 16384
#: Glyphs kept per canvas before the cache is emptied (continuous MPE messages are unbounded).
_MAX_GLYPHS = 1024


def check_pixels(value: Any, name: str, minimum: int, owner: str) -> int:
    """`value` as an int in `[minimum, MAX_FRAME_SIDE]`, else a ValueError naming `name`."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not minimum <= int(value) <= MAX_FRAME_SIDE:
        raise ValueError(
            f"{owner}: {name} must be an integer in [{minimum}, {MAX_FRAME_SIDE}] pixels, "
            f"got {value!r}."
        )
    return int(value)


def check_frame(width: int, height: int, owner: str) -> tuple[int, int]:
    """The frame `(width, height)`, or a ValueError when a side exceeds `MAX_FRAME_SIDE`."""
    if width > MAX_FRAME_SIDE or height > MAX_FRAME_SIDE:
        raise ValueError(
            f"{owner}: the frame would be {width} x {height} pixels, more than "
            f"{MAX_FRAME_SIDE} on a side; use a smaller size."
        )
    return int(width), int(height)


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


def rgb_surface(pygame, size: tuple[int, int]):
    """A 24-bit surface whose bytes are R, G, B in memory, so `surface_to_array` is a copy.

    pygame's default 32-bit surfaces store B, G, R, X, and converting them to an RGB array
    with `surfarray` shuffles every pixel (several ms at 700 x 700); blitting to this layout
    is one SDL conversion, after which the array is one strided copy.
    """
    little = sys.byteorder == "little"
    masks = (0xFF, 0xFF00, 0xFF0000, 0) if little else (0xFF0000, 0xFF00, 0xFF, 0)
    return pygame.Surface(size, 0, 24, masks)


def surface_to_array(surface) -> np.ndarray:
    """A pygame surface as a new RGB uint8 array `(height, width, 3)`."""
    import pygame

    if surface.get_bytesize() in (3, 4):
        view = pygame.surfarray.pixels3d(surface)  # (width, height, 3), locks the surface
        try:
            return np.array(view.transpose(1, 0, 2), order="C")
        finally:
            del view
    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)))


class Canvas:
    """One reused off-screen surface with a cached background and cached text glyphs.

    A viewer draws what never changes for a given key (grid, walls, labels) once with
    `background(key, draw)`, then per frame only what moves; `to_array()` returns the frame.
    Drawing happens on pygame's default 32-bit surface, so antialiased text blends exactly
    as it always has; `to_array` converts through a reused 24-bit RGB surface.

    Args:
        width: frame width in pixels.
        height: frame height in pixels.
    """

    def __init__(self, width: int, height: int):
        self.pygame = init_pygame(headless=True)
        self.size = (int(width), int(height))
        self.surface = self.pygame.Surface(self.size)
        self._rgb = rgb_surface(self.pygame, self.size)
        self._background = None
        self._background_key: Hashable = None
        self._fonts: dict[int, Any] = {}
        self._glyphs: dict[tuple, Any] = {}

    def background(self, key: Hashable, draw: Callable[[Any], None]) -> None:
        """Copies the background of `key` onto the surface, drawing it with `draw(surface)`
        only when `key` differs from the cached one. `key` must capture everything `draw`
        depends on (compared with `==`)."""
        if self._background is None or self._background_key != key:
            surface = self.pygame.Surface(self.size)
            draw(surface)
            self._background, self._background_key = surface, key
        self.surface.blit(self._background, (0, 0))

    def font(self, size: int):
        """pygame's default font at `size` points (one object per size)."""
        if size not in self._fonts:
            self.pygame.font.init()
            self._fonts[size] = self.pygame.font.Font(None, size)
        return self._fonts[size]

    def glyph(self, size: int, text: str, colour: tuple[int, int, int]):
        """The antialiased rendering of `text` (cached)."""
        key = (size, text, colour)
        glyph = self._glyphs.get(key)
        if glyph is None:
            if len(self._glyphs) >= _MAX_GLYPHS:
                self._glyphs.clear()
            glyph = self.font(size).render(text, True, colour)
            self._glyphs[key] = glyph
        return glyph

    def text(
        self,
        size: int,
        text: str,
        colour: tuple[int, int, int],
        center: tuple[int, int],
        surface=None,
    ) -> None:
        """Draws `text` centred at `center` on `surface` (default: the frame)."""
        glyph = self.glyph(size, text, colour)
        target = self.surface if surface is None else surface
        target.blit(glyph, glyph.get_rect(center=center))

    def to_array(self) -> np.ndarray:
        """The frame as a new RGB uint8 array `(height, width, 3)`."""
        self._rgb.blit(self.surface, (0, 0))
        return surface_to_array(self._rgb)


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
        surf = pygame.image.frombuffer(np.ascontiguousarray(frame, np.uint8), (w, h), "RGB")
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
