"""Benchmark settings: a persistent JAX compilation cache is NOT used here, so compile
times are measured cold."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import jaxmarl_envs  # noqa: E402,F401  sets XLA flags before the backend starts
