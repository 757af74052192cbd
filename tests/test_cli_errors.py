"""Bad command lines end in one error line before any work, and leave nothing behind."""
import subprocess
import sys
import textwrap

import pytest

from hmvae_tf import checkpoints, cli, configs, train


@pytest.mark.parametrize("argv, message", [
    (["sample", "--saved_model=m", "--qpm=0"], "--qpm: must be > 0, not 0"),
    (["sample", "--saved_model=m", "--qpm=-1"], "--qpm: must be > 0"),
    (["sample", "--saved_model=m", "--temperature=nan"], "--temperature: must be a finite"),
    (["sample", "--saved_model=m", "--temperature=inf"], "--temperature: must be a finite"),
    (["sample", "--saved_model=m", "--seed=2147483648"], "--seed: must be <= 2147483647"),
    (["sample", "--saved_model=m", "--seed=-1"], "--seed: must be >= 0"),
    (["interpolate", "a.mid", "b.mid", "--saved_model=m", "--qpm=nan"], "--qpm: must be a"),
    (["attribute", "a.mid", "--saved_model=m", "--amount=nan"], "--amount: must be a finite"),
    (["attribute", "a.mid", "--saved_model=m", "--amount=1,x"], "--amount: expected a number"),
    (["export", "--model_dir=d", "--export_base=e", "--version=0"], "--version: must be >= 1"),
    (["train", "--config=cat-mel_2bar_small", "--model_dir=d", "--num_steps=0"],
     "--num_steps: must be >= 1"),
    (["train", "--config=cat-mel_2bar_small", "--model_dir=d", "--checkpoint_every=-5"],
     "--checkpoint_every: must be >= 1"),
])
def test_bad_numbers_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_amounts_are_kept_once_in_order():
    from hmvae_tf import arg_types

    assert arg_types.finite_floats("0.5,-1,0.50,2") == [0.5, -1.0, 2.0]


@pytest.mark.parametrize("extra, message", [
    (["--model=mel_16bar"], "with --saved_model leave it out"),
    (["--out=FILE"], "is a file, not a directory"),
])
def test_sample_refuses_contradictory_flags_before_loading(extra, message, tmp_path, capsys):
    (tmp_path / "FILE").write_text("not a directory")
    argv = ["sample", "--saved_model=no/such/model", *extra]
    argv = [a.replace("FILE", str(tmp_path / "FILE")) for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "no such" not in err.lower()  # refused before the model


@pytest.mark.parametrize("argv, message", [
    (["--config=cat-mel_3bar"], "unknown config 'cat-mel_3bar'"),
    (["--config=cat-mel_2bar_small", "--hparams=z_size=-4"], "z_size must be positive"),
    (["--config=cat-mel_2bar_small", "--hparams=batch_size=0"], "batch_size must be positive"),
    (["--config=cat-mel_2bar_small", "--hparams=z_size=abc"], "bad value 'abc'"),
    (["--config=cat-mel_2bar_small", "--hparams=bogus=3"], "unknown hparam 'bogus'"),
    (["--config=cat-mel_2bar_small", "--hparams=garbage"], "not of the form name=value"),
])
def test_bad_config_is_one_line_and_writes_no_model(argv, message, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert cli.main(["train", f"--model_dir={model_dir}", *argv]) == 2
    err = capsys.readouterr().err
    assert "hmvae train: error: " in err and message in err and "Traceback" not in err
    assert not (model_dir / checkpoints.CONFIG_FILE).exists()


def test_hparams_alone_cannot_change_a_saved_model(tmp_path):
    """Resuming applies --hparams to the saved config: a change is refused, not ignored."""
    saved = configs.get_config("cat-mel_2bar_small", "z_size=16")
    checkpoints.save_config(str(tmp_path), saved)
    with pytest.raises(SystemExit, match="already holds a cat-mel_2bar_small model"):
        train.resolve_config(str(tmp_path), None, "z_size=64")
    assert train.resolve_config(str(tmp_path), None, "z_size=16") == saved
    assert train.resolve_config(str(tmp_path), None, "") == saved


def test_a_missing_split_is_a_file_not_found_error(monkeypatch):
    """So `hmvae evaluate` on a build without test windows says so in one line (the CLI prints
    FileNotFoundError without a traceback) and training without validation windows goes on."""
    import types

    import tensorflow_datasets as tfds

    from hmvae_tf import data

    prepared = types.SimpleNamespace(is_prepared=lambda: True,
                                     info=types.SimpleNamespace(splits={"train": None}))
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: prepared)
    with pytest.raises(FileNotFoundError, match=r"ds/x has no split 'test'; it has \['train'\]"):
        data.load_tokens("ds/x", "test")


def test_every_help_answers_without_loading_tensorflow():
    """`hmvae <command> --help` must not pay TensorFlow's import (about 10 s here): every
    command's flags are built from modules that load no TensorFlow runtime."""
    script = textwrap.dedent("""
        import contextlib, io, sys
        from hmvae_tf import cli
        for command in cli.COMMANDS:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    cli.main([command, "--help"])
                except SystemExit as done:
                    assert done.code == 0, (command, done.code)
            assert "--" in out.getvalue(), command
            loaded = [m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.python")]
            assert not loaded, (command, loaded[:3])
        print("ok", len(cli.COMMANDS))
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["ok", "11"]
