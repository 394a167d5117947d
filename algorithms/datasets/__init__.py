"""Offline datasets: recording policies into Vaults, reading them, dataset tools, Flashbax I/O.

Nothing heavy is imported here until used (the `jaxmarl` CLI imports `datasets.cli` only).
"""

from jaxmarl_envs.algorithms.datasets.core import (
    DATASET_LAYOUT,
    DatasetMismatchError,
    EpisodeTable,
    Integrity,
    check_dataset_matches_env,
    check_integrity,
    episode_table,
    iter_dataset,
    load_dataset,
)
from jaxmarl_envs.algorithms.datasets.record import TIERS, record_dataset

__all__ = [
    "DATASET_LAYOUT",
    "TIERS",
    "DatasetMismatchError",
    "EpisodeTable",
    "Integrity",
    "check_dataset_matches_env",
    "check_integrity",
    "episode_table",
    "iter_dataset",
    "load_dataset",
    "record_dataset",
]
