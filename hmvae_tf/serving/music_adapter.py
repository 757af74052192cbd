"""MIDI <-> tokens for the serving commands: the one place hmvae_tf.serving touches music code.

The client speaks tokens and latents; the commands turn MIDI files into tokens and back
through the representation a model's tracks name (melody, drums or trio).
"""
from __future__ import annotations

import collections
import functools
import os
import sys
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from hmvae_tf.configs import REPRESENTATION_TRACKS
from hmvae_tf.music import grid, midi_io
from hmvae_tf.music.grid import DEFAULT_QPM
from hmvae_tf.music.representations import get_representation
from hmvae_tf.music.windows import NoWindowAtBarError, NoWindowError

if TYPE_CHECKING:
    from note_seq.protobuf.music_pb2 import NoteSequence

    from hmvae_tf.music.representations import Representation

read_midi = midi_io.read_midi
MidiReadError = midi_io.MidiReadError
write_midi = midi_io.write_midi


def write_output(ns: NoteSequence, path: str, replaced: list[str]) -> None:
    """write_midi, adding `path` to `replaced` when it held a file with other music: output
    names say the options and the inputs' file names, not their folders, so a run on another
    folder's x.mid (or an older run's file) would otherwise be replaced without a word."""
    try:
        with open(path, "rb") as f:
            before = f.read()
    except OSError:
        before = None
    write_midi(ns, path)
    if before is not None:
        with open(path, "rb") as f:
            if f.read() != before:
                replaced.append(path)


def say_replaced(replaced: list[str]) -> None:
    """One note naming the files `write_output` replaced with other music, if any: on stderr,
    as every command's warnings and notes, beside the list of files written on stdout."""
    if replaced:
        print(f"note: replaced {len(replaced)} existing file{'s' if len(replaced) > 1 else ''} "
              f"that held other music ({', '.join(os.path.basename(p) for p in replaced[:3])}"
              f"{', ...' if len(replaced) > 3 else ''}): inputs with the same file names as an "
              "earlier run's; --out=<another folder> keeps both", file=sys.stderr)


def representation_name(tracks: Iterable[str]) -> str:
    """'melody', 'drums' or 'trio' for a model's tracks (as in configs.REPRESENTATION_TRACKS)."""
    tracks = tuple(tracks)
    for name, rep_tracks in REPRESENTATION_TRACKS.items():
        if rep_tracks == tracks:
            return name
    raise ValueError(f"no representation has the tracks {', '.join(tracks)}")


def usable_what(rep: Representation) -> str:
    """What a model reads from a file, for the commands' 'no usable ... for a N-bar model'
    errors: 'melody', 'drums' or 'melody+bass+drums'."""
    return "+".join(rep.tracks)


def representation_for(tracks: Iterable[str]) -> Representation:
    """The converter between MIDI and a model's tokens, chosen by the model's tracks."""
    return get_representation(representation_name(tracks))


def concatenate(sequences: Iterable[NoteSequence]) -> NoteSequence:
    """One NoteSequence playing the given ones back to back."""
    from note_seq import sequences_lib

    return sequences_lib.concatenate_sequences(list(sequences))


class InputWindow(NamedTuple):
    """One window of a MIDI file, read for a model."""

    tokens: np.ndarray
    where: str  # where in the file it came from, for the user
    qpm: float  # the file's tempo at the window's first bar
    # Octaves a melody line was moved by to fit MIDI 21..108 (read_window's move_octaves):
    # into_register counts them into its move, which the caller undoes on the output.
    octaves: int = 0
    # The window's meter and tempo changes, which the outputs written from it take (written).
    timing: grid.WindowTiming = grid.WindowTiming()
    # The window's tempi for the user: '120 qpm', or '120 qpm, then 90 from bar 3' (tempo_text).
    tempo: str = ""
    # The MIDI programs of the window's pitched parts, in track order (a melody's; a trio's
    # melody and bass; none for drums), which the outputs written from it play (written).
    programs: tuple[int, ...] = ()


