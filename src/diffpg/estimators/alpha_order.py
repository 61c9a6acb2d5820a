"""The α-order batched gradient (AoBG) of Suh et al.: interpolate first- and zeroth-order, bias-constrained.

Suh, Simchowitz, Zhang & Tedrake (ICML 2022, section 4) mix the first-order
(pathwise) gradient ∇̂[1] and the zeroth-order one ∇̂[0] (``zeroth_order``),

    ∇̂[α] = α ∇̂[1] + (1 − α) ∇̂[0],

choosing α from *independent* batches so the two estimates are independent
and Var ∇̂[α] = α² σ̂²₁/N₁ + (1−α)² σ̂²₀/N₀. The confidence-interval rule
minimizes that variance subject to a bound γ on the bias:

    min_α  α² σ̂²₁/N₁ + (1−α)² σ̂²₀/N₀    s.t.   ε + α ‖∇̂[1] − ∇̂[0]‖ ≤ γ

where ε is the confidence radius of the unbiased ∇̂[0] (with probability about
1 − δ, ‖∇̂[0] − ∇J‖ ≤ ε; ``combine.confidence_radius``), so ‖∇̂[1] − ∇̂[0]‖ + ε
bounds the first-order bias that α lets in. The solution:

- if ε > γ the zeroth-order estimate is too uncertain to certify any first-order
  bias away: α = 0;
- else the unconstrained optimum ᾱ = (σ̂²₀/N₀) / (σ̂²₁/N₁ + σ̂²₀/N₀) if it meets the
  constraint, ᾱ ‖∇̂[1] − ∇̂[0]‖ ≤ γ − ε;
- else the constraint binds: α = (γ − ε) / ‖∇̂[1] − ∇̂[0]‖.

Suh et al. give γ in the gradient's units; here γ = bias_tolerance · ‖∇̂[0]‖, a
relative tolerance, so one default serves every problem. The first-order
estimate is the ``surrogate`` gradient, which is the pathwise one whenever
the policy is reparameterized and the environment has no discrete events, and
otherwise adds the score terms those need.

The N rollouts are split in two halves: N/2 for ∇̂[1], N/2 for ∇̂[0] (which also
needs N/2 noise-free rollouts), 3NH/2 environment steps in all.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..envs.gymnasium_black_box import require_gradient
from ..errors import ConfigError
from .batch import batch_groups, batch_keys, check_settings, group_gradients, group_mean, standard_diagnostics
from .combine import confidence_radius, flatten_groups, variance
from .surrogate import check_surrogate_settings, surrogate_gradients
from .zeroth_order import check_zeroth_order_policy, zeroth_order_batch, zeroth_order_objective
from .validate import validated


def alpha_order(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
                bias_tolerance: float = 0.05, confidence: float = 0.95, baseline="leave_one_out",
                variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the bias-constrained AoBG.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob`` and ``mode``.
      horizon, discount, variance_groups: as for ``pathwise``.
      num_envs: rollouts in all, at least 4; half go to each estimate.
      bias_tolerance: γ / ‖∇̂[0]‖, the first-order bias accepted, relative to the gradient's size.
      confidence: 1 − δ of the confidence radius ε.
      baseline: the baseline of the first-order (surrogate) estimate's score terms, if it has any.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``alpha``, ``epsilon`` (ε),
      ``gamma`` (γ), ``difference`` (‖∇̂[1] − ∇̂[0]‖), ``variance_first_order``,
      ``variance_zeroth_order`` (per rollout) and ``env_steps``.
    """
    require_gradient(env, "the alpha-order estimator")
    if isinstance(bias_tolerance, bool) or not isinstance(bias_tolerance, (int, float)) or bias_tolerance < 0:
        raise ConfigError(f"bias_tolerance must be a non-negative number, got {bias_tolerance!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be a number in (0, 1), got {confidence!r}")
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, needs_log_prob=True, estimator="the alpha-order estimator")
    if num_envs < 4:
        raise ConfigError(f"alpha_order needs num_envs >= 4 (two independent halves), got {num_envs}")
    n_first = num_envs // 2
    n_zeroth = num_envs - n_first
    groups_first = check_surrogate_settings(env, policy, horizon=horizon, num_envs=n_first, discount=discount,
                                            variance_groups=variance_groups, baseline=baseline,
                                            estimator="the alpha-order estimator")
    check_zeroth_order_policy(policy, "the alpha-order estimator")
    groups_zeroth = batch_groups(n_zeroth, variance_groups, estimator="the alpha-order estimator")
    first_order = surrogate_gradients(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                      groups=groups_first)
    zeroth_batch = zeroth_order_batch(env, policy, horizon=horizon, discount=discount)
    zeroth_objective = zeroth_order_objective(policy)

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        grads1, returns1 = first_order(keys[:n_first], params)
        batch0, returns0 = zeroth_batch(keys[n_first:], params)
        grads0, _ = group_gradients(zeroth_objective, params, batch0, groups_zeroth)
        x1, unravel = flatten_groups(grads1)
        x0, _ = flatten_groups(grads0)
        g1, g0 = group_mean(x1, groups_first), group_mean(x0, groups_zeroth)
        var1 = variance(x1, groups_first)
        var0 = variance(x0, groups_zeroth)
        mean_var1, mean_var0 = var1 / n_first, var0 / n_zeroth
        epsilon = confidence_radius(var0, n_zeroth, g0.shape[0], confidence)
        gamma = bias_tolerance * jnp.linalg.norm(g0)
        difference = jnp.linalg.norm(g1 - g0)
        optimum = jnp.where(mean_var1 + mean_var0 > 0, mean_var0 / (mean_var1 + mean_var0), 0.5)
        bound = (gamma - epsilon) / jnp.where(difference > 0, difference, 1.0)
        alpha = jnp.where(epsilon > gamma, 0.0,
                          jnp.where(optimum * difference <= gamma - epsilon, optimum, bound))
        alpha = jnp.clip(jnp.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
        grad = alpha * g1 + (1.0 - alpha) * g0
        returns = jnp.concatenate([returns1, returns0])
        spread = num_envs * (alpha**2 * mean_var1 + (1.0 - alpha) ** 2 * mean_var0)
        diagnostics = {**standard_diagnostics(returns, jnp.linalg.norm(grad), spread),
                       "alpha": alpha, "epsilon": epsilon, "gamma": gamma, "difference": difference,
                       "variance_first_order": var1, "variance_zeroth_order": var0,
                       "env_steps": (n_first + 2 * n_zeroth) * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, estimator="the alpha-order estimator")
