"""The environments that show where the pathwise gradient fails, checked against exact answers.

- double_pendulum: its equations of motion against the Euler–Lagrange equations
  derived by autodiff of the Lagrangian, energy conservation, sensitivity to the
  start (chaos), and the growth of each estimator's variance with the horizon;
- ball_wall: exact contact kinematics, and the pathwise gradient that is exactly
  zero where the expected return clearly rises;
- wind_gust: gust frequencies, the exposed log-probability and its derivative.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

import diffpg
from diffpg import estimators
from diffpg.envs.double_pendulum import accelerations
from diffpg.policies import LinearGaussian

NEW_ENVS = ["double_pendulum", "ball_wall", "wind_gust", "finite_mdp"]


@pytest.mark.parametrize("name", NEW_ENVS)
def test_new_envs_follow_the_protocol_under_jit_and_vmap(name):
    env = diffpg.make(name)
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    states = jax.jit(jax.vmap(env.reset))(keys)
    assert states.obs.shape == (5, env.observation_size)
    actions = jnp.zeros((5, env.action_size))
    nxt = jax.jit(jax.vmap(env.step))(states, actions)
    assert nxt.obs.shape == (5, env.observation_size) and nxt.reward.shape == (5,) and nxt.done.shape == (5,)
    assert bool(jnp.all(jnp.isfinite(nxt.obs))) and bool(jnp.all(jnp.isfinite(nxt.reward)))
    traj = jax.jit(lambda k: diffpg.rollout(k, env, LinearGaussian(action_size=env.action_size),
                                            LinearGaussian(action_size=env.action_size).init(k, env.observation_size),
                                            12))(keys[0])
    assert traj.reward.shape == (12,)
    assert (traj.event_log_prob is not None) == (name == "wind_gust")


def test_overrides_reach_the_params():
    assert diffpg.make("double_pendulum", max_torque=1.0).action_bound == 1.0
    assert diffpg.make("ball_wall", wall_height=0.9).params.wall_height == 0.9
    assert diffpg.make("wind_gust", gust_bias=0.5).params.gust_bias == 0.5


# ---------------------------------------------------------------- double pendulum

def kinetic(p, q, qdot):
    th1, th2 = q
    w1, w2 = qdot
    return (0.5 * (p.mass1 + p.mass2) * p.length1**2 * w1**2 + 0.5 * p.mass2 * p.length2**2 * w2**2
            + p.mass2 * p.length1 * p.length2 * w1 * w2 * jnp.cos(th1 - th2))


def potential(p, q):
    th1, th2 = q
    return -(p.mass1 + p.mass2) * p.gravity * p.length1 * jnp.cos(th1) - p.mass2 * p.gravity * p.length2 * jnp.cos(th2)


def lagrangian(p, q, qdot):
    return kinetic(p, q, qdot) - potential(p, q)


def test_double_pendulum_obeys_the_euler_lagrange_equations():
    """θ̈ = M⁻¹ (∂L/∂θ − (∂²L/∂θ̇∂θ) θ̇ + τ − b θ̇), with M = ∂²L/∂θ̇², all by autodiff of L."""
    p = diffpg.make("double_pendulum", mass1=1.3, mass2=0.7, length1=0.9, length2=1.2, damping=0.1).params
    for key in jax.random.split(jax.random.PRNGKey(1), 5):
        q = jax.random.uniform(key, (4,), minval=-3.0, maxval=3.0)
        torque = jax.random.normal(jax.random.fold_in(key, 1), (2,))
        pos, vel = q[:2], q[2:]
        mass = jax.hessian(lagrangian, argnums=2)(p, pos, vel)
        dl_dq = jax.grad(lagrangian, argnums=1)(p, pos, vel)
        mixed = jax.jacfwd(jax.grad(lagrangian, argnums=2), argnums=1)(p, pos, vel)
        expected = jnp.linalg.solve(mass, dl_dq - mixed @ vel + torque - p.damping * vel)
        np.testing.assert_allclose(accelerations(p, q, torque), expected, rtol=1e-4, atol=1e-4)


def test_double_pendulum_conserves_energy_without_torque_and_reward_is_the_tip_height():
    env = diffpg.make("double_pendulum")
    p = env.params

    def energy(q):
        return kinetic(p, q[:2], q[2:]) + potential(p, q[:2])

    def run(state):
        return jax.lax.scan(lambda s, _: (env.step(s, jnp.zeros(2)), None), state, None, length=200)[0]

    state = env.reset(jax.random.PRNGKey(2))
    final = jax.jit(run)(state)
    # RK4 with h = 0.0125 s over 10 s: the relative energy drift stays far below a percent.
    assert abs(float(energy(final.q) - energy(state.q))) < 1e-3 * (1.0 + abs(float(energy(state.q))))
    upright = env.step(state.replace(q=jnp.array([jnp.pi, jnp.pi, 0.0, 0.0])), jnp.zeros(2)).reward
    hanging = env.step(state.replace(q=jnp.zeros(4)), jnp.zeros(2)).reward
    np.testing.assert_allclose([upright, hanging], [1.0, -1.0], atol=1e-6)


def test_double_pendulum_is_chaotic():
    """Two starts 1e-6 apart end up more than 1e-1 apart within 10 s: a positive Lyapunov exponent."""
    env = diffpg.make("double_pendulum")
    state = env.reset(jax.random.PRNGKey(3))
    other = state.replace(q=state.q + jnp.array([1e-6, 0.0, 0.0, 0.0]))

    def run(s):
        return jax.lax.scan(lambda s, _: (env.step(s, jnp.zeros(2)), s.q), s, None, length=200)[1]

    gap = jnp.linalg.norm(jax.jit(run)(state) - jax.jit(run)(other), axis=1)
    assert float(gap.max()) > 1e-1


HORIZONS = (50, 100, 150)


class Truncated:
    """``env`` whose episode ends after ``horizon`` steps, where ``horizon`` may be a traced value.

    Rolling it out for max(HORIZONS) steps gives exactly the estimator at the shorter horizon (rewards
    and score terms after the end are masked), with one compilation for the whole sweep.
    """

    def __init__(self, env, horizon):
        self.env, self.horizon = env, horizon
        self.observation_size, self.action_size = env.observation_size, env.action_size

    def reset(self, key):
        return self.env.reset(key)

    def step(self, state, action):
        nxt = self.env.step(state, action)
        return nxt.replace(done=jnp.maximum(nxt.done, jnp.where(nxt.t >= self.horizon, 1.0, 0.0)))


@pytest.fixture(scope="module")
def variance_sweep():
    """Per-rollout gradient variance of each estimator on double_pendulum, at each horizon.

    256 rollouts in 16 groups per point: the variance of a point is known to within a factor
    of about 2, which is nothing next to the orders of magnitude the sweep spans.
    """
    env = diffpg.make("double_pendulum")
    policy = LinearGaussian(action_size=2)
    params = policy.init(jax.random.PRNGKey(0), env.observation_size)
    sweep = {}
    for name in ("pathwise", "score_function", "inverse_variance"):
        @jax.jit
        def variance_at(horizon):
            estimate = getattr(estimators, name)(Truncated(env, horizon), policy, horizon=max(HORIZONS),
                                                 num_envs=256, variance_groups=16)
            return estimate(jax.random.PRNGKey(4), params)[1]["grad_variance"]

        for horizon in HORIZONS:
            sweep[name, horizon] = float(variance_at(horizon))
    return sweep


@pytest.mark.slow
def test_pathwise_variance_grows_exponentially_and_score_function_polynomially(variance_sweep):
    h = np.array(HORIZONS, float)
    pathwise = np.log([variance_sweep["pathwise", t] for t in HORIZONS])
    score = np.log([variance_sweep["score_function", t] for t in HORIZONS])
    rate = np.polyfit(h, pathwise, 1)[0]            # log Var ≈ a + λ H: λ per step
    degree = np.polyfit(np.log(h), score, 1)[0]     # log Var ≈ a + p log H: degree p
    local = np.diff(pathwise) / np.diff(np.log(h))  # log-log slope between successive horizons
    print(f"pathwise: Var ~ exp({rate:.3f} H), local log-log slopes {np.round(local, 1)}; "
          f"score function: Var ~ H^{degree:.2f}; " + ", ".join(f"{k}: {v:.3g}" for k, v in variance_sweep.items()))
    # The score function's variance is polynomial, about H³ (H terms, each with a reward-to-go of size H).
    assert 1.5 < degree < 4.5
    score_local = np.diff(score) / np.diff(np.log(h))
    assert np.all(score_local < 5.0)
    # The pathwise one is not: its log-log slope exceeds any polynomial degree the score function shows,
    # and keeps rising with the horizon, the signature of exp(λH).
    assert local[-1] > 2.0 * degree and local[-1] > local[0]
    assert rate > 0.05
    # At the longest horizon pathwise is far worse than the score function.
    assert variance_sweep["pathwise", HORIZONS[-1]] > 10.0 * variance_sweep["score_function", HORIZONS[-1]]


@pytest.mark.slow
def test_inverse_variance_stays_near_the_smaller_variance(variance_sweep):
    """Within a factor 2 of min(pathwise, score function) at every horizon (the sweep's own noise is ~2x)."""
    for horizon in HORIZONS:
        best = min(variance_sweep["pathwise", horizon], variance_sweep["score_function", horizon])
        assert variance_sweep["inverse_variance", horizon] < 2.0 * best, (horizon, variance_sweep)


# ---------------------------------------------------------------- ball with a wall

def run_ball(env, actions):
    state = env.reset(jax.random.PRNGKey(0))
    final, traj = jax.lax.scan(lambda s, a: (env.step(s, a), env.step(s, a)), state, actions)
    return state, final, traj


def test_ball_stops_at_a_wall_it_cannot_clear_and_flies_over_one_it_can():
    env = diffpg.make("ball_wall", init_noise=0.0)
    p = env.params
    h = env.max_steps
    start, final, traj = run_ball(env, jnp.zeros((h, 2)))
    # No thrust: it slides along the floor at init_speed until the wall, then stays there.
    np.testing.assert_allclose(final.obs[0], p.wall_x, atol=1e-6)
    np.testing.assert_allclose(traj.obs[:, 1], 0.0, atol=0.0)
    np.testing.assert_allclose(traj.reward.sum(), p.wall_x - start.obs[0], atol=1e-5)
    # Full lift early: it clears the wall and keeps flying right.
    lift = jnp.zeros((h, 2)).at[:10, 1].set(1.0)
    _, final, traj = run_ball(env, lift)
    assert float(final.obs[0]) > p.wall_x + 0.5
    assert float(jnp.max(traj.obs[:, 1])) > p.wall_height


@pytest.mark.slow
def test_pathwise_gradient_misses_the_payoff_of_lifting_the_ball():
    """Open-loop actions a = μ + σξ with μ = (0, μ_y): about half the rollouts clear the wall.

    For every single rollout the return is locally flat in μ_y (a blocked ball stays at the wall, a
    flying one's x does not depend on its height), so the pathwise gradient in μ_y is exactly 0.
    The expected return nonetheless rises with μ_y, which the score function finds by > 6 standard
    errors (8192 rollouts, variance from 64 groups)."""

    class OpenLoop:
        def init(self, key, observation_size):
            return {"mu": jnp.array([0.0, 0.7])}

        def sample(self, key, params, obs):
            return params["mu"] + 0.3 * jax.random.normal(key, (2,))

        def log_prob(self, params, obs, action):
            return jnp.sum(norm.logpdf(action, params["mu"], 0.3))

    env, policy = diffpg.make("ball_wall"), OpenLoop()
    params = policy.init(None, 4)
    horizon = env.max_steps
    grad_pw, diag_pw = jax.jit(estimators.pathwise(env, policy, horizon=horizon, num_envs=8192,
                                                   variance_groups=64))(jax.random.PRNGKey(5), params)
    grad_sf, diag_sf = jax.jit(estimators.score_function(env, policy, horizon=horizon, num_envs=8192,
                                                         variance_groups=64))(jax.random.PRNGKey(5), params)
    assert float(grad_pw["mu"][1]) == 0.0
    stderr = float(np.sqrt(diag_sf["grad_variance"] / 8192))  # an upper bound on the μ_y standard error
    assert float(grad_sf["mu"][1]) > 6.0 * stderr, (grad_sf, stderr)


# ---------------------------------------------------------------- wind gusts

def test_gusts_blow_with_the_declared_probability_and_expose_their_log_probability():
    env = diffpg.make("wind_gust")
    p = env.params
    state = env.reset(jax.random.PRNGKey(6)).replace(obs=jnp.array([0.3, 0.4]))
    u = jnp.array([0.2])
    keys = jax.random.split(jax.random.PRNGKey(7), 20_000)
    nxt = jax.jit(jax.vmap(lambda k: env.step(state.replace(key=k), u)))(keys)
    deterministic = p.A @ state.obs + p.B @ u
    gust = np.asarray(nxt.obs[:, 1] - deterministic[1]) > 0.25  # the gust adds 0.5 to the velocity
    np.testing.assert_allclose(np.asarray(nxt.obs), np.asarray(deterministic[None, :] + gust[:, None].astype(np.float32) * p.gust[None, :]), atol=1e-6)
    chance = float(jax.nn.sigmoid(p.gust_weights @ state.obs + p.gust_bias))
    # Binomial standard error sqrt(p(1-p)/n) ≈ 0.0035; allow 5.
    assert abs(gust.mean() - chance) < 5 * np.sqrt(chance * (1 - chance) / len(keys))
    np.testing.assert_allclose(np.asarray(nxt.event_log_prob), np.log(np.where(gust, chance, 1 - chance)), rtol=1e-5)
    # d log p(e | x) / dx = (e − p) w, the score of a logistic event; and no gradient through the outcome.
    def log_prob(x, key):
        return env.step(state.replace(obs=x, key=key), u).event_log_prob

    for i in range(2):
        g = jax.grad(log_prob)(state.obs, keys[i])
        np.testing.assert_allclose(g, (float(gust[i]) - chance) * p.gust_weights, rtol=1e-5, atol=1e-7)
