"""diffpg.rollout / unroll: the one lax.scan, against a plain Python loop, masking, and its gradient options."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.errors import ShapeError
from diffpg.estimators.objectives import pathwise_surrogate
from diffpg.rollouts import rollout, unroll
from diffpg.types import State


def python_loop(key, env, policy, params, horizon, jit):
    """The rollout written as a plain loop, with the key splitting ``rollout`` documents:
    key → (reset key, step keys), step keys split into one key per step."""
    k_reset, k_steps = jax.random.split(key)
    keys = jax.random.split(k_steps, horizon)
    step, sample = jit(env.step), jit(policy.sample)
    state = env.reset(k_reset)
    obs, actions, rewards, dones = [], [], [], []
    ended = float(state.done)
    for t in range(horizon):
        action = sample(keys[t], params, state.obs)
        nxt = step(state, action)
        obs.append(state.obs)
        actions.append(action)
        rewards.append(float(nxt.reward) * (1.0 - ended))
        if not ended:  # an ended episode stays at its last state
            state = nxt
        ended = max(ended, float(nxt.done))
        dones.append(ended)
    return state, (np.array(obs), np.array(actions), np.array(rewards), np.array(dones))


# ----------------------------------------------------------------------------- scan == loop


@pytest.mark.parametrize("name, policy", [
    ("pendulum", diffpg.policies.GaussianMLP(action_size=1, hidden=(8,), squash=True, action_scale=2.0)),
    ("lqr", diffpg.policies.LinearGaussian(action_size=1)),
])
def test_scan_rollout_equals_a_python_loop(name, policy, quick_jit, random_params):
    """Same keys, same states, actions and masked rewards; the episode ends inside the horizon."""
    env = diffpg.make(name, max_steps=9)
    if name == "lqr":
        env = env.replace(params=env.params.replace(noise_cov=0.05 * jnp.eye(2)))  # the key in the state matters
    horizon = 14
    params = random_params(policy, env.observation_size, seed=0, scale=0.5)
    key = jax.random.PRNGKey(42)
    k_reset, k_steps = jax.random.split(key)

    @quick_jit
    def scanned(key, params):
        traj = rollout(key, env, policy, params, horizon)
        end, traj2 = unroll(k_steps, env, policy, params, env.reset(k_reset), horizon)
        return traj, end, traj2

    traj, end, traj2 = scanned(key, params)
    final, (obs, actions, rewards, dones) = python_loop(key, env, policy, params, horizon, quick_jit)
    np.testing.assert_allclose(traj.obs, obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traj.action, actions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traj.reward, rewards, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(traj.done, dones)
    np.testing.assert_array_equal(dones, [0] * 8 + [1] * 6)
    assert np.all(rewards[:9] != 0) and np.all(rewards[9:] == 0)
    assert np.ptp(actions) > 0.1  # the policy does something
    np.testing.assert_array_equal(traj2.obs, traj.obs)
    np.testing.assert_allclose(end.obs, final.obs, rtol=1e-5, atol=1e-6)
    assert int(end.t) == 9  # the episode ended at its max_steps, and the rollout stayed there


def test_trajectory_fields_mean_what_the_docs_say(quick_jit):
    """obs[t] is where action[t] was taken, reward[t] what it earned: on the LQR, r_t = −(x_tᵀQx_t + u_tᵀRu_t)
    and x_{t+1} = A x_t + B u_t, both checkable from the trajectory alone."""
    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[-0.4, -0.9]]), "log_std": jnp.log(jnp.array([0.3]))}
    key = jax.random.PRNGKey(0)
    traj = quick_jit(lambda k: rollout(k, env, policy, params, 10))(key)
    x, u = np.asarray(traj.obs, np.float64), np.asarray(traj.action, np.float64)
    p = env.params
    np.testing.assert_allclose(traj.obs[0], env.reset(jax.random.split(key)[0]).obs)
    cost = np.einsum("ti,ij,tj->t", x, p.Q, x) + np.einsum("ti,ij,tj->t", u, p.R, u)
    np.testing.assert_allclose(traj.reward, -cost, rtol=1e-5)
    np.testing.assert_allclose(x[1:], x[:-1] @ np.asarray(p.A).T + u[:-1] @ np.asarray(p.B).T, rtol=1e-5, atol=1e-6)
    assert traj.obs.shape == (10, 2) and traj.action.shape == (10, 1)
    assert traj.reward.shape == (10,) and traj.done.shape == (10,)


def test_rollout_vmaps_over_keys_and_rows_equal_single_rollouts(quick_jit):
    env = diffpg.make("pendulum")
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[-1.0, 0.5, -0.2]]), "log_std": jnp.log(jnp.array([0.4]))}
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    one = lambda k: rollout(k, env, policy, params, 12)  # noqa: E731
    batch, single = quick_jit(lambda ks: (jax.vmap(one)(ks), jax.lax.map(one, ks)))(keys)
    assert batch.obs.shape == (4, 12, 3)
    np.testing.assert_allclose(batch.reward, single.reward, rtol=1e-5, atol=1e-6)
    assert not np.allclose(batch.reward[0], batch.reward[1])


def test_pathwise_surrogate():
    r = jnp.array([1.0, -2.0, 3.0, 0.5])
    np.testing.assert_allclose(pathwise_surrogate(r, 0.9), 1.0 - 2.0 * 0.9 + 3.0 * 0.81 + 0.5 * 0.729, rtol=1e-6)
    np.testing.assert_allclose(pathwise_surrogate(r, 1.0), 2.5, rtol=1e-6)


# ----------------------------------------------------------------------------- a user's env: masking, done types


class Walker:
    """A user's env: x' = x + a, reward 1 + x (never masked by the env itself),
    done while |x| ≥ 1.5 (not sticky: it clears when x comes back). Duck-typed."""

    observation_size = 1
    action_size = 1

    def __init__(self, bool_done):
        self.bool_done = bool_done

    def _done(self, x):
        d = jnp.abs(x[0]) >= 1.5
        return d if self.bool_done else d.astype(jnp.float32)

    def reset(self, key):
        x = jnp.zeros(1)
        return State(obs=x, reward=jnp.zeros(()), done=self._done(x))

    def step(self, state, action):
        x = state.obs + action
        return State(obs=x, reward=1.0 + x[0], done=self._done(x))


class Scripted:
    """A user's deterministic policy: step +0.5 while x < 1.4, else −0.5, scaled by a parameter."""

    def init(self, key, observation_size):
        return {"scale": jnp.ones(())}

    def sample(self, key, params, obs):
        return params["scale"] * jnp.where(obs[0] < 1.4, 0.5, -0.5)[None]


