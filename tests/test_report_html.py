"""``diffpg report``: one self-contained HTML page of runs, comparisons and checks.

Bands and grouping are tested against hand-written run directories whose
means and standard deviations are known exactly, including a config nested
per algorithm with the seed inside and an ``eval/return`` column logged on
some updates only; a check's ``report.json`` is written by ``trust.Report``
itself. Two tiny runs and a comparison made by the real ``diffpg train`` and
``diffpg compare`` (seconds each, mostly compiling) show that the page reads
what those commands write. The page is rendered by a real headless Chromium
(Debian's ``chromium``, which ``.ci/run`` installs) and its screenshot must
show the plots.
"""
from __future__ import annotations

import base64
import doctest
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from diffpg.cli.main import main
from diffpg.report import html as report_html
from diffpg.report import sources
from diffpg.report.sources import band, groups, read
from diffpg.trust import Finding, Report

TINY = ["--no-compile-cache", "--no-plot", "--no-tensorboard", "--env", "pendulum", "--updates", "4",
        "--log-every", "2", "--algo", "ascent", "--ascent.estimator", "pathwise", "--budget.num-envs", "4", "--budget.window", "4",
        "--policy.hidden", "8"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Two seeds of ascent (it logs the estimator's own gradient variance) and a comparison, by the real commands."""
    root = tmp_path_factory.mktemp("made")
    for seed in (0, 1):
        assert main(["train", "--out", str(root / f"ascent-{seed}"), "--seed", str(seed), *TINY]) == 0
    assert main(["compare", "--no-compile-cache", "--env", "lqr", "--estimators", "pathwise", "--horizon", "2",
                 "--horizons", "2", "--repeats", "2", "--num-envs", "2", "--out", str(root / "compare")]) == 0
    return root


def write_run(path: Path, config: dict, rows: list[dict], seed: int | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if seed is not None:
        (path / "run.json").write_text(json.dumps({"seed": seed}))
    return path


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """Three hand-written runs, configs nested per algorithm with the seed inside: two share their settings."""
    root = tmp_path_factory.mktemp("nested")

    def rows(returns, evals):
        return [{"update": u + 1, "env_steps": 10 * (u + 1), "wall_s": 0.5 * (u + 1), "return": r,
                 "grad_norm": 2.0 ** u, **({"eval/return": e} if e is not None else {})}
                for u, (r, e) in enumerate(zip(returns, evals))]

    config = {"env": "pendulum", "algo": "shac", "shac": {"window": 5, "seed": 0}, "out": "runs/a"}
    a = write_run(root / "a", config, rows([1.0, 2.0, 3.0], [None, 10.0, None]))
    b = write_run(root / "b", {**config, "shac": {"window": 5, "seed": 1}, "out": "runs/b"},
                  rows([3.0, 4.0], [None, 14.0]))
    c = write_run(root / "c", {**config, "shac": {"window": 9, "seed": 0}}, rows([0.0], [None]))
    return a, b, c


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    """Three seeds of 60 updates each of two settings, with known noisy curves, and a check's report.json."""
    root = tmp_path_factory.mktemp("curves")
    runs = []
    for lr in (0.01, 0.001):
        for seed in range(3):
            rows = [{"update": u, "env_steps": 100 * u, "wall_s": 0.2 * u * (1 + 0.1 * seed),
                     "return": -1000 + (15 if lr == 0.01 else 8) * u + 60 * math.sin(u + 2 * seed),
                     "grad_norm": 5.0 * (1.5 + math.cos(u / 3 + seed)), "skipped": 0} for u in range(1, 61)]
            runs.append(write_run(root / f"lr{lr}-{seed}", {"env": "pendulum", "algo": "apg", "actor_lr": lr},
                                  rows, seed=seed))
    (root / "check").mkdir()
    report = Report(findings=[Finding("non-finite values", "ok", "all finite"),
                              Finding("variance growth", "problem", "the pathwise variance grows by x9 per step")],
                    precision="float64", growth={},
                    sweep=[{"horizon": h, "pathwise_variance": 0.1 * 9.0 ** h, "score_function_variance": 5.0 * h,
                            "max_abs_z": 1.0, "z_threshold": 4.0, "variance_threshold": 3.0} for h in (1, 2, 4)])
    (root / "check" / "report.json").write_text(report.to_json())
    return [*runs, root / "check"]


def test_runs_of_one_setting_and_different_seeds_form_one_band(nested):
    found = groups(read(nested).runs)
    assert [len(g.runs) for g in found] == [2, 1]
    assert [r.seed for r in found[0].runs] == [0, 1]  # the nested config's own seed, as run.json is absent
    assert found[0].label == "shac on pendulum, shac.window=5" and found[1].label == "shac on pendulum, shac.window=9"
    xs, centre, low, high, n = band(found[0].runs, "env_steps", "return")
    # update 1: {1, 3}; update 2: {2, 4}; update 3: {3} only (run b stopped early)
    assert xs == [10.0, 20.0, 30.0] and centre == [2.0, 3.0, 3.0] and n == [2, 2, 1]
    assert high[0] - centre[0] == pytest.approx(math.sqrt(2.0)) and low[2] == high[2] == 3.0
    xs, centre, _, _, n = band(found[0].runs, "wall_s", "eval/return")  # logged at update 2 only
    assert xs == [1.0] and centre == [12.0] and n == [2]
    _, centre, low, high, _ = band(found[0].runs, "env_steps", "grad_norm", log=True)
    assert centre == pytest.approx([1.0, 2.0, 4.0]) and low[1] == high[1] == pytest.approx(2.0)


@pytest.mark.slow
def test_real_runs_and_a_comparison_make_every_section(made, curves):
    dirs = [made / "ascent-0", made / "ascent-1", made / "compare", curves[-1]]
    found = read(dirs)
    assert [len(g.runs) for g in groups(found.runs)] == [2]
    assert [r.seed for r in found.runs] == [0, 1]
    assert len(found.compares) == 1 and len(found.checks) == 1
    out = made / "page" / "report.html"  # a folder that does not exist yet
    assert main(["report", *map(str, dirs), "--out", str(out)]) == 0
    page = out.read_text()
    for heading in ("Learning curves", "Gradients", "Runs", "Estimator comparison: lqr", "Gradient check"):
        assert f"<h2>{heading}" in page
    assert "1 problem found" in page and "ascent on pendulum (2 seeds: 0, 1)" in page
    results = json.loads((made / "compare" / "results.json").read_text())
    assert f"<td>{results['estimators']['pathwise']['snr']:.4g}</td>" in page
    tags = Tags()
    tags.feed(page)
    assert len(tags.images) == 4  # learning curves, gradients, comparison, check
    gradients = base64.b64decode(tags.images[1].partition(",")[2]).decode()
    for title in ("policy gradient norm", "as the estimator measures it", "across seeds"):
        assert title in gradients  # matplotlib keeps a figure's text as comments in its SVG


class Tags(HTMLParser):
    """Every tag's attributes, and the images' sources."""

    def __init__(self):
        super().__init__()
        self.tags, self.images = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_the_page_loads_nothing_from_anywhere(nested, curves):
    out = report_html.write_report([*nested, *curves], nested[0].parent / "offline.html")
    page = out.read_text()
    tags = Tags()
    tags.feed(page)
    assert tags.images and all(src.startswith("data:image/svg+xml;base64,") for src in tags.images)
    for tag, attrs in tags.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for name in ("src", "href", "srcset", "poster", "data"):
            assert name not in attrs or attrs[name].startswith("data:"), (tag, name, attrs[name][:80])
    assert "url(" not in page and "@import" not in page
    curves = base64.b64decode(tags.images[0].partition(",")[2]).decode()
    assert "evaluation return" in curves and "training return" in curves  # matplotlib keeps the text as comments
    assert "<td>14</td>" in page  # run b's last evaluation return, in the runs table


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed here (.ci/run installs it in "
                                               "CI: apt-get install chromium)")
def test_the_page_renders_in_headless_chromium(curves, tmp_path):
    from matplotlib.image import imread

    page = report_html.write_report(curves, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    ink = (pixels < 0.95).any(axis=-1).mean()
    assert ink > 0.05, f"the screenshot is almost blank ({ink:.1%} of its pixels are not white)"
    # the plots' own colour: matplotlib's first line colour, tab:blue (31, 119, 180), appears only if the embedded
    # SVGs were decoded and drawn (text and tables are grey and black, a broken image is an icon)
    blue = (abs(pixels - [31 / 255, 119 / 255, 180 / 255]) < 0.12).all(axis=-1).sum()
    assert blue > 500, f"only {blue} pixels of the plots' blue: the figures did not render"


@pytest.mark.parametrize("make", ["empty", "missing", "file", "bad config"])
def test_a_directory_that_is_not_a_run_gets_one_sentence_and_exit_2(make, tmp_path, capsys):
    target = tmp_path / "target"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("not a directory")
    elif make == "bad config":
        write_run(target, {}, [])
        (target / "config.json").write_text("{not json")
    out = tmp_path / "report.html"
    assert main(["report", str(target), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("diffpg: error: ") and str(target) in err
    assert not out.exists()


def test_no_directories_is_a_usage_error(capsys):
    assert main(["report"]) == 2
    assert "no directories given" in capsys.readouterr().err


def test_the_docstring_examples_run():
    result = doctest.testmod(sources)
    assert result.attempted >= 6 and result.failed == 0


def test_a_malformed_comparison_is_refused_in_one_sentence(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps({"estimators": ["pathwise"]}))
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "malformed 'estimators' table" in capsys.readouterr().err


def test_long_runs_are_thinned_to_a_bounded_page(tmp_path):
    # a noisy curve: matplotlib's own path simplification would drop the points of a straight one anyway
    rows = [{"update": u, "env_steps": u, "wall_s": u, "return": math.sin(u)} for u in range(1, 5002)]
    page = report_html.write_report([write_run(tmp_path / "long", {"algo": "ppo"}, rows)], tmp_path / "r.html")
    xs, ys, *_ = report_html._thin(band(read([tmp_path / "long"]).runs, "env_steps", "return"))
    assert len(xs) <= report_html.MAX_POINTS + 1 and xs[0] == 1 and xs[-1] == 5001
    assert ys == [math.sin(x) for x in xs]
    assert page.stat().st_size < 150_000  # 100 kB here; 230 kB with every point drawn


def test_every_group_is_in_the_legend_even_one_with_only_an_evaluation_return(tmp_path):
    rows = [{"update": 1, "env_steps": 1, "wall_s": 1.0, "eval/return": 1.0}]
    runs = [write_run(tmp_path / "a", {"algo": "ppo", "env": "lqr"}, rows, seed="first"),
            write_run(tmp_path / "b", {"algo": "ppo", "env": "pendulum"},
                      [{"update": 1, "env_steps": 1, "wall_s": 1.0, "return": 2.0}], seed=3)]
    tags = Tags()
    tags.feed(report_html.write_report(runs, tmp_path / "r.html").read_text())
    curves = base64.b64decode(tags.images[0].partition(",")[2]).decode()
    assert "ppo on lqr (1 seed: first)" in curves and "ppo on pendulum (1 seed: 3)" in curves
