"""How deep ``diffpg train`` goes to reach an algorithm's update: the Python frames from ``cli.main.main`` to
``shac.update`` (or another algorithm's), as traced on its first call, and the diffpg files they lie in.

    python benchmarks/train_stack.py                 # shac on pendulum, 2 updates
    python benchmarks/train_stack.py --algo ppo

The update is wrapped in the trainer's algorithm table, so the count is that of the real command; the
frames between diffpg's own are JAX's (jit, scan) tracing the loop.
"""
from __future__ import annotations

import dataclasses
import tempfile
import traceback

import tyro

from diffpg.cli.main import main
from diffpg.training import trainer


@dataclasses.dataclass(frozen=True)
class Args:
    algo: str = "shac"
    """The algorithm whose update is reached."""
    env: str = "pendulum"
    """The environment of the run."""


def frames(args: Args) -> list[traceback.FrameSummary]:
    seen = []
    real = trainer.ALGORITHMS[args.algo]

    def spy(*arguments, **keywords):
        seen.append(traceback.extract_stack()[:-1])
        return real(*arguments, **keywords)

    trainer.ALGORITHMS[args.algo] = spy
    try:
        with tempfile.TemporaryDirectory() as out:
            main(["train", "--env", args.env, "--algo", args.algo, "--updates", "2", "--no-plot",
                  "--no-tensorboard", "--no-compile-cache", "--out", f"{out}/run"])
    finally:
        trainer.ALGORITHMS[args.algo] = real
    stack = seen[0]
    start = next(i for i, f in enumerate(stack) if f.name == "main" and f.filename.endswith("cli/main.py"))
    return stack[start:]


if __name__ == "__main__":
    args = tyro.cli(Args)
    found = frames(args)
    ours = [f for f in found if "/diffpg/" in f.filename]
    print(f"{len(found)} frames from cli.main.main to {args.algo}.update, {len(ours)} of them diffpg's, in "
          f"{len({f.filename for f in ours})} files:")
    for f in ours:
        print(f"  {f.filename.rpartition('/diffpg/')[2]}  {f.name}")
