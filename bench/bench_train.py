"""Training throughput (examples/s) and peak memory, ours and Magenta's, in the same run.

    python bench/bench_train.py --config=cat-mel_2bar_small --batch=512 --baseline
    python bench/bench_train.py --config=hierdec-mel_16bar --batch=64 \
        --hparams=enc_rnn_size=[512,512],dec_rnn_size=[256,256],z_size=256 --baseline

Each side runs in its own process under /usr/bin/time -v, so peak RSS is per run. Ours runs
`model.fit` on in-memory token batches (the input pipeline is not what is measured; both
sides read cached data) and reports the median step time after warm-up, the model's matmul
FLOP rate and, for scale, this machine's matmul rate measured in the same process (fp32, or
bf16 for a `mixed_bfloat16` row). Where the CPU has bfloat16 instructions, both policies run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def train_flops_per_example(config) -> float:
    """Matmul FLOPs of one training example: forward x 3 (backward is about twice forward)."""
    T, Z = config.num_steps, config.z_size
    macs = 0.0
    d = sum(config.track_classes)
    for u in config.enc_rnn_size:
        macs += 2 * T * (d + u) * 4 * u
        d = 2 * u
    macs += 2 * d * Z
    emb = Z
    if config.conductor_rnn_size:
        L, d = config.conductor_length, 1
        macs += Z * 2 * sum(config.conductor_rnn_size)
        for u in config.conductor_rnn_size:
            macs += L * (d + u) * 4 * u
            d = u
        emb = config.conductor_rnn_size[-1]
    subsequences = config.conductor_length or 1
    for classes in config.track_classes:
        d = classes + emb
        macs += subsequences * emb * 2 * sum(config.dec_rnn_size)
        for u in config.dec_rnn_size:
            macs += T * (d + u) * 4 * u
            d = u
        macs += T * d * classes
    return 3 * 2 * macs


def matmul_gflops(seconds: float = 2.0, dtype: str = "float32") -> float:
    """This machine's matmul rate on a training-sized product, in GFLOP/s."""
    import tensorflow as tf

    a, b = (tf.cast(tf.random.normal(shape), dtype) for shape in ([512, 1024], [1024, 2048]))
    f = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    f(a, b).numpy()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        f(a, b)
        n += 1
    f(a, b).numpy()
    return 2 * 512 * 1024 * 2048 * n / (time.perf_counter() - start) / 1e9


def worker(args) -> dict:
    """Times our training in this process, in the environment `hmvae train` sets for itself;
    returns the result dict."""
    from hmvae_tf.cli import apply_command_env

    apply_command_env("train")  # before TensorFlow is imported
    import keras
    import numpy as np
    import tensorflow as tf

    from hmvae_tf.configs import get_config
    from hmvae_tf.model import precision
    from hmvae_tf.model.vae import MusicVAE

    hparams = ",".join(p for p in (args.hparams, f"batch_size={args.batch}") if p)
    config = get_config(args.config, hparams)
    rng = np.random.default_rng(0)
    tokens = np.stack([rng.integers(0, c, size=(8 * args.batch, config.num_steps))
                       for c in config.track_classes], -1).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices(tokens).cache().repeat().batch(
        args.batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    model = MusicVAE(config)
    model.build()
    model.compile_for_training(jit_compile=args.jit_compile)

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = StepTimer()
    with precision.policy(args.dtype_policy):
        model.fit(ds, epochs=1, steps_per_epoch=args.warmup + args.steps, callbacks=[timer],
                  verbose=0)
    times = timer.times[args.warmup:]
    median = statistics.median(times)
    per_example = train_flops_per_example(config)
    flops = per_example * args.batch / median / 1e9
    peak = matmul_gflops(dtype="bfloat16" if args.dtype_policy == "mixed_bfloat16" else "float32")
    return {
        "config": args.config, "hparams": args.hparams, "batch": args.batch,
        "jit_compile": args.jit_compile, "dtype_policy": args.dtype_policy,
        "params": int(model.count_params()),
        "ms_per_step_median": 1e3 * median, "ms_per_step_min": 1e3 * min(times),
        "ms_per_step_max": 1e3 * max(times), "examples_per_s": args.batch / median,
        "model_gflops": flops, "matmul_gflops": peak, "fraction_of_matmul_rate": flops / peak,
        "flops_per_example": per_example,
    }


def run_ours(args, dtype_policy: str) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, os.path.abspath(__file__), "--worker",
           f"--config={args.config}", f"--batch={args.batch}", f"--hparams={args.hparams}",
           f"--warmup={args.warmup}", f"--steps={args.steps}", f"--dtype_policy={dtype_policy}"]
    if args.jit_compile:
        cmd.append("--jit_compile")
    from anchor import peak_rss_mb, run_worker

    result, proc = run_worker(cmd)
    if "error" not in result:
        result["peak_rss_mb"] = peak_rss_mb(proc.stderr)
    return result


