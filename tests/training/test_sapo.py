"""SAPO's pure functions (``diffpg.training.sapo``) against small arrays worked out by hand in each test:
the soft TD(λ) targets through a failure and a time limit, the actor's window objective in its three
entropy modes and its gradient in the entropy, the temperature's loss and one SGD and one AdamW step of
log α, the twin-critic reduction, the log-σ bounds and the squashed Gaussian's log-density; the
reductions to SHAC at α = 0; jit and vmap."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffpg.training import sapo
from diffpg.training import shac
from diffpg.training.returns import lambda_returns


def f32(x):
    return jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------- soft TD(λ) targets

# one environment, T = 3: γ = 0.9, λ = 0.5, α = 0.2
R = [1.0, 2.0, 3.0]
H = [0.5, -1.0, 2.0]
V_NEXT = [10.0, 20.0, 30.0]
GAMMA, LAM, ALPHA = 0.9, 0.5, 0.2
# r̃ = r + α H = 1.1, 1.8, 3.4


def soft_targets(ended, failed):
    return sapo.soft_lambda_returns(f32(R), f32(H), f32(V_NEXT), f32(ended), f32(failed), GAMMA, LAM, ALPHA)


def test_soft_targets_running_episode_by_hand():
    g2 = 3.4 + 0.9 * 30.0                           # the window's tail bootstraps V(s_3) = 30
    g1 = 1.8 + 0.9 * (20.0 + 0.5 * (g2 - 20.0))
    g0 = 1.1 + 0.9 * (10.0 + 0.5 * (g1 - 10.0))
    assert (g2, g1, g0) == pytest.approx((30.4, 24.48, 16.616))
    np.testing.assert_allclose(soft_targets([0, 0, 0], [0, 0, 0]), [g0, g1, g2], rtol=1e-6)


def test_soft_targets_failure_bootstraps_nothing():
    # the episode fails with step 1: G_1 = r̃_1, and step 2 (after the end) does not reach step 0
    g1 = 1.8
    g0 = 1.1 + 0.9 * (10.0 + 0.5 * (g1 - 10.0))
    assert g0 == pytest.approx(6.41)
    got = soft_targets([0, 1, 0], [0, 1, 0])
    np.testing.assert_allclose(got[:2], [g0, g1], rtol=1e-6)


def test_soft_targets_time_limit_bootstraps_the_truncated_state():
    # truncated with step 1: G_1 = r̃_1 + γ V(s_2), the λ-tail cut there
    g1 = 1.8 + 0.9 * 20.0
    g0 = 1.1 + 0.9 * (10.0 + 0.5 * (g1 - 10.0))
    assert (g1, g0) == pytest.approx((19.8, 14.51))
    got = soft_targets([0, 1, 0], [0, 0, 0])
    np.testing.assert_allclose(got[:2], [g0, g1], rtol=1e-6)


def test_soft_targets_reduce_to_shac_at_zero_temperature():
    k = jax.random.split(jax.random.key(0), 4)
    n, t = 3, 6
    reward = jax.random.normal(k[0], (n, t))
    entropy = 5.0 * jax.random.normal(k[1], (n, t))
    next_value = jax.random.normal(k[2], (n, t))
    ended = f32(np.array([[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]))
    failed = f32(np.array([[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]))
    soft = jax.vmap(sapo.soft_lambda_returns, (0, 0, 0, 0, 0, None, None, None))
    plain = jax.vmap(lambda_returns, (0, 0, 0, 0, None, None))
    np.testing.assert_array_equal(soft(reward, entropy, next_value, ended, failed, 0.99, 0.95, 0.0),
                                  plain(reward, next_value, ended, failed, 0.99, 0.95))
    # with α ≠ 0 the entropy acts exactly as a reward
    np.testing.assert_allclose(soft(reward, entropy, next_value, ended, failed, 0.99, 0.95, 0.3),
                               plain(reward + 0.3 * entropy, next_value, ended, failed, 0.99, 0.95), rtol=1e-6)


def test_soft_targets_match_the_truncated_sum_form():
    # SHAC's and mineral's TD(λ) is written as G_t = (1 − λ) A_t + Λ_t B_t: A_t the λ-weighted sum of the
    # n-step returns that end before the next done, B_t the return bootstrapped at that done, Λ_t the weight
    # left to it. A done is the end of an episode or of the window; the value there is 0 after a failure.
    # This plain-Python loop in that form must agree with the backward recursion of ``lambda_returns``.
    gamma, lam, alpha = 0.95, 0.8, 0.3
    rng = np.random.default_rng(0)
    t = 7
    reward, entropy, value = rng.normal(size=t), rng.normal(size=t), rng.normal(size=t)
    ended = np.array([0, 0, 1, 0, 0, 1, 0], float)
    failed = np.array([0, 0, 1, 0, 0, 0, 0], float)   # a failure at step 2, a time limit at step 5
    done = ended.copy()
    done[-1] = 1.0
    boot = (1.0 - failed) * value
    soft_r = reward + alpha * entropy
    a = b = 0.0
    weight = 1.0
    expected = np.zeros(t)
    for i in reversed(range(t)):
        weight = weight * lam * (1.0 - done[i]) + done[i]
        a = (1.0 - done[i]) * (lam * gamma * a + gamma * boot[i] + (1.0 - weight) / (1.0 - lam) * soft_r[i])
        b = gamma * (boot[i] * done[i] + b * (1.0 - done[i])) + soft_r[i]
        expected[i] = (1.0 - lam) * a + weight * b
    got = sapo.soft_lambda_returns(f32(reward), f32(entropy), f32(value), f32(ended), f32(failed), gamma, lam, alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_soft_targets_jit_and_vmap_match_rows():
    rows = np.array([R, [0.0, -1.0, 4.0]])
    ents = np.array([H, [1.0, 1.0, 1.0]])
    vals = np.array([V_NEXT, [5.0, 6.0, 7.0]])
    ended = np.array([[0, 1, 0], [0, 0, 0]])
    failed = np.array([[0, 1, 0], [0, 0, 0]])
    batched = jax.jit(jax.vmap(sapo.soft_lambda_returns, (0, 0, 0, 0, 0, None, None, None)),
                      static_argnums=(5, 6))
    got = batched(f32(rows), f32(ents), f32(vals), f32(ended), f32(failed), GAMMA, LAM, f32(ALPHA))
    for i in range(2):
        one = sapo.soft_lambda_returns(f32(rows[i]), f32(ents[i]), f32(vals[i]), f32(ended[i]), f32(failed[i]),
                                       GAMMA, LAM, ALPHA)
        np.testing.assert_allclose(got[i], one, rtol=1e-6)


# ---------------------------------------------------------------- actor objective

# N = 2 environments, T = 2, γ = 0.9, α = 0.5.
# env 0 runs through the window (β = 1 at its last step); env 1 is truncated by its time limit with
# step 0 (β_0 = 1), then steps without reward (alive_1 = 0; its entropy 5.0 there must not count).
A_REWARD = [[1.0, 2.0], [3.0, 0.0]]
A_ENTROPY = [[0.4, -0.2], [1.0, 5.0]]
A_VALUE = [[10.0, 20.0], [7.0, 99.0]]
A_BETA = [[0.0, 1.0], [1.0, 0.0]]
A_ALIVE = [[1.0, 1.0], [1.0, 0.0]]


def objective(mode, alpha=0.5, entropy=None):
    entropy = f32(A_ENTROPY) if entropy is None else entropy
    return sapo.actor_objective(f32(A_REWARD), entropy, f32(A_VALUE), f32(A_BETA), f32(A_ALIVE), 0.9, alpha, mode)


def test_actor_objective_entropy_in_return_by_hand():
    env0 = (1.0 + 0.5 * 0.4) + 0.9 * (2.0 + 0.5 * -0.2) + 0.9**2 * 20.0   # 19.11
    env1 = (3.0 + 0.5 * 1.0) + 0.9 * 7.0                                  # 9.8
    assert float(objective("return")) == pytest.approx((env0 + env1) / (2 * 2), rel=1e-6)
    assert (env0 + env1) / 4 == pytest.approx(7.2275)


def test_actor_objective_entropy_summed_and_off_by_hand():
    shac0 = 1.0 + 0.9 * 2.0 + 0.9**2 * 20.0   # 19.0
    shac1 = 3.0 + 0.9 * 7.0                   # 9.3
    assert float(objective("off")) == pytest.approx((shac0 + shac1) / 4, rel=1e-6)
    ent0, ent1 = 0.5 * (0.4 - 0.2), 0.5 * 1.0  # undiscounted, only while alive
    assert float(objective("sum")) == pytest.approx((shac0 + ent0 + shac1 + ent1) / 4, rel=1e-6)


def test_actor_objective_gradient_in_entropy_and_none_in_alpha():
    # ∂J/∂H_{i,t} = α γᵗ alive_{i,t} / (N T) with the entropy in the return; α alive / (N T) when summed
    grad_return = jax.grad(lambda h: objective("return", entropy=h))(f32(A_ENTROPY))
    np.testing.assert_allclose(grad_return, [[0.5 / 4, 0.5 * 0.9 / 4], [0.5 / 4, 0.0]], rtol=1e-6)
    grad_sum = jax.grad(lambda h: objective("sum", entropy=h))(f32(A_ENTROPY))
    np.testing.assert_allclose(grad_sum, [[0.5 / 4, 0.5 / 4], [0.5 / 4, 0.0]], rtol=1e-6)
    grad_alpha = jax.grad(lambda a: objective("return", alpha=a))(f32(0.5))
    assert float(grad_alpha) == 0.0


def test_actor_objective_reduces_to_shac():
    k = jax.random.split(jax.random.key(1), 4)
    n, t = 4, 5
    reward, entropy, value = (jax.random.normal(kk, (n, t)) for kk in k[:3])
    beta = f32(np.tile([0.0, 0.0, 1.0, 0.0, 1.0], (n, 1)))
    alive = f32(np.tile([1.0, 1.0, 1.0, 0.0, 0.0], (n, 1)))
    expected = shac.actor_objective(reward, value, beta, 0.95)
    for mode in ("return", "sum"):
        got = sapo.actor_objective(reward, entropy, value, beta, alive, 0.95, 0.0, mode)
        assert float(got) == float(expected)
    got = sapo.actor_objective(reward, entropy, value, beta, alive, 0.95, 0.7, "off")
    assert float(got) == float(expected)


def test_actor_objective_jit_matches_eager():
    fn = jax.jit(sapo.actor_objective, static_argnums=(5, 7))
    got = fn(f32(A_REWARD), f32(A_ENTROPY), f32(A_VALUE), f32(A_BETA), f32(A_ALIVE), 0.9, f32(0.5), "return")
    assert float(got) == pytest.approx(7.2275, rel=1e-6)


def test_actor_objective_rejects_unknown_mode():
    with pytest.raises(ValueError, match="entropy mode"):
        objective("both")


# ---------------------------------------------------------------- entropy and twin critics


def test_entropy_bonus_normalized_by_hand():
    # |A| = 2, scale 0.5: H̄ = −1, H̃ = (H + 1) / 2
    h_bar = sapo.SapoSettings().target_entropy(2)
    assert h_bar == -1.0
    np.testing.assert_allclose(sapo.entropy_bonus(f32(H), h_bar, True), [0.75, 0.0, 1.5], rtol=1e-6)
    np.testing.assert_array_equal(sapo.entropy_bonus(f32(H), h_bar, False), f32(H))
    # |A| = 6: H̄ = −3; H = H̄ maps to 0, H = −H̄ to 1
    np.testing.assert_allclose(sapo.entropy_bonus(f32([-3.0, 3.0, 0.0]), -3.0, True), [0.0, 1.0, 0.5])


def test_twin_value_modes():
    v1, v2 = f32([1.0, 5.0]), f32([3.0, 2.0])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "min"), [1.0, 2.0])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "mean"), [2.0, 3.5])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "first"), [1.0, 5.0])
    with pytest.raises(ValueError):
        sapo.twin_value(v1, v2, "max")


def test_ensemble_regression_loss_by_hand():
    # two critics, three samples, the last one after its episode ended (weight 0)
    values = f32([[1.0, 2.0, 50.0], [0.0, 4.0, -50.0]])
    target = f32([2.0, 2.0, 0.0])
    weight = f32([1.0, 1.0, 0.0])
    first = ((1.0 - 2.0) ** 2 + 0.0) / 2     # 0.5
    second = ((0.0 - 2.0) ** 2 + 2.0**2) / 2  # 4.0
    got = sapo.ensemble_regression_loss(values, target, weight)
    assert float(got) == pytest.approx((first + second) / 2, rel=1e-6)


# ---------------------------------------------------------------- temperature

STEP_ENTROPY = [[-1.5, -0.5], [0.0, -3.0]]   # mean −1.25


def test_temperature_loss_by_hand():
    log_alpha = f32(math.log(0.5))
    # H̄ = −1, c = 1: L = 0.5 (−1.25 + 1) = −0.125, and dL/dlog α = L
    loss, grad = jax.value_and_grad(sapo.temperature_loss)(log_alpha, f32(STEP_ENTROPY), -1.0)
    assert float(loss) == pytest.approx(-0.125, rel=1e-6)
    assert float(grad) == pytest.approx(-0.125, rel=1e-6)
    # weights drop the last step: mean (−1.5 − 0.5 + 0) / 3 = −2/3, above the target: α must fall
    weight = f32([[1.0, 1.0], [1.0, 0.0]])
    grad = jax.grad(sapo.temperature_loss)(log_alpha, f32(STEP_ENTROPY), -1.0, weight)
    assert float(grad) == pytest.approx(0.5 * (-2.0 / 3.0 + 1.0), rel=1e-6)
    # the entropy is data: no gradient flows into it
    d_entropy = jax.grad(lambda h: sapo.temperature_loss(log_alpha, h, -1.0))(f32(STEP_ENTROPY))
    np.testing.assert_array_equal(d_entropy, np.zeros((2, 2)))


def test_temperature_sgd_step_by_hand():
    # |A| = 4: H̄ = −2, normalized entropy so c = |H̄| = 2; grad = 2 · 0.5 · (−1.25 + 2) = 0.75
    settings = sapo.SapoSettings()
    h_bar, c = settings.target_entropy(4), settings.temperature_loss_scale(4)
    assert (h_bar, c) == (-2.0, 2.0)
    sgd = optax.sgd(0.1)
    log_alpha = f32(math.log(0.5))
    step = jax.jit(sapo.temperature_update, static_argnums=(0,))
    new, _, loss, finite = step(sgd, log_alpha, sgd.init(log_alpha), f32(STEP_ENTROPY), h_bar, None, c)
    assert bool(finite)
    assert float(loss) == pytest.approx(0.75, rel=1e-6)
    assert float(new) == pytest.approx(math.log(0.5) - 0.1 * 0.75, rel=1e-6)
    # below the target entropy α rises: H̄ = −1, c = 1, grad −0.125
    new, _, _, _ = step(sgd, log_alpha, sgd.init(log_alpha), f32(STEP_ENTROPY), -1.0, None, 1.0)
    assert float(new) == pytest.approx(math.log(0.5) + 0.1 * 0.125, rel=1e-6)


def test_temperature_adamw_first_step_by_hand():
    # mineral's optimizer: gradient 0.75 clipped to norm 0.5, then Adam's first step moves by lr · ĝ/|ĝ| = lr,
    # plus the decoupled weight decay lr · 0.01 · log α
    settings = sapo.SapoSettings()
    opt = settings.temperature_optimizer()
    log_alpha = f32(math.log(0.5))
    new, _, _, _ = sapo.temperature_update(opt, log_alpha, opt.init(log_alpha), f32(STEP_ENTROPY), -2.0, None, 2.0)
    expected = math.log(0.5) - 5e-3 * (1.0 + 0.01 * math.log(0.5))
    assert float(new) == pytest.approx(expected, rel=1e-6)


def test_temperature_fixed_or_tuned():
    log_alpha = f32(math.log(0.25))
    assert float(sapo.temperature(log_alpha, sapo.SapoSettings())) == pytest.approx(0.25)
    fixed = sapo.SapoSettings(auto_temperature=False, init_alpha=0.05)
    assert float(sapo.temperature(log_alpha, fixed)) == pytest.approx(0.05)
    assert float(jax.grad(lambda la: sapo.temperature(la, sapo.SapoSettings()))(log_alpha)) == 0.0


# ---------------------------------------------------------------- variance parameterization


def test_bounded_log_std():
    raw = f32([-7.0, 0.0, 3.0])
    np.testing.assert_array_equal(sapo.bounded_log_std(raw, -5.0, 2.0, "clip"), [-5.0, 0.0, 2.0])
    grad = jax.grad(lambda r: sapo.bounded_log_std(r, -5.0, 2.0, "clip").sum())(raw)
    np.testing.assert_array_equal(grad, [0.0, 1.0, 0.0])
    # tanh: −5 + 3.5 (tanh r + 1): the midpoint −1.5 at r = 0, slope 3.5 there
    smooth = sapo.bounded_log_std(raw, -5.0, 2.0, "tanh")
    expected = [-5.0 + 3.5 * (math.tanh(-7.0) + 1.0), -1.5, -5.0 + 3.5 * (math.tanh(3.0) + 1.0)]
    np.testing.assert_allclose(smooth, expected, rtol=1e-6)
    slope = jax.grad(lambda r: sapo.bounded_log_std(r, -5.0, 2.0, "tanh"))(f32(0.0))
    assert float(slope) == pytest.approx(3.5)
    np.testing.assert_array_equal(sapo.bounded_log_std(raw, -5.0, 2.0, "none"), raw)


def test_squashed_gaussian_log_prob_by_hand():
    # u = (0, 1), μ = (0, 0.5), σ = (1, 2)
    u, mean, log_std = f32([0.0, 1.0]), f32([0.0, 0.5]), f32([0.0, math.log(2.0)])
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    first = -half_log_2pi - math.log(1.0 - math.tanh(0.0) ** 2)
    second = -0.5 * 0.25**2 - math.log(2.0) - half_log_2pi - math.log(1.0 - math.tanh(1.0) ** 2)
    got = sapo.squashed_gaussian_log_prob(u, mean, log_std)
    assert float(got) == pytest.approx(first + second, rel=1e-6)
    # far in the tail tanh(u) rounds to 1 in float32, but the correction stays finite: ≈ 2 (u − log 2)
    far = sapo.squashed_gaussian_log_prob(f32([20.0]), f32([20.0]), f32([0.0]))
    assert float(far) == pytest.approx(-half_log_2pi + 2.0 * (20.0 - math.log(2.0)), rel=1e-6)
    # vmapped over a batch of samples
    batch = jax.vmap(sapo.squashed_gaussian_log_prob, (0, None, None))(jnp.stack([u, u]), mean, log_std)
    np.testing.assert_allclose(batch, [first + second] * 2, rtol=1e-6)


def test_squashed_gaussian_log_prob_matches_the_squashed_policy():
    # diffpg's tanh-squashed GaussianMLP computes log π from the action a (inverting tanh through numpyro's
    # transforms); from its pre-squash sample u the helper must give the same density where tanh is invertible
    from diffpg.policies import GaussianMLP

    policy = GaussianMLP(action_size=3, hidden=(8,), init_std=0.7, squash=True)
    params = policy.init(jax.random.key(2), 4)
    obs = f32([0.3, -1.0, 0.5, 2.0])
    mean = policy.net.apply(params["mean"], obs)
    std = policy.min_std + jnp.exp(params["log_std"])
    u = mean + std * f32([1.2, -0.4, 2.0])
    expected = policy.log_prob(params, obs, jnp.tanh(u))
    got = sapo.squashed_gaussian_log_prob(u, mean, jnp.log(std))
    assert float(got) == pytest.approx(float(expected), rel=1e-4, abs=1e-4)


# ---------------------------------------------------------------- settings


def test_settings_defaults_and_validation():
    s = sapo.SapoSettings()
    assert (s.entropy_in_actor, s.soft_targets, s.actor_twin, s.target_twin, s.target_network) == (
        "return", True, "mean", "min", False)
    assert s.target_entropy(6) == -3.0
    assert sapo.SapoSettings(normalize_entropy=False).temperature_loss_scale(6) == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.init_alpha = 2.0  # type: ignore[misc]
    for bad in (dict(entropy_in_actor="both"), dict(target_twin="max"), dict(num_critics=1),
                dict(init_alpha=0.0), dict(log_std_min=3.0), dict(target_entropy_scale=0.0)):
        with pytest.raises(ValueError):
            sapo.SapoSettings(**bad)
    sapo.SapoSettings(num_critics=1, actor_twin="first", target_twin="first")
