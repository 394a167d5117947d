"""The Robot Warehouse (RWARE) in pure JAX, matching `rware` 2.0.0 step for step."""

from __future__ import annotations

import math
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.rware import constants as C
from jaxmarl_envs.rware.generator import (
    Generator,
    RandomGenerator,
    layout_from_params,
    layout_from_str,
    split_bits,
)
from jaxmarl_envs.rware.types import Layout, Observation, State
from jaxmarl_envs.types import TimeStep, make_timestep, restart


def _sensor_table() -> np.ndarray:
    """`(8, 7)` float32 map from a cell's one-hot agent state (none, UP, DOWN, LEFT, RIGHT)
    and shelf state (none, shelf, requested shelf) to its 7 sensor values; each output is a
    sum of at most two ones, so the matmul is exact."""
    table = np.zeros((8, 7), np.float32)
    table[0, 1] = 1.0  # no agent: direction reads UP
    for d in range(C.NUM_DIRECTIONS):
        table[1 + d, 0] = table[1 + d, 1 + d] = 1.0
    table[6, 5] = 1.0
    table[7, 5] = table[7, 6] = 1.0
    return table


_SENSOR_TABLE = _sensor_table()
_ZERO = np.zeros((1,), np.int32)
_AGENT_STATES = np.arange(5, dtype=np.int32)
_SHELF_STATES = np.arange(3, dtype=np.int32)


