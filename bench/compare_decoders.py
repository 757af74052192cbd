"""Hierarchical vs flat decoder on 16-bar melodies, at equal size and training budget.

    python bench/compare_decoders.py --data_dir=/work/data/tfds --work_dir=runs/cmp16

The paper's central result: with the same encoder, latent size, decoder LSTM width and number
of training steps, the conductor decoder's *sampled* reconstruction accuracy (decoder feeding
back its own argmax tokens, what a listener hears) stays close to its teacher-forced accuracy,
while a flat decoder's collapses over 256 steps. This script trains both models with
`hmvae train` (rerunning it resumes each from its last checkpoint; `--parallel` trains both at
once, which on 2 cores is about as fast as one after the other), then evaluates both on the same
test windows with `hmvae evaluate` and prints one table. Both models are evaluated at the same
global step: the smaller of the two models' newest checkpoints.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SHARED = "enc_rnn_size=[128],dec_rnn_size=[128],z_size=128,batch_size=32,beta_rate=0.9999"
CONDUCTOR = "conductor_rnn_size=[128]"


def hmvae(*args: str) -> list[str]:
    return [sys.executable, "-m", "hmvae_tf.cli", *args]


def train_commands(args: argparse.Namespace) -> dict[str, list[str]]:
    common = [f"--data_dir={args.data_dir}", f"--num_steps={args.steps}",
              f"--checkpoint_every={args.checkpoint_every}", "--eval_batches=4",
              f"--seed={args.seed}"]
    return {
        "hier": hmvae("train", "--config=hierdec-mel_16bar",
                      f"--hparams={args.hparams},{args.conductor}",
                      f"--model_dir={os.path.join(args.work_dir, 'hier')}", *common),
        "flat": hmvae("train", "--config=flat-mel_16bar", f"--hparams={args.hparams}",
                      f"--model_dir={os.path.join(args.work_dir, 'flat')}", *common),
    }


def common_step(work_dir: str) -> int:
    """The newest global step that both models kept a checkpoint of (a run stopped by a
    signal saves at an odd step, so the two newest checkpoints often differ)."""
    from hmvae_tf import checkpoints
    kept = [set(checkpoints.kept_steps(os.path.join(work_dir, k))) for k in ("hier", "flat")]
    both = kept[0] & kept[1]
    if not both:
        raise SystemExit(f"no step with a checkpoint of both models in {work_dir}: {kept}")
    return max(both)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir with mel_16bar built")
    parser.add_argument("--work_dir", default="runs/compare_decoders")
    parser.add_argument("--hparams", default=SHARED, help="shared by both models")
    parser.add_argument("--conductor", default=CONDUCTOR, help="the hierarchical model's extra")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--checkpoint_every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="train both at once")
    parser.add_argument("--skip_training", action="store_true",
                        help="evaluate the newest common checkpoint step as it is")
    parser.add_argument("--max_windows", type=int, default=1024, help="test windows evaluated")
    parser.add_argument("--json_out", default=None)
    args = parser.parse_args()

    os.makedirs(args.work_dir, exist_ok=True)
    if not args.skip_training:
        commands = train_commands(args)
        if args.parallel:
            # Half the cores each: two processes that each spread over all cores thrash.
            threads = str(max(1, (os.cpu_count() or 2) // 2))
            env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads,
                   "TF_NUM_INTEROP_THREADS": threads}
            procs = {k: subprocess.Popen(c, cwd=ROOT, env=env) for k, c in commands.items()}
            failed = [k for k, p in procs.items() if p.wait()]
        else:
            failed = [k for k, c in commands.items() if subprocess.call(c, cwd=ROOT)]
        if failed:
            print(f"training failed: {', '.join(failed)}", file=sys.stderr)
            return 1

    step = common_step(args.work_dir)
    print(f"evaluating both models at step {step}")
    json_out = args.json_out or os.path.join(args.work_dir, "comparison.json")
    evaluate = hmvae("evaluate", "--split=test", f"--max_windows={args.max_windows}",
                     f"--json_out={json_out}", f"--step={step}", "--per_bar",
                     *(f"--model_dir={os.path.join(args.work_dir, k)}" for k in ("hier", "flat")))
    if args.data_dir:
        evaluate.append(f"--data_dir={args.data_dir}")
    if subprocess.call(evaluate, cwd=ROOT):
        return 1
    with open(json_out) as f:
        rows = json.load(f)
    by_name = {os.path.basename(r["model"].rstrip("/")): r for r in rows}
    gap = by_name["hier"]["sampled_accuracy"] - by_name["flat"]["sampled_accuracy"]
    print(f"hierarchical minus flat, sampled accuracy at step {step}: {gap:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
