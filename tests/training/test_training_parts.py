"""The pieces of the training loop, against answers worked out by hand: λ-returns and GAE,
running observation statistics, SHAC's bootstrap weights, window bookkeeping
(time-limit truncation, resets at the boundary), the bounds loss and the
non-finite guard."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import diffpg
from diffpg.estimators.objectives import reward_to_go
from diffpg.policies import GaussianMLP
from diffpg.training import normalizer
from diffpg.training.bounds_loss import bounds_loss
from diffpg.training.optimizer import guarded_step, make_optimizer
from diffpg.training.critic import gae, lambda_returns, standardize
from diffpg.training.shac import bootstrap_weight
from diffpg.training.window import Acting, reset_finished, run_window


def lambda_returns_by_hand(r, v_next, ended, failed, gamma, lam):
    """The forward-view definition: G_t^λ = (1−λ) Σ_n λ^{n−1} G_t^(n) + λ^{T−t−1} G_t^(T−t),
    written for one episode inside the window (no episode ends before the last step)."""
    T = len(r)
    out = []
    for t in range(T):
        def n_step(n):  # r_t + ... + γ^{n-1} r_{t+n-1} + γ^n b_{t+n-1}
            g = sum(gamma**k * r[t + k] for k in range(n))
            last = t + n - 1
            return g + gamma**n * (1 - failed[last]) * v_next[last]
        m = T - t
        g = (1 - lam) * sum(lam ** (n - 1) * n_step(n) for n in range(1, m)) + lam ** (m - 1) * n_step(m)
        out.append(g)
    return np.array(out)


def test_lambda_returns_match_the_forward_view():
    r = np.array([1.0, -2.0, 0.5, 3.0])
    v_next = np.array([0.3, -1.0, 2.0, 4.0])
    zeros = np.zeros(4)
    for lam in (0.0, 0.5, 0.95, 1.0):
        got = lambda_returns(jnp.array(r), jnp.array(v_next), jnp.array(zeros), jnp.array(zeros), 0.9, lam)
        np.testing.assert_allclose(got, lambda_returns_by_hand(r, v_next, zeros, zeros, 0.9, lam), rtol=1e-6)


def test_lambda_returns_one_step_and_monte_carlo_limits():
    r = jnp.array([1.0, 2.0, 3.0])
    v_next = jnp.array([10.0, 20.0, 30.0])
    zeros = jnp.zeros(3)
    # λ = 0: the one-step TD target r_t + γ V(s_{t+1})
    np.testing.assert_allclose(lambda_returns(r, v_next, zeros, zeros, 0.5, 0.0), [6.0, 12.0, 18.0])
    # λ = 1 with a failure at the end: the plain reward-to-go of the estimators
    failed_last = jnp.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(lambda_returns(r, v_next, failed_last, failed_last, 0.5, 1.0),
                               reward_to_go(r, 0.5))


def test_lambda_returns_stop_at_episode_ends():
    r = jnp.array([1.0, 1.0, 5.0, 7.0])
    v_next = jnp.array([2.0, 3.0, 4.0, 6.0])
    ended = jnp.array([0.0, 1.0, 0.0, 0.0])
    # truncated at step 1 (time limit): bootstrap with V(s_2) = 3, ignore what comes after
    g = lambda_returns(r, v_next, ended, jnp.zeros(4), 0.5, 1.0)
    np.testing.assert_allclose(g[:2], [1.0 + 0.5 * (1.0 + 0.5 * 3.0), 1.0 + 0.5 * 3.0])
    # failed at step 1: nothing follows
    g = lambda_returns(r, v_next, ended, ended, 0.5, 1.0)
    np.testing.assert_allclose(g[:2], [1.5, 1.0])
    # the new episode's steps bootstrap at the window's end: 7 + 0.5 * 6, then 5 + 0.5 * 10
    np.testing.assert_allclose(g[2:], [10.0, 10.0])


def test_gae_follows_its_recursion():
    key = jax.random.key(0)
    r = jax.random.normal(key, (6,))
    values = jax.random.normal(jax.random.key(1), (7,))  # V(s_0) ... V(s_6) along one trajectory
    v, v_next = values[:-1], values[1:]
    ended = jnp.array([0, 0, 1, 0, 0, 0], jnp.float32)
    adv, _ = gae(r, v, v_next, ended, jnp.zeros(6), 0.9, 0.8)
    # GAE's own recursion, A_t = δ_t + γλ(1 − ended_t) A_{t+1}, δ_t = r_t + γ V(s_{t+1}) − V(s_t)
    delta = np.asarray(r + 0.9 * v_next - v)
    expected = np.zeros(6)
    for t in reversed(range(6)):
        nxt = expected[t + 1] if t < 5 else 0.0
        expected[t] = delta[t] + 0.9 * 0.8 * (1 - float(ended[t])) * nxt
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)


def test_standardize_uses_only_weighted_entries():
    a = jnp.array([1.0, 3.0, 100.0])
    w = jnp.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(standardize(a, w), [-1.0, 1.0, 0.0], atol=1e-6)


def test_running_stats_equal_the_statistics_of_all_data():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(5, 40, 3)).astype(np.float32)
    stats = normalizer.init(3)
    for batch in data:
        stats = normalizer.update(stats, jnp.asarray(batch))
    flat = data.reshape(-1, 3)
    # the prior count of 1e-4 at mean 0, variance 1 shifts the answer by about 1e-4 / 200 relative
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-4)
    np.testing.assert_allclose(normalizer.normalize(stats, jnp.asarray(flat)).std(0), 1.0, rtol=1e-3)
    obs = jnp.array([3.0, -1.0, 0.5])
    np.testing.assert_array_equal(normalizer.normalize(None, obs), obs)  # normalization off: the identity


def test_masked_observations_are_left_out_of_the_statistics():
    """Steps after an episode's end (mask 0) count for nothing: the same as merging the kept rows alone."""
    data = np.random.default_rng(1).normal(size=(4, 10, 3)).astype(np.float32)
    mask = np.ones((4, 10), np.float32)
    mask[1, 6:] = mask[3, 2:] = 0.0
    data[1, 6:] = data[3, 2:] = 50.0  # a frozen final observation, repeated
    masked = normalizer.update(normalizer.init(3), jnp.asarray(data), jnp.asarray(mask))
    kept = normalizer.update(normalizer.init(3), jnp.asarray(data[mask > 0]))
    for a, b in zip(masked, kept):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bootstrap_weight_by_hand():
    from diffpg.training.window import Window
    alive = jnp.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], jnp.float32)
    ended = jnp.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], jnp.float32)
    failed = jnp.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], jnp.float32)
    window = Window(traj=None, next_obs=None, alive=alive, ended=ended, failed=failed, final=None)
    # running: the window's tail; truncated at step 1: V(s_2); failed at step 1: nothing
    np.testing.assert_array_equal(bootstrap_weight(window), [[0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])


@pytest.fixture(scope="module")
def pendulum_window():
    env = diffpg.make("pendulum")
    policy = GaussianMLP(action_size=1, hidden=(8,), squash=True, action_scale=2.0)
    params = policy.init(jax.random.key(0), 3)
    states = jax.vmap(env.reset)(jax.random.split(jax.random.key(1), 3))
    # three environments at different points of their 200-step episodes
    states = states.replace(t=jnp.array([0, 190, 196], jnp.int32))
    run = jax.jit(lambda s: run_window(jax.random.key(2), env, Acting(policy, None, True), params, s, 6))
    return env, states, run(states)


def test_window_marks_time_limit_truncation(pendulum_window):
    env, states, window = pendulum_window
    # env 2 started at t = 196, so its episode ends with step 3 (t = 200): truncated, not failed
    np.testing.assert_array_equal(window.ended, [[0] * 6, [0] * 6, [0, 0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(window.failed, np.zeros((3, 6)))
    np.testing.assert_array_equal(window.alive[2], [1, 1, 1, 1, 0, 0])
    assert float(window.traj.reward[2, 4:].sum()) == 0.0
    # next_obs[t] is obs[t + 1], and the last one the final state's
    np.testing.assert_array_equal(window.next_obs[:, :-1], window.traj.obs[:, 1:])
    np.testing.assert_array_equal(window.next_obs[:, -1], window.final.obs)


def test_reset_finished_replaces_only_finished_environments(pendulum_window):
    env, _, window = pendulum_window
    after = reset_finished(jax.random.key(5), env, window.final)
    np.testing.assert_array_equal(after.t, [6, 196, 0])
    np.testing.assert_array_equal(after.done, [0, 0, 0])
    np.testing.assert_array_equal(after.obs[:2], window.final.obs[:2])
    assert not np.array_equal(after.obs[2], window.final.obs[2])
    assert jax.tree.structure(after) == jax.tree.structure(window.final)


def test_bounds_loss_is_zero_inside_and_quadratic_outside():
    policy = GaussianMLP(action_size=1, hidden=(), squash=True, action_scale=2.0)
    params = policy.init(jax.random.key(0), 1)
    params = jax.tree.map(jnp.zeros_like, params)
    params["mean"]["params"]["Dense_0"]["kernel"] = jnp.ones((1, 1))
    obs = jnp.array([[1.0], [-2.5], [4.0], [-5.0]])
    # pre-squash means equal obs; soft bound 3: penalties 0, 0, 1, 4
    assert float(bounds_loss(policy, params, None, obs)) == pytest.approx(5.0 / 4)


def test_guarded_step_skips_non_finite_gradients_bit_for_bit():
    opt = make_optimizer(0.1, max_grad_norm=1.0, b1=0.9, b2=0.999)
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    opt_state = opt.init(params)
    good = {"w": jnp.array([0.3, 0.1]), "b": jnp.array(-0.2)}
    p1, s1, ok = guarded_step(opt, good, opt_state, params)
    # ‖good‖ < 1, so no clipping; Adam's first step is −η m̂ / (√v̂ + ε) = −η sign(g) (to ε / |g|)
    assert bool(ok)
    np.testing.assert_allclose(p1["w"], [1.0 - 0.1, -2.0 - 0.1], rtol=1e-5)  # float32
    assert float(p1["b"]) == pytest.approx(0.5 + 0.1, rel=1e-5)
    bad = {"w": jnp.array([jnp.nan, 0.1]), "b": jnp.array(jnp.inf)}
    p2, s2, ok = guarded_step(opt, bad, s1, p1)
    assert not bool(ok)
    for a, b in zip(jax.tree.leaves((p2, s2)), jax.tree.leaves((p1, s1))):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # a good step after the skip is the step that would have come without it
    p3, _, _ = guarded_step(opt, good, s2, p2)
    p3_direct, _, _ = guarded_step(opt, good, s1, p1)
    np.testing.assert_array_equal(p3["w"], p3_direct["w"])
    assert not np.array_equal(p3["w"], p2["w"])  # and it does move the parameters
