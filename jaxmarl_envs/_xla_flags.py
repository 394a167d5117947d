"""XLA flags the project needs before JAX starts its CPU backend.

XLA's CPU "concurrency-optimised scheduler" (jaxlib 0.10.x) can deadlock a program: every
runtime thread waits and the computation never finishes. We hit it with multi-seed PPO
training (`vmap` over seeds of a scan over updates) on Robot Warehouse, deterministically for
some configurations; disabling the scheduler fixes it. We add the flag to `XLA_FLAGS` at import
unless the user already set that flag, or set `JAXMARL_KEEP_XLA_FLAGS=1` to leave
`XLA_FLAGS` untouched. It only affects the CPU backend, and only if imported before JAX
creates that backend (importing `jaxmarl_envs` first is enough).

Opt-in: `JAXMARL_CPU_SYNC_DISPATCH=1` in the environment turns off JAX's asynchronous CPU
dispatch (`jax_cpu_enable_async_dispatch=False`, a JAX option it does not read from the
environment itself) when `jaxmarl_envs` is imported, so every computation runs inline in the
calling thread. By default XLA's CPU client runs a computation inline only when its cost model
counts under 1,000 flops and otherwise hands it to a worker thread, which costs tens of
microseconds per call in a loop that waits for each result: one environment stepped from
Python (the Gymnasium, PettingZoo and dm-env adapters, a batch-1 loop over a jitted step). It
is a process-wide JAX setting, so it is off unless asked for; it only takes effect before JAX
starts its CPU backend (a warning says so otherwise).
"""

from __future__ import annotations

import os

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
SYNC_DISPATCH_ENV = "JAXMARL_CPU_SYNC_DISPATCH"


def apply() -> None:
    """Adds the project's CPU flags to `XLA_FLAGS` (idempotent) and applies the opt-in
    synchronous dispatch."""
    if os.environ.get("JAXMARL_KEEP_XLA_FLAGS") != "1":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_enable_concurrency_optimized_scheduler" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {CPU_SCHEDULER_FLAG}".strip()
    if os.environ.get(SYNC_DISPATCH_ENV) == "1":
        _sync_dispatch()


def _sync_dispatch() -> None:
    """`jax_cpu_enable_async_dispatch=False`, or a warning if the CPU backend already runs."""
    import warnings

    import jax

    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # a JAX without it: set the option and trust the import order
        backends_are_initialized = bool
    if backends_are_initialized():
        warnings.warn(
            f"{SYNC_DISPATCH_ENV}=1 has no effect: JAX's backends were started before "
            "jaxmarl_envs was imported (import jaxmarl_envs first, or call "
            "jax.config.update('jax_cpu_enable_async_dispatch', False) before any JAX "
            "computation).",
            stacklevel=3,
        )
        return
    jax.config.update("jax_cpu_enable_async_dispatch", False)
