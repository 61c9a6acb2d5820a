"""Gradient variance against horizon: the figures of ``diffpg check`` and ``diffpg compare``.

How fast the variance of a gradient estimate grows with the horizon H is the
first thing to look at when choosing an estimator: the pathwise variance grows
exponentially in a chaotic system (Parmas et al., PIPPS, ICML 2018), the score
function's roughly polynomially.
"""
from __future__ import annotations

from pathlib import Path

from .save import figure, save_figure


def trust_plot(report, path) -> Path:
    """``diffpg check``'s figure: variance of one estimate against H for both estimators, and the z-test, as a PNG.

    ``report`` is a ``diffpg.trust.Report``.
    """
    horizons = [row["horizon"] for row in report.sweep]
    fig = figure(figsize=(9, 3.6))
    left, right = fig.subplots(1, 2)
    for name, label, marker in (("pathwise", "pathwise", "o"), ("score_function", "score function", "s")):
        left.plot(horizons, [row[f"{name}_variance"] for row in report.sweep], marker=marker, label=label)
    left.set(xlabel="horizon H", ylabel="variance of one estimate, tr Cov", yscale="log",
             title="gradient variance against horizon")
    left.legend()
    right.plot(horizons, [row["max_abs_z"] for row in report.sweep], marker="o", label="max |z|")
    right.axhline(report.sweep[0]["z_threshold"], color="k", linestyle="--", label="threshold")
    right.set(xlabel="horizon H", ylabel="max |z| over parameters", title="pathwise vs score function")
    right.set_ylim(bottom=0)
    right.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def per_rollout_variances(results: dict, path, title: str) -> Path:
    """``diffpg compare``'s figure: each estimator's per-rollout variance against H, log-log, as a PNG.

    ``results[name]["sweep"]`` is a list of ``{"horizon", "per_rollout_variance"}`` rows.
    """
    fig = figure(figsize=(6.4, 4.2), dpi=110)
    ax = fig.subplots()
    for name, r in results.items():
        hs = [row["horizon"] for row in r["sweep"]]
        ax.plot(hs, [row["per_rollout_variance"] for row in r["sweep"]], marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="horizon H", ylabel="tr Cov[∇ per rollout]", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=None)
