"""A run directory on disk: its config as JSON and its TrainState checkpoints.

    runs/NAME/
      config.json                 the run's config (``config.to_dict``), written once
      checkpoints/<update>/       orbax-checkpoint, one directory per saved update

Checkpoints are written by orbax-checkpoint's ``CheckpointManager`` (never
pickle). Orbax writes each one into a temporary directory and renames it into
place only once every array is on disk, so a process killed at any moment
(``kill -9`` included) leaves the previous checkpoints intact and at worst a
temporary directory that the next ``Checkpoints`` removes. Only the last
``keep`` checkpoints are kept. Saving is asynchronous: the arrays are copied
to host memory and written by a background thread while training goes on;
``close`` waits for the last write.

A checkpoint holds the state as orbax writes a pytree: its arrays named by
field, key and position, ``params/mean/params/Dense_0/kernel``,
``opt_state/1/0/mu/...``, ``env_state/theta``. Checkpoints written by earlier
versions, which saved the same names as nested dicts and lists, read back the
same (``tests/training/test_old_run.py``). Restoring needs a *template* of
the state, ``jax.eval_shape(trainer.init, key)``, which fixes the tree
structure, shapes and dtypes; the restored arrays are bit-identical
to the saved ones. Typed PRNG keys (``jax.random.key``) are saved as their raw
``key_data`` and wrapped again on restore.

A missing run directory, a missing or unreadable ``config.json``, no
checkpoint, or a checkpoint that does not match the template or cannot be read
raises ``CheckpointError`` with one sentence that names the path.
"""
from __future__ import annotations

import gc
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from ..errors import CheckpointError, ConfigError
from .config import config_from_dict, to_dict

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def write_config(run_dir: str | os.PathLike, config) -> Path:
    """Write ``to_dict(config)`` to ``run_dir/config.json`` atomically (write, then rename)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(to_dict(config), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_config(run_dir: str | os.PathLike):
    """The config stored in ``run_dir/config.json`` (any version's: ``config_from_dict``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} does not exist; "
                              "pass the --out directory of a training run")
    path = run_dir / CONFIG_FILE
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{str(path)!r} is missing, so {str(run_dir)!r} is not a training run "
                              "directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{str(path)!r} is not readable JSON ({type(error).__name__}); "
                              "the run directory is corrupt") from None
    try:
        return config_from_dict(stored)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{str(path)!r} does not hold a valid training config: {error}") from None


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _step(entry) -> str | int:
    """One step of a pytree path: a field or dict key (a str), or a position in a sequence (an int)."""
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.DictKey):
        return str(entry.key)
    if isinstance(entry, jax.tree_util.SequenceKey):
        return entry.idx
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return entry.key
    raise TypeError(f"cannot name the pytree path entry {entry!r}")


def _empty_array(x) -> bool:
    """An array with no elements (an MJX state's contact arrays when the model has no contacts): orbax
    refuses to save one, so it is stored as None and rebuilt from the template's shape."""
    return not _is_key(x) and hasattr(x, "shape") and 0 in x.shape


def _to_storable(tree):
    """``tree`` with typed PRNG keys as their raw uint32 data and empty arrays as None: what orbax saves."""

    def leaf(x):
        if _is_key(x):
            return jax.random.key_data(x)
        return None if _empty_array(x) else x

    return jax.tree.map(leaf, tree)


def _abstract(template):
    """ShapeDtypeStructs of what ``_to_storable(template)`` would give, with the template's shardings: orbax
    restores each array straight onto its devices (in a run of several processes, each reads its own rows).
    A leaf without one goes to the default device, so that a checkpoint saved over many devices loads on one."""

    default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def leaf(x):
        sharding = getattr(x, "sharding", None) or default
        if _is_key(x):
            data = jax.eval_shape(jax.random.key_data, x)
            return jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=sharding)
        return None if _empty_array(x) else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(leaf, template)


def _from_storable(stored, template):
    def leaf(x, t):
        if _is_key(t):
            return jax.random.wrap_key_data(x, impl=t.dtype._impl)
        return jnp.zeros(t.shape, t.dtype, device=getattr(t, "sharding", None)) if _empty_array(t) else jnp.asarray(x)

    leaves, treedef = jax.tree.flatten(template)
    stored_leaves = treedef.flatten_up_to(stored)  # a None where the template has an empty array
    return jax.tree.unflatten(treedef, [leaf(x, t) for x, t in zip(stored_leaves, leaves)])


def _absent_empty_fields(path: Path, template) -> set[str]:
    """The fields of a NamedTuple ``template`` (a TrainState) that are None in it and absent from the
    checkpoint at ``path``: a checkpoint written before the field was added (sapo's ``temperature``) holds
    nothing for it, and nothing is needed where the run has none."""
    if not hasattr(template, "_fields"):
        return set()
    try:
        metadata = ocp.StandardCheckpointHandler().metadata(path / "default")
        saved = set(getattr(metadata, "tree", metadata))
    except Exception:
        return set()
    return {name for name in template._fields if getattr(template, name) is None and name not in saved}


