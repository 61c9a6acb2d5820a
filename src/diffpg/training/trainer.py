"""The one training loop: ``lax.scan`` over updates, each algorithm a configuration of it.

    trainer = make_trainer(config)
    state = trainer.init(key)                 # TrainState
    state, metrics = trainer.run(state, n)    # n updates, one jitted scan; metrics have leading axis n
    action = trainer.act(state, obs)          # deterministic action for one observation

    train = make_train(config)                # train(key) -> (state, metrics), PureJaxRL style
    jax.jit(jax.vmap(train))(keys)            # seeds in parallel

Every update is the same pure function of the TrainState: split the key,
let the algorithm take its window and its guarded optimizer steps
(``apg``, ``shac``, ``sapo``, ``reinforce``, ``ppo``), then, common to all, merge the
window's observations into the running statistics, book finished episodes,
reset environments whose episode ended and count env steps and skipped
updates. ``ascent`` follows any estimator instead; its estimator rolls fresh
episodes itself, so there is no window to book and its ``return`` is the
estimate's own. Because all randomness comes from the state's key,
``run(run(s, a), b)`` is bit for bit ``run(s, a + b)``, which is what makes a
resumed run identical to one never interrupted.

An update is *skipped* when any of its gradients is not finite: the guarded
optimizer steps never apply such a gradient (``optimizer.guarded_step``), and
the whole update then learns nothing: parameters, optimizer states, critics
and observation statistics keep their old bits, while the environments and
the key move on. ``skipped`` counts skipped updates and ``bad_streak``
consecutive ones, back to zero after a good update. An environment whose
observation is not finite is reset at the window's boundary. A run should stop once ``bad_streak``
exceeds ``config.max_bad_updates`` (``should_stop``). For tests,
``config.debug_nan_at`` lists updates whose policy gradient is replaced by NaN.

Logged metrics (each an array with leading axis n): ``update`` and
``env_steps`` after the update; ``reward``, the window's mean per-step reward;
``return``, the mean episodic return of the training episodes that ended in
this update (the training policy, with its exploration noise; NaN when none
ended); ``eval/return``, every ``eval_every`` updates, the mean return of the
deterministic policy over ``eval_episodes`` whole episodes from held-out start
states, the same ones each time (``episodes.episode_returns``, inside the
jitted loop; NaN between evaluations); ``grad_norm``, the
policy gradient's global norm before clipping; ``skipped`` and
``bad_streak``; and each algorithm's own (docs/algorithms.md).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import estimators
from ..errors import ConfigError
from ..estimators.validate import check_env, check_policy, require_gradient
from ..policies import GaussianMLP
from ..sharding import check_divisible, shard_batch
from ..types import as_float
from . import apg, ascent, normalizer, ppo, reinforce, sapo, settings, shac
from .config import TrainConfig, check, compiler_options
from .critic import value_network
from .episodes import episode_returns
from .optimizer import make_optimizer
from .settings import build_env, env_name
from .state import Parts, TrainState, shardings
from .window import Acting, reset_finished

EVAL_SEED = 2**31 - 1
"""The seed of the evaluations' held-out start states: the same for every evaluation, apart from any run's key."""
ALGORITHMS = {"apg": apg.update, "shac": shac.update, "sapo": sapo.update, "reinforce": reinforce.update,
              "ppo": ppo.update, "ascent": ascent.update}


@dataclasses.dataclass(frozen=True)
class Trainer:
    """A configured training loop. Build it with ``make_trainer``; its functions are pure and jit-able."""

    config: TrainConfig
    env: Any
    policy: Any
    critic_net: Any
    init: Callable[[jax.Array], TrainState]
    """init(key) -> TrainState: fresh networks, optimizers and N freshly reset environments (jitted)."""
    run: Callable[[TrainState, int], tuple[TrainState, dict]]
    """run(state, n) -> (state, metrics): n updates in one jitted ``lax.scan`` (n is static).

    ``init`` and ``run`` are compiled with their own XLA options (``fast_compile``), which JAX refuses
    for a jit inside another jit: inside your own jit, use ``initial_state`` and ``update`` instead
    (as ``make_train`` does)."""
    initial_state: Callable[[jax.Array], TrainState]
    """The pure function behind ``init``, to compose inside your own jit."""
    update: Callable[[TrainState], tuple[TrainState, dict]]
    """update(state) -> (state, metrics): one update, a pure function to compose inside your own jit."""
    act: Callable[[TrainState, jax.Array], jax.Array]
    """act(state, obs) -> action: the deterministic action (the policy's mode on normalized obs) for one obs."""
    eval_horizon: int
    """The length of an evaluation episode: the environment's ``max_steps``, else the run's ``window``."""
    compiled: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """Jitted helpers built on demand (``evaluate``), so each compiles once per trainer."""

    def should_stop(self, state: TrainState) -> bool:
        """True once more than ``max_bad_updates`` consecutive updates were skipped."""
        return bool(state.bad_streak > self.config.max_bad_updates)


def _optimizer_steps(cfg: TrainConfig) -> tuple[int, int]:
    """Optimizer steps per update for (policy, critic); the learning rates decay over all of them."""
    own = cfg.own
    if cfg.algo == "ppo":
        return (own.ppo_epochs * own.ppo_minibatches,) * 2
    return 1, getattr(own, "critic_epochs", 1) * getattr(own, "critic_minibatches", 1)


def action_scale(cfg: TrainConfig, env):
    """c in the policy's a = c · tanh(u): the config's ``action_scale``, else the env's ``action_bound``;
    None when neither says (the trainer then squashes to ±1, with a warning)."""
    scale = cfg.policy.action_scale
    return scale if scale is not None else getattr(env, "action_bound", None)


def build_policy(cfg: TrainConfig, env, policy=None):
    """The policy a run trains: ``policy`` itself, else the user's policy ``cfg.policy`` names, else the
    built-in tanh-Gaussian MLP of ``cfg`` (hidden, init_std, squash, and a = c · tanh(u) with c
    ``action_scale``).

    Around a user's policy the trainer does two things only. With ``obs_norm`` it hands the policy the
    normalized observation (o − μ)/σ, as it does the built-in one; set ``obs_norm=False`` for the raw
    one. Its actions reach the environment as they are: keeping them inside the env's ``action_bound`` is
    the policy's own business (``action_scale`` and ``squash`` describe the built-in policy only).
    Where a deterministic action is needed (``act``, ``load_policy``, the evaluations, and apg and shac
    with ``stochastic=False``) it calls ``mode``, or, for a policy without one, ``sample`` with a fixed
    key: a deterministic policy's action, a stochastic one's single draw of its noise (with a warning).
    """
    if policy is None and cfg.policy.spec is not None:
        policy = settings.build_policy(cfg.policy.spec)
    if policy is None:
        scale = action_scale(cfg, env)
        if scale is None:
            scale = 1.0
            if cfg.policy.squash:
                warnings.warn(f"the environment {env_name(env)} declares no action_bound, so the policy's actions "
                              "are squashed into [-1, 1]; give the environment an action_bound, or set action_scale",
                              UserWarning, stacklevel=3)
        return GaussianMLP(action_size=env.action_size, hidden=tuple(cfg.policy.hidden),
                           init_std=cfg.policy.init_std, squash=cfg.policy.squash, action_scale=float(scale),
                           state_std=cfg.policy.state_std)
    check_policy(policy, env, needs_log_prob=cfg.algo in ("sapo", "reinforce", "ppo"),
                 estimator=f"training with algo {cfg.algo!r}")
    if getattr(cfg.own, "sapo_gaussian_entropy", False) and not callable(getattr(policy, "mean_std", None)):
        raise ConfigError(f"sapo_gaussian_entropy reads the entropy of the policy's Gaussian from mean_std(params, "
                          f"obs), which {type(policy).__name__} lacks; set sapo_gaussian_entropy=False to use "
                          "-log pi(a|s) of the action taken")
    if getattr(cfg.own, "bound_penalty", 0.0) and not isinstance(policy, GaussianMLP):
        raise ConfigError(f"bound_penalty acts on the built-in policy's pre-squash mean, and "
                          f"{type(policy).__name__} is another policy; set bound_penalty=0")
    if not callable(getattr(policy, "mode", None)):
        warnings.warn(f"{type(policy).__name__} has no mode(params, obs), so the deterministic action (act, "
                      "load_policy, the evaluations) is sample's with a fixed key; give the policy a mode for its "
                      "noise-free action", UserWarning, stacklevel=3)
    return policy


def make_trainer(config: TrainConfig, env=None, *, policy=None, estimator: Callable | None = None,
                 optimizer=None) -> Trainer:
    """Validate ``config`` and build its Trainer.

    Args:
      config: the settings (``defaults(env, algo)``, changed with ``config.replace(name=value)``); checked here.
      env: an environment object to train on instead of ``diffpg.make(config.env)``.
      policy: any object of the Policy protocol to train instead of the one ``config`` describes (the
        built-in tanh-Gaussian MLP, or the user's policy ``config.policy.spec`` names). See ``build_policy``
        for what the trainer does around a user's policy.
      estimator: for ``algo="ascent"``, a factory with the estimators' signature
        ``factory(env, policy, *, horizon, num_envs, discount) -> estimate`` (your own, or one of
        ``diffpg.estimators`` with options bound by ``functools.partial``) instead of ``config.ascent.estimator``.
      optimizer: an optax ``GradientTransformation`` for the policy instead of clipped Adam.
    """
    cfg = check(config)
    check_divisible(cfg.budget.num_envs)  # the environments are laid over every device (diffpg.sharding)
    if estimator is not None and cfg.algo != "ascent":
        raise ConfigError(f"an estimator is followed by algo='ascent' only; {cfg.algo} computes its own gradient")
    env = build_env(cfg.env) if env is None else env
    check_env(env, estimator=f"training with algo {cfg.algo!r}")  # one sentence, not a scan error
    if cfg.algo in ("apg", "shac", "sapo"):
        require_gradient(env, cfg.algo)
    policy = build_policy(cfg, env, policy)
    own, budget, opt = cfg.own, cfg.budget, cfg.optimizer
    has_critic = cfg.algo not in ("apg", "ascent")
    critic_net = value_network(own.critic_hidden, own.critic_activation) if has_critic else None
    actor_steps, critic_steps = _optimizer_steps(cfg)
    common = dict(max_grad_norm=opt.max_grad_norm, b1=opt.adam_b1, b2=opt.adam_b2)
    actor_opt = optimizer or make_optimizer(
        opt.actor_lr, decay_steps=budget.num_updates * actor_steps if opt.lr_decay else None, **common)
    critic_opt = make_optimizer(own.critic_lr, decay_steps=budget.num_updates * critic_steps if opt.lr_decay
                                else None, **common) if has_critic else None
    estimate = None
    if cfg.algo == "ascent":
        factory = estimator or getattr(estimators, own.estimator)
        estimate = factory(env, policy, horizon=budget.window, num_envs=budget.num_envs, discount=own.discount)
    parts = Parts(cfg, env, policy, critic_net, actor_opt, critic_opt, estimate)
    algorithm = ALGORITHMS[cfg.algo]
    nan_at = jnp.asarray(cfg.debug_nan_at, jnp.int32)
    every, eval_horizon = cfg.evaluations_every, getattr(env, "max_steps", None) or budget.window

    def init(key) -> TrainState:
        k_policy, k_critic, k_env, key = jax.random.split(key, 4)
        params = policy.init(k_policy, env.observation_size)
        env_state = jax.vmap(env.reset)(jax.random.split(k_env, budget.num_envs))
        critic = target = critic_opt_state = None
        if has_critic:
            critic = critic_net.init(k_critic, jnp.zeros((env.observation_size,)))
            critic_opt_state = critic_opt.init(critic)
            target = critic if cfg.algo == "shac" else None
        temperature = None
        if cfg.algo == "sapo":  # twin critics stacked on a leading axis, and the temperature
            critic, critic_opt_state, temperature = sapo.init_learners(k_critic, cfg, critic_net, critic_opt,
                                                                       env.observation_size)
            target = critic
        zero = jnp.zeros((), jnp.int32)
        state = TrainState(
            params=params, opt_state=actor_opt.init(params), critic=critic, critic_opt_state=critic_opt_state,
            target_critic=target, obs_stats=normalizer.init(env.observation_size) if cfg.policy.obs_norm else None,
            env_state=env_state, episode_acc=jnp.zeros((budget.num_envs,)), last_episode_return=jnp.array(jnp.nan),
            key=key, update=zero, env_steps=zero, skipped=zero, bad_streak=zero, temperature=temperature)
        # Strong dtypes throughout, so the state that run() returns has the same types as this one
        # (a weakly typed leaf would make the second call of run() compile again).
        return jax.tree.map(lambda x: jnp.asarray(x, x.dtype) if getattr(x, "weak_type", False) else x, state)

    def poison_for(update):
        if not cfg.debug_nan_at:
            return lambda grads: grads
        bad = jnp.any(update == nan_at)
        return lambda grads: jax.tree.map(lambda g: jnp.where(bad, jnp.nan, g), grads)

    def update(state: TrainState):
        key, k_algo, k_reset = jax.random.split(state.key, 3)
        state = state._replace(env_state=shard_batch(state.env_state), episode_acc=shard_batch(state.episode_acc))
        fields, window, metrics, finite = algorithm(parts, k_algo, state, poison_for(state.update))
        if window is not None and cfg.policy.obs_norm:  # observations after an episode's end are not counted
            fields["obs_stats"] = normalizer.update(state.obs_stats, window.traj.obs, window.alive)
        # A skipped update learns nothing: every learned quantity stays as it was.
        fields = {name: jax.tree.map(lambda new, old: jnp.where(finite, new, old), value, getattr(state, name))
                  for name, value in fields.items()}
        bad = jnp.logical_not(finite).astype(jnp.int32)
        if window is None:  # ascent: the estimator rolled its own episodes and reported their return
            steps, extra = metrics.pop("env_steps_taken"), {}
        else:
            steps = budget.steps_per_update
            fields, extra = book_episodes(k_reset, fields, state, window)
        state = state._replace(**fields, key=key, update=state.update + 1, env_steps=state.env_steps + steps,
                               skipped=state.skipped + bad, bad_streak=(state.bad_streak + 1) * bad)
        metrics = {**metrics, **extra, "update": state.update, "env_steps": state.env_steps,
                   "skipped": state.skipped, "bad_streak": state.bad_streak, "eval/return": evaluation(state)}
        return state, metrics

    def evaluation(state):
        """The mean return of the deterministic policy from the held-out start states, every eval_every
        updates; NaN between evaluations."""
        nan = jnp.full((), jnp.nan, jnp.float32)
        if not every:
            return nan

        def returns():
            episodes = episode_returns(jax.random.key(EVAL_SEED), env, policy, state.params, state.obs_stats,
                                       cfg.evaluation.eval_episodes, eval_horizon)
            return episodes.mean().astype(jnp.float32)

        return jax.lax.cond(state.update % every == 0, returns, lambda: nan)

    def book_episodes(key, fields, state, window):
        """Book the episodes that ended in this window, then start new ones; (fields, metrics)."""
        episode_acc = state.episode_acc + window.traj.reward.sum(1)
        finished = as_float(window.final.done) > 0
        n_finished = finished.sum()
        mean_finished = jnp.sum(jnp.where(finished, episode_acc, 0.0)) / jnp.maximum(n_finished, 1).astype(episode_acc.dtype)
        last_return = jnp.where(n_finished > 0, mean_finished, state.last_episode_return)
        fields = {**fields, "env_state": reset_finished(key, env, window.final),
                  "episode_acc": jnp.where(finished, 0.0, episode_acc), "last_episode_return": last_return}
        reward = window.traj.reward.mean()
        return fields, {"reward": reward, "return": jnp.where(n_finished > 0, mean_finished, jnp.nan)}

    def run(state: TrainState, n: int):
        return jax.lax.scan(lambda s, _: update(s), state, None, length=n)

    def act(state: TrainState, obs):
        return Acting(policy, state.obs_stats, stochastic=False).sample(jax.random.key(0), state.params, obs)

    options = compiler_options(cfg)
    # Over several devices (and processes) the state comes out as global arrays placed by state.shardings:
    # the environments over the devices, the rest whole everywhere, the metrics too (every process logs them).
    placed = shardings()
    metrics_placed = None if placed is None else placed.key
    return Trainer(config=cfg, env=env, policy=policy, critic_net=critic_net,
                   init=jax.jit(init, out_shardings=placed, compiler_options=options),
                   run=jax.jit(run, static_argnums=1, out_shardings=(placed, metrics_placed) if placed else None,
                               compiler_options=options),
                   initial_state=init, update=update, act=act, eval_horizon=eval_horizon)


def make_train(config: TrainConfig, env=None) -> Callable[[jax.Array], tuple[TrainState, dict]]:
    """``train(key) -> (state, metrics)``: init and ``num_updates`` updates; jit-able and vmap-able over keys."""
    trainer = make_trainer(config, env)

    def train(key):
        return jax.lax.scan(lambda s, _: trainer.update(s), trainer.initial_state(key), None,
                            length=trainer.config.budget.num_updates)

    return train
