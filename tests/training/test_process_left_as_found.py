"""A library call leaves the process as it found it: ``diffpg.train``, with everything drawn that its caller
can ask for (``report.LiveReport``: TensorBoard events and curve.png), changes no ``jax.config`` value, not
matplotlib's backend, and leaves no child process behind; the figures of ``report`` do not touch pyplot."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
import matplotlib
import pytest

import diffpg
from diffpg.report import LiveReport


def children() -> set[int]:
    """This process's child processes (Linux: /proc/self/task/*/children). A thread that ends between the
    listing and the read (XLA's and orbax's come and go) has no children to report, and is skipped."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found |= {int(pid) for pid in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads the child processes from /proc")
def test_diffpg_train_leaves_jax_config_matplotlib_and_the_processes_as_found(tmp_path):
    config, backend, before = dict(jax.config.values), matplotlib.rcParams._get_backend_or_none(), children()
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    watch = LiveReport(plot=True, tensorboard=True, progress=False)
    diffpg.train(tmp_path / "run", env="pendulum", algo="apg", updates=2, num_envs=2, window=4, hidden=(8,),
                 watch=watch)
    assert (tmp_path / "run" / "curve.png").stat().st_size > 0 and any((tmp_path / "run" / "tb").iterdir())
    changed = {name for name, value in jax.config.values.items() if config.get(name, object()) != value}
    assert not changed
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded
    assert children() <= before
