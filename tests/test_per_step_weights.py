"""The per-step weights of ``inverse_variance`` (PIPPS) and ``per_step_inverse_variance`` on a problem whose per-step variances are known.

H = 4 steps of a ~ N(μ, σ²) (``GaussianMean``), μ = 0, reward r_t = c_t a_t² / 2 at step t, and a state that
only counts the steps (no action changes a later state), γ = 1, no baseline. Step t's two estimates of its
share of dJ/dμ, per rollout, with ξ_t = a_t / σ:

    RP_t = c_t a_t = c_t σ ξ_t,                               Var = c_t² σ²
    LR_t = (a_t / σ²) G_t = (σ/2) ξ_t (c_t ξ_t² + S),  S = Σ_{t'>t} c_{t'} ξ_{t'}²,
           Var = E[LR_t²] = (σ²/4) (15 c_t² + 6 c_t S₁ + 2 S₂ + S₁²),   S₁ = Σ_{t'>t} c_{t'},  S₂ = Σ_{t'>t} c_{t'}²

(E ξ² = 1, E ξ⁴ = 3, E ξ⁶ = 15; both means are 0 = dJ/dμ at μ = 0). So the inverse-variance weight of the
pathwise estimate is k_t = Var LR_t / (Var RP_t + Var LR_t) exactly, and the c_t make it differ per step.

Each estimator is checked twice: exactly, against the weights recomputed in NumPy from the very rollouts
it drew (the same key gives the same actions as ``diffpg.rollout``); and statistically, against the
closed form above.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffpg import State, estimators
from diffpg.estimators.batch import batch_keys
from diffpg.policies import GaussianMean
from diffpg.rollouts import rollout

C = np.array([1.0, 0.5, 2.0, 1.0])
H, SIGMA = len(C), 0.7
POLICY = GaussianMean(SIGMA)
PARAMS = {"mu": jnp.zeros(1)}


class QuadraticSteps:
    """Reward c_t a² / 2 at step t; the state only counts steps, so step t's action affects reward t alone."""

    observation_size = 1
    action_size = 1

    def reset(self, key):
        return State(obs=jnp.ones(1), reward=jnp.zeros(()), done=jnp.zeros(()), t=jnp.zeros((), jnp.int32))

    def step(self, state, action):
        reward = 0.5 * jnp.asarray(C, jnp.float32)[state.t] * action[0] ** 2
        return State(obs=state.obs, reward=reward, done=jnp.zeros(()), t=state.t + 1)


ENV = QuadraticSteps()


def closed_form_weights():
    rest1 = np.array([C[t + 1:].sum() for t in range(H)])
    rest2 = np.array([(C[t + 1:] ** 2).sum() for t in range(H)])
    var_rp = C**2 * SIGMA**2
    var_lr = SIGMA**2 / 4 * (15 * C**2 + 6 * C * rest1 + 2 * rest2 + rest1**2)
    return var_lr / (var_rp + var_lr)


def per_rollout_terms(key, num_envs):
    """RP_t and LR_t [N, H] of each rollout, from the actions that ``rollout`` draws with the estimators' keys."""
    traj = jax.vmap(lambda k: rollout(k, ENV, POLICY, PARAMS, H))(batch_keys(key, num_envs))
    action = np.asarray(traj.action[..., 0], np.float64)
    reward = np.asarray(traj.reward, np.float64)
    to_go = np.cumsum(reward[:, ::-1], axis=1)[:, ::-1]
    return C * action, action / SIGMA**2 * to_go


def test_closed_form_weights_differ_per_step():
    """The problem tests something: the four weights are distinct and none is 0 or 1."""
    k = closed_form_weights()
    assert np.all(np.diff(np.sort(k)) > 0.02) and np.all((k > 0.7) & (k < 0.98)), k


