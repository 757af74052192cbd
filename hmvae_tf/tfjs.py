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
"""
from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hmvae_tf.cli import CommandError, UsageError
from hmvae_tf.export_options import resolve_saved_model
from hmvae_tf.progress import Progress, say

if TYPE_CHECKING:
    import tensorflow as tf

    from hmvae_tf.model.vae import MusicVAE

DESCRIPTION_FILE = "hmvae_model.json"
INDEX_FILE = "index.json"
FORMAT = "hmvae-tfjs/1"
GRAPHS = ("sample", "decode", "encode", "interpolate")
WEIGHTS_DIR = "weights"
SHARD_BYTES = 4 * 1024 * 1024
# Ops the browser graphs must never contain: TF.js has no stateless random ops, and
# Assert/CheckNumerics/Print would only be stripped (or fail) there.
FORBIDDEN_OP_PREFIXES = ("Stateless",)
FORBIDDEN_OPS = {"Assert", "CheckNumerics", "Print", "PrintV2", "StatelessRandomUniformV2",
                 "RandomUniformInt", "CudnnRNN", "CudnnRNNV2", "CudnnRNNV3"}
ALLOWED_STATELESS = {"StatelessWhile", "StatelessIf"}  # control flow v2, not randomness
_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2,
                "int8": 1, "int16": 2, "complex64": 8}


# --- the browser functions -------------------------------------------------------------------
def load_exported_model(saved_model_dir: str) -> tuple[MusicVAE, dict]:
    """(MusicVAE with the SavedModel's weights, the export's metadata dict)."""
    from hmvae_tf.export import load_model
    from hmvae_tf.export_options import read_metadata

    meta = read_metadata(saved_model_dir)
    model = load_model(saved_model_dir)
    # As in export: never bake the GPU-only LSTM kernel into a graph.
    model.set_use_cudnn(False)
    return model, meta


def browser_module(model: MusicVAE) -> tf.Module:
    """A tf.Module whose functions use only TF.js-supported ops (stateful randomness)."""
    import tensorflow as tf

    from hmvae_tf.model.vae import slerp

    tracks = model.config.tracks

    class BrowserModule(tf.Module):
        def __init__(self):
            super().__init__(name="hmvae_browser")
            self.model = model

        def _stack(self, inputs, suffix=""):
            return tf.stack([inputs[t + suffix] for t in tracks], axis=-1)

        def _unstack(self, tokens):
            return {t: tokens[..., k] for k, t in enumerate(tracks)}

        def sample(self, temperature):
            batch = tf.shape(temperature)[0]
            z = tf.random.normal(tf.stack([batch, model.config.z_size]))
            return {**self._unstack(model.decode(z, temperature)), "z": z}

        def decode(self, z, temperature):
            return self._unstack(model.decode(z, temperature))

        def encode(self, **inputs):
            q = model.encode(self._stack(inputs))
            mu, sigma = q.mean(), q.stddev()
            return {"z": mu + sigma * tf.random.normal(tf.shape(mu)), "mu": mu, "sigma": sigma}

        def interpolate(self, **inputs):
            # a and b may be single rows (broadcast over alpha's rows): the page then encodes
            # each once instead of once per step.
            a, b = self._stack(inputs, "_a"), self._stack(inputs, "_b")
            n = tf.shape(a)[0]
            mus = model.encode(tf.concat([a, b], 0)).mean()
            rows = tf.stack([tf.shape(inputs["alpha"])[0], model.config.z_size])
            z = slerp(tf.broadcast_to(mus[:n], rows), tf.broadcast_to(mus[n:], rows),
                      inputs["alpha"])
            return {**self._unstack(model.decode(z, inputs["temperature"])), "z": z}

    return BrowserModule()


def concrete_functions(module: tf.Module, graphs: Sequence[str] = GRAPHS) -> dict:
    """The browser functions traced at the model's window and latent sizes (batch left open)."""
    import tensorflow as tf

    config = module.model.config
    T, Z = config.num_steps, config.z_size
    rows = tf.TensorSpec([None], tf.float32)
    track = tf.TensorSpec([None, T], tf.int32)
    specs = {
        "sample": dict(temperature=rows),
        "decode": dict(z=tf.TensorSpec([None, Z], tf.float32), temperature=rows),
        "encode": {t: track for t in config.tracks},
        "interpolate": dict(**{t + "_a": track for t in config.tracks},
                            **{t + "_b": track for t in config.tracks},
                            alpha=rows, temperature=rows),
    }
    fns = {}
    for name in graphs:
        named = {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in specs[name].items()}
        fns[name] = tf.function(getattr(module, name)).get_concrete_function(**named)
    return fns


