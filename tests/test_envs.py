"""diffpg.envs: the registry, action checks, episode bookkeeping, gradients, lqr and cartpole_swingup.

Pendulum-v1 is compared with Gymnasium itself in test_pendulum_gymnasium.py.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from jax.test_util import check_grads

import diffpg
from diffpg.envs import CartPoleSwingUp, LQR, LQRParams, Pendulum, PendulumParams
from diffpg.errors import ConfigError, ShapeError, UnknownEnvError

BUILTINS = ("lqr", "pendulum", "cartpole_swingup")


# ----------------------------------------------------------------------------- the registry


def test_make_builds_each_builtin_with_the_declared_sizes():
    assert set(BUILTINS) <= set(diffpg.envs.registered())
    for name in BUILTINS:
        env = diffpg.make(name)
        state = env.reset(jax.random.PRNGKey(0))
        assert state.obs.shape == (env.observation_size,)
        assert state.reward.shape == () and state.done.shape == ()
        assert float(state.reward) == 0.0 and float(state.done) == 0.0
    assert isinstance(diffpg.make("lqr"), LQR) and isinstance(diffpg.make("pendulum"), Pendulum)
    assert isinstance(diffpg.make("cartpole_swingup"), CartPoleSwingUp)


def test_unknown_env_name_is_one_sentence_listing_the_builtins(assert_one_sentence):
    with pytest.raises(UnknownEnvError) as e:
        diffpg.make("pendulumm")
    message = assert_one_sentence(e, UnknownEnvError, "unknown environment 'pendulumm'")
    for name in BUILTINS:
        assert name in message


@pytest.mark.parametrize("name, override", [("pendulum", {"gravity": 9.81}), ("lqr", {"K": 1.0}),
                                            ("cartpole_swingup", {"max_steps": 10, "friction": 0.1})])
def test_unknown_override_is_one_sentence_listing_what_is_accepted(name, override, assert_one_sentence):
    with pytest.raises(ConfigError) as e:
        diffpg.make(name, **override)
    unknown = sorted(set(override) - {"max_steps"})
    message = assert_one_sentence(e, ConfigError, f"{name} has no setting {', '.join(unknown)}", "it accepts")
    assert "max_steps" in message  # the accepted settings are listed


def test_overrides_set_params_and_static_settings():
    env = diffpg.make("pendulum", g=9.81, max_steps=50)
    assert env.params.g == 9.81 and env.max_steps == 50
    assert env.params.dt == PendulumParams().dt  # the rest keep their defaults
    lqr = diffpg.make("lqr", R=jnp.eye(1), init_cov=jnp.zeros((2, 2)))
    np.testing.assert_array_equal(lqr.params.R, jnp.eye(1))
    np.testing.assert_array_equal(lqr.params.A, LQRParams().A)


def test_lqr_matrices_that_do_not_fit_are_one_sentence(assert_one_sentence):
    with pytest.raises(ConfigError) as e:
        diffpg.make("lqr", A=jnp.eye(3))
    assert_one_sentence(e, ConfigError, "lqr parameter A must have shape (2, 2)", "got (3, 3)")
    with pytest.raises(ConfigError) as e:
        diffpg.make("lqr", init_mean=jnp.zeros(3))
    assert_one_sentence(e, ConfigError, "init_mean must have shape (2,)")


def test_register_makes_a_users_env_available_by_name():
    @struct.dataclass
    class SlowPendulumParams(PendulumParams):
        pass

    @struct.dataclass
    class Slow(Pendulum):
        params: SlowPendulumParams = SlowPendulumParams(dt=0.01)

    diffpg.envs.register("test_slow_pendulum", Slow)
    try:
        env = diffpg.make("test_slow_pendulum", m=2.0)
        assert isinstance(env, Slow) and env.params.dt == 0.01 and env.params.m == 2.0
        assert "test_slow_pendulum" in diffpg.envs.registered()
    finally:
        diffpg.envs.registry._REGISTRY.pop("test_slow_pendulum")


# ----------------------------------------------------------------------------- actions


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("shape", [(), (2,), (1, 1), (4, 1)])
def test_a_wrong_action_shape_is_one_sentence(name, shape, assert_one_sentence, quick_jit):
    env = diffpg.make(name)
    state = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(ShapeError) as e:
        env.step(state, jnp.zeros(shape))
    assert_one_sentence(e, ShapeError, f"{name} expects one unbatched action of shape (1,)", f"got shape {shape}",
                        "vmap")
    with pytest.raises(ShapeError):  # at trace time under jit too
        quick_jit(env.step)(state, jnp.zeros(shape))


def test_an_lqr_with_two_inputs_takes_two_actions(assert_one_sentence):
    env = diffpg.make("lqr", B=jnp.eye(2), R=jnp.eye(2))
    state = env.reset(jax.random.PRNGKey(0))
    assert env.step(state, jnp.ones(2)).obs.shape == (2,)
    with pytest.raises(ShapeError) as e:
        env.step(state, jnp.ones(1))
    assert_one_sentence(e, ShapeError, "shape (2,)")


def test_integer_actions_are_converted_to_float():
    env = diffpg.make("pendulum")
    state = env.reset(jax.random.PRNGKey(0))
    a = env.step(state, jnp.array([1], jnp.int32))
    b = env.step(state, jnp.array([1.0]))
    np.testing.assert_array_equal(a.obs, b.obs)
    assert a.obs.dtype == jnp.float32


# ----------------------------------------------------------------------------- episode bookkeeping


@pytest.mark.parametrize("name", BUILTINS)
def test_done_at_the_time_limit_then_rewards_are_masked(name, quick_jit):
    """max_steps = 3: done after the third step; that step's reward counts, later ones are zero."""
    env = diffpg.make(name, max_steps=3)
    action = jnp.full((env.action_size,), 0.5)

    @quick_jit
    def run(key):
        def body(state, _):
            state = env.step(state, action)
            return state, (state.reward, state.done, state.obs)
        return jax.lax.scan(body, env.reset(key), None, length=6)[1]

    rewards, dones, obs = (np.asarray(x) for x in run(jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(dones, [0, 0, 1, 1, 1, 1])
    assert np.all(rewards[:3] != 0)
    np.testing.assert_array_equal(rewards[3:], 0.0)
    assert not np.allclose(obs[3], obs[4])  # no auto-reset and no freeze: the dynamics go on


def test_default_time_limits():
    assert diffpg.make("pendulum").max_steps == 200
    assert diffpg.make("cartpole_swingup").max_steps == 200


# ----------------------------------------------------------------------------- gradients of step

def _state_fn(env, state, fields):
    """step as a function of the continuous fields named and the action, returning (obs, reward)."""

    def f(*args):
        *values, action = args
        next_state = env.step(state.replace(**dict(zip(fields, values))), action)
        return next_state.obs, next_state.reward

    return f


# States away from every clip and wrap: pendulum speed stays well inside ±8 after the step,
# torques and forces inside their bounds, angles away from the ±π wrap of angle_normalize.
# Second order for the pendulum (trigonometric dynamics); first order for lqr (linear dynamics,
# quadratic reward) and cartpole_swingup, where second-order check_grads costs 10-15 s of
# compilation on two CPU cores for little extra assurance.
GRAD_CASES = {
    "lqr": (("obs",), (np.array([0.7, -1.1]),), np.array([0.3]), 1),
    "pendulum": (("theta", "theta_dot"), (np.float64(0.7), np.float64(1.3)), np.array([0.4]), 2),
    "cartpole_swingup": (("q",), (np.array([0.1, -0.2, 2.5, 0.4]),), np.array([0.3]), 1),
}


@pytest.mark.parametrize("name", BUILTINS)
def test_step_passes_check_grads(name, x64):
    """Forward and reverse mode, to the order of GRAD_CASES, against float64 finite differences.

    In float64 the central differences of check_grads (eps = 1e-4) are accurate
    to ~1e-8, so its default float64 tolerance of 1e-5 is a real check.
    """
    env = diffpg.make(name)
    fields, values, action, order = GRAD_CASES[name]
    state = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                         env.reset(jax.random.PRNGKey(0)))
    f = jax.jit(_state_fn(env, state, fields))
    args = tuple(jnp.asarray(v, jnp.float64) for v in values) + (jnp.asarray(action, jnp.float64),)
    obs, reward = f(*args)
    assert obs.dtype == jnp.float64 and reward.dtype == jnp.float64
    check_grads(f, args, order=order, modes=("fwd", "rev"))


def test_out_of_range_torque_has_zero_gradient_as_in_the_reference():
    env = diffpg.make("pendulum")
    state = env.reset(jax.random.PRNGKey(0)).replace(theta=jnp.float32(0.5), theta_dot=jnp.float32(0.0))
    grad = jax.grad(lambda a: env.step(state, a).theta_dot)
    assert float(grad(jnp.array([3.0]))[0]) == 0.0
    np.testing.assert_allclose(grad(jnp.array([1.0]))[0], 3.0 / (1.0 * 1.0**2) * 0.05, rtol=1e-6)


def test_params_vmap_for_domain_randomization(quick_jit):
    gs = jnp.array([9.0, 10.0, 11.0])
    state = diffpg.make("pendulum").reset(jax.random.PRNGKey(0))
    params = jax.vmap(lambda g: PendulumParams(g=g))(gs)
    batched = quick_jit(jax.vmap(lambda p: Pendulum(p).step(state, jnp.array([0.5]))))(params)
    for i, g in enumerate(gs):
        one = diffpg.make("pendulum", g=float(g)).step(state, jnp.array([0.5]))
        np.testing.assert_allclose(batched.obs[i], one.obs, rtol=1e-6)
    assert not np.allclose(batched.obs[0], batched.obs[2])


# ----------------------------------------------------------------------------- lqr


def test_lqr_step_is_the_linear_system_with_quadratic_cost():
    A = np.array([[1.0, 0.2], [-0.1, 0.9]])
    B = np.array([[0.5], [1.0]])
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    R = np.array([[0.4]])
    env = diffpg.make("lqr", A=jnp.asarray(A), B=jnp.asarray(B), Q=jnp.asarray(Q), R=jnp.asarray(R))
    x = np.array([0.8, -1.5])
    u = np.array([0.7])
    state = env.reset(jax.random.PRNGKey(0)).replace(obs=jnp.asarray(x, jnp.float32))
    nxt = env.step(state, jnp.asarray(u, jnp.float32))
    np.testing.assert_allclose(nxt.obs, A @ x + B @ u, rtol=1e-6)
    np.testing.assert_allclose(nxt.reward, -(x @ Q @ x + u @ R @ u), rtol=1e-6)
    assert int(nxt.t) == 1 and float(nxt.done) == 0.0


def test_lqr_reset_has_the_configured_mean_and_covariance(quick_jit):
    """4096 draws: mean within 4 SE per coordinate, covariance entries within 4 SE.

    For Gaussian x the sample covariance entry S_ij has variance
    (Σ_ii Σ_jj + Σ_ij²)/n, which gives its SE.
    """
    mean = np.array([1.0, -2.0])
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    env = diffpg.make("lqr", init_mean=jnp.asarray(mean), init_cov=jnp.asarray(cov))
    n = 4096
    xs = np.asarray(quick_jit(jax.vmap(lambda k: env.reset(k).obs))(jax.random.split(jax.random.PRNGKey(0), n)),
                    np.float64)
    assert np.all(np.abs(xs.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n))
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(xs.T) - cov) < 4 * se_cov)
    fixed = diffpg.make("lqr", init_mean=jnp.asarray(mean), init_cov=jnp.zeros((2, 2)))
    np.testing.assert_array_equal(fixed.reset(jax.random.PRNGKey(3)).obs, mean.astype(np.float32))


