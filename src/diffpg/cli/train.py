"""``diffpg train``: train a policy, with checkpoints, logs and a learning curve.

    diffpg train --env pendulum --algo shac --out runs/NAME [--seed N] [--updates N] [--set KEY=VALUE ...]
    diffpg train --resume runs/NAME

A run directory holds ``config.json`` (the TrainConfig), ``run.json`` (the
seed and the checkpoint cadence), ``checkpoints/`` (orbax), ``metrics.jsonl``
(one row per update), ``tb/`` (TensorBoard events) and ``curve.png``.

The settings start from ``diffpg.training.defaults(env, algo)``, which solve
the environment; ``--updates`` and ``--set`` change them. The same settings
and seed give the same run, bit for bit on the CPU. Updates run in jitted
chunks of ``--log-every``; after each chunk the progress bar and the logs are
updated, and every ``--checkpoint-every`` updates the state is saved. A
killed run continues with ``--resume`` from its newest checkpoint and ends
with the parameters it would have had uninterrupted.

Exit status: 0 when done, 1 when training stopped because more than
``max_bad_updates`` consecutive updates had a non-finite gradient (the last
good checkpoint is kept), 2 for invalid usage, reported before any heavy
import or compilation.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..training.checkpoint import as_dicts, from_dicts
from . import compile_cache
from .reporter import Reporter

RUN_FILE = "run.json"


@dataclasses.dataclass(frozen=True)
class Config:
    out: Path | None = None
    """New run directory to create (runs/NAME); required unless --resume."""
    env: str | None = None
    """Environment (default pendulum): pendulum, cartpole_swingup, lqr or one registered with diffpg.envs.register."""
    algo: str | None = None
    """Algorithm (default shac): apg, shac, reinforce, ppo, or ascent (any estimator: --set estimator=auto)."""
    seed: int | None = None
    """Random seed (default 0); the same seed and settings give the same run."""
    updates: int | None = None
    """Number of policy updates (default: the environment's and algorithm's own default)."""
    set: tuple[str, ...] = ()
    """Further TrainConfig settings as KEY=VALUE (VALUE in JSON), e.g. --set num_envs=16 hidden=[32,32]."""
    resume: Path | None = None
    """Continue the interrupted run in this directory from its newest checkpoint, with its own settings."""
    overwrite: bool = False
    """Replace an existing run directory given as --out."""
    checkpoint_every: int | None = None
    """Save a checkpoint every this many updates, a multiple of --log-every (default: about half the run, as an
    orbax save costs a few tenths of a second); the end is always saved."""
    keep: int = 3
    """Checkpoints to keep; older ones are deleted."""
    log_every: int | None = None
    """Updates per jitted chunk, i.e. per progress and log refresh (default: about a twentieth of the run)."""
    compile_cache: bool = True
    """Keep compiled programs in the user's cache directory (XDG_CACHE_HOME/diffpg/jax) so later runs start faster."""
    plot: bool = True
    """Write the learning curve curve.png at the end."""
    tensorboard: bool = True
    """Write TensorBoard events to tb/."""
    timings: bool = False
    """Print where the wall and CPU time went: start-up, imports, compilation, training, checkpoints, logs, plot."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the cheap checks decided, before anything heavy is imported."""

    run_dir: Path
    resume: bool
    created: bool
    """Whether this command created run_dir (so it can remove it again if a later check fails)."""
    overrides: dict


def _positive(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


def _parse_set(items) -> dict:
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def _writable_dir(path: Path) -> bool:
    """Create ``path`` if needed and prove that a file can be written in it; True if this call created it."""
    existed = path.exists()
    if existed and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a file, not a directory; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".diffpg-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"cannot write to the run directory {str(path)!r} ({reason}); choose a writable --out") \
            from None
    return not existed


def plan(config: Config) -> Plan:
    """The checks that need no jax: flags, budgets and the run directory."""
    for name in ("updates", "checkpoint_every", "keep", "log_every"):
        _positive(name, getattr(config, name))
    if config.log_every and config.checkpoint_every:
        cadence(config.checkpoint_every, config.log_every, config.checkpoint_every)  # raises unless a multiple
    if config.seed is not None and (isinstance(config.seed, bool) or config.seed < 0):
        raise ConfigError(f"--seed must be a non-negative integer, got {config.seed!r}")
    overrides = _parse_set(config.set)
    if config.resume is not None:
        given = [name for name in ("out", "env", "algo", "seed", "updates", "checkpoint_every", "log_every")
                 if getattr(config, name) is not None] + (["set"] if config.set else []) \
            + (["overwrite"] if config.overwrite else [])
        if given:
            raise ConfigError(f"--resume continues a run with its own settings, so drop --{', --'.join(given)}")
        run_dir = config.resume
        if not (run_dir / "config.json").is_file():
            raise CheckpointError(f"{str(run_dir)!r} is not a training run directory (it has no config.json); "
                                  "pass the --out directory of an earlier diffpg train")
        _writable_dir(run_dir)
        return Plan(run_dir, True, False, {})
    if config.out is None:
        raise ConfigError("pass --out runs/NAME for a new run, or --resume runs/NAME to continue one")
    run_dir = config.out
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not config.overwrite:
            raise ConfigError(f"{str(run_dir)!r} already exists; pass --resume {run_dir} to continue it "
                              "or --overwrite to replace it")
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"{str(run_dir)!r} is not empty and not a diffpg run directory, so --overwrite "
                              "refuses to delete it; choose another --out")
    created = _writable_dir(run_dir)
    return Plan(run_dir, False, created, overrides)


