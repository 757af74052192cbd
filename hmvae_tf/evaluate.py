"""`hmvae evaluate`: how well models reconstruct held-out windows, as a table.

For each window, z is the posterior mean. Teacher-forced accuracy is the share of steps whose
argmax under the true previous tokens is right; sampled accuracy is the share right when the
decoder feeds back its own argmax choices (temperature 0), which is what a user hears. The
paper's claim is about the gap between the two: a flat decoder's sampled accuracy collapses on
16 bars, a hierarchical one's stays close to its teacher-forced accuracy.

Both accuracies are also kept per bar (16 steps), because the claim is about where the errors
fall: a flat decoder's sampled accuracy should decay along the sequence as its own mistakes
feed back, a hierarchical one's should not. `--per_bar` prints them as a second table.

With `--interpolation_pairs=N` it also measures interpolations: for N random pairs of windows,
`--interpolation_steps` points on the slerp between their posterior means are decoded at
temperature 0 (the endpoints are reconstructions), and the Hamming distance of each step's
tokens to the first and to the last step is taken. A transition between consecutive steps is
monotone when the distance to the start does not fall and the distance to the end does not
rise; the table reports the fraction of monotone transitions over the pairs whose two ends
decode differently (pairs with alike ends, as every pair of a model that ignores z, are
counted apart), and, averaged over those pairs, each pair's largest single step as a share of
its ends' distance (about 1 / (steps - 1) for an even walk, 1 for a jump).
"""
from __future__ import annotations

import argparse
import math
import os
from typing import TYPE_CHECKING, Iterable

import numpy as np

from hmvae_tf import arg_types, atomic_files
from hmvae_tf.configs import STEPS_PER_BAR
from hmvae_tf.export_options import resolve_saved_model
from hmvae_tf.progress import Progress, say

# `--max_windows` of `hmvae evaluate` and `hmvae card`: one default, so that a card's test
# metrics and an evaluate run with the defaults are measured on the same windows.
DEFAULT_TEST_WINDOWS = 2000

