"""``diffpg.train``: a training run on disk that survives being killed, from Python or ``diffpg train``.

    result = diffpg.train("runs/x", env="pendulum", algo="shac", seed=0, updates=None, **settings)
    result = diffpg.train("runs/x", resume=True)   # continue where it stopped; a finished run is returned
    result.act(obs), result.params, result.state, result.metrics, result.stopped_at

What a run does, in order (``_drive``):

1. the settings: ``defaults(env, algo)``, then ``updates`` and ``settings`` (a new run), or the run's own
   ``config.json`` and ``run.json`` (a resumed one);
2. the programs ``init`` and ``run(state, n)`` (``programs.Programs``: stored once per machine);
3. the state: a fresh ``init(key)``, or the newest checkpoint;
4. chunks of ``log_every`` updates, each dispatched before the previous one is logged, so logging and
   checkpointing overlap the next chunk's compute; after each, its rows go to ``metrics.jsonl`` (and to
   the reporter, for TensorBoard and ``curve.png``), and every ``checkpoint_every`` updates the state
   is saved (only a state whose last update was good);
5. the stop: when more than ``max_bad_updates`` consecutive updates had a non-finite gradient, the run
   stops with ``stopped_at`` set, keeping the last good checkpoint.

All randomness comes from the state's key, so the same settings and seed give the same run, bit for bit
on the CPU, and a resumed run ends with the parameters it would have had uninterrupted.

In a run of several processes (``jax.distributed.initialize`` first, then the same call of ``train`` in
every process, with the same ``run_dir`` seen by all), each process computes its own devices' share of
the environments and holds the same replicated parameters; process 0 alone writes the run's files and
runs the reporter, and every process saves and restores the orbax checkpoints together
(``processes``). The programs are traced in every run then, not stored (``programs``), and the
``metrics`` of process k > 0 carry its own wall times.
"""
from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import processes
from .checkpoint import preload_orbax
from .run_dir import RunOptions, cadence, prepare, read_run_file, write_run_file
from .settings import check_sizes, env_name, new_config, refuse_on_resume
from .timings import Timings


@dataclasses.dataclass
class TrainResult:
    """What a run ended with. ``state``, ``params`` and ``act`` are worked out when first asked for."""

    run_dir: Path
    config: Any
    """The run's TrainConfig."""
    seed: int
    metrics: list
    """The rows of metrics.jsonl, one dict per update."""
    stopped_at: int | None
    """The update at which too many non-finite gradients stopped the run; None when it ran to the end."""
    last_saved: int | None
    """The update of the newest checkpoint."""
    timings: Timings
    programs: Any = dataclasses.field(repr=False, default=None)
    raw_state: Any = dataclasses.field(repr=False, default=None)

    @functools.cached_property
    def state(self):
        """The final TrainState (after a stop: the last state trained, whose learned parts are the last good ones)."""
        return self.programs.state(self.raw_state)

    @property
    def params(self):
        """The policy's parameters."""
        return self.state.params

    @property
    def trainer(self):
        return self.programs.trainer

    @functools.cached_property
    def act(self):
        """``act(obs) -> action`` in numpy: the deterministic policy, as ``diffpg.load_policy`` gives it."""
        from ..deploy import policy_function

        return policy_function(self.trainer, _local(self.state))


def _local(state):
    """The parts of ``state`` that acting needs (parameters, observation statistics) as this process's own
    numpy copies, so that ``act`` computes here alone, not across every process of a multi-process run."""
    import jax
    import numpy as np

    if processes.count() == 1:
        return state
    keep = {"params", "obs_stats"}
    return state._replace(**{name: jax.tree.map(np.asarray, value) if name in keep else None
                             for name, value in state._asdict().items()})


