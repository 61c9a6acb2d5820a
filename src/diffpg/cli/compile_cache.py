"""Compile once per machine, not once per run: JAX's persistent compilation cache, for the CLI.

Compiling dominates a short command on the CPU (seconds per estimator or
training loop). With the cache on, XLA's compiled programs are kept under
``$XDG_CACHE_HOME/diffpg/jax`` (``~/.cache/diffpg/jax`` by default) and a
later run with the same programs loads them instead of compiling again.

The setting is process-wide, so only a command, which owns its process, turns
it on; a library call (``diffpg.train``) never does. XLA's cache is left to
grow: JAX's own size limit (``jax_compilation_cache_max_size``) fails to write
into a directory that it did not create (no access-time files there).
"""
from __future__ import annotations

import os
from pathlib import Path

import jax


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffpg" / "jax"


def enable() -> None:
    """Turn the cache on for every program this process compiles, however small."""
    jax.config.update("jax_compilation_cache_dir", str(cache_dir()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
