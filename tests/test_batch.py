"""The batch axis (estimators/batch.py): groups that always give a variance, and episodes that end cleanly."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg import estimators
from diffpg.errors import ConfigError
from diffpg.estimators.batch import Groups, batch_groups, batch_keys, group_estimate, group_gradients
from diffpg.estimators.objectives import pathwise_surrogate
from diffpg.rollouts import rollout


def anova_variance(per_rollout, sizes):
    """1/(G−1) Σ_k m_k ‖g_k − ĝ‖² from per-rollout gradients [N, P] and consecutive groups of ``sizes``."""
    bounds = np.cumsum([0, *sizes])
    means = np.stack([per_rollout[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
    overall = per_rollout.mean(0)
    return sum(m * np.sum((g - overall) ** 2) for m, g in zip(sizes, means)) / (len(sizes) - 1)


def test_groups_are_equal_when_num_envs_allows_and_of_two_sizes_otherwise():
    assert batch_groups(64, 8).sizes.tolist() == [8] * 8
    assert batch_groups(12, 8).sizes.tolist() == [2] * 6   # 6 divides 12 and is within a factor 2 of 8
    assert batch_groups(7, 8).sizes.tolist() == [1] * 7
    assert batch_groups(13, 8).sizes.tolist() == [2] * 5 + [1] * 3   # 13 is prime: 8 unequal groups
    assert batch_groups(38, 8).sizes.tolist() == [5] * 6 + [4] * 2   # 38 = 2 · 19: not 2 groups of 19
    assert batch_groups(16, 8, min_size=8).sizes.tolist() == [8, 8]   # PIPPS's weights want 8 per group
    assert batch_groups(17, 8, min_size=8).sizes.tolist() == [9, 8]
    for n, groups, min_size in ((13, 8, 1), (38, 8, 1), (17, 8, 8)):
        assert batch_groups(n, groups, min_size=min_size).num_envs == n


@pytest.mark.parametrize("num_envs, groups, min_size, message", [
    (1, 8, 1, "needs num_envs of at least 2"),
    (13, 8, 8, "needs num_envs of at least 16"),
    (8, 1, 1, "variance_groups must be at least 2"),
])
def test_settings_without_two_groups_are_refused_in_one_sentence(num_envs, groups, min_size, message):
    with pytest.raises(ConfigError, match=message) as error:
        batch_groups(num_envs, groups, min_size=min_size, estimator="the pathwise estimator")
    assert str(error.value).count(". ") == 0


def test_unequal_groups_by_hand():
    def objective(w, x):  # per-rollout f_i(w) = w · x_i, so ∇f_i = x_i
        return jnp.mean(w * x), x

    x = jnp.array([1.0, 2.0, 4.0, 7.0, 10.0])
    groups = Groups(devices=1, large=1, small=1, size=2)   # {1, 2, 4} and {7, 10}
    grads, aux = group_gradients(objective, 1.0, x, groups)
    grad, diagnostics = group_estimate(grads, groups, returns=aux)
    # g = (7/3, 17/2), ĝ = 24/5; 3 (7/3 − 24/5)² + 2 (17/2 − 24/5)² = 3 · (37/15)² + 2 · (37/10)² = 45.6333…
    np.testing.assert_allclose(np.asarray(grads), [7 / 3, 17 / 2], rtol=1e-6)
    np.testing.assert_allclose(float(grad), 4.8, rtol=1e-6)
    np.testing.assert_allclose(float(diagnostics["grad_variance"]), 3 * (37 / 15) ** 2 + 2 * (37 / 10) ** 2, rtol=1e-6)
    np.testing.assert_allclose(float(diagnostics["grad_norm"]), 4.8, rtol=1e-6)
    np.testing.assert_array_equal(aux, x)


@pytest.fixture(scope="module")
def pendulum_13():
    env = diffpg.make("pendulum")
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = policy.init(jax.random.PRNGKey(0), env.observation_size)
    return env, policy, params


def test_pathwise_with_a_prime_num_envs_has_the_per_rollout_variance(pendulum_13):
    """num_envs = 13 has no divisor in 2 … 8: the estimate is still finite and equals the direct computation."""
    env, policy, params = pendulum_13
    key, horizon = jax.random.PRNGKey(1), 8
    grad, diagnostics = jax.jit(estimators.pathwise(env, policy, horizon=horizon, num_envs=13))(key, params)

    def one(params, k):
        return pathwise_surrogate(rollout(k, env, policy, params, horizon, remat=True).reward, 1.0)

    per_rollout = jax.jit(jax.vmap(jax.grad(one), (None, 0)))(params, batch_keys(key, 13))
    flat = np.concatenate([np.asarray(x).reshape(13, -1) for x in jax.tree.leaves(per_rollout)], axis=1)
    expected = anova_variance(flat.astype(np.float64), [2] * 5 + [1] * 3)
    assert np.isfinite(float(diagnostics["grad_variance"]))
    np.testing.assert_allclose(float(diagnostics["grad_variance"]), expected, rtol=1e-4)   # float32 sums
    for g, p in zip(jax.tree.leaves(grad), jax.tree.leaves(per_rollout)):
        np.testing.assert_allclose(g, np.asarray(p).mean(0), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name, num_envs", [("score_function", 13), ("zeroth_order", 13), ("alpha_order", 13),
                                            ("surrogate", 13), ("auto", 13), ("inverse_variance", 17),
                                            ("discontinuity_switch", 13), ("per_step_inverse_variance", 13)])
def test_every_estimator_is_finite_with_num_envs_without_a_divisor(pendulum_13, name, num_envs):
    env, policy, params = pendulum_13
    _, diagnostics = jax.jit(getattr(estimators, name)(env, policy, horizon=4, num_envs=num_envs))(
        jax.random.PRNGKey(2), params)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in diagnostics.values()), diagnostics


def test_inverse_variance_refuses_groups_too_small_for_its_weights(pendulum_13):
    env, policy, _ = pendulum_13
    with pytest.raises(ConfigError, match="groups of at least 8 rollouts"):
        estimators.inverse_variance(env, policy, horizon=4, num_envs=13)


class Ends:
    """x' = x + a, reward −x'²; the episode ends after 3 steps, and every later step returns ``after`` · …"""

    observation_size, action_size = 1, 1

    def __init__(self, after):
        self.after = after

    def reset(self, key):
        return diffpg.State(obs=jax.random.normal(key, (1,)), reward=jnp.zeros(()), done=jnp.zeros(()),
                            t=jnp.zeros(()))

    def step(self, state, action):
        garbage = jnp.where(state.done > 0, self.after, 1.0)   # NaN after done: in values and in gradients
        obs = (state.obs + action) * garbage
        return diffpg.State(obs=obs, reward=-jnp.sum(obs**2) * garbage, done=(state.t >= 2).astype(jnp.float32),
                            t=state.t + 1)


@pytest.mark.parametrize("name", estimators.FACTORIES + ("per_step_inverse_variance",))
def test_an_env_that_returns_nan_after_done_changes_no_gradient(name):
    """Rewards and observations after ``done`` are NaN in one env and finite garbage in the other."""
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = policy.init(jax.random.PRNGKey(0), 1)

    @jax.jit
    def gradient(after):
        estimate = getattr(estimators, name)(Ends(after), policy, horizon=6, num_envs=16, discount=0.9)
        return estimate(jax.random.PRNGKey(3), params)[0]

    with_nan, with_garbage = gradient(jnp.nan), gradient(3.0)
    for a, b in zip(jax.tree.leaves(with_nan), jax.tree.leaves(with_garbage)):
        assert np.all(np.isfinite(a)), (name, with_nan)
        np.testing.assert_array_equal(a, b)