def test_lqr_process_noise_is_pure_and_has_the_configured_covariance(quick_jit):
    """The noise key travels in the state: the same state gives the same next state, and over
    4096 states x' − (Ax + Bu) has covariance W (entries within 4 SE, as for reset)."""
    W = np.array([[0.3, 0.1], [0.1, 0.2]])
    env = diffpg.make("lqr", noise_cov=jnp.asarray(W))
    u = jnp.array([0.5])

    @quick_jit
    @jax.vmap
    def residual(key):
        state = env.reset(key)
        nxt = env.step(state, u)
        again = env.step(state, u)
        return nxt.obs - (env.params.A @ state.obs + env.params.B @ u), nxt.obs - again.obs, nxt.key, state.key

    n = 4096
    res, diff, key_after, key_before = (np.asarray(x) for x in residual(jax.random.split(jax.random.PRNGKey(1), n)))
    np.testing.assert_array_equal(diff, 0.0)
    assert not np.any(np.all(key_after == key_before, axis=-1))
    assert np.all(np.abs(res.mean(0)) < 4 * np.sqrt(np.diag(W) / n))
    se_cov = np.sqrt((np.outer(np.diag(W), np.diag(W)) + W**2) / n)
    assert np.all(np.abs(np.cov(res.T.astype(np.float64)) - W) < 4 * se_cov)


