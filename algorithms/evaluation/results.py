"""Results in the marl-eval JSON layout: an atomic incremental logger, loading, merging, validation.

The layout (marl-eval's README and its ``JsonLogger``)::

    {env: {task: {algorithm: {run: {
        "step_<k>": {"step_count": int, "elapsed_time": float (optional),
                     "<metric>": [per-episode values, ...], ...},
        ...,
        "absolute_metrics": {"<metric>": [per-episode values, ...], ...},
    }}}}}

Runs are usually named ``seed_<seed>``; ``k`` counts evaluations (marl-eval's logger starts at 0).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

ABSOLUTE_METRICS = "absolute_metrics"
STEP_COUNT = "step_count"
ELAPSED_TIME = "elapsed_time"
RESERVED_STEP_KEYS = (STEP_COUNT, ELAPSED_TIME)
STEP_KEY = re.compile(r"^step_(\d+)$")

# A run dictionary: {"step_0": {...}, ..., "absolute_metrics": {...}}.
RunData = dict[str, Any]
Results = dict[str, Any]


def step_index(key: str) -> int | None:
    """Returns k for a key ``step_<k>``, else None."""
    match = STEP_KEY.match(key)
    return int(match.group(1)) if match else None


def sorted_step_keys(run: Mapping[str, Any]) -> list[str]:
    """The ``step_<k>`` keys of a run, ordered by k (not lexicographically)."""
    keys = [key for key in run if step_index(key) is not None]
    return sorted(keys, key=lambda key: step_index(key))  # type: ignore[arg-type, return-value]


def natural_key(name: str) -> tuple:
    """Sort key that orders ``seed_2`` before ``seed_10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _where(*parts: str) -> str:
    labels = ("environment", "task", "algorithm", "run", "step", "metric")
    return " / ".join(
        f"{label} {part!r}" for label, part in zip(labels[: len(parts)], parts, strict=True)
    )


def _check_values(values: Any, where: str, errors: list[str]) -> int | None:
    """Checks a per-episode value list; returns its length (None when invalid)."""
    if not isinstance(values, list):
        errors.append(f"{where}: expected a list of numbers, got {type(values).__name__}")
        return None
    if not values:
        errors.append(f"{where}: empty list (need at least one value)")
        return None
    for i, value in enumerate(values):
        if not _is_number(value):
            errors.append(f"{where}: value [{i}] = {value!r} is not a number")
            return None
        if not math.isfinite(value):
            errors.append(f"{where}: value [{i}] = {value!r} is not finite")
            return None
    return len(values)


