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

A horizon sweep repeats this for growing horizons, all from one compiled
function (``RewardsUpTo``): pathwise variance that
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

from .types import same_types
from .types import State


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


def time_per_call(fn: Callable, *args, repeats: int = 5, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of an already-compiled call (the first call, compile included, is discarded).

    ``clock`` is wall time by default; ``time.process_time`` counts the CPU time of every thread of the
    process instead, the steadier number on a shared machine.
    """
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = clock()
        jax.block_until_ready(fn(*args))
        times.append(clock() - start)
    return sorted(times)[len(times) // 2]


class RewardsUpTo:
    """``env`` with every reward after step ``horizon`` set to zero; ``horizon`` may be traced.

    A rollout of H_max steps of this env has return J_H, so one compiled
    estimator of horizon H_max serves every H ≤ H_max (``samples_up_to``).
    ``active_steps`` = ``horizon``: ``diffpg.rollouts.unroll`` does not even
    compute the steps after it, so a horizon H costs about H steps and a
    non-finite step after H cannot spoil its estimates. The rewards are masked
    all the same, for an estimator that steps the environment itself; there a
    non-finite derivative after step H still spoils the backward pass
    (0 · NaN), so callers check the samples.
    """

    def __init__(self, env, horizon):
        self.env, self.horizon = env, horizon
        self.active_steps = horizon
        self.observation_size, self.action_size = env.observation_size, env.action_size

    def reset(self, key):
        inner = self.env.reset(key)
        return State(obs=inner.obs, reward=inner.reward, done=inner.done, inner=inner, t=jnp.zeros((), jnp.int32))

    def step(self, state, action):
        inner = same_types(self.env.step(state.inner, action), state.inner)
        reward = jnp.where(state.t < self.horizon, inner.reward, jnp.zeros_like(inner.reward))
        return State(obs=inner.obs, reward=reward, done=inner.done, inner=inner, t=state.t + 1)


def samples_up_to(build: Callable[[object, int], Callable], env, longest: int, repeats: int,
                  compiler_options: dict | None = None) -> Callable:
    """One compiled ``samples(key, params, horizon)`` for every horizon ≤ ``longest``.

    ``build(env, horizon) -> estimate``. The estimator is built once at
    ``longest`` on ``RewardsUpTo(env, horizon)`` with a traced ``horizon``, so
    the table at one horizon and a sweep over many cost a single compile.
    Returns ``gradient_samples``' (array [R, P], diagnostics with leading axis R).
    ``compiler_options`` go to ``jax.jit`` (XLA's options for this one program).
    """

    def samples(key, params, horizon):
        return gradient_samples(build(RewardsUpTo(env, horizon), longest), key, params, repeats)

    return jax.jit(samples, compiler_options=compiler_options)


def horizon_sweep(build: Callable[[object, int], Callable], env, horizons: Sequence[int], key, params,
                  repeats: int):
    """Samples of ``build(env, H)``'s estimates at every horizon H, from one compiled function.

    Returns (samples [len(horizons), repeats, P], diagnostics with leading axes
    [len(horizons), repeats]), computed with ``samples_up_to`` at the longest horizon.
    """
    samples = samples_up_to(build, env, max(horizons), repeats)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *(samples(key, params, h) for h in horizons))
