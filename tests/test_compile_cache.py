"""The command line turns on JAX's persistent compilation cache (it owns its process); the library never does
(``tests/training/test_process_left_as_found.py``)."""
from __future__ import annotations

import os
import subprocess
import sys


def test_diffpg_train_keeps_its_compiled_programs_under_xdg_cache_home(tmp_path):
    args = ["train", "--env", "pendulum", "--algo", "apg", "--updates", "2", "--budget.num-envs", "2",
            "--budget.window", "4", "--policy.hidden", "8", "--no-plot", "--no-tensorboard", "--out", str(tmp_path / "run")]
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "diffpg", *args], capture_output=True, text=True, timeout=300,
                            env=environment)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "cache" / "diffpg" / "jax").iterdir())) >= 2  # init and the chunk, at least
