"""One self-contained HTML page of training runs, estimator comparisons and gradient checks.

``write_report(paths, out)`` reads each directory by its kind
(``report.sources``) and writes a single file that a browser shows offline:
every figure is an SVG drawn by matplotlib and embedded as a ``data:`` URI,
the style sheet is inline, and nothing (no script, font or image) is loaded
from anywhere else. The page holds:

- learning curves of every group of runs (same settings, different seeds)
  against env steps and against wall time: the mean over seeds as a line and
  mean ± one sample standard deviation as a band, for the evaluation return
  (``eval/return``), the training return and the return of finished episodes,
  whichever the runs log;
- the policy gradient's norm before clipping; the per-rollout gradient
  variance tr Cov[∇] that an estimator reports (``estimator/grad_variance``,
  logged by ``ascent``); and, for groups of several seeds, the variance of
  the gradient norm across seeds;
- a table of the runs;
- each ``diffpg compare`` output: its table and per-rollout variance against horizon;
- each ``diffpg check`` output: its verdict, findings, and pathwise against
  score-function variance against horizon.
"""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from .save import figure

from ..errors import ConfigError
from .sources import Group, Sources, band, groups, read

RETURNS = (("eval/return", "evaluation return"), ("return", "training return"),
           ("episode_return", "return of finished episodes"))
