"""Ascent: plain gradient ascent on J with any estimator of ∇θ J.

This is the founding question's experiment as a training algorithm. Each
update asks an estimator, ``factory(env, policy, horizon=T, num_envs=N,
discount=γ)`` from ``diffpg.estimators`` or a user's own with the same
signature, for ĝ ≈ ∇θ J over N fresh episodes of T steps from ``reset``, and
takes one guarded optimizer step on −ĝ (optax descends):

    θ ← θ − optimizer(−ĝ),    J(θ) = E[Σ_{t<T} γᵗ r_t]

Unlike apg and shac, nothing carries over between updates but θ and the
optimizer state: the estimator does its own rollouts, always from reset, so
estimators are compared at equal env steps on the same objective
(``benchmarks/training_curves.py``). The env steps of an update are the
estimator's own count (``diagnostics["env_steps"]``; zeroth order rolls each
perturbation twice), else N · T. The estimator's other scalar diagnostics are
logged with an ``estimator/`` prefix (``auto``'s weight is ``estimator/alpha``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .optimizer import guarded_step


def update(parts, key, state, poison):
    """One ascent update: (learner fields, no window, metrics, finite)."""
    cfg = parts.config
    ascent, diagnostics = parts.estimate(key, state.params)
    grads = poison(jax.tree.map(jnp.negative, ascent))
    params, opt_state, finite = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)
    own = {f"estimator/{name}": value for name, value in diagnostics.items()
           if name not in ("return", "env_steps") and jnp.ndim(value) == 0}
    metrics = {**own, "grad_norm": optax.tree.norm(grads), "return": diagnostics["return"],
               "env_steps_taken": jnp.asarray(diagnostics.get("env_steps", cfg.budget.steps_per_update), jnp.int32)}
    return dict(params=params, opt_state=opt_state), None, metrics, finite