def train(run_dir, *, env="pendulum", algo: str = "shac", seed: int = 0, updates: int | None = None,
          resume: bool = False, options: RunOptions | None = None, timings: Timings | None = None,
          **settings) -> TrainResult:
    """Train a policy into ``run_dir``, or continue the run there with ``resume=True``.

    Args:
      run_dir: the run's directory; a new run needs it empty or absent (``options.overwrite`` replaces a run).
      env: a registered name, ``"MODULE:ATTR"`` (an env, its class or a zero-argument factory), or an env
        object; the run records its name or spec, so a resumed run and ``load_policy`` build it again
        (pass the object again as ``env=`` where its spec cannot be imported).
      algo: apg, shac, sapo, reinforce, ppo or ascent.
      seed: the run's seed.
      updates: the number of updates (default: that of ``defaults(env, algo)``).
      resume: continue the run in ``run_dir`` with its own settings (give none); a finished run is returned.
      options: ``RunOptions``: chunk and checkpoint cadence, TensorBoard, curve, progress bar.
      timings: a ``Timings`` to record the phases in (``diffpg train --timings``).
      **settings: any other ``TrainConfig`` field, e.g. ``num_envs=4, hidden=(32, 32)``.

    Returns:
      A ``TrainResult``.
    """
    options = (options or RunOptions()).check()
    timings = timings or Timings()
    timings.phase("checks")
    run_dir = Path(run_dir)
    if resume:
        refuse_on_resume(env, algo, seed, updates, settings, options)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    created = processes.primary_first(lambda: prepare(run_dir, resume, options.overwrite),
                                      f"prepare the run directory {str(run_dir)!r}")
    try:
        return _with_reporter(run_dir, env, algo, seed, updates, resume, options, timings, settings)
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def _with_reporter(run_dir, env, algo, seed, updates, resume, options, timings, settings):
    from ..report.reporter import Reporter  # started before jax is imported: it warms up meanwhile

    drawn = (options.plot or options.tensorboard) and processes.is_primary()
    reporter = Reporter(options.plot, options.tensorboard) if drawn else None
    try:
        return _drive(run_dir, env, algo, seed, updates, resume, options, timings, settings, reporter)
    finally:
        if reporter is not None:
            reporter.close()