@pytest.fixture(scope="module")
def pipps():
    estimate = estimators.inverse_variance(ENV, POLICY, horizon=H, num_envs=16384, baseline="none",
                                           variance_groups=2)
    return jax.jit(jax.vmap(lambda k: estimate(k, PARAMS)[1]["pathwise_weight_per_step"]))


def test_pipps_weights_are_the_inverse_variance_weights_of_each_group(pipps):
    """PIPPS weighs each step from the M rollouts of its group: k_t = Σ_i (ζ_LR − ζ̄_LR)² / (that + Σ_i (ζ_RP − ζ̄_RP)²)
    (the 1/M of the group mean scales both alike). Recomputed in float64 from the same draws; float32 rounding."""
    key = jax.random.PRNGKey(3)
    rp, lr = per_rollout_terms(key, 16384)
    spread = lambda x: ((x - x.mean(1, keepdims=True)) ** 2).sum(1)  # noqa: E731  [G, H]
    rp, lr = rp.reshape(2, 8192, H), lr.reshape(2, 8192, H)
    expected = (spread(lr) / (spread(rp) + spread(lr))).mean(0)
    measured = np.asarray(pipps(key[None]))[0]
    np.testing.assert_allclose(measured, expected, rtol=1e-4)


def test_pipps_weights_match_the_closed_form(pipps):
    """8 estimates, each the mean of 2 groups' weights from 8192 rollouts: |mean − exact| < 4 standard errors of
    the mean over the 8 (a chance failure has probability below 1e-3 per step with 7 degrees of freedom). The
    ratio of two sample variances is biased by O(1/M) ≈ 1e-4 here, far below the standard error (≈ 2e-3)."""
    measured = np.asarray(pipps(jax.random.split(jax.random.PRNGKey(4), 8)))
    stderr = measured.std(0, ddof=1) / np.sqrt(len(measured))
    exact = closed_form_weights()
    assert np.all(np.abs(measured.mean(0) - exact) < 4 * stderr), (measured.mean(0), exact, stderr)
    assert np.all(stderr < 0.01)  # precise enough to tell the steps apart (they differ by > 0.02)


@pytest.fixture(scope="module")
def per_step_inverse_variance():
    estimate = estimators.per_step_inverse_variance(ENV, POLICY, horizon=H, num_envs=4096, baseline="none", variance_groups=1024)
    return jax.jit(jax.vmap(lambda k: estimate(k, PARAMS)[1]["pathwise_weight_per_step"]))


def test_per_step_inverse_variance_weights_are_the_inverse_variance_weights_across_groups(per_step_inverse_variance):
    """per_step_inverse_variance weighs each step from the spread of the G group means: recomputed in float64 from the same draws."""
    key = jax.random.PRNGKey(5)
    rp, lr = per_rollout_terms(key, 4096)
    spread = lambda x: ((x - x.mean(0)) ** 2).sum(0)  # noqa: E731
    rp, lr = rp.reshape(1024, 4, H).mean(1), lr.reshape(1024, 4, H).mean(1)
    expected = spread(lr) / (spread(rp) + spread(lr))
    measured = np.asarray(per_step_inverse_variance(key[None]))[0]
    np.testing.assert_allclose(measured, expected, rtol=1e-4)


def test_per_step_inverse_variance_weights_match_the_closed_form(per_step_inverse_variance):
    """8 estimates from 1024 groups of 4 rollouts: |mean − exact| < 4 standard errors of the mean over the 8
    (7 degrees of freedom: a chance failure below 1e-3 per step). The variances come from 1023 degrees of
    freedom, so the ratio's own bias, O(1/G) ≈ 1e-3 times a small factor, stays below one standard error."""
    measured = np.asarray(per_step_inverse_variance(jax.random.split(jax.random.PRNGKey(6), 8)))
    stderr = measured.std(0, ddof=1) / np.sqrt(len(measured))
    exact = closed_form_weights()
    assert np.all(np.abs(measured.mean(0) - exact) < 4 * stderr), (measured.mean(0), exact, stderr)
    assert np.all(stderr < 0.01)
