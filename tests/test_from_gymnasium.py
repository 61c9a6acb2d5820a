"""A Gymnasium environment behind the Env protocol: exactly Gymnasium's own numbers, pure under jit and vmap
(repeated and branching calls), refused by the estimators that need a gradient, and trainable by ppo."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.envs import from_gymnasium
from diffpg.errors import ProtocolError, UnknownEnvError
from diffpg.gymnasium_eval import episode_returns

HORIZON = 205  # past Pendulum-v1's time limit of 200


class Constant:
    """A policy that always applies its one parameter as the action: rollouts fixed by params alone."""

    def init(self, key, observation_size):
        return jnp.zeros(1)

    def sample(self, key, params, obs):
        return params


@pytest.fixture(scope="module")
def pendulum():
    return from_gymnasium("Pendulum-v1")


@pytest.fixture(scope="module")
def rollouts(pendulum):
    """jit(vmap(rollout)) over 3 keys, with a constant torque per rollout."""
    def one(key, torque):
        return diffpg.rollout(key, pendulum, Constant(), torque, HORIZON)

    return jax.jit(jax.vmap(one))


def gymnasium_episode(seed, torque):
    """Gymnasium's own Pendulum-v1 under a constant torque: observations and rewards until it ends."""
    env = gymnasium.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    while True:
        obs, reward, terminated, truncated, _ = env.step(np.array([torque], np.float32))
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            return np.array(observations[:-1]), np.array(rewards)


def test_sizes_and_time_limit(pendulum):
    assert (pendulum.observation_size, pendulum.action_size) == (3, 1)
    assert pendulum.max_steps == 200 and pendulum.action_bound == 2.0 and pendulum.differentiable is False


def test_rollouts_are_gymnasiums_own_numbers(pendulum, rollouts):
    keys = jax.random.split(jax.random.key(0), 3)
    torques = jnp.array([[-1.0], [0.5], [3.0]])  # 3.0 is clipped to the action space's 2.0, as Gymnasium would
    traj = rollouts(keys, torques)
    for i in range(3):
        # rollout splits its key into (reset, steps); reset seeds Gymnasium with 32 bits of its key
        seed = int(jax.random.bits(jax.random.split(keys[i])[0], (), jnp.uint32))
        obs, rewards = gymnasium_episode(seed, min(float(torques[i, 0]), 2.0))
        assert len(rewards) == 200
        np.testing.assert_array_equal(np.asarray(traj.obs[i, :200]), obs.astype(np.float32))
        np.testing.assert_allclose(np.asarray(traj.reward[i, :200]), rewards, rtol=1e-6)
        assert np.all(traj.done[i, :199] == 0) and np.all(traj.done[i, 199:] == 1)
        assert np.all(traj.reward[i, 200:] == 0)


def test_repeated_calls_give_the_same_states(pendulum, rollouts):
    keys = jax.random.split(jax.random.key(1), 3)
    torques = jnp.array([[0.0], [1.0], [-1.0]])
    first = rollouts(keys, torques)
    steps = pendulum.host.steps_taken
    again = rollouts(keys, torques)
    assert pendulum.host.steps_taken == steps  # answered from the history tree, nothing stepped twice
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_branches_from_one_state_are_independent(pendulum):
    """Two action sequences from the same mid-episode state (as antithetic or common-random-number rollouts do)."""
    start = pendulum.reset(jax.random.key(7))
    for _ in range(3):
        start = jax.jit(pendulum.step)(start, jnp.array([0.5]))
    branches = jax.jit(jax.vmap(lambda torque: diffpg.unroll(jax.random.key(0), pendulum, Constant(), torque,
                                                             start, 10)[1]))
    replayed = pendulum.host.replayed_steps
    traj = branches(jnp.array([[2.0], [-2.0]]))
    # one branch continues the Gymnasium copy at `start`, the other rebuilds one by replaying its 3 steps
    assert pendulum.host.replayed_steps == replayed + 3
    seed = int(jax.random.bits(jax.random.key(7), (), jnp.uint32))
    for i, torque in enumerate((2.0, -2.0)):
        env = gymnasium.make("Pendulum-v1")
        env.reset(seed=seed)
        for _ in range(3):
            env.step(np.array([0.5], np.float32))
        rewards = [env.step(np.array([torque], np.float32))[1] for _ in range(10)]
        np.testing.assert_allclose(np.asarray(traj.reward[i]), rewards, rtol=1e-6)


