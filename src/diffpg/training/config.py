"""The training configuration: one frozen dataclass per algorithm, built from shared parts.

    config = defaults("pendulum", "shac")        # a ShacConfig: the settings measured to solve pendulum
    config.budget.num_envs, config.shac.target_alpha
    config = config.replace(num_envs=4, target_alpha=0.3)   # any setting by its name, in whichever part
    config.check()                                # a one-sentence ConfigError for a bad value

Every algorithm's config (``ApgConfig``, ``ShacConfig``, ``SapoConfig``, ``ReinforceConfig``, ``PpoConfig``,
``AscentConfig``) holds the same shared parts, ``budget`` (``Budget``), ``optimizer`` (``Optimizer``), ``policy``
(``PolicySettings``) and ``evaluation`` (``Evaluation``), and its own part under its own name
(``config.shac`` is a ``Shac``), which holds only the fields that algorithm reads. The parts that several
algorithms share are written once, as base classes (``Return``, ``Critic``, ``FittedCritic``,
``ShortHorizon``). ``diffpg train shac --help`` lists ShacConfig's fields with these docstrings
(``cli/train.py``, tyro).

Every field has a name of its own across the parts, so a setting is named by it alone
(``diffpg.train(..., num_envs=4)``, ``config.replace(num_envs=4)``): the names are those of the flat config
that runs wrote before issue 22, and ``config_from_dict`` reads every ``config.json`` written since the first
release, flat or nested.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Union

from ..errors import ConfigError
from ..estimators import FACTORIES
from ..policies import check_state_std
from .settings import build_env, env_name

ALGOS = ("apg", "shac", "sapo", "reinforce", "ppo", "ascent")
ACTIVATIONS = ("tanh", "elu", "relu")


def _positive_int(part, name):
    value = getattr(part, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _number(part, name, low, high, low_open=True, high_open=False):
    value = getattr(part, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")


def _flag(part, name):
    if not isinstance(getattr(part, name), bool):
        raise ConfigError(f"{name} must be true or false, got {getattr(part, name)!r}")


def _widths(part, name):
    widths = getattr(part, name)
    if not isinstance(widths, tuple) or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ConfigError(f"{name} must be a tuple of positive integers, got {widths!r}")


# ---------------------------------------------------------------- the shared parts


@dataclass(frozen=True)
class Budget:
    """How much experience a run takes: ``num_updates`` updates of ``num_envs * window`` env steps each."""

    num_updates: int = 100
    """Policy updates; each update consumes num_envs * window env steps."""
    num_envs: int = 8
    """Environments stepped in parallel; their states carry over from one update to the next."""
    window: int = 20
    """Env steps per environment per update (the differentiated window for apg, shac and sapo)."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.window

    def check(self) -> None:
        for name in ("num_updates", "num_envs", "window"):
            _positive_int(self, name)


@dataclass(frozen=True)
class Optimizer:
    """The policy's optimizer: Adam after global-norm clipping (the critics use the same, at their own rate)."""

    actor_lr: float = 1e-2
    """Adam learning rate of the policy."""
    lr_decay: bool = True
    """Decay the learning rates linearly to zero over num_updates, as SHAC and CleanRL's PPO do."""
    adam_b1: float = 0.9
    """Adam β1 (SHAC uses 0.7)."""
    adam_b2: float = 0.999
    """Adam β2 (SHAC uses 0.95)."""
    max_grad_norm: float = 1.0
    """Global-norm gradient clipping (optax.clip_by_global_norm) before each Adam step."""

    def check(self) -> None:
        _flag(self, "lr_decay")
        _number(self, "actor_lr", 0.0, math.inf)
        _number(self, "max_grad_norm", 0.0, math.inf)
        for name in ("adam_b1", "adam_b2"):
            _number(self, name, 0.0, 1.0, low_open=False, high_open=True)


