"""`hmvae attribute`: latent attribute vectors (note density, pitch) - build them, apply them.

An attribute vector is a direction in z that changes one property of the music, found from
data as in the MusicVAE paper: encode many training windows, rank them by the attribute, and
take the mean posterior mean of the top quarter minus that of the bottom quarter. Adding
`amount` times the vector to a window's z and decoding should move the attribute that way.

    # build the vectors of an export from its training split (and measure them on test windows)
    hmvae attribute --compute --saved_model=saved_models/mel_2bar [--data_dir=DIR]
    # apply one to a MIDI file's window (in-process or on a served model)
    hmvae attribute song.mid --name=density --amount=1.0 --saved_model=saved_models/mel_2bar --out=out/
    hmvae attribute song.mid --name=density --amount=-1,1 --server=localhost:8500 --model=mel_2bar --out=out/

The vectors belong to one exported version (another training run has another latent space),
so they are stored in that version's `assets.extra/hmvae_attributes.json`, beside the
`hmvae_config.json` that `hmvae export` writes there. TF Serving ignores `assets.extra`, so the
file does not change what is served. With `--server`, the file is looked up as
`saved_models/<model>/<served version>/assets.extra/hmvae_attributes.json` (or `--attributes`).

Attributes (per window; tracks as in configs.REPRESENTATION_TRACKS):
    density  note onsets in the window (melody/bass: tokens >= 2; drums: hits in each step's mask)
    pitch    mean MIDI pitch of the melody/bass note onsets (windows without notes are left out)
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from hmvae_tf import arg_types
from hmvae_tf.cli import CommandError, UsageError
from hmvae_tf.configs import STEPS_PER_BAR
from hmvae_tf.serving import model_args

if TYPE_CHECKING:
    from hmvae_tf.evaluate import Codec

ATTRIBUTES_FILE = "hmvae_attributes.json"
FORMAT = "hmvae-attributes/1"
PITCH_TRACKS = ("melody", "bass")
DEFINITIONS = {
    "density": "note onsets per window (melody/bass tokens >= 2; drum hits per step mask)",
    "pitch": "mean MIDI pitch of the melody/bass note onsets",
}
DEFAULT_AMOUNTS = (-1.0, 0.0, 1.0)

# The windows the vectors come from (training split) and are measured on (test split) unless
# told, alike in `hmvae card` and `hmvae attribute --compute`, so that the latter rebuilds a
# card's vectors from the same windows (the first ones, the same seed). Models longer than 4
# bars get fewer: their encoder costs 8x more per window (a 16-bar card spent 233 s on
# 10,000 / 500 windows on 2 cores, BUILD.md).
SHORT_MODEL_WINDOWS = (10000, 500)
LONG_MODEL_WINDOWS = (4000, 200)
WINDOWS_HELP = ("training windows the attribute vectors come from (the first ones; default: "
                "10000 for models of up to 4 bars, 4000 for longer ones, whose encoder costs "
                "more per window: 8x for 16 bars)")
TEST_WINDOWS_HELP = ("windows the attribute vectors are measured on (the first ones of the "
                     "test split, or of card's --split; default: 500 for models of up to 4 "
                     "bars, 200 for longer ones)")


def default_windows(num_steps: int) -> tuple[int, int]:
    """(training, test) windows of a model's attribute vectors unless told (WINDOWS_HELP)."""
    return SHORT_MODEL_WINDOWS if num_steps <= 4 * STEPS_PER_BAR else LONG_MODEL_WINDOWS


# --- attributes of token windows ------------------------------------------------------------
def _as_3d(tokens: np.ndarray, tracks) -> np.ndarray:
    tokens = np.asarray(tokens)
    return tokens[..., None] if tokens.ndim == 2 and len(tracks) == 1 else tokens


def note_counts(tokens: np.ndarray, tracks: Sequence[str]) -> np.ndarray:
    """Note onsets per window: tokens [N, T(, K)] -> int [N]."""
    tokens = _as_3d(tokens, tracks)
    total = np.zeros(len(tokens), np.int64)
    for k, track in enumerate(tracks):
        values = tokens[..., k]
        if track == "drums":
            bits = np.unpackbits(values.astype(">u2").view(np.uint8).reshape(*values.shape, 2),
                                 axis=-1)
            total += bits.sum(axis=(1, 2)).astype(np.int64)
        else:
            total += (values >= 2).sum(axis=1)
    return total