@pytest.mark.parametrize("factory", ["pathwise", "surrogate", "inverse_variance", "auto", "alpha_order"])
def test_gradient_estimators_refuse_a_black_box(pendulum, factory, assert_one_sentence):
    policy = diffpg.policies.GaussianMLP(action_size=1)
    with pytest.raises(ProtocolError) as excinfo:
        getattr(diffpg.estimators, factory)(pendulum, policy, horizon=10, num_envs=8)
    assert_one_sentence(excinfo, ProtocolError, "no gradient", "score_function")


def test_differentiating_through_step_is_one_sentence(pendulum, assert_one_sentence):
    state = pendulum.reset(jax.random.key(0))
    with pytest.raises(ProtocolError) as excinfo:
        jax.grad(lambda a: pendulum.step(state, a).reward)(jnp.ones(1))
    assert_one_sentence(excinfo, ProtocolError, "has no gradient")


@pytest.mark.parametrize("algo", ["apg", "shac"])
def test_pathwise_training_refuses_a_black_box(pendulum, algo, assert_one_sentence):
    with pytest.raises(ProtocolError) as excinfo:
        diffpg.training.make_trainer(diffpg.training.defaults("pendulum", algo), env=pendulum)
    assert_one_sentence(excinfo, ProtocolError, "no gradient")


@pytest.mark.parametrize("factory", ["score_function", "zeroth_order"])
def test_value_only_estimators_work_on_it(pendulum, factory, flat, quick_jit):
    policy = diffpg.policies.GaussianMLP(action_size=1, hidden=(8,), action_scale=2.0)
    params = policy.init(jax.random.key(0), 3)
    estimate = getattr(diffpg.estimators, factory)(pendulum, policy, horizon=20, num_envs=8)
    grad, diagnostics = quick_jit(estimate)(jax.random.key(1), params)
    g = flat(grad)
    assert np.all(np.isfinite(g)) and np.linalg.norm(g) > 0
    assert -20 * 16.3 <= float(diagnostics["return"]) < 0  # Pendulum-v1's reward lies in [-16.3, 0]


def test_bad_ids_and_spaces_are_one_sentence(assert_one_sentence):
    with pytest.raises(UnknownEnvError) as excinfo:
        from_gymnasium("NoSuchEnv-v0")
    assert_one_sentence(excinfo, UnknownEnvError, "NoSuchEnv-v0")
    with pytest.raises(ProtocolError) as excinfo:
        from_gymnasium("CartPole-v1")
    assert_one_sentence(excinfo, ProtocolError, "action space")


def test_a_state_older_than_the_history_says_so():
    env = from_gymnasium("Pendulum-v1", history=5)
    step = jax.jit(env.step)
    first = state = env.reset(jax.random.key(0))
    for _ in range(8):
        state = step(state, jnp.ones(1))
    # raised inside the host callback, it reaches the caller as JAX's runtime error, ending in our sentence
    with pytest.raises(Exception, match="older than the 5 steps kept host-side; .* pass a larger history="):
        jax.block_until_ready(step(first, jnp.zeros(1)))
    assert env.host.steps_taken == 8


def test_an_env_instance_and_a_time_limit():
    env = from_gymnasium(gymnasium.make("Pendulum-v1"), max_steps=5)
    assert env.max_steps == 5
    traj = jax.jit(lambda k: diffpg.rollout(k, env, Constant(), jnp.zeros(1), 7))(jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(traj.done), [0, 0, 0, 0, 1, 1, 1])


@pytest.mark.slow
def test_ppo_improves_clearly_on_black_box_pendulum():
    """20 updates of ppo (16,000 env steps, Gymnasium stepping every one) on the black-box Pendulum-v1.

    Judged on 20 held-out episodes of Gymnasium's own Pendulum-v1 (seeds 1000-1019), the same start
    states before and after, so the improvement is a paired difference. Fixed seed 0 measured
    -1315 before and -593 after (a gain of ~720). It must gain at least 300 and at least 4 standard
    errors of the paired difference: a policy that did not learn (gain ~0 ± its SE) fails both.
    """
    config = diffpg.training.defaults("pendulum", "ppo").replace(num_updates=20)
    trainer = diffpg.training.make_trainer(config, env=from_gymnasium("Pendulum-v1"))
    act = jax.jit(jax.vmap(trainer.act, in_axes=(None, 0)))
    state = trainer.init(jax.random.key(0))
    before = episode_returns(lambda obs: np.asarray(act(state, obs)), "Pendulum-v1", 20, seed=1000)
    state, metrics = trainer.run(state, 20)
    after = episode_returns(lambda obs: np.asarray(act(state, obs)), "Pendulum-v1", 20, seed=1000)
    assert int(metrics["env_steps"][-1]) == 16_000
    gain = after - before
    se = gain.std(ddof=1) / np.sqrt(len(gain))
    assert gain.mean() > max(300.0, 4 * se), (before.mean(), after.mean(), se)