def read_window(path: str, rep: Representation, num_bars: int, window_index: int = 0,
                instrument: int | None = None, move_octaves: bool = False,
                bar: int | None = None) -> InputWindow:
    """Tokens of one window of a MIDI file for a model, a line saying where in the file they
    came from (for a melody model, which instrument's line: a many-part file has several
    candidates, so the user can pick another with `instrument`), and the tempo there.
    move_octaves: a melody line with notes outside MIDI 21..108 is read moved by whole octaves
    (melody.line_octaves) rather than without them; pass the window on to into_register.
    bar: the window starting at this bar as the score numbers it (the window line's numbers),
    instead of the `window_index`-th window with notes, which skips empty bars.

    Raises ValueError (NoWindowError) saying why the file has no such window."""
    check_instrument(rep, instrument)
    ns = read_midi(path)
    # Bars as the score numbers them (from 0 when the piece opens with a pickup), not the
    # 16-step grid bars of the windows, which differ in 2/4 or after a 3/4 passage.
    score = grid.ScoreBars(ns)
    bars = lambda start: bars_text(*score.span(start, num_bars))  # noqa: E731
    at_bar = None if bar is None else score.grid_bar_at(bar)  # ValueError: not a window's start
    # With --bar the bars say where; the window's count among those with notes would not.
    label = f"window {window_index}: " if bar is None else ""
    try:
        window, start_bar = _read_window(ns, rep, num_bars, window_index, instrument,
                                         move_octaves, at_bar, score, bars, label)
    except NoWindowAtBarError:
        what = {("drums",): "drum notes", ("melody",): "melody notes"}.get(
            rep.tracks, "notes of each of melody, bass and drums")
        which = "" if instrument is None else f" of instrument {instrument}"
        raise NoWindowError(f"{path}: {bars(at_bar)} (from --bar={bar}) hold no "
                            f"{what}{which}") from None
    bar_at_beat = lambda beat: score.at_offset(  # noqa: E731
        start_bar, int(beat * grid.STEPS_PER_QUARTER + 1e-6))
    return window._replace(tempo=tempo_text(window.timing, bar_at_beat))


def _read_window(ns: NoteSequence, rep: Representation, num_bars: int,
                 window_index: int, instrument: int | None, move_octaves: bool,
                 at_bar: int | None, score: grid.ScoreBars, bars, label: str
                 ) -> tuple[InputWindow, int]:
    """read_window once the file is read (its window finders, by representation), and the
    grid bar the window starts at."""
    if rep.tracks == ("drums",):
        from hmvae_tf.music import drums

        found = drums.find_window(ns, num_bars, window_index, at_bar=at_bar)
        bar = found.start_bar
        where = (f"{label}{bars(bar)} of the drums"
                 + leading_silence_note(score, bar, num_bars, found.tokens > 0)
                 + silence_note(score, bar, num_bars, found.silent_bars)
                 + _unmapped_drums(found.unmapped_drums))
        return InputWindow(found.tokens, where, found.qpm,
                           timing=score.window_timing(bar, num_bars)), bar
    if rep.tracks == ("melody", "bass", "drums"):
        from hmvae_tf.music import trio

        found = trio.find_window(ns, num_bars, window_index, at_bar=at_bar)
        bar, (mel, bass) = found.start_bar, found.programs
        where = (f"{label}{bars(bar)}; melody program {mel} ({_program_name(mel)}), bass "
                 f"program {bass} ({_program_name(bass)}), drums"
                 + leading_silence_note(score, bar, num_bars, _trio_onsets(found.tokens))
                 + silence_note(score, bar, num_bars, found.silent_bars)
                 + "".join(one_voice_left_out(out, chords, role) for role, out, chords in zip(
                     ("melody", "bass"), found.notes_out_of_range, found.chord_notes))
                 + _unmapped_drums(found.unmapped_drums)
                 + trio_other_parts(ns, found.instruments))
        return InputWindow(found.tokens, where, found.qpm,
                           timing=score.window_timing(bar, num_bars),
                           programs=(int(mel), int(bass))), bar
    if rep.tracks != ("melody",):
        if at_bar is not None:
            raise ValueError("--bar applies to melody, drum and trio models")
        qpm = ns.tempos[0].qpm if ns.tempos else DEFAULT_QPM
        return InputWindow(rep.from_note_sequence(ns, num_bars, window_index=window_index),
                           f"window {window_index}", qpm,
                           timing=grid.WindowTiming().at_tempo(qpm)), 0
    from hmvae_tf.music import melody

    window = melody.find_window(ns, num_bars, window_index, instrument=instrument,
                                move_octaves=move_octaves, at_bar=at_bar)
    part = functools.partial(part_label, part_names(ns))
    where = (f"{label}{bars(window.start_bar)}"
             f" of instrument {part(window.instrument)} (program {window.program}, "
             f"{_program_name(window.program)})")
    others = sorted(melody.ns_instruments(ns) - {window.instrument})
    if window.other_programs:
        where += ("; its program is outside programs 0-31, the melody programs of 2-bar "
                  "training data")
    if others and instrument is None:  # a flute and a horn line are both candidates
        where += (f"; other parts: instrument {', '.join(map(part, others))} "
                  "(choose with --instrument)")
    # A window that starts before its line does, a short file in a long window, or notes the
    # representation cannot hold: said, so a poor reconstruction is not a mystery.
    where += leading_silence_note(score, window.start_bar, num_bars,
                                  window.tokens > melody.NOTE_OFF)
    where += silence_note(score, window.start_bar, num_bars, window.silent_bars)
    where += one_voice_left_out(window.notes_out_of_range, window.chord_notes)
    return InputWindow(window.tokens, where, window.qpm, window.octaves,
                       score.window_timing(window.start_bar, num_bars),
                       programs=(int(window.program),)), window.start_bar


