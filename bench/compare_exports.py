"""Two or more exports of one 2-bar melody model, timed side by side in one process.

    python bench/compare_exports.py old=/tmp/ab/old/1 new=/tmp/ab/new/1 [--rounds=40]

Each export runs as `hmvae serve` runs it (`Servable`: the SignatureDef in a TF1 session), and
the calls alternate between the exports (sample 1, sample 64, interpolate 8 between one pair,
their order reversed every round, 2 ms apart), so a slow spell of this shared host hits every
export alike; then the median of each. That is what tells apart changes of 10-20 %, which runs
of `bench_infer.py` minutes apart cannot on this host. To compare two revisions of the code,
export the same model with each (a checkout of the old revision on PYTHONPATH for the first):

    PYTHONPATH=<checkout> python bench/compare_exports.py --make=/tmp/ab/old
    PYTHONPATH=. python bench/compare_exports.py --make=/tmp/ab/new [--dtype_policy=mixed_bfloat16]

`--make` exports cat-mel_2bar_small with the initial weights of Keras seed 0 and --jit_compile.
A bfloat16 export makes the process ask XLA for its classic CPU runtime, which then applies to
every export in the comparison.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # after PYTHONPATH: --make may run older code


def make(base: str, dtype_policy: str | None) -> None:
    import keras

    from hmvae_tf import export
    from hmvae_tf.configs import get_config
    from hmvae_tf.model.vae import MusicVAE

    keras.utils.set_random_seed(0)
    model = MusicVAE(get_config("cat-mel_2bar_small"))
    model.build()
    kwargs = {"dtype_policy": dtype_policy} if dtype_policy else {}  # older code lacks it
    print(export.export_saved_model(model, base, jit_compile=True, **kwargs))


def compare(exports: dict[str, str], rounds: int, warmup: int = 5) -> None:
    import numpy as np

    from hmvae_tf.serving.service import Servable

    servables = {name: Servable(name, 1, path) for name, path in exports.items()}
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 90, (1, 32)).astype(np.int32) for _ in range(2))
    calls = itertools.count()

    def sample(n):
        return lambda: {"temperature": np.ones(n, np.float32),
                        "seed": np.stack([np.full(n, next(calls)), np.arange(n)], -1
                                         ).astype(np.int32)}

    def interpolate():
        return {"melody_a": np.repeat(a, 8, 0), "melody_b": np.repeat(b, 8, 0),
                "alpha": np.linspace(0, 1, 8, dtype=np.float32),
                "temperature": np.zeros(8, np.float32), "seed": np.zeros((8, 2), np.int32)}

    cases = [("sample 1", "sample", sample(1)), ("sample 64", "sample", sample(64)),
             ("interpolate 8", "interpolate", interpolate)]
    times: dict[tuple[str, str], list[float]] = {(n, c): [] for n in exports for c, *_ in cases}
    names = list(exports)
    for r in range(warmup + rounds):
        for case, signature, inputs in cases:
            for name in (names if r % 2 else names[::-1]):
                feed = inputs()
                start = time.perf_counter()
                servables[name].run(signature, feed)
                if r >= warmup:
                    times[(name, case)].append(time.perf_counter() - start)
                time.sleep(0.002)
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
          f"medians of {rounds} alternating calls, ms")
    print("| call | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for case, *_ in cases:
        print(f"| {case} | " + " | ".join(
            f"{1e3 * statistics.median(times[(n, case)]):.2f}" for n in names) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exports", nargs="*", metavar="NAME=VERSION_DIR")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--make", metavar="BASE", help="export the benchmark model under BASE")
    p.add_argument("--dtype_policy", default=None, help="with --make: the export's policy")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.make:
        make(args.make, args.dtype_policy)
        return
    if len(args.exports) < 2:
        p.error("give at least two NAME=VERSION_DIR exports (or --make)")
    compare(dict(e.split("=", 1) for e in args.exports), args.rounds)


if __name__ == "__main__":
    main()
