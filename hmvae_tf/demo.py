"""`hmvae demo`: the whole chain on the embedded corpus, each step shown as the command a user
would type.

Part 1 (about 35 s on 2 cores) uses the trained models that ship in saved_models/: serve them
with `hmvae serve`, sample, and interpolate between two real test-split tunes over gRPC.
Part 2 (a few minutes on 2 cores) starts from nothing: build a subset of the TFDS dataset,
train a small model briefly, export it, serve it, sample and interpolate over gRPC.
Everything lands in --out: MIDI files (and .wav renderings where fluidsynth and a General MIDI
soundfont are installed) plus summary.json.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import threading
import time

from hmvae_tf import arg_types, atomic_files, quiet_startup
from hmvae_tf.shell_text import shown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "saved_models")
BUILDER = os.path.join(ROOT, "tfds_builders", "hmvae_notesequences")
SMALL_MODEL = "enc_rnn_size=[128],dec_rnn_size=[128,128],z_size=64,batch_size=64"


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae demo`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Run the whole chain on the embedded corpus, printing each step as the command you "
        "would type: serve the shipped models and sample and interpolate from them, then build "
        "a dataset subset, train a small model briefly, export, serve, sample and interpolate. "
        "MIDI files, .wav renderings and summary.json go to --out.")
    parser.epilog = examples("hmvae demo", "hmvae demo --part=shipped --out=out/shipped")
    parser.add_argument("--out", default="out/demo", help="where MIDI files and logs go")
    parser.add_argument("--part", choices=("all", "shipped", "scratch"), default="all",
                        help="shipped: the models in saved_models/ only; scratch: build, train, "
                        "export and serve a new model only")
    parser.add_argument("--pieces", type=arg_types.int_at_least(1), default=600,
                        help="source pieces for the from-scratch dataset subset")
    parser.add_argument("--train_steps", type=arg_types.int_at_least(1), default=200,
                        help="training steps of the from-scratch model")
    parser.add_argument("--port", type=arg_types.port, default=0,
                        help="gRPC port (0: a free one)")


class Demo:
    """Runs commands in order, echoing them, and keeps what they produced."""

    def __init__(self, out: str):
        self.out = os.path.abspath(out)
        os.makedirs(self.out, exist_ok=True)
        self.log = open(os.path.join(self.out, "demo.log"), "a")
        self.summary: dict = {"parts": {}}
        self.hmvae = [sys.executable, "-m", "hmvae_tf.cli"]
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                    "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}

    def run(self, shown: str, argv: list[str], env: dict | None = None) -> str:
        """Runs one step, showing it as `shown`; stops the demo if it fails. Returns stdout."""
        print(f"\n$ {shown}", flush=True)
        start = time.time()
        proc = subprocess.run(argv, cwd=ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True)
        self.log.write(f"$ {shown}\n{proc.stdout}\n{proc.stderr}\n")
        self.log.flush()
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
            raise SystemExit(f"demo step failed (exit {proc.returncode}): {shown}\n"
                             f"full output in {self.log.name}")
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        for line in lines[-12:]:
            print("  " + line)
        print(f"  ({time.time() - start:.1f} s)", flush=True)
        return proc.stdout

    def serve(self, config_file: str, port: int) -> tuple[subprocess.Popen, str]:
        """Starts `hmvae serve` and waits until it listens; returns (process, address)."""
        argv = [*self.hmvae, "serve", f"--port={port}", f"--model_config_file={config_file}"]
        command = f"$ hmvae serve --port={port} --model_config_file={shown(config_file)} &"
        print(f"\n{command}", flush=True)
        self.log.write(command + "\n")
        self.log.flush()
        # The server logs to stderr (as TF Serving): shown until it listens, then kept in the log.
        # TF's start-up chatter is left to the server's own filter (quiet_startup), which
        # stands aside when TF_CPP_MIN_LOG_LEVEL is set: so it is set only if the user set it.
        env = {**quiet_startup.child_environ(), "PYTHONPATH": self.env["PYTHONPATH"]}
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            print("  " + line.rstrip(), flush=True)
            self.log.write(line)
            listening = re.match(r"listening on \S+:(\d+)", line)
            if listening:
                threading.Thread(target=self._keep, args=(proc.stderr,), daemon=True).start()
                return proc, f"localhost:{listening.group(1)}"
        proc.kill()
        raise SystemExit(f"hmvae serve did not start; see {self.log.name}")

    def _keep(self, stream) -> None:
        """Copies a running server's later log lines into the demo log (so its pipe never
        fills up)."""
        for line in stream:
            self.log.write(line)
        self.log.flush()

    def stop(self, proc: subprocess.Popen) -> None:
        """Stops a server started by `serve`, killing it if it does not end in 30 s."""
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_windows_to_midi(dataset: str, data_dir: str, out_dir: str, count: int = 2) -> list[str]:
    """The first `count` windows of a dataset's test split (from different pieces) as MIDI."""
    import tensorflow_datasets as tfds

    from hmvae_tf.music import midi_io

    paths, pieces = [], set()
    for example in tfds.as_numpy(tfds.load(dataset, split="test", data_dir=data_dir)):
        piece = example["piece_id"].decode()
        if piece in pieces:
            continue
        pieces.add(piece)
        ns, _ = midi_io.as_note_sequence(example["note_sequence"])
        name = piece.replace("/", "_").replace("#", "_").replace(".", "_")
        path = os.path.join(out_dir, f"test_{name}_bar{example['start_bar']}.mid")
        midi_io.write_midi(ns, path)
        paths.append(path)
        if len(paths) == count:
            break
    return paths


