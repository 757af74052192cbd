"""`hmvae sample` and `hmvae interpolate`: MIDI files from a served or a local SavedModel.

    hmvae sample --server=localhost:8500 --model=mel_2bar -n 4 --temperature=0.5 --seed=0 --out=out/
    hmvae interpolate a.mid b.mid --server=localhost:8500 --model=mel_2bar --steps=8 --out=out/
    hmvae sample --saved_model=saved_models/mel_2bar/1 -n 4 --out=out/        # no server
"""
from __future__ import annotations

import argparse
import os
import sys

from hmvae_tf import arg_types


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "sample":
        parser.description = ("Sample new sequences from the model's prior and write one MIDI "
                              "file each.")
    else:
        parser.description = (
            "Interpolate between two MIDI files: encode a window of each, decode --steps points "
            "along the spherical interpolation between their latent means (the first and last "
            "are reconstructions of the inputs) and write one MIDI file per step plus one file "
            "with all steps in a row.")
        parser.add_argument("midi_a", help="start MIDI file")
        parser.add_argument("midi_b", help="end MIDI file")
    g = parser.add_argument_group("model: either --server with --model (gRPC, TF Serving or "
                                  "hmvae serve), or --saved_model (in-process)")
    g.add_argument("--server", default="", help="host:port of the gRPC model server")
    g.add_argument("--model", default="", help="model name on the server (as in models.config)")
    g.add_argument("--model_version", type=int, default=None,
                   help="serve this version instead of the newest")
    g.add_argument("--saved_model", default="",
                   help="SavedModel to run in this process: a version directory, e.g. "
                        "saved_models/mel_2bar/1, or an export base (its newest version)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each gRPC call")
    g = parser.add_argument_group("generation")
    if command == "sample":
        g.add_argument("-n", "--num_outputs", dest="n", type=int, default=4,
                       help="number of sequences")
    else:
        g.add_argument("--steps", "--num_outputs", dest="steps", type=int, default=8,
                       help="number of interpolation points, endpoints included")
        g.add_argument("--window", type=arg_types.int_at_least(0), default=0,
                       help="which window with notes of each input to use (1-bar hop)")
        g.add_argument("--instrument", type=arg_types.int_at_least(0), default=None,
                       help="melody models: take each input's line from this instrument "
                       "(MIDI track or channel, as printed); default: in each window the "
                       "instrument with the most notes")
    g.add_argument("--temperature", type=arg_types.non_negative_float, default=0.5,
                   help="softmax temperature; 0 = argmax (deterministic)")
    g.add_argument("--seed", type=arg_types.seed, default=0,
                   help=f"seed (0..{arg_types.MAX_SEED}): same seed, same output")
    g.add_argument("--qpm", type=arg_types.positive_float, default=120.0,
                   help="tempo of the written MIDI files")
    g.add_argument("--out", default="out", help="output directory (created if missing)")


def run(args: argparse.Namespace) -> int:
    from hmvae_tf.serving.client import ClientError, MusicVAEClient

    if bool(args.server) == bool(args.saved_model):
        return _fail("give either --server=host:port with --model=name, or --saved_model=dir")
    if args.server and not args.model:
        return _fail("--server needs --model=<name> (the model's name in models.config)")
    if args.saved_model and args.model:
        return _fail("--model names a model on a --server; with --saved_model leave it out")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return _fail(f"--out={args.out} is a file, not a directory")
    if args.saved_model:
        from hmvae_tf.evaluate import resolve_saved_model

        try:
            args.saved_model = resolve_saved_model(args.saved_model)
        except FileNotFoundError as err:
            return _fail(str(err))
    try:
        client = MusicVAEClient.connect(server=args.server or None, model=args.model or None,
                                        saved_model=args.saved_model or None,
                                        version=args.model_version, timeout=args.timeout)
    except ClientError as err:
        return _fail(str(err))
    try:
        with client:
            if args.command == "sample":
                return _sample(client, args)
            return _interpolate(client, args)
    except ClientError as err:
        return _fail(str(err))


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _model_label(args) -> str:
    if args.model:
        return args.model
    path = os.path.normpath(args.saved_model)
    base = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) or base if base.isdigit() else base


