"""Whole episodes of the deterministic policy: the returns an evaluation measures.

    R_j = Σ_{t < H} r_t^j,    s_0^j = env.reset(k_j),  a_t = mode_θ(normalize(o_t)),

for ``episodes`` start keys k_j split from ``key``. Pure, so that the trainer can compose it inside its
jitted loop (``eval/return``) and ``evaluate`` can jit it alone.
"""
from __future__ import annotations

import jax

from ..rollouts import unroll
from .window import Acting


def episode_returns(key, env, policy, params, obs_stats, episodes: int, horizon: int) -> jax.Array:
    """[episodes] returns R_j of the deterministic policy from ``env.reset(k_j)``; pure, to compose in a jit."""
    def one(k):
        k_reset, k_steps = jax.random.split(k)
        acting = Acting(policy, obs_stats, stochastic=False)
        _, traj = unroll(k_steps, env, acting, params, env.reset(k_reset), horizon)
        return traj.reward.sum()

    return jax.vmap(one)(jax.random.split(key, episodes))
