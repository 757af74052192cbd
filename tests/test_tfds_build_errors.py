"""A build the user can put right stops in one line under `tfds build` (no traceback), and
with an ordinary exception for a Python caller of `download_and_prepare`."""
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds
from music_helpers import write_midi

from tfds_builders.hmvae_notesequences import Builder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFDS_CLI = os.path.join(os.path.dirname(sys.executable), "tfds")


def _waltzes(folder):
    """Melodies in 3/4 only: readable, but no 4/4-compatible window."""
    folder.mkdir()
    for i in range(3):
        notes = [(k * 0.5, k * 0.5 + 0.5, 60 + (k + i) % 12) for k in range(48)]
        write_midi(folder / f"waltz{i}.mid", [(0, False, notes)], time_signature=(3, 4))
    return folder


def _drums_on_a_piano_channel(folder):
    """Drum parts written on channel 1: read as a pitched instrument, so no drum window."""
    folder.mkdir()
    kit = [(b / 2, b / 2 + 0.25, 36 if b % 2 else 42) for b in range(16)]
    for i in range(2):
        write_midi(folder / f"groove{i}.mid", [(0, False, [(s + i, e + i, p)
                                                          for s, e, p in kit])])
    return folder


def _no_midi(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("no MIDI here")
    return folder


CASES = {  # name -> (config, folder maker, words of the line)
    "waltzes": ("mel_2bar", _waltzes, "mel_2bar: no 2-bar melody window in the train split "
                                      "(pieces skipped: meter_not_4/4_compatible: 3)"),
    "drums_elsewhere": ("drums_2bar", _drums_on_a_piano_channel,
                        "2 files have notes but none on MIDI channel 10, so a drum part written "
                        "on another channel is read as a pitched instrument: if these files "
                        "have one, move it to channel 10"),
    "no_midi": ("mel_2bar", _no_midi, "mel_2bar: no .mid/.midi/.kar/.smf/.rmi files under "
                                      "--manual_dir="),
}


@pytest.mark.parametrize("case, beam", [("waltzes", False), ("drums_elsewhere", True)])
def test_tfds_build_says_why_in_one_line_without_a_traceback(tmp_path, case, beam):
    """TFDS's command printed its own traceback above the builder's explanation."""
    config, make, words = CASES[case]
    folder = make(tmp_path / case)
    cmd = [TFDS_CLI, "build", "tfds_builders/hmvae_notesequences", f"--config={config}",
           f"--data_dir={tmp_path / 'data'}", f"--manual_dir={folder}"]
    if beam:  # the empty train split is found after the Beam pipeline ran
        cmd.append("--beam_pipeline_options=direct_num_workers=1")
    env = dict(os.environ, PYTHONPATH=ROOT, HMVAE_TFDS_WORKERS="1", TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    line = run.stderr.rstrip().splitlines()[-1]
    assert words in line
    assert not (tmp_path / "data" / "hmvae_notesequences" / config / str(Builder.VERSION)
                / "dataset_info.json").exists()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("beam", [False, True])
def test_a_python_caller_gets_an_ordinary_exception(tmp_path, monkeypatch, case, beam):
    """No sys.exit in the builder: `download_and_prepare` raises, and the caller catches a
    ValueError with the same line."""
    from apache_beam.options.pipeline_options import PipelineOptions

    config, make, words = CASES[case]
    folder = make(tmp_path / case)
    monkeypatch.setenv("HMVAE_TFDS_WORKERS", "1")
    builder = Builder(config=config, data_dir=str(tmp_path / "data"))
    options = {"beam_options": PipelineOptions(direct_num_workers=1)} if beam else {}
    with pytest.raises(ValueError) as caught:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(folder), **options))
    assert words in str(caught.value)
    assert not builder.is_prepared()


def test_a_folder_of_flute_and_violin_tunes_is_told_mel_2bar_takes_programs_0_31(tmp_path,
                                                                                 monkeypatch):
    """4/4 melodies played by a flute and a violin give mel_2bar no window (Magenta's 2-bar
    programs are 0-31): the line said "It needs music in a 4/4-compatible meter; pass
    --manual_dir=<folder of .mid files>", which these files are, and the flag just given."""
    folder = tmp_path / "tunes"
    folder.mkdir()
    for i, program in enumerate((73, 40)):
        notes = [(k * 0.5, k * 0.5 + 0.5, 67 + (k + i) % 12) for k in range(32)]
        write_midi(folder / f"tune{i}.mid", [(program, False, notes)])
    monkeypatch.setenv("HMVAE_TFDS_WORKERS", "1")
    builder = Builder(config="mel_2bar", data_dir=str(tmp_path / "data"))
    with pytest.raises(ValueError) as caught:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(folder)))
    line = str(caught.value)
    assert line.startswith("mel_2bar: no 2-bar melody window in the train split (pieces "
                           "skipped: no_melody: 2). It needs melody parts in programs 0-31 ")
    assert "mel_16bar takes them" in line and "pass --manual_dir" not in line


@pytest.mark.parametrize("make, why", [
    (lambda path: None, "does not exist"),
    (lambda path: path.mkdir(), "is an empty folder"),
    (lambda path: path.write_text("a list of tunes"), "is a file, not a folder"),
])
def test_an_unusable_manual_dir_is_named_as_a_file_not_found_error(tmp_path, make, why):
    """TFDS says only "not found or empty" (and a file failed with NotADirectoryError's
    traceback): the line says which, and is still a FileNotFoundError for Python callers."""
    folder = tmp_path / "midi"
    make(folder)
    builder = Builder(config="mel_2bar", data_dir=str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as caught:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(folder)))
    assert str(caught.value).startswith(f"--manual_dir={folder} {why}; ")


def test_a_beam_split_without_windows_is_named(tmp_path, monkeypatch):
    """The default path leaves a split without windows out; TFDS cannot on Beam and stopped
    with its own "total number of generated examples is 0" traceback: the build names it."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from hmvae_tf.music import corpus

    folder = tmp_path / "midi"
    folder.mkdir()
    names = (f"piece{i:03d}.mid" for i in range(1000))
    train = [n for n in names if corpus.split_of(n) == "train"][:3]
    waltz = next(n for n in (f"waltz{i:03d}.mid" for i in range(1000))
                 if corpus.split_of(n) == "test")
    for name in train:
        notes = [(k * 0.5, k * 0.5 + 0.5, 60 + k % 12) for k in range(32)]
        write_midi(folder / name, [(0, False, notes)])
    write_midi(folder / waltz, [(0, False, [(k, k + 1, 62) for k in range(24)])],
               time_signature=(3, 4))
    monkeypatch.setenv("HMVAE_TFDS_WORKERS", "1")
    builder = Builder(config="mel_2bar", data_dir=str(tmp_path / "data"))
    with pytest.raises(ValueError, match=r"mel_2bar: no 2-bar melody window in the test split "
                                         r"\(1 piece hashes into it\).*build without "
                                         r"--beam_pipeline_options"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(folder), beam_options=PipelineOptions(direct_num_workers=1)))
    assert builder.info.metadata["windows_per_split"]["test"] == 0
    assert builder.info.metadata["windows_per_split"]["train"] > 0
