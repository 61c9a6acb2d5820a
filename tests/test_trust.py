"""diffpg.trust and diffpg.finite_differences: the pieces of ``diffpg check``, against exact answers.

Statistical tests use conftest's z-test (4 standard errors, justified there).
"""
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpg
from diffpg import diagnostics, trust
from diffpg.errors import ConfigError, ProtocolError
from diffpg.finite_differences import StepDerivatives, step_derivatives, working_eps

_spec = importlib.util.spec_from_file_location("user_envs", Path(__file__).parent / "fixtures" / "user_envs.py")
user_envs = importlib.util.module_from_spec(_spec)  # the example environments a user would write
_spec.loader.exec_module(user_envs)

SMALL = trust.Settings(num_states=8)


def derivatives_at(env, settings=SMALL, seed=0):
    states, actions = trust.random_states(jax.random.PRNGKey(seed), env, settings)
    return states, actions, step_derivatives(jax.random.PRNGKey(1), env, states, actions, settings.max_inputs)


@pytest.fixture(scope="module")
def linear():
    return derivatives_at(user_envs.Linear())


@pytest.fixture(scope="module")
def broken():
    return derivatives_at(user_envs.StopGradientStep())


# ---------------------------------------------------------------- finite differences


def test_jacobian_of_a_linear_step_is_exact(linear):
    """x' = x + B u, r = -(|x'|² + 0.1 u²).

    ∂x'/∂x = I, ∂x'/∂u = B, ∂r/∂x = -2x', ∂r/∂u = -2 Bᵀx' - 0.2 u.
    """
    states, actions, d = linear
    assert d.precision == "float64"
    assert d.input_names == ["state.obs", "state.obs", "state.reward", "state.done", "action"]
    assert d.output_names == ["obs", "obs", "reward", "done"]
    x_next = np.asarray(states.obs, np.float64) + np.outer(np.asarray(actions[:, 0], np.float64), [0.0, 1.0])
    exact = np.zeros((8, 4, 5))
    exact[:, 0, 0] = exact[:, 1, 1] = 1.0
    exact[:, 1, 4] = 1.0
    exact[:, 2, 0:2] = -2 * x_next
    exact[:, 2, 4] = -2 * x_next[:, 1] - 0.2 * np.asarray(actions[:, 0], np.float64)
    np.testing.assert_allclose(d.autodiff, exact, rtol=1e-12, atol=1e-12)
    # A quadratic has no third derivative: the central difference is exact up to float64 rounding.
    np.testing.assert_allclose(d.central, exact, rtol=1e-8, atol=1e-8)
    assert d.agreement().all()


def test_a_stop_gradient_fails_exactly_the_entries_it_cuts(broken):
    states, actions, d = broken
    agree = d.agreement()
    wrong = np.zeros(agree.shape[1:], bool)
    wrong[1, 4] = True  # d obs[1] / d action: autodiff 0, truly 1
    wrong[2, 4] = True  # d reward / d action: only the 0.1 u² term survives the cut
    assert (agree == ~wrong).all()
    np.testing.assert_allclose(d.autodiff[:, 1, 4], 0.0)
    np.testing.assert_allclose(d.central[:, 1, 4], 1.0, rtol=1e-8)
    findings = trust.finite_difference_findings(d, np.ones(8, bool))
    assert [f.status for f in findings] == ["problem", "problem"]
    assert findings[0].message.startswith("the derivative of obs with respect to action disagrees with finite "
                                          "differences at 8 of 8 random states (autodiff 0, finite difference 1,")
    assert "the step cuts the gradient there" in findings[0].message


def test_working_precision_is_read_off_the_path_from_inputs_to_outputs():
    with jax.enable_x64(True):
        x = jnp.ones(3)
        assert working_eps(jax.make_jaxpr(lambda x: jnp.sin(x) * 2)(x)) == np.finfo(np.float64).eps
        assert working_eps(jax.make_jaxpr(lambda x: x.astype(jnp.float32) ** 2)(x)) == np.finfo(np.float32).eps
        inside = jax.make_jaxpr(lambda x: jax.lax.scan(lambda c, _: (c.astype(jnp.float32) * 2, None),
                                                       x.astype(jnp.float32), None, length=2)[0])(x)
        assert working_eps(inside) == np.finfo(np.float32).eps
        constant = jnp.linspace(0.0, 1.0, 3, dtype=jnp.float32)  # a float32 parameter, computed without x
        assert working_eps(jax.make_jaxpr(lambda x: x * jnp.exp(constant).astype(x.dtype))(x)) == np.finfo(np.float64).eps


