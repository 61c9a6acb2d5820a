"""diffpg.estimators.pathwise and score_function: exact checks against hand computations on the
same rollouts, unbiasedness against the closed-form LQR gradient, their variances, and settings.

The statistical tests (marked slow) share one LQR (``lqr_problem`` in conftest): x₀ ~ N(0, I),
u = Kx + σε with K = [-0.5, -0.8], σ = 0.5, horizon 20, discount 0.95. Each estimator is
repeated R times with independent keys inside one jit (``lax.map`` over keys); the spread of
the repeats gives the standard error, and the tolerance is 4 SE (see conftest for why).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg.errors import ConfigError, ProtocolError
from diffpg.estimators import pathwise, score_function
from diffpg.oracles import lqr
from diffpg.rollouts import rollout


def lyapunov_value(env, params, discount):
    """V(x) = −xᵀPx − c with P = Q + KᵀRK + γ MᵀPM, M = A + BK: the infinite-horizon value of
    the linear policy, a good state-value baseline (any function of the state is unbiased)."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), env.params)
    K = np.asarray(params["K"], np.float64)
    S = np.diag(np.exp(2 * np.asarray(params["log_std"], np.float64)))
    M = p.A + p.B @ K
    P = np.zeros_like(p.A)
    for _ in range(2000):
        P = p.Q + K.T @ p.R @ K + discount * M.T @ P @ M
    c = (np.trace(p.R @ S) + discount * np.trace(P @ p.B @ S @ p.B.T)) / (1 - discount)
    P32, c32 = jnp.asarray(P, jnp.float32), jnp.float32(c)
    return lambda obs: -(obs @ P32 @ obs) - c32


class DeterministicLinear:
    """A deterministic linear policy u = Kx, written as a user would: no log_prob, no noise."""

    def __init__(self, action_size):
        self.action_size = action_size

    def init(self, key, observation_size):
        return {"K": jnp.zeros((self.action_size, observation_size))}

    def sample(self, key, params, obs):
        return params["K"] @ obs


# ----------------------------------------------------------------------------- a small problem for exact checks

N, H, GAMMA = 8, 6, 0.9
KEY = jax.random.PRNGKey(11)
BATCH_KEYS = jnp.stack([KEY, *jax.random.split(jax.random.PRNGKey(5), 2)])


@pytest.fixture(scope="module")
def small(lqr_problem, quick_jit):
    """Every estimator, option and per-rollout quantity the exact tests need, at one key, computed
    in ONE jitted function (compiling dominates the run time on CPU, and one program with many
    parts compiles in about half the time of many programs)."""
    env, policy, params = lqr_problem["env"], lqr_problem["policy"], lqr_problem["params"]
    value = lyapunov_value(env, params, GAMMA)
    common = dict(horizon=H, num_envs=N, discount=GAMMA)
    ests = {  # remat explicit on both sides of the remat comparison, whatever the default is
        "pathwise": pathwise(env, policy, remat=False, **common),
        "none": score_function(env, policy, baseline="none", **common),
        "leave_one_out": score_function(env, policy, **common),
        "value": score_function(env, policy, baseline=value, **common),
        "remat": pathwise(env, policy, remat=True, **common),
        "trunc_H": pathwise(env, policy, truncate_every=H, **common),
        "trunc_1": pathwise(env, policy, truncate_every=1, **common),
    }

    def one(key, p):
        return diffpg.estimators.pathwise_surrogate(rollout(key, env, policy, p, H).reward, GAMMA)

    @quick_jit
    def compute(key, params, batch_keys):
        keys = jax.random.split(key, N)
        return dict(
            estimates={name: est(key, params) for name, est in ests.items()},
            traj=jax.vmap(lambda k: rollout(k, env, policy, params, H))(keys),
            per_rollout=jax.vmap(jax.grad(one, argnums=1), (0, None))(keys, params),
            # vmap over keys for two estimators, and the rollouts each row should have used
            batched={name: jax.vmap(ests[name], (0, None))(batch_keys, params)
                     for name in ("pathwise", "leave_one_out")},
            batch_traj=jax.vmap(lambda k: jax.vmap(lambda kk: rollout(kk, env, policy, params, H))(
                jax.random.split(k, N)))(batch_keys),
        )

    out = compute(KEY, params, BATCH_KEYS)
    as_numpy = functools.partial(jax.tree.map, lambda x: None if x is None else np.asarray(x, np.float64))
    return dict(env=env, policy=policy, params=params, value=value, estimates=out["estimates"],
                per_rollout=out["per_rollout"], batched=out["batched"], batch_traj=as_numpy(out["batch_traj"]),
                traj=as_numpy(out["traj"]))


