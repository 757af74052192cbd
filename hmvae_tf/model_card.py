"""`hmvae card`: measure an exported model on its test split (or --split) and write its card.

    hmvae card --model_dir=runs/mel_2bar --export_base=saved_models/mel_2bar \
        [--data_dir=DIR] [--compare=runs/flat_16bar] [--train_flags="--seed=1"]
    hmvae card --summary=saved_models        # one markdown table of every card's metrics

For the newest version under --export_base (or --version) it measures, on the first
--max_windows windows of the test split (TFDS shuffled them when it wrote the files): teacher-
forced and sampled (temperature 0) accuracy, KL bits and reconstruction loss (as `hmvae
evaluate`); the interpolation metric over random pairs of those windows; latent attribute
vectors built from the training split and their effect on those windows; optionally the same
accuracy table for --compare models (e.g. the flat baseline of a 16-bar model). A small build
of own MIDI files may have no test split: --split=validation measures the card on another one
(the card names it throughout; --split=train is allowed, and the card says in so many words
that it measured windows the model trained on). It writes into the export base:

    MODEL_CARD.md        config and hyper-parameters, data, training steps and time, the commands
                         that reproduce the model (in new directories), the metrics, the checks
                         of issue 5, pictures
    metrics.json         every number on the card
    figures/             training_curves.png (history.csv), samples.png, reconstructions.png,
                         interpolation.png
    examples/            two windows of the measured split as MIDI (what `hmvae demo`
                         interpolates between)
    <version>/assets.extra/hmvae_attributes.json   the attribute vectors (`hmvae attribute`)

The model measured is the export (the weights that ship), not the model directory's newest
checkpoint; the model directory gives the history, the TensorBoard logs and the training time.
The new files replace the earlier card's only once all of them are written (`card_files`), so
a card that fails or is stopped halfway leaves the earlier one as it was.

metrics.json keeps the measured split's numbers under "test", as older cards wrote them, and
names the split in "split" (a card without it measured the test split).

This module measures; `card_render` turns the measurements into markdown, `reproduce` writes the
commands and `training_record` reads what the model directory kept of its training.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from hmvae_tf import arg_types, dataset_source, dataset_version
from hmvae_tf.card_files import CARD, EXAMPLES, FIGURES, METRICS, CardFiles
from hmvae_tf.card_render import render_card, summary_table
from hmvae_tf.evaluate import DEFAULT_TEST_WINDOWS
from hmvae_tf.export_options import (dtype_policy, read_metadata, reproduce_flags,
                                     resolve_saved_model)
from hmvae_tf.progress import say
from hmvae_tf.reproduce import hparams_diff, reproduce_commands
from hmvae_tf.training_record import history_upto, training_facts

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

    from hmvae_tf.configs import Config
    from hmvae_tf.evaluate import Codec
    from hmvae_tf.model.vae import MusicVAE


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae card`."""
    from hmvae_tf import attributes
    from hmvae_tf.cli import examples

    parser.description = (
        "Measure an exported model on the test split (or --split) of its dataset (accuracy, "
        "KL, interpolation smoothness, optionally against --compare baselines), build and "
        "measure its attribute vectors, draw its figures and write MODEL_CARD.md, metrics.json, "
        "figures/ and examples/ into the export base, with the commands that reproduce it.")
    parser.epilog = examples(
        "hmvae card --model_dir=runs/mel_2bar --export_base=saved_models/mel_2bar",
        "hmvae card --summary=saved_models    # every card's metrics, one table")
    parser.add_argument("--model_dir", default="",
                        help="training directory of the model (config, history.csv, logs/; "
                        "default: the one the export recorded)")
    parser.add_argument("--export_base", default="",
                        help="export base (saved_models/<name>) whose model is measured and "
                        "where the card goes (required, unless --summary)")
    # --model_version as sample, interpolate and attribute spell the choice of a version
    # under an export base; --version stays for the command lines that use it.
    parser.add_argument("--version", "--model_version", dest="version",
                        type=arg_types.int_at_least(0), default=None,
                        help="measure this version of --export_base (default: the newest)")
    parser.add_argument("--name", default="", help="model name (default: the export base's)")
    parser.add_argument("--dataset", default=None, help=arg_types.DATASET_HELP)
    parser.add_argument("--data_dir", type=arg_types.tfds_data_dir, default=None,
                        help=arg_types.DATA_DIR_HELP)
    parser.add_argument("--split", default="test",
                        help="dataset split the card measures: its quality table, "
                        "interpolation pairs, example windows and the attribute vectors' "
                        "effects (the vectors come from the training split whatever it is); "
                        "for a build without a test split, e.g. --split=validation; "
                        "--split=train measures windows the model trained on, as the card "
                        "then says")
    parser.add_argument("--max_windows", type=arg_types.int_at_least(0),
                        default=DEFAULT_TEST_WINDOWS,
                        help="windows of --split to evaluate (the first ones; 0: the whole "
                        "split)")
    parser.add_argument("--interpolation_pairs", type=arg_types.int_at_least(0), default=100,
                        help="random pairs of the evaluated windows for the interpolation "
                        "metric")
    parser.add_argument("--interpolation_steps", type=arg_types.int_at_least(3), default=11,
                        help="points per interpolation, endpoints included")
    parser.add_argument("--attribute_windows", type=arg_types.int_at_least(1), default=None,
                        help=attributes.WINDOWS_HELP
                        + "; as attribute --compute's --max_windows")
    # At least 1: the card's attribute table and density checks are of measured vectors.
    parser.add_argument("--attribute_test_windows", type=arg_types.int_at_least(1),
                        default=None,
                        help=attributes.TEST_WINDOWS_HELP + ", of the --max_windows evaluated; "
                        "as attribute --compute's --test_windows")
    parser.add_argument("--compare", action="append", default=[],
                        help="another model (training directory or export base) to evaluate "
                        "on the same windows, e.g. the flat baseline; repeatable (default: "
                        "none)")
    parser.add_argument("--samples", type=arg_types.int_at_least(1), default=4,
                        help="samples in samples.png")
    parser.add_argument("--temperature", type=arg_types.non_negative_float, default=0.5,
                        help=arg_types.TEMPERATURE_HELP + " (here: samples.png)")
    parser.add_argument("--seed", type=arg_types.seed, default=0,
                        help=arg_types.SEED_HELP + " (here: the samples and pairs)")
    parser.add_argument("--batch_size", type=arg_types.int_at_least(1), default=128,
                        help=arg_types.MEASURE_BATCH_HELP)
    parser.add_argument("--train_flags", default="",
                        help="training flags the card cannot know, for the reproduce command "
                        "(e.g. \"--strategy=mirrored\"; the seed, --dtype_policy, --jit_compile "
                        "and --eval_batches come from train_runs.jsonl; default: none)")
    parser.add_argument("--summary", default="",
                        help="instead: print one markdown table of the metrics.json of every "
                        "export base under this folder (e.g. saved_models; default: write a "
                        "card)")