class Kinked:
    """reward |x'_0|: a kink at 0 that a central difference straddles."""

    observation_size, action_size = 1, 1

    def reset(self, key):
        return diffpg.State(obs=jnp.zeros(1), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        x = state.obs + action
        return diffpg.State(obs=x, reward=jnp.abs(x[0]), done=jnp.zeros(()))


def test_at_a_kink_the_one_sided_difference_on_the_smooth_side_is_accepted():
    env = Kinked()
    h = np.finfo(np.float64).eps ** (1 / 3)  # the central step at |x| <= 1
    states = diffpg.State(obs=jnp.array([[0.3 * h], [0.5]]), reward=jnp.zeros(2), done=jnp.zeros(2))
    d = step_derivatives(None, env, states, jnp.zeros((2, 1)))
    reward_wrt_action = (d.output_names.index("reward"), d.input_names.index("action"))
    central = d.central[0][reward_wrt_action]
    assert abs(central - 0.3) < 1e-6  # straddling the kink: (|1.3h| - |-0.7h|) / 2h
    assert d.autodiff[0][reward_wrt_action] == 1.0 and d.forward[0][reward_wrt_action] == pytest.approx(1.0)
    assert d.agreement().all()


class Wiggly:
    """reward sin(k x'_0) (+ x'_0 behind a stop_gradient when ``cut``): smooth, but curving within the difference
    step, as a soft contact's force does over its millimetre-wide impedance."""

    observation_size, action_size = 1, 1

    def __init__(self, cut=False):
        self.cut = cut

    def reset(self, key):
        return diffpg.State(obs=jnp.zeros(1), reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        x = state.obs + action
        reward = jnp.sin(1000.0 * x[0]) + (jax.lax.stop_gradient(x[0]) if self.cut else 0.0)
        return diffpg.State(obs=x, reward=reward, done=jnp.zeros(()))


def test_a_sharp_curvature_is_the_differences_error_and_a_cut_still_fails():
    """With k = 1000 the central difference's truncation error k² h² / 6 ≈ 6e-6 (relative) is far above
    float64's ρ = 3.7e-8: Richardson's estimate from the difference at 2h accounts for it, exactly (error ∝ h²),
    while a derivative missing 1 of about k (relative 1e-3) still fails."""
    states = diffpg.State(obs=jnp.array([[0.1], [0.2], [-0.3]]), reward=jnp.zeros(3), done=jnp.zeros(3))
    actions = jnp.zeros((3, 1))
    d = step_derivatives(None, Wiggly(), states, actions)
    i, j = d.output_names.index("reward"), d.input_names.index("action")
    relative = np.abs(d.central - d.autodiff)[:, i, j] / np.abs(d.autodiff[:, i, j])
    assert (relative > 1e3 * d.eps ** (2 / 3)).all()  # beyond the tolerance without the truncation term
    # the error of the difference at 2h is 4 times that at h, so t estimates the error at h
    np.testing.assert_allclose(d.truncation[:, i, j], np.abs(d.central - d.autodiff)[:, i, j], rtol=1e-3)
    assert d.agreement().all()
    cut = step_derivatives(None, Wiggly(cut=True), states, actions)
    assert not cut.agreement()[:, i, j].any() and cut.agreement()[:, :i].all()


def test_the_builtin_pendulum_passes():
    # Its clips and angle wrap are kinks; its done flag follows the state's precision (envs.base.end_of_step), so
    # it is checked at float64 tolerances.
    _, _, d = derivatives_at(diffpg.make("pendulum"))
    assert d.precision == "float64" and d.float64_error == ""
    assert d.agreement().all()
    assert d.autodiff.shape == (8, 7, 8)  # outputs obs(3), reward, done, theta, theta_dot; inputs those + action


class Float32Carry(user_envs.Linear):
    """A step whose scan starts from a float32 carry: a float64 state makes the carry change type, which JAX refuses."""

    def step(self, state, action):
        x = self.next_obs(state.obs, action)
        moved = jax.lax.scan(lambda c, _: (x + c.astype(x.dtype), None), jnp.zeros(2, jnp.float32), None, length=1)[0]
        return diffpg.State(obs=moved, reward=-jnp.sum(moved ** 2), done=jnp.zeros(()))


def test_a_step_that_cannot_run_in_float64_is_checked_in_its_own_precision_and_says_why():
    states = diffpg.State(obs=jnp.array([[0.5, -1.0], [1.0, 0.0]]), reward=jnp.zeros(2), done=jnp.zeros(2))
    d = step_derivatives(None, Float32Carry(), states, jnp.array([[0.5], [-0.5]]))
    assert d.precision == "float32" and d.float64_error.startswith("TypeError: ")
    assert d.agreement().all()
    (finding,) = trust.finite_difference_findings(d, np.ones(2, bool))
    assert finding.status == "ok" and "(float32; float64 failed with TypeError: " in finding.message


def test_an_mjx_environment_offers_a_float64_copy_and_stays_float32():
    """``MJXEnv.in_float64``, which step_derivatives steps (the end-to-end MJX check in test_cli_check.py asserts
    the float64 precision it reaches); nothing compiled here."""
    env = diffpg.make("InvertedPendulum-v5")
    assert env.in_float64().model.opt.timestep.dtype == np.float64
    assert env.model.opt.timestep.dtype == np.float32  # the environment itself is left in float32


# ---------------------------------------------------------------- non-finite values


def test_nan_in_the_step_and_in_its_derivative_are_told_apart():
    class SqrtReward(user_envs.Linear):
        def step(self, state, action):
            x = self.next_obs(state.obs, action)
            return diffpg.State(obs=x, reward=jnp.sqrt(jnp.abs(action[0]) * (x[0] > 0).astype(x.dtype)), done=jnp.zeros(()))

    env = SqrtReward()
    states = diffpg.State(obs=jnp.array([[-1.0, 0.0], [1.0, 0.0]]), reward=jnp.zeros(2), done=jnp.zeros(2))
    d = step_derivatives(None, env, states, jnp.array([[0.5], [0.5]]))
    findings, usable = trust.nonfinite_findings(states, d)
    # At x0 < 0 the reward is sqrt(0) = 0, finite, but its derivative is inf: exactly that state is unusable.
    assert usable.tolist() == [False, True]
    assert [f.message for f in findings] == [
        "the derivative of the step is non-finite for reward at 1 of 2 random states and actions (reverse mode "
        "spreads it to every output): a sqrt, norm or log at zero, or 0/0 behind a jnp.where"]
    assert (~np.isfinite(d.autodiff[0])).any(axis=1).all()  # reverse mode: 0 · inf in every output's row
    assert np.isfinite(d.forward_mode[0][d.output_names.index("obs")]).all()


# ---------------------------------------------------------------- the estimator sweep


@pytest.fixture(scope="module")
def lqr_sweep(lqr_problem):
    p = lqr_problem
    settings = trust.Settings(horizons=(5, 20), discount=p["discount"], num_envs=64, repeats=64)
    rows, _ = trust.estimator_sweep(jax.random.PRNGKey(7), p["env"], p["policy"], p["params"], settings)
    return rows, settings


@pytest.mark.slow
def test_every_horizon_of_the_sweep_estimates_the_exact_lqr_gradient(lqr_sweep, lqr_problem, flat):
    """The sweep computes horizon H from rollouts of max(horizons) steps with later rewards zeroed; its
    pathwise and score-function means must both match the closed-form gradient of J_H.

    The pathwise standard errors are a few percent of the gradient, so this is a sharp test of the masking;
    the score function's are as large as the gradient here (which is the point of the founding question), so
    for it the sharp test is the next one: identical samples to rollouts of exactly H steps."""
    rows, settings = lqr_sweep
    p = lqr_problem
    for row in rows:
        exact = flat(diffpg.oracles.lqr.policy_gradient(p["env"], p["params"], row["horizon"], p["discount"]))
        for name in ("pathwise", "score_function"):
            s = row[name]
            z = (np.asarray(s["mean"]) - exact) / np.asarray(s["stderr"])
            assert np.all(np.abs(z) < 4.0), (row["horizon"], name, z)
        assert np.all(np.asarray(row["pathwise"]["stderr"]) < 0.1 * np.abs(exact)), "too noisy to say anything"
        assert row["nonfinite"] == {"pathwise": 0, "score_function": 0}


@pytest.mark.slow
def test_the_masked_sweep_equals_rollouts_of_exactly_h_steps(lqr_sweep, lqr_problem):
    """Rollouts of exactly H steps on the same keys are prefixes of the longer ones: identical estimates."""
    rows, settings = lqr_sweep
    p = lqr_problem
    options = dict(horizon=5, num_envs=64, discount=p["discount"])
    for name, estimate in (("pathwise", diffpg.estimators.pathwise(p["env"], p["policy"], **options)),
                           ("score_function", diffpg.estimators.score_function(p["env"], p["policy"], **options))):
        samples, _ = jax.jit(diagnostics.gradient_samples, static_argnums=(0, 3))(
            estimate, jax.random.PRNGKey(7), p["params"], settings.repeats)
        np.testing.assert_allclose(rows[0][name]["mean"], samples.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rows[0][name]["variance"], diagnostics.statistics(samples)["variance"],
                                   rtol=1e-3)


def test_the_paired_estimates_are_the_pathwise_and_score_function_estimates_on_the_same_rollouts():
    """check's sweep computes both gradients from one batch of rollouts: with the same key they must be the
    separate estimators' (which roll out the same N rollouts), and done the rollouts' own flags. On an env whose
    episodes end (the leave-one-out advantage and the masking after the end are exercised)."""
    env, policy = user_envs.LeavesTheBox(), diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[0.3]]), "log_std": jnp.log(jnp.array([0.6]))}
    options = dict(horizon=30, num_envs=8, discount=0.97)
    key = jax.random.PRNGKey(5)
    path, score, done = jax.jit(trust.agreement.paired_estimates(env, policy, **options))(key, params)
    expected_path, _ = jax.jit(diffpg.estimators.pathwise(env, policy, **options))(key, params)
    expected_score, _ = jax.jit(diffpg.estimators.score_function(env, policy, baseline="leave_one_out",
                                                                 **options))(key, params)
    for got, expected in ((path, expected_path), (score, expected_score)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    rollouts = jax.vmap(lambda k: diffpg.rollouts.rollout(k, env, policy, params, 30).done)(
        diffpg.estimators.batch.batch_keys(key, 8))
    np.testing.assert_array_equal(done, rollouts)
    assert 0 < float(done[:, -1].mean()) < 1  # some episodes ended, some did not: both branches were taken


def test_after_every_rollout_has_ended_a_longer_horizon_has_the_same_estimates_without_computing_them():
    """LeavesTheBox with wide random actions: every rollout leaves the box within 20 steps, so horizon 60's
    estimates are horizon 20's; the sweep copies them, and computing them gives the same numbers."""
    env, policy = user_envs.LeavesTheBox(), diffpg.policies.LinearGaussian(action_size=1)
    params = {"K": jnp.array([[0.0]]), "log_std": jnp.log(jnp.array([8.0]))}
    settings = trust.Settings(horizons=(20, 60), num_envs=4, repeats=4)
    key = jax.random.PRNGKey(2)
    rows, done = trust.estimator_sweep(key, env, policy, params, settings)
    assert done[..., 19].all() and rows[1]["horizon"] == 60
    path, score, _ = jax.jit(trust.agreement.paired_samples(env, policy, settings, 60, 60))(key, params)
    np.testing.assert_allclose(rows[1]["samples"]["pathwise"], path, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows[1]["samples"]["score_function"], score, rtol=1e-6, atol=1e-7)


class LateNaN:
    """x' = (x + u) · (NaN from step 3 on): finite for two steps, then not."""

    observation_size, action_size = 1, 1

    def reset(self, key):
        return diffpg.State(obs=jax.random.normal(key, (1,)), reward=jnp.zeros(()), done=jnp.zeros(()),
                            t=jnp.zeros((), jnp.int32))

    def step(self, state, action):
        x = (state.obs + action) * jnp.where(state.t >= 3, jnp.nan, 1.0)
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=jnp.zeros(()), t=state.t + 1)


