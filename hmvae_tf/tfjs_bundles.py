"""A converted bundle's folder and the page's model list (index.json): what a bundle holds,
whether it is a conversion of a given SavedModel version, which export bases a folder has.

`hmvae tfjs` and `hmvae web` read these to convert only what is missing or stale, and to
refuse replacing a folder that is not a bundle.
"""
from __future__ import annotations

import hashlib
import json
import os

from hmvae_tf.export_options import resolve_saved_model

DESCRIPTION_FILE = "hmvae_model.json"
INDEX_FILE = "index.json"
FORMAT = "hmvae-tfjs/1"


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
