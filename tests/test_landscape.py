"""diffpg.landscape: the slice J(θ + s·d), raw with common random numbers and Gaussian-smoothed.

Exact checks: the raw slice is the objective at θ + s·d with the same key,
its slope is the pathwise directional derivative. Statistical check (z-test
at 4 standard errors, as in conftest): on the one-step reward 1[a > 0], where
the pathwise slope is exactly 0, the smoothed slope estimates the derivative
of the smoothed objective, known in closed form.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

import diffpg
from diffpg import landscape
from diffpg.envs import OneStep
from diffpg.errors import ConfigError
from diffpg.policies import GaussianMean

POLICY_STD = 0.5


def threshold():
    """One step, reward 1[a > 0]: a jump the pathwise gradient cannot see; a ~ N(0.3, 0.5²)."""
    return OneStep(lambda a: a > 0), GaussianMean(POLICY_STD, mean=0.3)


@pytest.fixture(scope="module")
def lqr_slice():
    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=1, init_std=0.3)
    params = {"K": jnp.array([[-0.5, -0.8]]), "log_std": jnp.log(jnp.array([0.3]))}
    objective = landscape.return_objective(env, policy, horizon=10, num_envs=4)
    direction = landscape.random_direction(jax.random.PRNGKey(3), params)
    offsets = jnp.linspace(-0.5, 0.5, 11)
    cut = landscape.landscape_slice(jax.random.PRNGKey(5), objective, params, direction, offsets,
                                    smoothing=0.1, samples=16)
    return dict(env=env, policy=policy, params=params, objective=objective, direction=direction, cut=cut)


def test_directions_have_unit_length(lqr_slice):
    d = lqr_slice["direction"]
    assert jax.tree.structure(d) == jax.tree.structure(lqr_slice["params"])
    assert float(diffpg.diagnostics.cosine(d, d)) == pytest.approx(1.0)
    assert float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(d)))) == pytest.approx(1.0, rel=1e-6)
    g = {"K": jnp.array([[3.0, 4.0]]), "log_std": jnp.zeros(1)}
    np.testing.assert_allclose(landscape.unit(g)["K"], [[0.6, 0.8]], rtol=1e-6)


def test_the_raw_slice_is_the_objective_with_the_same_key_at_every_offset(lqr_slice):
    s = lqr_slice
    cut = s["cut"]
    k_eval, _ = jax.random.split(jax.random.PRNGKey(5))
    objective = jax.jit(s["objective"])
    for i in (0, 5, 10):
        moved = landscape.along(s["params"], s["direction"], cut.offsets[i])
        assert float(cut.raw[i]) == pytest.approx(float(objective(k_eval, moved)), rel=1e-5)


def test_the_raw_slope_is_the_pathwise_derivative_along_d(lqr_slice):
    s = lqr_slice
    k_eval, _ = jax.random.split(jax.random.PRNGKey(5))
    grad = jax.jit(jax.grad(s["objective"], argnums=1))(k_eval, s["params"])
    expected = sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(s["direction"])))
    assert float(s["cut"].raw_slope) == pytest.approx(float(expected), rel=1e-5)
    # and, the function being smooth, it matches the central difference of the raw slice at s = 0
    cut = s["cut"]
    central = (cut.raw[6] - cut.raw[4]) / (cut.offsets[6] - cut.offsets[4])
    assert float(cut.raw_slope) == pytest.approx(float(central), rel=0.05)


def test_the_objective_is_the_mean_discounted_return_of_rollouts():
    env, policy = threshold()
    params = policy.init(None, 1)
    objective = landscape.return_objective(env, policy, horizon=1, num_envs=5, discount=0.9)
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    one = jax.jit(lambda k: diffpg.rollout(k, env, policy, params, 1).reward[0])
    by_hand = np.mean([float(one(k)) for k in keys])
    assert float(jax.jit(objective)(jax.random.PRNGKey(0), params)) == pytest.approx(by_hand)


@pytest.mark.slow
def test_on_a_jump_the_pathwise_slope_is_zero_and_the_smoothed_slope_is_right():
    """J(μ) = Φ(μ/σπ); smoothing along s with σ gives Φ(μ/√(σπ² + σ²)), whose slope at μ = 0.3 is exact.

    Each repeat draws fresh keys (rollouts and smoothing offsets); R = 64 repeats give the standard error.
    """
    env, policy = threshold()
    params = policy.init(None, 1)
    objective = landscape.return_objective(env, policy, horizon=1, num_envs=64)
    direction = {"mu": jnp.array([1.0])}
    sigma = 0.2

    def one(key):
        cut = landscape.landscape_slice(key, objective, params, direction, jnp.linspace(-0.5, 0.5, 5),
                                        smoothing=sigma, samples=128)
        return cut.raw_slope, cut.smoothed_slope, cut.raw

    raw_slope, smoothed_slope, raw = jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), 64))
    assert np.all(np.asarray(raw_slope) == 0.0)  # a staircase: flat between jumps
    scale = np.sqrt(POLICY_STD**2 + sigma**2)
    exact = float(norm.pdf(0.3 / scale) / scale)
    mean, se = float(smoothed_slope.mean()), float(smoothed_slope.std(ddof=1) / np.sqrt(64))
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    assert se < 0.05 * exact  # sharp enough that a zero (the pathwise answer) would fail by far
    assert np.all(np.diff(np.asarray(raw), axis=1) >= 0)  # more mean, more often above zero: non-decreasing


def test_plot_writes_a_png(lqr_slice, tmp_path):
    from diffpg.report.landscape import plot

    path = plot(lqr_slice["cut"], tmp_path / "slice.png", title="lqr")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("kwargs, phrase", [
    (dict(smoothing=0.0), "smoothing must be positive"),
    (dict(samples=1), "samples must be an int of at least 2"),
    (dict(offsets=jnp.zeros((2, 2))), "offsets must be a non-empty 1-D array"),
])
def test_bad_arguments_are_one_sentence(kwargs, phrase, assert_one_sentence):
    arguments = dict(offsets=jnp.linspace(-1, 1, 3), smoothing=0.1, samples=4) | kwargs
    offsets = arguments.pop("offsets")
    with pytest.raises(ConfigError) as e:
        landscape.landscape_slice(jax.random.PRNGKey(0), lambda k, p: 0.0, {"mu": jnp.zeros(1)},
                                  {"mu": jnp.ones(1)}, offsets, **arguments)
    assert_one_sentence(e, ConfigError, phrase)
