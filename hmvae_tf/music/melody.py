"""Monophonic melody <-> 90-class tokens, 16 steps per 4/4 bar.

Token per step: 0 = no event (the current note or rest goes on), 1 = note-off,
2..89 = note-on of MIDI pitch 21..108. As in Magenta, each instrument (programs 0-31 for
2-bar windows, any pitched program for longer ones: `training_programs`; never drums) is
reduced to one voice: of the notes starting on one step the highest
wins, and a new note ends the sounding one. Notes outside 21..108 are dropped and counted
(at inference a line may first be moved by octaves to fit: `line_octaves`).

Window tokens are canonical: a note-off before the window's first note-on (the end of a
note that began before the window) is written as "no event", because no rendering can carry
it. With that, tokens -> NoteSequence -> MIDI -> NoteSequence -> tokens is the identity.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from . import grid
from .grid import STEPS_PER_BAR, Segment, Stats
from .windows import (NoWindowError, Window, WindowBatch, bar_slices, batched_span_windows,
                      count_skip, dedupe_by_piece, empty_batch, explain, grid_window_starts,
                      no_window_at, only_found, onsets_per_bar, pad_to)

if TYPE_CHECKING:
    import os

    from note_seq.protobuf.music_pb2 import NoteSequence

NUM_CLASSES = 90
NO_EVENT = 0
NOTE_OFF = 1
MIN_PITCH = 21
MAX_PITCH = 108
PITCH_OFFSET = MIN_PITCH - 2  # token = pitch - PITCH_OFFSET
MELODY_PROGRAMS = range(0, 32)
BASS_PROGRAMS = range(32, 40)
PITCHED_PROGRAMS = range(0, 128)


def training_programs(num_bars: int) -> range:
    """The programs whose lines give training windows: Magenta's 2-bar melody models take
    programs 0-31 only, its 16-bar ones any pitched instrument (a flute or violin line too)."""
    return MELODY_PROGRAMS if num_bars <= 2 else PITCHED_PROGRAMS
DEFAULT_VELOCITY = 80


class Track:
    """One instrument's monophonic line over a segment (tokens padded to whole bars)."""

    __slots__ = ("instrument", "program", "tokens", "onsets", "ends", "octaves")

    def __init__(self, instrument: int, program: int, tokens: np.ndarray,
                 onsets: np.ndarray, ends: np.ndarray, octaves: int = 0):
        self.instrument = instrument
        self.program = program
        self.tokens = tokens    # int32 [bars * 16]
        self.onsets = onsets    # ascending onset steps
        self.ends = ends        # step where each kept note stops sounding
        self.octaves = octaves  # whole octaves the line was moved by to fit MIDI 21..108


def program_mask(programs: Iterable[int]) -> np.ndarray:
    """Bool [128] lookup by MIDI program, so notes can be filtered with one indexing op."""
    mask = np.zeros(128, bool)
    mask[[p for p in programs if 0 <= p < 128]] = True
    return mask


_PROGRAM_MASKS: dict[tuple[int, ...], np.ndarray] = {}


def cached_program_mask(programs: Iterable[int]) -> np.ndarray:
    """program_mask built once per program list (the batch extractor asks on every call)."""
    key = tuple(programs)
    if key not in _PROGRAM_MASKS:
        _PROGRAM_MASKS[key] = program_mask(key)
    return _PROGRAM_MASKS[key]


