"""The window line `hmvae interpolate` / `hmvae attribute` print for each input (where in the
file the window lies, what in it is silence, its tempi), checked on generated MIDI files."""
from __future__ import annotations

from hmvae_tf.music import midi_io
from hmvae_tf.music.representations import get_representation
from hmvae_tf.serving import music_adapter
from music_helpers import note_sequence

MEL = get_representation("melody")


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


def test_trio_and_drum_windows_say_the_silence_at_their_end_as_melody_windows_do(tmp_path):
    from test_music_drums_trio import trio_file

    trio = get_representation("trio")
    short = str(trio_file(tmp_path, bars=4))  # every part in each of 4 bars
    where = music_adapter.read_window(short, trio, 16).where
    assert where.startswith("window 0: bars 1-16; melody program 5")
    assert where.endswith(", drums; the music ends in bar 4, bars 5-16 are silence")
    where = music_adapter.read_window(short, trio, 16, bar=2).where
    assert where.endswith("; the music ends in bar 4, bars 5-17 are silence")
    drums = write(tmp_path, "beat.mid", note_sequence(
        [(b / 2, b / 2 + 0.25, 36, 0, True) for b in range(8)]))  # one bar of eighths
    assert music_adapter.read_window(drums, get_representation("drums"), 2).where == (
        "window 0: bars 1-2 of the drums; the music ends in bar 1, bar 2 is silence")