def _write(rep, tokens, path: str, qpm: float, files: list) -> object:
    from hmvae_tf.serving import music_adapter

    ns = rep.to_note_sequence(tokens, qpm)
    music_adapter.write_midi(ns, path)
    files.append((path, len(ns.notes)))
    return ns


def _of(index: int, total: int) -> str:
    """'03-of-12' for file index 2 of 12: zero-padded to the total's width, so the files of
    one call list in order."""
    width = max(2, len(str(total)))
    return f"{index + 1:0{width}d}-of-{total:0{width}d}"


def _report(client, files: list, what: str) -> None:
    bars = client.num_steps // 16
    print(f"{client.description}: {'+'.join(client.tracks)}, {client.num_steps} steps "
          f"({bars} bars), z {client.z_size}")
    print(f"{what}; wrote {len(files)} MIDI file{'s' if len(files) > 1 else ''}:")
    width = max(len(p) for p, _ in files)
    for path, notes in files:
        print(f"  {path:<{width}}  {notes:4d} notes")


def _sample(client, args) -> int:
    from hmvae_tf.serving import music_adapter

    if args.n < 1:
        return _fail("-n must be >= 1")
    try:
        rep = music_adapter.representation_for(client.tracks)
    except ValueError as err:
        return _fail(str(err))
    tokens = client.sample(args.n, temperature=args.temperature, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    label = _model_label(args)
    files = []
    for i, row in enumerate(tokens):
        name = f"{label}_sample_t{args.temperature:g}_seed{args.seed}_{_of(i, len(tokens))}.mid"
        _write(rep, row, os.path.join(args.out, name), args.qpm, files)
    _report(client, files, f"sampled {len(tokens)} at temperature {args.temperature:g}, "
                           f"seed {args.seed}")
    return 0


def _interpolate(client, args) -> int:
    from hmvae_tf.serving import music_adapter

    if args.steps < 2:
        return _fail("--steps must be >= 2")
    try:
        rep = music_adapter.representation_for(client.tracks)
        music_adapter.check_instrument(rep, args.instrument)
    except ValueError as err:
        return _fail(str(err))
    bars = client.num_steps // 16
    ends, sources = [], []
    for path in (args.midi_a, args.midi_b):
        if not os.path.isfile(path):
            return _fail(f"{path}: no such file")
        try:
            tokens, where = music_adapter.read_window(path, rep, bars, args.window,
                                                      args.instrument)
            ends.append(tokens)
            sources.append(f"  {path}: {where}")
        except ValueError as err:
            what = "melody" if rep.tracks == ("melody",) else "+".join(rep.tracks)
            reason = str(err).removeprefix(f"{path}: ")  # the window finder names the file too
            return _fail(f"{path}: no usable {what} for a {bars}-bar model: {reason}")
    tokens = client.interpolate(ends[0], ends[1], num_steps=args.steps,
                                temperature=args.temperature, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    stem = "_".join(os.path.splitext(os.path.basename(p))[0] for p in (args.midi_a, args.midi_b))
    # Everything that changes the output is in the name, so another run does not overwrite it.
    prefix = (f"{_model_label(args)}_interp_{stem}_t{args.temperature:g}_seed{args.seed}"
              + music_adapter.input_tag(args.window, args.instrument))
    files, sequences = [], []
    for i, row in enumerate(tokens):
        name = f"{prefix}_{_of(i, len(tokens))}.mid"
        sequences.append(_write(rep, row, os.path.join(args.out, name), args.qpm, files))
    whole = music_adapter.concatenate(sequences)
    path = os.path.join(args.out, f"{prefix}_all.mid")
    music_adapter.write_midi(whole, path)
    files.append((path, len(whole.notes)))
    _report(client, files, f"interpolated {args.midi_a} -> {args.midi_b} in {args.steps} steps "
                           f"(first and last: reconstructions) at temperature "
                           f"{args.temperature:g}, seed {args.seed}")
    print("inputs:", *sources, sep="\n")
    return 0
