"""Any diffpg environment as a Gymnasium environment, one copy or a vector of them.

``to_gymnasium(env)`` is a ``gymnasium.Env`` and ``to_gymnasium_vector(env, n)``
a ``gymnasium.vector.VectorEnv``, so Stable-Baselines3, Gymnasium's wrappers
and anything else written against Gymnasium can train on diffpg's
environments (built-in or a user's own duck-typed one). ``reset`` and
``step`` are jitted once, at construction; every call hands back numpy
arrays that are new objects, never views of a buffer reused later.

Episodes. Gymnasium tells an episode's two endings apart: *terminated* (the
environment's own end, an absorbing state) and *truncated* (a time limit cut
it short). The time limit is ``max_steps`` if given, else the environment's
own ``max_steps``, else there is none (episodes then end only when ``done``
is set; Stable-Baselines3 and most wrappers expect a limit, so pass one). An
episode that reaches a time limit (ours or the environment's own, counted
from ``reset``) is truncated; one whose ``done`` is set before that is
terminated:

    truncated_t  = (t ≥ max_steps)
    terminated_t = done_t ∧ ¬truncated_t

the same convention as the training windows (``diffpg.training.window``),
where ``done`` reached exactly at the limit counts as the limit.

Spaces. Observations are ``Box(-inf, inf, (observation_size,), float32)``.
Actions are ``Box(-action_bound, action_bound, (action_size,), float32)``
when the environment has an ``action_bound``, else unbounded.

Randomness. ``reset(seed=s)`` draws the start state with ``jax.random.key(s)``;
each later ``reset()`` without a seed continues that key's chain (``split``),
so a seed fixes every episode that follows it. Copy i of the vector is
seeded with s + i, as Gymnasium's own vector environments do, so the vector
is exactly n single environments stepped side by side.

The vector resets a finished copy on the step *after* its episode ended
(Gymnasium's ``AutoresetMode.NEXT_STEP``, declared in
``metadata["autoreset_mode"]``): that step ignores the copy's action and
returns the new episode's first observation with reward 0 and both flags
false.
"""
from __future__ import annotations

import warnings

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ..errors import ConfigError, ShapeError
from ..types import same_types
from ..types import as_float


