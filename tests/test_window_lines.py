"""The window line `hmvae interpolate` / `hmvae attribute` print for each input (where in the
file the window lies, what in it is silence, its tempi), checked on generated MIDI files."""
from __future__ import annotations

import os

import pytest

from hmvae_tf import cli
from hmvae_tf.music import grid, midi_io
from hmvae_tf.music.representations import get_representation
from hmvae_tf.serving import music_adapter
from music_helpers import note_sequence
from test_output_timing import timed_sequence

MEL = get_representation("melody")
SHIPPED_2BAR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "mel_2bar")


def write(tmp_path, name, ns):
    path = tmp_path / name
    midi_io.write_midi(ns, path)
    return str(path)


def test_silence_at_the_end_is_said_in_whole_bars_of_the_score_never_as_zero(tmp_path):
    # 3 beats of 4/2: one 4/2 bar holds both grid bars of a 2-bar window, so no whole bar of
    # the score is silent (the line used to say "bars 1-1 ...; the last 0 bar is silence").
    long_bars = write(tmp_path, "long.mid", note_sequence(
        [(b, b + 1, 60 + b) for b in range(3)], time_signatures=((0, 4, 2),)))
    where = music_adapter.read_window(long_bars, MEL, 2).where
    assert where.startswith("window 0: bar 1 of instrument 0")
    assert where.endswith("; the music ends in bar 1, the rest of the window is silence")
    # One 4/4 bar in a 4-bar window: three silent bars, named.
    one_bar = write(tmp_path, "one.mid", note_sequence([(b, b + 1, 60 + b) for b in range(4)]))
    where = music_adapter.read_window(one_bar, MEL, 4).where
    assert where.startswith("window 0: bars 1-4 of")
    assert where.endswith("; the music ends in bar 1, bars 2-4 are silence")
    assert music_adapter.read_window(one_bar, MEL, 2).where.endswith(
        "; the music ends in bar 1, bar 2 is silence")



def test_a_window_cut_short_by_a_meter_change_does_not_say_the_music_ends(tmp_path):
    """4/4 bars 1-2, then 3/4: the window from bar 2 reads bars 3-4 as silence (windows do not
    cross a meter change), but the music goes on; the line said "the music ends in bar 2"."""
    mixed = write(tmp_path, "mixed.mid", note_sequence(
        [(b, b + 1, 60 + b % 12) for b in range(28)],
        time_signatures=((0, 4, 4), (8, 3, 4), (20, 4, 4))))
    where = music_adapter.read_window(mixed, MEL, 2, bar=2).where
    assert where.startswith("bars 2-4 of instrument 0")
    assert where.endswith("; the window's 4/4 section ends in bar 2, bars 3-4 are read as "
                          "silence")
    # At the end of the piece the music does end.
    assert music_adapter.read_window(mixed, MEL, 2, bar=8).where.endswith(
        "; the music ends in bar 8, bar 9 is silence")

def test_a_section_ending_in_mid_grid_bar_ends_in_its_own_bar(tmp_path):
    """4/4 for two and a half bars, then 2/4: the window from the half bar (bar 3) holds it
    and reads the 16-step bars after it as silence; the line said "the window's 2/4 section
    ends in bar 4", the 2/4 bar where that grid bar ends. Likewise a 4/4 half bar before 2/4."""
    broken = write(tmp_path, "broken.mid", note_sequence(
        [(b, b + 1, 60 + b) for b in range(18)], time_signatures=((0, 4, 4), (10, 2, 4))))
    where = music_adapter.read_window(broken, MEL, 2, bar=3).where
    assert where.startswith("bars 3-6 of instrument 0")
    assert where.endswith("; the window's 4/4 section ends in bar 3, bars 4-6 are read as "
                          "silence")
    half = write(tmp_path, "half.mid", note_sequence(
        [(b, b + 1, 60 + b) for b in range(10)], time_signatures=((0, 4, 4), (2, 2, 4))))
    where = music_adapter.read_window(half, MEL, 2).where
    assert where.startswith("window 0: bars 1-4 of instrument 0")
    assert where.endswith("; the window's 4/4 section ends in bar 1, bars 2-4 are read as "
                          "silence")


