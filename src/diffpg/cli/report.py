"""``diffpg report DIR ... --out report.html``: one self-contained page of runs, comparisons and checks.

    diffpg report runs/shac-0 runs/shac-1 runs/ppo-0 --out report.html
    diffpg report runs/* out/compare runs/check --out report.html

Each directory is told by its files: a training run (``diffpg train --out``),
a comparison (``diffpg compare --out``) or a check (``diffpg check --out``).
Runs with the same settings and different seeds are drawn as one band. The
page embeds its figures and loads nothing from the network
(``diffpg.report.html``). Exit status: 0 when written, 2 for a directory that
is none of those kinds or an ``--out`` that cannot be written.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import tyro

from ..report.html import write_report


@dataclasses.dataclass(frozen=True)
class Config:
    paths: Annotated[tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="DIR")]
    """The --out directories of diffpg train, compare or check, in the order the page shows them."""
    out: Path = Path("report.html")
    """The HTML file to write."""
    title: str = "diffpg report"
    """The page's title."""


def run(config: Config) -> int:
    out = write_report(config.paths, config.out, config.title)
    print(f"wrote {out}")
    return 0
