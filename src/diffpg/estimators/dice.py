"""The stochastic-computation-graph (DiCE) surrogate: each random variable gets exactly one estimator.

A rollout is a stochastic computation graph (Schulman et al., NeurIPS 2015,
"Gradient Estimation Using Stochastic Computation Graphs"). Its random
variables are of two kinds:

- reparameterizable ones, written as a differentiable function of θ and noise
  that does not depend on θ (Gaussian actions a = μθ(s) + σ ξ): the gradient
  goes *through* them, pathwise;
- the others, whose value has no derivative (a discrete action drawn from a
  Categorical policy; a discrete event inside the environment's step, such as
  the gust of ``diffpg.envs.WindGust``, exposed as the state's
  ``event_log_prob``): they get a score-function term.

With w_t the summed log-probabilities of the non-reparameterizable variables
drawn at step t (differentiable in θ *through the state*, which is correct:
their parents are deterministic functions of θ and the fixed noise), the DiCE
objective of Foerster et al. (ICML 2018), with the baseline term of Mao et al.
(2019), is

    L = Σ_t γᵗ r_t · ⊡(Σ_{t'≤t} w_{t'}) + Σ_t γᵗ (1 − ⊡(w_t)) b_t,     ⊡(x) = exp(x − stop_gradient(x))

whose value is the return and whose gradient is

    ∇θ L = Σ_t γᵗ ∇θ r_t  +  Σ_t γᵗ ∇θ w_t · (G_t − b_t)

(the magic box ⊡ evaluates to 1 and differentiates to ∇x; its higher
derivatives are also right). The first sum is the pathwise gradient through
every reparameterized and deterministic node, with the discrete outcomes held
fixed; the second is the score function at the discrete nodes, with reward-to-go
G_t and a baseline b_t (see ``baselines``). Using both estimators for the same
variable would count its effect twice, so a non-reparameterized policy's
actions are cut from the pathwise graph (``stop_gradient``) and get the score
term, and a reparameterized policy's actions get no score term.

With a Gaussian policy and a deterministic, differentiable environment there
are no discrete nodes and this is exactly the pathwise estimator. With a
Categorical policy on a finite MDP it is exactly the score-function estimator.
On ``wind_gust`` it is the pathwise gradient plus the gust's score term, the
one that a pathwise gradient alone misses.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from ..errors import ConfigError
from ..rollouts import rollout
from ..types import float_dtype
from .baselines import baseline_values, check_baseline
from .batch import batch_groups, batch_keys, check_settings, group_estimate, group_gradients
from .objectives import alive_mask, discount_weights, mask_ended, pathwise_surrogate, reward_to_go
from .validate import require_gradient, validated


def is_reparameterized(policy) -> bool:
    """Whether ``policy.sample`` is a differentiable function of θ (the protocol's default: yes).

    A policy says otherwise with ``reparameterized = False`` (``diffpg.policies.Categorical`` does).
    """
    return bool(getattr(policy, "reparameterized", True))


@struct.dataclass
class Acting:
    """``policy`` acting another way in a rollout: its ``sample`` is ``act(policy, key, params, obs)``."""

    policy: object = struct.field(pytree_node=False)
    act: Callable = struct.field(pytree_node=False)

    def init(self, key, observation_size):
        return self.policy.init(key, observation_size)

    def sample(self, key, params, obs):
        return self.act(self.policy, key, params, obs)

    def log_prob(self, params, obs, action):
        return self.policy.log_prob(params, obs, action)


def detached(policy, key, params, obs):
    """The policy's action with the gradient cut, so that it takes part in a rollout as a constant."""
    return jax.lax.stop_gradient(policy.sample(key, params, obs))


def magic_box(x):
    """⊡(x) = exp(x − stop_gradient(x)): 1 in value, ∇x in derivative (Foerster et al., 2018)."""
    return jnp.exp(x - jax.lax.stop_gradient(x))


def dice_surrogate(reward, node_log_prob, baseline, alive, discount: float):
    """L for one rollout (time-major arrays [H]); ``reward`` differentiable, ``baseline`` a constant."""
    weights = discount_weights(reward.shape[0], discount, reward.dtype)
    rewards = jnp.sum(weights * reward * magic_box(jnp.cumsum(node_log_prob)))
    baseline_terms = (1.0 - magic_box(node_log_prob)) * jax.lax.stop_gradient(baseline)
    baselines = jnp.sum(weights * jnp.where(alive > 0, baseline_terms, 0.0))
    return rewards + baselines


def node_log_probs(policy, params, traj, reparameterized: bool):
    """w_t: log π(a_t|s_t) for non-reparameterized actions plus the environment's event log-probabilities."""
    nodes = jnp.zeros_like(traj.reward)
    if not reparameterized:
        nodes = nodes + jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(
            params, traj.obs, jax.lax.stop_gradient(traj.action))
    if traj.event_log_prob is not None:
        nodes = nodes + traj.event_log_prob
    return nodes


def surrogate_rollouts(env, policy, *, horizon: int, discount: float, baseline="leave_one_out"):
    """The two passes of every estimator built on the surrogate, for a batch of rollouts.

    ``first_pass(params, keys) -> (traj, baselines)``: the rollouts without gradient, and the baselines
    b_t [N, H] formed over the whole batch (the leave-one-out mean uses all N − 1 other rollouts).
    ``run(params, keys, baselines) -> (L per rollout, traj, advantage G_t − b_t while alive, returns)``:
    the same rollouts again, differentiable, with the baselines held fixed.
    """
    reparameterized = is_reparameterized(policy)
    acting = policy if reparameterized else Acting(policy, detached)

    def rollouts(params, keys):
        return jax.vmap(lambda k: rollout(k, env, acting, params, horizon))(keys)

    def first_pass(params, keys):
        traj = rollouts(jax.lax.stop_gradient(params), keys)
        returns_to_go = jax.vmap(reward_to_go, (0, None))(traj.reward, discount)
        return traj, baseline_values(baseline, traj.obs, returns_to_go)

    def run(params, keys, baselines):
        traj = rollouts(params, keys)
        nodes = node_log_probs(policy, params, traj, reparameterized)
        returns_to_go = jax.lax.stop_gradient(jax.vmap(reward_to_go, (0, None))(traj.reward, discount))
        alive = jax.vmap(alive_mask)(traj.done)
        values = jax.vmap(dice_surrogate, (0, 0, 0, 0, None))(traj.reward, nodes, baselines, alive, discount)
        returns = jax.vmap(pathwise_surrogate, (0, None))(jax.lax.stop_gradient(traj.reward), discount)
        return values, traj, jax.vmap(mask_ended)(returns_to_go - baselines, traj.done), returns

    def has_score_nodes(params, key):
        """Whether any variable needs a score term (decided at trace time from the rollout's structure)."""
        traj = jax.eval_shape(lambda k: rollout(k, env, acting, params, 1), key)
        return not reparameterized or traj.event_log_prob is not None

    return first_pass, run, has_score_nodes


def surrogate_gradients(env, policy, *, horizon: int, discount: float, baseline, groups):
    """``gradients(keys, params) -> (per-group gradients [G, ...], returns [N])`` of the surrogate L, N = len(keys).

    The gradient-free first pass that forms the baselines runs only when there are score-function
    nodes to baseline (a non-reparameterized policy, or events in the environment).
    """
    first_pass, run, has_score_nodes = surrogate_rollouts(env, policy, horizon=horizon, discount=discount,
                                                          baseline=baseline)

    def objective(params, inputs):
        keys, baselines = inputs
        values, _, _, returns = run(params, keys, baselines)
        return values.mean(), returns

    def gradients(keys, params):
        if has_score_nodes(params, keys[0]) and baseline != "none":
            _, baselines = first_pass(params, keys)
        else:
            baselines = jnp.zeros((keys.shape[0], horizon), float_dtype(*jax.tree.leaves(params)))
        return group_gradients(objective, params, (keys, baselines), groups)

    return gradients


def check_surrogate_settings(env, policy, *, horizon, num_envs, discount, variance_groups, baseline,
                             estimator="the surrogate estimator", min_group_size: int = 1, needs_log_prob=None):
    """The settings check of every estimator built on the surrogate (and of a gradient through ``env.step``);
    returns the ``batch.Groups``. ``needs_log_prob`` defaults to what the surrogate alone needs."""
    require_gradient(env, estimator)
    if needs_log_prob is None:
        needs_log_prob = not is_reparameterized(policy)
    check_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                   variance_groups=variance_groups, needs_log_prob=needs_log_prob, estimator=estimator)
    check_baseline(baseline, num_envs, estimator)
    return batch_groups(num_envs, variance_groups, min_size=min_group_size, estimator=estimator)