# ----------------------------------------------------------------------------- cartpole_swingup


def cartpole_energy(q, p):
    """E = ½(m_c + m_p) ẋ² + m_p l ẋ θ̇ cos θ + ⅔ m_p l² θ̇² + m_p g l cos θ (θ = 0 upright, I = m_p l²/3)."""
    x, x_dot, th, th_dot = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    mc, mp, l, g = p.cart_mass, p.pole_mass, p.pole_half_length, p.gravity
    return (0.5 * (mc + mp) * x_dot**2 + mp * l * x_dot * th_dot * np.cos(th)
            + 2.0 / 3.0 * mp * l**2 * th_dot**2 + mp * g * l * np.cos(th))


def cartpole_momentum(q, p):
    """Horizontal momentum (m_c + m_p) ẋ + m_p l θ̇ cos θ, whose rate of change is the force."""
    return (p.cart_mass + p.pole_mass) * q[..., 1] + p.pole_mass * p.pole_half_length * q[..., 3] * np.cos(q[..., 2])


def coast_with(env, q0, action):
    """200 steps from q0 under a constant action: the states and rewards."""
    state = env.reset(jax.random.PRNGKey(0))
    state = env._state(q0, state.reward, state.done, state.t)

    def body(s, _):
        s = env.step(s, action)
        return s, (s.q, s.reward)

    return jax.lax.scan(body, state, None, length=200)[1]