# --- facts about the model and its data -----------------------------------------------------


def parameter_count(model: MusicVAE) -> int:
    """Number of weights, trainable or not, as the card reports the model's size."""
    return int(sum(int(np.prod(v.shape)) for v in model.weights))


def dataset_facts(dataset: str, data_dir: str | None) -> dict:
    """Name, version, split sizes and source of a TFDS dataset, for the card's data section:
    the prepared version the card measured (`data.require_prepared`)."""
    from hmvae_tf import data

    builder = data.require_prepared(dataset, data_dir)
    meta = dict(builder.info.metadata or {})
    return {
        "name": dataset,
        "version": str(builder.info.version),
        "code_version": dataset_version.VERSION,  # what the reproduce command's build writes
        "splits": {k: v.num_examples for k, v in builder.info.splits.items()},
        "source": meta.get("source"),
        "manual_dir": dataset_source.manual_dir(meta),
        "subset": dataset_source.subset(meta),
        "tool_versions": meta.get("tool_versions"),
        "pieces_per_split": meta.get("pieces_per_split"),
    }


def other_splits(splits: list[str]) -> str:
    """What to measure a card on instead, from the splits a build has: the held-out ones
    first; the training split only when there is no other (its numbers are not held-out
    quality, as the card then says)."""
    from hmvae_tf import data

    held_out = data.held_out_splits(splits)
    if held_out:
        return "measure it on another with " + " or ".join(f"--split={s}" for s in held_out)
    if splits:
        return ("only --split=train is left, which measures windows the model trained on "
                "(the card says so)")
    return ""


