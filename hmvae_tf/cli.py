"""The `hmvae` command: parses the sub-command and hands it to the module that does the work.

Each command module defines `add_arguments(parser, command)` and `run(args) -> int`; modules are
imported only when their command runs, so `hmvae --help` and the light client commands do
not pay for importing the training stack.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from collections.abc import MutableMapping

from hmvae_tf import quiet_startup, stop_signals
from hmvae_tf.configs import ConfigError


class CommandError(Exception):
    """A mistake the user can put right, said in one line: `hmvae <command>: error: <what>`,
    exit status 1: the command line is fine, but the work cannot be done (a missing file or
    model, a server that does not answer, a full disk)."""


class UsageError(CommandError):
    """A command line that cannot work whatever is on disk: flags that exclude each other, or
    a flag without the one it needs. One line, and exit status 2, as argparse's own usage
    errors (an unknown flag, a bad number, two flags of a mutually exclusive group)."""


# Exit statuses of every command: 0 done; 1 the work failed (CommandError, a missing file, a
# full disk); 2 the command line is wrong (argparse's errors, UsageError, ConfigError); 130
# after Ctrl-C and 143 after SIGTERM (stop_signals).
RUNTIME_ERROR, USAGE_ERROR = 1, 2

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("hmvae_tf.train", "train a MusicVAE config on a TFDS dataset (resumable)"),
    "evaluate": ("hmvae_tf.evaluate", "reconstruction accuracy (teacher-forced and sampled), KL, interpolation smoothness"),
    "export": ("hmvae_tf.export_options", "write a versioned SavedModel with the serving signatures"),
    "serve": ("hmvae_tf.serving.server", "serve SavedModels over TF Serving's gRPC API"),
    "sample": ("hmvae_tf.serving.commands", "sample new music to MIDI files"),
    "interpolate": ("hmvae_tf.serving.commands", "interpolate between two MIDI files"),
    "attribute": ("hmvae_tf.attributes", "shift music along a latent attribute vector (note "
                  "density, pitch); --compute builds the vectors"),
    "card": ("hmvae_tf.model_card", "measure an exported model on its test split (or "
             "--split) and write its model card, figures, examples and attribute vectors"),
    "tfjs": ("hmvae_tf.tfjs", "convert a SavedModel into TF.js graph models for the browser"),
    "web": ("hmvae_tf.web", "serve the browser demo page"),
    "demo": ("hmvae_tf.demo", "the whole chain on the embedded corpus: shipped models, then "
             "build, train, export, serve, sample and interpolate"),
}

# Environment a command sets for itself before TensorFlow is imported, unless the user set it.
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX
# features. On an AVX2 CPU (the 2-core Zen 3 of the project's first stops) training runs
# 1.16-1.3x faster with them, while the small products of sampling loops run slower, so only
# training asks for them (bench/README.md). TF_ENABLE_ONEDNN_OPTS=0 in the environment still
# wins.
COMMAND_ENV: dict[str, dict[str, str]] = {
    "train": {"TF_ENABLE_ONEDNN_OPTS": "1"},
}


# Errors of the file system a user fixes (room, permissions), shown as one line, not a traceback.
_USER_FIXABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                        errno.EISDIR, errno.ENOTDIR}

# Commands that handle SIGTERM themselves: train saves a checkpoint first (train.run, once the
# strategy has started: a multi-worker worker blocked in TensorFlow's start-up must stay
# killable, and one waiting for its peers gives up through worker_rendezvous); serve stops
# its server.
OWN_SIGTERM = {"train", "serve"}


def apply_command_env(command: str | None,
                      environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets COMMAND_ENV[command] in `environ` where it is not set yet."""
    for name, value in COMMAND_ENV.get(command, {}).items():
        environ.setdefault(name, value)


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first argument that is not a flag)."""
    return next((a for a in argv if not a.startswith("-")), None)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where it says something: not an empty or None default (or a
    pair of Nones, --bar=A,B's, or a repeatable flag's empty list), which means "see the help
    text" (it says what happens then),
    not an on/off flag's False, and not twice. In a description or epilog, paragraphs are
    wrapped and indented lines (examples) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            "\n".join(indent + line for line in block.splitlines()) if block.startswith("  ")
            else super(HelpFormatter, self)._fill_text(block, width, indent)
            for block in text.split("\n\n"))

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if (default in ("", None, []) or "default:" in (action.help or "").lower()
                or (isinstance(default, tuple) and all(d is None for d in default))
                or (isinstance(default, bool) and action.nargs == 0)):
            return action.help or ""
        return super()._get_help_string(action)


def examples(*lines: str) -> str:
    """An epilog of example command lines, kept as written by HelpFormatter."""
    return "examples:\n\n" + "\n".join("  " + line for line in lines)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The full parser; only the chosen command's module is imported to add its flags."""
    parser = argparse.ArgumentParser(
        prog="hmvae",
        description="MusicVAE in TensorFlow 2 / Keras: train, evaluate, export, serve, sample "
        "and interpolate. Run `hmvae <command> --help` for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    chosen = chosen_command(argv)
    for name, (module_name, help_text) in COMMANDS.items():
        # No abbreviations (absl has none): `--temp` in a script must not come to mean another
        # flag once a second one starts with it.
        sub_parser = sub.add_parser(
            name, help=help_text, description=help_text,
            formatter_class=HelpFormatter, allow_abbrev=False)
        sub_parser.set_defaults(_module=module_name)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub_parser, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `hmvae` entry point: runs one command, returns its exit status."""
    quiet_startup.install()
    argv = sys.argv[1:] if argv is None else argv
    apply_command_env(chosen_command(argv))
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        with (stop_signals.sigterm_as_interrupt() if args.command not in OWN_SIGTERM
              else contextlib.nullcontext()):
            return int(module.run(args) or 0)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (stop_signals.Terminated)
        terminated = isinstance(stop, stop_signals.Terminated)
        print("terminated (SIGTERM)" if terminated else "interrupted", file=sys.stderr)
        return stop_signals.exit_status(stop)
    except CommandError as err:
        print(f"hmvae {args.command}: error: {err}", file=sys.stderr)
        return USAGE_ERROR if isinstance(err, UsageError) else RUNTIME_ERROR
    except ConfigError as err:  # an unknown --config or a bad --hparams value: usage
        print(f"hmvae {args.command}: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as err:
        # A missing dataset, model directory, checkpoint or SavedModel, an export version that
        # exists, a full disk, a read-only or forbidden folder: the user's to fix, and the one
        # line that says which file is all they need, not a traceback.
        if not isinstance(err, (FileNotFoundError, FileExistsError)) \
                and err.errno not in _USER_FIXABLE_ERRNOS:
            raise
        print(f"hmvae {args.command}: error: {err.strerror or err}"
              + (f": {err.filename}" if err.filename else ""), file=sys.stderr)
        return RUNTIME_ERROR

if __name__ == "__main__":
    # `python -m hmvae_tf.cli` runs this file as __main__, a second copy of the module: the
    # commands raise hmvae_tf.cli.CommandError, which only the package's own main() catches.
    from hmvae_tf.cli import main as package_main

    sys.exit(package_main())