@pytest.mark.slow
def test_the_steps_after_the_horizon_are_not_computed_so_a_later_nan_spoils_nothing():
    env, policy = LateNaN(), diffpg.policies.LinearGaussian(action_size=1)
    params = policy.init(jax.random.PRNGKey(0), 1)
    settings = trust.Settings(horizons=(2, 5), num_envs=4, repeats=4)
    key = jax.random.PRNGKey(3)
    samples = jax.jit(diagnostics.gradient_samples, static_argnums=(0, 3))
    # RewardsUpTo's active_steps: unroll takes only the first 2 steps of the 5-step rollout (a lax.cond, not a
    # select), so the NaN from step 3 on enters neither the forward nor the backward pass (masking the rewards
    # alone would let it in as 0 · NaN) ...
    masked = diffpg.estimators.pathwise(diffpg.diagnostics.RewardsUpTo(env, 2), policy, horizon=5, num_envs=4)
    exact = diffpg.estimators.pathwise(env, policy, horizon=2, num_envs=4)
    np.testing.assert_allclose(samples(masked, key, params, 4)[0], samples(exact, key, params, 4)[0], rtol=1e-6)
    # ... and the sweep finds horizon 2 finite, horizon 5 not.
    rows, _ = trust.estimator_sweep(key, env, policy, params, settings)
    assert rows[0]["nonfinite"] == {"pathwise": 0, "score_function": 0}
    assert rows[1]["nonfinite"] == {"pathwise": 4, "score_function": 4}
    assert [f.message for f in trust.agreement_findings(rows, threshold=10.0)][:2] == [
        "the pathwise gradient estimates are non-finite: 4 of 4 at horizon 5",
        "the score-function gradient estimates are non-finite: 4 of 4 at horizon 5"]


