"""The README's example of a user's own environment runs as printed, and prints labelled numbers and a conclusion."""
import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow  # compiles the two estimators of the example
def test_the_readme_example_prints_labelled_output_and_a_conclusion():
    (example,) = [block for block in python_blocks(README.read_text()) if "class Integrator" in block]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, str(README), "exec"), {"__name__": "readme_example"})
    lines = printed.getvalue().strip().splitlines()
    assert len(lines) == 3, lines
    for line, name in zip(lines, ("pathwise", "score_function")):
        assert re.fullmatch(rf"\s*{name}: return\s+-?\d+\.\d+, \|grad\| \S+, gradient variance per rollout \S+", line), line
    ratio = float(re.search(r"is (\d+)x as noisy", lines[2]).group(1))
    assert lines[2].startswith("conclusion: ") and ratio >= 1  # the pathwise rollouts are the less noisy ones
