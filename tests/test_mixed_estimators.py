"""The estimators that mix or replace the pathwise gradient, against exact answers.

- a step reward 1[a > 0], where the pathwise gradient is exactly 0 and the truth is φ(μ/σ)/σ;
- a Gaussian bandit, where each estimator's per-rollout variance is known in closed form;
- the LQR, where the exact gradient is known (``diffpg.oracles.lqr``);
- a linear system with state-dependent Bernoulli gusts, where the exact gradient
  comes from enumerating every gust sequence on a short horizon.

Statistical tests use fixed seeds and state their tolerance in standard errors.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.scipy.stats import norm

import diffpg
from diffpg import estimators
from diffpg.errors import ConfigError, ProtocolError
from diffpg.estimators.batch import Groups
from diffpg.estimators.combine import bias_aware_weight, bias_lower_bound, mixing_weight, moments, shrunk_covariance
from diffpg.oracles import lqr as lqr_oracle
from diffpg.envs import OneStep
from diffpg.policies import GaussianMean, LinearGaussian


def repeated(estimate, params, repeats, seed):
    """``repeats`` independent estimates: (flat gradients [R, P], diagnostics with leading axis R)."""
    def one(key):
        grad, diagnostics = estimate(key, params)
        return ravel_pytree(grad)[0], diagnostics

    return jax.jit(lambda k: jax.lax.map(one, jax.random.split(k, repeats)))(jax.random.PRNGKey(seed))


# ---------------------------------------------------------------- the step reward 1[a > 0]

MU, SIGMA = 0.3, 0.5
STEP_TRUTH = float(norm.pdf(MU / SIGMA) / SIGMA)  # d/dμ P(μ + σξ > 0) = φ(μ/σ)/σ
STEP_ENV = OneStep(lambda a: jnp.where(a > 0.0, 1.0, 0.0))
STEP_POLICY = GaussianMean(SIGMA)
STEP_PARAMS = {"mu": jnp.array([MU])}


def step_estimate(name, num_envs=8192, **settings):
    estimate = getattr(estimators, name)(STEP_ENV, STEP_POLICY, horizon=1, num_envs=num_envs, **settings)
    grad, diagnostics = jax.jit(estimate)(jax.random.PRNGKey(11), STEP_PARAMS)
    return float(grad["mu"][0]), diagnostics


@pytest.mark.parametrize("name", ["pathwise", "surrogate"])
def test_pathwise_gradient_of_a_step_is_exactly_zero(name):
    """For every sample the reward is locally flat: the pathwise estimate is 0 with zero variance, i.e. biased."""
    grad, diagnostics = step_estimate(name)
    assert grad == 0.0 and float(diagnostics["grad_variance"]) == 0.0


@pytest.mark.parametrize("name", ["score_function", "zeroth_order"])
def test_score_function_and_zeroth_order_find_the_true_step_gradient(name):
    """z-test: 8192 rollouts, per-rollout variance from 64 groups; |z| < 4 (two-sided p ≈ 6e-5)."""
    grad, diagnostics = step_estimate(name, variance_groups=64)
    stderr = float(np.sqrt(diagnostics["grad_variance"] / 8192))
    assert abs(grad - STEP_TRUTH) < 4.0 * stderr, (grad, STEP_TRUTH, stderr)
    assert stderr < 0.05 * STEP_TRUTH  # the test has power: a 20% error would be 4 standard errors


# auto and discontinuity_switch need no more than 8192 rollouts; alpha_order's test rejects there too.
@pytest.mark.parametrize("name", ["alpha_order", "auto", "discontinuity_switch"])
def test_mixtures_detect_the_bias_and_recover_the_step_gradient(name):
    grad, diagnostics = step_estimate(name)
    assert abs(grad - STEP_TRUTH) < 0.10 * STEP_TRUTH, (grad, STEP_TRUTH)
    assert float(diagnostics["alpha"]) < 0.05  # (almost) no weight on the zero pathwise gradient
    if name == "auto":
        assert float(diagnostics["biased"]) == 1.0 and float(diagnostics["bias_statistic"]) > 1.0
    if name == "discontinuity_switch":
        assert float(diagnostics["discontinuous"]) == 1.0 and float(diagnostics["alpha"]) == 0.0
    if name == "alpha_order":
        assert float(diagnostics["biased"]) == 1.0 and float(diagnostics["alpha"]) == 0.0


HEAVISIDE_MU, HEAVISIDE_SIGMA = 0.4, 0.7
HEAVISIDE_TRUTH = float(norm.pdf(HEAVISIDE_MU / HEAVISIDE_SIGMA) / HEAVISIDE_SIGMA)  # 0.484


@pytest.mark.parametrize("num_envs", [1024, 2048])
def test_alpha_order_is_within_ten_percent_on_a_step(num_envs):
    """The step 1[a > 0] with μ = 0.4, σ = 0.7, where the earlier rule (α ∝ 1/√N) was 24 % low from 2,048 rollouts
    (z = 16 over 30 estimates). The mean of 30 estimates must be within 10 % of the truth; its standard error must
    be below 2.5 %, so that an unbiased rule passes with 4 standard errors to spare (chance failure < 1e-4) and
    the old one's 24 % could not."""
    estimate = estimators.alpha_order(STEP_ENV, GaussianMean(HEAVISIDE_SIGMA), horizon=1, num_envs=num_envs)
    grads, diagnostics = repeated(estimate, {"mu": jnp.array([HEAVISIDE_MU])}, 30, seed=21)
    grads = np.asarray(grads[:, 0])
    stderr = grads.std(ddof=1) / np.sqrt(len(grads))
    assert abs(grads.mean() - HEAVISIDE_TRUTH) < 0.10 * HEAVISIDE_TRUTH, (grads.mean(), HEAVISIDE_TRUTH, stderr)
    assert stderr < 0.025 * HEAVISIDE_TRUTH, stderr
    assert np.mean(np.asarray(diagnostics["biased"])) > 0.9  # the test finds the bias nearly every time


