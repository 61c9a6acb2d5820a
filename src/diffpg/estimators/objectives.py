"""Surrogate objectives: functions whose ordinary gradient is a policy-gradient estimate.

This is the stochastic-computation-graph view (Schulman et al., "Gradient
Estimation Using Stochastic Computation Graphs", NeurIPS 2015). For
J(θ) = E[Σ_{t<H} γᵗ r_t]:

- pathwise (reparameterized, "BPTT"): the surrogate is the return itself,
  Σ_t γᵗ r_t, differentiated straight through the policy and the dynamics.
- score function (likelihood ratio, "REINFORCE", Williams 1992): actions and
  states are held fixed and

      L = Σ_t γᵗ log π_θ(a_t|s_t) · stop_gradient(G_t − b_t),
      G_t = Σ_{t'≥t} γ^{t'−t} r_{t'}   (reward-to-go),

  whose gradient is unbiased for ∇θ J for any baseline b_t that does not
  depend on a_t (or on anything after it).

All functions are unbatched over time-major arrays of length H. After an
episode ends its terms are selected away (``mask_ended``), never multiplied by 0.
"""
import jax
import jax.numpy as jnp
import numpy as np

from ..types import float_dtype


def reward_to_go(reward, discount: float):
    """G_t = r_t + γ G_{t+1}, G_H = 0, computed by a reverse scan."""

    def back(g_next, r_t):
        g_t = r_t + discount * g_next
        return g_t, g_t

    _, g = jax.lax.scan(back, jnp.zeros((), reward.dtype), reward, reverse=True)
    return g


def discount_weights(horizon: int, discount: float, dtype=jnp.float32):
    """γᵗ for t < horizon; a constant when γ is a Python number, not H powers computed per rollout in the program
    (those cost a tenth of a small policy's pathwise gradient, ``benchmarks/gradient_cost.py``)."""
    if isinstance(discount, (int, float)):
        return jnp.asarray(np.power(float(discount), np.arange(horizon)), dtype)
    return discount ** jnp.arange(horizon, dtype=dtype)


def pathwise_surrogate(reward, discount: float, next_value=None, bootstrap=None):
    """Σ_t γᵗ r_t, to be differentiated through the rollout that produced ``reward``.

    With ``next_value`` V(s_{t+1}) and ``bootstrap`` β_t (arrays [H]), the return completed by a critic:

        Σ_t γᵗ r_t + Σ_t γ^{t+1} β_t V(s_{t+1}),

    with β_t = 1 where the rollout stops while the episode would go on (the last step of a window that starts
    from a carried state, or a truncation by a time limit) and 0 elsewhere, and after a termination (SHAC,
    Xu et al. 2022; V is differentiated through s_{t+1}, its parameters held fixed by the caller).
    """
    weights = discount_weights(reward.shape[0], discount, reward.dtype)
    total = jnp.sum(weights * reward)
    if next_value is None:
        return total
    return total + discount * jnp.sum(weights * bootstrap * next_value)


def score_function_surrogate(log_prob, advantage, discount: float):
    """Σ_t γᵗ log π(a_t|s_t) · stop_gradient(advantage_t), with advantage_t = G_t − b_t."""
    weights = discount_weights(log_prob.shape[0], discount, log_prob.dtype)
    dtype = float_dtype(log_prob, advantage)  # float64 parameters meet float32 rewards under x64
    return jnp.sum((weights * log_prob).astype(dtype) * jax.lax.stop_gradient(advantage).astype(dtype))


def alive_mask(done):
    """1 where the action at step t was taken before the episode ended, from the per-step done flags."""
    return 1.0 - jnp.concatenate([jnp.zeros((1,), done.dtype), done[:-1]])


def mask_ended(x, done):
    """``x`` [..., H] where the action at step t was taken before the episode ended, exactly 0 after.

    A ``jnp.where``, not a product with ``alive_mask``: 0 · NaN is NaN, and a select is 0 in value
    and in gradient whatever the other side holds.
    """
    return jnp.where(alive_mask(done) > 0, x, jnp.zeros((), x.dtype))