@dataclass(frozen=True)
class PolicySettings:
    """The policy: the built-in tanh-Gaussian MLP that these settings describe, or the user's own."""

    spec: str | None = None
    """None: the built-in tanh-Gaussian MLP that hidden, init_std, squash, action_scale and state_std describe;
    else the user's own policy as MODULE:ATTR (an object, its class or a zero-argument factory), which those
    settings do not touch (diffpg.train(policy=...) records it)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy network (tanh activations)."""
    init_std: float = 0.5
    """Initial standard deviation of the Gaussian policy (before any squashing)."""
    squash: bool = True
    """Squash actions as action_scale * tanh(u): keeps the pathwise gradient alive at the action bounds."""
    action_scale: float | None = None
    """Bound c of the squashed action c * tanh(u); None: the environment's action_bound (1 if it has none)."""
    state_std: tuple[float, float] | None = None
    """None: σ is a parameter of its own, the same in every state; (lo, hi): a second head of the network gives
    log σ(s), clipped to [lo, hi] (SAC's and SAPO's reference code's bounded state-dependent variance, which
    uses (-5, 2))."""
    obs_norm: bool = False
    """Normalize observations by running mean and variance, for the policy and the critic."""

    BUILT_IN: ClassVar[tuple[str, ...]] = ("hidden", "init_std", "squash", "action_scale", "state_std")
    """The settings that describe the built-in tanh-Gaussian MLP, and nothing else."""

    def check(self) -> None:
        if self.spec is not None and not (isinstance(self.spec, str) and ":" in self.spec):
            raise ConfigError(f"policy must be None (the built-in policy) or MODULE:ATTR, got {self.spec!r}")
        _widths(self, "hidden")
        _flag(self, "squash")
        _flag(self, "obs_norm")
        _number(self, "init_std", 0.0, math.inf)
        if self.action_scale is not None:
            _number(self, "action_scale", 0.0, math.inf)
        check_state_std(self.state_std, self.init_std)


@dataclass(frozen=True)
class Evaluation:
    """The periodic evaluation of the deterministic policy, inside the jitted loop (logged as eval/return)."""

    eval_every: int | None = None
    """Evaluate every this many updates, on the same held-out start states each time; None: about 20 times a
    run; 0: never."""
    eval_episodes: int = 8
    """Episodes of each evaluation (held-out start states, fixed for the run), each the env's max_steps long
    (the window where it declares none)."""

    def check(self) -> None:
        _positive_int(self, "eval_episodes")
        if self.eval_every is not None and (isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int)
                                            or self.eval_every < 0):
            raise ConfigError(f"eval_every must be a non-negative integer or None, got {self.eval_every!r}")


# ---------------------------------------------------------------- each algorithm's own part


@dataclass(frozen=True)
class Return:
    """The objective: the discounted return of scaled rewards."""

    discount: float = 0.99
    """γ of the objective the algorithm optimizes (apg uses it inside the window only)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this inside the losses (not the bounds loss); logged returns stay unscaled."""

    def check(self, budget: Budget) -> None:
        _number(self, "discount", 0.0, 1.0)
        _number(self, "reward_scale", 0.0, math.inf)


@dataclass(frozen=True)
class Critic(Return):
    """A learned value network V(s) (shac, sapo, reinforce, ppo)."""

    critic_hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the value network."""
    critic_activation: str = "elu"
    """Activation of the value network: tanh, elu or relu."""
    critic_lr: float = 2e-3
    """Adam learning rate of the value network."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _widths(self, "critic_hidden")
        if self.critic_activation not in ACTIVATIONS:
            raise ConfigError(f"critic_activation must be one of {', '.join(ACTIVATIONS)}, "
                              f"got {self.critic_activation!r}")
        _number(self, "critic_lr", 0.0, math.inf)