def test_alpha_order_false_positive_rate_is_at_most_delta():
    """On the smooth bandit −a² the first-order estimate is unbiased, so every rejection of "b = 0" is a false
    positive, at rate at most δ = 0.05 (the module docstring). Over 400 batches of 64 rollouts the count must not
    exceed 400 δ = 20 by 4 binomial standard errors √(400 δ (1 − δ)) = 4.4 (chance failure < 1e-4 at rate δ).
    Where it does not reject, α is the variance-minimizing ᾱ exactly."""
    env = OneStep(lambda a: -(a - TARGET) ** 2)
    estimate = estimators.alpha_order(env, GaussianMean(BANDIT_SIGMA), horizon=1, num_envs=64)
    _, diagnostics = repeated(estimate, {"mu": jnp.array([BANDIT_MU])}, 400, seed=22)
    biased = np.asarray(diagnostics["biased"]) > 0
    assert biased.sum() <= 20 + 4 * np.sqrt(400 * 0.05 * 0.95), biased.sum()
    alpha, optimum = np.asarray(diagnostics["alpha"]), np.asarray(diagnostics["alpha_variance_optimal"])
    np.testing.assert_array_equal(alpha[~biased], optimum[~biased])
    assert np.all(alpha[biased] == 0.0)


@pytest.mark.parametrize("name", ["inverse_variance", "per_step_inverse_variance"])
def test_inverse_variance_weighting_alone_cannot_see_the_bias(name):
    """The documented failure: zero variance, zero value, all the weight (docs/estimators.md)."""
    grad, diagnostics = step_estimate(name)
    assert grad == 0.0 and float(diagnostics["pathwise_weight"]) == 1.0


# ---------------------------------------------------------------- auto's weight: a bias the batch confirms

def weight_of_shifted_groups(shift_in_standard_errors):
    """auto's weight of X against Y = X-like noise + an offset, from 16 Gaussian groups of 4 rollouts (fixed seed).

    One dimension, per-rollout standard deviations 1 (X) and 3 (Y), so X̄ − Ȳ has standard error √(10/64);
    the offset is that many standard errors. Returns (bias-aware weight, variance-minimizing weight, ℓ²).
    """
    kx, ky = jax.random.split(jax.random.PRNGKey(14))
    groups, per_group = 16, 4
    x = jax.random.normal(kx, (groups, 1)) / np.sqrt(per_group)
    offset = shift_in_standard_errors * np.sqrt(10.0 / (groups * per_group))
    y = offset + 3.0 * jax.random.normal(ky, (groups, 1)) / np.sqrt(per_group)
    split = Groups(devices=1, large=0, small=groups, size=per_group)
    var_x, var_y, cov = moments(x, y, split)
    variance_optimal = mixing_weight(var_x, var_y, shrunk_covariance(var_x, var_y, cov, groups))
    return (float(bias_aware_weight(x, y, split, 0.999)), float(variance_optimal),
            float(bias_lower_bound(x - y, split, 0.999)))


