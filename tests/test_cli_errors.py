"""Bad command lines end in one error line before any work, and leave nothing behind."""
import os
import subprocess
import sys
import textwrap

import pytest

from hmvae_tf import checkpoints, cli, configs, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("argv, message", [
    (["sample", "--saved_model=m", "--qpm=0"], "--qpm: must be between 4 and 1000"),
    (["sample", "--saved_model=m", "--qpm=-1"], "--qpm: must be between 4 and 1000"),
    # A MIDI tempo is 1 .. 2**24 - 1 microseconds per quarter note.
    (["sample", "--saved_model=m", "--qpm=1e-6"], "--qpm: must be between 4 and 1000"),
    (["attribute", "a.mid", "--saved_model=m", "--qpm=1e9"], "--qpm: must be between"),
    (["sample", "--saved_model=m", "-n", "0"], "-n/--num_outputs: must be >= 1"),
    (["interpolate", "a.mid", "b.mid", "--saved_model=m", "--steps=1"],
     "--steps/--num_outputs: must be >= 2"),
    (["sample", "--server=h:1", "--model=m", "--timeout=0"], "--timeout: must be > 0"),
    (["attribute", "--compute", "--saved_model=m", "--max_windows=-1"],
     "--max_windows: must be >= 0"),
    (["sample", "--saved_model=m", "--model_version=-1"], "--model_version: must be >= 0"),
    (["sample", "--server=h:1", "--model=m", "--model_version="],
     "--model_version: expected a version number or a version label"),
    (["interpolate", "a.mid", "b.mid", "--saved_model=m", "--instrument=1,2,3"],
     "--instrument: expected N or A,B"),
    (["interpolate", "a.mid", "b.mid", "--saved_model=m", "--window=0,-1"],
     "--window: must be >= 0"),
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
    # evaluate and card took these as they came: -5 windows measured 123 (a negative slice),
    # -3 pairs measured every pair, and 2 interpolation steps failed after the evaluation.
    (["evaluate", "--model_dir=d", "--max_windows=-5"], "--max_windows: must be >= 0"),
    (["evaluate", "--model_dir=d", "--interpolation_pairs=-3"],
     "--interpolation_pairs: must be >= 0"),
    (["evaluate", "--model_dir=d", "--interpolation_steps=2"],
     "--interpolation_steps: must be >= 3"),
    (["card", "--model_dir=d", "--export_base=e", "--max_windows=-1"],
     "--max_windows: must be >= 0"),
    (["card", "--model_dir=d", "--export_base=e", "--interpolation_steps=1"],
     "--interpolation_steps: must be >= 3"),
    (["card", "--model_dir=d", "--export_base=e", "--temperature=-1"],
     "--temperature: must be >= 0"),
    # TFDS takes a data_dir as given and no shell expands ~ after '=': the documented
    # --data_dir=~/tensorflow_datasets read (and `tfds build` wrote) ./~/tensorflow_datasets.
    (["train", "--config=cat-mel_2bar_small", "--model_dir=d", "--data_dir=~/tfds"],
     "--data_dir: '~/tfds': the shell does not expand ~ after '='"),
    (["evaluate", "--model_dir=d", "--data_dir=~/tfds"], "or --data_dir=$HOME/tfds"),
    (["card", "--model_dir=d", "--export_base=e", "--data_dir=~"], "--data_dir: '~': the shell"),
    (["attribute", "--compute", "--saved_model=s", "--data_dir=~/tfds"],
     "write --data_dir ~/tfds (with a space)"),
])
def test_bad_numbers_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_amounts_are_kept_once_in_order():
    from hmvae_tf import arg_types

    assert arg_types.finite_floats("0.5,-1,0.50,2") == [0.5, -1.0, 2.0]


@pytest.mark.parametrize("command", [["sample"], ["interpolate", "A", "A"], ["attribute", "A"]])
@pytest.mark.parametrize("extra, message, status", [
    (["--model=mel_16bar"], "with --saved_model leave it out", 2),  # a usage error
    # An in-process call has no deadline: the flag was ignored without a word.
    (["--timeout=5"], "error: --timeout applies to --server only", 2),
    (["--out=FILE"], "is a file, not a directory", 1),
    (["--out=FILE/sub"], "FILE is a file, not a directory", 1),
])
def test_model_commands_refuse_contradictory_flags_before_loading(command, extra, message,
                                                                   status, tmp_path, capsys):
    (tmp_path / "FILE").write_text("not a directory")
    (tmp_path / "A").write_text("an input that exists")
    argv = [*command, "--saved_model=no/such/model", *extra]
    argv = [a.replace("FILE", str(tmp_path / "FILE")).replace("A", str(tmp_path / "A"))
            if a in ("A", "--out=FILE", "--out=FILE/sub") else a for a in argv]
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert message.replace("FILE", str(tmp_path / "FILE")) in err
    assert err.startswith(f"hmvae {command[0]}: error: ")  # as every command says it
    assert err.count("\n") == 1
    assert "no savedmodel" not in err.lower()  # refused before looking for the model