@pytest.fixture(scope="module")
def cartpole(quick_jit):
    env = diffpg.make("cartpole_swingup")
    return env, quick_jit(lambda q0, action: coast_with(env, q0, action))


def test_cartpole_starts_hanging_down_with_small_noise(cartpole, quick_jit):
    env, _ = cartpole
    states = quick_jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 1024))
    obs, q = np.asarray(states.obs), np.asarray(states.q)
    assert obs.shape == (1024, 5)
    assert np.all(obs[:, 3] < -np.cos(0.05) + 1e-6)  # cos θ ≈ −1: the pole hangs down
    assert np.all(np.abs(q[:, 2] - np.pi) <= 0.05 + 1e-6)
    assert np.all(np.abs(q[:, [0, 1, 3]]) <= 0.05)
    assert np.abs(q[:, 0]).max() > 0.04  # the noise fills its range
    np.testing.assert_allclose(obs, np.stack([q[:, 0], q[:, 1], np.sin(q[:, 2]), np.cos(q[:, 2]), q[:, 3]], 1),
                               atol=1e-6)


def test_cartpole_reward_is_highest_upright_at_rest(cartpole, quick_jit):
    env, _ = cartpole
    base = env.reset(jax.random.PRNGKey(0))

    def reward(q, a):
        return env.step(env._state(q, base.reward, base.done, base.t), a).reward

    assert float(reward(jnp.zeros(4), jnp.zeros(1))) == 0.0
    qs = jax.random.normal(jax.random.PRNGKey(1), (512, 4))
    actions = jax.random.uniform(jax.random.PRNGKey(2), (512, 1), minval=-1, maxval=1)
    others = np.asarray(quick_jit(jax.vmap(reward))(qs, actions))
    assert np.all(others < 0)
    hanging = float(reward(jnp.array([0.0, 0.0, np.pi, 0.0]), jnp.zeros(1)))
    np.testing.assert_allclose(hanging, -np.pi**2, rtol=1e-5)


