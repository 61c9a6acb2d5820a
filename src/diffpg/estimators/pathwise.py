"""The pathwise (reparameterization, backprop-through-time) estimator.

With reparameterized actions a_t = g(ξ_t; θ, s_t) and differentiable
dynamics s_{t+1} = f(s_t, a_t) and reward r_t = r(s_t, a_t, s_{t+1}), the
whole return is a differentiable function of θ for fixed noise ξ, and

    ∇θ J = E_ξ[ ∇θ Σ_t γᵗ r_t(θ, ξ) ]

(scenario 1 of the founding question; Kingma & Welling 2014, and for control
Nguyen & Widrow 1990, Heess et al. 2015 "SVG"). It uses ∇r and ∇f, and is
typically far less noisy than the score function, but it is biased when the
rollout is not differentiable (contact, clipping, discontinuous rewards) and
its variance can explode with the horizon in chaotic systems (Parmas et al.
2018; Suh et al. 2022). ``truncate_every`` trades that variance for bias.
"""
from __future__ import annotations

import jax

from ..errors import ConfigError, ProtocolError
from ..rollouts import rollout
from .batch import batch_groups, batch_keys, check_settings, group_estimate, group_gradients
from .objectives import pathwise_surrogate
from .validate import require_gradient, validated


def pathwise(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
             truncate_every: int | None = None, remat: bool = True, variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``, the pathwise gradient of J.

    Args:
      env, policy: any objects following the Env and Policy protocols.
      horizon: steps per rollout, H.
      num_envs: rollouts averaged per estimate, N (each from its own ``reset``).
      discount: γ in J = E[Σ_{t<H} γᵗ r_t].
      truncate_every: stop the gradient through the state every k steps (None: full BPTT).
      remat: recompute each step in the backward pass (``jax.checkpoint``) instead of storing
        its intermediates. On by default: memory is then the carried states and the policy's
        noise, and on the CPU recomputing a small step is cheaper than writing and reading back
        its residuals (``benchmarks/gradient_cost.py`` measures both).
      variance_groups: groups used for the per-rollout gradient variance (see ``batch``).

    Returns:
      ``estimate``: jit-able; ``grad`` has the structure of params and is the ascent
      direction; diagnostics hold ``return`` (mean of Σ γᵗ r_t), ``return_std``,
      ``grad_norm`` and ``grad_variance`` (trace of the per-rollout covariance).

    Example:
      >>> import jax, diffpg
      >>> env = diffpg.make("pendulum")
      >>> policy = diffpg.policies.GaussianMLP(action_size=1)
      >>> estimate = diffpg.estimators.pathwise(env, policy, horizon=50, num_envs=64)
      >>> key = jax.random.PRNGKey(0)
      >>> params = policy.init(key, env.observation_size)
      >>> grad, diag = jax.jit(estimate)(key, params)
      >>> jax.tree.structure(grad) == jax.tree.structure(params)
      True
      >>> sorted(diag)
      ['grad_norm', 'grad_variance', 'return', 'return_std']
    """
    require_gradient(env, "the pathwise estimator")
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, estimator="the pathwise estimator")
    if truncate_every is not None and (isinstance(truncate_every, bool) or not isinstance(truncate_every, int)
                                       or truncate_every < 1):
        raise ConfigError(f"truncate_every must be a positive int or None, got {truncate_every!r}")
    if getattr(policy, "reparameterized", True) is False:
        raise ProtocolError(
            f"the pathwise estimator needs a reparameterized policy, and {type(policy).__name__} draws discrete "
            "actions that carry no gradient; use score_function or surrogate")
    groups = batch_groups(num_envs, variance_groups, estimator="the pathwise estimator")

    def objective(params, keys):
        def one(key):
            traj = rollout(key, env, policy, params, horizon, truncate_every=truncate_every, remat=remat)
            return pathwise_surrogate(traj.reward, discount)

        returns = jax.vmap(one)(keys)
        return returns.mean(), returns

    def estimate(key, params):
        grads, returns = group_gradients(objective, params, batch_keys(key, num_envs), groups)
        return group_estimate(grads, groups, returns)

    return validated(estimate, env, policy, estimator="the pathwise estimator")
