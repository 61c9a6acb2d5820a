"""``diffpg.train``: a training run on disk that survives being killed, from Python or ``diffpg train``.

    result = diffpg.train("runs/x", env="pendulum", algo="shac", seed=0, updates=None, **settings)
    result = diffpg.train("runs/x", config=defaults("pendulum", "shac").replace(num_envs=4))  # a whole config
    result = diffpg.train("runs/x", resume=True)   # continue where it stopped; a finished run is returned
    result.act(obs), result.params, result.state, result.metrics, result.stopped_at

What a run does, in order (``_drive``):

1. the settings: ``defaults(env, algo)``, then ``updates`` and ``settings`` by name, or the caller's
   ``config`` (a new run), or the run's own ``config.json`` and ``run.json`` (a resumed one);
2. the trainer (``make_trainer``, which checks the config: once per run), whose jitted ``init`` and
   ``run(state, n)`` compile on first use;
3. the state: a fresh ``init(key)``, or the newest checkpoint;
4. chunks of gcd(``log_every``, ``checkpoint_every``) updates (``chunk_ends``), each dispatched before
   the previous one is logged, so logging and checkpointing overlap the next chunk's compute; after each,
   its rows go to ``metrics.jsonl`` (and to ``watch``, the caller's progress bar or TensorBoard events),
   and every ``checkpoint_every`` updates the state is saved (only a state whose last update was good);
5. the stop: when more than ``max_bad_updates`` consecutive updates had a non-finite gradient, the run
   stops with ``stopped_at`` set, keeping the last good checkpoint.

All randomness comes from the state's key, so the same settings and seed give the same run, bit for bit
on the CPU, and a resumed run ends with the parameters it would have had uninterrupted.

In a run of several processes (``jax.distributed.initialize`` first, then the same call of ``train`` in
every process, with the same ``run_dir`` seen by all), each process computes its own devices' share of
the environments and holds the same replicated parameters; process 0 alone writes the run's files and
calls ``watch``, and every process saves and restores the orbax checkpoints together
(``processes``); the ``metrics`` of process k > 0 carry its own wall times.

The library never turns on JAX's persistent compilation cache (a process-wide setting); ``diffpg
train`` does, as the owner of its process.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from ..errors import ConfigError, ShapeError
from . import processes, zero_gradient
from .checkpoint import Checkpoints, read_config, write_config
from .config import Config, new_config
from .metrics_log import MetricsLog
from .run_dir import RunOptions, cadence, prepare, read_run_file, write_run_file
from .settings import check_sizes, env_name
from .timings import Timings
from .trainer import make_trainer


@dataclasses.dataclass
class TrainResult:
    """What a run ended with; ``act`` is built when first asked for."""

    run_dir: Path
    config: Any
    """The run's config (``ShacConfig``, ...)."""
    seed: int
    metrics: list
    """The rows of metrics.jsonl, one dict per update."""
    stopped_at: int | None
    """The update at which too many non-finite gradients stopped the run; None when it ran to the end."""
    last_saved: int | None
    """The update of the newest checkpoint."""
    timings: Timings
    trainer: Any = dataclasses.field(repr=False, default=None)
    state: Any = dataclasses.field(repr=False, default=None)
    """The final TrainState (after a stop: the last state trained, whose learned parts are the last good ones)."""

    @property
    def params(self):
        """The policy's parameters."""
        return self.state.params

    @functools.cached_property
    def act(self):
        """``act(obs) -> action`` in numpy: the deterministic policy, as ``diffpg.load_policy`` gives it."""
        return policy_function(self.trainer, _local(self.state))


