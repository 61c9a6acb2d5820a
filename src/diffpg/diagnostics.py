"""Which estimator to trust on this problem: variance, signal-to-noise, agreement, and horizon sweeps.

Given an estimator ``estimate(key, params) -> (grad, diagnostics)``, repeating
it with R independent keys gives samples ĝ_1 … ĝ_R of the estimate itself.
From them:

    mean      ḡ = (1/R) Σ ĝ_r                       (what the estimator points at)
    variance  V = tr Cov[ĝ] ≈ 1/(R−1) Σ ‖ĝ_r − ḡ‖²   (how much one estimate scatters)
    SNR       ‖ḡ‖ / √V                              (> 1: one estimate mostly points the right way)
    bias      ḡ − g*  against a reference g*, with standard error √(V/R) per coordinate

(Roberts & Tedrake 2009 and Rainforth et al. 2018 use the SNR this way.) The
per-rollout variance every estimator reports in its own diagnostics is V · N
for N independent rollouts per estimate.

A horizon sweep repeats this for growing horizons: pathwise variance that
grows exponentially with H is the signature of chaos (Parmas et al. 2018;
Suh et al. 2022); a score-function variance that grows with H is the price of
crediting every action with the whole return.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def gradient_samples(estimate: Callable, key, params, repeats: int):
    """R independent estimates, flattened: (array [R, P], diagnostics with leading axis R)."""
    keys = jax.random.split(key, repeats)

    def one(k):
        grad, diag = estimate(k, params)
        return ravel_pytree(grad)[0], diag

    return jax.lax.map(one, keys)


def statistics(samples) -> dict:
    """Mean, variance (trace of covariance), SNR and per-coordinate standard error of flattened samples [R, P]."""
    r = samples.shape[0]
    mean = samples.mean(0)
    var_coord = samples.var(0, ddof=1)
    variance = var_coord.sum()
    return {"mean": mean, "variance": variance, "snr": jnp.linalg.norm(mean) / jnp.sqrt(variance),
            "stderr": jnp.sqrt(var_coord / r)}


def cosine(a, b) -> jax.Array:
    """Cosine similarity of two gradients (pytrees or flat arrays)."""
    a, b = ravel_pytree(a)[0], ravel_pytree(b)[0]
    return a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b))


def z_scores(samples, reference) -> jax.Array:
    """(ḡ − g*) / SE per coordinate: the test statistic of "this estimator is unbiased for g*"."""
    s = statistics(samples)
    return (s["mean"] - ravel_pytree(reference)[0]) / s["stderr"]


def time_per_call(fn: Callable, *args, repeats: int = 5) -> float:
    """Median wall seconds of an already-compiled call (the first call, compile included, is discarded)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def horizon_sweep(build: Callable[[int], Callable], horizons: Sequence[int], key, params,
                  repeats: int) -> list[dict]:
    """For each horizon H, the statistics of ``build(H)``'s estimates: rows of horizon, variance, snr, norm."""
    rows = []
    for horizon in horizons:
        samples, diag = jax.jit(gradient_samples, static_argnums=(0, 3))(build(horizon), key, params, repeats)
        s = statistics(samples)
        rows.append({"horizon": horizon, "variance": float(s["variance"]), "snr": float(s["snr"]),
                     "grad_norm": float(jnp.linalg.norm(s["mean"])),
                     "per_rollout_variance": float(jnp.nanmean(diag["grad_variance"])),
                     "return": float(diag["return"].mean())})
    return rows
