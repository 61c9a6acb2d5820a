"""Every docstring Example in diffpg runs as a doctest (each module's examples in one test).

Modules are chosen by reading their source for ``>>>``, and only those are imported: importing every
submodule could bind a module over a function of the same name that a package exports, for the rest of the
session.
"""
import doctest
import importlib
from pathlib import Path

import pytest

import diffpg

SOURCE = Path(diffpg.__file__).parent


def modules_with_examples():
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(SOURCE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_examples_are_found():
    assert {"diffpg.estimators.pathwise", "diffpg.estimators.dice", "diffpg.landscape"} <= set(MODULES)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output above)"