def mean_pitches(tokens: np.ndarray, tracks: Sequence[str]) -> np.ndarray:
    """Mean MIDI pitch of the melody/bass onsets per window (NaN where there is none)."""
    from hmvae_tf.music.melody import PITCH_OFFSET

    tokens = _as_3d(tokens, tracks)
    ks = [k for k, t in enumerate(tracks) if t in PITCH_TRACKS]
    if not ks:
        return np.full(len(tokens), np.nan)
    values = tokens[..., ks].reshape(len(tokens), -1)
    onsets = values >= 2
    sums = np.where(onsets, values + PITCH_OFFSET, 0).sum(1).astype(np.float64)
    counts = onsets.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def attribute_values(name: str, tokens: np.ndarray, tracks: Sequence[str]) -> np.ndarray:
    """The named attribute of each window [N], what windows are ranked by (NaN: has none)."""
    if name == "density":
        return note_counts(tokens, tracks).astype(np.float64)
    if name == "pitch":
        return mean_pitches(tokens, tracks)
    raise ValueError(f"unknown attribute {name!r}; known: {', '.join(DEFINITIONS)}")


def available(tracks: Sequence[str]) -> list[str]:
    """The attributes that make sense for a model with these tracks."""
    return [n for n in DEFINITIONS if n != "pitch" or any(t in PITCH_TRACKS for t in tracks)]


# --- encoders/decoders ----------------------------------------------------------------------
class ClientCodec:
    """A MusicVAEClient (served or in-process SavedModel) with the interface of
    evaluate.Codec: mu(tokens [N, T, K]) -> [N, Z], decode(z) -> tokens [N, T, K] (argmax)."""

    def __init__(self, client):
        self.client = client
        self.tracks, self.num_steps, self.z_size = client.tracks, client.num_steps, client.z_size

    def _to_client(self, tokens):
        tokens = np.asarray(tokens, np.int32)
        return tokens[..., 0] if len(self.tracks) == 1 and tokens.ndim == 3 else tokens

    def mu(self, tokens: np.ndarray) -> np.ndarray:
        """Posterior means [N, Z] of windows [N, T, K] (or [N, T] for one track)."""
        return self.client.encode(self._to_client(tokens))[1]

    def decode(self, z: np.ndarray, temperature: float = 0.0, seed: int = 0) -> np.ndarray:
        """Tokens [N, T, K] decoded from z [N, Z]; argmax at the default temperature 0."""
        return _as_3d(self.client.decode(z, temperature=temperature, seed=seed), self.tracks)


# --- vectors --------------------------------------------------------------------------------
def compute_vectors(codec: Codec | ClientCodec, tokens: np.ndarray,
                    names: Iterable[str] | None = None, quantile: float = 0.25,
                    seed: int = 0) -> dict:
    """name -> {vector, definition, windows, low_mean, high_mean, norm} from windows [N, T, K].

    Windows are ranked by the attribute (ties in random order, seeded); the vector is the
    mean posterior mean of the top `quantile` minus that of the bottom `quantile`.
    """
    tracks = codec.tracks
    names = list(names or available(tracks))
    tokens = _as_3d(tokens, tracks)
    mus = codec.mu(tokens)
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        values = attribute_values(name, tokens, tracks)
        valid = np.flatnonzero(~np.isnan(values))
        count = max(1, int(round(len(valid) * quantile)))
        if len(valid) < 2 * count or len(valid) < 4:
            raise ValueError(f"too few windows with a {name} ({len(valid)}) to build its vector")
        order = valid[np.lexsort((rng.random(len(valid)), values[valid]))]
        low, high = order[:count], order[-count:]
        vector = mus[high].mean(0) - mus[low].mean(0)
        out[name] = {
            "definition": DEFINITIONS[name],
            "vector": [round(float(v), 6) for v in vector],
            "norm": float(np.linalg.norm(vector)),
            "windows": int(len(valid)),
            "quarter": int(count),
            "low_mean": float(values[low].mean()),
            "high_mean": float(values[high].mean()),
            "mean": float(values[valid].mean()),
        }
    return out


