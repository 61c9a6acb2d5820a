"""The directories a report is made from: training runs, ``diffpg compare`` and ``diffpg check`` outputs.

A directory's kind is told by its files:

- a training run (``diffpg train --out``) has ``config.json`` and ``metrics.jsonl``;
- a comparison (``diffpg compare --out``) has ``results.json`` with an ``estimators`` table;
- a check (``diffpg check --out``) has ``report.json`` with its ``findings``.

Runs whose settings are equal but for the seed form a group: their settings
are ``config.json`` with every field named ``seed`` or ``out`` dropped (at any
depth, so a config nested per algorithm is grouped the same way), and the
seed is ``run.json``'s, else the config's own. A group's curve at update u is
the mean over its seeds of the metric at u, with the spread

    mean_u ± std_u,    std_u = sqrt(Σ_i (y_iu − mean_u)² / (n_u − 1)),

the sample standard deviation over the n_u seeds that logged update u (for
a positive quantity on a log scale, the same on ln y: see ``band``).
Rows are read as they are, so a metric missing from some rows (an
evaluation logged every few updates) or a run cut short is drawn where it exists.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from ..errors import ConfigError
from ..training.metrics_log import METRICS_FILE, read_rows

CONFIG_FILE, RUN_FILE, COMPARE_FILE, CHECK_FILE = "config.json", "run.json", "results.json", "report.json"
IGNORED = ("seed", "out")
"""Config fields that do not make two runs' settings differ."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run directory."""

    path: Path
    config: dict
    """``config.json`` as it was written."""
    seed: int | None
    rows: list[dict]
    """The rows of ``metrics.jsonl``."""

    @property
    def settings(self) -> dict:
        """The config without its seed and output fields: what runs of one group share."""
        return _without(self.config, IGNORED)

    @property
    def name(self) -> str:
        """``algo on env``, from the config wherever it keeps them."""
        return f"{field(self.config, 'algo', '?')} on {field(self.config, 'env', '?')}"


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs with the same settings and different seeds."""

    label: str
    runs: list[Run]


@dataclasses.dataclass(frozen=True)
class Sources:
    """Everything given to the report, by kind, in the order given."""

    runs: list[Run]
    compares: list[tuple[Path, dict]]
    checks: list[tuple[Path, dict]]


def _without(value, names):
    if isinstance(value, dict):
        return {k: _without(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_without(v, names) for v in value]
    return value


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested dicts as one dict with dotted keys.

    Examples:
        >>> flatten({"algo": "shac", "shac": {"window": 5}})
        {'algo': 'shac', 'shac.window': 5}
    """
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def field(config: dict, name: str, default=None):
    """The first field called ``name`` in ``config``, at any depth.

    Examples:
        >>> field({"algo": "shac", "shac": {"seed": 3}}, "seed")
        3
    """
    return next((v for k, v in flatten(config).items() if k.rsplit(".", 1)[-1] == name), default)


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(f"{str(path)!r} cannot be read as JSON ({reason}); pass a directory written by "
                          "diffpg train, compare or check") from None


def kind(path: str | os.PathLike) -> str:
    """``"run"``, ``"compare"`` or ``"check"``; one sentence (``ConfigError``) for anything else."""
    path = Path(path)
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise ConfigError(f"{str(path)!r} {problem}; pass the --out directory of diffpg train, "
                          "compare or check")
    if (path / CONFIG_FILE).is_file() and (path / METRICS_FILE).is_file():
        return "run"
    for name, what, needs, shape in ((COMPARE_FILE, "compare", "estimators", dict),
                                     (CHECK_FILE, "check", "findings", list)):
        if (path / name).is_file():
            content = _json(path / name)
            if isinstance(content, dict) and needs in content:
                table = content[needs]
                if isinstance(table, shape) and all(isinstance(v, dict) for v in
                                                    (table.values() if shape is dict else table)):
                    return what
                raise ConfigError(f"{str(path / name)!r} has a malformed {needs!r} table; pass a directory "
                                  f"written by diffpg {what} as it is")
    raise ConfigError(f"{str(path)!r} is not a diffpg training run (config.json and metrics.jsonl), comparison "
                      "(results.json) or check (report.json); pass the --out directory of diffpg train, "
                      "compare or check")


