"""NoteSequence -> notes on a 16-steps-per-4/4-bar grid, cut into meter segments.

Every representation (melody, drums, trio) reads music through this module, so there is one
answer to "where are the bars?":

* Time is converted to beats through the tempo map before quantising (4 steps per quarter,
  round half up like Magenta), so a tempo change needs no split.
* The piece is cut at every time-signature event; each event is a downbeat. A segment whose
  bar is a power-of-two number of steps (4/4, 2/4, 2/2, 4/2, 4/8, 1/4, ...) fits the grid:
  its 16-step grid bars start at the segment's downbeat and simply pair short bars (2/4) or
  split long ones (4/2). Other meters (3/4, 6/8, 3/2, ...) are skipped and counted.
* A first time signature shorter than one bar of the next (a pickup measure, as MusicXML
  encodes an anacrusis) becomes a partial bar before the next downbeat instead of a segment.
* Why something was dropped is counted in a `collections.Counter` the caller passes in, so
  the dataset builder and the inference path can say why a piece gave no windows.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import operator
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from note_seq.protobuf.music_pb2 import NoteSequence

STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
DEFAULT_QPM = 120.0

Stats = collections.Counter  # reason -> count


@dataclasses.dataclass
class Notes:
    """Notes as parallel arrays (steps are grid steps; ends are exclusive, > start)."""

    start: np.ndarray      # int64
    end: np.ndarray        # int64
    pitch: np.ndarray      # int64
    velocity: np.ndarray   # int64
    instrument: np.ndarray  # int64
    program: np.ndarray    # int64
    is_drum: np.ndarray    # bool

    def __len__(self) -> int:
        return len(self.start)

    def take(self, index: slice | np.ndarray) -> "Notes":
        """The notes picked by a slice or index/mask array, so all fields stay aligned."""
        return Notes(self.start[index], self.end[index], self.pitch[index], self.velocity[index],
                     self.instrument[index], self.program[index], self.is_drum[index])


@dataclasses.dataclass
class Segment:
    """A stretch of constant, grid-compatible meter.

    `notes` are relative to `origin` (step 0 = the segment's first grid bar, which is a
    partial bar when the segment starts with a pickup), sorted by instrument, onset, then
    highest pitch first. `num_steps` covers every note end.
    """

    notes: Notes
    origin: int          # absolute step of grid bar 0
    num_steps: int       # steps from origin to the last note end
    first_bar: int       # number of grid bar 0 in the piece (pickup bar = 0; _first_grid_bars)
    qpm: float           # tempo at the segment's start
    tempo: TempoMap | None = None  # the piece's tempo map when its tempo changes

    def qpm_at_bar(self, bar: int) -> float:
        """Tempo in force at grid bar `bar` of the segment."""
        if self.tempo is None:
            return self.qpm
        return self.tempo.qpm_at_step(self.origin + bar * STEPS_PER_BAR)

    @property
    def num_bars(self) -> int:
        """Bars needed to hold every note (ceil of num_steps / 16)."""
        return -(-self.num_steps // STEPS_PER_BAR)


_NOTE_FIELDS = operator.attrgetter("start_time", "end_time", "pitch", "velocity", "instrument",
                                   "program", "is_drum")


def _note_array(ns) -> np.ndarray:
    """The notes of a NoteSequence proto as one float64 [n, 7] array, read in one pass:
    start, end (seconds), pitch, velocity, instrument, program, is_drum."""
    notes = ns.notes
    return np.fromiter(itertools.chain.from_iterable(map(_NOTE_FIELDS, notes)), np.float64,
                       count=7 * len(notes)).reshape(-1, 7)


class TempoMap:
    """Seconds -> quarter-note beats, piecewise linear over the tempo events."""

    def __init__(self, tempos: Sequence[tuple[float, float]]):
        events = sorted((max(0.0, t), q) for t, q in tempos if q > 0)
        if not events or events[0][0] > 0.0:
            events.insert(0, (0.0, events[0][1] if events else DEFAULT_QPM))
        dedup: dict[float, float] = {}
        for t, q in events:  # keep the last tempo given for a time
            dedup[t] = q
        times = sorted(dedup)
        qpms = [dedup[t] for t in times]
        beats = [0.0]
        for i in range(1, len(times)):
            beats.append(beats[-1] + (times[i] - times[i - 1]) * qpms[i - 1] / 60.0)
        self.times = np.array(times)
        self.qpm = np.array(qpms)
        self.beats = np.array(beats)
        self._rate = self.qpm / 60.0
        self._rate0 = qpms[0] / 60.0
        self._qpm_shown = np.array([round(q, 3) for q in qpms])  # as windows record it

    def to_beats(self, seconds: np.ndarray) -> np.ndarray:
        """Seconds -> quarter-note beats (vectorised; grid steps are beats * 4)."""
        if len(self.times) == 1:
            return seconds * self._rate0
        k = np.searchsorted(self.times, seconds, side="right") - 1
        k = np.clip(k, 0, None)
        return self.beats[k] + (seconds - self.times[k]) * self._rate[k]

    def to_seconds(self, beats: float) -> float:
        """Quarter-note beats -> seconds (inverse of to_beats)."""
        k = max(int(np.searchsorted(self.beats, beats, side="right")) - 1, 0)
        return float(self.times[k] + (beats - self.beats[k]) / self._rate[k])

    def qpm_at_steps(self, steps: np.ndarray | int) -> np.ndarray:
        """Tempo in force at grid steps (steps are beats * 4), rounded to 3 decimals."""
        k = np.searchsorted(self.beats, np.asarray(steps) / STEPS_PER_QUARTER + 1e-9,
                            side="right") - 1
        return self._qpm_shown[np.maximum(k, 0)]

    def qpm_at_step(self, step: int) -> float:
        """qpm_at_steps of one step."""
        return float(self.qpm_at_steps(step))


def quantize_beats(beats: np.ndarray) -> np.ndarray:
    """Beats -> grid steps, rounding half up (Magenta's quantize_cutoff=0.5)."""
    return np.floor(beats * STEPS_PER_QUARTER + 0.5).astype(np.int64)


def bar_steps(numerator: int, denominator: int) -> float:
    """Length of one bar of the meter in grid steps (16 for 4/4)."""
    return numerator * STEPS_PER_BAR / denominator


def is_grid_meter(numerator: int, denominator: int) -> bool:
    """True when the bar is a power-of-two number of steps (fits 16-step bars exactly)."""
    if numerator <= 0 or denominator <= 0:
        return False
    steps = bar_steps(numerator, denominator)
    if steps != int(steps) or steps < 1:
        return False
    steps = int(steps)
    return steps & (steps - 1) == 0


def _time_signature_steps(ns, to_steps) -> list[tuple[int, int, int]]:
    """Sorted (step, numerator, denominator) events with conflicts at one step resolved.

    note_seq's MusicXML reader can list several signatures at one time (one per part, and a
    short "pickup" signature beside the nominal one). Among the candidates at a step we keep
    one whose bars tile the stretch up to the next event, else the last one listed.
    `to_steps` maps a list of times in seconds to grid steps.
    """
    raw = [(t.time, t.numerator, t.denominator) for t in ns.time_signatures]
    if not raw:
        return [(0, 4, 4)]
    times = to_steps([max(0.0, r[0]) for r in raw])
    by_step: dict[int, list[tuple[int, int]]] = collections.OrderedDict()
    for step, (_, num, den) in sorted(zip(times, raw), key=lambda x: x[0]):
        cands = by_step.setdefault(step, [])
        if (num, den) in cands:
            cands.remove((num, den))
        cands.append((num, den))
    steps = list(by_step)
    out = []
    for i, step in enumerate(steps):
        cands = by_step[step]
        choice = cands[-1]
        if len(cands) > 1 and i + 1 < len(steps):
            length = steps[i + 1] - step
            fitting = [c for c in cands
                       if bar_steps(*c) > 0 and (length / bar_steps(*c)).is_integer()]
            if fitting:
                choice = fitting[-1]
        if out and out[-1][1:] == choice:
            continue  # a repeated signature is no change
        out.append((step, *choice))
    if out[0][0] > 0:
        out.insert(0, (0, 4, 4))  # MIDI's default before the first signature
    return out


_FAR = 1 << 40  # "until the end of the piece", in steps
_PIECE_SHIFT = 1 << 42  # keys piece * _PIECE_SHIFT + step keep pieces apart in one sort


def _meter_regions(events: list[tuple[int, int, int]]) -> list[list[int]]:
    """[lo, hi, downbeat, numerator, denominator] of each meter region of a piece.

    A region runs from its time signature to the next. A region shorter than one bar of the
    next (a pickup, or the short measures MusicXML uses around a fermata, or a moved bar line
    in abc2midi output) joins the next as a partial bar before its downbeat; several short
    ones in a row join while together still shorter than a bar.
    """
    bounds = [e[0] for e in events] + [_FAR]
    regions = [[bounds[i], bounds[i + 1], bounds[i], events[i][1], events[i][2]]
               for i in range(len(events)) if bounds[i + 1] > bounds[i]]
    for i in range(len(regions) - 2, -1, -1):
        nxt = regions[i + 1]
        if nxt[2] - regions[i][0] < bar_steps(nxt[3], nxt[4]):
            nxt[0] = regions[i][0]
            del regions[i]
    return regions


def _regions(events: list[tuple[int, int, int]]
             ) -> list[tuple[int, int, int, int, int, int]]:
    """(lo, hi, origin, numerator, denominator, first bar) of each meter region
    (_meter_regions): its 16-step grid bars start at `origin`, a partial bar before the
    downbeat when it has one, and are numbered from `first bar` (_first_grid_bars)."""
    regions = _meter_regions(events)
    origins = [_grid_origin(lo, downbeat) for lo, _, downbeat, _, _ in regions]
    return [(lo, hi, origin, num, den, first) for (lo, hi, _, num, den), origin, first
            in zip(regions, origins, _first_grid_bars(regions, origins))]


def _grid_origin(lo: int, downbeat: int) -> int:
    """Where a region's 16-step grid bars start: at its downbeat, less whole grid bars for a
    partial bar before it."""
    return downbeat - -(-(downbeat - lo) // STEPS_PER_BAR) * STEPS_PER_BAR


def _first_grid_bars(regions: list[list[int]], origins: list[int]) -> list[int]:
    """The bar number of each meter region's grid bar 0, counting 16-step grid bars from the
    piece's first (a pickup bar is 0), so that no two grid bars of a piece share a number:
    windows, --bar and the window lines all name a grid bar by it. A grid region that ends in
    mid grid bar (4/4 for two and a half bars, then 2/4) keeps that partial bar's number and
    the next region starts at the following one; otherwise a region's number is the count of
    grid bars from the piece's origin to its own."""
    piece_origin = min(0, origins[0])
    firsts, free = [], 0  # free: the first number no grid region before has used
    for (_, hi, _, num, den), origin in zip(regions, origins):
        first = (origin - piece_origin) // STEPS_PER_BAR
        if is_grid_meter(num, den):
            first = max(first, free)
            free = first - (-(hi - origin) // STEPS_PER_BAR)  # + its grid bars (ceil)
        firsts.append(first)
    return firsts


# The tempo map, meter regions, their grid origins and first grid bars (_meter_layout).
_MeterLayout = tuple[TempoMap, list[list[int]], list[int], list[int]]


def _meter_layout(ns: NoteSequence) -> _MeterLayout:
    """What ScoreBars and window_timing count from: the tempo map, the meter regions
    (_meter_regions), each region's grid origin, and the number of its grid bar 0
    (_first_grid_bars, as Segment.first_bar counts)."""
    tempo = TempoMap([(t.time, t.qpm) for t in ns.tempos])
    regions = _meter_regions(_time_signature_steps(ns, lambda times: _to_steps(tempo, times)))
    origins = [_grid_origin(lo, downbeat) for lo, _, downbeat, _, _ in regions]
    return tempo, regions, origins, _first_grid_bars(regions, origins)


def _to_steps(tempo: TempoMap, times) -> list[int]:
    """Seconds -> grid steps through a tempo map."""
    return quantize_beats(tempo.to_beats(np.array(times, np.float64))).tolist()


@dataclasses.dataclass
class NoteTable:
    """Quantised notes of many pieces, cut into meter regions, as flat arrays.

    Notes (only those in grid-compatible regions) are sorted by (segment, instrument, onset,
    -pitch); their steps are relative to their segment's origin (grid bar 0). Segments are the
    meter regions of all pieces in order; per-segment arrays are indexed by `seg`.
    Working on many pieces at once keeps numpy's per-call cost off the per-piece budget.
    """

    seg: np.ndarray
    notes: Notes
    seg_piece: np.ndarray      # piece index of each segment
    seg_origin: np.ndarray     # absolute step of the segment's grid bar 0
    seg_first_bar: np.ndarray  # number of grid bar 0 in its piece (_first_grid_bars)
    seg_qpm: np.ndarray        # tempo at the segment's start
    seg_num_steps: np.ndarray  # steps from the origin to the last note end (0: no notes)
    num_pieces: int
    # Input index -> tempo map, for the pieces whose tempo changes.
    tempo_maps: dict[int, TempoMap] = dataclasses.field(default_factory=dict)

    def window_qpm(self, seg: np.ndarray, bar: np.ndarray) -> np.ndarray:
        """Tempo in force at the start of windows beginning at `bar` (counted from the grid
        bar 0 of segment `seg`): a window after a tempo change is rendered at its own tempo."""
        qpm = self.seg_qpm[seg].astype(np.float64)
        if self.tempo_maps:
            pieces = self.seg_piece[seg]
            for piece, tempo in self.tempo_maps.items():
                rows = np.flatnonzero(pieces == piece)
                if len(rows):
                    steps = self.seg_origin[seg[rows]] + bar[rows] * STEPS_PER_BAR
                    qpm[rows] = tempo.qpm_at_steps(steps)
        return qpm


def note_table(seqs: Sequence, stats: Sequence[Stats]) -> NoteTable:
    """Quantises and segments NoteSequences (see module docstring); counts into stats[i]:
    'no_notes', 'segments_meter_<n>/<d>' (skipped regions with notes),
    'notes_in_skipped_meter'."""
    arrays, rates, slow, tempo_maps = [], [], {}, {}
    seg_rows: list[tuple] = []  # (piece, lo, hi, origin, num, den, first_bar, qpm)
    for i, ns in enumerate(seqs):
        arr = _note_array(ns)
        if len(arr) and arr[:, 3].min() <= 0:
            arr = arr[arr[:, 3] > 0]  # velocity 0 = no note
        if not len(arr):
            stats[i]["no_notes"] += 1
            continue
        tempos = ns.tempos
        if len(tempos) == 0 or (len(tempos) == 1 and tempos[0].time <= 0 and tempos[0].qpm > 0):
            qpm = tempos[0].qpm if len(tempos) else DEFAULT_QPM
            rate = qpm / 60.0 * STEPS_PER_QUARTER

            def to_steps(times, rate=rate):
                return [math.floor(t * rate + 0.5) for t in times]

            tempo = None
        else:
            tempo = TempoMap([(t.time, t.qpm) for t in tempos])
            rate = 0.0
            slow[len(arrays)] = tempo
            if len(tempo.times) > 1:
                tempo_maps[i] = tempo

            def to_steps(times, tempo=tempo):
                return quantize_beats(tempo.to_beats(np.array(times))).tolist()

        arrays.append(arr)
        rates.append(rate)
        regions = _regions(_time_signature_steps(ns, to_steps))
        piece = len(arrays) - 1
        for lo, hi, origin, num, den, first_bar in regions:
            q = round(qpm, 3) if tempo is None else tempo.qpm_at_step(max(lo, origin))
            seg_rows.append((piece, i, lo, hi, origin, num, den, first_bar, q))
    empty = np.zeros(0, np.int64)
    if not arrays:
        return NoteTable(empty, Notes(empty, empty, empty, empty, empty, empty,
                                      np.zeros(0, bool)),
                         empty, empty, empty, np.zeros(0), empty, len(seqs))
    counts = np.array([len(a) for a in arrays])
    arr = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    rate = np.repeat(np.array(rates), counts)
    q = np.floor(np.maximum(arr[:, :2], 0.0) * rate[:, None] + 0.5).astype(np.int64)
    if slow:
        ends = np.cumsum(counts)
        for k, tempo in slow.items():
            a, b = ends[k] - counts[k], ends[k]
            q[a:b] = quantize_beats(tempo.to_beats(np.maximum(arr[a:b, :2], 0.0)))
    start = q[:, 0]
    end = np.maximum(q[:, 1], start + 1)
    piece = np.repeat(np.arange(len(arrays)), counts)

    rows = seg_rows
    reg_piece = np.array([r[0] for r in rows])
    reg_lo = np.array([r[2] for r in rows])
    reg_hi = np.array([r[3] for r in rows])
    reg_origin = np.array([r[4] for r in rows])
    if len(rows) == len(arrays):  # one region per piece
        ridx = piece
    else:
        ridx = np.searchsorted(reg_piece * _PIECE_SHIFT + reg_lo, piece * _PIECE_SHIFT + start,
                               side="right") - 1
    compat = np.array([is_grid_meter(r[5], r[6]) for r in rows])
    if not compat.all():
        per_region = np.bincount(ridx, minlength=len(rows))
        for r in np.nonzero(~compat & (per_region > 0))[0].tolist():
            st = stats[rows[r][1]]
            st[f"segments_meter_{rows[r][5]}/{rows[r][6]}"] += 1
            st["notes_in_skipped_meter"] += int(per_region[r])
        keep = compat[ridx]
        arr, start, end, ridx = arr[keep], start[keep], end[keep], ridx[keep]
    if len(rows) != len(arrays):
        end = np.minimum(end, reg_hi[ridx])
    origin = reg_origin[ridx]
    start = start - origin
    end = end - origin
    ints = arr[:, 2:].astype(np.int64)
    order = np.lexsort((-ints[:, 0], start, ints[:, 2], ridx))
    ridx, start, end, ints = ridx[order], start[order], end[order], ints[order]
    num_steps = np.zeros(len(rows), np.int64)
    if len(ridx):
        first = np.flatnonzero(np.r_[True, ridx[1:] != ridx[:-1]])
        num_steps[ridx[first]] = np.maximum.reduceat(end, first)
    notes = Notes(start, end, ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3],
                  ints[:, 4].astype(bool))
    return NoteTable(
        ridx, notes, np.array([r[1] for r in rows]), reg_origin,
        np.array([r[7] for r in rows]), np.array([r[8] for r in rows], np.float64),
        num_steps, len(seqs), tempo_maps)


def segments(ns: NoteSequence, stats: Stats | None = None) -> list[Segment]:
    """Cuts a NoteSequence into grid-compatible segments of quantised notes (those with
    notes), counting skipped meters into `stats` (see note_table)."""
    stats = stats if stats is not None else Stats()
    table = note_table([ns], [stats])
    out = []
    seg = table.seg
    if not len(seg):
        return out
    bounds = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        k = int(seg[a])
        out.append(Segment(table.notes.take(slice(a, b)), int(table.seg_origin[k]),
                           int(table.seg_num_steps[k]), int(table.seg_first_bar[k]),
                           float(table.seg_qpm[k]), table.tempo_maps.get(int(table.seg_piece[k]))))
    return out


def starts_with_pickup(ns: NoteSequence) -> bool:
    """Whether the piece's first grid bar is a partial bar before its first downbeat (a pickup,
    marked by a short first time signature): musicians number it bar 0, the next bar 1."""
    table = note_table([ns], [Stats()])
    return bool(len(table.seg_origin)) and int(table.seg_origin[0]) < 0


class ScoreBars:
    """Bar numbers as the piece's score counts them, for what a command tells the user.

    Windows are counted in 16-step grid bars, which are the score's bars only in 4/4 (and
    2/2): a 2/4 piece has two bars in each, and after 3/4 bars the grid numbers run behind.
    Each meter region's bars are counted at their own length; a pickup (a partial bar before
    a downbeat) is one bar, bar 0 at the start of the piece, as musicians number it.
    window_timing gives a window's meter and tempi from the same reading of the piece."""

    def __init__(self, ns: NoteSequence):
        self._layout = _meter_layout(ns)  # kept for window_timing: one layout per piece read
        tempo, regions, origins, firsts = self._layout
        self._end = _to_steps(tempo, [ns.total_time])[0]  # the music's last step
        # Per region: first step, downbeat, the downbeat's bar number, bar length in steps;
        # and, for the grid regions, their grid bar 0 as Segment.first_bar counts it.
        self._rows: list[tuple[int, int, int, float]] = []
        self._meters: list[tuple[int, int]] = []  # each row's meter
        # (first grid bar, origin step, end step, first step) of each grid region.
        self._grid: list[tuple[int, int, int, int]] = []
        for (lo, hi, downbeat, num, den), origin, first in zip(regions, origins, firsts):
            if not self._rows:
                bar = 1  # a pickup before it is bar 0
            else:
                start, prev_downbeat, prev_bar, length = self._rows[-1]
                bar = prev_bar + math.ceil((lo - prev_downbeat) / length) + (downbeat > lo)
            self._rows.append((lo, downbeat, bar, bar_steps(num, den)))
            self._meters.append((num, den))
            if is_grid_meter(num, den):
                self._grid.append((first, origin, hi, lo))

    def at_step(self, step: int) -> int:
        """The score's number of the bar holding absolute grid step `step`."""
        _, downbeat, bar, length = self._rows[self._row_at_step(step)]
        return bar - 1 if step < downbeat else bar + int((step - downbeat) // length)

    def _row_at_step(self, step: int) -> int:
        """The index of the meter region holding absolute grid step `step`."""
        return max([k for k, row in enumerate(self._rows) if row[0] <= step], default=0)

    def music_after(self, grid_bar: int) -> bool:
        """Whether the piece has music past the start of grid bar `grid_bar` (as span counts):
        a window padded with silence there stops at its section's end, not the music's."""
        return self._end > self._step(grid_bar)

    def meter_of_bar(self, bar: int) -> tuple[int, int]:
        """The meter of the score's bar `bar` (its region's; a pickup bar is the next's)."""
        first_bars = [b - (downbeat > lo) for lo, downbeat, b, _ in self._rows]
        return self._meters[max([k for k, b in enumerate(first_bars) if b <= bar], default=0)]

    def grid_bar_at(self, bar: int) -> int:
        """The first grid bar (as span counts) starting in the score's bar `bar`, where a
        window starting at that bar starts. Raises ValueError saying why none does: the music
        ends before it, its meter does not fit the grid (3/4, 6/8 ...: windows lie in the
        other sections), or a grid bar starts mid-bar there (in 2/4 a grid bar is two of the
        score's bars), naming the bars around it that windows start in."""
        last = self.at_step(max(self._end - 1, 0))
        if bar > last:
            raise ValueError(f"bar {bar} is past the end of the music (in bar {last})")
        grid_bar, starts = 0, []
        while self._step(grid_bar) < self._end:
            step = self._music_step(grid_bar)
            grid_bar += 1
            if not is_grid_meter(*self._meters[self._row_at_step(step)]):
                continue  # past the grid region it continues: no window starts there
            first = self.at_step(step)
            if first == bar:
                return grid_bar - 1
            starts.append(first)
            if first > bar:
                break
        before, after = [b for b in starts if b < bar][-1:], [b for b in starts if b > bar][:1]
        around = " and ".join(map(str, before + after))
        nearest = (f"the nearest start at bar{'s' if ' and ' in around else ''} {around}"
                   if around else "the file has no bars that start one")
        meter = self.meter_of_bar(bar)
        if not is_grid_meter(*meter):
            raise ValueError(f"bar {bar} does not start a window: its meter ({meter[0]}/"
                             f"{meter[1]}) does not fit the 16-steps-per-4/4-bar grid (use 4/4, "
                             f"2/4, 2/2, 4/2 ...); {nearest}")
        raise ValueError(f"bar {bar} does not start a window: windows start on the model's "
                         f"16-step bars (a 4/4 bar, two 2/4 bars); {nearest}")

    def _step(self, grid_bar: int) -> int:
        """The absolute first step of grid bar `grid_bar` (as span counts)."""
        first, origin, _, _ = self._grid_region(grid_bar)
        return origin + (grid_bar - first) * STEPS_PER_BAR

    def _music_step(self, grid_bar: int) -> int:
        """Where the music of a window from grid bar `grid_bar` starts: its first step, or for
        a section's first grid bar that starts before the section (its origin lies a grid bar
        before the downbeat, as for a 1/4 pickup between 4/4 bars), the section's first step:
        the steps before it are the previous section's, which the window reads as silence."""
        _, _, _, lo = self._grid_region(grid_bar)
        return max(self._step(grid_bar), lo)

    def _grid_region(self, grid_bar: int) -> tuple[int, int, int, int]:
        """(first grid bar, origin step, end step, first step) of the grid region holding
        `grid_bar`."""
        found = self._grid[0] if self._grid else (0, 0, _FAR, 0)
        for candidate in self._grid:
            if candidate[0] <= grid_bar:
                found = candidate
        return found

    def section_end(self, grid_bar: int, num_bars: int) -> int:
        """The score's last bar of `num_bars` grid bars from `grid_bar` that is in their
        section (the meter region of `grid_bar`): where a window's music ends when its bars
        after these are silence. A section ending in mid grid bar (4/4 for two and a half
        bars, then 2/4) ends in its half bar, not in the next section's bar at that grid bar's
        end."""
        end = self._step(grid_bar) + num_bars * STEPS_PER_BAR
        return self.at_step(min(end, self._grid_region(grid_bar)[2]) - 1)

    def span(self, grid_bar: int, num_bars: int) -> tuple[int, int]:
        """The score's first and last bar of `num_bars` grid bars from `grid_bar` (a window's
        start_bar, counted as Segment.first_bar counts). The first is the bar its section's
        music starts in (_music_step): a window from a pickup between 4/4 bars starts in the
        pickup bar, not in the bar before whose last beats are its leading silence."""
        return self.at_step(self._music_step(grid_bar)), self.at_offset(
            grid_bar, num_bars * STEPS_PER_BAR - 1)

    def at_offset(self, grid_bar: int, steps: int) -> int:
        """The score's number of the bar holding the step `steps` steps after grid bar
        `grid_bar` starts (where in a window's bars something happens, e.g. a tempo change)."""
        return self.at_step(self._step(grid_bar) + steps)

    def window_timing(self, start_bar: int, num_bars: int) -> WindowTiming:
        """The module's window_timing of this piece, from the meter layout already read."""
        return _window_timing(self._layout, start_bar, num_bars)


@dataclasses.dataclass(frozen=True)
class WindowTiming:
    """The meter and tempi of an input window, so music written from its tokens shows the
    input's bars in a notation program and plays at the input's tempo changes: tokens only
    know 16-step bars at one tempo."""

    numerator: int = 4
    denominator: int = 4
    # (quarter-note beats from the window's start, qpm) of each tempo in force in the window,
    # the first at beat 0.
    tempos: tuple[tuple[float, float], ...] = ((0.0, DEFAULT_QPM),)

    def at_tempo(self, qpm: float) -> "WindowTiming":
        """The same meter at one tempo (a tempo the user asked for)."""
        return dataclasses.replace(self, tempos=((0.0, qpm),))

    def to_seconds(self, beats: np.ndarray | float) -> np.ndarray:
        """Beats from the window's start -> seconds, through the window's tempo changes."""
        starts = np.array([b for b, _ in self.tempos])
        qpms = np.array([q for _, q in self.tempos])
        at = np.concatenate([[0.0], np.cumsum(np.diff(starts) * 60.0 / qpms[:-1])])
        k = np.maximum(np.searchsorted(starts, beats, side="right") - 1, 0)
        return at[k] + (np.asarray(beats) - starts[k]) * 60.0 / qpms[k]

    def apply(self, ns: NoteSequence) -> NoteSequence:
        """`ns`, written from tokens in 4/4 at one tempo (its first), in this meter and with
        every note at the same beat through these tempi (in place; returned)."""
        qpm = ns.tempos[0].qpm if ns.tempos else DEFAULT_QPM
        del ns.time_signatures[:]
        ns.time_signatures.add(time=0.0, numerator=self.numerator, denominator=self.denominator)
        if len(self.tempos) == 1 and self.tempos[0][1] == qpm:
            return ns
        beats = lambda seconds: seconds * qpm / 60.0  # noqa: E731
        for note in ns.notes:
            note.start_time, note.end_time = self.to_seconds(
                [beats(note.start_time), beats(note.end_time)]).tolist()
        ns.total_time = float(self.to_seconds(beats(ns.total_time)))
        del ns.tempos[:]
        for beat, q in self.tempos:
            ns.tempos.add(time=float(self.to_seconds(beat)), qpm=q)
        return ns


def window_timing(ns: NoteSequence, start_bar: int, num_bars: int) -> WindowTiming:
    """The meter and tempi of the `num_bars` grid bars from `start_bar` (a window's start_bar,
    counted as Segment.first_bar counts). The meter is the window's own when its bars line up
    with the window (a 2/4 window of 16-step bars is 2/4 bars; a 4/2 window starting mid-bar is
    not) and 4/4, what the grid's bars are, otherwise."""
    return _window_timing(_meter_layout(ns), start_bar, num_bars)


def _window_timing(layout: _MeterLayout, start_bar: int, num_bars: int) -> WindowTiming:
    """window_timing from the piece's _meter_layout."""
    tempo, regions, origins, firsts = layout
    first, origin, downbeat, meter = 0, origins[0], regions[0][2], (4, 4)
    for (_, _, region_downbeat, num, den), region_origin, region_first in zip(
            regions, origins, firsts):
        if is_grid_meter(num, den) and region_first <= start_bar:
            first, origin, downbeat = region_first, region_origin, region_downbeat
            meter = (num, den)
    step = origin + (start_bar - first) * STEPS_PER_BAR
    bar = bar_steps(*meter)
    if (step - downbeat) % bar or (num_bars * STEPS_PER_BAR) % bar:
        meter = (4, 4)
    start = step / STEPS_PER_QUARTER
    end = start + num_bars * STEPS_PER_BAR / STEPS_PER_QUARTER
    tempos = [(0.0, float(tempo.qpm_at_step(step)))]
    for beat, q in zip(tempo.beats.tolist(), tempo.qpm.tolist()):
        # Compared as the first is rounded: a pickup window holds beat 0, whose tempo read
        # back from MIDI (99.99999999999999) is no change from the 100 in force.
        if start < beat < end and round(q, 3) != round(tempos[-1][1], 3):
            tempos.append((beat - start, q))
    return WindowTiming(*meter, tempos=tuple(tempos))


def piece_meters(ns: NoteSequence) -> list[str]:
    """The distinct meters of a piece, for error messages."""
    return sorted({f"{t.numerator}/{t.denominator}" for t in ns.time_signatures}) or ["4/4"]


def steps_to_seconds(steps: np.ndarray | int, qpm: float) -> np.ndarray | float:
    """Grid steps -> seconds at a constant tempo."""
    return np.asarray(steps) * (60.0 / qpm / STEPS_PER_QUARTER)


__all__ = [
    "STEPS_PER_BAR", "STEPS_PER_QUARTER", "DEFAULT_QPM", "Stats", "Notes", "Segment",
    "TempoMap", "segments", "is_grid_meter", "bar_steps", "quantize_beats", "steps_to_seconds",
    "piece_meters", "starts_with_pickup", "ScoreBars", "WindowTiming", "window_timing",
]
