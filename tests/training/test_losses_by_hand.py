"""The training losses against small arrays worked out by hand or by a plain-Python loop in the test
(rlax's style): PPO's clipped loss and its advantage normalisation, GAE and λ-returns across a
time-limit truncation and a failure, SHAC's actor objective and target-critic update, the REINFORCE
loss and the critic fit."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffpg.training import critic as critic_lib
from diffpg.policies import GaussianMean, GaussianMLP
from diffpg.training.ppo import clipped_loss, entropy
from diffpg.training.reinforce import policy_loss
from diffpg.training.critic import gae, lambda_returns
from diffpg.training.shac import actor_objective, soft_update


# ---------------------------------------------------------------- PPO


def test_ppo_clipped_loss_by_hand():
    # ratios 1.5, 0.5, 1.1, 0.5 against advantages +1, +1, −2, −2 (ε = 0.2); a fifth entry has weight 0
    ratio = np.array([1.5, 0.5, 1.1, 0.5, 9.0])
    old = np.array([-1.0, -0.3, -2.0, -0.7, -1.0])
    adv = np.array([1.0, 1.0, -2.0, -2.0, 100.0])
    weight = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    new = old + np.log(ratio)
    # min(ρA, clip(ρ)A): min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; −2.2 (inside the clip); min(−1.0, −1.6) = −1.6
    expected_loss = -(1.2 + 0.5 - 2.2 - 1.6) / 4
    expected_kl = sum((r - 1) - math.log(r) for r in ratio[:4]) / 4
    loss, (kl, clip_frac) = clipped_loss(jnp.asarray(new, jnp.float32), jnp.asarray(old, jnp.float32),
                                         jnp.asarray(adv, jnp.float32), jnp.asarray(weight, jnp.float32), 0.2, False)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
    assert float(kl) == pytest.approx(expected_kl, rel=1e-5)
    assert float(clip_frac) == pytest.approx(3 / 4)  # |ρ − 1| > 0.2 for ρ = 1.5, 0.5, 0.5
    # d loss / d log π: zero where the clipped term is the minimum (entries 0 and 3) or the weight is 0;
    # −ρA / 4 where the unclipped one is (entries 1 and 2)
    grad = jax.grad(lambda lp: clipped_loss(lp, jnp.asarray(old, jnp.float32), jnp.asarray(adv, jnp.float32),
                                            jnp.asarray(weight, jnp.float32), 0.2, False)[0])(
        jnp.asarray(new, jnp.float32))
    np.testing.assert_allclose(grad, [0.0, -0.5 / 4, 2.2 / 4, 0.0, 0.0], atol=1e-6)


def test_ppo_normalises_advantages_over_the_weighted_entries():
    ratio = [1.5, 1.0, 1.0, 0.5, 3.0]
    adv = [1.0, 3.0, 5.0, 7.0, -50.0]
    weight = [1.0, 1.0, 1.0, 1.0, 0.0]
    # by hand: mean 4 and (population) std √5 over the four weighted entries
    norm = [(a - 4.0) / (math.sqrt(5.0) + 1e-8) for a in adv[:4]]
    terms = [min(r * a, min(max(r, 0.8), 1.2) * a) for r, a in zip(ratio, norm)]
    expected = -sum(terms) / 4
    old = jnp.zeros(5)
    loss, _ = clipped_loss(jnp.log(jnp.array(ratio)), old, jnp.array(adv), jnp.array(weight), 0.2, True)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # without normalisation the same minibatch gives the raw-advantage loss
    raw, _ = clipped_loss(jnp.log(jnp.array(ratio)), old, jnp.array(adv), jnp.array(weight), 0.2, False)
    assert float(raw) == pytest.approx(-(1.2 * 1 + 3 + 5 + 0.5 * 7) / 4, rel=1e-5)


def test_ppo_entropy_by_hand():
    obs = jnp.array([[0.3, -1.0], [2.0, 0.5], [9.0, 9.0]])
    weight = jnp.array([1.0, 1.0, 0.0])
    # an unsquashed Gaussian, σ = min_std + exp(log σ) whatever the state: H = Σ_i (½ log 2πe + log σ_i) everywhere
    policy = GaussianMLP(action_size=2, hidden=(4,))
    params = policy.init(jax.random.key(0), 2)
    params["log_std"] = jnp.log(jnp.array([0.5, 2.0]))
    sigma = [0.5 + 1e-3, 2.0 + 1e-3]
    by_hand = sum(0.5 * math.log(2 * math.pi * math.e) + math.log(s) for s in sigma)
    unused = jnp.full(3, 123.0)  # log π of the sampled actions: not needed where the closed form exists
    assert float(entropy(policy, params, obs, unused, weight)) == pytest.approx(by_hand, rel=1e-6)
    # ∂H/∂log σ_i = exp(log σ_i) / σ_i: the bonus pushes σ up
    grad = jax.grad(lambda p: entropy(policy, p, obs, unused, weight))(params)["log_std"]
    np.testing.assert_allclose(grad, [0.5 / sigma[0], 2.0 / sigma[1]], rtol=1e-6)
    # no closed form (tanh-squashed) or no distribution at all (a user's policy): −log π of the sampled actions,
    # averaged over the weighted entries
    log_prob = jnp.array([-1.0, -3.0, 50.0])
    squashed = GaussianMLP(action_size=2, hidden=(4,), squash=True)
    for other in (squashed, GaussianMean(std=1.0)):
        assert float(entropy(other, other.init(jax.random.key(0), 2), obs, log_prob, weight)) == pytest.approx(2.0)


# ---------------------------------------------------------------- GAE and λ-returns


def advantages_by_loop(r, v, v_next, ended, failed, gamma, lam):
    """GAE by its definition: δ_t = r_t + γ (1 − failed_t) V(s_{t+1}) − V(s_t), A_t = δ_t + γλ (1 − ended_t) A_{t+1}."""
    a = [0.0] * len(r)
    following = 0.0
    for t in reversed(range(len(r))):
        delta = r[t] + gamma * (1 - failed[t]) * v_next[t] - v[t]
        a[t] = delta + gamma * lam * (1 - ended[t]) * following
        following = a[t]
    return np.array(a)


def returns_by_loop(r, v_next, ended, failed, gamma):
    """λ = 1: the discounted reward-to-go of each step's own episode, bootstrapped by V where that episode
    is cut (a time limit, or the window's end) and not after a failure."""
    out = []
    for t in range(len(r)):
        g, k = 0.0, t
        while True:
            g += gamma ** (k - t) * r[k]
            if ended[k] or k == len(r) - 1:
                g += gamma ** (k - t + 1) * (1 - failed[k]) * v_next[k]
                break
            k += 1
        out.append(g)
    return np.array(out)


# a window of 7 steps: an episode truncated by its time limit at step 2, one that fails at step 4,
# and a third still running at the window's end; V(s_{t+1}) at a truncation is the value of the
# final state of the old episode, not of the reset one
WINDOW = dict(r=[1.0, -0.5, 2.0, 0.3, -1.0, 0.7, 1.2],
              v=[0.2, 0.4, -0.3, 1.0, 0.5, -0.6, 0.1],
              v_next=[0.4, -0.3, 3.0, 0.5, 9.0, 0.1, 2.5],
              ended=[0, 0, 1, 0, 1, 0, 0],
              failed=[0, 0, 0, 0, 1, 0, 0])


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_gae_across_a_truncation_and_a_failure_matches_the_loop(lam):
    w = {k: jnp.array(v, jnp.float32) for k, v in WINDOW.items()}
    adv, ret = gae(w["r"], w["v"], w["v_next"], w["ended"], w["failed"], 0.9, lam)
    expected = advantages_by_loop(*(WINDOW[k] for k in ("r", "v", "v_next", "ended", "failed")), 0.9, lam)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ret, expected + np.array(WINDOW["v"]), rtol=1e-5, atol=1e-6)