def test_z_threshold_is_the_bonferroni_t_quantile():
    from scipy import stats

    settings = trust.Settings(horizons=(1, 5, 20), repeats=32, alpha=1e-3)
    threshold = trust.z_threshold(settings, num_params=3)
    # Two-sided tail at the threshold, times P |H| tests, is alpha.
    assert 2 * stats.t.sf(threshold, 31) * 3 * 3 == pytest.approx(1e-3)
    assert 4.3 < threshold < 4.5  # heavier than the normal's 3.9 at the same level: R - 1 = 31 dof


def sweep_row(horizon, z, pathwise=1.0, score_function=10.0, nonfinite=0, variance_threshold=2.5):
    return {"horizon": horizon, "z": np.asarray(z, float), "repeats": 32,
            "pathwise": {"variance": pathwise}, "score_function": {"variance": score_function},
            "nonfinite": {"pathwise": nonfinite, "score_function": 0}, "variance_threshold": variance_threshold}


def test_disagreement_is_named_at_the_first_horizon_with_its_cause():
    at_one = trust.agreement_findings([sweep_row(1, [0.0, 9.0]), sweep_row(5, [5.0, 1.0])], threshold=4.4)
    assert at_one == [trust.Finding("pathwise vs score function", "problem",
                                    "pathwise gradient disagrees with the score function at horizon 1 (max |z| = "
                                    "9.0 > 4.4) (and at horizon 5): the step cuts or breaks the gradient")]
    later = trust.agreement_findings([sweep_row(1, [1.0]), sweep_row(20, [-6.0])], threshold=4.4)
    assert later[0].message.startswith("pathwise gradient disagrees with the score function at horizon 20 (max "
                                       "|z| = 6.0 > 4.4): they agree at horizon 1, so the gradient through the "
                                       "dynamics is cut or broken")
    fine = trust.agreement_findings([sweep_row(1, [1.0]), sweep_row(20, [-2.0])], threshold=4.4)
    assert [f.status for f in fine] == ["ok"]
    spoiled = trust.agreement_findings([sweep_row(1, [1.0], nonfinite=3)], threshold=4.4)
    assert spoiled == [trust.Finding("non-finite values", "problem",
                                     "the pathwise gradient estimates are non-finite: 3 of 32 at horizon 1")]


