"""Returns of a policy in Gymnasium's own environment: the honest test of a
policy trained through one of our differentiable copies.

``episode_returns(act, "Pendulum-v1", episodes=20, seed=0)`` runs ``episodes``
copies of the Gymnasium environment side by side (a synchronous vector env, so
``act`` sees a batch ``[episodes, observation_size]`` and answers a batch of
actions) until each has finished its first episode, and returns the
undiscounted return of each. Copy i is reset with seed ``seed + i``, so the
same seed gives the same start states, whichever policy is evaluated.

``act`` is any function from a numpy batch of observations to a numpy batch of
actions: ``diffpg.load_policy(run_dir)`` or Stable-Baselines3's
``lambda obs: model.predict(obs, deterministic=True)[0]``.

In place of an id, ``env`` may be a diffpg environment (``diffpg.make("cartpole_swingup")``):
its episodes are then played through ``diffpg.envs.to_gymnasium_vector``, the same way, so one
judge serves contenders trained on either side of the boundary. A ``gymnasium.vector.VectorEnv``
of ``episodes`` copies is used as it is (and left open), so repeated evaluations compile once.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from .envs import to_gymnasium_vector
from .errors import ConfigError


def episode_returns(act: Callable[[np.ndarray], np.ndarray], env_id, episodes: int = 20,
                    seed: int = 0) -> np.ndarray:
    """The return of each of ``episodes`` episodes of Gymnasium's ``env_id`` (or a diffpg env) under ``act``."""
    if not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive int, got {episodes!r}")
    given = isinstance(env_id, gym.vector.VectorEnv)
    if given:
        envs = env_id
        if envs.num_envs != episodes:
            raise ConfigError(f"the vector env has {envs.num_envs} copies for {episodes} episodes; make them equal")
    elif not isinstance(env_id, str):
        envs = to_gymnasium_vector(env_id, episodes)
    else:
        try:
            envs = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync")
        except gym.error.Error as error:
            raise ConfigError(f"Gymnasium cannot make {env_id!r} ({type(error).__name__}); pass a registered id "
                              "such as Pendulum-v1") from None
    try:
        obs, _ = envs.reset(seed=seed)
        total = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            action = np.asarray(act(np.asarray(obs, np.float32)), dtype=envs.single_action_space.dtype)
            action = action.reshape((episodes,) + envs.single_action_space.shape)
            obs, reward, terminated, truncated, _ = envs.step(action)
            total += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return total
    finally:
        if not given:
            envs.close()