def check_confidence(confidence) -> None:
    """One sentence unless ``confidence`` (1 − δ of a mixture's test) is a float in (0, 1)."""
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be a number in (0, 1), got {confidence!r}")


def surrogate(env, policy, *, horizon: int, num_envs: int, discount: float = 1.0,
              baseline="leave_one_out", variance_groups: int = 8):
    """Build ``estimate(key, params) -> (grad, diagnostics)``: the DiCE / stochastic-computation-graph gradient.

    Args:
      env, policy: the Env and Policy protocols. A policy with ``reparameterized = False`` needs ``log_prob``;
        an environment whose states carry ``event_log_prob`` gets the score term of its events.
      horizon, num_envs, discount, variance_groups: as for ``pathwise``.
      baseline: ``"leave_one_out"`` (over the other N − 1 rollouts), ``"none"``, or ``value(obs) -> scalar``;
        it only matters where there are score-function nodes.

    Returns:
      ``estimate``, jit-able, with the diagnostics of ``pathwise`` plus ``env_steps``.

    Example:
      >>> import jax, diffpg
      >>> env, policy = diffpg.make("wind_gust"), diffpg.policies.LinearGaussian(action_size=1)
      >>> estimate = diffpg.estimators.surrogate(env, policy, horizon=20, num_envs=256)
      >>> key = jax.random.PRNGKey(0)
      >>> grad, diag = jax.jit(estimate)(key, policy.init(key, env.observation_size))
      >>> jax.tree.map(jax.numpy.shape, grad)
      {'K': (1, 2), 'log_std': (1,)}
      >>> int(diag["env_steps"])
      5120
    """
    groups = check_surrogate_settings(env, policy, horizon=horizon, num_envs=num_envs, discount=discount,
                                      variance_groups=variance_groups, baseline=baseline)
    gradients = surrogate_gradients(env, policy, horizon=horizon, discount=discount, baseline=baseline,
                                    groups=groups)

    def estimate(key, params):
        grads, returns = gradients(batch_keys(key, num_envs), params)
        grad, diagnostics = group_estimate(grads, groups, returns)
        return grad, {**diagnostics, "env_steps": num_envs * horizon}

    return validated(estimate, env, policy, estimator="the surrogate estimator")
