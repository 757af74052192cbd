"""`hmvae tfjs`: browser graph models from an exported SavedModel (no browser needed).

The converted files and their description, the ops TF.js must (not) see, the shared weight
pool, and, with Node and the page's npm packages, the graphs run by TF.js against the
SavedModel's own signatures.
"""
import base64
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf import (cli, export, tfjs, tfjs_browser, tfjs_bundles, tfjs_model_json,
                      tfjs_weights, web)
from hmvae_tf.model.vae import MusicVAE
from export_helpers import export_tiny
from model_helpers import scale_melodies
from web_helpers import node_missing, run_graph

needs_node = pytest.mark.skipif(node_missing() is not None, reason=str(node_missing()))


@pytest.fixture(scope="module")
def melody(tiny_melody_export, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tfjs_melody")
    config, model, path = tiny_melody_export
    out = str(tmp / "models" / "mel")
    desc = tfjs.convert(path, out)
    return config, model, path, out, desc


def read_json(path):
    with open(path) as f:
        return json.load(f)


def documented_description_keys() -> set[str]:
    """The keys BUILD.md's output-folder block lists for hmvae_model.json."""
    with open(os.path.join(os.path.dirname(__file__), os.pardir, "BUILD.md")) as f:
        text = f.read()
    block = text.split('format "hmvae-tfjs/1":', 1)[1].split("web/models/<name>/<graph>", 1)[0]
    block = re.sub(r"\([^)]*\)", "", " ".join(block.split()))  # what a key holds, in brackets
    return {"format"} | {key.strip() for key in block.split(",")}


def test_files_and_description(melody):
    config, _, path, out, desc = melody
    on_disk = read_json(os.path.join(out, tfjs_bundles.DESCRIPTION_FILE))
    assert on_disk["format"] == tfjs_bundles.FORMAT
    assert set(on_disk) == documented_description_keys()  # BUILD.md lists every key
    assert on_disk["name"] == "mel" and on_disk["config_name"] == "cat-mel_2bar_small"
    assert on_disk["config"]["z_size"] == config.z_size == on_disk["z_size"]
    assert on_disk["representation"] == "melody" and on_disk["tracks"] == ["melody"]
    assert on_disk["track_classes"] == [90]
    assert (on_disk["steps_per_bar"], on_disk["bars"], on_disk["num_steps"]) == (16, 2, 32)
    assert on_disk["source"]["saved_model"] == os.path.abspath(path)
    assert set(on_disk["graphs"]) == set(tfjs_browser.GRAPHS)
    io = {g: (sorted(v["inputs"]), sorted(v["outputs"])) for g, v in on_disk["graphs"].items()}
    assert io == {
        "sample": (["temperature"], ["melody", "z"]),
        "decode": (["temperature", "z"], ["melody"]),
        "encode": (["melody"], ["mu", "sigma", "z"]),
        "interpolate": (["alpha", "melody_a", "melody_b", "temperature"], ["melody", "z"]),
    }
    assert on_disk["graphs"]["decode"]["inputs"]["z"] == {"dtype": "float32", "shape": [-1, 8]}
    assert on_disk["graphs"]["sample"]["outputs"]["melody"] == {"dtype": "int32",
                                                                "shape": [-1, 32]}
    for g, info in on_disk["graphs"].items():
        model_json = read_json(os.path.join(out, info["path"]))
        assert model_json["format"] == "graph-model"
        # The graph model's own signature carries the same names (the page feeds by name).
        assert sorted(model_json["signature"]["inputs"]) == sorted(info["inputs"])
        assert sorted(model_json["signature"]["outputs"]) == sorted(info["outputs"])
    index = read_json(os.path.join(os.path.dirname(out), tfjs_bundles.INDEX_FILE))
    assert index["models"] == [{
        "name": "mel", "path": "mel/hmvae_model.json", "config_name": "cat-mel_2bar_small",
        "representation": "melody", "bars": 2, "z_size": 8,
        "weight_bytes": on_disk["weights"]["weight_bytes"]}]


def tfjs_fused_ops(node) -> list[str]:
    return [base64.b64decode(x).decode() for x in node["attr"]["fused_ops"]["list"]["s"]]


def test_the_bundle_is_readable_like_any_new_folder(melody, tmp_path):
    """The bundle is made under a temporary name and renamed into place; it must not keep a
    temporary folder's private mode, or a static server running as another user gets 403."""
    out = melody[3]
    (tmp_path / "plain").mkdir()
    expected = os.stat(tmp_path / "plain").st_mode & 0o777
    assert os.stat(out).st_mode & 0o777 == expected
    assert os.stat(os.path.join(out, tfjs_weights.WEIGHTS_DIR)).st_mode & 0o777 == expected


def test_a_conversion_stopped_while_swapping_bundles_keeps_the_earlier_one(
        melody, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) landing after the earlier bundle was moved aside and before the
    new one took its place: the earlier bundle is put back, nothing else is left."""
    _, _, path, out, _ = melody
    models = tmp_path / "models"
    shutil.copytree(out, models / "mel")
    before = read_json(models / "mel" / tfjs_bundles.DESCRIPTION_FILE)
    rename = os.rename

    def interrupted(src, dst):
        if os.path.basename(src).startswith(".tmp-"):
            raise KeyboardInterrupt
        rename(src, dst)

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tfjs.convert(path, str(models / "mel"), graphs=["decode"], index=None)
    assert os.listdir(models) == ["mel"]
    assert read_json(models / "mel" / tfjs_bundles.DESCRIPTION_FILE) == before


def test_fused_activations_tfjs_lacks_get_nodes_of_their_own(tmp_path):
    """With oneDNN (the default on AVX-512 CPUs) grappler fuses Tanh into _FusedMatMul."""
    def fused(name, ops):
        return {"name": name, "op": "_FusedMatMul", "input": ["x", "w", "b"],
                "attr": {"T": {"type": "DT_FLOAT"}, "fused_ops": {"list": {"s": [
                    base64.b64encode(op.encode()).decode() for op in ops]}}}}

    path = tmp_path / "model.json"
    path.write_text(json.dumps({"modelTopology": {"node": [
        fused("dense", ["BiasAdd", "Tanh"]), fused("gates", ["BiasAdd", "Sigmoid"]),
        {"name": "out", "op": "Identity", "input": ["dense", "gates"]}]}}))
    rewritten = tfjs_model_json.unfuse_activations(str(path))
    nodes = {n["name"]: n for n in rewritten["modelTopology"]["node"]}
    assert json.loads(path.read_text())["modelTopology"]["node"] == list(nodes.values())
    assert tfjs_fused_ops(nodes["dense/product"]) == ["BiasAdd"]
    assert nodes["dense/product"]["input"] == ["x", "w", "b"]
    assert nodes["dense"]["op"] == "Tanh" and nodes["dense"]["input"] == ["dense/product"]
    assert tfjs_fused_ops(nodes["gates"]) == ["BiasAdd", "Sigmoid"]  # TF.js runs it fused
    assert nodes["out"]["input"] == ["dense", "gates"]


def test_browser_graphs_use_only_tfjs_friendly_ops(melody):
    _, _, path, out, desc = melody
    seen = {}
    for g, info in desc["graphs"].items():
        model_json = read_json(os.path.join(out, info["path"]))
        ops = tfjs_model_json.graph_ops(model_json)
        seen[g] = ops
        stateless = [op for op in ops if op.startswith("Stateless")]
        assert not stateless, f"{g} has stateless ops TF.js lacks: {stateless}"
        assert not {"Assert", "CheckNumerics", "Print", "PrintV2"} & set(ops), g
        assert not tfjs_model_json.forbidden_ops(ops)
        assert "NoOp" not in ops
        nodes = model_json["modelTopology"]["node"]
        assert not [i for n in nodes for i in n.get("input", []) if i.startswith("^")]
        assert "While" not in ops and "Enter" in ops  # lowered loops
        fused = [tfjs_fused_ops(n) for n in nodes if n["op"] == "_FusedMatMul"]
        runnable = tfjs_model_json.TFJS_FUSED_ACTIVATIONS | {"BiasAdd"}
        assert all(f[-1] in runnable for f in fused), fused
    assert "RandomStandardNormal" in seen["sample"] and "RandomUniform" in seen["sample"]
    assert "RandomUniform" in seen["decode"] and "RandomStandardNormal" not in seen["decode"]
    assert "RandomStandardNormal" in seen["encode"]
    # The served SavedModel itself is stateless-seeded and asserts its inputs.
    served = open(os.path.join(path, "saved_model.pb"), "rb").read()
    assert b"StatelessRandomUniform" in served and b"Assert" in served


def test_graphs_share_one_weight_pool(melody):
    _, model, _, out, desc = melody
    files = set()
    for info in desc["graphs"].values():
        model_json = read_json(os.path.join(out, info["path"]))
        graph_dir = os.path.dirname(os.path.join(out, info["path"]))
        for group in model_json["weightsManifest"]:
            for p in group["paths"]:
                assert p.startswith("../weights/")
                files.add(os.path.normpath(os.path.join(graph_dir, p)))
    assert files == {os.path.join(out, "weights", f) for f in os.listdir(os.path.join(out, "weights"))}
    total = sum(os.path.getsize(f) for f in files)
    w = desc["weights"]
    assert total == w["weight_bytes"] and w["weight_files"] == len(files)
    model_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    # Every weight once (plus small graph constants), instead of once per graph.
    assert model_bytes <= total < 1.05 * model_bytes + 4096
    assert w["weight_bytes_unshared"] > 2 * total


def test_rebuilt_model_is_the_exported_one(melody):
    config, model, path, _, _ = melody
    rebuilt, meta = tfjs_browser.load_exported_model(path)
    assert meta["config"]["name"] == config.name
    for a, b in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    z = tf.random.normal([3, config.z_size], seed=1)
    served = tf.saved_model.load(path).signatures["decode"](
        z=z, temperature=tf.zeros([3]), seed=tf.zeros([3, 2], tf.int32))
    np.testing.assert_array_equal(served["melody"], rebuilt.decode(z, 0.0)[..., 0])


@needs_node
def test_tfjs_runs_the_graphs_like_the_saved_model(melody):
    config, _, path, out, _ = melody
    sig = tf.saved_model.load(path).signatures
    B = 4
    z = np.random.default_rng(3).normal(0, 1.5, (B, config.z_size)).astype(np.float32)
    zeros = dict(temperature=tf.zeros([B]), seed=tf.zeros([B, 2], tf.int32))
    want = sig["decode"](z=z, **zeros)["melody"].numpy()
    got = run_graph(os.path.join(out, "decode", "model.json"),
                    {"z": z.tolist(), "temperature": [0.0] * B})
    np.testing.assert_array_equal(np.array(got["melody"]), want)

    melodies = scale_melodies(2, 32, seed=5)[..., 0]
    enc = sig["encode"](melody=melodies, seed=tf.zeros([2, 2], tf.int32))
    got = run_graph(os.path.join(out, "encode", "model.json"), {"melody": melodies.tolist()})
    np.testing.assert_allclose(got["mu"], enc["mu"], atol=1e-5)
    np.testing.assert_allclose(got["sigma"], enc["sigma"], atol=1e-5)
    assert not np.allclose(got["z"], got["mu"])  # z ~ q(z|x), drawn in the browser

    alpha = np.linspace(0, 1, B).astype(np.float32)
    pair = dict(melody_a=np.repeat(melodies[:1], B, 0), melody_b=np.repeat(melodies[1:], B, 0))
    want = sig["interpolate"](**pair, alpha=alpha, **zeros)
    got = run_graph(os.path.join(out, "interpolate", "model.json"),
                    {**{k: v.tolist() for k, v in pair.items()}, "alpha": alpha.tolist(),
                     "temperature": [0.0] * B})
    np.testing.assert_array_equal(np.array(got["melody"]), want["melody"])
    np.testing.assert_allclose(got["z"], want["z"], atol=1e-5)
    # Single rows for a and b broadcast over alpha (the page encodes each once).
    got = run_graph(os.path.join(out, "interpolate", "model.json"),
                    {"melody_a": melodies[:1].tolist(), "melody_b": melodies[1:].tolist(),
                     "alpha": alpha.tolist(), "temperature": [0.0] * B})
    np.testing.assert_array_equal(np.array(got["melody"]), want["melody"])

    got = run_graph(os.path.join(out, "sample", "model.json"), {"temperature": [0.0, 1.0]})
    tokens, zs = np.array(got["melody"]), np.array(got["z"], np.float32)
    assert tokens.shape == (2, 32) and zs.shape == (2, config.z_size)
    assert tokens.min() >= 0 and tokens.max() < 90
    np.testing.assert_array_equal(tokens[0], sig["decode"](z=zs[:1], temperature=tf.zeros([1]),
                                                           seed=tf.zeros([1, 2], tf.int32))["melody"][0])


@needs_node
def test_trio_hierarchical_model_converts_and_runs(tmp_path):
    config, _, path = export_tiny(tmp_path, "hierdec-trio_16bar")
    out = str(tmp_path / "models" / "trio")
    desc = tfjs.convert(path, out, graphs=("decode", "sample"), index=None)
    assert not os.path.exists(tmp_path / "models" / tfjs_bundles.INDEX_FILE)
    assert desc["representation"] == "trio" and desc["tracks"] == ["melody", "bass", "drums"]
    assert desc["num_steps"] == 256 and desc["hierarchical"] and set(desc["graphs"]) == {
        "decode", "sample"}
    assert sorted(desc["graphs"]["decode"]["outputs"]) == ["bass", "drums", "melody"]
    z = np.random.default_rng(4).normal(size=(2, config.z_size)).astype(np.float32)
    want = tf.saved_model.load(path).signatures["decode"](
        z=z, temperature=tf.zeros([2]), seed=tf.zeros([2, 2], tf.int32))
    got = run_graph(os.path.join(out, "decode", "model.json"),
                    {"z": z.tolist(), "temperature": [0.0, 0.0]})
    for track in ("melody", "bass", "drums"):
        np.testing.assert_array_equal(np.array(got[track]), want[track], err_msg=track)


def test_cli_converts_every_export_once(tiny_melody_export, tmp_path, capsys):
    config, shared, path = tiny_melody_export
    # The shared export in a folder of export bases of this test's own (it changes them).
    shutil.copytree(os.path.dirname(path), tmp_path / "export" / "mel_2bar_small")
    saved_models, models = str(tmp_path / "export"), str(tmp_path / "web_models")
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}",
                     "--graphs=decode"]) == 0
    out = capsys.readouterr().out
    assert "weights:" in out and "1 converted" in out
    desc = read_json(os.path.join(models, "mel_2bar_small", tfjs_bundles.DESCRIPTION_FILE))
    assert desc["name"] == "mel_2bar_small" and set(desc["graphs"]) == {"decode"}
    assert read_json(os.path.join(models, "index.json"))["models"][0]["name"] == "mel_2bar_small"
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}"]) == 0
    assert "up to date" in capsys.readouterr().out
    # Still current when the export and its bundle move (a fresh clone has new paths and
    # file times), stale once the export base gets a newer version.
    moved = tmp_path / "clone"
    shutil.copytree(saved_models, moved / "export")
    shutil.copytree(models, moved / "web_models")
    saved_models, models = str(moved / "export"), str(moved / "web_models")
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}"]) == 0
    assert "up to date" in capsys.readouterr().out
    base = os.path.join(saved_models, "mel_2bar_small")
    shutil.copytree(os.path.join(base, "1"), os.path.join(base, "2"))
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}",
                     "--graphs=decode"]) == 0
    assert "1 converted" in capsys.readouterr().out
    desc = read_json(os.path.join(models, "mel_2bar_small", tfjs_bundles.DESCRIPTION_FILE))
    assert desc["source"]["version"] == "2"
    # Other weights exported under the same version number are another model too.
    shutil.rmtree(base)
    model = MusicVAE(config)  # the shared model's weights (left as they are), one moved
    model.build()
    model.set_weights(shared.get_weights())
    model.weights[0].assign(model.weights[0] + 1.0)
    for version in ("1", "2"):
        assert os.path.basename(export.export_saved_model(model, base)) == version
    assert cli.main(["tfjs", f"--saved_models={saved_models}", f"--out={models}",
                     "--graphs=decode"]) == 0
    assert "1 converted" in capsys.readouterr().out
    # `hmvae web` converts only what is not current, and stops when the page has no model.
    page = tmp_path / "page"
    (page / "build").mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    (page / "build" / "app.js").write_text("")
    logs, warnings = [], []
    web.prepare(str(page), models, saved_models, build=False, log=logs.append,
                warn=warnings.append)
    assert any("up to date" in line for line in logs) and not warnings
    with pytest.raises(web.SetupError, match="empty does not exist, so the page would have no"):
        web.prepare(str(page), str(tmp_path / "empty"), None, build=False, log=logs.append,
                    warn=warnings.append)
    with pytest.raises(web.SetupError, match="index.html"):
        web.prepare(str(tmp_path), models, None)
    assert cli.main(["tfjs", f"--saved_model={tmp_path / 'nothing'}", f"--out={models}/x"]) == 1
    assert "no SavedModel" in capsys.readouterr().err



def test_a_current_bundle_missing_from_the_list_is_listed(melody, tmp_path):
    """`hmvae tfjs --saved_models` killed after the new bundle was renamed into place but
    before index.json was updated: the next run finds the bundle current and must still
    list it, or the page never offers the model."""
    _, _, path, out, _ = melody
    saved_models, models = tmp_path / "saved_models", tmp_path / "web_models"
    shutil.copytree(os.path.dirname(path), saved_models / "mel")
    shutil.copytree(out, models / "mel")  # the bundle in place, no index.json yet
    logs = []
    assert tfjs.convert_all(str(saved_models), str(models), log=logs.append) == []
    assert logs == [f"mel: up to date ({models / 'mel'})"]
    index = models / tfjs_bundles.INDEX_FILE
    listed = read_json(index)["models"]
    assert [(e["name"], e["path"]) for e in listed] == [("mel", "mel/hmvae_model.json")]
    written = index.stat().st_mtime_ns
    tfjs.convert_all(str(saved_models), str(models), log=logs.append)
    assert index.stat().st_mtime_ns == written  # an up-to-date list is not rewritten


def test_out_must_be_a_bundle_or_a_folder_of_its_own(tmp_path, capsys):
    """--out=web/models (the page's models folder) instead of web/models/<name> is refused
    before anything is converted: the bundle would replace the folder as a whole."""
    models = tmp_path / "web_models"
    (models / "mel_2bar").mkdir(parents=True)
    (models / "index.json").write_text('{"models": []}')
    assert cli.main(["tfjs", f"--saved_model={tmp_path / 'nothing'}", f"--out={models}"]) == 1
    err = capsys.readouterr().err
    assert "not a bundle of `hmvae tfjs`" in err and "no SavedModel" not in err
    assert (models / "index.json").exists() and (models / "mel_2bar").is_dir()
    bundle, empty = models / "mel_2bar", models / "new"
    (bundle / tfjs_bundles.DESCRIPTION_FILE).write_text("{}")
    empty.mkdir()
    for ok in (bundle, empty, models / "absent"):
        tfjs_bundles.refuse_foreign_folder(str(ok))  # an earlier bundle, an empty or a new folder
