"""`hmvae evaluate`: how well models reconstruct held-out windows, as a table.

For each window, z is the posterior mean. Teacher-forced accuracy is the share of steps whose
argmax under the true previous tokens is right; sampled accuracy is the share right when the
decoder feeds back its own argmax choices (temperature 0), which is what a user hears. The
paper's claim is about the gap between the two: a flat decoder's sampled accuracy collapses on
16 bars, a hierarchical one's stays close to its teacher-forced accuracy.
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--model_dir", action="append", required=True,
                        help="trained model directory; repeat to compare models in one table")
    parser.add_argument("--split", default="test", help="dataset split")
    parser.add_argument("--dataset", default=None, help="TFDS name/config (default: the model's)")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir")
    parser.add_argument("--max_windows", type=int, default=2048,
                        help="evaluate at most this many windows (0: the whole split)")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--json_out", default=None, help="also write the results as JSON here")


def evaluate_model(model, batches, max_windows: int = 0, progress: bool = True) -> dict:
    """Reconstruction metrics of `model` over an iterable of [B, T, K] token batches."""
    import tensorflow as tf
    import tensorflow_probability as tfp
    from tqdm import tqdm

    config = model.config

    @tf.function
    def measure(tokens):
        q = model.encode(tokens)
        mu = q.mean()
        logits = model.decoder.teacher_forced_logits(mu, tokens)
        noise = tf.zeros(tf.concat([tf.shape(tokens)[:2], [sum(config.track_classes)]], 0))
        sampled = model.decode(mu, 0.0, noise=noise)
        tf_right = tf.stack([tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(lg, -1, output_type=tf.int32), tokens[..., k]), tf.float32))
            for k, lg in enumerate(logits)])
        sampled_right = tf.reduce_sum(tf.cast(tf.equal(sampled, tokens), tf.float32), [0, 1])
        ce = tf.add_n([tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tokens[..., k], lg))
            for k, lg in enumerate(logits)])
        kl = tf.reduce_sum(tfp.distributions.kl_divergence(q, model.prior()))
        return tf_right, sampled_right, ce, kl

    totals = {"tf": np.zeros(len(config.tracks)), "sampled": np.zeros(len(config.tracks)),
              "ce": 0.0, "kl": 0.0}
    windows = 0
    bar = tqdm(total=max_windows or None, unit="window", disable=not progress, leave=False)
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
    }
    if len(config.tracks) > 1:
        for k, track in enumerate(config.tracks):
            result[f"{track}_teacher_forced_accuracy"] = float(totals["tf"][k] / steps)
            result[f"{track}_sampled_accuracy"] = float(totals["sampled"][k] / steps)
    return result


def format_table(rows: list[dict]) -> str:
    """Markdown table; per-track columns appear when any model has several tracks."""
    columns = ["model", "config", "step", "windows", "teacher_forced_accuracy",
               "sampled_accuracy", "kl_bits", "recon_loss"]
    extra = sorted({k for r in rows for k in r if k.endswith("_accuracy") and k not in columns})
    columns += extra
    short = {"teacher_forced_accuracy": "TF acc", "sampled_accuracy": "sampled acc",
             "kl_bits": "KL bits", "recon_loss": "recon loss"}
    header = [short.get(c, c.replace("_teacher_forced_accuracy", " TF acc")
                        .replace("_sampled_accuracy", " sampled acc")) for c in columns]

    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}" if value < 10 else f"{value:.1f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from hmvae_tf import data
    from hmvae_tf.checkpoints import checkpoint_step, load_model

    rows = []
    for model_dir in args.model_dir:
        model, config = load_model(model_dir)
        batches = tfds.as_numpy(data.dataset_for(config, args.split, args.data_dir,
                                                 args.batch_size, training=False,
                                                 dataset=args.dataset))
        print(f"evaluating {model_dir} ({config.name}) on {args.dataset or config.dataset} "
              f"[{args.split}]")
        result = evaluate_model(model, batches, args.max_windows)
        rows.append({"model": model_dir, "config": config.name,
                     "step": checkpoint_step(model_dir), **result})
    print(format_table(rows))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0
