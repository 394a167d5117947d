"""`jaxmarl benchmark <sweep.toml>`: algorithms x tasks x seeds x budgets from one file.

A sweep file (TOML) names the algorithms, the tasks and the config overrides; each (algorithm,
task, budget) is one run folder trained by `training.run_experiment` with its seeds vmapped (as
`jaxmarl train --seeds N`). After every run the sweep's marl-eval JSON (`<out>/results.json`) is
rebuilt from the finished runs through `evaluation.results.merge_results`; at the end the
evaluation module writes the plots and tables into `<out>/report/`. A finished run is skipped on
restart, a run killed mid-training continues from its latest checkpoint. The whole file is
validated before anything runs (unknown tables, fields, algorithms, environment ids, bad values
exit with status 2 and name the entry). `benchmarks/sweeps/example.toml` documents the format.

Nothing heavy is imported at module level: `jaxmarl benchmark --help`, and sweep files with
unknown tables, keys or algorithms, are answered without JAX.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import difflib
import fnmatch
import functools
import glob
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomllib

from jaxmarl_envs.algorithms import train_cli

#: Tables a sweep file may have.
TOP_LEVEL = ("sweep", "report", "defaults", "algorithms", "tasks")
#: Keys of `[sweep]` and their meaning (also the `--help` text of the format).
SWEEP_KEYS = {
    "name": "sweep name (default: the file name without .toml)",
    "description": "free text, recorded in the output",
    "out": "output folder (default results/sweeps/<name>; --out overrides)",
    "seeds": "seeds per algorithm and task (default 5), vmapped in one process",
    "seed": "first seed (default 0): runs are seed_<seed> ... seed_<seed + seeds - 1>",
    "seed_batch": "at most this many seeds vmapped together (default: all); more seeds make "
    "several run folders",
}
#: Keys of `[report]` (passed to `jaxmarl plot`).
REPORT_KEYS = {
    "metric": "metric of the plots and tables (default episode_return)",
    "normalise": "'observed' (default), 'none' or a JSON file of reference scores",
    "source": "'absolute' (default) or 'final_step' final scores",
    "reps": "bootstrap replicates (default: jaxmarl plot's)",
    "confidence": "confidence level (default 0.95)",
    "formats": "figure formats, a list or comma-separated (default png,pdf)",
}
#: Config fields the sweep sets itself (they may not appear in any table).
RESERVED = {
    "algorithm": "the algorithm comes from the [algorithms.<name>] table (and its 'algorithm' key)",
    "num_seeds": "seeds are set by [sweep] seeds",
    "seed": "seeds are set by [sweep] seed",
    "out": "the output folder is set by [sweep] out or --out",
    "run_name": "run folders are named by the sweep",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class SweepError(ValueError):
    """A bad sweep file or option; the message lists every problem found, each with its entry."""


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _entry(*parts: str) -> str:
    """`[tasks.lbf-8x8-2p-2f-coop]`, `[algorithms."a.b"]`: a table as the file spells it."""
    return "[" + ".".join(_key(p) for p in parts) + "]"


def _hint(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------
# Parsing (light: no JAX)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SweepFile:
    """A parsed sweep file (structure checked; configs not yet resolved).

    Attributes:
        path: the file.
        text: its contents (copied into the output).
        name: sweep name.
        description: free text.
        out: output folder from the file (None: the default).
        seeds: seeds per algorithm and task.
        seed: first seed.
        seed_batch: most seeds vmapped in one run folder.
        report: `[report]` settings.
        defaults: config overrides for every run.
        algorithms: `{name: (base algorithm, overrides)}` in file order.
        tasks: `{name: (overrides, {algorithm name or family: overrides})}` in file order.
    """

    path: Path
    text: str
    name: str
    description: str
    out: str | None
    seeds: int
    seed: int
    seed_batch: int
    report: dict[str, Any]
    defaults: dict[str, Any]
    algorithms: dict[str, tuple[str, dict[str, Any]]]
    tasks: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]]


def _check_keys(table: dict, allowed: Any, where: str, errors: list[str], what: str) -> None:
    for key in table:
        if key not in allowed:
            errors.append(
                f"{where}: unknown {what} {key!r}{_hint(key, allowed)}; "
                f"expected one of: {', '.join(allowed)}"
            )


def _int_setting(table: dict, key: str, default: int, minimum: int, where: str, errors: list):
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        errors.append(f"{where}.{key}: expected an integer >= {minimum}, got {value!r}")
        return default
    return value


def _reserved(overrides: dict, where: str, errors: list[str]) -> None:
    for key in overrides:
        if key in RESERVED:
            errors.append(f"{where}.{key}: set by the sweep, not a table ({RESERVED[key]})")


def parse_sweep(path: str | os.PathLike) -> SweepFile:
    """Reads and checks the structure of a sweep file without importing JAX.

    Checks: valid TOML, known tables and `[sweep]`/`[report]` keys, algorithm names (the light
    table of `train_cli`), names usable as folder names, override targets, reserved fields.
    Config fields, values and environment ids are checked by `plan_sweep`.

    Raises:
        SweepError: listing every problem, each naming its entry.
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep file")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"{path}: not valid TOML ({err})") from None
    errors: list[str] = []
    for key, value in data.items():
        if key not in TOP_LEVEL:
            errors.append(
                f"top-level key {key!r}: unknown{_hint(key, TOP_LEVEL)}; "
                f"a sweep file has the tables {', '.join(f'[{t}]' for t in TOP_LEVEL)}"
            )
        elif not isinstance(value, dict):
            errors.append(f"top-level key {key!r}: expected a table [{key}]")
    data = {k: v for k, v in data.items() if k in TOP_LEVEL and isinstance(v, dict)}

    sweep = data.get("sweep", {})
    _check_keys(sweep, SWEEP_KEYS, "[sweep]", errors, "key")
    name = sweep.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(f"[sweep].name: expected a name of letters, digits, _.+-, got {name!r}")
        name = path.stem
    description = sweep.get("description", "")
    if not isinstance(description, str):
        errors.append(f"[sweep].description: expected a string, got {description!r}")
    out = sweep.get("out")
    if out is not None and (not isinstance(out, str) or not out):
        errors.append(f"[sweep].out: expected a folder name, got {out!r}")
        out = None
    seeds = _int_setting(sweep, "seeds", 5, 1, "[sweep]", errors)
    seed = _int_setting(sweep, "seed", 0, 0, "[sweep]", errors)
    seed_batch = _int_setting(sweep, "seed_batch", seeds, 1, "[sweep]", errors)

    report = data.get("report", {})
    _check_keys(report, REPORT_KEYS, "[report]", errors, "key")
    for key in ("metric", "normalise", "source"):
        if key in report and not isinstance(report[key], str):
            errors.append(f"[report].{key}: expected a string, got {report[key]!r}")
    if "source" in report and report["source"] not in ("absolute", "final_step"):
        errors.append(
            f"[report].source: expected 'absolute' or 'final_step', got {report['source']!r}"
        )
    if "reps" in report:
        _int_setting(report, "reps", 1, 1, "[report]", errors)
    if "confidence" in report and not (
        isinstance(report["confidence"], (int, float)) and 0 < report["confidence"] < 1
    ):
        errors.append(
            f"[report].confidence: expected a number in (0, 1), got {report['confidence']!r}"
        )
    if "formats" in report:
        formats = report["formats"]
        if isinstance(formats, list) and all(isinstance(f, str) for f in formats):
            report = {**report, "formats": ",".join(formats)}
        elif not isinstance(formats, str):
            errors.append(f"[report].formats: expected a list of strings, got {formats!r}")

    defaults = data.get("defaults", {})
    _reserved(defaults, "[defaults]", errors)
    if "env_id" in defaults:
        errors.append("[defaults].env_id: the environment comes from the [tasks.<id>] tables")

    algorithms: dict[str, tuple[str, dict]] = {}
    raw_algorithms = data.get("algorithms", {})
    if not raw_algorithms:
        errors.append("[algorithms]: no algorithms (add a table [algorithms.<name>] per algorithm)")
    for label, table in raw_algorithms.items():
        where = _entry("algorithms", label)
        if not isinstance(table, dict):
            errors.append(f"{where}: expected a table of config overrides, got {table!r}")
            continue
        if not _NAME.match(label):
            errors.append(f"{where}: the name must be letters, digits and _.+- (a folder name)")
        base = table.get("algorithm", label)
        if not isinstance(base, str) or base not in train_cli.ALGORITHMS:
            what = f"'algorithm = {base!r}'" if "algorithm" in table else f"algorithm {base!r}"
            errors.append(
                f"{where}: unknown {what}{_hint(str(base), train_cli.ALGORITHMS)}; choose from "
                f"{', '.join(train_cli.ALGORITHMS)} (or name the table freely and set "
                "algorithm = '<one of them>')"
            )
            continue
        overrides = {k: v for k, v in table.items() if k != "algorithm"}
        _reserved(overrides, where, errors)
        if "env_id" in overrides:
            errors.append(
                f"{where}.env_id: the environment comes from the tasks; give an algorithm its own "
                f"environment in [tasks.<task>.override.{_key(label)}]"
            )
        algorithms[label] = (base, overrides)

    families = sorted({train_cli.ALGORITHMS[b][0] for b, _ in algorithms.values()})
    tasks: dict[str, tuple[dict, dict[str, dict]]] = {}
    raw_tasks = data.get("tasks", {})
    if not raw_tasks:
        errors.append("[tasks]: no tasks (add a table [tasks.<environment id>] per task)")
    for label, table in raw_tasks.items():
        where = _entry("tasks", label)
        if not isinstance(table, dict):
            errors.append(f"{where}: expected a table of config overrides, got {table!r}")
            continue
        if not _NAME.match(label):
            errors.append(f"{where}: the name must be letters, digits and _.+- (a folder name)")
        overrides = {k: v for k, v in table.items() if k != "override"}
        _reserved(overrides, where, errors)
        per_algorithm = table.get("override", {})
        if not isinstance(per_algorithm, dict):
            errors.append(f"{where}.override: expected tables [{where[1:-1]}.override.<name>]")
            per_algorithm = {}
        targets = list(algorithms) + families
        checked: dict[str, dict] = {}
        for target, sub in per_algorithm.items():
            sub_where = _entry("tasks", label, "override", target)
            if target not in targets:
                errors.append(
                    f"{sub_where}: {target!r} is neither an algorithm of this sweep nor the "
                    f"family of one{_hint(target, targets)}; expected one of: {', '.join(targets)}"
                )
                continue
            if not isinstance(sub, dict):
                errors.append(f"{sub_where}: expected a table of config overrides, got {sub!r}")
                continue
            _reserved(sub, sub_where, errors)
            checked[target] = sub
        tasks[label] = (overrides, checked)
    if errors:
        raise SweepError(f"{path}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    return SweepFile(
        path=path,
        text=text,
        name=name,
        description=description,
        out=out,
        seeds=seeds,
        seed=seed,
        seed_batch=min(seed_batch, seeds),
        report=dict(report),
        defaults=dict(defaults),
        algorithms=algorithms,
        tasks=tasks,
    )


