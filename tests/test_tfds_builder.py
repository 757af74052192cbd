"""The TFDS builder on a small real subset of the embedded corpus and on generated MIDI."""
import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow_datasets as tfds
from music_helpers import write_midi

from hmvae_tf import data
from hmvae_tf.configs import ConfigError, get_config
from hmvae_tf.music import corpus, midi_io
from hmvae_tf.music.representations import get_representation
from tfds_builders.hmvae_notesequences import Builder

pytestmark = pytest.mark.skipif(shutil.which("abc2midi") is None, reason="needs abc2midi")


def _build(tmp_path, config, monkeypatch, max_pieces=None, manual_dir=None, workers=1):
    if max_pieces:
        monkeypatch.setenv("HMVAE_TFDS_MAX_PIECES", str(max_pieces))
    monkeypatch.setenv("HMVAE_TFDS_WORKERS", str(workers))
    builder = Builder(config=config, data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir) if manual_dir else None))
    return builder


def _read(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


def test_mel_2bar_small_embedded_subset(tmp_path, monkeypatch):
    builder = _build(tmp_path, "mel_2bar", monkeypatch, max_pieces=160, workers=2)
    splits = builder.info.splits
    assert splits["train"].num_examples > 100
    assert splits["validation"].num_examples + splits["test"].num_examples > 0
    ids = {s: {ex["piece_id"].decode() for ex in _read(builder, s)}
           for s in ("train", "validation", "test")}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert any(i.startswith("music21/bach/") for s in ids.values() for i in s)
    assert any("#" in i for i in ids["train"])  # ABC tunes: file#X
    ex = _read(builder, "train")[0]
    assert ex["tokens"].shape == (32,) and ex["tokens"].dtype == np.int32
    # The stored NoteSequence is the rendering of the tokens.
    rep = get_representation("melody")
    ns, _ = midi_io.as_note_sequence(ex["note_sequence"])
    np.testing.assert_array_equal(rep.from_note_sequence(ns, 2), ex["tokens"])
    meta = builder.info.metadata
    assert meta["pieces"] == 160 and meta["pieces_read"] > 150
    assert meta["windows_per_split"]["train"] == splits["train"].num_examples
    assert meta["skipped"].get("meter_not_4/4_compatible", 0) > 0
    # Metadata survives a reload from disk.
    reloaded = Builder(config="mel_2bar", data_dir=str(tmp_path / "data"))
    assert reloaded.info.metadata["windows_per_split"] == meta["windows_per_split"]
    # A subset build says so in keys of its own (it has the full build's name and version),
    # and `hmvae train` tells its user.
    assert meta["manual_dir"] is None
    # The tools that made the windows: music21's corpus, abc2midi for the tunes, note_seq.
    abc2midi = subprocess.run(["abc2midi", "-ver"], capture_output=True, text=True).stdout
    assert meta["tool_versions"] == {"music21": importlib.metadata.version("music21"),
                                     "abc2midi": abc2midi.split()[0],
                                     "note_seq": importlib.metadata.version("note_seq")}
    assert re.fullmatch(r"\d+\.\d+\S*", meta["tool_versions"]["abc2midi"])
    assert meta["subset"] == {"pieces": 160, "of": len(corpus.embedded_pieces()),
                              "max_pieces": 160}
    assert data.subset_note("hmvae_notesequences/mel_2bar", str(tmp_path / "data")).endswith(
        f"not the full dataset: 160 of the {meta['subset']['of']:,} pieces of the embedded "
        "corpus (HMVAE_TFDS_MAX_PIECES=160)")
    # A config whose windows are not these is refused before any pipeline runs, by name.
    data_dir = str(tmp_path / "data")
    assert data.load_tokens("hmvae_notesequences/mel_2bar", "train", data_dir,
                            config=get_config("cat-mel_2bar_small")) is not None
    for other, words in (("flat-mel_16bar", "takes 256-step melody windows (16 bars)"),
                         ("cat-drums_2bar_small", "holds 32-step melody windows")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            data.load_tokens("hmvae_notesequences/mel_2bar", "train", data_dir,
                             config=get_config(other))
    # The hint names the config's own dataset, not the --dataset that did not fit it.
    given = dataclasses.replace(get_config("cat-drums_2bar_small"),
                                dataset="hmvae_notesequences/mel_2bar")
    with pytest.raises(ConfigError, match=re.escape("(its default is "
                                                    "hmvae_notesequences/drums_2bar)")):
        data.load_tokens("hmvae_notesequences/mel_2bar", "train", data_dir, config=given)


def test_drums_without_manual_dir_fails_clearly(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"drums_2bar needs MIDI files with drums.*"
                                         r"--manual_dir"):
        _build(tmp_path, "drums_2bar", monkeypatch)
    assert not (tmp_path / "data" / "hmvae_notesequences" / "drums_2bar"
                / str(Builder.VERSION)).exists()


def test_drums_on_another_channel_get_the_move_to_channel_10_hint(tmp_path, monkeypatch):
    """A folder whose drum parts sit on a pitched channel built no window and said only that
    it needs drums on channel 10, not that these files have their drums elsewhere."""
    midi_dir = tmp_path / "grooves"
    midi_dir.mkdir()
    kit = [(b / 2, b / 2 + 0.25, 36 if b % 2 else 42) for b in range(16)]  # GM drum pitches
    for i in range(2):  # the drum part written as a piano part (channel 1)
        write_midi(midi_dir / f"groove{i}.mid", [(0, False, [(s + i, e + i, p)
                                                            for s, e, p in kit])])
    write_midi(midi_dir / "silent.mid", [(0, False, [])])  # no notes: not counted
    with pytest.raises(ValueError, match=r"no 2-bar drums window.* 2 files have notes but "
                                         r"none on MIDI channel 10.*if these files have "
                                         r"one, move it to channel 10"):
        _build(tmp_path, "drums_2bar", monkeypatch, manual_dir=midi_dir)


def test_trio_files_with_drums_on_another_channel_get_the_hint_too(tmp_path, monkeypatch):
    """A trio build counted files without a drum part only as having no trio instruments;
    the commands (trio.find_window) already said to move the drum part to channel 10."""
    midi_dir = tmp_path / "bands"
    midi_dir.mkdir()
    bars = 16
    lead = [(b / 2, b / 2 + 0.5, 67 + b % 5) for b in range(8 * bars)]
    bass = [(b, b + 1, 40 + b % 3) for b in range(4 * bars)]
    kit = [(b / 2, b / 2 + 0.25, 36 if b % 2 else 42) for b in range(8 * bars)]
    # melody (program 0), bass (33) and the drum part written on a pitched channel
    write_midi(midi_dir / "band.mid", [(0, False, lead), (33, False, bass), (0, False, kit)])
    with pytest.raises(ValueError, match=r"no 16-bar trio window.* 1 file has notes but "
                                         r"none on MIDI channel 10.*if it has one, "
                                         r"move it to channel 10"):
        _build(tmp_path, "trio_16bar", monkeypatch, manual_dir=midi_dir)


@pytest.mark.parametrize("empty", [False, True])
def test_missing_or_empty_manual_dir_stops_the_build(tmp_path, monkeypatch, empty):
    """Not a silent fallback to the embedded corpus, which mel_2bar would otherwise build."""
    manual = tmp_path / "my_midi"
    if empty:
        manual.mkdir()
    why = "is an empty folder" if empty else "does not exist"
    with pytest.raises(FileNotFoundError, match=rf"--manual_dir=.*my_midi {why}; "):
        _build(tmp_path, "mel_2bar", monkeypatch, max_pieces=20, manual_dir=manual)
    assert not (tmp_path / "data" / "hmvae_notesequences" / "mel_2bar"
                / str(Builder.VERSION)).exists()


def test_trio_from_manual_dir_of_midi_files(tmp_path, monkeypatch):
    midi_dir = tmp_path / "midi"
    (midi_dir / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        bars = 17
        lead = [(k * 0.5, k * 0.5 + 0.5, int(rng.integers(60, 80))) for k in range(bars * 8)]
        bass = [(k * 1.0, k * 1.0 + 1, int(rng.integers(36, 48))) for k in range(bars * 4)]
        beat = [(k * 0.5, k * 0.5 + 0.1, int(rng.choice([36, 38, 42]))) for k in range(bars * 8)]
        write_midi(midi_dir / "sub" / f"song{i}.mid",
                   [(0, False, lead), (34, False, bass), (0, True, beat)])
    (midi_dir / "broken.mid").write_bytes(b"MThd nope")
    builder = _build(tmp_path, "trio_16bar", monkeypatch, manual_dir=midi_dir)
    splits = builder.info.splits
    total = sum(split.num_examples for split in splits.values())
    assert total == 12 * 2  # two 16-bar windows (start bars 0 and 1) per song
    meta = builder.info.metadata
    # Splits with no piece are left out instead of failing the build.
    assert set(splits) == {n for n, c in meta["windows_per_split"].items() if c}
    assert meta["skipped"] == {"unreadable": 1} and "manual_dir" in meta["source"]
    # The report names it, and says why.
    assert len(meta["unreadable"]) == 1
    assert meta["unreadable"][0].startswith("broken.mid: MidiReadError: cannot read MIDI file")
    assert meta["representation"] == "trio" and meta["bars"] == 16
    ex = _read(builder, "train")[0]
    assert ex["tokens"].shape == (256, 3) and ex["program"] == 0
    assert ex["piece_id"].decode().startswith("sub/song")


def test_build_command_drums_from_manual_dir(tmp_path):
    """`tfds build` (TFDS's own command) end to end, in a subprocess."""
    import os
    import subprocess
    import sys
    midi_dir = tmp_path / "grooves"
    midi_dir.mkdir()
    for i in range(6):
        hits = [(k * 0.5, k * 0.5 + 0.1, [36, 42, 38, 42][(k + i) % 4]) for k in range(24)]
        write_midi(midi_dir / f"groove{i}.{'KAR' if i == 3 else 'mid'}", [(0, True, hits)])
    (midi_dir / "gone.mid").symlink_to(midi_dir / "moved.mid")  # a broken link: unreadable
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, HMVAE_TFDS_WORKERS="1", TF_CPP_MIN_LOG_LEVEL="3")
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    cmd = [tfds_cli, "build", "tfds_builders/hmvae_notesequences",
           "--config=drums_2bar", f"--data_dir={tmp_path / 'data'}",
           f"--manual_dir={midi_dir}"]
    run = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    # The report once: in TFDS's log, which `tfds build` shows (not printed a second time).
    # groove4 and groove5 are byte-identical to groove0 and groove1: left out as duplicates
    # (they would put the same windows into two splits); the .KAR file is read.
    log = run.stdout + run.stderr
    assert log.count("7 pieces, 4 read, 4 with windows; skipped: duplicate=2, unreadable=1") \
        == 1, log[-3000:]
    builder = Builder(config="drums_2bar", data_dir=str(tmp_path / "data"))
    rows = [ex for s in builder.info.splits for ex in _read(builder, s)]
    assert rows and all(ex["tokens"].shape == (32,) for ex in rows)
    assert all(ex["tokens"].max() < 512 for ex in rows)
    assert sorted({ex["piece_id"].decode() for ex in rows}) == [
        "groove0.mid", "groove1.mid", "groove2.mid", "groove3.KAR"]
    assert builder.info.metadata["duplicates"] == ["groove4.mid = groove0.mid",
                                                   "groove5.mid = groove1.mid"]
    # The same data_dir with another MIDI folder stops instead of reusing the first build.
    other = tmp_path / "other"
    other.mkdir()
    run = subprocess.run([*cmd[:-1], f"--manual_dir={other}"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"was built from the manual_dir {midi_dir}, not --manual_dir={other}" in run.stderr
    assert "Pass --overwrite" in run.stderr and "Traceback" not in run.stderr


def _melodies(folder, count=6):
    """`count` short one-track MIDI melodies of 4 bars."""
    folder.mkdir(parents=True)
    for i in range(count):
        notes = [(k * 0.5, k * 0.5 + 0.5, 60 + (k + i) % 12) for k in range(32)]
        write_midi(folder / f"tune{i}.mid", [(0, False, notes)])


def test_manual_dir_is_stored_as_its_own_metadata_key(tmp_path, monkeypatch):
    """The reuse check read the folder back out of the `source` line, cutting it at
    ", subset of ": a folder whose name holds that was "another folder" than itself."""
    import json

    midi_dir = tmp_path / "songs, subset of the best"
    _melodies(midi_dir)
    builder = _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)
    assert builder.info.metadata["manual_dir"] == str(midi_dir)
    # Nothing of music21 or abc2midi made these windows.
    assert builder.info.metadata["tool_versions"] == {
        "note_seq": importlib.metadata.version("note_seq")}
    assert Builder(config="mel_2bar", data_dir=str(tmp_path / "data")).info.metadata[
        "manual_dir"] == str(midi_dir)
    _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)  # the same folder: reused
    other = tmp_path / "other"
    _melodies(other)
    with pytest.raises(ValueError, match=re.escape(f"not --manual_dir={other}")):
        _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=other)
    # A build made before the key existed is still checked, from its `source` line.
    meta_path = tmp_path / "data" / "hmvae_notesequences" / "mel_2bar" / str(
        Builder.VERSION) / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["manual_dir"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=re.escape(f"not --manual_dir={other}")):
        _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=other)
    _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)


