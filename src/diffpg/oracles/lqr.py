"""Closed forms for the finite-horizon LQR under a linear-Gaussian policy.

System (``diffpg.envs.LQR``): x_{t+1} = A x_t + B u_t + w_t, w_t ~ N(0, W),
r_t = −(x_tᵀQx_t + u_tᵀRu_t), x_0 ~ N(μ₀, Σ₀). Policy u_t = K x_t + σ ⊙ ε_t.
With M = A + BK, S = diag(σ²) and the second moment P_t = E[x_t x_tᵀ]:

    P_0 = Σ₀ + μ₀μ₀ᵀ,     P_{t+1} = M P_t Mᵀ + B S Bᵀ + W
    J(K, σ) = −Σ_{t<H} γᵗ [ tr((Q + KᵀRK) P_t) + tr(R S) ]

The gradient follows from the adjoint (cost-to-go) matrices
Λ_H = 0, Λ_t = γᵗ (Q + KᵀRK) + Mᵀ Λ_{t+1} M:

    ∇_K J = −2 Σ_{t<H} (γᵗ R K + Bᵀ Λ_{t+1} M) P_t
    ∂J/∂S_ii = −Σ_{t<H} [γᵗ R + Bᵀ Λ_{t+1} B]_ii,     ∂J/∂log σ_i = 2 σ_i² ∂J/∂S_ii

(the finite-horizon, discounted form of the policy gradient of Fazel et al.,
ICML 2018). Tests check the adjoint formula against ``jax.grad`` of the
forward one, and the estimators against both.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _second_moments(p, K, std, horizon):
    M = p.A + p.B @ K
    N = p.B @ jnp.diag(std**2) @ p.B.T + p.noise_cov

    def forward(P, _):
        return M @ P @ M.T + N, P

    _, Ps = jax.lax.scan(forward, p.init_cov + jnp.outer(p.init_mean, p.init_mean), None, length=horizon)
    return M, Ps


def expected_return(params, K, std, horizon: int, discount: float = 1.0):
    """J(K, σ) = E[Σ_{t<H} γᵗ r_t] exactly, for the LQR with ``params`` (an ``LQRParams``)."""
    _, Ps = _second_moments(params, K, std, horizon)
    weights = discount ** jnp.arange(horizon, dtype=Ps.dtype)
    state_cost = jnp.einsum("ij,tji->t", params.Q + K.T @ params.R @ K, Ps)
    action_cost = jnp.trace(params.R @ jnp.diag(std**2))
    return -jnp.sum(weights * (state_cost + action_cost))


def gradient(params, K, std, horizon: int, discount: float = 1.0):
    """(∂J/∂K, ∂J/∂σ) from the adjoint recursion; std may be zero (a deterministic policy)."""
    M, Ps = _second_moments(params, K, std, horizon)
    cost = params.Q + K.T @ params.R @ K
    weights = discount ** jnp.arange(horizon, dtype=Ps.dtype)

    def backward(lam_next, inputs):
        w_t, P_t = inputs
        dK = w_t * params.R @ K @ P_t + params.B.T @ lam_next @ M @ P_t
        dS = jnp.diag(w_t * params.R + params.B.T @ lam_next @ params.B)
        return w_t * cost + M.T @ lam_next @ M, (dK, dS)

    zero = jnp.zeros_like(params.A)
    _, (dK, dS) = jax.lax.scan(backward, zero, (weights, Ps), reverse=True)
    return -2.0 * dK.sum(0), -2.0 * std * dS.sum(0)


def policy_gradient(env, policy_params, horizon: int, discount: float = 1.0):
    """∇J in the structure of ``LinearGaussian`` params: {"K": ∂J/∂K, "log_std": ∂J/∂log σ}."""
    std = jnp.exp(policy_params["log_std"])
    dK, dstd = gradient(env.params, policy_params["K"], std, horizon, discount)
    return {"K": dK, "log_std": dstd * std}


def policy_return(env, policy_params, horizon: int, discount: float = 1.0):
    """J for ``LinearGaussian`` params on ``env`` (a ``diffpg.envs.LQR``)."""
    return expected_return(env.params, policy_params["K"], jnp.exp(policy_params["log_std"]), horizon, discount)
