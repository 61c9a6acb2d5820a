"""SAPO's pure functions (``diffpg.training.sapo``) against small arrays worked out by hand in each test,
in rlax's style: the soft TD(λ) targets through a failure and a time limit (and with the entropy masked
after an episode's end, as the update passes it), the actor's window objective in its three entropy modes
and its gradient in the entropy, the twin-critic reductions, the temperature's loss and one SGD and one
Adam step of log α; the reductions to SHAC at α = 0; jit and vmap. The update that uses them is tested
in test_algorithms.py and test_cli_train.py."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffpg.training import defaults, make_trainer, sapo, shac
from diffpg.training.critic import lambda_returns


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


def test_soft_targets_with_entropy_masked_after_the_end_by_hand():
    # the update passes alive · h: T = 3, γ = λ = 0.5, α = 2; the episode fails with step 1 (alive 1, 1, 0), so
    # step 2's entropy 3.0 is not a bonus
    reward, entropy = f32([1.0, 2.0, 0.0]), f32([0.25, -0.5, 3.0])
    alive, ended, failed = f32([1.0, 1.0, 0.0]), f32([0.0, 1.0, 0.0]), f32([0.0, 1.0, 0.0])
    next_value = f32([4.0, 8.0, 6.0])
    # soft rewards 1.5, 1.0, 0.0; bootstraps b = 4, 0, 6
    g2 = 0.0 + 0.5 * 6.0                                  # the window's tail: r̃ + γ b
    g1 = 1.0 + 0.5 * (0.0 + 0.5 * 0.0 * (g2 - 0.0))       # failed: nothing follows
    g0 = 1.5 + 0.5 * (4.0 + 0.5 * (g1 - 4.0))             # = 1.5 + 0.5 * 2.5 = 2.75
    got = sapo.soft_lambda_returns(reward, alive * entropy, next_value, ended, failed, 0.5, 0.5, f32(2.0))
    np.testing.assert_allclose(got, [g0, g1, g2], rtol=1e-6)
    assert g0 == 2.75


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


# ---------------------------------------------------------------- twin critics


def test_twin_value_modes():
    v1, v2 = f32([1.0, 5.0]), f32([3.0, 2.0])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "min"), [1.0, 2.0])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "mean"), [2.0, 3.5])
    np.testing.assert_array_equal(sapo.twin_value(v1, v2, "first"), [1.0, 5.0])
    with pytest.raises(ValueError):
        sapo.twin_value(v1, v2, "max")


def test_critics_value_of_one_or_two_critics():
    # [N, T, K] values; one critic is its own value whatever the mode
    two = f32([[[1.0, 3.0], [5.0, 2.0]]])
    np.testing.assert_array_equal(sapo.critics_value(two, "mean"), [[2.0, 3.5]])
    np.testing.assert_array_equal(sapo.critics_value(two, "min"), [[1.0, 2.0]])
    one = f32([[[1.0], [5.0]]])
    for mode in ("mean", "min"):
        np.testing.assert_array_equal(sapo.critics_value(one, mode), [[1.0, 5.0]])


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
    # H̄ = −2 and c = 2 (mineral's scaling with a normalized entropy): grad = 2 · 0.5 · (−1.25 + 2) = 0.75
    sgd = optax.sgd(0.1)
    log_alpha = f32(math.log(0.5))
    step = jax.jit(sapo.temperature_update, static_argnums=(0,))
    new, _, loss, finite = step(sgd, log_alpha, sgd.init(log_alpha), f32(STEP_ENTROPY), -2.0, None, 2.0)
    assert bool(finite)
    assert float(loss) == pytest.approx(0.75, rel=1e-6)
    assert float(new) == pytest.approx(math.log(0.5) - 0.1 * 0.75, rel=1e-6)
    # below the target entropy α rises: H̄ = −1, c = 1, grad −0.125
    new, _, _, _ = step(sgd, log_alpha, sgd.init(log_alpha), f32(STEP_ENTROPY), -1.0, None, 1.0)
    assert float(new) == pytest.approx(math.log(0.5) + 0.1 * 0.125, rel=1e-6)


def test_temperature_adam_first_step_with_the_trainers_settings_by_hand():
    # α = 0.5, entropies 1 and 3 counted, a third step after the episode's end ignored: mean h = 2; Ĥ = −1, so
    # dL/dlog α = α (mean h − Ĥ) = 1.5. Adam's first step moves by lr · g / (|g| + ε) (after clipping to norm
    # max_grad_norm, which keeps the sign): log α falls by the learning rate while the policy is more random
    # than its target, and rises by it when less.
    cfg = defaults("pendulum", "sapo").replace(sapo_temperature_lr=0.01)
    optimizer = sapo.temperature_optimizer(cfg)
    log_alpha, alive = f32(math.log(0.5)), f32([1.0, 1.0, 0.0])
    new, _, loss, ok = sapo.temperature_update(optimizer, log_alpha, optimizer.init(log_alpha),
                                               f32([1.0, 3.0, 100.0]), -1.0, alive)
    assert bool(ok) and float(loss) == pytest.approx(1.5, rel=1e-6)
    assert float(new) == pytest.approx(math.log(0.5) - 0.01, abs=1e-6)
    new, _, _, _ = sapo.temperature_update(optimizer, log_alpha, optimizer.init(log_alpha),
                                           f32([-3.0, -3.0, 0.0]), -1.0, alive)
    assert float(new) == pytest.approx(math.log(0.5) + 0.01, abs=1e-6)


def test_target_entropy_and_defaults_from_the_config():
    cfg = defaults("pendulum", "sapo").sapo
    assert (cfg.sapo_entropy_in_actor, cfg.sapo_soft_targets, cfg.sapo_twin_critics, cfg.sapo_auto_temperature) == (
        True, True, True, True)
    assert cfg.sapo_init_temperature == 0.1  # pendulum's; config.Sapo's (the paper's) is 1.0
    assert sapo.target_entropy(cfg, 6) == -3.0


@pytest.mark.parametrize("algo", ["shac", "sapo"])
@pytest.mark.parametrize("task, updates", [("HalfCheetah-v5", 2500), ("Hopper-v5", 1000), ("Ant-v5", 1500)])
def test_locomotion_twins_have_measured_settings(task, updates, algo, recwarn):
    """The twins' settings (docs/benchmarks.md, "Locomotion") are their own: no warning, no twin built."""
    config = defaults(task, algo).check()
    assert not [w for w in recwarn if "no measured" in str(w.message)]
    assert (config.budget.num_updates, config.budget.num_envs, config.budget.window, config.optimizer.actor_lr,
            config.policy.init_std) == (updates, 32, 10, 5e-4, 0.37)
    constant = {("Hopper-v5", "shac"), ("Ant-v5", "shac"), ("Ant-v5", "sapo")}  # measured so: docs/benchmarks.md
    assert config.optimizer.lr_decay == ((task, algo) not in constant)
    if algo == "sapo":
        assert config.policy.state_std == (-5.0, 2.0) and config.sapo.sapo_init_temperature == 0.1
        assert config.sapo.sapo_gaussian_entropy and config.sapo.sapo_normalize_entropy