def require_measured_split(dataset: str, split: str, data_dir: str | None
                           ) -> tfds.core.DatasetBuilder:
    """The prepared dataset `hmvae evaluate` reads, or a SplitNotFoundError, naming the
    --split to give instead, when it has no such split (a small --manual_dir build may
    have no test split)."""
    from hmvae_tf import data

    return data.require_split(dataset, split, data_dir, purpose="to measure the card on",
                              remedy=other_splits)


def read_split(dataset: str, split: str, data_dir: str | None, max_windows: int,
               config: Config) -> tuple[np.ndarray, list[str], list[int]]:
    """(tokens [N, T, K], piece ids, start bars) of the first max_windows windows of a split,
    in the order `hmvae evaluate` reads them."""
    import tensorflow_datasets as tfds

    builder = require_measured_split(dataset, split, data_dir)
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False))
    ds = ds.map(lambda ex: (ex["tokens"], ex["piece_id"], ex["start_bar"]))
    if max_windows:
        ds = ds.take(max_windows)
    tokens, pieces, bars = [], [], []
    for t, p, b in tfds.as_numpy(ds.batch(1024)):
        tokens.append(t)
        pieces += [x.decode() for x in p]
        bars += b.tolist()
    tokens = np.concatenate(tokens).astype(np.int32)
    if tokens.ndim == 2:
        tokens = tokens[..., None]
    if tokens.shape[1:] != (config.num_steps, len(config.tracks)):
        raise ValueError(f"{dataset} windows are {tokens.shape[1:]}, the model takes "
                         f"{(config.num_steps, len(config.tracks))}")
    return tokens, pieces, bars


def choose_examples(tokens: np.ndarray, pieces: list[str], config: Config, count: int = 2
                    ) -> list[int]:
    """Indices of `count` windows (of the measured split) from different pieces that start
    with a note, hold at least the median number of notes, and come back unchanged from MIDI
    (so `hmvae interpolate` on the written file reads exactly this window)."""
    from hmvae_tf import attributes
    from hmvae_tf.music.representations import get_representation

    rep = get_representation(config.representation)
    counts = attributes.note_counts(tokens, config.tracks)
    threshold = np.median(counts)
    chosen, used = [], set()
    for i in range(len(tokens)):
        if pieces[i] in used or counts[i] < threshold or tokens[i, 0, 0] < 2:
            continue
        window = tokens[i] if rep.multitrack else tokens[i, :, 0]
        back = rep.from_note_sequence(rep.to_note_sequence(window), config.bars)
        if not np.array_equal(back, window):
            continue
        chosen.append(i)
        used.add(pieces[i])
        if len(chosen) == count:
            break
    return chosen


def write_examples(out_dir: str, tokens: np.ndarray, pieces: list[str], bars: list[int],
                   indices: list[int], config: Config) -> list[str]:
    """Writes the chosen windows as out_dir/examples/*.mid, for `hmvae demo`."""
    from hmvae_tf.music.representations import get_representation

    rep = get_representation(config.representation)
    folder = os.path.join(out_dir, EXAMPLES)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for n, i in enumerate(indices, 1):
        name = pieces[i].split("/")[-1]
        for ch in "/#. ":
            name = name.replace(ch, "_")
        path = os.path.join(folder, f"example{n}_{name}_bar{bars[i]}.mid")
        rep.to_midi(tokens[i] if rep.multitrack else tokens[i, :, 0], path)
        paths.append(path)
    return paths


