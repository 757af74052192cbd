"""Progress of a command's long work, with an estimate of the time left, on stderr.

On a terminal: a tqdm bar (cleared when done), shown only once the work has taken
`BAR_DELAY` seconds, so quick calls do not flash one. Elsewhere (a log, `2>&1 | tee`, a job
scheduler): a bar's carriage returns would run into the results, so plain lines instead, as
`tfds build`'s conversion and `hmvae train` write them: "evaluating: 512/2,000 windows
(26 %), 12 s, about 35 s left", the first once the work has taken `PLAIN_FIRST` seconds,
then at most every `PLAIN_SECONDS` (the builder's interval). Results stay on stdout.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_clock = time.monotonic  # the default clock (tests replace it)
BAR_DELAY = 2.0  # seconds before a terminal bar appears
PLAIN_FIRST = 5.0  # seconds before the first plain line
PLAIN_SECONDS = 30.0  # then at most one plain line this often


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 07 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts `total` units of work called `what` ("evaluating", unit "window").

    Use as a context manager and call update(n) as units finish. enabled=False makes it
    silent (library callers that print nothing); stream and clock are for tests."""

    def __init__(self, total: int, what: str, unit: str = "item", enabled: bool = True,
                 stream: TextIO | None = None, terminal: bool | None = None,
                 clock: Callable[[], float] | None = None):
        self.total, self.what, self.unit = int(total), what, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.total > 0
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.clock = clock or _clock
        self.done = 0
        self.started = self.clock()
        self.next_line = self.started + PLAIN_FIRST
        self.bar = None
        if self.enabled and self.terminal:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=what, unit=unit, file=self.stream,
                            leave=False, delay=BAR_DELAY, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        """n more units are done."""
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        if now >= self.next_line and self.done < self.total:
            self.next_line = now + PLAIN_SECONDS
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        """The plain progress line: done/total, percent, elapsed time and time left."""
        elapsed = now - self.started
        text = (f"{self.what}: {self.done:,}/{self.total:,} {self.unit}s "
                f"({100 * self.done / self.total:.0f} %), {duration(elapsed)}")
        if self.done:
            text += f", about {duration(elapsed / self.done * (self.total - self.done))} left"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def say(line: str) -> None:
    """A one-line status on stderr: what a command is doing where its length is unknown
    (loading a model, evaluating one, training), or a note on it, so that stdout keeps only
    results (tables, files written, final metrics)."""
    print(line, file=sys.stderr, flush=True)