def _validate_run(
    run: Any, path: tuple[str, ...], complete: bool, errors: list[str]
) -> frozenset[str] | None:
    """Validates one run; returns the set of metric names logged at its steps."""
    where = _where(*path)
    if not isinstance(run, dict):
        errors.append(f"{where}: expected an object of steps, got {type(run).__name__}")
        return None
    unknown = [key for key in run if key != ABSOLUTE_METRICS and step_index(key) is None]
    if unknown:
        errors.append(
            f"{where}: unknown keys {unknown} (expected 'step_<k>' entries and 'absolute_metrics')"
        )
    steps = sorted_step_keys(run)
    if not steps and complete:
        errors.append(f"{where}: no 'step_<k>' entries")
    indices = [step_index(key) for key in steps]
    if len(set(indices)) != len(indices):
        errors.append(f"{where}: duplicate step indices {sorted(indices)}")  # type: ignore[type-var]
    metric_names: frozenset[str] | None = None
    lengths: dict[str, int] = {}
    previous_count: tuple[str, float] | None = None
    for step in steps:
        entry = run[step]
        step_where = _where(*path, step)
        if not isinstance(entry, dict):
            errors.append(f"{step_where}: expected an object, got {type(entry).__name__}")
            continue
        count = entry.get(STEP_COUNT)
        if STEP_COUNT not in entry:
            errors.append(f"{step_where}: missing 'step_count'")
        elif not _is_number(count) or not math.isfinite(count) or count < 0:
            errors.append(
                f"{step_where}: 'step_count' must be a non-negative number, got {count!r}"
            )
        else:
            if previous_count is not None and count <= previous_count[1]:
                errors.append(
                    f"{step_where}: steps not increasing: step_count {count!r} is not greater than "
                    f"{previous_count[1]!r} at {previous_count[0]!r}"
                )
            previous_count = (step, count)
        if ELAPSED_TIME in entry:
            elapsed = entry[ELAPSED_TIME]
            if not _is_number(elapsed) or not math.isfinite(elapsed) or elapsed < 0:
                errors.append(
                    f"{step_where}: 'elapsed_time' must be a non-negative number, got {elapsed!r}"
                )
        names = frozenset(key for key in entry if key not in RESERVED_STEP_KEYS)
        if not names:
            errors.append(f"{step_where}: no metrics logged")
        if metric_names is None:
            metric_names = names
        elif names != metric_names:
            missing = sorted(metric_names - names)
            extra = sorted(names - metric_names)
            errors.append(
                f"{step_where}: mismatched metric lists: missing {missing}, unexpected {extra} "
                f"compared with {steps[0]!r}"
            )
        for name in sorted(names):
            length = _check_values(entry[name], _where(*path, step, name), errors)
            if length is None:
                continue
            if name in lengths and lengths[name] != length:
                errors.append(
                    f"{_where(*path, step, name)}: mismatched metric lists: {length} values here "
                    f"but {lengths[name]} at earlier steps"
                )
            lengths.setdefault(name, length)
    if ABSOLUTE_METRICS not in run:
        if complete:
            errors.append(f"{where}: 'absolute_metrics' missing")
    else:
        absolute = run[ABSOLUTE_METRICS]
        abs_where = f"{where} / {ABSOLUTE_METRICS}"
        if not isinstance(absolute, dict):
            errors.append(f"{abs_where}: expected an object, got {type(absolute).__name__}")
        elif not absolute and complete:
            errors.append(f"{abs_where}: empty (no absolute metric logged)")
        else:
            for name, values in absolute.items():
                _check_values(values, f"{abs_where} / metric {name!r}", errors)
    return metric_names


def validate_results(data: Any, complete: bool = True, max_errors: int = 50) -> None:
    """Checks that ``data`` follows the marl-eval layout.

    Args:
        data: the loaded JSON object.
        complete: whether every run must be finished: at least one ``step_<k>`` and a
            non-empty ``absolute_metrics`` block. False accepts runs still in progress.
        max_errors: how many problems to list in the message at most.

    Raises:
        ValueError: listing every inconsistency found, each prefixed by its
            environment / task / algorithm / run / step / metric path.
    """
    errors: list[str] = []
    if not isinstance(data, dict) or not data:
        raise ValueError("results: expected a non-empty object {environment: {task: ...}}")
    for env, tasks in data.items():
        if not isinstance(tasks, dict) or not tasks:
            errors.append(f"{_where(env)}: expected a non-empty object of tasks")
            continue
        for task, algorithms in tasks.items():
            if not isinstance(algorithms, dict) or not algorithms:
                errors.append(f"{_where(env, task)}: expected a non-empty object of algorithms")
                continue
            for algorithm, runs in algorithms.items():
                if not isinstance(runs, dict) or not runs:
                    errors.append(
                        f"{_where(env, task, algorithm)}: expected a non-empty object of runs"
                    )
                    continue
                first: tuple[str, frozenset[str]] | None = None
                for run_name, run in runs.items():
                    path = (env, task, algorithm, run_name)
                    names = _validate_run(run, path, complete, errors)
                    if names is None:
                        continue
                    if first is None:
                        first = (run_name, names)
                    elif names != first[1]:
                        errors.append(
                            f"{_where(*path)}: mismatched metric lists across runs: "
                            f"{sorted(names)} here but {sorted(first[1])} in run {first[0]!r}"
                        )
    if errors:
        shown = errors[:max_errors]
        more = f"\n  ... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise ValueError(
            f"invalid results ({len(errors)} problem(s)):\n  " + "\n  ".join(shown) + more
        )