# --- checks of issue 5 ------------------------------------------------------------------------
def checks(config: Config, metrics: dict) -> list[dict]:
    """The quality targets that apply to this kind of model, each with its value and verdict."""
    ev, out = metrics["test"], []

    def add(what, value, ok):
        out.append({"check": what, "value": value, "passed": None if ok is None else bool(ok)})

    melody = config.representation == "melody"
    if melody and config.bars == 2:
        add("teacher-forced accuracy >= 0.90", round(ev["teacher_forced_accuracy"], 4),
            ev["teacher_forced_accuracy"] >= 0.90)
        add("sampled accuracy (temperature 0) >= 0.80", round(ev["sampled_accuracy"], 4),
            ev["sampled_accuracy"] >= 0.80)
        add("KL well above zero (> 5 bits: the latent code is used)", round(ev["kl_bits"], 2),
            ev["kl_bits"] > 5)
    if melody and config.bars == 16:
        add("sampled accuracy >= 0.60", round(ev["sampled_accuracy"], 4),
            ev["sampled_accuracy"] >= 0.60)
        for row in metrics.get("compare", []):
            gap = ev["sampled_accuracy"] - row["sampled_accuracy"]
            add(f"sampled accuracy well above {row['label']} ({row['config']}): margin >= 0.05",
                round(gap, 4), gap >= 0.05)
    interp = metrics.get("interpolation")
    if interp:
        monotone = interp["interp_monotone"]
        add("interpolation: share of monotone steps (reported)",
            "n/a: every pair decodes both ends alike" if monotone is None else round(monotone, 4),
            None)
    effect = metrics.get("attributes", {}).get("effects", {}).get("density")
    if effect:
        d = dict(zip(effect["amounts"], effect["density"]))
        hi, lo = max(d), min(d)
        add(f"density vector raises the decoded note count (+{hi:g}: {d[hi]:.2f} vs 0: "
            f"{d[0.0]:.2f} notes)", round(d[hi] - d[0.0], 3), d[hi] > d[0.0])
        add(f"density vector lowers it (-{abs(lo):g}: {d[lo]:.2f} notes)",
            round(d[lo] - d[0.0], 3), d[lo] < d[0.0])
    return out


# --- the card ---------------------------------------------------------------------------------


def _machine() -> str:
    import platform

    cpus = os.cpu_count() or 0
    return f"{cpus} CPU core{'s' if cpus != 1 else ''} ({platform.machine()})"


def compare_row(path: str, tokens: np.ndarray, config: Config, name: str, batch_size: int
                ) -> dict:
    """The accuracy table's row of a baseline model (a training directory or an export) on
    the same windows as the card's model."""
    from hmvae_tf import evaluate

    t = time.time()
    say(f"loading {path} ...")
    other, other_config, other_step, other_shown = evaluate.load_any(
        path, evaluate.is_export(path))
    if (other_config.num_steps, other_config.tracks) != (config.num_steps, config.tracks):
        from hmvae_tf.cli import CommandError

        raise CommandError(f"{path} models other windows than {name}")
    row = evaluate.evaluate_model(other, (tokens[i:i + batch_size]
                                          for i in range(0, len(tokens), batch_size)),
                                  total=len(tokens))
    label = os.path.basename(os.path.normpath(path))
    say(f"  compare {label}: sampled accuracy {row['sampled_accuracy']:.4f} "
        f"({time.time() - t:.0f} s)")
    return {"label": label, "path": other_shown, "config": other_config.name,
            "step": other_step, "hparams": hparams_diff(other_config), **row}


def draw_pictures(files: CardFiles, model: MusicVAE, codec: Codec, config: Config, name: str,
                  args: argparse.Namespace, tokens: np.ndarray, pieces: list[str],
                  bars: list[int], chosen: list[int]) -> None:
    """The card's samples, reconstructions (of the chosen example windows) and interpolation
    figures, into the card's staging folder."""
    import tensorflow as tf

    from hmvae_tf import evaluate, plots

    seeds = np.stack([np.full(args.samples, args.seed), np.arange(args.samples)], -1)
    samples, _ = model.sample(args.samples, args.temperature,
                              seed=tf.constant(seeds, tf.int32))
    plots.piano_rolls(samples.numpy(), config.tracks, files.figure("samples"),
                      titles=[f"sample {i + 1}" for i in range(args.samples)],
                      title=f"{name}: samples at temperature {args.temperature:g}",
                      columns=2 if config.num_steps <= 64 else 1)
    if chosen:
        recon = codec.decode(codec.mu(tokens[chosen]))
        plots.piano_rolls([w for i, c in enumerate(chosen) for w in (tokens[c], recon[i])],
                          config.tracks, files.figure("reconstructions"),
                          titles=[t for c in chosen for t in (
                              f"{args.split} window: {pieces[c]} bar {bars[c]}",
                              "reconstruction")],
                          title=f"{name}: reconstructions (temperature 0)",
                          columns=2 if config.num_steps <= 64 else 1)
    pair = chosen if len(chosen) == 2 else list(evaluate.pick_pairs(tokens, 1, args.seed)[0])
    steps_shown = 8
    one = evaluate.interpolation_metrics(codec, tokens[pair[:1]], tokens[pair[1:2]],
                                         steps_shown, return_steps=True)
    plots.piano_rolls(one["steps"][0], config.tracks, files.figure("interpolation"),
                      titles=[f"alpha {a:.2f}" + (" (reconstruction of A)" if i == 0 else
                                                  " (reconstruction of B)" if i == steps_shown - 1
                                                  else "")
                              for i, a in enumerate(np.linspace(0, 1, steps_shown))],
                      title=f"{name}: interpolation A -> B (temperature 0)",
                      columns=4 if config.num_steps <= 64 else 1)


