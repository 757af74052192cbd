"""--bar=N of `hmvae interpolate` / `hmvae attribute`: the window starting at bar N as the score
numbers it. --window counts windows with notes, so in a file with empty bars window N was not
at bar N+1, and finding a passage meant trying windows until the printed line showed it."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hmvae_tf import cli
from hmvae_tf.music import midi_io
from hmvae_tf.music.representations import get_representation
from hmvae_tf.music.windows import NoWindowError
from hmvae_tf.serving import music_adapter
from music_helpers import note_sequence

MEL, DRUMS = get_representation("melody"), get_representation("drums")
SHIPPED_2BAR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "mel_2bar")


def gaps_file(tmp_path):
    """4/4: melody and drums in bar 1, nothing in bars 2-3, then bars 4-5."""
    beats = (0, 1, 12, 13, 16)
    notes = [(b, b + 1, 60 + 2 * k) for k, b in enumerate(beats)]
    hits = [(b, b + 0.5, 36, 0, True) for b in beats]
    path = tmp_path / "gaps.mid"
    midi_io.write_midi(note_sequence(notes + hits), path)
    return str(path)


def test_bar_chooses_the_window_starting_there_as_the_score_numbers_it(tmp_path):
    path = gaps_file(tmp_path)
    at_bar = music_adapter.read_window(path, MEL, 2, bar=4)
    by_count = music_adapter.read_window(path, MEL, 2, window_index=2)  # bars 2-3: no window
    assert by_count.where.startswith("window 2: bars 4-5 of instrument 0")
    assert at_bar.where.startswith("bars 4-5 of instrument 0")
    np.testing.assert_array_equal(at_bar.tokens, by_count.tokens)
    assert music_adapter.read_window(path, DRUMS, 2, bar=4).where == "bars 4-5 of the drums"
    # The last bar holding music starts a window too, padded with silence.
    last = music_adapter.read_window(path, MEL, 2, bar=5)
    assert last.where.startswith("bars 5-6 of") and "ends in bar 5, bar 6 is silence" in last.where
    with pytest.raises(NoWindowError, match=r"gaps.mid: bars 2-3 \(from --bar=2\) hold no "
                                            r"melody notes$"):
        music_adapter.read_window(path, MEL, 2, bar=2)
    with pytest.raises(ValueError, match=r"^bar 9 is past the end of the music \(in bar 5\)$"):
        music_adapter.read_window(path, MEL, 2, bar=9)


def test_bar_chooses_a_trio_window_too(tmp_path):
    from test_music_drums_trio import trio_file

    path = str(trio_file(tmp_path))  # 18 bars, every part in each
    trio = get_representation("trio")
    at_bar = music_adapter.read_window(path, trio, 16, bar=3)
    assert at_bar.where.startswith("bars 3-18; melody program 5")
    np.testing.assert_array_equal(at_bar.tokens,
                                  music_adapter.read_window(path, trio, 16, window_index=2).tokens)
    assert music_adapter.read_window(path, trio, 16, bar=18).where.startswith("bars 18-33;")


def test_a_bar_inside_a_grid_bar_names_the_bars_windows_start_at(tmp_path):
    """In 2/4 a window's 16-step bars are two of the score's, so only odd bars start one."""
    path = tmp_path / "two_four.mid"
    midi_io.write_midi(note_sequence([(i, i + 1, 60 + i) for i in range(8)],
                                     time_signatures=((0, 2, 4),)), path)
    assert music_adapter.read_window(str(path), MEL, 2, bar=3).where.startswith("bars 3-6")
    with pytest.raises(ValueError, match=r"^bar 2 does not start a window: .*; the nearest "
                                         r"start at bars 1 and 3$"):
        music_adapter.read_window(str(path), MEL, 2, bar=2)


def test_a_bar_in_an_off_grid_meter_says_the_meter_does_not_fit_the_grid(tmp_path):
    """Bars 3-6 in 3/4 between 4/4 bars: --bar there used to say "bars 3-5 (from --bar=3)
    hold no melody notes" (or name 3/4 bars as the nearest starts), counting grid bars on
    through the 3/4 section as if the 4/4 continued."""
    path = tmp_path / "mixed.mid"
    midi_io.write_midi(note_sequence([(b, b + 1, 60 + b % 12) for b in range(28)],
                                     time_signatures=((0, 4, 4), (8, 3, 4), (20, 4, 4))), path)
    for bar in (3, 4, 5, 6):
        with pytest.raises(ValueError, match=rf"^bar {bar} does not start a window: its meter "
                                             r"\(3/4\) does not fit the 16-steps-per-4/4-bar "
                                             r"grid .*; the nearest start at bars 2 and 7$"):
            music_adapter.read_window(str(path), MEL, 2, bar=bar)
    assert music_adapter.read_window(str(path), MEL, 2, bar=7).where.startswith("bars 7-8 of")
    waltz = tmp_path / "waltz.mid"
    midi_io.write_midi(note_sequence([(b, b + 1, 60) for b in range(12)],
                                     time_signatures=((0, 3, 4),)), waltz)
    with pytest.raises(ValueError, match=r"its meter \(3/4\) .*; the file has no bars that "
                                         r"start one$"):
        music_adapter.read_window(str(waltz), MEL, 2, bar=1)


def broken_bar_file(tmp_path):
    """4/4 for two and a half bars, then 2/4: a melody note (pitch 60 + beat), a bass note
    and a drum hit on every beat, kicks in the 4/4 section and snares in the 2/4 one."""
    beats = range(18)
    notes = [(b, b + 1, 60 + b) for b in beats] + [(b, b + 1, 36 + b, 33, False, 1)
                                                   for b in beats]
    hits = [(b, b + 0.25, 36 if b < 10 else 38, 0, True) for b in beats]
    path = tmp_path / "broken_bar.mid"
    midi_io.write_midi(note_sequence(notes + hits, time_signatures=((0, 4, 4), (10, 2, 4))),
                       path)
    return str(path)


def test_bar_after_a_meter_change_in_mid_bar_reads_the_window_its_line_names(tmp_path):
    """The 4/4 section's half bar (bar 3) and the 2/4 section's first grid bar (bars 4-5) had
    the same grid bar number, so --bar=4 said "bars 4-7" but read the half bar's notes (beats
    8-9), in melody, drum and trio windows; now each has its own and --bar=3 reads the half
    bar."""
    from hmvae_tf.music import drums

    path = broken_bar_file(tmp_path)
    for rep in (MEL, DRUMS, get_representation("trio")):
        at_bar = music_adapter.read_window(path, rep, 2, bar=4)
        by_count = music_adapter.read_window(path, rep, 2, window_index=2)
        assert by_count.where.startswith("window 2: bars 4-7")
        assert at_bar.where.startswith("bars 4-7")
        np.testing.assert_array_equal(at_bar.tokens, by_count.tokens)
    melody_at = lambda bar: MEL.to_note_sequence(  # noqa: E731
        music_adapter.read_window(path, MEL, 2, bar=bar, instrument=0).tokens).notes
    assert [n.pitch for n in melody_at(4)][:2] == [70, 71]  # beats 10-11: the 2/4 section
    assert [n.pitch for n in melody_at(3)] == [68, 69]  # beats 8-9: the 4/4 half bar
    assert {p for _, p in drums.token_hits(
        music_adapter.read_window(path, DRUMS, 2, bar=4).tokens)} == {38}
    assert music_adapter.read_window(path, DRUMS, 2, bar=3).where.startswith("bars 3-6 of")


@pytest.mark.skipif(not os.path.isdir(SHIPPED_2BAR), reason="needs the shipped mel_2bar")
def test_the_commands_take_bar_instead_of_window(tmp_path, capsys):
    path = gaps_file(tmp_path)
    model = f"--saved_model={SHIPPED_2BAR}"
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as usage:
        cli.main(["interpolate", path, path, "--bar=4", "--window=1", model])
    assert usage.value.code == 2
    assert "argument --window: not allowed with argument --bar" in capsys.readouterr().err
    assert cli.main(["attribute", path, "--amount=0", "--bar=4", model, f"--out={out}"]) == 0
    assert "input bars 4-5 of instrument 0" in capsys.readouterr().out
    assert (out / "mel_2bar_gaps_b4_recon.mid").exists()
    assert cli.main(["interpolate", path, path, "--bar=4,1", "--steps=2", model,
                     f"--out={out}"]) == 0
    printed = capsys.readouterr().out
    assert f"{path} (120 qpm): bars 4-5 of" in printed and f"{path} (120 qpm): bars 1-2 of" in printed


def _listed_windows(path, rep, num_bars):
    """Every window --window lists: (its line, its tokens)."""
    listed = []
    while True:
        try:
            window = music_adapter.read_window(path, rep, num_bars, window_index=len(listed))
        except NoWindowError:
            return listed
        listed.append((window.where, window.tokens))


def test_a_pickup_between_sections_starts_its_window_in_its_own_bar(tmp_path):
    """4/4 bars 1-2, a 1/4 bar 3 (the Bach chorales' pickup after a fermata; in them a 3/4 bar
    comes before it), then 4/4 from bar 4: the 4/4 section's first grid bar starts 12 steps
    before the pickup, in bar 2, so its window was labelled "bars 2-4" like the window from
    bar 2, and --bar=3 said bar 3 starts no window. Its music starts in the pickup, bar 3."""
    for name, signatures, pickup in (("pickup.mid", ((0, 4, 4), (8, 1, 4), (9, 4, 4)), 3),
                                     ("fermata.mid", ((0, 4, 4), (8, 3, 4), (11, 1, 4),
                                                      (12, 4, 4)), 4)):
        path = tmp_path / name
        beats = range(signatures[-1][0] + 8)
        notes = [(b, b + 1, 60 + b) for b in beats] + [(b, b + 0.5, 36, 0, True) for b in beats]
        midi_io.write_midi(note_sequence(notes, time_signatures=signatures), path)
        at_pickup = music_adapter.read_window(str(path), MEL, 2, bar=pickup)
        assert at_pickup.where.startswith(f"bars {pickup}-{pickup + 1} of instrument 0")
        assert MEL.to_note_sequence(at_pickup.tokens).notes[0].pitch == 60 + signatures[-2][0]
        for rep in (MEL, DRUMS):  # each window listed is the one --bar=<its first bar> reads
            listed = _listed_windows(str(path), rep, 2)
            starts = [int(where.split(": bars ")[1].split("-")[0]) for where, _ in listed]
            assert pickup in starts and len(set(starts)) == len(starts), starts
            for (where, tokens), bar in zip(listed, starts):
                np.testing.assert_array_equal(
                    music_adapter.read_window(str(path), rep, 2, bar=bar).tokens, tokens,
                    err_msg=where)
