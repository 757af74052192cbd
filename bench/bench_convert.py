"""Windows per second of our melody conversion (NoteSequence -> all N-bar windows), optionally
against Magenta 2.1.4's OneHotMelodyConverter on the same NoteSequences in the same run.

    PYTHONPATH=. python bench/bench_convert.py                      # ours only
    PYTHONPATH=. python bench/bench_convert.py --baseline            # + Magenta, ratio
    PYTHONPATH=. python bench/bench_convert.py --baseline --build_pieces=1500   # + TFDS build rate

Corpus: the first --tunes tunes of music21's oneills1850 (file order) from which our converter
extracts at least one window, converted by abc2midi and note_seq (as the dataset builder
does). Both converters get fresh NoteSequence copies each run (parsed outside the timed
region), one Python thread, no window cap (Magenta: eval mode, max_tensors_per_notesequence
None, as the anchor's 'eval_uncapped' row). Reported: median of --runs runs after a warm-up.

Magenta needs the anchor folder (../shared/anchors/magenta, for anchor_shims.py) and magenta
2.1.4 + tf-slim 1.1.0 in a site folder: --magenta_site, else bench/.anchor/site (where
`anchor.ensure_ready()` and the training and inference baselines put them), else the anchor's
own site/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (ROOT, HERE) if p not in sys.path]
import anchor  # noqa: E402  (bench/anchor.py: where the Magenta baseline lives)

ANCHOR = anchor.ANCHOR
MAGENTA_REFERENCE_WPS = 10558  # anchor README, eval uncapped (music21-made MIDI)


def load_corpus(collection: str, tunes: int, bars: int) -> list[bytes]:
    from hmvae_tf.music import corpus
    from hmvae_tf.music.representations import get_representation
    rep = get_representation("melody")
    pieces = [p for p in corpus.embedded_pieces() if p.piece_id.startswith(
        f"music21/{collection}/")]
    kept: list[bytes] = []
    for i in range(0, len(pieces), 200):
        for _, ns in corpus.note_sequences(pieces[i:i + 200]):
            if isinstance(ns, str):
                continue
            if rep.extract_windows(ns, bars)[0]:
                kept.append(ns.SerializeToString())
                if len(kept) == tunes:
                    return kept
    return kept


def time_runs(label: str, raw: list[bytes], convert, runs: int) -> dict:
    """Median wall (perf_counter) and CPU (process_time) seconds of convert(seqs) -> windows."""
    from note_seq.protobuf import music_pb2
    results = []
    for r in range(runs + 1):
        seqs = [music_pb2.NoteSequence.FromString(s) for s in raw]
        t0, c0 = time.perf_counter(), time.process_time()
        windows = convert(seqs)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if r:
            results.append((dt, dc, windows))
        print(f"  {label} run {r}: {dt:.4f}s wall {dc:.4f}s cpu windows={windows}", flush=True)
    med = statistics.median(d for d, _, _ in results)
    cpu = statistics.median(c for _, c, _ in results)
    wins = results[0][2]
    return {"windows": wins, "s_per_corpus_median": med, "cpu_s_per_corpus_median": cpu,
            "windows_per_s": wins / med, "windows_per_cpu_s": wins / cpu,
            "noteseqs_per_s": len(raw) / med}


def magenta_converter(site: str, bars: int):
    if site:
        sys.path.insert(0, site)
    sys.path.insert(0, ANCHOR)
    import anchor_shims  # noqa: F401  (TF1 shims; must precede TensorFlow)
    from magenta.models.music_vae import configs
    name = "cat-mel_2bar_small" if bars == 2 else "hierdec-mel_16bar"
    conv = configs.CONFIG_MAP[name].data_converter
    conv.set_mode("eval")
    conv.max_tensors_per_notesequence = None
    return conv


def build_rate(pieces: int) -> dict:
    import tempfile

    import tensorflow_datasets as tfds

    from tfds_builders.hmvae_notesequences import Builder
    os.environ["HMVAE_TFDS_MAX_PIECES"] = str(pieces)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        builder = Builder(config="mel_2bar", data_dir=tmp)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig())
        dt = time.perf_counter() - t0
        n = sum(s.num_examples for s in builder.info.splits.values())
    return {"pieces": pieces, "examples": n, "seconds": dt, "examples_per_s": n / dt}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--collection", default="oneills1850")
    p.add_argument("--tunes", type=int, default=400)
    p.add_argument("--bars", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--batch", type=int, default=128,
                   help="NoteSequences per extract_windows_batch call (the builder uses 128)")
    p.add_argument("--baseline", action="store_true", help="also time Magenta's converter")
    p.add_argument("--magenta_site", default=os.environ.get("HMVAE_MAGENTA_SITE", ""),
                   help="folder with magenta 2.1.4 + tf-slim (default: bench/.anchor/site, "
                        "else the anchor's site/)")
    p.add_argument("--build_pieces", type=int, default=0,
                   help="also time an end-to-end TFDS mel_2bar build of this many pieces")
    p.add_argument("--json_out", default="")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    conv = None
    if a.baseline:  # import Magenta (and its shims) before anything imports TensorFlow
        site = a.magenta_site or next(
            (d for d in (anchor.SITE, os.path.join(ANCHOR, "site"))
             if os.path.isdir(os.path.join(d, "magenta"))), anchor.SITE)
        if not os.path.isdir(os.path.join(site, "magenta")):
            print(f"--baseline: no magenta in {site}; fill it with: pip install --no-deps "
                  f"--target {site} magenta==2.1.4 tf-slim==1.1.0", file=sys.stderr)
            return 2
        conv = magenta_converter(site, a.bars)

    from hmvae_tf.music.representations import get_representation
    rep = get_representation("melody")
    t0 = time.time()
    raw = load_corpus(a.collection, a.tunes, a.bars)
    notes = sum(len(__import__("note_seq").NoteSequence.FromString(s).notes) for s in raw)
    print(f"corpus: {len(raw)} {a.collection} tunes, {notes} notes "
          f"(abc2midi + note_seq, {time.time() - t0:.1f}s)")
    out = {"corpus": {"collection": a.collection, "tunes": len(raw), "notes": notes},
           "bars": a.bars}
    # ours: as the dataset builder runs it (batches of --batch NoteSequences) and one by one.
    out["ours"] = time_runs("ours", raw, lambda seqs: sum(
        len(rep.extract_windows_batch(seqs[i:i + a.batch], a.bars).piece)
        for i in range(0, len(seqs), a.batch)), a.runs)
    out["ours_one_by_one"] = time_runs("ours_one_by_one", raw, lambda seqs: sum(
        len(rep.extract_windows(ns, a.bars)[0]) for ns in seqs), a.runs)
    if conv is not None:
        out["magenta"] = time_runs("magenta", raw, lambda seqs: sum(
            len(conv.to_tensors(ns).inputs) for ns in seqs), a.runs)
        for key in ("windows_per_s", "windows_per_cpu_s", "noteseqs_per_s"):
            out["ratio_" + key] = out["ours"][key] / out["magenta"][key]
            out["ratio_one_by_one_" + key] = out["ours_one_by_one"][key] / out["magenta"][key]
    print()
    print("| converter | windows | s/corpus (wall) | windows/s (wall) | windows/CPU-s | "
          "NoteSequences/s |")
    print("|---|---|---|---|---|---|")
    names = {"ours": f"ours, batches of {a.batch}", "ours_one_by_one": "ours, one by one",
             "magenta": "Magenta OneHotMelodyConverter (eval, uncapped)"}
    for name in ("ours", "ours_one_by_one", "magenta"):
        if name in out:
            r = out[name]
            print(f"| {names[name]} | {r['windows']} | {r['s_per_corpus_median']:.4f} | "
                  f"{r['windows_per_s']:.0f} | {r['windows_per_cpu_s']:.0f} | "
                  f"{r['noteseqs_per_s']:.0f} |")
    if "magenta" in out:
        print(f"ours/magenta windows/s: batched {out['ratio_windows_per_s']:.1f}x wall, "
              f"{out['ratio_windows_per_cpu_s']:.1f}x CPU; one by one "
              f"{out['ratio_one_by_one_windows_per_s']:.1f}x wall, "
              f"{out['ratio_one_by_one_windows_per_cpu_s']:.1f}x CPU")
    print(f"ours vs the anchor's reference {MAGENTA_REFERENCE_WPS} windows/s: "
          f"{out['ours']['windows_per_s'] / MAGENTA_REFERENCE_WPS:.1f}x")
    if a.build_pieces:
        out["build"] = build_rate(a.build_pieces)
        b = out["build"]
        print(f"end-to-end TFDS mel_2bar build of {b['pieces']} pieces: {b['examples']} "
              f"examples in {b['seconds']:.1f}s = {b['examples_per_s']:.0f} examples/s")
    print("RESULT " + json.dumps(out))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
