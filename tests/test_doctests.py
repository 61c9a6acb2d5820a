"""Every docstring Example in diffpg runs as a doctest (each module's examples in one test)."""
import doctest
import importlib
import pkgutil

import pytest

import diffpg


def modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(diffpg.__path__, prefix="diffpg."):
        if info.name.endswith("__main__"):
            continue  # running it would start the CLI
        module = importlib.import_module(info.name)
        if doctest.DocTestFinder().find(module) and any(t.examples for t in doctest.DocTestFinder().find(module)):
            names.append(info.name)
    return names


MODULES = modules_with_examples()


def test_examples_are_found():
    assert {"diffpg.estimators.pathwise", "diffpg.estimators.surrogate", "diffpg.landscape"} <= set(MODULES)


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
