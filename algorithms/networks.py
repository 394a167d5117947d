"""Actor and critic networks (MLP or GRU torso) with shared or per-agent parameters."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.algorithms.distributions import DiagGaussian, MaskedCategorical

_ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu, "silu": nn.silu}


def init_each(init: Any, keys: chex.Array) -> Any:
    """`init(key)` for each of `keys`, stacked on a new axis 0: the value of
    `jax.vmap(init)(keys)`, computed one key after the other (`lax.map`).

    Parameter initialisation must not be vmapped on CPU: vmap turns each orthogonal initialiser
    into a batched LAPACK QR, which runs on a thread of XLA's CPU pool, splits its batch into
    tasks for the same pool and blocks until they are done. When as many such QRs run side by
    side as the pool has threads (any network with several orthogonal layers, on a machine with
    few cores: 2 here, jaxlib 0.10.2), every thread blocks on tasks no thread is free to run,
    and the process hangs forever in `block_until_ready` with every thread idle. Mapping keeps
    every QR unbatched. Initialisation runs once, so its sequential cost does not matter.
    """
    return jax.lax.map(init, keys)


def activation_fn(name: str):
    """The activation called `name` (relu, tanh, gelu, silu); ValueError otherwise."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}"
        ) from None


class ScannedGRU(nn.Module):
    """A GRU scanned over a leading time axis that resets its state where `resets` is True.

    Call with `carry (..., H)` and `(x (T, ..., D), resets (T, ...))`; the state is zeroed
    *before* consuming step `t` when `resets[t]` is set (the first step of a new episode).
    """

    features: int

    @functools.partial(
        nn.scan,
        variable_broadcast="params",
        in_axes=0,
        out_axes=0,
        split_rngs={"params": False},
    )
    @nn.compact
    def __call__(self, carry: chex.Array, inputs: tuple[chex.Array, chex.Array]):
        x, reset = inputs
        carry = jnp.where(reset[..., None], jnp.zeros_like(carry), carry)
        carry, y = nn.GRUCell(features=self.features, name="cell")(carry, x)
        return carry, y


class Torso(nn.Module):
    """`Dense(h0) -> [GRU] -> Dense(h1) -> ...` with a configurable activation.

    The recurrent variant puts the GRU after the first dense layer (as Mava's recurrent
    systems do). Inputs are time-major: `x (T, ..., D)`, `resets (T, ...)`, `hidden (..., H)`.
    """

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    recurrent: bool = False
    gru_size: int = 128

    @nn.compact
    def __call__(self, hidden, x, resets):
        act = activation_fn(self.activation)
        init = nn.initializers.orthogonal(np.sqrt(2.0))
        for i, size in enumerate(self.hidden_sizes):
            x = act(nn.Dense(size, kernel_init=init, name=f"dense_{i}")(x))
            if i == 0 and self.recurrent:
                hidden, x = ScannedGRU(self.gru_size, name="gru")(hidden, (x, resets))
        return hidden, x


class Actor(nn.Module):
    """Policy network: discrete logits (masked outside) or a Gaussian mean + learnt log-std."""

    hidden_sizes: Sequence[int]
    action_dim: int
    continuous: bool = False
    activation: str = "relu"
    recurrent: bool = False
    gru_size: int = 128

    @nn.compact
    def __call__(self, hidden, x, resets):
        hidden, h = Torso(
            self.hidden_sizes, self.activation, self.recurrent, self.gru_size, name="torso"
        )(hidden, x, resets)
        head = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01), name="head")
        out = head(h)
        if self.continuous:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            return hidden, (out, jnp.broadcast_to(log_std, out.shape))
        return hidden, out


class Critic(nn.Module):
    """State-value network: `(T, ..., D) -> (T, ...)`.

    With `input_norm`, a LayerNorm (learned scale and offset) normalises each input vector
    before the torso: the MAPPO paper's feature normalisation, which keeps the critic's
    activations in range when inputs such as positions grow far beyond their usual values.
    """

    hidden_sizes: Sequence[int]
    activation: str = "relu"
    recurrent: bool = False
    gru_size: int = 128
    input_norm: bool = False

    @nn.compact
    def __call__(self, hidden, x, resets):
        if self.input_norm:
            x = nn.LayerNorm(name="input_norm")(x)
        hidden, h = Torso(
            self.hidden_sizes, self.activation, self.recurrent, self.gru_size, name="torso"
        )(hidden, x, resets)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), name="head")(h)
        return hidden, value[..., 0]


@dataclasses.dataclass(frozen=True)
class MultiAgentNet:
    """Applies one flax module to every agent, with shared or per-agent parameters.

    Inputs keep the agent axis: `x (T, B, N, D)`, `resets (T, B, N)`, `hidden (B, N, H)`.
    With `share=True` one parameter set serves all agents (agent ids in the input tell them
    apart); with `share=False` the parameters carry a leading `(N,)` axis and the module is
    `vmap`-ed over agents.

    Attributes:
        module: the flax module (`Actor` or `Critic`).
        num_agents: N.
        share: parameter sharing across agents.
        hidden_size: recurrent state size (1 for feed-forward modules, whose state is a dummy).
    """

    module: nn.Module
    num_agents: int
    share: bool = True
    hidden_size: int = 1

    def initial_hidden(self, batch_shape: Sequence[int]) -> chex.Array:
        """Zero recurrent state `(*batch_shape, N, H)`."""
        return jnp.zeros((*batch_shape, self.num_agents, self.hidden_size), jnp.float32)

    def init(self, key: chex.PRNGKey, input_dim: int) -> Any:
        """Initial parameters for inputs of size `input_dim` (leading `(N,)` if not shared)."""
        hidden = jnp.zeros((1, self.hidden_size), jnp.float32)
        x = jnp.zeros((1, 1, input_dim), jnp.float32)
        resets = jnp.zeros((1, 1), bool)
        if self.share:
            return self.module.init(key, hidden, x, resets)
        keys = jax.random.split(key, self.num_agents)
        return init_each(lambda k: self.module.init(k, hidden, x, resets), keys)

    def apply(self, params: Any, hidden: chex.Array, x: chex.Array, resets: chex.Array):
        """Runs the module over a time-major batch.

        Args:
            params: parameters from `init`.
            hidden: `(B, N, H)` recurrent state.
            x: `(T, B, N, D)` inputs.
            resets: `(T, B, N)` bool, True on the first step of an episode.

        Returns:
            `(new_hidden (B, N, H), outputs)` with outputs `(T, B, N, ...)`.
        """
        if self.share:
            return self.module.apply(params, hidden, x, resets)
        return jax.vmap(self.module.apply, in_axes=(0, 1, 2, 2), out_axes=(1, 2))(
            params, hidden, x, resets
        )


def make_distribution(out: Any, mask: chex.Array | None, continuous: bool):
    """The action distribution for an actor output (`logits` or `(mean, log_std)`)."""
    if continuous:
        mean, log_std = out
        return DiagGaussian(mean=mean, log_std=log_std)
    return MaskedCategorical.create(out, mask)