# ---------------------------------------------------------------------------------------------
# Planning: configs resolved and validated (imports the families)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    """One run folder: an algorithm on a task with one budget and a batch of vmapped seeds.

    Attributes:
        label: the `[algorithms.<label>]` table.
        name: the algorithm's name in the results (label, plus `_<budget>` when the budget is a
            list).
        algorithm: the base algorithm (ippo, qmix, ...).
        task: the `[tasks.<task>]` table; the task's name in the sweep's results.
        env_id: the environment id trained on.
        environment: the environment family (the results' top level).
        seeds: the seeds trained together.
        config: the resolved config.
        requested_steps: the budget per seed as written.
        total_steps: the budget per seed trained (rounded up to whole evaluation intervals).
        run_dir: the run folder.
    """

    label: str
    name: str
    algorithm: str
    task: str
    env_id: str
    environment: str
    seeds: tuple[int, ...]
    config: Any
    requested_steps: int
    total_steps: int
    run_dir: Path

    @property
    def key(self) -> str:
        """`<name>/<task>` (what `--only` matches)."""
        return f"{self.name}/{self.task}"

    @property
    def env_steps(self) -> int:
        """Environment steps over all its seeds."""
        return self.total_steps * len(self.seeds)


def _coerce(tp: Any, value: Any, where: str, errors: list[str]) -> Any:
    """A TOML value as the config field type `tp` (lists -> tuples, integral floats -> ints)."""
    import typing

    from jaxmarl_envs.algorithms.config import parse_int

    def bad(expected: str) -> None:
        errors.append(f"{where}: expected {expected}, got {value!r}")

    if tp is bool:
        return value if isinstance(value, bool) else bad("true or false")
    if tp is int:
        if isinstance(value, bool):
            return bad("an integer")
        if isinstance(value, (int, float, str)):
            try:
                return parse_int(value)
            except ValueError:
                pass
        return bad("an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return bad("a number")
    if tp is str:
        return value if isinstance(value, str) else bad("a string")
    if typing.get_origin(tp) is tuple:
        if isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
        return bad("a list of integers, e.g. [64, 64]")
    if tp is dict or typing.get_origin(tp) is dict:
        return dict(value) if isinstance(value, dict) else bad("a table, e.g. {time_limit = 50}")
    return bad(f"a value of type {tp}")  # pragma: no cover - every config field type is above


def _typed_overrides(
    cls: type, overrides: dict, where: str, errors: list[str], algorithm: str
) -> dict[str, Any]:
    """`overrides` checked against the fields of `cls` (names, types, choices)."""
    import typing

    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            errors.append(
                f"{where}.{key}: unknown config field for {algorithm} ({cls.__name__})"
                f"{_hint(key, fields)}; `jaxmarl train {algorithm} --help` lists them"
            )
            continue
        tp = hints[key]
        if key == "total_steps" and isinstance(value, list):
            budgets = [_coerce(int, v, f"{where}.{key}", errors) for v in value]
            if not value or any(b is None or b < 1 for b in budgets):
                errors.append(f"{where}.{key}: expected a budget or a non-empty list of budgets")
                continue
            out[key] = budgets
            continue
        typed = _coerce(tp, value, f"{where}.{key}", errors)
        if typed is None:
            continue
        choices = fields[key].metadata.get("choices")
        if choices is not None and typed not in choices:
            errors.append(f"{where}.{key}: expected one of {list(choices)}, got {typed!r}")
            continue
        out[key] = typed
    return out


def _layer(merged: dict, overrides: dict) -> dict:
    """`overrides` on top of `merged`; `env_kwargs` tables merge key by key."""
    out = dict(merged)
    for key, value in overrides.items():
        if key == "env_kwargs" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _budget_suffix(steps: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if steps >= size and steps % size == 0:
            return f"{steps // size}{unit}"
    return str(steps)


def default_out(sweep: SweepFile) -> Path:
    """The output folder when neither `--out` nor `[sweep] out` is given."""
    return Path(sweep.out) if sweep.out else Path("results") / "sweeps" / sweep.name


def plan_sweep(sweep: SweepFile, out: str | os.PathLike | None = None) -> list[Job]:
    """Resolves every run's config and validates it (fields, values, environment ids, the
    family's own checks through `make_learner`), building nothing that compiles.

    Config layers, later ones winning: the algorithm's defaults and preset, `[defaults]`, then
    `[tasks.<t>]` and `[algorithms.<a>]` (a field set in both is an error: set it per pair in
    `[tasks.<t>.override.<a>]`), `[tasks.<t>.override.<family>]`, `[tasks.<t>.override.<a>]`.
    A list `total_steps` makes one run per budget.

    Raises:
        SweepError: listing every problem, each naming its entry.
    """
    import jaxmarl_envs
    from jaxmarl_envs.algorithms.config import from_dict, to_dict

    out = Path(out) if out is not None else default_out(sweep)
    errors: list[str] = []
    entries = {
        label: train_cli.algorithm_entry(base) for label, (base, _) in sweep.algorithms.items()
    }

    # Field names and types, per table, against every algorithm the table applies to.
    defaults = {
        label: _typed_overrides(cls, sweep.defaults, "[defaults]", errors, label)
        for label, (_, cls, _) in entries.items()
    }
    algorithm_overrides = {
        label: _typed_overrides(
            entries[label][1], overrides, _entry("algorithms", label), errors, base
        )
        for label, (base, overrides) in sweep.algorithms.items()
    }
    seen: set[tuple[str, str, int]] = set()
    envs: dict[tuple[str, str], str] = {}  # (env id, env_kwargs) -> error ("" when it builds)
    for task, (overrides, per_algorithm) in sweep.tasks.items():
        env_ids = [(overrides.get("env_id", task), _entry("tasks", task))]
        env_ids += [
            (sub["env_id"], _entry("tasks", task, "override", target))
            for target, sub in per_algorithm.items()
            if "env_id" in sub
        ]
        for env_id, where in env_ids:
            if not isinstance(env_id, str):
                continue  # reported as a type error below
            try:
                jaxmarl_envs.spec(env_id)
            except ValueError as err:
                errors.append(f"{where}: {err}")
    if errors:
        raise SweepError(f"{sweep.path}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))

    jobs: list[Job] = []
    for task, (task_overrides, per_algorithm) in sweep.tasks.items():
        for label, (base, _) in sweep.algorithms.items():
            module, cls, preset = entries[label]
            family = train_cli.ALGORITHMS[base][0]
            task_typed = _typed_overrides(cls, task_overrides, _entry("tasks", task), errors, base)
            both = sorted(set(task_typed) & set(algorithm_overrides[label]))
            if both:
                errors.append(
                    f"{_entry('tasks', task)} and {_entry('algorithms', label)} both set "
                    f"{', '.join(both)}; set them for this pair in "
                    f"{_entry('tasks', task, 'override', label)}"
                )
            merged = _layer(to_dict(cls()), {**preset, "env_id": task})
            for layer in (defaults[label], task_typed, algorithm_overrides[label]):
                merged = _layer(merged, layer)
            for target in (family, label):
                if target in per_algorithm:
                    where = _entry("tasks", task, "override", target)
                    merged = _layer(
                        merged,
                        _typed_overrides(cls, per_algorithm[target], where, errors, base),
                    )
            budgets = merged["total_steps"]
            budgets = budgets if isinstance(budgets, list) else [budgets]
            for budget in budgets:
                name = label if len(budgets) == 1 else f"{label}_{_budget_suffix(budget)}"
                for first in range(sweep.seed, sweep.seed + sweep.seeds, sweep.seed_batch):
                    count = min(sweep.seed_batch, sweep.seed + sweep.seeds - first)
                    run_dir = out / "runs" / name / task
                    if sweep.seed_batch < sweep.seeds:
                        run_dir = run_dir / f"seeds_{first}-{first + count - 1}"
                    values = {
                        **merged,
                        "total_steps": budget,
                        "algorithm": name,
                        "seed": first,
                        "num_seeds": count,
                        "out": str(out / "runs"),
                        "run_name": str(run_dir.relative_to(out / "runs")),
                    }
                    where = f"{_entry('algorithms', label)} on {_entry('tasks', task)}"
                    env_key = (values["env_id"], json.dumps(values["env_kwargs"], sort_keys=True))
                    if env_key not in envs:
                        try:
                            jaxmarl_envs.make(values["env_id"], **values["env_kwargs"])
                            envs[env_key] = ""
                        except (ValueError, TypeError) as err:
                            envs[env_key] = f"{_entry('tasks', task)}.env_kwargs: {err}"
                    if envs[env_key]:
                        errors.append(envs[env_key])
                        continue
                    try:
                        config = from_dict(cls, values)
                        learner = module.make_learner(config)
                    except (ValueError, TypeError) as err:
                        errors.append(f"{where}: {err}")
                        continue
                    if (name, task, first) in seen:
                        errors.append(f"{where}: two runs named {name}/{task} (repeated budget)")
                        continue
                    seen.add((name, task, first))
                    jobs.append(
                        Job(
                            label=label,
                            name=name,
                            algorithm=base,
                            task=task,
                            env_id=config.env_id,
                            environment=getattr(learner.env, "name", "env"),
                            seeds=tuple(range(first, first + count)),
                            config=config,
                            requested_steps=budget,
                            total_steps=int(learner.derived.total_steps),
                            run_dir=run_dir,
                        )
                    )
    if errors:
        errors = list(dict.fromkeys(errors))
        raise SweepError(f"{sweep.path}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    return jobs


# ---------------------------------------------------------------------------------------------
# Run state on disk
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def config_mismatch(job: Job) -> list[str]:
    """Fields whose value in the run folder's `config.json` differs from the planned config
    (empty when the folder has none or they agree)."""
    from jaxmarl_envs.algorithms.config import to_dict

    saved = _read_json(job.run_dir / "config.json")
    if saved is None:
        return []
    saved = saved.get("config", {})
    upgrade = getattr(type(job.config), "upgrade_dict", None)
    if upgrade is not None:  # what an older config.json meant (fields added since, renames)
        saved = upgrade(dict(saved))
    planned = json.loads(json.dumps(to_dict(job.config)))
    # Any other field added after the run was trained, at its default, is not a difference:
    # new fields default to the behaviour that existed before them (a class whose new default
    # differs says so in `upgrade_dict`). `out` is where the sweep folder was then: a moved
    # folder still resumes.
    defaults = json.loads(json.dumps(to_dict(type(job.config)())))
    keys = sorted((set(saved) | set(planned)) - {"out"})
    return [
        f"{k}: {saved.get(k, '<missing>')!r} in the folder, {planned.get(k, '<missing>')!r} now"
        for k in keys
        if saved.get(k) != planned.get(k)
        and not (k not in saved and k in defaults and planned.get(k) == defaults[k])
    ]


def job_status(job: Job) -> str:
    """`finished` (complete results for every seed), `partial` (started: resumes from its latest
    checkpoint, if any) or `new`."""
    from jaxmarl_envs.algorithms.evaluation.results import load_results

    summary = _read_json(job.run_dir / "summary.json")
    if summary is not None and summary.get("finished"):
        try:
            data = load_results(job.run_dir / "metrics.json")
            runs = data[job.environment][job.env_id][job.name]
        except (OSError, ValueError, KeyError):
            runs = {}
        if set(runs) >= {f"seed_{s}" for s in job.seeds}:
            return "finished"
    if (job.run_dir / "config.json").exists():
        return "partial"
    return "new"


def collect_results(jobs: list[Job], path: Path) -> int:
    """Rebuilds the sweep's marl-eval JSON at `path` from every finished run (task named as in
    the sweep file), merged and written atomically under the results lock. Returns the number
    of finished runs in it (the file is removed when there are none)."""
    from jaxmarl_envs.algorithms.evaluation.results import _file_lock, load_results, merge_results

    datasets = []
    for job in jobs:
        if job_status(job) != "finished":
            continue
        data = load_results(job.run_dir / "metrics.json")
        runs = data[job.environment][job.env_id][job.name]
        datasets.append({job.environment: {job.task: {job.name: runs}}})
    with _file_lock(path):
        if datasets:
            merge_results(datasets, out=path)
        elif path.exists():
            path.unlink()
    return len(datasets)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def fmt_duration(seconds: float) -> str:
    """`42s`, `5m12s`, `2h05m`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _describe(job: Job, requested: bool = False) -> str:
    seeds = f"{len(job.seeds)} seed{'s' if len(job.seeds) != 1 else ''}"
    if len(job.seeds) > 1 and job.seeds != tuple(range(len(job.seeds))):
        seeds += f" {job.seeds[0]}-{job.seeds[-1]}"
    steps = f"{job.total_steps:,} steps"
    if requested and job.requested_steps != job.total_steps:
        steps += f" for {job.requested_steps:,} asked"
    env = "" if job.env_id == job.task else f", env {job.env_id}"
    return f"{job.name} on {job.task} ({seeds}, {steps}{env})"


