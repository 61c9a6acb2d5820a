"""What a training run carries from one update to the next, and the fixed parts it is built from.

``TrainState`` is a pytree (a NamedTuple of arrays), so it goes through
``jit``, ``vmap`` and ``lax.scan`` and into an orbax checkpoint as it is. All
of a run's randomness comes from ``key``, which is split once per update: a
run continued from a saved state is the run that was never interrupted.
Fields an algorithm does not use are None (apg has no critic).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax

from ..sharding import batch_sharding, replicated_sharding


class TrainState(NamedTuple):
    params: Any
    """Policy parameters."""
    opt_state: Any
    """The policy optimizer's state (clip + Adam)."""
    critic: Any
    """Value-network parameters (None for apg)."""
    critic_opt_state: Any
    """The value network's optimizer state (None for apg)."""
    target_critic: Any
    """SHAC's slowly moving copy of the critic (None for the others)."""
    obs_stats: Any
    """Running observation statistics (``normalizer.RunningStats``), None when normalization is off."""
    env_state: Any
    """The N environment states, carried from one window to the next."""
    episode_acc: jax.Array
    """[N] return of each environment's current episode so far (unscaled rewards)."""
    last_episode_return: jax.Array
    """Mean return of the most recently finished episodes; NaN until one finishes."""
    key: jax.Array
    """The run's random key, split once per update."""
    update: jax.Array
    """Updates done (int32)."""
    env_steps: jax.Array
    """Environment steps taken for training (int32)."""
    skipped: jax.Array
    """Updates skipped in total because some gradient was not finite (int32)."""
    bad_streak: jax.Array
    """Consecutive skipped updates up to now (int32); zero after a good update."""
    temperature: Any = None
    """sapo's entropy temperature {"log_alpha", "opt_state"} (None for the others)."""


class Parts(NamedTuple):
    """The fixed objects an update is built from (not a pytree that changes)."""

    config: Any
    env: Any
    policy: Any
    critic_net: Any
    actor_optimizer: Any
    critic_optimizer: Any
    estimate: Any = None
    """ascent's ``estimate(key, params) -> (ascent direction, diagnostics)``; None for the others."""


BATCHED = ("env_state", "episode_acc")
"""The fields with the N environments in front, laid over the devices; the others are whole on each."""


def shardings() -> TrainState | None:
    """Where each part of a TrainState lives: a prefix of the state for ``jit``'s ``out_shardings`` and for
    the targets of an orbax restore.

    The N environments' states and episode returns lie along the batch axis of ``diffpg.sharding``'s mesh
    (each process holds its own devices' rows); parameters, optimizer states, critics, statistics, the key
    and the counters are whole on every device, the same bits in every process. None on one device, where
    jit's default placement is the one it always was.
    """
    whole = replicated_sharding()
    if whole is None:
        return None
    return TrainState(*(batch_sharding() if name in BATCHED else whole for name in TrainState._fields))