def test_growth_rates_recover_exact_exponential_and_polynomial_growth():
    horizons = np.array([1, 5, 20])
    assert trust.growth_rates(horizons, 3.0 * np.exp(0.5 * horizons))["rate"] == pytest.approx(0.5)
    assert trust.growth_rates(horizons, 2.0 * horizons**3.0)["degree"] == pytest.approx(3.0)


def test_pathwise_variance_significantly_above_the_score_functions_is_a_problem():
    rows = [sweep_row(1, [0.0], 1.0, 10.0), sweep_row(20, [0.0], 1e6, 1e3)]
    growth = {name: trust.growth_rates([1, 20], [r[name]["variance"] for r in rows])
              for name in ("pathwise", "score_function")}
    (finding,) = trust.variance_findings(rows, growth)
    assert finding.status == "problem"
    assert finding.message.startswith("pathwise variance exceeds the score function's at horizon 20 (1e+06 vs "
                                      "1e+03, ratio 1e+03 above the F test's 2.5): the dynamics amplify "
                                      "perturbations (chaos or instability)")
    rows[1]["pathwise"]["variance"] = 1e2
    assert trust.variance_findings(rows, growth)[0].status == "ok"
    # Reacher-v5's horizon 1 with 8 repeats: above, but within the sampling noise the F test allows
    rows = [sweep_row(1, [0.0], 0.93, 0.825, variance_threshold=2.9), sweep_row(5, [0.0], 1.0, 5.0)]
    (finding,) = trust.variance_findings(rows, growth)
    assert finding.status == "ok" and finding.message.endswith(
        "the pathwise variance is above the score function's at horizon 1 but not significantly (at horizon 1: "
        "0.93 vs 0.825, ratio 1.13 below the F test's 2.9)")


# ---------------------------------------------------------------- protocol and settings


def test_protocol_errors_are_one_sentence(assert_one_sentence):
    with pytest.raises(ProtocolError) as e:
        trust.check_protocol(user_envs.WrongObsShape())
    assert_one_sentence(e, ProtocolError, "WrongObsShape.reset(key) returns .obs of shape (2,)",
                        "or set observation_size = 2")

    class RaisesInStep(user_envs.Linear):
        def step(self, state, action):
            raise RuntimeError("the physics engine is not initialized")

    with pytest.raises(ProtocolError) as e:
        trust.check_protocol(RaisesInStep())
    assert_one_sentence(e, ProtocolError, "RaisesInStep.step failed",
                        "RuntimeError: the physics engine is not initialized")
    with pytest.raises(ProtocolError) as e:
        trust.check_policy(diffpg.policies.DeterministicMLP(action_size=1), user_envs.Linear())
    assert_one_sentence(e, ProtocolError, "needs log_prob(params, obs, action), and DeterministicMLP has none")
    with pytest.raises(ProtocolError) as e:
        trust.check_policy(diffpg.policies.LinearGaussian(action_size=2), user_envs.Linear())
    assert_one_sentence(e, ProtocolError, "returns actions of shape (2,) but Linear takes shape (1,)",
                        "action_size=1")


