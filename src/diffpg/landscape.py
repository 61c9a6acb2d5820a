"""A landscape slice: the expected return along one line through parameter space.

For parameters θ and a direction d of unit length (over all leaves together),
the slice is the function of one number

    J(s) = J(θ + s·d).

It is drawn two ways, which is what shows why a pathwise gradient can mislead:

- **raw**, with common random numbers: Ĵ(s) = (1/N) Σ_i R(τ_i(θ + s·d; ξ_i)),
  the same noise ξ_i (the same keys, for reset and for every action) at every
  s. This is exactly the function the pathwise estimator differentiates: for
  fixed ξ, d/ds Ĵ(s) at s = 0 is ∇θĴ · d, the pathwise gradient along d
  (``raw_slope``, by reverse-mode autodiff). Where the rollout is smooth, Ĵ is
  too and its slope points where J goes. Where it is not (contact, a jump in
  the reward, chaos over a long horizon) Ĵ is a staircase or a fractal: flat
  almost everywhere with jumps the derivative never sees, or wiggling faster
  than any step a learner would take.

- **smoothed**, by Gaussian smoothing along the line:

      J_σ(s) = E_{ε~N(0,1)}[ Ĵ(s + σε) ],

  estimated with M offsets ε_k shared by every s. By Stein's identity its
  slope is

      d/ds J_σ(s) = E[ ε (Ĵ(s + σε) − Ĵ(s)) ] / σ,

  a zeroth-order (randomized-smoothing) estimate that needs values only
  (``smoothed_slope``, at s = 0; Nesterov & Spokoiny 2017, and along a line
  Suh et al., "Do Differentiable Simulators Give Better Policy Gradients?",
  ICML 2022, whose ZoBG subtracts the same noise-free baseline Ĵ(s)).

Averaging over the policy's own noise smooths too: with N large and fresh
keys, Ĵ tends to J, which is smooth whenever the policy noise is (J is the
return convolved with the action density). Pass an objective with more
rollouts to see that; this module fixes the keys so the raw slice is what one
pathwise estimate sees.

Example (``diffpg.report.landscape.plot(cut, "runs/landscape.png")`` then draws it):
  >>> import jax, jax.numpy as jnp, diffpg
  >>> from diffpg.landscape import landscape_slice, return_objective, unit
  >>> env, policy = diffpg.make("pendulum"), diffpg.policies.GaussianMLP(action_size=1)
  >>> params = policy.init(jax.random.PRNGKey(0), env.observation_size)
  >>> objective = return_objective(env, policy, horizon=50, num_envs=8)
  >>> d = unit(jax.grad(objective, argnums=1)(jax.random.PRNGKey(1), params))  # or random_direction(key, params)
  >>> cut = landscape_slice(jax.random.PRNGKey(1), objective, params, d, jnp.linspace(-1, 1, 11), smoothing=0.1)
  >>> cut.raw.shape, cut.smoothed.shape
  ((11,), (11,))
  >>> bool(cut.raw_slope > 0)  # d is the pathwise gradient's own direction, so the raw slope is its norm
  True
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .errors import ConfigError
from .estimators.objectives import pathwise_surrogate
from .rollouts import rollout


class Slice(NamedTuple):
    """J along θ + s·d: the raw (common random numbers) and the smoothed curve, and their slopes at s = 0."""

    offsets: jax.Array         # [S] the values of s
    raw: jax.Array             # [S] Ĵ(s), the same keys at every s
    smoothed: jax.Array        # [S] J_σ(s) = E_ε Ĵ(s + σε)
    raw_slope: jax.Array       # d/ds Ĵ at 0: the pathwise gradient along d
    smoothed_slope: jax.Array  # d/ds J_σ at 0: the zeroth-order (Gaussian smoothing) gradient along d
    smoothing: float           # σ


def unit(direction):
    """``direction`` (a pytree, e.g. a gradient) scaled to unit Euclidean length over all its leaves."""
    norm = optax.tree.norm(direction)
    return jax.tree.map(lambda x: x / norm, direction)


def random_direction(key, params):
    """A direction drawn uniformly from the unit sphere in the space of ``params``."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return unit(jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
                                             for k, x in zip(keys, leaves)]))


def along(params, direction, s):
    """θ + s·d."""
    return jax.tree.map(lambda p, d: p + s * d, params, direction)


def return_objective(env, policy, *, horizon: int, num_envs: int = 1, discount: float = 1.0) -> Callable:
    """``objective(key, params)``: the mean of Σ_{t<H} γᵗ r_t over ``num_envs`` rollouts from keys split from ``key``.

    With the key held fixed it is a deterministic, differentiable function of
    params whose gradient is one pathwise estimate of ∇θ J.
    """
    for name, value in (("horizon", horizon), ("num_envs", num_envs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")

    def objective(key, params):
        def one(k):
            return pathwise_surrogate(rollout(k, env, policy, params, horizon).reward, discount)

        return jax.vmap(one)(jax.random.split(key, num_envs)).mean()

    return objective


def landscape_slice(key, objective: Callable, params, direction, offsets, *, smoothing: float = 0.1,
                    samples: int = 64) -> Slice:
    """J(θ + s·d) at each s in ``offsets``, raw and Gaussian-smoothed; see the module docstring.

    Args:
      key: the common random numbers: one key for every evaluation of the raw slice, and the ε_k.
      objective: ``objective(key, params) -> scalar``, e.g. ``return_objective(...)``.
      params, direction: θ and d (pytrees of the same structure; d is used as given, see ``unit``).
      offsets: the values of s, a 1-D array.
      smoothing: σ, the standard deviation of the Gaussian smoothing in s (same units as s).
      samples: M, the number of offsets ε_k averaged for each smoothed value.

    Returns:
      A ``Slice``. Cost: S·(M + 1) evaluations of ``objective`` and one gradient.
    """
    if not smoothing > 0:
        raise ConfigError(f"smoothing must be positive, got {smoothing!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ConfigError(f"samples must be an int of at least 2, got {samples!r}")
    offsets = jnp.asarray(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ConfigError(f"offsets must be a non-empty 1-D array of s values, got shape {offsets.shape}")

    @jax.jit
    def compute(key, params, direction, offsets):
        k_eval, k_noise = jax.random.split(key)
        epsilon = jax.random.normal(k_noise, (samples,))

        def value(s):
            return objective(k_eval, along(params, direction, s))

        raw = jax.lax.map(value, offsets)
        smoothed = jax.lax.map(lambda s: jax.vmap(value)(s + smoothing * epsilon).mean(), offsets)
        zero = jnp.zeros((), offsets.dtype)
        raw_slope = jax.grad(value)(zero)
        smoothed_slope = jnp.mean(epsilon * (jax.vmap(value)(smoothing * epsilon) - value(zero))) / smoothing
        return raw, smoothed, raw_slope, smoothed_slope

    raw, smoothed, raw_slope, smoothed_slope = compute(key, params, direction, offsets)
    return Slice(offsets, raw, smoothed, raw_slope, smoothed_slope, float(smoothing))
