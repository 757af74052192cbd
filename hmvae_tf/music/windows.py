"""Windowing shared by the representations: spans split at silent gaps, N-bar slices with a
1-bar hop, de-duplication, and the error raised when an input gives no window.

Two ways to choose windows, on purpose:
* training (`batched_span_windows`): like Magenta, a track is cut into spans at >= 1 bar of
  silence, a span starts at the bar of its first note and ends at the bar of its last event
  (or 100 bars later, whichever is first), and windows lie inside a span;
* inference (`grid_window_starts`): every bar of a segment may start a window, and a window
  may run past the last note (padded with silence), so a short or sparse user file, and any
  token window rendered by `to_note_sequence`, still gives a window.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .grid import STEPS_PER_BAR, Segment, Stats


class Window(NamedTuple):
    """One training example: tokens int32 [T] or [T, tracks] and where it came from."""

    tokens: np.ndarray
    start_bar: int          # bar number in the piece (a pickup bar is bar 0)
    program: int | tuple[int, ...]  # melody/bass program(s); 0 for drums
    qpm: float


class WindowBatch(NamedTuple):
    """Training windows of many pieces as arrays (row i of each belongs together)."""

    tokens: np.ndarray     # int32 [n, T] or [n, T, tracks]
    piece: np.ndarray      # index of the piece in the input list
    start_bar: np.ndarray  # bar number in the piece
    program: np.ndarray    # int [n] (or [n, 2] for trio: melody, bass)
    qpm: np.ndarray        # float [n]

    def windows(self, piece: int | None = None) -> list[Window]:
        """The rows (of one piece) as Window tuples."""
        rows = range(len(self.piece)) if piece is None else np.flatnonzero(self.piece == piece)
        prog = self.program.tolist()
        return [Window(self.tokens[i], int(self.start_bar[i]),
                       tuple(prog[i]) if isinstance(prog[i], list) else prog[i],
                       float(self.qpm[i])) for i in rows]


def empty_batch(steps: int, tracks: int = 0) -> WindowBatch:
    """A zero-row batch with the right token shape, for inputs that give no window."""
    shape = (0, steps, tracks) if tracks else (0, steps)
    z = np.zeros(0, np.int64)
    return WindowBatch(np.zeros(shape, np.int32), z, z, z, np.zeros(0))


# Magenta's melody and drum converters truncate each extracted line to its first 100 bars
# before slicing (max_bars=100), so one very long file cannot fill a dataset with its windows.
MAX_SPAN_BARS = 100


def batched_span_windows(track: np.ndarray, start: np.ndarray, end: np.ndarray,
                         track_offset: np.ndarray, buffer: np.ndarray, num_bars: int,
                         gap_steps: int = STEPS_PER_BAR, last_step: np.ndarray | None = None,
                         max_span_bars: int | None = MAX_SPAN_BARS
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Span windows of many tracks at once (the batched form of span_bounds +
    span_window_starts + bar_slices).

    Events (sorted by track, then start) with `end` where each stops sounding; each track's
    tokens live in `buffer` from `track_offset[track]`. A span ends with the bar holding its
    last event's token: `last_step` (default `end`: a melody's note-off; drums pass the
    hit's own step); only its first `max_span_bars` bars give windows (None: all). Returns
    windows [n, T] (copies), their track and their start bar.
    """
    steps = num_bars * STEPS_PER_BAR
    n = len(start)
    if not n:
        return np.zeros((0, steps), buffer.dtype), np.zeros(0, np.int64), np.zeros(0, np.int64)
    new_span = np.empty(n, bool)
    new_span[0] = True
    np.not_equal(track[1:], track[:-1], out=new_span[1:])
    new_span[1:] |= start[1:] - end[:-1] >= gap_steps
    firsts = np.flatnonzero(new_span)
    lasts = np.append(firsts[1:] - 1, n - 1)
    first_bar = start[firsts] // STEPS_PER_BAR
    last_bar = (end if last_step is None else last_step)[lasts] // STEPS_PER_BAR
    count = np.maximum(last_bar - first_bar + 2 - num_bars, 0)
    if max_span_bars:
        count = np.minimum(count, max(max_span_bars + 1 - num_bars, 0))
    total = int(count.sum())
    if not total:
        return np.zeros((0, steps), buffer.dtype), np.zeros(0, np.int64), np.zeros(0, np.int64)
    span = np.repeat(np.arange(len(firsts)), count)
    local = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    bar = first_bar[span] + local
    win_track = track[firsts][span]
    flat = track_offset[win_track] + bar * STEPS_PER_BAR
    return buffer[flat[:, None] + np.arange(steps)], win_track, bar


class NoWindowError(ValueError):
    """An input gave no N-bar window; the message says why."""


class NoWindowAtBarError(NoWindowError):
    """The input has windows, but none with notes starts at the asked bar (`at_bar`)."""


