"""diffpg's pendulum against Gymnasium's Pendulum-v1 itself, step by step and over whole episodes.

Gymnasium computes in float64 numpy (its state comes from ``np_random.uniform``)
and hands out float32 observations; its action space is float32. These tests
run our pendulum with 64-bit floats enabled and give both the same float32
actions, so both evaluate the same float64 arithmetic: any difference is a
different formula, constant or clip, not rounding. The only expected gap is
an ulp or two between XLA's and numpy's sin/cos.
"""
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.envs import PendulumParams

STEPS = 200


@pytest.fixture(scope="module")
def gym_env():
    env = gymnasium.make("Pendulum-v1")
    yield env
    env.close()


@pytest.fixture(scope="module")
def ours():
    """Our pendulum, its jitted step and episode; tests call them with 64-bit floats enabled."""
    env = diffpg.make("pendulum")
    step = jax.jit(env.step)

    def from_gym(theta, theta_dot, t):
        # done is float32, as step makes it (reset under x64 would make it float64)
        return env._state(jnp.float64(theta), jnp.float64(theta_dot), jnp.zeros((), jnp.float64),
                          jnp.zeros((), jnp.float32), jnp.int32(t))

    @jax.jit
    def unroll(state, actions):
        def body(s, a):
            s = env.step(s, a)
            return s, (s.obs, s.reward, s.done, s.theta, s.theta_dot)
        return jax.lax.scan(body, state, actions)[1]

    return env, step, from_gym, unroll


def test_constants_and_time_limit_are_gymnasiums(gym_env):
    ref = gym_env.unwrapped
    p = PendulumParams()
    assert (p.max_speed, p.max_torque, p.dt, p.g, p.m, p.l) == (ref.max_speed, ref.max_torque, ref.dt, ref.g, ref.m,
                                                                ref.l)
    assert gym_env.spec.max_episode_steps == diffpg.make("pendulum").max_steps == STEPS
    assert isinstance(gym_env, gymnasium.wrappers.TimeLimit)
    env = diffpg.make("pendulum")
    assert env.observation_size == gym_env.observation_space.shape[0] == 3
    assert env.action_size == gym_env.action_space.shape[0] == 1
    assert env.action_bound == float(gym_env.action_space.high[0])


def _dkw_bound(n, alpha=1e-4):
    """Dvoretzky–Kiefer–Wolfowitz: P(sup |F_n − F| > d) ≤ 2 exp(−2 n d²); the d with probability alpha."""
    return np.sqrt(np.log(2 / alpha) / (2 * n))


def _ks_uniform(samples, low, high):
    x = np.sort(samples)
    n = len(x)
    cdf = (x - low) / (high - low)
    return max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))


def test_reset_distribution_is_gymnasiums(gym_env, ours):
    """θ ~ U(−π, π), θ̇ ~ U(−1, 1) for both: bounds, and a Kolmogorov–Smirnov distance to the
    uniform below the DKW bound at α = 1e-4 (a rigorous, distribution-free tolerance)."""
    env = ours[0]
    n = 4096
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), n))
    theta, theta_dot = np.asarray(states.theta, np.float64), np.asarray(states.theta_dot, np.float64)
    ref = []
    for seed in range(1024):
        gym_env.reset(seed=seed)
        ref.append(np.array(gym_env.unwrapped.state))
    ref = np.array(ref)
    for ours_x, gym_x, bound in ((theta, ref[:, 0], np.pi), (theta_dot, ref[:, 1], 1.0)):
        for x in (ours_x, gym_x):
            assert np.all(np.abs(x) <= bound)
            assert _ks_uniform(x, -bound, bound) < _dkw_bound(len(x))
        assert np.abs(ours_x).max() > 0.99 * bound
    np.testing.assert_allclose(states.obs, np.stack([np.cos(theta), np.sin(theta), theta_dot], 1), atol=1e-6)
    np.testing.assert_array_equal(states.t, 0)
    np.testing.assert_array_equal(states.done, 0.0)
    np.testing.assert_array_equal(states.reward, 0.0)


def test_reset_observation_is_gymnasiums_for_its_state(gym_env, ours, x64):
    _, _, from_gym, _ = ours
    for seed in range(5):
        obs, _ = gym_env.reset(seed=seed)
        theta, theta_dot = gym_env.unwrapped.state
        state = from_gym(theta, theta_dot, 0)
        np.testing.assert_allclose(np.asarray(state.obs, np.float32), obs, rtol=1e-6, atol=1e-7)


