"""Test-wide settings: headless rendering and a persistent JAX compilation cache."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import jax  # noqa: E402

import jaxmarl_envs  # noqa: E402,F401  sets XLA flags before the backend starts

# Compilation dominates the suite on CPU; reuse compiled programs across runs. The cache lives
# outside the repository (override with JAXMARL_TEST_CACHE, disable with JAXMARL_TEST_CACHE=off).
_cache = os.environ.get(
    "JAXMARL_TEST_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "jaxmarl_envs", "jax")
)
if _cache != "off":
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