@pytest.mark.parametrize("task, discount", [("HalfCheetah-v5", 0.95), ("Hopper-v5", 0.99), ("Ant-v5", 0.99)])
def test_locomotion_twins_have_measured_ppo_settings(task, discount, recwarn):
    """PPO's twin settings: Brax's HalfCheetah ones at 64 envs, Hopper's and Ant's with γ 0.99 (docs/benchmarks.md)."""
    config = defaults(task, "ppo").check()
    assert not [w for w in recwarn if "no measured" in str(w.message)]
    assert (config.budget.num_envs, config.budget.window, config.ppo.ppo_epochs, config.ppo.ppo_minibatches,
            config.optimizer.lr_decay, config.ppo.discount) == (64, 20, 8, 16, False, discount)


def test_gaussian_entropy_by_hand():
    """H = Σ_i (½ log 2πe + log σ_i): for σ = (1, e) that is log 2πe + 1."""
    std = jnp.array([[1.0, np.e], [0.5, 0.5]])
    np.testing.assert_allclose(sapo.gaussian_entropy(std), [np.log(2 * np.pi * np.e) + 1.0,
                                                           np.log(2 * np.pi * np.e) + 2 * np.log(0.5)], rtol=1e-6)


def test_normalized_entropy_by_hand():
    """Ĥ = −3: H = −3 → 0, H = 0 → ½, H = 3 → 1, H = 6 → 1.5 (an affine map, not a clip)."""
    np.testing.assert_allclose(sapo.normalized_entropy(jnp.array([-3.0, 0.0, 3.0, 6.0]), -3.0), [0.0, 0.5, 1.0, 1.5])


