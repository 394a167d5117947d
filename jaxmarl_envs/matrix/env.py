"""Repeated normal-form (matrix) games in pure JAX: cooperative, general-sum and zero-sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.matrix import constants
from jaxmarl_envs.matrix.types import Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart


def _as_payoff_table(payoffs: Any) -> np.ndarray:
    """Validates a payoff table and returns it as float32 `(N, A_0, ..., A_{N-1})`."""
    try:
        table = np.asarray(payoffs, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"payoffs must be a numeric array, got {type(payoffs).__name__}.") from err
    if table.ndim == 2:  # one matrix: a fully cooperative two-player game
        table = np.stack([table, table])
    if table.ndim < 3:
        raise ValueError(
            "payoffs must be a (A_0, A_1) common-payoff matrix or a (N, A_0, ..., A_{N-1}) table "
            f"with N >= 2 players, got shape {table.shape}."
        )
    n = table.shape[0]
    if table.ndim != n + 1:
        raise ValueError(
            f"payoffs of shape {table.shape}: a table for N players has shape "
            f"(N, A_0, ..., A_(N-1)), i.e. N + 1 axes, but the leading axis says N = {n} and "
            f"there are {table.ndim - 1} action axes."
        )
    if any(a < 1 for a in table.shape[1:]):
        raise ValueError(f"payoffs of shape {table.shape}: every player needs at least 1 action.")
    if not np.all(np.isfinite(table)):
        raise ValueError("payoffs must be finite (found NaN or infinity).")
    return table.astype(np.float32)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _as_action_names(names: Any, num_actions: tuple[int, ...]) -> tuple[tuple[str, ...], ...]:
    """Per-player action names: None (indices), one list shared by all, or one list per player."""
    if names is None:
        return tuple(tuple(str(a) for a in range(k)) for k in num_actions)
    names = list(names)
    if names and all(isinstance(x, str) for x in names):
        names = [names] * len(num_actions)
    if len(names) != len(num_actions):
        raise ValueError(
            f"action_names must give one list per player ({len(num_actions)}), got {len(names)}."
        )
    out = []
    for i, (player_names, k) in enumerate(zip(names, num_actions, strict=True)):
        player_names = tuple(str(x) for x in player_names)
        if len(player_names) != k:
            raise ValueError(
                f"action_names for player {i} has {len(player_names)} names, but the player has "
                f"{k} actions."
            )
        out.append(player_names)
    return tuple(out)


class MatrixGame(Environment):
    """A normal-form game played repeatedly for `horizon` stages.

    Each stage every agent picks one of its actions at once; agent `i` receives
    `payoffs[i, a_0, ..., a_{N-1}]`. Registered games: the climbing and penalty games of
    Claus & Boutilier (1998) (fully cooperative), the prisoner's dilemma, stag hunt, chicken,
    battle of the sexes (general-sum), matching pennies and rock-paper-scissors (zero-sum);
    any table can be passed to the constructor.

    - observation: `Observation` with
        - `agents_view`: `(num_agents, sum(num_actions) + 2)` float32, identical for every
          agent (the public history of the last stage): the one-hot of agent 0's previous
          action, then agent 1's, ... (all zeros before the first stage), then a first-stage
          flag (1.0 at reset, 0.0 after), then the normalised step count
          `step_count / horizon`. 8 values for the 3-action climbing game.
        - `action_mask`: `(num_agents, max(num_actions))` bool, all true where the agent has
          the action (players with fewer actions have their tail masked out).
    - action: `(num_agents,)` int32, agent `i`'s action in `[0, num_actions[i])`. Inside jit,
      out-of-range actions are clipped into range; `validate_action` rejects them outside jit.
    - reward: `(num_agents,)` float32, each agent's payoff of the joint action.
    - termination: never. Truncation: after `horizon` stages (discount 1).
    - state: `State` with `key`, `step_count ()`, `last_action (N,)`, `last_reward (N,)`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxmarl_envs
        >>> env = jaxmarl_envs.make("matrix-climbing", horizon=10)
        >>> state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
        >>> ts.observation.agents_view.shape
        (2, 8)
        >>> state, ts = jax.jit(env.step)(state, jnp.array([0, 1], jnp.int32))
        >>> ts.reward.tolist()
        [-30.0, -30.0]
    """

    name = "matrix"
    #: Reset and step ignore the PRNG key: a seed changes nothing in an episode.
    deterministic = True

    def __init__(
        self,
        payoffs: Any = constants.CLIMBING,
        horizon: int | None = None,
        action_names: Sequence[str] | Sequence[Sequence[str]] | None = None,
        game: str = "custom",
        time_limit: int | None = None,
        viewer: Any | None = None,
        render_cell_size: tuple[int, int] | None = None,
    ):
        """Builds the game; raises `ValueError` naming any inconsistent argument.

        Args:
            payoffs: `(N, A_0, ..., A_{N-1})` table (`payoffs[i, a_0, ..., a_{N-1}]` is agent
                `i`'s reward), or a `(A_0, A_1)` matrix paid to both of two players (a fully
                cooperative game). Defaults to the climbing game.
            horizon: stages per episode (>= 1); defaults to `constants.DEFAULT_HORIZON`.
            action_names: names shown by the viewer, one list per player or one shared list.
            game: the game's name, shown by the viewer.
            time_limit: alias of `horizon` (the name every environment family accepts);
                giving both with different values is an error.
            viewer: renders states; defaults to `MatrixViewer` built on first use.
            render_cell_size: `(width, height)` of a payoff cell of the default viewer in
                pixels (at least `(40, 24)`; None: `(112, 56)`). Not with `viewer`.
        """
        table = _as_payoff_table(payoffs)
        if horizon is not None and time_limit is not None and horizon != time_limit:
            raise ValueError(
                f"horizon ({horizon!r}) and its alias time_limit ({time_limit!r}) disagree."
            )
        if horizon is None:
            horizon = constants.DEFAULT_HORIZON if time_limit is None else time_limit
        if not _is_positive_int(horizon):
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}.")
        self._payoffs = table
        self._num_agents = int(table.shape[0])
        self.num_actions_per_agent: tuple[int, ...] = tuple(int(a) for a in table.shape[1:])
        self.action_names = _as_action_names(action_names, self.num_actions_per_agent)
        self.game = str(game)
        self._horizon = int(horizon)
        if render_cell_size is not None:
            if viewer is not None:
                raise ValueError("give render_cell_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.matrix.viewer import MatrixViewer

            viewer = MatrixViewer(
                self._payoffs, self.action_names, self.game, self._horizon, render_cell_size
            )
        self.viewer = viewer

        # Static data as numpy (constants inside jit).
        counts = np.asarray(self.num_actions_per_agent, np.int32)
        self._counts = counts
        # Row-major strides of the joint action into the flattened table.
        self._strides = np.array(
            [int(np.prod(counts[i + 1 :])) for i in range(self._num_agents)], np.int32
        )
        self._flat_payoffs = table.reshape(self._num_agents, -1)  # (N, prod(A))
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        max_actions = int(counts.max())
        self._mask = np.arange(max_actions)[None, :] < counts[:, None]  # (N, max A)

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self._num_agents

    @property
    def time_limit(self) -> int:
        return self._horizon

    @property
    def horizon(self) -> int:
        """Stages per episode."""
        return self._horizon

    @property
    def payoffs(self) -> np.ndarray:
        """A copy of the payoff table, `(N, A_0, ..., A_{N-1})` float32."""
        return self._payoffs.copy()

    @property
    def obs_dim(self) -> int:
        """Length of one agent's view: the one-hots, the first-stage flag and the step count."""
        return int(self._counts.sum()) + 2

    @property
    def observation_spec(self) -> specs.Structured:
        n = self._num_agents
        return specs.Structured(
            Observation,
            "observation",
            agents_view=specs.BoundedArray((n, self.obs_dim), np.float32, 0.0, 1.0, "agents_view"),
            action_mask=specs.BoundedArray(self._mask.shape, bool, False, True, "action_mask"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(self._counts, np.int32, "action")

    @property
    def reward_spec(self) -> specs.BoundedArray:
        flat = self._flat_payoffs
        return specs.BoundedArray(
            (self._num_agents,), np.float32, flat.min(axis=1), flat.max(axis=1), "reward"
        )

    # ------------------------------------------------------------------ dynamics
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Starts a game: no stage played yet.

        Args:
            key: PRNG key (kept in the state; the game is deterministic).

        Returns:
            `(state, timestep)` with a FIRST timestep.
        """
        n = self._num_agents
        state = State(
            key=key,
            step_count=jnp.zeros((), jnp.int32),
            last_action=jnp.zeros((n,), jnp.int32),
            last_reward=jnp.zeros((n,), jnp.float32),
        )
        return state, restart(self._observe(state), n)

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """Plays one stage.

        Args:
            state: current state.
            action: `(num_agents,)` integer joint action.

        Returns:
            `(next_state, timestep)`; the timestep is LAST (truncated) after `horizon` stages.
        """
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, jnp.asarray(self._counts) - 1)
        index = jnp.sum(action * jnp.asarray(self._strides))
        reward = jnp.asarray(self._flat_payoffs)[:, index]
        step_count = state.step_count + 1
        state = state.replace(step_count=step_count, last_action=action, last_reward=reward)
        truncated = step_count >= self._horizon
        timestep = make_timestep(self._observe(state), reward, False, truncated)
        return state, timestep

    def _view(self, state: State) -> chex.Array:
        """`(obs_dim,)` float32, the public view every agent receives."""
        played = state.step_count > 0
        hot = jnp.asarray(self._offsets) + state.last_action  # (N,)
        onehot = jnp.any(jnp.arange(int(self._counts.sum()))[None, :] == hot[:, None], axis=0)
        onehot = onehot & played
        extra = jnp.stack(
            [
                jnp.where(played, 0.0, 1.0),
                state.step_count.astype(jnp.float32) / self._horizon,
            ]
        )
        return jnp.concatenate([onehot.astype(jnp.float32), extra.astype(jnp.float32)])

    def _observe(self, state: State) -> Observation:
        view = self._view(state)
        return Observation(
            agents_view=jnp.broadcast_to(view, (self._num_agents, self.obs_dim)),
            action_mask=jnp.asarray(self._mask),
        )

    # ------------------------------------------------------------------ global state
    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """The public view `(obs_dim,)` float32 (every agent sees all of the state)."""
        return self._view(state)

    def global_state_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((self.obs_dim,), np.float32, 0.0, 1.0, "global_state")

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB frame `(height, width, 3)` uint8: the payoff table with the chosen cell."""
        if self.viewer is None:
            from jaxmarl_envs.matrix.viewer import MatrixViewer

            self.viewer = MatrixViewer(self._payoffs, self.action_names, self.game, self._horizon)
        return self.viewer.render(state)

    def close(self) -> None:
        if self.viewer is not None and hasattr(self.viewer, "close"):
            self.viewer.close()

    def __repr__(self) -> str:
        return (
            f"MatrixGame(game={self.game!r}, num_agents={self._num_agents}, "
            f"num_actions={self.num_actions_per_agent}, horizon={self._horizon})"
        )