def test_a_difference_of_a_few_standard_errors_leaves_the_variance_minimizing_weight():
    """At 3 standard errors (the size of a heavy-tailed Ȳ's chance excursion), the difference is inside the radius
    r = (1 + √(2 log 1000)) ≈ 4.7 standard errors in one dimension, so ℓ = 0 and the weight is α* exactly
    (with the shrunk covariance), where the plug-in bias ‖D̄‖² − σ²_D/N would have cut X's weight about tenfold."""
    alpha, variance_optimal, lower = weight_of_shifted_groups(3.0)
    assert lower == 0.0 and alpha == pytest.approx(variance_optimal, rel=1e-6), (alpha, variance_optimal)
    assert variance_optimal > 0.8  # X has a ninth of Y's variance: most of the weight


def test_covariance_shrinks_to_zero_within_its_noise_and_stays_when_clear():
    """ρ̂ = 0.2 from 16 groups is below one standard error (1/√15 ≈ 0.26): taken as 0. ρ̂ = 0.8 is three: kept
    as σ_XY (1 − 1/(15 · 0.64)) ≈ 0.90 σ_XY. Exact arithmetic, so the tolerance is float32 rounding."""
    assert float(shrunk_covariance(1.0, 4.0, 0.2 * 2.0, 16)) == 0.0
    assert float(shrunk_covariance(1.0, 4.0, 0.8 * 2.0, 16)) == pytest.approx(1.6 * (1 - 1 / (15 * 0.64)), rel=1e-6)
    assert float(shrunk_covariance(1.0, 4.0, -0.8 * 2.0, 16)) == pytest.approx(-1.6 * (1 - 1 / (15 * 0.64)), rel=1e-6)


def test_a_bias_the_batch_confirms_takes_the_weight_from_x():
    """At 30 standard errors ℓ is above 20 of them (30 − 4.7, less the noise of the standard error estimated with
    15 degrees of freedom). Then α = α* / (N ℓ² / σ²_D + 1), and with σ²_D estimated within a factor 2 of the truth
    (15 degrees of freedom), N ℓ² / σ²_D > 200 and α < α* / 200 < 0.01."""
    alpha, variance_optimal, lower = weight_of_shifted_groups(30.0)
    assert lower > 20.0**2 * 10.0 / 64 and alpha < 0.01, (alpha, lower)
    assert variance_optimal > 0.8  # the variance alone would still have trusted X


# ---------------------------------------------------------------- the Gaussian bandit −(a − a*)²

BANDIT_MU, BANDIT_SIGMA, TARGET = 1.0, 0.5, 0.0
D = BANDIT_MU - TARGET
EXPECTED_RETURN = -(D**2 + BANDIT_SIGMA**2)  # J = E[−(μ + σξ − a*)²]
BANDIT_VARIANCE = {
    # g = −(d + σξ)² ξ/σ: E g² = d⁴/σ² + 18d² + 15σ², minus (E g)² = 4d².
    ("score_function", "none"): D**4 / BANDIT_SIGMA**2 + 14 * D**2 + 15 * BANDIT_SIGMA**2,
    # g = −(2dξ² + σ(ξ³ − ξ)) with b = J: 12d² + 10σ² − 4d².
    ("score_function", "exact"): 8 * D**2 + 10 * BANDIT_SIGMA**2,
    # g = −2(d + σξ).
    ("pathwise", None): 4 * BANDIT_SIGMA**2,
    ("surrogate", "none"): 4 * BANDIT_SIGMA**2,
    # b = V(0) = −d²: g = −(2dξ² + σξ³), so E g² = 12d² + 15σ², minus 4d².
    ("zeroth_order", None): 8 * D**2 + 15 * BANDIT_SIGMA**2,
}


@pytest.mark.slow
@pytest.mark.parametrize("name, baseline", list(BANDIT_VARIANCE))
def test_per_rollout_variance_matches_the_closed_form(name, baseline):
    """Each of 16 independent estimates measures the per-rollout variance from 2048 single-rollout groups;
    their mean must match the closed form within 4 standard errors of that mean."""
    env = OneStep(lambda a: -(a - TARGET) ** 2)
    settings = {}
    if baseline == "exact":
        settings["baseline"] = lambda obs: jnp.asarray(EXPECTED_RETURN, jnp.float32)
    elif baseline is not None:
        settings["baseline"] = baseline
    estimate = getattr(estimators, name)(env, GaussianMean(BANDIT_SIGMA), horizon=1, num_envs=2048,
                                         variance_groups=2048, **settings)
    grads, diagnostics = repeated(estimate, {"mu": jnp.array([BANDIT_MU])}, 16, seed=12)
    measured = np.asarray(diagnostics["grad_variance"])
    stderr = measured.std(ddof=1) / np.sqrt(len(measured))
    assert abs(measured.mean() - BANDIT_VARIANCE[name, baseline]) < 4.0 * stderr, (measured.mean(), stderr)
    assert stderr < 0.05 * BANDIT_VARIANCE[name, baseline]  # precise enough to tell the formulas apart
    # And every estimator is unbiased here: E g = dJ/dμ = −2d.
    assert abs(grads.mean() - (-2 * D)) < 4.0 * np.sqrt(BANDIT_VARIANCE[name, baseline] / (16 * 2048))


