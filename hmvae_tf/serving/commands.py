"""`hmvae sample` and `hmvae interpolate`: MIDI files from a served or a local SavedModel.

    hmvae sample --server=localhost:8500 --model=mel_2bar -n 4 --temperature=0.5 --seed=0 --out=out/
    hmvae interpolate a.mid b.mid --server=localhost:8500 --model=mel_2bar --steps=8 --out=out/
    hmvae sample --saved_model=saved_models/mel_2bar/1 -n 4 --out=out/        # no server
"""
from __future__ import annotations

import argparse
import os

from hmvae_tf import arg_types
from hmvae_tf.cli import CommandError
from hmvae_tf.configs import STEPS_PER_BAR
from hmvae_tf.progress import Progress
from hmvae_tf.serving import model_args


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae sample` or `hmvae interpolate` (`command`)."""
    if command == "sample":
        parser.description = (
            "Sample new sequences from the model's prior and write one MIDI file each to --out, "
            "named after the model, temperature, seed and tempo so that another run does not "
            "overwrite them. The model runs on a gRPC server (TF Serving or hmvae serve) or in "
            "this process from a SavedModel; the same seed gives the same music on either.")
    else:
        parser.description = (
            "Interpolate between two MIDI files: encode a window of each, decode --steps points "
            "along the spherical interpolation between their latent means (the first and last "
            "are reconstructions of the inputs) and write one MIDI file per step plus one file "
            "with all steps in a row. Every file is written at a.mid's tempo, meter and "
            "instruments: in its meter (2/4, 2/2 ... when its window's bars line up with the "
            "window, else 4/4), at its window's tempi, tempo changes included, and with the "
            "programs of the parts read from it (a melody's; a trio's melody and bass), so its "
            "reconstruction shows the input's bars and plays as the input does. A drum model "
            "reads every drum part of a file (MIDI channel 10; hits outside its 9 drum classes "
            "are left out and counted), a trio model a melody (programs 0-31), a bass (32-39) "
            "and the drums; outputs have their drums on channel 10.")
        parser.add_argument("midi_a", help="start MIDI file")
        parser.add_argument("midi_b", help="end MIDI file")
    from hmvae_tf.cli import examples

    parser.epilog = (examples(
        "hmvae sample --server=localhost:8500 --model=mel_16bar -n 4 --temperature=0.5 "
        "--out=out/",
        "hmvae sample --saved_model=saved_models/mel_2bar -n 4 --seed=7 --out=out/")
        if command == "sample" else examples(
        "hmvae interpolate a.mid b.mid --server=localhost:8500 --model=mel_2bar --steps=8 "
        "--out=out/",
        "hmvae interpolate a.mid b.mid --saved_model=saved_models/mel_2bar --window=0,2 "
        "--out=out/",
        "hmvae interpolate a.mid b.mid --saved_model=saved_models/mel_2bar --bar=9,1 "
        "--out=out/"))
    model_args.add_model_arguments(parser)
    g = parser.add_argument_group("generation")
    if command == "sample":
        g.add_argument("-n", "--num_outputs", dest="n", type=arg_types.int_at_least(1), default=4,
                       help="number of sequences")
    else:
        g.add_argument("--steps", "--num_outputs", dest="steps", type=arg_types.int_at_least(2),
                       default=8,
                       help="number of interpolation points, endpoints included")
        where = g.add_mutually_exclusive_group()
        where.add_argument("--window", type=arg_types.per_input(0), default=(0, 0),
                           help="which window with notes of each input to use (1-bar hop; "
                           "windows without notes are not counted, so one may start on empty "
                           "bars: the input's line says so): N for both, or A,B for the first "
                           "and the second input (default: 0)")
        where.add_argument("--bar", type=arg_types.per_input(0), default=(None, None),
                           help=arg_types.BAR_HELP + ": N for both, or A,B")
        g.add_argument("--instrument", type=arg_types.per_input(0), default=(None, None),
                       help="melody models: take each input's line from this instrument, "
                       + arg_types.INSTRUMENT_NUMBER + ": N for both, or A,B; default: "
                       + arg_types.MELODY_PART_RULE)
        g.add_argument("--no_octave_shift", action="store_true",
                       help=arg_types.NO_OCTAVE_SHIFT_HELP + "; between two inputs in "
                       "different registers the steps walk from one register to the other")
    g.add_argument("--temperature", type=arg_types.non_negative_float, default=0.5,
                   help=arg_types.TEMPERATURE_HELP)
    g.add_argument("--seed", type=arg_types.seed, default=0, help=arg_types.SEED_HELP)
    g.add_argument("--qpm", type=arg_types.qpm, default=None,
                   help="tempo of the written MIDI files (quarter notes per minute); default: "
                   + ("120" if command == "sample" else
                      "the first input's tempi in its window, tempo changes included (120 if "
                      "the file sets none); given: that one tempo throughout")
                   + ("; a tempo" if command == "sample" else "; a first tempo")
                   + " other than 120 is in the file names (_q90)")
    g.add_argument("--out", default="out", help="output directory (created if missing)")


def run(args: argparse.Namespace) -> int:
    """`hmvae sample` / `hmvae interpolate`: MIDI files in --out; exit status."""
    from hmvae_tf.serving.client import ClientError

    for path in getattr(args, "midi_a", None), getattr(args, "midi_b", None):
        if path is not None and not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
    model_args.check_model_arguments(args, out=args.out)
    client = model_args.connect(args)
    try:
        with client:
            if args.command == "sample":
                return _sample(client, args)
            return _interpolate(client, args)
    except ClientError as err:
        raise CommandError(str(err))
    except OSError as err:  # writing the MIDI files
        raise CommandError(f"cannot write to --out={args.out}: {err.strerror or err}"
                           + (f": {err.filename}" if err.filename else ""))


def _write(rep, tokens, path: str, qpm: float, files: list, replaced: list,
           timing=None, octaves: int = 0, programs: tuple[int, ...] = ()) -> object:
    """Writes one output; with an input window's timing, in its meter and tempi (at `qpm`
    throughout when --qpm gives it: None then), moved by `octaves` and played by the input
    window's `programs` (a sample, with no input, by the representation's own)."""
    from hmvae_tf.serving import music_adapter

    ns = (rep.to_note_sequence(tokens, qpm) if timing is None
          else music_adapter.written(rep, tokens, timing, qpm, octaves, programs))
    music_adapter.write_output(ns, path, replaced)
    files.append((path, len(ns.notes)))
    return ns


def _writing(count: int) -> Progress:
    """The progress of writing `count` MIDI files (1000 take about 7 s)."""
    return Progress(count, "writing", "MIDI file")


def _of(index: int, total: int) -> str:
    """'03-of-12' for file index 2 of 12: zero-padded to the total's width, so the files of
    one call list in order."""
    width = max(2, len(str(total)))
    return f"{index + 1:0{width}d}-of-{total:0{width}d}"


def _report(client, files: list, what: str) -> None:
    bars = client.num_steps // STEPS_PER_BAR
    print(f"{client.description}: {'+'.join(client.tracks)}, {client.num_steps} steps "
          f"({bars} bars), z {client.z_size}")
    print(f"{what}; wrote {len(files)} MIDI file{'s' if len(files) > 1 else ''}:")
    width = max(len(p) for p, _ in files)
    for path, notes in files:
        print(f"  {path:<{width}}  {notes:4d} note{'' if notes == 1 else 's'}")


def _sample(client, args) -> int:
    from hmvae_tf.serving import music_adapter

    try:
        rep = music_adapter.representation_for(client.tracks)
    except ValueError as err:
        raise CommandError(str(err))
    tokens = client.sample(args.n, temperature=args.temperature, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    label = model_args.model_label(args)
    qpm = args.qpm or music_adapter.DEFAULT_QPM
    files, replaced = [], []
    with _writing(len(tokens)) as shown:
        for i, row in enumerate(tokens):
            name = (f"{label}_sample_t{args.temperature:g}_seed{args.seed}"
                    f"{music_adapter.qpm_tag(qpm)}_{_of(i, len(tokens))}.mid")
            _write(rep, row, os.path.join(args.out, name), qpm, files, replaced)
            shown.update()
    _report(client, files, f"sampled {len(tokens)} at temperature {args.temperature:g}, "
                           f"seed {args.seed}")
    music_adapter.say_replaced(replaced)
    return 0


def _interpolate(client, args) -> int:
    from hmvae_tf.serving import music_adapter

    try:
        rep = music_adapter.representation_for(client.tracks)
        for instrument in args.instrument:
            music_adapter.check_instrument(rep, instrument)
    except ValueError as err:
        raise CommandError(str(err))
    bars = client.num_steps // STEPS_PER_BAR
    ends, sources, reads, shifts, timings, programs = [], [], [], [], [], []
    inputs = list(zip((args.midi_a, args.midi_b), args.window, args.instrument, args.bar))
    for path, window, instrument, bar in inputs:
        try:
            read, octaves = music_adapter.read_input(path, rep, bars, window, instrument, bar,
                                                     octave_shift=not args.no_octave_shift)
        except (music_adapter.MidiReadError, music_adapter.UnusableInput) as err:
            raise CommandError(str(err))
        timings.append(read.timing)
        programs.append(read.programs)
        ends.append(read.tokens)
        shifts.append(octaves)
        reads.append(read)
        sources.append(f"  {path} ({read.tempo}): {read.where}")
    tokens = client.interpolate(ends[0], ends[1], num_steps=args.steps,
                                temperature=args.temperature, seed=args.seed)
    from hmvae_tf.music import register

    # Each output moved back by its own octaves: the ends by their input's move.
    moves = [-octaves for octaves in register.interpolation_octaves(*shifts, len(tokens))]
    # Written in the first input's meter and at its tempi (its window's tempo changes too)
    # unless --qpm says otherwise, so that a reconstruction plays as fast as its input, and
    # by its instruments (a trio's melody and bass programs), so a flute tune stays a flute.
    qpm = args.qpm or reads[0].qpm
    os.makedirs(args.out, exist_ok=True)
    stem = "_".join(os.path.splitext(os.path.basename(p))[0] for p in (args.midi_a, args.midi_b))
    # Everything that changes the output is in the name, so another run does not overwrite it.
    tags = [music_adapter.input_tag(window, instrument, bar)
            for _, window, instrument, bar in inputs]
    prefix = (f"{model_args.model_label(args)}_interp_{stem}_t{args.temperature:g}_seed{args.seed}"
              + (tags[0] if tags[0] == tags[1] else f"_a{tags[0]}_b{tags[1]}")
              + ("_noshift" if args.no_octave_shift else "")
              + music_adapter.qpm_tag(qpm))
    files, sequences, replaced = [], [], []
    with _writing(len(tokens)) as shown:
        for i, row in enumerate(tokens):
            name = f"{prefix}_{_of(i, len(tokens))}.mid"
            sequences.append(_write(rep, row, os.path.join(args.out, name), args.qpm, files,
                                    replaced, timing=timings[0], octaves=moves[i],
                                    programs=programs[0]))
            shown.update()
    whole = music_adapter.concatenate(sequences)
    path = os.path.join(args.out, f"{prefix}_all.mid")
    music_adapter.write_output(whole, path, replaced)
    files.append((path, len(whole.notes)))
    _report(client, files, f"interpolated {args.midi_a} -> {args.midi_b} in {args.steps} steps "
                           f"(first and last: reconstructions) at temperature "
                           f"{args.temperature:g}, seed {args.seed}, "
                           + (f"{qpm:g} qpm" if args.qpm else
                              music_adapter.tempo_hint(reads[0], args.midi_a)))
    print("inputs:", *sources, sep="\n")
    music_adapter.say_replaced(replaced)
    return 0