@dataclass(frozen=True)
class FittedCritic(Critic):
    """A value network fitted on its own, by minibatch passes over each window (shac, sapo, reinforce)."""

    critic_epochs: int = 8
    """Passes over each window's data when fitting the critic."""
    critic_minibatches: int = 4
    """Minibatches per critic epoch; must divide num_envs * window."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _positive_int(self, "critic_epochs")
        _positive_int(self, "critic_minibatches")
        if budget.steps_per_update % self.critic_minibatches:
            raise ConfigError(f"critic_minibatches={self.critic_minibatches} must divide num_envs * window = "
                              f"{budget.steps_per_update}")


@dataclass(frozen=True)
class Apg(Return):
    """APG's own settings (training/apg.py, docs/algorithms.md)."""

    stochastic: bool = True
    """Sample actions during training (False: differentiate the deterministic mode)."""
    bound_penalty: float = 0.0
    """Weight of the bounds loss on the pre-squash mean, which keeps tanh from saturating."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _flag(self, "stochastic")
        _number(self, "bound_penalty", 0.0, math.inf, low_open=False)


@dataclass(frozen=True)
class ShortHorizon(FittedCritic):
    """What SHAC and SAPO share: differentiated windows completed by a target critic fitted to TD(λ) targets."""

    gae_lambda: float = 0.95
    """λ of the critic's TD(λ) targets."""
    target_alpha: float = 0.2
    """The target critic moves as target = alpha * target + (1 - alpha) * critic after each update."""
    bound_penalty: float = 0.0
    """Weight of the bounds loss on the pre-squash mean, which keeps tanh from saturating."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _number(self, "gae_lambda", 0.0, 1.0, low_open=False)
        _number(self, "target_alpha", 0.0, 1.0, low_open=False, high_open=True)
        _number(self, "bound_penalty", 0.0, math.inf, low_open=False)


@dataclass(frozen=True)
class Shac(ShortHorizon):
    """SHAC's own settings (training/shac.py, docs/algorithms.md)."""

    stochastic: bool = True
    """Sample actions during training (False: differentiate the deterministic mode)."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _flag(self, "stochastic")


@dataclass(frozen=True)
class Sapo(ShortHorizon):
    """SAPO's own settings: SHAC's, and the maximum-entropy design choices (training/sapo.py, docs/algorithms.md)."""

    sapo_entropy_in_actor: bool = True
    """The actor maximizes the window's return plus alpha times the entropy of its actions."""
    sapo_soft_targets: bool = True
    """The critics' TD(lambda) targets count the entropy bonus (soft values)."""
    sapo_twin_critics: bool = True
    """Two critics; the actor bootstraps from their mean, the targets from their minimum (false: one)."""
    sapo_auto_temperature: bool = True
    """Tune the temperature alpha (as log alpha, by Adam) towards the target entropy; false: alpha fixed."""
    sapo_init_temperature: float = 1.0
    """The temperature alpha at the start (the fixed alpha without sapo_auto_temperature)."""
    sapo_target_entropy: float = -0.5
    """The target entropy per action dimension (the paper's -0.5 times dim(a))."""
    sapo_temperature_lr: float = 5e-3
    """Adam learning rate of log alpha."""
    sapo_gaussian_entropy: bool = True
    """The entropy term is the closed-form entropy of the policy's Gaussian before the squash,
    sum_i (log(2 pi e) / 2 + log sigma_i(s)) (mineral's use_distr_ent); false: -log pi(a|s) of the action taken.
    Needs the built-in policy (or one with mean_std)."""
    sapo_normalize_entropy: bool = True
    """The actor and the targets see (H + |H_target|) / (2 |H_target|), and alpha's loss is scaled by
    |H_target| (mineral's offset_by_target_entropy, scale_by_target_entropy, unscale_entropy_alpha); false: H."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        for name in ("sapo_entropy_in_actor", "sapo_soft_targets", "sapo_twin_critics", "sapo_auto_temperature",
                     "sapo_gaussian_entropy", "sapo_normalize_entropy"):
            _flag(self, name)
        _number(self, "sapo_target_entropy", -math.inf, math.inf)
        _number(self, "sapo_init_temperature", 0.0, math.inf)
        _number(self, "sapo_temperature_lr", 0.0, math.inf)


@dataclass(frozen=True)
class Reinforce(FittedCritic):
    """REINFORCE's own settings: Monte Carlo returns with a fitted baseline (training/reinforce.py)."""

    norm_adv: bool = True
    """Normalize the advantages of each update to zero mean and unit variance."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _flag(self, "norm_adv")


@dataclass(frozen=True)
class Ppo(Critic):
    """PPO's own settings (training/ppo.py, docs/algorithms.md)."""

    gae_lambda: float = 0.95
    """λ of the generalized advantage estimate (GAE)."""
    norm_adv: bool = True
    """Normalize the advantages of each minibatch to zero mean and unit variance."""
    clip_eps: float = 0.2
    """The ratio clipping ε."""
    ent_coef: float = 0.0
    """c_H, the weight of the policy's entropy in the actor's loss (SB3's ent_coef, Brax's entropy_cost)."""
    ppo_epochs: int = 10
    """Passes over each window's data."""
    ppo_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs * window."""

    def check(self, budget: Budget) -> None:
        super().check(budget)
        _number(self, "gae_lambda", 0.0, 1.0, low_open=False)
        _flag(self, "norm_adv")
        _number(self, "clip_eps", 0.0, math.inf)
        _number(self, "ent_coef", 0.0, math.inf, low_open=False)
        _positive_int(self, "ppo_epochs")
        _positive_int(self, "ppo_minibatches")
        if budget.steps_per_update % self.ppo_minibatches:
            raise ConfigError(f"ppo_minibatches={self.ppo_minibatches} must divide num_envs * window = "
                              f"{budget.steps_per_update}")


@dataclass(frozen=True)
class Ascent:
    """ascent's own settings (training/ascent.py, docs/algorithms.md)."""

    estimator: str = "pathwise"
    """The diffpg.estimators factory followed (pathwise, score_function, zeroth_order, alpha_order,
    inverse_variance, surrogate or auto), with num_envs episodes of window steps from reset per update."""
    discount: float = 0.99
    """γ of the return the estimator differentiates."""

    def check(self, budget: Budget) -> None:
        if self.estimator not in FACTORIES:
            raise ConfigError(f"unknown estimator {self.estimator!r}; choose one of {', '.join(FACTORIES)}")
        _number(self, "discount", 0.0, 1.0)


