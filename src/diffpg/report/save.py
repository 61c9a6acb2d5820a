"""A figure of our own and writing it: what every plotting function shares.

Figures are ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot's: drawing one changes
neither the process's matplotlib backend nor pyplot's list of open figures, so a plot from a library
call leaves its caller's matplotlib as it found it.
"""
from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure(**kwargs) -> Figure:
    """A new ``Figure(**kwargs)`` drawn by its own Agg canvas."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: float | None = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` (creating its folder) and return the path.

    ``dpi=None`` keeps the figure's own resolution.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi="figure" if dpi is None else dpi)
    return path
