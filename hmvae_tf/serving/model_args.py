"""The flags that pick a model and an output folder, shared by `hmvae sample`, `interpolate` and
`attribute`, and their checks, which run before TensorFlow or a server is touched: a mistake
in them costs a one-line error, not a model load."""
from __future__ import annotations

import argparse
import os
import re
from typing import TYPE_CHECKING

from hmvae_tf import arg_types

if TYPE_CHECKING:
    from hmvae_tf.serving.client import MusicVAEClient


# Seconds a command waits for each gRPC call: one default for every command (attribute's was
# 120 s, sample's and interpolate's 60 s, for calls of the same 64-row chunks). The flag's
# default is None, so that a --timeout given with --saved_model can be told from none.
DEFAULT_TIMEOUT = 60.0


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--server/--model/--model_version (gRPC) or --saved_model (in-process), and --timeout."""
    g = parser.add_argument_group("model: either --server with --model (gRPC, TF Serving or "
                                  "hmvae serve), or --saved_model (in-process)")
    g.add_argument("--server", default="", help="host:port of the gRPC model server")
    g.add_argument("--model", default="", help="model name on the server (as in models.config)")
    g.add_argument("--model_version", type=arg_types.version_or_label, default=None,
                   metavar="N|LABEL",
                   help="use this version instead of the newest: a number (on the server, or "
                        "under the export base given to --saved_model), or a version label "
                        "that the server's model config defines (version_labels, e.g. stable; "
                        "--server only); default: the newest")
    g.add_argument("--saved_model", default="",
                   help="SavedModel to run in this process: a version directory, e.g. "
                        "saved_models/mel_2bar/1, or an export base (its newest version)")
    g.add_argument("--timeout", type=arg_types.positive_float, default=None,
                   help="seconds to wait for each gRPC call (--server only; default: "
                        f"{DEFAULT_TIMEOUT:g})")


def check_model_arguments(args: argparse.Namespace, out: str | None = None) -> None:
    """Raises a UsageError for model flags that contradict each other and a CommandError for
    a missing model (or an --out folder that cannot hold files, if given); resolves
    args.saved_model to a version directory. Contradictions first: they cost nothing to find."""
    from hmvae_tf.cli import CommandError, UsageError
    from hmvae_tf.export_options import resolve_saved_model

    if bool(args.server) == bool(args.saved_model):
        raise UsageError("give either --server=host:port with --model=name, or "
                         "--saved_model=dir")
    if args.server and not args.model:
        raise UsageError("--server needs --model=<name> (the model's name in models.config)")
    if args.saved_model and args.model:
        raise UsageError("--model names a model on a --server; with --saved_model leave it out")
    if args.saved_model and args.timeout is not None:  # an in-process call has no deadline
        raise UsageError("--timeout applies to --server only")
    if args.saved_model and isinstance(args.model_version, str):
        raise UsageError(f"--model_version={args.model_version} is a version label, which only "
                         "a --server's model config defines; with --saved_model give a version "
                         "number")
    problem = out_dir_problem(out) if out is not None else None
    if problem:
        raise CommandError(problem)
    if args.saved_model:
        try:
            args.saved_model = resolve_saved_model(args.saved_model, args.model_version)
        except FileNotFoundError as err:
            raise CommandError(str(err)) from None


def out_dir_problem(path: str, flag: str = "--out") -> str | None:
    """Why `flag`=path (an output folder) cannot hold the output files (None if it can, or
    can be created)."""
    target = os.path.abspath(path)
    existing = target
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return (f"{flag}={path} is a file, not a directory" if existing == target
                else f"{flag}={path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{flag}={path}: cannot write in {existing} (permission denied)"
    return None


def model_label(args: argparse.Namespace) -> str:
    """The model's name for output file names: --model, or the export's folder name (the
    version directory's parent); with _v<N> when --model_version chose a version, or _<label>
    when it named a version label. The server's names (--model, a label) go into the name
    through `file_name_part`: they are any text, and a `/` in one put the files elsewhere."""
    if args.model:
        label = file_name_part(args.model)
    else:
        path = os.path.abspath(args.saved_model)
        base = os.path.basename(path)
        label = (os.path.basename(os.path.dirname(path)) or base) if base.isdigit() else base
    version = args.model_version
    if version is None:
        return label
    return (f"{label}_{file_name_part(version)}" if isinstance(version, str)
            else f"{label}_v{version}")


def file_name_part(text: str) -> str:
    """`text` with every character but letters, digits and `.+-_` replaced by `_`, so it can go
    into a file name on any system (no path separators, none of Windows' `<>:"|?*`)."""
    return re.sub(r"[^\w.+-]", "_", text)


def connect(args: argparse.Namespace) -> "MusicVAEClient":
    """The client the checked model flags name, with progress shown on stderr; says on
    stderr that an in-process model is loading (TensorFlow and the SavedModel: seconds)."""
    from hmvae_tf.cli import CommandError
    from hmvae_tf.progress import say
    from hmvae_tf.serving.client import ClientError, MusicVAEClient

    if args.saved_model:
        say(f"loading {args.saved_model} ...")
    try:
        client = MusicVAEClient.connect(server=args.server or None, model=args.model or None,
                                        saved_model=args.saved_model or None,
                                        version=args.model_version,
                                        timeout=(DEFAULT_TIMEOUT if args.timeout is None
                                                 else args.timeout))
    except (ClientError, FileNotFoundError) as err:
        raise CommandError(str(err))
    client.progress = True
    return client