# ---------------------------------------------------------------- the LQR, where the gradient is exact

LQR_PARAMS = {"K": jnp.array([[-0.5, -0.8]]), "log_std": jnp.log(jnp.array([0.5]))}


@pytest.fixture(scope="module")
def lqr_diagnostics():
    """16 estimates each of alpha_order and discontinuity_switch from 128 rollouts of 8 steps (γ = 0.95), at their defaults."""
    env, policy = diffpg.make("lqr"), LinearGaussian(action_size=1)
    return {name: repeated(getattr(estimators, name)(env, policy, horizon=8, num_envs=128, discount=0.95),
                           LQR_PARAMS, 16, seed=15)[1] for name in ("alpha_order", "discontinuity_switch")}


def test_alpha_order_trusts_the_pathwise_gradient_on_the_lqr(lqr_diagnostics):
    """Unbiased first-order estimate, far less noisy than the zeroth-order one: the test should not reject, so α is
    the variance-minimizing ᾱ = v₀ / (v₀ + v₁). It rejects at rate at most δ = 0.05 per batch: allow 2 of 16
    (probability < 0.05 even at δ exactly). The median α must stay above 0.5; it is above 0.8 here.
    (Under Suh et al.'s own rule α was 0 in every batch.)"""
    d = lqr_diagnostics["alpha_order"]
    alpha, optimum = np.asarray(d["alpha"]), np.asarray(d["alpha_variance_optimal"])
    assert np.sum(np.asarray(d["biased"])) <= 2 and np.sum(alpha < optimum - 1e-6) <= 2, (alpha, optimum)
    assert np.median(alpha) > 0.8, alpha  # the pathwise half takes most of the weight
    assert np.all(np.asarray(d["variance_first_order"]) < np.asarray(d["variance_zeroth_order"]))