@pytest.mark.parametrize("change, phrase", [
    (dict(horizons=(0, 5)), "horizons must be positive ints"),
    (dict(repeats=2), "repeats must be an int of at least 3"),
    (dict(num_envs=1), "num_envs must be at least 2"),
    (dict(alpha=0.0), "alpha must be in (0, 1)"),
    (dict(discount=1.5), "discount must be in (0, 1]"),
])
def test_bad_settings_are_one_sentence(change, phrase, assert_one_sentence):
    with pytest.raises(ConfigError) as e:
        trust.Settings(**change).validate()
    assert_one_sentence(e, ConfigError, phrase)


def test_step_derivatives_is_a_named_tuple_of_arrays(linear):
    _, _, d = linear
    assert isinstance(d, StepDerivatives)
    assert d.autodiff.shape == d.central.shape == (8, 4, 5) and d.outputs.shape == (8, 4)


def test_default_horizons_reach_the_episode_length():
    class Declared(user_envs.Linear):
        max_steps = 200

    assert trust.Settings().for_env(Declared()).horizons == (1, 5, 20, 50, 100, 200)
    assert trust.Settings().for_env(user_envs.Linear()).horizons == (1, 5, 20, 50, 100)  # 100 without max_steps
    assert trust.Settings(horizons=(2, 3)).for_env(Declared()).horizons == (2, 3)

    class Long(user_envs.Linear):  # each horizon costs rollouts of the longest: a decade apart beyond 200 steps
        max_steps = 1000

    assert trust.Settings().for_env(Long()).horizons == (1, 10, 100, 1000)


class Cheetah(user_envs.Linear):  # HalfCheetah-v5's sizes: 1000 steps, frame_skip 5, 17 observations, 6 actions
    max_steps, frame_skip, observation_size, action_size = 1000, 5, 17, 6


def test_default_rollouts_shrink_with_episode_length_frame_skip_and_model_size():
    small = trust.Settings().for_env(user_envs.Linear())
    assert (small.num_envs, small.repeats) == (64, 32)  # horizons 1, 5, 20, 50, 100: the full 64 x 32
    cheetah = trust.Settings().for_env(Cheetah())
    # BUDGET / ((1 + 10 + 100 + 1000) steps x 5 x (17 + 6)) = 8: the fewest, 16 rollouts, 8 repeats of 2
    assert (cheetah.num_envs, cheetah.repeats) == (2, 8)
    assert trust.Settings(num_envs=3, repeats=5).for_env(Cheetah()).num_envs == 3
    assert "horizons 1, 10, 100, 1000; 2 rollouts per estimate, 8 estimates" in cheetah.describe()


def test_default_random_states_shrink_with_the_cost_of_a_step():
    class Ant(Cheetah):  # Ant-v5's, with the contact forces in the observation
        observation_size, action_size = 105, 8

    assert trust.Settings().for_env(user_envs.Linear()).num_states == 16
    assert trust.Settings().for_env(Cheetah()).num_states == 16  # 5 x 23 = 115 per state, far within STATES_BUDGET
    assert trust.Settings().for_env(Ant()).num_states == 8  # STATES_BUDGET / (5 x 113) = 8
    assert trust.Settings(num_states=3).for_env(Ant()).num_states == 3
    assert "8 random states" in trust.Settings().for_env(Ant()).describe()


def report_of(rows, findings=()):
    """A Report with sweep ``rows`` given as (horizon, max |z|, pathwise variance, score-function variance, ended)."""
    sweep = [{"horizon": h, "max_abs_z": z, "z_threshold": 4.0, "pathwise_variance": pw,
              "score_function_variance": sf, "ended_fraction": ended, "variance_threshold": 3.0}
             for h, z, pw, sf, ended in rows]
    return trust.Report(findings=list(findings), precision="float64", sweep=sweep, growth={})


