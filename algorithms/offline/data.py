"""Offline datasets as device arrays of transitions: loading a recorder-layout Vault, checking it
against an environment, and uniform minibatch sampling under jit."""

from __future__ import annotations

import os
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_envs.algorithms import training
from jaxmarl_envs.env import Environment

#: Leaf names (path joined by "/") that may hold the true final observation of an episode's
#: last step (the successor a truncated step bootstraps from), in the order they are tried.
FINAL_OBSERVATION_KEYS = ("next_observation", "final_observation")


@struct.dataclass
class Transitions:
    """A whole dataset, flat over (row, time), on the device.

    Index `i` is one step of one recorded environment; `next_index[i]` is the row of its
    successor (the next step of the same episode, or an appended copy of the true final
    observation), so observations are stored once.

    Attributes:
        obs: `(T', N, D)` float32 per-agent views (agent ids appended when the learner adds
            them); `T' >= T` holds appended final observations after the `T` steps.
        mask: `(T', N, A)` bool legal actions (`A = 1`, all True, for continuous actions).
        state: `(T', S)` float32 global state (the recorded one, else all views concatenated).
        action: `(T, N)` int32 or `(T, N, dim)` float32 dataset actions.
        reward: `(T, N)` float32.
        terminated: `(T, N)` bool, the agent's episode ended by termination at this step.
        next_index: `(T,)` int32 successor index into `obs`, `mask`, `state`.
        bootstrap: `(T,)` bool, the successor is known (False only where an episode was cut
            by a time limit and the dataset has no final observation, or a row's trailing
            episode is unfinished): TD losses skip these samples.
        sample_index: `(K,)` int32 indices of the steps minibatches are drawn from.
    """

    obs: chex.Array
    mask: chex.Array
    state: chex.Array
    action: chex.Array
    reward: chex.Array
    terminated: chex.Array
    next_index: chex.Array
    bootstrap: chex.Array
    sample_index: chex.Array

    @property
    def num_transitions(self) -> int:
        return int(self.sample_index.shape[0])


@struct.dataclass
class Batch:
    """A sampled minibatch (leading axis B).

    Attributes:
        obs, next_obs: `(B, N, D)`; mask, next_mask: `(B, N, A)`; state, next_state: `(B, S)`;
        action `(B, N)` or `(B, N, dim)`; reward `(B, N)`; terminated `(B, N)` bool;
        bootstrap `(B,)` bool (see `Transitions`).
    """

    obs: chex.Array
    next_obs: chex.Array
    mask: chex.Array
    next_mask: chex.Array
    state: chex.Array
    next_state: chex.Array
    action: chex.Array
    reward: chex.Array
    terminated: chex.Array
    bootstrap: chex.Array


def sample_batch(data: Transitions, key: chex.PRNGKey, batch_size: int) -> Batch:
    """`batch_size` transitions drawn uniformly with replacement (jittable)."""
    pick = jax.random.randint(key, (batch_size,), 0, data.sample_index.shape[0])
    i = data.sample_index[pick]
    j = data.next_index[i]
    return Batch(
        obs=data.obs[i],
        next_obs=data.obs[j],
        mask=data.mask[i],
        next_mask=data.mask[j],
        state=data.state[i],
        next_state=data.state[j],
        action=data.action[i],
        reward=data.reward[i],
        terminated=data.terminated[i],
        bootstrap=data.bootstrap[i],
    )


# =============================================================================================
# Checking a vault against an environment
# =============================================================================================