def make_card(args: argparse.Namespace) -> dict:
    """Measures the export, writes the card, metrics, figures and examples; the metrics."""
    # Before anything is written: a missing export is said as such.
    version_dir = resolve_saved_model(os.path.normpath(args.export_base), args.version)
    # Before the model loads (seconds): a dataset without the split is a one-line error.
    dataset = args.dataset or read_metadata(version_dir).get("config", {}).get("dataset")
    if dataset:
        require_measured_split(dataset, args.split, args.data_dir)
    with CardFiles(os.path.normpath(args.export_base)) as files:
        return _make_card(args, files, version_dir)


def _make_card(args: argparse.Namespace, files: CardFiles, version_dir: str) -> dict:
    from hmvae_tf import attributes, evaluate, plots
    from hmvae_tf.checkpoints import checkpoint_step, load_config

    t0 = time.time()
    timings = {}
    export_base = files.export_base
    name = args.name or os.path.basename(export_base)
    say(f"loading {version_dir} ...")
    model, config, step, _ = evaluate.load_any(version_dir, saved_model=True)
    export_meta = read_metadata(version_dir)
    model_dir = args.model_dir or export_meta.get("model_dir", "")
    trained = load_config(model_dir) if model_dir else None
    if trained is not None and trained != config:
        print(f"warning: {model_dir}/config.json differs from the export's config",
              file=sys.stderr)
    if step is None and model_dir:
        step = checkpoint_step(model_dir)
    dataset = args.dataset or config.dataset
    timings["load"] = time.time() - t0

    # The measured split (test unless --split): accuracy, KL; interpolation.
    t = time.time()
    tokens, pieces, bars = read_split(dataset, args.split, args.data_dir, args.max_windows,
                                      config)
    # Each stage says what it does and, once done, its numbers and time on stderr, as the
    # progress: stdout keeps the result, the files written and the checks (run()).
    say(f"{name}: evaluating {version_dir} ({config.name}, step {step}) on {len(tokens)} "
        f"{args.split} windows of {dataset}")
    result = evaluate.evaluate_model(
        model, (tokens[i:i + args.batch_size] for i in range(0, len(tokens), args.batch_size)),
        total=len(tokens))
    timings["evaluate"] = time.time() - t
    say("  " + ", ".join(f"{k} {v:.4g}" for k, v in result.items()
                     if isinstance(v, float))
        + f" ({timings['evaluate']:.0f} s)")
    codec = evaluate.Codec(model, args.batch_size, progress=True)
    t = time.time()
    interp = None
    if args.interpolation_pairs:
        pairs = evaluate.pick_pairs(tokens, args.interpolation_pairs, args.seed)
        interp = evaluate.interpolation_metrics(codec, tokens[pairs[:, 0]], tokens[pairs[:, 1]],
                                                args.interpolation_steps)
        shown = ("every pair's ends decode alike (z is ignored)"
                 if interp["interp_monotone"] is None
                 else f"{interp['interp_monotone']:.3f} of steps monotone")
        say(f"  interpolation: {shown} over {interp['interp_pairs']} pairs "
            f"({time.time() - t:.0f} s)")
    timings["interpolation"] = time.time() - t

    compare = [compare_row(path, tokens, config, name, args.batch_size)
               for path in args.compare]

    # Attribute vectors.
    t = time.time()
    train_windows, test_windows = attributes.default_windows(config.num_steps)
    if args.attribute_windows is None:
        args.attribute_windows = train_windows
    if args.attribute_test_windows is None:
        args.attribute_test_windows = test_windows
    train_tokens = attributes.read_windows(dataset, "train", args.data_dir,
                                           args.attribute_windows, config.tracks)
    attr_doc = attributes.build(
        codec, train_tokens, tokens[:args.attribute_test_windows],
        source={"dataset": dataset, "split": "train", "test_split": args.split},
        model_info={"config": config.name, "training_step": step,
                    "saved_model": os.path.abspath(version_dir)})
    attr_path = os.path.join(version_dir, "assets.extra", attributes.ATTRIBUTES_FILE)
    timings["attributes"] = time.time() - t
    say("  density vector: notes at amounts "
        + ", ".join(f"{a:+g}: {d:.2f}" for a, d in zip(attr_doc["effects"]["density"]["amounts"],
                                                       attr_doc["effects"]["density"]["density"]))
        + f" ({timings['attributes']:.0f} s)")

    # Examples, pictures.
    t = time.time()
    chosen = choose_examples(tokens, pieces, config)
    examples = write_examples(files.stage, tokens, pieces, bars, chosen, config)
    draw_pictures(files, model, codec, config, name, args, tokens, pieces, bars, chosen)
    facts = training_facts(model_dir, step)
    shown_history = history_upto(facts)
    if shown_history:
        plots.training_curves(shown_history, facts["steps_per_epoch"] or 1,
                              files.figure("training_curves"),
                              title=f"{name} ({config.name}): training")
    timings["pictures"] = time.time() - t

    metrics = {
        "name": name,
        "written_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": json.loads(config.to_json()),
        "hparams": hparams_diff(config),
        "parameters": parameter_count(model),
        "export": {"base": export_base, "version_dir": version_dir,
                   "exported_at": export_meta.get("exported_at"),
                   "dtype_policy": dtype_policy(export_meta),
                   "attributes_file": os.path.relpath(attr_path, export_base)},
        "dataset": dataset_facts(dataset, args.data_dir),
        "training": {k: v for k, v in facts.items() if k != "history"},
        "machine": _machine(),
        "split": args.split,  # what "test" (the key older cards wrote) was measured on
        "test": result,
        "interpolation": interp,
        "compare": compare,
        "attributes": {**attr_doc, "attributes": {  # the vectors themselves stay in their file
            k: {f: v for f, v in a.items() if f != "vector"}
            for k, a in attr_doc["attributes"].items()}},
        "samples": {"n": args.samples, "temperature": args.temperature, "seed": args.seed},
        "examples": [files.relative(p) for p in examples],
        "interpolation_figure": ("A = " + os.path.basename(examples[0]) + ", B = "
                                 + os.path.basename(examples[1])) if len(examples) == 2
                                else f"two random {args.split} windows",
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "figures": files.figures(),
    }
    metrics["checks"] = checks(config, metrics)
    metrics["commands"] = reproduce_commands(
        config, facts, dataset, args.data_dir, model_dir, export_base, args,
        reproduce_flags(export_meta.get("options", {})),
        data_facts=metrics["dataset"])
    metrics["card_seconds"] = time.time() - t0
    metrics_text, card_text = json.dumps(metrics, indent=1), render_card(name, metrics)
    # The vectors first: their own file is replaced atomically, and a full disk then stops
    # the card before anything else is replaced.
    attributes.save(attr_doc, attr_path)
    files.publish(metrics_text, card_text)
    return metrics


