"""Reading datasets: integrity checks, per-episode tables, loading, streaming, env matching."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.buffers.recorder import DONE_KEY
from jaxmarl_envs.algorithms.buffers.vault import Vault

#: Layout tag written into the metadata of vaults made by `jaxmarl record`.
DATASET_LAYOUT = "jaxmarl_envs.dataset/1"
#: Steps per chunk when scanning a vault.
SCAN_CHUNK = 1 << 16


#: Bytes per chunk when a scan reads every field (e.g. coverage): bounded memory for any size.
SCAN_BYTES = 64 << 20


def chunk_steps(vault: Vault, max_bytes: int = SCAN_BYTES) -> int:
    """Steps per chunk so that one chunk of every field stays under `max_bytes`."""
    per_step = sum(vault._step_bytes(leaf) for leaf in vault.leaves) or 1
    return int(min(SCAN_CHUNK, max(256, max_bytes // per_step)))


class DatasetMismatchError(ValueError):
    """A dataset does not fit the environment it is used with."""


def open_vault(vault_or_path: Vault | str | os.PathLike) -> Vault:
    """A read-only `Vault` (passes a `Vault` through)."""
    if isinstance(vault_or_path, Vault):
        return vault_or_path
    return Vault(vault_or_path)


def _leaf(vault: Vault, name: str):
    return next((x for x in vault.leaves if x.name == name), None)


@dataclasses.dataclass(frozen=True)
class Integrity:
    """What of a vault can be read.

    Attributes:
        committed_steps: steps per row recorded as committed in `commit.json` (-1 unreadable).
        available_steps: steps present in every leaf file.
        usable_steps: steps of row 0 up to the end of its last complete, consistent episode
            (single-row datasets; for several rows the minimum over rows).
        num_episodes: complete episodes within the usable steps (all rows).
        last_episode_id: `episode_id` of the last complete episode (-1 if none/no field).
        problems: human-readable descriptions of what is wrong (empty when healthy).
    """

    committed_steps: int
    available_steps: int
    usable_steps: int
    num_episodes: int
    last_episode_id: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _committed(vault: Vault) -> int | None:
    try:
        return vault.num_steps
    except (ValueError, OSError, KeyError, TypeError):
        return None


def _read_fields(vault: Vault, names: Sequence[str], start: int, stop: int) -> dict:
    """`{name: (rows, stop - start, ...)}` of the named leaves only."""
    out = {}
    for name in names:
        leaf = _leaf(vault, name)
        if leaf is None:
            continue
        mm = vault._memmap(leaf, stop)[start:stop]
        out[name] = np.swapaxes(np.array(mm), 0, 1)
    return out


def check_integrity(vault_or_path: Vault | str | os.PathLike) -> Integrity:
    """Finds the readable part of a (possibly truncated or corrupted) vault.

    Checks that every leaf file holds the committed steps, and that the episode flags are
    consistent (`first` exactly at step 0 and after each `last`; `episode_id` constant within
    and +1 between episodes when recorded). Everything after the last complete episode
    before the first problem is unusable.
    """
    vault = open_vault(vault_or_path)
    problems = []
    if _leaf(vault, DONE_KEY) is None:
        raise ValueError(
            f"{vault.path}: no {DONE_KEY!r} field, not a dataset in the recorder layout"
        )
    committed = _committed(vault)
    available = vault.available_steps()
    if committed is None:
        problems.append("commit.json is missing or unreadable; using the steps in the files")
        steps = available
    else:
        steps = min(committed, available)
        if available < committed:
            problems.append(
                f"the leaf files hold only {available} of the {committed} committed steps "
                "(truncated files)"
            )
    usable, episodes, last_id = [], 0, -1
    for row in range(vault.num_rows):
        row_end, expect_first, prev_id, bad = 0, True, None, None
        row_eps = 0
        for t0 in range(0, steps, SCAN_CHUNK):
            t1 = min(steps, t0 + SCAN_CHUNK)
            d = _read_fields(vault, (DONE_KEY, "first", "episode_id"), t0, t1)
            last = d[DONE_KEY][row].astype(bool)
            first = d["first"][row].astype(bool) if "first" in d else None
            ids = d["episode_id"][row] if "episode_id" in d else None
            # Vectorised consistency: expected first flags from the previous last flags.
            if first is not None:
                exp = np.concatenate([[expect_first], last[:-1]])
                wrong = np.flatnonzero(first != exp)
                if wrong.size:
                    bad = t0 + int(wrong[0])
            if ids is not None and bad is None:
                starts = np.concatenate([[expect_first], last[:-1]])
                if prev_id is None:  # the row's first step: any id
                    prev_id = ids[0] - 1 if starts[0] else ids[0]
                prev = np.concatenate([[prev_id], ids[:-1]])
                wrong = np.flatnonzero(ids != np.where(starts, prev + 1, prev))
                if wrong.size:
                    bad = t0 + int(wrong[0])
            ends = np.flatnonzero(last) + t0
            if bad is not None:
                ends = ends[ends < bad]
            if ends.size:
                row_end = int(ends[-1]) + 1
                row_eps += int(ends.size)
                if ids is not None:
                    last_id = max(last_id, int(ids[ends[-1] - t0]))
            if bad is not None:
                problems.append(
                    f"row {row}: inconsistent episode flags at step {bad}; reading up to step "
                    f"{row_end}"
                )
                break
            expect_first = bool(last[-1])
            prev_id = None if ids is None else ids[-1]
        usable.append(row_end)
        episodes += row_eps
    return Integrity(
        committed_steps=-1 if committed is None else committed,
        available_steps=available,
        usable_steps=min(usable) if usable else 0,
        num_episodes=episodes,
        last_episode_id=last_id,
        problems=tuple(problems),
    )


@dataclasses.dataclass(frozen=True)
class EpisodeTable:
    """One entry per complete episode, ordered by row then start (numpy arrays)."""

    row: np.ndarray  # (E,) int64
    start: np.ndarray  # (E,) int64
    stop: np.ndarray  # (E,) int64
    episode_return: np.ndarray  # (E,) float64, team return (sum over agents and steps)
    tier: np.ndarray  # (E,) int64, -1 without a tier field

    @property
    def length(self) -> np.ndarray:
        return self.stop - self.start

    def __len__(self) -> int:
        return int(self.start.size)


def episode_table(
    vault_or_path: Vault | str | os.PathLike, stop: int | None = None
) -> EpisodeTable:
    """Every complete episode up to `stop` (default: the usable steps), streamed in chunks.

    Returns:
        An `EpisodeTable` (team returns summed in float64).
    """
    vault = open_vault(vault_or_path)
    if stop is None:
        stop = check_integrity(vault).usable_steps
    rows, starts, stops, rets, tiers = [], [], [], [], []
    for row in range(vault.num_rows):
        cum = [np.zeros(1)]
        ends_all, tier_all = [], []
        for t0 in range(0, stop, SCAN_CHUNK):
            t1 = min(stop, t0 + SCAN_CHUNK)
            d = _read_fields(vault, ("reward", DONE_KEY, "tier"), t0, t1)
            r = d["reward"][row].reshape(t1 - t0, -1).sum(-1, dtype=np.float64)
            cum.append(r)
            ends = np.flatnonzero(d[DONE_KEY][row]) + t0
            ends_all.append(ends)
            if "tier" in d:
                tier_all.append(d["tier"][row][ends - t0])
        cs = np.cumsum(np.concatenate(cum))
        ends = np.concatenate(ends_all) if ends_all else np.zeros(0, np.int64)
        st = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if ends.size else ends
        rows.append(np.full(ends.size, row, np.int64))
        starts.append(st)
        stops.append(ends + 1)
        rets.append(cs[ends + 1] - cs[st])
        tiers.append(
            np.concatenate(tier_all).astype(np.int64) if tier_all else np.full(ends.size, -1)
        )
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return EpisodeTable(
        cat(rows, np.int64),
        cat(starts, np.int64),
        cat(stops, np.int64),
        cat(rets, np.float64),
        cat(tiers, np.int64),
    )


def _usable_or_warn(vault: Vault) -> int:
    info = check_integrity(vault)
    if info.problems:
        warnings.warn(
            f"{vault.path}: {'; '.join(info.problems)}. Reading the {info.num_episodes} complete "
            f"episodes up to step {info.usable_steps} (last episode id {info.last_episode_id}).",
            stacklevel=3,
        )
    return info.usable_steps


def _drop_row(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _drop_row(v) for k, v in tree.items()}
    return tree[0]


def _select(tree: dict, fields: Sequence[str] | None) -> dict:
    if fields is None:
        return tree
    missing = [f for f in fields if f not in tree]
    if missing:
        raise ValueError(f"fields {missing} are not in the dataset; it has {sorted(tree)}")
    return {f: tree[f] for f in fields}


def load_dataset(path: Vault | str | os.PathLike, fields: Sequence[str] | None = None) -> dict:
    """Loads the complete episodes of a dataset into memory.

    Single-row vaults (written by `jaxmarl record`) come back as leaves `(T, ...)`; vaults
    with several rows (the rollout recorder's) as their complete episodes concatenated in
    row order. A truncated or corrupted tail is left out with a warning naming the last
    complete episode.

    Args:
        path: the vault directory (or an open `Vault`).
        fields: top-level fields to read (default all).
    """
    vault = open_vault(path)
    usable = _usable_or_warn(vault)
    if vault.num_rows == 1:
        return _select(_drop_row(vault.read(0, usable)), fields)
    table = episode_table(vault)
    import jax

    from jaxmarl_envs.algorithms.buffers.vault import Episode

    eps = [
        Episode(int(r), int(a), int(b), True)
        for r, a, b in zip(table.row, table.start, table.stop, strict=True)
    ]
    parts = vault.read_episodes(eps)
    if not parts:
        data = _drop_row(vault.read(0, 0))
    else:
        data = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, 0), *parts)
    return _select(data, fields)


def iter_dataset(
    path: Vault | str | os.PathLike, chunk_size: int, fields: Sequence[str] | None = None
) -> Iterator[dict]:
    """Streams a single-row dataset in chunks of `chunk_size` steps (leaves `(chunk, ...)`,
    the last chunk shorter), up to its last complete episode; one chunk in memory at a time."""
    vault = open_vault(path)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    if vault.num_rows != 1:
        raise ValueError(
            f"{vault.path} has {vault.num_rows} rows; iter_dataset streams single-row datasets "
            "(jaxmarl record); use Vault.iter_chunks for others"
        )
    usable = _usable_or_warn(vault)
    for t0 in range(0, usable, chunk_size):
        yield _select(_drop_row(vault.read(t0, min(usable, t0 + chunk_size))), fields)


# ---------------------------------------------------------------------------------------------
# Dataset vs environment
# ---------------------------------------------------------------------------------------------


def _leaf_shape(vault: Vault, name: str) -> tuple[int, ...] | None:
    leaf = _leaf(vault, name)
    return None if leaf is None else leaf.shape


def _leaf_dtype(vault: Vault, name: str) -> np.dtype | None:
    leaf = _leaf(vault, name)
    return None if leaf is None else np.dtype(leaf.dtype)


def env_signature(env: Any) -> dict:
    """What a dataset must agree with: agents, view shape, mask shape, action type and size,
    global-state size (from the environment's specs and one traced reset)."""
    import jax

    from jaxmarl_envs import specs
    from jaxmarl_envs.wrappers import GlobalState

    obs_spec = env.observation_spec
    spec = env.action_spec
    sig: dict[str, Any] = {
        "num_agents": int(env.num_agents),
        "observation_shape": tuple(int(x) for x in obs_spec.agents_view.shape),
    }
    mask = getattr(obs_spec, "action_mask", None)
    if mask is not None:
        sig["action_mask_shape"] = tuple(int(x) for x in mask.shape)
    if isinstance(spec, specs.MultiDiscreteArray):
        sig["action_type"] = "discrete"
        sig["num_actions"] = int(np.max(spec.num_values))
        sig["action_shape"] = tuple(int(x) for x in spec.shape)
    else:
        sig["action_type"] = "continuous"
        sig["action_shape"] = tuple(int(x) for x in spec.shape)
    try:
        shapes = jax.eval_shape(lambda k: GlobalState(env).reset(k)[1], jax.random.PRNGKey(0))
        sig["global_state_shape"] = tuple(int(x) for x in shapes.extras["global_state"].shape)
    except Exception:  # an environment without a global state: nothing to compare
        pass
    return sig


def dataset_signature(vault: Vault) -> dict:
    """The same quantities as `env_signature`, read from a vault's structure."""
    sig: dict[str, Any] = {}
    obs = _leaf_shape(vault, "observation")
    if obs is None:
        obs = _leaf_shape(vault, "observation/agents_view")
    if obs is not None:
        sig["observation_shape"] = obs
    reward = _leaf_shape(vault, "reward")
    if reward is not None and len(reward) == 1:
        sig["num_agents"] = reward[0]
    mask = _leaf_shape(vault, "action_mask")
    if mask is not None:
        sig["action_mask_shape"] = mask
    action, dtype = _leaf_shape(vault, "action"), _leaf_dtype(vault, "action")
    if action is not None:
        sig["action_shape"] = action
        sig["action_type"] = "continuous" if np.issubdtype(dtype, np.floating) else "discrete"
    if "num_actions" in vault.metadata:
        sig["num_actions"] = int(vault.metadata["num_actions"])
    gs = _leaf_shape(vault, "global_state")
    if gs is not None:
        sig["global_state_shape"] = gs
    return sig


_NAMES = {
    "num_agents": "number of agents",
    "observation_shape": "observation shape (agents, features)",
    "action_mask_shape": "action mask shape (agents, actions)",
    "action_type": "action type",
    "action_shape": "action shape",
    "num_actions": "number of discrete actions",
    "global_state_shape": "global state shape",
}


def check_dataset_matches_env(vault_or_path: Vault | str | os.PathLike, env: Any) -> None:
    """Refuses a dataset whose structure does not fit `env` (the unwrapped environment).

    Compares the number of agents, the observation (`agents_view`) shape, the action mask
    shape, the action type and shape, the number of discrete actions and the global-state size.

    Raises:
        DatasetMismatchError (a ValueError): naming every mismatch, e.g. "observation shape
            (agents, features): dataset (2, 12), environment (3, 15)".
    """
    vault = open_vault(vault_or_path)
    data, want = dataset_signature(vault), env_signature(env)
    problems = []
    for key, label in _NAMES.items():
        if (
            key in data
            and key in want
            and tuple(np.atleast_1d(data[key])) != tuple(np.atleast_1d(want[key]))
        ):
            problems.append(f"{label}: dataset {data[key]}, environment {want[key]}")
    env_id = vault.metadata.get("env_id")
    if problems:
        where = f" (recorded on {env_id})" if env_id else ""
        raise DatasetMismatchError(
            f"dataset {vault.path}{where} does not match the environment: " + "; ".join(problems)
        )


def is_dataset_dir(path: Path) -> bool:
    """Whether `path` is a vault directory."""
    return (path / "metadata.json").is_file() and (path / "commit.json").exists()