def test_the_recommendation_follows_the_first_problem():
    agree = [(1, 1.0, 1.0, 5.0, 0.0), (5, 2.0, 2.0, 9.0, 0.0)]
    assert trust.recommend(report_of(agree)) == ("use pathwise (no bias found, and the less noisy estimator, up to "
                                                 "H = 5), and apg or shac to train")
    ending = agree + [(50, 3.0, 3.0, 90.0, 0.25)]  # Hopper-v5 with 8 repeats: all end by 100, no |z| above 11.8
    assert trust.recommend(report_of(ending)) == (
        "use pathwise (no bias found, and the less noisy estimator, up to H = 50), and apg or shac to train; but 25% "
        "of the rollouts terminate by H = 50, whose effect on the return pathwise cannot see, and a bias below the "
        "z-test's threshold (4) goes unseen: confirm with more --repeats, or use auto")
    biased = agree + [(50, 30.0, 3.0, 90.0, 0.4)]
    assert trust.recommend(report_of(biased)) == ("use auto (pathwise is biased at H ≥ 50, where episodes "
                                                  "terminate), or shac with windows ≤ 5")
    noisy = agree + [(20, 1.0, 50.0, 10.0, 0.0)]
    assert trust.recommend(report_of(noisy)) == ("use auto (pathwise is noisier than the score function at "
                                                 "H ≥ 20), or shac with windows ≤ 5")
    within_noise = agree + [(20, 1.0, 20.0, 10.0, 0.0)]  # ratio 2, below the F threshold of 3
    assert trust.recommend(report_of(within_noise)).startswith("use pathwise")
    assert trust.recommend(report_of([(1, 9.0, 1.0, 5.0, 0.0)])).startswith("use score_function or auto")
    nan = trust.Finding("non-finite values", "problem", "...")
    assert trust.recommend(report_of(agree, [nan])).startswith("fix the non-finite values first")
    # HalfCheetah-v5: every single step finite, the pathwise estimates overflow at H = 1000 only
    overflowed = trust.Finding("non-finite values", "problem",
                               "the pathwise gradient estimates are non-finite: 8 of 8 at horizon 1000")
    assert trust.recommend(report_of(agree + [(1000, float("nan"), float("nan"), 9.0, 0.0)], [overflowed])) == (
        "use auto (the pathwise gradient overflows at H ≥ 1000: it grows with the horizon past the float range), "
        "or shac with windows ≤ 5")
    assert trust.recommend(report_of(agree, [overflowed, nan])).startswith("fix the non-finite values first")
    flat = trust.Finding("action gradient", "problem", "the return has no gradient with respect to the actions")
    assert trust.recommend(report_of(biased, [flat])).startswith("use score_function (reinforce or ppo to train)")


def gradient_row(horizon, pathwise, score_function, eps=float(np.finfo(np.float32).eps)):
    return {"horizon": horizon, "nonfinite": {"pathwise": 0, "score_function": 0}, "eps": eps,
            "norm": {"pathwise": pathwise, "score_function": score_function}}


def test_a_return_with_no_action_gradient_is_named_only_when_pathwise_is_zero_at_every_horizon():
    (flat,) = trust.action_gradient_findings([gradient_row(1, 0.0, 2.0), gradient_row(5, 0.0, 3.0)])
    assert flat.status == "problem" and flat.message.startswith(
        "the return has no gradient with respect to the actions: the pathwise gradient is zero at horizons 1, 5")
    assert "alive bonus" in flat.message and "reinforce or ppo" in flat.message
    (rounding,) = trust.action_gradient_findings([gradient_row(1, 1e-8, 2.0)])  # below eps x 2.0 = 2.4e-7
    assert rounding.status == "problem"
    (cut,) = trust.action_gradient_findings([gradient_row(1, 0.0, 2.0)], step_cut=True)
    assert "the step cuts the gradient" in cut.message
    (later,) = trust.action_gradient_findings([gradient_row(1, 0.0, 2.0), gradient_row(5, 1e-3, 3.0)])
    assert later.status == "ok" and "horizon 5" in later.message
    (still,) = trust.action_gradient_findings([gradient_row(1, 0.0, 0.0)])
    assert still.status == "problem" and still.message.startswith("both gradient estimates are exactly zero")


@pytest.fixture(scope="module")
def alive_bonus_report():
    """``trust.check`` on AliveBonus (tests/fixtures/user_envs.py): 1 per step in the box, 20-step episodes."""
    settings = trust.Settings(num_states=4, warmup_steps=4, max_inputs=8, num_envs=16, repeats=4)
    calls = []
    report = trust.check(user_envs.AliveBonus(), diffpg.policies.LinearGaussian(action_size=1), settings,
                         progress=lambda *call: calls.append(call))
    return report, calls


def test_check_names_an_alive_bonus_as_a_return_with_no_action_gradient(alive_bonus_report):
    report, _ = alive_bonus_report
    (finding,) = [f for f in report.findings if f.check == "action gradient"]
    assert finding.status == "problem" and "no gradient with respect to the actions" in finding.message
    assert [row["horizon"] for row in report.sweep] == [1, 5, 20]
    assert all(row["pathwise_norm"] == 0.0 for row in report.sweep)  # a step function of the state: exactly 0
    assert report.sweep[-1]["score_function_norm"] > 0 and report.sweep[-1]["ended_fraction"] > 0
    assert report.recommendation.startswith("use score_function")
    assert report.settings.repeats == 4 and '"repeats": 4' in report.to_json()