def one_voice_left_out(out_of_range: int, chord_notes: int, role: str = "") -> str:
    """'; 2 notes outside MIDI pitch 21..108 left out; 8 notes starting with a higher one left
    out (a melody takes the highest)' for what a one-voice line (a melody, or a trio's
    melody or bass: `role`, named then) leaves out, '' for nothing: a part's chords or a
    piano's left hand are not read, said so a thin reconstruction is no mystery."""
    from hmvae_tf.music import melody

    what = f"{role} note" if role else "note"
    text = ""
    if out_of_range:
        text += (f"; {out_of_range} {what}{'s' if out_of_range > 1 else ''} outside MIDI pitch "
                 f"{melody.MIN_PITCH}..{melody.MAX_PITCH} left out")
    if chord_notes:
        text += (f"; {chord_notes} {what}{'s' if chord_notes > 1 else ''} starting with a "
                 f"higher one left out (a {role or 'melody'} takes the highest)")
    return text


def trio_other_parts(ns: NoteSequence, read: Sequence[int]) -> str:
    """"; other parts not read: instrument 0 'Lead Synth' (program 80), 3 (program 48) (a trio
    reads one melody part, programs 0-31, and one bass part, 32-39)" for the file's pitched
    parts a trio window does not read (`read`: its melody's and bass's instruments), '' for
    none. A pop song's lead is often a synth, a saxophone or a voice, outside programs 0-31:
    the trio then takes a piano's chords as its melody, which the line must say."""
    programs = {n.instrument: n.program for n in ns.notes if not n.is_drum}
    others = sorted(set(programs) - set(read))
    if not others:
        return ""
    names = part_names(ns)
    listed = ", ".join(f"{part_label(names, k)} (program {programs[k]})" for k in others)
    return (f"; other parts not read: instrument {listed} (a trio reads one melody part, "
            "programs 0-31, and one bass part, 32-39)")


def bars_text(first: int, last: int) -> str:
    """'bars 3-4', or 'bar 3' when a window lies in one bar of the score (a 4/2 bar holds two
    16-step bars)."""
    return f"bar {first}" if first == last else f"bars {first}-{last}"


def leading_silence_note(score: grid.ScoreBars, start_bar: int, num_bars: int,
                         onsets: np.ndarray) -> str:
    """'; bars 1-3 are read as silence, the window's first note is in bar 4' for a window
    whose first bars hold no note onset of what it reads (`onsets`: bool per step), else ''.
    --window counts every window holding a note, so in a file that opens with empty bars (a
    count-in, a part that enters late) window 0 starts before the music does; said, so the
    silent start of a reconstruction is no mystery and --bar can start the window there."""
    steps = np.flatnonzero(onsets)
    if not len(steps):
        return ""
    first, _ = score.span(start_bar, num_bars)
    note_bar = score.at_offset(start_bar, int(steps[0]))
    if note_bar <= first:
        return ""
    silent = bars_text(first, note_bar - 1)
    return (f"; {silent} {'is' if note_bar - 1 == first else 'are'} read as silence, the "
            f"window's first note is in bar {note_bar}")


def _trio_onsets(tokens: np.ndarray) -> np.ndarray:
    """Steps of a trio window [T, 3] where its melody or bass starts a note or a drum hits."""
    from hmvae_tf.music import melody

    return (tokens[:, :2] > melody.NOTE_OFF).any(1) | (tokens[:, 2] > 0)