def test_temperature_loss_scaled_by_the_target_by_hand():
    """c = |Ĥ| = 3, α = 2, mean h = −1.25, Ĥ = −3: L = 3 · 2 · 1.75 = 10.5, dL/dlog α = L."""
    entropy = jnp.array(STEP_ENTROPY)
    loss, grad = jax.value_and_grad(sapo.temperature_loss)(jnp.log(2.0), entropy, -3.0, None, 3.0)
    np.testing.assert_allclose([loss, grad], [10.5, 10.5], rtol=1e-6)


def test_gaussian_entropy_needs_mean_std(assert_one_sentence):
    from diffpg.policies import LinearGaussian
    from diffpg.errors import ConfigError

    config = defaults("pendulum", "sapo").replace(sapo_gaussian_entropy=True)
    with pytest.raises(ConfigError) as error:
        make_trainer(config, policy=LinearGaussian(action_size=1))
    assert_one_sentence(error, ConfigError, "sapo_gaussian_entropy")


def test_sapo_with_its_design_choices_off_is_shac():
    """The module docstring's reduction, through the whole update: with the entropy terms and the twin critics
    off, sapo's trainer runs shac's updates from the same start (one critic initialized as shac's is). The
    temperature is still tuned, and acts on nothing. Equal to float32 rounding, not to the bit: sapo's critic
    is fitted under a vmap over its one critic."""
    shared = dict(num_updates=8, num_envs=4, window=5, hidden=(16,), critic_hidden=(16, 16), critic_epochs=2,
                  critic_minibatches=2, lr_decay=False, obs_norm=True, eval_every=0)
    off = dict(sapo_entropy_in_actor=False, sapo_soft_targets=False, sapo_twin_critics=False)
    shac_trainer = make_trainer(defaults("pendulum", "shac").replace(**shared))
    sapo_trainer = make_trainer(defaults("pendulum", "sapo").replace(**shared, **off))
    start = shac_trainer.init(jax.random.key(5))
    shac_state, _ = shac_trainer.run(start, 8)
    sapo_state, sapo_metrics = sapo_trainer.run(sapo_trainer.init(jax.random.key(5)), 8)
    assert np.all(np.diff(sapo_metrics["alpha"]) != 0)  # tuned, yet acting on nothing
    first = lambda tree: jax.tree.map(lambda x: x[0], tree)  # noqa: E731  sapo's stack of one critic
    for name, mine in [("params", sapo_state.params), ("critic", first(sapo_state.critic)),
                       ("target_critic", first(sapo_state.target_critic)), ("obs_stats", sapo_state.obs_stats)]:
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name),
                     mine, getattr(shac_state, name))
    moved = jax.tree.map(lambda a, b: not np.allclose(a, b), shac_state.params, start.params)
    assert all(jax.tree.leaves(moved))  # 8 updates changed every parameter, so the agreement is not at the start
