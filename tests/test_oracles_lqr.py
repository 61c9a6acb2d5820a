"""diffpg.oracles.lqr: the closed-form return and its adjoint gradient, against autodiff,
finite differences, hand formulas, and Monte Carlo rollouts of the environment."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.envs import LQRParams
from diffpg.oracles import lqr
from diffpg.estimators.objectives import pathwise_surrogate


def random_system(seed, n=3, m=2):
    """A random (not necessarily stable) n-state, m-input system with every term switched on."""
    rng = np.random.default_rng(seed)
    A = np.eye(n) + 0.2 * rng.normal(size=(n, n))
    B = rng.normal(size=(n, m))
    L = rng.normal(size=(n, n))
    Q = L @ L.T / n + 0.1 * np.eye(n)
    R = np.diag(rng.uniform(0.1, 1.0, m))
    C = rng.normal(size=(n, n))
    W = rng.normal(size=(n, n))
    return LQRParams(A=jnp.asarray(A), B=jnp.asarray(B), Q=jnp.asarray(Q), R=jnp.asarray(R),
                     init_mean=jnp.asarray(rng.normal(size=n)), init_cov=jnp.asarray(C @ C.T / n),
                     noise_cov=jnp.asarray(0.05 * W @ W.T / n)), \
        jnp.asarray(0.3 * rng.normal(size=(m, n))), jnp.asarray(rng.uniform(0.2, 0.8, m))


CASES = {
    "default": lambda: (LQRParams(), jnp.array([[-0.5, -0.8]]), jnp.array([0.5]), 20, 0.95),
    "random 3x2": lambda: (*random_system(0), 15, 0.9),
    "undiscounted": lambda: (*random_system(1), 8, 1.0),
    "deterministic policy": lambda: (LQRParams(), jnp.array([[-1.0, -1.5]]), jnp.array([0.0]), 20, 0.95),
}


FD_STEP = 1e-6


@pytest.fixture(scope="module")
def closed_forms(quick_jit):
    """For each case, in float64 and one compiled program per shape: J, the adjoint gradient,
    jax.grad of J, and central finite differences of J along every coordinate of (K, σ)."""

    def compute(params, K, std, discount, horizon):
        J = lambda K, std: lqr.expected_return(params, K, std, horizon, discount)  # noqa: E731
        flat = jnp.concatenate([K.ravel(), std])

        def J_flat(x):
            return J(x[:K.size].reshape(K.shape), x[K.size:])

        steps = FD_STEP * jnp.eye(flat.size, dtype=flat.dtype)
        fd = (jax.vmap(J_flat)(flat[None, :] + steps) - jax.vmap(J_flat)(flat[None, :] - steps)) / (2 * FD_STEP)
        return dict(J=J(K, std), adjoint=lqr.gradient(params, K, std, horizon, discount),
                    auto=jax.grad(J, argnums=(0, 1))(K, std),
                    fd=(fd[:K.size].reshape(K.shape), fd[K.size:]))

    compiled = quick_jit(compute, static_argnums=4)
    results = {}
    with jax.enable_x64(True):
        for case, build in CASES.items():
            params, K, std, horizon, discount = build()
            params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
            out = compiled(params, jnp.asarray(K, jnp.float64), jnp.asarray(std, jnp.float64),
                           jnp.float64(discount), horizon)
            results[case] = jax.tree.map(np.asarray, out)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_adjoint_gradient_equals_autodiff_of_the_return(case, closed_forms):
    out = closed_forms[case]
    (dK, dstd), (auto_K, auto_std) = out["adjoint"], out["auto"]
    assert dK.dtype == np.float64
    np.testing.assert_allclose(dK, auto_K, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dstd, auto_std, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", list(CASES))
def test_adjoint_gradient_equals_finite_differences(case, closed_forms):
    """Central differences with h = 1e-6 in float64: truncation error ~h² and rounding ~ε|J|/h, both
    below 1e-7 relative here, so 1e-6 relative is a real check."""
    out = closed_forms[case]
    scale = abs(float(out["J"]))
    for adjoint, fd in zip(out["adjoint"], out["fd"]):
        np.testing.assert_allclose(adjoint, fd, rtol=1e-6, atol=1e-6 * scale)
    assert np.linalg.norm(out["adjoint"][0]) > 1e-3 * scale  # a real gradient, not a vanishing one


def test_one_step_return_by_hand(x64):
    """H = 1: J = −(tr((Q + KᵀRK)(Σ₀ + μ₀μ₀ᵀ)) + tr(R diag σ²))."""
    params, K, std = random_system(2)
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    K, std = np.asarray(K, np.float64), np.asarray(std, np.float64)
    P0 = p.init_cov + np.outer(p.init_mean, p.init_mean)
    expected = -(np.trace((p.Q + K.T @ p.R @ K) @ P0) + np.trace(p.R @ np.diag(std**2)))
    np.testing.assert_allclose(lqr.expected_return(params, jnp.asarray(K), jnp.asarray(std), 1, 0.9), expected,
                               rtol=1e-12)


def test_deterministic_return_is_the_rollout_return(x64):
    """σ = 0, Σ₀ = 0, W = 0: nothing is random, and J is the return of the one trajectory, by a numpy loop."""
    params, K, _ = random_system(3)
    params = params.replace(init_cov=jnp.zeros((3, 3)), noise_cov=jnp.zeros((3, 3)))
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    K = np.asarray(K, np.float64)
    x, total = p.init_mean, 0.0
    for t in range(12):
        u = K @ x
        total -= 0.9**t * (x @ p.Q @ x + u @ p.R @ u)
        x = p.A @ x + p.B @ u
    np.testing.assert_allclose(lqr.expected_return(params, jnp.asarray(K), jnp.zeros(2), 12, 0.9), total, rtol=1e-12)


def test_more_noise_costs_more_and_zero_noise_has_zero_sigma_gradient(x64, quick_jit):
    """∂J/∂σ_i = −2σ_i Σ_t [γᵗR + BᵀΛ_{t+1}B]_ii ≤ 0, and exactly 0 at σ = 0."""
    params, K, std = random_system(4)
    gradient = quick_jit(lambda s: lqr.gradient(params, K, s, 10, 0.95)[1])
    assert np.all(np.asarray(gradient(std)) < 0)
    np.testing.assert_array_equal(gradient(jnp.zeros(2)), 0.0)


def test_policy_gradient_is_in_linear_gaussian_coordinates(lqr_problem, quick_jit):
    """{"K": ∂J/∂K, "log_std": σ ∂J/∂σ}, which is jax.grad of policy_return in those parameters."""
    env, params = lqr_problem["env"], lqr_problem["params"]
    H, g = lqr_problem["horizon"], lqr_problem["discount"]
    std = jnp.exp(params["log_std"])

    @quick_jit
    def parts(params):
        return (lqr.policy_gradient(env, params, H, g), lqr.gradient(env.params, params["K"], std, H, g),
                jax.grad(lambda p: lqr.policy_return(env, p, H, g))(params), lqr.policy_return(env, params, H, g),
                lqr.expected_return(env.params, params["K"], std, H, g))

    pg, (dK, dstd), auto, J, J_direct = parts(params)
    assert jax.tree.structure(pg) == jax.tree.structure(params)
    np.testing.assert_allclose(pg["K"], dK, rtol=1e-6)
    np.testing.assert_allclose(pg["log_std"], dstd * std, rtol=1e-6)
    np.testing.assert_allclose(pg["K"], auto["K"], rtol=1e-4)
    np.testing.assert_allclose(pg["log_std"], auto["log_std"], rtol=1e-4)
    np.testing.assert_allclose(J, J_direct, rtol=1e-6)


@pytest.mark.parametrize("case", ["default", "random 3x2"])
def test_closed_form_return_equals_the_monte_carlo_mean_of_rollouts(case, lqr_problem, assert_unbiased,
                                                                   quick_jit):
    """2**15 independent rollouts of the environment itself; their mean return is within 4 SE of J
    (see conftest for the 4), and the SE is under 1% of |J|, so a wrong term in J would show."""
    H, g = lqr_problem["horizon"], lqr_problem["discount"]
    policy = lqr_problem["policy"]
    if case == "default":
        env, params = lqr_problem["env"], lqr_problem["params"]
    else:
        sys_params, K, std = random_system(0)
        K = 0.5 * K  # keep the random system's returns moderate over the horizon
        sys_params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), sys_params)
        env = diffpg.envs.LQR(sys_params)
        H = 10
        policy = diffpg.policies.LinearGaussian(action_size=2)
        params = {"K": jnp.asarray(K, jnp.float32), "log_std": jnp.log(jnp.asarray(std, jnp.float32))}
    n = 2**15

    @quick_jit
    def returns(key):
        trajs = jax.vmap(lambda k: diffpg.rollout(k, env, policy, params, H))(jax.random.split(key, n))
        return jax.vmap(lambda r: pathwise_surrogate(r, g))(trajs.reward), lqr.policy_return(env, params, H, g)

    samples, exact = returns(jax.random.PRNGKey(2024))
    samples, exact = np.asarray(samples, np.float64)[:, None], float(exact)
    z, mean, se = assert_unbiased(samples, [exact], what=f"LQR return ({case})")
    assert se[0] < 0.01 * abs(exact)