def test_a_server_s_calls_wait_the_default_timeout_unless_given(tmp_path, monkeypatch):
    """--timeout's default is None, to tell it from a --timeout given with --saved_model;
    the client must still get 60 s (None would be no deadline at all)."""
    from hmvae_tf.serving import model_args
    from hmvae_tf.serving.client import ClientError, MusicVAEClient

    asked = []

    def connect(**kwargs):
        asked.append(kwargs["timeout"])
        raise ClientError("no server here")

    monkeypatch.setattr(MusicVAEClient, "connect", connect)
    for extra in [], ["--timeout=2.5"]:
        assert cli.main(["sample", "--server=h:1", "--model=m", f"--out={tmp_path}",
                         *extra]) == 1
    assert asked == [model_args.DEFAULT_TIMEOUT, 2.5]


def test_a_missing_input_is_refused_before_the_model(tmp_path, capsys):
    argv = ["interpolate", str(tmp_path / "a.mid"), str(tmp_path / "b.mid"),
            "--saved_model=no/such/model"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "a.mid: no such file" in err and "no savedmodel" not in err.lower()


def test_model_version_chooses_under_an_export_base_and_must_match_a_version_dir(capsys):
    from hmvae_tf.evaluate import resolve_saved_model

    base = os.path.join(REPO, "saved_models", "mel_16bar")
    assert resolve_saved_model(base) == os.path.join(base, "2")
    assert resolve_saved_model(base, 1) == os.path.join(base, "1")
    with pytest.raises(FileNotFoundError, match="has no version 7; it has 1, 2"):
        resolve_saved_model(base, 7)
    with pytest.raises(FileNotFoundError, match="of version 2, not 1"):
        resolve_saved_model(os.path.join(base, "2"), 1)
    assert cli.main(["sample", f"--saved_model={base}", "--model_version=7"]) == 1
    assert "has no version 7" in capsys.readouterr().err


def test_output_names_carry_the_export_name_from_a_relative_path(monkeypatch):
    from argparse import Namespace

    from hmvae_tf.serving.model_args import model_label

    monkeypatch.chdir(os.path.join(REPO, "saved_models", "mel_2bar", "1"))
    args = Namespace(model="", saved_model=".", model_version=None)
    assert model_label(args) == "mel_2bar"
    monkeypatch.chdir("..")
    assert model_label(Namespace(model="", saved_model=".", model_version=None)) == "mel_2bar"
    assert model_label(Namespace(model="", saved_model="1", model_version=1)) == "mel_2bar_v1"
    assert model_label(Namespace(model="m", saved_model="", model_version=3)) == "m_v3"
    assert model_label(Namespace(model="m", saved_model="", model_version="stable")) == "m_stable"
    # A server's names are any text; a file name takes no `/` (nor Windows' `\\:*?"<>|`).
    assert model_label(Namespace(model="a/m", saved_model="",
                                 model_version='x/y\\z:*?"<>| v1.2+rc-1')) == \
        "a_m_x_y_z" + "_" * 8 + "v1.2+rc-1"  # the 8 of `:*?"<>| `


@pytest.mark.parametrize("command", [["sample"], ["interpolate", "A", "A"], ["attribute", "A"]])
def test_a_version_label_is_refused_in_process(command, tmp_path, capsys):
    """A version label names a version in a server's model config: with --saved_model it has
    no meaning, so it is refused in one line before the model is looked for."""
    (tmp_path / "A").write_text("an input that exists")
    argv = [str(tmp_path / "A") if a == "A" else a for a in command]
    assert cli.main([*argv, "--saved_model=no/such/model", "--model_version=stable",
                     f"--out={tmp_path}"]) == 2
    assert capsys.readouterr().err == (
        f"hmvae {command[0]}: error: --model_version=stable is a version label, which only a "
        "--server's model config defines; with --saved_model give a version number\n")


@pytest.mark.parametrize("argv, message", [
    (["--config=cat-mel_3bar"], "unknown config 'cat-mel_3bar'"),
    (["--config=cat-mel_2bar_small", "--hparams=z_size=-4"], "z_size must be positive"),
    (["--config=cat-mel_2bar_small", "--hparams=batch_size=0"], "batch_size must be positive"),
    (["--config=cat-mel_2bar_small", "--hparams=z_size=abc"], "bad value 'abc'"),
    (["--config=cat-mel_2bar_small", "--hparams=bogus=3"], "unknown hparam 'bogus'"),
    (["--config=cat-mel_2bar_small", "--hparams=garbage"], "not of the form name=value"),
    (["--config=cat-mel_2bar_small", "--hparams=batch_size=16,enc_rnn_size=[32"],
     "'enc_rnn_size=[32' has unbalanced brackets"),
    (["--config=cat-mel_2bar_small", "--hparams=dec_rnn_size=[32,32"],
     "'dec_rnn_size=[32' has unbalanced brackets"),
    (["--config=cat-mel_2bar_small", "--hparams=enc_rnn_size=3 2"], "a list is written [a,b]"),
    (["--config=cat-mel_2bar_small", "--hparams=free_bits=nan"], "free_bits must be >= 0"),
    (["--config=cat-mel_2bar_small", "--hparams=max_beta=-1"], "max_beta must be >= 0"),
    (["--config=cat-mel_2bar_small", "--hparams=beta_rate=2"], "beta_rate must be in [0, 1)"),
    (["--config=cat-mel_2bar_small", "--hparams=transpose=-3"], "transpose must be >= 0"),
    (["--config=cat-mel_2bar_small", "--hparams=decay_rate=1.5"], "decay_rate must be in"),
    # A renamed config made a model whose card said `--config=mymodel` with no --hparams.
    (["--config=cat-mel_2bar_small", "--hparams=name=mymodel,z_size=16"],
     "unknown hparam 'name'"),
    (["--config=cat-mel_2bar_small", "--hparams=min_learning_rate=0.01"],
     "min_learning_rate (0.01) must not exceed learning_rate (0.001)"),
    # A flat decoder ignored these: the model trained flat without a word.
    (["--config=cat-mel_2bar_small", "--hparams=conductor_length=4"],
     "conductor_length=4 applies only to a hierarchical decoder, with a conductor "
     "(conductor_rnn_size), and cat-mel_2bar_small has a flat one"),
    (["--config=hierdec-mel_16bar", "--hparams=conductor_rnn_size=[]"],
     "makes hierdec-mel_16bar a flat decoder, which ignores its conductor_length=16: for a "
     "flat model of the same data use --config=flat-mel_16bar, or give conductor_length=0"),
    (["--config=hierdec-trio_16bar", "--hparams=conductor_rnn_size=[]"],
     "ignores its conductor_length=16: give conductor_length=0 as well"),
])
def test_bad_config_is_one_line_and_writes_no_model(argv, message, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert cli.main(["train", f"--model_dir={model_dir}", *argv]) == 2
    err = capsys.readouterr().err
    assert "hmvae train: error: " in err and message in err and "Traceback" not in err
    assert not (model_dir / checkpoints.CONFIG_FILE).exists()


def test_a_model_dir_that_is_a_file_is_one_line_naming_the_flag(tmp_path, capsys):
    """A file where --model_dir should be failed only when config.json was written, after
    the data and the model, with a bare "File exists: <path>" that named no flag."""
    afile = tmp_path / "afile"
    afile.write_text("not a model")
    for model_dir, message in (
            (afile, f"--model_dir={afile} is a file, not a directory"),
            (afile / "m", f"--model_dir={afile / 'm'}: {afile} is a file, not a directory")):
        assert cli.main(["train", "--config=cat-mel_2bar_small", f"--model_dir={model_dir}",
                         f"--data_dir={tmp_path / 'no_data'}", "--num_steps=1"]) == 1
        err = capsys.readouterr().err
        assert err == f"hmvae train: error: {message}\n"
    assert afile.read_text() == "not a model"


def test_conductor_hparams_that_change_the_decoder_on_purpose_are_kept():
    """Only the hierarchical-only hparams a flat decoder would ignore are refused."""
    flat = configs.get_config("hierdec-mel_16bar", "conductor_rnn_size=[],conductor_length=0")
    assert not flat.hierarchical and flat.conductor_length == 0
    assert configs.get_config("cat-mel_2bar_small", "conductor_length=0").conductor_length == 0
    hier = configs.get_config("cat-mel_2bar_small", "conductor_rnn_size=[32],conductor_length=2")
    assert hier.hierarchical and hier.conductor_length == 2
    for config in configs.CONFIGS.values():  # every named config still stands as it is
        assert config.override("") == config and config.override("z_size=8").z_size == 8


def test_hparams_alone_cannot_change_a_saved_model(tmp_path):
    """Resuming applies --hparams to the saved config: a change is refused, not ignored."""
    saved = configs.get_config("cat-mel_2bar_small", "z_size=16")
    checkpoints.save_config(str(tmp_path), saved)
    with pytest.raises(cli.CommandError, match="already holds a cat-mel_2bar_small model"):
        train.resolve_config(str(tmp_path), None, "z_size=64")
    assert train.resolve_config(str(tmp_path), None, "z_size=16") == saved
    assert train.resolve_config(str(tmp_path), None, "") == saved


def test_a_missing_split_is_a_file_not_found_error(monkeypatch):
    """So `hmvae evaluate` on a build without test windows says so in one line (the CLI prints
    FileNotFoundError without a traceback) and training without validation windows goes on."""
    import types

    from hmvae_tf import data

    prepared = types.SimpleNamespace(is_prepared=lambda: True,
                                     info=types.SimpleNamespace(splits={"train": None}))
    monkeypatch.setattr(data, "prepared_builder", lambda name, data_dir=None: prepared)
    with pytest.raises(FileNotFoundError, match=r"ds/x has no split 'test'; it has \['train'\]"):
        data.load_tokens("ds/x", "test")
    # `hmvae card` reads the test windows its own way: the same one-line error.
    from hmvae_tf import model_card

    with pytest.raises(FileNotFoundError, match=r"ds/x has no split 'test'.*\['train'\]"):
        model_card.read_split("ds/x", "test", None, 10, configs.get_config("cat-mel_2bar_small"))


def test_evaluate_refuses_a_missing_split_before_loading_the_model(tmp_path, monkeypatch,
                                                                   capsys):
    """`hmvae evaluate --split=validation` on a build without one loaded the model (seconds)
    before it found the split missing; the split is checked first, from the model's
    config.json and the build's info."""
    from dataset_helpers import write_mel_2bar

    from hmvae_tf import dataset_version, evaluate

    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, splits=("train", "test"))
    model_dir = tmp_path / "m"
    checkpoints.save_config(str(model_dir), configs.get_config("cat-mel_2bar_small"))
    capsys.readouterr()  # the build's progress

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate, "load_any", no_load)
    assert cli.main(["evaluate", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                     "--split=validation"]) == 1
    err = capsys.readouterr().err
    assert err == ("hmvae evaluate: error: hmvae_notesequences/mel_2bar has no split "
                   "'validation'; it has ['train', 'test']: choose one with --split\n")
    # A split the build has goes on to load the model.
    with pytest.raises(AssertionError, match="the model was loaded"):
        cli.main(["evaluate", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                  "--split=test"])


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


