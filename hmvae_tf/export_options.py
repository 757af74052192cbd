"""`hmvae export`'s command line, the export's names and defaults it explains, the export's
metadata file, and which version directory of an export base a path names.

Kept apart from `export`, which needs TensorFlow at import, so that `hmvae export --help`
answers at once and light readers of an export's metadata (the server, the CLI) need no
TensorFlow; `export` takes these names from here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TYPE_CHECKING

from hmvae_tf import arg_types

if TYPE_CHECKING:
    from hmvae_tf.configs import Config

CONFIG_ASSET = "hmvae_config.json"
SIGNATURES = ("sample", "decode", "encode", "reconstruct", "interpolate")
# The XLA export decodes a request of at least 2 x MIN_SHARD_ROWS rows in this many pieces.
XLA_DECODE_SHARDS = 2
MIN_SHARD_ROWS = 4  # 8 rows and up: 1.05-1.3x at 8-24 rows on 2 cores (was 16, BUILD.md)
# Hierarchical exports decode requests of at most this many rows with every bar at once;
# the XLA export only if one step of the core decoder reads at least PARALLEL_BARS_MIN_BYTES
# of weights (below that, XLA's step-by-step loop runs from cache and was as fast).
PARALLEL_BARS_ROWS = 2
PARALLEL_BARS_MIN_BYTES = 16 << 20
# The products' dtype in an export's graphs: model.precision.POLICIES, named here without
# importing TensorFlow.
DTYPE_POLICIES = ("float32", "mixed_bfloat16")
# The metadata keys that say where an export's weights came from, beside what every export
# records: the trained model directory and the step of its checkpoint (kept through a
# re-export), and for `--from_saved_model` the export whose weights were read.
TRAINED_AT = ("model_dir", "training_step")
RE_EXPORTED_FROM = "re_exported_from"
# The note on the shipped versions that a one-off re-exported in place, from their own
# weights (BUILD.md, "hmvae export"): what was done and why. No command writes or reads it.
RE_EXPORTED_IN_PLACE = "re_exported_in_place"


def read_metadata(version_dir: str) -> dict:
    """An export's `assets.extra/hmvae_config.json`: its config, tracks, sizes and options.
    Raises FileNotFoundError saying so for a SavedModel that `hmvae export` did not write."""
    path = os.path.join(version_dir, "assets.extra", CONFIG_ASSET)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{version_dir} is not an hmvae SavedModel (no assets.extra/{CONFIG_ASSET}); "
            "export one with `hmvae export`")
    with open(path) as f:
        return json.load(f)


def read_config(version_dir: str) -> Config:
    """An export's model config, from its metadata alone (read_metadata): no TensorFlow, no
    weights loaded."""
    from hmvae_tf.configs import Config

    return Config.from_json(json.dumps(read_metadata(version_dir)["config"]))


def resolve_saved_model(path: str, version: int | None = None) -> str:
    """A SavedModel version directory, or the newest version (or `version`) under an export
    base. FileNotFoundError naming what is there when there is no such SavedModel."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        name = os.path.basename(os.path.abspath(path))
        if version is not None and name != str(version):
            raise FileNotFoundError(f"{path} is the SavedModel of version {name}, not "
                                    f"{version}; give its export base to choose a version")
        return path
    versions = sorted(int(d) for d in (os.listdir(path) if os.path.isdir(path) else [])
                      if d.isdigit() and os.path.exists(os.path.join(path, d, "saved_model.pb")))
    if not versions:
        raise FileNotFoundError(f"no SavedModel at {path} (neither saved_model.pb nor "
                                "numbered version directories)")
    if version is None:
        return os.path.join(path, str(versions[-1]))
    if version not in versions:
        raise FileNotFoundError(f"{path} has no version {version}; it has "
                                f"{', '.join(map(str, versions))}")
    return os.path.join(path, str(version))


def temporary_folder(export_base: str, version: int, pid: int) -> str:
    """Where `hmvae export` writes a version before renaming it into place: a name that TF
    Serving and `hmvae serve` skip, as it is not a number."""
    return os.path.join(export_base, f".tmp-{version}-{pid}")


