"""``diffpg check`` end to end on the two built-in environments it exists to catch (exit status 1, the cause named).

- ``ball_wall``: contact. The pathwise gradient agrees with the score function before the ball can reach
  the wall (H = 1, 10) and is biased once it can (H = 30); 256 rollouts per estimate resolve the bias
  (|z| ≈ 8.6 against a threshold of 4.85 with the default seed; the default 64 leave it marginal).
- ``double_pendulum``: chaos. By H = 100 the pathwise variance is about 50 times the score function's.

Each check compiles a few programs and takes 20 to 30 CPU seconds, so each runs once (module-scoped).
"""
import contextlib
import io
import json

import pytest

from diffpg.cli.main import main

CASES = {
    "ball_wall": ["diffpg.envs.ball_wall:BallWall", "--horizons", "1", "10", "30", "--num-envs", "256"],
    "double_pendulum": ["diffpg.envs.double_pendulum:DoublePendulum", "--horizons", "1", "10", "100"],
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    cache = {}

    def run(name):
        if name not in cache:
            out_dir = tmp_path_factory.mktemp(name)
            stdout = io.StringIO()
            with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
                patch.setenv("COLUMNS", "400")  # rich wraps table cells at the terminal width; keep sentences whole
                status = main(["check", *CASES[name], "--out", str(out_dir)])
            report = json.loads((out_dir / "report.json").read_text())
            cache[name] = status, stdout.getvalue(), report
        return cache[name]

    return run


def problems(report):
    return {f["check"]: f["message"] for f in report["findings"] if f["status"] == "problem"}


@pytest.mark.slow
def test_ball_wall_contact_is_flagged_as_a_pathwise_bias(checked):
    status, out, report = checked("ball_wall")
    assert status == 1 and report["passed"] is False
    assert list(problems(report)) == ["pathwise vs score function"]
    message = problems(report)["pathwise vs score function"]
    assert message.startswith("pathwise gradient disagrees with the score function at horizon 30")
    assert "they agree at horizons 1, 10" in message and "the rollout is discontinuous (contact" in message
    assert "verdict: 1 problem found" in out
    z = {row["horizon"]: row["max_abs_z"] / row["z_threshold"] for row in report["sweep"]}
    assert z[1] < 1 and z[10] < 1 and z[30] > 1


@pytest.mark.slow
def test_double_pendulum_chaos_is_flagged_as_exploding_variance(checked):
    status, out, report = checked("double_pendulum")
    assert status == 1 and report["passed"] is False
    assert list(problems(report)) == ["variance growth"]
    message = problems(report)["variance growth"]
    assert message.startswith("pathwise variance exceeds the score function's at horizon 100")
    assert "the dynamics amplify perturbations (chaos or instability)" in message
    assert "verdict: 1 problem found" in out
    rows = {row["horizon"]: row for row in report["sweep"]}
    assert rows[10]["pathwise_variance"] < rows[10]["score_function_variance"]
    assert rows[100]["pathwise_variance"] > 10 * rows[100]["score_function_variance"]
    # significantly so: the ratio is above the F test's threshold, which report.json keeps per horizon
    assert rows[100]["pathwise_variance"] > rows[100]["variance_threshold"] * rows[100]["score_function_variance"]
    assert 1 < rows[100]["variance_threshold"] < 10