def test_a_rebuild_of_a_changed_manual_dir_stops_instead_of_reusing_the_old_build(
        tmp_path, monkeypatch):
    """Files added to (or edited in) the --manual_dir after a build: TFDS reused the old build
    with only its "Reusing dataset" line, so the new files were silently not in it."""
    midi_dir = tmp_path / "songs"
    _melodies(midi_dir)
    builder = _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)
    assert builder.info.metadata["manual_dir_listing"]["files"] == 6
    _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)  # unchanged: reused
    (midi_dir / "tune0.mid").rename(tmp_path / "kept.mid")  # a file gone
    with pytest.raises(ValueError, match=r"which has changed since \(6 MIDI files, [\d,]+ "
                                         r"bytes when built; now 5, [\d,]+ bytes\).*--overwrite"):
        _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)
    (tmp_path / "kept.mid").rename(midi_dir / "tune0.mid")
    _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)  # as built again
    later = (midi_dir / "tune1.mid").stat().st_mtime + 60
    os.utime(midi_dir / "tune1.mid", (later, later))  # edited in place, same size
    with pytest.raises(ValueError, match="a MIDI file was modified after the build"):
        _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)


def test_beam_path_builds_the_same_dataset(tmp_path, monkeypatch):
    """--beam_pipeline_options switches conversion and writing to Beam (two local worker
    processes here); rows, splits and the report must equal the default path's."""
    from apache_beam.options.pipeline_options import PipelineOptions

    midi_dir = tmp_path / "midi"
    midi_dir.mkdir()
    rng = np.random.default_rng(1)
    for i in range(16):
        notes = [(k * 0.5, k * 0.5 + 0.5, int(rng.integers(55, 80))) for k in range(8 * (3 + i))]
        write_midi(midi_dir / f"tune{i:02d}.mid", [(int(rng.integers(0, 8)), False, notes)])
    (midi_dir / "broken.mid").write_bytes(b"MThd nope")
    monkeypatch.setenv("HMVAE_TFDS_WORKERS", "1")

    def build(name, **beam):
        builder = Builder(config="mel_2bar", data_dir=str(tmp_path / name))
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(midi_dir), **beam))
        return builder

    default = build("default")
    on_beam = build("beam", beam_options=PipelineOptions(
        direct_num_workers=2, direct_running_mode="multi_processing"))

    def rows(builder):
        return {split: sorted((ex["piece_id"], ex["start_bar"], ex["program"],
                               ex["tokens"].tobytes(), ex["note_sequence"])
                              for ex in _read(builder, split))
                for split in builder.info.splits}

    want, got = rows(default), rows(on_beam)
    assert sum(len(r) for r in want.values()) > 100
    assert got == want
    drop = lambda meta: {k: v for k, v in meta.items() if k != "conversion_seconds"}  # noqa: E731
    assert drop(on_beam.info.metadata) == drop(default.info.metadata)
    assert on_beam.info.metadata["skipped"] == {"unreadable": 1}


def test_the_reading_line_counts_one_copy_in_the_singular(tmp_path, monkeypatch, caplog):
    """A folder with one byte-identical copy was told '(1 byte-identical copies left out)'."""
    import logging

    midi_dir = tmp_path / "midi"
    _melodies(midi_dir, count=3)
    shutil.copy(midi_dir / "tune0.mid", midi_dir / "tune0 (copy).mid")
    caplog.set_level(logging.INFO)
    _build(tmp_path, "mel_2bar", monkeypatch, manual_dir=midi_dir)
    assert (f"hmvae_notesequences/mel_2bar: reading 3 pieces from the manual_dir {midi_dir} "
            "(1 byte-identical copy left out)") in caplog.messages