def print_plan(
    sweep: SweepFile, jobs: list[Job], selected: list[Job], out: Path, workers: int = 1
) -> None:
    """The run plan (`--dry-run`): one line per run with its status on disk, and the time
    left at the pace of the finished runs (`workers` at a time)."""
    algorithms = sorted({j.name for j in jobs})
    tasks = list(dict.fromkeys(j.task for j in jobs))
    print(
        f"sweep {sweep.name}: {len(algorithms)} algorithm(s) x {len(tasks)} task(s) x "
        f"{sweep.seeds} seed(s) = {len(jobs)} run(s) of vmapped seeds; output {out}"
    )
    statuses = [job_status(job) for job in jobs]  # reads each finished run's results once
    for i, (job, status) in enumerate(zip(jobs, statuses, strict=True), 1):
        if job not in selected:
            continue
        note = {"finished": "finished, skipped", "partial": "resumes", "new": "new"}[status]
        pid = busy_pid(job) if status != "finished" else None
        if pid is not None:
            note = f"being trained by another process (pid {pid})"
        print(f"  [{i}/{len(jobs)}] {_describe(job, True)} -> {job.run_dir}: {note}")
    todo = [j for j, s in zip(jobs, statuses, strict=True) if j in selected and s != "finished"]
    print(
        f"{len(selected)} selected, {len(todo)} to train: "
        f"{sum(j.env_steps for j in todo):,} environment steps over all seeds"
    )
    spent = finished_timings(jobs, statuses)
    if spent and todo:
        eta = fmt_duration(estimate_seconds_left(todo, spent, workers))
        print(
            f"about {eta} with --jobs {workers}, at the pace of {len(spent)} finished run(s) "
            "(on the machines that trained them)"
        )


