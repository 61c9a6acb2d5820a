"""One step, three gradients: the exact per-sample variances of a Gaussian bandit, measured with diffpg.

For docs/why-pathwise.md. A ~ N(μ, σ²) and reward r = −(a − a*)², so
J(μ) = −(d² + σ²) with d = μ − a*, and ∇μ J = −2d. With a = μ + σξ the
single-sample estimators of ∇μ J are

    score function, no baseline:  r(a) ξ / σ            variance d⁴/σ² + 14d² + 15σ²
    score function, b = J:        (r(a) − J) ξ / σ      variance 8d² + 10σ²
    pathwise:                     −2(d + σξ)            variance 4σ²

(from E ξ² = 1, E ξ⁴ = 3, E ξ⁶ = 15). This script draws 200 000 single-rollout
estimates of each with ``diffpg.estimators`` (num_envs = 1, horizon = 1) and
prints mean and variance next to the exact values, for σ = 0.5 and d = 1.

Run from the project root:

    python docs/figures/bandit_variance.py

``main(tiny=True)`` runs the same code on 2 000 samples (the test suite does, so the script stays working).
"""
import jax
import numpy as np

import diffpg
from diffpg import diagnostics

SIGMA, TARGET, MU = 0.5, 0.0, 1.0
SAMPLES = 200_000


def main(out=None, tiny: bool = False):
    """Print the table (this script writes no figure; ``out`` is accepted for a uniform call)."""
    samples_per_estimator = 2_000 if tiny else SAMPLES
    env = diffpg.envs.OneStep(lambda a: -((a - TARGET) ** 2))
    policy = diffpg.policies.GaussianMean(SIGMA, mean=MU)
    params = policy.init(None, 1)
    d = MU - TARGET
    value = -(d**2 + SIGMA**2)
    options = dict(horizon=1, num_envs=1, variance_groups=1)
    estimators = {
        "score function, no baseline": (diffpg.estimators.score_function(env, policy, baseline="none", **options),
                                        d**4 / SIGMA**2 + 14 * d**2 + 15 * SIGMA**2),
        "score function, b = J": (diffpg.estimators.score_function(env, policy, baseline=lambda obs: value,
                                                                   **options), 8 * d**2 + 10 * SIGMA**2),
        "pathwise": (diffpg.estimators.pathwise(env, policy, **options), 4 * SIGMA**2),
    }
    print(f"a ~ N(mu, sigma^2), r = -(a - a*)^2, sigma = {SIGMA}, d = mu - a* = {d}; exact gradient {-2 * d}; "
          f"{samples_per_estimator} single-rollout estimates each.\n")
    print("| estimator | mean | exact variance | measured variance | relative difference |")
    print("|---|---|---|---|---|")
    for i, (name, (estimate, exact)) in enumerate(estimators.items()):
        samples, _ = jax.jit(diagnostics.gradient_samples, static_argnums=(0, 3))(
            estimate, jax.random.PRNGKey(i), params, samples_per_estimator)
        samples = np.asarray(samples[:, 0], np.float64)
        measured = samples.var(ddof=1)
        print(f"| {name} | {samples.mean():.3f} | {exact:.3f} | {measured:.3f} | {measured / exact - 1:+.3f} |")


if __name__ == "__main__":
    main()
