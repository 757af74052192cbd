"""In-process inference latency of the exported signatures, ours and Magenta's, same run.

    python bench/bench_infer.py --suite=mel2 --baseline          # sample 1, sample 64, interpolate 8
    python bench/bench_infer.py --suite=mel2 --jit_compile --session --baseline   # all four ways
    python bench/bench_infer.py --suite=mel2 --jit_compile --session --bfloat16 --baseline  # and bf16
    python bench/bench_infer.py --suite=hier16 --hparams=enc_rnn_size=[512,512],dec_rnn_size=[256,256],z_size=256 --baseline
    python bench/bench_infer.py --suite=hier16 --baseline       # full size

Ours: a freshly initialised model of the config, exported with `hmvae export` (plain graphs,
and with --jit_compile also the XLA-compiled variant), loaded with tf.saved_model.load and
called through its signatures (what a Python program calling the SavedModel directly gets).
With --session also as `hmvae serve`, TF Serving and the in-process client (`hmvae sample
--saved_model`) run it: the SignatureDef in a TF1 session, one C++ callable per signature.
With --bfloat16 also the XLA export with bfloat16 products, as served (the server then asks
XLA for its classic CPU runtime, as `hmvae serve` does for such an export).
Magenta: TrainedModel calls on a fresh checkpoint of its training graph (the anchor's
bench_infer.py), including its NoteSequence post-processing. Medians of --runs calls after
--warmup calls.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]


def timed(fn, warmup: int, runs: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def worker(args) -> dict:
    import numpy as np
    import tensorflow as tf

    from hmvae_tf import export
    from hmvae_tf.configs import get_config
    from hmvae_tf.model.vae import MusicVAE

    name = "cat-mel_2bar_small" if args.suite == "mel2" else "hierdec-mel_16bar"
    config = get_config(name, args.hparams)
    model = MusicVAE(config)
    model.build()
    out = {"config": name, "hparams": args.hparams, "params": int(model.count_params())}
    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_saved_model(model, tmp, jit_compile=args.jit_compile,
                                         decode_shards=args.decode_shards,
                                         parallel_bars_rows=args.parallel_bars_rows,
                                         dtype_policy=args.dtype_policy)
        if args.session:
            from hmvae_tf.serving.service import Servable

            servable = Servable("bench", 1, path)

            def call(signature, **inputs):
                return servable.run(signature, inputs)["melody"]
        else:
            sig = tf.saved_model.load(path).signatures

            def call(signature, **inputs):
                return sig[signature](**{k: tf.constant(v) for k, v in inputs.items()})[
                    "melody"].numpy()

        calls = itertools.count()

        def sample(n):
            # A new seed per call: the parallel-bars decode's time depends on the melody.
            return lambda: call("sample", temperature=np.ones(n, np.float32),
                                seed=np.stack([np.full(n, next(calls)), np.arange(n)], -1
                                              ).astype(np.int32))

        T = config.num_steps
        rng = np.random.default_rng(0)
        a = rng.integers(0, 90, (1, T)).astype(np.int32)
        b = rng.integers(0, 90, (1, T)).astype(np.int32)
        steps = 8

        def interpolate():
            return call("interpolate", melody_a=np.repeat(a, steps, 0),
                        melody_b=np.repeat(b, steps, 0),
                        alpha=np.linspace(0, 1, steps, dtype=np.float32),
                        temperature=np.zeros(steps, np.float32),
                        seed=np.zeros((steps, 2), np.int32))

        if args.suite == "mel2":
            out["sample_n1_ms"] = timed(sample(1), args.warmup, args.runs)
            out["sample_n64_ms"] = timed(sample(64), args.warmup, args.runs)
            out["interpolate_8_ms"] = timed(interpolate, args.warmup, args.runs)
        else:
            out["sample_n1_ms"] = timed(sample(1), args.warmup, args.runs)
    return out


def run_ours(args, jit: bool, session: bool = False, dtype_policy: str = "float32") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--suite={args.suite}",
           f"--hparams={args.hparams}", f"--warmup={args.warmup}", f"--runs={args.runs}",
           f"--dtype_policy={dtype_policy}"]
    if args.parallel_bars_rows is not None:
        cmd.append(f"--parallel_bars_rows={args.parallel_bars_rows}")
    if args.decode_shards is not None:
        cmd.append(f"--decode_shards={args.decode_shards}")
    if jit:
        cmd.append("--jit_compile")
    if session:
        cmd.append("--session")
    from anchor import run_worker

    return run_worker(cmd)[0]


def run_baseline(args) -> dict:
    import anchor

    name = "cat-mel_2bar_small" if args.suite == "mel2" else "hierdec-mel_16bar"
    # TF checkpoint paths are glob patterns: keep brackets and commas out of the folder name.
    tag = re.sub(r"[^A-Za-z0-9]+", "_", args.hparams).strip("_") or "full"
    ckpt = os.path.join(anchor.OUT_DIR, "ckpt", f"{args.suite}_{tag}")
    hp = ["--hparams", args.hparams] if args.hparams else []
    if not os.path.exists(ckpt):
        made = anchor.run("bench_train.py", ["--config", name, "--batch", "64", "--warmup", "0",
                                             "--steps", "0", "--save_ckpt",
                                             os.path.join(ckpt, "model.ckpt"), *hp])
        if not os.path.exists(ckpt):
            return {"error": made.get("error", "no checkpoint")}
    return anchor.run("bench_infer.py", ["--suite", args.suite, "--ckpt", ckpt, "--warmup",
                                         str(args.warmup), "--runs", str(args.runs), *hp])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("mel2", "hier16"), default="mel2")
    p.add_argument("--hparams", default="")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--jit_compile", action="store_true",
                   help="also measure the XLA-compiled export")
    p.add_argument("--session", action="store_true",
                   help="also measure each export run the way hmvae serve and TF Serving run "
                        "it: the SignatureDef in a TF1 session, one C++ callable per signature")
    p.add_argument("--parallel_bars_rows", type=int, default=None,
                   help="as `hmvae export --parallel_bars_rows` (default: export's default)")
    p.add_argument("--decode_shards", type=int, default=None,
                   help="as `hmvae export --decode_shards` (default: export's default)")
    p.add_argument("--bfloat16", action="store_true",
                   help="also measure the XLA export with bfloat16 products "
                        "(`hmvae export --jit_compile --dtype_policy=mixed_bfloat16`) as "
                        "served; needs --jit_compile and --session")
    p.add_argument("--dtype_policy", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--baseline", action="store_true", help="also run Magenta's TrainedModel")
    p.add_argument("--json_out", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    rows = {"ours": run_ours(args, jit=False)}
    if args.jit_compile:
        rows["ours, XLA"] = run_ours(args, jit=True)
    if args.session:
        rows["ours, session"] = run_ours(args, jit=False, session=True)
        if args.jit_compile:
            rows["ours, XLA, session"] = run_ours(args, jit=True, session=True)
            if args.bfloat16:
                rows["ours, XLA bf16, session"] = run_ours(args, jit=True, session=True,
                                                           dtype_policy="mixed_bfloat16")
    if args.baseline:
        base = run_baseline(args)
        rows["magenta"] = {k: base[v]["ms_median"] for k, v in (
            ("sample_n1_ms", "sample_n1_len32_bs1" if args.suite == "mel2"
             else "sample_n1_len256_bs1"),
            ("sample_n64_ms", "sample_n64_len32_bs64"),
            ("interpolate_8_ms", "interpolate_steps8_len32_bs8")) if v in base} \
            if "error" not in base else base
    keys = (["sample_n1_ms", "sample_n64_ms", "interpolate_8_ms"] if args.suite == "mel2"
            else ["sample_n1_ms"])
    print(f"\n{args.suite} {args.hparams or '(full size)'}: median ms")
    print("| run | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error'][-300:]} |")
        else:
            print(f"| {name} | " + " | ".join(f"{r.get(k, float('nan')):.1f}" for k in keys) + " |")
    base = rows.get("magenta")
    if base and "error" not in base:
        for name, r in rows.items():
            if name != "magenta" and "error" not in r:
                print(f"{name}: " + ", ".join(f"{k} {base[k] / r[k]:.2f}x faster" for k in keys
                                             if k in base and k in r))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