def render_wavs(midi_paths: list[str]) -> list[str]:
    """Renders each MIDI file to .wav, one fluidsynth process per core at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from hmvae_tf.music import audio

    if not audio.available() or not midi_paths:
        return []
    print(f"\nrendering {len(midi_paths)} .wav files with fluidsynth ...", flush=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(audio.render_wav, midi_paths))


def shipped_part(demo: Demo, port: int) -> None:
    """Part 1: serve the models in saved_models/, sample and interpolate over gRPC."""
    config = os.path.join(SHIPPED, "models.config")
    if not os.path.exists(config):
        print("\n(no trained models in saved_models/ yet: skipping part 1)")
        return
    print("\n=== Part 1: the trained models that ship in saved_models/ ===")
    out = os.path.join(demo.out, "shipped")
    os.makedirs(out, exist_ok=True)
    server, address = demo.serve(config, port)
    files = []
    try:
        for name in sorted(os.listdir(SHIPPED)):
            examples = sorted(glob.glob(os.path.join(SHIPPED, name, "examples", "*.mid")))
            if not os.path.isdir(os.path.join(SHIPPED, name)) or len(examples) < 2:
                continue
            before = set(glob.glob(os.path.join(out, "*.mid")))
            demo.run(f"hmvae sample --server={address} --model={name} -n 4 --temperature=0.5 "
                     f"--out={shown(out)}",
                     [*demo.hmvae, "sample", f"--server={address}", f"--model={name}", "-n", "4",
                      "--temperature=0.5", f"--out={out}"])
            a, b = examples[:2]
            demo.run(f"hmvae interpolate {shown(a)} {shown(b)} "
                     f"--server={address} --model={name} --steps=8 --temperature=0 "
                     f"--out={shown(out)}",
                     [*demo.hmvae, "interpolate", a, b, f"--server={address}", f"--model={name}",
                      "--steps=8", "--temperature=0", f"--out={out}"])
            files += sorted(set(glob.glob(os.path.join(out, "*.mid"))) - before)
    finally:
        demo.stop(server)
    wavs = render_wavs(files)
    demo.summary["parts"]["shipped"] = {"midi": files, "wav": wavs}


def scratch_part(demo: Demo, pieces: int, steps: int, port: int) -> None:
    """Part 2: build a subset of the dataset, train, export, serve, sample, interpolate."""
    print("\n=== Part 2: from nothing to served music (build, train, export, serve) ===")
    out = os.path.join(demo.out, "scratch")
    data_dir = os.path.join(out, "tfds")
    rel = shown
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    demo.run(f"HMVAE_TFDS_MAX_PIECES={pieces} tfds build {rel(BUILDER)} --config=mel_2bar "
             f"--data_dir={rel(data_dir)}",
             [tfds_cli, "build", BUILDER, "--config=mel_2bar", f"--data_dir={data_dir}"],
             env={"HMVAE_TFDS_MAX_PIECES": str(pieces)})
    model_dir = os.path.join(out, "model")
    every = max(steps // 4, 1)
    demo.run(f"hmvae train --config=cat-mel_2bar_small --hparams={SMALL_MODEL} "
             f"--data_dir={rel(data_dir)} --model_dir={rel(model_dir)} --num_steps={steps} "
             f"--checkpoint_every={every} --eval_batches=2",
             [*demo.hmvae, "train", "--config=cat-mel_2bar_small", f"--hparams={SMALL_MODEL}",
              f"--data_dir={data_dir}", f"--model_dir={model_dir}", f"--num_steps={steps}",
              f"--checkpoint_every={every}", "--eval_batches=2"])
    base = os.path.join(out, "saved_models", "demo_mel_2bar")
    demo.run(f"hmvae export --model_dir={rel(model_dir)} --export_base={rel(base)}",
             [*demo.hmvae, "export", f"--model_dir={model_dir}", f"--export_base={base}"])
    from hmvae_tf.serving.model_manager import write_models_config

    config = os.path.join(out, "saved_models", "models.config")
    write_models_config(config, {"demo_mel_2bar": base})
    midi = os.path.join(out, "midi")
    os.makedirs(midi, exist_ok=True)
    a, b = test_windows_to_midi("hmvae_notesequences/mel_2bar", data_dir, midi)
    server, address = demo.serve(config, port)
    try:
        demo.run(f"hmvae sample --server={address} --model=demo_mel_2bar -n 4 "
                 f"--temperature=0.5 --out={rel(midi)}",
                 [*demo.hmvae, "sample", f"--server={address}", "--model=demo_mel_2bar",
                  "-n", "4", "--temperature=0.5", f"--out={midi}"])
        demo.run(f"hmvae interpolate {rel(a)} {rel(b)} --server={address} "
                 f"--model=demo_mel_2bar --steps=8 --out={rel(midi)}",
                 [*demo.hmvae, "interpolate", a, b, f"--server={address}",
                  "--model=demo_mel_2bar", "--steps=8", f"--out={midi}"])
    finally:
        demo.stop(server)
    files = sorted(glob.glob(os.path.join(midi, "*.mid")))
    demo.summary["parts"]["scratch"] = {"midi": files, "wav": render_wavs(files)}


def print_summary(demo: Demo, seconds: float) -> None:
    """Prints what each part produced and writes summary.json."""
    from hmvae_tf.music import midi_io

    print("\n=== Summary ===")
    for part, produced in demo.summary["parts"].items():
        notes = [len(midi_io.read_midi(p).notes) for p in produced["midi"]]
        print(f"{part}: {len(produced['midi'])} MIDI files ({sum(notes)} notes in all, "
              f"{min(notes, default=0)}..{max(notes, default=0)} per file)"
              + (f", {len(produced['wav'])} .wav renderings" if produced["wav"] else ""))
        print(f"  in {os.path.dirname(produced['midi'][0]) if produced['midi'] else '-'}")
    demo.summary["seconds"] = round(seconds, 1)
    atomic_files.write_json(os.path.join(demo.out, "summary.json"), demo.summary, indent=2)
    print(f"done in {seconds:.0f} s; commands and their output: "
          f"{shlex.quote(os.path.join(demo.out, 'demo.log'))}")


def run(args: argparse.Namespace) -> int:
    """`hmvae demo`: runs the chosen parts, then prints a summary; exit status."""
    start = time.time()
    demo = Demo(args.out)
    if args.part in ("all", "shipped"):
        shipped_part(demo, args.port)
    if args.part in ("all", "scratch"):
        scratch_part(demo, args.pieces, args.train_steps, args.port)
    print_summary(demo, time.time() - start)
    return 0
