"""Offline datasets: recording policies into Vaults, reading them, dataset tools, Flashbax I/O.

The names below load their module on first use (PEP 562), so importing the package (as the
`jaxmarl` command does for `datasets.cli`) imports neither JAX nor the tools.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DATASET_LAYOUT": "core",
    "DatasetMismatchError": "core",
    "EpisodeTable": "core",
    "Integrity": "core",
    "check_dataset_matches_env": "core",
    "check_integrity": "core",
    "episode_table": "core",
    "iter_dataset": "core",
    "load_dataset": "core",
    "TIERS": "record",
    "record_dataset": "record",
    "combine_datasets": "tools",
    "coverage_summary": "tools",
    "dataset_info": "tools",
    "describe_dataset": "tools",
    "list_datasets": "tools",
    "return_summary": "tools",
    "returns_by_tier": "tools",
    "subsample_dataset": "tools",
    "export_flashbax": "flashbax_io",
    "import_flashbax": "flashbax_io",
    "read_flashbax": "flashbax_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return __all__
