"""``auto``: pathwise where it is trustworthy, score function where it is not, measured on the same rollouts.

From one batch of N rollouts, split into G independent groups, it forms per group:

- P_k, the pathwise gradient, through every reparameterized and
  differentiable node, with the environment's discrete events held fixed;
- S_k, the ``surrogate`` gradient: P_k plus the score terms T_k of the
  discrete nodes (a Categorical policy's actions, the environment's events);
- Y_k, the score function, Σ_t γᵗ ∇θ log π(a_t|s_t) (G_t − b_t), from the very
  same rollouts (no extra samples: the actions were reparameterized draws, so
  both apply; a gradient-free first pass over the batch forms the
  leave-one-out baselines from all N − 1 other rollouts).

Y and S are unbiased whenever the policy's log-density is right and the
rollout has no jumps; P also needs the events' score terms to be negligible.
The first-order estimate can still be biased by a discontinuity (Suh et al.,
ICML 2022), and explodes with the horizon in a chaotic system (Parmas et al.,
ICML 2018), but it is often far less noisy than Y. So ``auto`` measures
them, with per-rollout variances and covariances from the spread across
groups (``combine``), and decides with one test used twice: whether two
estimates A and B have the same mean, by the sign-flip randomization test on
the group differences A_k − B_k (``combine.sign_flip_pvalue``), exact in any
dimension at level δ = 1 − ``confidence``.

1. Events: for a reparameterized policy in an environment with discrete
   events, X = S if the event score terms are detectably non-zero (S against P
   rejects), else X = P, whose bias is then below the noise and whose
   variance is lower. Otherwise X = S (= P when there are no events; for a
   non-reparameterized policy the score terms are the whole gradient).
2. Bias: if X against Y rejects, X is biased (a jump, or a wrong model of the
   events) and α = 0: the score function alone.
3. Otherwise both are taken as unbiased and mixed with the variance-minimizing
   weight α* = (σ²_Y − σ_XY) / (σ²_X + σ²_Y − 2σ_XY) (clipped to [0, 1]),

       ĝ = α X̄ + (1 − α) Ȳ.

Step 3 alone is inverse-variance weighting, which cannot see bias (a
zero-variance, zero-valued pathwise gradient would take all the weight);
step 2 is what lets ``auto`` refuse it. It can only refuse what one batch can
see: a bias smaller than the noise of X − Y passes, and is mixed in. The
level δ trades the two errors: a false alarm costs the score function's
variance (large where the pathwise gradient is much better, as on the LQR),
a miss costs the bias (as on ``ball_wall``). The default δ = 0.001 was
chosen by measuring both on the built-in environments; the test is exact only
for symmetric group noise, and groups of a few rollouts with skewed returns
raise a false alarm more often than δ. With G groups no p-value falls below
2^{1−G}, so the test needs G ≥ 11 to reject at δ = 0.001. With
exact moments the mixture's variance is at most that of the better of X and Y
at the same N H environment steps; with moments from G groups it is close to
it. The weights are estimated from the same rollouts they weigh, a
correlation of order 1/G; more groups (``variance_groups``) make it smaller.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from .batch import batch_keys, check_settings, standard_diagnostics
from .combine import flatten_groups, mixing_weight, moments, sign_flip_pvalue, variance
from .surrogate import check_surrogate_settings, is_reparameterized, surrogate_rollouts
from .surrogates import alive_mask, pathwise_surrogate, reward_to_go, score_function_surrogate


def z_statistic(a, b, num_rollouts: int, per_group: int):
    """√(N ‖Ā − B̄‖² / tr Cov[A − B]) from group estimates [G, P]: about 1 when A and B have the same mean."""
    difference = a - b
    mean = difference.mean(0)
    spread = variance(difference, per_group)
    return jnp.sqrt(num_rollouts * (mean @ mean) / jnp.where(spread > 0, spread, jnp.inf))


def auto(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, baseline="leave_one_out",
         confidence: float = 0.999, variance_groups: int = 16):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: a bias-checked, variance-optimal mix.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob``.
      horizon, num_envs, discount: as for ``pathwise``.
      baseline: b_t of the score-function terms (``"leave_one_out"`` over the batch, ``"none"``, ``value(obs)``).
      confidence: 1 − δ, δ the level of the tests; higher means harder to call a difference real.
      variance_groups: G, the groups the moments and the tests are estimated from.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``alpha`` (weight of the first-order
      estimate), ``biased`` (1.0 when the bias test fired), ``bias_pvalue`` (its p-value),
      ``bias_statistic`` (z = √(N ‖X̄ − Ȳ‖² / tr Cov[X − Y]), about 1 without bias),
      ``event_terms`` (1.0 when the first-order estimate keeps the discrete nodes' score terms),
      ``variance_first_order``, ``variance_score_function`` (per rollout) and ``env_steps``.
    """
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, needs_log_prob=True, estimator="the auto estimator")
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be a number in (0, 1), got {confidence!r}")
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline,
                                      estimator="the auto estimator")
    per_group = num_envs // groups
    level = 1.0 - confidence
    first_pass, run, has_score_nodes = surrogate_rollouts(env, policy, horizon=horizon, discount=discount,
                                                          baseline=baseline)
    reparameterized = is_reparameterized(policy)

    def objectives(params_pair, inputs):
        """(surrogate + score function, pathwise) means over a group, and the returns."""
        params_x, params_y = params_pair
        keys, baselines, traj, advantage = inputs
        values, traj_x, _, returns = run(params_x, keys, baselines)
        pathwise = jax.vmap(pathwise_surrogate, (0, None))(traj_x.reward, discount)
        log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(params_y, traj.obs, traj.action)
        score = jax.vmap(score_function_surrogate, (0, 0, None))(log_prob, advantage, discount)
        return (values.mean() + score.mean(), pathwise.mean()), returns

    def group_split(inputs):
        return jax.tree.map(lambda x: x.reshape((groups, per_group) + x.shape[1:]), inputs)

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        traj, baselines = first_pass(params, keys)
        returns_to_go = jax.vmap(reward_to_go, (0, None))(traj.reward, discount)
        advantage = (returns_to_go - baselines) * jax.vmap(alive_mask)(traj.done)
        inputs = group_split((keys, baselines, traj, advantage))
        events = reparameterized and has_score_nodes(params, keys[0])
        if events:  # two backward passes: the surrogate (with Y) and the pathwise part alone
            jacobian = jax.jacrev(objectives, has_aux=True)
            ((grads_s, grads_y), (grads_p, _)), returns = jax.vmap(jacobian, (None, 0))((params, params), inputs)
        else:
            def first(pair, inp):
                (total, _), returns = objectives(pair, inp)
                return total, returns

            gradient = jax.grad(first, has_aux=True)
            (grads_s, grads_y), returns = jax.vmap(gradient, (None, 0))((params, params), inputs)
        s, unravel = flatten_groups(grads_s)
        y, _ = flatten_groups(grads_y)
        k_events, k_bias = jax.random.split(jax.random.fold_in(key, 1))
        if events:
            p, _ = flatten_groups(grads_p)
            keep_events = sign_flip_pvalue(k_events, s - p) < level
            x = jnp.where(keep_events, s, p)
        else:
            keep_events = jnp.asarray(has_score_nodes(params, keys[0]))
            x = s
        var_x, var_y, cov = moments(x, y, per_group)
        pvalue = sign_flip_pvalue(k_bias, x - y)
        biased = pvalue < level
        alpha = jnp.where(biased, 0.0, mixing_weight(var_x, var_y, cov))
        grad = alpha * x.mean(0) + (1.0 - alpha) * y.mean(0)
        spread = alpha**2 * var_x + (1.0 - alpha) ** 2 * var_y + 2.0 * alpha * (1.0 - alpha) * cov
        diagnostics = {**standard_diagnostics(returns.reshape(-1), jnp.linalg.norm(grad), spread),
                       "alpha": alpha, "biased": biased.astype(jnp.float32),
                       "bias_pvalue": pvalue, "bias_statistic": z_statistic(x, y, num_envs, per_group),
                       "event_terms": keep_events.astype(jnp.float32),
                       "variance_first_order": var_x, "variance_score_function": var_y,
                       "env_steps": num_envs * horizon}
        return unravel(grad), diagnostics

    return estimate
