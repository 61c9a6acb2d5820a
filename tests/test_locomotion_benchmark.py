"""benchmarks/locomotion.py: the table's returns at a wall time, the training diagnostics, the settings' override, and
diffpg report's page of the stored runs."""
import importlib.util
import inspect
import json
import math
import sys
import warnings
from pathlib import Path

import pytest

from diffpg.report.sources import band, groups, read

spec = importlib.util.spec_from_file_location("locomotion", Path(__file__).parents[1] / "benchmarks" / "locomotion.py")
locomotion = sys.modules["locomotion"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locomotion)


def _store(results: Path, name: str, seed: int, returns, grad_norms=None, platform="Linux-a"):
    curve = [dict(env_steps=1000 * i, wall_s=300.0 * i + seed, cpu_s=300.0 * i, mean=r, std=1.0,
                  **({"grad_norm": grad_norms[i]} if grad_norms else {})) for i, r in enumerate(returns)]
    path = results / "HalfCheetah-v5" / name / f"seed-{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(seed=seed, curve=curve, compile_s=100.0, throughput=400.0,
                                    machine=dict(platform=platform, cpus=2))))


def test_at_wall_takes_the_judging_due_then():
    curve = [dict(wall_s=0.0, mean=1.0), dict(wall_s=308.0, mean=2.0), dict(wall_s=611.0, mean=3.0)]
    assert locomotion.at_wall(curve, 300.0)["mean"] == 2.0  # due at 300 s, landed 8 s later
    assert locomotion.at_wall(curve, 299.0 - locomotion.JUDGING_SLACK_S - 1)["mean"] == 1.0


def test_training_diagnostics_average_only_finite_values():
    # a chunk's "return" is NaN for each update in which no training episode ended
    assert locomotion._finite_mean([float("nan"), 1.0, 3.0]) == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" in the run's log
        assert math.isnan(locomotion._finite_mean([float("nan")] * 3))


def test_table_writes_diffpg_reports_page_with_seeds_as_bands(tmp_path):
    _store(tmp_path, "sapo", 0, [10.0, 500.0, 900.0], grad_norms=[1.0, 2.0, 4.0])
    _store(tmp_path, "sapo", 1, [20.0, 700.0, 1500.0], grad_norms=[1.0, 8.0, 16.0])
    _store(tmp_path, "sb3-ppo", 0, [0.0, 300.0])
    locomotion.main_show(locomotion.Show(task="HalfCheetah-v5", results=tmp_path, plot=False))
    page = (tmp_path / "HalfCheetah-v5" / "report.html").read_text()
    assert "3 training runs in 2 groups" in page and "sapo on HalfCheetah-v5" in page
    found = {g.label: g for g in groups(read(sorted((tmp_path / "HalfCheetah-v5" / "report").glob("*/seed-*"))).runs)}
    xs, centre, low, high, n = band(found["sapo on HalfCheetah-v5"].runs, "wall_s", "eval/return")
    assert n == [2, 2, 2] and xs == [0.5, 300.5, 600.5]
    assert centre == [15.0, 600.0, 1200.0]  # the mean over the two seeds at each judging
    assert high[2] - centre[2] == pytest.approx(300.0 * 2 ** 0.5)  # one sample standard deviation: |a - b| / √2
    assert band(found["sb3-ppo on HalfCheetah-v5"].runs, "env_steps", "eval/return")[1] == [0.0, 300.0]
    records = locomotion.stored_runs(tmp_path, "HalfCheetah-v5")["sapo"]
    assert [locomotion.first_reaching(r["curve"], 1500.0) for r in records] == [None, (2000, 601.0)]


def test_table_names_the_machines_when_the_records_come_from_several(tmp_path, capsys):
    _store(tmp_path, "sapo", 0, [10.0, 500.0])
    _store(tmp_path, "sapo", 1, [20.0, 700.0], platform="Linux-b")
    _store(tmp_path, "sb3-ppo", 0, [0.0, 300.0])
    show = locomotion.Show(task="HalfCheetah-v5", results=tmp_path, plot=False)
    locomotion.main_show(show)
    out = capsys.readouterr().out
    assert "records from 2 machines" in out
    assert "Linux-a: sapo seed 0, sb3-ppo seed 0" in out and "Linux-b: sapo seed 1" in out
    (tmp_path / "HalfCheetah-v5" / "sapo" / "seed-1.json").unlink()
    locomotion.main_show(show)
    assert "records from" not in capsys.readouterr().out


def test_an_override_changes_a_contenders_settings_by_the_names_its_trainer_takes(capsys):
    def train(num_envs=1, discounting=0.95):
        pass

    run = locomotion.Run(contender="brax-ppo", override='{"discounting": 0.99}')
    assert locomotion.with_override(dict(num_envs=64, discounting=0.95), run, train) == dict(num_envs=64,
                                                                                            discounting=0.99)
    with pytest.raises(SystemExit) as exit:
        locomotion.with_override({}, locomotion.Run(contender="brax-ppo", override='{"gamma": 0.99}'), train)
    assert exit.value.code == 2
    assert capsys.readouterr().err == "--override: brax-ppo has no setting named gamma.\n"


def test_an_override_cannot_change_what_the_benchmark_sets_alike_for_every_contender(capsys):
    from stable_baselines3 import PPO, SAC

    for takes in (SAC, PPO):
        assert set(locomotion.SB3_OWN) <= set(inspect.signature(takes).parameters)  # the names are SB3's own
    with pytest.raises(SystemExit) as exit:
        locomotion.with_override({}, locomotion.Run(contender="sb3-sac", override='{"seed": 3, "verbose": 1}'),
                                 SAC, locomotion.SB3_OWN)
    assert exit.value.code == 2
    assert capsys.readouterr().err == ("--override: the benchmark sets seed, verbose itself, alike for every "
                                       "contender (see --seed and --budget-s).\n")


def test_the_arguments_the_benchmark_passes_brax_are_brax_ppos_own():
    train = pytest.importorskip("brax.training.agents.ppo.train")  # brax is a bench extra, not a test one
    assert set(locomotion.BRAX_OWN) <= set(inspect.signature(train.train).parameters)


def test_zoos_ppo_normalizes_returns_with_its_own_discount():
    model, normalize, _ = locomotion.sb3_contender(locomotion.Run(task="Hopper-v5", contender="sb3-ppo-zoo"))
    assert model.gamma == normalize.gamma == 0.999
    assert model.get_env() is normalize
    model, normalize, _ = locomotion.sb3_contender(locomotion.Run(task="Hopper-v5", contender="sb3-ppo"))
    assert normalize is None and model.gamma == 0.99
