"""Which way a signature runs fastest: inline in the calling thread, or on the inter-op pool.

A TF1 session can run a callable's ops in the thread that calls it (RunOptions
inter_op_thread_pool=-1) or hand them to its inter-op pool. Neither wins everywhere, and the
winner depends on the signature, the batch size, the session's threads and the machine
(2-core Xeon, shipped 2-bar model, medians of 20 calls, inline / pooled ms):

    one intra-op thread   sample B=1 6.2 / 9.1, B=16 14.1 / 21.0, B=64 38.6 / 45.1
                          encode B=1 2.6 / 1.4, B=16 9.5 / 4.2
                          interpolate B=1 10.1 / 12.0, B=64 98.6 / 73.3
    TF's default threads  sample B=1 6.8 / 10.0, B=8 15.7 / 14.6, B=64 53.4 / 45.1

A sampler is one long chain of small ops, where every hand-off to the pool costs more than
the op; the encoder's two directions are two chains the pool runs side by side. So rather than
a fixed rule, each (signature, batch size class) times both ways on its first calls and keeps
the faster. Both ways run the same kernels in the same order, so results are bit-identical
(tests/test_serving_server.py checks it); only the time differs.
"""
from __future__ import annotations

import statistics
import threading


def size_class(rows: int) -> int:
    """Batch sizes timed together: 1, 2-3, 4-7, 8-15, ... (powers of two)."""
    return max(rows, 1).bit_length()


def size_class_rows(size_class: int) -> str:
    """The rows a size class covers, e.g. "4-7"."""
    low, high = 1 << (size_class - 1), (1 << size_class) - 1
    return str(low) if low == high else f"{low}-{high}"


class RunModeChooser:
    """Inline or pooled per key, decided by timing: each way's first call is a warm-up (the
    callable's first run allocates), then `trials` timed calls of each, alternating; the lower
    median wins for good. Until then `pick` hands out whichever way has run less."""

    def __init__(self, trials: int = 5):
        self.trials = trials
        self._lock = threading.Lock()
        self._calls: dict[tuple, dict[bool, int]] = {}  # picks handed out, per way
        self._times: dict[tuple, dict[bool, list[float]]] = {}
        self.decided: dict[tuple, bool] = {}  # key -> inline?

    def pick(self, key: tuple) -> bool:
        """True: run inline; False: run on the inter-op pool."""
        inline = self.decided.get(key)
        if inline is not None:
            return inline
        with self._lock:
            calls = self._calls.setdefault(key, {True: 0, False: 0})
            inline = calls[True] <= calls[False]
            calls[inline] += 1
            return inline

    def record(self, key: tuple, inline: bool, seconds: float) -> None:
        """The duration of a call `pick(key)` chose; the first of each way is not kept."""
        if key in self.decided:
            return
        with self._lock:
            times = self._times.setdefault(key, {True: None, False: None})
            if times[inline] is None:  # the warm-up
                times[inline] = []
                return
            times[inline].append(seconds)
            if key not in self.decided and all(t is not None and len(t) >= self.trials
                                               for t in times.values()):
                self.decided[key] = (statistics.median(times[True])
                                     <= statistics.median(times[False]))

    def describe(self) -> dict[str, str]:
        """The decisions so far: "signature rows 4-7" -> "inline" or "pooled"."""
        return {f"{signature} rows {size_class_rows(cls)}": "inline" if inline else "pooled"
                for (signature, cls), inline in sorted(self.decided.items())}
