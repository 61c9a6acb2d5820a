"""The discontinuity switch: zeroth-order where a test finds the first-order gradient biased, a mix elsewhere.

The idea comes from Onoda, Parmas, Yaguchi & Matsuo (arXiv 2604.18161, 2026),
whose DDCG is, in their abstract's words, a lightweight test with a single
hyperparameter that switches estimators in nonsmooth regions. Only that
abstract was available here, so this module is named for what it computes,
not after the paper's method. What differs from the abstract, or cannot be
checked against the paper: the test statistic here is a sign-flip
randomization test of first- minus zeroth-order group estimates on the same
rollouts (the paper's test is not known to us); where the test does not
fire, the estimate is the variance-minimizing mixture of both, not the
first-order estimate alone. What it does, from one batchWhat it does, from one batch of N rollouts in G groups:

- F_k, the first-order (``surrogate``) gradient of group k: the pathwise
  gradient, plus the score terms of discrete nodes when there are any;
- Z_k, Suh et al.'s zeroth-order gradient (``zeroth_order``) on the *same*
  noisy rollouts, Σ_i [V(w^i) − V(0)] Σ_t ∇θ log π(a_t^i|s_t^i) / M, with V(0)
  the return of the noise-free rollout from the same start. It is a
  randomized finite difference of the return along the policy's noise, so it
  sees a jump that the derivative of every single rollout misses.

Without a discontinuity both are unbiased for ∇θ J, so D_k = F_k − Z_k has
mean 0; a jump in the return (contact, a step reward) gives F a bias b and
D_k mean b. On the same rollouts F and Z are positively correlated, so D is
less noisy than Z alone and the test more powerful than one on independent
halves (``alpha_order``). The test is the sign-flip randomization test of
"every D_k has mean 0" (``combine.sign_flip_pvalue``), exact in any dimension
for symmetric group noise; its level δ = 1 − ``confidence`` is the one
hyperparameter. Then

    discontinuous (p < δ):   ĝ = Z̄
    otherwise:               ĝ = α F̄ + (1 − α) Z̄,   α = (σ²_Z − σ_FZ) / (σ²_F + σ²_Z − 2σ_FZ)

the variance-minimizing mixture of two unbiased estimates (``combine.mixing_weight``,
with the covariance shrunk by its noise, ``combine.shrunk_covariance``),
which keeps most of the pathwise gradient's precision where the dynamics are
smooth and lets the zeroth-order one take over where they are chaotic. The
difference from ``auto``: ``auto`` weighs the first-order estimate against the
score function by a bias-aware MSE; this one decides by a test, against the
finite-difference (zeroth-order) evidence. A bias smaller than the test can
resolve at level δ passes; the benchmark (``benchmarks/auto_mse.py``) measures
what that costs.

Each estimate simulates 2NH environment steps (N noisy rollouts, once without
and once with the gradient, and N noise-free ones).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .alpha_order import first_and_zeroth_order
from .batch import batch_keys, standard_diagnostics
from .combine import mixing_weight, mixture, moments, shrunk_covariance, sign_flip_pvalue
from .dice import check_confidence, check_surrogate_settings
from .validate import validated
from .zeroth_order import check_zeroth_order_policy


def discontinuity_switch(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, confidence: float = 0.999,
         baseline="leave_one_out", variance_groups: int = 16):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the discontinuity-tested gradient.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob`` and ``mode``.
      horizon, num_envs, discount: as for ``pathwise``.
      confidence: 1 − δ, the level of the discontinuity test: its one hyperparameter.
      baseline: the baseline of the first-order estimate's score terms, if it has any.
      variance_groups: G, the groups the test and the weights are estimated from (the test cannot
        reject below p = 2^{1−G}, so keep G ≥ 11 at the default level).

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``discontinuous`` (1.0 when the test
      fired), ``discontinuity_pvalue``, ``alpha`` (weight of the first-order estimate),
      ``variance_first_order``, ``variance_zeroth_order`` (per rollout) and ``env_steps`` (2 N H).
    """
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline,
                                      estimator="the discontinuity-switch estimator", needs_log_prob=True)
    check_confidence(confidence)
    check_zeroth_order_policy(policy, "the discontinuity-switch estimator")
    gradients = first_and_zeroth_order(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                       groups_first=groups, groups_zeroth=groups)

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        # the same noisy rollouts for both, and for Z their noise-free twins
        f, z, unravel, returns, _ = gradients(keys, keys, params)
        pvalue = sign_flip_pvalue(jax.random.fold_in(key, 1), f - z, groups)
        discontinuous = pvalue < 1.0 - confidence
        var_f, var_z, cov = moments(f, z, groups)
        smooth = mixing_weight(var_f, var_z, shrunk_covariance(var_f, var_z, cov, groups.count))
        alpha = jnp.where(discontinuous, 0.0, jnp.nan_to_num(smooth, nan=0.0))
        grad, spread = mixture(alpha, f, z, groups, var_f, var_z, cov)
        diagnostics = {**standard_diagnostics(returns, grad, spread),
                       "discontinuous": discontinuous.astype(jnp.float32), "discontinuity_pvalue": pvalue,
                       "alpha": alpha, "variance_first_order": var_f, "variance_zeroth_order": var_z,
                       "env_steps": 2 * num_envs * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, needs_log_prob=True, estimator="the discontinuity-switch estimator")
