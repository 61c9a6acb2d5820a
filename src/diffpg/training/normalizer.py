"""Running observation normalization: ô = (o − μ) / √(σ² + ε).

The statistics merge a batch of B observations with batch mean m_B and
variance v_B into the running (count n, mean μ, variance σ²) by the parallel
formula of Chan, Golub & LeVeque (1979):

    δ = m_B − μ,   n' = n + B,   μ' = μ + δ B / n',
    σ²' = (σ² n + v_B B + δ² n B / n') / n'

which is what SHAC (Xu et al. 2022) and Gym's ``RunningMeanStd`` use. The
statistics are never differentiated: they are constants inside a loss.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

EPSILON = 1e-8


class RunningStats(NamedTuple):
    count: jax.Array
    mean: jax.Array
    var: jax.Array


def init(size: int) -> RunningStats:
    """Empty statistics (a tiny prior count keeps the first merge finite)."""
    return RunningStats(count=jnp.asarray(1e-4, jnp.float32), mean=jnp.zeros((size,), jnp.float32),
                        var=jnp.ones((size,), jnp.float32))


def update(stats: RunningStats, batch, mask=None) -> RunningStats:
    """Merge ``batch`` (any leading axes, last axis the observation) into ``stats``.

    ``mask`` (the batch's leading axes) keeps only the observations where it is 1: a window's steps
    after its episode ended repeat the final observation, which is no observation of the task.
    """
    batch = jax.lax.stop_gradient(batch).reshape(-1, stats.mean.shape[0])
    weight = jnp.ones(batch.shape[:1]) if mask is None else jax.lax.stop_gradient(mask).reshape(-1)
    b = weight.sum()
    batch_mean = (weight[:, None] * batch).sum(0) / jnp.maximum(b, 1.0)
    batch_var = (weight[:, None] * (batch - batch_mean) ** 2).sum(0) / jnp.maximum(b, 1.0)
    delta = batch_mean - stats.mean
    count = stats.count + b
    mean = stats.mean + delta * b / count
    var = (stats.var * stats.count + batch_var * b + delta**2 * stats.count * b / count) / count
    return RunningStats(count, mean, var)


def normalize(stats: RunningStats | None, obs):
    """ô = (o − μ)/√(σ² + ε); the identity when ``stats`` is None (normalization off)."""
    if stats is None:
        return obs
    stats = jax.lax.stop_gradient(stats)
    mean, var = (jnp.broadcast_to(x, jnp.shape(obs)) for x in (stats.mean, stats.var))  # any leading batch axes
    return (obs - mean) / jnp.sqrt(var + EPSILON)