def measure_effect(codec: Codec | ClientCodec, tokens: np.ndarray,
                   vector: np.ndarray | Sequence[float],
                   amounts: Iterable[float] = DEFAULT_AMOUNTS) -> dict:
    """Decodes (temperature 0) each window's mu + amount * vector and summarises the decoded
    attributes: {amounts, windows, density: [mean per amount], pitch: [...], raised, lowered}.

    raised / lowered: shares of windows whose note count at the largest / smallest amount is
    above / below the count at amount 0 (the reconstruction)."""
    tracks = codec.tracks
    tokens = _as_3d(tokens, tracks)
    amounts = [float(a) for a in amounts]
    if 0.0 not in amounts:
        amounts = sorted(amounts + [0.0])
    mus = codec.mu(tokens)
    vector = np.asarray(vector, np.float32)
    z = np.concatenate([mus + a * vector for a in amounts]).astype(np.float32)
    decoded = codec.decode(z).reshape(len(amounts), len(tokens), *tokens.shape[1:])
    counts = np.stack([note_counts(d, tracks) for d in decoded])
    pitches = np.stack([mean_pitches(d, tracks) for d in decoded])
    zero = amounts.index(0.0)
    result = {
        "amounts": amounts,
        "windows": int(len(tokens)),
        "input_density": float(note_counts(tokens, tracks).mean()),
        "density": [float(c.mean()) for c in counts],
        "raised": float((counts[-1] > counts[zero]).mean()),
        "lowered": float((counts[0] < counts[zero]).mean()),
    }
    if "pitch" in available(tracks):
        result["pitch"] = [float(np.nanmean(p)) if np.isfinite(p).any() else None
                           for p in pitches]
    return result


def build(codec: Codec | ClientCodec, train_tokens: np.ndarray,
          test_tokens: np.ndarray | None = None, names: Iterable[str] | None = None,
          amounts: Iterable[float] = DEFAULT_AMOUNTS, quantile: float = 0.25, seed: int = 0,
          source: dict | None = None, model_info: dict | None = None) -> dict:
    """The attributes document: vectors from train_tokens, effects measured on test_tokens."""
    vectors = compute_vectors(codec, train_tokens, names, quantile, seed)
    doc = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"tracks": list(codec.tracks), "num_steps": codec.num_steps,
                  "z_size": codec.z_size, **(model_info or {})},
        "source": {"windows": int(len(train_tokens)), "quantile": quantile, **(source or {})},
        "attributes": vectors,
    }
    if test_tokens is not None and len(test_tokens):
        doc["effects"] = {name: measure_effect(codec, test_tokens, v["vector"], amounts)
                          for name, v in vectors.items()}
        doc["effects_source"] = {"windows": int(len(test_tokens)),
                                 **{k: v for k, v in (source or {}).items() if k != "split"},
                                 "split": (source or {}).get("test_split", "test")}
    return doc


def save(doc: dict, path: str) -> str:
    """Writes the document through a temporary file, so a reader never sees half of it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)
    return path


def load(path: str) -> dict:
    """Reads an attributes document; a ValueError for a JSON file of another format."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not an hmvae attributes file (not JSON: {err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not an hmvae attributes file (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r})")
    return doc


def vector_of(doc: dict, name: str, z_size: int | None, path: str = "") -> np.ndarray:
    """A named vector as float32 [Z], refused if it was built for another latent size."""
    attrs = doc.get("attributes", {})
    if name not in attrs:
        raise ValueError(f"{path or 'the attributes file'} has no {name!r} vector; it has: "
                         f"{', '.join(attrs) or 'none'}")
    vector = np.asarray(attrs[name]["vector"], np.float32)
    if z_size and len(vector) != z_size:
        raise ValueError(f"the {name!r} vector in {path} has {len(vector)} dimensions but the "
                         f"model's z has {z_size}: it belongs to another model")
    return vector


def format_effects(doc: dict) -> str:
    """Markdown table: decoded note count (and pitch) per amount of each vector."""
    effects = doc.get("effects", {})
    if not effects:
        return ""
    lines = ["| vector | amount | mean notes | mean pitch | windows raised / lowered |",
             "|---|---|---|---|---|"]
    for name, eff in effects.items():
        for i, a in enumerate(eff["amounts"]):
            pitch = eff.get("pitch", [None] * len(eff["amounts"]))[i]
            share = ""
            if a == max(eff["amounts"]):
                share = f"{eff['raised']:.2f} raised"
            elif a == min(eff["amounts"]):
                share = f"{eff['lowered']:.2f} lowered"
            lines.append(f"| {name} | {a:+g} | {eff['density'][i]:.2f} | "
                         f"{'' if pitch is None else f'{pitch:.1f}'} | {share} |")
    return "\n".join(lines)