if TYPE_CHECKING:
    from hmvae_tf.attributes import ClientCodec
    from hmvae_tf.configs import Config
    from hmvae_tf.model.vae import MusicVAE


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae evaluate`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Measure trained or exported models on held-out windows and print one table: "
        "teacher-forced and sampled (temperature 0) reconstruction accuracy, KL in bits and "
        "reconstruction loss, optionally per bar and the smoothness of interpolations. Several "
        "--model_dir and --saved_model are measured on the same windows.")
    parser.epilog = examples(
        "hmvae evaluate --model_dir=runs/m16 --model_dir=runs/flat16 --per_bar",
        "hmvae evaluate --saved_model=saved_models/mel_2bar --interpolation_pairs=100")
    parser.add_argument("--model_dir", action="append", default=[],
                        help="trained model directory (its newest checkpoint); repeat to "
                        "compare models in one table (at least one --model_dir or "
                        "--saved_model is required)")
    parser.add_argument("--saved_model", action="append", default=[],
                        help="exported model: a version directory or an export base (its "
                        "newest version); repeatable, and combinable with --model_dir. Its "
                        "weights are measured in a float32 model, whatever the export's "
                        "--jit_compile or --dtype_policy (as its card says); at least one "
                        "--model_dir or --saved_model is required")
    from hmvae_tf.train import KEPT_CHECKPOINTS

    parser.add_argument("--step", type=arg_types.int_at_least(0), default=None,
                        help="evaluate each --model_dir's checkpoint of this global step (one "
                        f"of the newest {KEPT_CHECKPOINTS} it keeps; default: the newest)")
    parser.add_argument("--split", default="test", help="dataset split")
    parser.add_argument("--dataset", default=None, help=arg_types.DATASET_HELP)
    parser.add_argument("--data_dir", type=arg_types.tfds_data_dir, default=None,
                        help=arg_types.DATA_DIR_HELP)
    parser.add_argument("--max_windows", type=arg_types.int_at_least(0),
                        default=DEFAULT_TEST_WINDOWS,
                        help="evaluate at most this many windows (0: the whole split)")
    parser.add_argument("--batch_size", type=arg_types.int_at_least(1), default=128,
                        help=arg_types.MEASURE_BATCH_HELP)
    parser.add_argument("--interpolation_pairs", type=arg_types.int_at_least(0), default=0,
                        help="also measure interpolations between this many random pairs of "
                        "the evaluated windows (0: no)")
    parser.add_argument("--interpolation_steps", type=arg_types.int_at_least(3), default=11,
                        help="points per interpolation, endpoints included")
    parser.add_argument("--seed", type=arg_types.seed, default=0,
                        help=arg_types.SEED_HELP + " (here: the interpolation pairs)")
    parser.add_argument("--per_bar", action="store_true",
                        help="also print the teacher-forced and sampled accuracy of each bar")
    parser.add_argument("--json_out", default=None,
                        help="also write the results as JSON to this file (folders created if "
                        "missing; default: none)")


def evaluate_model(model: MusicVAE, batches: Iterable[np.ndarray], max_windows: int = 0,
                   progress: bool = True, total: int | None = None) -> dict:
    """Reconstruction metrics of `model` over an iterable of [B, T, K] token batches.
    progress: show how far it is (hmvae_tf.progress) out of `total` windows (default:
    max_windows; with neither, nothing is shown)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    config = model.config

    @tf.function
    def measure(tokens):
        q = model.encode(tokens)
        mu = q.mean()
        logits = model.decoder.teacher_forced_logits(mu, tokens)
        noise = tf.zeros(tf.concat([tf.shape(tokens)[:2], [sum(config.track_classes)]], 0))
        sampled = model.decode(mu, 0.0, noise=noise)
        # Right counts per step and track, [T, K]: summed over windows only, so that bars
        # (and tracks) can be told apart afterwards.
        tf_right = tf.stack([tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(lg, -1, output_type=tf.int32), tokens[..., k]), tf.float32), 0)
            for k, lg in enumerate(logits)], -1)
        sampled_right = tf.reduce_sum(tf.cast(tf.equal(sampled, tokens), tf.float32), 0)
        ce = tf.add_n([tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tokens[..., k], lg))
            for k, lg in enumerate(logits)])
        kl = tf.reduce_sum(tfp.distributions.kl_divergence(q, model.prior()))
        return tf_right, sampled_right, ce, kl

    cells = (config.num_steps, len(config.tracks))
    totals = {"tf": np.zeros(cells), "sampled": np.zeros(cells), "ce": 0.0, "kl": 0.0,
              "zeros": 0}
    windows = 0
    total = min(total, max_windows) if total and max_windows else (total or max_windows)
    bar = Progress(total, "evaluating", "window", enabled=progress)
    for tokens in batches:
        if max_windows and windows >= max_windows:
            break
        if max_windows:
            tokens = tokens[: max_windows - windows]
        tf_right, sampled_right, ce, kl = (v.numpy() for v in measure(tf.constant(tokens)))
        totals["tf"] += tf_right
        totals["sampled"] += sampled_right
        totals["ce"] += float(ce)
        totals["kl"] += float(kl)
        totals["zeros"] += int(np.sum(np.asarray(tokens) == 0))
        windows += len(tokens)
        bar.update(len(tokens))
    bar.close()
    if not windows:
        raise ValueError("no windows to evaluate")
    steps = windows * config.num_steps
    result = {
        "windows": windows,
        "teacher_forced_accuracy": float(totals["tf"].sum() / (steps * len(config.tracks))),
        "sampled_accuracy": float(totals["sampled"].sum() / (steps * len(config.tracks))),
        "kl_bits": totals["kl"] / windows / math.log(2),
        "recon_loss": totals["ce"] / windows,
        # The accuracy of a decoder that always answers token 0 (melody: no event; drums: no
        # hit), which a model that has learnt nothing yet reaches (0.60 on mel_2bar).
        "baseline_token0": totals["zeros"] / (steps * len(config.tracks)),
        "teacher_forced_accuracy_per_bar": per_bar_accuracy(totals["tf"], windows),
        "sampled_accuracy_per_bar": per_bar_accuracy(totals["sampled"], windows),
    }
    if len(config.tracks) > 1:
        for k, track in enumerate(config.tracks):
            result[f"{track}_teacher_forced_accuracy"] = float(totals["tf"][:, k].sum() / steps)
            result[f"{track}_sampled_accuracy"] = float(totals["sampled"][:, k].sum() / steps)
    return result


def per_bar_accuracy(right: np.ndarray, windows: int) -> list[float]:
    """Right counts per step and track [T, K] (summed over `windows`) -> the accuracy of each
    bar, over its windows, steps and tracks (bars are equal, so their mean is the overall one)."""
    bars = right.reshape(-1, STEPS_PER_BAR, right.shape[-1]).sum((1, 2))
    return (bars / (windows * STEPS_PER_BAR * right.shape[-1])).tolist()


class Codec:
    """A Keras MusicVAE as batched numpy functions: posterior means of token windows, and
    decoding of latents at temperature 0 (argmax, no randomness).

    tokens are int32 [N, T, K]; latents float32 [N, Z].
    """

    def __init__(self, model, batch_size: int = 128, progress: bool = False):
        import tensorflow as tf

        config = model.config
        self.model, self.config, self.batch_size = model, config, batch_size
        self.progress = progress  # show how far a long mu() or decode() is
        self.num_steps, self.tracks, self.z_size = config.num_steps, config.tracks, config.z_size
        steps, tracks, classes = config.num_steps, len(config.tracks), sum(config.track_classes)

        def mu(tokens):
            return model.encode(tokens).mean()

        def decode(z):
            return model.decode(z, 0.0, noise=tf.zeros([tf.shape(z)[0], steps, classes]))

        self._mu = tf.function(mu, input_signature=[tf.TensorSpec([None, steps, tracks], tf.int32)])
        self._decode = tf.function(decode, input_signature=[
            tf.TensorSpec([None, config.z_size], tf.float32)])

    def _batched(self, fn, x: np.ndarray, what: str) -> np.ndarray:
        import tensorflow as tf

        parts = []
        with Progress(len(x), what, "window", enabled=self.progress) as shown:
            for i in range(0, len(x), self.batch_size):
                parts.append(fn(tf.constant(x[i:i + self.batch_size])).numpy())
                shown.update(len(parts[-1]))
        return np.concatenate(parts) if parts else np.zeros((0,))

    def mu(self, tokens: np.ndarray) -> np.ndarray:
        """Posterior means [N, Z] of token windows [N, T, K], a batch at a time."""
        return self._batched(self._mu, np.asarray(tokens, np.int32), "encoding")

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Tokens [N, T, K] decoded from latents [N, Z] at temperature 0 (argmax)."""
        return self._batched(self._decode, np.asarray(z, np.float32), "decoding")


def slerp_points(mu_a: np.ndarray, mu_b: np.ndarray, num_steps: int) -> np.ndarray:
    """[P, Z] x [P, Z] -> [P, num_steps, Z] on the great circles between the rows (the
    model's slerp, so the points are the ones `interpolate` decodes)."""
    import tensorflow as tf

    from hmvae_tf.model.vae import slerp

    pairs, z = mu_a.shape
    alpha = np.tile(np.linspace(0.0, 1.0, num_steps, dtype=np.float32), pairs)
    points = slerp(tf.constant(np.repeat(mu_a, num_steps, 0), tf.float32),
                   tf.constant(np.repeat(mu_b, num_steps, 0), tf.float32), tf.constant(alpha))
    return points.numpy().reshape(pairs, num_steps, z)


def pick_pairs(tokens: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """[P, 2] indices of random distinct pairs of windows that hold notes and differ."""
    rng = np.random.default_rng(seed)
    has_notes = (np.asarray(tokens) > 0).reshape(len(tokens), -1).any(-1)
    order = rng.permutation(np.flatnonzero(has_notes))
    pairs = []
    for a, b in zip(order[0::2], order[1::2]):
        if len(pairs) == count:
            break
        if not np.array_equal(tokens[a], tokens[b]):
            pairs.append((a, b))
    return np.array(pairs, np.int64).reshape(-1, 2)


def hamming_curves(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """steps [P, S, T, K] (S decoded interpolation points per pair) -> Hamming distances
    [P, S] (in differing (step, track) cells) of every point to the first and to the last."""
    steps = np.asarray(steps)
    flat = steps.reshape(steps.shape[0], steps.shape[1], -1)
    to_start = (flat != flat[:, :1]).sum(-1)
    to_end = (flat != flat[:, -1:]).sum(-1)
    return to_start, to_end


def interpolation_metrics(codec: Codec | ClientCodec, tokens_a: np.ndarray, tokens_b: np.ndarray,
                          num_steps: int = 11, return_steps: bool = False) -> dict:
    """Smoothness of interpolations between pairs of windows (tokens_a[i] -> tokens_b[i]).

    Each pair's `num_steps` points on the slerp between the two posterior means are decoded
    at temperature 0. Reported: the fraction of transitions (consecutive points) where the
    Hamming distance to the start does not fall and to the end does not rise (also each
    condition alone, and the share of pairs monotone throughout), the mean curves of both
    distances as fractions of the window's cells, and the mean distance between the ends.
    """
    if num_steps < 3:
        raise ValueError("an interpolation metric needs at least 3 steps")
    pairs = len(tokens_a)
    if not pairs:
        raise ValueError("no pairs to interpolate")
    mus = codec.mu(np.concatenate([tokens_a, tokens_b]))
    points = slerp_points(mus[:pairs], mus[pairs:], num_steps)
    decoded = codec.decode(points.reshape(pairs * num_steps, -1))
    decoded = decoded.reshape(pairs, num_steps, *decoded.shape[1:])
    to_start, to_end = hamming_curves(decoded)
    # A pair whose two ends decode alike says nothing about smoothness (every step is then
    # trivially monotone: a model that ignores z would score perfectly), so it is left out
    # of the monotone shares and counted on its own.
    ends = to_end[:, 0]
    apart = ends > 0
    rising = np.diff(to_start[apart], axis=1) >= 0
    falling = np.diff(to_end[apart], axis=1) <= 0
    both = rising & falling
    # The largest change between consecutive points, as a share of the ends' distance: about
    # 1 / (num_steps - 1) for an even walk, 1 for a jump from one end to the other.
    flat = decoded[apart].reshape(int(apart.sum()), num_steps, int(np.prod(decoded.shape[2:])))
    jumps = (flat[:, 1:] != flat[:, :-1]).sum(-1).max(-1) / ends[apart]
    mean = lambda values: float(np.mean(values)) if np.size(values) else None  # noqa: E731
    cells = float(np.prod(decoded.shape[2:]))
    result = {
        "interp_pairs": int(pairs),
        "interp_steps": int(num_steps),
        "interp_pairs_same_ends": float(1.0 - apart.mean()),
        "interp_monotone": mean(both),
        "interp_monotone_start": mean(rising),
        "interp_monotone_end": mean(falling),
        "interp_pairs_fully_monotone": mean(both.all(axis=1)),
        "interp_largest_jump": mean(jumps),
        "interp_endpoint_distance": float(ends.mean() / cells),
        "interp_curve_start": (to_start.mean(0) / cells).round(4).tolist(),
        "interp_curve_end": (to_end.mean(0) / cells).round(4).tolist(),
    }
    if return_steps:
        result["steps"] = decoded
    return result


def load_windows(config: Config, split: str = "test", data_dir: str | None = None,
                 dataset: str | None = None, max_windows: int = 0,
                 batch_size: int = 256) -> np.ndarray:
    """The first `max_windows` (0: all) windows of a split, int32 [N, T, K], in the order
    `hmvae evaluate` reads them (TFDS shuffled the examples when it wrote the files)."""
    import tensorflow_datasets as tfds

    from hmvae_tf import data

    parts, count = [], 0
    for batch in tfds.as_numpy(data.dataset_for(config, split, data_dir, batch_size,
                                                training=False, dataset=dataset)):
        parts.append(batch)
        count += len(batch)
        if max_windows and count >= max_windows:
            break
    if not parts:
        raise ValueError(f"the {split} split of {dataset or config.dataset} has no windows")
    windows = np.concatenate(parts)
    return windows[:max_windows] if max_windows else windows


def is_export(path: str) -> bool:
    """True for a SavedModel version directory or an export base holding versions."""
    try:
        resolve_saved_model(path)
        return True
    except FileNotFoundError:
        return False


def load_any(path: str, saved_model: bool, step: int | None = None
             ) -> tuple[MusicVAE, Config, int | None, str]:
    """(model, config, step, path shown) from a model directory's newest checkpoint or an
    export (the version directory is shown)."""
    if saved_model:
        from hmvae_tf import export
        from hmvae_tf.export_options import read_metadata

        version_dir = resolve_saved_model(path)
        model = export.load_model(version_dir)
        return model, model.config, read_metadata(version_dir).get("training_step"), version_dir
    from hmvae_tf.checkpoints import load_model_at

    return (*load_model_at(path, step=step), path)


def source_config(path: str, saved_model: bool) -> Config | None:
    """The config of a --model_dir or --saved_model from its JSON file alone, without loading
    the model (None where there is none: `load_any` then says what is missing)."""
    if saved_model:
        from hmvae_tf.export_options import read_config

        try:
            return read_config(resolve_saved_model(path))
        except FileNotFoundError:
            return None
    from hmvae_tf.checkpoints import load_config

    return load_config(path)


def check_splits(sources: list[tuple[str, bool]], split: str, data_dir: str | None,
                 dataset: str | None) -> None:
    """A missing dataset or split is a FileNotFoundError before any model loads: found after
    the load, it cost seconds per model for a one-line error."""
    from hmvae_tf import data

    for path, saved_model in sources:
        config = source_config(path, saved_model)
        if dataset or config is not None:
            data.require_split(dataset or config.dataset, split, data_dir,
                               remedy="choose one with --split")


def evaluate_all(model: MusicVAE, windows: np.ndarray, batch_size: int = 128,
                 interpolation_pairs: int = 0, interpolation_steps: int = 11, seed: int = 0,
                 progress: bool = True) -> dict:
    """evaluate_model over `windows` [N, T, K], plus the interpolation metric when asked."""
    batches = (windows[i:i + batch_size] for i in range(0, len(windows), batch_size))
    result = evaluate_model(model, batches, 0, progress=progress, total=len(windows))
    if interpolation_pairs:
        pairs = pick_pairs(windows, interpolation_pairs, seed)
        result.update(interpolation_metrics(Codec(model, batch_size, progress),
                                            windows[pairs[:, 0]],
                                            windows[pairs[:, 1]], interpolation_steps))
    return result


def format_table(rows: list[dict]) -> str:
    """Markdown table; per-track columns appear when any model has several tracks, the
    interpolation column when any row measured it."""
    columns = ["model", "config", "step", "windows", "teacher_forced_accuracy",
               "sampled_accuracy", "kl_bits", "recon_loss"]
    extra = sorted({k for r in rows for k in r if k.endswith("_accuracy") and k not in columns})
    columns += extra
    if any("interp_monotone" in r for r in rows):
        columns += ["interp_monotone", "interp_pairs_fully_monotone", "interp_largest_jump"]
    short = {"teacher_forced_accuracy": "TF acc", "sampled_accuracy": "sampled acc",
             "kl_bits": "KL bits", "recon_loss": "recon loss",
             "interp_monotone": "interp monotone steps",
             "interp_pairs_fully_monotone": "interp monotone pairs",
             "interp_largest_jump": "interp largest jump"}
    header = [short.get(c, c.replace("_teacher_forced_accuracy", " TF acc")
                        .replace("_sampled_accuracy", " sampled acc")) for c in columns]

    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}" if value < 10 else f"{value:.1f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def format_per_bar_table(rows: list[dict]) -> str:
    """Markdown table of each model's sampled and teacher-forced accuracy per bar (1-based), so
    a decay along the sequence shows; models with fewer bars leave the later cells empty."""
    bars = max(len(r["sampled_accuracy_per_bar"]) for r in rows)
    lines = ["| model | acc | " + " | ".join(f"bar {b + 1}" for b in range(bars)) + " |",
             "|" + "---|" * (bars + 2)]
    for r in rows:
        for label, key in (("sampled", "sampled_accuracy_per_bar"),
                           ("TF", "teacher_forced_accuracy_per_bar")):
            values = [f"{v:.3f}" for v in r[key]] + [""] * (bars - len(r[key]))
            lines.append(f"| {r['model']} | {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """`hmvae evaluate`: prints (and with --json_out writes) the metrics table; exit status."""
    sources = [(p, False) for p in args.model_dir] + [(p, True) for p in args.saved_model]
    from hmvae_tf.cli import UsageError

    if not sources:
        raise UsageError("give at least one --model_dir or --saved_model")
    if args.step is not None and not args.model_dir:
        # It was ignored: the table showed the export's own step as if asked for.
        raise UsageError("--step picks a --model_dir checkpoint; an export holds one step "
                         "(its version directories are the other steps)")
    check_splits(sources, args.split, args.data_dir, args.dataset)
    from hmvae_tf import data

    rows, builds_said = [], set()
    for path, is_export in sources:
        say(f"loading {path} ...")
        model, config, step, shown = load_any(path, is_export, args.step)
        # What it is doing, with the progress on stderr: stdout keeps the table (`> table.md`).
        dataset = args.dataset or config.dataset
        say(f"evaluating {shown} ({config.name}) on {dataset} [{args.split}]")
        if dataset not in builds_said:  # which build: own MIDI or the corpus, its version
            builds_said.add(dataset)
            line = data.build_line(dataset, args.data_dir)
            if line:
                say(line)
        windows = load_windows(config, args.split, args.data_dir, args.dataset,
                               args.max_windows, args.batch_size)
        # A bar on a terminal, a few plain lines in a log (`2>&1 | tee log`), where a bar's
        # carriage returns ran into the table's header line.
        result = evaluate_all(model, windows, args.batch_size, args.interpolation_pairs,
                              args.interpolation_steps, args.seed, progress=True)
        # What was measured travels with the numbers in --json_out.
        rows.append({"model": shown, "config": config.name, "step": step,
                     "dataset": args.dataset or config.dataset, "split": args.split,
                     "max_windows": args.max_windows, **result})
    print(format_table(rows))
    for row in rows:
        print(f"{row['model']}: {row['windows']} windows; always predicting token 0 (no event) "
              f"would score {row['baseline_token0']:.3f} accuracy on them")
    if args.per_bar:
        print()
        print(format_per_bar_table(rows))
    if args.interpolation_pairs:
        for row in rows:
            if row["interp_monotone"] is None:
                print(f"{row['model']}: interpolation over {row['interp_pairs']} pairs: every "
                      "pair decodes both ends alike (the decoder ignores z), so there is no "
                      "smoothness to measure")
                continue
            print(f"{row['model']}: interpolation over {row['interp_pairs']} pairs, "
                  f"{row['interp_steps']} steps: monotone transitions "
                  f"{row['interp_monotone']:.3f} (to start {row['interp_monotone_start']:.3f}, "
                  f"to end {row['interp_monotone_end']:.3f}); largest step "
                  f"{row['interp_largest_jump']:.2f} of the ends' distance; mean distance to "
                  "start per step " + " ".join(f"{v:.2f}" for v in row["interp_curve_start"]))
            if row["interp_pairs_same_ends"]:
                print(f"  {row['interp_pairs_same_ends']:.0%} of the pairs decode both ends "
                      "alike and are left out of those shares")
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        # Whole or not at all: a stopped run keeps the earlier results file.
        atomic_files.write_json(args.json_out, rows, indent=2)
    return 0