def score_function_by_hand(small, baseline, traj=None):
    """mean_i Σ_t γᵗ ∇θ log π(a_t|x_t) (G_t − b_t), with the LinearGaussian scores
    ∇_K log π = ((a − Kx)/σ²) xᵀ and ∇_{log σ} log π = (a − Kx)²/σ² − 1, in float64 numpy."""
    traj, params = small["traj"] if traj is None else traj, small["params"]
    x, a, r = traj.obs, traj.action, traj.reward
    K = np.asarray(params["K"], np.float64)
    var = np.exp(2 * np.asarray(params["log_std"], np.float64))
    G = np.zeros_like(r)
    G[:, -1] = r[:, -1]
    for t in range(H - 2, -1, -1):
        G[:, t] = r[:, t] + GAMMA * G[:, t + 1]
    if baseline == "none":
        b = np.zeros_like(G)
    elif baseline == "leave_one_out":
        b = (G.sum(0, keepdims=True) - G) / (N - 1)
    else:
        b = np.asarray(jax.vmap(jax.vmap(small["value"]))(jnp.asarray(x, jnp.float32)), np.float64)
    weight = GAMMA ** np.arange(H) * (G - b)                     # [N, H]
    noise = a - np.einsum("ij,ntj->nti", K, x)                   # a − Kx, [N, H, 1]
    grad_K = np.einsum("nt,nti,ntj->ij", weight, noise / var, x) / N
    grad_log_std = np.einsum("nt,nti->i", weight, noise**2 / var - 1) / N
    return {"K": grad_K, "log_std": grad_log_std}