def test_a_window_ending_in_the_next_sections_bars_says_they_are_read_as_silence(tmp_path):
    """4/4 for two and a half bars, then 2/4: the window from bar 2 holds bar 2 and the half
    bar 3, and reads the 2/4 bar 4 after them as silence; with no whole grid bar silent, its
    line said only "bars 2-4", naming bar 4 as if its notes were read. Likewise a 4/4 bar and a
    half before 3/4 (off the grid), and for drums."""
    hits = lambda beats: [(b, b + 0.5, 36, 0, True) for b in beats]  # noqa: E731
    broken = write(tmp_path, "broken.mid", note_sequence(
        [(b, b + 1, 60 + b) for b in range(18)] + hits(range(18)),
        time_signatures=((0, 4, 4), (10, 2, 4))))
    for rep in (MEL, get_representation("drums")):
        where = music_adapter.read_window(broken, rep, 2, bar=2).where
        assert where.startswith("bars 2-4 of"), where
        assert where.endswith("; the window's 4/4 section ends in bar 3, bar 4 is read as "
                              "silence"), where
    waltz = write(tmp_path, "waltz.mid", note_sequence(
        [(b, b + 1, 60 + b) for b in range(12)], time_signatures=((0, 4, 4), (6, 3, 4))))
    assert music_adapter.read_window(waltz, MEL, 2).where.endswith(
        "; the window's 4/4 section ends in bar 2, bar 3 is read as silence")
    # A window inside its section says nothing.
    assert music_adapter.read_window(broken, MEL, 2, bar=1).where == (
        "bars 1-2 of instrument 0 (program 0, Acoustic Grand Piano)")

def test_a_window_line_and_its_output_timing_read_the_pieces_meters_once(tmp_path,
                                                                         monkeypatch):
    """The window line's bars (ScoreBars) and the output's meter and tempi (window_timing)
    come from one reading of the piece's tempo map and meters: each read them anew."""
    calls = []
    real = grid._meter_layout
    monkeypatch.setattr(grid, "_meter_layout", lambda ns: calls.append(1) or real(ns))
    path = write(tmp_path, "two_four.mid", timed_sequence(
        [(b, b + 1, 60 + b) for b in range(8)], [(0.0, 120.0), (2.0, 90.0)], ((0, 2, 4),)))
    window = music_adapter.read_window(path, MEL, 2)
    assert len(calls) == 1
    assert window.timing == grid.window_timing(midi_io.read_midi(path), 0, 2)
    assert (window.timing.numerator, len(window.timing.tempos)) == (2, 2)
    assert window.where.startswith("window 0: bars 1-4 of instrument 0")


def test_trio_and_drum_windows_say_the_silence_at_their_end_as_melody_windows_do(tmp_path):
    from test_music_drums_trio import trio_file

    trio = get_representation("trio")
    short = str(trio_file(tmp_path, bars=4))  # every part in each of 4 bars
    where = music_adapter.read_window(short, trio, 16).where
    assert where.startswith("window 0: bars 1-16; melody program 5")
    # (then the part it does not read: trio_file has a second melody part, program 0)
    assert ", drums; the music ends in bar 4, bars 5-16 are silence; other parts" in where
    where = music_adapter.read_window(short, trio, 16, bar=2).where
    assert "; the music ends in bar 4, bars 5-17 are silence; other parts" in where
    drums = write(tmp_path, "beat.mid", note_sequence(
        [(b / 2, b / 2 + 0.25, 36, 0, True) for b in range(8)]))  # one bar of eighths
    assert music_adapter.read_window(drums, get_representation("drums"), 2).where == (
        "window 0: bars 1-2 of the drums; the music ends in bar 1, bar 2 is silence")


