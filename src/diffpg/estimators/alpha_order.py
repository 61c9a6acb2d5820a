"""The α-order batched gradient (AoBG) of Suh et al., with its bias constraint decided by a test.

Suh, Simchowitz, Zhang & Tedrake (ICML 2022, section 4) mix the first-order
(pathwise) gradient ∇̂[1] and the zeroth-order one ∇̂[0] (``zeroth_order``),

    ∇̂[α] = α ∇̂[1] + (1 − α) ∇̂[0],

from *independent* halves of the batch, so that
Var ∇̂[α] = α² σ̂²₁/N₁ + (1−α)² σ̂²₀/N₀, and choose α to minimize that variance
subject to a bound on the error that the first-order bias b = E∇̂[1] − ∇J
(a discontinuity) lets in, which is exactly α b.

**The test.** D̄ = ∇̂[1] − ∇̂[0] has mean b and, the halves being
independent, per-coordinate variances summing to σ̂²₁/N₁ + σ̂²₀/N₀. With the
vector Bernstein radius (``combine.confidence_radius``; d parameters,
δ = 1 − ``confidence``)

    r = √(2 (σ̂²₁/N₁ + σ̂²₀/N₀) log((d+1)/δ)),

‖D̄ − b‖ ≤ r with probability about 1 − δ. So "‖D̄‖ > r" is a test of
b = 0 whose false-positive rate is at most about δ (for Gaussian D̄ with
known variances the radius is conservative: in one dimension r is 2.7
standard errors at δ = 0.05, a rate of 0.007; the variances estimated from
G groups, and heavy-tailed zeroth-order terms, make it approximate: on the
bandit −a² with 64 rollouts, 8 groups of 4 per half, 23 of 400 batches
rejected, 5.8 %). Then

    no bias found (‖D̄‖ ≤ r):   α = ᾱ = (σ̂²₀/N₀) / (σ̂²₁/N₁ + σ̂²₀/N₀),   the unconstrained optimum;
    bias found    (‖D̄‖ > r):   α = 0,                                   the unbiased ∇̂[0].

**How this differs from the paper.** Suh et al.'s rule is ε + α‖D̄‖ ≤ γ,
with ε the radius of ∇̂[0] alone and γ a per-task tolerance: it bounds the
error of this one estimate through ∇̂[0], so it demands that ∇̂[0] be accurate
to γ before any first-order weight is allowed. With γ a small fraction of
‖∇̂[0]‖ that never happens at practical batch sizes: on the LQR (H = 20) with
64 or 1024 rollouts ε was 7–40 and γ = 0.05 ‖∇̂[0]‖ 0.5–1.4, so α was 0 in
every batch, though the pathwise gradient is unbiased there. An earlier
version here bounded the bias by γ = κ r instead, α = min(ᾱ, κ r / (‖D̄‖ + r));
on a step reward that lets in a bias of κ r, which falls only like 1/√N and
was 24 % of the true gradient from 2,048 rollouts. A bias the batch resolves
is a bias the estimate can avoid entirely, so here a resolved bias takes
all the weight from ∇̂[1], and the test's level δ is the one setting. A bias
below r passes; what that costs is the price of a first-order estimate.

The first-order estimate is the ``surrogate`` gradient, which is the pathwise
one whenever the policy is reparameterized and the environment has no
discrete events, and otherwise adds the score terms those need.

The N rollouts are split in two halves: N/2 for ∇̂[1], N/2 for ∇̂[0] (which also
needs N/2 noise-free rollouts), 3NH/2 environment steps in all.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from .batch import Groups, batch_groups, batch_keys, flatten_groups, group_gradients, group_mean, standard_diagnostics
from .combine import confidence_radius, variance
from .dice import check_confidence, check_surrogate_settings, surrogate_gradients
from .validate import validated
from .zeroth_order import check_zeroth_order_policy, zeroth_order_batch, zeroth_order_objective


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


def alpha_order(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, confidence: float = 0.95,
                baseline="leave_one_out", variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the AoBG with a tested bias constraint.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob`` and ``mode``.
      horizon, discount, variance_groups: as for ``pathwise``.
      num_envs: rollouts in all, at least 4; half go to each estimate.
      confidence: 1 − δ; δ is the test's false-positive rate (about; see the module docstring).
      baseline: the baseline of the first-order (surrogate) estimate's score terms, if it has any.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``alpha``, ``alpha_variance_optimal`` (ᾱ),
      ``biased`` (1.0 when the test found a bias), ``radius`` (r), ``difference`` (‖∇̂[1] − ∇̂[0]‖),
      ``variance_first_order``, ``variance_zeroth_order`` (per rollout) and ``env_steps``.
    """
    estimator = "the alpha-order estimator"
    if isinstance(num_envs, int) and not isinstance(num_envs, bool) and num_envs < 4:
        raise ConfigError(f"alpha_order needs num_envs >= 4 (two independent halves), got {num_envs}")
    devices = jax.device_count()
    if devices > 1 and num_envs % (2 * devices):
        raise ConfigError(f"alpha_order lays each half of its num_envs={num_envs} rollouts over the {devices} "
                          f"devices, so num_envs must be a multiple of {2 * devices}")
    n_first = num_envs // 2
    n_zeroth = num_envs - n_first
    groups_first = check_surrogate_settings(env, policy, horizon=horizon, num_envs=n_first, discount=discount,
                                            variance_groups=variance_groups, baseline=baseline,
                                            estimator=estimator, needs_log_prob=True)
    check_confidence(confidence)
    check_zeroth_order_policy(policy, estimator)
    groups_zeroth = batch_groups(n_zeroth, variance_groups, estimator=estimator)
    gradients = first_and_zeroth_order(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                       groups_first=groups_first, groups_zeroth=groups_zeroth)

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        x1, x0, unravel, returns1, returns0 = gradients(keys[:n_first], keys[n_first:], params)
        g1, g0 = group_mean(x1, groups_first), group_mean(x0, groups_zeroth)
        var1, var0 = variance(x1, groups_first), variance(x0, groups_zeroth)
        mean_var1, mean_var0 = var1 / n_first, var0 / n_zeroth
        radius = confidence_radius(mean_var1 + mean_var0, 1, g0.shape[0], confidence)
        difference = jnp.linalg.norm(g1 - g0)
        biased = difference > radius
        optimum = jnp.where(mean_var1 + mean_var0 > 0, mean_var0 / (mean_var1 + mean_var0), 0.5)
        alpha = jnp.where(biased, 0.0, jnp.clip(jnp.nan_to_num(optimum, nan=0.0), 0.0, 1.0))
        grad = alpha * g1 + (1.0 - alpha) * g0
        spread = num_envs * (alpha**2 * mean_var1 + (1.0 - alpha) ** 2 * mean_var0)
        diagnostics = {**standard_diagnostics(jnp.concatenate([returns1, returns0]), grad, spread),
                       "alpha": alpha, "alpha_variance_optimal": optimum, "biased": biased.astype(jnp.float32),
                       "radius": radius, "difference": difference,
                       "variance_first_order": var1, "variance_zeroth_order": var0,
                       "env_steps": (n_first + 2 * n_zeroth) * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, estimator=estimator)
