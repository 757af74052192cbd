"""The same kind of mistake ends the same way in every command: 1 when the command line is
right but the work cannot be done (a missing model), 2 when the command line itself is wrong
(flags that exclude each other), in one line on stderr and nothing on stdout."""
import pytest

from hmvae_tf import cli

MISSING = "no/such/model"


@pytest.mark.parametrize("argv", [
    ["sample", f"--saved_model={MISSING}"],
    ["attribute", "--compute", f"--saved_model={MISSING}"],
    # evaluate and card said exit status 2 for the same missing model.
    ["evaluate", f"--saved_model={MISSING}"],
    ["evaluate", f"--model_dir={MISSING}"],
    ["card", f"--export_base={MISSING}"],
    ["export", f"--model_dir={MISSING}", "--export_base=unused"],
    ["tfjs", f"--saved_model={MISSING}", "--out=unused"],
])
def test_a_missing_model_is_a_runtime_error_in_every_command(argv, capsys):
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].startswith(f"hmvae {argv[0]}: error: ") and MISSING in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["sample", f"--saved_model={MISSING}", "--server=localhost:8500", "--model=m"],
     "give either --server"),
    (["attribute", "--saved_model=x"], "give an input MIDI file"),
    (["evaluate"], "give at least one --model_dir or --saved_model"),
    (["card"], "give --export_base"),
    # These were ignored without a word.
    (["card", "--summary=saved_models", f"--export_base={MISSING}"],
     "--summary prints the metrics of the cards already written"),
    (["tfjs", "--saved_models=saved_models", "--out=unused", "--name=mine"],
     "--name is for one --saved_model"),
    (["tfjs", "--saved_models=saved_models", "--out=unused", "--index=none"],
     "--index is for one --saved_model"),
    (["tfjs", f"--saved_model={MISSING}", "--out=unused", "--force"],
     "--force is for --saved_models"),
])
def test_flags_that_exclude_each_other_are_a_usage_error_in_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"hmvae {argv[0]}: error: ")
    assert message in err and err.count("\n") == 1


def test_argparse_exclusions_have_the_same_status(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["tfjs", "--saved_model=a", "--saved_models=b", "--out=c"])
    assert done.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_web_setup_errors_read_as_every_command_s(tmp_path, capsys):
    assert cli.main(["web", f"--web_root={tmp_path}", "--saved_models=", "--port=0"]) == 1
    assert capsys.readouterr().err == (f"hmvae web: error: {tmp_path} has no index.html "
                                       "(--web_root)\n")
