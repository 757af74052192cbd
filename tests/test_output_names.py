"""Output names of `hmvae sample` / `interpolate`: a run at another --qpm writes other files
instead of silently replacing the first run's (the tempo is the only difference)."""
from __future__ import annotations

import glob

import pytest

from note_seq import midi_io

from hmvae_tf import cli
from hmvae_tf.serving import music_adapter
from serving_fixtures import model_repo  # noqa: F401
from test_serving_client import melody_ns


def test_qpm_tag():
    assert music_adapter.qpm_tag(120.0) == ""
    assert music_adapter.qpm_tag(90.0) == "_q90"
    assert music_adapter.qpm_tag(97.5) == "_q97.5"


def test_another_tempo_does_not_overwrite(model_repo, tmp_path, capsys):  # noqa: F811
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


def test_an_amount_samples_the_same_whatever_amounts_come_with_it(model_repo, tmp_path,  # noqa: F811
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
