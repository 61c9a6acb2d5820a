"""The batch axis of every estimator, in one place: its settings, its groups and its devices.

An estimator averages a per-rollout surrogate f_i(θ) over N rollouts and
returns ĝ = ∇θ (1/N) Σ_i f_i(θ). Its diagnostics include the per-rollout
gradient variance σ² = tr Cov[∇f_i]. Computing each ∇f_i with ``vmap(grad)``
would cost several backward passes (every per-rollout weight gradient is
materialized); instead the N rollouts are split into G groups of sizes m_k
(Σ_k m_k = N), one gradient g_k = (1/m_k) Σ_{i∈k} ∇f_i is taken per group
(the same arithmetic as one gradient of the whole batch), and

    ĝ = Σ_k (m_k/N) g_k,        σ̂² = 1/(G−1) · Σ_k m_k ‖g_k − ĝ‖².

σ̂² is unbiased for independent rollouts, with equal or unequal groups (the
between-groups mean square of a one-way analysis of variance): each
g_k − ĝ has mean 0 and E‖g_k − ĝ‖² = σ² (1/m_k − 1/N), so
E Σ_k m_k ‖g_k − ĝ‖² = σ² (G − 1). With equal groups, m_k = N/G.

The groups (``Groups``) are chosen so that the variance always exists:
G ≥ 2 groups of at least ``min_size`` rollouts each, as many as
``variance_groups`` asks for (rounded up to a multiple of the device count),
equal when N allows it (a divisor of N/D within a factor 2 of the count asked
for), otherwise of two sizes ⌊N/G⌋ and ⌈N/G⌉ (two vmaps of the objective, one
per size). A setting that cannot give two groups is refused in one sentence.

The batch is sharded over all visible devices (``diffpg.sharding``): the
keys, and every array with the batch axis in front, are laid over the mesh,
device d holding rollouts d·N/D … (d+1)·N/D − 1 and the groups within
them, and the mean over groups is XLA's cross-device all-reduce. N must be a
multiple of the device count D.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError
from ..sharding import check_divisible, replicate, shard_batch
from .validate import check_members


def check_settings(env, policy, *, horizon, num_envs, discount, variance_groups, needs_log_prob=False,
                   estimator="this estimator"):
    """Raise one clear sentence for a bad setting or an object that misses the protocol."""
    check_members(env, policy, needs_log_prob=needs_log_prob, estimator=estimator)
    for name, value in (("horizon", horizon), ("num_envs", num_envs), ("variance_groups", variance_groups)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0.0 < discount <= 1.0:
        raise ConfigError(f"discount must be a number in (0, 1], got {discount!r}")


@dataclasses.dataclass(frozen=True)
class Groups:
    """How N = D·n rollouts split into groups: on each of D devices, ``large`` groups of size+1, then size.

    Group k of the stacked group axis (all devices' large groups, then all devices' others) has
    ``sizes[k]`` rollouts.
    """

    devices: int
    """D, the devices the batch is laid over."""
    large: int
    """Groups of ``size + 1`` rollouts per device (0 when the groups are equal)."""
    small: int
    """Groups of ``size`` rollouts per device."""
    size: int
    """m, the smaller group size."""

    @property
    def num_envs(self) -> int:
        return self.devices * (self.large * (self.size + 1) + self.small * self.size)

    @property
    def count(self) -> int:
        """G, the number of groups."""
        return self.devices * (self.large + self.small)

    @property
    def sizes(self) -> np.ndarray:
        """m_k for each group, in the order of the stacked group axis."""
        return np.array([self.size + 1] * (self.devices * self.large) + [self.size] * (self.devices * self.small))


def batch_groups(num_envs: int, variance_groups: int, *, min_size: int = 1,
                 estimator: str = "this estimator") -> Groups:
    """The groups for N = ``num_envs`` rollouts (see the module docstring), or one sentence why there are none."""
    devices = check_divisible(num_envs)
    local = num_envs // devices
    per_device = min(-(-variance_groups // devices), local // min_size)
    if devices * per_device < 2:
        if variance_groups < 2:
            raise ConfigError(f"variance_groups must be at least 2 (the gradient variance is the spread between "
                              f"groups), got {variance_groups}")
        groups = "rollouts" if min_size == 1 else f"groups of at least {min_size} rollouts"
        raise ConfigError(f"{estimator} needs num_envs of at least {max(2, devices) * min_size} (its gradient "
                          f"variance is the spread between at least 2 {groups}), got {num_envs}")
    divisors = [d for d in range(per_device, (per_device + 1) // 2 - 1, -1) if local % d == 0 and devices * d >= 2]
    if divisors:
        return Groups(devices=devices, large=0, small=divisors[0], size=local // divisors[0])
    size, large = divmod(local, per_device)
    return Groups(devices=devices, large=large, small=per_device - large, size=size)


def _parts(groups: Groups):
    """(groups, size, first rollout, last rollout) within a device, for each group size present."""
    boundary = groups.large * (groups.size + 1)
    end = boundary + groups.small * groups.size
    return [part for part in ((groups.large, groups.size + 1, 0, boundary), (groups.small, groups.size, boundary, end))
            if part[0] > 0]


def split_groups(inputs, groups: Groups) -> list:
    """Leaves [N, ...] -> one pytree [G_s, m_s, ...] per group size s present (stacked order of ``Groups``)."""
    inputs = shard_batch(inputs)
    d = groups.devices

    def part(count, size, start, stop):
        return jax.tree.map(lambda x: shard_batch(x.reshape((d, -1) + x.shape[1:])[:, start:stop]
                                                  .reshape((d * count, size) + x.shape[1:])), inputs)

    return [part(*p) for p in _parts(groups)]


def join_groups(parts: list, groups: Groups):
    """The inverse of ``split_groups``: pytrees [G_s, m_s, ...] -> leaves [N, ...] in the original order."""
    d = groups.devices
    local = [jax.tree.map(lambda x: x.reshape((d, -1) + x.shape[2:]), p) for p in parts]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1).reshape((-1,) + xs[0].shape[2:]), *local)


def group_gradients(objective: Callable, params, inputs, groups: Groups, differentiate=jax.grad):
    """Per-group gradients of ``objective(params, group_inputs) -> (mean over the group, aux)``.

    ``inputs`` has leading batch axis N; returns (grads with a leading axis G, aux with leading axis N).
    ``differentiate`` is ``jax.grad``, or ``jax.jacrev`` for an objective with several outputs.
    """
    gradient = differentiate(objective, has_aux=True)
    outputs = [jax.vmap(gradient, in_axes=(None, 0))(params, p) for p in split_groups(inputs, groups)]
    grads = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *[g for g, _ in outputs])
    return grads, join_groups([a for _, a in outputs], groups)


def group_mean(x, groups: Groups):
    """ĝ = Σ_k (m_k/N) x_k over the leading (group) axis, replicated on every device."""
    weights = jnp.asarray(groups.sizes / groups.num_envs, x.dtype)
    return replicate(jnp.tensordot(weights, x, axes=1))


def group_covariance(x, y, groups: Groups):
    """1/(G−1) Σ_k m_k ⟨x_k − x̄, y_k − ȳ⟩ for group estimates [G, ...]: the per-rollout covariance (a trace)."""
    dx, dy = x - group_mean(x, groups)[None], y - group_mean(y, groups)[None]
    weights = jnp.asarray(groups.sizes / (groups.count - 1), x.dtype)
    return replicate(jnp.sum(weights.reshape((-1,) + (1,) * (x.ndim - 1)) * dx * dy))


def flatten_groups(grads):
    """Stacked per-group gradient pytrees -> an array [G, P] (and the function that unflattens one row)."""
    unravel = ravel_pytree(jax.tree.map(lambda x: x[0], grads))[1]
    return jax.vmap(lambda g: ravel_pytree(g)[0])(grads), unravel


def group_estimate(grads, groups: Groups, returns):
    """(ĝ, the standard diagnostics) from per-group gradients [G, ...] (a pytree, or flat [G, P]), leaf by leaf."""
    grad = jax.tree.map(lambda g: group_mean(g, groups), grads)
    spread = sum(group_covariance(g, g, groups) for g in jax.tree.leaves(grads))
    return grad, standard_diagnostics(returns, grad, spread)


def standard_diagnostics(returns, grad, grad_variance) -> dict:
    """The diagnostics every estimator returns, from the returns [N], the estimate ĝ (any pytree) and σ̂²."""
    return replicate({"return": returns.mean(), "return_std": returns.std(), "grad_norm": optax.tree.norm(grad),
                      "grad_variance": grad_variance})


def batch_keys(key, num_envs: int):
    """One key per rollout, laid over the devices."""
    return shard_batch(jax.random.split(key, num_envs))
