"""XLA's own Cholesky factorization and triangular solve on the CPU, instead of jaxlib's LAPACK calls.

MJX's step factors and solves with ``jax.scipy.linalg.cho_factor`` / ``cho_solve`` (the mass
matrix, and the Newton solve of the constraints), and on the CPU jaxlib 0.10 lowers both to LAPACK
calls (``lapack_?potrf_ffi``, ``lapack_?trsm_ffi``). For a batch (under ``vmap``) such a call splits
the batch into chunks on XLA's intra-op thread pool and blocks until they are done
(``jax::ParallelBatchMap``). When XLA runs as many independent batched calls at once as the pool has
threads (two on a 2-core machine), every pool thread waits for chunks that no free thread is left to
run, and the process hangs with every thread idle. The check's single-step derivatives (a vmap of the
step, its pullback, its JVP and its perturbations, side by side in one program) did exactly that on
Gymnasium's Hopper and HalfCheetah: the main thread waited on the result forever, both pool threads
stood in ``BlockingCounter::Wait`` under ``lapack_dtrsm_ffi``.

``native_linalg()`` lowers both primitives to the HLO ops ``cholesky`` and ``triangular-solve``, which
XLA expands into its own loops, for the programs compiled inside it, and puts jaxlib's rules back on
exit. The arithmetic is the same factorization and the same substitution; for the small matrices of
a robot (nv ≤ 30) the expanded loops cost no more than the library calls.
"""
from __future__ import annotations

import contextlib

from jax._src.interpreters import mlir
from jax._src.lax import linalg

PRIMITIVES = (linalg.cholesky_p, linalg.triangular_solve_p)
"""The primitives whose CPU lowering calls LAPACK in MJX's step (and in the derivatives of a Cholesky factor)."""


@contextlib.contextmanager
def native_linalg():
    """Inside: programs lowered for the CPU factor and solve with XLA's HLO ops, not jaxlib's LAPACK calls.

    A program compiled inside keeps its lowering after the block ends; the process's rules are restored.
    """
    cpu = mlir._platform_specific_lowerings["cpu"]
    saved = {p: cpu.pop(p) for p in PRIMITIVES if p in cpu}
    try:
        yield
    finally:
        cpu.update(saved)
