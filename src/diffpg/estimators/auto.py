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
groups (``combine``). Whether two estimates A and B have the same mean is
tested by the sign-flip randomization test on the group differences
A_k − B_k (``combine.sign_flip_pvalue``), exact in any dimension at level
δ = 1 − ``confidence`` for symmetric group noise.

1. Events: for a reparameterized policy in an environment with discrete
   events, X = β P + (1 − β) S, with β the weight of step 2 for P (which may
   be biased: it misses the events' score terms) against S (unbiased): P
   while the event terms are within the noise, S as they stand out, and
   in between a mix, whatever has the least estimated error. Otherwise X = S
   (= P when there are no events; for a non-reparameterized policy the
   score terms are the whole gradient).
2. Weight: Y is unbiased, X may not be. With b the bias of X, the mixture
   ĝ = α X̄ + (1 − α) Ȳ has mean squared error
   α² ‖b‖² + (α² σ²_X + (1 − α)² σ²_Y + 2α(1 − α) σ_XY) / N, minimized by

       α = (σ²_Y − σ_XY) / (N ‖b‖² + σ²_{X−Y}),   clipped to [0, 1],

   and ‖b‖² is taken as ℓ², the square of a lower confidence bound on ‖b‖
   at level δ (``combine.bias_lower_bound``, ``combine.bias_aware_weight``):

       ℓ = max(0, ‖X̄ − Ȳ‖ − r),   r = √(σ²_{X−Y} / N) + √(2 λ_max log(1/δ) / N),

   r the radius that ‖X̄ − Ȳ − b‖ exceeds with probability at most δ for
   Gaussian group means (λ_max the largest eigenvalue of Cov[X − Y]). While
   X̄ − Ȳ is within r, ℓ = 0 and α is the variance-minimizing weight
   α* = (σ²_Y − σ_XY) / (σ²_X + σ²_Y − 2σ_XY) (``combine.mixing_weight``;
   inverse-variance weighting when X and Y are uncorrelated); beyond it α
   falls as 1 / (N ℓ²), to 0 for a confidently wrong X such as the zero
   pathwise gradient of a step. σ_XY is shrunk toward 0 by its noise
   (``combine.shrunk_covariance``): where Y is hundreds of times noisier
   than X, the covariance's noise would otherwise scatter a weight that
   belongs near 1 by about (σ_X/σ_Y)/√(G−1), at a cost of that squared
   times σ²_Y.
3. Report: the sign-flip test of X against Y gives ``bias_pvalue`` and
   ``biased`` (p < δ). It is the more powerful detector (it uses the
   direction of every group's difference, not only the norm of their mean),
   but its exactness needs symmetric group noise, so it is a report, not a
   switch on the weight: a test can reject while ℓ = 0, and then α stays
   variance-minimizing.

Inverse-variance weighting alone cannot see bias (a zero-variance,
zero-valued pathwise gradient would take all the weight); the bias term of
step 2 is what lets ``auto`` refuse it. It can only refuse what one batch can
confirm: a bias below r is mixed in at a cost below r² ≈ (1 + √(2 log(1/δ)
λ_max / σ²_{X−Y}))² σ²_{X−Y} / N, a few times the noise of X̄ − Ȳ when that
noise is spread over many directions.

Why a lower bound and not the estimate ‖X̄ − Ȳ‖² − σ²_{X−Y}/N, unbiased for
‖b‖²: the weights are estimated from the groups they weigh, and with a
heavy-tailed Y (``wind_gust``: the score function's variance is 600 times
the pathwise one, and its group means are skewed) a batch that misses the
tail has Ȳ a few standard errors off in a direction all groups share. The
sign-flip test then rejects far more often than δ (in 2 of 256 batches at
δ = 0.001), the plug-in ‖b‖² reads Ȳ's excursion as X's bias, and the weight
moves to Ȳ, the very estimate that strayed: that one batch cost 79 times the
pathwise MSE. The same excursion stays inside r. An earlier version set
α = 0 whenever the test rejected; another switched to the plug-in weight when
it did; ``benchmarks/auto_mse.py`` measures the difference.

The weights' correlation with the estimates they weigh (order 1/G) is
kept on purpose: a batch whose pathwise groups contain a chaotic outlier
shows a large σ²_X and moves weight to Y in that very batch, which is where
most of the gain on ``pendulum`` and ``double_pendulum`` comes from.
Cross-fitting (weights for one half of the groups from the other half)
removes the correlation and loses that gain. With G groups no p-value falls
below 2^{1−G}, so the test needs G ≥ 11 to report a bias at δ = 0.001.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .batch import Groups, batch_keys, flatten_groups, group_gradients, group_mean, standard_diagnostics
from .combine import bias_aware_weight, mixture, moments, sign_flip_pvalue, variance
from .dice import check_confidence, check_surrogate_settings, is_reparameterized, surrogate_rollouts
from .objectives import mask_ended, pathwise_surrogate, reward_to_go, score_function_surrogate
from .validate import validated


def z_statistic(a, b, groups: Groups):
    """√(N ‖Ā − B̄‖² / tr Cov[A − B]) from group estimates [G, P]: about 1 when A and B have the same mean."""
    difference = a - b
    mean = group_mean(difference, groups)
    spread = variance(difference, groups)
    return jnp.sqrt(groups.num_envs * (mean @ mean) / jnp.where(spread > 0, spread, jnp.inf))


def auto(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0, baseline="leave_one_out",
         confidence: float = 0.999, variance_groups: int = 16):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the mix of first-order and score function with least estimated MSE.

    Args:
      env, policy: the Env and Policy protocols; the policy needs ``log_prob``.
      horizon, num_envs, discount: as for ``pathwise``.
      baseline: b_t of the score-function terms (``"leave_one_out"`` over the batch, ``"none"``, ``value(obs)``).
      confidence: 1 − δ: the level of the lower confidence bound on the bias (steps 1 and 2) and of
        the ``biased`` report.
      variance_groups: G, the groups the moments and the tests are estimated from.

    Returns:
      ``estimate``, jit-able; diagnostics as for ``pathwise`` plus ``alpha`` (weight of the first-order
      estimate), ``biased`` (1.0 when the bias test fired), ``bias_pvalue`` (its p-value),
      ``bias_statistic`` (z = √(N ‖X̄ − Ȳ‖² / tr Cov[X − Y]), about 1 without bias),
      ``event_terms`` (1 − β, the weight of the discrete nodes' score terms in the first-order estimate),
      ``variance_first_order``, ``variance_score_function`` (per rollout) and ``env_steps``;
      ``diffpg.estimators.auto_choice(diagnostics)`` says the choice in words.
    """
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline,
                                      estimator="the auto estimator", needs_log_prob=True)
    check_confidence(confidence)
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

    def estimate(key, params):
        keys = batch_keys(key, num_envs)
        traj, baselines = first_pass(params, keys)
        returns_to_go = jax.vmap(reward_to_go, (0, None))(traj.reward, discount)
        advantage = jax.vmap(mask_ended)(returns_to_go - baselines, traj.done)
        inputs = (keys, baselines, traj, advantage)
        events = reparameterized and has_score_nodes(params, keys[0])
        if events:  # two backward passes: the surrogate (with Y) and the pathwise part alone
            ((grads_s, grads_y), (grads_p, _)), returns = group_gradients(
                objectives, (params, params), inputs, groups, differentiate=jax.jacrev)
        else:
            def first(pair, inp):
                (total, _), returns = objectives(pair, inp)
                return total, returns

            (grads_s, grads_y), returns = group_gradients(first, (params, params), inputs, groups)
        s, unravel = flatten_groups(grads_s)
        y, _ = flatten_groups(grads_y)
        k_events, k_bias = jax.random.split(jax.random.fold_in(key, 1))

        def weight(a, b, key):
            """Weight of A (maybe biased) against B (unbiased) (step 2), and the p-value of their difference (step 3)."""
            return bias_aware_weight(a, b, groups, confidence), sign_flip_pvalue(key, a - b, groups)

        if events:
            p, _ = flatten_groups(grads_p)
            beta, _ = weight(p, s, k_events)
            x = beta * p + (1.0 - beta) * s
            event_weight = 1.0 - beta
        else:
            x = s
            event_weight = jnp.asarray(has_score_nodes(params, keys[0]), jnp.float32)
        var_x, var_y, cov = moments(x, y, groups)
        alpha, pvalue = weight(x, y, k_bias)
        biased = pvalue < level
        grad, spread = mixture(alpha, x, y, groups, var_x, var_y, cov)
        diagnostics = {**standard_diagnostics(returns, grad, spread),
                       "alpha": alpha, "biased": biased.astype(jnp.float32),
                       "bias_pvalue": pvalue, "bias_statistic": z_statistic(x, y, groups),
                       "event_terms": event_weight,
                       "variance_first_order": var_x, "variance_score_function": var_y,
                       "env_steps": num_envs * horizon}
        return unravel(grad), diagnostics

    return validated(estimate, env, policy, estimator="the auto estimator")