def training_config(config: Config, overrides: dict):
    """The TrainConfig of a new run: the defaults of (env, algo), then --updates and --set.

    The environment's name is checked where the trainer is built (``_Programs.trainer``): a run whose
    programs are stored never needs the environments' module."""
    from ..training.config import ALGOS, TrainConfig, config_from_dict, defaults

    env, algo = config.env or "pendulum", config.algo or "shac"
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"--set {unknown[0]}: the training config has no such setting; "
                          f"it has {', '.join(sorted(fields))}")
    for name in ("env", "algo", "num_updates"):
        if name in overrides:
            raise ConfigError(f"--set {name} is not allowed; use --{'updates' if name == 'num_updates' else name}")
    stored = dataclasses.asdict(defaults(env=env, algo=algo))
    stored.update(overrides)
    if config.updates is not None:
        stored["num_updates"] = config.updates
    try:
        return config_from_dict(stored)
    except TypeError as error:  # a wrong kind of value reached a check that compares it
        raise ConfigError(f"--set has a value of the wrong kind ({error})") from None


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, limit) + 1) if n % d == 0)


def cadence(num_updates: int, log_every: int | None, checkpoint_every: int | None) -> tuple[int, int]:
    """(log_every, checkpoint_every): chunks that divide the run, so one compiled chunk length serves it all."""
    if log_every is None:
        log_every = _largest_divisor_at_most(num_updates, max(1, round(num_updates / 20)))
    if checkpoint_every is None:
        checkpoint_every = max(log_every, math.ceil(num_updates / 2 / log_every) * log_every)
    elif checkpoint_every % log_every:
        raise ConfigError(f"--checkpoint-every {checkpoint_every} must be a multiple of --log-every {log_every}, "
                          "so that every jitted chunk has the same length")
    return log_every, checkpoint_every


