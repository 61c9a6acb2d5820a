"""With ``jax_enable_x64`` and float64 parameters, a rollout and every estimator stay in float64.

The suite runs under strict dtype promotion (conftest), so a float32 value meeting a float64 one raises
here instead of being promoted; before the fix, ``rollout`` cast every reward to float32 (a float64
user lost their digits silently under the standard rule) and five estimators raised.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.estimators import FACTORIES

HORIZON, NUM_ENVS = 4, 16


def float64_lqr():
    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=env.action_size)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) - 0.3, policy.init(jax.random.PRNGKey(0),
                                                                                    env.observation_size))
    return env, policy, params


def test_a_float64_rollout_keeps_its_rewards_in_float64(x64):
    env, policy, params = float64_lqr()
    key = jax.random.PRNGKey(1)
    traj = jax.jit(lambda k, p: diffpg.rollout(k, env, policy, p, HORIZON))(key, params)
    assert traj.reward.dtype == jnp.float64
    # the same steps by hand, in float64: a float32 reward would be off by ~1e-8 relative
    k_reset, k_steps = jax.random.split(key)
    state, expected = env.reset(k_reset), []
    for k in jax.random.split(k_steps, HORIZON):
        state = env.step(state, policy.sample(k, params, state.obs))
        expected.append(state.reward)
    np.testing.assert_allclose(np.asarray(traj.reward), np.asarray(expected), rtol=1e-13)


@pytest.mark.slow  # compiles all eight estimators
def test_every_estimator_gives_a_float64_gradient_from_float64_parameters(x64):
    env, policy, params = float64_lqr()
    for name in FACTORIES:
        estimate = getattr(diffpg.estimators, name)(env, policy, horizon=HORIZON, num_envs=NUM_ENVS)
        grad, diagnostics = jax.jit(estimate)(jax.random.PRNGKey(2), params)
        for leaf in jax.tree.leaves(grad):
            assert leaf.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(leaf))), name
        assert diagnostics["return"].dtype == jnp.float64, name