def _collect_quietly() -> None:
    """Free what a failed orbax restore leaves behind (coroutines never awaited) now, without the warnings
    their collection would print later, so that the user reads one sentence."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gc.collect()


def _shapes(tree) -> dict[str, tuple]:
    """{"params/mean/...": shape} of the arrays of a tree (of arrays, ShapeDtypeStructs or orbax metadata)."""
    return {"/".join(str(_step(entry)) for entry in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0] if hasattr(leaf, "shape")}


def _difference(saved: dict, wanted: dict) -> str | None:
    """What differs between the arrays a checkpoint holds and those a template needs, in words."""
    for name in sorted(set(saved) | set(wanted), key=lambda name: (not name.startswith("params/"), name)):
        if name not in wanted:
            return f"the checkpoint has an array {name} that the config does not"
        if name not in saved:
            return f"the config needs an array {name} that the checkpoint does not have"
        if saved[name] != wanted[name]:
            return f"{name} has shape {saved[name]} in the checkpoint but {wanted[name]} for the config"
    return None


class Checkpoints:
    """The checkpoints of one run directory: ``save(update, state)``, ``latest()``, ``restore(template)``.

    Use it as a context manager, or call ``close()`` to wait for the last
    asynchronous write before the process ends.
    """

    def __init__(self, run_dir: str | os.PathLike, keep: int = 3, create: bool = True):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep must be a positive number of checkpoints, got {keep!r}")
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / CHECKPOINT_DIR
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"{str(self.run_dir)!r} has no {CHECKPOINT_DIR}/ directory; "
                                  "it is not a training run directory or its run never saved a checkpoint")
        self._failed = False
        # In a run of several processes every one of them saves and restores (each its own devices' rows),
        # and process 0, orbax's primary host, writes the metadata and commits each checkpoint.
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create, cleanup_tmp_directories=True,
                                               enable_async_checkpointing=True,
                                               multiprocessing_options=ocp.options.MultiprocessingOptions(
                                                   primary_host=0))
        try:
            self._manager = ocp.CheckpointManager(self.directory.absolute(), options=options)
        except Exception as error:  # orbax raises many kinds; the user needs the path and the cause
            raise CheckpointError(f"cannot open the checkpoints in {str(self.directory)!r} ({type(error).__name__}); "
                                  "check that the directory is readable and writable") from None

    def save(self, update: int, state) -> None:
        """Start writing ``state`` as the checkpoint of ``update`` (asynchronously)."""
        self._manager.save(int(update), args=ocp.args.StandardSave(_to_storable(state)), force=True)

    def steps(self) -> list[int]:
        """The updates that have a complete checkpoint, oldest first."""
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        """The update of the newest complete checkpoint, None if there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def restore(self, template, update: int | None = None, config=None):
        """The state saved at ``update`` (default: the newest), shaped like ``template``.

        ``config``, the config the template comes from, is named when the checkpoint does not fit it.
        """
        self.wait()
        if update is None:
            update = self.latest()
            if update is None:
                raise CheckpointError(f"{str(self.directory)!r} holds no complete checkpoint to restore")
        elif int(update) not in self.steps():
            raise CheckpointError(f"{str(self.directory)!r} has no checkpoint of update {update}; "
                                  f"it has {self.steps() or 'none'}")
        path = self.directory / str(update)
        mismatch = self._mismatch(path, template)
        if mismatch is not None:
            named = "" if config is None else (f" (env {config.env}, algo {config.algo}, hidden "
                                               f"{config.policy.hidden}{', obs_norm' if config.policy.obs_norm else ''})")
            raise CheckpointError(f"checkpoint {str(path)!r} does not match the run's config{named}: {mismatch}; "
                                  "load it with the config and environment it was trained with")
        try:
            abstract, absent = _abstract(template), _absent_empty_fields(path, template)
            if absent:  # restore the fields the checkpoint has, as the dict it saved
                abstract = {name: value for name, value in abstract._asdict().items() if name not in absent}
            stored = self._manager.restore(int(update), args=ocp.args.StandardRestore(abstract))
            if absent:
                stored = type(template)(**{name: stored.get(name) for name in template._fields})
            return _from_storable(stored, template)
        except Exception as error:  # orbax/tensorstore raise many kinds for a damaged checkpoint
            cause = type(error).__name__
        self._failed = True
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its arrays cannot be read ({cause}); "
                              "move it out of the checkpoints directory to resume from an earlier one")

    @staticmethod
    def _mismatch(path: Path, template) -> str | None:
        """What does not match between the checkpoint at ``path`` and ``template``; None if all of it does,
        or if its metadata cannot be read (restoring then says it is corrupt)."""
        try:
            metadata = ocp.StandardCheckpointHandler().metadata(path / "default")
        except Exception:
            return None
        return _difference(_shapes(getattr(metadata, "tree", metadata)), _shapes(_abstract(template)))

    def wait(self) -> None:
        """Block until every started save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
        if self._failed:
            self._manager = None
            _collect_quietly()

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def restore_latest(run_dir: str | os.PathLike, template, config=None) -> tuple[int, Any]:
    """(update, state) of the newest checkpoint in ``run_dir``, shaped like ``template`` (of ``config``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} does not exist; "
                              "pass the --out directory of a training run")
    with Checkpoints(run_dir, create=False) as checkpoints:
        update = checkpoints.latest()
        if update is None:
            raise CheckpointError(f"{str(checkpoints.directory)!r} holds no complete checkpoint; "
                                  "the run was stopped before its first save")
        return update, checkpoints.restore(template, update, config=config)
