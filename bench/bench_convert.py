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

Magenta needs /work/shared/anchors/magenta (anchor_shims.py) and magenta 2.1.4 + tf-slim 1.1.0
in a site folder: the anchor's site/ or --magenta_site (filled with
`pip install --no-deps --target <dir> magenta==2.1.4 tf-slim==1.1.0`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
ANCHOR = "/work/shared/anchors/magenta"
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
    from note_seq.protobuf import music_pb2
    results = []
    for r in range(runs + 1):
        seqs = [music_pb2.NoteSequence.FromString(s) for s in raw]
        t0 = time.perf_counter()
        windows = 0
        for ns in seqs:
            windows += convert(ns)
        dt = time.perf_counter() - t0
        if r:
            results.append((dt, windows))
        print(f"  {label} run {r}: {dt:.4f}s windows={windows}", flush=True)
    med = statistics.median(d for d, _ in results)
    wins = results[0][1]
    return {"windows": wins, "s_per_corpus_median": med, "windows_per_s": wins / med,
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
    p.add_argument("--baseline", action="store_true", help="also time Magenta's converter")
    p.add_argument("--magenta_site", default=os.environ.get("HMVAE_MAGENTA_SITE", ""),
                   help="folder with magenta 2.1.4 + tf-slim (default: the anchor's site/)")
    p.add_argument("--build_pieces", type=int, default=0,
                   help="also time an end-to-end TFDS mel_2bar build of this many pieces")
    p.add_argument("--json_out", default="")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    conv = None
    if a.baseline:  # import Magenta (and its shims) before anything imports TensorFlow
        site = a.magenta_site or os.path.join(ANCHOR, "site")
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
    out["ours"] = time_runs("ours", raw, lambda ns: len(rep.extract_windows(ns, a.bars)[0]),
                            a.runs)
    if conv is not None:
        out["magenta"] = time_runs("magenta", raw, lambda ns: len(conv.to_tensors(ns).inputs),
                                   a.runs)
        out["ratio_windows_per_s"] = out["ours"]["windows_per_s"] / out["magenta"]["windows_per_s"]
        out["ratio_noteseqs_per_s"] = (out["ours"]["noteseqs_per_s"]
                                       / out["magenta"]["noteseqs_per_s"])
    print()
    print("| converter | windows | s/corpus | windows/s | NoteSequences/s |")
    print("|---|---|---|---|---|")
    for name in ("ours", "magenta"):
        if name in out:
            r = out[name]
            print(f"| {name} | {r['windows']} | {r['s_per_corpus_median']:.4f} | "
                  f"{r['windows_per_s']:.0f} | {r['noteseqs_per_s']:.0f} |")
    if "magenta" in out:
        print(f"ratio ours/magenta: windows/s {out['ratio_windows_per_s']:.1f}x, "
              f"NoteSequences/s {out['ratio_noteseqs_per_s']:.1f}x")
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