def test_every_step_matches_gymnasium(gym_env, ours, x64):
    """200 steps; before each, our state is set from Gymnasium's. Every fifth step starts from a
    state we plant in both (angles up to ±3π, speeds up to ±8), and actions are drawn from
    [−4, 4], so torque clipping, speed clipping and angle wrapping are all exercised: the test
    counts them. Tolerances: float64 state and reward to 1e-12 (ulps of sin); float32 obs to 1 ulp."""
    _, step, from_gym, _ = ours
    rng = np.random.default_rng(0)
    actions = rng.uniform(-4, 4, size=(STEPS, 1)).astype(np.float32)
    gym_env.reset(seed=0)
    clipped_speed = 0
    for t in range(STEPS):
        if t % 5 == 0:
            gym_env.unwrapped.state = np.array([rng.uniform(-3 * np.pi, 3 * np.pi), rng.uniform(-8, 8)])
        theta, theta_dot = gym_env.unwrapped.state
        nxt = step(from_gym(theta, theta_dot, t), jnp.asarray(actions[t]))
        obs, reward, terminated, truncated, _ = gym_env.step(actions[t])
        new_theta, new_theta_dot = gym_env.unwrapped.state
        np.testing.assert_allclose(float(nxt.reward), reward, rtol=1e-12, atol=1e-12, err_msg=f"reward, step {t}")
        np.testing.assert_allclose(float(nxt.theta), new_theta, rtol=1e-12, atol=1e-12, err_msg=f"theta, step {t}")
        np.testing.assert_allclose(float(nxt.theta_dot), new_theta_dot, rtol=1e-12, atol=1e-12,
                                   err_msg=f"theta_dot, step {t}")
        np.testing.assert_allclose(np.asarray(nxt.obs, np.float32), obs, rtol=1.2e-7, atol=1e-7,
                                   err_msg=f"obs, step {t}")
        assert nxt.obs.dtype == jnp.float64
        assert bool(nxt.done) == (terminated or truncated) == (t == STEPS - 1), f"done, step {t}"
        clipped_speed += abs(new_theta_dot) == 8.0
    assert np.sum(np.abs(actions) > 2) > 50
    assert clipped_speed >= 5
    assert truncated


def test_a_whole_episode_matches_gymnasium(gym_env, ours, x64):
    """One 200-step episode from Gymnasium's reset under the same actions, ours in one lax.scan.

    Nothing is re-synchronized, so ulp differences in sin/cos could grow along
    the trajectory; the pendulum is not chaotic enough over 10 s to amplify
    1e-16 past 1e-9, which is the tolerance on states and rewards.
    """
    _, _, from_gym, unroll = ours
    actions = (2.5 * np.sin(np.arange(STEPS) / 7.0) * np.cos(np.arange(STEPS) / 23.0))[:, None].astype(np.float32)
    obs0, _ = gym_env.reset(seed=7)
    theta, theta_dot = gym_env.unwrapped.state
    ref_obs, ref_reward, ref_done, ref_state = [], [], [], []
    for a in actions:
        obs, reward, terminated, truncated, _ = gym_env.step(a)
        ref_obs.append(obs)
        ref_reward.append(reward)
        ref_done.append(terminated or truncated)
        ref_state.append(np.array(gym_env.unwrapped.state))
    obs, reward, done, th, th_dot = (np.asarray(x) for x in unroll(from_gym(theta, theta_dot, 0),
                                                                    jnp.asarray(actions)))
    assert th.dtype == np.float64
    ref_state = np.array(ref_state)
    np.testing.assert_allclose(th, ref_state[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(th_dot, ref_state[:, 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(reward, ref_reward, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(obs.astype(np.float32), np.array(ref_obs), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(done.astype(bool), ref_done)
    assert ref_done[-1] and not any(ref_done[:-1])
    assert np.sum(np.abs(actions) > 2) > 20  # the torque clip is exercised along the way
    assert np.ptp(ref_state[:, 1]) > 2.0  # and the pendulum really moves


def test_a_float32_episode_stays_close_to_gymnasium(gym_env):
    """The default (float32) pendulum over the same kind of episode: rounding only, so within 1e-3."""
    env = diffpg.make("pendulum")
    actions = (1.5 * np.cos(np.arange(STEPS) / 11.0))[:, None].astype(np.float32)
    gym_env.reset(seed=3)
    theta, theta_dot = gym_env.unwrapped.state
    ref = np.array([gym_env.step(a)[0] for a in actions])

    @jax.jit
    def unroll(state, actions):
        return jax.lax.scan(lambda s, a: (env.step(s, a),) * 2, state, actions)[1].obs

    start = env._state(jnp.float32(theta), jnp.float32(theta_dot), jnp.zeros(()), jnp.zeros(()), jnp.int32(0))
    np.testing.assert_allclose(np.asarray(unroll(start, jnp.asarray(actions))), ref, atol=1e-3)
