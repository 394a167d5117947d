"""Orbax checkpoints: keep the latest N full training states plus the best policy parameters.

Multi-process runs (`jax.distributed`): every process constructs the same checkpointers in the
same order and calls `save`/`restore` together, as orbax's multi-process API requires (each
process writes the shards it holds; the primary process writes metadata and finalises). Every
series gets its own barrier-key prefix, so two series saving the same step at once (the latest
state and the best parameters after an evaluation) never share a coordination barrier, which
orbax's asynchronous commit would reject (`Barrier _async_write_complete.<step> is already
ongoing`).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import jax

#: Numbers the checkpointers of this process in construction order; under SPMD every process
#: constructs them in the same order, so `<series>_<n>` names the same series everywhere.
_SERIES = itertools.count()


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: slow to import, optional for users

    return ocp


def abstract_like(tree: Any, shardings: Any | None = None) -> Any:
    """`ShapeDtypeStruct`s (with shardings, if given) describing `tree` for restoring."""
    if shardings is None:
        return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
    return jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


class Checkpointer:
    """Saves and restores `(state, metadata)` pairs under `directory/<step>/`.

    Args:
        directory: folder of this checkpoint series (created if missing).
        keep: how many of the most recent checkpoints to keep (>= 1).
        best_metric: when set, keeps only the checkpoint with the highest value of this
            metadata entry instead of the most recent ones (used for best parameters).
    """

    def __init__(self, directory: str | Path, keep: int = 3, best_metric: str | None = None):
        if keep < 1:
            raise ValueError(f"Checkpointer: keep must be >= 1, got {keep}")
        ocp = _ocp()
        self.directory = Path(directory).absolute()
        series = re.sub(r"[^A-Za-z0-9]", "_", self.directory.name)
        self.barrier_prefix = f"jaxmarl_{series}_{next(_SERIES)}"
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            best_fn=(lambda m: float(m[best_metric])) if best_metric else None,
            best_mode="max",
            keep_checkpoints_without_metrics=False if best_metric else True,
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                barrier_sync_key_prefix=self.barrier_prefix
            ),
        )
        self._best_metric = best_metric
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, metadata: dict[str, Any]) -> None:
        """Writes checkpoint `step` (asynchronously; `wait()` blocks until it is on disk)."""
        ocp = _ocp()
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(dict(metadata))
        )
        metrics = {self._best_metric: metadata[self._best_metric]} if self._best_metric else None
        self._manager.save(int(step), args=args, metrics=metrics)

    def latest_step(self) -> int | None:
        """The newest saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The best step by `best_metric` (the latest when no metric is tracked)."""
        if self._best_metric is None:
            return self.latest_step()
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, step: int | None, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """Restores `(state, metadata)` of `step` (latest if None) into `abstract_state`'s
        structure, shapes, dtypes and shardings."""
        ocp = _ocp()
        step = self.latest_step() if step is None else int(step)
        if step is None:
            raise ValueError(f"no checkpoint found in {self.directory}")
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), metadata=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], dict(restored["metadata"])

    def restore_metadata(self, step: int | None = None) -> dict[str, Any]:
        """Only the JSON metadata of `step` (latest if None)."""
        ocp = _ocp()
        step = self.latest_step() if step is None else int(step)
        if step is None:
            raise ValueError(f"no checkpoint found in {self.directory}")
        restored = self._manager.restore(
            step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
        )
        return dict(restored["metadata"])

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
