"""Why the 2-row encode of an interpolation costs what it does: XLA loops of one LSTM step's
recurrent product, alone and two side by side (the encoder's two directions, one per core).

    PYTHONPATH=. python bench/bench_small_products.py [--rows=1,2,4,8] [--units=512]

Each loop runs 32 steps of h = tanh([rows, u] x [u, 4u])[:, :u], the 2-bar encoder's shape
(4 MB of float32 weights per step at u = 512), compiled with XLA. "alone" is one loop; "side
by side" is two loops with their own weights in one graph, which the inter-op pool runs at
once, as the XLA export runs the encoder's directions. On the project's 2-core Zen 4 a 1-row
loop (XLA's matrix-vector kernel) overlaps almost perfectly, while loops of 2-8 rows (its
GEMM) take about 1.6x longer side by side than alone. It reports; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,2,4,8", help="batch rows to time, comma separated")
    ap.add_argument("--units", type=int, default=512, help="LSTM units u (weights [u, 4u])")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--calls", type=int, default=40, help="timed calls of each, alternating")
    args = ap.parse_args()

    import tensorflow as tf

    units, steps = args.units, args.steps

    def loop(weights: tf.Variable):
        @tf.function(jit_compile=True)
        def run(h):
            def body(i, h):
                return i + 1, tf.tanh(tf.matmul(h, weights)[:, :units])
            return tf.while_loop(lambda i, h: i < steps, body, (0, h))[1]
        return run

    first, second = (loop(tf.Variable(tf.random.normal([units, 4 * units]) * 0.05))
                     for _ in range(2))
    alone = tf.function(first)
    side_by_side = tf.function(lambda h: first(h) + second(h))
    step_bytes = 4 * units * 4 * units
    print(f"{steps} steps of [rows, {units}] x [{units}, {4 * units}] "
          f"({step_bytes / 1e6:.1f} MB of weights per step), XLA; medians of {args.calls} calls")
    print("rows  alone ms  GB/s   side by side ms  ratio")
    for rows in (int(r) for r in args.rows.split(",")):
        h = tf.random.normal([rows, units])
        times = {"alone": [], "side": []}
        for fn in (alone, side_by_side):
            fn(h)  # compile
        for _ in range(args.calls):
            for key, fn in (("alone", alone), ("side", side_by_side)):
                start = time.perf_counter()
                fn(h).numpy()
                times[key].append(time.perf_counter() - start)
        a, s = (1e3 * statistics.median(times[k]) for k in ("alone", "side"))
        print(f"{rows:4d}  {a:8.2f}  {steps * step_bytes / a / 1e6:5.1f}   {s:15.2f}  "
              f"{s / a:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
