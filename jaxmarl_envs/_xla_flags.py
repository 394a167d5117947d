"""XLA flags the project needs before JAX starts its CPU backend.

XLA's CPU "concurrency-optimised scheduler" (jaxlib 0.10.x) can deadlock a program: every
runtime thread waits and the computation never finishes. We hit it with multi-seed PPO
training (`vmap` over seeds of a scan over updates) on Robot Warehouse, deterministically for
some configurations; disabling the scheduler fixes it. We add the flag to `XLA_FLAGS` at import
unless the user already set that flag, or set `JAXMARL_KEEP_XLA_FLAGS=1` to leave
`XLA_FLAGS` untouched. It only affects the CPU backend, and only if imported before JAX
creates that backend (importing `jaxmarl_envs` first is enough).
"""

from __future__ import annotations

import os

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def apply() -> None:
    """Adds the project's CPU flags to `XLA_FLAGS` (idempotent)."""
    if os.environ.get("JAXMARL_KEEP_XLA_FLAGS") == "1":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_SCHEDULER_FLAG}".strip()
