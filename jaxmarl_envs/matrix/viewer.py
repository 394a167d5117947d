"""Off-screen pygame drawing of a matrix game: the payoff table with the last joint action."""

from __future__ import annotations

from collections.abc import Sequence

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


class MatrixViewer:
    """Draws the payoff table of agents 0 (rows) and 1 (columns) and highlights the cell of
    the previous joint action (none before the first stage).

    Each cell shows the agents' payoffs ("11" when all agents share the payoff, else
    "3, 0"). With more than two agents the table is the slice at the other agents' previous
    actions (their first actions before the first stage). A footer shows the stage count and
    the previous rewards.

    Args:
        payoffs: `(N, A_0, ..., A_{N-1})` payoff table.
        action_names: per-player action names.
        game: title.
        horizon: stages per episode (shown as `t / horizon`).
        cell_size: `(width, height)` of a cell in pixels.
    """

    def __init__(
        self,
        payoffs: np.ndarray,
        action_names: Sequence[Sequence[str]],
        game: str = "matrix game",
        horizon: int = 1,
        cell_size: tuple[int, int] = (112, 56),
    ):
        payoffs = np.asarray(payoffs, np.float32)
        if payoffs.ndim < 3 or payoffs.shape[0] != payoffs.ndim - 1:
            raise ValueError(f"MatrixViewer: bad payoff table shape {payoffs.shape}.")
        if cell_size[0] < 40 or cell_size[1] < 24:
            raise ValueError("MatrixViewer: cell_size must be at least (40, 24) pixels.")
        self.payoffs = payoffs
        self.action_names = [list(names) for names in action_names]
        self.game = game
        self.horizon = int(horizon)
        self.cell_w, self.cell_h = int(cell_size[0]), int(cell_size[1])
        self.common = bool(np.all(payoffs == payoffs[:1]))
        self.rows, self.cols = payoffs.shape[1], payoffs.shape[2]
        self.label_w = self.cell_w
        self.title_h = 36
        self.footer_h = 32
        self.width = self.label_w + self.cols * self.cell_w + 16
        self.height = self.title_h + self.cell_h * (self.rows + 1) + self.footer_h + 8
        self._surface = None
        self._fonts = None
        self._window = None

    def _ensure(self):
        from jaxmarl_envs.rendering import init_pygame

        pygame = init_pygame(headless=True)
        if self._surface is None:
            self._surface = pygame.Surface((self.width, self.height))
            pygame.font.init()
            self._fonts = (
                pygame.font.Font(None, 28),
                pygame.font.Font(None, max(16, self.cell_h // 2)),
                pygame.font.Font(None, 22),
            )
        return pygame

    def _text(self, font, text: str, centre: tuple[int, int], colour=_TEXT) -> None:
        glyph = font.render(text, True, colour)
        self._surface.blit(glyph, glyph.get_rect(center=centre))

    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(height, width, 3)` uint8 of one (unbatched) state."""
        from jaxmarl_envs.rendering import surface_to_array

        pygame = self._ensure()
        surf = self._surface
        title_font, cell_font, small_font = self._fonts
        surf.fill(_BACKGROUND)
        step = int(np.asarray(state.step_count))
        last = np.asarray(state.last_action).astype(int)
        played = step > 0

        self._text(title_font, self.game, (self.width // 2, self.title_h // 2))
        x0, y0 = 8, self.title_h
        cw, ch = self.cell_w, self.cell_h
        # Header row (agent 1's actions) and header column (agent 0's actions).
        pygame.draw.rect(surf, _HEADER, pygame.Rect(x0, y0, self.label_w + self.cols * cw, ch))
        pygame.draw.rect(surf, _HEADER, pygame.Rect(x0, y0, self.label_w, ch * (self.rows + 1)))
        self._text(small_font, "0 \\ 1", (x0 + self.label_w // 2, y0 + ch // 2))
        for j in range(self.cols):
            centre = (x0 + self.label_w + j * cw + cw // 2, y0 + ch // 2)
            self._text(cell_font, self.action_names[1][j], centre, _PLAYER_COLOURS[1])
        for i in range(self.rows):
            centre = (x0 + self.label_w // 2, y0 + (i + 1) * ch + ch // 2)
            self._text(cell_font, self.action_names[0][i], centre, _PLAYER_COLOURS[0])

        rest = tuple(last[2:]) if played else (0,) * (self.payoffs.ndim - 3)
        table = self.payoffs[(slice(None), slice(None), slice(None)) + rest]  # (N, A0, A1)
        for i in range(self.rows):
            for j in range(self.cols):
                rect = pygame.Rect(x0 + self.label_w + j * cw, y0 + (i + 1) * ch, cw, ch)
                chosen = played and i == last[0] and j == last[1]
                if chosen:
                    pygame.draw.rect(surf, _CHOSEN, rect)
                values = table[:1, i, j] if self.common else table[:, i, j]
                text = ", ".join(_fmt(v) for v in values)
                self._text(cell_font, text, rect.center)
                border = (_CHOSEN_BORDER, 4) if chosen else (_GRID, 1)
                pygame.draw.rect(surf, border[0], rect, border[1])

        footer = f"stage {step} / {self.horizon}"
        if played:
            rewards = ", ".join(_fmt(r) for r in np.asarray(state.last_reward))
            footer += f"    reward: {rewards}"
            if self.payoffs.ndim > 3:
                footer += "    others: " + ", ".join(
                    self.action_names[k + 2][a] for k, a in enumerate(last[2:])
                )
        footer_y = y0 + ch * (self.rows + 1) + self.footer_h // 2 + 4
        self._text(small_font, footer, (self.width // 2, footer_y))
        return surface_to_array(surf)

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
        self._surface = None
