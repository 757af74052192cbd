"""One pool of weight files for a bundle's graph models, each distinct tensor stored once.

The tensorflowjs converter writes each graph model with weight files of its own, so four
graphs of one model would cost four times its weights to download; share_weights rewrites
them into one pool under weights/ that every model.json's manifest points into.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os

WEIGHTS_DIR = "weights"
SHARD_BYTES = 4 * 1024 * 1024
_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2,
                "int8": 1, "int16": 2, "complex64": 8}


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
