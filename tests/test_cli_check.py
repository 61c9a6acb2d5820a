"""``diffpg check MODULE:ATTR``: exit 1 with the right verdict for a broken env, 0 for a correct one, 2 for misuse.

The example environments live in tests/fixtures/user_envs.py and are named
the way a user names theirs: ``user_envs:ATTR`` from the directory that holds
the file. Each full check compiles a handful of functions, so each runs once
(module-scoped) and several tests read its output.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from diffpg.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"


def run_check(args, monkeypatch, capsys):
    """Run ``diffpg check ARGS`` in-process from the fixtures directory; (exit status, stdout, stderr)."""
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps table cells at the terminal width; keep sentences whole
    status = main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def module_patch():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def checked(tmp_path_factory, module_patch):
    """``checked(ATTR, *flags)``: run each full check once per module; (status, stdout, out directory)."""
    import contextlib
    import io

    cache = {}

    def run(attr, *flags):
        if (attr, flags) not in cache:
            out_dir = tmp_path_factory.mktemp(attr.replace(":", "_"))
            module_patch.chdir(FIXTURES)
            module_patch.setenv("COLUMNS", "400")
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                status = main(["check", f"user_envs:{attr}", "--out", str(out_dir), *flags])
            cache[(attr, flags)] = (status, stdout.getvalue(), out_dir)
        return cache[(attr, flags)]

    return run


@pytest.mark.slow
def test_a_stop_gradient_inside_step_is_flagged_with_exit_1(checked):
    status, out, out_dir = checked("StopGradientStep")
    assert status == 1
    assert ("pathwise gradient disagrees with the score function at horizon 1" in out
            and "the step cuts or breaks the gradient" in out)
    assert "the derivative of obs with respect to action disagrees with finite differences at 16 of 16" in out
    assert "the step cuts the gradient there" in out
    assert "verdict: 3 problems found" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert report["passed"] is False
    problems = [f["check"] for f in report["findings"] if f["status"] == "problem"]
    assert problems.count("pathwise vs score function") == 1
    assert problems.count("autodiff vs finite differences") == 2  # d obs/d action and d reward/d action


@pytest.mark.slow
def test_a_correct_env_from_a_factory_with_a_users_policy_passes_with_exit_0(checked):
    status, out, out_dir = checked("make_linear", "--policy", "user_envs:linear_policy")
    assert status == 0, out
    assert "verdict: the gradients are consistent" in out
    assert "autodiff matches finite differences (float64) at 16 random states" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert report["passed"] is True and report["precision"] == "float64"
    assert [row["horizon"] for row in report["sweep"]] == [1, 5, 20, 50, 100]  # 100: Linear has no max_steps
    assert report["recommendation"].startswith("use pathwise") and "recommendation: use pathwise" in out
    for row in report["sweep"]:
        assert row["max_abs_z"] <= row["z_threshold"]
        assert 0 < row["pathwise_variance"] < row["score_function_variance"]
    png = (out_dir / "variance_vs_horizon.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.slow
def test_an_env_producing_nan_is_flagged_with_exit_1(checked):
    status, out, out_dir = checked("NaNReward", "--horizons", "1")
    assert status == 1
    assert "random rollouts reach non-finite reward" in out
    assert "the pathwise gradient estimates are non-finite: 32 of 32 at horizon 1" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert all(np.isnan(row["pathwise_variance"]) for row in report["sweep"])


@pytest.mark.parametrize("args, phrase", [
    (["no_such_module:Env"], "no module named 'no_such_module'"),
    (["user_envs:NoSuchEnv"], "module user_envs has no attribute 'NoSuchEnv'"),
    (["user_envs"], "unknown environment 'user_envs'; the registered ones are"),
    (["user_envs:NOT_AN_ENV"], "needs an environment with observation_size, and dict has none"),
    (["user_envs:WrongObsShape"], "returns .obs of shape (2,), but it must have shape (3,)"),
    (["user_envs:Linear", "--policy", "user_envs:LINEAR"], "needs a policy with init(), and Linear has none"),
    (["user_envs:Linear", "--horizons", "5", "1"], "horizons must be increasing"),
    (["user_envs:BranchesInPython"], "BranchesInPython.step branches in Python on a traced value (user_envs.py:"),
])
def test_bad_usage_is_one_sentence_and_exit_2(args, phrase, monkeypatch, capsys, tmp_path):
    status, out, err = run_check([*args, "--out", str(tmp_path)], monkeypatch, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffpg: error: "), err
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in err and not any(tmp_path.iterdir())


def test_the_module_is_imported_from_the_current_directory_only_while_loading(monkeypatch):
    import sys

    from diffpg.envs.spec import load

    monkeypatch.chdir(FIXTURES)
    before = list(sys.path)
    env = load("user_envs:LINEAR", "environment", "step")
    assert type(env).__name__ == "Linear" and sys.path == before
    assert type(load(str(FIXTURES / "user_envs.py") + ":make_linear", "environment", "step")).__name__ == "Linear"


@pytest.mark.slow
def test_with_its_defaults_check_reaches_the_episode_and_names_termination(checked):
    # LeavesTheBox (tests/fixtures/user_envs.py) ends its episode when the point leaves a box, at most after its
    # max_steps = 100: the default horizons must reach 100, and the disagreement must name the termination.
    status, out, out_dir = checked("LeavesTheBox")
    assert status == 1
    report = json.loads((out_dir / "report.json").read_text())
    assert [row["horizon"] for row in report["sweep"]] == [1, 5, 20, 50, 100]
    (finding,) = [f for f in report["findings"] if f["check"] == "pathwise vs score function"]
    assert finding["status"] == "problem" and "terminate (done)" in finding["message"], finding
    (gradient,) = [f for f in report["findings"] if f["check"] == "action gradient"]
    assert gradient["status"] == "ok", gradient  # 1 - x² per step: the return has a gradient
    assert "terminate (done)" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("recommendation: use auto (pathwise is biased at H ≥ "), last
    assert "where episodes terminate" in last and "shac with windows ≤" in last


def test_check_runs_on_an_mjx_environment_and_names_a_return_with_no_action_gradient(tmp_path):
    """``python -m diffpg check`` end to end on an MJX pole (tests/fixtures/user_envs.py) that pays an alive bonus,
    with a tiny budget: the pathwise gradient is exactly zero, the MJX solve is checked at two iteration counts."""
    import os
    import subprocess
    import sys

    pytest.importorskip("mujoco.mjx")
    command = [sys.executable, "-m", "diffpg", "check", "user_envs:alive_pole", "--out", str(tmp_path),
               "--horizons", "1", "5", "--num-states", "2", "--warmup-steps", "2", "--max-inputs", "8",
               "--num-envs", "8", "--repeats", "3"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=FIXTURES, timeout=900,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 1, done.stderr
    assert "checking user_envs:alive_pole with horizons 1, 5; 8 rollouts per estimate, 3 estimates" in done.stdout
    assert "the return has no gradient with respect to the actions" in done.stdout
    assert "recommendation: use score_function (reinforce or ppo to train)" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    found = {f["check"]: f for f in report["findings"]}
    assert found["action gradient"]["status"] == "problem" and "alive bonus" in found["action gradient"]["message"]
    assert all(row["pathwise_norm"] == 0.0 < row["score_function_norm"] for row in report["sweep"])
    solve = found["mjx: converged solve"]["message"]  # the hinge's limit gives the solve rows: both gradients zero
    assert found["mjx: converged solve"]["status"] == "ok" and "iterations=8 is identical to iterations=16" in solve
    assert "frame_skip=2" in found["mjx: frame_skip"]["message"]
    assert report["precision"] == "float64"  # the single steps ran with the model's float64 copy (in_float64)


def test_check_takes_a_built_in_name(monkeypatch, capsys, tmp_path):
    status, out, err = run_check(["lqr", "--out", str(tmp_path), "--horizons", "1", "2", "--num-states", "2",
                                  "--warmup-steps", "1", "--num-envs", "4", "--repeats", "3"], monkeypatch, capsys)
    assert status in (0, 1), err
    assert "checking lqr with horizons 1, 2; 4 rollouts per estimate" in out
    assert json.loads((tmp_path / "report.json").read_text())["settings"]["repeats"] == 3