# --- data -----------------------------------------------------------------------------------
def read_windows(dataset: str, split: str, data_dir: str | None, max_windows: int = 0,
                 tracks: Sequence[str] = ("melody",)) -> np.ndarray:
    """The first max_windows (0: all) token windows of a TFDS split as int32 [N, T, K]."""
    import tensorflow_datasets as tfds

    from hmvae_tf import data

    ds = data.load_tokens(dataset, split, data_dir)
    if max_windows:
        ds = ds.take(max_windows)
    parts = list(tfds.as_numpy(ds.batch(2048)))
    if not parts:
        raise ValueError(f"the {split} split of {dataset} has no windows")
    return _as_3d(np.concatenate(parts).astype(np.int32), tracks)


# --- command line ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae attribute` (apply mode, and --compute)."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Latent attribute vectors. Apply: encode a window of a MIDI file, add --amount times "
        "the --name vector to its z, decode and write MIDI (also the unchanged "
        "reconstruction) at the input's tempo, meter and instruments: the window's meter "
        "(2/4, 2/2 ... when its bars line up with the window, else 4/4) and tempi, and the "
        "programs of the parts read (a melody's; a trio's melody and bass). --compute: build "
        "the vectors of a model from a dataset split (mean z of the top quarter minus the "
        "bottom quarter by the attribute) and measure them on test windows.")
    parser.epilog = examples(
        "hmvae attribute a.mid --name=density --amount=-1,1 --saved_model=saved_models/mel_2bar "
        "--out=out/",
        "hmvae attribute --compute --saved_model=saved_models/mel_2bar "
        "--attributes=out/mel_2bar_attributes.json")
    parser.add_argument("midi", nargs="?", help="input MIDI file (apply mode)")
    parser.add_argument("--name", default="density",
                        help=f"attribute vector to apply ({', '.join(DEFINITIONS)})")
    parser.add_argument("--amount", type=arg_types.finite_floats, default="1.0",
                        help="multiple of the vector to add; a comma list writes one file each; "
                        "0 alone writes only the reconstruction, which needs no vectors")
    model_args.add_model_arguments(parser)
    g = parser.add_argument_group("attribute vectors")
    g.add_argument("--attributes", default="",
                   help=f"attributes JSON (default: <version>/assets.extra/{ATTRIBUTES_FILE})")
    g = parser.add_argument_group("apply")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--window", type=arg_types.int_at_least(0), default=0,
                       help="which window with notes of the input (1-bar hop; windows without "
                       "notes are not counted, so one may start on empty bars: the input's "
                       "line says so)")
    where.add_argument("--bar", type=arg_types.int_at_least(0), default=None,
                       help=arg_types.BAR_HELP)
    g.add_argument("--instrument", type=arg_types.int_at_least(0), default=None,
                   help="melody models: take the input's line from this instrument, "
                   + arg_types.INSTRUMENT_NUMBER + "; default: " + arg_types.MELODY_PART_RULE)
    g.add_argument("--no_octave_shift", action="store_true",
                   help=arg_types.NO_OCTAVE_SHIFT_HELP)
    g.add_argument("--temperature", type=arg_types.non_negative_float, default=0.0,
                   help=arg_types.TEMPERATURE_HELP)
    g.add_argument("--seed", type=arg_types.seed, default=0,
                   help=arg_types.SEED_HELP + " (with --temperature > 0)")
    g.add_argument("--qpm", type=arg_types.qpm, default=None,
                   help="tempo of the written MIDI files (quarter notes per minute); default: "
                   "the input's tempi in its window, tempo changes included (120 if the file "
                   "sets none); given: that one tempo throughout; a first tempo other than 120 "
                   "is in the file names (_q90)")
    g.add_argument("--out", default="out", help="output directory (created if missing)")
    g = parser.add_argument_group("compute")
    g.add_argument("--compute", action="store_true",
                   help="build the vectors (and measure them) instead of applying one")
    g.add_argument("--dataset", default=None, help=arg_types.DATASET_HELP)
    g.add_argument("--data_dir", type=arg_types.tfds_data_dir, default=None,
                   help=arg_types.DATA_DIR_HELP)
    g.add_argument("--split", default="train", help="split the vectors come from")
    g.add_argument("--measure_split", default="test",
                   help="split the vectors are measured on (--test_windows of it); a build "
                   "without a test split: e.g. --measure_split=validation; as card's --split")
    g.add_argument("--max_windows", type=arg_types.int_at_least(0), default=None,
                   help=WINDOWS_HELP + "; from --split, 0: all; as card's --attribute_windows")
    g.add_argument("--test_windows", type=arg_types.int_at_least(0), default=None,
                   help=TEST_WINDOWS_HELP + "; 0: build the vectors without measuring them; "
                   "as card's --attribute_test_windows")
    g.add_argument("--names", default="", help="attributes to build (default: all that apply)")
    g.add_argument("--amounts", type=arg_types.finite_floats, default="-1,0,1",
                   help="amounts to measure")
    g.add_argument("--force", action="store_true",
                   help="replace the vectors already in the attributes file (the ones a model "
                   "card measured, for a shipped model)")



