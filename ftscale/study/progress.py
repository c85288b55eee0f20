"""Progress of long study commands as the ecosystem shows it: a tqdm bar on a terminal; on
anything else (a log file, a pipe) no bar, one line per event."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """A tqdm bar over ``total`` items (None: unknown) when ``stream`` (default stderr) is a
    terminal, else one line per :meth:`event`; nothing at all unless ``enabled``."""

    def __init__(
        self,
        total: int | None,
        *,
        desc: str,
        unit: str,
        initial: int = 0,
        stream: TextIO | None = None,
        enabled: bool = True,
    ):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.bar: Any = None
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
            )

    def event(self, line: str, *, n: int | None = None, postfix: str = "") -> None:
        """One event: on a terminal the bar moves to ``n`` items (None: one more) and shows
        ``postfix``; elsewhere ``line`` is written."""
        if not self.enabled:
            return
        if self.bar is None:
            self.stream.write(line + "\n")
            self.stream.flush()
            return
        self.bar.update(1 if n is None else n - self.bar.n)
        if postfix:
            self.bar.set_postfix_str(postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_seconds(seconds: float) -> str:
    """``[H:]MM:SS``, as tqdm writes elapsed and remaining time."""
    from tqdm import tqdm

    return tqdm.format_interval(seconds)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