def write_report(
    sweep: SweepFile, out: Path, verbose: bool, tasks: list[str] | None = None
) -> tuple[int, str]:
    """Plots and tables of `<out>/results.json` into `<out>/report/` through `jaxmarl plot`
    (only `tasks`, when given). Returns `(exit status, one-line summary)`."""
    results = out / "results.json"
    if not results.exists():
        return 1, "report skipped: no finished run yet"
    if tasks == []:
        return 1, "report skipped: no task has every algorithm finished yet"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return 0, "report skipped: pip install 'jaxmarl-envs[eval]' for matplotlib"
    from jaxmarl_envs.algorithms.evaluation import plot_cli

    report = sweep.report
    argv = ["plot", str(results), "--metric", report.get("metric", "episode_return")]
    argv += ["--out", str(out / "report"), "--normalise", report.get("normalise", "observed")]
    argv += ["--source", report.get("source", "absolute")]
    argv += ["--formats", report.get("formats", "png,pdf")]
    for task in tasks or []:
        argv += ["--task", glob.escape(task)]
    if "reps" in report:
        argv += ["--reps", str(report["reps"])]
    if "confidence" in report:
        argv += ["--confidence", str(report["confidence"])]
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        code = plot_cli.main(argv)
    if verbose or code:
        print(stream.getvalue(), end="")
    files = [p for p in (out / "report").rglob("*") if p.is_file()]
    if code:
        return code, f"report failed (jaxmarl {' '.join(argv)})"
    scope = f" (tasks with every algorithm finished: {', '.join(tasks)})" if tasks else ""
    return 0, f"report: {len(files)} files in {out / 'report'}{scope}"