def _leaf(vault, *names: str):
    by_name = {leaf.name: leaf for leaf in vault.leaves}
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def check_dataset_matches_env(vault: Any, env: Environment) -> None:
    """Raises ValueError naming the first mismatch between a recorder-layout vault and an
    (unwrapped) environment: the number of agents, the per-agent observation shape, the
    action type (discrete or continuous) and shape, and the action-mask shape.

    Uses `jaxmarl_envs.algorithms.datasets.check_dataset_matches_env` when that module
    provides it (the dataset tools' own check), else the checks here.

    Args:
        vault: an open `Vault`.
        env: the environment the learner will be evaluated in.
    """
    try:
        from jaxmarl_envs.algorithms.datasets import check_dataset_matches_env as external
    except ImportError:
        external = None
    if external is not None:
        external(vault, env)
        return
    where = f"dataset {vault.path}"
    obs = _leaf(vault, "observation", "observation/agents_view")
    action = _leaf(vault, "action")
    if obs is None or action is None or _leaf(vault, "reward") is None:
        raise ValueError(
            f"{where} is not in the recorder layout: it needs 'observation' (or "
            f"'observation/agents_view'), 'action' and 'reward' leaves; it has "
            f"{[x.name for x in vault.leaves]}"
        )
    n = env.num_agents
    view = tuple(env.observation_spec.agents_view.shape)
    if not obs.shape or obs.shape[0] != n:
        raise ValueError(
            f"{where} has {obs.shape[0] if obs.shape else 0} agents (observation shape "
            f"{obs.shape}), but {env.name if hasattr(env, 'name') else 'the environment'} has {n}"
        )
    if tuple(obs.shape) != view:
        raise ValueError(
            f"{where} has per-agent observations of shape {tuple(obs.shape)}, the environment "
            f"{view} (recorded in another scenario or observation type?)"
        )
    info = training.action_info(env)
    integer = np.issubdtype(np.dtype(action.dtype), np.integer)
    if info.continuous:
        if integer:
            raise ValueError(
                f"{where} has discrete (integer) actions, the environment continuous actions "
                f"of shape ({n}, {info.dim})"
            )
        if tuple(action.shape) != (n, info.dim):
            raise ValueError(
                f"{where} has continuous actions of shape {tuple(action.shape)}, the "
                f"environment ({n}, {info.dim})"
            )
    else:
        if not integer:
            raise ValueError(
                f"{where} has continuous ({action.dtype}) actions, the environment discrete "
                f"actions ({info.dim} per agent)"
            )
        if tuple(action.shape) != (n,):
            raise ValueError(
                f"{where} has discrete actions of shape {tuple(action.shape)}, expected ({n},)"
            )
        mask = _leaf(vault, "action_mask")
        if mask is not None and tuple(mask.shape) != (n, info.dim):
            raise ValueError(
                f"{where} has action masks of shape {tuple(mask.shape)}, the environment "
                f"({n}, {info.dim}) ({info.dim} actions per agent)"
            )


# =============================================================================================
# Loading
# =============================================================================================


def _get(tree: dict, name: str):
    node: Any = tree
    for part in name.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _views(x: Any) -> np.ndarray | None:
    """The per-agent views of an observation leaf (a dict observation's `agents_view`)."""
    if isinstance(x, dict):
        x = x.get("agents_view")
    return None if x is None else np.asarray(x)


