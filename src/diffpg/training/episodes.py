"""Whole episodes of the deterministic policy: the returns an evaluation measures.

    R_j = Σ_{t < H} r_t^j,    s_0^j = env.reset(k_j),  a_t = mode_θ(normalize(o_t)),

for ``episodes`` independent start keys k_j split from ``key``. ``episode_returns`` is pure, so that the
trainer composes it inside its jitted loop (``eval/return``); ``evaluate`` jits it alone, for a trained
state, with H the run's own evaluation horizon (``trainer.eval_horizon``): the environment's time limit
(200 for pendulum and cartpole_swingup, as in Gymnasium), else the run's window. The policy acts exactly
as ``trainer.act`` does, so a number measured here is the number a deployed policy gets. Use a key the
run never trained with.
"""
from __future__ import annotations

import jax

from ..errors import ConfigError
from ..rollouts import unroll
from .window import Acting


def episode_returns(key, env, policy, params, obs_stats, episodes: int, horizon: int) -> jax.Array:
    """[episodes] returns R_j of the deterministic policy from ``env.reset(k_j)``; pure, to compose in a jit."""
    def one(k):
        k_reset, k_steps = jax.random.split(k)
        acting = Acting(policy, obs_stats, stochastic=False)
        _, traj = unroll(k_steps, env, acting, params, env.reset(k_reset), horizon)
        return traj.reward.sum()

    return jax.vmap(one)(jax.random.split(key, episodes))


def evaluate(trainer, state, key, episodes: int, horizon: int | None = None) -> jax.Array:
    """Episodic returns [episodes] of the deterministic policy; ``returns.mean()`` is the score.

    ``horizon`` defaults to the run's own evaluation horizon, ``trainer.eval_horizon`` (the one of its
    ``eval/return``). Jitted; compiled once per (trainer, episodes, horizon).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
    horizon = trainer.eval_horizon if horizon is None else horizon
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(f"horizon must be a positive integer, got {horizon!r}")
    return _compiled(trainer, episodes, horizon)(state.params, state.obs_stats, key)


def _compiled(trainer, episodes: int, horizon: int):
    """The jitted evaluation for these settings, kept on the trainer so it compiles once."""
    cache_key = ("evaluate", episodes, horizon)
    if cache_key not in trainer.compiled:
        env, policy = trainer.env, trainer.policy
        trainer.compiled[cache_key] = jax.jit(
            lambda params, obs_stats, key: episode_returns(key, env, policy, params, obs_stats, episodes, horizon))
    return trainer.compiled[cache_key]
