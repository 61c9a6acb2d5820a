"""SAPO: soft analytic policy optimization (Xing, Luk and Oh, "Stabilizing Reinforcement
Learning in Differentiable Multiphysics Simulation", ICLR 2025, arXiv 2412.12089).

SAPO is SHAC (``shac``) made maximum-entropy. Within a window of T steps the
actor ascends, through the policy, the dynamics and the critics, the soft return

    J(θ) = (1 / N T) Σ_i [ Σ_{t<T} γᵗ m_t^i (c r_t^i + α h_t^i) + Σ_t γ^{t+1} β_t^i V̄(ô_{t+1}^i) ],

where h_t = −log πθ(a_t | ô_t) is the entropy estimate of the reparameterized
sample a_t itself (the tanh-squashed Gaussian has no closed-form entropy), m_t
is 1 while the episode runs, β is SHAC's bootstrap weight, and V̄ is the mean
of the twin target critics (the paper's actor bootstraps from their average).

The critics V_φ1, V_φ2 each regress onto the *soft* TD(λ) targets

    G_t = r̃_t + γ [ b_t + λ (1 − ended_t) (G_{t+1} − b_t) ],   r̃_t = c r_t + α m_t h_t,

with b_t = (1 − failed_t) min_k V_φ̄k(ô_{t+1}) (``returns.lambda_returns`` on soft
rewards): the soft value of s_t counts the entropy of the action taken at s_t.

The temperature α = exp(log α) is tuned towards a target entropy Ĥ = κ · dim(a)
(SAC, Haarnoja et al. 2018b) by one Adam step on

    L(log α) = α · (mean_t h_t − Ĥ),      ∂L/∂ log α = α (mean h − Ĥ),

so α falls while the policy is more random than Ĥ and rises when it is less.

Each design choice is a ``sapo_*`` field of ``TrainConfig``, so it can be
switched off: the entropy in the actor objective, the soft critic targets,
the twin critics and the automatic temperature (off: α stays at its initial
value). With all of them off and α's initial value 0 the update is SHAC's
with a stochastic actor.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from . import critic as critic_lib
from .bounds_loss import bounds_loss
from .normalizer import normalize
from .optimizer import guarded_step
from .returns import lambda_returns
from .shac import actor_objective as shac_objective, bootstrap_weight, soft_update
from .window import Acting, run_window


def soft_rewards(reward, entropy, alive, alpha):
    """r̃_t = r_t + α m_t h_t, elementwise: the reward with the entropy bonus of the steps still running."""
    return reward + alpha * alive * entropy


def actor_objective(reward, entropy, alive, next_value, beta, alpha, discount: float):
    """The soft J(θ) of the module docstring from [N, T] arrays (rewards already scaled)."""
    return shac_objective(soft_rewards(reward, entropy, alive, alpha), next_value, beta, discount)


def soft_targets(reward, entropy, alive, next_value, ended, failed, alpha, discount: float, lam: float):
    """Soft TD(λ) targets G_t for one environment (time-major arrays of length T)."""
    return lambda_returns(soft_rewards(reward, entropy, alive, alpha), next_value, ended, failed, discount, lam)


def temperature_loss(log_alpha, entropy, alive, target_entropy: float):
    """L(log α) = α · (mean h − Ĥ), the mean over the steps taken while the episode ran."""
    mean_entropy = jnp.sum(alive * entropy) / jnp.maximum(jnp.sum(alive), 1.0)
    return jnp.exp(log_alpha) * (jax.lax.stop_gradient(mean_entropy) - target_entropy)


def temperature_optimizer(cfg) -> optax.GradientTransformation:
    """Adam on log α (the paper's β = (0.7, 0.95)), clipped like the other optimizers."""
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                       optax.adam(cfg.sapo_temperature_lr, b1=0.7, b2=0.95))


def target_entropy(cfg, action_size: int) -> float:
    """Ĥ = κ · dim(a)."""
    return cfg.sapo_target_entropy * action_size


