"""The training configuration: one frozen dataclass for all four algorithms.

``defaults(env, algo)`` gives settings that solve the environment (measured
with benchmarks/training_speed.py; see docs/algorithms.md); change any of them
with ``dataclasses.replace``.
``check(config)`` raises a one-sentence ``ConfigError`` for a bad value, and
``config_from_dict(dataclasses.asdict(config))`` rebuilds a config stored as
JSON (tuples come back from JSON as lists and are turned back into tuples).

Fields that an algorithm does not use are ignored by it; each docstring says
which algorithms read the field.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

from ..errors import ConfigError
from ..estimators import FACTORIES
from .settings import BUILT_IN_POLICY, build_env, env_name

ALGOS = ("apg", "shac", "sapo", "reinforce", "ppo", "ascent")
ACTIVATIONS = ("tanh", "elu", "relu")


@dataclass(frozen=True)
class TrainConfig:
    env: str = "pendulum"
    """Registered environment name (built with ``diffpg.make``), or ``MODULE:ATTR`` (an env, its class or a
    zero-argument factory)."""
    algo: str = "shac"
    """Algorithm: apg, shac, sapo, reinforce, ppo, or ascent with any estimator (see docs/algorithms.md)."""
    estimator: str = "pathwise"
    """The ``diffpg.estimators`` factory that ascent follows (pathwise, score_function, zeroth_order, alpha_order,
    inverse_variance, surrogate or auto), with num_envs episodes of window steps from reset per update."""
    num_updates: int = 100
    """The budget: policy updates; each update consumes ``num_envs * window`` env steps."""
    num_envs: int = 8
    """Environments stepped in parallel; their states carry over from one update to the next."""
    window: int = 20
    """Env steps per environment per update (the differentiated window for apg and shac)."""
    discount: float = 0.99
    """γ of the objective each algorithm optimizes (apg uses it inside the window only)."""
    gae_lambda: float = 0.95
    """λ of SHAC's TD(λ) critic targets and of PPO's GAE (reinforce uses λ = 1, Monte Carlo returns)."""
    policy: str | None = None
    """None: the built-in tanh-Gaussian MLP that hidden, init_std, squash and action_scale describe; else the
    user's own policy as ``MODULE:ATTR`` (an object, its class or a zero-argument factory), which those four
    settings do not touch (``diffpg.train(policy=...)`` records it)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy network (tanh activations)."""
    critic_hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the value network (shac, reinforce, ppo)."""
    critic_activation: str = "elu"
    """Activation of the value network: tanh, elu or relu."""
    init_std: float = 0.5
    """Initial standard deviation of the Gaussian policy (before any squashing)."""
    squash: bool = True
    """Squash actions as action_scale * tanh(u): keeps the pathwise gradient alive at the action bounds."""
    action_scale: float | None = None
    """Bound c of the squashed action c * tanh(u); None: the environment's action_bound (1 if it has none)."""
    stochastic: bool = True
    """Sample actions during training (False: apg and shac differentiate the deterministic mode)."""
    actor_lr: float = 1e-2
    """Adam learning rate of the policy."""
    critic_lr: float = 2e-3
    """Adam learning rate of the value network (shac, reinforce, ppo)."""
    lr_decay: bool = True
    """Decay both learning rates linearly to zero over num_updates, as SHAC and CleanRL's PPO do."""
    adam_b1: float = 0.9
    """Adam β1 (SHAC uses 0.7)."""
    adam_b2: float = 0.999
    """Adam β2 (SHAC uses 0.95)."""
    max_grad_norm: float = 1.0
    """Global-norm gradient clipping (optax.clip_by_global_norm) before each Adam step."""
    bound_penalty: float = 0.0
    """Weight of the bounds loss on the pre-squash mean (apg, shac), which keeps tanh from saturating."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this inside the losses (not the bounds loss); logged returns stay unscaled."""
    obs_norm: bool = False
    """Normalize observations by running mean and variance, for the policy and the critic."""
    critic_epochs: int = 8
    """Passes over each window's data when fitting the critic (shac, reinforce)."""
    critic_minibatches: int = 4
    """Minibatches per critic epoch (shac, reinforce); must divide num_envs * window."""
    target_alpha: float = 0.2
    """SHAC's target critic moves as target = alpha * target + (1 - alpha) * critic after each update."""
    ppo_epochs: int = 10
    """Passes over each window's data (ppo)."""
    ppo_minibatches: int = 4
    """Minibatches per ppo epoch; must divide num_envs * window."""
    clip_eps: float = 0.2
    """PPO's ratio clipping ε."""
    norm_adv: bool = True
    """Normalize advantages to zero mean and unit variance: per minibatch (ppo), per update (reinforce)."""
    eval_every: int | None = None
    """Evaluate the deterministic policy every this many updates, inside the jitted loop, on the same held-out
    start states each time (logged as eval/return); None: about 20 times a run; 0: never."""
    eval_episodes: int = 8
    """Episodes of each evaluation (held-out start states, fixed for the run), each the env's max_steps long
    (the window where it declares none)."""
    fast_compile: bool = False
    """Compile init and run with XLA backend optimizations off: ~1.5x faster to compile, ~3x slower to run."""
    max_bad_updates: int = 10
    """A run stops once more than this many consecutive updates had a non-finite gradient."""
    debug_nan_at: tuple[int, ...] = ()
    """For tests: updates (0-based) whose policy gradient is replaced by NaN before the guard."""
    # --- sapo's own design choices (training/sapo.py, docs/algorithms.md) ---
    sapo_entropy_in_actor: bool = True
    """SAPO: the actor maximizes the window's return plus alpha times the entropy of its actions."""
    sapo_soft_targets: bool = True
    """SAPO: the critics' TD(lambda) targets count the entropy bonus (soft values)."""
    sapo_twin_critics: bool = True
    """SAPO: two critics; the actor bootstraps from their mean, the targets from their minimum (false: one)."""
    sapo_auto_temperature: bool = True
    """SAPO: tune the temperature alpha (as log alpha, by Adam) towards the target entropy; false: alpha fixed."""
    sapo_init_temperature: float = 1.0
    """SAPO: the temperature alpha at the start (the fixed alpha without sapo_auto_temperature)."""
    sapo_target_entropy: float = -0.5
    """SAPO: the target entropy per action dimension (the paper's -0.5 times dim(a))."""
    sapo_temperature_lr: float = 5e-3
    """SAPO: Adam learning rate of log alpha."""
    # --- end of sapo's fields ---

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.window

    @property
    def evaluations_every(self) -> int:
        """Updates between evaluations (0: none): eval_every, or a divisor of num_updates near a twentieth."""
        if self.eval_every is not None:
            return self.eval_every
        return max(d for d in range(1, max(1, self.num_updates // 20) + 1) if self.num_updates % d == 0)


def _positive_int(config, name):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _number(config, name, low, high, low_open=True, high_open=False):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")


def check(config: TrainConfig) -> TrainConfig:
    """Raise a one-sentence ConfigError unless every setting is usable; return the config."""
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"expected a TrainConfig, got {type(config).__name__}; build one with defaults(env, algo)")
    if config.algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {config.algo!r}; choose one of {', '.join(ALGOS)}")
    if not isinstance(config.env, str) or not config.env:
        raise ConfigError(f"env must be the name of a registered environment, got {config.env!r}")
    if config.policy is not None and not (isinstance(config.policy, str) and ":" in config.policy):
        raise ConfigError(f"policy must be None (the built-in policy) or MODULE:ATTR, got {config.policy!r}")
    for name in ("num_updates", "num_envs", "window", "critic_epochs", "critic_minibatches", "ppo_epochs",
                 "ppo_minibatches"):
        _positive_int(config, name)
    for name in ("hidden", "critic_hidden"):
        widths = getattr(config, name)
        if not isinstance(widths, tuple) or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                                                for w in widths):
            raise ConfigError(f"{name} must be a tuple of positive integers, got {widths!r}")
    for name in ("squash", "stochastic", "lr_decay", "obs_norm", "norm_adv", "fast_compile", "sapo_entropy_in_actor",
                 "sapo_soft_targets", "sapo_twin_critics", "sapo_auto_temperature"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(config, name)!r}")
    if config.algo == "ascent":
        if config.estimator not in FACTORIES:
            raise ConfigError(f"unknown estimator {config.estimator!r}; choose one of {', '.join(FACTORIES)}")
        if config.obs_norm:
            raise ConfigError("ascent does not normalize observations (its estimator rolls the policy itself); "
                              "set obs_norm to false")
    if config.critic_activation not in ACTIVATIONS:
        raise ConfigError(f"critic_activation must be one of {', '.join(ACTIVATIONS)}, got {config.critic_activation!r}")
    _number(config, "discount", 0.0, 1.0)
    _number(config, "gae_lambda", 0.0, 1.0, low_open=False)
    _number(config, "target_alpha", 0.0, 1.0, low_open=False, high_open=True)
    if config.action_scale is not None:
        _number(config, "action_scale", 0.0, math.inf)
    _number(config, "bound_penalty", 0.0, math.inf, low_open=False)
    _number(config, "sapo_target_entropy", -math.inf, math.inf)
    for name in ("init_std", "actor_lr", "critic_lr", "max_grad_norm", "reward_scale", "clip_eps",
                 "sapo_init_temperature", "sapo_temperature_lr"):
        _number(config, name, 0.0, math.inf)
    for name in ("adam_b1", "adam_b2"):
        _number(config, name, 0.0, 1.0, low_open=False, high_open=True)
    _positive_int(config, "max_bad_updates")
    _positive_int(config, "eval_episodes")
    if config.eval_every is not None and (isinstance(config.eval_every, bool) or not isinstance(config.eval_every, int)
                                          or config.eval_every < 0):
        raise ConfigError(f"eval_every must be a non-negative integer or None, got {config.eval_every!r}")
    if any(isinstance(u, bool) or not isinstance(u, int) or u < 0 for u in config.debug_nan_at):
        raise ConfigError(f"debug_nan_at must hold non-negative update indices, got {config.debug_nan_at!r}")
    for algo, name in (("shac", "critic_minibatches"), ("sapo", "critic_minibatches"),
                       ("reinforce", "critic_minibatches"), ("ppo", "ppo_minibatches")):
        if config.algo == algo and config.steps_per_update % getattr(config, name):
            raise ConfigError(f"{name}={getattr(config, name)} must divide num_envs * window = "
                              f"{config.steps_per_update} for {algo}")
    return config


# Settings measured on pendulum (benchmarks/training_speed.py, docs/benchmarks.md). Anything not named
# here keeps the TrainConfig default. The pathwise algorithms learn most per env step with one
# environment and many small updates; the score-function ones need many samples per update.
# SHAC: 5-step windows (the critic carries the rest; over 8 seeds, 40-step windows needed ~3x the env
# steps and 10-step ones ended solved in 6 of 8) and a faster critic (critic_lr 5e-3: 8 of 8 seeds end
# solved, against 7 of 8 with 2e-3).
# APG has no critic, so it keeps 50-step windows; actor_lr 2e-2 halves its env steps to -200.
_SHAC = dict(num_updates=2000, num_envs=1, window=5, discount=0.95, stochastic=True, init_std=1.0,
             bound_penalty=1.0, critic_lr=5e-3, critic_minibatches=1, lr_decay=True)
# SAPO: SHAC's pendulum settings with the maximum-entropy parts on and alpha starting at 0.1 (seeds 0-2 end at
# -153, -153, -147 over 500 held-out starts; starting at the paper's 1.0, seed 0 ended at -294; docs/algorithms.md).
_SAPO = dict(_SHAC, sapo_init_temperature=0.1)
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
}


