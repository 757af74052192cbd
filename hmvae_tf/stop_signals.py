"""SIGTERM stops a command as Ctrl-C does, and its exit status still tells the two apart.

Training saves a checkpoint and a waiting worker gives up cleanly on either signal, so SIGTERM
raises a KeyboardInterrupt of its own kind. The command then exits as a shell reports a
process the signal killed, 128 + its number: 130 after Ctrl-C (SIGINT), 143 after SIGTERM,
which is what cluster managers read as "terminated" rather than "interrupted by the user".
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread where Ctrl-C raises KeyboardInterrupt."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler: stops the main thread with Terminated."""
    raise Terminated


def exit_status(stop: KeyboardInterrupt) -> int:
    """128 + the stopping signal's number: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (`kill`, a job scheduler, `docker stop`) stops a command like
    Ctrl-C instead of ending the process at once: the clean-up that removes a half-made
    export, TF.js bundle, card or file runs, rather than leaving it behind."""
    if threading.current_thread() is not threading.main_thread():  # signals reach main only
        yield
        return

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
