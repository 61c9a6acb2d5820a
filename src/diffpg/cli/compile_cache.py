"""Compile once per machine, not once per run: JAX's persistent cache, and stored traced programs.

Compiling dominates a short command on the CPU (seconds per estimator or
training loop). With the cache on, XLA's compiled programs are kept under
``$XDG_CACHE_HOME/diffpg/jax`` (``~/.cache/diffpg/jax`` by default) and a
later run with the same programs loads them instead of compiling again.

Finding a compiled program in that cache still needs the program, so a
command would trace and lower its Python functions every time (about a
second for the training loop). ``stored`` skips that too: it keeps a
``jax.export`` of the traced function under ``$XDG_CACHE_HOME/diffpg/exported``,
named by a digest of everything that can change the trace (diffpg's own
source files, the versions of the libraries that trace, JAX's settings, the
function's name and argument shapes, and what the caller adds, such as the
training config). A later run deserializes it (milliseconds), and XLA then
finds its compiled form in the persistent cache. The stored program is the
same StableHLO that tracing would give, so the results are bit for bit those
of ``jax.jit(fn)``.

The stored programs are cut back to the ``MAX_STORED`` most recently used
(every edit of diffpg's sources makes new ones). XLA's cache is left to grow:
JAX's own size limit (``jax_compilation_cache_max_size``) fails to write
into a directory that it did not create (no access-time files there).
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Callable

MAX_STORED = 64
"""Stored programs kept; the least recently used go first (each is 30 to 80 KB for training)."""
_TRACING_LIBRARIES = ("jax", "jaxlib", "numpy", "flax", "optax", "numpyro")
_JAX_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
                 "jax_threefry_partitionable", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffpg" / "jax"


def enable() -> None:
    """Turn the cache on for every program this process compiles, however small."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@functools.cache
def _source_digest() -> bytes:
    """SHA-256 of every Python file of the diffpg package, so that an edited diffpg never reuses a stale trace."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


def _digest(name: str, args, salt: str) -> str:
    import jax

    parts = [name, salt, jax.default_backend(), f"devices={jax.device_count()}", str(jax.tree.structure(args)),
             *(f"{x.shape}{x.dtype}" for x in jax.tree.leaves(args)),
             *(f"{lib}={metadata.version(lib)}" for lib in _TRACING_LIBRARIES),
             *(f"{flag}={getattr(jax.config, flag, None)}" for flag in _JAX_SETTINGS)]
    digest = hashlib.sha256(_source_digest())
    digest.update("\n".join(parts).encode())
    return digest.hexdigest()[:32]


def exported(name: str, args: tuple, trace: Callable[[], Callable], *, salt: str = ""):
    """The ``jax.export.Exported`` stored for ``name`` at ``args``, or ``trace()``'s function exported and stored.

    ``trace()`` is called only when nothing is stored (so a caller can leave
    its heavy imports to it). The function it returns takes ``args`` (arrays,
    or ``jax.ShapeDtypeStruct`` for their shapes) and returns arrays in tuples,
    lists and dicts (what ``jax.export`` can store). ``salt`` must name
    whatever else the function closes over that changes its trace (a config, a
    chunk length). An unreadable stored file is exported again.
    """
    import jax
    from jax import export

    path = cache_dir().parent / "exported" / f"{name}-{_digest(name, args, salt)}.bin"
    try:
        program = export.deserialize(bytearray(path.read_bytes()))
        os.utime(path)  # recently used: kept by _prune
        return program
    except Exception:  # missing, truncated or from another version: trace it (again)
        pass
    program = export.export(jax.jit(trace()))(*args)
    try:  # write, then rename: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(program.serialize())
        os.replace(tmp, path)
        _prune(path.parent, MAX_STORED)
    except OSError:  # a read-only cache only costs the next run the trace
        pass
    return program


def compiled(program, args: tuple, compiler_options=None) -> Callable:
    """An exported ``program`` compiled for ``args`` (found in XLA's persistent cache when enabled)."""
    import jax

    if program.nr_devices == 1:
        return jax.jit(program.call, compiler_options=compiler_options).lower(*args).compile()
    from ..sharding import batch_mesh  # a program over every device (diffpg.sharding): its arguments on them all

    everywhere = jax.sharding.NamedSharding(batch_mesh(), jax.sharding.PartitionSpec())
    executable = jax.jit(program.call, in_shardings=everywhere, out_shardings=everywhere,
                         compiler_options=compiler_options).lower(*args).compile()
    return lambda *arrays: executable(*jax.device_put(arrays, everywhere))


def result_shape(program):
    """What an exported ``program`` returns, as a tree of ``jax.ShapeDtypeStruct``."""
    import jax

    return jax.tree.unflatten(program.out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in program.out_avals])


def stored(name: str, fn: Callable, args: tuple, *, salt: str = "", compiler_options=None) -> Callable:
    """``jax.jit(fn, compiler_options=...)`` compiled for ``args``, traced at most once per machine
    (``exported``, then ``compiled``); it takes arrays of exactly those shapes."""
    return compiled(exported(name, args, lambda: fn, salt=salt), args, compiler_options)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used stored programs in ``folder``."""
    files = sorted(folder.glob("*.bin"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[keep:]:
        stale.unlink(missing_ok=True)
