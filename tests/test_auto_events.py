"""``auto`` on ``wind_gust``: the branch for a reparameterized policy in an environment with discrete events.

The gusts' chance is steep in the velocity (the setting of test_mixed_estimators' enumeration), so the
pathwise gradient, which holds the gusts fixed, misses a large score term. ``auto`` must see the event
terms, weight them in, and agree with the unbiased ``surrogate`` estimator on the same policy.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import diffpg
from diffpg import estimators
from diffpg.policies import LinearGaussian

HORIZON, NUM_ENVS, REPEATS = 4, 2048, 16
PARAMS = {"K": jnp.array([[-1.0, -1.5]]), "log_std": jnp.log(jnp.array([0.3]))}


def gust_env():
    return diffpg.make("wind_gust", init_std=0.0, init_mean=jnp.array([0.8, 0.0]),
                       gust_weights=jnp.array([0.0, 4.0]), gust_bias=0.0, gust=jnp.array([0.0, 1.0]))


def repeated(name, seed):
    """``REPEATS`` independent estimates of ``NUM_ENVS`` rollouts: (flat gradients [R, P], diagnostics)."""
    estimate = getattr(estimators, name)(gust_env(), LinearGaussian(action_size=1), horizon=HORIZON,
                                         num_envs=NUM_ENVS)

    def one(key):
        grad, diagnostics = estimate(key, PARAMS)
        return ravel_pytree(grad)[0], diagnostics

    grads, diagnostics = jax.jit(lambda k: jax.lax.map(one, jax.random.split(k, REPEATS)))(jax.random.PRNGKey(seed))
    return np.asarray(grads, np.float64), diagnostics


@pytest.fixture(scope="module")
def runs():
    return {name: repeated(name, seed) for name, seed in (("auto", 1), ("surrogate", 2), ("pathwise", 3))}


def z_difference(a, b):
    """Per coordinate, (mean a − mean b) over the standard error of that difference (independent seeds)."""
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    return (a.mean(0) - b.mean(0)) / se


@pytest.mark.slow
def test_auto_takes_the_event_branch_and_weights_the_gust_terms_in(runs):
    _, diagnostics = runs["auto"]
    event_terms = np.asarray(diagnostics["event_terms"])
    assert np.all(np.isfinite(event_terms)) and np.all((event_terms >= 0) & (event_terms <= 1))
    # the pathwise part is confidently wrong here (next test), so the event terms carry most of the weight
    assert event_terms.mean() > 0.5, event_terms


@pytest.mark.slow
def test_auto_agrees_with_the_surrogate_where_pathwise_does_not(runs):
    """Two sets of 16 independent estimates: the difference of their means is within 5 SE (Welch's t with
    about 30 degrees of freedom: a chance failure has probability below 1e-4 per coordinate; auto's
    data-dependent weights add a bias far below one SE at 2048 rollouts). The same test must reject
    pathwise by more than 10 SE, or it would have no power to see auto ignore the gusts."""
    auto, surrogate, pathwise = runs["auto"][0], runs["surrogate"][0], runs["pathwise"][0]
    assert np.all(np.abs(z_difference(auto, surrogate)) < 5.0), z_difference(auto, surrogate)
    assert np.max(np.abs(z_difference(pathwise, surrogate))) > 10.0, z_difference(pathwise, surrogate)
