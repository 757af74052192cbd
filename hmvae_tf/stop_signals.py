"""SIGTERM stops a command as Ctrl-C does, and its exit status still tells the two apart.

Training saves a checkpoint and a waiting worker gives up cleanly on either signal, so SIGTERM
raises a KeyboardInterrupt of its own kind. The command then exits as a shell reports a
process the signal killed, 128 + its number: 130 after Ctrl-C (SIGINT), 143 after SIGTERM,
which is what cluster managers read as "terminated" rather than "interrupted by the user".
"""
from __future__ import annotations

import signal
from types import FrameType


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread where Ctrl-C raises KeyboardInterrupt."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler: stops the main thread with Terminated."""
    raise Terminated


def exit_status(stop: KeyboardInterrupt) -> int:
    """128 + the stopping signal's number: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
