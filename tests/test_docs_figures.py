"""Every figure script under docs/figures runs, on a tiny budget, into a temporary directory.

The full-budget runs (``python docs/figures/NAME.py``) regenerate the figures and tables in
docs/why-pathwise.md; these runs keep each script working with the current library, and check that it
writes the figures it promises. The numbers of a tiny run mean nothing, so none are asserted.
"""
import importlib.util
from pathlib import Path

import pytest

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"
SCRIPTS = {  # script: the files it writes
    "bandit_variance": [],
    "lqr_variance": ["lqr_variance.png"],
    "landscape": ["landscape.png"],
    "checks": ["check_ball_wall.png", "check_double_pendulum.png"],
}


def load(name):
    spec = importlib.util.spec_from_file_location(f"docs_figures_{name}", FIGURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_figure_script_is_listed():
    scripts = {p.stem for p in FIGURES.glob("*.py")} - {"my_envs"}  # my_envs: the example user environments
    assert scripts == set(SCRIPTS)
    figures = {p.name for p in FIGURES.glob("*.png")}
    assert figures == {f for files in SCRIPTS.values() for f in files}, "a figure in docs/ that no script writes"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_figure_script_runs_on_a_tiny_budget(name, tmp_path, capsys):
    load(name).main(tmp_path, tiny=True)
    out = capsys.readouterr().out
    assert "|---" in out  # each prints its markdown table
    for file in SCRIPTS[name]:
        png = (tmp_path / file).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000, file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCRIPTS[name])