def test_a_window_that_starts_before_the_music_says_which_bars_it_reads_as_silence(tmp_path):
    """A file whose part enters after 3 empty bars (a count-in): --window counts every window
    holding a note, so window 0 of a 2-bar model is bars 3-4 and that of a 16-bar model bars
    1-16, but the line said only "bars 3-4", and the reconstruction's silent start was a
    mystery. It now says which bars are read as silence and where the first note is."""
    late = [(12 + b / 2, 12 + b / 2 + 0.5, 60 + b % 7) for b in range(16)]  # bars 4-5
    path = write(tmp_path, "late.mid", note_sequence(late))
    assert music_adapter.read_window(path, MEL, 2).where == (
        "window 0: bars 3-4 of instrument 0 (program 0, Acoustic Grand Piano); bar 3 is read "
        "as silence, the window's first note is in bar 4")
    assert music_adapter.read_window(path, MEL, 16).where.startswith(
        "window 0: bars 1-16 of instrument 0 (program 0, Acoustic Grand Piano); bars 1-3 are "
        "read as silence, the window's first note is in bar 4; the music ends in bar 5")
    # A window that starts with its first note says nothing of the kind.
    assert "read as silence" not in music_adapter.read_window(path, MEL, 2, 1).where
    drums = write(tmp_path, "late_beat.mid", note_sequence(
        [(4 + b / 2, 4 + b / 2 + 0.25, 36, 0, True) for b in range(8)]))  # bar 2
    assert music_adapter.read_window(drums, get_representation("drums"), 16).where == (
        "window 0: bars 1-16 of the drums; bar 1 is read as silence, the window's first note "
        "is in bar 2; the music ends in bar 2, bars 3-16 are silence")
    band = [(b, b + 1, 60 + b % 5, 5) for b in range(8, 16)]  # melody, bass, drums: bars 3-4
    band += [(b, b + 1, 36 + b % 5, 33, False, 1) for b in range(8, 16)]
    band += [(b, b + 0.25, 36, 0, True) for b in range(8, 16)]
    trio = write(tmp_path, "late_band.mid", note_sequence(band))
    assert music_adapter.read_window(trio, get_representation("trio"), 16).where.startswith(
        "window 0: bars 1-16; melody program 5 (Electric Piano 2), bass program 33 (Electric "
        "Bass (finger)), drums; bars 1-2 are read as silence, the window's first note is in "
        "bar 3; the music ends in bar 4")


def changing_tempo(beat_tempos, bars=4, time_signature=(0, 4, 4)):
    """A melody line of quarter notes whose tempo changes at the given (beat, qpm)."""
    seconds, tempo = [], grid.TempoMap([(0.0, beat_tempos[0][1])])
    for beat, qpm in beat_tempos:  # each change's time at the tempi before it
        seconds.append((tempo.to_seconds(beat), qpm))
        tempo = grid.TempoMap(seconds)
    beats = bars * 4 * time_signature[1] // time_signature[2]  # quarter notes
    return timed_sequence([(b, b + 1, 60 + b % 7) for b in range(beats)], seconds,
                          [time_signature])


def test_a_window_line_says_each_tempo_of_the_window_not_only_the_first(tmp_path):
    one = write(tmp_path, "one.mid", changing_tempo([(0, 120), (4, 90)]))
    assert music_adapter.read_window(one, MEL, 2).tempo == "120 qpm, then 90 from bar 2"
    assert music_adapter.read_window(one, MEL, 2, bar=2).tempo == "90 qpm"  # after it
    two = write(tmp_path, "two.mid", changing_tempo([(0, 120), (4, 90), (10, 100)]))
    assert music_adapter.read_window(two, MEL, 4).tempo == (
        "120 qpm, then 90 from bar 2, 100 from bar 3")
    many = write(tmp_path, "many.mid", changing_tempo([(0, 120), (4, 90), (6, 100),
                                                       (12, 140)]))
    assert music_adapter.read_window(many, MEL, 4).tempo == (
        "120 qpm, then 3 changes in bars 2-4 (90-140 qpm)")
    # Bars as the score numbers them: in 2/4 beat 2 is bar 2 (the grid's bar 1).
    duple = write(tmp_path, "duple.mid", changing_tempo([(0, 100), (2, 150)], bars=8,
                                                        time_signature=(0, 2, 4)))
    assert music_adapter.read_window(duple, MEL, 2).tempo == "100 qpm, then 150 from bar 2"


