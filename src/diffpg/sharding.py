"""The device mesh that every batch of environments is laid over: all visible devices, on every host.

A batch of N environments lies along the one axis ``"batch"`` of a 1-D
``jax.sharding.Mesh`` over ``jax.devices()``; after
``jax.distributed.initialize`` (``diffpg.distributed``) those are the devices
of every process. Inside ``jit`` a sharding constraint (``NamedSharding`` with
``PartitionSpec("batch")``) puts rollouts i·D/N … on device i of D, and XLA's
SPMD partitioner runs each device's rollouts there and inserts the
cross-device reductions (all-reduce) wherever the batch is summed, for
instance in the mean gradient. It is one program with one global view of the
batch, so an estimator's arithmetic does not change, only where it runs. On
one device every function here is the identity, and the compiled program is
the one it was without them.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .errors import ConfigError

AXIS = "batch"


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (AXIS,))


def batch_mesh() -> Mesh:
    """The 1-D mesh over ``jax.devices()`` (every process's devices after ``jax.distributed.initialize``)."""
    return _mesh(tuple(jax.devices()))


def check_divisible(num_envs: int, what: str = "num_envs") -> int:
    """The device count D, after one sentence if it does not divide ``num_envs``."""
    devices = jax.device_count()
    if num_envs % devices:
        raise ConfigError(f"{what}={num_envs} is not a multiple of the {devices} devices the batch is sharded "
                          f"over; use a multiple of {devices}, or make fewer devices visible")
    return devices


def shard_batch(tree):
    """Lay the leading (batch) axis of every leaf over the devices; the identity on one device."""
    if jax.device_count() == 1:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(batch_mesh(), PartitionSpec(AXIS)))


def batch_sharding() -> NamedSharding | None:
    """The leading (batch) axis over the devices, for ``jit``'s ``out_shardings`` and orbax's restore
    targets: a global array of which each process holds its own devices' rows. None (jit's default) on one
    device."""
    return None if jax.device_count() == 1 else NamedSharding(batch_mesh(), PartitionSpec(AXIS))


def replicated_sharding() -> NamedSharding | None:
    """The whole array on every device of every process; None (jit's default) on one device."""
    return None if jax.device_count() == 1 else NamedSharding(batch_mesh(), PartitionSpec())


def replicate(tree):
    """The whole of every leaf on every device (and every process); the identity on one device."""
    if jax.device_count() == 1:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(batch_mesh(), PartitionSpec()))