def _write_summary(
    sweep: SweepFile,
    jobs: list[Job],
    out: Path,
    started: float,
    failed: list[str],
    trained: bool = True,
) -> Path:
    """`<out>/summary.json`: per-run status and seconds (the last invocation's and the run's
    in all), and the sweep's wall-clock time per invocation and in all; and `<out>/runs.md`,
    `<out>/runs.csv` (see `write_runs_table`). Written when an invocation starts, after each
    run it finishes and when it ends, so an invocation killed without warning has its time
    recorded up to its last finished run. An invocation that trains nothing (`trained`
    False: `--report-only`) updates the runs without an entry of its own."""
    from jaxmarl_envs.algorithms.evaluation.results import _file_lock

    path = out / "summary.json"
    with _file_lock(path):  # two invocations on one folder each add their own entry
        statuses = [job_status(job) for job in jobs]  # reads each finished run's results once
        _update_summary(sweep, jobs, statuses, path, started, failed, trained)
        write_runs_table(jobs, statuses, out, sweep.report.get("metric", "episode_return"))
    return path


def _update_summary(
    sweep: SweepFile,
    jobs: list[Job],
    statuses: list[str],
    path: Path,
    started: float,
    failed: list[str],
    trained: bool = True,
) -> Path:
    from jaxmarl_envs.algorithms.evaluation.results import _atomic_write_json

    previous = _read_json(path) or {}
    wall = time.time() - started
    invocations = list(previous.get("invocations", []))
    if not invocations and previous.get("wall_clock_seconds_total"):
        # a summary written before invocations were listed: its total as one entry
        invocations.append(
            {"started": None, "ended": None, "seconds": previous["wall_clock_seconds_total"]}
        )
    if trained:
        this = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": wall,
            "started_unix": started,  # identifies the invocation among the entries
            "machine": machine_info(),  # a sweep resumed elsewhere mixes machines: say which
        }
        invocations = [i for i in invocations if i.get("started_unix") != started] + [this]
    else:  # the last training invocation stays the last one
        wall = previous.get("wall_clock_seconds", 0.0)
        this = {"started": None, "ended": None, **previous.get("last_invocation", {})}
    runs = []
    for job, status in zip(jobs, statuses, strict=True):
        timing = _read_json(job.run_dir / "sweep_run.json") or {}
        runs.append(
            {
                "algorithm": job.name,
                "task": job.task,
                "env_id": job.env_id,
                "seeds": list(job.seeds),
                "total_steps": job.total_steps,
                "run_dir": _relative(job.run_dir, path.parent),
                "status": status,
                "seconds": timing.get("seconds"),
                "seconds_total": _seconds_total(timing),
            }
        )
    summary = {
        "sweep": sweep.name,
        "sweep_file": str(sweep.path),
        "runs": runs,
        "finished": sum(r["status"] == "finished" for r in runs),
        "total": len(runs),
        "failed": failed,
        "train_seconds": sum(r["seconds_total"] or 0.0 for r in runs),
        "wall_clock_seconds": wall,
        "wall_clock_seconds_total": sum(i["seconds"] for i in invocations),
        "last_invocation": {"started": this["started"], "ended": this["ended"]},
        "invocations": invocations,
    }
    _atomic_write_json(summary, path)
    return path


def machine_info() -> dict[str, Any]:
    """The CPU model and core count, host name and JAX version of this machine (read without
    importing JAX): numbers from different CPUs differ in speed, and in their last digits."""
    import importlib.metadata
    import platform
    import socket

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    versions = {}
    for package in ("jax", "jaxlib"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "host": socket.gethostname(), **versions}


def _relative(run_dir: Path, out: Path) -> str:
    """`runs/<algorithm>/<task>`: the run folder relative to the sweep folder, so the records
    stay true when the folder is moved or committed."""
    try:
        return str(run_dir.relative_to(out))
    except ValueError:
        return str(run_dir)