def _time_limit(env, max_steps):
    """The episode length that truncates: the argument, else ``env.max_steps``, else None (said once)."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ConfigError(f"max_steps must be a positive int or None, got {max_steps!r}")
    limit = max_steps if max_steps is not None else getattr(env, "max_steps", None)
    if limit is None:
        warnings.warn(f"{type(env).__name__} has no max_steps and none was given, so its Gymnasium episodes end "
                      "only when done is set; pass max_steps=... to truncate them", stacklevel=3)
    return limit


def spaces(env) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """(observation space, action space) of one copy of ``env``."""
    bound = getattr(env, "action_bound", None)
    bound = np.inf if bound is None else float(bound)
    observation = gym.spaces.Box(-np.inf, np.inf, (env.observation_size,), np.float32)
    return observation, gym.spaces.Box(-bound, bound, (env.action_size,), np.float32)


def episode_flags(env, limit, state, elapsed):
    """(terminated, truncated) after ``elapsed`` steps: the convention of the module docstring."""
    truncated = jnp.asarray(False) if limit is None else elapsed >= limit
    env_limit = getattr(env, "max_steps", None)
    if env_limit is not None:  # the environment's own time limit is a truncation too
        truncated = truncated | (elapsed >= env_limit)
    return (as_float(state.done) > 0.5) & ~truncated, truncated


def _fresh(x, dtype=np.float32) -> np.ndarray:
    return np.array(x, dtype=dtype, copy=True)


def _as_actions(action, shape, where: str) -> np.ndarray:
    action = np.asarray(action, np.float32)
    if action.size != int(np.prod(shape)):
        raise ShapeError(f"{where} takes actions of shape {shape}, got shape {action.shape}; "
                         "sample from its action_space to see one")
    return action.reshape(shape)


class GymnasiumEnv(gym.Env):
    """One diffpg environment behind ``gymnasium.Env``; build it with ``to_gymnasium``."""

    metadata = {"render_modes": []}

    def __init__(self, env, *, max_steps: int | None = None, seed: int | None = None):
        self.env, self.limit, self._first_seed = env, _time_limit(env, max_steps), seed
        self.observation_space, self.action_space = spaces(env)
        self._key = self._state = None
        self._elapsed = 0

        def reset(key):
            key, k_reset = jax.random.split(key)
            state = env.reset(k_reset)
            return key, state, state.obs

        def step(state, action, elapsed):
            state = same_types(env.step(state, action), state)  # one compiled step, whatever reset's dtypes
            terminated, truncated = episode_flags(env, self.limit, state, elapsed)
            return state, state.obs, as_float(state.reward), terminated, truncated

        self._reset, self._step = jax.jit(reset), jax.jit(step)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and self._key is None:
            seed = self._first_seed if self._first_seed is not None else int(self.np_random.integers(2**31))
        if seed is not None:
            self._key = jax.random.key(seed)
        self._key, self._state, obs = self._reset(self._key)
        self._elapsed = 0
        return _fresh(obs), {}

    def step(self, action):
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = _as_actions(action, self.action_space.shape, "this environment")
        self._elapsed += 1
        self._state, obs, reward, terminated, truncated = self._step(self._state, action, self._elapsed)
        return _fresh(obs), float(reward), bool(terminated), bool(truncated), {}


def to_gymnasium(env, *, max_steps: int | None = None, seed: int | None = None) -> GymnasiumEnv:
    """``env`` as a ``gymnasium.Env`` (it passes ``gymnasium.utils.env_checker.check_env``).

    Args:
      env: any diffpg environment (``diffpg.make(...)`` or a user's object following the Env protocol).
      max_steps: the time limit that truncates an episode (default: ``env.max_steps``).
      seed: the seed of the first ``reset()`` when that one is given none.

    Example:
      >>> import diffpg
      >>> gym_env = diffpg.envs.to_gymnasium(diffpg.make("pendulum"))
      >>> obs, info = gym_env.reset(seed=0)
      >>> obs, reward, terminated, truncated, info = gym_env.step(gym_env.action_space.sample())
      >>> obs.shape, terminated, truncated
      ((3,), False, False)
    """
    return GymnasiumEnv(env, max_steps=max_steps, seed=seed)


class GymnasiumVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a diffpg environment, stepped by one ``jit(vmap(...))``; see ``to_gymnasium_vector``."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, env, num_envs: int, *, max_steps: int | None = None, seed: int | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs must be a positive int, got {num_envs!r}")
        self.env, self.num_envs, self._first_seed = env, num_envs, seed
        self.limit = _time_limit(env, max_steps)
        self.single_observation_space, self.single_action_space = spaces(env)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._carry = None

        def reset_one(key):
            key, k_reset = jax.random.split(key)
            return key, env.reset(k_reset)

        def step_one(key, state, elapsed, needs_reset, action):
            stepped = same_types(env.step(state, action), state)
            key_after_reset, fresh = reset_one(key)
            state = jax.tree.map(lambda f, s: jnp.where(needs_reset, f, s), fresh, stepped)
            elapsed = jnp.where(needs_reset, 0, elapsed + 1)
            terminated, truncated = episode_flags(env, self.limit, state, elapsed)
            terminated, truncated = terminated & ~needs_reset, truncated & ~needs_reset
            reward = jnp.where(needs_reset, 0.0, as_float(state.reward))
            key = jnp.where(needs_reset, key_after_reset, key)
            return (key, state, elapsed, terminated | truncated), (state.obs, reward, terminated, truncated)

        def reset_all(keys):
            keys, states = jax.vmap(reset_one)(keys)
            zeros = jnp.zeros((num_envs,), jnp.int32)
            return (keys, states, zeros, zeros.astype(bool)), states.obs

        self._reset, self._step = jax.jit(reset_all), jax.jit(jax.vmap(step_one))

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            seed = self._first_seed if self._first_seed is not None else int(self.np_random.integers(2**31))
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
        if len(seeds) != self.num_envs:
            raise ConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} environments; pass one int or "
                              f"a list of {self.num_envs}")
        self._carry, obs = self._reset(jnp.stack([jax.random.key(s) for s in seeds]))
        return _fresh(obs), {}

    def step(self, actions):
        if self._carry is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = _as_actions(actions, self.action_space.shape, "this vector environment")
        self._carry, (obs, reward, terminated, truncated) = self._step(*self._carry, actions)
        return (_fresh(obs), _fresh(reward, np.float64), _fresh(terminated, bool), _fresh(truncated, bool), {})


def to_gymnasium_vector(env, num_envs: int, *, max_steps: int | None = None,
                        seed: int | None = None) -> GymnasiumVectorEnv:
    """``num_envs`` copies of ``env`` as a ``gymnasium.vector.VectorEnv`` (``AutoresetMode.NEXT_STEP``).

    Args:
      env: any diffpg environment.
      num_envs: copies stepped side by side in one jitted ``vmap``.
      max_steps, seed: as for ``to_gymnasium``; copy i is seeded with seed + i.

    Example:
      >>> import diffpg
      >>> vec = diffpg.envs.to_gymnasium_vector(diffpg.make("pendulum"), 4)
      >>> obs, info = vec.reset(seed=0)
      >>> obs, rewards, terminated, truncated, info = vec.step(vec.action_space.sample())
      >>> obs.shape, rewards.shape, vec.metadata["autoreset_mode"].name
      ((4, 3), (4,), 'NEXT_STEP')
    """
    return GymnasiumVectorEnv(env, num_envs, max_steps=max_steps, seed=seed)