def unfinished_exports(export_base: str) -> list[str]:
    """The temporary folders of exports whose process is gone without removing them (killed
    with SIGKILL, or the machine stopped): nothing loads them, they only take room."""
    found = []
    for name in sorted(os.listdir(export_base)) if os.path.isdir(export_base) else []:
        match = re.fullmatch(r"\.tmp-\d+-(\d+)", name)
        if match and not _running(int(match.group(1))):
            found.append(os.path.join(export_base, name))
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def dtype_policy(metadata: dict) -> str:
    """The products' dtype an export runs in (exports from before the option: float32)."""
    return metadata.get("options", {}).get("dtype_policy", "float32")


def reproduce_flags(options: dict) -> str:
    """The `hmvae export` flags that make an export with these options again: `options` is the
    "options" record of its metadata (flags left at their defaults are None or absent)."""
    flags = " --jit_compile" if options.get("jit_compile") else ""
    if options.get("dtype_policy", "float32") != "float32":
        flags += f" --dtype_policy={options['dtype_policy']}"
    for name in ("decode_shards", "parallel_bars_rows"):
        if options.get(name) is not None:
            flags += f" --{name}={options[name]}"
    return flags


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae export`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Write the newest checkpoint of a model directory as a SavedModel version "
        "<export_base>/<version>/ with the serving signatures (sample, encode, decode, "
        "reconstruct, interpolate), which hmvae serve, TF Serving, the in-process commands "
        "(--saved_model) and hmvae tfjs read. A version is written whole or not at all. "
        "--from_saved_model makes a new export from an earlier export's weights instead, "
        "with this code's signatures and the options given here: how to get an XLA or "
        "bfloat16 variant of a shipped model, or bring an old export up to date, without "
        "its checkpoint.")
    parser.epilog = examples(
        "hmvae export --model_dir=runs/m16 --export_base=saved_models/mel_16bar",
        "hmvae export --model_dir=runs/m16 --export_base=saved_models/mel_16bar --jit_compile",
        "hmvae export --from_saved_model=saved_models/mel_2bar --export_base=exports/mel_2bar_xla"
        " --jit_compile")
    source = parser.add_argument_group(
        "model: either (one is required)").add_mutually_exclusive_group(required=True)
    source.add_argument("--model_dir", help="trained model directory (its newest checkpoint)")
    source.add_argument("--from_saved_model", metavar="PATH",
                        help="an export's version directory, or its export base (the newest "
                        "version): re-export its weights and config, and its attribute vectors")
    parser.add_argument("--export_base", required=True,
                        help="base path; the SavedModel goes to <export_base>/<version>/")
    parser.add_argument("--version", type=arg_types.int_at_least(1), default=None,
                        help="version number (default: one more than the newest present)")
    parser.add_argument("--jit_compile", action="store_true",
                        help="XLA-compile the signatures (faster on CPU in hmvae serve; "
                        "TF Serving then needs --xla_cpu_compilation_enabled)")
    parser.add_argument("--dtype_policy", choices=DTYPE_POLICIES, default="float32",
                        help="dtype of the LSTM and decoder products in the signatures "
                        "(variables, states and logits stay float32). mixed_bfloat16 pays "
                        "only on a CPU with AVX512_BF16 or AMX, with --jit_compile and XLA's "
                        "classic CPU runtime (XLA_FLAGS=--xla_cpu_use_thunk_runtime=false, "
                        "which hmvae serve and the in-process clients set for such an "
                        "export). On a "
                        "2-core Zen 4, 64 2-bar samples took 21.4 against 32.5-33.9 ms side "
                        "by side, 1 sample and interpolate 8 the same time, 4-32 rows and the "
                        "encoder up to 1.65x longer; the shipped melody model's "
                        "reconstructions kept 99.86 %% of their tokens (bench/README.md). "
                        "Without bfloat16 instructions it is emulated and slow; float32 is "
                        "portable")
    # default=SUPPRESS: these defaults depend on the model and --jit_compile, which the help
    # text explains; export_saved_model picks them when the flag is absent.
    parser.add_argument("--decode_shards", type=arg_types.int_at_least(1),
                        default=argparse.SUPPRESS, metavar="N",
                        help=f"decode requests of at least {MIN_SHARD_ROWS} rows per shard in "
                        "this many pieces at once, to keep every core busy (default: "
                        f"{XLA_DECODE_SHARDS} with --jit_compile, where it pays on 2 cores, "
                        "else 1); the melodies do not change")
    parser.add_argument("--parallel_bars_rows", type=arg_types.int_at_least(0),
                        default=argparse.SUPPRESS, metavar="N",
                        help="hierarchical models: decode requests of at most N rows with every "
                        "bar at once, in a few batched passes instead of one "
                        f"step after another (0 = never; default {PARALLEL_BARS_ROWS}, with "
                        "--jit_compile only if a step reads at least "
                        f"{PARALLEL_BARS_MIN_BYTES >> 20} MiB of decoder weights, where it "
                        "pays); the melodies do not change")


def load_exported(saved_model: str) -> tuple:
    """The Keras model an export's weights rebuild, and the metadata that says where they came
    from: the source's own model_dir and training_step (so a model card still finds the
    training run), and the source version itself."""
    from hmvae_tf.export import load_model
    from hmvae_tf.progress import say

    source = resolve_saved_model(saved_model)
    say(f"loading {source} ...")
    metadata = read_metadata(source)
    model = load_model(source)
    origin = {key: metadata[key] for key in TRAINED_AT if key in metadata}
    origin[RE_EXPORTED_FROM] = os.path.abspath(source)
    return model, origin


def run(args: argparse.Namespace) -> int:
    """`hmvae export`: a trained model directory -> the next SavedModel version; exit status."""
    import tensorflow as tf

    from hmvae_tf.checkpoints import load_model_at
    from hmvae_tf.cli import CommandError
    from hmvae_tf.export import export_saved_model
    from hmvae_tf.progress import say

    for folder in unfinished_exports(args.export_base):
        print(f"note: {folder} is what an export that did not finish left behind (its "
              "process is gone); servers skip it, delete it to free the room", file=sys.stderr)
    if args.from_saved_model:
        model, origin = load_exported(args.from_saved_model)
    else:
        say(f"loading {args.model_dir} ...")
        model, _, step = load_model_at(args.model_dir)  # the step of the weights read
        origin = {"model_dir": os.path.abspath(args.model_dir), "training_step": step}
    config = model.config
    try:
        path = export_saved_model(model, args.export_base, args.version, args.jit_compile,
                                  extra_metadata=origin,
                                  decode_shards=getattr(args, "decode_shards", None),
                                  parallel_bars_rows=getattr(args, "parallel_bars_rows", None),
                                  dtype_policy=args.dtype_policy, progress=True,
                                  assets_from=origin.get(RE_EXPORTED_FROM))
    except (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError) as err:
        # A full disk or a read-only export base, as TensorFlow's file system reports them
        # (not running out of memory, which is a ResourceExhaustedError too).
        if "No space left on device" not in err.message and not isinstance(
                err, tf.errors.PermissionDeniedError):
            raise
        raise CommandError(f"cannot write the export: {err.message}; nothing was exported "
                           "(the partial copy was removed)") from None
    except OSError as err:
        if isinstance(err, (FileNotFoundError, FileExistsError)):  # said as they are
            raise
        raise CommandError(f"cannot write the export: {err.strerror or err}"
                           + (f": {err.filename}" if err.filename else "")
                           + "; nothing was exported (the partial copy was removed)") from None
    in_effect = read_metadata(path).get("in_effect", {})
    how = [f"products in {args.dtype_policy}"]
    shards = in_effect.get("decode_shards")
    if args.jit_compile:
        how.append("XLA-compiled, decoding in one piece" if shards == 1
                   else f"XLA-compiled, decoding in {shards} shards")
    elif shards and shards > 1:
        how.append(f"decoding in {shards} shards")
    if in_effect.get("parallel_bars_rows"):
        how.append(f"every bar at once up to {in_effect['parallel_bars_rows']} rows")
    print(f"exported {config.name} ({', '.join(config.tracks)}, {config.num_steps} steps, "
          f"z {config.z_size}; {'; '.join(how)}) to {path}")
    print("signatures: " + ", ".join(SIGNATURES) + " (serving_default = sample)")
    return 0