@pytest.mark.parametrize("baseline", ["none", "leave_one_out", "value"])
def test_score_function_is_the_reinforce_sum_on_the_same_rollouts(baseline, small):
    grad, diag = small["estimates"][baseline]
    expected = score_function_by_hand(small, baseline)
    np.testing.assert_allclose(grad["K"], expected["K"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad["log_std"], expected["log_std"], rtol=1e-4, atol=1e-5)
    returns = (small["traj"].reward * GAMMA ** np.arange(H)).sum(1)
    np.testing.assert_allclose(diag["return"], returns.mean(), rtol=1e-5)
    np.testing.assert_allclose(diag["return_std"], returns.std(), rtol=1e-4)


def test_the_three_baselines_give_different_estimates_on_the_same_rollouts(small):
    """Same data, different control variates: if the baseline were ignored, these would coincide."""
    grads = [small["estimates"][b][0]["K"] for b in ("none", "leave_one_out", "value")]
    assert not np.allclose(grads[0], grads[1], rtol=1e-3) and not np.allclose(grads[0], grads[2], rtol=1e-3)


def test_pathwise_is_the_mean_of_per_rollout_gradients(small):
    grad, diag = small["estimates"]["pathwise"]
    per_rollout = small["per_rollout"]
    for name in ("K", "log_std"):
        np.testing.assert_allclose(grad[name], per_rollout[name].mean(0), rtol=1e-5, atol=1e-6)
    flat = np.concatenate([np.asarray(grad["K"]).ravel(), np.asarray(grad["log_std"]).ravel()])
    np.testing.assert_allclose(diag["grad_norm"], np.linalg.norm(flat), rtol=1e-5)
    returns = (small["traj"].reward * GAMMA ** np.arange(H)).sum(1)
    np.testing.assert_allclose(diag["return"], returns.mean(), rtol=1e-5)
    assert set(diag) >= {"return", "return_std", "grad_norm", "grad_variance"}
    assert all(np.isfinite(float(v)) for v in diag.values())


def test_estimators_work_under_vmap_over_keys(small):
    """vmap(estimate) over three keys, inside jit: row 0 (the fixture's key) equals the plain
    jitted call; every row's leave-one-out gradient is the hand REINFORCE sum on that key's
    rollouts, and every row's mean return is that of its own rollouts."""
    for name, (grads, diags) in small["batched"].items():
        assert grads["K"].shape == (3, 1, 2) and diags["grad_variance"].shape == (3,)
        for leaf in ("K", "log_std"):
            np.testing.assert_allclose(grads[leaf][0], small["estimates"][name][0][leaf], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(diags["grad_variance"][0], small["estimates"][name][1]["grad_variance"],
                                   rtol=1e-4)
        assert not np.allclose(grads["K"][0], grads["K"][1])  # different keys, different estimates
        for i in range(3):
            traj = jax.tree.map(lambda x: None if x is None else x[i], small["batch_traj"])
            returns = (traj.reward * GAMMA ** np.arange(H)).sum(1)
            np.testing.assert_allclose(diags["return"][i], returns.mean(), rtol=1e-5)
            if name == "leave_one_out":
                expected = score_function_by_hand(small, "leave_one_out", traj)
                np.testing.assert_allclose(grads["K"][i], expected["K"], rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(grads["log_std"][i], expected["log_std"], rtol=1e-4, atol=1e-5)


def test_remat_and_truncation_options_of_the_estimator(small):
    """remat = no remat; truncate_every = horizon = full BPTT; truncate_every = 1 is the batch mean of
    Σ γᵗ ∇θ r(x_t, u_t) with x_t held fixed: ∇_K = Σ γᵗ (−2Ru_t) x_tᵀ, ∇_{log σ} = Σ γᵗ (−2Ru_t)(u_t − Kx_t)."""
    env, params = small["env"], small["params"]
    grads = {name: small["estimates"][name][0] for name in ("pathwise", "remat", "trunc_H", "trunc_1")}
    for name in ("remat", "trunc_H"):
        for leaf in ("K", "log_std"):
            np.testing.assert_allclose(grads[name][leaf], grads["pathwise"][leaf], rtol=1e-5, atol=1e-6)
    traj = small["traj"]
    x, u = traj.obs, traj.action
    R, K = np.asarray(env.params.R, np.float64), np.asarray(params["K"], np.float64)
    w = GAMMA ** np.arange(H)
    du = -2 * u @ R.T
    np.testing.assert_allclose(grads["trunc_1"]["K"], np.einsum("t,nti,ntj->ij", w, du, x) / N, rtol=1e-4)
    np.testing.assert_allclose(grads["trunc_1"]["log_std"],
                               np.einsum("t,nti->i", w, du * (u - np.einsum("ij,ntj->nti", K, x))) / N, rtol=1e-4)
    assert not np.allclose(grads["trunc_1"]["K"], grads["pathwise"]["K"], rtol=1e-2)


# ----------------------------------------------------------------------------- scenario 1: exact


def test_deterministic_pathwise_from_a_fixed_start_is_the_closed_form(quick_jit):
    """Scenario 1 of the founding question: u = Kx, x₀ fixed, no noise anywhere; the pathwise
    gradient is the exact gradient of the one return, the closed form with σ = 0 (float32
    through 20 steps: 1e-4 relative)."""
    env = diffpg.make("lqr", init_mean=jnp.array([1.0, -0.5]), init_cov=jnp.zeros((2, 2)))
    policy = DeterministicLinear(action_size=1)
    params = {"K": jnp.array([[-0.5, -0.8]])}
    estimate = pathwise(env, policy, horizon=20, num_envs=4, discount=0.95)

    @quick_jit
    def parts(key, params):
        std = jnp.zeros(1)
        return (estimate(key, params), lqr.gradient(env.params, params["K"], std, 20, 0.95)[0],
                lqr.expected_return(env.params, params["K"], std, 20, 0.95))

    (grad, diag), exact_K, exact_return = parts(jax.random.PRNGKey(0), params)
    np.testing.assert_allclose(grad["K"], exact_K, rtol=1e-4)
    assert np.linalg.norm(exact_K) > 1.0  # not a trivially small gradient
    np.testing.assert_allclose(diag["return"], exact_return, rtol=1e-5)
    assert float(diag["grad_variance"]) == 0.0  # every rollout is the same rollout
    with pytest.raises(ProtocolError):  # and there is no score function to compare with
        score_function(env, policy, horizon=20, num_envs=4, discount=0.95)


# ----------------------------------------------------------------------------- settings


def _env_without_step():
    class NoStep:
        observation_size, action_size = 2, 1

        def reset(self, key):
            return diffpg.State(obs=jnp.zeros(2), reward=jnp.zeros(()), done=jnp.zeros(()))
    return NoStep()


class _NoSample:
    def init(self, key, observation_size):
        return {}


BAD_SETTINGS = [
    ("pathwise", {"horizon": 0}, ConfigError, "horizon must be a positive int, got 0"),
    ("score_function", {"horizon": 2.5}, ConfigError, "horizon must be a positive int, got 2.5"),
    ("pathwise", {"num_envs": -1}, ConfigError, "num_envs must be a positive int, got -1"),
    ("score_function", {"num_envs": True}, ConfigError, "num_envs must be a positive int, got True"),
    ("pathwise", {"discount": 1.5}, ConfigError, "discount must be a number in (0, 1], got 1.5"),
    ("score_function", {"discount": 0.0}, ConfigError, "discount must be a number in (0, 1], got 0.0"),
    ("pathwise", {"discount": "0.9"}, ConfigError, "discount must be a number in (0, 1]"),
    ("pathwise", {"variance_groups": 0}, ConfigError, "variance_groups must be a positive int"),
    ("score_function", {"baseline": "mean"}, ConfigError, "baseline must be one of"),
    ("score_function", {"baseline": "leave_one_out", "num_envs": 1}, ConfigError, "leave_one_out baseline needs"),
    ("pathwise", {"truncate_every": 0}, ConfigError, "truncate_every must be a positive int or None, got 0"),
    ("pathwise", {"truncate_every": 2.5}, ConfigError, "truncate_every must be a positive int or None"),
    ("score_function", {"policy": DeterministicLinear(1)}, ProtocolError, "needs log_prob(params, obs, action)"),
    ("score_function", {"policy": diffpg.policies.DeterministicMLP(action_size=1)}, ProtocolError,
     "use the pathwise estimator"),
    ("pathwise", {"env": "env"}, ProtocolError, "needs an environment with"),
    ("pathwise", {"env": _env_without_step()}, ProtocolError, "needs an environment with step"),
    ("score_function", {"policy": _NoSample()}, ProtocolError, "needs a policy with sample()"),
]


@pytest.mark.parametrize("estimator, change, cls, phrase", BAD_SETTINGS,
                         ids=[f"{e}-{'-'.join(c)}" for e, c, _, _ in BAD_SETTINGS])
def test_bad_settings_are_one_sentence_before_any_work(estimator, change, cls, phrase, assert_one_sentence):
    settings = dict(env=diffpg.make("lqr"), policy=diffpg.policies.LinearGaussian(action_size=1), horizon=5,
                    num_envs=4, discount=0.9)
    settings.update(change)
    factory = {"pathwise": pathwise, "score_function": score_function}[estimator]
    env, policy = settings.pop("env"), settings.pop("policy")
    with pytest.raises(cls) as e:
        factory(env, policy, **settings)
    assert_one_sentence(e, cls, phrase)


# ----------------------------------------------------------------------------- statistical tests on the LQR

# name: (factory, options, num_envs N, repeats R). Per-rollout variances measured on this LQR
# (trace): pathwise ~150, score function ~1e5 (none), ~6e4 (leave-one-out), ~9e3 (value
# baseline = the policy's infinite-horizon value), so the score-function runs take 8x the
# rollouts (524 288) to keep every SE under 6% of ‖∇J‖.
CONFIGS = {
    "pathwise": (pathwise, {}, 256, 256),
    "score_function/none": (score_function, {"baseline": "none"}, 256, 2048),
    "score_function/leave_one_out": (score_function, {"baseline": "leave_one_out"}, 256, 2048),
    "score_function/value": (score_function, {"baseline": "value"}, 256, 2048),
}


@pytest.fixture(scope="module")
def repeated(lqr_problem):
    """R independent estimates (keys, grads, diagnostics) of every configuration, and the explicit
    per-rollout pathwise gradients of the same rollouts, all from one jitted program."""
    p = lqr_problem

    def one(key, params):
        traj = rollout(key, p["env"], p["policy"], params, p["horizon"])
        return diffpg.estimators.pathwise_surrogate(traj.reward, p["discount"])

    ests, all_keys = {}, {}
    for i, (name, (factory, options, n, r)) in enumerate(CONFIGS.items()):
        if options.get("baseline") == "value":
            options = {"baseline": lyapunov_value(p["env"], p["params"], p["discount"])}
        ests[name] = factory(p["env"], p["policy"], horizon=p["horizon"], num_envs=n, discount=p["discount"],
                             **options)
        all_keys[name] = jax.random.split(jax.random.PRNGKey(100 + i), r)

    @jax.jit
    def run(all_keys, params):
        out = {name: jax.lax.map(lambda k: est(k, params), all_keys[name]) for name, est in ests.items()}
        n = CONFIGS["pathwise"][2]
        rollout_keys = jax.vmap(lambda k: jax.random.split(k, n))(all_keys["pathwise"])
        per_rollout = jax.vmap(jax.vmap(jax.grad(one, argnums=1), (0, None)), (0, None))(rollout_keys, params)
        return out, per_rollout

    out, per_rollout = run(all_keys, p["params"])
    results = {name: (all_keys[name], *out[name]) for name in CONFIGS}
    results["per_rollout_pathwise"] = per_rollout
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_estimator_is_unbiased_against_the_closed_form(name, repeated, lqr_problem, flat, flat_batched,
                                                       assert_unbiased):
    _, grads, _ = repeated[name]
    exact = flat(lqr_problem["exact"])
    z, mean, se = assert_unbiased(flat_batched(grads), exact, what=name)
    print(f"\n{name}: mean {np.round(mean, 3)} exact {np.round(exact, 3)} SE {np.round(se, 3)} z {np.round(z, 2)}")
    # power: every SE is under 6% of ‖∇J‖, so a bias of 30% of ‖∇J‖ in any coordinate would show
    # (dropping the γᵗ on the score terms biases ∂J/∂log σ by 8% of ‖∇J‖: z ≈ −4.5 without a
    # baseline, −6 with leave-one-out, −14 with the value baseline; the exact tests above catch it too)
    assert np.all(se < 0.06 * np.linalg.norm(exact))


@pytest.mark.slow
def test_pathwise_variance_is_orders_of_magnitude_below_the_score_functions(repeated, flat_batched):
    """Per-rollout variance tr Cov[∇f_i], two ways: N · (trace of the covariance of the R repeated
    estimates), and the mean of the estimator's own grouped diagnostic.

    Measured (printed with -s): pathwise ~150; score function without a baseline ~640x that,
    leave-one-out ~400x, and with the policy's own infinite-horizon value as baseline (a
    near-ideal critic) ~60x. Asserted: over 100x for the baselines that need no critic, over
    30x with that critic.
    """
    table = {}
    for name, (_, _, n, _) in CONFIGS.items():
        _, grads, diags = repeated[name]
        samples = flat_batched(grads)
        table[name] = (n * samples.var(0, ddof=1).sum(), float(np.mean(diags["grad_variance"])))
    pw_spread, pw_diag = table["pathwise"]
    print("\nper-rollout gradient variance (trace) on the LQR, H=20, γ=0.95, σ=0.5, x₀~N(0,I):")
    for name, (spread, diag) in table.items():
        print(f"  {name:32s} spread {spread:12.1f}  diagnostic {diag:12.1f}  ratio to pathwise "
              f"{spread / pw_spread:8.1f} (diagnostic {diag / pw_diag:8.1f})")
    for name, (spread, diag) in table.items():
        if name != "pathwise":
            factor = 30 if name.endswith("value") else 100
            assert spread > factor * pw_spread and diag > factor * pw_diag, name


@pytest.mark.slow
def test_grouped_variance_agrees_with_explicit_per_rollout_gradients(repeated, flat_batched):
    """The pathwise diagnostic M/(G−1) Σ_k ‖g_k − ĝ‖² (G = 8 groups of M = 32) against per-rollout
    gradients from vmap(grad) on the very same 256 × 256 rollouts.

    Exactly: the group means of the explicit gradients, put through the formula, give each
    repeat's diagnostic. Statistically: the mean of the 256 diagnostics and the sample variance of
    all 65 536 explicit gradients both estimate tr Cov[∇f_i]; their difference is within 4
    combined SEs (each SE from its own spread: the diagnostics' over √256, the explicit one's from
    the spread of ‖g_i − ḡ‖² over √65 536).
    """
    keys, grads, diags = repeated["pathwise"]
    per_rollout = repeated["per_rollout_pathwise"]
    _, _, n, r = CONFIGS["pathwise"]
    groups, m = 8, n // 8
    g = flat_batched(jax.tree.map(lambda x: x.reshape((r * n,) + x.shape[2:]), per_rollout)).reshape(r, n, -1)

    group_means = g.reshape(r, groups, m, -1).mean(2)
    estimate = group_means.mean(1)
    np.testing.assert_allclose(estimate, flat_batched(grads), rtol=1e-4, atol=1e-4)
    by_hand = m / (groups - 1) * ((group_means - estimate[:, None]) ** 2).sum((1, 2))
    np.testing.assert_allclose(by_hand, np.asarray(diags["grad_variance"]), rtol=1e-3)

    flat_g = g.reshape(r * n, -1)
    sq = ((flat_g - flat_g.mean(0)) ** 2).sum(1)
    explicit, se_explicit = sq.sum() / (r * n - 1), sq.std() / np.sqrt(r * n)
    diag = np.asarray(diags["grad_variance"], np.float64)
    grouped, se_grouped = diag.mean(), diag.std(ddof=1) / np.sqrt(r)
    z = (grouped - explicit) / np.hypot(se_grouped, se_explicit)
    print(f"\nper-rollout variance: grouped {grouped:.2f} ± {se_grouped:.2f}, explicit {explicit:.2f} ± "
          f"{se_explicit:.2f}, z = {z:.2f}")
    assert abs(z) < 4
    assert se_grouped < 0.1 * explicit  # the comparison resolves a 40% error in the diagnostic


def test_auto_choice_says_in_words_what_the_numbers_chose():
    from diffpg.estimators import auto_choice

    numbers = {"alpha": [0.96, 0.98], "biased": [0.0, 0.0], "bias_pvalue": [0.3, 0.5], "event_terms": [0.0, 0.0],
               "variance_first_order": [1.0, 1.0], "variance_score_function": [50.0, 50.0]}
    assert auto_choice(numbers) == ("auto used the pathwise gradient (weight α = 0.97 on it): no bias found "
                                    "(p = 0.4), and the pathwise gradient's per-rollout variance is 0.02 times the "
                                    "score function's")
    mixed = {**numbers, "alpha": [0.5, 0.5], "biased": [1.0, 0.0], "event_terms": [0.5, 0.5]}
    assert auto_choice(mixed) == ("auto mixed the pathwise gradient (weight α = 0.50) with the score function: the "
                                  "bias test finds the pathwise gradient biased in 50% of the estimates (p = 0.4); "
                                  "the environment's discrete events carry 50% of the first-order estimate")
