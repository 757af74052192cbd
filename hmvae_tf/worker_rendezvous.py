"""A multi-worker job's workers wait for each other here, in Python, before TensorFlow's wait.

`MultiWorkerMirroredStrategy()` blocks until every worker of TF_CONFIG has started, holding
the GIL and with TensorFlow's own SIGTERM handler (its preemption notifier) installed. So a
worker whose peers never come waits forever, SIGTERM (what a cluster manager or `kill`
sends) only makes it log "SIGTERM caught", and no Python code runs until the wait ends.

Here each worker first listens on its own TF_CONFIG port and connects to every other worker's
until all of them answer, either this listener of theirs or, once they have moved on,
TensorFlow's server on the same port. Ctrl-C and SIGTERM work throughout, and a time limit
can be set. Then the listener closes and TensorFlow's wait, now short, begins. A port already
held (another job's worker left waiting) is found here, before any TensorFlow start-up.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from hmvae_tf import stop_signals


class PortInUseError(OSError):
    """This worker's TF_CONFIG port is held by another process."""


class WaitTimeoutError(TimeoutError):
    """Not every other worker answered within the time limit."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _listen(port: int) -> socket.socket:
    """A listener on `port` on every interface, as TensorFlow's gRPC server binds it."""
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6,
                                        dualstack_ipv6=True, reuse_port=False)
        return socket.create_server(("", port))
    except OSError as err:
        raise PortInUseError(err.errno, f"cannot listen on port {port}: "
                             f"{os.strerror(err.errno) if err.errno else err}") from None


def _answers(address: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(_split(address), timeout=timeout):
            return True
    except OSError:
        return False


def _accept_until(listener: socket.socket, done: threading.Event) -> None:
    """Accepts and drops connections until `done`; polls so that the listener's close, after
    this thread ends, really frees the port (an accept() in progress would hold it)."""
    listener.settimeout(0.1)
    while not done.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:  # socket.timeout included
            continue
        conn.close()


def wait_for_peers(own: str, others: list[str], timeout: float | None = None,
                   poll: float = 0.5) -> float:
    """Listens on `own`'s port and returns once every address in `others` accepts a
    connection (seconds waited). Raises PortInUseError, WaitTimeoutError after `timeout`
    seconds (None: no limit), KeyboardInterrupt on Ctrl-C and its subclass
    stop_signals.Terminated on SIGTERM."""
    listener = _listen(_split(own)[1])
    done = threading.Event()
    acceptor = threading.Thread(target=_accept_until, args=(listener, done), daemon=True,
                                name="rendezvous")
    acceptor.start()
    start = time.monotonic()
    missing = list(others)
    try:
        with stop_signals.sigterm_as_interrupt():
            while True:
                missing = [a for a in missing if not _answers(a)]
                if not missing:
                    return time.monotonic() - start
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise WaitTimeoutError(
                        f"{', '.join(missing)} did not start within {timeout:g} s")
                time.sleep(poll)
    finally:
        done.set()
        acceptor.join()
        listener.close()