class RobotWarehouse(Environment[State]):
    """Robot Warehouse: robots fetch requested shelves, bring them to a goal and return them.

    A pure-JAX reimplementation of `rware` 2.0.0 (`rware.warehouse.Warehouse`), identical in
    dynamics, observations and rewards (see "Deviations" for the two documented exceptions).
    The grid has `H = (column_height + 1) * shelf_rows + 2` rows and
    `W = 3 * shelf_columns + 1` columns; shelves fill every non-corridor cell.

    - observation: `Observation`
        - agents_view: "vector" (default, the original FLATTENED type): `(N, 8 + 7 * K)`
          float32 with `K = (2 * sensor_range + 1) ** 2` (71 for sensor range 1): own
          `x, y` (column, row; divided by `W - 1`, `H - 1` if `normalised_coordinates`),
          carrying flag, direction one-hot (UP, DOWN, LEFT, RIGHT), on-corridor flag; then
          for each cell of the `(2r+1) x (2r+1)` window in row-major order: agent present,
          that agent's direction one-hot (`[1, 0, 0, 0]` when empty or off the map), shelf
          present, shelf requested.
          "grid" (the original IMAGE type): `(N, L, 2r+1, 2r+1)` float32, one channel per
          entry of `image_layers` (default shelves, requests, agents, goals, accessible),
          zero off the map, rotated to the agent's heading when `image_directional`.
        - action_mask: `(N, 5)` bool. The original accepts every action always; we mask an
          action only where stepping with it is exactly a NOOP: FORWARD into the border or,
          while loaded, into a standing shelf (the original cancels it); TOGGLE_LOAD with no
          shelf underneath while unloaded, or on a corridor while loaded. NOOP, LEFT and
          RIGHT are always legal, and a masked action taken anyway behaves as NOOP.
        - step_count: `()` int32.
    - action: `(N,)` int32 in {0: NOOP, 1: FORWARD, 2: LEFT, 3: RIGHT, 4: TOGGLE_LOAD}.
    - reward: `(N,)` float32. "individual": +1 to the agent whose carried requested shelf
      reaches a goal; "global": +1 to every agent per delivered shelf; "two_stage": +0.5 on
      delivery and +0.5 when that agent next puts a shelf down off the corridors. Per step a
      reward lies in `[0, num_goals]` ("global") or `[0, 1]` (the others, per agent).
    - termination: never. truncation: after `time_limit` steps (the original's `max_steps`;
      it reports this as `done`). Collisions never end an episode.
    - state: `State` with agent cells `(N, 2)`, directions `(N,)`, carried shelf `(N,)`,
      two-stage flags `(N,)`, shelf cells `(S, 2)`, request queue `(Q,)`, agent and shelf
      id grids `(H, W)`, PRNG key and step count.

    Dynamics: FORWARD moves one cell (clipped at the border; a loaded agent cannot enter a
    cell holding a standing shelf); LEFT/RIGHT turn; TOGGLE_LOAD picks up the shelf under an
    unloaded agent or, off the corridors, puts the carried shelf down. Conflicting moves are
    resolved as the original's graph logic: agents form a graph of cell -> target cell; a
    component ending in an empty cell moves only its longest chain of agents; a component
    with a cycle moves the cycle's agents if it has 3+ cells (a swap of two agents moves
    nobody) and a stationary agent blocks everyone queueing behind it. A requested shelf on
    a goal is delivered and replaced in the queue by a uniformly random non-requested shelf
    (drawn from the state's own key).

    Deviations: (1) when two equally long chains compete for one cell, the original picks
    the first predecessor in a networkx subgraph copy, whose node order is the graph's
    insertion order for large components but CPython set-hash order for components smaller
    than half the graph; we always use the insertion order (agent order, a cell counted
    first when an earlier agent targets it). (2) the original's "agent_direction" and
    "agent_load" image layers index the grid transposed (and crash on non-square maps); ours
    put them at the agents' cells.

    Example:
        >>> import jax, jaxmarl_envs
        >>> env = jaxmarl_envs.make("rware-tiny-4ag")
        >>> state, ts = env.reset(jax.random.PRNGKey(0))
        >>> state, ts = jax.jit(env.step)(state, jax.numpy.zeros(4, jax.numpy.int32))
        >>> ts.observation.agents_view.shape
        (4, 71)
    """

    name = "rware"

    def __init__(
        self,
        shelf_rows: int = 1,
        shelf_columns: int = 3,
        column_height: int = C.COLUMN_HEIGHT,
        num_agents: int = 4,
        request_queue_size: int = 4,
        sensor_range: int = 1,
        time_limit: int = C.TIME_LIMIT,
        reward_type: str = "individual",
        observation_type: str = "vector",
        image_layers: tuple[str, ...] = C.DEFAULT_IMAGE_LAYERS,
        image_directional: bool = True,
        normalised_coordinates: bool = False,
        layout: str | None = None,
        generator: Generator | None = None,
        viewer: Any | None = None,
        render_cell_size: int | None = None,
    ):
        """Builds the environment; every argument is checked here (ValueError naming it).

        Args:
            shelf_rows, shelf_columns, column_height: parametric layout (as the original).
            num_agents: number of robots.
            request_queue_size: shelves requested at any time.
            sensor_range: observation radius `r` (window `2r + 1`).
            time_limit: steps until truncation.
            reward_type: "individual", "global" or "two_stage".
            observation_type: "vector" (original FLATTENED) or "grid" (original IMAGE).
            image_layers: channels of the "grid" observation, names from
                `constants.IMAGE_LAYERS`.
            image_directional: rotate "grid" observations to the agent's heading.
            normalised_coordinates: divide own coordinates by the grid size minus one.
            layout: optional layout string (`x` shelf, `.` corridor, `g` goal); replaces the
                parametric layout.
            generator: initial-state sampler; when given, its layout, number of agents and
                queue size define the scenario (the corresponding arguments are ignored).
            viewer: object with `render(state) -> uint8 (H, W, 3)` (default `RwareViewer`).
            render_cell_size: pixels per grid cell of the default viewer (>= 8; None: 24);
                frames are `(H * size + 1, W * size + 1, 3)`. Not with `viewer`.
        """
        if generator is None:
            lay = (
                layout_from_str(layout)
                if layout
                else layout_from_params(shelf_columns, shelf_rows, column_height)
            )
            generator = RandomGenerator(lay, num_agents, request_queue_size)
        elif not isinstance(generator, Generator):
            raise ValueError(f"generator must be an rware Generator, got {type(generator)}.")
        lay: Layout = generator.layout
        n, q = generator.num_agents, generator.request_queue_size
        if n < 1:
            raise ValueError(f"num_agents must be >= 1, got {n}.")
        if n > lay.num_cells:
            raise ValueError(f"num_agents={n} exceeds the {lay.num_cells} cells of the grid.")
        if q < 1 or q > lay.num_shelves:
            raise ValueError(
                f"request_queue_size must be in [1, {lay.num_shelves}] (number of shelves), "
                f"got {q}."
            )
        if q == lay.num_shelves:
            raise ValueError(
                f"request_queue_size={q} leaves no unrequested shelf to refill the queue "
                f"(the layout has {lay.num_shelves} shelves)."
            )
        if int(sensor_range) != sensor_range or sensor_range < 1:
            raise ValueError(f"sensor_range must be a positive integer, got {sensor_range!r}.")
        if int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be a positive integer, got {time_limit!r}.")
        if reward_type not in C.REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {C.REWARD_TYPES}, got {reward_type!r}.")
        if observation_type not in C.OBSERVATION_TYPES:
            raise ValueError(
                f"observation_type must be one of {C.OBSERVATION_TYPES}, got {observation_type!r}."
            )
        image_layers = tuple(image_layers)
        bad = [layer for layer in image_layers if layer not in C.IMAGE_LAYERS]
        if bad or not image_layers:
            raise ValueError(f"image_layers must be a non-empty subset of {C.IMAGE_LAYERS}.")

        self.layout = lay
        self.generator = generator
        self._num_agents = n
        self.request_queue_size = q
        self.sensor_range = int(sensor_range)
        self._time_limit = int(time_limit)
        self.reward_type = reward_type
        self.observation_type = observation_type
        self.image_layers = image_layers
        self.image_directional = bool(image_directional)
        self.normalised_coordinates = bool(normalised_coordinates)
        if render_cell_size is not None:
            if viewer is not None:
                raise ValueError("give render_cell_size (sizes the default viewer) or viewer.")
            from jaxmarl_envs.rware.viewer import RwareViewer

            viewer = RwareViewer(lay, render_cell_size)
        self._viewer = viewer
        self._precompute()

    # ------------------------------------------------------------------ static data
    def _precompute(self) -> None:
        lay, r = self.layout, self.sensor_range
        side = 2 * r + 1
        self._window = side
        dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        self._win_dy = dy.reshape(-1).astype(np.int32)  # (K,) row-major window offsets
        self._win_dx = dx.reshape(-1).astype(np.int32)
        self._highway_flat = lay.highways.reshape(-1)
        self._goal_flat = (lay.goals[:, 0] * lay.width + lay.goals[:, 1]).astype(np.int32)
        goal_grid = np.zeros(lay.num_cells, bool)
        goal_grid[self._goal_flat] = True
        self._goal_grid_flat = goal_grid
        # K = ceil(log2(N)) pointer-doubling rounds cover chains of N agents.
        self._doubling_rounds = max(0, math.ceil(math.log2(max(self._num_agents, 1))))
        base = np.arange(side * side).reshape(side, side)
        self._rot_perm = np.stack(
            [np.rot90(base, k=k).reshape(-1) for k in C.IMAGE_ROT90_K]
        ).astype(np.int32)  # (4, K)
        self._coord_scale = (
            np.array([lay.width - 1, lay.height - 1], np.float32)
            if self.normalised_coordinates
            else np.ones(2, np.float32)
        )
        self._coord_scale = np.maximum(self._coord_scale, 1.0)

    # ------------------------------------------------------------------ properties
    @property
    def num_agents(self) -> int:
        return self._num_agents

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def num_shelves(self) -> int:
        return self.layout.num_shelves

    @property
    def grid_shape(self) -> tuple[int, int]:
        """`(H, W)` of the warehouse."""
        return self.layout.height, self.layout.width

    @property
    def obs_dim(self) -> int:
        """Length of a "vector" observation."""
        return 8 + 7 * self._window**2

    @property
    def observation_spec(self) -> specs.Structured:
        n, s = self._num_agents, self._window
        if self.observation_type == "vector":
            # Own x, y (cells, or [0, 1] when normalised), then 0/1 flags.
            high = np.ones((n, self.obs_dim), np.float32)
            if not self.normalised_coordinates:
                width, height = self.layout.width, self.layout.height
                high[:, 0], high[:, 1] = width - 1, height - 1
            view = specs.BoundedArray(high.shape, np.float32, 0.0, high, "agents_view")
        else:
            # Binary layers, except agent_direction which holds direction + 1 (<= 4).
            high = np.ones((n, len(self.image_layers), s, s), np.float32)
            for i, name in enumerate(self.image_layers):
                if name == "agent_direction":
                    high[:, i] = 4.0
            view = specs.BoundedArray(high.shape, np.float32, 0.0, high, "agents_view")
        return specs.Structured(
            Observation,
            "observation",
            agents_view=view,
            action_mask=specs.Array((n, C.NUM_ACTIONS), bool, "action_mask"),
            step_count=specs.BoundedArray((), np.int32, 0, self._time_limit, "step_count"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(
            np.full((self._num_agents,), C.NUM_ACTIONS, np.int32), np.int32, "action"
        )

    # ------------------------------------------------------------------ reset / step
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples an initial state with the generator.

        Returns:
            The state and the FIRST timestep (zero reward, discount one).
        """
        state = self.generator(key)
        return state, restart(self._observe(state), self._num_agents)

    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """One step of all agents with the joint `action` `(N,)`.

        Returns:
            The next state and its timestep (truncated once `time_limit` steps are done).
        """
        lay = self.layout
        h, w = lay.height, lay.width
        n = self._num_agents
        idx = jnp.arange(n, dtype=jnp.int32)
        action = jnp.asarray(action, jnp.int32)
        agent_grid = state.agent_grid.reshape(-1)
        shelf_grid = state.shelf_grid.reshape(-1)
        row, col = state.agent_pos[:, 0], state.agent_pos[:, 1]
        loaded = state.agent_load >= 0

        # --- requested moves (the original's `req_location`, then cancelled loaded moves).
        fwd = action == C.FORWARD
        trow = jnp.clip(row + jnp.where(fwd, jnp.asarray(C.DIR_DY)[state.agent_dir], 0), 0, h - 1)
        tcol = jnp.clip(col + jnp.where(fwd, jnp.asarray(C.DIR_DX)[state.agent_dir], 0), 0, w - 1)
        pflat = row * w + col
        tflat = trow * w + tcol
        target_agent = agent_grid[tflat] - 1  # -1 when the target cell is empty
        target_loaded = (target_agent >= 0) & loaded[jnp.maximum(target_agent, 0)]
        moving = tflat != pflat
        blocked = loaded & moving & (shelf_grid[tflat] > 0) & ~target_loaded
        moving = moving & ~blocked
        tflat = jnp.where(moving, tflat, pflat)
        committed = self._resolve_moves(moving, pflat, tflat, target_agent)
        move = moving & committed
        new_flat = jnp.where(move, tflat, pflat)

        # --- turns and load toggling (grids before the moves, as the original).
        turned = jnp.where(
            action == C.LEFT,
            jnp.asarray(C.TURN_LEFT)[state.agent_dir],
            jnp.where(
                action == C.RIGHT, jnp.asarray(C.TURN_RIGHT)[state.agent_dir], state.agent_dir
            ),
        )
        toggle = action == C.TOGGLE_LOAD
        shelf_here = shelf_grid[pflat] - 1
        pick = toggle & ~loaded & (shelf_here >= 0)
        drop = toggle & loaded & ~jnp.asarray(self._highway_flat)[pflat]
        new_load = jnp.where(pick, shelf_here, jnp.where(drop, -1, state.agent_load))
        rewards = jnp.zeros((n,), jnp.float32)
        if self.reward_type == "two_stage":
            rewards = rewards + jnp.where(drop & state.has_delivered, 0.5, 0.0)
        has_delivered = state.has_delivered & ~drop

        # --- move agents and their carried shelves; update the id grids.
        off = lay.num_cells  # out-of-range index: dropped by the scatters
        agent_grid = agent_grid.at[jnp.where(move, pflat, off)].set(0, mode="drop")
        agent_grid = agent_grid.at[jnp.where(move, new_flat, off)].set(idx + 1, mode="drop")
        carried_moves = move & loaded
        shelf_id = jnp.maximum(state.agent_load, 0)
        shelf_grid = shelf_grid.at[jnp.where(carried_moves, pflat, off)].set(0, mode="drop")
        shelf_grid = shelf_grid.at[jnp.where(carried_moves, new_flat, off)].set(
            shelf_id + 1, mode="drop"
        )
        new_pos = jnp.stack([new_flat // w, new_flat % w], axis=1)
        shelf_pos = state.shelf_pos.at[jnp.where(carried_moves, shelf_id, self.num_shelves)].set(
            new_pos, mode="drop"
        )

        # --- deliveries at the goals, in the original's goal order; queue refills.
        key, words = split_bits(state.key, lay.num_goals)
        num_free = self.num_shelves - self.request_queue_size
        draws = (words % np.uint32(num_free)).astype(jnp.int32)  # uniform (bias < 1e-7)
        queue = state.request_queue
        shelf_ids = jnp.arange(self.num_shelves, dtype=jnp.int32)
        num_delivered = jnp.zeros((), jnp.int32)  # the k-th delivery of a step uses draw k
        for g in range(lay.num_goals):
            gflat = int(self._goal_flat[g])
            sid = shelf_grid[gflat] - 1
            in_queue = queue == sid
            delivered = (sid >= 0) & jnp.any(in_queue)
            free = ~jnp.any(shelf_ids[:, None] == queue[None, :], axis=1)  # (S,) not requested
            draw = draws[num_delivered] if g else draws[0]
            new_request = jnp.argmax(jnp.cumsum(free) > draw).astype(jnp.int32)
            num_delivered = num_delivered + delivered
            queue = jnp.where(delivered & in_queue, new_request, queue)
            if self.reward_type == "global":
                rewards = rewards + jnp.where(delivered, 1.0, 0.0)
            else:
                at_goal = (agent_grid[gflat] - 1 == idx) & delivered
                value = 1.0 if self.reward_type == "individual" else 0.5
                rewards = rewards + jnp.where(at_goal, value, 0.0)
                if self.reward_type == "two_stage":
                    has_delivered = has_delivered | at_goal

        new_state = State(
            agent_pos=new_pos,
            agent_dir=turned,
            agent_load=new_load,
            has_delivered=has_delivered,
            shelf_pos=shelf_pos,
            request_queue=queue,
            agent_grid=agent_grid.reshape(h, w),
            shelf_grid=shelf_grid.reshape(h, w),
            key=key,
            step_count=state.step_count + 1,
        )
        truncated = new_state.step_count >= self._time_limit
        ts = make_timestep(self._observe(new_state), rewards, jnp.asarray(False), truncated)
        return new_state, ts

    def _resolve_moves(self, moving, pflat, tflat, target_agent) -> chex.Array:
        """Which agents the original's collision graph commits, `(N,)` bool.

        Nodes are agents plus one "empty cell" sink (index N). `reach[i, j]`: agent j lies on
        the path from i (i included), built by pointer doubling in ceil(log2 N) rounds.
        """
        n = self._num_agents
        idx = jnp.arange(n, dtype=jnp.int32)
        nxt = jnp.where(moving, jnp.where(target_agent >= 0, target_agent, n), idx)
        ext = jnp.concatenate([nxt, jnp.array([n], jnp.int32)])  # (N+1,)
        nodes = jnp.arange(n + 1, dtype=jnp.int32)
        reach = (nodes[:, None] == nodes[None, :]) | (ext[:, None] == nodes[None, :])
        ptr = ext
        for _ in range(self._doubling_rounds):
            reach = reach | reach[ptr]
            ptr = ptr[ptr]
        agents_reach = reach[:n, :n]  # (N, N)
        in_tree = reach[:n, n]  # the path ends in an empty cell
        on_cycle = reach[nxt, idx]  # i reachable from its successor
        swap = moving & (nxt < n) & (ext[jnp.minimum(nxt, n)] == idx)
        commit_cycle = ~in_tree & on_cycle & ~swap
        # Longest chain into each cell; ties: earliest node in the graph's insertion order.
        depth = jnp.sum(agents_reach, axis=1).astype(jnp.int32)  # agents from i to the sink
        height = jnp.max(jnp.where(agents_reach, depth[:, None], 0), axis=0) - depth + 1
        entered_by = (tflat[:, None] == pflat[None, :]) & moving[:, None] & (idx[:, None] != idx)
        first_turn = jnp.min(jnp.where(entered_by, 2 * idx[:, None] + 1, 2 * n + 2), axis=0)
        key = jnp.minimum(2 * idx, first_turn)
        rivals = (tflat[:, None] == tflat[None, :]) & in_tree[:, None] & (idx[:, None] != idx)
        beats_me = (height[:, None] > height[None, :]) | (
            (height[:, None] == height[None, :]) & (key[:, None] < key[None, :])
        )  # [k, i]: rival k wins over i
        chosen = ~jnp.any(rivals & beats_me, axis=0) | ~in_tree
        commit_tree = in_tree & jnp.all(~agents_reach | chosen[None, :], axis=1)
        return commit_cycle | commit_tree

    # ------------------------------------------------------------------ observations
    def _observe(self, state: State) -> Observation:
        if self.observation_type == "vector":
            view = self._vector_obs(state)
        else:
            view = self._grid_obs(state)
        return Observation(
            agents_view=view, action_mask=self._action_mask(state), step_count=state.step_count
        )

    def _window_cells(self, state: State) -> tuple[chex.Array, chex.Array]:
        """Flat cell index of each agent's window `(N, K)` and whether it is on the map."""
        lay = self.layout
        wr = state.agent_pos[:, :1] + self._win_dy[None, :]
        wc = state.agent_pos[:, 1:] + self._win_dx[None, :]
        valid = (wr >= 0) & (wr < lay.height) & (wc >= 0) & (wc < lay.width)
        return jnp.where(valid, wr * lay.width + wc, lay.num_cells), valid

    def _requested(self, state: State) -> chex.Array:
        """`(S,)` bool: shelf is in the request queue."""
        shelf_ids = jnp.arange(self.num_shelves, dtype=jnp.int32)
        return jnp.any(shelf_ids[:, None] == state.request_queue[None, :], axis=1)

    def _vector_obs(self, state: State) -> chex.Array:
        lay, n = self.layout, self._num_agents
        # One code per cell: 3 * (agent direction + 1, 0 if none) + (0 none, 1 shelf,
        # 2 requested shelf); a zero sentinel cell stands for "off the map".
        pflat = state.agent_pos[:, 0] * lay.width + state.agent_pos[:, 1]
        dir_code = (
            jnp.zeros((lay.num_cells + 1,), jnp.int32).at[pflat].set(3 * (state.agent_dir + 1))
        )
        req_pos = state.shelf_pos[state.request_queue]
        req_code = (
            jnp.zeros((lay.num_cells + 1,), jnp.int32)
            .at[req_pos[:, 0] * lay.width + req_pos[:, 1]]
            .set(1)
        )
        shelf_code = jnp.concatenate([(state.shelf_grid.reshape(-1) > 0).astype(jnp.int32), _ZERO])
        codes = (dir_code + shelf_code + req_code)[self._window_cells(state)[0]]  # (N, K)
        # A one-hot matmul with a table rather than a gather or a stack of comparisons: XLA
        # materialises the dot, whereas it fuses gathers into consumers (e.g. AutoReset's
        # select) and recomputes them for every output value (measured 2-5x slower).
        agent_state, shelf_state = codes // 3, codes % 3
        onehot = jnp.concatenate(
            [agent_state[..., None] == _AGENT_STATES, shelf_state[..., None] == _SHELF_STATES],
            axis=-1,
        ).astype(jnp.float32)  # (N, K, 8)
        sensors = onehot @ jnp.asarray(_SENSOR_TABLE)  # (N, K, 7)
        dirs = jnp.arange(C.NUM_DIRECTIONS, dtype=jnp.int32)
        xy = state.agent_pos[:, ::-1].astype(jnp.float32) / self._coord_scale
        own = jnp.concatenate(
            [
                (state.agent_load >= 0)[:, None],
                state.agent_dir[:, None] == dirs,
                jnp.asarray(self._highway_flat)[pflat][:, None],
            ],
            axis=1,
        ).astype(jnp.float32)
        return jnp.concatenate([xy, own, sensors.reshape(n, -1)], axis=1)

    def _cell_layers(self, state: State) -> chex.Array:
        """`(L, H * W)` float32 global image layers (the original's image layers)."""
        agent_id = state.agent_grid.reshape(-1)
        shelf_id = state.shelf_grid.reshape(-1)
        has_agent = agent_id > 0
        a = jnp.maximum(agent_id - 1, 0)
        layers = []
        for name in self.image_layers:
            if name == "shelves":
                layer = shelf_id > 0
            elif name == "requests":
                layer = (shelf_id > 0) & self._requested(state)[jnp.maximum(shelf_id - 1, 0)]
            elif name == "agents":
                layer = has_agent
            elif name == "agent_direction":
                layer = jnp.where(has_agent, state.agent_dir[a] + 1, 0)
            elif name == "agent_load":
                layer = has_agent & (state.agent_load[a] >= 0)
            elif name == "goals":
                layer = jnp.asarray(self._goal_grid_flat)
            else:  # accessible
                layer = ~has_agent
            layers.append(layer.astype(jnp.float32))
        return jnp.stack(layers)

    def _grid_obs(self, state: State) -> chex.Array:
        flat, _ = self._window_cells(state)  # (N, K)
        layers = self._cell_layers(state)  # (L, HW)
        view = layers.at[:, flat].get(mode="fill", fill_value=0.0)  # (L, N, K)
        view = jnp.moveaxis(view, 1, 0)  # (N, L, K)
        if self.image_directional:
            perm = jnp.asarray(self._rot_perm)[state.agent_dir]  # (N, K)
            view = jnp.take_along_axis(view, perm[:, None, :], axis=2)
        s = self._window
        return view.reshape(self._num_agents, len(self.image_layers), s, s)

    def _action_mask(self, state: State) -> chex.Array:
        lay = self.layout
        row, col = state.agent_pos[:, 0], state.agent_pos[:, 1]
        trow = row + jnp.asarray(C.DIR_DY)[state.agent_dir]
        tcol = col + jnp.asarray(C.DIR_DX)[state.agent_dir]
        inside = (trow >= 0) & (trow < lay.height) & (tcol >= 0) & (tcol < lay.width)
        tflat = jnp.where(inside, trow * lay.width + tcol, 0)
        agent_grid = state.agent_grid.reshape(-1)
        shelf_grid = state.shelf_grid.reshape(-1)
        loaded = state.agent_load >= 0
        target_agent = agent_grid[tflat] - 1
        target_loaded = (target_agent >= 0) & loaded[jnp.maximum(target_agent, 0)]
        blocked = loaded & (shelf_grid[tflat] > 0) & ~target_loaded
        pflat = row * lay.width + col
        toggle = jnp.where(loaded, ~jnp.asarray(self._highway_flat)[pflat], shelf_grid[pflat] > 0)
        true = jnp.ones_like(inside)
        return jnp.stack([true, inside & ~blocked, true, true, toggle], axis=1)

    # ------------------------------------------------------------------ global state
    def global_state(self, state: State, observation: Any = None) -> chex.Array:
        """A full view of the warehouse, `(H * W * 10,)` float32: per cell agent present,
        agent direction one-hot (4), agent loaded, shelf present, shelf requested, goal,
        corridor (row-major cells, channels last)."""
        agent_id = state.agent_grid.reshape(-1)
        shelf_id = state.shelf_grid.reshape(-1)
        has_agent = agent_id > 0
        a = jnp.maximum(agent_id - 1, 0)
        has_shelf = shelf_id > 0
        dirs = jnp.arange(C.NUM_DIRECTIONS, dtype=jnp.int32)
        feats = jnp.concatenate(
            [
                has_agent[:, None],
                has_agent[:, None] & (state.agent_dir[a][:, None] == dirs),
                (has_agent & (state.agent_load[a] >= 0))[:, None],
                has_shelf[:, None],
                (has_shelf & self._requested(state)[jnp.maximum(shelf_id - 1, 0)])[:, None],
                jnp.asarray(self._goal_grid_flat)[:, None],
                jnp.asarray(self._highway_flat)[:, None],
            ],
            axis=1,
        )
        return feats.reshape(-1).astype(jnp.float32)

    def global_state_spec(self) -> specs.BoundedArray:
        shape = (self.layout.num_cells * 10,)
        return specs.BoundedArray(shape, np.float32, 0.0, 1.0, "global_state")

    @property
    def integer_valued(self) -> frozenset[str]:
        # The global state is 0/1 flags; the view is cells and flags unless normalised.
        if self.normalised_coordinates:
            return frozenset({"global_state"})
        return frozenset({"agents_view", "global_state"})

    # ------------------------------------------------------------------ rendering
    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(H_px, W_px, 3)` of one (unbatched) state."""
        if self._viewer is None:
            from jaxmarl_envs.rware.viewer import RwareViewer

            self._viewer = RwareViewer(self.layout)
        return self._viewer.render(state)

    def close(self) -> None:
        if self._viewer is not None and hasattr(self._viewer, "close"):
            self._viewer.close()

    def __repr__(self) -> str:
        return (
            f"RobotWarehouse(grid={self.grid_shape}, num_agents={self._num_agents}, "
            f"request_queue_size={self.request_queue_size}, reward_type={self.reward_type!r}, "
            f"observation_type={self.observation_type!r})"
        )