def load_transitions(
    path: str | os.PathLike,
    env: Environment,
    add_agent_id: bool,
    max_transitions: int = 0,
) -> tuple[Transitions, dict]:
    """Reads a recorder-layout vault into device `Transitions` after checking it matches `env`.

    Successors: the next step of the same row; for an episode's last step, the recorded true
    final observation when the vault has one (`next_observation` with `next_action_mask` and
    `next_global_state`, as `jaxmarl record` writes them; see `FINAL_OBSERVATION_KEYS`),
    else none (the step is kept for BC losses but TD losses skip it, unless it terminated,
    where no successor is needed). Every step is sampled, including those without a known successor.

    Args:
        path: vault directory.
        env: the (unwrapped) environment.
        add_agent_id: append one-hot agent ids to the views, as `AgentID` does at evaluation.
        max_transitions: read at most this many steps per row times rows (0: everything).

    Returns:
        `(transitions, info)` with info holding the vault metadata, counts and the behaviour
        policy's return statistics when recorded.
    """
    from jaxmarl_envs.algorithms.buffers.vault import Vault

    if not os.path.isdir(path):
        raise ValueError(f"dataset {path} does not exist (expected a vault directory)")
    vault = Vault(path)
    check_dataset_matches_env(vault, env)
    raw = _read_complete(vault)
    steps = int(np.shape(raw["reward"])[1])
    if max_transitions > 0:
        steps = min(steps, max(1, max_transitions // int(np.shape(raw["reward"])[0])))
        raw = jax.tree_util.tree_map(lambda x: x[:, :steps], raw)
    if steps < 2:
        raise ValueError(f"dataset {path} holds {steps} step(s) per row; it needs at least 2")
    n = env.num_agents
    obs = _views(raw["observation"]).astype(np.float32)  # (R, T, N, D)
    rows, length = obs.shape[:2]
    info_action = training.action_info(env)
    action = np.asarray(raw["action"])
    action = action.astype(np.float32 if info_action.continuous else np.int32)
    reward = np.asarray(raw["reward"], np.float32).reshape(rows, length, n)
    terminated = _per_agent(raw.get("terminated"), rows, length, n)
    truncated = _per_agent(raw.get("truncated"), rows, length, n)
    last = raw.get("last")
    last = (
        np.asarray(last, bool).reshape(rows, length)
        if last is not None
        else (terminated | truncated).all(-1)
    )
    if "action_mask" in raw and not info_action.continuous:
        mask = np.asarray(raw["action_mask"], bool)
    elif info_action.continuous:
        mask = np.ones((rows, length, n, 1), bool)
    else:
        mask = np.ones((rows, length, n, info_action.dim), bool)
    gs = raw.get("global_state")
    state = (
        np.asarray(gs, np.float32).reshape(rows, length, -1)
        if gs is not None
        else obs.reshape(rows, length, -1)
    )
    final = None
    for key in FINAL_OBSERVATION_KEYS:
        final = _views(raw.get(key))
        if final is not None and final.shape == obs.shape:
            final = final.astype(np.float32)
            break
        final = None

    total = rows * length
    flat_index = np.arange(total, dtype=np.int64).reshape(rows, length)
    next_index = np.empty((rows, length), np.int64)
    next_index[:, :-1] = flat_index[:, 1:]
    next_index[:, -1] = flat_index[:, -1]
    episode_end = last.copy()
    bootstrap = ~episode_end
    bootstrap[:, -1] = False  # the trailing step of a row has no recorded successor
    team_terminated = terminated.all(-1)
    bootstrap |= team_terminated  # terminated steps need no successor
    extra_obs = [obs.reshape(total, n, -1)]
    extra_mask = [mask.reshape(total, n, -1)]
    extra_state = [state.reshape(total, -1)]
    if final is not None:
        # Episode ends (truncated or terminated) point at an appended copy of their final
        # observation; its mask is all-legal (unknown) and its state the views concatenated.
        ends = np.flatnonzero(episode_end.reshape(-1))
        appended = total + np.arange(ends.size)
        next_index.reshape(-1)[ends] = appended
        bootstrap.reshape(-1)[ends] = True
        fin = final.reshape(total, n, -1)[ends]
        extra_obs.append(fin)
        next_mask = _get(raw, "next_action_mask")
        if next_mask is not None and not info_action.continuous:
            extra_mask.append(np.asarray(next_mask, bool).reshape(total, n, -1)[ends])
        else:  # unknown: all legal
            extra_mask.append(np.ones((ends.size, n, mask.shape[-1]), bool))
        next_gs = _get(raw, "next_global_state")
        if next_gs is not None and gs is not None:
            extra_state.append(np.asarray(next_gs, np.float32).reshape(total, -1)[ends])
        elif gs is None:
            extra_state.append(fin.reshape(ends.size, -1))
        else:  # the recorded state at the last step stands in for the final one
            extra_state.append(state.reshape(total, -1)[ends])
    all_obs = np.concatenate(extra_obs)
    if add_agent_id:
        eye = np.broadcast_to(np.eye(n, dtype=np.float32), (all_obs.shape[0], n, n))
        all_obs = np.concatenate([all_obs, eye], axis=-1)
    data = Transitions(
        obs=jnp.asarray(all_obs),
        mask=jnp.asarray(np.concatenate(extra_mask)),
        state=jnp.asarray(np.concatenate(extra_state)),
        action=jnp.asarray(action.reshape(total, *action.shape[2:])),
        reward=jnp.asarray(reward.reshape(total, n)),
        terminated=jnp.asarray(terminated.reshape(total, n)),
        next_index=jnp.asarray(next_index.reshape(total).astype(np.int32)),
        bootstrap=jnp.asarray(bootstrap.reshape(total)),
        sample_index=jnp.arange(total, dtype=jnp.int32),
    )
    meta = vault.metadata
    returns = meta.get("returns") or {}
    info = {
        "path": str(path),
        "rows": rows,
        "steps_per_row": length,
        "transitions": total,
        "episodes_ended": int(episode_end.sum()),
        "bootstrap_fraction": float(bootstrap.mean()),
        "has_final_observation": final is not None,
        "behaviour_return_mean": returns.get("mean"),
        "metadata": meta,
    }
    return data, info


def _read_complete(vault: Any) -> dict:
    """The vault's steps as `(rows, T, ...)` leaves: its complete episodes back to back in one
    row through the dataset tools' `load_dataset` (which drops a truncated or corrupted tail
    with a warning naming the last complete episode) when they are installed, else every
    committed step of every row."""
    try:
        from jaxmarl_envs.algorithms.datasets import load_dataset
    except ImportError:
        return vault.read()
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[None], load_dataset(vault))


def _per_agent(x: Any, rows: int, length: int, n: int) -> np.ndarray:
    if x is None:
        return np.zeros((rows, length, n), bool)
    x = np.asarray(x, bool)
    if x.ndim == 2:
        x = np.broadcast_to(x[..., None], (rows, length, n))
    return x.reshape(rows, length, n)
