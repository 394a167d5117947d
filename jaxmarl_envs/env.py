"""The `Environment` base class: pure, jittable `reset`/`step` over a typed state."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import chex
import numpy as np

from jaxmarl_envs import specs
from jaxmarl_envs.types import TimeStep

State = TypeVar("State")


class Environment(abc.ABC, Generic[State]):
    """A multi-agent environment with pure, jittable and vmappable `reset` and `step`.

    Every per-agent array is agent-major (leading `num_agents` axis). The state is an
    immutable pytree holding its own PRNG key and step count, so an episode is a pure
    function of the reset key and the actions. Nothing that changes during an episode is
    kept on `self`.
    """

    #: Environment family name used by adapters and results files (e.g. "rware").
    name: str = "environment"

    @property
    @abc.abstractmethod
    def num_agents(self) -> int:
        """Number of agents."""

    @property
    def agent_ids(self) -> tuple[str, ...]:
        """Stable string ids of the agents, in array order."""
        return tuple(f"agent_{i}" for i in range(self.num_agents))

    @property
    @abc.abstractmethod
    def time_limit(self) -> int:
        """Steps after which an episode is truncated."""

    @abc.abstractmethod
    def reset(self, key: chex.PRNGKey) -> tuple[State, TimeStep]:
        """Samples an initial state and returns it with the FIRST timestep."""

    @abc.abstractmethod
    def step(self, state: State, action: chex.Array) -> tuple[State, TimeStep]:
        """Advances one step with the joint `action` (`(num_agents, ...)`)."""

    @property
    @abc.abstractmethod
    def observation_spec(self) -> specs.Structured:
        """Spec of `timestep.observation` (agent-major)."""

    @property
    @abc.abstractmethod
    def action_spec(self) -> specs.Spec:
        """Spec of the joint action (agent-major)."""

    @property
    def reward_spec(self) -> specs.Array:
        return specs.Array((self.num_agents,), np.float32, "reward")

    @property
    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((self.num_agents,), np.float32, 0.0, 1.0, "discount")

    @property
    def num_actions(self) -> int:
        """Actions per agent for discrete environments (from the action spec)."""
        spec = self.action_spec
        if isinstance(spec, specs.MultiDiscreteArray):
            return int(np.max(spec.num_values))
        raise TypeError(f"{type(self).__name__} does not have discrete actions.")

    def global_state(self, state: State, observation: Any) -> chex.Array:
        """A centralised state for critics, `(state_dim,)`.

        The default concatenates every agent's flattened view; environments override it
        with a true global view when they have one.
        """
        view = observation.agents_view
        return view.reshape(-1).astype(np.float32)

    def global_state_spec(self) -> specs.Array:
        view = self.observation_spec.agents_view
        return specs.Array((int(np.prod(view.shape)),), np.float32, "global_state")

    @property
    def integer_valued(self) -> frozenset[str]:
        """Which of `"agents_view"` and `"global_state"` only ever hold whole numbers within
        their spec's bounds (grid positions, levels, flags). Replay buffers store those
        exactly in a narrow integer dtype (`specs.exact_storage_dtype`): the warehouse's
        1,100-value global state takes a quarter of the memory. None by default; a wrapper
        that changes the values (normalising, say) must not forward it."""
        return frozenset()

    def validate_action(self, action: Any) -> np.ndarray:
        """Checks a concrete joint action outside jit; raises `ValueError` naming the problem.

        Returns:
            The action as a numpy array of the spec's dtype.
        """
        try:
            self.action_spec.validate(action)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: invalid action: {err}") from err
        return np.asarray(action, self.action_spec.dtype)

    def render(self, state: State) -> np.ndarray:
        """An RGB `uint8` frame `(height, width, 3)` of a single (unbatched) state."""
        raise NotImplementedError(f"{type(self).__name__} has no viewer.")

    def animate(self, states: Sequence[State], path: str, fps: float = 8.0) -> str:
        """Renders a sequence of states to a GIF or MP4 (by extension) with imageio."""
        from jaxmarl_envs.rendering import save_animation

        frames = [self.render(s) for s in states]
        return save_animation(frames, path, fps=fps)

    def close(self) -> None:
        """Releases viewer resources."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_agents={self.num_agents})"