def _saved_model_meta(version_dir: str) -> dict:
    from hmvae_tf.export_options import read_metadata

    try:
        return read_metadata(version_dir)
    except OSError:
        return {}


def _default_attributes_path(args, client) -> str:
    if args.attributes:
        return args.attributes
    if args.saved_model:
        return os.path.join(args.saved_model, "assets.extra", ATTRIBUTES_FILE)
    version = str(getattr(client.backend, "served_version", "") or args.model_version or "")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [os.path.join(base, "saved_models", args.model, version, "assets.extra",
                               ATTRIBUTES_FILE) for base in (os.getcwd(), root)]
    found = next((c for c in candidates if os.path.exists(c)), None)
    if found is None:
        raise ValueError(
            f"no attribute vectors found for model {args.model!r} version {version} (looked "
            f"for {candidates[0]}); for a model served from another export base, pass "
            f"--attributes=<export base>/{version or '<version>'}/assets.extra/{ATTRIBUTES_FILE}")
    return found


def run(args: argparse.Namespace) -> int:
    """`hmvae attribute`: builds the vectors or applies one to a MIDI file; exit status."""
    from hmvae_tf.serving.client import ClientError

    if args.compute:
        model_args.check_model_arguments(args)
    elif not args.midi:
        raise UsageError("give an input MIDI file (or --compute to build the vectors)")
    elif not os.path.isfile(args.midi):
        raise CommandError(f"{args.midi}: no such file")
    else:
        model_args.check_model_arguments(args, out=args.out)
    client = model_args.connect(args)
    try:
        with client:
            if args.compute:
                return _compute(client, args)
            return _apply(client, args)
    except (ClientError, ValueError, OSError) as err:
        raise CommandError(str(err))


def _compute(client, args) -> int:
    meta = _saved_model_meta(args.saved_model) if args.saved_model else {}
    dataset = args.dataset or meta.get("config", {}).get("dataset")
    if not dataset:
        raise UsageError("--dataset is needed (the model's dataset is known only for "
                         "--saved_model)")
    if args.server and not args.attributes:
        raise UsageError("with --server, say where to write the vectors: --attributes=<file>")
    path = args.attributes or os.path.join(args.saved_model, "assets.extra", ATTRIBUTES_FILE)
    if os.path.exists(path) and not args.force:
        raise CommandError(f"{path} already holds attribute vectors; pass --force to replace them, "
                           "or --attributes=<file> to write the new ones elsewhere")
    codec = ClientCodec(client)
    start = time.time()
    train_windows, test_windows = default_windows(client.num_steps)
    if args.max_windows is not None:
        train_windows = args.max_windows
    if args.test_windows is not None:
        test_windows = args.test_windows
    if test_windows:  # before the training windows are encoded (run() prints the error)
        from hmvae_tf import data

        data.require_split(dataset, args.measure_split, args.data_dir,
                           purpose="to measure the vectors on", remedy=_other_measure_splits)
    train = read_windows(dataset, args.split, args.data_dir, train_windows, codec.tracks)
    test = (read_windows(dataset, args.measure_split, args.data_dir, test_windows, codec.tracks)
            if test_windows else None)
    names = [n for n in args.names.split(",") if n] or None
    info = {"source": client.description}
    if meta:
        info.update(config=meta.get("config", {}).get("name"),
                    training_step=meta.get("training_step"),
                    saved_model=os.path.abspath(args.saved_model))
    doc = build(codec, train, test, names, args.amounts,
                source={"dataset": dataset, "split": args.split, "data_dir": args.data_dir,
                        "test_split": args.measure_split},
                model_info=info)
    save(doc, path)
    print(f"{len(doc['attributes'])} attribute vectors from {len(train)} {args.split} windows of "
          f"{dataset} ({time.time() - start:.0f} s) -> {path}")
    for name, v in doc["attributes"].items():
        print(f"  {name}: |v| = {v['norm']:.2f}; bottom quarter mean {v['low_mean']:.2f}, "
              f"top quarter mean {v['high_mean']:.2f}")
    if "effects" in doc:
        print(f"decoded (temperature 0) {doc['effects_source']['windows']} "
              f"{doc['effects_source']['split']} windows with z + amount * vector:")
        print(format_effects(doc))
    return 0