def _process_age() -> float | None:
    """Seconds since this process started (Linux), so start-up imports show in --timings; None elsewhere."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Timings:
    """Wall and CPU time per phase of the command; ``phase(name)`` closes the previous phase and opens the next.

    CPU time counts every thread of the process (XLA's, orbax's, the preloading one), so on a machine shared
    with other work it tells how much the command itself did, where wall time also counts the waiting.
    """

    def __init__(self):
        self.start = time.perf_counter()
        age = _process_age()
        self.phases = {"start-up (python, imports, argument parsing)": (age, time.process_time())} \
            if age is not None else {}
        self.current, self.since, self.cpu_since = None, self.start, time.process_time()

    def phase(self, name: str | None) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.current is not None:
            wall, used = self.phases.get(self.current, (0.0, 0.0))
            self.phases[self.current] = (wall + now - self.since, used + cpu - self.cpu_since)
        self.current, self.since, self.cpu_since = name, now, cpu

    def table(self):
        from rich.table import Table

        self.phase(None)
        table = Table(title="where the time went")
        table.add_column("phase")
        table.add_column("wall s", justify="right")
        table.add_column("CPU s", justify="right")
        for name, (wall, cpu) in self.phases.items():
            table.add_row(name, f"{wall:.2f}", f"{cpu:.2f}")
        table.add_row("total", f"{sum(w for w, _ in self.phases.values()):.2f}",
                      f"{sum(c for _, c in self.phases.values()):.2f}", style="bold")
        return table


def _import_orbax() -> None:
    """Imports orbax (about 0.2 s), in a thread while the main one trains, before the first checkpoint needs it.

    XLA releases the GIL while it runs, so on a machine with two cores the
    import costs almost no wall time when it overlaps with training.
    """
    try:
        import orbax.checkpoint  # noqa: F401
    except Exception:  # the main thread imports again and reports the error itself
        pass


def run(config: Config) -> int:
    timings = Timings()
    timings.phase("checks")
    decided = plan(config)
    try:
        return _train(config, decided, timings)
    except BaseException:
        if decided.created and not any(decided.run_dir.iterdir()):
            decided.run_dir.rmdir()
        raise


def _train(config: Config, decided: Plan, timings: Timings) -> int:
    reporter = Reporter(config.plot, config.tensorboard) if config.plot or config.tensorboard else None
    try:
        return _train_with(config, decided, timings, reporter)
    finally:
        if reporter is not None:
            reporter.close()


def _train_with(config: Config, decided: Plan, timings: Timings, reporter: Reporter | None) -> int:
    timings.phase("import jax")
    import jax
    import numpy as np
    from rich.console import Console

    from ..training.checkpoint import Checkpoints, read_config, write_config

    if config.compile_cache:
        compile_cache.enable()

    timings.phase("config")
    run_dir = decided.run_dir
    if decided.resume:
        train_config = read_config(run_dir)
        try:
            settings = json.loads((run_dir / RUN_FILE).read_text())
            seed, log_every, checkpoint_every, keep = (int(settings[k]) for k in
                                                       ("seed", "log_every", "checkpoint_every", "keep"))
        except (OSError, ValueError, KeyError, TypeError):
            raise CheckpointError(f"{str(run_dir / RUN_FILE)!r} is missing or corrupt, so the run cannot be "
                                  "resumed") from None
    else:
        train_config = training_config(config, decided.overrides)
        seed, keep = config.seed or 0, config.keep
        log_every, checkpoint_every = cadence(train_config.num_updates, config.log_every, config.checkpoint_every)
    key = jax.random.key(seed)
    timings.phase("load or compile the programs (init; the chunk's alongside)")
    programs = _Programs(train_config, key, log_every, stored=config.compile_cache)

    timings.phase("config")
    if not decided.resume:
        if config.overwrite:
            for entry in run_dir.iterdir():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        write_config(run_dir, train_config)
        (run_dir / RUN_FILE).write_text(json.dumps(
            {"seed": seed, "log_every": log_every, "checkpoint_every": checkpoint_every, "keep": keep},
            indent=1) + "\n")

    console = Console(stderr=True)
    checkpoints = resumed_at = None  # a new run opens its checkpoints at the first save, while orbax loads
    if decided.resume:
        timings.phase("checkpoints: open, save, restore (orbax)")
        checkpoints = Checkpoints(run_dir, keep=keep)
        resumed_at = checkpoints.latest()
    if resumed_at is not None:
        state = checkpoints.restore(programs.template(), resumed_at)
    else:
        timings.phase("run init")
        state = programs.init(key)

    timings.phase("logs: metrics.jsonl")
    from ..training.metrics_log import MetricsLog

    log_from = (resumed_at or 0) if decided.resume else None  # a resumed run logs again after its checkpoint
    log = MetricsLog(run_dir, resume_at=log_from)
    if reporter is not None:
        reporter.start(run_dir, log_from, len(log.rows))
    total, update = train_config.num_updates, resumed_at or 0
    limit = train_config.max_bad_updates
    stopped, last_saved, first = None, resumed_at, True
    title = f"{train_config.algo} on {train_config.env} (seed {seed})"
    try:
        with _progress(console, total, update, train_config) as (progress, task):
            session = time.perf_counter()

            def clock():
                return time.perf_counter() - session

            timings.phase("first chunk (waits for its program)")
            ends = _chunk_ends(update, total, log_every, checkpoint_every)
            t1 = 0.0
            for update, state, metrics, t0 in _one_ahead(programs.run, state, update, ends, clock):
                metrics = jax.device_get(metrics)
                t0, t1 = max(t0, t1), clock()  # a chunk runs from its dispatch or the previous one's end
                if first:  # orbax loads while the next chunks run, not while the programs load
                    threading.Thread(target=_import_orbax, daemon=True).start()
                first = False
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
                    if checkpoints is None:
                        checkpoints = Checkpoints(run_dir, keep=keep)
                    checkpoints.save(update, state)
                    last_saved = update
                last = rows[-1]
                progress.update(task, completed=update, env_steps=last["env_steps"],
                                ret=_fmt(last.get("return")), grad=_fmt(last.get("grad_norm")))
                timings.phase("training")
            timings.phase("reporter: last TensorBoard events, curve.png")
            if reporter is not None:
                reporter.plot(title)
                reporter.finish()
    finally:
        timings.phase("finish: wait for the last checkpoint, flush logs")
        if checkpoints is not None:
            checkpoints.close()
        log.close()
    timings.phase(None)
    if config.timings:
        console.print(timings.table())
    if stopped is not None:
        kept = (f"the last good checkpoint is update {last_saved}" if last_saved is not None
                else "no checkpoint was saved")
        console.print(f"diffpg: training stopped at update {stopped}: more than max_bad_updates={limit} consecutive "
                      f"updates had a non-finite gradient; {kept} in {run_dir}", style="red", highlight=False)
        return 1
    last = log.rows[-1] if log.rows else {}
    print(f"{train_config.algo} on {train_config.env}: {last.get('env_steps', 0):,} env steps, return "
          f"{_fmt(last.get('return'))}, {time.perf_counter() - timings.start:.1f} s; run in {run_dir}")
    return 0


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


def _own_env(name: str) -> bool:
    """Whether ``name`` surely means diffpg's built-in environment of that name, whose code the digest of a
    stored program covers. Until ``diffpg.envs`` is imported nothing can have been registered in this
    process, and only built-in names have stored programs; after, the registry says."""
    registry = sys.modules.get("diffpg.envs.registry")
    return registry is None or registry.is_built_in(name)


class _Programs:
    """``init(key)`` and ``run(state, n)`` of a training config: the trainer's own, or with ``stored`` the
    same programs kept by ``compile_cache``, so that a later run on this machine neither imports the
    trainer (flax, numpyro, optax: about 0.6 s) nor traces nor compiles.

    Stored programs take and return the state as nested dicts (``checkpoint.as_dicts``): ``jax.export``
    keeps no custom classes, and checkpoints take that form as it is. Its shapes come from the stored
    init. The program for chunks of ``chunk`` updates is loaded (or traced and compiled) in a second
    thread while this one compiles init: XLA releases the GIL, so on two cores the two overlap. The
    trainer is built only when something must be traced, for a resumed run's template, or without
    ``stored``; an environment from outside diffpg always goes that way.
    """

    def __init__(self, config, key, chunk: int, *, stored: bool):
        from ..training.config import compiler_options

        self.config, self.key = config, key
        self._trainer, self._template, self._lock, self._compiled = None, None, threading.RLock(), {}
        self.stored = stored and _own_env(config.env)
        if not self.stored:
            self._build()  # now: an unknown environment is reported before the run writes any file
            return
        self._salt = json.dumps(dataclasses.asdict(config), sort_keys=True)
        self._options = compiler_options(config)
        init = compile_cache.exported("init", (key,), lambda: lambda k: as_dicts(self.trainer.initial_state(k)),
                                      salt=self._salt)
        self._shape = compile_cache.result_shape(init)
        loading = concurrent.futures.ThreadPoolExecutor(1)
        self._preloaded = {chunk: loading.submit(self._program, chunk)}
        loading.shutdown(wait=False)
        self._init = compile_cache.compiled(init, (key,), self._options)

    @property
    def trainer(self):
        return self._build()

    def _build(self):
        with self._lock:  # the loading thread may need it too
            if self._trainer is None:
                from ..envs import registered
                from ..errors import UnknownEnvError
                from ..training.trainer import make_trainer

                if self.config.env not in registered():
                    raise UnknownEnvError(f"unknown environment {self.config.env!r}; "
                                          f"choose one of {', '.join(registered())}")
                self._trainer = make_trainer(self.config)
            return self._trainer

    def template(self):
        """The shapes of the state, as a TrainState of ``jax.ShapeDtypeStruct`` (to restore a checkpoint,
        and to trace the chunk); worked out once."""
        import jax

        with self._lock:  # the loading thread may need it too
            if self._template is None:
                self._template = jax.eval_shape(self.trainer.init, self.key)
            return self._template

    def _program(self, n: int):
        import jax

        def trace():
            trainer, template = self.trainer, self.template()

            def updates(state):
                state, metrics = jax.lax.scan(lambda s, _: trainer.update(s), from_dicts(state, template), None,
                                              length=n)
                return as_dicts(state), metrics

            return updates

        program = compile_cache.exported(f"run{n}", (self._shape,), trace, salt=self._salt)
        return compile_cache.compiled(program, (self._shape,), self._options)

    def init(self, key):
        return self._init(key) if self.stored else self.trainer.init(key)

    def run(self, state, n: int):
        if not self.stored:
            return self.trainer.run(state, n)
        if n not in self._compiled:
            self._compiled[n] = self._preloaded.pop(n).result() if n in self._preloaded else self._program(n)
        return self._compiled[n](as_dicts(state))


def _fmt(value) -> str:
    return "nan" if value is None else f"{value:.4g}"


class _progress:
    """A rich progress bar with env steps, return and gradient norm; drawn on stderr."""

    def __init__(self, console, total, done, train_config):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"{train_config.algo} on {train_config.env}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("env steps {task.fields[env_steps]:,}"), TextColumn("return {task.fields[ret]}"),
            TextColumn("grad norm {task.fields[grad]}"), TimeElapsedColumn(), console=console)
        self.task = self.progress.add_task("train", total=total, completed=done, env_steps=0, ret="-", grad="-")

    def __enter__(self):
        self.progress.start()
        return self.progress, self.task

    def __exit__(self, *exc):
        self.progress.stop()
