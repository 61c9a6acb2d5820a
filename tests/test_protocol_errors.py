"""Each protocol mistake a user can make reaches them as one diffpg sentence naming the fix, never a JAX traceback.

The environments are written the way the README's protocol invites: plain
classes. Every estimator checks the protocol when it is first traced
(``diffpg.estimators.validate``, with ``jax.eval_shape``: nothing compiles), so
each case below fails in milliseconds.
"""
import jax
import jax.numpy as jnp
import pytest

import diffpg
from diffpg.errors import ProtocolError


class Integrator:
    """x' = x + 0.1 u, reward -|x'|²: correct."""

    observation_size = 2
    action_size = 2

    def reset(self, key):
        return diffpg.State(obs=jax.random.normal(key, (2,)), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        x = state.obs + 0.1 * action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.zeros(()))


class VectorReward(Integrator):
    def step(self, state, action):
        x = state.obs + 0.1 * action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2, keepdims=True), done=jnp.zeros(()))


class PythonBranch(Integrator):
    def step(self, state, action):
        x = state.obs + 0.1 * action
        if x[0] > 1.0:  # the mistake: a Python if on a traced value
            x = x.at[0].set(1.0)
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.zeros(()))


class FlatObs(Integrator):
    def step(self, state, action):
        x = state.obs + 0.1 * action
        return diffpg.State(obs=x[None], reward=-jnp.sum(x**2), done=jnp.zeros(()))


class VectorDone(Integrator):
    def step(self, state, action):
        x = state.obs + 0.1 * action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.abs(x) > 3.0)


class IntegerStart(Integrator):
    def reset(self, key):
        return diffpg.State(obs=jnp.zeros(2, jnp.int32), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):  # the int32 obs cast explicitly, so that step runs under strict promotion too
        return super().step(state.replace(obs=state.obs.astype(jnp.float32)), action)


class GrowingState(Integrator):
    def reset(self, key):
        return diffpg.State(obs=jnp.zeros(2), reward=jnp.zeros(()), done=jnp.zeros(()), history=jnp.zeros(1))

    def step(self, state, action):
        x = state.obs + 0.1 * action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.zeros(()),
                            history=jnp.append(state.history, x[0]))


class NumpyStep(Integrator):
    def step(self, state, action):
        import numpy as np

        x = np.asarray(state.obs) + 0.1 * action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.zeros(()))


class BranchingPolicy:
    """A linear-Gaussian policy that clips in Python."""

    def init(self, key, observation_size):
        return {"K": jnp.zeros((2, observation_size))}

    def sample(self, key, params, obs):
        action = params["K"] @ obs + jax.random.normal(key, (2,))
        return jnp.zeros(2) if action[0] > 5 else action

    def log_prob(self, params, obs, action):
        return -0.5 * jnp.sum((action - params["K"] @ obs) ** 2)


def estimate_once(env, policy=None, factory="pathwise"):
    policy = policy or diffpg.policies.LinearGaussian(action_size=2)
    estimate = getattr(diffpg.estimators, factory)(env, policy, horizon=4, num_envs=16)  # inverse_variance needs 2 groups of 8
    key = jax.random.PRNGKey(0)
    return jax.jit(estimate)(key, policy.init(key, env.observation_size))


@pytest.mark.parametrize("env, phrases", [
    (VectorReward(), ["VectorReward.step(state, action) returns .reward of shape (1,)", "must have shape ()",
                      "return a scalar, e.g. jnp.sum(reward) or reward[0]"]),
    (PythonBranch(), ["PythonBranch.step branches in Python on a traced value",
                      "test_protocol_errors.py:", "in PythonBranch.step", "jnp.where", "jax.lax.cond"]),
    (FlatObs(), ["FlatObs.step(state, action) returns .obs of shape (1, 2)", "must have shape (2,)"]),
    (VectorDone(), ["returns .done of shape (2,)", "return a scalar flag, e.g. jnp.any(done)"]),
    (IntegerStart(), ["IntegerStart.reset returns state.obs as int32 but IntegerStart.step returns float32",
                      "return floats from reset too"]),
    (GrowingState(), ["GrowingState.step changes the shape of state.history from (1,) to (2,)"]),
    (NumpyStep(), ["NumpyStep.step passes a traced value to NumPy", "use jax.numpy"]),
])
def test_an_environment_mistake_is_one_sentence_naming_the_fix(env, phrases, assert_one_sentence):
    with pytest.raises(ProtocolError) as e:
        estimate_once(env)
    assert_one_sentence(e, ProtocolError, *phrases)


def test_a_branch_in_the_policy_names_the_policys_method(assert_one_sentence):
    with pytest.raises(ProtocolError) as e:
        estimate_once(Integrator(), BranchingPolicy(), factory="score_function")
    assert_one_sentence(e, ProtocolError, "BranchingPolicy.sample branches in Python on a traced value",
                        "in BranchingPolicy.sample", "jnp.where")


def test_a_policy_of_the_wrong_action_size_is_named(assert_one_sentence):
    with pytest.raises(ProtocolError) as e:
        estimate_once(Integrator(), diffpg.policies.LinearGaussian(action_size=1))
    assert_one_sentence(e, ProtocolError, "LinearGaussian.sample returns actions of shape (1,) but Integrator "
                                          "takes shape (2,)", "action_size=2")


@pytest.mark.parametrize("factory", diffpg.estimators.FACTORIES)
def test_every_estimator_checks_the_protocol_when_first_traced(factory, assert_one_sentence):
    with pytest.raises(ProtocolError) as e:
        estimate_once(VectorReward(), factory=factory)
    assert_one_sentence(e, ProtocolError, "returns .reward of shape (1,)")


def test_a_correct_plain_environment_passes_the_checks():
    grad, diagnostics = estimate_once(Integrator())
    assert jnp.isfinite(diagnostics["return"]) and jax.tree.structure(grad) == jax.tree.structure(
        diffpg.policies.LinearGaussian(action_size=2).init(jax.random.PRNGKey(0), 2))


@pytest.mark.parametrize("algo", ["shac", "ppo"])
def test_training_checks_the_protocol_before_it_compiles(algo, assert_one_sentence):
    # The trainers step the environment through their own windows, not the estimator factories.
    config = diffpg.training.CONFIGS[algo](env="pendulum")
    with pytest.raises(ProtocolError) as e:
        diffpg.training.make_trainer(config, env=VectorReward())
    assert_one_sentence(e, ProtocolError, "returns .reward of shape (1,)", "return a scalar")