def _drive(run_dir, env, algo, seed, updates, resume, options, timings, settings, reporter) -> TrainResult:
    timings.phase("import jax")
    import jax
    import numpy as np

    from ..cli import compile_cache
    from .checkpoint import Checkpoints, write_config
    from .metrics_log import MetricsLog
    from .programs import Programs

    if options.compile_cache:
        compile_cache.enable()
    timings.phase("config")
    env_object = None if isinstance(env, str) else env
    config, record = _settings(run_dir, env, algo, seed, updates, resume, options, settings)
    seed, log_every, checkpoint_every, keep = (record[k] for k in ("seed", "log_every", "checkpoint_every", "keep"))
    key = jax.random.key(seed)
    checkpoints = resumed_at = None  # a new run opens its checkpoints at the first save, while orbax loads
    if resume:
        timings.phase("checkpoints: open, save, restore (orbax)")
        checkpoints = Checkpoints(run_dir, keep=keep)
        resumed_at = checkpoints.latest()
    finished = resumed_at is not None and resumed_at >= config.num_updates
    timings.phase("load or compile the programs (init; the chunk's alongside)")
    stored = options.compile_cache and not finished and processes.count() == 1  # jax.export: one process only
    programs = Programs(config, key, log_every, env=env_object, stored=stored)
    if resume and not programs.stored:
        check_sizes(programs.trainer.env, record, config.env)
    timings.phase("config")
    if not resume:
        def write_files():
            if options.overwrite:
                for entry in run_dir.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            write_config(run_dir, config)
            write_run_file(run_dir, seed, log_every, checkpoint_every, keep, programs.sizes())  # run.json

        processes.primary_first(write_files, f"write config.json and run.json in {str(run_dir)!r}")
    if resumed_at is not None:
        timings.phase("checkpoints: open, save, restore (orbax)")
        state = checkpoints.restore(programs.template(), resumed_at, config=config)
    else:
        timings.phase("run init")
        state = programs.init(key)

    timings.phase("logs: metrics.jsonl")
    log_from = (resumed_at or 0) if resume else None  # a resumed run logs again after its checkpoint
    log = MetricsLog(run_dir, resume_at=log_from, write=processes.is_primary())
    if reporter is not None:
        reporter.start(run_dir, log_from, len(log.rows))
    total, update, limit = config.num_updates, resumed_at or 0, config.max_bad_updates
    stopped, last_saved = None, resumed_at
    title = f"{config.algo} on {config.env} (seed {seed})"
    try:
        quiet = finished or not processes.is_primary()
        with _progress(options if not quiet else RunOptions(progress=False), title, total, update) as progress:
            session = time.perf_counter()
            clock = lambda: time.perf_counter() - session  # noqa: E731
            timings.phase("first chunk (waits for its program)")
            t1 = 0.0
            for i, (update, state, metrics, t0) in enumerate(
                    _one_ahead(programs.run, state, update, _chunk_ends(update, total, log_every, checkpoint_every),
                               clock)):
                metrics = jax.device_get(metrics)
                t0, t1 = max(t0, t1), clock()  # a chunk runs from its dispatch or the previous one's end
                if i == 0:
                    preload_orbax()  # orbax loads while the next chunks run, not while the programs load
                timings.phase("logs: metrics.jsonl")
                rows = log.append(metrics, t0, t1)
                if reporter is not None:
                    reporter.rows(len(log.rows))
                    if update == total:  # drawn while the last checkpoint is saved
                        reporter.plot(title)
                streaks = np.asarray(metrics["bad_streak"])
                if streaks.max() > limit:
                    stopped = int(np.asarray(metrics["update"])[int(np.argmax(streaks > limit))])
                    break
                if (update % checkpoint_every == 0 or update == total) and streaks[-1] == 0:
                    timings.phase("checkpoints: open, save, restore (orbax)")
                    checkpoints = checkpoints or Checkpoints(run_dir, keep=keep)
                    checkpoints.save(update, state)
                    last_saved = update
                if progress is not None:
                    progress.update(update, rows)
                timings.phase("training")
            timings.phase("reporter: last TensorBoard events, curve.png")
            if reporter is not None and not finished:
                reporter.plot(title)
                reporter.finish()
    finally:
        timings.phase("finish: wait for the last checkpoint, flush logs")
        if checkpoints is not None:
            checkpoints.close()
        log.close()
    timings.phase(None)
    return TrainResult(run_dir, config, seed, log.rows, stopped, last_saved, timings, programs, state)


def _settings(run_dir, env, algo, seed, updates, resume, options, settings) -> tuple[Any, dict]:
    """(TrainConfig, record): a resumed run's own config.json and run.json, or a new run's settings with
    the seed, the cadence and the checkpoints to keep."""
    from .checkpoint import read_config

    if resume:
        return read_config(run_dir), read_run_file(run_dir)
    config = new_config(env_name(env), algo, updates, settings, env_object=None if isinstance(env, str) else env)
    log_every, checkpoint_every = cadence(config.num_updates, options.log_every, options.checkpoint_every)
    return config, {"seed": seed, "log_every": log_every, "checkpoint_every": checkpoint_every, "keep": options.keep}


def _progress(options: RunOptions, title: str, total: int, done: int):
    show = sys.stderr.isatty() if options.progress is None else options.progress
    if not show:
        return _NoProgress()
    from rich.console import Console

    from ..report.progress import Progress

    return Progress(title, total, done, Console(stderr=True))


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _chunk_ends(update: int, total: int, log_every: int, checkpoint_every: int) -> list[int]:
    """The updates at which the chunks from ``update`` to ``total`` end: every log and checkpoint boundary."""
    ends = []
    while update < total:
        update = min(total, (update // log_every + 1) * log_every, (update // checkpoint_every + 1) * checkpoint_every)
        ends.append(update)
    return ends


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
