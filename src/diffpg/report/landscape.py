"""The figure of a landscape slice (``diffpg.landscape``): raw and smoothed, with their slopes at s = 0."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .save import figure, save_figure


def plot(cut, path, title: str = "J(θ + s·d)", ax=None) -> Path | None:
    """Draw the raw and smoothed slices of ``cut`` (a ``diffpg.landscape.Slice``) and both slopes at s = 0
    as tangent lines; write a PNG to ``path``.

    With ``ax`` (a matplotlib Axes) it draws there and writes nothing (``path`` may be None).
    """
    own = ax is None
    if own:
        fig = figure(figsize=(5, 3.6))
        ax = fig.subplots()
    s, raw, smoothed = (np.asarray(x, np.float64) for x in (cut.offsets, cut.raw, cut.smoothed))
    ax.plot(s, raw, lw=0.9, color="tab:blue", label="raw (same keys at every s)")
    ax.plot(s, smoothed, lw=2.0, color="tab:orange", label=f"smoothed (σ = {cut.smoothing:g})")
    i0 = int(np.argmin(np.abs(s)))
    half = 0.15 * float(s[-1] - s[0])
    ts = np.linspace(-half, half, 2)
    ax.plot(ts, raw[i0] + float(cut.raw_slope) * ts, "--", color="tab:blue", label="pathwise slope at 0")
    ax.plot(ts, smoothed[i0] + float(cut.smoothed_slope) * ts, "--", color="tab:orange",
            label="smoothed slope at 0")
    ax.set(xlabel="s (step along d)", ylabel="return", title=title)
    ax.legend(fontsize=7)
    if not own:
        return None
    fig.tight_layout()
    return save_figure(fig, path)
