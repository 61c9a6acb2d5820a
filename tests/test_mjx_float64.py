"""MJX in float64 against MuJoCo's own C simulator and against finite differences.

The measurements run in a subprocess (tests/mjx_float64_checks.py): ``jax_enable_x64`` is
process-wide and would change the dtypes of every other test in this one.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco.mjx")


@pytest.fixture(scope="module")
def measured():
    script = Path(__file__).with_name("mjx_float64_checks.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"),
                                                                       os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=1500, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.slow


def test_forward_agrees_with_mujoco_without_contact(measured):
    assert measured["mjx_reacher"]["qpos_error"] < 1e-6


def test_forward_agrees_with_mujoco_with_contact_and_friction(measured):
    push = measured["mjx_push"]
    # the ball rolls on the floor and the pusher hits it: two contacts at once, and the ball moves
    assert push["most_contacts"] == 2 and push["qpos_change"][2] > 0.05  # qpos[2]: the ball's x
    assert push["qpos_error"] < 1e-4


def test_pathwise_gradient_matches_central_differences_without_contact(measured):
    r = measured["mjx_reacher"]
    assert abs(r["grad"] - r["fd"]) <= 1e-5 * abs(r["fd"]) and abs(r["fd"]) > 1e-3


def test_pathwise_gradient_matches_central_differences_with_contact(measured):
    r = measured["mjx_push"]
    assert abs(r["grad"] - r["fd"]) <= 1e-3 * abs(r["fd"]) and abs(r["fd"]) > 1e-3


def test_float64_stays_float64_and_integers_stay_integers(measured):
    for name in ("mjx_reacher", "mjx_push"):
        assert measured[name]["float_dtype"] == "float64"
        assert measured[name]["int_dtypes"] and all(d.startswith("int") or d.startswith("uint")
                                                    for d in measured[name]["int_dtypes"])
