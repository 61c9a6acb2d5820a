"""Writing a pyplot figure: the last step every plotting function shares."""
from __future__ import annotations

import os
from pathlib import Path


def save_figure(fig, path: str | os.PathLike, dpi: float | None = 100) -> Path:
    """Write ``fig`` as a PNG at ``path`` (creating its folder), release it from pyplot, and return the path.

    ``dpi=None`` keeps the figure's own resolution.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi="figure" if dpi is None else dpi)
    plt.close(fig)
    return path