def monophonic_track(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Highest note per onset step; each note is cut by the next onset. Returns s, e, pitch.

    Input sorted by onset then highest pitch first (as grid.Segment notes are).
    """
    if len(start) > 1:
        first = np.empty(len(start), bool)
        first[0] = True
        np.not_equal(start[1:], start[:-1], out=first[1:])
        if not first.all():
            start, end, pitch = start[first], end[first], pitch[first]
        nxt = np.empty_like(end)
        nxt[:-1] = start[1:]
        nxt[-1] = end[-1]
        end = np.minimum(end, nxt)
    return start, end, pitch


def render_tokens(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Monophonic notes -> int32 tokens over whole bars (long enough for the last note-off)."""
    length = (int(end[-1]) // STEPS_PER_BAR + 1) * STEPS_PER_BAR
    tokens = np.zeros(length, np.int32)
    off = np.ones(len(start), bool)
    np.less(end[:-1], start[1:], out=off[:-1])
    tokens[end[off]] = NOTE_OFF
    tokens[start] = pitch - PITCH_OFFSET
    return tokens


def line_octaves(instrument: np.ndarray, pitch: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per note, the whole octaves its instrument's line moves by so that the most of the
    line's `ok` notes lie in MIDI MIN_PITCH..MAX_PITCH (the smallest such move; 0 for a line
    already inside): a piccolo part written an octave up, or a track transposed above MIDI 108,
    is then read rather than dropped note by note. The caller moves the output back."""
    moves = np.zeros(len(pitch), np.int64)
    outside = ok & ((pitch < MIN_PITCH) | (pitch > MAX_PITCH))
    for line in np.unique(instrument[outside]).tolist():
        mine = ok & (instrument == line)
        p = pitch[mine]

        def inside(octaves: int) -> int:
            moved = p + 12 * octaves
            return int(np.count_nonzero((moved >= MIN_PITCH) & (moved <= MAX_PITCH)))

        moves[instrument == line] = max(range(-10, 11), key=lambda k: (inside(k), -abs(k)))
    return moves


def segment_tracks(seg: Segment, programs_ok: np.ndarray, stats: Stats,
                   move_octaves: bool = False) -> list[Track]:
    """Monophonic tracks of the segment's eligible instruments (sorted by instrument).
    move_octaves: a line with notes outside MIDI 21..108 is moved by whole octaves first
    (line_octaves; Track.octaves says by how many), for inference that moves the output back."""
    n = seg.notes
    ok = programs_ok[n.program]
    ok &= ~n.is_drum
    pitch = n.pitch
    moves = line_octaves(n.instrument, pitch, ok) if move_octaves else None
    if moves is not None and moves.any():
        pitch = pitch + 12 * moves
    else:
        moves = None
    in_range = (pitch >= MIN_PITCH) & (pitch <= MAX_PITCH)
    if not in_range.all():
        dropped = int(np.count_nonzero(ok & ~in_range))
        if dropped:
            stats["notes_out_of_range"] += dropped
        ok &= in_range
    if ok.all():
        start, end, inst, prog = n.start, n.end, n.instrument, n.program
    else:
        idx = np.nonzero(ok)[0]
        if not len(idx):
            return []
        start, end, pitch = n.start[idx], n.end[idx], pitch[idx]
        inst, prog = n.instrument[idx], n.program[idx]
        if moves is not None:
            moves = moves[idx]
    if inst.min() == inst.max():
        groups = [(int(inst[0]), None)]
    else:
        groups = [(int(i), inst == i) for i in np.unique(inst)]
    tracks = []
    for instrument, sel in groups:
        if sel is None:
            s, e, p = monophonic_track(start, end, pitch)
            program = int(prog[0])
            octaves = 0 if moves is None else int(moves[0])
        else:
            s, e, p = monophonic_track(start[sel], end[sel], pitch[sel])
            program = int(prog[sel][0])
            octaves = 0 if moves is None else int(moves[sel][0])
        tracks.append(Track(instrument, program, render_tokens(s, e, p), s, e, octaves))
    return tracks


def left_out(seg: Segment, track: Track, programs_ok: np.ndarray, start: int,
             num_bars: int) -> tuple[int, int]:
    """(notes outside MIDI 21..108, notes starting on the step of a higher one) of `track`'s
    instrument starting in the window of `num_bars` bars from segment bar `start`: what its
    one-voice line leaves out, which a window line counts so a thin reconstruction is no
    mystery (a melody's or a trio's melody and bass)."""
    n = seg.notes
    lo, hi = start * STEPS_PER_BAR, (start + num_bars) * STEPS_PER_BAR
    pitch = n.pitch + 12 * track.octaves
    here = ((n.instrument == track.instrument) & ~n.is_drum
            & (n.start >= lo) & (n.start < hi))
    in_range = (pitch >= MIN_PITCH) & (pitch <= MAX_PITCH)
    read = n.start[here & in_range & programs_ok[n.program]]
    return int(np.count_nonzero(here & ~in_range)), len(read) - len(np.unique(read))


def canonicalize(windows: np.ndarray) -> np.ndarray:
    """Turns note-offs before each window's first note-on into no-events (in place)."""
    is_on = windows >= 2
    first_on = np.where(is_on.any(-1), is_on.argmax(-1), windows.shape[-1])
    orphan = (windows == NOTE_OFF) & (np.arange(windows.shape[-1]) < first_on[..., None])
    windows[orphan] = NO_EVENT
    return windows


def extract_windows_batch(seqs: Sequence, num_bars: int,
                          programs: Iterable[int] | None = None,
                          stats: Sequence[Stats] | None = None) -> WindowBatch:
    """All distinct training windows of `num_bars` bars of every instrument's melody, for
    many NoteSequences at once (vectorised over all their notes).

    Per instrument the line is made monophonic (highest of simultaneous onsets; a new note
    ends the sounding one); melodies split at >= 1 bar of silence; a window lies inside one
    melody, starts on a bar line (1-bar hop) and holds a note-on; duplicates within a piece
    are dropped. stats[i] gets piece i's counts and exactly one 'skip/<reason>' if it gave
    no window. programs: default `training_programs(num_bars)`.
    """
    stats = stats if stats is not None else [Stats() for _ in seqs]
    programs = training_programs(num_bars) if programs is None else programs
    table = grid.note_table(seqs, stats)
    n = table.notes
    steps = num_bars * STEPS_PER_BAR
    ok = cached_program_mask(programs)[n.program]
    ok &= ~n.is_drum
    in_range = (n.pitch >= MIN_PITCH) & (n.pitch <= MAX_PITCH)
    if not in_range.all():
        bad = ok & ~in_range
        if bad.any():
            for p, c in _piece_counts(table.seg_piece[table.seg[bad]]):
                stats[p]["notes_out_of_range"] += c
        ok &= in_range
    seg, inst = table.seg, n.instrument
    start, end, pitch, prog = n.start, n.end, n.pitch, n.program
    if not ok.all():
        seg, inst, start, end = seg[ok], inst[ok], start[ok], end[ok]
        pitch, prog = pitch[ok], prog[ok]
    m = len(start)
    if m:
        # Tracks = (segment, instrument); table order is (segment, instrument, onset, -pitch).
        new_track = np.empty(m, bool)
        new_track[0] = True
        new_track[1:] = (seg[1:] != seg[:-1]) | (inst[1:] != inst[:-1])
        keep = new_track.copy()
        keep[1:] |= start[1:] != start[:-1]  # highest pitch per onset step
        if not keep.all():
            seg, inst, start, end, pitch, prog = (seg[keep], inst[keep], start[keep],
                                                  end[keep], pitch[keep], prog[keep])
            new_track = new_track[keep]
            m = len(start)
        track = np.cumsum(new_track) - 1
        same_next = np.zeros(m, bool)
        same_next[:-1] = ~new_track[1:]
        nxt = np.empty_like(start)
        nxt[:-1] = start[1:]
        nxt[-1] = end[-1]
        end = np.where(same_next, np.minimum(end, nxt), end)  # a new note ends the last
        firsts = np.flatnonzero(new_track)
        lasts = np.append(firsts[1:] - 1, m - 1)
        length = (end[lasts] // STEPS_PER_BAR + 1) * STEPS_PER_BAR
        offset = np.cumsum(length) - length
        buffer = np.zeros(int(length.sum()), np.int32)
        base = offset[track]
        off = ~same_next | (end < nxt)
        buffer[(base + end)[off]] = NOTE_OFF
        buffer[base + start] = pitch - PITCH_OFFSET
        wins, win_track, bar = batched_span_windows(track, start, end, offset, buffer, num_bars)
    else:
        wins = np.zeros((0, steps), np.int32)
    if len(wins):
        is_on = wins >= 2
        has_on = is_on.any(1)
        if not has_on.all():
            wins, is_on, win_track, bar = wins[has_on], is_on[has_on], win_track[has_on], \
                bar[has_on]
        orphan = wins == NOTE_OFF
        if orphan.any():  # canonical: no note-off before the first note-on
            orphan &= np.arange(steps) < is_on.argmax(1)[:, None]
            wins[orphan] = NO_EVENT
        wseg = seg[firsts][win_track]
        wpiece = table.seg_piece[wseg]
        keep = dedupe_by_piece(wins, wpiece)
        wins, wseg, wpiece = wins[keep], wseg[keep], wpiece[keep]
        batch = WindowBatch(wins, wpiece, table.seg_first_bar[wseg] + bar[keep],
                            prog[firsts][win_track[keep]], table.window_qpm(wseg, bar[keep]))
    else:
        batch = empty_batch(steps)
    _count_batch_skips(table, stats, batch.piece, eligible_seg=seg if m else seg[:0],
                       missing="no_melody")
    return batch


def _piece_counts(pieces: np.ndarray) -> list[tuple[int, int]]:
    if not len(pieces):
        return []
    counts = np.bincount(pieces)
    return [(int(p), int(counts[p])) for p in np.flatnonzero(counts)]


def _count_batch_skips(table, stats: Sequence[Stats], win_piece: np.ndarray,
                       eligible_seg: np.ndarray, missing: str) -> None:
    """One 'skip/<reason>' per piece without a window (see windows.count_skip)."""
    with_windows = np.zeros(table.num_pieces, bool)
    with_windows[win_piece] = True
    if with_windows.all():
        return
    with_notes = np.zeros(table.num_pieces, bool)
    with_notes[table.seg_piece[table.seg]] = True
    eligible = np.zeros(table.num_pieces, bool)
    eligible[table.seg_piece[eligible_seg]] = True
    for p in np.flatnonzero(~with_windows).tolist():
        st = stats[p]
        if st.get("no_notes"):
            reason = "no_notes"
        elif not with_notes[p]:
            reason = "meter_not_4/4_compatible"
        elif not eligible[p]:
            reason = missing
            st[missing] += 1
        else:
            reason = "too_short"
            st["too_short"] += 1
        st["skip/" + reason] += 1


def extract_windows(ns: NoteSequence, num_bars: int, programs: Iterable[int] | None = None,
                    stats: Stats | None = None) -> tuple[list[Window], Stats]:
    """All distinct training windows of one NoteSequence (see extract_windows_batch)."""
    stats = stats if stats is not None else Stats()
    return extract_windows_batch([ns], num_bars, programs, [stats]).windows(), stats


def onset_counts(onsets: np.ndarray, starts: np.ndarray, num_bars: int) -> np.ndarray:
    """Number of onsets in each window [start, start + num_bars) bars."""
    bars = int(starts[-1]) + num_bars
    cum = onsets_per_bar(onsets, bars)
    return cum[starts + num_bars] - cum[starts]


def best_track_per_window(tracks: Sequence, starts: np.ndarray, num_bars: int) -> np.ndarray:
    """Index of the track with the most onsets in each window (ties: the first), -1 if none."""
    if not tracks:
        return np.full(len(starts), -1)
    counts = np.stack([onset_counts(t.onsets, starts, num_bars) for t in tracks])
    best = counts.argmax(0)
    return np.where(counts[best, np.arange(len(starts))] > 0, best, -1)


@dataclasses.dataclass(frozen=True)
class MelodyWindow:
    """An inference window and where it came from, so a command can tell the user which
    line of a many-part file it took."""

    tokens: np.ndarray  # int32 [num_bars * 16]
    instrument: int  # the NoteSequence instrument: a part (program, channel, track), numbered
    # as pretty_midi lists them (not a MIDI channel or track number)
    program: int
    start_bar: int  # first bar; 0 = the piece's first bar (or its pickup)
    # True when no instrument of the asked programs had notes and another pitched one was used.
    other_programs: bool = False
    # Bars at the window's end past the end of the music (padded with silence): a short file
    # in a long window.
    silent_bars: int = 0
    # Notes of the chosen instrument starting in the window outside MIDI pitch 21..108 (left
    # out), after the move by `octaves`.
    notes_out_of_range: int = 0
    qpm: float = 120.0  # the tempo in force at the window's first bar
    # Notes of the chosen instrument starting in the window on the step of a higher note of
    # it (left out: a melody is one voice, the highest), e.g. a piano's left hand or chords.
    chord_notes: int = 0
    # Whole octaves the line was moved by to fit MIDI 21..108 (find_window's move_octaves):
    # the tokens hold the moved notes, so the caller moves its output back by as many.
    octaves: int = 0


def find_window(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                window_index: int = 0, programs: Iterable[int] | None = None,
                instrument: int | None = None, move_octaves: bool = False,
                at_bar: int | None = None) -> MelodyWindow:
    """The `window_index`-th window holding a note, for inference.

    Windows start on every bar of each grid segment (1-bar hop) and may run past the last
    note (padded with silence); in each, the instrument with the most note-ons is used, or
    only `instrument` when given. A file whose only pitched parts lie outside `programs`
    (a flute, violin or trumpet line against Magenta's programs 0-31) uses those parts rather
    than failing. `ns` may be a NoteSequence or a MIDI file path. move_octaves: a line with
    notes outside MIDI 21..108 is read moved by whole octaves (line_octaves) rather than
    without them; MelodyWindow.octaves says by how many. Raises NoWindowError saying why no
    window was found. at_bar: the window with notes starting at this grid bar (as
    MelodyWindow.start_bar counts) instead of the `window_index`-th; NoWindowAtBarError when
    none does.
    """
    from . import midi_io  # local: keeps this module free of file I/O at import
    ns, name = midi_io.as_note_sequence(ns)
    programs = tuple(training_programs(num_bars) if programs is None else programs)
    grid_stats = Stats()
    segs = grid.segments(ns, grid_stats)  # once: both searches walk the same segments
    search = _Search(segs, grid_stats, num_bars, window_index, programs, instrument,
                     move_octaves, at_bar)
    other_programs = False
    if not search.any_track and programs != tuple(PITCHED_PROGRAMS):
        other = _Search(segs, grid_stats, num_bars, window_index, PITCHED_PROGRAMS, instrument,
                        move_octaves, at_bar)
        if other.any_track:
            search, other_programs = other, True
    if search.window is not None:
        return dataclasses.replace(search.window, other_programs=other_programs)
    which = "" if instrument is None else f" of instrument {instrument}"
    if search.found and at_bar is not None:
        raise no_window_at(name, f"melody{which}", num_bars, at_bar, search.found)
    if search.found:
        off_grid = sorted(k[len("segments_meter_"):] for k in search.stats
                          if k.startswith("segments_meter_"))
        raise NoWindowError(f"{name}: "
                            + only_found("melody", f"{window_index}{which}", search.found,
                                         num_bars)
                            + (f" (the parts in {', '.join(off_grid)} do not fit the "
                               "16-steps-per-4/4-bar grid)" if off_grid else ""))
    if instrument is not None:
        present = ", ".join(map(str, sorted(ns_instruments(ns)))) or "none"
        raise NoWindowError(f"{name}: instrument {instrument} has no melody notes (pitched "
                            f"instruments in the file: {present})")
    # Any pitched program would have done (see above), so that is what the file lacks.
    count_skip(search.stats, search.segs, search.any_track, "no_pitched")
    raise NoWindowError(f"{name}: " + explain(search.stats, "melody", num_bars,
                                              grid.piece_meters(ns)))


class _Search:
    """One pass over the file's windows: the asked-for window if it exists, else how many
    there were and the skip counts that explain why."""

    def __init__(self, segs: list[Segment], grid_stats: Stats, num_bars: int,
                 window_index: int, programs: Iterable[int], instrument: int | None,
                 move_octaves: bool = False, at_bar: int | None = None):
        ok = program_mask(programs)
        self.stats = Stats(grid_stats)  # the segments' skips, then this search's own
        self.segs = segs
        self.found, self.any_track = 0, False
        self.window: MelodyWindow | None = None
        for seg in self.segs:
            tracks = [t for t in segment_tracks(seg, ok, self.stats, move_octaves)
                      if instrument is None or t.instrument == instrument]
            self.any_track |= bool(tracks)
            # At a bar asked for, a window may start on any bar of the music (padded).
            starts = grid_window_starts(seg.num_bars, num_bars if at_bar is None else 1)
            for start, k in zip(starts.tolist(), best_track_per_window(tracks, starts, num_bars)):
                if k < 0:
                    continue
                if (self.found == window_index if at_bar is None
                        else seg.first_bar + start == at_bar):
                    track = tracks[k]
                    tokens = pad_to(track.tokens, (start + num_bars) * STEPS_PER_BAR)
                    tokens = canonicalize(bar_slices(tokens, np.array([start]), num_bars))[0]
                    out_of_range, chord_notes = left_out(seg, track, ok, start, num_bars)
                    self.window = MelodyWindow(
                        tokens, track.instrument, track.program, seg.first_bar + start,
                        silent_bars=max(0, start + num_bars - seg.num_bars),
                        notes_out_of_range=out_of_range, chord_notes=chord_notes,
                        qpm=seg.qpm_at_bar(start), octaves=track.octaves)
                    return
                self.found += 1


def ns_instruments(ns: NoteSequence) -> set[int]:
    """The instrument numbers of the file's pitched (non-drum) notes."""
    return {n.instrument for n in ns.notes if not n.is_drum}


def from_note_sequence(ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                       window_index: int = 0, programs: Iterable[int] | None = None,
                       instrument: int | None = None) -> np.ndarray:
    """Tokens int32 [num_bars*16] of find_window's window (inference)."""
    return find_window(ns, num_bars, window_index, programs, instrument).tokens


def to_note_sequence(tokens: np.ndarray, qpm: float = grid.DEFAULT_QPM, program: int = 0,
                     velocity: int = DEFAULT_VELOCITY, instrument: int = 0,
                     ns: NoteSequence | None = None) -> NoteSequence:
    """Tokens [T] -> a quantisable NoteSequence in 4/4 at `qpm` (notes appended to `ns`)."""
    ns = ns if ns is not None else new_sequence(qpm, len(tokens))
    step = grid.steps_to_seconds(1, qpm)
    add = ns.notes.add
    for start, end, pitch in token_notes(tokens):
        add(start_time=start * step, end_time=end * step, pitch=pitch, velocity=velocity,
            instrument=instrument, program=program)
    ns.total_time = max(ns.total_time, grid.steps_to_seconds(len(tokens), qpm))
    return ns


def token_notes(tokens: np.ndarray) -> list[tuple[int, int, int]]:
    """(start_step, end_step, pitch) of the notes that melody tokens describe."""
    tokens = np.asarray(tokens)
    events = np.nonzero(tokens > NO_EVENT)[0]
    if not len(events):
        return []
    values = tokens[events]
    ends = np.append(events[1:], len(tokens))
    on = values >= 2
    return list(zip(events[on].tolist(), ends[on].tolist(),
                    (values[on] + PITCH_OFFSET).tolist()))


def new_sequence(qpm: float, num_steps: int) -> NoteSequence:
    """An empty 4/4 NoteSequence at `qpm` with its grid metadata."""
    from note_seq.protobuf import music_pb2
    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = 220
    ns.tempos.add(time=0.0, qpm=qpm)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    ns.total_time = grid.steps_to_seconds(num_steps, qpm)
    return ns
