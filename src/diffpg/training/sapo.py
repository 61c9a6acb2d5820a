"""SAPO: soft analytic policy optimization (Xing, Luk and Oh, "Stabilizing Reinforcement
Learning in Differentiable Multiphysics Simulation", ICLR 2025, arXiv 2412.12089).

SAPO is SHAC (``shac``) made maximum-entropy: SHAC's short windows
differentiated through the simulator, with a stochastic actor that maximizes
return *plus entropy*, soft state-value critics, twin critics and a
temperature α tuned towards a target entropy. The reference implementation is
mineral's ``agents/diffrl/shac.py`` (github etaoxing/mineral, MIT) with its
``DFlexAntSAPO`` configuration; this module is our own code for the same
equations, as small pure functions (hand-tested in tests/training/test_sapo.py)
and the ``update`` the trainer runs, which is built on them.

Notation, for environment i over a window of T steps: r_t the (scaled)
reward, h_t = −log πθ(a_t | ô_t) the entropy estimate of the reparameterized
action taken (the tanh-squashed Gaussian has no closed-form entropy), m_t
(``alive``) 1 while the episode runs, β_t SHAC's bootstrap weight
(``shac.bootstrap_weight``), ``ended_t`` / ``failed_t`` the episode ended
with step t / ended by failure (a time limit bootstraps, a failure does not).

The soft value of a state counts the entropy of the policy *at* that state,
so the entropy bonus behaves as a reward r̃_t = r_t + α m_t h_t, and every
SAPO quantity is the SHAC one with r replaced by r̃ (it reduces to SHAC at
α = 0). The actor ascends the soft window return (``actor_objective``)

    J(θ) = (1 / N T) Σ_i [ Σ_t γᵗ (r_t + α m_t h_t) + Σ_t γ^{t+1} β_t V̄(ô_{t+1}) ],

with V̄ the mean of the twin target critics (``twin_value``, "mean"); the
critics V_φ1, V_φ2 each regress onto the soft TD(λ) targets of r̃
(``soft_lambda_returns``), bootstrapped with the minimum of the two target
critics (clipped double V); and α = exp(log α) takes one Adam step on

    L(log α) = α · (mean h − Ĥ),   Ĥ = κ · dim(a)   (``temperature_loss``),

so α falls while the policy is more random than Ĥ and rises when it is less
(SAC's rule, Haarnoja et al. 2018b).

Each design choice is a ``sapo_*`` field of ``config.Sapo`` (the one source
of SAPO's defaults), so it can be switched off: the entropy in the actor
objective, the soft critic targets, the twin critics and the automatic
temperature (off: α stays at its initial value). With all of them off the
update is SHAC's with a stochastic actor and no target-critic lag beyond
``target_alpha``. What mineral does differently, and what is not done yet:
docs/algorithms.md.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from . import critic as critic_lib
from .bounds_loss import bounds_loss
from .normalizer import normalize
from .optimizer import guarded_step
from .shac import actor_objective as shac_actor_objective, bootstrap_weight, soft_update
from .window import Acting, run_window

ENTROPY_IN_ACTOR = ("return", "sum", "off")
TWIN_MODES = ("min", "mean", "first")


# ---------------------------------------------------------------- critics


def twin_value(v1, v2, mode: str):
    """Combine two critics' values: "min" (clipped double V, Fujimoto et al. 2018), "mean", or "first" (v1)."""
    if mode == "min":
        return jnp.minimum(v1, v2)
    if mode == "mean":
        return 0.5 * (v1 + v2)
    if mode == "first":
        return v1
    raise ValueError(f"twin mode must be one of {TWIN_MODES}, not {mode!r}")


def critics_value(values, mode: str):
    """``twin_value`` of [..., K] values of K = 1 or 2 critics (one critic: its own value, whatever the mode)."""
    if values.shape[-1] == 1:
        return values[..., 0]
    return twin_value(values[..., 0], values[..., 1], mode)


def soft_lambda_returns(reward, entropy, next_value, ended, failed, discount: float, lam: float, alpha):
    """Soft TD(λ) targets for one environment; every array is time-major of length T.

    The λ-return of ``critic.lambda_returns`` for the entropy-augmented reward
    r̃_t = r_t + α H_t (pass m_t h_t to leave out the steps after an episode's end):

        b_t = (1 − failed_t) V(s_{t+1}),
        G_t = r̃_t + γ [ b_t + λ (1 − ended_t) (G_{t+1} − b_t) ],     G_T ≡ b_{T−1}.

    The bootstrap V(s_{t+1}) is itself a soft value (it was fitted to these
    targets), so it already holds the entropy to come; nothing more is added at
    the window's tail. A failure bootstraps 0, a time limit V(s_{t+1}) of the
    state the episode was truncated in. α = 0 gives SHAC's targets exactly
    (mineral: ``compute_target_values_with_entropy``); α is never differentiated.
    """
    alpha = jax.lax.stop_gradient(alpha)
    return critic_lib.lambda_returns(reward + alpha * entropy, next_value, ended, failed, discount, lam)