def silence_note(score: grid.ScoreBars, start_bar: int, num_bars: int,
                 silent_bars: int) -> str:
    """'; the music ends in bar 5, bar 6 is silence' for a window whose last `silent_bars`
    grid bars lie past the end of the music (a short file in a long window), so a poor
    reconstruction is not a mystery; '' for none. When no whole bar of the score is silent (a
    4/2 bar spans two grid bars) it says the rest of the window is, not that 0 bars are; when
    the music goes on in another section (after a meter change), that the window's section
    ends there. A window without a silent grid bar can still end in the next section's bars
    (4/4 for two and a half bars, then 2/4: the window from bar 2 ends in the 2/4 bar 4, whose
    notes it does not read): its label names that bar, so this says it is read as silence."""
    last = score.section_end(start_bar, num_bars - silent_bars)
    end = score.span(start_bar, num_bars)[1]
    if not silent_bars and end == last:
        return ""  # every bar the label names is its section's, read
    ends, read = f"the music ends in bar {last}", ""
    if score.music_after(start_bar + num_bars - silent_bars):
        # Windows do not cross a meter change: the next section's notes are not read.
        ends = "the window's {}/{} section ends in bar {}".format(*score.meter_of_bar(last),
                                                                  last)
        read = "read as "
    if end == last:
        return f"; {ends}, the rest of the window is {read}silence"
    return (f"; {ends}, {bars_text(last + 1, end)} {'is' if end == last + 1 else 'are'} "
            f"{read}silence")


def tempo_text(timing: grid.WindowTiming, bar_at_beat: Callable[[float], int]) -> str:
    """A window's tempi in a few words: '120 qpm', '120 qpm, then 90 from bar 3', and with
    more than two changes '120 qpm, then 5 changes in bars 3-6 (90-140 qpm)', so a window
    with tempo changes does not show only its first tempo. bar_at_beat: the score's bar
    number at a beat from the window's start."""
    shown = lambda qpm: f"{round(qpm, 3):g}"  # noqa: E731  (MIDI's 89.99991 is 90)
    (_, first), changes = timing.tempos[0], timing.tempos[1:]
    if not changes:
        return f"{shown(first)} qpm"
    if len(changes) <= 2:
        return f"{shown(first)} qpm, then " + ", ".join(
            f"{shown(qpm)} from bar {bar_at_beat(beat)}" for beat, qpm in changes)
    qpms = [qpm for _, qpm in timing.tempos]
    return (f"{shown(first)} qpm, then {len(changes)} changes in bars "
            f"{bar_at_beat(changes[0][0])}-{bar_at_beat(changes[-1][0])} "
            f"({shown(min(qpms))}-{shown(max(qpms))} qpm)")


def tempo_hint(window: InputWindow, path: str) -> str:
    """The tempi an input window gives the outputs written from it, where they come from and
    the flag that changes them: '120 qpm (the outputs' tempo, from a.mid; --qpm to change
    it)'. One wording for every command that writes at an input's tempi (attribute,
    interpolate)."""
    changes = len(window.timing.tempos) > 1
    return (f"{window.tempo} (the outputs' {'tempi' if changes else 'tempo'}, from {path}; "
            f"--qpm to change {'them' if changes else 'it'})")


def _unmapped_drums(left: list[int]) -> str:
    """'; 3 drum hits (pitch 25) left out: ...' for a window's hits outside the 9 drum
    classes (the pitches its finder reports), else ''."""
    from hmvae_tf.music import drums

    if not left:
        return ""
    pitches = sorted(set(left))
    return (f"; {len(left)} drum hit{'s' if len(left) > 1 else ''} (pitch"
            f"{'es' if len(pitches) > 1 else ''} {', '.join(map(str, pitches))}) left out: "
            f"outside the {len(drums.DRUM_CLASS_NAMES)} drum classes")


def written(rep: Representation, tokens: np.ndarray, timing: grid.WindowTiming,
            qpm: float | None = None, octaves: int = 0,
            programs: tuple[int, ...] = ()) -> NoteSequence:
    """Output tokens as a NoteSequence in an input window's meter and tempi (InputWindow.timing),
    so a reconstruction shows the input's bars and plays as the input does; at `qpm`
    throughout when given (the user's --qpm); its pitched notes moved by `octaves` (back to
    the input's register: into_register's move, negated) and played by the input's
    instruments (InputWindow.programs), so a flute tune does not come back as a piano."""
    from hmvae_tf.music import register

    if qpm is not None:
        timing = timing.at_tempo(qpm)
    ns = timing.apply(rep.to_note_sequence(tokens, timing.tempos[0][1],
                                           **_program_args(programs)))
    return register.move_notes(ns, octaves)