def init_learners(key, cfg, net, critic_optimizer, observation_size: int):
    """(critics, their optimizer state, temperature): one or two critics stacked on a leading axis, and
    the temperature as {"log_alpha", "opt_state"}."""
    count = 2 if cfg.sapo_twin_critics else 1
    critics = jax.vmap(lambda k: net.init(k, jnp.zeros((observation_size,))))(jax.random.split(key, count))
    log_alpha = jnp.log(jnp.asarray(cfg.sapo_init_temperature, jnp.float32))
    temperature = {"log_alpha": log_alpha, "opt_state": temperature_optimizer(cfg).init(log_alpha)}
    return critics, jax.vmap(critic_optimizer.init)(critics), temperature


def update(parts, key, state, poison):
    """One SAPO update: (learner fields, window, metrics, finite)."""
    cfg, env, policy, net = parts.config, parts.env, parts.policy, parts.critic_net
    k_window, k_fit = jax.random.split(key)
    acting = Acting(policy, state.obs_stats, True)
    alpha = jnp.exp(state.temperature["log_alpha"])
    actor_alpha = alpha if cfg.sapo_entropy_in_actor else jnp.zeros_like(alpha)
    critic_alpha = alpha if cfg.sapo_soft_targets else jnp.zeros_like(alpha)
    # [K] values of one observation, one per critic, from the target critics
    values = jax.vmap(lambda c, o: critic_lib.value(net, c, o), (0, None))
    per_step = lambda f: jax.vmap(jax.vmap(f))  # noqa: E731  over [N, T]

    def loss(params):
        window = run_window(k_window, env, acting, params, state.env_state, cfg.window)
        reward = window.traj.reward * cfg.reward_scale
        obs = normalize(state.obs_stats, window.traj.obs)
        entropy = -per_step(lambda o, a: policy.log_prob(params, o, a))(obs, window.traj.action)
        next_values = per_step(lambda o: values(state.target_critic, normalize(state.obs_stats, o)))(window.next_obs)
        loss = -actor_objective(reward, entropy, window.alive, next_values.mean(-1), bootstrap_weight(window),
                                actor_alpha, cfg.discount)
        if cfg.bound_penalty:
            loss = loss + cfg.bound_penalty * bounds_loss(policy, params, state.obs_stats, window.traj.obs)
        return loss, (window, jax.lax.stop_gradient((entropy, next_values)))

    (actor_loss, (window, (entropy, next_values))), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    grads = poison(grads)
    params, opt_state, actor_ok = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)

    window = jax.lax.stop_gradient(window)
    target = jax.vmap(soft_targets, (0, 0, 0, 0, 0, 0, None, None, None))(
        window.traj.reward * cfg.reward_scale, entropy, window.alive, next_values.min(-1), window.ended,
        window.failed, critic_alpha, cfg.discount, cfg.gae_lambda)
    obs = normalize(state.obs_stats, window.traj.obs).reshape(-1, env.observation_size)

    def fit(critic, critic_opt_state):
        return critic_lib.fit(k_fit, net, parts.critic_optimizer, critic, critic_opt_state, obs, target.reshape(-1),
                              window.alive.reshape(-1), epochs=cfg.critic_epochs, minibatches=cfg.critic_minibatches)

    critic, critic_opt_state, critic_loss, critic_ok = jax.vmap(fit)(state.critic, state.critic_opt_state)
    target_critic = soft_update(state.target_critic, critic, cfg.target_alpha)

    temperature, temperature_ok = state.temperature, jnp.array(True)
    if cfg.sapo_auto_temperature:
        alpha_grad = jax.grad(temperature_loss)(temperature["log_alpha"], entropy, window.alive,
                                                target_entropy(cfg, env.action_size))
        log_alpha, alpha_opt_state, temperature_ok = guarded_step(
            temperature_optimizer(cfg), alpha_grad, temperature["opt_state"], temperature["log_alpha"])
        temperature = {"log_alpha": log_alpha, "opt_state": alpha_opt_state}
    metrics = {"grad_norm": optax.tree.norm(grads), "actor_loss": actor_loss, "critic_loss": critic_loss.mean(),
               "value": next_values.mean() / cfg.reward_scale, "alpha": alpha,
               "entropy": jnp.sum(window.alive * entropy) / jnp.maximum(jnp.sum(window.alive), 1.0)}
    fields = dict(params=params, opt_state=opt_state, critic=critic, critic_opt_state=critic_opt_state,
                  target_critic=target_critic, temperature=temperature)
    return fields, window, metrics, actor_ok & jnp.all(critic_ok) & temperature_ok
