"""Benchmark settings: a persistent JAX compilation cache is NOT used here, so compile
times are measured cold."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
