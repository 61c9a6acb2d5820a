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


def test_a_log_file_gets_one_line_per_phase():
    """Without a terminal rich draws no live bar; a log of a long command must still show where it is."""
    out = io.StringIO()
    with Stages("compare on Hopper-v5", Console(file=out, force_terminal=False, width=60)) as progress:
        progress("pathwise: 16 estimates at horizon 5 (compiling)", 0, 8)
        progress("pathwise: 16 estimates at horizon 5 (compiling)", 0, 8)  # the same phase again: no new line
        progress("pathwise: 16 estimates at horizon 50", 1, 8)
    lines = [line for line in out.getvalue().splitlines() if "compare on Hopper-v5:" in line]  # unwrapped at 60
    assert lines == ["[0:00] compare on Hopper-v5: 0/8 pathwise: 16 estimates at horizon 5 (compiling)",
                     "[0:00] compare on Hopper-v5: 1/8 pathwise: 16 estimates at horizon 50"]
