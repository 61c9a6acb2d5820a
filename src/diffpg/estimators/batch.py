"""The batch dimension of every estimator, in one place, and the checks on its settings.

An estimator averages a per-rollout surrogate f_i(θ) over N rollouts and
returns ĝ = ∇θ (1/N) Σ_i f_i(θ). Its diagnostics include the per-rollout
gradient variance tr Cov[∇f_i]. Computing each ∇f_i with ``vmap(grad)``
would cost several backward passes (every per-rollout weight gradient is
materialized); instead the N rollouts are split into G groups of M = N/G,
one gradient g_k is taken per group (the same arithmetic as one gradient of
the whole batch), and

    ĝ = (1/G) Σ_k g_k,        tr Cov[∇f_i] ≈ M/(G−1) · Σ_k ‖g_k − ĝ‖²

which is unbiased for independent rollouts. With G < 2 the variance is NaN.
Sharding the batch across devices is a change to ``grouped_gradient`` alone.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ..errors import ConfigError, ProtocolError


def check_settings(env, policy, *, horizon, num_envs, discount, variance_groups, needs_log_prob=False,
                   estimator="this estimator"):
    """Raise one clear sentence for a bad setting or an object that misses the protocol."""
    for name in ("observation_size", "action_size", "reset", "step"):
        if not hasattr(env, name):
            raise ProtocolError(f"{estimator} needs an environment with {name}; {type(env).__name__} has none "
                                "(see the Env protocol: observation_size, action_size, reset(key), step(state, action))")
    for name in ("init", "sample"):
        if not hasattr(policy, name):
            raise ProtocolError(f"{estimator} needs a policy with {name}(); {type(policy).__name__} has none")
    if needs_log_prob and not callable(getattr(policy, "log_prob", None)):
        raise ProtocolError(
            f"{estimator} needs log_prob(params, obs, action), and {type(policy).__name__} has none; "
            "a deterministic policy has no score function, so use the pathwise estimator or a stochastic policy")
    for name, value in (("horizon", horizon), ("num_envs", num_envs), ("variance_groups", variance_groups)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0.0 < discount <= 1.0:
        raise ConfigError(f"discount must be a number in (0, 1], got {discount!r}")


def group_count(num_envs: int, variance_groups: int) -> int:
    """The largest divisor of ``num_envs`` that is at most ``variance_groups``."""
    return max(g for g in range(1, min(num_envs, variance_groups) + 1) if num_envs % g == 0)


def grouped_gradient(objective: Callable, params, inputs, groups: int):
    """Gradient of the batch-mean objective, with the per-rollout variance from ``groups`` groups.

    ``objective(params, group_inputs) -> (mean surrogate over the group, aux)``;
    ``inputs`` is a pytree whose leaves have a leading batch axis N. Returns
    (grad, aux with leading axis N, grad_variance, grad_norm).
    """
    n = jax.tree.leaves(inputs)[0].shape[0]
    m = n // groups
    split = jax.tree.map(lambda x: x.reshape((groups, m) + x.shape[1:]), inputs)
    grads, aux = jax.vmap(jax.grad(objective, has_aux=True), in_axes=(None, 0))(params, split)
    grad = jax.tree.map(lambda g: g.mean(0), grads)
    spread = sum(jnp.sum((g - g.mean(0, keepdims=True)) ** 2) for g in jax.tree.leaves(grads))
    variance = jnp.where(groups > 1, m * spread / max(groups - 1, 1), jnp.nan)
    aux = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), aux)
    return grad, aux, variance, optax.tree.norm(grad)


def standard_diagnostics(returns, grad_norm, grad_variance) -> dict:
    """The diagnostics every estimator returns."""
    return {"return": returns.mean(), "return_std": returns.std(), "grad_norm": grad_norm,
            "grad_variance": grad_variance}


def batch_keys(key, num_envs: int):
    return jax.random.split(key, num_envs)


