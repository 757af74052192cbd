"""The floor under a decode: a bare loop of the same matrix products, without the gates,
the sampling or the bookkeeping.

    PYTHONPATH=. python bench/bench_bandwidth.py [--hparams=...]           # 16 bars, 1 row
    PYTHONPATH=. python bench/bench_bandwidth.py --config=cat-mel_2bar_small --rows=64

A 1-sample decode of hierdec-mel_16bar runs its core decoder for 256 steps, and each step
multiplies one row by every weight matrix of the decoder: at full size 50.7 MB of float32,
13 GB in all, far more than the caches hold, so the rate that matters is GB/s of weights.
With many rows (64 samples of the 2-bar model) the same loop is bound by arithmetic instead,
and GFLOP/s is the rate to read. This times a bare `tf.while_loop` of the decoder's products,
plain and XLA-compiled, and prints both rates, the time per decode they imply and, for one
row, the rate a given target time would need. It reports; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="hierdec-mel_16bar")
    ap.add_argument("--hparams", default="", help="overrides of the config")
    ap.add_argument("--rows", type=int, default=1, help="rows decoded at once (samples)")
    ap.add_argument("--target_ms", type=float, default=300.0,
                    help="issue 6's target time for the full-size 16-bar decode (1 row)")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()

    import tensorflow as tf

    from hmvae_tf.configs import get_config

    config = get_config(args.config, args.hparams)
    units = tuple(config.dec_rnn_size)
    if len(set(units)) != 1:
        raise SystemExit("this sketch of a decoder step assumes equal dec_rnn_size layers")
    # Per step: layer 0's recurrent kernel (its token and conditioning inputs are table rows
    # and a per-bar constant), [input; recurrent] kernels of deeper layers, the logits layer.
    shapes = [(units[0], 4 * units[0])] + [(units[i - 1] + units[i], 4 * units[i])
                                           for i in range(1, len(units))] + [(units[-1], 90)]
    weights = [tf.random.normal(s) for s in shapes]
    step_bytes = 4 * sum(a * b for a, b in shapes)
    steps, rows = config.num_steps, args.rows
    flops = 2 * rows * steps * sum(a * b for a, b in shapes)
    print(f"{config.name} {args.hparams or '(full size)'}, {rows} row(s): "
          f"{step_bytes / 1e6:.1f} MB of weights per step, {steps} steps = "
          f"{steps * step_bytes / 1e9:.2f} GB and {flops / 1e9:.2f} GFLOP per decode")
    for jit in (False, True):
        @tf.function(jit_compile=jit)
        def decode(h):
            def body(i, h):
                x = h  # one state stands in for every layer's (equal-sized) h
                for k, w in enumerate(weights[:-1]):
                    inputs = h if k == 0 else tf.concat([x, h], -1)
                    x = tf.tanh(tf.linalg.matmul(inputs, w)[:, :units[k]])
                logits = tf.linalg.matmul(x, weights[-1])
                return i + 1, x + 0.0 * tf.reduce_sum(logits)
            return tf.while_loop(lambda i, h: i < steps, body, (0, h),
                                 maximum_iterations=steps)[1]

        h = tf.zeros((rows, units[0]))
        for _ in range(3):
            decode(h).numpy()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            decode(h).numpy()
            times.append(time.perf_counter() - start)
        sec = statistics.median(times)
        print(f"{'XLA' if jit else 'plain'}: {1e3 * sec:.1f} ms per decode's products = "
              f"{steps * step_bytes / sec / 1e9:.1f} GB/s of weights, "
              f"{flops / sec / 1e9:.1f} GFLOP/s")
    if rows == 1:
        need = steps * step_bytes / (args.target_ms / 1e3) / 1e9
        print(f"a {args.target_ms:g} ms decode would need {need:.1f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
