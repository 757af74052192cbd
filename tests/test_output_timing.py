"""Outputs of `hmvae interpolate` / `hmvae attribute` in the input window's meter and tempi:
tokens know only 16-step bars at one tempo, so every output was 4/4 at the window's first
tempo, and a 2/4 input came back in 4/4 (wrong bars in a notation program) and a tempo change
inside the window was lost (a reconstruction no longer sounded like its input)."""
from __future__ import annotations

import os

import pytest

from hmvae_tf import cli
from hmvae_tf.music import grid, midi_io
from music_helpers import note_sequence

SHIPPED_2BAR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "mel_2bar")


def timed_sequence(notes, tempos, time_signatures):
    """notes (start_beat, end_beat, pitch) and time signatures (beat, n, d) placed through the
    tempo map `tempos` (seconds, qpm), so beats stay on the grid across tempo changes."""
    ns = note_sequence([], time_signatures=())
    del ns.tempos[:]
    tempo = grid.TempoMap(tempos)
    for time, qpm in tempos:
        ns.tempos.add(time=time, qpm=qpm)
    for beat, num, den in time_signatures:
        ns.time_signatures.add(time=tempo.to_seconds(beat), numerator=num, denominator=den)
    for start, end, pitch in notes:
        ns.notes.add(start_time=tempo.to_seconds(start), end_time=tempo.to_seconds(end),
                     pitch=pitch, velocity=90)
    ns.total_time = max(n.end_time for n in ns.notes)
    return ns


def test_the_window_timing_is_its_meter_when_its_bars_line_up_and_its_tempi():
    line = [(i, i + 1, 60 + i % 8) for i in range(16)]
    two_four = timed_sequence(line, [(0.0, 100.0), (1.2, 150.0)], [(0, 2, 4)])
    timing = grid.window_timing(two_four, 0, 2)
    assert (timing.numerator, timing.denominator) == (2, 4)
    assert timing.tempos == ((0.0, 100.0), (2.0, 150.0))  # 1.2 s at 100 qpm: beat 2
    assert timing.to_seconds(4.0) == pytest.approx(1.2 + 2 * 0.4)
    later = grid.window_timing(two_four, 1, 2)  # after the change: one tempo
    assert later.tempos == ((0.0, 150.0),)
    four_two = timed_sequence(line, [(0.0, 120.0)], [(0, 4, 2)])
    assert grid.window_timing(four_two, 0, 2).numerator == 4  # one whole 4/2 bar
    assert grid.window_timing(four_two, 0, 2).denominator == 2
    assert grid.window_timing(four_two, 1, 2).denominator == 4  # from mid-bar: 4/4 bars
    assert grid.window_timing(four_two, 0, 1).denominator == 4  # half a 4/2 bar
    # 3/4 (off the grid) then 2/4: a window of the 2/4 section is 2/4.
    mixed = timed_sequence([(6 + i, 7 + i, 60 + i) for i in range(8)], [(0.0, 120.0)],
                           [(0, 3, 4), (6, 2, 4)])
    window_bar = grid.segments(mixed)[0].first_bar
    timing = grid.window_timing(mixed, window_bar, 2)
    assert (timing.numerator, timing.denominator) == (2, 4)


def _timing(path):
    ns = midi_io.read_midi(path)
    return ([(t.numerator, t.denominator) for t in ns.time_signatures],
            [(round(t.time, 3), round(t.qpm, 3)) for t in ns.tempos])


def _onsets(path):
    return [(round(n.start_time, 3), n.pitch) for n in midi_io.read_midi(path).notes]


@pytest.mark.skipif(not os.path.isdir(SHIPPED_2BAR), reason="needs the shipped mel_2bar")
def test_outputs_take_the_input_windows_meter_and_tempo_changes(tmp_path, capsys):
    arpeggio = [(i, i + 1, 60 + 2 * i) for i in range(8)]  # 4 bars of 2/4, 2 of the grid's
    a = tmp_path / "a.mid"
    midi_io.write_midi(timed_sequence(arpeggio, [(0.0, 100.0), (1.2, 150.0)], [(0, 2, 4)]), a)
    b = tmp_path / "b.mid"
    midi_io.write_midi(timed_sequence(arpeggio, [(0.0, 90.0)], [(0, 4, 4)]), b)
    out = tmp_path / "out"
    model = f"--saved_model={SHIPPED_2BAR}"
    assert cli.main(["attribute", str(a), "--amount=0", model, f"--out={out}"]) == 0
    recon = out / "mel_2bar_a_q100_recon.mid"
    # The reconstruction (exact for this line) plays as its input: same bars, same times.
    assert _timing(recon) == _timing(a) == ([(2, 4)], [(0.0, 100.0), (1.2, 150.0)])
    assert _onsets(recon) == _onsets(a)
    assert cli.main(["attribute", str(a), "--amount=0", "--qpm=60", model,
                     f"--out={out}"]) == 0
    assert _timing(out / "mel_2bar_a_q60_recon.mid") == ([(2, 4)], [(0.0, 60.0)])

    # Between two files the outputs take the first's meter and tempi, as its tempo before.
    assert cli.main(["interpolate", str(a), str(b), "--steps=3", "--temperature=0", model,
                     f"--out={out}"]) == 0
    for k in (1, 2, 3):
        path = out / f"mel_2bar_interp_a_b_t0_seed0_q100_0{k}-of-03.mid"
        assert _timing(path) == _timing(a)
    assert _onsets(out / "mel_2bar_interp_a_b_t0_seed0_q100_01-of-03.mid") == _onsets(a)
    assert cli.main(["interpolate", str(b), str(a), "--steps=2", "--temperature=0", model,
                     f"--out={out}"]) == 0
    assert _timing(out / "mel_2bar_interp_b_a_t0_seed0_q90_02-of-02.mid") == ([(4, 4)],
                                                                             [(0.0, 90.0)])
    capsys.readouterr()


def test_a_pickup_windows_opening_tempo_is_no_tempo_change(tmp_path):
    """A pickup window starts before beat 0 and so holds the opening tempo event; read back
    from MIDI its qpm is 99.99999999999999, which was compared unrounded with the 100 in
    force and made a change: the window line said "100 qpm, then 100 from bar 0" and outputs
    got a second tempo event."""
    from hmvae_tf.serving import music_adapter
    from hmvae_tf.music.representations import get_representation
    path = tmp_path / "pickup.mid"
    midi_io.write_midi(note_sequence([(i, i + 1, 60 + i % 8) for i in range(9)], qpm=100.0,
                                     time_signatures=((0.0, 1, 4), (1.0, 4, 4))), path)
    ns = midi_io.read_midi(path)
    assert ns.tempos[0].qpm != 100.0  # the read-back noise this is about
    assert grid.window_timing(ns, 0, 2).tempos == ((0.0, 100.0),)
    read = music_adapter.read_window(str(path), get_representation("melody"), 2)
    assert read.tempo == "100 qpm" and read.where.startswith("window 0: bars 0-1")
