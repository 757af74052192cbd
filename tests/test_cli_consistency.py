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


def servable_page(tmp_path):
    """A web root and a models folder that `hmvae web --no_build` would serve."""
    page, models = tmp_path / "page", tmp_path / "models"
    (page / "build").mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    (page / "build" / "app.js").write_text("")
    models.mkdir()
    (models / "index.json").write_text('{"models": []}')
    return page, models


@pytest.mark.parametrize("host, message", [
    ("127.0.0.1", "choose another --port (0 picks a free one)"),  # the port is in use
    ("192.0.2.1", "--host must name this machine"),  # TEST-NET: no machine's address
])
def test_web_cannot_listen_in_one_line(tmp_path, capsys, host, message):
    """A port in use or an address not on this machine used to end in a traceback."""
    import socket

    page, models = servable_page(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["web", f"--web_root={page}", f"--models={models}", "--saved_models=",
                         "--no_build", f"--host={host}", f"--port={port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hmvae web: error: cannot listen on {host}:{port}: ")
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("models, what", [
    ("typo", "does not exist"), ("empty", "has no index.json"), ("file", "is not a folder")])
def test_web_without_a_models_list_stops_in_one_line(tmp_path, capsys, monkeypatch, models,
                                                     what):
    """A mistyped or empty --models used to serve a page that could only say "no model list"
    (with a warning on the terminal the user may not have read)."""
    from hmvae_tf import web

    class Unserved:
        """The port is taken first (a port in use is said at once), but never served."""
        server_address = ("127.0.0.1", 0)
        closed = False

        def serve_forever(self):
            pytest.fail("served a page without a model list")

        def server_close(self):
            Unserved.closed = True

    monkeypatch.setattr(web, "make_server", lambda *_, **__: Unserved())
    page, _ = servable_page(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    assert cli.main(["web", f"--web_root={page}", f"--models={tmp_path / models}",
                     "--saved_models=", "--no_build", "--port=0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hmvae web: error: the models folder {tmp_path / models} {what}, ")
    assert "`hmvae tfjs --saved_model=<export> --out=" in err and err.count("\n") == 1, err
    assert Unserved.closed  # the port is let go


def test_web_says_a_port_in_use_before_building_and_converting(tmp_path, capsys, monkeypatch):
    """The port used to be taken only after the page was built and the saved models converted
    (minutes), so a port in use was said only then."""
    import socket

    from hmvae_tf import web

    def prepare(*_, **__):
        pytest.fail("built and converted before taking the port")

    monkeypatch.setattr(web, "prepare", prepare)
    page, models = servable_page(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["web", f"--web_root={page}", f"--models={models}",
                         f"--port={port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hmvae web: error: cannot listen on 127.0.0.1:{port}: "), err


# --- every command's flags, read from the parsers themselves ---------------------------------
def command_parsers():
    """(command, its argparse parser) for every `hmvae` command."""
    import argparse

    for name in cli.COMMANDS:
        parser = cli.build_parser([name])
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        yield name, subs.choices[name]


def flags(parser):
    """The parser's options (not --help or --version), with the group each belongs to."""
    import argparse

    for group in parser._action_groups:
        for action in group._group_actions:
            if action.option_strings and not isinstance(
                    action, (argparse._HelpAction, argparse._VersionAction)):
                yield group, action


def shown_help(parser, action) -> str:
    """The help text as `--help` prints it (the formatter adds "(default: X)")."""
    return parser.formatter_class(parser.prog)._get_help_string(action) or ""


def test_every_flag_says_its_default():
    """A flag whose help does not say what happens without it leaves the user guessing. Exempt:
    required flags, on/off switches, and the flags of an either-or choice (the model)."""
    import argparse

    silent = []
    for command, parser in command_parsers():
        exclusive = {a for g in parser._mutually_exclusive_groups for a in g._group_actions}
        for group, action in flags(parser):
            if (action.required or action in exclusive or isinstance(
                    action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
                    or (group.title or "").startswith("model: either")):
                continue
            text = shown_help(parser, action).lower()
            if "default" not in text and "required" not in text:
                silent.append(f"{command} {action.option_strings[0]}")
    assert not silent, silent


def test_no_flag_says_its_default_twice():
    """`hmvae train --help` said "--wait_for_workers ... (default 0: no limit) ... (default:
    0)": a help text that names its default itself must keep the formatter from adding one."""
    import re

    twice = [f"{command} {action.option_strings[0]}"
             for command, parser in command_parsers() for _, action in flags(parser)
             if re.search(r"\bdefault\b", action.help or "", re.IGNORECASE)
             and shown_help(parser, action).endswith("(default: %(default)s)")]
    assert not twice, twice


def test_a_help_that_says_default_in_capitals_gets_no_second_one():
    """The formatter left out its "(default: ...)" only for a help saying "default:" in lower
    case; "Default: 5." at a sentence's start got a second one."""
    import argparse

    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    parser.add_argument("--every", type=int, default=5, help="steps between saves. Default: 5.")
    parser.add_argument("--other", type=int, default=7, help="steps between looks")
    text = " ".join(parser.format_help().split())
    assert "Default: 5. (default: 5)" not in text and "Default: 5." in text
    assert "steps between looks (default: 7)" in text  # others still get theirs


def test_no_flag_shows_a_default_that_says_nothing():
    """`hmvae interpolate --help` said "--bar ... (default: (None, None))", every on/off
    flag "(default: False)", and evaluate's --model_dir and --saved_model and card's --compare,
    repeatable flags, "(default: [])": noise the formatter now leaves out, as it does a None
    default."""
    noisy = [f"{command} {action.option_strings[0]}"
             for command, parser in command_parsers() for _, action in flags(parser)
             if (action.nargs == 0 or action.default in ((None, None), []))
             and "(default: %(default)s)" in shown_help(parser, action)]
    assert not noisy, noisy
    shown = [shown_help(parser, action) for command, parser in command_parsers()
             for _, action in flags(parser) if command == "serve"]
    assert any(text.endswith("(default: %(default)s)") for text in shown)  # others still do


def test_no_help_shows_none_for_a_default():
    """train's --checkpoint_every, --eval_batches and --dtype_policy default to None, which
    means "the run before's, else N": the help must say that in words. The formatter leaves a
    None default out, but a help text that spelled out %(default)s, or a formatter that stopped
    leaving None out, would print "(default: None)", which tells the user nothing. Read in
    every command's --help as printed, so no path to it is missed."""
    import re

    from hmvae_tf import run_settings

    shown = {command: parser.format_help() for command, parser in command_parsers()}
    noisy = {command: re.findall(r".{0,40}\bNone\b.{0,10}", " ".join(text.split()))
             for command, text in shown.items()}
    assert not {command: hits for command, hits in noisy.items() if hits}, noisy
    train = dict(command_parsers())["train"]
    helps = {action.option_strings[0]: shown_help(train, action) for _, action in flags(train)}
    for key, default in run_settings.COMMAND_DEFAULTS.items():
        text = helps[f"--{key}"]
        assert "last run" in text and text.endswith(f"else {default}"), (key, text)


# The flags several commands share: the same type, default and help text in each, except
# where the command's purpose differs (listed with the reason).
SHARED = ("--seed", "--temperature", "--qpm", "--timeout", "--model_version", "--data_dir",
          "--dataset", "--batch_size", "--saved_model", "--out", "--max_windows")
DIFFERENCES = {
    # attribute's reconstruction is decoded at argmax; sampling and interpolation sample
    ("attribute", "--temperature", "default"),
    # train's seed is the run's (none: a resumed model's first, else drawn); the others seed
    # outputs, reproducibly
    ("train", "--seed", "default"),
    # the tempo of one input versus the first of two, versus none (sample)
    ("sample", "--qpm", "help"), ("attribute", "--qpm", "help"),
    ("interpolate", "--qpm", "help"),
    # --out is an output folder of MIDI files, a bundle (tfjs) or the demo's tree
    ("tfjs", "--out", "default"), ("tfjs", "--out", "help"),
    ("demo", "--out", "default"), ("demo", "--out", "help"),
    # attribute --compute reads training windows (20,000); evaluate and card test windows
    ("attribute", "--max_windows", "default"), ("attribute", "--max_windows", "help"),
    ("card", "--max_windows", "help"),
    # one model (sample, interpolate, attribute, tfjs) or a repeatable list (evaluate)
    ("evaluate", "--saved_model", "default"), ("evaluate", "--saved_model", "help"),
    ("tfjs", "--saved_model", "help"),
    # the (here: ...) that says what the seed or temperature chooses in that command
    ("evaluate", "--seed", "help"), ("card", "--seed", "help"), ("attribute", "--seed", "help"),
    ("train", "--seed", "help"), ("card", "--temperature", "help"),
    # card's is a number under --export_base: a version label is a server's
    ("card", "--model_version", "type"), ("card", "--model_version", "help"),
    # train reads the newest dataset version of its data_dir: said there
    ("train", "--data_dir", "help"), ("train", "--dataset", "help"),
}


def test_shared_flags_read_the_same_in_every_command():
    seen = {}
    for command, parser in command_parsers():
        for _, action in flags(parser):
            flag = next((f for f in action.option_strings if f in SHARED), None)
            if flag:
                seen.setdefault(flag, []).append((command, action))
    assert seen.keys() == set(SHARED)
    mismatches = []
    for flag, uses in seen.items():
        first_command, first = uses[0]
        for command, action in uses[1:]:
            for what, value in (("type", lambda a: getattr(a.type, "__qualname__", a.type)),
                                ("default", lambda a: a.default),
                                ("help", lambda a: a.help)):
                if value(action) != value(first) and (command, flag, what) not in DIFFERENCES \
                        and (first_command, flag, what) not in DIFFERENCES:
                    mismatches.append(f"{flag} {what}: {first_command} {value(first)!r}, "
                                      f"{command} {value(action)!r}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--model_dir=d", "--seed=-1"],  # numpy's seeding raised a traceback
    ["card", "--export_base=e", "--seed=2147483648"],  # past int32: the samples' seeds failed
    ["train", "--config=cat-mel_2bar_small", "--model_dir=d", "--seed=-3"],
    ["evaluate", "--model_dir=d", "--step=-1"],
    ["card", "--export_base=e", "--attribute_windows=0"],
    # 0 measured nothing, and the card then failed with a KeyError traceback at the end
    ["card", "--export_base=e", "--attribute_test_windows=0"],
])
def test_seeds_and_counts_are_checked_where_typed(argv, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"hmvae {argv[0]}: error: argument ")


def test_every_flag_takes_the_name_equals_value_spelling(tmp_path):
    """DESIGN.md writes every flag as --name=value: argparse takes that for all long options;
    a short option (-n) has its long twin (--num_outputs=4)."""
    for command, parser in command_parsers():
        for _, action in flags(parser):
            assert any(f.startswith("--") for f in action.option_strings), \
                (command, action.option_strings)


def example_lines(parser) -> list[list[str]]:
    """The `hmvae ...` example command lines of a command's --help, as argv lists."""
    import shlex

    text = (parser.description or "") + "\n" + (parser.epilog or "")
    return [[word.strip("[]") for word in shlex.split(line.split("#")[0])[1:]]  # [optional]
            for line in text.splitlines() if line.strip().startswith("hmvae ")]


def test_every_help_has_a_description_and_examples_that_parse():
    """The one-line summary of `hmvae --help` was all that train, evaluate, export, card,
    tfjs, web and demo said of themselves, and only serve showed an example."""
    for command, parser in command_parsers():
        summary = cli.COMMANDS[command][1]
        assert parser.description and parser.description != summary, command
        assert len(parser.description) > 150, command  # a paragraph, not the summary again
        examples = example_lines(parser)
        assert examples, command
        for argv in examples:
            assert argv[0] == command, (command, argv)
            cli.build_parser(argv).parse_args(argv)  # a renamed flag ends here (exit 2)
    text = dict(command_parsers())["card"].format_help()
    assert "\n  hmvae card --summary=saved_models" in text  # examples kept as written


def test_card_takes_model_version_as_the_model_commands_do(capsys):
    """sample, interpolate and attribute choose a version under an export base with
    --model_version; card knew only --version (an unrecognized argument, exit 2)."""
    assert cli.main(["card", "--export_base=saved_models/mel_16bar", "--model_version=7"]) == 1
    assert "has no version 7; it has 1, 2" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    # gRPC listened on 4464 (70000 - 65536) without a word.
    (["serve", "--port=70000", "--model_base_path=m"], "--port: a port is 0..65535, not 70000"),
    (["web", "--port=65536"], "--port: a port is 0..65535"),
    (["web", "--port=-1"], "--port: must be >= 0"),
    (["demo", "--port=99999"], "--port: a port is 0..65535"),
    # The demo built, then failed in `tfds build` on HMVAE_TFDS_MAX_PIECES=-5.
    (["demo", "--pieces=-5"], "--pieces: must be >= 1"),
    (["demo", "--train_steps=0"], "--train_steps: must be >= 1"),
    # A server with no request threads failed only after loading every model.
    (["serve", "--grpc_max_threads=0", "--model_base_path=m"], "--grpc_max_threads: must be >= 1"),
])
def test_ports_and_counts_of_the_servers_and_demo_are_checked_where_typed(argv, message,
                                                                           capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_an_abbreviated_flag_is_refused(capsys):
    """argparse took `--temp` for --temperature (absl takes no abbreviation), so a script's
    abbreviation would change meaning, or stop working, once another flag shared its start."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["sample", "--saved_model=unused", "--temp=0.9"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --temp=0.9" in capsys.readouterr().err


def test_instrument_help_says_how_the_melody_line_is_chosen():
    """--instrument's help said "the instrument with the most notes", leaving out that a
    2-bar model prefers programs 0-31 (a piano part over a busier flute line), never takes
    drums, and keeps the highest of simultaneous notes: a musician asking which track becomes
    the melody got half of the rule (tests/test_music_melody.py checks the rule itself)."""
    from hmvae_tf import arg_types

    helps = {command: action.help for command, parser in command_parsers()
             if command in ("interpolate", "attribute")
             for _, action in flags(parser) if "--instrument" in action.option_strings}
    assert helps.keys() == {"interpolate", "attribute"}
    for help_text in helps.values():
        assert help_text.endswith("default: " + arg_types.MELODY_PART_RULE)
        assert "programs 0-31" in help_text and "drums never" in help_text


def test_interpolate_help_says_what_drum_and_trio_models_read_and_write():
    """A user bringing drum or trio MIDI learned only from an error which parts those models
    read (channel 10; trio programs 0-31 / 32-39), and nowhere how the outputs are written."""
    from hmvae_tf.music import drums, melody, trio

    description = dict(command_parsers())["interpolate"].description
    assert f"channel {drums.DRUM_CHANNEL_INSTRUMENT + 1}" in description
    assert f"{len(drums.DRUM_CLASS_NAMES)} drum classes" in description
    assert (f"melody (programs {melody.MELODY_PROGRAMS[0]}-{melody.MELODY_PROGRAMS[-1]}), a bass "
            f"({melody.BASS_PROGRAMS[0]}-{melody.BASS_PROGRAMS[-1]})") in description
    # Outputs take a.mid's programs (a trio's melody and bass too), not trio's defaults.
    assert "written at a.mid's tempo, meter and instruments" in description
    assert f"program {trio.MELODY_PROGRAM}" not in description
