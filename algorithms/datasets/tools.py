"""Dataset tools: list, info, describe (return statistics, coverage), subsample, combine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.algorithms.datasets.core import (
    EpisodeTable,
    _drop_row,
    check_integrity,
    chunk_steps,
    episode_table,
    is_dataset_dir,
    open_vault,
)

PERCENTILES = (5, 25, 50, 75, 95)
#: Steps buffered before each append when copying episodes into a new vault.
_WRITE_CHUNK = 1 << 15


def list_datasets(root: str | os.PathLike) -> list[dict]:
    """Every vault at or under `root` (sorted by path): path, env, tier, episodes, steps."""
    root = Path(root)
    if not root.exists():
        raise ValueError(f"{root}: no such folder")
    found = [root] if is_dataset_dir(root) else []
    found += sorted(p.parent for p in root.rglob("metadata.json") if is_dataset_dir(p.parent))
    out = []
    for path in dict.fromkeys(found):
        try:
            vault = Vault(path)
        except ValueError:
            continue  # a Flashbax vault or other metadata.json
        meta = vault.metadata
        out.append(
            {
                "path": str(path),
                "env_id": meta.get("env_id"),
                "tier": meta.get("tier") or ",".join(meta.get("tier_names", [])) or None,
                "episodes": meta.get("num_episodes"),
                "steps": vault.num_steps,
                "mean_return": (meta.get("returns") or {}).get("mean"),
            }
        )
    return out


def dataset_info(path: str | os.PathLike) -> dict:
    """Metadata, structure (leaf shapes and dtypes) and integrity of one vault."""
    vault = open_vault(path)
    integrity = check_integrity(vault)
    return {
        "path": str(vault.path),
        "format_version": vault.format_version,
        "rows": vault.num_rows,
        "steps": integrity.committed_steps,
        "usable_steps": integrity.usable_steps,
        "episodes": integrity.num_episodes,
        "problems": list(integrity.problems),
        "fields": {
            leaf.name: [list(leaf.shape), np.dtype(leaf.dtype).name] for leaf in vault.leaves
        },
        "metadata": vault.metadata,
    }


def return_summary(returns: np.ndarray) -> dict:
    """count, mean, std, min, max and the 5/25/50/75/95th percentiles of episode returns."""
    r = np.asarray(returns, np.float64)
    if r.size == 0:
        return {"count": 0}
    out = {
        "count": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
    }
    out.update({f"p{q}": float(np.percentile(r, q)) for q in PERCENTILES})
    return out


def _tier_names(vault: Vault) -> list[str]:
    meta = vault.metadata
    if "tier_names" in meta:
        return list(meta["tier_names"])
    return [meta.get("tier") or vault.path.name]


def returns_by_tier(vault_or_path: Vault | str | os.PathLike) -> dict[str, np.ndarray]:
    """`{tier name: episode returns}` (one entry for a single-tier vault)."""
    vault = open_vault(vault_or_path)
    table = episode_table(vault)
    names = _tier_names(vault)
    if (table.tier < 0).all():
        return {names[0]: table.episode_return}
    return {name: table.episode_return[table.tier == i] for i, name in enumerate(names)}


class _HashSet:
    """Distinct 64-bit hashes of rows, merged chunk by chunk (sorted unique arrays)."""

    def __init__(self):
        self.values = np.zeros(0, np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        self.values = np.union1d(self.values, np.unique(hashes))

    def __len__(self) -> int:
        return int(self.values.size)


def _row_hash(x: np.ndarray, salt: int = 0) -> np.ndarray:
    """A 64-bit hash per leading index of `x` `(n, ...)` (multiply-add over its bytes as
    uint32 words; collisions are negligible at dataset sizes)."""
    flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    if flat.dtype.itemsize % 4:
        flat = flat.astype(np.float32)
    words = flat.view(np.uint32).astype(np.uint64)
    rng = np.random.default_rng(0x5EED + salt)
    weights = rng.integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = (words * weights).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
    return h


def coverage_summary(vault_or_path: Vault | str | os.PathLike) -> dict:
    """State-action coverage of a dataset in the recorder layout (streamed).

    Returns:
        distinct per-agent observations and (observation, action) pairs, distinct global states
        (each with its ratio to the number of samples), and for discrete actions the per-agent
        action frequencies with their normalised entropy (1 = uniform over the actions), for
        continuous actions the per-dimension mean/std and the fraction of occupied cells of a
        10-bin grid per dimension.
    """
    vault = open_vault(vault_or_path)
    usable = check_integrity(vault).usable_steps
    obs_set, sa_set, gs_set = _HashSet(), _HashSet(), _HashSet()
    counts = None
    cont_sum = cont_sq = None
    bins_seen = None
    n_samples = 0
    meta = vault.metadata
    low, high = None, None
    step = chunk_steps(vault)
    for t0 in range(0, usable, step):
        t1 = min(usable, t0 + step)
        chunk = _drop_row(vault.read(t0, t1, rows=[0])) if vault.num_rows == 1 else None
        if chunk is None:
            raise ValueError("coverage_summary reads single-row datasets (jaxmarl record)")
        obs = chunk["observation"]
        view = obs["agents_view"] if isinstance(obs, dict) else obs
        action = chunk["action"]
        steps, agents = view.shape[:2]
        per_agent = view.reshape(steps * agents, -1)
        act = action.reshape(steps * agents, -1)
        ids = np.tile(np.arange(agents), steps)[:, None].astype(np.float32)
        obs_h = _row_hash(np.concatenate([per_agent.astype(np.float32), ids], 1))
        obs_set.add(obs_h)
        sa_set.add(obs_h ^ _row_hash(act.astype(np.float32), salt=1))
        if "global_state" in chunk:
            gs_set.add(_row_hash(chunk["global_state"]))
        n_samples += steps * agents
        if np.issubdtype(action.dtype, np.integer):
            k = int(meta.get("num_actions") or (chunk.get("action_mask", action).shape[-1]))
            c = np.stack([np.bincount(action[:, i], minlength=k)[:k] for i in range(agents)])
            counts = c if counts is None else counts + c
        else:
            a64 = action.astype(np.float64)
            s, q = a64.sum(0), (a64**2).sum(0)
            cont_sum = s if cont_sum is None else cont_sum + s
            cont_sq = q if cont_sq is None else cont_sq + q
            if low is None:
                low, high = a64.min(0), a64.max(0)
                lo_m = np.asarray(meta.get("action_low", np.zeros_like(low)))
                hi_m = np.asarray(meta.get("action_high", np.ones_like(high)))
                low, high = np.minimum(low, lo_m), np.maximum(high, hi_m)
            cells = np.clip(((a64 - low) / np.maximum(high - low, 1e-9) * 10).astype(int), 0, 9)
            seen = np.zeros((*cells.shape[1:], 10), bool)
            for b in range(10):
                seen[..., b] = (cells == b).any(0)
            bins_seen = seen if bins_seen is None else bins_seen | seen
    steps_total = usable
    out: dict[str, Any] = {
        "samples_agent_steps": int(n_samples),
        "distinct_observations": len(obs_set),
        "distinct_observation_ratio": len(obs_set) / max(n_samples, 1),
        "distinct_state_actions": len(sa_set),
        "distinct_state_action_ratio": len(sa_set) / max(n_samples, 1),
    }
    if len(gs_set):
        out["distinct_global_states"] = len(gs_set)
        out["distinct_global_state_ratio"] = len(gs_set) / max(steps_total, 1)
    if counts is not None:
        freq = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.nansum(np.where(freq > 0, freq * np.log(freq), 0.0), axis=1)
        out["action_frequencies"] = np.round(freq, 4).tolist()
        out["action_entropy_normalised"] = np.round(ent / np.log(freq.shape[1]), 4).tolist()
    elif cont_sum is not None:
        mean = cont_sum / max(steps_total, 1)
        std = np.sqrt(np.maximum(cont_sq / max(steps_total, 1) - mean**2, 0))
        out["action_mean"] = np.round(mean, 4).tolist()
        out["action_std"] = np.round(std, 4).tolist()
        out["action_grid_occupancy"] = float(bins_seen.mean())
    return out


def describe_dataset(
    path: str | os.PathLike, plot_dir: str | os.PathLike | None = None, coverage: bool = True
) -> dict:
    """Return statistics per tier (count, mean, std, min, max, percentiles), the coverage
    summary, and (with `plot_dir`) a return histogram and violin plot PNG per tier."""
    vault = open_vault(path)
    tiers = returns_by_tier(vault)
    out: dict[str, Any] = {
        "path": str(vault.path),
        "env_id": vault.metadata.get("env_id"),
        "returns": {name: return_summary(r) for name, r in tiers.items()},
    }
    integrity = check_integrity(vault)
    if integrity.problems:
        out["problems"] = list(integrity.problems)
    if coverage and vault.num_rows == 1:
        out["coverage"] = coverage_summary(vault)
    if plot_dir is not None:
        from jaxmarl_envs.algorithms.datasets.plots import plot_returns

        out["plots"] = plot_returns(tiers, plot_dir, title=out["env_id"] or vault.path.name)
    return out


# ---------------------------------------------------------------------------------------------
# Writing selected episodes into a new vault
# ---------------------------------------------------------------------------------------------


def _copy_episodes(
    sources: Sequence[tuple[Vault, EpisodeTable, np.ndarray, np.ndarray | None]],
    out: str | os.PathLike,
    metadata: dict,
    with_tier: bool,
) -> int:
    """Copies episodes (per source: its table, selected indices, tier per selected episode)
    into a new single-row vault, renumbering `episode_id` densely. Returns episodes written."""
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} already exists")
    first = sources[0][0]
    example = first.read(0, 0, rows=[0])
    example = dict(example)
    if with_tier:
        example["tier"] = np.zeros((1, 0), np.int32)
    vault = Vault.create(out, example, metadata=metadata)
    pending: list[dict] = []
    pending_steps = 0
    written = 0

    def flush():
        nonlocal pending, pending_steps
        if pending:
            import jax

            vault.append(jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, 1), *pending))
        pending, pending_steps = [], 0

    try:
        for src, table, idx, tiers in sources:
            for j, i in enumerate(idx):
                row, a, b = int(table.row[i]), int(table.start[i]), int(table.stop[i])
                ep = dict(src.read(a, b, rows=[row]))
                if "episode_id" in ep:
                    ep["episode_id"] = np.full_like(ep["episode_id"], written)
                if with_tier:
                    ep["tier"] = np.full((1, b - a), tiers[j], np.int32)
                pending.append(ep)
                pending_steps += b - a
                written += 1
                if pending_steps >= _WRITE_CHUNK:
                    flush()
        flush()
        table = episode_table(vault)
        vault.update_metadata(
            returns=return_summary(table.episode_return),
            behaviour_return=float(table.episode_return.mean()) if len(table) else None,
            num_episodes=len(table),
            num_steps=int(table.stop[-1]) if len(table) else 0,
        )
    finally:
        vault.close()
    return written


def _structure(vault: Vault) -> list:
    return [(leaf.name, leaf.shape, leaf.dtype) for leaf in vault.leaves if leaf.name != "tier"]


def subsample_dataset(
    path: str | os.PathLike,
    out: str | os.PathLike,
    episodes: int | None = None,
    percentile: tuple[float, float] | None = None,
    seed: int | None = None,
) -> dict:
    """Writes a subset of a dataset's episodes into a new vault.

    Args:
        path: source vault.
        out: new vault.
        episodes: keep this many episodes (the first ones, or a random choice with `seed`,
            kept in their original order); applied after `percentile`.
        percentile: `(lo, hi)` keep episodes whose return lies between the lo-th and hi-th
            percentile of the source's returns (inclusive).
        seed: random choice of `episodes` (default: the first ones).
    """
    src = open_vault(path)
    table = episode_table(src)
    idx = np.arange(len(table))
    rule = {}
    if percentile is not None:
        lo, hi = percentile
        if not 0 <= lo <= hi <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= lo <= hi <= 100, got {lo}, {hi}")
        a, b = np.percentile(table.episode_return, [lo, hi]) if len(table) else (0.0, 0.0)
        idx = idx[(table.episode_return >= a) & (table.episode_return <= b)]
        rule["percentile"] = [lo, hi]
        rule["return_range"] = [float(a), float(b)]
    if episodes is not None:
        if episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {episodes}")
        if episodes > idx.size:
            raise ValueError(f"asked for {episodes} episodes, only {idx.size} are selectable")
        if seed is None:
            idx = idx[:episodes]
        else:
            idx = np.sort(np.random.default_rng(seed).choice(idx, episodes, replace=False))
        rule.update(episodes=episodes, seed=seed)
    meta = src.metadata
    meta["subsample"] = {"source": str(src.path), **rule}
    with_tier = any(leaf.name == "tier" for leaf in src.leaves)
    tiers = table.tier[idx] if with_tier else None
    n = _copy_episodes([(src, table, idx, tiers)], out, meta, with_tier=False)
    return {"path": str(out), "episodes": n, **rule}


def combine_datasets(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    tiers: Sequence[str] | None = None,
) -> dict:
    """Concatenates datasets of the same structure, keeping a tier label per episode (a
    `tier` field, index into the metadata's `tier_names`).

    Args:
        paths: source vaults (same fields, shapes and dtypes).
        out: new vault.
        tiers: a label per source (default: each source's `tier` metadata, else its folder
            name); sources that are themselves combined keep their own labels.
    """
    if len(paths) < 1:
        raise ValueError("combine needs at least one dataset")
    vaults = [open_vault(p) for p in paths]
    if tiers is not None and len(tiers) != len(vaults):
        raise ValueError(f"{len(tiers)} tier labels for {len(vaults)} datasets")
    ref = _structure(vaults[0])
    for v in vaults[1:]:
        if _structure(v) != ref:
            a = {n: (s, d) for n, s, d in ref}
            b = {n: (s, d) for n, s, d in _structure(v)}
            diff = sorted(set(a.items()) ^ set(b.items()))
            raise ValueError(
                f"{v.path} does not have the structure of {vaults[0].path}: differing fields {diff}"
            )
    envs = {v.metadata.get("env_id") for v in vaults}
    if len(envs) > 1:
        raise ValueError(f"datasets from different environments: {sorted(map(str, envs))}")
    names: list[str] = []
    sources = []
    for k, v in enumerate(vaults):
        table = episode_table(v)
        own = _tier_names(v)
        if tiers is not None:
            own = [tiers[k]] if (table.tier < 0).all() else own
        labels = [own[0]] * len(table) if (table.tier < 0).all() else [own[t] for t in table.tier]
        for name in labels:
            if name not in names:
                names.append(name)
        sources.append(
            (v, table, np.arange(len(table)), np.array([names.index(x) for x in labels]))
        )
    meta0 = vaults[0].metadata
    meta = {
        k: meta0[k]
        for k in meta0
        if k not in ("tier", "policy", "recording", "returns", "behaviour_return", "subsample")
    }
    meta["tier"] = None
    meta["tier_names"] = names
    meta["combined_from"] = [
        {
            "path": str(v.path),
            "tier": v.metadata.get("tier"),
            "policy": v.metadata.get("policy"),
            "returns": v.metadata.get("returns"),
        }
        for v in vaults
    ]
    n = _copy_episodes(sources, out, meta, with_tier=True)
    return {"path": str(out), "episodes": n, "tier_names": names}
