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
a fixed rule, each (signature, batch size class) times both ways and runs the faster. Timings
taken while a server warms up or shares its cores can mislead, so the other way is re-timed
now and then and the choice follows the recent timings. Both ways run the same kernels, so
results are bit-identical (tests/test_serving_run_modes.py); only the time differs.
"""
from __future__ import annotations

import collections
import statistics
import threading


def size_class(rows: int) -> int:
    """Batch sizes timed together: 1, 2-3, 4-7, 8-15, ... (powers of two)."""
    return max(rows, 1).bit_length()


def size_class_rows(size_class: int) -> str:
    """The rows a size class covers, e.g. "4-7"."""
    low, high = 1 << (size_class - 1), (1 << size_class) - 1
    return str(low) if low == high else f"{low}-{high}"


class _Timings:
    """Timings of one (signature, size class)."""

    def __init__(self, trials: int):
        self.picks = {True: 0, False: 0}
        self.warmed = {True: False, False: False}
        self.times = {True: collections.deque(maxlen=trials),
                      False: collections.deque(maxlen=trials)}
        self.calls = 0  # picks since `preferred` was first set
        self.preferred: bool | None = None  # inline?, once both ways have `trials` timings


class RunModeChooser:
    """Inline or pooled per key. Each way's first call is a warm-up (a callable's first run
    allocates) and is not kept; until each way has `trials` timed calls the two alternate.
    Then the way with the lower median of its last `trials` calls runs, except that every
    `recheck_every`-th call runs the other way, so a choice made on misleading timings is
    undone (at a cost of 1/recheck_every calls run the slower way)."""

    def __init__(self, trials: int = 5, recheck_every: int = 50):
        self.trials, self.recheck_every = trials, recheck_every
        self._lock = threading.Lock()
        self._keys: dict[tuple, _Timings] = {}

    def pick(self, key: tuple, first: bool = True) -> bool:
        """True: run inline; False: run on the inter-op pool. `first` is the way to try
        first, and whenever the trials are even (a one-off call runs that way)."""
        with self._lock:
            k = self._keys.get(key)
            if k is None:
                k = self._keys[key] = _Timings(self.trials)
            if k.preferred is None:
                ahead = k.picks[True] - k.picks[False]
                inline = first if ahead == 0 else ahead < 0
            else:
                k.calls += 1
                inline = k.preferred if k.calls % self.recheck_every else not k.preferred
            k.picks[inline] += 1
            return inline

    def record(self, key: tuple, inline: bool, seconds: float) -> None:
        """The duration of a call that `pick(key)` sent `inline` or not."""
        with self._lock:
            k = self._keys.get(key)
            if k is None:  # a run `pick` did not choose (one with a deadline runs pooled)
                k = self._keys[key] = _Timings(self.trials)
            if not k.warmed[inline]:
                k.warmed[inline] = True
                return
            k.times[inline].append(seconds)
            # The choice can change only when a timing arrives; `pick` and `decided` read it.
            if all(len(t) == self.trials for t in k.times.values()):
                k.preferred = (statistics.median(k.times[True])
                               <= statistics.median(k.times[False]))

    def slowest_recent(self, key: tuple) -> float | None:
        """The longest of the key's recent timed calls, either way (None: none timed yet)."""
        with self._lock:
            k = self._keys.get(key)
            times = [t for way in k.times.values() for t in way] if k else []
            return max(times) if times else None

    def decided(self) -> dict[tuple, bool]:
        """key -> runs inline?, for every key timed enough to choose."""
        with self._lock:
            return {key: k.preferred for key, k in self._keys.items() if k.preferred is not None}

    def describe(self) -> dict[str, str]:
        """The current choices: "signature rows 4-7" -> "inline" or "pooled"."""
        return {f"{signature} rows {size_class_rows(cls)}": "inline" if inline else "pooled"
                for (signature, cls), inline in sorted(self.decided().items())}
