"""Output names of `hmvae sample` / `interpolate`: a run at another --qpm writes other files
instead of silently replacing the first run's (the tempo is the only difference)."""
from __future__ import annotations

import glob

import pytest

from note_seq import midi_io

from hmvae_tf import cli
from hmvae_tf.serving import music_adapter
from test_serving_client import melody_ns


def test_qpm_tag():
    assert music_adapter.qpm_tag(120.0) == ""
    assert music_adapter.qpm_tag(90.0) == "_q90"
    assert music_adapter.qpm_tag(97.5) == "_q97.5"


def test_another_tempo_does_not_overwrite(model_repo, tmp_path, capsys):
    out = tmp_path / "out"
    src = f"--saved_model={model_repo.mel_v1}"
    a = tmp_path / "a.mid"
    midi_io.note_sequence_to_midi_file(melody_ns([60, 62, 64, 65, 67, 69, 71, 72]), str(a))
    for qpm in ("120", "90"):
        assert cli.main(["sample", src, "-n", "1", f"--qpm={qpm}", f"--out={out}"]) == 0
        assert cli.main(["interpolate", str(a), str(a), src, "--steps=2", f"--qpm={qpm}",
                         f"--out={out}"]) == 0
    capsys.readouterr()
    default = out / "mel_sample_t0.5_seed0_01-of-01.mid"
    slow = out / "mel_sample_t0.5_seed0_q90_01-of-01.mid"
    assert [ns.tempos[0].qpm for ns in map(midi_io.midi_file_to_note_sequence,
                                           (str(default), str(slow)))] == pytest.approx([120.0, 90.0], abs=1e-3)
    assert len(glob.glob(str(out / "mel_interp_a_a_t0.5_seed0_0*.mid"))) == 2
    assert len(glob.glob(str(out / "mel_interp_a_a_t0.5_seed0_q90_0*.mid"))) == 2
    assert (out / "mel_interp_a_a_t0.5_seed0_q90_all.mid").exists()


def test_an_amount_samples_the_same_whatever_amounts_come_with_it(model_repo, tmp_path,
                                                                 capsys):
    """At temperature > 0, `attribute --amount=1` and `--amount=-1,1,2` write the same
    ..._density+1.mid (the name does not say the other amounts, so it must not depend on them)."""
    import json

    from hmvae_tf import attributes

    a = tmp_path / "a.mid"
    midi_io.note_sequence_to_midi_file(melody_ns([60, 62, 64, 65, 67, 69, 71, 72]), str(a))
    vectors = tmp_path / "attributes.json"
    z_size = 8  # the toy model's
    vectors.write_text(json.dumps({"format": attributes.FORMAT, "attributes": {
        "density": {"vector": [0.5] * z_size}}}))
    outs = []
    for k, amounts in enumerate(("1", "-1,1,2")):
        out = tmp_path / f"out{k}"
        assert cli.main(["attribute", str(a), f"--saved_model={model_repo.mel_v1}",
                         f"--attributes={vectors}", f"--amount={amounts}", "--temperature=1",
                         "--seed=3", f"--out={out}"]) == 0, capsys.readouterr().err
        outs.append(out)
    name = "mel_a_t1_seed3_density+1.mid"
    assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_outputs_take_the_inputs_tempo_unless_qpm_is_given(model_repo, tmp_path,
                                                           capsys):
    """A reconstruction played at 120 while its input was at 90 sounded like another piece:
    interpolate writes at the first input's tempo, attribute at its input's, unless --qpm."""
    import json

    from hmvae_tf import attributes

    slow = melody_ns([60, 62, 64, 65, 67, 69, 71, 72])
    slow.tempos[0].qpm = 90  # the same notes on the beat grid, at 90 qpm
    for note in slow.notes:
        note.start_time, note.end_time = note.start_time * 4 / 3, note.end_time * 4 / 3
    slow.total_time *= 4 / 3
    a = tmp_path / "a.mid"
    midi_io.note_sequence_to_midi_file(slow, str(a))
    src = f"--saved_model={model_repo.mel_v1}"
    out = tmp_path / "out"
    for extra in ([], ["--qpm=120"]):
        assert cli.main(["interpolate", str(a), str(a), src, "--steps=2", f"--out={out}",
                         *extra]) == 0
    printed = capsys.readouterr().out
    assert f"90 qpm (the outputs' tempo, from {a}; --qpm to change it)" in printed
    assert f"{a} (90 qpm): window 0" in printed
    tempo = lambda path: midi_io.midi_file_to_note_sequence(str(path)).tempos[0].qpm  # noqa: E731
    assert tempo(out / "mel_interp_a_a_t0.5_seed0_q90_01-of-02.mid") == pytest.approx(90, abs=1e-3)
    assert tempo(out / "mel_interp_a_a_t0.5_seed0_01-of-02.mid") == pytest.approx(120, abs=1e-3)

    vectors = tmp_path / "attributes.json"
    vectors.write_text(json.dumps({"format": attributes.FORMAT, "attributes": {
        "density": {"vector": [0.5] * 8}}}))  # the toy model's z_size
    assert cli.main(["attribute", str(a), src, f"--attributes={vectors}", "--amount=1",
                     f"--out={out}"]) == 0
    assert (f"8 notes, 90 qpm (the outputs' tempo, from {a}; --qpm to change it)"
            in capsys.readouterr().out)
    assert tempo(out / "mel_a_q90_density+1.mid") == pytest.approx(90, abs=1e-3)


def test_a_file_replaced_with_other_music_is_said(model_repo, tmp_path, capsys):
    """Output names hold the inputs' file names, not their folders: x/a.mid after y/a.mid
    replaced the first run's files without a word. The same run again replaces nothing."""
    src = f"--saved_model={model_repo.mel_v1}"
    out = tmp_path / "out"
    for folder, pitches in (("x", [60, 62, 64, 65]), ("y", [72, 71, 69, 67, 65, 64, 62, 60])):
        (tmp_path / folder).mkdir()
        midi_io.note_sequence_to_midi_file(melody_ns(pitches), str(tmp_path / folder / "a.mid"))
    run = lambda folder: cli.main(["interpolate", str(tmp_path / folder / "a.mid"),  # noqa: E731
                                   str(tmp_path / folder / "a.mid"), src, "--steps=2",
                                   "--temperature=0", f"--out={out}"])
    assert run("x") == 0 and run("x") == 0
    assert "note: replaced" not in capsys.readouterr().err
    assert run("y") == 0
    out, err = capsys.readouterr()
    assert "note: replaced 3 existing files that held other music (mel_interp_a_a_t0_seed0_" \
           "01-of-02.mid," in err
    assert "note:" not in out  # stdout lists the files written, a note is not a result


def test_attribute_counts_one_input_note_in_the_singular(model_repo, tmp_path, capsys):
    """A window of one note was told '1 notes' on the input line."""
    a = tmp_path / "one.mid"
    midi_io.note_sequence_to_midi_file(melody_ns([60]), str(a))
    assert cli.main(["attribute", str(a), f"--saved_model={model_repo.mel_v1}", "--amount=0",
                     f"--out={tmp_path / 'out'}"]) == 0
    printed = capsys.readouterr().out
    assert ": 1 note, 120 qpm (the outputs' tempo" in printed, printed
    assert "1 notes" not in printed