def test_monte_carlo_returns_bootstrap_only_at_truncations_and_the_window_end():
    w = {k: jnp.array(v, jnp.float32) for k, v in WINDOW.items()}
    got = lambda_returns(w["r"], w["v_next"], w["ended"], w["failed"], 0.9, 1.0)
    expected = returns_by_loop(*(WINDOW[k] for k in ("r", "v_next", "ended", "failed")), 0.9)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the failed step's V(s_{t+1}) = 9 counts nowhere: step 4's return is its reward alone
    assert float(got[4]) == pytest.approx(-1.0)
    # step 2 is truncated: its return is r_2 + γ V(final state) = 2 + 0.9 · 3
    assert float(got[2]) == pytest.approx(2.0 + 0.9 * 3.0)


# ---------------------------------------------------------------- SHAC


def test_shac_actor_objective_by_hand():
    reward = jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    next_value = jnp.array([[10.0, 20.0, 30.0], [4.0, 8.0, 16.0]])
    # env 0 runs through the window (β at the last step); env 1 is truncated at step 1 and then runs on
    beta = jnp.array([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    g = 0.5
    env0 = (1.0 + g * 2.0 + g**2 * 3.0) + g**3 * 30.0
    env1 = (-1.0 + g * 0.5 + 0.0) + g**2 * 8.0 + g**3 * 16.0
    expected = (env0 + env1) / 2 / 3
    assert float(actor_objective(reward, next_value, beta, g)) == pytest.approx(expected, rel=1e-6)
    # its gradient with respect to the value of a step with β = 0 is zero, and γ^{t+1} β / (N T) elsewhere
    grad = jax.grad(lambda v: actor_objective(reward, v, beta, g))(next_value)
    np.testing.assert_allclose(grad, [[0, 0, g**3 / 6], [0, g**2 / 6, g**3 / 6]], rtol=1e-6)


def test_shac_target_critic_follows_slowly():
    target = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(-4.0)}
    critic = {"w": jnp.array([3.0, 6.0]), "b": jnp.array(4.0)}
    new = soft_update(target, critic, 0.75)  # 0.75 · old + 0.25 · new
    np.testing.assert_allclose(new["w"], [1.5, 3.0])
    assert float(new["b"]) == pytest.approx(-2.0)


# ---------------------------------------------------------------- REINFORCE


def test_reinforce_loss_by_hand():
    log_prob = jnp.array([[-1.0, -2.0], [-0.5, -3.0]])
    advantage = jnp.array([[2.0, -1.0], [0.5, 4.0]])
    # −(1 / N T) Σ log π · Â = −((−2 + 2) + (−0.25 − 12)) / 4
    assert float(policy_loss(log_prob, advantage)) == pytest.approx(12.25 / 4)
    d_logp, d_adv = jax.grad(policy_loss, argnums=(0, 1))(log_prob, advantage)
    np.testing.assert_allclose(d_logp, -advantage / 4)
    np.testing.assert_array_equal(d_adv, jnp.zeros((2, 2)))  # the advantage is a fixed weight


# ---------------------------------------------------------------- the critic fit


@pytest.fixture(scope="module")
def linear_critic():
    """A value network with no hidden layer, V(o) = w·o + b, and a small weighted batch."""
    net = critic_lib.value_network((), "tanh")
    params = {"params": {"Dense_0": {"kernel": jnp.array([[0.5], [-1.0]]), "bias": jnp.array([0.2])}}}
    obs = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, -1.0]])
    target = jnp.array([1.0, -1.0, 0.0, 100.0])
    weight = jnp.array([1.0, 1.0, 1.0, 0.0])
    return net, params, obs, target, weight


