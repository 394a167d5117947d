"""Vault: an append-only, crash-safe on-disk store of buffer experience for offline RL.

Storage layer: one raw little-endian binary file per experience leaf, laid out time-major
`(time, rows, *item_shape)` so that appending steps appends bytes, read through
`numpy.memmap` so that slices, the last steps and chunked streams touch only the bytes they
need. This is the format numpy itself memory-maps (the data part of `.npy`), so it needs no
dependency and any tool can read it from the shapes and dtypes in `metadata.json`. (Zarr or
TensorStore would add chunked compression, but also a heavy dependency and their own commit
semantics; `.npy` headers store the shape, which would have to be rewritten on every
append.)

Layout of a vault directory::

    metadata.json   format version, structure (leaf paths, shapes, dtypes), rows, user metadata
    commit.json     the committed number of steps per row (and the source buffer counter)
    leaf_000.bin    raw data of leaf 0, `(time, rows, *shape)`
    ...
    writer.lock     held (flock) by the single writer while it is open

Crash safety: a write appends to every leaf file, fsyncs them, then atomically replaces
`commit.json` (write to a temporary file, fsync, `os.replace`, fsync the directory). Readers
only look at the committed number of steps, so bytes of a write killed half-way are
invisible, and the next writer truncates them away. The vault directory itself is created
under a temporary name and renamed into place, so a vault is either absent or complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

VAULT_FORMAT = "jaxmarl_envs.vault"
VAULT_FORMAT_VERSION = 1
_METADATA = "metadata.json"
_COMMIT = "commit.json"
_LOCK = "writer.lock"


class VaultVersionError(ValueError):
    """The vault was written with a format version this code cannot read."""


@dataclasses.dataclass(frozen=True)
class LeafInfo:
    """One experience leaf: its path in the pytree, per-step shape and dtype."""

    path: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    file: str

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclasses.dataclass(frozen=True)
class Episode:
    """An episode of one row: steps `[start, stop)` in vault time."""

    row: int
    start: int
    stop: int
    complete: bool

    @property
    def length(self) -> int:
        return self.stop - self.start


def _path_entry(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _leaves_with_paths(tree: Any) -> list[tuple[tuple[str, ...], Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(tuple(_path_entry(e) for e in path), leaf) for path, leaf in flat]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic | np.ndarray) or hasattr(value, "__jax_array__"):
        return np.asarray(value).tolist()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise ValueError(f"vault metadata must be JSON-like; got {type(value).__name__}: {value!r}")


def _nest(leaves: list[tuple[tuple[str, ...], np.ndarray]]) -> dict:
    out: dict = {}
    for path, value in leaves:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1] if path else "data"] = value
    return out


class Vault:
    """An append-only on-disk experience store (see the module docstring for the format).

    Open an existing vault with `Vault(path)` (read-only) or `Vault(path, mode="a")` (the one
    writer), or make a new one with `Vault.create`. Experience comes back as a nested dict
    keyed by the leaf path names (or as the pytree of `structure=` when given), with leaves
    `(rows, time, *item_shape)`, the layout of a trajectory buffer.

    Example::

        vault = Vault.create("data/rware-tiny", buffer_state, metadata={"policy": "random"})
        vault.write(buffer_state)           # only the steps added since the last write
        data = Vault("data/rware-tiny").read()
    """

    def __init__(self, path: str | os.PathLike, mode: str = "r", source_index: int = 0):
        """Opens a vault.

        Args:
            path: vault directory.
            mode: "r" to read, "a" to append (one writer at a time).
            source_index: for "a", the buffer's `total_added` already written (0 for a fresh
                buffer, the usual case when resuming into an existing vault).
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}.")
        self.path = Path(path)
        meta_file = self.path / _METADATA
        if not meta_file.is_file():
            raise ValueError(f"{self.path} is not a vault (no {_METADATA}).")
        with open(meta_file) as f:
            meta = json.load(f)
        if meta.get("format") != VAULT_FORMAT:
            raise ValueError(f"{self.path} is not a {VAULT_FORMAT} directory.")
        version = meta.get("format_version")
        if version != VAULT_FORMAT_VERSION:
            raise VaultVersionError(
                f"vault {self.path} has format version {version}, but this code reads version "
                f"{VAULT_FORMAT_VERSION}; use the jaxmarl_envs release that wrote it, or "
                "convert the vault."
            )
        self._meta = meta
        self.num_rows = int(meta["num_rows"])
        self.leaves = tuple(
            LeafInfo(tuple(x["path"]), tuple(x["shape"]), x["dtype"], x["file"])
            for x in meta["structure"]
        )
        self.mode = mode
        self._lock_fd: int | None = None
        self.source_index = int(source_index)
        if mode == "a":
            self._acquire_lock()
            self._truncate_uncommitted()

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        state_or_experience: Any,
        metadata: dict | None = None,
    ) -> Vault:
        """Creates an empty vault shaped like a buffer and opens it for appending.

        Args:
            path: new directory (must not exist).
            state_or_experience: a buffer state (anything with `.experience`) or an experience
                pytree, with leaves `(rows, time, *item_shape)`.
            metadata: user metadata (JSON-like): environment, scenario, policy, quality label,
                return statistics...

        Returns:
            The vault, open in mode "a" with `source_index=0`.
        """
        path = Path(path)
        if path.exists():
            raise ValueError(f"{path} already exists; open it with Vault(path, mode='a').")
        experience = getattr(state_or_experience, "experience", state_or_experience)
        leaves = _leaves_with_paths(experience)
        if not leaves:
            raise ValueError("the experience has no array leaves.")
        rows = {int(np.shape(x)[0]) if np.ndim(x) >= 2 else -1 for _, x in leaves}
        if len(rows) != 1 or -1 in rows:
            raise ValueError("every experience leaf must be (rows, time, ...) with equal rows.")
        structure = []
        for i, (p, x) in enumerate(leaves):
            try:
                dtype = np.dtype(x.dtype)
            except TypeError:
                raise ValueError(f"leaf {'/'.join(p)} has a non-numpy dtype {x.dtype}.") from None
            if dtype.hasobject:
                raise ValueError(f"leaf {'/'.join(p)} has an object dtype.")
            structure.append(
                {
                    "path": list(p),
                    "shape": list(np.shape(x)[2:]),
                    "dtype": dtype.str,
                    "file": f"leaf_{i:03d}.bin",
                }
            )
        meta = {
            "format": VAULT_FORMAT,
            "format_version": VAULT_FORMAT_VERSION,
            "num_rows": rows.pop(),
            "structure": structure,
            "user_metadata": _to_jsonable(metadata or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
        try:
            for leaf in structure:
                (tmp / leaf["file"]).touch()
            _atomic_json(tmp / _COMMIT, {"num_steps": 0, "source_index": 0})
            _atomic_json(tmp / _METADATA, meta)
            os.rename(tmp, path)
        except BaseException:
            for child in tmp.iterdir():
                child.unlink()
            tmp.rmdir()
            raise
        _fsync_dir(path.parent)
        return cls(path, mode="a")

    # ------------------------------------------------------------------ properties

    @property
    def metadata(self) -> dict:
        """User metadata (a copy)."""
        return json.loads(json.dumps(self._meta["user_metadata"]))

    @property
    def format_version(self) -> int:
        return int(self._meta["format_version"])

    def _commit(self) -> dict:
        with open(self.path / _COMMIT) as f:
            return json.load(f)

    @property
    def num_steps(self) -> int:
        """Committed steps per row."""
        return int(self._commit()["num_steps"])

    def available_steps(self) -> int:
        """Steps present in every leaf file (equals `num_steps` in a healthy vault; fewer when
        files were truncated after the commit, e.g. by an interrupted copy)."""
        out = []
        for leaf in self.leaves:
            size = (self.path / leaf.file).stat().st_size if (self.path / leaf.file).exists() else 0
            step = self._step_bytes(leaf)
            if step:
                out.append(size // step)
        return min(out) if out else self.num_steps

    def _step_bytes(self, leaf: LeafInfo) -> int:
        return (
            self.num_rows * int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
        )

    # ------------------------------------------------------------------ writing

    def _acquire_lock(self) -> None:
        fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(f"vault {self.path} is already open for writing elsewhere.") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Releases the writer lock (readers hold nothing)."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
        self.mode = "r"

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the lock dies with the process anyway
            pass

    def _truncate_uncommitted(self) -> None:
        n = self.num_steps
        for leaf in self.leaves:
            file = self.path / leaf.file
            if file.stat().st_size != n * self._step_bytes(leaf):
                os.truncate(file, n * self._step_bytes(leaf))

    def _check_writer(self) -> None:
        if self.mode != "a" or self._lock_fd is None:
            raise ValueError(f"vault {self.path} is open read-only; use Vault(path, mode='a').")

    def _write_leaf(self, leaf: LeafInfo, offset_steps: int, data: np.ndarray) -> None:
        with open(self.path / leaf.file, "r+b") as f:
            f.seek(offset_steps * self._step_bytes(leaf))
            f.write(np.ascontiguousarray(data).tobytes())
            f.flush()
            os.fsync(f.fileno())

    def _check_experience(self, experience: Any) -> list[np.ndarray]:
        leaves = _leaves_with_paths(experience)
        names = [p for p, _ in leaves]
        expected = [leaf.path for leaf in self.leaves]
        if names != expected:
            raise ValueError(f"experience leaves {names} differ from the vault's {expected}.")
        out = []
        for (_, x), leaf in zip(leaves, self.leaves, strict=True):
            shape = tuple(np.shape(x))
            if len(shape) < 2 or shape[0] != self.num_rows or shape[2:] != leaf.shape:
                raise ValueError(
                    f"leaf {leaf.name} has shape {shape}, expected ({self.num_rows}, time, "
                    f"{', '.join(map(str, leaf.shape))})."
                )
            if np.dtype(x.dtype) != np.dtype(leaf.dtype):
                raise ValueError(f"leaf {leaf.name} has dtype {x.dtype}, expected {leaf.dtype}.")
            out.append(x)
        return out

    def append(self, experience: Any) -> int:
        """Appends `(rows, time, ...)` experience and commits it atomically.

        Returns:
            The number of steps appended.
        """
        self._check_writer()
        arrays = [np.asarray(x) for x in self._check_experience(experience)]
        return self._append_time_major([np.swapaxes(x, 0, 1) for x in arrays], None)

    def _append_time_major(self, arrays: list[np.ndarray], source_index: int | None) -> int:
        steps = int(arrays[0].shape[0])
        if steps == 0:
            return 0
        start = self.num_steps
        for leaf, data in zip(self.leaves, arrays, strict=True):
            self._write_leaf(leaf, start, data)
        if source_index is not None:
            self.source_index = source_index
        _atomic_json(
            self.path / _COMMIT, {"num_steps": start + steps, "source_index": self.source_index}
        )
        return steps

    def write(self, state: Any, allow_gap: bool = False) -> int:
        """Writes the steps a buffer received since the last write (ring wrap-around aware).

        Args:
            state: a trajectory-style buffer state with `experience` leaves
                `(rows, max_length_time, ...)` and the logical counter `total_added`.
            allow_gap: when the buffer overwrote steps never written (written too rarely),
                write the steps still stored instead of raising.

        Returns:
            The number of steps written per row.
        """
        self._check_writer()
        if not hasattr(state, "experience") or not hasattr(state, "total_added"):
            raise ValueError("write needs a buffer state with `experience` and `total_added`.")
        leaves = self._check_experience(state.experience)
        total = int(state.total_added)
        max_time = int(np.shape(leaves[0])[1])
        new = total - self.source_index
        if new < 0:
            raise ValueError(
                f"the buffer's total_added ({total}) is behind the last write "
                f"({self.source_index}); for a new buffer open the vault with source_index=0."
            )
        if new == 0:
            return 0
        if new > min(total, max_time):
            if not allow_gap:
                raise ValueError(
                    f"{new} steps were added since the last write but the buffer only holds "
                    f"{min(total, max_time)}: data was overwritten before it was written. Write "
                    "more often, or pass allow_gap=True to write what is left."
                )
            new = min(total, max_time)
        phys = np.arange(total - new, total) % max_time
        arrays = [np.swapaxes(np.asarray(jax.device_get(x[:, phys])), 0, 1) for x in leaves]
        return self._append_time_major(arrays, total)

    def update_metadata(self, **entries: Any) -> None:
        """Adds or replaces user metadata entries (atomic rewrite of `metadata.json`)."""
        self._check_writer()
        meta = dict(self._meta)
        meta["user_metadata"] = {**meta["user_metadata"], **_to_jsonable(entries)}
        _atomic_json(self.path / _METADATA, meta)
        self._meta = meta

    # ------------------------------------------------------------------ reading

    def _memmap(self, leaf: LeafInfo, steps: int) -> np.ndarray:
        shape = (steps, self.num_rows, *leaf.shape)
        if steps == 0 or self._step_bytes(leaf) == 0:
            return np.zeros(shape, leaf.dtype)
        return np.memmap(self.path / leaf.file, dtype=leaf.dtype, mode="r", shape=shape)

    def _output(self, arrays: list[np.ndarray], structure: Any) -> Any:
        if structure is None:
            return _nest([(leaf.path, a) for leaf, a in zip(self.leaves, arrays, strict=True)])
        treedef = jax.tree_util.tree_structure(structure)
        if treedef.num_leaves != len(arrays):
            raise ValueError(
                f"structure has {treedef.num_leaves} leaves, the vault has {len(arrays)}."
            )
        return jax.tree_util.tree_unflatten(treedef, arrays)

    def _rows(self, rows: Sequence[int] | None) -> np.ndarray | slice:
        if rows is None:
            return slice(None)
        idx = np.asarray(rows, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_rows):
            raise ValueError(f"rows {idx.tolist()} out of range [0, {self.num_rows}).")
        return idx

    def read(
        self,
        start: int | None = None,
        stop: int | None = None,
        rows: Sequence[int] | None = None,
        structure: Any = None,
    ) -> Any:
        """Reads committed steps `[start, stop)` (Python slice rules) of `rows`.

        Args:
            start, stop: time slice of the committed steps (negative counts from the end).
            rows: which rows (default all).
            structure: optional pytree with the same leaves, to get that structure back.

        Returns:
            Experience with leaves `(len(rows), stop - start, *item_shape)` (numpy).
        """
        steps = self.num_steps
        t0, t1, _ = slice(start, stop).indices(steps)
        t1 = max(t0, t1)
        sel = self._rows(rows)
        arrays = []
        for leaf in self.leaves:
            data = self._memmap(leaf, t1)[t0:t1][:, sel]  # maps only the steps it reads
            arrays.append(np.ascontiguousarray(np.swapaxes(np.array(data), 0, 1)))
        return self._output(arrays, structure)

    def read_last(self, n: int, rows: Sequence[int] | None = None, structure: Any = None) -> Any:
        """The last `n` committed steps (all of them when fewer), `(rows, n, ...)`."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}.")
        steps = self.num_steps
        return self.read(max(0, steps - n), steps, rows, structure)

    def iter_chunks(
        self, chunk_size: int, rows: Sequence[int] | None = None, structure: Any = None
    ) -> Iterator[Any]:
        """Streams the committed steps in chunks of `chunk_size` steps (the last may be
        shorter), each `(rows, chunk, ...)`; only one chunk is in memory at a time."""
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}.")
        steps = self.num_steps
        for t0 in range(0, steps, chunk_size):
            yield self.read(t0, min(steps, t0 + chunk_size), rows, structure)

    def episodes(self, done_key: str, include_incomplete: bool = False) -> list[Episode]:
        """Episodes found from a scalar boolean field (True on an episode's last step).

        Args:
            done_key: leaf name (path joined by "/") of the done flag, shape `()` per step.
            include_incomplete: also list each row's trailing episode without an end yet.

        Returns:
            Episodes ordered by row then start.
        """
        matches = [leaf for leaf in self.leaves if leaf.name == done_key]
        if not matches:
            raise ValueError(f"no leaf {done_key!r}; leaves: {[x.name for x in self.leaves]}.")
        leaf = matches[0]
        if leaf.shape != ():
            raise ValueError(
                f"done leaf {done_key!r} must have shape () per step, got {leaf.shape}."
            )
        steps = self.num_steps
        done = self._memmap(leaf, steps)
        out = []
        for row in range(self.num_rows):
            ends = np.flatnonzero(np.asarray(done[:, row]).astype(bool))
            start = 0
            for end in ends:
                out.append(Episode(row, start, int(end) + 1, True))
                start = int(end) + 1
            if include_incomplete and start < steps:
                out.append(Episode(row, start, steps, False))
        return out

    def read_episodes(self, episodes: Sequence[Episode], structure: Any = None) -> list[Any]:
        """Reads episodes (from `episodes`), each with leaves `(length, *item_shape)`."""
        steps = self.num_steps
        maps = [self._memmap(leaf, steps) for leaf in self.leaves]
        out = []
        for ep in episodes:
            if not (0 <= ep.row < self.num_rows and 0 <= ep.start <= ep.stop <= steps):
                raise ValueError(f"episode {ep} is outside the vault ({steps} steps).")
            arrays = [np.array(m[ep.start : ep.stop, ep.row]) for m in maps]
            out.append(self._output(arrays, structure))
        return out

    def __repr__(self) -> str:
        return (
            f"Vault({str(self.path)!r}, rows={self.num_rows}, steps={self.num_steps}, "
            f"leaves={[x.name for x in self.leaves]})"
        )