# --- graph inspection ------------------------------------------------------------------------
def graph_ops(model_json: dict) -> collections.Counter:
    """Op name -> count over a TF.js graph model's nodes, function library included."""
    topology = model_json["modelTopology"]
    ops = collections.Counter(n["op"] for n in topology.get("node", []))
    for fn in topology.get("library", {}).get("function", []):
        ops.update(n["op"] for n in fn.get("nodeDef", []))
    return ops


def forbidden_ops(ops: Iterable[str]) -> set[str]:
    """The ops among `ops` that TF.js lacks or that would make its results irreproducible."""
    return {op for op in ops if op in FORBIDDEN_OPS or (
        op.startswith(FORBIDDEN_OP_PREFIXES) and op not in ALLOWED_STATELESS)}


# --- shared weights --------------------------------------------------------------------------
def _weight_bytes(entry: dict) -> int:
    count = 1
    for d in entry["shape"]:
        count *= int(d)
    dtype = entry.get("quantization", {}).get("dtype", entry["dtype"])
    if dtype not in _DTYPE_BYTES:
        raise ValueError(f"weight {entry['name']}: unsupported dtype {dtype}")
    return count * _DTYPE_BYTES[dtype]


def _read_weights(graph_dir: str, manifest: list) -> list[tuple[dict, bytes]]:
    out = []
    for group in manifest:
        data = b"".join(open(os.path.join(graph_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            size = _weight_bytes(entry)
            out.append((entry, data[offset:offset + size]))
            offset += size
        if offset != len(data):
            raise ValueError(f"{graph_dir}: weight files hold {len(data)} bytes, the manifest "
                             f"describes {offset}")
    return out


def share_weights(out_dir: str, graphs: list[str], shard_bytes: int = SHARD_BYTES) -> dict:
    """Rewrites the graphs' weights into one pool under out_dir/weights/: every distinct
    tensor is stored once. Returns size statistics.

    Tensors are keyed by content. Those used by the same set of graphs form one group of
    shard files, which each of those graphs' model.json lists with its own tensor names. A
    tensor that one graph holds under several names (freezing keeps a loop's Enter'd weight
    and the read inside the loop body as two constants) gets a file of its own, listed once
    per name: a manifest group can only start at the beginning of its files. The page fetches
    each file once (src/model.js) however many groups and graphs list it.
    """
    refs: dict[str, list[tuple[dict, str]]] = {}
    data: dict[str, bytes] = {}
    separate_bytes = 0
    for g in graphs:
        with open(os.path.join(out_dir, g, "model.json")) as f:
            manifest = json.load(f)["weightsManifest"]
        refs[g] = []
        for entry, blob in _read_weights(os.path.join(out_dir, g), manifest):
            separate_bytes += len(blob)
            kind = json.dumps({k: v for k, v in entry.items() if k != "name"}, sort_keys=True)
            key = hashlib.sha256(blob + kind.encode()).hexdigest()
            refs[g].append((entry, key))
            data[key] = blob
    solo = {key for g in graphs
            for key, n in collections.Counter(k for _, k in refs[g]).items() if n > 1}
    # group -> keys, in first-seen order; group = ("set", graphs...) or ("solo", key)
    groups: dict[tuple, list[str]] = collections.OrderedDict()
    placed = set()
    for g in graphs:
        for _, key in refs[g]:
            if key in placed:
                continue
            placed.add(key)
            if key in solo:
                groups[("solo", key)] = [key]
            else:
                users = tuple(h for h in graphs if any(k == key for _, k in refs[h]))
                groups.setdefault(("set",) + users, []).append(key)
    weights_dir = os.path.join(out_dir, WEIGHTS_DIR)
    os.makedirs(weights_dir, exist_ok=True)
    manifests = {g: [] for g in graphs}
    files = 0
    for group, keys in groups.items():
        blob = b"".join(data[k] for k in keys)
        stem = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        shards = [blob[i:i + shard_bytes] for i in range(0, len(blob), shard_bytes)] or [b""]
        paths = []
        for i, shard in enumerate(shards):
            name = f"{stem}-{i + 1}of{len(shards)}.bin"
            with open(os.path.join(weights_dir, name), "wb") as f:
                f.write(shard)
            paths.append(f"../{WEIGHTS_DIR}/{name}")
        files += len(shards)
        for g in graphs:
            if group[0] == "solo":
                for entry, key in refs[g]:
                    if key == keys[0]:
                        manifests[g].append({"paths": paths, "weights": [entry]})
            elif g in group[1:]:
                entries = {key: entry for entry, key in refs[g]}
                manifests[g].append({"paths": paths, "weights": [entries[k] for k in keys]})
    for g in graphs:
        path = os.path.join(out_dir, g, "model.json")
        with open(path) as f:
            model_json = json.load(f)
        for group in model_json["weightsManifest"]:
            for p in group["paths"]:
                os.remove(os.path.join(out_dir, g, p))
        model_json["weightsManifest"] = manifests[g]
        with open(path, "w") as f:
            json.dump(model_json, f)
    return {"weight_files": files, "weight_bytes": sum(len(b) for b in data.values()),
            "weight_bytes_unshared": separate_bytes}


# --- conversion ------------------------------------------------------------------------------
def _tensor_info(sig: dict) -> dict:
    dtypes = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_BOOL": "bool"}
    return {k: {"dtype": dtypes.get(v["dtype"], v["dtype"]),
                "shape": [int(d.get("size", -1)) for d in v.get("tensorShape", {}).get("dim", [])]}
            for k, v in sorted(sig.items())}


def strip_control_dependencies(model_json_path: str) -> dict:
    """Drops control-dependency edges ("^node" inputs) and the NoOps that only carry them.

    Freezing turns the variable reads inside the decoder's while loop into constants but
    keeps the control edges around them (NoOps fed by the loop's Enter/Switch nodes). TF.js's
    executor never runs those NoOps inside a lowered loop frame, so every node behind them
    waits forever ("Cannot compute the outputs"). An inference graph's data edges already fix
    the order that matters: the stateful random ops have no ordering to keep.
    """
    def clean(nodes):
        kept = [n for n in nodes if n["op"] != "NoOp"]
        for n in kept:
            if "input" in n:
                n["input"] = [i for i in n["input"] if not i.startswith("^")]
        return kept

    return _rewrite_nodes(model_json_path, clean)


def _rewrite_nodes(model_json_path: str, rewrite) -> dict:
    """Replaces the node list of a model.json's graph and of each of its library functions
    by rewrite(nodes); writes the file back and returns its contents."""
    with open(model_json_path) as f:
        model_json = json.load(f)
    topology = model_json["modelTopology"]
    topology["node"] = rewrite(topology.get("node", []))
    for fn in topology.get("library", {}).get("function", []):
        if "nodeDef" in fn:
            fn["nodeDef"] = rewrite(fn["nodeDef"])
    with open(model_json_path, "w") as f:
        json.dump(model_json, f)
    return model_json


# Activations TF.js can run fused into a _FusedMatMul (tfjs-core's fused ops: relu, relu6,
# elu, leakyrelu, prelu, sigmoid; "linear" is no activation).
TFJS_FUSED_ACTIVATIONS = {"Relu", "Relu6", "Elu", "LeakyRelu", "Prelu", "Sigmoid"}


def unfuse_activations(model_json_path: str) -> dict:
    """Moves activations TF.js cannot run fused out of `_FusedMatMul` nodes, into nodes of
    their own under the fused node's name (so its consumers are unchanged).

    Where TensorFlow runs with oneDNN (by default on CPUs with AVX-512 VNNI/BF16 or AMX),
    grappler's remapper also fuses Tanh into a MatMul + BiasAdd, e.g. the dense layers that
    turn z into LSTM states. TF.js then fails at run time with "Activation tanh has not been
    implemented".
    """
    def decode(strings):
        return [base64.b64decode(s).decode() for s in strings]

    def encode(names):
        return [base64.b64encode(n.encode()).decode() for n in names]

    def split(nodes):
        out = []
        for node in nodes:
            fused = decode(node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", []))
            if node["op"] != "_FusedMatMul" or not fused or fused[-1] == "BiasAdd" \
                    or fused[-1] in TFJS_FUSED_ACTIVATIONS:
                out.append(node)
                continue
            product = {**node, "name": f"{node['name']}/product",
                       "attr": {**node["attr"], "fused_ops": {"list": {"s": encode(fused[:-1])}}}}
            activation = {"name": node["name"], "op": fused[-1], "input": [product["name"]],
                          "attr": {"T": node["attr"]["T"]}}
            if "device" in node:
                activation["device"] = node["device"]
            out += [product, activation]
        return out

    return _rewrite_nodes(model_json_path, split)


def name_signature(model_json_path: str,
                   signature_fn: tf.types.experimental.ConcreteFunction) -> dict:
    """Gives the graph model's signature the function's own input and output names.

    The converter names a signature tensor by matching dtype and shape against the
    SignatureDef and falls back to the raw tensor name ("alpha:0", "Identity_1:0") when
    several tensors look alike; rename from the function itself (inputs are placeholders
    named after their keys; outputs are the structured outputs in sorted-key order).
    """
    with open(model_json_path) as f:
        model_json = json.load(f)
    sig = model_json["signature"]
    by_tensor = {v["name"]: v for v in list(sig["inputs"].values())}
    inputs = {}
    for tensor in signature_fn.inputs:
        if tensor.dtype == "resource" or tensor.name not in by_tensor:
            continue
        inputs[tensor.name.split(":")[0]] = by_tensor[tensor.name]
    keys = sorted(signature_fn.structured_outputs)
    by_tensor = {v["name"]: v for v in sig["outputs"].values()}
    outputs = {key: by_tensor[t.name] for key, t in zip(keys, signature_fn.outputs)}
    if len(inputs) != len(sig["inputs"]) or len(outputs) != len(sig["outputs"]):
        raise RuntimeError(f"{model_json_path}: cannot name the signature's tensors "
                           f"({sorted(sig['inputs'])} -> {sorted(sig['outputs'])})")
    model_json["signature"] = {"inputs": inputs, "outputs": outputs}
    with open(model_json_path, "w") as f:
        json.dump(model_json, f)
    return model_json


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


def refuse_foreign_folder(out_dir: str) -> None:
    """A bundle replaces out_dir as a whole, so out_dir must be new, empty or an earlier
    bundle: a ValueError for anything else (`--out=web/models` instead of web/models/<name>
    would otherwise delete every model of the page)."""
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise ValueError(f"--out={out_dir} is a file, not a directory")
    if os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, DESCRIPTION_FILE)):
        raise ValueError(
            f"{out_dir} holds other files and no {DESCRIPTION_FILE}, so it is not a bundle "
            f"of `hmvae tfjs`; it would be replaced as a whole. Give a folder of its own, "
            f"e.g. {os.path.join(out_dir, '<model name>')}")


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
                "inputs": _tensor_info(model_json["signature"]["inputs"]),
                "outputs": _tensor_info(model_json["signature"]["outputs"]),
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


def update_index(index_path: str, model_dir: str, description: dict) -> None:
    """Adds or replaces the model's entry in the page's model list (left untouched when the
    entry is there already as it would be written)."""
    entries = []
    if os.path.exists(index_path):
        with open(index_path) as f:
            entries = json.load(f).get("models", [])
    before = list(entries)
    rel = os.path.relpath(os.path.join(model_dir, DESCRIPTION_FILE),
                          os.path.dirname(os.path.abspath(index_path)))
    entry = {
        "name": description["name"],
        "path": rel.replace(os.sep, "/"),
        "config_name": description["config_name"],
        "representation": description["representation"],
        "bars": description["bars"],
        "z_size": description["z_size"],
        "weight_bytes": description["weights"]["weight_bytes"],
    }
    entries = [e for e in entries if e.get("name") != entry["name"]] + [entry]
    entries.sort(key=lambda e: e["name"])
    if entries == before and os.path.exists(index_path):
        return
    tmp = index_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"models": entries}, f, indent=2)
    os.replace(tmp, index_path)