# ---------------------------------------------------------------- actor


def actor_objective(reward, entropy, next_value, beta, alive, discount: float, alpha, mode: str = "return"):
    """SAPO's window objective J(θ), to be maximized, from [N, T] arrays.

        "return":  J = (1 / N T) Σ_i [ Σ_t γᵗ (r_t + α alive_t h_t) + Σ_t γ^{t+1} β_t V(s_{t+1}) ],
        "sum":     J = (1 / N T) Σ_i [ Σ_t γᵗ r_t + Σ_t γ^{t+1} β_t V(s_{t+1}) + α Σ_t alive_t h_t ],
        "off":     SHAC's J (``shac.actor_objective``).

    "return" is the maximum-entropy return of SAPO (mineral's
    ``entropy_in_return``; the trainer's ``sapo_entropy_in_actor``): the entropy
    is a reward, discounted like one, and the terminal soft value carries the
    entropy beyond the window. "sum" is mineral's alternative, an undiscounted
    entropy regularizer beside SHAC's objective (not offered by the trainer).
    The gradient reaches θ through the rewards and values (the simulator) and
    through h (the reparameterized sample and σθ); never through α. ``alive``
    masks the steps after an episode ended, where the windows keep stepping
    without reward.
    """
    if mode not in ENTROPY_IN_ACTOR:
        raise ValueError(f"entropy mode must be one of {ENTROPY_IN_ACTOR}, not {mode!r}")
    alpha = jax.lax.stop_gradient(alpha)
    bonus = alpha * alive * entropy
    if mode == "return":
        return shac_actor_objective(reward + bonus, next_value, beta, discount)
    objective = shac_actor_objective(reward, next_value, beta, discount)
    if mode == "sum":
        objective = objective + bonus.sum(axis=-1).mean() / reward.shape[-1]
    return objective


# ---------------------------------------------------------------- entropy


def gaussian_entropy(std):
    """H = Σ_i (½ log 2πe + log σ_i): the entropy of N(μ, diag σ²), over the last axis (mineral's
    ``use_distr_ent``: the Gaussian before the squash, whose tanh Jacobian it leaves out)."""
    return jnp.sum(0.5 * jnp.log(2.0 * jnp.pi * jnp.e) + jnp.log(std), axis=-1)


def normalized_entropy(entropy, target_entropy: float):
    """H̃ = (H + |Ĥ|) / (2 |Ĥ|): 0 at H = −|Ĥ|, ½ at H = 0 and 1 at H = |Ĥ| (mineral's
    ``offset_by_target_entropy`` with ``scale_by_target_entropy``), so α weighs entropy on the scale of the
    target whatever dim(a) is."""
    return (entropy + abs(target_entropy)) / (2.0 * abs(target_entropy))


# ---------------------------------------------------------------- temperature


def target_entropy(cfg, action_size: int) -> float:
    """Ĥ = κ · dim(a), κ = ``sapo_target_entropy`` (the paper's −0.5)."""
    return cfg.sapo_target_entropy * action_size


def temperature_optimizer(config) -> optax.GradientTransformation:
    """Adam on log α (β = (0.7, 0.95), as mineral), its gradient clipped like the other optimizers'."""
    return optax.chain(optax.clip_by_global_norm(config.optimizer.max_grad_norm),
                       optax.adam(config.sapo.sapo_temperature_lr, b1=0.7, b2=0.95))


def temperature_loss(log_alpha, entropy, target_entropy: float, weight=None, scale: float = 1.0):
    """L(log α) = c · α · (mean h − Ĥ), α = exp(log α), the entropy held fixed.

    Its gradient c α (mean h − Ĥ) lowers α while the policy's entropy is above
    the target and raises it below (SAC's temperature objective, Haarnoja et al.
    2018b, eq. 18, which SAPO adopts; mineral writes the loss in α, not log α).
    ``entropy`` is averaged with ``weight`` (the trainer's ``alive``) if given.
    The trainer uses c = |Ĥ| with ``sapo_normalize_entropy`` (mineral's ``unscale_entropy_alpha``: α
    multiplies H̃ = H / (2|Ĥ|) + ½ in the objectives, so α|Ĥ| is its weight on H itself) and c = 1 without.
    """
    entropy = jax.lax.stop_gradient(entropy)
    if weight is None:
        mean = entropy.mean()
    else:
        mean = critic_lib.weighted_mean(entropy, weight)
    return scale * jnp.exp(log_alpha) * (mean - target_entropy)


def temperature_update(optimizer: optax.GradientTransformation, log_alpha, opt_state, entropy,
                       target_entropy: float, weight=None, scale: float = 1.0):
    """One guarded optimizer step of log α on ``temperature_loss``: (log α, opt_state, loss, finite)."""
    loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, entropy, target_entropy, weight, scale)
    log_alpha, opt_state, finite = guarded_step(optimizer, grad, opt_state, log_alpha)
    return log_alpha, opt_state, loss, finite


# ---------------------------------------------------------------- the trainer's update


