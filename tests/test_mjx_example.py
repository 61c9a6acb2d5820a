"""examples/mjx_own_model.py runs end to end (a user's MJCF, trained by APG) with a tiny budget."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco.mjx")

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_own_model_example_trains_with_a_tiny_budget():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "mjx_own_model.py"), "--updates", "2"],
                            capture_output=True, text=True, timeout=1500, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "return over one episode: first update" in result.stdout