def write_runs_table(jobs: list[Job], statuses: list[str], out: Path, metric: str) -> Path | None:
    """`<out>/runs.md` and `<out>/runs.csv`: every finished run's absolute `metric` per seed
    (the mean over the episodes of its absolute-metric evaluation), the mean over seeds, its
    training time summed over the invocations that resumed it, and its environment steps per
    second over all seeds (runs trained side by side share the machine: alone, each is
    faster). The CSV has one row per run and seed; `statuses` holds each job's `job_status`.
    Returns the Markdown path, or None (both files removed) while no run has finished."""
    from jaxmarl_envs.algorithms.evaluation.results import (
        ABSOLUTE_METRICS,
        _atomic_write_text,
        load_results,
    )

    rows = []
    for job, status in zip(jobs, statuses, strict=True):
        if status != "finished":
            continue
        runs = load_results(job.run_dir / "metrics.json")[job.environment][job.env_id][job.name]
        scores = []
        for seed in job.seeds:
            values = runs[f"seed_{seed}"][ABSOLUTE_METRICS].get(metric)
            scores.append(sum(values) / len(values) if values else math.nan)
        seconds = _seconds_total(_read_json(job.run_dir / "sweep_run.json") or {})
        rows.append((job, scores, seconds))
    md, csv_path = out / "runs.md", out / "runs.csv"
    if not rows:
        for stale in (md, csv_path):
            stale.unlink(missing_ok=True)
        return None
    # Decimals per task from its median |score| (returns differ 100x across tasks): 3 below 2
    # (LBF's 0.998 and 1.000 alike), 2 below 20, 1 below 200, else 0.
    magnitudes: dict[str, list[float]] = {}
    for job, scores, _ in rows:
        magnitudes.setdefault(job.task, []).extend(abs(s) for s in scores if math.isfinite(s))
    decimals_of = {}
    for task, values in magnitudes.items():
        values = sorted(values)
        median = values[len(values) // 2] if values else 0.0
        decimals_of[task] = sum(median < bound for bound in (2.0, 20.0, 200.0))
    lines = [
        f"Finished runs of the sweep: absolute {metric} per seed (mean over the episodes of the "
        "absolute-metric evaluation), its mean over seeds, the run's training time (summed over "
        "the invocations that resumed it) and environment steps per second over all its seeds.",
        "",
        f"| algorithm | task | steps per seed | absolute {metric} per seed | mean | training "
        "time | steps/s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    table = [("algorithm", "task", "env_id", "seed", "total_steps", metric, "train_seconds")]
    for job, scores, seconds in rows:
        decimals = decimals_of[job.task]
        per_seed = ", ".join(f"{s:.{decimals}f}" for s in scores)
        mean = sum(scores) / len(scores)
        time_cell = fmt_duration(seconds) if seconds else "n/a"
        rate = f"{job.env_steps / seconds:,.0f}" if seconds else "n/a"
        task = job.task if job.env_id == job.task else f"{job.task} ({job.env_id})"
        lines.append(
            f"| {job.name} | {task} | {job.total_steps:,} | {per_seed} | {mean:.{decimals}f} "
            f"| {time_cell} | {rate} |"
        )
        for seed, score in zip(job.seeds, scores, strict=True):
            table.append(
                (job.name, job.task, job.env_id, seed, job.total_steps, score, seconds or "")
            )
    _atomic_write_text("\n".join(lines) + "\n", md)
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n").writerows(table)
    _atomic_write_text(stream.getvalue(), csv_path)
    return md


def run_sweep(
    sweep: SweepFile,
    jobs: list[Job],
    out: Path,
    only: list[str] | None = None,
    max_runs: int | None = None,
    verbose: bool = False,
    report_only: bool = False,
    workers: int = 1,
) -> int:
    """Trains the selected runs that are not finished, in file order (tasks outer, algorithms
    inner; up to `workers` at once, each in its own process, when `workers` > 1), updating
    `<out>/results.json` after each; then writes the report when every run of the sweep is
    finished (or when `report_only`). Returns the exit status (1 if a run or the report
    failed)."""
    from jaxmarl_envs.algorithms.config import to_dict
    from jaxmarl_envs.algorithms.evaluation.results import _atomic_write_text

    started = time.time()
    selected = _select(jobs, only)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(sweep.text, out / "sweep.toml")
    plan = {
        "sweep": sweep.name,
        "description": sweep.description,
        "sweep_file": str(sweep.path),
        "runs": [
            {
                "algorithm": j.name,
                "base_algorithm": j.algorithm,
                "task": j.task,
                "env_id": j.env_id,
                "environment": j.environment,
                "seeds": list(j.seeds),
                "total_steps_requested": j.requested_steps,
                "total_steps": j.total_steps,
                "run_dir": _relative(j.run_dir, out),
                "config_class": type(j.config).__name__,
                "config": to_dict(j.config),
            }
            for j in jobs
        ],
    }
    _atomic_write_text(json.dumps(plan, indent=2) + "\n", out / "plan.json")
    results_path = out / "results.json"
    failed: list[str] = []
    if not report_only:
        record = functools.partial(_write_summary, sweep, jobs, out, started, failed)
        record()
        try:
            _train_selected(
                jobs,
                selected,
                results_path,
                max_runs,
                verbose,
                failed,
                workers=workers,
                sweep_path=Path(sweep.path).resolve(),
                record=record,
            )
        except BaseException:  # killed (Ctrl-C, a test's interruption): record the time spent
            _write_summary(sweep, jobs, out, started, failed)
            raise
    finished = collect_results(jobs, results_path)
    code = 1 if failed else 0
    if report_only or finished == len(jobs):
        complete = None  # a partial sweep's report covers the tasks every algorithm finished
        if finished < len(jobs):
            complete = [
                task
                for task in dict.fromkeys(j.task for j in jobs)
                if all(job_status(j) == "finished" for j in jobs if j.task == task)
            ]
        report_code, line = write_report(sweep, out, verbose, complete)
        code = code or report_code
        print(line)
    else:
        print(
            f"{finished}/{len(jobs)} runs finished; the report is written when all are "
            f"(or now with --report-only, over the tasks every algorithm has finished)"
        )
    summary_path = _write_summary(sweep, jobs, out, started, failed, trained=not report_only)
    if failed:
        print(f"failed runs: {', '.join(failed)} (run the sweep again to retry them)")
    print(f"results in {results_path if results_path.exists() else out}; summary {summary_path}")
    return code


class RunBusy(RuntimeError):
    """The run is being trained by another process (another sweep invocation on the folder)."""


def _lock_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    except OSError:  # pragma: no cover
        return "?"


@contextlib.contextmanager
def _run_lock(job: Job):
    """Holds an exclusive advisory lock on `<run folder>/sweep.lock` while this process trains
    the run, so that two sweep invocations on one output folder never train the same run at
    once (which would interleave their checkpoints). Raises `RunBusy` if another process
    holds it (after a second of retries, which outlast `busy_pid`'s probes). The lock dies
    with its process: a killed run leaves no stale lock. A no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    job.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(job.run_dir / "sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(20):  # `busy_pid` probes hold the lock shared for microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 19:
                    raise RunBusy(
                        f"{job.key} is being trained by another process (pid "
                        f"{_lock_holder(fd)}); run the sweep again when it is done"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def busy_pid(job: Job) -> str | None:
    """The pid of the process training the run now (holding its lock), or None."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    path = job.run_dir / "sweep.lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _lock_holder(fd)
        return None
    finally:
        os.close(fd)


def _has_checkpoint(job: Job) -> bool:
    """Whether the run folder holds a checkpoint to resume from."""
    ckpt = job.run_dir / "checkpoints"
    return ckpt.is_dir() and any(ckpt.iterdir())


def _train_job(job: Job, verbose: bool) -> float:
    """Trains one run to the end of its budget in this process (resuming from its latest
    checkpoint), records its seconds in `sweep_run.json` and returns them. Raises on failure."""
    from jaxmarl_envs.algorithms import training
    from jaxmarl_envs.algorithms.evaluation.results import _atomic_write_json

    with _run_lock(job):
        resumed = _has_checkpoint(job)
        t0 = time.time()
        module = train_cli.family_module(train_cli.ALGORITHMS[job.algorithm][0])
        learner = module.make_learner(job.config)
        summary = training.run_experiment(learner, str(job.run_dir), resume=True, verbose=verbose)
    if not summary["finished"]:
        raise RuntimeError("training stopped before the end of the budget")
    seconds = time.time() - t0
    record = {
        "seconds": seconds,  # this invocation's
        # the run's in all: earlier invocations' training up to the checkpoint it resumed from
        "seconds_total": summary["train_seconds_total"] - summary["train_seconds"] + seconds,
        "resumed": resumed,
        "env_steps": job.env_steps,
        "machine": machine_info(),  # where it finished (a resumed run may have started elsewhere)
    }
    _atomic_write_json(record, job.run_dir / "sweep_run.json")
    return seconds


def _seconds_total(timing: dict[str, Any]) -> float | None:
    """A run's training seconds summed over the invocations that resumed it, from its
    `sweep_run.json` (written before the sum was recorded: its one invocation's seconds)."""
    return timing.get("seconds_total", timing.get("seconds"))


def finished_timings(jobs: list[Job], statuses: list[str]) -> list[tuple[Job, float]]:
    """Every finished run (`statuses`: each job's `job_status`) with its training seconds
    summed over the invocations that resumed it (runs without a `sweep_run.json` are left
    out)."""
    spent = []
    for job, status in zip(jobs, statuses, strict=True):
        if status != "finished":
            continue
        seconds = _seconds_total(_read_json(job.run_dir / "sweep_run.json") or {})
        if seconds:
            spent.append((job, float(seconds)))
    return spent


def estimate_seconds_left(left: list[Job], spent: list[tuple[Job, float]], workers: int) -> float:
    """Wall-clock seconds the runs `left` should take, `workers` at a time, priced from
    `spent` (finished runs and their seconds): each run at the seconds per environment step of
    finished runs of the same algorithm on the same environment family, else of the same
    algorithm, else of all finished runs (the families differ 10x in cost per step, and so do
    the environments). Zero when nothing has finished yet."""
    rates: dict[Any, list[float]] = {}
    for job, seconds in spent:
        for key in ((job.algorithm, job.environment), job.algorithm, None):
            rate = rates.setdefault(key, [0.0, 0.0])
            rate[0] += seconds
            rate[1] += job.env_steps
    if not rates:
        return 0.0
    total = 0.0
    for job in left:
        for key in ((job.algorithm, job.environment), job.algorithm, None):
            if key in rates:
                seconds, steps = rates[key]
                total += job.env_steps * seconds / max(steps, 1.0)
                break
    return total / max(1, min(workers, len(left)))


def _train_selected(
    jobs: list[Job],
    selected: list[Job],
    results_path: Path,
    max_runs: int | None,
    verbose: bool,
    failed: list[str],
    workers: int,
    sweep_path: Path,
    record: Callable[[], Any],
) -> None:
    """Trains the selected unfinished runs in order, one progress line each (appending failed
    runs' keys to `failed`), and rebuilds the sweep's results and calls `record` (the summary)
    after every ending run. With
    `workers` > 1 up to that many runs train at once, each in a child process (see
    `_train_parallel`)."""
    statuses = [job_status(job) for job in jobs]  # reads each finished run's results once
    # runs not ended yet
    left = [j for j, s in zip(jobs, statuses, strict=True) if j in selected and s != "finished"]
    # Seconds and environment steps of finished runs, this invocation's and earlier ones'
    # (their `sweep_run.json`), which price the runs left (see `estimate_seconds_left`).
    spent = finished_timings(jobs, statuses)
    queue: list[tuple[str, Job]] = []
    for i, (job, status) in enumerate(zip(jobs, statuses, strict=True), 1):
        if job not in selected:
            continue
        head = f"[{i}/{len(jobs)}] {_describe(job)}"
        if status == "finished":
            print(f"{head}: finished earlier, skipped", flush=True)
            continue
        pid = busy_pid(job)
        if pid is not None:
            left.remove(job)
            print(f"{head}: being trained by another process (pid {pid}), skipped", flush=True)
            continue
        if max_runs is not None and len(queue) >= max_runs:
            print(f"stopping after {len(queue)} run(s) (--max-runs); run again to continue")
            break
        queue.append((head, job))
    if spent and left:
        eta = fmt_duration(estimate_seconds_left(left, spent, workers))
        print(
            f"{len(left)} run(s) left; sweep ETA {eta} at the pace of {len(spent)} finished "
            f"run(s), {workers} at a time",
            flush=True,
        )

    def finished(head: str, job: Job, seconds: float | None, error: str | None) -> None:
        left.remove(job)
        if error is not None:
            failed.append(job.key)
            record()
            print(f"{head}: FAILED after {fmt_duration(seconds or 0.0)}: {error}", flush=True)
            return
        if seconds:
            spent.append((job, seconds))
        collect_results(jobs, results_path)
        record()
        eta = estimate_seconds_left(left, spent, workers)
        tail = f"sweep ETA {fmt_duration(eta)}" if left else "sweep done"
        print(f"{head}: done in {fmt_duration(seconds or 0.0)}; {tail}", flush=True)

    if workers > 1 and len(queue) > 1:
        _train_parallel(queue, workers, sweep_path, results_path.parent, finished)
        return
    for head, job in queue:
        what = "resuming from its checkpoint" if _has_checkpoint(job) else "training"
        print(f"{head}: {what}...", flush=True)
        t0 = time.time()
        try:
            seconds = _train_job(job, verbose)
        except Exception as err:  # a failed run must not stop the sweep; KeyboardInterrupt does
            traceback.print_exc()
            finished(head, job, time.time() - t0, str(err))
            continue
        finished(head, job, seconds, None)


def _train_parallel(
    queue: list[tuple[str, Job]],
    workers: int,
    sweep_path: Path,
    out: Path,
    finished: Any,
) -> None:
    """Runs `queue` with up to `workers` child processes at once, in order: each child is
    `jaxmarl benchmark <file> --out <out> --worker <run folder>`, which trains that one run
    (as the serial path does) with its progress lines in the run folder's `sweep_worker.log`.
    `finished(head, job, seconds, error)` reports each ending run. Interrupted (Ctrl-C, or
    SIGTERM as a batch scheduler sends it), the children are terminated too (their runs resume
    from their checkpoints; one still alive after 30 s is killed) before the interruption
    propagates: no training process outlives the sweep."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pending = list(queue)
    running: dict[subprocess.Popen, tuple[str, Job, float, Path, Any]] = {}

    def terminated(signum, frame):  # SIGTERM: stop the children too, not orphan them
        raise KeyboardInterrupt(f"signal {signum}")

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminated)
    try:
        while pending or running:
            while pending and len(running) < workers:
                head, job = pending.pop(0)
                job.run_dir.mkdir(parents=True, exist_ok=True)
                log = job.run_dir / "sweep_worker.log"
                what = "resuming from its checkpoint" if _has_checkpoint(job) else "training"
                argv = [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "benchmark"]
                run = str(job.run_dir.relative_to(out / "runs"))
                argv += [str(sweep_path), "--out", str(out), "--worker", run]
                handle = open(log, "a")  # noqa: SIM115 (closed when the child ends)
                proc = subprocess.Popen(
                    argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd()
                )
                running[proc] = (head, job, time.time(), log, handle)
                print(f"{head}: {what} (process {proc.pid}, log {log})...", flush=True)
            time.sleep(0.5)
            for proc in [p for p in running if p.poll() is not None]:
                head, job, t0, log, handle = running.pop(proc)
                handle.close()
                seconds = time.time() - t0
                if proc.returncode == 0:
                    finished(head, job, seconds, None)
                    continue
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print("\n".join(f"  | {line}" for line in tail), flush=True)
                finished(head, job, seconds, f"exit status {proc.returncode} (log {log})")
    except BaseException:
        for proc in running:  # killed mid-interval, a run resumes from its last checkpoint
            if proc.poll() is None:
                proc.terminate()
        for proc, (*_, handle) in running.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            handle.close()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _select(jobs: list[Job], only: list[str] | None) -> list[Job]:
    if not only:
        return list(jobs)
    chosen = []
    for pattern in only:
        match = [
            j
            for j in jobs
            if fnmatch.fnmatchcase(j.key, pattern)
            or fnmatch.fnmatchcase(f"{j.label}/{j.task}", pattern)
        ]
        if not match:
            keys = ", ".join(dict.fromkeys(j.key for j in jobs))
            raise SweepError(f"--only {pattern!r} matches no run; runs: {keys}")
        chosen += [j for j in match if j not in chosen]
    return [j for j in jobs if j in chosen]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

_EPILOG = """\
A sweep file (see benchmarks/sweeps/example.toml):

  [sweep]                      # name, out, seeds (default 5), seed, seed_batch
  seeds = 3
  [report]                     # metric, normalise, source, reps, confidence, formats
  [defaults]                   # config fields for every run
  total_steps = 1_000_000
  [algorithms.ippo]            # one table per algorithm, with its overrides
  [algorithms.qmix]
  lr = 5e-4
  [tasks.lbf-8x8-2p-2f-coop]   # one table per task (an environment id), with its overrides
  env_kwargs = {time_limit = 50}
  [tasks.mpe-simple_spread.override.sac]   # per algorithm or family on this task
  env_id = "mpe-simple_spread-continuous"

Output: <out>/results.json (one marl-eval file), <out>/report/ (plots, tables),
<out>/runs/<algorithm>/<task>/ (config, metrics, checkpoints), plan.json, sweep.toml,
summary.json, runs.md and runs.csv (each finished run's absolute metric per seed and time).
Rerunning skips finished runs and resumes killed ones from their checkpoints.
"""


def add_subparser(subparsers: Any) -> None:
    """Registers `benchmark` on the `jaxmarl` command's subparsers."""
    p = subparsers.add_parser(
        "benchmark",
        help="run a sweep file: algorithms x tasks x seeds x budgets",
        description="Train every algorithm of a sweep file on every task (seeds vmapped), "
        "write one marl-eval JSON and the report (plots, performance profiles, probability "
        "of improvement, tables). Resumable: finished runs are skipped.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", help="the sweep file (.toml)")
    p.add_argument("--out", default=None, help="output folder (default: [sweep] out)")
    p.add_argument("--dry-run", action="store_true", help="print the run plan and exit")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ALGO/TASK",
        help="only these runs (glob patterns such as 'qmix/*'; repeatable)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rebuild results.json and the report from the finished runs "
        "(over the tasks every algorithm has finished, while the sweep is incomplete)",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        default=None,
        help="train at most this many runs, then stop (run again to continue)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train up to N runs at once, each in its own process with its output in the run "
        "folder's sweep_worker.log (default 1). One run leaves part of a multi-core machine idle",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also print each run's progress lines (with --jobs they are in each run's "
        "sweep_worker.log either way)",
    )
    # One run of a --jobs sweep, started by the parent process: trains the run in
    # <out>/runs/<RUN>, nothing else.
    p.add_argument("--worker", default=None, metavar="RUN", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_benchmark)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    def error(message: str) -> int:
        print(f"jaxmarl benchmark: error: {message}", file=sys.stderr)
        return 2

    if args.max_runs is not None and args.max_runs < 1:
        return error(f"--max-runs must be >= 1, got {args.max_runs}")
    if args.jobs < 1:
        return error(f"--jobs must be >= 1, got {args.jobs}")
    if args.report_only and args.dry_run:
        return error("--report-only and --dry-run exclude each other")
    try:
        sweep = parse_sweep(args.sweep)
        out = Path(args.out) if args.out else default_out(sweep)
        jobs = plan_sweep(sweep, out)
        selected = _select(jobs, args.only)
        stale = [(j, config_mismatch(j)) for j in jobs]
        stale = [
            f"{j.run_dir} ({j.key}) was trained with another config: " + "; ".join(diff[:5])
            for j, diff in stale
            if diff
        ]
        if stale:
            raise SweepError(
                "runs on disk differ from the sweep file (delete them to retrain, or use "
                "another --out):\n  " + "\n  ".join(stale)
            )
    except SweepError as err:
        return error(str(err))
    if args.dry_run:
        print_plan(sweep, jobs, selected, out, args.jobs)
        return 0
    if args.worker is not None:
        match = [j for j in jobs if j.run_dir == out / "runs" / args.worker]
        if len(match) != 1:
            return error(f"--worker {args.worker!r} names no run of the sweep")
        try:
            seconds = _train_job(match[0], verbose=True)  # into the run's sweep_worker.log
        except Exception:
            traceback.print_exc()
            return 1
        print(f"{match[0].key}: done in {fmt_duration(seconds)}", flush=True)
        return 0
    return run_sweep(
        sweep,
        jobs,
        out,
        only=args.only,
        max_runs=args.max_runs,
        verbose=args.verbose,
        report_only=args.report_only,
        workers=args.jobs,
    )