def test_evaluate_step_needs_a_model_dir(capsys):
    """--step with only --saved_model was ignored: the export's own step was measured."""
    assert cli.main(["evaluate", "--saved_model=no/such/model", "--step=500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hmvae evaluate: error: --step picks a --model_dir checkpoint")


def test_a_truncated_input_is_one_plain_line(tmp_path, capsys):
    """A file cut short was reported as "no usable melody for a 2-bar model: cannot read MIDI
    file ...: corrupt or unsupported (MIDIConversionError: Midi decoding error <class
    'EOFError'>: )": the file cannot be read at all, so that alone is said, and where it ends."""
    from music_helpers import write_midi

    whole = write_midi(tmp_path / "whole.mid", [(0, False, [(i, i + 1, 60 + i) for i in range(8)])])
    cut = tmp_path / "cut.mid"
    cut.write_bytes(whole.read_bytes()[:-20])
    model = f"--saved_model={os.path.join(REPO, 'saved_models', 'mel_2bar')}"
    expected = (f"error: cannot read MIDI file {cut}: it is truncated or corrupt: the file "
                "ends inside track 2 of 2")
    for argv in (["interpolate", str(whole), str(cut)], ["attribute", str(cut)]):
        assert cli.main([*argv, model, f"--out={tmp_path / 'out'}"]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == f"hmvae {argv[0]}: {expected}"
