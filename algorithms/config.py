"""Typed, frozen algorithm configs: field docs, command-line overrides, validation and JSON I/O."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


def field(default: Any, help: str, choices: Sequence[Any] | None = None, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation (shown by `--help`) and allowed values."""
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta, **kwargs)


def field_docs(cls: type) -> dict[str, str]:
    """`{field name: documentation}` of a config dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


# ---------------------------------------------------------------------------------------------
# Parsing values from strings
# ---------------------------------------------------------------------------------------------


def parse_int(text: str) -> int:
    """An integer from `"128"`, `"2e6"` or `"1_000_000"`; ValueError if not integral."""
    text = str(text).replace("_", "").strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"expected an integer, got {text!r}")
    return int(value)


def parse_bool(text: str) -> bool:
    """`true/false/1/0/yes/no/on/off` (case-insensitive)."""
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean, got {text!r}")


def parse_int_tuple(text: str) -> tuple[int, ...]:
    """`"128,128"` -> `(128, 128)`; an empty string gives `()`."""
    text = str(text).strip().strip("()[]")
    return tuple(parse_int(part) for part in text.split(",") if part.strip())


def parse_json_dict(text: str) -> dict:
    """A JSON object, e.g. `'{"time_limit": 50}'`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"expected a JSON object, got {text!r} ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text!r}")
    return value


def _parser_for(tp: Any):
    origin = typing.get_origin(tp)
    if tp is bool:
        return parse_bool
    if tp is int:
        return parse_int
    if tp is float:
        return float
    if tp is str:
        return str
    if origin is tuple:
        return parse_int_tuple
    if tp is dict or origin is dict:
        return parse_json_dict
    raise TypeError(f"no command-line parser for field type {tp!r}")


def _argparse_type(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    aliases: Mapping[str, Sequence[str]] | None = None,
    skip: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Adds one `--field-name` option per dataclass field (defaults suppressed, so only given
    options override). Booleans get `--flag/--no-flag`; tuples take `128,128`; dicts JSON.

    Args:
        parser: the argparse parser (or group).
        cls: the config dataclass.
        aliases: extra option strings per field name, e.g. `{"env_id": ["--env"]}`.
        skip: field names not to expose.
        defaults: the defaults the help shows where they differ from the class's (an
            algorithm's preset, e.g. rec_mappo's `network="gru"`).
    """
    hints = typing.get_type_hints(cls)
    aliases = aliases or {}
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        names = [f"--{f.name.replace('_', '-')}", *aliases.get(f.name, ())]
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
        tp = hints[f.name]
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(*names, type=_argparse_type(_parser_for(tp)), **kwargs)


def overrides_from_args(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    """The config fields present in a parsed namespace (options the user gave)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(namespace).items() if k in names}


def parse_overrides(cls: type, pairs: Sequence[str]) -> dict[str, Any]:
    """`["lr=3e-4", "hidden_sizes=64,64"]` -> typed overrides; ValueError on unknown keys."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"override {pair!r} is not of the form key=value")
        key, text = pair.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        if key not in hints:
            raise ValueError(f"unknown config field {key!r} for {cls.__name__}")
        out[key] = _parser_for(hints[key])(text)
    return out


# ---------------------------------------------------------------------------------------------
# Dict / JSON round trip
# ---------------------------------------------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(cls: type[C], data: Mapping[str, Any], strict: bool = True) -> C:
    """Builds `cls` from a dict (as written by `to_dict`), converting lists back to tuples.

    Unknown keys raise ValueError when `strict`, else are dropped.
    """
    upgrade = getattr(cls, "upgrade_dict", None)
    if upgrade is not None:  # fields renamed or replaced since a config.json was written
        data = upgrade(dict(data))
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown and strict:
        raise ValueError(f"unknown config fields for {cls.__name__}: {unknown}")
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            continue
        if typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def save_config(config: Any, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Writes `{"config_class": name, "config": ..., **extra}` as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config_class": type(config).__name__, "config": to_dict(config), **(extra or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load_config_dict(path: str | Path) -> dict[str, Any]:
    """The JSON payload written by `save_config`."""
    return json.loads(Path(path).read_text())
