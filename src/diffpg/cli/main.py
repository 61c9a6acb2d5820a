"""``diffpg COMMAND ...``: the entry point. Each command lives in its own module.

A command module ``diffpg.cli.NAME`` defines a frozen ``Config`` dataclass
(parsed by tyro, one docstring per field, or by its own ``parse`` where it has
more than one form) and ``run(config) -> int``, the exit status; the module of the command asked for is
imported by name.

Exit status 2 means the command was used wrongly: tyro's own parse errors,
and any ``DiffpgError`` (unknown env, bad setting, missing run directory)
raised before work starts, printed as one sentence without a traceback.
"""
from __future__ import annotations

import atexit
import importlib
import os
import sys

import tyro

from ..errors import DiffpgError

COMMANDS = {
    "compare": "compare every gradient estimator on one environment: a table and a plot of variance against horizon",
    "train": "train a policy with APG, SHAC, REINFORCE or PPO, with checkpoints, logs and a learning curve",
    "eval": "evaluate a trained policy, in our environment or in Gymnasium's own",
    "check": "check that a user's own environment gives gradients you can trust",
    "report": "one self-contained HTML page of training runs (seeds as bands), comparisons and checks",
}


def usage() -> str:
    lines = ["usage: diffpg COMMAND [--help] ...", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def fail(message: str) -> int:
    """Print one sentence to stderr and return the usage-error status."""
    print(f"diffpg: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(usage(), file=sys.stderr)
        return fail(f"unknown command {name!r}; choose one of {', '.join(COMMANDS)}")

    module = importlib.import_module(f"diffpg.cli.{name}")
    try:
        if hasattr(module, "parse"):  # a command with forms of its own (diffpg train ALGO)
            config = module.parse(rest, f"diffpg {name}", COMMANDS[name])
        else:
            config = tyro.cli(module.Config, prog=f"diffpg {name}", args=rest, description=COMMANDS[name])
        return int(module.run(config))
    except DiffpgError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        print("diffpg: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``diffpg`` console script: ``main()``, then end the process at once.

    Tearing down an interpreter that has imported jax, flax, orbax and
    matplotlib (freeing every module and object one by one) takes longer than
    a short training run; so once the command is done and its atexit handlers
    have run, the process ends with ``os._exit``. Files and checkpoints are
    closed by the commands themselves before ``main`` returns.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
