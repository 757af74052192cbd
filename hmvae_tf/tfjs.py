"""`hmvae tfjs`: an exported SavedModel as TF.js graph models for the browser demo (web/).

The served SavedModel cannot go to the browser as it is: its randomness comes from per-row
stateless seeds, and TF.js has no stateless random ops (it has the stateful RandomUniform,
RandomStandardNormal and Multinomial). So the browser variant is traced anew: the model is
rebuilt from the SavedModel (export.load_model: its config from assets.extra, every weight
matched by its Keras path), and small functions that
draw z and the Gumbel noise with the stateful ops, and carry no Assert ops, are converted (the
tensorflowjs converter, lowered v1 loops) one graph model each:

    sample       temperature float32[B]                          -> <track> int32[B,T], z
    decode       z float32[B,Z], temperature float32[B]           -> <track> int32[B,T]
    encode       <track> int32[B,T]                               -> z, mu, sigma float32[B,Z]
    interpolate  <track>_a, <track>_b int32[B or 1,T], alpha float32[B],
                 temperature float32[B]                           -> <track> int32[B,T], z

(the serving contract's names, without `seed`; temperature 0 = argmax). The graph models
share their weights: each distinct tensor is stored once under `weights/`, and every
model.json's manifest points there, so four graphs cost what the model's weights cost.
After the converter, each model.json gets its function's own tensor names and loses the
control-dependency edges TF.js cannot run inside a lowered loop (strip_control_dependencies),
and fused activations TF.js cannot run are split back out (unfuse_activations).

Output directory:
    hmvae_model.json          what the page reads: config, representation, tracks,
                              steps_per_bar, num_steps, z_size, graphs and their tensors
    <graph>/model.json        one TF.js graph model per function
    weights/*.bin             the shared weight files
and an entry for the model in `index.json` beside the output directory (the page's list).

This module runs the conversion and the command; its parts each have a module:
tfjs_browser (the traced functions), tfjs_model_json (the converter's output checked and
rewritten), tfjs_weights (the shared weight pool), tfjs_bundles (bundle folders and the
page's index.json).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

from hmvae_tf.cli import CommandError, UsageError
from hmvae_tf.export_options import resolve_saved_model
from hmvae_tf.progress import Progress, say
from hmvae_tf.tfjs_browser import GRAPHS, browser_module, concrete_functions, load_exported_model
from hmvae_tf.tfjs_bundles import (DESCRIPTION_FILE, FORMAT, INDEX_FILE, export_bases,
                                   is_current, read_description, refuse_foreign_folder,
                                   source_identity, update_index)
from hmvae_tf.tfjs_model_json import (forbidden_ops, graph_ops, name_signature,
                                      signature_tensor_info, strip_control_dependencies,
                                      unfuse_activations)
from hmvae_tf.tfjs_weights import SHARD_BYTES, share_weights


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Silences the converter's chatter: grappler summaries and warnings on stdout, and on
    stderr YDF's advert (tensorflowjs imports it) and grappler's session lines, which come
    through absl before TF_CPP_MIN_LOG_LEVEL applies (other stderr lines still show)."""
    if not enabled:
        yield
        return
    from hmvae_tf import quiet_startup

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), quiet_startup.stderr_filtered():
        yield


