"""``diffpg.load_policy(run_dir) -> act``: a trained policy for use outside JAX.

    act = diffpg.load_policy("runs/pendulum-shac")
    action = act(obs)           # obs: numpy [observation_size] -> action: numpy [action_size]
    actions = act(batch)        # obs: numpy [B, observation_size] -> actions: numpy [B, action_size]

``act`` is the deterministic mode of the policy, a = mode_θ(normalize(o)),
with the parameters and observation statistics of the run's newest
checkpoint: exactly what ``trainer.act`` does during training and what
``diffpg eval`` measures. It is jitted once per input rank and returns float32
numpy arrays. A missing or damaged run directory raises ``CheckpointError``; an
observation of the wrong shape raises ``ShapeError``.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .errors import ShapeError


def load_run(run_dir: str | os.PathLike):
    """(trainer, state): the run's Trainer, rebuilt from its config.json, and its newest TrainState."""
    import jax

    from .training import make_trainer
    from .training.checkpoint import read_config, restore_latest

    trainer = make_trainer(read_config(run_dir))
    _, state = restore_latest(run_dir, jax.eval_shape(trainer.init, jax.random.key(0)))
    return trainer, state


def load_policy(run_dir: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """The deterministic policy of the newest checkpoint in ``run_dir``, numpy in and numpy out."""
    return policy_function(*load_run(run_dir))


def policy_function(trainer, state) -> Callable[[np.ndarray], np.ndarray]:
    """``act(obs) -> action`` in numpy for ``trainer.act`` at ``state``, for one observation or a batch."""
    import jax

    size = trainer.env.observation_size
    one = jax.jit(trainer.act)
    batch = jax.jit(jax.vmap(trainer.act, in_axes=(None, 0)))

    def act(obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != size:
            raise ShapeError(f"act expects one observation of shape ({size},) or a batch of shape (B, {size}), "
                             f"got shape {obs.shape}")
        return np.asarray((one if obs.ndim == 1 else batch)(state, obs))

    act.config = trainer.config
    return act
