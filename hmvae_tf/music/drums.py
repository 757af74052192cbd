"""Drums <-> 512-class tokens: a 9-bit mask per step over Magenta's reduced drum classes.

Every General MIDI drum pitch listed below maps to one of 9 classes; a step's token has bit
c set when a hit of class c starts there (bit 0 = kick ... bit 8 = ride). All drum
instruments (is_drum, MIDI channel 10) of a piece are merged. Unlisted drum pitches are
dropped and counted. Rendering writes the first pitch of each class, 1 step long, on
channel 10.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from . import grid
from .grid import STEPS_PER_BAR, Segment, Stats
from .windows import (NoWindowError, Window, WindowBatch, bar_slices, batched_span_windows,
                      count_skip, dedupe_by_piece, empty_batch, explain, grid_window_starts,
                      no_window_at, only_found, onsets_per_bar, pad_to)

if TYPE_CHECKING:
    import os

    from note_seq.protobuf.music_pb2 import NoteSequence

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

    __slots__ = ("tokens", "onsets")

    def __init__(self, tokens: np.ndarray, onsets: np.ndarray):
        self.tokens = tokens   # int32 [bars * 16]
        self.onsets = onsets   # distinct ascending hit steps


class DrumWindow(NamedTuple):
    """An inference window and where it came from (find_window), so a command can say where
    in the file its tokens lie and what they leave out."""

    tokens: np.ndarray  # int32 [num_bars * 16]
    start_bar: int  # bar number in the piece it starts at
    qpm: float  # the tempo in force at its first bar
    silent_bars: int  # bars at its end past the end of the music: padded with silence
    unmapped_drums: list[int]  # unmapped_hits: its hits' pitches outside the 9 classes


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


def extract_windows_batch(seqs: Sequence, num_bars: int,
                          stats: Sequence[Stats] | None = None) -> WindowBatch:
    """All distinct `num_bars` drum windows of many NoteSequences (vectorised): all drum
    instruments of a segment merged, spans split at >= 1 bar without a hit, windows inside a
    span holding a hit, duplicates within a piece dropped."""
    from .melody import _count_batch_skips, _piece_counts
    stats = stats if stats is not None else [Stats() for _ in seqs]
    table = grid.note_table(seqs, stats)
    n = table.notes
    steps = num_bars * STEPS_PER_BAR
    drum = n.is_drum
    cls = PITCH_TO_CLASS[np.clip(n.pitch, 0, 127)]
    mapped = drum & (cls >= 0)
    unmapped = drum & (cls < 0)
    if unmapped.any():
        for p, c in _piece_counts(table.seg_piece[table.seg[unmapped]]):
            stats[p]["drum_notes_unmapped"] += c
    seg, start, cls = table.seg[mapped], n.start[mapped], cls[mapped]
    batch = empty_batch(steps)
    if len(start):
        order = np.lexsort((start, seg))
        seg, start, cls = seg[order], start[order], cls[order]
        new_evt = np.empty(len(start), bool)
        new_evt[0] = True
        new_evt[1:] = (seg[1:] != seg[:-1]) | (start[1:] != start[:-1])
        new_track = np.empty(len(start), bool)
        new_track[0] = True
        new_track[1:] = seg[1:] != seg[:-1]
        track = np.cumsum(new_track) - 1
        firsts = np.flatnonzero(new_track)
        lasts = np.append(firsts[1:] - 1, len(start) - 1)
        length = (start[lasts] // STEPS_PER_BAR + 1) * STEPS_PER_BAR
        offset = np.cumsum(length) - length
        buffer = np.zeros(int(length.sum()), np.int32)
        np.bitwise_or.at(buffer, offset[track] + start, (1 << cls).astype(np.int32))
        ev_track, ev_start = track[new_evt], start[new_evt]
        wins, win_track, bar = batched_span_windows(ev_track, ev_start, ev_start + 1, offset,
                                                    buffer, num_bars, last_step=ev_start)
        if len(wins):
            hit = (wins != 0).any(1)
            if not hit.all():
                wins, win_track, bar = wins[hit], win_track[hit], bar[hit]
            wseg = seg[firsts][win_track]
            wpiece = table.seg_piece[wseg]
            keep = dedupe_by_piece(wins, wpiece)
            wseg = wseg[keep]
            batch = WindowBatch(wins[keep], wpiece[keep], table.seg_first_bar[wseg] + bar[keep],
                                np.zeros(len(keep), np.int64),
                                table.window_qpm(wseg, bar[keep]))
    _count_batch_skips(table, stats, batch.piece, eligible_seg=seg, missing="no_drums")
    for ns, piece_stats in zip(seqs, stats):  # a dataset build says it as the commands do
        count_pitched_only(ns, piece_stats)
    return batch


def extract_windows(ns: NoteSequence, num_bars: int, stats: Stats | None = None
                    ) -> tuple[list[Window], Stats]:
    """All distinct drum windows of one NoteSequence (see extract_windows_batch)."""
    stats = stats if stats is not None else Stats()
    return extract_windows_batch([ns], num_bars, [stats]).windows(), stats


def from_note_sequence(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                       window_index: int = 0) -> np.ndarray:
    """Tokens int32 [num_bars*16] of the `window_index`-th grid window with a drum hit."""
    return find_window(ns, num_bars, window_index)[0]


def find_window(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                window_index: int = 0, at_bar: int | None = None) -> DrumWindow:
    """The `window_index`-th grid window with a drum hit (or the one starting at grid bar
    `at_bar`); raises NoWindowError saying why there is none."""
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
        # At a bar asked for, a window may start on any bar of the music (padded with silence).
        starts = grid_window_starts(seg.num_bars, num_bars if at_bar is None else 1)
        cum = onsets_per_bar(track.onsets, int(starts[-1]) + num_bars)
        for start in starts[cum[starts + num_bars] > cum[starts]].tolist():
            if found == window_index if at_bar is None else seg.first_bar + start == at_bar:
                tokens = pad_to(track.tokens, (start + num_bars) * STEPS_PER_BAR)
                return DrumWindow(bar_slices(tokens, np.array([start]), num_bars)[0],
                                  seg.first_bar + start, seg.qpm_at_bar(start),
                                  max(0, start + num_bars - seg.num_bars),
                                  unmapped_hits(seg, start, num_bars))
            found += 1
    if found and at_bar is not None:
        raise no_window_at(name, "drum", num_bars, at_bar, found)
    if found:
        raise NoWindowError(f"{name}: {only_found('drum', window_index, found, num_bars)}")
    count_skip(stats, segs, any_track, "no_drums")
    count_pitched_only(ns, stats)
    raise NoWindowError(f"{name}: " + explain(stats, "drum", num_bars, grid.piece_meters(ns)))


def count_pitched_only(ns: NoteSequence, stats: Stats) -> None:
    """Counts `drums_elsewhere` when a piece has notes but none on the drum channel: then a
    drum part is often just on another channel than 10 (as a pitched instrument), which the
    user can fix once told."""
    if stats.get("no_drums") and ns.notes and not any(n.is_drum for n in ns.notes):
        stats["drums_elsewhere"] += 1


def unmapped_hits(seg: Segment, start: int, num_bars: int) -> list[int]:
    """Pitches of the drum hits in the window at bar `start` of segment `seg` that none of
    the 9 classes holds: its tokens leave them out, which the commands say (as they say a
    melody's notes out of range), so a missing cowbell or snare roll in the output is no
    mystery. Only the window's own segment: a bar of the next segment may share the
    window's steps (after a meter change in mid-bar, the 4/4 section's half bar and the 2/4
    section's first bar)."""
    n = seg.notes
    bar = n.start // STEPS_PER_BAR
    inside = (bar >= start) & (bar < start + num_bars)
    return n.pitch[n.is_drum & inside & (PITCH_TO_CLASS[np.clip(n.pitch, 0, 127)] < 0)].tolist()


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
                     instrument: int = DRUM_CHANNEL_INSTRUMENT, ns: NoteSequence | None = None,
                     **_unused: object) -> NoteSequence:
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