def init_learners(key, config, net, critic_optimizer, observation_size: int):
    """(critics, their optimizer state, temperature) of a SapoConfig: one or two critics stacked on a leading
    axis, and the temperature as {"log_alpha", "opt_state"}. One critic is initialized from ``key`` itself, as
    shac's is, so that sapo with its four design choices off starts where shac does."""
    cfg = config.sapo
    keys = jax.random.split(key, 2) if cfg.sapo_twin_critics else key[None]
    critics = jax.vmap(lambda k: net.init(k, jnp.zeros((observation_size,))))(keys)
    log_alpha = jnp.log(jnp.asarray(cfg.sapo_init_temperature, jnp.float32))
    temperature = {"log_alpha": log_alpha, "opt_state": temperature_optimizer(config).init(log_alpha)}
    return critics, jax.vmap(critic_optimizer.init)(critics), temperature


def update(parts, key, state, poison):
    """One SAPO update: (learner fields, window, metrics, finite)."""
    cfg, env, policy, net = parts.config.sapo, parts.env, parts.policy, parts.critic_net
    k_window, k_fit = jax.random.split(key)
    acting = Acting(policy, state.obs_stats, True)
    alpha = jnp.exp(state.temperature["log_alpha"])
    mode = "return" if cfg.sapo_entropy_in_actor else "off"
    critic_alpha = alpha if cfg.sapo_soft_targets else jnp.zeros_like(alpha)
    # [K] values of one observation, one per critic, from the target critics
    values = jax.vmap(lambda c, o: critic_lib.value(net, c, o), (0, None))
    per_step = lambda f: jax.vmap(jax.vmap(f))  # noqa: E731  over [N, T]

    goal = target_entropy(cfg, env.action_size)
    bonus = (lambda h: normalized_entropy(h, goal)) if cfg.sapo_normalize_entropy else (lambda h: h)  # noqa: E731

    def loss(params):
        window = run_window(k_window, env, acting, params, state.env_state, parts.config.budget.window)
        reward = window.traj.reward * cfg.reward_scale
        obs = normalize(state.obs_stats, window.traj.obs)
        if cfg.sapo_gaussian_entropy:
            entropy = per_step(lambda o: gaussian_entropy(policy.mean_std(params, o)[1]))(obs)
        else:
            entropy = -per_step(lambda o, a: policy.log_prob(params, o, a))(obs, window.traj.action)
        next_values = per_step(lambda o: values(state.target_critic, normalize(state.obs_stats, o)))(window.next_obs)
        loss = -actor_objective(reward, bonus(entropy), critics_value(next_values, "mean"), bootstrap_weight(window),
                                window.alive, cfg.discount, alpha, mode)
        if cfg.bound_penalty:
            loss = loss + cfg.bound_penalty * bounds_loss(policy, params, state.obs_stats, window.traj.obs)
        return loss, (window, jax.lax.stop_gradient((entropy, next_values)))

    (actor_loss, (window, (entropy, next_values))), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    grads = poison(grads)
    params, opt_state, actor_ok = guarded_step(parts.actor_optimizer, grads, state.opt_state, state.params)

    window = jax.lax.stop_gradient(window)
    target = jax.vmap(soft_lambda_returns, (0, 0, 0, 0, 0, None, None, None))(
        window.traj.reward * cfg.reward_scale, window.alive * bonus(entropy), critics_value(next_values, "min"),
        window.ended, window.failed, cfg.discount, cfg.gae_lambda, critic_alpha)
    obs = normalize(state.obs_stats, window.traj.obs).reshape(-1, env.observation_size)

    def fit(critic, critic_opt_state):
        return critic_lib.fit(k_fit, net, parts.critic_optimizer, critic, critic_opt_state, obs, target.reshape(-1),
                              window.alive.reshape(-1), epochs=cfg.critic_epochs, minibatches=cfg.critic_minibatches)

    critic, critic_opt_state, critic_loss, critic_ok = jax.vmap(fit)(state.critic, state.critic_opt_state)
    target_critic = soft_update(state.target_critic, critic, cfg.target_alpha)

    temperature, temperature_ok = state.temperature, jnp.array(True)
    if cfg.sapo_auto_temperature:
        log_alpha, alpha_opt_state, _, temperature_ok = temperature_update(
            temperature_optimizer(parts.config), temperature["log_alpha"], temperature["opt_state"], entropy,
            goal, window.alive, abs(goal) if cfg.sapo_normalize_entropy else 1.0)
        temperature = {"log_alpha": log_alpha, "opt_state": alpha_opt_state}
    metrics = {"grad_norm": optax.tree.norm(grads), "actor_loss": actor_loss, "critic_loss": critic_loss.mean(),
               "value": next_values.mean() / cfg.reward_scale, "alpha": alpha,
               "entropy": critic_lib.weighted_mean(entropy, window.alive)}
    fields = dict(params=params, opt_state=opt_state, critic=critic, critic_opt_state=critic_opt_state,
                  target_critic=target_critic, temperature=temperature)
    return fields, window, metrics, actor_ok & jnp.all(critic_ok) & temperature_ok