# ---------------------------------------------------------------- one config per algorithm


@dataclass(frozen=True)
class Config:
    """What every algorithm's config holds; each subclass adds the algorithm's own part under its name."""

    algo: ClassVar[str]
    """The algorithm (the class says it)."""
    env: str = "pendulum"
    """Registered environment name (built with diffpg.make), or MODULE:ATTR (an env, its class or a
    zero-argument factory)."""
    budget: Budget = field(default_factory=Budget)
    optimizer: Optimizer = field(default_factory=Optimizer)
    policy: PolicySettings = field(default_factory=PolicySettings)
    evaluation: Evaluation = field(default_factory=Evaluation)
    max_bad_updates: int = 10
    """A run stops once more than this many consecutive updates had a non-finite gradient."""
    fast_compile: bool = False
    """Compile init and run with XLA backend optimizations off: ~1.5x faster to compile, ~3x slower to run."""
    debug_nan_at: tuple[int, ...] = ()
    """For tests: updates (0-based) whose policy gradient is replaced by NaN before the guard."""

    PARTS: ClassVar[tuple[str, ...]] = ("budget", "optimizer", "policy", "evaluation")

    @property
    def own(self):
        """The algorithm's own part (``config.shac`` of a ShacConfig)."""
        return getattr(self, self.algo)

    @property
    def evaluations_every(self) -> int:
        """Updates between evaluations (0: none): eval_every, or a divisor of num_updates near a twentieth."""
        every, total = self.evaluation.eval_every, self.budget.num_updates
        if every is not None:
            return every
        return max(d for d in range(1, max(1, total // 20) + 1) if total % d == 0)

    @classmethod
    def names(cls) -> dict[str, str | None]:
        """{setting name: the part that holds it (None: the config itself)} for every setting of ``cls``."""
        found = {}
        for f in dataclasses.fields(cls):
            if f.name in (*cls.PARTS, cls.algo):
                found.update({g.name: f.name for g in dataclasses.fields(f.default_factory)})
            else:
                found[f.name] = None
        return found

    def replace(self, **settings) -> "Config":
        """This config with ``settings`` changed, each named by its own name (``num_envs=4``), in whichever
        part holds it; a whole part may be given by the part's name (``budget=Budget(...)``)."""
        names = self.names()
        unknown = sorted(set(settings) - set(names) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"{unknown[0]}: the {self.algo} config has no such setting; it has "
                              f"{', '.join(sorted(names))}")
        top = {name: value for name, value in settings.items() if names.get(name) is None}
        for part in {names[name] for name in settings if names.get(name) is not None}:
            changes = {name: value for name, value in settings.items() if names.get(name) == part}
            top[part] = dataclasses.replace(top.get(part, getattr(self, part)), **changes)
        return dataclasses.replace(self, **top)

    def check(self) -> "Config":
        """Raise a one-sentence ConfigError unless every setting is usable; return the config."""
        if not isinstance(self.env, str) or not self.env:
            raise ConfigError(f"env must be the name of a registered environment, got {self.env!r}")
        for name in self.PARTS:
            getattr(self, name).check()
        self.own.check(self.budget)
        _positive_int(self, "max_bad_updates")
        _flag(self, "fast_compile")
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 0 for u in self.debug_nan_at):
            raise ConfigError(f"debug_nan_at must hold non-negative update indices, got {self.debug_nan_at!r}")
        return self


@dataclass(frozen=True)
class ApgConfig(Config):
    """APG: analytic policy gradients over windows that carry the state (training/apg.py)."""

    algo: ClassVar[str] = "apg"
    apg: Apg = field(default_factory=Apg)


@dataclass(frozen=True)
class ShacConfig(Config):
    """SHAC: short-horizon actor-critic (training/shac.py)."""

    algo: ClassVar[str] = "shac"
    shac: Shac = field(default_factory=Shac)


@dataclass(frozen=True)
class SapoConfig(Config):
    """SAPO: SHAC with maximum-entropy actor and critics (training/sapo.py)."""

    algo: ClassVar[str] = "sapo"
    sapo: Sapo = field(default_factory=Sapo)


@dataclass(frozen=True)
class ReinforceConfig(Config):
    """REINFORCE: the score-function gradient with a learned baseline (training/reinforce.py)."""

    algo: ClassVar[str] = "reinforce"
    reinforce: Reinforce = field(default_factory=Reinforce)


@dataclass(frozen=True)
class PpoConfig(Config):
    """PPO: clipped surrogate with GAE (training/ppo.py)."""

    algo: ClassVar[str] = "ppo"
    ppo: Ppo = field(default_factory=Ppo)


@dataclass(frozen=True)
class AscentConfig(Config):
    """ascent: gradient ascent along any estimator of diffpg.estimators (training/ascent.py)."""

    algo: ClassVar[str] = "ascent"
    ascent: Ascent = field(default_factory=Ascent)

    def check(self) -> "AscentConfig":
        super().check()
        if self.policy.obs_norm:
            raise ConfigError("ascent does not normalize observations (its estimator rolls the policy itself); "
                              "set obs_norm to false")
        return self


CONFIGS: dict[str, type[Config]] = {cls.algo: cls for cls in (ApgConfig, ShacConfig, SapoConfig, ReinforceConfig,
                                                               PpoConfig, AscentConfig)}
"""Each algorithm's config class, by the algorithm's name."""
TrainConfig = Union[ApgConfig, ShacConfig, SapoConfig, ReinforceConfig, PpoConfig, AscentConfig]
"""Any algorithm's config."""


def check(config) -> TrainConfig:
    """``config.check()``, with one sentence for what is not a training config at all."""
    if not isinstance(config, Config):
        raise ConfigError(f"expected a training config, got {type(config).__name__}; build one with "
                          "defaults(env, algo)")
    return config.check()


def config_class(algo: str) -> type[Config]:
    """The config class of ``algo``; one sentence for an unknown one."""
    if algo not in CONFIGS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    return CONFIGS[algo]


# Settings measured on pendulum (benchmarks/training_speed.py, docs/benchmarks.md). Anything not named
# here keeps the config classes' default. The pathwise algorithms learn most per env step with one
# environment and many small updates; the score-function ones need many samples per update.
# SHAC: 5-step windows (the critic carries the rest; over 8 seeds, 40-step windows needed ~3x the env
# steps and 10-step ones ended solved in 6 of 8) and a faster critic (critic_lr 5e-3: 8 of 8 seeds end
# solved, against 7 of 8 with 2e-3).
# APG has no critic, so it keeps 50-step windows; actor_lr 2e-2 halves its env steps to -200.
_SHAC = dict(num_updates=2000, num_envs=1, window=5, discount=0.95, stochastic=True, init_std=1.0,
             bound_penalty=1.0, critic_lr=5e-3, critic_minibatches=1, lr_decay=True)
# SAPO: SHAC's pendulum settings with the maximum-entropy parts on and alpha starting at 0.1 (seeds 0-2 end at
# -153, -153, -147 over 500 held-out starts; starting at the paper's 1.0, seed 0 ended at -294; docs/algorithms.md).
# sapo always samples; pendulum's settings were measured with the entropy of the action taken, unnormalized.
_SAPO = dict({k: v for k, v in _SHAC.items() if k != "stochastic"}, sapo_init_temperature=0.1,
             sapo_gaussian_entropy=False, sapo_normalize_entropy=False)
_APG = dict(num_updates=400, num_envs=2, window=50, discount=0.99, stochastic=True, init_std=1.0,
            actor_lr=2e-2, bound_penalty=1.0, lr_decay=True)
# cartpole_swingup keeps the settings measured on it before (docs/algorithms.md): 40-step shac windows.
_SHAC_CARTPOLE = dict(_SHAC, num_updates=750, window=40, critic_lr=2e-3)
_APG_CARTPOLE = dict(_APG, num_updates=600, actor_lr=1e-2)
_PPO = dict(num_updates=150, num_envs=4, window=200, discount=0.9, actor_lr=1e-3, critic_lr=1e-3, ppo_epochs=10,
            ppo_minibatches=16, squash=False, init_std=1.0)
_REINFORCE = dict(num_updates=500, num_envs=8, window=200, discount=0.9, actor_lr=3e-3, critic_lr=1e-3, squash=False,
                  init_std=1.0, lr_decay=False)
# ascent is for comparing estimators at equal env steps, not tuned to solve anything.
_ASCENT = dict(num_updates=200, num_envs=16, window=50, discount=0.99, actor_lr=1e-2, init_std=1.0)
_HALF_CHEETAH = dict(num_updates=2500, num_envs=32, window=10, discount=0.99, gae_lambda=0.95, stochastic=True,
                     init_std=0.37, hidden=(128, 64, 32), obs_norm=True, actor_lr=5e-4, critic_lr=5e-4, adam_b1=0.7,
                     adam_b2=0.95, max_grad_norm=1.0, lr_decay=True, critic_epochs=16, critic_minibatches=4,
                     bound_penalty=0.0)
_HALF_CHEETAH_SAPO = dict({k: v for k, v in _HALF_CHEETAH.items() if k != "stochastic"}, state_std=(-5.0, 2.0),
                          sapo_init_temperature=0.1)
# PPO on the twins steps them forward only: Brax's HalfCheetah PPO settings (unroll 20, gamma 0.95, lr 3e-4, 8 epochs,
# normalized observations) at 64 envs, each update's 1,280 env steps in 16 minibatches; rates constant, so the
# budget, not num_updates, ends a 30-minute run. Hopper-v5 looks further ahead (gamma 0.99): at 0.95 Brax's PPO
# stood at about 450 there for 30 minutes.
_PPO_HALF_CHEETAH = dict(num_updates=3000, num_envs=64, window=20, discount=0.95, gae_lambda=0.95, actor_lr=3e-4,
                         critic_lr=3e-4, lr_decay=False, ppo_epochs=8, ppo_minibatches=16, max_grad_norm=0.5,
                         obs_norm=True, init_std=0.5, squash=False, hidden=(128, 64, 32))
_PPO_HOPPER = dict(_PPO_HALF_CHEETAH, num_updates=1500, discount=0.99)
_DEFAULTS: dict[tuple[str, str], dict] = {
    ("pendulum", "apg"): _APG,
    ("pendulum", "shac"): _SHAC,
    ("pendulum", "sapo"): _SAPO,
    ("pendulum", "ppo"): _PPO,
    ("pendulum", "reinforce"): _REINFORCE,
    ("cartpole_swingup", "apg"): _APG_CARTPOLE,
    ("cartpole_swingup", "shac"): _SHAC_CARTPOLE,
    ("cartpole_swingup", "ppo"): _PPO,
    ("cartpole_swingup", "reinforce"): _REINFORCE,
    # mjx_reacher: 50-step episodes, so APG's window is a whole episode; every MJX step is costly, hence few updates.
    # SHAC too learns best from whole episodes with gamma 0.99 (seeds 0-2 end at -3.33 to -3.34 and pass -3.75 by
    # 16k-28k env steps; 10-step windows with gamma 0.95 plateaued at -3.8 to -4.1, 25-step ones at -3.45 to -3.56).
    ("mjx_reacher", "apg"): dict(_APG, num_updates=800, num_envs=4, window=50),
    ("mjx_reacher", "shac"): dict(_SHAC, num_updates=400, num_envs=4, window=50, discount=0.99),
    # mjx_push (contact, 100-step episodes), seed 0, docs/mjx.md: APG learns from whole episodes (-40.9 -> -24.0 in
    # 80k env steps; doing nothing scores -36.5); PPO, with 300 updates, reaches -11.2 in 120k. No SHAC setting tried
    # learned (10k steps of 5-step windows ended at -36.4; 25-step windows with gamma 0.99 diverged).
    ("mjx_push", "apg"): dict(_APG, num_updates=200, num_envs=4, window=100, actor_lr=1e-2),
    ("mjx_push", "ppo"): dict(_PPO, num_updates=300, window=100),
    # HalfCheetah-v5 (docs/benchmarks.md, "Locomotion"): 32 envs x 10-step windows (check's recommendation), mineral's
    # critic and Adam settings, init_std 0.37 (SHAC's log sigma -1) and actor_lr 5e-4. Judged in Gymnasium's own env,
    # seed 0 reached 1,222 (shac) and 1,291 (sapo) after 51k env steps; with actor_lr 2e-3 both swung between about
    # -700 and 850, and with init_std 1 sapo's exploration noise never fell. 2,500 updates are 800k env steps, about
    # 30 minutes on a 2-core CPU, the learning rates decaying to zero over them; 30 minutes on one core each ended at
    # 1,925-2,559 (sapo, seeds 0-2, median 2,038) and 386-1,866 (shac), against SB3 PPO's 1,558-1,733 (seeds 0-2).
    ("HalfCheetah-v5", "shac"): _HALF_CHEETAH,
    ("HalfCheetah-v5", "sapo"): _HALF_CHEETAH_SAPO,
    # Hopper-v5 (docs/benchmarks.md, "Locomotion"): HalfCheetah's settings. Its RK4 steps make an env step cost about
    # twice as much (about 200 env steps/s on one core), so 1,000 updates (320k env steps) fill 30 minutes. A
    # 20-minute probe of seed 0 with them (over 5,000 updates) judged 2,544 (shac) and 207 (sapo, after standing still
    # at 1,020) at 240k; run whole, these reached 1,706 (shac) and 1,020 (sapo) and ended at 357 and 260. shac's
    # learning rates stay constant: so seeds 0-2 reached 1,500 by 109k-256k env steps and judged 2,044, 1,388 and
    # 3,224 after 30 minutes, each swinging by a thousand or more between judgings on the way. sapo's seeds 1 and 2
    # hop (peaks 2,934 and 3,204, ends 867 and 1,187); seed 0 stands still, also with constant rates, shac's σ, no
    # entropy terms or one critic.
    ("Hopper-v5", "shac"): dict(_HALF_CHEETAH, num_updates=1000, lr_decay=False),
    ("Hopper-v5", "sapo"): dict(_HALF_CHEETAH_SAPO, num_updates=1000),
    # PPO (docs/benchmarks.md, "Locomotion"), 30 minutes on one core each: HalfCheetah-v5 seeds 0-2 ended at 4,021,
    # 2,748 and 1,801 (peaks 5,014, 3,386, 1,862), 1,600-1,800 env steps/s; Hopper-v5 seeds 0-2 at 1,243 (rising
    # slowly), 2,477 (peak 2,975) and 2,971 (peak 3,314), 820-900 env steps/s.
    ("HalfCheetah-v5", "ppo"): _PPO_HALF_CHEETAH,
    ("Hopper-v5", "ppo"): _PPO_HOPPER,
    # Ant-v5 (docs/benchmarks.md, "Locomotion"), the settings measured on it. shac and sapo: HalfCheetah's, rates
    # constant; an env step costs 5 RK4 steps with contact (37-60 env steps/s through forward and backward on one
    # core, by machine), so 1,500 updates (480k env steps) take 2 1/4 hours or more, in which sapo's seed 0 judged
    # 776-1,074 (standing still is about 990); both stood for 30 minutes on seeds 0-2. No setting that walks is known
    # for them yet.
    # ppo: Hopper's; 30 minutes on one core (about 340 env steps/s, 600k env steps) ended seeds 0-2 at 1,060, 1,323
    # and 2,526 (seed 2 judged 3,030 at 435k env steps), where Brax PPO's seed 0 ended at 1,036.
    ("Ant-v5", "shac"): dict(_HALF_CHEETAH, num_updates=1500, lr_decay=False),
    ("Ant-v5", "sapo"): dict(_HALF_CHEETAH_SAPO, num_updates=1500, lr_decay=False),
    ("Ant-v5", "ppo"): _PPO_HOPPER,
}


_MEASURED_ON = ("pendulum", "cartpole_swingup")
_BASE = {"apg": _APG, "shac": _SHAC, "sapo": _SAPO, "ppo": _PPO, "reinforce": _REINFORCE}


def defaults(env="pendulum", algo: str = "shac") -> TrainConfig:
    """The config of ``algo`` on ``env`` (a name, ``MODULE:ATTR``, or an env object), with the settings
    measured for it.

    Measured to solve pendulum and cartpole_swingup. For any other environment they start from
    pendulum's settings for ``algo`` and derive what they can from the environment: the window divides
    its episode length ``max_steps`` (so no steps are wasted at episode ends); a warning says so.
    The config is not checked here: ``make_trainer`` checks it, once, whatever changed it since.
    """
    cls = config_class(algo)
    name = env_name(env)
    if algo == "ascent" or name in _MEASURED_ON or (name, algo) in _DEFAULTS:  # settings of its own
        return cls(env=name).replace(**_DEFAULTS.get((name, algo), _ASCENT if algo == "ascent" else {}))
    settings = dict(_BASE[algo])
    env = build_env(name) if isinstance(env, str) else env
    max_steps = getattr(env, "max_steps", None)
    if isinstance(max_steps, int) and max_steps > 0:
        window = max(d for d in range(1, settings["window"] + 1) if max_steps % d == 0)
        derived = f"window {window}, which divides its episode length max_steps={max_steps}"
        settings["window"] = window
        for minibatches in ("critic_minibatches", "ppo_minibatches"):
            if minibatches in settings and (settings["num_envs"] * window) % settings[minibatches]:
                settings[minibatches] = 1
    else:
        derived = f"window {settings['window']}, as it declares no max_steps (its episodes end only by done)"
    warnings.warn(f"diffpg has no measured {algo} settings for {name} (observation_size "
                  f"{env.observation_size}, action_size {env.action_size}); starting from pendulum's, with "
                  f"{derived}; change any setting by name", UserWarning, stacklevel=2)
    return cls(env=name).replace(**settings)


def compiler_options(config: Config) -> dict | None:
    """The XLA options the training programs are compiled with: ``fast_compile`` trades run time for compile time."""
    return {"xla_backend_optimization_level": 0} if config.fast_compile else None


def to_dict(config: Config) -> dict:
    """What ``config.json`` holds: ``{"algo": ..., "env": ..., "budget": {...}, ..., "<algo>": {...}}``."""
    return {"algo": config.algo, **dataclasses.asdict(config)}


def config_from_dict(stored: dict) -> TrainConfig:
    """The config a ``config.json`` holds: the migration of every one written since the first release.

    Two forms were written. Since issue 22, ``to_dict``'s nested one. Before it, one flat dict of every
    algorithm's settings (each algorithm ignored the ones it did not read); these map by name into the
    algorithm's parts, the user's policy ``policy`` becoming ``policy.spec``, and the settings of other
    algorithms are dropped (unread by this one). Fields have only been added since the first release
    (``estimator``, ``eval_every`` and ``eval_episodes``, ``policy``); a missing one takes its default,
    which changes nothing that such a run learns (``policy`` None is the built-in policy those runs
    trained). JSON's lists come back as tuples. ``tests/training/test_old_run.py`` resumes a run
    directory written before ``policy`` existed. The config is not checked here (``make_trainer`` does).
    """
    if not isinstance(stored, dict):
        raise ConfigError(f"a stored training config must be a dict, got {type(stored).__name__}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    cls = config_class(values.pop("algo", "shac"))
    if isinstance(values.get("budget"), dict):  # nested (since issue 22)
        parts = {name: values.pop(name) for name in (*cls.PARTS, cls.algo) if isinstance(values.get(name), dict)}
        values.update({name: {k: tuple(v) if isinstance(v, list) else v for k, v in part.items()}
                       for name, part in parts.items()})
    else:  # flat (before issue 22)
        values["spec"] = values.pop("policy", None)
        other = set().union(*(cls_.names() for cls_ in CONFIGS.values())) - set(cls.names())
        values = {k: v for k, v in values.items() if k not in other}
    try:
        return cls().replace(**{name: value for name, value in values.items() if name not in (*cls.PARTS, cls.algo)},
                             **{name: dataclasses.replace(getattr(cls(), name), **value) for name, value in
                                values.items() if name in (*cls.PARTS, cls.algo)})
    except TypeError as error:
        raise ConfigError(f"the stored training config does not fit diffpg's {cls.algo} config ({error}); "
                          "it was written by another version of diffpg") from None


def new_config(env, algo: str, updates, settings: dict, policy=None) -> TrainConfig:
    """The config of a new run: ``defaults(env, algo)``, then ``updates`` and ``settings`` by name.

    With the user's ``policy`` (an object or ``MODULE:ATTR``) the config records its name; the settings of
    the built-in policy are refused, and the bounds loss, which reads the built-in policy's pre-squash
    mean, is off unless asked for (``make_trainer`` then refuses it).
    """
    cls = config_class(algo)
    if updates is not None and (isinstance(updates, bool) or not isinstance(updates, int) or updates < 1):
        raise ConfigError(f"updates must be a positive integer, got {updates!r}")
    for name, keyword in (("env", "env="), ("algo", "algo="), ("num_updates", "updates="), ("spec", "policy=")):
        if name in settings:
            raise ConfigError(f"{name} is not a setting to override; pass it as {keyword}")
    unknown = sorted(set(settings) - set(cls.names()))
    if unknown:  # said before defaults() builds anything
        raise ConfigError(f"{unknown[0]}: the {algo} config has no such setting; it has "
                          f"{', '.join(sorted(set(cls.names()) - {'env', 'spec', 'num_updates'}))}")
    config = defaults(env, algo)
    if policy is not None:
        given = [name for name in PolicySettings.BUILT_IN if name in settings]
        if given:
            raise ConfigError(f"{given[0]} describes the built-in policy, which your own policy replaces; drop "
                              f"{', '.join(given)} and set them in your policy")
        config = config.replace(spec=env_name(policy), **{"bound_penalty": 0.0} if "bound_penalty" in
                                cls.names() else {})
    if updates is not None:
        settings = {**settings, "num_updates": updates}
    return config.replace(**settings)
