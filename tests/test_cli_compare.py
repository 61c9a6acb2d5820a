"""``diffpg compare``, the main job: its table, results.json and plot, checked on LQR against the closed form.

On LQR the reference is the exact gradient (``diffpg.oracles.lqr``), so the
pathwise and score-function rows must point where it does. One run with two
estimators and short horizons (each estimator compiles once for the table and
the sweep); the misuse cases exit with status 2 before anything compiles.
"""
import json

import pytest

from diffpg.cli.main import main


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    status = main(["compare", "--env", "lqr", "--estimators", "pathwise", "score_function", "--horizon", "10",
                   "--horizons", "2", "5", "10", "--num-envs", "64", "--repeats", "8", "--no-compile-cache",
                   "--out", str(out)])
    return status, out


def test_compare_writes_the_table_results_and_plot(compared, capsys):
    status, out = compared
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert results["reference"] == "exact (closed form)"
    rows = results["estimators"]
    assert set(rows) == {"pathwise", "score_function"}
    for row in rows.values():
        assert [point["horizon"] for point in row["sweep"]] == [2, 5, 10]
        assert all(point["per_rollout_variance"] > 0 for point in row["sweep"])
        # the sweep's horizon-10 point is the table's estimate itself (one compiled function serves both)
        assert row["sweep"][-1]["per_rollout_variance"] == pytest.approx(row["per_rollout_variance"])
        assert row["seconds_per_gradient"] > 0
    # 8 x 64 rollouts: the pathwise mean gradient (SNR about 6 per estimate) is within a few degrees of the
    # exact one; the score function's per-rollout variance is orders of magnitude larger (tests/test_estimators.py
    # measures the ratio), so its cosine is left unchecked here
    assert rows["pathwise"]["cosine_to_reference"] > 0.99
    assert rows["score_function"]["per_rollout_variance"] > 10 * rows["pathwise"]["per_rollout_variance"]
    assert (out / "variance_vs_horizon.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, words", [
    (["--env", "nope"], "unknown environment"),
    (["--horizon", "10", "--horizons", "5", "20"], "--horizons"),
    (["--repeats", "1"], "--repeats"),
    (["--estimators", "magic"], "unknown estimators"),
])
def test_compare_misuse_exits_2_with_one_sentence(args, words, tmp_path, capsys):
    assert main(["compare", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1
