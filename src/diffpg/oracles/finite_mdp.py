"""Exact J(θ) and its gradient, computed two independent ways, on a finite MDP.

For a policy π_θ(a|s) on ``diffpg.envs.FiniteMDP`` with model P(s'|s, a),
rewards R(s, a, s') and start distribution ρ₀, write

    r(s, a)   = Σ_s' P(s'|s, a) R(s, a, s')            expected reward of a step
    P_π(s, s') = Σ_a π(a|s) P(s'|s, a),   r_π(s) = Σ_a π(a|s) r(s, a)

Infinite horizon, discount γ < 1: the Bellman equation V = r_π + γ P_π V is one
linear solve,

    V = (I − γ P_π)⁻¹ r_π,      J(θ) = ρ₀ᵀ V.

Finite horizon H (what an estimator with ``horizon=H`` estimates, any γ ≤ 1):
V_0 = 0, V_k = r_π + γ P_π V_{k−1}, J_H(θ) = ρ₀ᵀ V_H.

The exact gradient, two ways:

1. ``gradient_autodiff``: ``jax.grad`` of J(θ), straight through the solve (or the recursion).
2. ``gradient_policy_theorem``: the policy gradient theorem (Sutton et al., NeurIPS 2000),
   with every expectation computed exactly rather than sampled,

       ∇J = Σ_s d(s) Σ_a ∇θ π(a|s) Q(s, a),    Q(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V(s'),

   where d is the discounted state visitation, dᵀ = ρ₀ᵀ (I − γ P_π)⁻¹ (a second
   solve, with the transpose). For a finite horizon it is time-indexed,

       ∇J_H = Σ_{t<H} γᵗ Σ_s Pr(s_t = s) Σ_a ∇θ π(a|s) Q_{H−t}(s, a),   Q_k = r + γ P V_{k−1}.

   Only ∇θ π(a|s) is differentiated (a vector-Jacobian product of the policy's
   probabilities), never the solve, so the two ways share no derivative and
   their agreement checks both.

This is the exact answer to the founding question's setting: the rewards are
constants of the model, and the whole gradient flows through π.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from ..types import float_dtype


def policy_probabilities(env, policy, params):
    """π(a|s) as an [S, A] array, from ``policy.log_prob`` at the one-hot observation of each state."""
    states = jnp.eye(env.num_states, dtype=float_dtype(*jax.tree.leaves(params)))
    actions = jnp.arange(env.num_actions, dtype=states.dtype)[:, None]

    def row(obs):
        return jnp.exp(jax.vmap(lambda a: policy.log_prob(params, obs, a))(actions))

    return jax.vmap(row)(states)


def _check(discount, horizon):
    if horizon is None and not discount < 1.0:
        raise ConfigError(f"the infinite-horizon return needs a discount below 1, got {discount}; "
                          "give a finite horizon instead")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1):
        raise ConfigError(f"horizon must be a positive int or None (infinite), got {horizon!r}")


def _model(mdp, probs):
    """(r(s, a), P_π, r_π) for the model ``mdp`` (a ``FiniteMDPParams``) under π = probs."""
    r_sa = jnp.einsum("sat,sat->sa", mdp.transition, mdp.reward)
    p_pi = jnp.einsum("sa,sat->st", probs, mdp.transition)
    return r_sa, p_pi, jnp.sum(probs * r_sa, axis=1)


def values(mdp, probs, discount: float, horizon: int | None = None):
    """V(s): the solve (I − γ P_π)⁻¹ r_π when horizon is None, else the H-step recursion."""
    _check(discount, horizon)
    _, p_pi, r_pi = _model(mdp, probs)
    if horizon is None:
        return jnp.linalg.solve(jnp.eye(p_pi.shape[0], dtype=p_pi.dtype) - discount * p_pi, r_pi)
    v, _ = jax.lax.scan(lambda v, _: (r_pi + discount * p_pi @ v, None), jnp.zeros_like(r_pi), None,
                        length=horizon)
    return v


def expected_return(mdp, probs, discount: float, horizon: int | None = None):
    """J = ρ₀ᵀ V, exactly."""
    return mdp.initial @ values(mdp, probs, discount, horizon)


def action_values(mdp, probs, discount: float, horizon: int | None = None):
    """Q(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V(s'), with V of ``horizon − 1`` steps when finite."""
    r_sa, _, _ = _model(mdp, probs)
    if horizon is None:
        v = values(mdp, probs, discount)
    else:
        v = values(mdp, probs, discount, horizon - 1) if horizon > 1 else jnp.zeros_like(r_sa[:, 0])
    return r_sa + discount * jnp.einsum("sat,t->sa", mdp.transition, v)


def visitation_weights(mdp, probs, discount: float, horizon: int | None = None):
    """W(s, a) such that ∇J = Σ_{s,a} W(s, a) ∇θ π(a|s): d(s) Q(s, a), or its time-indexed sum."""
    _check(discount, horizon)
    r_sa, p_pi, r_pi = _model(mdp, probs)
    if horizon is None:
        eye = jnp.eye(p_pi.shape[0], dtype=p_pi.dtype)
        v = jnp.linalg.solve(eye - discount * p_pi, r_pi)
        d = jnp.linalg.solve((eye - discount * p_pi).T, mdp.initial)
        q = r_sa + discount * jnp.einsum("sat,t->sa", mdp.transition, v)
        return d[:, None] * q

    # V_0 … V_{H−1}, then Q_{H−t} for t = 0 … H−1 pairs with the state distribution at time t.
    def forward(v, _):
        return r_pi + discount * p_pi @ v, v

    _, vs = jax.lax.scan(forward, jnp.zeros_like(r_pi), None, length=horizon)   # vs[k] = V_k, k < H
    qs = r_sa[None] + discount * jnp.einsum("sat,kt->ksa", mdp.transition, vs)  # qs[k] = Q_{k+1}

    def accumulate(carry, q_remaining):
        mu, weight, total = carry
        return (mu @ p_pi, weight * discount, total + weight * mu[:, None] * q_remaining), None

    zero = jnp.zeros_like(r_sa)
    (_, _, total), _ = jax.lax.scan(accumulate, (mdp.initial, jnp.ones((), r_sa.dtype), zero), qs[::-1])
    return total


def policy_return(env, policy, params, discount: float, horizon: int | None = None):
    """J(θ) for ``policy`` with ``params`` on ``env`` (a ``diffpg.envs.FiniteMDP``)."""
    return expected_return(env.params, policy_probabilities(env, policy, params), discount, horizon)


def gradient_autodiff(env, policy, params, discount: float, horizon: int | None = None):
    """∇θ J by ``jax.grad`` through the linear solve (or the finite-horizon recursion)."""
    return jax.grad(policy_return, argnums=2)(env, policy, params, discount, horizon)


def gradient_policy_theorem(env, policy, params, discount: float, horizon: int | None = None):
    """∇θ J = Σ_s d(s) Σ_a ∇θ π(a|s) Q(s, a), with d and Q exact; only π is differentiated."""
    probs, pullback = jax.vjp(lambda p: policy_probabilities(env, policy, p), params)
    weights = visitation_weights(env.params, jax.lax.stop_gradient(probs), discount, horizon)
    return pullback(weights)[0]