def _program_args(programs: tuple[int, ...]) -> dict[str, int]:
    """to_note_sequence's program arguments for a window's pitched parts in track order:
    the melody's (or a trio's melody's) `program`, a trio's `bass_program`; {} (the
    representation's defaults) for none."""
    return dict(zip(("program", "bass_program"), programs))


class UnusableInput(ValueError):
    """A readable file with no window the model can take; the message is the line to print."""


def read_input(path: str, rep: Representation, num_bars: int, window_index: int,
               instrument: int | None, bar: int | None, octave_shift: bool
               ) -> tuple[InputWindow, int]:
    """A window of a user's file as `hmvae interpolate` and `hmvae attribute` take it:
    read_window, then into_register unless octave_shift is off; returns the window and the
    octaves to move the outputs back by. Raises MidiReadError for a file that cannot be read
    and UnusableInput, whose message names the file, for one without a usable window."""
    try:
        read = read_window(path, rep, num_bars, window_index, instrument,
                           move_octaves=octave_shift, bar=bar)
    except MidiReadError:  # says the file and why on its own
        raise
    except ValueError as err:
        reason = str(err).removeprefix(f"{path}: ")  # the window finder names the file too
        raise UnusableInput(f"{path}: no usable {usable_what(rep)} for a {num_bars}-bar "
                            f"model: {reason}") from None
    return into_register(read, rep) if octave_shift else (read, 0)


def into_register(window: InputWindow, rep: Representation) -> tuple[InputWindow, int]:
    """A melody model's window moved by whole octaves into the register the model learned
    when its notes lie outside it (register.octave_shift), the line saying so, and the
    octaves moved by: the caller moves the outputs back by as many. Other models' windows
    are returned as they are (drums have no register; a trio's parts are read as written)."""
    from hmvae_tf.music import register

    if rep.tracks != ("melody",):
        return window, 0
    more = register.octave_shift(window.tokens)
    octaves = window.octaves + more  # with the move read_window made to fit MIDI 21..108
    if not octaves:
        return window, 0
    return window._replace(tokens=register.shift_octaves(window.tokens, more),
                           where=f"{window.where}; {register.describe(octaves)}",
                           octaves=octaves), octaves


def part_names(ns: NoteSequence) -> dict[int, str]:
    """instrument -> the file's name for it (e.g. a chorale's Soprano ... Bass), which says
    more than a number. Left out: a General MIDI program's name, which writers put there by
    default (note_seq does), and a name several instruments share: in a format 0 file one
    track holds every channel, so its one name (the song's title, or the last part's name)
    would label the flute and the piano alike."""
    counts = collections.Counter(i.name for i in ns.instrument_infos)
    return {i.instrument: i.name for i in ns.instrument_infos
            if i.name and counts[i.name] == 1 and i.name not in _program_names()}


def part_label(names: dict[int, str], instrument: int) -> str:
    """"2 'Flute'", or "2" for a part without a name of its own (`names`: part_names)."""
    return f"{instrument} '{names[instrument]}'" if instrument in names else str(instrument)


def check_instrument(rep: Representation, instrument: int | None) -> None:
    """An instrument picks one line of a melody model's input; drum and trio models read
    whole parts by role. Raises ValueError otherwise."""
    if instrument is not None and rep.tracks != ("melody",):
        raise ValueError("--instrument applies to melody models only")


def input_tag(window_index: int, instrument: int | None, bar: int | None = None) -> str:
    """'_w2_i1' for a window and instrument other than the defaults ('' for them), '_b9' for
    a window chosen by its bar, so output file names tell apart what read_window read."""
    return ((f"_b{bar}" if bar is not None else f"_w{window_index}" if window_index else "")
            + ("" if instrument is None else f"_i{instrument}"))


def qpm_tag(qpm: float, default: float = DEFAULT_QPM) -> str:
    """'_q90' for a --qpm other than the default ('' for it): files written at another tempo
    get other names, so a run at another tempo does not overwrite the first run's files."""
    return "" if qpm == default else f"_q{qpm:g}"


@functools.cache
def _program_names() -> frozenset[str]:
    """The 128 General MIDI program names."""
    return frozenset(_program_name(p) for p in range(128))


def _program_name(program: int) -> str:
    import pretty_midi  # note_seq's own dependency

    return pretty_midi.program_to_instrument_name(program)
