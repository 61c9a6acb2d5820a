"""SAPO's mathematics as small pure functions (not yet a training algorithm).

SAPO, soft analytic policy optimization (Xing, Luk and Oh, "Stabilizing
Reinforcement Learning in Differentiable Multiphysics Simulation", ICLR 2025,
arXiv 2412.12089), is maximum-entropy first-order RL: SHAC's short windows
differentiated through the simulator (``shac``), with a stochastic actor that
maximizes return *plus entropy*, soft state-value critics, twin critics and a
temperature α tuned towards a target entropy. The reference implementation is
mineral's ``agents/diffrl/shac.py`` (github etaoxing/mineral, MIT) run with its
``DFlexAntSAPO`` configuration; the defaults of ``SapoSettings`` are that
configuration's values. This module is our own code for the same equations;
the trainer integration (networks, window, update, config) is a later step.

Notation, for one environment over a window of T steps (as in ``returns``):
r_t the reward, H_t an estimate of the entropy of π(·|s_t), V(s_{t+1}) the
critic's value of where step t leads, ``ended_t`` / ``failed_t`` the episode
ended with step t / ended by failure (a time limit bootstraps, a failure does
not), ``alive_t`` the action at t was taken before the episode ended, and
β_t the bootstrap weight of ``shac.bootstrap_weight``.

The soft value of a state counts the entropy of the policy *at* that state,

    V_soft(s_t) = E[ r_t + α H_t + γ V_soft(s_{t+1}) ],

so the entropy bonus behaves as a reward r̃_t = r_t + α H̃_t, where H̃ is H
or its normalized form (``entropy_bonus``). Every SAPO quantity below is the
corresponding SHAC one with r replaced by r̃, and reduces to it at α = 0.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from .optimizer import guarded_step
from .returns import lambda_returns
from .shac import actor_objective as shac_actor_objective

ENTROPY_IN_ACTOR = ("return", "sum", "off")
TWIN_MODES = ("min", "mean", "first")
ENTROPY_ESTIMATES = ("fresh", "action")
LOG_STD_BOUNDS = ("clip", "tanh", "none")


@dataclasses.dataclass(frozen=True)
class SapoSettings:
    """SAPO's design choices, each one switchable so its effect can be measured.

    Defaults are those of mineral's ``DFlexAntSAPO`` configuration (the SAPO
    paper's reference code); the docstring of each field says what mineral does.
    """

    entropy_in_actor: str = "return"
    """How entropy enters the actor's window objective (``actor_objective``): "return" adds α H̃_t to each
    reward, discounted like it (mineral: ``entropy_in_return``); "sum" adds α Σ_t H̃_t undiscounted beside the
    return (mineral's other branch); "off" is SHAC's objective."""

    soft_targets: bool = True
    """Fit the critics to soft TD(λ) targets, the λ-returns of r_t + α H̃_t (mineral: ``entropy_in_targets``);
    False fits them to SHAC's targets of r_t alone."""

    normalize_entropy: bool = True
    """Use H̃ = (H + |H̄|) / (2 |H̄|) in place of H in the actor and the targets, with H̄ the target entropy
    (mineral: ``offset_by_target_entropy`` and ``scale_by_target_entropy``). It maps H = H̄ to 0 and
    H = −H̄ to 1, so α's scale does not grow with the action dimension."""

    num_critics: int = 2
    """Independent value networks, each regressed onto the same targets (mineral: ``EnsembleCritic`` with
    ``n_critics: 2``, its loss the mean of the critics' squared errors)."""

    actor_twin: str = "mean"
    """How the critics' values combine in the actor's terminal value (``twin_value``): "mean" (mineral:
    ``actor_loss_avgcritics``), "min", or "first" (one critic)."""

    target_twin: str = "min"
    """How they combine in the bootstrap of the TD(λ) targets: "min" (mineral, clipped double V), "mean",
    or "first"."""

    target_network: bool = False
    """Bootstrap with a slowly following copy of the critics; mineral's SAPO does not (``no_target_critic``),
    SHAC does."""

    auto_temperature: bool = True
    """Tune log α by gradient descent on ``temperature_loss`` (mineral: ``with_autoent``); False keeps α fixed at
    ``init_alpha``."""

    init_alpha: float = 1.0
    """α at the start, or throughout when ``auto_temperature`` is off (mineral: ``init_alpha: 1.0``)."""

    target_entropy_scale: float = 0.5
    """The target entropy is H̄ = −scale · |A| (mineral: ``target_entropy_scalar: 0.5``; SAC's −|A| is 1)."""

    scale_temperature_loss: bool = True
    """Multiply α's loss by |H̄| when the entropy is normalized, so its step is that of the unnormalized
    entropy (mineral: ``unscale_entropy_alpha``)."""

    alpha_learning_rate: float = 5e-3
    """log α's AdamW learning rate (mineral: ``alpha_optim_kwargs.lr``); not decayed with the actor's."""

    alpha_betas: tuple[float, float] = (0.7, 0.95)
    """log α's Adam β₁, β₂ (mineral: ``alpha_optim_kwargs.betas``)."""

    alpha_weight_decay: float = 0.01
    """log α's decoupled weight decay: mineral's AdamW leaves torch's default 0.01, which pulls log α to 0
    (α to 1)."""

    alpha_max_grad_norm: float | None = 0.5
    """Clip log α's gradient to this norm (mineral clips it with the actor's ``max_grad_norm``)."""

    entropy_estimate: str = "fresh"
    """H_t = −log π(ã|s_t) of one reparameterized sample: "fresh" draws ã anew, independent of the action taken
    (mineral: ``use_distr_ent``, whose squashed normal's ``entropy()`` is such a one-sample estimate); "action"
    uses the action taken, a_t."""

    state_dependent_std: bool = True
    """The policy's log σ is a second head of the actor network (mineral: ``fixed_sigma: False``) rather than a
    state-independent parameter."""

    log_std_bound: str = "clip"
    """How log σ is kept within [``log_std_min``, ``log_std_max``] (``bounded_log_std``): "clip" (mineral's
    ``torch.clamp``, no gradient outside), "tanh" (a smooth rescaling) or "none"."""

    log_std_min: float = -5.0
    """Lower bound of log σ (mineral: ``minlogstd: -5.0``)."""

    log_std_max: float = 2.0
    """Upper bound of log σ (mineral: ``maxlogstd: 2.0``)."""

    squash: bool = True
    """Actions a = tanh(u), u ~ N(μ, σ²), with the log-density corrected by the Jacobian
    (``squashed_gaussian_log_prob``; mineral: ``dist_type: squashed_normal``)."""

    def __post_init__(self):
        for name, allowed in (("entropy_in_actor", ENTROPY_IN_ACTOR), ("actor_twin", TWIN_MODES),
                              ("target_twin", TWIN_MODES), ("entropy_estimate", ENTROPY_ESTIMATES),
                              ("log_std_bound", LOG_STD_BOUNDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"sapo.{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.num_critics < 1:
            raise ValueError(f"sapo.num_critics must be at least 1, not {self.num_critics}")
        if self.num_critics == 1 and "min" in (self.actor_twin, self.target_twin):
            raise ValueError("sapo.actor_twin and target_twin cannot be 'min' with a single critic")
        if self.target_entropy_scale == 0.0 and self.normalize_entropy:
            raise ValueError("sapo.normalize_entropy divides by |H̄|: target_entropy_scale must not be 0")
        if not self.init_alpha > 0.0:
            raise ValueError(f"sapo.init_alpha must be positive, not {self.init_alpha}")
        if not self.log_std_min < self.log_std_max:
            raise ValueError("sapo.log_std_min must be below log_std_max")

    def target_entropy(self, action_size: int) -> float:
        """H̄ = −target_entropy_scale · |A|."""
        return -self.target_entropy_scale * action_size

    def temperature_loss_scale(self, action_size: int) -> float:
        """c of ``temperature_loss``: |H̄| when the entropy is normalized and ``scale_temperature_loss``, else 1."""
        if self.normalize_entropy and self.scale_temperature_loss:
            return abs(self.target_entropy(action_size))
        return 1.0

    def temperature_optimizer(self) -> optax.GradientTransformation:
        """log α's optimizer: gradient clipping (if any), then AdamW with mineral's settings."""
        adamw = optax.adamw(self.alpha_learning_rate, b1=self.alpha_betas[0], b2=self.alpha_betas[1],
                            weight_decay=self.alpha_weight_decay)
        if self.alpha_max_grad_norm is None:
            return adamw
        return optax.chain(optax.clip_by_global_norm(self.alpha_max_grad_norm), adamw)


# ---------------------------------------------------------------- entropy


def entropy_bonus(entropy, target_entropy: float, normalize: bool):
    """H̃ = (H + |H̄|) / (2 |H̄|) with ``normalize``, else H unchanged.

    mineral first offsets, (H + |H̄|) / 2, then divides by |H̄|; so H̃ = 0 at
    H = H̄ (the target, negative) and 1 at H = −H̄.
    """
    if not normalize:
        return entropy
    size = abs(target_entropy)
    return (entropy + size) / (2.0 * size)


def temperature(log_alpha, settings: SapoSettings):
    """α = exp(log α) when tuned automatically, else the fixed ``init_alpha``; never differentiated here."""
    if not settings.auto_temperature:
        return jnp.asarray(settings.init_alpha, jnp.result_type(log_alpha))
    return jnp.exp(jax.lax.stop_gradient(log_alpha))


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


def ensemble_regression_loss(values, target, weight):
    """Σ_k L_k / K over K critics' values [K, B] of the same B samples, each regressed onto the same targets:

        L_k = Σ_b w_b (V_k(s_b) − G_b)² / Σ_b w_b,

    ``critic.regression_loss`` per critic (mineral's ``compute_critic_loss`` with ``EnsembleCritic``: the
    mean over critics of their mean squared errors). The critics differ only by their initialization and
    share the targets, which bootstrap with ``twin_value(..., target_twin)``.
    """
    errors = jnp.sum(weight[None, :] * (values - target[None, :]) ** 2, axis=1)
    return errors.mean() / jnp.maximum(jnp.sum(weight), 1.0)


def soft_lambda_returns(reward, entropy, next_value, ended, failed, discount: float, lam: float, alpha):
    """Soft TD(λ) targets for one environment; every array is time-major of length T.

    The λ-return of ``returns.lambda_returns`` for the entropy-augmented reward
    r̃_t = r_t + α H_t (pass H̃ for the normalized bonus):

        b_t = (1 − failed_t) V(s_{t+1}),
        G_t = r̃_t + γ [ b_t + λ (1 − ended_t) (G_{t+1} − b_t) ],     G_T ≡ b_{T−1}.

    The bootstrap V(s_{t+1}) is itself a soft value (it was fitted to these
    targets), so it already holds the entropy to come; nothing more is added at
    the window's tail. A failure bootstraps 0, a time limit V(s_{t+1}) of the
    state the episode was truncated in. Values after an episode ended do not
    reach the steps before it (λ's term is cut there), so ``entropy`` there need
    not be masked. α = 0 gives SHAC's targets exactly. SAPO (Xing et al. 2025)
    fits its critics to these with α the current temperature (mineral:
    ``compute_target_values_with_entropy``), and V the minimum of its two critics.
    """
    alpha = jax.lax.stop_gradient(alpha)
    return lambda_returns(reward + alpha * entropy, next_value, ended, failed, discount, lam)


# ---------------------------------------------------------------- actor


def actor_objective(reward, entropy, next_value, beta, alive, discount: float, alpha, mode: str = "return"):
    """SAPO's window objective J(θ), to be maximized, from [N, T] arrays.

    With H̃ the (possibly normalized) entropy estimate of each step, the
    reparameterized −log π(ã_t|s_t), and α held fixed:

        "return":  J = (1 / N T) Σ_i [ Σ_t γᵗ (r_t + α alive_t H̃_t) + Σ_t γ^{t+1} β_t V(s_{t+1}) ],
        "sum":     J = (1 / N T) Σ_i [ Σ_t γᵗ r_t + Σ_t γ^{t+1} β_t V(s_{t+1}) + α Σ_t alive_t H̃_t ],
        "off":     SHAC's J (``shac.actor_objective``).

    "return" is the maximum-entropy return of SAPO (Xing et al. 2025; mineral's
    ``entropy_in_return``): the entropy is a reward, discounted like one, and the
    terminal soft value V (the mean of the two critics in mineral) carries the
    entropy beyond the window. "sum" is mineral's alternative, an undiscounted
    entropy regularizer beside SHAC's objective. The gradient reaches θ through
    the rewards and values (the simulator) and through H̃ (the reparameterized
    sample and σθ); never through α. ``alive`` masks the steps after an episode
    ended, where diffpg's windows keep stepping without reward.
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


# ---------------------------------------------------------------- temperature


def temperature_loss(log_alpha, entropy, target_entropy: float, weight=None, scale: float = 1.0):
    """L(log α) = c · α · (mean H − H̄), α = exp(log α), the entropy held fixed.

    Its gradient c α (mean H − H̄) lowers α while the policy's entropy is above
    the target H̄ and raises it below (SAC's temperature objective, Haarnoja et
    al. 2018b, eq. 18, which SAPO adopts; mineral writes the loss in α, not in
    log α, and averages H over every step of the window). ``entropy`` is the
    unnormalized estimate, averaged with ``weight`` (e.g. ``alive``) if given;
    c = |H̄| when the actor's entropy is normalized (``SapoSettings.temperature_loss_scale``).
    """
    entropy = jax.lax.stop_gradient(entropy)
    if weight is None:
        mean = entropy.mean()
    else:
        mean = jnp.sum(weight * entropy) / jnp.maximum(jnp.sum(weight), 1.0)
    return scale * jnp.exp(log_alpha) * (mean - target_entropy)


def temperature_update(optimizer: optax.GradientTransformation, log_alpha, opt_state, entropy,
                       target_entropy: float, weight=None, scale: float = 1.0):
    """One guarded optimizer step of log α on ``temperature_loss``: (log α, opt_state, loss, finite)."""
    loss, grad = jax.value_and_grad(temperature_loss)(log_alpha, entropy, target_entropy, weight, scale)
    log_alpha, opt_state, finite = guarded_step(optimizer, grad, opt_state, log_alpha)
    return log_alpha, opt_state, loss, finite


# ---------------------------------------------------------------- variance parameterization


def bounded_log_std(raw, low: float, high: float, mode: str = "clip"):
    """log σ from the network's raw output, kept in [low, high].

    "clip": min(max(raw, low), high) (mineral's squashed normal; no gradient
    outside the bounds). "tanh": low + (high − low) (tanh(raw) + 1) / 2, smooth
    and never saturating exactly (common in SAC implementations). "none": raw.
    """
    if mode == "clip":
        return jnp.clip(raw, low, high)
    if mode == "tanh":
        return low + 0.5 * (high - low) * (jnp.tanh(raw) + 1.0)
    if mode == "none":
        return raw
    raise ValueError(f"log-std bound must be one of {LOG_STD_BOUNDS}, not {mode!r}")


def log_one_minus_tanh_squared(u):
    """log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u)), exact in floating point where tanh u rounds to ±1."""
    return 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def squashed_gaussian_log_prob(u, mean, log_std):
    """log π(a) of a = tanh(u), u ~ N(mean, exp(log_std)²) diagonal, from the pre-squash sample u (a vector).

        log π(a) = Σ_i [ log N(u_i; μ_i, σ_i²) − log(1 − tanh² u_i) ],

    the change of variables through tanh (Haarnoja et al. 2018a, appendix C).
    The entropy estimate of SAPO's actor is its negative at a reparameterized u.
    It agrees with ``policies.GaussianMLP(squash=True).log_prob`` at a = tanh(u)
    (c = 1), but works from u, so it needs no atanh of an action that float32 may
    have rounded to ±1.
    """
    z = (u - mean) * jnp.exp(-log_std)
    gaussian = -0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return jnp.sum(gaussian - log_one_minus_tanh_squared(u), axis=-1)