def no_window_at(name: str, what: str, num_bars: int, at_bar: int, found: int
                 ) -> NoWindowAtBarError:
    """The error of a finder asked for the window at grid bar `at_bar` that found none there
    (the caller says the bar as the score numbers it)."""
    return NoWindowAtBarError(f"{name}: no {num_bars}-bar {what} window with notes starts at "
                              f"grid bar {at_bar} ({found} {_windows_exist(found)} with notes)")


def only_found(what: str, window_index: int | str, found: int, num_bars: int) -> str:
    """'asked for drum window 3 but only 2 2-bar windows exist': a finder asked for a window
    past the last (`found` is how many there are); the page's `onlyFound` says the same."""
    return (f"asked for {what} window {window_index} but only {found} {num_bars}-bar "
            f"{_windows_exist(found)}")


def _windows_exist(found: int) -> str:
    return "window exists" if found == 1 else "windows exist"


def grid_window_starts(total_bars: int, num_bars: int) -> np.ndarray:
    """Start bars of every window over a segment, padding the end with silence if needed."""
    return np.arange(max(1, total_bars - num_bars + 1))


def bar_slices(tokens: np.ndarray, starts: np.ndarray, num_bars: int) -> np.ndarray:
    """Windows [len(starts), num_bars * 16, ...] of a track array (copied, so editable).

    `tokens` must be long enough: (max(starts) + num_bars) * 16 steps.
    """
    steps = num_bars * STEPS_PER_BAR
    return tokens[(np.asarray(starts) * STEPS_PER_BAR)[:, None] + np.arange(steps)]


def onsets_per_bar(onset_steps: np.ndarray, total_bars: int) -> np.ndarray:
    """Cumulative onset counts per bar: c[b1] - c[b0] = onsets in bars [b0, b1)."""
    counts = np.bincount(onset_steps // STEPS_PER_BAR, minlength=total_bars)[:total_bars]
    return np.concatenate([[0], np.cumsum(counts)])


def pad_to(tokens: np.ndarray, steps: int) -> np.ndarray:
    """Zero-pads (no event) the time axis of a track array to at least `steps`."""
    if len(tokens) >= steps:
        return tokens
    pad = [(0, steps - len(tokens))] + [(0, 0)] * (tokens.ndim - 1)
    return np.pad(tokens, pad)


def dedupe_by_piece(windows: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each window within its piece (order kept)."""
    data = windows.tobytes()
    size = len(data) // len(windows) if len(windows) else 0
    seen: set[tuple[int, bytes]] = set()
    keep = []
    add = seen.add
    for i, p in enumerate(piece.tolist()):
        key = (p, data[i * size:(i + 1) * size])
        if key not in seen:
            add(key)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def dedupe(windows: np.ndarray, seen: set[bytes]) -> np.ndarray:
    """Indices of the windows not seen before (updates `seen`), first occurrence kept."""
    keep = []
    data = windows.tobytes()
    size = len(data) // len(windows) if len(windows) else 0
    for i in range(len(windows)):
        key = data[i * size:(i + 1) * size]
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def count_skip(stats: Stats, segs: list[Segment], any_track: bool, missing: str) -> None:
    """Records the one reason a piece gave no window under 'skip/<reason>'."""
    if stats.get("no_notes"):
        reason = "no_notes"
    elif not segs:
        reason = "meter_not_4/4_compatible"
    elif not any_track:
        reason = missing
        stats[missing] += 1
    else:
        reason = "too_short"
        stats["too_short"] += 1
    stats["skip/" + reason] += 1


def explain(stats: Stats, what: str, num_bars: int, meters: list[str],
            reasons: Sequence[str] = ()) -> str:
    """A sentence saying why no window came out, from the counted reasons (after any
    `reasons` the caller knows better, e.g. a trio's part programs)."""
    reasons = list(reasons)
    if stats.get("unreadable"):
        reasons.append("the file could not be read")
    if stats.get("no_notes"):
        reasons.append("it has no notes")
    skipped = {k[len("segments_meter_"):]: v for k, v in stats.items()
               if k.startswith("segments_meter_")}
    if skipped:
        reasons.append("its meter (" + ", ".join(sorted(skipped)) + ") does not fit the "
                       "16-steps-per-4/4-bar grid (use 4/4, 2/4, 2/2, 4/2 ...)")
    for key, text in [("no_melody", "it has no melody notes (non-drum; programs 0-31 for 2-bar windows)"),
                      ("no_pitched", "it has no pitched (non-drum) notes in MIDI pitch 21..108"),
                      ("no_bass", "it has no bass notes (programs 32-39)"),
                      ("no_drums", "it has no drum notes (channel 10) of the 9 drum classes"),
                      ("drums_elsewhere", "all its notes are on pitched instruments (a drum "
                       "part on another MIDI channel than 10 is read as one: if it has one, "
                       "move it to channel 10, General MIDI's drum channel)"),
                      ("notes_out_of_range", "some notes lie outside MIDI pitch 21..108"),
                      ("too_short", f"no {num_bars}-bar stretch has all its parts")]:
        if stats.get(key):
            reasons.append(text)
    why = "; ".join(reasons) or "nothing usable was found"
    return f"no {num_bars}-bar {what} window: {why} (meters in file: {', '.join(meters)})"
