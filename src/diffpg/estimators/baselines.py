"""Baselines b_t for score-function terms: control variates that add no bias.

A score-function term ∇θ log p(w_t) · (G_t − b_t) stays unbiased for any b_t
that does not depend on the random variable w_t or on anything drawn after
it, because E[∇θ log p(w_t) | past] = 0. The choices, shared by every
estimator that forms score-function terms over a batch of M rollouts:

- ``"none"``: b_t = 0.
- ``"leave_one_out"``: b_t^i = (1/(M−1)) Σ_{j≠i} G_t^j, the mean reward-to-go of the
  *other* rollouts (Kool et al., 2019, "Buy 4 REINFORCE samples, get a baseline
  for free"); unbiased because rollout i's baseline is independent of rollout i.
- a callable ``value(obs) -> scalar``: b_t = V(o_t), a state-value function.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ConfigError

BASELINES = ("none", "leave_one_out")


def check_baseline(baseline, batch: int, estimator: str = "this estimator") -> None:
    """One sentence for a baseline that is unknown or cannot be formed from ``batch`` rollouts."""
    if not callable(baseline) and baseline not in BASELINES:
        raise ConfigError(f"baseline must be one of {BASELINES} or a callable value(obs), got {baseline!r}")
    if baseline == "leave_one_out" and batch < 2:
        raise ConfigError(f"{estimator} with the leave_one_out baseline needs at least 2 rollouts per group, "
                          f"got {batch}; raise num_envs or use baseline='none'")


def leave_one_out(returns_to_go):
    """b^i = mean of the other rows, over the leading (rollout) axis."""
    m = returns_to_go.shape[0]
    total = returns_to_go.sum(0, keepdims=True)
    return (total - returns_to_go) / (m - 1)


def baseline_values(baseline, obs, returns_to_go):
    """b_t for a batch: ``obs`` [M, H, obs_size] and ``returns_to_go`` [M, H] give [M, H], without gradient."""
    if callable(baseline):
        values = jax.vmap(jax.vmap(baseline))(jax.lax.stop_gradient(obs))
    elif baseline == "leave_one_out":
        values = leave_one_out(returns_to_go)
    else:
        values = jnp.zeros_like(returns_to_go)
    return jax.lax.stop_gradient(values)
