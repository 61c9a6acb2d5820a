"""Combining two estimates of the same gradient: group statistics and the rules that weigh them.

An estimator's batch of N rollouts is split into G independent groups of m_k
rollouts (``batch.batch_groups``, which also splits them); each group gives its own estimate
X_k (and, for a second estimator on the same or other rollouts, Y_k). Their
spread across groups measures each estimator's noise without per-rollout
gradients:

    X̄ = Σ_k (m_k/N) X_k,      σ²_X = 1/(G−1) Σ_k m_k ‖X_k − X̄‖²       (per-rollout variance, a trace)
    σ_XY = 1/(G−1) Σ_k m_k ⟨X_k − X̄, Y_k − Ȳ⟩                          (per-rollout covariance)

so Var[X̄] ≈ σ²_X / N. From these:

- the variance-minimizing mixture α X̄ + (1−α) Ȳ of two *unbiased* estimates has
  α* = (σ²_Y − σ_XY) / (σ²_X + σ²_Y − 2 σ_XY), which is the inverse-variance
  weight σ²_Y / (σ²_X + σ²_Y) when they are uncorrelated;
- the confidence radius of a mean, ε = √(2 σ² log((d+1)/δ) / N), is the
  variance term of the vector Bernstein bound that Suh et al. (ICML 2022) use
  for the α-order gradient (d = number of parameters, δ = 1 − confidence): with
  probability about 1 − δ the mean lies within ε of its expectation.

Inverse-variance weighting alone cannot see bias: an estimator that is
confidently wrong (zero variance, zero value, like the pathwise gradient of a
step function) gets all the weight. Comparing X̄ − Ȳ with its noise is what
catches it: the confidence radius in ``alpha_order``; in ``auto``, the weight
that minimizes the mean squared error for the smallest bias the batch confirms
(``bias_aware_weight``, ``bias_lower_bound``) and the sign-flip test
(``sign_flip_pvalue``) that reports the bias.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .batch import Groups, group_covariance, group_mean


def moments(x, y, groups: Groups):
    """(σ²_X, σ²_Y, σ_XY): per-rollout variances and covariance (traces) from group estimates [G, P]."""
    return group_covariance(x, x, groups), group_covariance(y, y, groups), group_covariance(x, y, groups)


def variance(x, groups: Groups):
    """σ²_X alone."""
    return group_covariance(x, x, groups)


def mixing_weight(var_x, var_y, cov_xy=0.0):
    """α* ∈ [0, 1] minimizing Var[α X + (1−α) Y]; 1/2 when both are noiseless or identical."""
    denominator = var_x + var_y - 2.0 * cov_xy
    alpha = jnp.where(denominator > 0, (var_y - cov_xy) / jnp.where(denominator > 0, denominator, 1.0), 0.5)
    return jnp.clip(alpha, 0.0, 1.0)


def mixture(alpha, x, y, groups: Groups, var_x, var_y, cov_xy):
    """(α X̄ + (1−α) Ȳ, its per-rollout variance α² σ²_X + (1−α)² σ²_Y + 2α(1−α) σ_XY) from group estimates [G, P]."""
    mean = alpha * group_mean(x, groups) + (1.0 - alpha) * group_mean(y, groups)
    return mean, alpha**2 * var_x + (1.0 - alpha) ** 2 * var_y + 2.0 * alpha * (1.0 - alpha) * cov_xy


def shrunk_covariance(var_x, var_y, cov_xy, groups: int):
    """σ_XY shrunk toward 0 by its own noise: σ_XY · max(0, 1 − 1 / ((G − 1) ρ̂²)), ρ̂ = σ_XY / (σ_X σ_Y).

    A positive-part James–Stein rule on the correlation: with X and Y uncorrelated, ρ̂ from G groups
    has a standard error of at most 1/√(G − 1) (exactly that in one dimension; less when the traces
    sum many), so a covariance within about one standard error of 0 counts as 0, and a clear one is
    kept nearly whole. In α* = (σ²_Y − σ_XY) / σ²_D the covariance's noise is what scatters the
    weight when one estimator is far noisier than the other: with σ²_Y = 600 σ²_X (``wind_gust``)
    it moves α by about (σ_X/σ_Y)/√(G−1) ≈ 0.01, which costs 0.01² · 600 = 6 % of X's variance.
    """
    product = var_x * var_y
    rho2 = jnp.where(product > 0, cov_xy**2 / jnp.where(product > 0, product, 1.0), 0.0)
    keep = jnp.maximum(0.0, 1.0 - 1.0 / ((groups - 1) * jnp.where(rho2 > 0, rho2, jnp.inf)))
    return cov_xy * jnp.where(rho2 > 0, keep, 0.0)


def bias_lower_bound(differences, groups: Groups, confidence: float):
    """ℓ², the square of a lower confidence bound on ‖b‖, b = E[D̄], from group differences D_k [G, P].

    For Gaussian D̄ with covariance Σ/N, ‖D̄ − b‖ = ‖(Σ/N)^{1/2} z‖ is a √(λ_max(Σ)/N)-Lipschitz
    function of a standard normal z: its mean is at most √(tr Σ / N), and it exceeds that by more than
    √(2 λ_max(Σ) log(1/δ) / N) with probability at most δ (Gaussian concentration). So, with
    probability at least 1 − δ,

        ‖b‖ ≥ ℓ = max(0, ‖D̄‖ − r),      r = √(σ²_D / N) + √(2 λ_max log(1/δ) / N),

    with σ²_D = tr Σ and λ_max the largest eigenvalue of Σ, both estimated from the groups
    (λ_max from the G × G Gram matrix of the centred √m_k D_k, which has the same nonzero
    eigenvalues; of rank G − 1, so λ_max ≥ σ²_D / (G − 1), a conservative estimate in many
    dimensions). ℓ is the smallest bias the batch confirms at confidence 1 − δ; a difference
    of a few of its own standard errors, as heavy tails produce, confirms none.
    """
    n = groups.num_envs
    mean = group_mean(differences, groups)
    spread = variance(differences, groups)
    scaled = jnp.sqrt(jnp.asarray(groups.sizes / (groups.count - 1), differences.dtype))[:, None] * (differences - mean[None])
    largest = jnp.linalg.eigvalsh(scaled @ scaled.T)[-1]
    radius = jnp.sqrt(spread / n) + jnp.sqrt(2.0 * largest * jnp.log(1.0 / (1.0 - confidence)) / n)
    return jnp.maximum(jnp.sqrt(mean @ mean) - radius, 0.0) ** 2


def bias_aware_weight(x, y, groups: Groups, confidence: float):
    """α ∈ [0, 1] minimizing the MSE of α X̄ + (1−α) Ȳ when Y is unbiased and X may be biased.

    From group estimates [G, P]. With b = E[X̄ − Ȳ] the bias of X, N = G M rollouts and D = X − Y,

        MSE(α) = α² ‖b‖² + (α² σ²_X + (1−α)² σ²_Y + 2α(1−α) σ_XY) / N,

    minimized by α = (σ²_Y − σ_XY) / (N ‖b‖² + σ²_D), σ²_D = σ²_X + σ²_Y − 2σ_XY, with σ_XY
    shrunk toward 0 by its noise (``shrunk_covariance``). ‖b‖² is taken
    as ℓ², its lower confidence bound (``bias_lower_bound``): while X̄ − Ȳ is within its noise
    this is the variance-minimizing weight α* (``mixing_weight``); a bias the batch confirms
    takes weight from X as 1 / (N ℓ²), to 0 for a confidently wrong X. A plug-in estimate
    ‖D̄‖² − σ²_D / N of ‖b‖² instead reads every chance excursion of a heavy-tailed Ȳ as bias of
    X, and moves the weight to the very estimate that strayed.
    """
    var_x, var_y, cov = moments(x, y, groups)
    cov = shrunk_covariance(var_x, var_y, cov, groups.count)
    denominator = groups.num_envs * bias_lower_bound(x - y, groups, confidence) + var_x + var_y - 2.0 * cov
    alpha = jnp.where(denominator > 0, (var_y - cov) / jnp.where(denominator > 0, denominator, 1.0), 0.5)
    return jnp.clip(alpha, 0.0, 1.0)


def confidence_radius(per_rollout_variance, num_rollouts: int, dimension: int, confidence: float):
    """ε = √(2 σ² log((d+1)/δ) / N): the Bernstein radius of a mean of N rollouts, δ = 1 − confidence."""
    log_term = jnp.log((dimension + 1) / (1.0 - confidence))
    return jnp.sqrt(2.0 * per_rollout_variance * log_term / num_rollouts)


def sign_flip_pvalue(key, differences, groups: Groups, draws: int = 4096):
    """p-value of "every group estimate D_k has mean 0", from G independent groups [G, P].

    If the D_k are independent with distributions symmetric about 0 (group means
    of m_k rollouts are close to Gaussian), flipping their signs does not change the
    distribution of S(ε) = ‖Σ_k ε_k m_k D_k‖² (the group sums, so that S(1) is N² ‖D̄‖²), so the rank of the observed S(1) among
    random sign vectors is an exact test in any dimension (a randomization test,
    Fisher 1935). It is far more powerful than a norm bound when the noise is
    spread over many directions and the bias is not. S(ε) = εᵀ K ε with the
    G × G Gram matrix K, so each draw costs G² operations.
    """
    g = differences.shape[0]
    sums = jnp.asarray(groups.sizes, differences.dtype)[:, None] * differences
    gram = sums @ sums.T
    signs = jax.random.rademacher(key, (draws, g), dtype=gram.dtype)
    flipped = jnp.einsum("dk,kl,dl->d", signs, gram, signs)
    observed = jnp.sum(gram)
    exceed = jnp.sum(flipped >= observed).astype(differences.dtype)  # an exact count (draws < 2²⁴)
    return (1.0 + exceed) / (1.0 + draws)