_MEASURED_ON = ("pendulum", "cartpole_swingup")
_BASE = {"apg": _APG, "shac": _SHAC, "sapo": _SAPO, "ppo": _PPO, "reinforce": _REINFORCE}


def defaults(env="pendulum", algo: str = "shac") -> TrainConfig:
    """The settings for ``algo`` on ``env`` (a name, ``MODULE:ATTR``, or an env object).

    Measured to solve pendulum and cartpole_swingup. For any other environment they start from
    pendulum's settings for ``algo`` and derive what they can from the environment: the window divides
    its episode length ``max_steps`` (so no steps are wasted at episode ends); a warning says so.
    """
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    name = env_name(env)
    if algo == "ascent" or name in _MEASURED_ON or (name, algo) in _DEFAULTS:  # settings of its own
        return check(TrainConfig(env=name, algo=algo, **_DEFAULTS.get((name, algo), _ASCENT if algo == "ascent"
                                                                      else {})))
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
    return check(TrainConfig(env=name, algo=algo, **settings))


def compiler_options(config: TrainConfig) -> dict | None:
    """The XLA options the training programs are compiled with: ``fast_compile`` trades run time for compile time."""
    return {"xla_backend_optimization_level": 0} if config.fast_compile else None


def config_from_dict(d: dict) -> TrainConfig:
    """Rebuild a TrainConfig from ``dataclasses.asdict(config)``, also after a JSON round trip.

    This is also the migration of every ``config.json`` written since the first release: fields have only
    been added since (``estimator``, ``eval_every`` and ``eval_episodes``, ``policy``), and a missing one
    takes its default, which changes nothing that such a run learns (``policy`` None is the built-in
    policy those runs trained; the evaluations use keys of their own). ``tests/training/test_old_run.py``
    resumes a run directory written before ``policy`` existed.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"a stored training config must be a dict, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"the stored training config has unknown fields {', '.join(unknown)}; "
                          "it was written by another version of diffpg")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return check(TrainConfig(**values))


def new_config(env: str, algo: str, updates, overrides: dict, env_object=None, policy=None):
    """The TrainConfig of a new run: the defaults of (env, algo), then ``updates`` and ``overrides``.

    With the user's ``policy`` (an object or ``MODULE:ATTR``) the config records its name; the settings of
    the built-in policy are refused, and the bounds loss, which reads the built-in policy's pre-squash
    mean, is off unless asked for (``make_trainer`` then refuses it).
    """
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    if updates is not None and (isinstance(updates, bool) or not isinstance(updates, int) or updates < 1):
        raise ConfigError(f"updates must be a positive integer, got {updates!r}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"{unknown[0]}: the training config has no such setting; "
                          f"it has {', '.join(sorted(fields))}")
    for name, keyword in (("env", "env="), ("algo", "algo="), ("num_updates", "updates=")):
        if name in overrides:
            raise ConfigError(f"{name} is not a setting to override; pass it as {keyword}")
    stored = dataclasses.asdict(defaults(env_object if env_object is not None else env, algo))
    if policy is not None:
        given = [name for name in BUILT_IN_POLICY if name in overrides]
        if given:
            raise ConfigError(f"{given[0]} describes the built-in policy, which your own policy replaces; drop "
                              f"{', '.join(given)} and set them in your policy")
        stored.update(policy=env_name(policy), bound_penalty=0.0)
    stored.update(overrides, env=env)
    if updates is not None:
        stored["num_updates"] = updates
    try:
        return config_from_dict(stored)
    except TypeError as error:  # a wrong kind of value reached a check that compares it
        raise ConfigError(f"a setting has a value of the wrong kind ({error})") from None
