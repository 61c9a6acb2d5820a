"""The compiled programs of a training run: ``init(key)`` and ``run(state, n)``, stored once per machine.

    programs = Programs(config, key, chunk=50, env=None, stored=True)
    state = programs.init(key)          # the initial state
    state, metrics = programs.run(state, 50)
    template = programs.template()      # the state's shapes, to restore a checkpoint

Without ``stored`` these are the trainer's own jitted functions. With it, they
are the same programs kept by ``cli.compile_cache`` (a ``jax.export`` of
the trace, and XLA's persistent cache), so that a later run on this machine
neither imports the trainer (flax, numpyro, optax: about 0.6 s) nor traces nor
compiles: the results are bit for bit those of the trainer's.

Stored programs take and return the state as nested dicts
(``checkpoint.as_dicts``): ``jax.export`` keeps no custom classes, and
checkpoints take that form as it is. The program for chunks of ``chunk``
updates is loaded (or traced and compiled) in a second thread while this one
compiles init: XLA releases the GIL, so on two cores the two overlap. The
trainer is built only when something must be traced, for a resumed run's
template, or without ``stored``. An environment from outside diffpg (an object,
``MODULE:ATTR``, a registration) or a user's policy is never stored: the digest
of a stored program covers diffpg's sources only.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import sys
import threading

from ..cli import compile_cache
from .checkpoint import as_dicts, from_dicts


def _own_env(name: str) -> bool:
    """Whether ``name`` surely means diffpg's built-in environment of that name, with programs that can be
    stored. Until ``diffpg.envs`` is imported nothing can have been registered in this process; after, the
    registry says."""
    if ":" in name:
        return False
    registry = sys.modules.get("diffpg.envs.registry")
    return registry is None or registry.is_built_in(name)


class Programs:
    """``init``, ``run`` and ``template`` of one training config (see the module docstring)."""

    def __init__(self, config, key, chunk: int, *, env=None, policy=None, stored: bool = True):
        from .config import compiler_options

        self.config, self.key, self.env, self.policy = config, key, env, policy
        self._trainer, self._template, self._lock, self._compiled = None, None, threading.RLock(), {}
        self.stored = stored and env is None and config.policy is None and _own_env(config.env)
        if not self.stored:
            self._build()  # now: an unknown environment is reported before the run writes any file
            return
        self._salt = json.dumps(dataclasses.asdict(config), sort_keys=True)
        self._options = compiler_options(config)
        init = compile_cache.exported("init", (key,), self._init_function, salt=self._salt)
        self._shape = compile_cache.result_shape(init)
        loading = concurrent.futures.ThreadPoolExecutor(1)
        self._preloaded = {chunk: loading.submit(self._program, chunk)}
        loading.shutdown(wait=False)
        self._init = compile_cache.compiled(init, (key,), self._options)

    @property
    def trainer(self):
        """The Trainer of the config, built on first use."""
        return self._build()

    def _build(self):
        with self._lock:  # the loading thread may need it too
            if self._trainer is None:
                from .trainer import make_trainer

                self._trainer = make_trainer(self.config, self.env, policy=self.policy)
            return self._trainer

    def template(self):
        """The shapes of the state, a TrainState of ``jax.ShapeDtypeStruct``; worked out once."""
        import jax

        with self._lock:
            if self._template is None:
                self._template = jax.eval_shape(self.trainer.init, self.key)
            return self._template

    def _init_function(self):
        trainer = self.trainer  # built now, not inside init's trace, where an env's arrays (an MJX model's) would
        return lambda k: as_dicts(trainer.initial_state(k))  # become constants that jax.export cannot take

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
        """The initial state (a TrainState, or its dict form when stored)."""
        return self._init(key) if self.stored else self.trainer.init(key)

    def run(self, state, n: int):
        """``n`` updates from ``state``: (state, metrics with a leading axis n)."""
        if not self.stored:
            return self.trainer.run(state, n)
        if n not in self._compiled:
            self._compiled[n] = self._preloaded.pop(n).result() if n in self._preloaded else self._program(n)
        return self._compiled[n](as_dicts(state))

    def sizes(self) -> dict:
        """The environment's observation and action sizes and the policy's action scale, where its trainer was
        built (to record them)."""
        if self._trainer is None:
            return {}
        env, policy = self._trainer.env, self._trainer.policy
        sizes = {"observation_size": int(env.observation_size), "action_size": int(env.action_size)}
        return sizes if self.config.policy else {**sizes, "action_scale": float(policy.action_scale)}

    def state(self, state):
        """``state`` as a TrainState, whichever form it is in."""
        return from_dicts(state, self.template()) if isinstance(state, dict) else state