def read_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    config = _json(path / CONFIG_FILE)
    if not isinstance(config, dict):
        raise ConfigError(f"{str(path / CONFIG_FILE)!r} is not a JSON object; it is not a diffpg run's config")
    settings = _json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    seed = settings.get("seed") if isinstance(settings, dict) else None
    if seed is None:
        seed = field(config, "seed")
    return Run(path, config, seed, [row for row in read_rows(path) if isinstance(row, dict)])


def read(paths) -> Sources:
    """Read every directory in ``paths``, each by its kind (once, if given twice); the first that is none of
    them raises."""
    if not paths:
        raise ConfigError("no directories given; pass one or more --out directories of diffpg train, "
                          "compare or check")
    found, seen = Sources([], [], []), set()
    for path in map(Path, paths):
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        what = kind(path)
        if what == "run":
            found.runs.append(read_run(path))
        elif what == "compare":
            found.compares.append((path, _json(path / COMPARE_FILE)))
        else:
            found.checks.append((path, _json(path / CHECK_FILE)))
    return found


def groups(runs: list[Run]) -> list[Group]:
    """The runs grouped by their settings, in the order first seen.

    A group is labelled ``algo on env``, with the settings that tell it from
    the other groups of that name where there are several.
    """
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(json.dumps(run.settings, sort_keys=True), []).append(run)
    members = list(by_key.values())
    labels = []
    for runs_ in members:
        name = runs_[0].name
        rivals = [flatten(g[0].settings) for g in members if g[0].name == name]
        own = flatten(runs_[0].settings)
        differ = sorted(k for k in set().union(*rivals) if len({json.dumps(r.get(k)) for r in rivals}) > 1)
        labels.append(name + "".join(f", {k}={json.dumps(own.get(k))}" for k in differ))
    return [Group(label, runs_) for label, runs_ in zip(labels, members)]


def band(runs: list[Run], x: str, y: str, log: bool = False):
    """``(xs, centre, low, high, n)`` of metric ``y`` against ``x`` over the runs, per logged update.

    At each update that has a finite ``y`` in some run, ``xs`` is the mean of
    those runs' ``x`` (env steps or wall seconds), ``centre`` the mean m of
    ``y``, ``low`` and ``high`` m ∓ s with s the sample standard deviation
    (0 where one run has it), and ``n`` how many runs it is over. With ``log``
    (for a positive quantity drawn on a log scale, such as a gradient norm) m
    and s are those of ln y, and the centre and band are exp(m) and exp(m ∓ s):
    the geometric mean, times or divided by the geometric standard deviation.

    Examples:
        >>> a = Run(Path("a"), {}, 0, [{"update": 1, "env_steps": 10, "return": 1.0}])
        >>> b = Run(Path("b"), {}, 1, [{"update": 1, "env_steps": 10, "return": 3.0}])
        >>> xs, centre, low, high, n = band([a, b], "env_steps", "return")
        >>> xs, centre, n, round(high[0] - centre[0], 6)
        ([10.0], [2.0], [2], 1.414214)
        >>> [round(v, 6) for v in band([a, b], "env_steps", "return", log=True)[1]]
        [1.732051]
    """
    per_update: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for i, row in enumerate(run.rows):
            value, at = row.get(y), row.get(x)
            if _finite(value) and _finite(at) and (value > 0 or not log):
                value = math.log(value) if log else float(value)
                per_update.setdefault(row.get("update", i + 1), []).append((float(at), value))
    back = math.exp if log else float
    xs, centre, low, high, ns = [], [], [], [], []
    for update in sorted(per_update):
        points = per_update[update]
        n = len(points)
        mean = sum(v for _, v in points) / n
        std = math.sqrt(sum((v - mean) ** 2 for _, v in points) / (n - 1)) if n > 1 else 0.0
        xs.append(sum(a for a, _ in points) / n)
        centre.append(back(mean))
        low.append(back(mean - std))
        high.append(back(mean + std))
        ns.append(n)
    return xs, centre, low, high, ns


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
