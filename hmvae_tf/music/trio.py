"""Trio <-> tokens [T, 3] = [melody | bass | drums] classes (90 | 90 | 512).

A trio window is an N-bar stretch of one grid segment (1-bar hop) in which a melody
instrument (programs 0-31), a bass instrument (programs 32-39) and the drums all play. Per
window and per role the instrument with the most note-ons in that window is used (ties: the
lowest instrument index); Magenta instead took the cross product of all instruments.
Rendering: melody program 0, bass program 33, drums on channel 10 by default; `hmvae
interpolate` / `attribute` pass the input window's melody and bass programs instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

import numpy as np

from . import drums, grid, melody
from .grid import STEPS_PER_BAR, Segment, Stats
from .windows import (NoWindowError, Window, WindowBatch, bar_slices, count_skip, dedupe,
                      empty_batch, explain,
                      grid_window_starts, no_window_at, only_found, pad_to)

if TYPE_CHECKING:
    import os

    from note_seq.protobuf.music_pb2 import NoteSequence

TRACKS = ("melody", "bass", "drums")
NUM_CLASSES = (melody.NUM_CLASSES, melody.NUM_CLASSES, drums.NUM_CLASSES)
MELODY_PROGRAM = 0
BASS_PROGRAM = 33


class TrioWindow(NamedTuple):
    """An inference window and where it came from (find_window), so a command can say where
    in the file its tokens lie, which parts they hold and what they leave out."""

    tokens: np.ndarray  # int32 [num_bars * 16, 3]
    start_bar: int  # bar number in the piece it starts at
    programs: tuple[int, int]  # (melody program, bass program)
    qpm: float  # the tempo in force at its first bar
    silent_bars: int  # bars at its end past the end of the music: padded with silence
    unmapped_drums: list[int]  # drums.unmapped_hits: its hits' pitches outside the 9 classes
    # (melody, bass) notes its one-voice lines leave out (melody.left_out): outside MIDI
    # 21..108, and starting on the step of a higher note of their part (a part's chords).
    notes_out_of_range: tuple[int, int] = (0, 0)
    chord_notes: tuple[int, int] = (0, 0)
    instruments: tuple[int, int] = (0, 0)  # the NoteSequence instruments of its melody, bass


def _segment_windows(seg: Segment, num_bars: int, starts: np.ndarray, stats: Stats,
                     melody_programs: Iterable[int], bass_programs: Iterable[int]
                     ) -> tuple[np.ndarray, np.ndarray, list[tuple[melody.Track, melody.Track]],
                                bool]:
    """Windows [n, T, 3] of a segment at the given start bars where all three roles play.

    Returns (tokens, kept start bars, (melody track, bass track) per window, whether the
    segment has all three roles at all).
    """
    mel = melody.segment_tracks(seg, melody.program_mask(melody_programs), stats)
    bass = melody.segment_tracks(seg, melody.program_mask(bass_programs), stats)
    drum = drums.segment_drums(seg, stats)
    for role, present in (("no_melody", mel), ("no_bass", bass), ("no_drums", drum)):
        if not present:
            stats[f"trio_segments_{role}"] += 1
    empty = np.zeros((0, num_bars * STEPS_PER_BAR, 3), np.int32)
    if not (mel and bass and drum is not None) or not len(starts):
        return empty, np.zeros(0, np.int64), [], bool(mel and bass and drum is not None)
    best_m = melody.best_track_per_window(mel, starts, num_bars)
    best_b = melody.best_track_per_window(bass, starts, num_bars)
    best_d = melody.best_track_per_window([drum], starts, num_bars)
    ok = (best_m >= 0) & (best_b >= 0) & (best_d >= 0)
    starts, best_m, best_b = starts[ok], best_m[ok], best_b[ok]
    if not len(starts):
        return empty, starts, [], True
    steps = (int(starts[-1]) + num_bars) * STEPS_PER_BAR
    out = np.empty((len(starts), num_bars * STEPS_PER_BAR, 3), np.int32)
    for col, (tracks, best) in enumerate(((mel, best_m), (bass, best_b))):
        for k in np.unique(best).tolist():
            rows = best == k
            padded = pad_to(tracks[k].tokens, steps)
            out[rows, :, col] = melody.canonicalize(bar_slices(padded, starts[rows], num_bars))
    out[:, :, 2] = bar_slices(pad_to(drum.tokens, steps), starts, num_bars)
    parts = [(mel[m], bass[b]) for m, b in zip(best_m.tolist(), best_b.tolist())]
    return out, starts, parts, True


def extract_windows(ns: NoteSequence, num_bars: int, stats: Stats | None = None,
                    melody_programs: Iterable[int] = melody.MELODY_PROGRAMS,
                    bass_programs: Iterable[int] = melody.BASS_PROGRAMS
                    ) -> tuple[list[Window], Stats]:
    """All distinct trio windows lying inside a segment (no padding past the last note)."""
    stats = stats if stats is not None else Stats()
    out: list[Window] = []
    seen: set[bytes] = set()
    segs = grid.segments(ns, stats)
    any_track = False
    for seg in segs:
        starts = np.arange(max(0, seg.num_bars - num_bars + 1))
        wins, starts, parts, has_all = _segment_windows(
            seg, num_bars, starts, stats, melody_programs, bass_programs)
        any_track |= has_all
        for i in dedupe(wins, seen):
            programs = (parts[i][0].program, parts[i][1].program)
            out.append(Window(wins[i], seg.first_bar + int(starts[i]), programs,
                              seg.qpm_at_bar(int(starts[i]))))
    if not out:
        count_skip(stats, segs, any_track, "no_trio_instruments")
        _count_drums_elsewhere(ns, stats)  # a dataset build says it as the commands do
    return out, stats


def _count_drums_elsewhere(ns: NoteSequence, stats: Stats) -> None:
    """Counts `no_drums` for a piece none of whose sections had a drum part, and
    (drums.count_pitched_only) `drums_elsewhere` when it has no drum-channel note at all: its
    drum part is then often on a pitched channel, which the user can fix once told."""
    if stats.get("trio_segments_no_drums"):
        stats["no_drums"] += 1
    drums.count_pitched_only(ns, stats)


def extract_windows_batch(seqs: Sequence, num_bars: int,
                          stats: Sequence[Stats] | None = None) -> WindowBatch:
    """Trio windows of many NoteSequences (one by one: trio pieces are few and long)."""
    stats = stats if stats is not None else [Stats() for _ in seqs]
    rows, pieces = [], []
    for i, ns in enumerate(seqs):
        windows, _ = extract_windows(ns, num_bars, stats[i])
        rows += windows
        pieces += [i] * len(windows)
    if not rows:
        return empty_batch(num_bars * STEPS_PER_BAR, 3)
    return WindowBatch(np.stack([w.tokens for w in rows]), np.array(pieces),
                       np.array([w.start_bar for w in rows]),
                       np.array([w.program for w in rows]), np.array([w.qpm for w in rows]))


def from_note_sequence(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                       window_index: int = 0,
                       melody_programs: Iterable[int] = melody.MELODY_PROGRAMS,
                       bass_programs: Iterable[int] = melody.BASS_PROGRAMS) -> np.ndarray:
    """Tokens int32 [num_bars*16, 3] of the `window_index`-th grid window with all roles."""
    return find_window(ns, num_bars, window_index, melody_programs, bass_programs)[0]


def find_window(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                window_index: int = 0,
                melody_programs: Iterable[int] = melody.MELODY_PROGRAMS,
                bass_programs: Iterable[int] = melody.BASS_PROGRAMS,
                at_bar: int | None = None) -> TrioWindow:
    """The `window_index`-th grid window with all roles (or the one starting at grid bar
    `at_bar`); raises NoWindowError saying why not."""
    from . import midi_io
    ns, name = midi_io.as_note_sequence(ns)
    stats = Stats()
    found = 0
    segs = grid.segments(ns, stats)
    any_track = False
    for seg in segs:
        # At a bar asked for, a window may start on any bar of the music (padded with silence).
        starts = grid_window_starts(seg.num_bars, num_bars if at_bar is None else 1)
        wins, kept, parts, has_all = _segment_windows(seg, num_bars, starts, stats,
                                                      melody_programs, bass_programs)
        any_track |= has_all
        if at_bar is not None:
            here = np.flatnonzero(seg.first_bar + np.asarray(kept, np.int64) == at_bar)
        else:
            here = [window_index - found] if window_index < found + len(wins) else []
        if len(here):
            start = int(kept[int(here[0])])
            mel, bass = parts[int(here[0])]
            (mel_out, mel_chords), (bass_out, bass_chords) = (
                melody.left_out(seg, track, melody.program_mask(programs), start, num_bars)
                for track, programs in ((mel, melody_programs), (bass, bass_programs)))
            return TrioWindow(wins[int(here[0])], seg.first_bar + start,
                              (mel.program, bass.program), seg.qpm_at_bar(start),
                              max(0, start + num_bars - seg.num_bars),
                              drums.unmapped_hits(seg, start, num_bars),
                              (mel_out, bass_out), (mel_chords, bass_chords),
                              (mel.instrument, bass.instrument))
        found += len(wins)
    if found and at_bar is not None:
        raise no_window_at(name, "trio", num_bars, at_bar, found)
    if found:
        raise NoWindowError(f"{name}: {only_found('trio', window_index, found, num_bars)}")
    count_skip(stats, segs, any_track, "no_trio_instruments")
    _count_drums_elsewhere(ns, stats)
    missing = [role for role, programs in (("melody", melody_programs), ("bass", bass_programs))
               if stats.get(f"trio_segments_no_{role}")]
    raise NoWindowError(f"{name}: " + explain(stats, "trio (melody + bass + drums)", num_bars,
                                              grid.piece_meters(ns),
                                              _missing_parts(ns, missing, melody_programs,
                                                             bass_programs)))


def _missing_parts(ns: NoteSequence, missing: Sequence[str], melody_programs: Iterable[int],
                   bass_programs: Iterable[int]) -> list[str]:
    """Why a trio has no melody or bass part: the programs each role takes and those the
    file's pitched parts play, since a part in the wrong program family (a saxophone lead, a
    bass written as piano) is the usual cause and its program is what to change."""
    if not missing:
        return []
    ranges = {"melody": _span(melody_programs), "bass": _span(bass_programs)}
    reasons = [f"it has no {role} notes (a trio's {role} is programs {ranges[role]})"
               for role in missing]
    played = sorted({n.program for n in ns.notes if not n.is_drum})
    reasons.append("its pitched parts play program" + ("s " if len(played) > 1 else " ")
                   + ", ".join(map(str, played)) if played else "it has no pitched notes")
    return reasons


def _span(programs: Iterable[int]) -> str:
    """'0-31' for a run of programs, else them listed."""
    programs = sorted(programs)
    if programs and programs == list(range(programs[0], programs[-1] + 1)):
        return f"{programs[0]}-{programs[-1]}"
    return ", ".join(map(str, programs))


def to_note_sequence(tokens: np.ndarray, qpm: float = grid.DEFAULT_QPM,
                     program: int = MELODY_PROGRAM, bass_program: int = BASS_PROGRAM,
                     **_unused: object) -> NoteSequence:
    """Tokens [T, 3] -> NoteSequence: melody (instrument 0), bass (1), drums (channel 10)."""
    tokens = np.asarray(tokens)
    ns = melody.new_sequence(qpm, len(tokens))
    melody.to_note_sequence(tokens[:, 0], qpm, program=program, instrument=0, ns=ns)
    melody.to_note_sequence(tokens[:, 1], qpm, program=bass_program, instrument=1, ns=ns)
    drums.to_note_sequence(tokens[:, 2], qpm, ns=ns)
    return ns