def test_cartpole_force_is_clipped_and_pushes_the_cart(cartpole):
    env, _ = cartpole
    state = env.reset(jax.random.PRNGKey(0))
    full, beyond = env.step(state, jnp.array([1.0])), env.step(state, jnp.array([7.0]))
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(beyond)):
        np.testing.assert_array_equal(a, b)
    pushed = env.step(state, jnp.array([0.5]))
    assert float(pushed.q[1]) > float(state.q[1]) + 0.1  # ẋ grows by about F/(m_c + m_p) · dt = 0.23
    assert float(env.step(state, jnp.array([-0.5])).q[1]) < float(state.q[1]) - 0.1


def test_cartpole_equilibria_stay_put(cartpole):
    env, coast = cartpole
    upright, _ = coast(jnp.zeros(4), jnp.zeros(1))
    np.testing.assert_array_equal(np.asarray(upright), 0.0)
    hanging, _ = coast(jnp.array([0.0, 0.0, np.pi, 0.0]), jnp.zeros(1))
    np.testing.assert_allclose(np.asarray(hanging)[:, [0, 1, 3]], 0.0, atol=1e-4)


def test_cartpole_without_force_conserves_energy_and_momentum(cartpole, quick_jit):
    """Frictionless and unforced, the continuous dynamics conserve energy and horizontal momentum.

    Semi-implicit Euler drifts by O(h): over 200 steps of a large swing the
    default 4 substeps (h = 12.5 ms) keep both within a few percent, and 16×
    more substeps shrink the drift about 16× (first-order convergence to zero).
    A wrong term in the equations of motion would leave a drift that does not
    vanish with h. Measured: energy drift 3.6% of m_p g l with 4 substeps and
    0.23% with 64; momentum drift 3.7% and 0.23% of its swing.
    """
    env, coast = cartpole
    p = env.params
    q0 = jnp.array([0.0, 0.3, np.pi - 1.2, -0.5])
    fine_env = diffpg.make("cartpole_swingup", substeps=64)
    fine = quick_jit(lambda q: coast_with(fine_env, q, jnp.zeros(1))[0])
    drifts = []
    for qs in (coast(q0, jnp.zeros(1))[0], fine(q0)):
        qs = np.concatenate([np.asarray(q0, np.float64)[None], np.asarray(qs, np.float64)])
        assert np.ptp(qs[:, 2]) > 2.0  # it really swings
        energy, momentum = cartpole_energy(qs, p), cartpole_momentum(qs, p)
        swing = np.max(np.abs(p.pole_mass * p.pole_half_length * qs[:, 3]))
        drifts.append((np.max(np.abs(energy - energy[0])) / (p.pole_mass * p.gravity * p.pole_half_length),
                       np.max(np.abs(momentum - momentum[0])) / swing))
    (e4, m4), (e64, m64) = drifts
    assert e4 < 0.06 and m4 < 0.06
    assert e64 < 0.005 and m64 < 0.005
    assert 8 < e4 / e64 < 32 and 8 < m4 / m64 < 32


def test_cartpole_pushing_changes_momentum_by_the_impulse(cartpole):
    """d/dt [(m_c + m_p) ẋ + m_p l θ̇ cos θ] = F: after 200 steps of F = 3 N the momentum grew by F · 10 s."""
    env, coast = cartpole
    p = env.params
    q0 = jnp.array([0.0, 0.0, np.pi, 0.0])
    qs, _ = coast(q0, jnp.array([0.3]))
    force = p.max_force * 0.3
    gained = cartpole_momentum(np.asarray(qs[-1], np.float64), p) - cartpole_momentum(np.asarray(q0, np.float64), p)
    np.testing.assert_allclose(gained, force * 200 * p.dt, rtol=0.02)
