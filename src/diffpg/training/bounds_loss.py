"""The bounds loss: keep the policy's pre-squash mean where tanh still has a gradient.

A tanh-squashed action c · tanh(μ) saturates for large |μ|, and there
∂a/∂μ = c (1 − tanh² μ) vanishes, so a pathwise gradient can no longer move
the policy out of a bad saturated action (on pendulum: full torque held
against gravity near the bottom, a local optimum of short windows). The
bounds loss of rl_games (Makoviichuk & Makoviychuk 2021, used for Isaac Gym
and DiffRL baselines) penalizes the mean beyond a soft bound b,

    L_b(θ) = E_s[ Σ_i max(|μ_θ(s)_i| − b, 0)² ],

with b = 3 for a squashed policy (tanh 3 = 0.995 of the bound, where tanh' is
still 0.01) and b = 1.1 c for an unsquashed one (rl_games' 1.1 for actions in
[−1, 1]).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .normalizer import normalize

SQUASHED_SOFT_BOUND = 3.0
UNSQUASHED_SOFT_BOUND = 1.1


def bounds_loss(policy, params, obs_stats, obs):
    """L_b averaged over observations ``obs`` (any leading axes); policy is a diffpg GaussianMLP."""
    flat = normalize(obs_stats, obs.reshape(-1, obs.shape[-1]))
    mean = jax.vmap(lambda o: policy.mean_std(params, o)[0])(flat)
    bound = SQUASHED_SOFT_BOUND if policy.squash else UNSQUASHED_SOFT_BOUND * policy.action_scale
    return jnp.mean(jnp.sum(jnp.maximum(jnp.abs(mean) - bound, 0.0) ** 2, axis=-1))