def _other_measure_splits(splits: list[str]) -> str:
    """What `--compute` can do instead on a build without the split it measures on: another
    held-out split, or building the vectors without measuring them."""
    from hmvae_tf import data

    instead = "".join(f"pass --measure_split={s} or " for s in data.held_out_splits(splits)[:1])
    return instead + "pass --test_windows=0 to build them without measuring them"


def _apply(client, args) -> int:
    from hmvae_tf.serving import music_adapter

    amounts = args.amount
    # --amount=0 asks for the reconstruction only, which needs no vector: a model without
    # vectors (a trio, one just trained, whose data --compute may not have) can still show it.
    recon_only = all(a == 0.0 for a in amounts)
    path = "" if recon_only else _default_attributes_path(args, client)
    if path and not os.path.exists(path):
        raise CommandError(f"no attribute vectors at {path}; build them with `hmvae attribute "
                           f"--compute --saved_model=...` (or pass --attributes=<file>); "
                           "--amount=0 writes the reconstruction without them")
    vector = (np.zeros(client.z_size, np.float32) if recon_only
              else vector_of(load(path), args.name, client.z_size, path))
    rep = music_adapter.representation_for(client.tracks)
    music_adapter.check_instrument(rep, args.instrument)  # ValueError: run() prints it
    bars = client.num_steps // STEPS_PER_BAR
    try:
        read, octaves = music_adapter.read_input(args.midi, rep, bars, args.window,
                                                 args.instrument, args.bar,
                                                 octave_shift=not args.no_octave_shift)
    except (music_adapter.MidiReadError, music_adapter.UnusableInput) as err:
        raise CommandError(str(err))
    tokens, where, window_qpm = read.tokens, read.where, read.qpm
    qpm = args.qpm or window_qpm  # a reconstruction plays as fast as its input
    codec = ClientCodec(client)
    mu = codec.mu(_as_3d(tokens[None], client.tracks))
    rows = [0.0] + [a for a in amounts if a != 0.0]
    z = np.concatenate([mu + a * vector for a in rows]).astype(np.float32)
    if args.temperature:
        # Sampling draws per row of a batch: one call per amount, so an amount's file is the
        # same whichever other amounts are asked with it (the names do not say them).
        decoded = np.concatenate([codec.decode(z[i:i + 1], args.temperature, args.seed)
                                  for i in range(len(z))])
    else:
        decoded = codec.decode(z, args.temperature, args.seed)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.midi))[0]
    # What changes the output is in the name, so another run does not overwrite it.
    stem += (music_adapter.input_tag(args.window, args.instrument, args.bar)
             + (f"_t{args.temperature:g}_seed{args.seed}" if args.temperature else "")
             + ("_noshift" if args.no_octave_shift else "")
             + music_adapter.qpm_tag(qpm))
    label = model_args.model_label(args)
    print(f"{client.description}: " + ("the reconstruction only (--amount=0)" if recon_only
                                        else f"{args.name} vector from {path}"))
    count = int(note_counts(tokens[None], client.tracks)[0])
    print(f"  input {where}: {count} note{'' if count == 1 else 's'}, "
          + (read.tempo if args.qpm else music_adapter.tempo_hint(read, args.midi)))
    replaced = []
    for a, row in zip(rows, decoded):
        suffix = "recon" if a == 0.0 else f"{args.name}{a:+g}"
        out = os.path.join(args.out, f"{label}_{stem}_{suffix}.mid")
        ns = music_adapter.written(rep, row if len(client.tracks) > 1 else row[:, 0],
                                   read.timing, args.qpm, -octaves,  # in the input's register
                                   read.programs)  # and played by its instruments
        music_adapter.write_output(ns, out, replaced)
        pitch = (mean_pitches(row[None], client.tracks)[0] if not octaves
                 else np.mean([n.pitch for n in ns.notes]) if ns.notes else np.nan)
        count = int(note_counts(row[None], client.tracks)[0])
        print(f"  amount {a:+g}: {count:3d} note{'' if count == 1 else 's'}"
              + (f", mean pitch {pitch:.1f}" if np.isfinite(pitch) else "") + f" -> {out}")
    music_adapter.say_replaced(replaced)
    return 0