# ---------------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------------


def _new_file_mode(path: Path) -> int:
    """The mode the file would get from a plain ``open``: its current one, else 0o666 & ~umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


def _atomic_write_json(data: Any, path: Path) -> None:
    """Writes ``data`` as JSON atomically (see `_atomic_write_text`)."""
    _atomic_write_text(json.dumps(data, indent=2, allow_nan=False), path)


def _atomic_write_text(text: str, path: Path, newline: str | None = None) -> None:
    """Writes ``text`` atomically (see `atomic_open`). ``newline`` as for ``open`` (``""`` for
    CSV text, whose rows end in "\\r\\n" already)."""
    with atomic_open(path, "w", newline=newline) as f:
        f.write(text)


@contextmanager
def atomic_open(path: Path, mode: str = "w", newline: str | None = None, suffix: str = ".tmp"):
    """A file to write ``path`` through: a uniquely named temporary file in the same folder
    (with the mode a plain ``open`` would give it), fsynced and renamed over ``path`` when the
    block ends: readers see the old file or the new one, never a partial one, and a failure or
    a crash inside the block leaves the old file and no stray temporary. ``mode`` "w" or "wb";
    ``suffix`` ends the temporary's name (writers that read the format from it need it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.chmod(tmp, file_mode)  # mkstemp creates 0o600
        with os.fdopen(fd, mode, newline=None if "b" in mode else newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def _file_lock(path: Path):
    """An advisory inter-process lock on ``<path>.lock``, removed on release (no-op where fcntl
    is missing).

    The holder unlinks the lock file before unlocking, so no empty file is left behind. A
    waiter that then gets the lock on the unlinked file sees that the path no longer names the
    file it locked and tries again on a fresh one, so only one process at a time holds the
    lock on the file the path names.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the previous holder removed this file: lock the one the path names now
    try:
        yield
    finally:
        try:
            os.unlink(lock_path)
        except FileNotFoundError:  # pragma: no cover - removed by hand
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def load_results(path: str | os.PathLike, complete: bool = True) -> Results:
    """Reads and validates a marl-eval JSON file.

    Args:
        path: the JSON file.
        complete: see :func:`validate_results`.

    Returns:
        The nested dictionary env -> task -> algorithm -> run -> step -> metric.
    """
    path = Path(path)
    data = _read_json(path)
    try:
        validate_results(data, complete=complete)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return data


def save_results(data: Results, path: str | os.PathLike, complete: bool = True) -> None:
    """Validates ``data`` and writes it atomically (temporary file + ``os.replace``)."""
    validate_results(data, complete=complete)
    _atomic_write_json(data, Path(path))


def merge_results(
    paths: Iterable[str | os.PathLike | Mapping[str, Any]],
    out: str | os.PathLike | None = None,
    on_conflict: Literal["error", "rename"] = "error",
    complete: bool = True,
) -> Results:
    """Merges several result files (many runs, algorithms, tasks) into one.

    Args:
        paths: input files, each validated first; an already loaded results dictionary may
            stand in for a file (validated the same way).
        out: where to write the merged file atomically (None: do not write).
        on_conflict: what to do when two files hold the same env/task/algorithm/run with
            different contents: "error" raises; "rename" keeps both, suffixing the later run name
            with ``_<file index>``. Identical duplicates are kept once.
        complete: see :func:`validate_results`.

    Returns:
        The merged results.
    """
    if on_conflict not in ("error", "rename"):
        raise ValueError(f"on_conflict must be 'error' or 'rename', got {on_conflict!r}")
    paths = [p if isinstance(p, Mapping) else Path(p) for p in paths]
    if not paths:
        raise ValueError("merge_results: no input files")
    merged: Results = {}
    for index, path in enumerate(paths):
        if isinstance(path, Mapping):
            data = path
            validate_results(data, complete=complete)
            path = f"results #{index}"
        else:
            data = load_results(path, complete=complete)
        for env, tasks in data.items():
            for task, algorithms in tasks.items():
                for algorithm, runs in algorithms.items():
                    target = merged.setdefault(env, {}).setdefault(task, {})
                    target = target.setdefault(algorithm, {})
                    for run_name, run in runs.items():
                        name = run_name
                        if name in target and target[name] != run:
                            if on_conflict == "error":
                                raise ValueError(
                                    f"{path}: {_where(env, task, algorithm, run_name)} already "
                                    "comes from an earlier file with different contents "
                                    "(pass on_conflict='rename' to keep both)"
                                )
                            name = f"{run_name}_{index}"
                            while name in target:
                                name += "_"
                        target[name] = copy.deepcopy(run)
    validate_results(merged, complete=complete)
    if out is not None:
        _atomic_write_json(merged, Path(out))
    return merged


# ---------------------------------------------------------------------------------------------
# Logger
# ---------------------------------------------------------------------------------------------


def _as_values(value: Any, where: str) -> list[float]:
    """Per-episode values as a flat list of finite floats (accepts scalars and arrays)."""
    try:
        array = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: values must be numbers, got {value!r}") from e
    if array.size == 0:
        raise ValueError(f"{where}: no values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: values must be finite, got {array.tolist()}")
    return array.tolist()


class JsonLogger:
    """Writes one run into a marl-eval JSON file, incrementally and atomically.

    Several runs, algorithms and tasks share one file: each write re-reads the file under an
    inter-process lock, replaces this run's entry and writes the whole file to a temporary file
    in the same folder that is then renamed over the old one, so a crash never leaves a
    truncated file and concurrent seeds never overwrite each other.

    Example:
        >>> logger = JsonLogger("results/metrics.json", "lbf", "8x8-2p", "ippo", seed=0)
        >>> logger.log_step(10_000, {"episode_return": returns})  # returns: (num_episodes,)
        >>> logger.log_absolute({"episode_return": final_returns})

    Args:
        path: the JSON file (created with its folders if missing).
        environment: environment name.
        task: task name.
        algorithm: algorithm name.
        seed: run seed; the run is named ``seed_<seed>`` unless ``run_name`` is given.
        run_name: explicit run name.
        if_exists: when the file already holds this run: "error" raises, "overwrite" starts it
            afresh, "resume" continues after its last step.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        environment: str,
        task: str,
        algorithm: str,
        seed: int | None = None,
        run_name: str | None = None,
        if_exists: Literal["error", "overwrite", "resume"] = "error",
    ) -> None:
        if (seed is None) == (run_name is None):
            raise ValueError("JsonLogger: give exactly one of seed and run_name")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise ValueError(f"JsonLogger: seed must be an int, got {seed!r}")
            run_name = f"seed_{int(seed)}"
        for label, name in (
            ("environment", environment),
            ("task", task),
            ("algorithm", algorithm),
            ("run_name", run_name),
        ):
            if not isinstance(name, str) or not name:
                raise ValueError(f"JsonLogger: {label} must be a non-empty string, got {name!r}")
        if if_exists not in ("error", "overwrite", "resume"):
            raise ValueError(
                f"JsonLogger: if_exists must be 'error', 'overwrite' or 'resume', got {if_exists!r}"
            )
        self.path = Path(path)
        self.environment, self.task, self.algorithm = environment, task, algorithm
        self.run_name: str = run_name  # type: ignore[assignment]
        self._start_time: float | None = None
        self.run_data: RunData = {ABSOLUTE_METRICS: {}}
        with _file_lock(self.path):
            data = _read_json(self.path) if self.path.exists() else {}
            existing = data.get(environment, {}).get(task, {}).get(algorithm, {}).get(self.run_name)
            if existing is not None:
                if if_exists == "error":
                    raise ValueError(
                        f"{self.path}: {_where(environment, task, algorithm, self.run_name)} "
                        "already exists (if_exists='overwrite' or 'resume' to reuse it)"
                    )
                if if_exists == "resume":
                    self.run_data = copy.deepcopy(existing)
                    self.run_data.setdefault(ABSOLUTE_METRICS, {})
            self._write_locked(data)
        steps = sorted_step_keys(self.run_data)
        self._next_step = step_index(steps[-1]) + 1 if steps else 0  # type: ignore[operator]

    @property
    def where(self) -> str:
        """The env/task/algorithm/run path this logger writes."""
        return _where(self.environment, self.task, self.algorithm, self.run_name)

    def _write_locked(self, data: Results) -> None:
        runs = data.setdefault(self.environment, {}).setdefault(self.task, {})
        runs.setdefault(self.algorithm, {})[self.run_name] = self.run_data
        _atomic_write_json(data, self.path)

    def _flush(self) -> None:
        with _file_lock(self.path):
            data = _read_json(self.path) if self.path.exists() else {}
            self._write_locked(data)

    def log_step(
        self,
        step_count: int,
        metrics: Mapping[str, float | Sequence[float] | np.ndarray],
        elapsed_time: float | None = None,
    ) -> str:
        """Records one evaluation as ``step_<k>`` (k counts from 0) and writes the file.

        Args:
            step_count: environment steps taken so far; must increase from call to call.
            metrics: metric name -> per-episode values (shape (num_episodes,), or a scalar).
            elapsed_time: seconds since the first evaluation; by default measured by the logger
                from its first ``log_step`` (so compilation before it is not counted).

        Returns:
            The step key written.
        """
        if isinstance(step_count, bool) or not isinstance(step_count, (int, np.integer)):
            raise ValueError(f"{self.where}: step_count must be an int, got {step_count!r}")
        if step_count < 0:
            raise ValueError(f"{self.where}: step_count must be >= 0, got {step_count}")
        steps = sorted_step_keys(self.run_data)
        if steps:
            last = self.run_data[steps[-1]][STEP_COUNT]
            if step_count <= last:
                raise ValueError(
                    f"{self.where}: step_count {step_count} is not greater than the previous "
                    f"step_count {last} ({steps[-1]})"
                )
            previous = set(self.run_data[steps[0]]) - set(RESERVED_STEP_KEYS)
            if set(metrics) != previous:
                raise ValueError(
                    f"{self.where}: metrics {sorted(metrics)} differ from those logged "
                    f"before {sorted(previous)}"
                )
        if not metrics:
            raise ValueError(f"{self.where}: no metrics given")
        now = time.monotonic()
        if self._start_time is None:
            self._start_time = now
        if elapsed_time is None:
            elapsed_time = now - self._start_time
        key = f"step_{self._next_step}"
        entry: dict[str, Any] = {STEP_COUNT: int(step_count), ELAPSED_TIME: float(elapsed_time)}
        for name, value in metrics.items():
            where = f"{self.where} / step {key!r} / metric {name!r}"
            if name in RESERVED_STEP_KEYS:
                raise ValueError(f"{self.where}: metric name {name!r} is reserved")
            entry[name] = _as_values(value, where)
            if steps and len(entry[name]) != len(self.run_data[steps[0]][name]):
                raise ValueError(
                    f"{where}: {len(entry[name])} values but "
                    f"{len(self.run_data[steps[0]][name])} at earlier steps"
                )
        self.run_data[key] = entry
        self._next_step += 1
        self._flush()
        return key

    def log_absolute(self, metrics: Mapping[str, float | Sequence[float] | np.ndarray]) -> None:
        """Records the run's ``absolute_metrics`` (per-episode values of the final evaluation,
        conventionally 10x as many episodes as at each step) and writes the file."""
        if not metrics:
            raise ValueError(f"{self.where}: no absolute metrics given")
        for name, value in metrics.items():
            self.run_data[ABSOLUTE_METRICS][name] = _as_values(
                value, f"{self.where} / {ABSOLUTE_METRICS} / metric {name!r}"
            )
        self._flush()