AXES = (("env_steps", "env steps"), ("wall_s", "wall time (s)"))
MAX_POINTS = 1000
"""A curve of more logged updates is drawn at every k-th of them (and the last), which keeps the page small."""

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
.text { text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
.ok { color: #176d2c; font-weight: bold; } .problem { color: #b00020; font-weight: bold; }
"""


def write_report(paths, out: str | os.PathLike = "report.html", title: str = "diffpg report") -> Path:
    """Read the directories ``paths`` and write the report page to ``out``; return its path.

    Raises ``ConfigError`` (one sentence) for a directory that is not a run,
    a comparison or a check, and for an ``out`` that cannot be written.
    """
    page = render(read(paths), title)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write the report to {str(out)!r} ({error.strerror or type(error).__name__}); "
                          "choose another --out") from None
    return out


def render(sources: Sources, title: str = "diffpg report") -> str:
    """The page as a string."""
    parts = [f"<h1>{_e(title)}</h1>"]
    found = groups(sources.runs)
    counts = [f"{len(sources.runs)} training run{'s' * (len(sources.runs) != 1)} in {len(found)} "
              f"group{'s' * (len(found) != 1)}" if found else "",
              _count(len(sources.compares), "estimator comparison"), _count(len(sources.checks), "gradient check")]
    parts.append(f"<p>{_e(', '.join(c for c in counts if c))}.</p>")
    if found:
        parts += _runs_section(found)
    for path, results in sources.compares:
        parts += _compare_section(path, results)
    for path, report in sources.checks:
        parts += _check_section(path, report)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


# ---------------------------------------------------------------- training runs


def _runs_section(found: list[Group]) -> list[str]:
    parts = ["<h2>Learning curves</h2>"]
    metrics = [(name, text) for name, text in RETURNS if _has(found, name)]
    if metrics:
        fig, axes = _figure(len(metrics), 2)
        for (name, text), row in zip(metrics, axes):
            for (x, xtext), ax in zip(AXES, row):
                for i, group in enumerate(found):
                    _band(ax, band(group.runs, x, name), f"C{i}", _label(group))
                ax.set(xlabel=xtext, ylabel=text)
        _legend(fig, axes)
        parts.append(_img(fig, "learning curves"))
        parts.append("<p class=\"note\">At each update: the line is the mean over a group's seeds, the band the "
                     "mean ± one sample standard deviation across them (a group of one seed has no band), and x the "
                     "mean over the seeds of the env steps or wall time at that update. Wall time counts from the "
                     "start of each run, compilation included.</p>")
    else:
        parts.append("<p>No run has logged a return yet.</p>")
    parts += _gradient_section(found)
    parts += ["<h2>Runs</h2>", _runs_table(found)]
    return parts


def _gradient_section(found: list[Group]) -> list[str]:
    panels = []  # (metric, title, y label, across seeds)
    if _has(found, "grad_norm"):
        panels.append(("grad_norm", "policy gradient norm before clipping", "‖g‖", False))
    if _has(found, "estimator/grad_variance"):
        panels.append(("estimator/grad_variance", "per-rollout gradient variance, as the estimator measures it",
                       "tr Cov[∇]", False))
    several = any(len(g.runs) > 1 for g in found)
    if _has(found, "grad_norm") and several:
        panels.append(("grad_norm", "variance of the gradient norm across seeds", "Var over seeds of ‖g‖", True))
    if not panels:
        return []
    fig, axes = _figure(len(panels), 1, width=9.0)
    any_log = False
    for (name, title, ylabel, across), (ax,) in zip(panels, axes):
        log = _positive(found, name)
        for i, group in enumerate(found):
            if across:
                xs, centre, _, high, n = band(group.runs, "env_steps", name)
                kept = [(x, (h - c) ** 2) for x, c, h, k in zip(*_thin((xs, centre, high, n))) if k > 1]
                ax.plot([x for x, _ in kept], [v for _, v in kept], color=f"C{i}", lw=1.2, label=_label(group))
                log = log and all(v > 0 for _, v in kept)
            else:
                _band(ax, band(group.runs, "env_steps", name, log=log), f"C{i}", _label(group))
        if log:
            ax.set_yscale("log")
            any_log = any_log or not across
        ax.set(xlabel="env steps", ylabel=ylabel, title=title)
    _legend(fig, axes)
    note = ("On a log scale the line is the geometric mean over a group's seeds and the band multiplies and "
            "divides it by the geometric standard deviation. ") if any_log else ""
    if several:
        note += ("The variance across seeds is the sample variance of ‖g‖ at one update over a group's seeds: how "
                 "much the gradient's size differs from run to run, not tr Cov of one estimate.")
    return ["<h2>Gradients</h2>", _img(fig, "gradient norm and variance")] \
        + ([f"<p class=\"note\">{_e(note)}</p>"] if note else [])


def _runs_table(found: list[Group]) -> str:
    head = ["directory", "group", "seed", "updates", "env steps", "wall s", "training return", "eval return",
            "skipped updates"]
    rows = []
    for group in found:
        for run in group.runs:
            last = run.rows[-1] if run.rows else {}
            evals = [row["eval/return"] for row in run.rows if row.get("eval/return") is not None]
            rows.append([str(run.path), _label(group), run.seed, last.get("update"), last.get("env_steps"),
                         last.get("wall_s"), last.get("return"), evals[-1] if evals else None, last.get("skipped")])
    return _table(head, rows, text_columns=2)


def _thin(columns):
    """Every k-th point of the columns (and the last), k the smallest stride that leaves at most MAX_POINTS."""
    size = len(columns[0])
    stride = -(-size // MAX_POINTS)
    if stride <= 1:
        return columns
    keep = list(range(0, size, stride)) + ([size - 1] if (size - 1) % stride else [])
    return tuple([column[i] for i in keep] for column in columns)


def _band(ax, drawn, color, label) -> None:
    xs, centre, low, high, n = _thin(drawn)
    if not xs:
        return
    ax.plot(xs, centre, color=color, lw=1.4, label=label)
    if max(n) > 1:
        ax.fill_between(xs, low, high, color=color, alpha=0.25, lw=0)


def _values(found: list[Group], name: str) -> list:
    return [row[name] for g in found for r in g.runs for row in r.rows if _number_like(row.get(name))]


def _has(found: list[Group], name: str) -> bool:
    return bool(_values(found, name))


def _positive(found: list[Group], name: str) -> bool:
    return all(v > 0 for v in _values(found, name))


def _seed_order(seed):
    return (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed))


def _label(group: Group) -> str:
    seeds = [str(s) for s in sorted((r.seed for r in group.runs), key=_seed_order)]
    return f"{group.label} ({len(seeds)} seed{'s' * (len(seeds) != 1)}: {', '.join(seeds)})"


# ---------------------------------------------------------------- compare and check


def _compare_section(path: Path, results: dict) -> list[str]:
    config = results.get("config", {})
    estimators = results.get("estimators", {})
    reference = results.get("reference", "?")
    head = ["estimator", "return", "‖E ĝ‖", "var / rollout", "SNR", f"cos to {reference}", "ms / gradient"]
    rows = [[name, r.get("return"), r.get("grad_norm"), r.get("per_rollout_variance"), r.get("snr"),
             r.get("cosine_to_reference"), _milliseconds(r.get("seconds_per_gradient"))]
            for name, r in estimators.items()]
    parts = [f"<h2>Estimator comparison: {_e(str(config.get('env', '?')))} ({_e(str(path))})</h2>",
             f"<p>Horizon {_e(str(config.get('horizon', '?')))}, {_e(str(config.get('num_envs', '?')))} rollouts "
             f"per estimate, {_e(str(config.get('repeats', '?')))} estimates each, "
             f"γ = {_e(str(config.get('discount', '?')))}.</p>", _table(head, rows)]
    fig, axes = _figure(1, 1, width=7.0, height=3.6)
    ax = axes[0][0]
    for name, r in estimators.items():
        ax.plot(*_points(r.get("sweep"), "per_rollout_variance"), marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="horizon H", ylabel="per-rollout variance tr Cov[∇]")
    ax.legend(fontsize=8)
    return parts + [_img(fig, "per-rollout gradient variance against horizon")]


def _check_section(path: Path, report: dict) -> list[str]:
    findings = report.get("findings", [])
    problems = sum(f.get("status") == "problem" for f in findings)  # trust.PROBLEM, without importing jax
    verdict = ("<span class=\"ok\">the gradients are consistent</span>" if report.get("passed") else
               f"<span class=\"problem\">{problems} problem{'s' * (problems != 1)} found</span>")
    parts = [f"<h2>Gradient check ({_e(str(path))})</h2>", f"<p>Verdict: {verdict} "
             f"(finite differences in {_e(str(report.get('precision', '?')))}).</p>",
             "<table><tr><th class=\"text\">check</th><th class=\"text\">verdict</th>"
             "<th class=\"text\">what was found</th></tr>"]
    for f in findings:
        status = str(f.get("status", "?"))
        check, message = _e(str(f.get("check", "?"))), _e(str(f.get("message", "")))
        parts.append(f"<tr><td class=\"text\">{check}</td><td class=\"text {_e(status)}\">{_e(status)}</td>"
                     f"<td class=\"text\">{message}</td></tr>")
    parts.append("</table>")
    sweep = report.get("sweep", [])
    if sweep:
        fig, axes = _figure(1, 1, width=7.0, height=3.6)
        ax = axes[0][0]
        for key, text in (("pathwise_variance", "pathwise"), ("score_function_variance", "score function")):
            ax.plot(*_points(sweep, key), marker="o", label=text)
        ax.set(xscale="log", yscale="log", xlabel="horizon H", ylabel="variance of one estimate")
        ax.legend(fontsize=8)
        parts.append(_img(fig, "pathwise and score-function variance against horizon"))
    return parts


def _points(sweep, key: str):
    """(horizons, values) of a sweep's rows that have both as positive numbers (they are drawn on log axes)."""
    rows = [row for row in sweep or [] if isinstance(row, dict)]
    pairs = [(row.get("horizon"), row.get(key)) for row in rows]
    pairs = [(h, v) for h, v in pairs if _number_like(h) and _number_like(v) and h > 0 and v > 0]
    return [h for h, _ in pairs], [v for _, v in pairs]


def _number_like(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------- page pieces


def _figure(rows: int, cols: int, width: float = 11.0, height: float = 3.3):
    fig = figure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return fig, axes


def _legend(fig, axes) -> None:
    """One legend below the panels, of every label drawn in any of them."""
    drawn = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            drawn.setdefault(label, handle)
    handles, labels = list(drawn.values()), list(drawn)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=min(2, len(handles)))


def _img(fig, alt: str) -> str:
    """The figure as an ``<img>`` whose source is the SVG itself (no file, no network)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<p><img alt=\"{_e(alt)}\" src=\"data:image/svg+xml;base64,{data}\"></p>"


def _table(head: list[str], rows: list[list], text_columns: int = 1) -> str:
    out = ["<table><tr>" + "".join(f"<th class=\"text\">{_e(h)}</th>" if i < text_columns else f"<th>{_e(h)}</th>"
                                   for i, h in enumerate(head)) + "</tr>"]
    for row in rows:
        cells = [f"<td class=\"text\">{_e(str(v))}</td>" if i < text_columns else f"<td>{_e(_number(v))}</td>"
                 for i, v in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}" if n else ""


def _milliseconds(seconds):
    return 1e3 * seconds if _number_like(seconds) else seconds


def _e(text: str) -> str:
    return html.escape(text, quote=True)
