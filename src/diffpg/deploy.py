"""``diffpg.load_policy(run_dir) -> act``: a trained policy for use outside JAX.

    act = diffpg.load_policy("runs/pendulum-shac")            # or load_policy(run_dir, env=my_env)
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

import json
import os
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from .envs.registry import is_built_in
from .training.checkpoint import read_config, restore_latest
from .training.run import policy_function
from .training.run_dir import RUN_FILE
from .training.settings import build_env, check_sizes
from .training.trainer import action_scale, make_trainer


def load_run(run_dir: str | os.PathLike, env=None, policy=None):
    """(trainer, state): the run's Trainer, rebuilt from its config.json, and its newest TrainState.

    ``env`` is the environment object (or a name, or ``MODULE:ATTR``) to use instead of the one the run
    names; by default a run of ``MODULE:ATTR`` imports it again. ``policy`` likewise: the policy object
    to use instead of the one a run of the user's own policy names.
    """
    config = read_config(run_dir)
    other = env is not None
    env = build_env(config.env) if env is None else build_env(env) if isinstance(env, str) else env
    record = {}
    record_file = Path(run_dir) / RUN_FILE
    if record_file.is_file():  # runs written before run.json recorded the sizes skip this check
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            pass
        record = record if isinstance(record, dict) else {}
        check_sizes(env, record, config.env)
    if other and config.policy.spec is None and config.policy.action_scale is None:  # the built-in policy acts at the
        # scale it was trained at, not at the other env's bound
        config = config.replace(action_scale=_trained_scale(config, record))
    trainer = make_trainer(config, env, policy=policy)
    _, state = restore_latest(run_dir, jax.eval_shape(trainer.init, jax.random.key(0)), config=config)
    return trainer, state


def _trained_scale(config, record: dict):
    """The action scale c of the run's policy c·tanh(u): recorded in run.json, else its built-in env's bound."""
    if "action_scale" in record:
        return float(record["action_scale"])
    if is_built_in(config.env):  # a later run of a built-in env records no sizes (it builds no trainer)
        scale = action_scale(config, build_env(config.env))
        return 1.0 if scale is None else float(scale)
    return None  # an older run of a user's env: the env given decides, as it did then


def load_policy(run_dir: str | os.PathLike, env=None, policy=None) -> Callable[[np.ndarray], np.ndarray]:
    """The deterministic policy of the newest checkpoint in ``run_dir``, numpy in and numpy out.

    A run of your own environment or policy imports it again from the spec it recorded (``MODULE:ATTR``,
    or the class of the object it was trained with); pass ``env=`` or ``policy=`` where that cannot be
    imported.
    """
    return policy_function(*load_run(run_dir, env, policy))