def test_rewards_are_masked_after_done_and_there_is_no_reset(quick_jit):
    """x goes 0.5, 1.0, 1.5 (done); the env would then step back to 1.0 and clear its flag, but the
    episode ended at step 3 and stays ended, at its last state, its later rewards are zero, and the
    state is never reset."""
    env, policy = Walker(bool_done=False), Scripted()
    traj = quick_jit(lambda k: rollout(k, env, policy, {"scale": jnp.ones(())}, 8))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(traj.obs[:, 0], [0.0, 0.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5])
    np.testing.assert_array_equal(traj.done, [0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(traj.reward, [1.5, 2.0, 2.5, 0, 0, 0, 0, 0])


def test_unroll_from_an_ended_state_stays_there_with_zero_reward_and_gradient(quick_jit):
    """``unroll`` from a state whose episode has already ended (training resets such states between
    windows, but a user may pass one): the start state's own flag ends it, so nothing moves, every
    reward is 0 and so is the gradient."""
    env, policy = Walker(bool_done=True), Scripted()
    start = State(obs=jnp.full(1, 1.5), reward=jnp.zeros(()), done=jnp.ones(()))

    def window_return(params):
        final, traj = unroll(jax.random.PRNGKey(0), env, policy, params, start, 4)
        return traj.reward.sum(), (final, traj)

    (total, (final, traj)), g = quick_jit(jax.value_and_grad(window_return, has_aux=True))({"scale": jnp.ones(())})
    np.testing.assert_array_equal(traj.reward, [0, 0, 0, 0])
    np.testing.assert_array_equal(traj.done, [1, 1, 1, 1])
    np.testing.assert_array_equal(final.obs, [1.5])
    assert float(total) == 0.0 and float(g["scale"]) == 0.0


@pytest.mark.parametrize("bool_done", [True, False])
def test_done_may_be_a_bool_or_a_float(bool_done, quick_jit):
    env, policy = Walker(bool_done=bool_done), Scripted()
    params = {"scale": jnp.ones(())}
    traj = quick_jit(lambda k: rollout(k, env, policy, params, 8))(jax.random.PRNGKey(0))
    assert traj.done.dtype == jnp.float32
    np.testing.assert_array_equal(traj.done, [0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(traj.reward, [1.5, 2.0, 2.5, 0, 0, 0, 0, 0])
    g = quick_jit(jax.grad(lambda p: rollout(jax.random.PRNGKey(0), env, policy, p, 8).reward.sum()))(params)
    # d/dscale of (1 + x1) + (1 + x2) + (1 + x3) with x_t = 0.5 t · scale: 0.5 + 1.0 + 1.5
    np.testing.assert_allclose(g["scale"], 3.0, rtol=1e-6)


def test_a_step_that_returns_bool_done_after_a_float_reset_works(quick_jit):
    class Mixed(Walker):
        def reset(self, key):
            return State(obs=jnp.zeros(1), reward=jnp.zeros(()), done=jnp.zeros(()))

    traj = quick_jit(lambda k: rollout(k, Mixed(bool_done=True), Scripted(), {"scale": jnp.ones(())}, 8))(
        jax.random.PRNGKey(0))
    np.testing.assert_array_equal(traj.done, [0, 0, 1, 1, 1, 1, 1, 1])


# ----------------------------------------------------------------------------- shape errors


def test_a_policy_with_the_wrong_action_size_is_one_sentence(assert_one_sentence):
    env = diffpg.make("pendulum")
    policy = diffpg.policies.LinearGaussian(action_size=2)
    params = policy.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(ShapeError) as e:
        rollout(jax.random.PRNGKey(0), env, policy, params, 5)
    assert_one_sentence(e, ShapeError, "the policy returned an action of shape (2,)", "action_size=1")


def test_an_env_whose_obs_disagrees_with_observation_size_is_one_sentence(assert_one_sentence):
    class Liar(Walker):
        observation_size = 3

    with pytest.raises(ShapeError) as e:
        rollout(jax.random.PRNGKey(0), Liar(bool_done=False), Scripted(), {"scale": jnp.ones(())}, 5)
    assert_one_sentence(e, ShapeError, "observation_size=3", "shape (1,)")


# ----------------------------------------------------------------------------- truncation and remat

H, GAMMA = 12, 0.9


@pytest.fixture(scope="module")
def lqr_setup():
    env = diffpg.make("lqr", noise_cov=0.05 * jnp.eye(2))
    policy = diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[-0.3, -0.6]]), "log_std": jnp.log(jnp.array([0.4]))}
    return env, policy, params, jax.random.PRNGKey(7)


@pytest.fixture(scope="module")
def option_grads(lqr_setup, quick_jit):
    """∇ of Σ γᵗ r_t through rollout under each option, all in one compiled function."""
    env, policy, params, key = lqr_setup
    options = {"full": {"remat": False}, "remat": {"remat": True}, "trunc_H": {"truncate_every": H},
               "trunc_1": {"truncate_every": 1}, "trunc_5": {"truncate_every": 5, "remat": False},
               "trunc_5_remat": {"truncate_every": 5, "remat": True}}

    @quick_jit
    def grads(params):
        def objective(p, opts):
            return pathwise_surrogate(rollout(key, env, policy, p, H, **opts).reward, GAMMA)
        return {name: jax.value_and_grad(objective)(params, opts) for name, opts in options.items()}

    return grads(params)


def windows_by_hand(env, policy, params, key, k, jit):
    """Truncated BPTT written out: the forward states s_t from a plain loop; window w starts at
    s_{wk} held constant and its return Σ_{t in window} γᵗ r_t is differentiated alone; the
    truncated gradient is the sum of the window gradients."""
    k_reset, k_steps = jax.random.split(key)
    keys = jax.random.split(k_steps, H)
    starts = [env.reset(k_reset)]
    step, sample = jit(env.step), jit(policy.sample)
    for t in range(H - 1):
        starts.append(step(starts[-1], sample(keys[t], params, starts[-1].obs)))

    @jit
    def window_grad(p, start, window_keys, t0, valid):
        def ret(p):
            state, total = start, 0.0
            for j in range(k):
                action = policy.sample(window_keys[j], p, state.obs)
                state = env.step(state, action)
                total = total + valid[j] * GAMMA ** (t0 + j) * state.reward
            return total
        return jax.grad(ret)(p)

    total = jax.tree.map(jnp.zeros_like, params)
    for t0 in range(0, H, k):
        idx = np.minimum(np.arange(t0, t0 + k), H - 1)
        valid = jnp.asarray(np.arange(t0, t0 + k) < H, jnp.float32)
        g = window_grad(params, starts[t0], keys[idx], jnp.float32(t0), valid)
        total = jax.tree.map(jnp.add, total, g)
    return total


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_remat_gives_the_same_value_and_gradient(option_grads):
    assert_trees_close(option_grads["remat"], option_grads["full"])
    assert_trees_close(option_grads["trunc_5_remat"], option_grads["trunc_5"])


def test_truncating_every_horizon_steps_is_full_backprop(option_grads):
    assert_trees_close(option_grads["trunc_H"], option_grads["full"])


def test_truncation_changes_the_gradient_but_not_the_value(option_grads):
    for name in ("trunc_1", "trunc_5"):
        np.testing.assert_allclose(option_grads[name][0], option_grads["full"][0], rtol=1e-6)
        assert not np.allclose(option_grads[name][1]["K"], option_grads["full"][1]["K"], rtol=1e-2)


@pytest.mark.parametrize("k", [1, 5])
def test_truncated_gradient_is_the_sum_of_window_gradients(k, option_grads, lqr_setup, quick_jit):
    """k = 5 with H = 12 also checks a short last window (steps 10, 11)."""
    env, policy, params, key = lqr_setup
    assert_trees_close(option_grads[f"trunc_{k}"][1], windows_by_hand(env, policy, params, key, k, quick_jit))


def test_truncate_every_one_is_the_immediate_reward_gradient(option_grads, lqr_setup, quick_jit):
    """With every state cut, only r_t = −(xᵀQx + uᵀRu), u = Kx + σξ, depends on θ:
    ∇_K = Σ γᵗ (−2 R u_t) x_tᵀ and ∇_{log σ} = Σ γᵗ (−2 R u_t) ⊙ (u_t − K x_t)."""
    env, policy, params, key = lqr_setup
    traj = quick_jit(lambda k: rollout(k, env, policy, params, H))(key)
    x, u = np.asarray(traj.obs, np.float64), np.asarray(traj.action, np.float64)
    R, K = np.asarray(env.params.R, np.float64), np.asarray(params["K"], np.float64)
    w = GAMMA ** np.arange(H)
    du = -2 * u @ R.T
    grad_K = np.einsum("t,ti,tj->ij", w, du, x)
    grad_log_std = np.einsum("t,ti->i", w, du * (u - x @ K.T))
    np.testing.assert_allclose(option_grads["trunc_1"][1]["K"], grad_K, rtol=1e-5)
    np.testing.assert_allclose(option_grads["trunc_1"][1]["log_std"], grad_log_std, rtol=1e-5)