@pytest.mark.skipif(not os.path.isdir(SHIPPED_2BAR), reason="needs the shipped mel_2bar")
def test_the_commands_print_the_windows_tempo_changes(tmp_path, capsys):
    a = write(tmp_path, "a.mid", changing_tempo([(0, 120), (4, 90)]))
    b = write(tmp_path, "b.mid", changing_tempo([(0, 100)]))
    model, out = f"--saved_model={SHIPPED_2BAR}", f"--out={tmp_path / 'out'}"
    # The same hint in both commands' words (attribute said "the outputs' tempi",
    # interpolate "the tempi of a.mid").
    hint = f"120 qpm, then 90 from bar 2 (the outputs' tempi, from {a}; --qpm to change them)"
    assert cli.main(["attribute", a, "--amount=0", model, out]) == 0
    assert f"notes, {hint}" in capsys.readouterr().out
    assert cli.main(["interpolate", a, b, "--steps=2", model, out]) == 0
    printed = capsys.readouterr().out
    assert f"seed 0, {hint}" in printed
    assert f"  {a} (120 qpm, then 90 from bar 2): window 0: bars 1-2 of" in printed
    assert f"  {b} (100 qpm): window 0: bars 1-2 of" in printed


def test_instrument_help_numbers_parts_as_the_window_line_does_not_by_channel(tmp_path):
    """--instrument's help said a part is the "MIDI track, or channel of a format 0 file", but
    parts are numbered as note_seq (pretty_midi) lists them: in a format 0 file by when each
    part's first note ends. Here the flute on channel 5 ends a note first, so it is part 0 and
    the piano on channel 0 part 2: passing a channel took another part. The help says to pass
    the number the window line prints, and that number takes the part it names."""
    import re

    import mido
    from test_cli_consistency import command_parsers
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = [(0, mido.Message("program_change", channel=5, program=73))]
    for beat in range(8):  # flute (ch 5) eighths, drums (ch 10) and piano (ch 0) quarters
        t = beat * 96
        events += [(t, mido.Message("note_on", channel=c, note=p, velocity=90))
                   for c, p in ((0, 48 + beat % 3), (5, 72 + beat % 5), (9, 36))]
        events += [(t + 40, mido.Message("note_off", channel=5, note=72 + beat % 5)),
                   (t + 60, mido.Message("note_off", channel=9, note=36)),
                   (t + 90, mido.Message("note_off", channel=0, note=48 + beat % 3))]
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    path = str(tmp_path / "format0.mid")
    mid.save(path)
    where = music_adapter.read_window(path, MEL, 2).where
    numbers = {int(k): int(p) for k, p in re.findall(r"instrument (\d+) \(program (\d+)", where)}
    numbers.update({int(k): None for k in re.findall(r"other parts: instrument (\d+)", where)})
    assert sorted(numbers) == [0, 2], where  # channels 5 and 0; the drums are part 1
    for number in numbers:
        line = music_adapter.read_window(path, MEL, 2, instrument=number).where
        program = int(re.search(r"of instrument \d+ \(program (\d+)", line).group(1))
        assert program == (73 if number == 0 else 0), line
    helps = {name: " ".join(action.help.split()) for name, parser in command_parsers()
             for action in parser._actions if "--instrument" in action.option_strings}
    assert set(helps) == {"interpolate", "attribute"}, helps
    for name, text in helps.items():
        assert "channel of a format 0" not in text and "track or channel" not in text, text
        assert "as the input's window line prints it" in text, (name, text)