def policy_function(trainer, state) -> Callable[[np.ndarray], np.ndarray]:
    """``act(obs) -> action`` in numpy for ``trainer.act`` at ``state``, for one observation or a batch."""
    size = trainer.env.observation_size
    one = jax.jit(trainer.act)
    batch = jax.jit(jax.vmap(trainer.act, in_axes=(None, 0)))

    def act(obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != size:
            raise ShapeError(f"act expects one observation of shape ({size},) or a batch of shape (B, {size}), "
                             f"got shape {obs.shape}")
        return np.asarray((one if obs.ndim == 1 else batch)(state, obs))

    act.config = trainer.config
    return act


def _local(state):
    """The parts of ``state`` that acting needs (parameters, observation statistics) as this process's own
    numpy copies, so that ``act`` computes here alone, not across every process of a multi-process run."""
    if processes.count() == 1:
        return state
    keep = {"params", "obs_stats"}
    return state._replace(**{name: jax.tree.map(np.asarray, value) if name in keep else None
                             for name, value in state._asdict().items()})


def train(run_dir, *, env="pendulum", algo: str = "shac", policy=None, seed: int = 0, updates: int | None = None,
          resume: bool = False, config=None, options: RunOptions | None = None, watch=None,
          timings: Timings | None = None, **settings) -> TrainResult:
    """Train a policy into ``run_dir``, or continue the run there with ``resume=True``.

    Args:
      run_dir: the run's directory; a new run needs it empty or absent (``options.overwrite`` replaces a run).
      env: a registered name, ``"MODULE:ATTR"`` (an env, its class or a zero-argument factory), or an env
        object; the run records its name or spec, so a resumed run and ``load_policy`` build it again
        (pass the object again as ``env=`` where its spec cannot be imported).
      algo: apg, shac, sapo, reinforce, ppo or ascent.
      policy: None for the built-in tanh-Gaussian MLP (its settings: hidden, init_std, squash,
        action_scale), or your own policy: any object of the Policy protocol, or ``"MODULE:ATTR"``. The
        run records its spec (an object's is its class, ``module:Class``, called without arguments), so a
        resumed run and ``load_policy`` build it again; pass the object again as ``policy=`` where that
        cannot be imported or would build another policy. What the trainer does around it (observation
        normalization, the action's scale, the deterministic action): ``trainer.build_policy``.
      seed: the run's seed.
      updates: the number of updates (default: that of ``defaults(env, algo)``).
      resume: continue the run in ``run_dir`` with its own settings (anything else given must agree with
        them); a finished run is returned.
      config: instead of ``algo``, ``updates`` and ``settings``, a whole config (``defaults(env, algo)``
        changed with ``config.replace``), as ``diffpg train`` passes it; ``env`` may still be the env object.
      options: ``RunOptions``: chunk and checkpoint cadence, checkpoints kept, overwrite.
      watch: what to show while it trains, such as ``diffpg.report.LiveReport`` (progress bar, TensorBoard
        events, curve.png): an object with ``start(run_dir, title, total, done, kept)``, ``rows(new, done)``,
        ``finish()`` and ``close()`` (see ``report.live``). None: the run writes ``metrics.jsonl`` only.
      timings: a ``Timings`` to record the phases in (``diffpg train --timings``).
      **settings: any setting of the algorithm's config by its name, whichever part holds it, e.g.
        ``num_envs=4, hidden=(32, 32), target_alpha=0.3`` (``config.ShacConfig``, ...).

    Returns:
      A ``TrainResult``.
    """
    options = (options or RunOptions()).check()
    timings = timings or Timings()
    timings.phase("checks")
    run_dir = Path(run_dir)
    if resume and config is not None:
        raise ConfigError("resume=True continues a run with its own settings, so drop config")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    created = processes.primary_first(lambda: prepare(run_dir, resume, options.overwrite),
                                      f"prepare the run directory {str(run_dir)!r}")
    try:
        return _drive(run_dir, env, algo, policy, seed, updates, resume, config, options, timings, settings, watch)
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def _drive(run_dir, env, algo, policy, seed, updates, resume, config, options, timings, settings,
           watch) -> TrainResult:
    timings.phase("config")
    env_object = None if isinstance(env, str) else env
    config, record = _settings(run_dir, env, algo, policy, seed, updates, resume, config, options, settings)
    seed, log_every, checkpoint_every, keep = (record[k] for k in ("seed", "log_every", "checkpoint_every", "keep"))
    key = jax.random.key(seed)
    checkpoints = resumed_at = None  # a new run opens its checkpoints at the first save, while orbax loads
    if resume:
        timings.phase("checkpoints: open, save, restore (orbax)")
        checkpoints = Checkpoints(run_dir, keep=keep)
        resumed_at = checkpoints.latest()
    finished = resumed_at is not None and resumed_at >= config.budget.num_updates
    timings.phase("build the trainer")
    trainer = make_trainer(config, env_object, policy=None if isinstance(policy, str) else policy)
    if resume:
        check_sizes(trainer.env, record, config.env)
    timings.phase("config")
    if not resume:
        def write_files():
            if options.overwrite:
                for entry in run_dir.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            write_config(run_dir, config)
            write_run_file(run_dir, seed, log_every, checkpoint_every, keep, _sizes(trainer))  # run.json

        processes.primary_first(write_files, f"write config.json and run.json in {str(run_dir)!r}")
    if resumed_at is not None:
        timings.phase("checkpoints: open, save, restore (orbax)")
        state = checkpoints.restore(jax.eval_shape(trainer.init, key), resumed_at, config=config)
    else:
        timings.phase("run init (compiles it)")
        state = trainer.init(key)

    timings.phase("logs: metrics.jsonl")
    log_from = (resumed_at or 0) if resume else None  # a resumed run logs again after its checkpoint
    log = MetricsLog(run_dir, resume_at=log_from, write=processes.is_primary())
    total, update, limit = config.budget.num_updates, resumed_at or 0, config.max_bad_updates
    stopped, last_saved = None, resumed_at
    zero = zero_gradient.ZeroGradient(config.algo)  # warns once when the actor's gradient stays exactly zero
    watch = None if finished or not processes.is_primary() else watch
    try:
        if watch is not None:
            watch.start(run_dir, f"{config.algo} on {config.env} (seed {seed})", total, update,
                        log.rows if resume else None)
        session = time.perf_counter()
        clock = lambda: time.perf_counter() - session  # noqa: E731
        timings.phase("first chunk (compiles it)")
        t1 = 0.0
        for update, state, metrics, t0 in _one_ahead(
                trainer.run, state, update, chunk_ends(update, total, log_every, checkpoint_every), clock):
            metrics = jax.device_get(metrics)
            t0, t1 = max(t0, t1), clock()  # a chunk runs from its dispatch or the previous one's end
            timings.phase("logs: metrics.jsonl")
            rows = log.append(metrics, t0, t1)
            zero = zero_gradient.watch(zero, metrics)
            if watch is not None:
                timings.phase("watch: progress, TensorBoard")
                watch.rows(rows, update)
            streaks = np.asarray(metrics["bad_streak"])
            if streaks.max() > limit:
                stopped = int(np.asarray(metrics["update"])[int(np.argmax(streaks > limit))])
                break
            if (update % checkpoint_every == 0 or update == total) and streaks[-1] == 0:
                timings.phase("checkpoints: open, save, restore (orbax)")
                checkpoints = checkpoints or Checkpoints(run_dir, keep=keep)
                checkpoints.save(update, state)
                last_saved = update
            timings.phase("training")
        if watch is not None:
            timings.phase("watch: curve.png")
            watch.finish()
    finally:
        timings.phase("finish: wait for the last checkpoint, flush logs")
        if watch is not None:
            watch.close()
        if checkpoints is not None:
            checkpoints.close()
        log.close()
    timings.phase(None)
    return TrainResult(run_dir, config, seed, log.rows, stopped, last_saved, timings, trainer, state)


def _sizes(trainer) -> dict:
    """What run.json records of the environment (its sizes) and of the built-in policy (its action scale)."""
    env, policy = trainer.env, trainer.policy
    sizes = {"observation_size": int(env.observation_size), "action_size": int(env.action_size)}
    return sizes if trainer.config.policy.spec else {**sizes, "action_scale": float(policy.action_scale)}


def _settings(run_dir, env, algo, policy, seed, updates, resume, config, options, settings) -> tuple[Any, dict]:
    """(config, record): a resumed run's own config.json and run.json, or a new run's config with the seed,
    the cadence and the checkpoints to keep. Nothing here checks the config: ``make_trainer`` does."""
    if resume:
        config, record = read_config(run_dir), read_run_file(run_dir)
        refuse_on_resume(config, record, env, algo, seed, updates, settings, options)
        return config, record
    if config is None:
        config = new_config(env, algo, updates, settings, policy=policy)
    else:
        config = _given(config, env, algo, policy, updates, settings)
    log_every, checkpoint_every = cadence(config.budget.num_updates, options.log_every, options.checkpoint_every)
    return config, {"seed": seed, "log_every": log_every, "checkpoint_every": checkpoint_every, "keep": options.keep}


def chunk_ends(update: int, total: int, log_every: int, checkpoint_every: int) -> list[int]:
    """The updates at which the chunks from ``update`` to ``total`` end: every multiple of
    gcd(log_every, checkpoint_every), and ``total``. One chunk length (one compiled ``run``) serves the
    whole run, where ``total`` is a multiple of it, and every log and checkpoint boundary ends a chunk."""
    step = math.gcd(log_every, checkpoint_every)
    return list(range((update // step + 1) * step, total, step)) + ([total] if update < total else [])


def _one_ahead(run_chunk, state, update: int, ends: list[int], clock):
    """Yield ``(end, state, metrics, started)`` for each chunk, each one after the next has been dispatched.

    JAX computes a dispatched chunk while Python goes on, so logging and checkpointing one chunk
    overlap with computing the next. A caller that stops early leaves one chunk computed for nothing.
    """
    pending = None
    for end in ends:
        started = clock()
        state, metrics = run_chunk(state, end - update)
        update = end
        if pending is not None:
            yield pending
        pending = (end, state, metrics, started)
    if pending is not None:
        yield pending


def _given(config, env, algo, policy, updates, settings):
    """The caller's whole ``config``, with what else was given refused where it says something else."""
    if not isinstance(config, Config):
        raise ConfigError(f"config must be a training config such as defaults(env, algo), got "
                          f"{type(config).__name__}")
    other = [name for name, given in (("algo", algo not in ("shac", config.algo)), ("updates", updates is not None),
                                      ("env", isinstance(env, str) and env not in ("pendulum", config.env)))
             if given] + sorted(settings)
    if other:
        raise ConfigError(f"config holds every setting of the run, so drop {', '.join(other)} (change the config "
                          "with config.replace)")
    if policy is not None and config.policy.spec is None:
        config = config.replace(spec=env_name(policy))
    return config


def refuse_on_resume(config, record, env, algo, seed, updates, settings, options) -> None:
    """A resumed run keeps its own settings: name whatever was given that differs from the run's own
    (``config.json`` and ``run.json``); a keyword left at its default, and the env and policy objects,
    say nothing."""
    own = {name: getattr(getattr(config, part) if part else config, name) for name, part in config.names().items()}
    own.update(env=config.env, algo=config.algo, seed=record["seed"], updates=config.budget.num_updates,
               log_every=record["log_every"], checkpoint_every=record["checkpoint_every"])
    unasked = {"env": "pendulum", "algo": "shac", "seed": 0, "updates": None, "log_every": None,
               "checkpoint_every": None}
    asked = {"env": env if isinstance(env, str) else "pendulum", "algo": algo, "seed": seed, "updates": updates,
             "log_every": options.log_every, "checkpoint_every": options.checkpoint_every}
    given = [name for name, value in asked.items() if value != unasked[name] and value != own[name]]
    given += [name for name, value in settings.items() if name not in own or value != own[name]]
    given += ["overwrite"] if options.overwrite else []
    if given:
        raise ConfigError(f"resume=True continues a run with its own settings, so drop {', '.join(given)}")