def export_bases(saved_models: str) -> list[str]:
    """Export bases (folders with numbered SavedModel versions) under a folder, sorted."""
    if not os.path.isdir(saved_models):
        return []
    out = []
    for d in sorted(os.listdir(saved_models)):
        path = os.path.join(saved_models, d)
        try:
            resolve_saved_model(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        out.append(path)
    return out


def source_identity(saved_model: str) -> dict[str, str]:
    """What a bundle records of its SavedModel to recognise it in any checkout (paths and file
    times change with every clone): the version and a digest of its fingerprint file
    (TensorFlow's checksums of the graph, signatures and variables)."""
    for name in ("fingerprint.pb", "saved_model.pb"):  # the first is missing before TF 2.12
        path = os.path.join(saved_model, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                return {"version": os.path.basename(os.path.normpath(saved_model)),
                        "fingerprint": hashlib.sha256(f.read()).hexdigest()}
    raise FileNotFoundError(f"{saved_model} holds no SavedModel")


def read_description(model_dir: str) -> dict | None:
    """The description a bundle folder holds (None without one)."""
    path = os.path.join(model_dir, DESCRIPTION_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_current(model_dir: str, saved_model: str) -> bool:
    """True when model_dir holds a conversion of exactly this SavedModel version."""
    desc = read_description(model_dir)
    if desc is None:
        return False
    source = desc.get("source", {})
    return desc.get("format") == FORMAT and all(
        source.get(key) == value for key, value in source_identity(saved_model).items())


def convert_all(saved_models: str, out_dir: str, force: bool = False,
                log: Callable[[str], object] = print, **kwargs: Any) -> list[dict]:
    """Converts the newest version of every export base under saved_models into
    out_dir/<base name>/ (skipping those already current) and lists them in out_dir/index.json."""
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
        log(f"{name}: converting {saved_model} ...")
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
            done = convert_all(args.saved_models, args.out, force=args.force, **kwargs)
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
