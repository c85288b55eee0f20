"""Progress of study commands: a tqdm bar on a terminal, one line per event elsewhere."""

import io

from ftscale.study.progress import Progress
from ftscale.study.runner import _run_event


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_one_line_per_event_and_no_bar():
    out = io.StringIO()
    with Progress(3, desc="s", unit="run", stream=out) as bar:
        bar.event("1/3 first", n=1, postfix="done=1")
        bar.event("2/3 second", n=2, postfix="done=2")
    assert out.getvalue() == "1/3 first\n2/3 second\n"


def test_a_terminal_gets_a_bar_that_counts_from_the_runs_already_finished():
    out = _Terminal()
    with Progress(4, desc="study", unit="run", initial=1, stream=out) as bar:
        bar.event("never written", n=3, postfix="done=3 failed=0")
    text = out.getvalue()
    assert "never written" not in text and "\r" in text
    assert "3/4" in text.split("\r")[-1] and "done=3 failed=0" in text


def test_disabled_progress_writes_nothing():
    for out in (io.StringIO(), _Terminal()):
        with Progress(2, desc="s", unit="run", stream=out, enabled=False) as bar:
            bar.event("x", n=1)
        assert out.getvalue() == ""


def test_the_run_event_line_counts_finished_runs_and_estimates_what_is_left():
    counts = {"done": 3, "failed": 1, "diverged": 0, "running": 2, "pending": 4}
    line, finished, postfix = _run_event(counts, 10, 2, 20.0, "lora sim-1e5 D=100 seed=0: done")
    assert finished == 4 and postfix == "done=3 failed=1 diverged=0 running=2"
    # 2 runs finished in this call in 20 s: 6 runs left take 60 s
    assert line == (
        "4/10 done=3 failed=1 diverged=0 running=2 elapsed=00:20 eta=01:00"
        "  last: lora sim-1e5 D=100 seed=0: done"
    )
