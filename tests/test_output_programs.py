"""Outputs of `hmvae interpolate` / `hmvae attribute` played by the input's instruments: they
were always written as program 0 (a trio's as 0 and 33), so a flute tune interpolated with
another came back as a piano. `hmvae sample` has no input and keeps the defaults."""
from __future__ import annotations

import glob
import os

import pytest

from hmvae_tf import cli
from hmvae_tf.music import midi_io
from music_helpers import write_midi

SHIPPED_2BAR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "mel_2bar")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHIPPED_2BAR),
                                reason="needs the shipped mel_2bar")
MODEL = f"--saved_model={SHIPPED_2BAR}"
FLUTE, VIOLIN, PIANO = 73, 40, 0


def _line(offset: int = 0):
    return [(i / 2, i / 2 + 0.5, 64 + offset + (i * 3) % 8) for i in range(16)]  # 2 bars


def _programs(path) -> set[int]:
    return {n.program for n in midi_io.read_midi(path).notes if not n.is_drum}


def test_interpolate_writes_a_mid_s_program(tmp_path, capsys):
    a = write_midi(tmp_path / "a.mid", [(FLUTE, False, _line())])
    b = write_midi(tmp_path / "b.mid", [(VIOLIN, False, _line(2))])
    out = tmp_path / "out"
    assert cli.main(["interpolate", str(a), str(b), MODEL, "--steps=3", "--temperature=0",
                     f"--out={out}"]) == 0
    files = sorted(glob.glob(str(out / "*.mid")))
    assert len(files) == 4  # 3 steps and the file with all of them
    for path in files:
        assert _programs(path) == {FLUTE}, path
    stdout = capsys.readouterr().out
    assert "(program 73, Flute)" in stdout and "(program 40, Violin)" in stdout


def test_interpolate_takes_the_chosen_instruments_program(tmp_path):
    # Two parts in a.mid: --instrument=1 picks the flute, whose program the outputs take.
    a = write_midi(tmp_path / "a.mid", [(PIANO, False, _line()), (FLUTE, False, _line(3))])
    b = write_midi(tmp_path / "b.mid", [(VIOLIN, False, _line(2))])
    out = tmp_path / "out"
    assert cli.main(["interpolate", str(a), str(b), MODEL, "--steps=2", "--temperature=0",
                     "--instrument=1,0", f"--out={out}"]) == 0
    files = glob.glob(str(out / "*.mid"))
    assert files and all(_programs(p) == {FLUTE} for p in files)


def test_attribute_writes_the_input_s_program(tmp_path):
    violin = write_midi(tmp_path / "v.mid", [(VIOLIN, False, _line())])
    out = tmp_path / "out"
    assert cli.main(["attribute", str(violin), "--amount=-1,1", MODEL, f"--out={out}"]) == 0
    files = glob.glob(str(out / "*.mid"))
    assert len(files) == 3  # the reconstruction and two amounts
    assert all(_programs(p) == {VIOLIN} for p in files)


def test_sample_keeps_program_0(tmp_path):
    out = tmp_path / "out"
    assert cli.main(["sample", MODEL, "-n", "2", f"--out={out}"]) == 0
    files = glob.glob(str(out / "*.mid"))
    assert len(files) == 2 and all(_programs(p) <= {PIANO} for p in files)


def test_attribute_amount_zero_needs_no_vectors(tmp_path, capsys):
    """`hmvae attribute --amount=0` writes just the reconstruction (README), which adds no
    vector, yet a model without attribute vectors (a trio model, any model just trained, whose
    dataset --compute may not have) stopped with "no attribute vectors at ...". It now writes
    the reconstruction, as a model with vectors does; other amounts still need them."""
    import shutil
    model = tmp_path / "model"
    shutil.copytree(os.path.join(SHIPPED_2BAR, "1"), model)
    os.remove(model / "assets.extra" / "hmvae_attributes.json")
    violin = write_midi(tmp_path / "v.mid", [(VIOLIN, False, _line())])
    out = tmp_path / "out"
    assert cli.main(["attribute", str(violin), "--amount=0", f"--saved_model={model}",
                     f"--out={out}"]) == 0
    [recon] = glob.glob(str(out / "*.mid"))
    assert recon.endswith("_recon.mid") and _programs(recon) == {VIOLIN}
    assert "the reconstruction only" in capsys.readouterr().out
    assert cli.main(["attribute", str(violin), "--amount=0,1", f"--saved_model={model}",
                     f"--out={out}"]) != 0
    err = capsys.readouterr().err
    assert "no attribute vectors at" in err and "--amount=0 writes the reconstruction" in err
