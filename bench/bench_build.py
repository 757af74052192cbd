"""Dataset build rate from a MIDI folder: the default path and Apache Beam at 1 and 2 workers.

    python bench/bench_build.py --make_midi=13359          # MIDI renderings of the embedded corpus
    python bench/bench_build.py --midi_dir=~/lmd_full --config=mel_2bar

Each build is TFDS's own command in a fresh process and a fresh --data_dir:

    tfds build tfds_builders/hmvae_notesequences --config=C --manual_dir=DIR \
        [--beam_pipeline_options=direct_num_workers=N,direct_running_mode=multi_processing]

and the table gives wall time (process start to finish, TensorFlow import included), pieces
and windows per second, and Beam's speed-up from 1 to 2 workers. `--make_midi=N` writes N
pieces of the embedded music21 corpus as .mid files once (bench/.cache/midi_N; about 70 s per
5,000) so that there is a MIDI collection to read without any download.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def make_midi(count: int) -> str:
    """Writes `count` pieces of the embedded corpus as MIDI files (once) and returns the folder."""
    import note_seq
    from tqdm import tqdm

    from hmvae_tf.music import corpus

    folder = os.path.join(HERE, ".cache", f"midi_{count}")
    if os.path.isdir(folder) and os.listdir(folder):
        return folder
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    pieces = corpus.subset(corpus.embedded_pieces(), count)
    for piece, ns in tqdm(corpus.note_sequences(pieces), total=len(pieces), unit="piece",
                          desc="writing MIDI"):
        if isinstance(ns, str):
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", piece.piece_id) + ".mid"
        note_seq.sequence_proto_to_midi_file(ns, os.path.join(partial, name))
    os.replace(partial, folder)
    return folder


def build(config: str, midi_dir: str, beam_workers: int | None) -> dict:
    """One `tfds build` in a subprocess; returns wall seconds and the builder's report."""
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    with tempfile.TemporaryDirectory() as data_dir:
        cmd = [tfds_cli, "build", "tfds_builders/hmvae_notesequences", f"--config={config}",
               f"--data_dir={data_dir}", f"--manual_dir={midi_dir}"]
        if beam_workers:
            cmd.append(f"--beam_pipeline_options=direct_num_workers={beam_workers},"
                       "direct_running_mode=multi_processing")
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        start = time.perf_counter()
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode:
            return {"error": run.stderr[-2000:]}
        # The builder's report sits beside dataset_info.json (TFDS writes other metadata.json).
        found = [os.path.join(d, "metadata.json") for d, _, files in os.walk(data_dir)
                 if "dataset_info.json" in files]
        with open(found[0]) as f:
            meta = json.load(f)
    return {"seconds": seconds, "pieces": meta["pieces"],
            "windows": sum(meta["windows_per_split"].values()),
            "pipeline_seconds": meta["conversion_seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--midi_dir", help="a folder of .mid files (default: --make_midi's)")
    p.add_argument("--make_midi", type=int, default=5000,
                   help="without --midi_dir: how many embedded pieces to write as MIDI")
    p.add_argument("--config", default="mel_2bar")
    p.add_argument("--runs", default="default,beam1,beam2",
                   help="comma-separated: default (own worker pool), beamN (Beam, N workers)")
    p.add_argument("--json_out")
    args = p.parse_args()
    midi_dir = os.path.expanduser(args.midi_dir) if args.midi_dir else make_midi(args.make_midi)

    results = {}
    for name in args.runs.split(","):
        workers = int(name[4:]) if name.startswith("beam") else None
        print(f"building {args.config} from {midi_dir} ({name}) ...", flush=True)
        results[name] = build(args.config, midi_dir, workers)
    print(f"\n{args.config} from {midi_dir}")
    print("| run | wall s | pipeline s | pieces/s | windows/s |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error'][-300:]} |")
            continue
        print(f"| {name} | {r['seconds']:.1f} | {r['pipeline_seconds']:.1f} | "
              f"{r['pieces'] / r['seconds']:.0f} | {r['windows'] / r['seconds']:.0f} |")
    one, two = results.get("beam1", {}), results.get("beam2", {})
    if "seconds" in one and "seconds" in two:
        print(f"Beam, 2 workers over 1: {one['seconds'] / two['seconds']:.2f}x wall, "
              f"{one['pipeline_seconds'] / two['pipeline_seconds']:.2f}x pipeline")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