def test_discontinuity_switch_sees_no_discontinuity_on_the_lqr(lqr_diagnostics):
    """The test's level is δ = 0.001 per batch: 16 batches should raise no alarm (allow 1: probability < 2e-4 at δ),
    and without one, discontinuity_switch mixes by variance and gives the pathwise half most of the weight."""
    d = lqr_diagnostics["discontinuity_switch"]
    assert np.sum(np.asarray(d["discontinuous"])) <= 1, d["discontinuity_pvalue"]
    assert np.median(np.asarray(d["alpha"])) > 0.8, d["alpha"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inverse_variance", "auto", "alpha_order", "discontinuity_switch", "per_step_inverse_variance"])
def test_mixtures_are_unbiased_on_the_lqr(name):
    """The mixtures' own machinery (PIPPS's backward pass; auto's two gradients and its weights) against
    the exact gradient. z-test per coordinate over 24 independent estimates of 128 rollouts; |t| < 5 with
    23 degrees of freedom fails by chance with probability < 1e-4 per coordinate. The mixtures pick their
    weights from the rollouts they weigh, a bias of order 1/groups, well inside this tolerance.
    (``surrogate`` is ``pathwise`` here, and ``zeroth_order`` is tested against exact values above.)"""
    env = diffpg.make("lqr")
    policy = LinearGaussian(action_size=1)
    params = LQR_PARAMS
    truth = ravel_pytree(lqr_oracle.policy_gradient(env, params, 8, 0.95))[0]
    estimate = getattr(estimators, name)(env, policy, horizon=8, num_envs=128, discount=0.95)
    grads, _ = repeated(estimate, params, 24, seed=13)
    z = (grads.mean(0) - truth) / (grads.std(0, ddof=1) / np.sqrt(24))
    assert np.all(np.abs(z) < 5.0), z


# ---------------------------------------------------------------- Bernoulli gusts: exact enumeration

class LinearDeterministic:
    """u = K x: the only randomness of a rollout is then the gusts, which can be enumerated."""

    def init(self, key, observation_size):
        return {"K": jnp.zeros((1, observation_size))}

    def sample(self, key, params, obs):
        return params["K"] @ obs

    def mode(self, params, obs):
        return params["K"] @ obs


class HiddenGusts:
    """``wind_gust`` with the gust's log-probability cut from the graph: a surrogate can no longer form its
    score term, which is what a pathwise gradient that ignores the events computes."""

    def __init__(self, env):
        self.env = env
        self.observation_size, self.action_size = env.observation_size, env.action_size

    def reset(self, key):
        return self.env.reset(key)

    def step(self, state, action):
        nxt = self.env.step(state, action)
        return nxt.replace(event_log_prob=jax.lax.stop_gradient(nxt.event_log_prob))


GUST_HORIZON, GUST_K = 4, jnp.array([[-1.0, -1.5]])


def gust_env():
    """A deterministic start and gusts whose chance is steep in the velocity, so the score term is large."""
    return diffpg.make("wind_gust", init_std=0.0, init_mean=jnp.array([0.8, 0.0]),
                       gust_weights=jnp.array([0.0, 4.0]), gust_bias=0.0, gust=jnp.array([0.0, 1.0]))


def enumerated_return(K, p):
    """J(K) = Σ over all 2^H gust sequences of P(sequence) · return, written out independently of the env."""
    total = 0.0
    for gusts in itertools.product([0.0, 1.0], repeat=GUST_HORIZON):
        x, prob, ret = p.init_mean, 1.0, 0.0
        for e in gusts:
            u = K @ x
            ret = ret - (x @ p.Q @ x + u @ p.R @ u)
            chance = jax.nn.sigmoid(p.gust_weights @ x + p.gust_bias)
            prob = prob * (chance if e else 1.0 - chance)
            x = p.A @ x + p.B @ u + e * p.gust
        total = total + prob * ret
    return total


@pytest.fixture(scope="module")
def gust_problem():
    env = gust_env()
    exact = jax.jit(jax.grad(enumerated_return))(GUST_K, env.params).ravel()
    return env, exact


def gust_z(env, exact):
    """z per coordinate of the surrogate's mean over 16 estimates of 2048 rollouts against the exact gradient."""
    estimate = estimators.surrogate(env, LinearDeterministic(), horizon=GUST_HORIZON, num_envs=2048)
    grads, _ = repeated(estimate, {"K": GUST_K}, 16, seed=14)
    return (grads.mean(0) - exact) / (grads.std(0, ddof=1) / np.sqrt(16)), grads.mean(0)


@pytest.mark.slow
def test_surrogate_matches_exact_enumeration_over_gusts(gust_problem):
    """|t| < 5 with 15 degrees of freedom: a chance failure has probability < 2e-4 per coordinate."""
    env, exact = gust_problem
    z, _ = gust_z(env, exact)
    assert np.all(np.abs(z) < 5.0), (z, exact)


@pytest.mark.slow
def test_dropping_the_gust_score_term_fails_the_same_test(gust_problem):
    """Without the events' score term the same z-test rejects decisively: the term is necessary."""
    env, exact = gust_problem
    z, mean = gust_z(HiddenGusts(env), exact)
    assert np.max(np.abs(z)) > 10.0, (z, mean, exact)
    # ... and what is left is exactly the pathwise gradient with the gusts held fixed.
    pathwise = estimators.pathwise(env, LinearDeterministic(), horizon=GUST_HORIZON, num_envs=2048)
    grads, _ = repeated(pathwise, {"K": GUST_K}, 16, seed=14)
    np.testing.assert_allclose(grads.mean(0), mean, rtol=1e-4)


# ---------------------------------------------------------------- bad input gets one sentence

def test_settings_errors_are_one_sentence():
    env, policy = STEP_ENV, STEP_POLICY
    with pytest.raises(ConfigError, match="num_envs >= 4"):
        estimators.alpha_order(env, policy, horizon=1, num_envs=2)
    with pytest.raises(ConfigError, match="baseline must be one of"):
        estimators.surrogate(env, policy, horizon=1, num_envs=8, baseline="mean")
    with pytest.raises(ConfigError, match="confidence"):
        estimators.auto(env, policy, horizon=1, num_envs=8, confidence=1.5)
    with pytest.raises(ProtocolError, match="log_prob"):
        estimators.inverse_variance(env, LinearDeterministic(), horizon=1, num_envs=8)

    class NoMode(GaussianMean):
        mode = None

    with pytest.raises(ProtocolError, match="mode"):
        estimators.zeroth_order(env, NoMode(1.0), horizon=1, num_envs=8)
