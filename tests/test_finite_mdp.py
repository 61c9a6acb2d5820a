"""The finite MDP, the Categorical policy, and the exact oracle of J(θ) and ∇J(θ).

The oracle's two gradients (autodiff through the Bellman solve, and the policy
gradient theorem with exact visitation and Q) share no derivative, so their
agreement to float64 precision checks both. The sampled estimators are then
tested against them by z-tests over independent repetitions.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import diffpg
from diffpg.errors import ConfigError
from diffpg.oracles import finite_mdp as oracle
from diffpg.policies import Categorical

POLICY = Categorical(num_actions=2)


def random_params(key, dtype=jnp.float32):
    """Tabular logits far from uniform, so every gradient coordinate is exercised."""
    shapes = POLICY.init(jax.random.PRNGKey(0), 3)
    leaves, tree = jax.tree.flatten(shapes)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [jax.random.normal(k, x.shape, dtype) for k, x in zip(keys, leaves)])


@pytest.mark.parametrize("discount, horizon", [(0.9, None), (0.5, None), (0.9, 1), (0.9, 7), (1.0, 12)])
def test_the_two_exact_gradients_agree_in_float64(discount, horizon):
    with jax.enable_x64(True):
        env = diffpg.make("finite_mdp")
        params = random_params(jax.random.PRNGKey(1), jnp.float64)
        by_autodiff = ravel_pytree(jax.jit(lambda p: oracle.gradient_autodiff(env, POLICY, p, discount, horizon))(
            params))[0]
        by_theorem = ravel_pytree(jax.jit(lambda p: oracle.gradient_policy_theorem(env, POLICY, p, discount, horizon))(
            params))[0]
        assert by_autodiff.dtype == jnp.float64
        assert float(jnp.linalg.norm(by_autodiff)) > 1e-2  # a gradient worth comparing
        np.testing.assert_allclose(by_theorem, by_autodiff, rtol=1e-6, atol=1e-9)


def test_finite_horizon_return_converges_to_the_bellman_solution_and_matches_a_hand_computation():
    with jax.enable_x64(True):
        env = diffpg.make("finite_mdp")
        probs = oracle.policy_probabilities(env, POLICY, random_params(jax.random.PRNGKey(2), jnp.float64))
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)
        infinite = oracle.expected_return(env.params, probs, 0.9)
        # J_H → J_∞ with error at most γ^H · max|r| / (1 − γ).
        for horizon in (10, 50, 200):
            gap = abs(float(oracle.expected_return(env.params, probs, 0.9, horizon) - infinite))
            assert gap <= 0.9**horizon * 1.2 / 0.1 + 1e-12
        # One step by hand: J_1 = Σ_s ρ₀(s) Σ_a π(a|s) Σ_s' P(s'|s,a) R(s,a,s').
        p, r, rho = (np.asarray(x) for x in (env.params.transition, env.params.reward, env.params.initial))
        by_hand = sum(rho[s] * probs[s, a] * p[s, a, t] * r[s, a, t]
                      for s in range(3) for a in range(2) for t in range(3))
        np.testing.assert_allclose(oracle.expected_return(env.params, probs, 0.9, 1), by_hand, rtol=1e-12)
        # V solves the Bellman equation V = r_π + γ P_π V.
        v = oracle.values(env.params, probs, 0.9)
        r_pi = np.einsum("sa,sat,sat->s", probs, p, r)
        p_pi = np.einsum("sa,sat->st", probs, p)
        np.testing.assert_allclose(v, r_pi + 0.9 * p_pi @ v, rtol=1e-10)


def test_the_oracle_refuses_an_undiscounted_infinite_horizon():
    env = diffpg.make("finite_mdp")
    with pytest.raises(ConfigError, match="discount below 1"):
        oracle.policy_return(env, POLICY, POLICY.init(jax.random.PRNGKey(0), 3), 1.0)


def test_env_samples_the_declared_transitions_and_rewards():
    env = diffpg.make("finite_mdp")
    # From state 1 with action 1: P(s') = [0.0, 0.2, 0.8], and arriving in state 2 pays 1.
    state = env.reset(jax.random.PRNGKey(0)).replace(s=jnp.int32(1), obs=jax.nn.one_hot(1, 3))
    keys = jax.random.split(jax.random.PRNGKey(1), 20_000)
    nxt = jax.jit(jax.vmap(lambda k: env.step(state.replace(key=k), jnp.ones(1))))(keys)
    freq = np.bincount(np.asarray(nxt.s), minlength=3) / len(keys)
    # Binomial standard error of a frequency is sqrt(p(1-p)/n) <= 0.0036; allow 5 of them.
    np.testing.assert_allclose(freq, [0.0, 0.2, 0.8], atol=5 * 0.0036)
    np.testing.assert_array_equal(np.asarray(nxt.reward), (np.asarray(nxt.s) == 2).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(nxt.obs), np.eye(3)[np.asarray(nxt.s)])


def test_env_validates_its_model_in_one_sentence():
    with pytest.raises(ConfigError, match="probability vectors"):
        diffpg.make("finite_mdp", initial=jnp.array([0.5, 0.6, 0.0]))
    with pytest.raises(ConfigError, match="shape"):
        diffpg.make("finite_mdp", reward=jnp.zeros((3, 3, 3)))


def test_categorical_policy_samples_its_probabilities_without_a_pathwise_gradient():
    params = random_params(jax.random.PRNGKey(3))
    obs = jnp.array([0.0, 1.0, 0.0])
    probs = jnp.exp(jax.vmap(lambda a: POLICY.log_prob(params, obs, a))(jnp.arange(2.0)[:, None]))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    actions = jax.vmap(lambda k: POLICY.sample(k, params, obs))(jax.random.split(jax.random.PRNGKey(4), 20_000))
    assert actions.shape == (20_000, 1) and set(np.unique(actions)) <= {0.0, 1.0}
    # Binomial standard error <= 0.0036; allow 5.
    np.testing.assert_allclose(actions.mean(), probs[1], atol=5 * 0.0036)
    grad = jax.grad(lambda p: POLICY.sample(jax.random.PRNGKey(5), p, obs).sum())(params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grad))
    assert POLICY.mode(params, obs).shape == (1,)
    with pytest.raises(ConfigError):
        Categorical(num_actions=1)


HORIZON, DISCOUNT, ROLLOUTS, REPEATS = 8, 0.9, 256, 32


@pytest.fixture(scope="module")
def exact_gradient():
    env = diffpg.make("finite_mdp")
    params = random_params(jax.random.PRNGKey(6))
    return env, params, ravel_pytree(oracle.gradient_autodiff(env, POLICY, params, DISCOUNT, HORIZON))[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["score_function", "surrogate", "auto"])
def test_sampled_estimators_match_the_exact_gradient(exact_gradient, name):
    """z-test per coordinate over 32 independent estimates of 256 rollouts each.

    With 31 degrees of freedom, |t| > 5 has probability below 2e-5 per coordinate,
    so 8 coordinates pass together with probability > 0.9998 when unbiased.
    """
    env, params, truth = exact_gradient
    estimate = getattr(diffpg.estimators, name)(env, POLICY, horizon=HORIZON, num_envs=ROLLOUTS, discount=DISCOUNT)
    samples = jax.jit(lambda k: jax.lax.map(lambda k: ravel_pytree(estimate(k, params)[0])[0],
                                            jax.random.split(k, REPEATS)))(jax.random.PRNGKey(7))
    mean, stderr = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(REPEATS)
    z = (mean - truth) / stderr
    assert np.all(np.abs(z) < 5.0), f"{name}: z = {z}"
    # Power: the estimate resolves the gradient (its error is small next to the gradient itself).
    assert float(jnp.linalg.norm(mean - truth)) < 0.25 * float(jnp.linalg.norm(truth))


def test_pathwise_refuses_a_categorical_policy_in_one_sentence():
    from diffpg.errors import ProtocolError

    env = diffpg.make("finite_mdp")
    policy = diffpg.policies.Categorical(num_actions=env.num_actions)
    with pytest.raises(ProtocolError, match="reparameterized policy") as error:
        diffpg.estimators.pathwise(env, policy, horizon=3, num_envs=2)
    assert "\n" not in str(error.value)
