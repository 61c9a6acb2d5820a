"""The zeroth-order batched gradient (ZoBG) of Suh et al.: randomized smoothing with a noise-free baseline.

Suh, Simchowitz, Zhang & Tedrake (ICML 2022, "Do Differentiable Simulators
Give Better Policy Gradients?", eq. 4) inject Gaussian noise w_t into the
policy's output and estimate the gradient of the smoothed objective from
values alone:

    ∇̂[0] J = (1/N) Σ_i [V(w^i) − V(0)] · Σ_t ∇θ log π(a_t^i | s_t^i)

where V(w) = Σ_t γᵗ r_t is the return of the rollout with noise w, and V(0) the
return of the *noise-free* rollout (every action at the policy's mode) from
the same start and the same environment randomness. For a Gaussian policy,
∇_μ log π = w / σ², which is the form in the paper. V(0) does not depend on
the noise, so it is a baseline: the estimate is unbiased for ∇θ J like the
score function, and never differentiates the environment (it works when the
dynamics are discontinuous or a black box). The whole return credits every
action, as in the paper (no reward-to-go).

Each estimate costs 2 N H environment steps: N noisy rollouts and N noise-free ones.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ProtocolError
from ..rollouts import rollout
from ..types import float_dtype
from .batch import batch_groups, batch_keys, check_settings, group_estimate, group_gradients
from .dice import Acting
from .objectives import mask_ended, pathwise_surrogate
from .validate import validated


def noise_free(policy, key, params, obs):
    """The policy's mode: the rollout that gives the baseline V(0)."""
    return policy.mode(params, obs)


def check_zeroth_order_policy(policy, estimator="the zeroth-order estimator"):
    if not callable(getattr(policy, "mode", None)):
        raise ProtocolError(
            f"{estimator} needs mode(params, obs), the noise-free action, and {type(policy).__name__} has none; "
            "add one or use the score-function estimator")


def zeroth_order_batch(env, policy, *, horizon: int, discount: float):
    """``batch(keys, params) -> ((traj, advantage), returns)``: noisy rollouts and V(w) − V(0) per step."""
    reference_policy = Acting(policy, noise_free)

    def batch(keys, params):
        frozen = jax.lax.stop_gradient(params)
        traj = jax.vmap(lambda k: rollout(k, env, policy, frozen, horizon))(keys)
        reference = jax.vmap(lambda k: rollout(k, env, reference_policy, frozen, horizon))(keys)
        returns = jax.vmap(pathwise_surrogate, (0, None))(traj.reward, discount)
        baseline = jax.vmap(pathwise_surrogate, (0, None))(reference.reward, discount)
        advantage = jax.vmap(mask_ended)(jnp.broadcast_to((returns - baseline)[:, None], traj.done.shape), traj.done)
        return (traj, advantage), returns

    return batch


def zeroth_order_objective(policy):
    """``objective(params, (traj, advantage))``: the rollouts' mean of Σ_t log π(a_t|s_t) · stop_gradient(advantage_t)."""

    def objective(params, batch):
        traj, advantage = batch
        log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(params, traj.obs, traj.action)
        dtype = float_dtype(log_prob, advantage)  # float64 parameters meet float32 rewards under x64
        return jnp.sum(log_prob.astype(dtype) * jax.lax.stop_gradient(advantage).astype(dtype), axis=1).mean(), None

    return objective


def zeroth_order(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: Suh et al.'s ZoBG.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob`` and ``mode``.
      horizon, num_envs, discount, variance_groups: as for ``pathwise``.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``noise_free_return`` (mean V(0))
      and ``env_steps`` (2 N H).
    """
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, needs_log_prob=True, estimator="the zeroth-order estimator")
    check_zeroth_order_policy(policy)
    groups = batch_groups(num_envs, variance_groups, estimator="the zeroth-order estimator")
    batch = zeroth_order_batch(env, policy, horizon=horizon, discount=discount)
    objective = zeroth_order_objective(policy)

    def estimate(key, params):
        (traj, advantage), returns = batch(batch_keys(key, num_envs), params)
        grads, _ = group_gradients(objective, params, (traj, advantage), groups)
        grad, diagnostics = group_estimate(grads, groups, returns)
        noise_free = (returns - advantage[:, 0]).mean()
        return grad, {**diagnostics, "noise_free_return": noise_free, "env_steps": 2 * num_envs * horizon}

    return validated(estimate, env, policy, estimator="the zeroth-order estimator")
