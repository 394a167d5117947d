"""Flashbax 0.1.3 vaults (`<rel_dir>/<vault_name>/<vault_uid>`, TensorStore zarr over OCDBT):
import into our Vault format and export to it, streaming chunk by chunk.

Import keeps every leaf of the Flashbax experience under its own name (rows = the Flashbax
batch axis). A vault exported by us gets its metadata back, so the round trip is exact. A vault
in OG-MARL's layout (`observations, actions, rewards, terminals, truncations, infos/legals,
infos/state`, the layout of the public offline-MARL datasets) can be converted to our
transition layout (`layout="recorder"`, the default when those fields exist): renamed fields,
`discount = 1 - terminated`, `first`/`last` from the episode ends, and each row's complete
episodes stored back to back in one row with an `episode_id` (a row's unfinished last episode is
dropped and counted). OG-MARL vaults carry no true next observation of truncated episodes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.buffers.vault import Vault
from jaxmarl_envs.algorithms.datasets.core import SCAN_CHUNK, open_vault

#: Flashbax metadata key holding our vault's user metadata (a JSON string).
_META_KEY = "jaxmarl_envs_metadata"
_OG_MARL = ("observations", "actions", "rewards", "terminals", "truncations")


def _flashbax():
    try:
        from flashbax.vault import vault as fbx_vault
    except ImportError as err:
        raise ImportError(
            "Flashbax vault import/export needs flashbax==0.1.3: pip install flashbax==0.1.3"
        ) from err
    return fbx_vault


def _split_vault_path(path: str | os.PathLike) -> tuple[str, str, str]:
    """`<rel_dir>/<vault_name>/<vault_uid>` -> `(rel_dir, vault_name, vault_uid)`."""
    path = Path(path).absolute()
    if not (path / "metadata.json").is_file():
        raise ValueError(
            f"{path} is not a Flashbax vault: expected <rel_dir>/<vault_name>/<vault_uid> holding "
            "metadata.json"
        )
    meta = json.loads((path / "metadata.json").read_text())
    if "structure_shape" not in meta or "version" not in meta:
        raise ValueError(f"{path}/metadata.json is not a Flashbax vault's (no structure_shape)")
    return str(path.parent.parent), path.parent.name, path.name


def _open_flashbax(path: str | os.PathLike):
    fbx = _flashbax()
    rel_dir, name, uid = _split_vault_path(path)
    with contextlib.redirect_stdout(io.StringIO()):
        return fbx.Vault(vault_name=name, rel_dir=rel_dir, vault_uid=uid)


def _paths_and_stores(fv) -> list[tuple[tuple[str, ...], Any]]:
    import jax

    from jaxmarl_envs.algorithms.buffers.vault import _path_entry

    flat, _ = jax.tree_util.tree_flatten_with_path(
        fv._all_datastores, is_leaf=lambda x: hasattr(x, "read") and hasattr(x, "shape")
    )
    return [(tuple(_path_entry(e) for e in p), ds) for p, ds in flat]


def _nest(pairs: list[tuple[tuple[str, ...], np.ndarray]]) -> dict:
    out: dict = {}
    for path, value in pairs:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def import_flashbax(
    path: str | os.PathLike,
    out: str | os.PathLike,
    layout: str = "auto",
    chunk_size: int = SCAN_CHUNK,
    metadata: dict | None = None,
) -> dict:
    """Reads a Flashbax 0.1.3 vault into a new vault at `out`, streaming.

    Args:
        path: the Flashbax vault folder `<rel_dir>/<vault_name>/<vault_uid>`.
        out: the new vault directory.
        layout: "raw" (every leaf as it is), "recorder" (OG-MARL fields converted to our
            transition layout) or "auto" (recorder when the OG-MARL fields exist and the vault
            was not exported by us, else raw).
        chunk_size: time steps read per chunk.
        metadata: extra metadata (e.g. env_id) for the new vault.

    Returns:
        A summary (path, steps, rows, layout; dropped unfinished episodes for "recorder").
    """
    fv = _open_flashbax(path)
    fmeta = dict(fv._metadata)
    pairs = _paths_and_stores(fv)
    names = {p[0] for p, _ in pairs}
    ours = _META_KEY in fmeta
    if layout == "auto":
        layout = "recorder" if (set(_OG_MARL) <= names and not ours) else "raw"
    if layout not in ("raw", "recorder"):
        raise ValueError(f"layout must be 'auto', 'raw' or 'recorder', got {layout!r}")
    steps = int(fv.vault_index)
    user = json.loads(fmeta[_META_KEY]) if ours else {}
    user.update(metadata or {})
    user["imported_from"] = {
        "flashbax_vault": str(Path(path).absolute()),
        "flashbax_version": fmeta.get("version"),
        "layout": layout,
    }
    extra = {
        k: v
        for k, v in fmeta.items()
        if k not in ("version", "structure_shape", "structure_dtype", _META_KEY)
    }
    if extra:
        user["flashbax_metadata"] = extra
    if layout == "raw":
        return _import_raw(pairs, steps, out, user, chunk_size)
    return _import_og_marl(pairs, steps, out, user, chunk_size)


def _read_chunk(pairs, t0: int, t1: int) -> dict:
    return _nest([(p, np.asarray(ds[:, t0:t1].read().result())) for p, ds in pairs])


def _import_raw(pairs, steps, out, user, chunk_size) -> dict:
    example = _read_chunk(pairs, 0, 0)
    vault = Vault.create(out, example, metadata=user)
    try:
        for t0 in range(0, steps, chunk_size):
            vault.append(_read_chunk(pairs, t0, min(steps, t0 + chunk_size)))
        rows = vault.num_rows
    finally:
        vault.close()
    return {"path": str(out), "steps": steps, "rows": rows, "layout": "raw"}


def _og_to_recorder(chunk: dict) -> dict:
    """OG-MARL fields `(rows, t, ...)` -> our transition fields (without first/episode_id)."""
    term = chunk["terminals"].astype(bool)
    trunc = chunk["truncations"].astype(bool)
    rewards = chunk["rewards"].astype(np.float32)
    n = rewards.shape[-1]
    if term.ndim == 2:  # (rows, t) team flags -> per agent
        term = np.repeat(term[..., None], n, -1)
    if trunc.ndim == 2:
        trunc = np.repeat(trunc[..., None], n, -1)
    out = {
        "observation": chunk["observations"],
        "action": chunk["actions"],
        "reward": rewards,
        "discount": (1.0 - term).astype(np.float32),
        "terminated": term,
        "truncated": trunc,
        "last": (term | trunc).all(-1),
    }
    infos = chunk.get("infos", {})
    if "legals" in infos:
        out["action_mask"] = infos["legals"].astype(bool)
    if "state" in infos:
        out["global_state"] = infos["state"]
    return out


def _import_og_marl(pairs, steps, out, user, chunk_size) -> dict:
    import jax

    example = _og_to_recorder(_read_chunk(pairs, 0, 0))
    rows = int(example["last"].shape[0])
    example = jax.tree_util.tree_map(lambda x: x[:1], example)  # one row of whole episodes
    example["first"] = example["last"]
    example["episode_id"] = np.zeros(example["last"].shape, np.int32)
    vault = Vault.create(out, example, metadata={**user, "tier": user.get("tier")})
    episode, dropped = 0, 0
    try:
        for row in range(rows):
            carry = None
            for t0 in range(0, steps, chunk_size):
                part = _og_to_recorder(_read_chunk(pairs, t0, min(steps, t0 + chunk_size)))
                part = jax.tree_util.tree_map(lambda x: x[row], part)
                if carry is not None:
                    part = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), carry, part)
                ends = np.flatnonzero(part["last"])
                if ends.size == 0:
                    carry = part
                    continue
                cut = int(ends[-1]) + 1
                done = jax.tree_util.tree_map(lambda x: x[:cut], part)
                carry = jax.tree_util.tree_map(lambda x: x[cut:], part)
                last = done["last"]
                done["first"] = np.concatenate([[True], last[:-1]])
                done["episode_id"] = (episode + np.cumsum(done["first"]) - 1).astype(np.int32)
                episode += int(last.sum())
                vault.append(jax.tree_util.tree_map(lambda x: x[None], done))
            if carry is not None and carry["last"].size:
                dropped += 1
        vault.update_metadata(num_episodes=episode)
    finally:
        vault.close()
    return {
        "path": str(out),
        "steps": open_vault(out).num_steps,
        "rows": 1,
        "layout": "recorder",
        "episodes": episode,
        "dropped_unfinished_episodes": dropped,
    }


def export_flashbax(
    path: str | os.PathLike,
    out: str | os.PathLike,
    vault_name: str | None = None,
    vault_uid: str = "0",
    chunk_size: int = SCAN_CHUNK,
) -> str:
    """Writes a vault as a Flashbax 0.1.3 vault `<out>/<vault_name>/<vault_uid>` (streaming),
    readable with `flashbax.vault.Vault(vault_name, rel_dir=out, vault_uid=vault_uid)`.

    Our metadata travels as a JSON string under the Flashbax metadata key
    `jaxmarl_envs_metadata`. Returns the Flashbax vault folder.
    """
    fbx = _flashbax()
    from flashbax.buffers.trajectory_buffer import TrajectoryBufferState

    src = open_vault(path)
    name = vault_name or src.path.name
    target = Path(out).absolute() / name / vault_uid
    if target.exists():
        raise ValueError(f"{target} already exists")
    example = src.read(0, min(1, src.num_steps))
    with contextlib.redirect_stdout(io.StringIO()):
        fv = fbx.Vault(
            vault_name=name,
            experience_structure=example,
            rel_dir=str(Path(out).absolute()),
            vault_uid=vault_uid,
            metadata={_META_KEY: json.dumps(src.metadata, sort_keys=True)},
        )
    steps = src.num_steps
    for t0 in range(0, steps, chunk_size):
        chunk = src.read(t0, min(steps, t0 + chunk_size))
        n = min(steps, t0 + chunk_size) - t0
        state = TrajectoryBufferState(experience=chunk, current_index=n, is_full=False)
        fv.write(state, source_interval=(0, n))
    return str(target)


def read_flashbax(path: str | os.PathLike) -> dict:
    """Everything in a Flashbax vault as numpy `(rows, time, ...)` leaves (for tests/tools)."""
    fv = _open_flashbax(path)
    return _read_chunk(_paths_and_stores(fv), 0, int(fv.vault_index))


__all__ = ["export_flashbax", "import_flashbax", "read_flashbax"]
