"""The progress display of long commands (``diffpg check``, ``diffpg compare``): phase, share done, times."""
import io

from rich.console import Console

from diffpg.report.stages import Stages


def test_the_display_shows_the_phase_the_share_done_and_the_times():
    out = io.StringIO()
    with Stages("check pendulum", Console(file=out, force_terminal=True, width=200)) as progress:
        progress("pathwise gradients at horizon 20", 1.0, 4.0)
    text = out.getvalue()
    assert "check pendulum" in text and "pathwise gradients at horizon 20" in text and "25%" in text
    assert "0:00:00" in text and "remaining" in text  # elapsed, then rich's estimate of the time remaining
