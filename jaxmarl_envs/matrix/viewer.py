"""Off-screen pygame drawing of a matrix game: the payoff table with the last joint action."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxmarl_envs.matrix.types import State

_BACKGROUND = (248, 246, 240)
_HEADER = (225, 222, 212)
_GRID = (160, 155, 140)
_TEXT = (30, 30, 30)
_CHOSEN = (250, 205, 90)
_CHOSEN_BORDER = (200, 60, 50)
_PLAYER_COLOURS = ((200, 60, 50), (50, 100, 200))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


#: `(width, height)` of a payoff cell in pixels by default.
DEFAULT_CELL_SIZE = (112, 56)
#: Smallest `(width, height)` of a cell that still fits its text.
MIN_CELL_SIZE = (40, 24)
_TITLE_FONT, _SMALL_FONT = 28, 22


class MatrixViewer:
    """Draws the payoff table of agents 0 (rows) and 1 (columns) and highlights the cell of
    the previous joint action (none before the first stage).

    Each cell shows the agents' payoffs ("11" when all agents share the payoff, else
    "3, 0"). With more than two agents the table is the slice at the other agents' previous
    actions (their first actions before the first stage). A footer shows the stage count and
    the previous rewards. The title, headers and table of a slice are drawn once and reused;
    each frame draws only the highlighted cell and the footer.

    Args:
        payoffs: `(N, A_0, ..., A_{N-1})` payoff table.
        action_names: per-player action names.
        game: title.
        horizon: stages per episode (shown as `t / horizon`).
        cell_size: `(width, height)` of a cell in pixels, at least `(40, 24)`; the frame is
            `(36 + (A_0 + 1) * height + 40, (A_1 + 1) * width + 16, 3)`.

    Raises:
        ValueError: a bad payoff table shape, or a `cell_size` out of range.
    """

    def __init__(
        self,
        payoffs: np.ndarray,
        action_names: Sequence[Sequence[str]],
        game: str = "matrix game",
        horizon: int = 1,
        cell_size: tuple[int, int] = DEFAULT_CELL_SIZE,
    ):
        from jaxmarl_envs.rendering import check_frame, check_pixels

        payoffs = np.asarray(payoffs, np.float32)
        if payoffs.ndim < 3 or payoffs.shape[0] != payoffs.ndim - 1:
            raise ValueError(f"MatrixViewer: bad payoff table shape {payoffs.shape}.")
        try:
            cell_w, cell_h = cell_size
        except (TypeError, ValueError):
            raise ValueError(
                f"MatrixViewer: cell_size must be a (width, height) pair, got {cell_size!r}."
            ) from None
        self.cell_w = check_pixels(cell_w, "cell_size width", MIN_CELL_SIZE[0], "MatrixViewer")
        self.cell_h = check_pixels(cell_h, "cell_size height", MIN_CELL_SIZE[1], "MatrixViewer")
        self.payoffs = payoffs
        self.action_names = [list(names) for names in action_names]
        self.game = game
        self.horizon = int(horizon)
        self.common = bool(np.all(payoffs == payoffs[:1]))
        self.rows, self.cols = payoffs.shape[1], payoffs.shape[2]
        self.label_w = self.cell_w
        self.title_h = 36
        self.footer_h = 32
        self.width = self.label_w + self.cols * self.cell_w + 16
        self.height = self.title_h + self.cell_h * (self.rows + 1) + self.footer_h + 8
        check_frame(self.width, self.height, "MatrixViewer")
        self._cell_font = max(16, self.cell_h // 2)
        self._canvas = None
        self._window = None

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """`(height, width, 3)` of the frames `render` returns."""
        return (self.height, self.width, 3)

    def _cell_rect(self, i: int, j: int):
        import pygame

        x0, y0, cw, ch = 8, self.title_h, self.cell_w, self.cell_h
        return pygame.Rect(x0 + self.label_w + j * cw, y0 + (i + 1) * ch, cw, ch)

    def _cell_text(self, table: np.ndarray, i: int, j: int) -> str:
        values = table[:1, i, j] if self.common else table[:, i, j]
        return ", ".join(_fmt(v) for v in values)

    def _draw_table(self, surf, table: np.ndarray) -> None:
        """Title, headers and every cell unhighlighted: what depends on the slice only."""
        import pygame

        canvas = self._canvas
        surf.fill(_BACKGROUND)
        canvas.text(_TITLE_FONT, self.game, _TEXT, (self.width // 2, self.title_h // 2), surf)
        x0, y0 = 8, self.title_h
        cw, ch = self.cell_w, self.cell_h
        # Header row (agent 1's actions) and header column (agent 0's actions).
        pygame.draw.rect(surf, _HEADER, pygame.Rect(x0, y0, self.label_w + self.cols * cw, ch))
        pygame.draw.rect(surf, _HEADER, pygame.Rect(x0, y0, self.label_w, ch * (self.rows + 1)))
        canvas.text(_SMALL_FONT, "0 \\ 1", _TEXT, (x0 + self.label_w // 2, y0 + ch // 2), surf)
        for j in range(self.cols):
            centre = (x0 + self.label_w + j * cw + cw // 2, y0 + ch // 2)
            name = self.action_names[1][j]
            canvas.text(self._cell_font, name, _PLAYER_COLOURS[1], centre, surf)
        for i in range(self.rows):
            centre = (x0 + self.label_w // 2, y0 + (i + 1) * ch + ch // 2)
            name = self.action_names[0][i]
            canvas.text(self._cell_font, name, _PLAYER_COLOURS[0], centre, surf)
        for i in range(self.rows):
            for j in range(self.cols):
                rect = self._cell_rect(i, j)
                text = self._cell_text(table, i, j)
                canvas.text(self._cell_font, text, _TEXT, rect.center, surf)
                pygame.draw.rect(surf, _GRID, rect, 1)

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(height, width, 3)` uint8 of one (unbatched) state."""
        from jaxmarl_envs.rendering import Canvas

        if self._canvas is None or self._canvas.size != (self.width, self.height):
            self._canvas = Canvas(self.width, self.height)
        canvas = self._canvas
        pygame, surf = canvas.pygame, canvas.surface
        step, last, last_reward = jax.device_get(
            (state.step_count, state.last_action, state.last_reward)
        )
        step = int(np.asarray(step))
        last = np.asarray(last).astype(int)
        played = step > 0

        rest = tuple(last[2:].tolist()) if played else (0,) * (self.payoffs.ndim - 3)
        table = self.payoffs[(slice(None), slice(None), slice(None)) + rest]  # (N, A0, A1)
        canvas.background(
            (rest, self.cell_w, self.cell_h), lambda surface: self._draw_table(surface, table)
        )
        if played and 0 <= last[0] < self.rows and 0 <= last[1] < self.cols:
            i, j = int(last[0]), int(last[1])
            rect = self._cell_rect(i, j)
            pygame.draw.rect(surf, _CHOSEN, rect)
            canvas.text(self._cell_font, self._cell_text(table, i, j), _TEXT, rect.center)
            pygame.draw.rect(surf, _CHOSEN_BORDER, rect, 4)

        footer = f"stage {step} / {self.horizon}"
        if played:
            rewards = ", ".join(_fmt(r) for r in np.asarray(last_reward))
            footer += f"    reward: {rewards}"
            if self.payoffs.ndim > 3:
                footer += "    others: " + ", ".join(
                    self.action_names[k + 2][a] for k, a in enumerate(last[2:])
                )
        footer_y = self.title_h + self.cell_h * (self.rows + 1) + self.footer_h // 2 + 4
        canvas.text(_SMALL_FONT, footer, _TEXT, (self.width // 2, footer_y))
        return canvas.to_array()

    def show(self, state: State, fps: float = 0.0) -> None:
        """Displays the frame in a window (needs a display)."""
        from jaxmarl_envs.rendering import HumanWindow

        if self._window is None:
            self._window = HumanWindow(self.game)
        self._window.show(self.render(state), fps=fps)

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._canvas = None