def convert(saved_model: str, out_dir: str, name: str | None = None,
            graphs: Sequence[str] = GRAPHS, quantize: str | None = None,
            index: str | None = "", verbose: bool = False, progress: bool = False) -> dict:
    """Converts an exported SavedModel into TF.js graph models; returns the description.

    saved_model: a version directory or an export base (newest version). index: the page's
    model list to update ("" = `index.json` beside out_dir, None = none). progress: say
    that the model loads, then show how far the conversion is (stderr).
    """
    import tensorflow as tf

    refuse_foreign_folder(out_dir)
    saved_model = resolve_saved_model(saved_model)
    graphs = tuple(graphs)
    unknown = set(graphs) - set(GRAPHS)
    if unknown:
        raise ValueError(f"unknown graphs {sorted(unknown)}; choose from {', '.join(GRAPHS)}")
    name = name or os.path.basename(os.path.abspath(out_dir))
    start = time.time()
    if progress:
        say(f"loading {saved_model} ...")
    model, meta = load_exported_model(saved_model)
    config = model.config
    module = browser_module(model)
    fns = concrete_functions(module, graphs)

    with _quiet(not verbose):
        import tensorflowjs as tfjs  # imported late: it is slow and loud

    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    # Not tempfile.mkdtemp: its folder is private (0700) and, renamed into place, would keep
    # the bundle from a static web server running as another user.
    tmp = os.path.join(parent, f".tmp-{os.path.basename(out_dir)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    old = None  # where the earlier bundle waits while the new one is renamed into place
    # Stages: the browser SavedModel, then each graph (a few seconds each).
    shown = Progress(1 + len(graphs), "converting", "stage", enabled=progress)
    try:
        browser_sm = os.path.join(tmp, "_browser_saved_model")
        tf.saved_model.save(module, browser_sm, signatures=fns)
        shown.update()
        quantization = {quantize: "*"} if quantize else None
        loaded = tf.saved_model.load(browser_sm)
        info = {}
        for g in graphs:
            with _quiet(not verbose):
                tfjs.converters.convert_tf_saved_model(
                    browser_sm, os.path.join(tmp, g), signature_def=g,
                    # Lowered (v1) loops: TF.js runs v2 While functions too, but there a
                    # tensor both written to a TensorList and reshaped gets disposed early.
                    control_flow_v2=False, strip_debug_ops=True,
                    use_structured_outputs_names=True, quantization_dtype_map=quantization,
                    weight_shard_size_bytes=SHARD_BYTES)
            model_json = name_signature(os.path.join(tmp, g, "model.json"),
                                        loaded.signatures[g])
            model_json = strip_control_dependencies(os.path.join(tmp, g, "model.json"))
            model_json = unfuse_activations(os.path.join(tmp, g, "model.json"))
            ops = graph_ops(model_json)
            bad = forbidden_ops(ops)
            if bad:
                raise RuntimeError(f"the browser graph {g} contains ops TF.js cannot run or "
                                   f"must not see: {sorted(bad)}")
            info[g] = {
                "path": f"{g}/model.json",
                "inputs": signature_tensor_info(model_json["signature"]["inputs"]),
                "outputs": signature_tensor_info(model_json["signature"]["outputs"]),
                "nodes": sum(ops.values()),
            }
            shown.update()
        shown.close()
        shutil.rmtree(browser_sm)
        sizes = share_weights(tmp, list(graphs))
        description = {
            "format": FORMAT,
            "name": name,
            "config_name": config.name,
            "config": json.loads(config.to_json()),
            "representation": config.representation,
            "tracks": list(config.tracks),
            "track_classes": list(config.track_classes),
            "steps_per_bar": meta.get("steps_per_bar", 16),
            "bars": config.bars,
            "num_steps": config.num_steps,
            "z_size": config.z_size,
            "hierarchical": config.hierarchical,
            "graphs": info,
            "weights": {**sizes, "dtype": quantize or "float32"},
            "converter": {"tensorflowjs": tfjs.__version__, "control_flow": "v1 (lowered)"},
            "source": {
                "saved_model": os.path.abspath(saved_model),
                **source_identity(saved_model),
                "exported_at": meta.get("exported_at"),
                "training_step": meta.get("training_step"),
            },
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(os.path.join(tmp, DESCRIPTION_FILE), "w") as f:
            json.dump(description, f, indent=2)
        if os.path.exists(out_dir):
            old = os.path.join(parent, f".old-{os.path.basename(out_dir)}-{os.getpid()}")
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shown.close()
        if old and os.path.exists(old) and not os.path.exists(out_dir):
            os.rename(old, out_dir)  # stopped between the renames: the earlier bundle stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    description["seconds"] = round(time.time() - start, 1)
    if index is not None:
        update_index(index or os.path.join(parent, INDEX_FILE), out_dir, description)
    return description


def convert_all(saved_models: str, out_dir: str, force: bool = False,
                log: Callable[[str], object] = say, **kwargs: Any) -> list[dict]:
    """Converts the newest version of every export base under saved_models into
    out_dir/<base name>/ (skipping those already current) and lists them in out_dir/index.json.

    log: each bundle's outcome (up to date, or the conversion's summary; default: on stderr,
    as what a call is doing, since the descriptions returned are its result; `hmvae tfjs`
    prints them on stdout as its results). With progress=True (convert's), which one is
    converting is said on stderr with the progress."""
    done = []
    for base in export_bases(saved_models):
        saved_model = resolve_saved_model(base)
        name = os.path.basename(base)
        target = os.path.join(out_dir, name)
        if not force and is_current(target, saved_model):
            log(f"{name}: up to date ({target})")
            # Listed too: a conversion stopped between putting its bundle in place and
            # listing it (killed) would otherwise stay off the page for good.
            update_index(os.path.join(out_dir, INDEX_FILE), target, read_description(target))
            continue
        if kwargs.get("progress"):
            say(f"{name}: converting {saved_model} ...")
        desc = convert(saved_model, target, name=name,
                       index=os.path.join(out_dir, INDEX_FILE), **kwargs)
        log(summary(desc, target))
        done.append(desc)
    return done


def summary(desc: dict, out_dir: str) -> str:
    """The lines `hmvae tfjs` prints for one converted model."""
    w = desc["weights"]
    lines = [f"converted {desc['config_name']} ({', '.join(desc['tracks'])}, "
             f"{desc['num_steps']} steps, z {desc['z_size']}) to {out_dir} "
             f"in {desc.get('seconds', '?')} s"]
    for g, info in desc["graphs"].items():
        lines.append(f"  {g:<12} {info['path']:<24} {info['nodes']:>5} nodes  "
                     f"inputs {', '.join(info['inputs'])} -> {', '.join(info['outputs'])}")
    lines.append(f"  weights: {w['weight_bytes'] / 1e6:.2f} MB {w['dtype']} in "
                 f"{w['weight_files']} files (shared by the graphs; "
                 f"{w['weight_bytes_unshared'] / 1e6:.2f} MB if each graph had its own)")
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae tfjs`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Convert an exported SavedModel into TF.js graph models (sample, decode, encode, "
        "interpolate) with shared weight files and a description the browser page reads, and "
        "list it in the page's index.json; --saved_models converts every export base of a "
        "folder whose bundle is missing or stale.")
    parser.epilog = examples(
        "hmvae tfjs --saved_model=saved_models/mel_2bar --out=web/models/mel_2bar",
        "hmvae tfjs --saved_models=saved_models --out=web/models")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--saved_model",
                     help="SavedModel version directory, or export base (newest version)")
    src.add_argument("--saved_models",
                     help="folder of export bases (e.g. saved_models): convert the newest "
                     "version of each into <out>/<base name>/")
    parser.add_argument("--out", required=True,
                        help="output directory, replaced as a whole if it holds an earlier "
                        "bundle; a folder with other files is refused (with --saved_models: "
                        "the models folder, one bundle per model inside it)")
    parser.add_argument("--name", default=None,
                        help="model name shown by the page (default: the output folder's name)")
    parser.add_argument("--index", default="",
                        help="the page's model list to update ('none' = no list; default: "
                        "index.json beside --out)")
    parser.add_argument("--graphs", default=",".join(GRAPHS),
                        help="functions to convert, comma separated")
    parser.add_argument("--quantize", choices=["float16", "uint16", "uint8"], default=None,
                        help="store weights quantized (smaller download, argmax may differ "
                        "slightly from the SavedModel; default: float32, as exported)")
    parser.add_argument("--force", action="store_true",
                        help="with --saved_models: convert even when a bundle is current")
    parser.add_argument("--verbose", action="store_true", help="show the converter's output")


def run(args: argparse.Namespace) -> int:
    """`hmvae tfjs`: converts one SavedModel or every export base of a folder; exit status."""
    # Flags for the other mode were ignored without a word.
    if args.saved_models and (args.name or args.index):
        raise UsageError(f"{'--name' if args.name else '--index'} is for one --saved_model; "
                         "with --saved_models each bundle is named after its export base and "
                         "listed in <out>/index.json")
    if args.saved_model and args.force:
        raise UsageError("--force is for --saved_models, which skips bundles that are current; "
                         "--saved_model always converts")
    kwargs = dict(graphs=[g for g in args.graphs.split(",") if g], quantize=args.quantize,
                  verbose=args.verbose, progress=True)
    try:
        if args.saved_models:
            done = convert_all(args.saved_models, args.out, force=args.force, log=print,
                               **kwargs)
            if not export_bases(args.saved_models):
                raise CommandError(f"no exported models under {args.saved_models}")
            print(f"{len(done)} converted; model list: {os.path.join(args.out, INDEX_FILE)}")
            return 0
        index = None if args.index == "none" else args.index
        desc = convert(args.saved_model, args.out, name=args.name, index=index, **kwargs)
    except (FileNotFoundError, ValueError) as err:
        raise CommandError(str(err)) from None
    print(summary(desc, args.out))
    return 0