def sgd_by_loop(w, b, obs, target, weight, lr, batches):
    """Gradient descent on Σ w_i (V(o_i) − G_i)² / Σ w_i, one step per batch of indices, in plain Python."""
    for idx in batches:
        gw, gb, count = [0.0] * len(w), 0.0, max(sum(weight[i] for i in idx), 1.0)
        for i in idx:
            err = sum(wj * oj for wj, oj in zip(w, obs[i])) + b - target[i]
            gw = [g + 2 * weight[i] * err * oj / count for g, oj in zip(gw, obs[i])]
            gb += 2 * weight[i] * err / count
        w = [wj - lr * g for wj, g in zip(w, gw)]
        b = b - lr * gb
    return w, b


def test_critic_regression_loss_by_hand(linear_critic):
    net, params, obs, target, weight = linear_critic
    # V = 0.7, −1.8, −0.3 on the weighted rows: errors −0.3, −0.8, −0.3
    expected = (0.09 + 0.64 + 0.09) / 3
    assert float(critic_lib.regression_loss(net, params, obs, target, weight)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("epochs, minibatches", [(3, 1), (2, 2)])
def test_critic_fit_is_gradient_descent_on_the_weighted_loss(linear_critic, epochs, minibatches):
    net, params, obs, target, weight = linear_critic
    lr, key = 0.1, jax.random.key(3)
    optimizer = optax.sgd(lr)
    new, _, _, finite = critic_lib.fit(key, net, optimizer, params, optimizer.init(params), obs, target, weight,
                                       epochs=epochs, minibatches=minibatches)
    assert bool(finite)
    if minibatches == 1:
        batches = [range(4)] * epochs
    else:  # fit's own shuffle: a permutation per epoch from split(key, epochs)
        batches = [list(np.asarray(jax.random.permutation(k, 4)).reshape(minibatches, -1)[j])
                   for k in jax.random.split(key, epochs) for j in range(minibatches)]
    w, b = sgd_by_loop([0.5, -1.0], 0.2, np.asarray(obs).tolist(), np.asarray(target).tolist(),
                       np.asarray(weight).tolist(), lr, batches)
    np.testing.assert_allclose(new["params"]["Dense_0"]["kernel"][:, 0], w, rtol=1e-5)
    assert float(new["params"]["Dense_0"]["bias"][0]) == pytest.approx(b, rel=1e-5)
    assert not np.allclose(w, [0.5, -1.0])  # the fit moved the parameters