def run(args: argparse.Namespace) -> int:
    """`hmvae card`: writes a model card (or prints the --summary table); exit status."""
    from hmvae_tf.cli import UsageError

    if args.summary:
        if args.export_base or args.model_dir:  # they were ignored: no card was written
            raise UsageError("--summary prints the metrics of the cards already written; "
                             "to write one, give --export_base (and --model_dir) without it")
        print(summary_table(args.summary))
        return 0
    if not args.export_base:
        raise UsageError("give --export_base (and --model_dir), or --summary=<folder>")
    try:
        metrics = make_card(args)
    except OSError as err:
        if isinstance(err, FileNotFoundError):  # a missing export or model: said as it is
            raise
        from hmvae_tf.cli import CommandError

        # A full disk or an export base that cannot be written: nothing was replaced.
        raise CommandError(f"{err.strerror or err}" + (f": {err.filename}" if err.filename
                                                       else "")
                           + f"; {args.export_base} keeps its earlier card and files") from None
    print(f"wrote {os.path.join(args.export_base, CARD)}, {METRICS}, {FIGURES}/, {EXAMPLES}/ "
          f"and {metrics['export']['attributes_file']} in {metrics['card_seconds']:.0f} s")
    for c in metrics["checks"]:
        verdict = {True: "pass", False: "FAIL", None: "info"}[c["passed"]]
        print(f"  [{verdict}] {c['check']}: {c['value']}")
    return 0
