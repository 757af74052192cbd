"""Melody windows moved by octaves into the register the models learned, and back
(hmvae_tf.music.register), and the commands that do it for a piccolo or a bass line."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hmvae_tf import cli
from hmvae_tf.music import melody, midi_io, register
from music_helpers import note_sequence

SHIPPED_2BAR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "mel_2bar")
SCALE = [0, 2, 4, 5, 7, 9, 11, 12]


def scale_tokens(base: int) -> np.ndarray:
    """Two bars of eighth notes up and down a major scale from `base`."""
    tokens = np.zeros(32, np.int32)
    for i in range(16):
        tokens[2 * i] = base + SCALE[i % 8] - melody.PITCH_OFFSET
    return tokens


def pitches(tokens) -> list[int]:
    return [p for _, _, p in melody.token_notes(np.asarray(tokens).reshape(-1))]


def test_octave_shift_moves_only_lines_outside_the_register():
    assert register.octave_shift(scale_tokens(60)) == 0
    assert register.octave_shift(scale_tokens(48)) == 0  # 48..60: inside, left alone
    assert register.octave_shift(np.zeros(32, np.int32)) == 0  # no notes
    # 90..102 (mean 96.25): 3 octaves down centres it best (60.25 against 72.25).
    assert register.octave_shift(scale_tokens(90)) == -3
    assert register.octave_shift(scale_tokens(24)) == 3  # 24..36 -> 60..72
    # 78..90: one octave down would fit too, two centre it (mean 60.25 against 72.25).
    assert register.octave_shift(scale_tokens(78)) == -2
    assert register.octave_shift(scale_tokens(40)) == 2  # 40..52 -> 64..76, mean 70.25
    moved = register.shift_octaves(scale_tokens(90), -3)
    assert pitches(moved) == [p - 36 for p in pitches(scale_tokens(90))]
    assert np.array_equal(register.shift_octaves(moved, 3), scale_tokens(90))
    # no-events and note-offs stay; [T, 1] rows (a model's output) work as [T].
    tokens = scale_tokens(60)
    tokens[1] = melody.NOTE_OFF
    assert np.array_equal(register.shift_octaves(tokens[:, None], 1)[:, 0] <= 1, tokens <= 1)


def test_moving_back_keeps_every_note_inside_the_token_range():
    tokens = scale_tokens(90)  # a decoded line at 90..102, moved back 2 octaves up
    back = pitches(register.shift_octaves(tokens, 2))
    # 114..126 does not exist: each note lands in the top octave, 97..108, none is dropped.
    assert max(back) <= melody.MAX_PITCH and min(back) >= melody.MAX_PITCH - 11
    assert len(back) == len(pitches(tokens))
    assert [p % 12 for p in back] == [p % 12 for p in pitches(tokens)]
    assert min(pitches(register.shift_octaves(scale_tokens(24), -1))) >= melody.MIN_PITCH


def test_interpolation_outputs_walk_from_one_register_to_the_other():
    assert register.interpolation_octaves(3, -3, 7) == [3, 2, 1, 0, -1, -2, -3]
    assert register.interpolation_octaves(-2, -2, 4) == [-2] * 4
    assert register.interpolation_octaves(0, 2, 2) == [0, 2]


def _write_scale(path, base: int) -> None:
    midi_io.write_midi(note_sequence([(i * 0.5, i * 0.5 + 0.5, base + SCALE[i % 8])
                                      for i in range(16)]), path)


def _read_pitches(path) -> list[int]:
    return [n.pitch for n in midi_io.read_midi(path).notes]


@pytest.mark.skipif(not os.path.isdir(SHIPPED_2BAR), reason="needs the shipped mel_2bar")
def test_commands_give_a_high_and_a_low_line_back_in_their_own_register(tmp_path, capsys):
    """A scale at MIDI 90..102 (a piccolo) and one at 24..36 (a bass): the shipped 2-bar
    model reconstructed both as notes around 46-73 (the middle register it learned), so
    the interpolation's ends were neither input. Read moved by octaves and written back, the
    ends are the inputs' own scales, and attribute's reconstruction is too."""
    high, low = tmp_path / "high.mid", tmp_path / "low.mid"
    _write_scale(high, 90)
    _write_scale(low, 24)
    out = tmp_path / "out"
    code = cli.main(["interpolate", str(high), str(low), f"--saved_model={SHIPPED_2BAR}",
                     "--steps=3", "--temperature=0", f"--out={out}"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "read 3 octaves down (it has notes outside MIDI 48..84" in stdout
    assert "read 3 octaves up (it has notes outside MIDI 48..84" in stdout
    first, middle, last = (_read_pitches(out / f"mel_2bar_interp_high_low_t0_seed0_0{k}-of-03.mid")
                           for k in (1, 2, 3))
    assert min(first) >= 88 and np.mean(first) > 93  # the input: 90..102, mean 96.25
    assert max(last) <= 38 and np.mean(last) < 33  # the input: 24..36, mean 30.25
    assert 40 < np.mean(middle) < 84  # between the registers
    code = cli.main(["attribute", str(high), "--name=density", "--amount=0",
                     f"--saved_model={SHIPPED_2BAR}", f"--out={out}"])
    assert code == 0 and "read 3 octaves down" in capsys.readouterr().out
    recon = _read_pitches(out / "mel_2bar_high_recon.mid")
    assert min(recon) >= 88 and np.mean(recon) > 93


def _write_line(path, pitches) -> None:
    """A line of quarter notes at the given pitches (a flute's program, 73)."""
    midi_io.write_midi(note_sequence([(i, i + 1, p, 73) for i, p in enumerate(pitches)]), path)


def test_a_line_above_midi_108_is_moved_down_rather_than_dropped(tmp_path, capsys):
    """A piccolo line written an octave up (all notes above MIDI 108, the top of the models'
    tokens) was dropped note by note before the octave shift saw it, so the file had 'no
    melody'. The line is now read moved by whole octaves into 21..108 and then into the
    register, as one move the output is moved back by; notes a move cannot bring in are
    still left out and said."""
    high = [109, 111, 112, 114, 116, 117, 119, 120]  # a scale from C#8 (MIDI 108 is C8)
    ns = note_sequence([(i, i + 1, p, 73) for i, p in enumerate(high)])
    with pytest.raises(ValueError, match="no 2-bar melody window"):
        melody.find_window(ns, 2)  # read as written: nothing the tokens can hold
    window = melody.find_window(ns, 2, move_octaves=True)
    assert window.octaves == -1 and window.notes_out_of_range == 0
    assert pitches(window.tokens) == [p - 12 for p in high]
    wide = note_sequence([(0, 1, 10, 73)] + [(i + 1, i + 2, p, 73) for i, p in enumerate(high)])
    window = melody.find_window(wide, 2, move_octaves=True)  # 110 semitones: one is left out
    assert window.octaves == -1 and window.notes_out_of_range == 1
    assert pitches(window.tokens) == [p - 12 for p in high[:7]]  # the 8th is in bar 3

    path = tmp_path / "piccolo.mid"
    _write_line(path, high)
    out = tmp_path / "out"
    code = cli.main(["attribute", str(path), "--name=density", "--amount=0",
                     f"--saved_model={SHIPPED_2BAR}", f"--out={out}"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    # 1 octave into 21..108, 3 more into the register: one move, said once.
    assert "read 4 octaves down (it has notes outside MIDI 48..84" in printed.out
    assert "left out" not in printed.out
    # Moved back as MIDI, past 108 where the tokens end: the line itself, not an octave lower
    # (the 4 octaves down put it at MIDI 61..72, where the model reconstructs it exactly).
    assert _read_pitches(out / "mel_2bar_piccolo_recon.mid") == high
    code = cli.main(["attribute", str(path), "--name=density", "--amount=0", "--no_octave_shift",
                     f"--saved_model={SHIPPED_2BAR}", f"--out={out}"])
    # As written: none; said as `hmvae interpolate` says it (it said "no usable window").
    assert code == 1 and "piccolo.mid: no usable melody for a 2-bar model: no 2-bar melody " \
        "window" in capsys.readouterr().err
