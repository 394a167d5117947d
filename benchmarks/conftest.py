"""Benchmark settings: a persistent JAX compilation cache is NOT used here, so compile
times are measured cold."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# Sets XLA flags before the backend starts, and with JAXMARL_CPU_SYNC_DISPATCH=1 in the
# environment turns off JAX's asynchronous CPU dispatch (jaxmarl_envs/_xla_flags.py).
import jaxmarl_envs  # noqa: E402,F401