def test_check_reports_its_progress_phase_by_phase_with_the_horizon(alive_bonus_report):
    _, calls = alive_bonus_report
    phases = [phase for phase, _, _ in calls]  # the sweep's horizons come from their own thread, in between
    assert phases.index("stepping from random states") < phases.index("differentiating single steps")
    assert "pathwise and score-function gradients at horizon 5 (64 rollouts)" in phases and phases[-1] == "done"
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[-1] == calls[-1][2] > 0  # the work done only grows, to the total


# ---------------------------------------------------------------- the deadlock of jaxlib's batched LAPACK calls
def test_check_compiles_cholesky_and_triangular_solve_without_lapack_and_restores_the_rules():
    """jaxlib 0.10's batched potrf/trsm block XLA's CPU pool waiting on chunks queued on that same pool: with two
    such calls running at once on a 2-core machine, check's MJX derivatives hung forever (trust.native_linalg).
    Inside ``native_linalg`` the program has no LAPACK call and solves the same system; after it, a fresh program
    calls LAPACK again (the process is left as it was found)."""
    from diffpg.trust.native_linalg import native_linalg

    def solve(a, b):  # what MJX's step does with its mass matrix and its Newton solve
        return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), b)

    a = 2.0 * jnp.eye(4)[None] + 0.1 * jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4))
    a = a @ jnp.swapaxes(a, 1, 2)  # a batch of symmetric positive definite matrices
    b = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    with native_linalg():
        inside = jax.jit(jax.vmap(solve))
        assert "lapack" not in inside.lower(a, b).as_text()
        x = inside(a, b)
    assert "lapack" in jax.jit(jax.vmap(lambda a, b: solve(a, b))).lower(a, b).as_text()
    np.testing.assert_allclose(x, np.linalg.solve(np.asarray(a), np.asarray(b)[..., None])[..., 0], rtol=1e-5)


def test_jumps_at_a_few_states_do_not_block_the_recommendation_unless_the_z_test_sees_them():
    agree = [(1, 1.0, 1.0, 5.0, 0.0), (5, 2.0, 2.0, 9.0, 0.0)]
    jump = trust.Finding("autodiff vs finite differences", "problem",
                         "the derivative of obs with respect to state.data.qvel disagrees with finite differences at "
                         f"1 of 16 random states (...): {trust.steps.DISCONTINUITY}")
    assert trust.recommend(report_of(agree, [jump])).startswith("use pathwise")
    assert trust.recommend(report_of([(1, 9.0, 1.0, 5.0, 0.0)], [jump])).startswith("fix the step's derivatives")
    broken = trust.Finding("autodiff vs finite differences", "problem", "... at 16 of 16 random states (...): a "
                                                                        "stop_gradient ... changes the derivative")
    assert trust.recommend(report_of(agree, [jump, broken])).startswith("fix the step's derivatives")


class EndsAtTwo:
    """x' = x + u, r = −x'², done from the second step on; ``calls`` counts the steps computed (a host callback)."""

    observation_size, action_size = 1, 1
    calls = 0

    def reset(self, key):
        return diffpg.State(obs=jax.random.normal(key, (1,)), reward=jnp.zeros(()), done=jnp.zeros(()),
                            t=jnp.zeros((), jnp.int32))

    def step(self, state, action):
        jax.debug.callback(lambda: setattr(EndsAtTwo, "calls", EndsAtTwo.calls + 1))
        x = state.obs + action
        return diffpg.State(obs=x, reward=-jnp.sum(x**2), done=(state.t >= 1).astype(jnp.float32), t=state.t + 1)


def test_once_every_rollout_has_ended_the_sweep_computes_no_more_steps():
    env, policy = EndsAtTwo(), diffpg.policies.LinearGaussian(action_size=1)
    params, key = policy.init(jax.random.PRNGKey(0), 1), jax.random.PRNGKey(3)
    settings = trust.Settings(num_envs=2, repeats=4)
    counted = {}
    for horizon in (2, 10):
        EndsAtTwo.calls = 0
        counted[horizon] = jax.block_until_ready(jax.jit(trust.agreement.paired_samples(
            env, policy, settings, horizon, horizon))(key, params)), EndsAtTwo.calls
    (short, calls_short), (long, calls_long) = counted[2], counted[10]
    assert calls_long == calls_short > 0  # steps 3 to 10 skipped: every rollout ended at step 2
    for a, b in zip(short[:2], long[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
