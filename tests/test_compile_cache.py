"""Stored programs (``compile_cache.stored``): traced once, then loaded, and bit for bit what ``jax.jit`` gives."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from diffpg.cli import compile_cache
from diffpg.cli.train import _programs
from diffpg.training import defaults, make_trainer


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "diffpg" / "exported"


def noisy_sum(x, key):
    return {"sum": jnp.sum(x * jax.random.normal(key, x.shape)), "max": [jnp.max(x)]}


def test_a_stored_program_is_traced_once_and_then_loaded(cache, monkeypatch, bits):
    args = (jnp.arange(6.0), jax.random.key(3))
    first = compile_cache.stored("noisy_sum", noisy_sum, args)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("noisy_sum-")

    def no_tracing(*_, **__):
        raise AssertionError("the stored program was traced again")

    monkeypatch.setattr(jax.export, "export", no_tracing)
    loaded = compile_cache.stored("noisy_sum", noisy_sum, args)
    assert bits(loaded(*args)) == bits(first(*args)) == bits(jax.jit(noisy_sum)(*args))


def test_salt_and_shapes_name_different_programs(cache):
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(6.0), jax.random.key(0)))
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(6.0), jax.random.key(0)), salt="other config")
    compile_cache.stored("noisy_sum", noisy_sum, (jnp.arange(7.0), jax.random.key(0)))
    assert len(list(cache.iterdir())) == 3


def test_only_the_most_recently_used_stored_programs_are_kept(cache, monkeypatch):
    monkeypatch.setattr(compile_cache, "MAX_STORED", 3)
    args = (jnp.arange(6.0), jax.random.key(0))
    for salt in "abcd":
        compile_cache.stored("noisy_sum", noisy_sum, args, salt=salt)
    compile_cache.stored("noisy_sum", noisy_sum, args, salt="b")  # used again: now the most recent
    compile_cache.stored("noisy_sum", noisy_sum, args, salt="e")
    kept = {compile_cache._digest("noisy_sum", args, salt) for salt in "bde"}
    assert {path.stem.split("-")[1] for path in cache.iterdir()} == kept


def test_a_corrupt_stored_program_is_traced_again(cache, bits):
    args = (jnp.arange(6.0), jax.random.key(3))
    compile_cache.stored("noisy_sum", noisy_sum, args)
    (path,) = cache.iterdir()
    path.write_bytes(path.read_bytes()[:100])
    again = compile_cache.stored("noisy_sum", noisy_sum, args)
    assert bits(again(*args)) == bits(jax.jit(noisy_sum)(*args))
    assert path.stat().st_size > 100  # rewritten whole


def test_stored_training_programs_give_the_trainers_bits(cache, bits):
    config = dataclasses.replace(defaults("pendulum", "shac"), num_envs=2, window=4, hidden=(8,), critic_hidden=(8,),
                                 critic_epochs=2, num_updates=6)
    trainer = make_trainer(config)
    key = jax.random.key(1)
    init, run = _programs(trainer, key, 3, stored=True)  # chunks of 3 updates load in a second thread
    state, metrics = run(*run(init(key), 3)[:1], 2)
    reference, reference_metrics = trainer.run(*trainer.run(trainer.init(key), 3)[:1], 2)
    assert bits(state) == bits(reference)
    assert bits(metrics) == bits(reference_metrics)
    assert sorted(path.name.split("-")[0] for path in cache.iterdir()) == ["init", "run2", "run3"]
