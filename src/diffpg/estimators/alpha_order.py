"""The α-order batched gradient (AoBG) of Suh et al.: interpolate first- and zeroth-order, bias-constrained.

Suh, Simchowitz, Zhang & Tedrake (ICML 2022, section 4) mix the first-order
(pathwise) gradient ∇̂[1] and the zeroth-order one ∇̂[0] (``zeroth_order``),

    ∇̂[α] = α ∇̂[1] + (1 − α) ∇̂[0],

from *independent* halves of the batch, so that
Var ∇̂[α] = α² σ̂²₁/N₁ + (1−α)² σ̂²₀/N₀, and choose α to minimize that variance
subject to a bound γ on the bias. ∇̂[0] is unbiased; ∇̂[1] has an unknown bias
b = E∇̂[1] − ∇J (a discontinuity), so the bias of ∇̂[α] is exactly α b.

**The bound on b.** D̄ = ∇̂[1] − ∇̂[0] has mean b and, the halves being
independent, per-coordinate variances summing to σ̂²₁/N₁ + σ̂²₀/N₀. With the
vector Bernstein radius r = √(2 (σ̂²₁/N₁ + σ̂²₀/N₀) log((d+1)/δ))
(``combine.confidence_radius``; d parameters, δ = 1 − ``confidence``),
‖D̄ − b‖ ≤ r with probability about 1 − δ, so ‖b‖ ≤ U = ‖D̄‖ + r, and the
constraint ‖α b‖ ≤ γ holds for every b the batch allows when

    α U ≤ γ.

**The scale of γ.** The paper's rule is ε + α‖D̄‖ ≤ γ, with ε the radius of
∇̂[0] alone: it bounds the *error* of this one estimate,
‖∇̂[α] − ∇J‖ ≤ α‖D̄‖ + ‖∇̂[0] − ∇J‖, through ∇̂[0], and so it demands that
∇̂[0] be accurate to within γ before any first-order weight is allowed. With
γ a small fraction of ‖∇̂[0]‖ that never happens at practical batch sizes: on
the LQR (H = 20) with 64 or 1024 rollouts ε was 7–40 and γ = 0.05 ‖∇̂[0]‖
0.5–1.4, so α was 0 in every batch, though the pathwise gradient is unbiased
there and its per-rollout variance a tenth of the zeroth-order one's. The
triangle inequality through ∇̂[0] is what fails: with α = 1 the error does
not involve ∇̂[0] at all, and the fallback α = 0 does not meet the bound γ
either when ε > γ. Here the constraint is on the bias, as derived above, and
γ is measured in the only scale a single batch can resolve, r itself:

    γ = κ r,      κ = ``bias_tolerance`` (default 2).

A bias below r cannot be told from noise by this batch; κ = 2 takes the
first-order estimate whole (α = ᾱ) whenever ‖D̄‖ ≤ (κ − 1) r = r, that is,
whenever the two estimates agree within the confidence radius of their
difference, and otherwise admits a first-order bias of at most κ r. The
solution, with ᾱ = (σ̂²₀/N₀) / (σ̂²₁/N₁ + σ̂²₀/N₀) the unconstrained optimum:

    α = min(ᾱ, κ r / (‖D̄‖ + r)).

On a step reward, where ∇̂[1] = 0 with no variance, α = κ r / (‖∇̂[0]‖ + r) →
0 like 1/√N, and the bias let in, α ‖D̄‖, stays below κ r. ``bias_tolerance``
is this one number; a larger one trusts the first-order estimate more.

The first-order estimate is the ``surrogate`` gradient, which is the pathwise
one whenever the policy is reparameterized and the environment has no
discrete events, and otherwise adds the score terms those need.

The N rollouts are split in two halves: N/2 for ∇̂[1], N/2 for ∇̂[0] (which also
needs N/2 noise-free rollouts), 3NH/2 environment steps in all.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..envs.gymnasium_black_box import require_gradient
from ..errors import ConfigError
from .batch import Groups, batch_groups, batch_keys, check_settings, group_gradients, group_mean, standard_diagnostics
from .combine import confidence_radius, flatten_groups, variance
from .surrogate import check_surrogate_settings, surrogate_gradients
from .zeroth_order import check_zeroth_order_policy, zeroth_order_batch, zeroth_order_objective
from .validate import validated


def first_and_zeroth_order(env, policy, *, horizon: int, discount: float, baseline, groups_first: Groups,
                           groups_zeroth: Groups):
    """``gradients(keys_first, keys_zeroth, params) -> (F [G₁, P], Z [G₀, P], unravel, returns_first, returns_zeroth)``.

    The per-group first-order (``surrogate``) gradients of the rollouts of ``keys_first`` and the
    zeroth-order ones of the rollouts of ``keys_zeroth`` (with their noise-free twins), flattened.
    """
    first_order = surrogate_gradients(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                      groups=groups_first)
    zeroth_batch = zeroth_order_batch(env, policy, horizon=horizon, discount=discount)
    zeroth_objective = zeroth_order_objective(policy)

    def gradients(keys_first, keys_zeroth, params):
        grads_f, returns_f = first_order(keys_first, params)
        batch, returns_z = zeroth_batch(keys_zeroth, params)
        grads_z, _ = group_gradients(zeroth_objective, params, batch, groups_zeroth)
        f, unravel = flatten_groups(grads_f)
        return f, flatten_groups(grads_z)[0], unravel, returns_f, returns_z

    return gradients


def alpha_order(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
                bias_tolerance: float = 2.0, confidence: float = 0.95, baseline="leave_one_out",
                variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the bias-constrained AoBG.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob`` and ``mode``.
      horizon, discount, variance_groups: as for ``pathwise``.
      num_envs: rollouts in all, at least 4; half go to each estimate.
      bias_tolerance: κ = γ / r, the first-order bias accepted, in units of the confidence radius r of
        ∇̂[1] − ∇̂[0] (the smallest bias the batch resolves).
      confidence: 1 − δ of the confidence radius r.
      baseline: the baseline of the first-order (surrogate) estimate's score terms, if it has any.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``alpha``, ``alpha_variance_optimal`` (ᾱ),
      ``radius`` (r), ``gamma`` (γ = κ r), ``difference`` (‖∇̂[1] − ∇̂[0]‖), ``variance_first_order``,
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
    devices = jax.device_count()
    if devices > 1 and num_envs % (2 * devices):
        raise ConfigError(f"alpha_order lays each half of its num_envs={num_envs} rollouts over the {devices} "
                          f"devices, so num_envs must be a multiple of {2 * devices}")
    n_first = num_envs // 2
    n_zeroth = num_envs - n_first
    groups_first = check_surrogate_settings(env, policy, horizon=horizon, num_envs=n_first, discount=discount,
                                            variance_groups=variance_groups, baseline=baseline,
                                            estimator="the alpha-order estimator")
    check_zeroth_order_policy(policy, "the alpha-order estimator")
    groups_zeroth = batch_groups(n_zeroth, variance_groups, estimator="the alpha-order estimator")
    gradients = first_and_zeroth_order(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                       groups_first=groups_first, groups_zeroth=groups_zeroth)

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        x1, x0, unravel, returns1, returns0 = gradients(keys[:n_first], keys[n_first:], params)
        g1, g0 = group_mean(x1, groups_first), group_mean(x0, groups_zeroth)
        var1 = variance(x1, groups_first)
        var0 = variance(x0, groups_zeroth)
        mean_var1, mean_var0 = var1 / n_first, var0 / n_zeroth
        radius = confidence_radius(mean_var1 + mean_var0, 1, g0.shape[0], confidence)
        gamma = bias_tolerance * radius
        difference = jnp.linalg.norm(g1 - g0)
        optimum = jnp.where(mean_var1 + mean_var0 > 0, mean_var0 / (mean_var1 + mean_var0), 0.5)
        upper = difference + radius  # U ≥ ‖b‖ with probability about 1 − δ
        alpha = jnp.minimum(optimum, gamma / jnp.where(upper > 0, upper, 1.0))
        alpha = jnp.clip(jnp.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
        grad = alpha * g1 + (1.0 - alpha) * g0
        returns = jnp.concatenate([returns1, returns0])
        spread = num_envs * (alpha**2 * mean_var1 + (1.0 - alpha) ** 2 * mean_var0)
        diagnostics = {**standard_diagnostics(returns, jnp.linalg.norm(grad), spread),
                       "alpha": alpha, "alpha_variance_optimal": optimum, "radius": radius, "gamma": gamma,
                       "difference": difference,
                       "variance_first_order": var1, "variance_zeroth_order": var0,
                       "env_steps": (n_first + 2 * n_zeroth) * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, estimator="the alpha-order estimator")
