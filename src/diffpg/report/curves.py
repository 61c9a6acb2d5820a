"""The learning curve of a training run, as a PNG.

Two panels against training env steps: the return, of the training episodes
as they finish (with the policy's exploration noise) and of the periodic
deterministic evaluation on held-out start states (``eval/return``), and the
policy gradient's global norm on a log scale, with skipped (non-finite)
updates marked. Drawn on a figure of its own (``save.figure``: no pyplot, no GUI
backend, no global figure state).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .save import figure


def _series(rows, name):
    xs, ys = [], []
    for row in rows:
        value = row.get(name)
        if isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(row["env_steps"])
            ys.append(value)
    return xs, ys


def learning_curve(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Draw ``rows`` (metrics.jsonl rows) to the PNG ``path``; return the path."""
    fig = figure(figsize=(7.5, 5.0))
    # fixed margins: a layout engine would draw the figure twice, doubling the time this takes
    ax_ret, ax_grad = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1),
                                   gridspec_kw=dict(left=0.11, right=0.97, top=0.94, bottom=0.1, hspace=0.08))
    xs, ys = _series(rows, "return")
    if xs:
        ax_ret.plot(xs, ys, color="tab:blue", lw=0.8, alpha=0.6, marker=".", ms=3,
                    label="training episodes (with exploration noise)")
    xs, ys = _series(rows, "eval/return")
    if xs:
        ax_ret.plot(xs, ys, color="tab:orange", lw=1.8, marker="o", ms=4,
                    label="evaluation (deterministic, held-out starts)")
    ax_ret.set_ylabel("return")
    ax_ret.legend(loc="lower right", fontsize=8)
    ax_ret.grid(alpha=0.3)
    ax_ret.set_title(title, fontsize=10)
    xs, ys = _series(rows, "grad_norm")
    if xs:
        ax_grad.plot(xs, ys, color="tab:green", lw=1.0, label="policy gradient norm (before clipping)")
        if all(y > 0 for y in ys):
            ax_grad.set_yscale("log")
    bad, before = [], 0
    for row in rows:  # "skipped" counts skipped updates so far; mark where it grows
        if (row.get("skipped") or 0) > before:
            bad.append(row["env_steps"])
        before = row.get("skipped") or before
    for x in bad:
        ax_grad.axvline(x, color="tab:red", lw=0.8, alpha=0.6)
    if bad:
        ax_grad.plot([], [], color="tab:red", lw=0.8, label=f"skipped updates ({len(bad)})")
    ax_grad.set_ylabel("grad norm")
    ax_grad.set_xlabel("env steps")
    ax_grad.legend(loc="upper right", fontsize=8)
    ax_grad.grid(alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
