"""The F test of ``diffpg check``'s variance finding (``diffpg.trust.growth``), on Gaussian samples of known covariance.

False-alarm rates are measured over N = 10,000 seeded draws at α = 0.05 (at the check's own α = 1e-3 a rate would
need millions of draws to be told from zero): a rate's binomial standard error there is √(α(1 − α)/N) = 0.0022,
and each rate must be at most α + 3 standard errors (0.0565; a correct test exceeds it with probability 0.13%),
while the raw comparison V_pw > V_sf the test replaces fires in half the draws.
"""
import numpy as np
import pytest
from scipy import stats

from diffpg import trust

R, P = 16, 10
N, ALPHA = 10_000, 0.05
ONE_HORIZON = trust.Settings(alpha=ALPHA, horizons=(1,))


def variance(samples):
    return float(samples.var(0, ddof=1).sum())


def flagged(pathwise, score_function, settings):
    threshold = trust.variance_threshold(settings, trust.variance_dof(pathwise), trust.variance_dof(score_function))
    return trust.noisier(variance(pathwise), variance(score_function), threshold)


def isotropic(rng, scale=1.0):
    return scale * rng.normal(size=(R, P))


def rank_one(rng, scale=1.0):
    return scale * rng.normal(size=(R, 1)) * np.ones(P) / np.sqrt(P)  # tr Σ = scale², as isotropic(rng, scale)/√P


def decaying(rng):
    return rng.normal(size=(R, P)) / np.arange(1, P + 1)  # eigenvalues 1/k²: ν = 15 · 2.2 = 33


def paired(rng):
    """Both Σ = I, cross-covariance 0.9 I: the same keys make the two estimators' samples correlated."""
    u = rng.normal(size=(R, P))
    return u, 0.9 * u + np.sqrt(1 - 0.9 ** 2) * rng.normal(size=(R, P))


@pytest.mark.parametrize("draw", [
    lambda rng: (isotropic(rng), isotropic(rng)),
    lambda rng: (rank_one(rng), rank_one(rng)),
    lambda rng: (isotropic(rng, 1 / np.sqrt(P)), rank_one(rng)),  # equal traces, different shapes
    lambda rng: (decaying(rng), decaying(rng)),
    paired,
], ids=["isotropic", "rank_one", "isotropic_vs_rank_one", "decaying", "paired"])
def test_equal_variances_are_flagged_at_most_alpha_of_the_time(draw):
    rng = np.random.default_rng(0)
    draws = [draw(rng) for _ in range(N)]
    rate = np.mean([flagged(pw, sf, ONE_HORIZON) for pw, sf in draws])
    naive = np.mean([variance(pw) > variance(sf) for pw, sf in draws])
    se = np.sqrt(ALPHA * (1 - ALPHA) / N)
    assert rate <= ALPHA + 3 * se, f"false-alarm rate {rate:.4f} above {ALPHA} + 3 SE ({se:.4f})"
    assert 0.4 < naive < 0.6  # what the raw comparison did


def test_a_variance_ten_times_larger_is_flagged_with_sixteen_repeats():
    rng = np.random.default_rng(1)
    six = trust.Settings(horizons=(1, 5, 20, 50, 100, 200))  # the check's α = 1e-3, Bonferroni over 6 horizons
    pathwise, score_function = isotropic(rng, np.sqrt(10.0)), isotropic(rng)
    assert flagged(pathwise, score_function, six)
    assert not flagged(score_function, pathwise, six)


def test_the_effective_dof_is_r_minus_1_for_rank_one_and_the_plug_in_formula_otherwise():
    rng = np.random.default_rng(2)
    for _ in range(5):
        assert trust.variance_dof(rank_one(rng)) == pytest.approx(R - 1, rel=1e-12)
    x = isotropic(rng)
    s = np.cov(x.T)  # the P x P sample covariance, not the Gram matrix the function uses
    assert trust.variance_dof(x) == pytest.approx((R - 1) * np.trace(s) ** 2 / np.trace(s @ s), rel=1e-12)
    assert trust.variance_dof(np.ones((R, P))) == R - 1 and np.isnan(trust.variance_dof(np.full((R, P), np.nan)))


def test_the_wishart_moments_behind_the_dof_for_an_isotropic_covariance(assert_unbiased):
    """For Σ = I_P: E(tr S)² = P² + 2P/n and E tr(S²) = P(n + 1)/n + P²/n (n = R − 1), whose ratio times n is
    n(nP + 2)/(n + 1 + P), below the true ν = n·P (the module docstring's closed forms)."""
    rng = np.random.default_rng(3)
    n = R - 1
    moments = []
    for _ in range(2000):
        s = np.cov(isotropic(rng).T)
        moments.append([np.trace(s) ** 2, np.trace(s @ s)])
    moments = np.array(moments)
    _, mean, se = assert_unbiased(moments, np.array([P ** 2 + 2 * P / n, P * (n + 1) / n + P ** 2 / n]),
                                  "(tr S)² and tr S²")
    assert np.all(se < 0.02 * mean)
    # the plug-in ν̂ is below n·P on average, as the ratio of the moments says
    dof = np.mean([trust.variance_dof(isotropic(rng)) for _ in range(500)])
    assert R - 1 < dof < (R - 1) * P


def test_the_threshold_is_the_f_quantile_at_alpha_over_the_horizons():
    settings = trust.Settings(alpha=1e-3, horizons=(1, 5, 20, 50))
    assert trust.variance_threshold(settings, 30.0, 15.0) == pytest.approx(stats.f.isf(1e-3 / 4, 30.0, 15.0))
    assert np.isnan(trust.variance_threshold(settings, np.nan, 15.0))
    assert trust.noisier(1.0, 0.0, 3.0) and not trust.noisier(1.0, 1.0, np.nan)
