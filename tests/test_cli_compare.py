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


def test_the_default_list_skips_an_estimator_that_refuses_the_settings_and_a_named_one_refuses(tmp_path):
    # 8 rollouts are too few for the inverse-variance estimator's groups of 8; building compiles nothing
    import io

    from rich.console import Console

    import diffpg
    from diffpg.cli.compare import Config, available, runnable
    from diffpg.errors import ConfigError

    env = diffpg.make("lqr")
    policy = diffpg.policies.LinearGaussian(action_size=env.action_size)
    printed = io.StringIO()
    everything = Config(env="lqr", num_envs=8, horizon=10, out=tmp_path)
    kept = runnable(available(everything), env, policy, everything, Console(file=printed, width=300))
    assert "inverse_variance" not in kept and {"pathwise", "score_function", "auto"} <= set(kept)
    skipped = "skipped inverse_variance: the inverse-variance estimator needs num_envs of at least 16"
    assert skipped in printed.getvalue()
    named = Config(env="lqr", num_envs=8, horizon=10, out=tmp_path, estimators=("pathwise", "inverse_variance"))
    with pytest.raises(ConfigError, match="needs num_envs of at least 16"):
        runnable({k: v for k, v in available(named).items() if k in named.estimators}, env, policy, named,
                 Console(file=io.StringIO()))


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def compared_users_env(tmp_path_factory):
    """``diffpg compare --env user_envs:Linear`` from the directory that holds tests/fixtures/user_envs.py."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("compare_user")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(FIXTURES)
        patch.setenv("COLUMNS", "400")
        status = main(["compare", "--env", "user_envs:Linear", "--estimators", "pathwise", "auto", "--horizon", "10",
                       "--horizons", "5", "10", "--num-envs", "32", "--repeats", "4", "--no-compile-cache",
                       "--out", str(out)])
    return status, out, printed.getvalue()


def test_compare_takes_a_users_env_as_module_attr_and_recommends(compared_users_env):
    status, out, printed = compared_users_env
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["estimators"]) == {"pathwise", "auto"}
    choice = results["estimators"]["auto"]["choice"]
    assert choice.startswith("auto ") and f"at H = 10, {choice}" in printed
    assert all(0.0 <= row["choice"]["alpha"] <= 1.0 for row in results["estimators"]["auto"]["sweep"])
    assert printed.strip().splitlines()[-1].startswith("recommendation: use ")


@pytest.mark.parametrize("env, words", [
    ("user_envs:NoSuchEnv", "module user_envs has no attribute 'NoSuchEnv'"),
    ("user_envs:WrongObsShape", "WrongObsShape.reset(key) returns .obs of shape (2,)"),
    ("user_envs:NOT_AN_ENV", "needs an environment with observation_size, and dict has none"),
])
def test_a_users_env_that_cannot_be_compared_is_one_sentence(env, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    assert main(["compare", "--env", env, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def auto_rows(*rows):
    """results["auto"] with a sweep of (horizon, alpha, share of estimates found biased)."""
    return {"auto": {"sweep": [{"horizon": h, "choice": {"alpha": a, "biased": b}} for h, a, b in rows]}}


def test_the_recommendation_reads_auto_across_the_sweep():
    from diffpg.cli.compare import recommend

    assert recommend(auto_rows((5, 0.9, 0.0), (50, 0.1, 0.75))) == ("use auto (pathwise is biased at H ≥ 50), "
                                                                    "or shac with windows ≤ 5")
    assert recommend(auto_rows((5, 0.9, 0.0), (50, 0.8, 0.25))).startswith(
        "use pathwise (auto finds no bias up to H = 50 and weights it α = 0.80)")
    assert recommend(auto_rows((50, 0.2, 0.0))).startswith("use auto (no bias found up to H = 50")
    snr = {"pathwise": {"snr": 6.0, "cosine_to_reference": 1.0, "grad_norm": 6.0, "per_rollout_variance": 64.0},
           "score_function": {"snr": 0.5, "cosine_to_reference": 0.3, "grad_norm": 2.0, "per_rollout_variance": 1e3}}
    assert recommend(snr, exact=True).startswith("use pathwise (the highest signal-to-noise ratio, 6.00")


def test_a_zero_pathwise_gradient_recommends_the_score_function_whatever_auto_weighted():
    """InvertedPendulum-v5's alive bonus: pathwise is exactly 0 with variance 0, so auto weighted it α = 1."""
    from diffpg.cli.compare import recommend

    zero = {"grad_norm": 0.0, "per_rollout_variance": 0.0}
    results = {"pathwise": zero, "score_function": {"grad_norm": 24.2, "per_rollout_variance": 2290.0},
               **auto_rows((25, 1.0, 0.0))}
    assert recommend(results).startswith("use score_function (reinforce or ppo to train): every pathwise estimate "
                                         "is zero while the score function's is not (‖E ĝ‖ = 24.2)")
    tiny = {"grad_norm": 1e-3, "per_rollout_variance": 0.0}  # not zero: auto's reading stands
    assert recommend({**results, "pathwise": tiny}).startswith("use pathwise (auto finds no bias up to H = 25")


def test_the_reference_is_the_first_estimator_whose_mean_gradient_is_not_zero():
    import numpy as np

    from diffpg.cli.compare import reference_of

    zero, some = np.zeros(3), np.array([0.0, 2.0, 0.0])
    assert reference_of({"pathwise": zero, "pathwise_truncated": zero, "score_function": some}) == "score_function"
    assert reference_of({"pathwise": some, "score_function": 2 * some}) == "pathwise"
    assert reference_of({"pathwise": zero, "score_function": zero}) == "pathwise"  # none has a direction
