"""Drums <-> 512-class tokens: a 9-bit mask per step over Magenta's reduced drum classes.

Every General MIDI drum pitch listed below maps to one of 9 classes; a step's token has bit
c set when a hit of class c starts there (bit 0 = kick ... bit 8 = ride). All drum
instruments (is_drum, MIDI channel 10) of a piece are merged. Unlisted drum pitches are
dropped and counted. Rendering writes the first pitch of each class, 1 step long, on
channel 10.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from . import grid
from .grid import STEPS_PER_BAR, Segment, Stats
from .windows import (NoWindowError, Window, bar_slices, count_skip, dedupe, explain,
                      grid_window_starts, onsets_per_bar, pad_to, span_bounds,
                      span_window_starts)

NUM_CLASSES = 512
DRUM_CLASS_NAMES = ("kick", "snare", "closed_hihat", "open_hihat", "low_tom", "mid_tom",
                    "high_tom", "crash", "ride")
DRUM_CLASS_PITCHES: tuple[tuple[int, ...], ...] = (
    (36, 35),
    (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
    (46, 67, 72, 74, 79, 81, 26),
    (45, 29, 41, 43, 61, 64, 84),
    (48, 47, 60, 63, 77, 86, 87),
    (50, 30, 62, 76, 83),
    (49, 52, 55, 57, 58),
    (51, 53, 59, 82),
)
PITCH_TO_CLASS = np.full(128, -1, np.int64)
for _c, _pitches in enumerate(DRUM_CLASS_PITCHES):
    PITCH_TO_CLASS[list(_pitches)] = _c
CLASS_PITCH = np.array([p[0] for p in DRUM_CLASS_PITCHES])
DRUM_CHANNEL_INSTRUMENT = 9  # MIDI channel 10
DEFAULT_VELOCITY = 100


class DrumTrack:
    """All drum hits of a segment as step masks (tokens padded to whole bars)."""

    __slots__ = ("tokens", "onsets", "ends")

    def __init__(self, tokens: np.ndarray, onsets: np.ndarray):
        self.tokens = tokens   # int32 [bars * 16]
        self.onsets = onsets   # distinct ascending hit steps
        self.ends = onsets + 1  # a hit sounds for one step (silence gaps count from here)


def segment_drums(seg: Segment, stats: Stats) -> DrumTrack | None:
    """The merged drum track of a segment, or None when it has no mapped drum hit."""
    n = seg.notes
    drum = n.is_drum
    if not drum.any():
        return None
    cls = PITCH_TO_CLASS[np.clip(n.pitch[drum], 0, 127)]
    unmapped = cls < 0
    if unmapped.any():
        stats["drum_notes_unmapped"] += int(np.count_nonzero(unmapped))
    steps = n.start[drum][~unmapped]
    cls = cls[~unmapped]
    if not len(steps):
        return None
    length = (int(steps.max()) // STEPS_PER_BAR + 1) * STEPS_PER_BAR
    tokens = np.zeros(length, np.int32)
    np.bitwise_or.at(tokens, steps, (1 << cls).astype(np.int32))
    return DrumTrack(tokens, np.unique(steps))


def extract_windows(ns, num_bars: int, stats: Stats | None = None
                    ) -> tuple[list[Window], Stats]:
    """All distinct `num_bars` drum windows: inside spans split at >= 1 bar without hits."""
    stats = stats if stats is not None else Stats()
    out: list[Window] = []
    seen: set[bytes] = set()
    segs = grid.segments(ns, stats)
    any_track = False
    for seg in segs:
        track = segment_drums(seg, stats)
        if track is None:
            continue
        any_track = True
        starts = span_window_starts(span_bounds(track.onsets, track.ends), num_bars)
        if not len(starts):
            continue
        wins = bar_slices(track.tokens, starts, num_bars)
        for i in dedupe(wins, seen):
            out.append(Window(wins[i], seg.first_bar + int(starts[i]), 0, seg.qpm))
    if not out:
        count_skip(stats, segs, any_track, "no_drums")
    return out, stats


def from_note_sequence(ns, num_bars: int, window_index: int = 0) -> np.ndarray:
    """Tokens int32 [num_bars*16] of the `window_index`-th grid window with a drum hit."""
    from . import midi_io
    ns, name = midi_io.as_note_sequence(ns)
    stats = Stats()
    found = 0
    segs = grid.segments(ns, stats)
    any_track = False
    for seg in segs:
        track = segment_drums(seg, stats)
        if track is None:
            continue
        any_track = True
        starts = grid_window_starts(seg.num_bars, num_bars)
        cum = onsets_per_bar(track.onsets, int(starts[-1]) + num_bars)
        for start in starts[cum[starts + num_bars] > cum[starts]].tolist():
            if found == window_index:
                tokens = pad_to(track.tokens, (start + num_bars) * STEPS_PER_BAR)
                return bar_slices(tokens, np.array([start]), num_bars)[0]
            found += 1
    if found:
        raise NoWindowError(f"{name}: asked for drum window {window_index} but only "
                            f"{found} {num_bars}-bar window(s) exist")
    count_skip(stats, segs, any_track, "no_drums")
    raise NoWindowError(f"{name}: " + explain(stats, "drum", num_bars, grid.piece_meters(ns)))


def token_hits(tokens: np.ndarray) -> list[tuple[int, int]]:
    """(step, GM pitch) of every hit that drum tokens describe."""
    tokens = np.asarray(tokens)
    hits = []
    for step in np.nonzero(tokens)[0].tolist():
        mask = int(tokens[step])
        for c in range(len(DRUM_CLASS_PITCHES)):
            if mask >> c & 1:
                hits.append((step, int(CLASS_PITCH[c])))
    return hits


def to_note_sequence(tokens: np.ndarray, qpm: float = grid.DEFAULT_QPM,
                     velocity: int = DEFAULT_VELOCITY,
                     instrument: int = DRUM_CHANNEL_INSTRUMENT, ns=None, **_unused):
    """Tokens [T] -> NoteSequence with is_drum notes (channel 10 when written to MIDI)."""
    from .melody import new_sequence
    ns = ns if ns is not None else new_sequence(qpm, len(tokens))
    step = grid.steps_to_seconds(1, qpm)
    add = ns.notes.add
    for start, pitch in token_hits(tokens):
        add(start_time=start * step, end_time=(start + 1) * step, pitch=pitch,
            velocity=velocity, instrument=instrument, is_drum=True)
    ns.total_time = max(ns.total_time, grid.steps_to_seconds(len(tokens), qpm))
    return ns


def class_counts(tokens: Iterable[int]) -> np.ndarray:
    """How many hits of each of the 9 classes a token sequence has (for tests/inspection)."""
    t = np.asarray(list(tokens) if not isinstance(tokens, np.ndarray) else tokens)
    return np.array([int(np.count_nonzero(t >> c & 1)) for c in range(9)])