def print_ceiling(name: str, ours: dict, base: dict | None) -> None:
    """What the same FLOPs would give at 100 % of the measured matmul rate, and that as a ratio
    to Magenta's graph: a target above it cannot be met by running the same work faster."""
    per_example = ours.get("flops_per_example")
    if not per_example:
        return
    ceiling = ours["matmul_gflops"] * 1e9 / per_example
    line = f"{name} ceiling: {ceiling:.1f} examples/s at 100% of that rate"
    if base:
        magenta = base["examples_per_s_median"]
        line += (f", {ceiling / magenta:.2f}x Magenta's graph (which runs at "
                 f"{magenta * per_example / 1e9:.1f} GFLOP/s by the same count)")
    print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cat-mel_2bar_small")
    p.add_argument("--hparams", default="")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--jit_compile", action="store_true")
    p.add_argument("--dtype_policies", default=None,
                   help="comma-separated `hmvae train --dtype_policy` values to time, one row "
                   "each (default: float32, and mixed_bfloat16 too where the CPU has bfloat16 "
                   "instructions)")
    p.add_argument("--dtype_policy", default="float32", help=argparse.SUPPRESS)  # worker
    p.add_argument("--baseline", action="store_true",
                   help="also run Magenta's graph (../shared/anchors/magenta) and print ratios")
    p.add_argument("--baseline_warmup", type=int, default=None)
    p.add_argument("--json_out", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return

    if args.dtype_policies is None:
        from hmvae_tf.model.precision import cpu_has_bf16

        args.dtype_policies = "float32,mixed_bfloat16" if cpu_has_bf16() else "float32"
    rows = {("ours" if policy == "float32" else f"ours {policy}"): run_ours(args, policy)
            for policy in args.dtype_policies.split(",")}
    if args.baseline:
        import anchor

        anchor_args = ["--config", args.config, "--batch", str(args.batch),
                       "--warmup", str(args.baseline_warmup or max(args.warmup, 6)),
                       "--steps", str(args.steps)]
        if args.hparams:
            anchor_args += ["--hparams", args.hparams]
        rows["magenta"] = anchor.run("bench_train.py", anchor_args)
    print(f"\n{args.config} batch {args.batch} {args.hparams}")
    print("| run | examples/s | ms/step median | peak RSS MiB | model GFLOP/s | matmul GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error'][-300:]} |")
            continue
        eps = r.get("examples_per_s", r.get("examples_per_s_median"))
        print(f"| {name} | {eps:.1f} | {r['ms_per_step_median']:.0f} | "
              f"{r.get('peak_rss_mb') or float('nan'):.0f} | {r.get('model_gflops', float('nan')):.1f} | "
              f"{r.get('matmul_gflops', float('nan')):.1f} |")
    base = rows.get("magenta")
    for name, ours in rows.items():
        if name == "magenta" or "error" in ours:
            continue
        if base and "error" not in base:
            print(f"ratio {name}/magenta: "
                  f"{ours['examples_per_s'] / base['examples_per_s_median']:.2f}x throughput, "
                  f"{ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x peak memory")
        dtype = "bf16" if ours["dtype_policy"] == "mixed_bfloat16" else "fp32"
        print(f"{name} runs at {100 * ours['fraction_of_matmul_rate']:.0f}% of this machine's "
              f"{dtype} matmul rate ({ours['model_gflops']:.1f} of {ours['matmul_gflops']:.1f} "
              "GFLOP/s)")
        print_ceiling(name, ours, base if base and "error" not in base else None)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
