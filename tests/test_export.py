"""Export: versioned atomic SavedModels whose signatures follow the serving contract."""
import argparse
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf import export
from hmvae_tf.model.vae import MusicVAE
from model_helpers import random_tokens, scale_melodies, tiny_config


def exported(tmp_path, name="cat-mel_2bar_small"):
    config = tiny_config(name)
    model = MusicVAE(config)
    model.build()
    base = str(tmp_path / "export")
    return config, model, base, export.export_saved_model(model, base)


@pytest.fixture(scope="module")
def melody_export(tmp_path_factory):
    """One exported melody model shared by the tests that only read it."""
    return exported(tmp_path_factory.mktemp("melody"))


@pytest.fixture(scope="module")
def melody_xla_export(melody_export):
    """The same model exported again with --jit_compile, as version 2."""
    config, model, base, _ = melody_export
    return config, model, base, export.export_saved_model(model, base, 2, jit_compile=True)


def test_versions_are_atomic_and_increment(tmp_path):
    config, model, base, path = exported(tmp_path)
    assert path == os.path.join(base, "1")
    assert export.export_saved_model(model, base) == os.path.join(base, "2")
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary directory left behind
    with pytest.raises(FileExistsError):
        export.export_saved_model(model, base, version=2)
    meta = json.load(open(os.path.join(path, "assets.extra", export.CONFIG_ASSET)))
    assert meta["tracks"] == ["melody"] and meta["num_steps"] == 32
    assert meta["config"]["name"] == "cat-mel_2bar_small"


def test_export_gives_the_model_its_cudnn_setting_back(tmp_path):
    """export_saved_model turned the GPU's LSTM kernel off for its graphs and left it off, so
    a model exported from a notebook (or a callback) mid-training went on training on a
    GPU without cuDNN."""
    config, model, base, _ = exported(tmp_path)
    cores = [core.rnn for core in model.decoder.cores]
    assert model.encoder.use_cudnn and all(rnn.use_cudnn for rnn in cores)
    model.set_use_cudnn(False)
    export.export_saved_model(model, base)
    assert not model.encoder.use_cudnn and not any(rnn.use_cudnn for rnn in cores)


def test_graph_has_no_gpu_only_ops(melody_export):
    _, _, _, path = melody_export
    graph = open(os.path.join(path, "saved_model.pb"), "rb").read()
    assert b"CudnnRNN" not in graph and b"StatelessRandomUniform" in graph


def test_melody_signatures(melody_export):
    config, model, _, path = melody_export
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures
    assert set(export.SIGNATURES) | {"serving_default"} <= set(sig)
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]])
    temps = tf.constant([0.0, 1.0, 0.5])

    out = sig["sample"](temperature=temps, seed=seeds)
    assert out["melody"].shape == (3, 32) and out["melody"].dtype == tf.int32
    assert out["z"].shape == (3, config.z_size)
    again = sig["sample"](temperature=temps, seed=seeds)
    np.testing.assert_array_equal(out["melody"], again["melody"])
    single = sig["sample"](temperature=temps[1:2], seed=seeds[1:2])
    np.testing.assert_array_equal(single["melody"][0], out["melody"][1])
    # The exported sampler is the model's own.
    tokens, z = model.sample(3, temps, seeds)
    np.testing.assert_array_equal(out["melody"], tokens[..., 0])

    decoded = sig["decode"](z=out["z"], temperature=temps, seed=seeds)
    assert decoded["melody"].shape == (3, 32)

    melodies = scale_melodies(2, 32)[..., 0]
    enc = sig["encode"](melody=melodies, seed=seeds[:2])
    q = model.encode(tf.constant(melodies[..., None]))
    np.testing.assert_allclose(enc["mu"], q.mean(), atol=1e-5)
    np.testing.assert_allclose(enc["sigma"], q.stddev(), atol=1e-5)
    assert not np.allclose(enc["z"], enc["mu"])

    recon = sig["reconstruct"](melody=melodies, temperature=tf.zeros([2]), seed=seeds[:2])
    np.testing.assert_array_equal(recon["melody"], model.decode(q.mean(), 0.0)[..., 0])

    n = 5
    inter = sig["interpolate"](
        melody_a=np.repeat(melodies[:1], n, 0), melody_b=np.repeat(melodies[1:], n, 0),
        alpha=tf.linspace(0.0, 1.0, n), temperature=tf.zeros([n]), seed=tf.zeros([n, 2], tf.int32))
    np.testing.assert_array_equal(inter["melody"][0], recon["melody"][0])
    np.testing.assert_array_equal(inter["melody"][-1], recon["melody"][1])
    np.testing.assert_allclose(inter["z"][0], enc["mu"][0], atol=1e-5)
    np.testing.assert_allclose(inter["z"][-1], enc["mu"][1], atol=1e-5)
    # Rows that are not all one pair take the general path: row-wise endpoints.
    mixed = sig["interpolate"](
        melody_a=melodies, melody_b=melodies[::-1], alpha=tf.constant([0.0, 0.0]),
        temperature=tf.zeros([2]), seed=tf.zeros([2, 2], tf.int32))
    np.testing.assert_allclose(mixed["z"], enc["mu"], atol=1e-5)


@pytest.mark.parametrize("call", [
    lambda s: s["sample"](temperature=tf.constant([-1.0]), seed=tf.constant([[1, 2]])),
    lambda s: s["sample"](temperature=tf.constant([1.0, 1.0]), seed=tf.constant([[1, 2]])),
    lambda s: s["encode"](melody=tf.fill([1, 32], 90), seed=tf.constant([[1, 2]])),
    lambda s: s["encode"](melody=tf.fill([1, 32], -1), seed=tf.constant([[1, 2]])),
])
@pytest.mark.parametrize("xla", [False, True], ids=["plain", "xla"])
def test_bad_values_raise_invalid_argument(melody_export, melody_xla_export, call, xla):
    """Also compiled: XLA drops Assert ops, so the checks must stay outside the cluster."""
    _, _, _, path = melody_xla_export if xla else melody_export
    with pytest.raises(tf.errors.InvalidArgumentError):
        call(tf.saved_model.load(path).signatures)


@pytest.mark.parametrize("xla", [False, True], ids=["plain", "xla"])
def test_a_non_finite_z_or_alpha_is_refused_by_the_graph(melody_export, melody_xla_export, xla):
    """A NaN or infinite z or alpha decoded to silence or noise with no error, which a real TF
    Serving (without hmvae serve's own check) still answers: refused by both loaders, TF2's
    functions and the TF1 session of TF Serving and hmvae serve (`Servable`), and compiled
    too, as XLA would drop the check."""
    from hmvae_tf.serving.service import Servable

    config, _, _, path = melody_xla_export if xla else melody_export
    z = np.zeros((2, config.z_size), np.float32)
    z[1, 3] = np.nan
    melodies = scale_melodies(2, 32)[..., 0]
    rows = dict(temperature=np.float32([0.5, 0.0]), seed=np.zeros((2, 2), np.int32))
    requests = {
        "decode": (dict(z=z, **rows), "z must be finite : Tensor had NaN values"),
        "interpolate": (dict(melody_a=melodies[:1].repeat(2, 0), melody_b=melodies[1:].repeat(2, 0),
                             alpha=np.float32([0.5, np.inf]), **rows),
                        "alpha must be finite : Tensor had Inf values"),
    }
    signatures = tf.saved_model.load(path).signatures
    servable = Servable("melody", 1, path)
    for name, (inputs, message) in requests.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures[name](**inputs)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            servable.run(name, inputs)
        fine = {k: np.nan_to_num(v, posinf=1.0) for k, v in inputs.items()}
        np.testing.assert_array_equal(servable.run(name, fine)["melody"],
                                      signatures[name](**fine)["melody"])
    # temperature: 0 is argmax and +inf every token alike, as before; NaN is refused.
    for temperature in (0.0, np.inf):
        servable.run("decode", dict(rows, z=z[:1] * 0, temperature=np.float32([temperature]),
                                    seed=rows["seed"][:1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be >= 0"):
        servable.run("decode", dict(z=z[:1] * 0, temperature=np.float32([np.nan]),
                                    seed=rows["seed"][:1]))


def _shipped_versions() -> list:
    """(model, version, directory) of every version on disk of every model the repository's
    saved_models/models.config serves, older versions included: all of them are shipped."""
    from hmvae_tf.serving.model_manager import read_model_config, versions_on_disk

    config = os.path.join(os.path.dirname(__file__), "..", "saved_models", "models.config")
    return [pytest.param(source.name, version, os.path.join(source.base_path, name),
                         id=f"{source.name}/{version}")
            for source in read_model_config(config)
            for version, name in versions_on_disk(source.base_path).items()]


@pytest.mark.parametrize("name,version,path", _shipped_versions())
def test_every_shipped_exports_metadata_uses_the_keys_the_exporter_writes(melody_export, name,
                                                                           version, path):
    """Shipped metadata was partly written by hand, once as `reexported_from` where `hmvae
    export --from_saved_model` writes `re_exported_from`: a key nothing writes or reads is a
    record nothing finds. Every key must be one a fresh export has, one that says where the
    weights came from, or the in-place re-export's note."""
    from hmvae_tf import export_options

    meta, current = (export_options.read_metadata(p) for p in (path, melody_export[3]))
    known = {*current, *export_options.TRAINED_AT, export_options.RE_EXPORTED_FROM,
             export_options.RE_EXPORTED_IN_PLACE}
    assert set(meta) <= known, f"{name}/{version}: unknown keys {set(meta) - known}"


@pytest.mark.parametrize("name,version,path", _shipped_versions())
def test_every_shipped_export_is_current_and_refuses_a_non_finite_z(melody_export, name,
                                                                    version, path):
    """The shipped exports were once written by an older `hmvae export`: no options in their
    metadata, and graphs that decoded a NaN z to noise, which a real TF Serving serving them
    (without hmvae serve's own check) answered. Every shipped version must carry everything
    today's exporter records, options that say what its graph is, and refuse a NaN z and an
    infinite alpha in the graph, through TF2's loader and the TF1 session TF Serving runs."""
    from hmvae_tf import export_options
    from hmvae_tf.serving.service import Servable

    meta, current = (export_options.read_metadata(p) for p in (path, melody_export[3]))
    assert set(current) <= set(meta), f"{name}/{version} lacks {set(current) - set(meta)}"
    assert set(meta["options"]) == set(current["options"])
    assert set(meta["in_effect"]) == set(current["in_effect"])
    options = meta["options"]
    graph = open(os.path.join(path, "saved_model.pb"), "rb").read()
    assert (b"_XlaMustCompile" in graph) == options["jit_compile"]
    assert ("bfloat16" in _product_dtypes(path)) == (options["dtype_policy"] != "float32")

    steps, z_size = meta["num_steps"], meta["z_size"]
    z = np.zeros((2, z_size), np.float32)
    z[1, 3] = np.nan
    rows = dict(temperature=np.float32([0.5, 0.0]), seed=np.zeros((2, 2), np.int32))
    tune = {t: np.zeros((2, steps), np.int32) for t in meta["tracks"]}
    requests = {
        "decode": (dict(z=z, **rows), "z must be finite : Tensor had NaN values"),
        "interpolate": (dict(**{t + "_a": v for t, v in tune.items()},
                             **{t + "_b": v for t, v in tune.items()},
                             alpha=np.float32([0.5, np.inf]), **rows),
                        "alpha must be finite : Tensor had Inf values"),
    }
    signatures = tf.saved_model.load(path).signatures
    servable = Servable(name, version, path)
    for signature, (inputs, message) in requests.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures[signature](**inputs)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            servable.run(signature, inputs)
    fine = servable.run("decode", dict(rows, z=np.nan_to_num(z)))
    assert {t: v.shape for t, v in fine.items()} == {t: (2, steps) for t in meta["tracks"]}


def test_xla_export_is_compiled_and_draws_the_plain_exports_melodies(melody_export,
                                                                      melody_xla_export):
    """The same seed must give the same music whichever export a server runs."""
    _, _, _, plain_path = melody_export
    _, _, _, xla_path = melody_xla_export
    assert b"_XlaMustCompile" in open(os.path.join(xla_path, "saved_model.pb"), "rb").read()
    assert b"_XlaMustCompile" not in open(os.path.join(plain_path, "saved_model.pb"), "rb").read()
    # Each encoder direction is its own compiled call, which the session runs side by side.
    layers = len(melody_xla_export[1].encoder.layers_)
    assert _compiled_calls(xla_path, "direction_pass") == 2 * layers
    plain, xla = (tf.saved_model.load(p).signatures for p in (plain_path, xla_path))
    seeds = tf.constant([[1, 2], [3, 4], [5, 6], [7, 8]])
    temps = tf.constant([0.0, 0.5, 1.0, 1.5])
    a = plain["sample"](temperature=temps, seed=seeds)
    b = xla["sample"](temperature=temps, seed=seeds)
    np.testing.assert_array_equal(b["melody"], a["melody"])
    np.testing.assert_allclose(b["z"], a["z"], atol=1e-6)
    melodies = tf.constant(scale_melodies(2, 32)[..., 0])
    inputs = dict(melody_a=melodies[:1], melody_b=melodies[1:], alpha=tf.constant([0.5]),
                  temperature=tf.constant([1.0]), seed=tf.constant([[9, 9]]))
    np.testing.assert_array_equal(xla["interpolate"](**inputs)["melody"],
                                  plain["interpolate"](**inputs)["melody"])


def _compiled_calls(path: str, name: str) -> int:
    """The most XLA-compiled calls any function of a SavedModel makes to callees whose name
    contains `name`."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(
        open(os.path.join(path, "saved_model.pb"), "rb").read())
    return max(sum(1 for n in f.node_def
                   if n.attr["_XlaMustCompile"].b and name in n.attr["f"].func.name)
               for f in proto.meta_graphs[0].graph_def.library.function)


def _most_calls_to_one_compiled_function(path: str, name: str) -> int:
    """The most XLA-compiled calls any function of a SavedModel makes to the same callee
    whose name contains `name` (e.g. "decode")."""
    import collections

    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(
        open(os.path.join(path, "saved_model.pb"), "rb").read())
    return max(max(collections.Counter(
        n.attr["f"].func.name for n in f.node_def
        if n.attr["_XlaMustCompile"].b and name in n.attr["f"].func.name).values(), default=0)
        for f in proto.meta_graphs[0].graph_def.library.function)


def test_xla_export_decodes_big_requests_in_shards_with_the_same_melodies(
        melody_export, melody_xla_export):
    """A request of >= 2 x MIN_SHARD_ROWS rows is decoded in two compiled calls, and every row
    is the row the plain export draws (9 rows: the shards are uneven)."""
    _, model, base, plain_path = melody_export
    _, _, _, xla_path = melody_xla_export
    assert _most_calls_to_one_compiled_function(xla_path, "decode") == export.XLA_DECODE_SHARDS
    unsharded = export.export_saved_model(model, base, 3, jit_compile=True, decode_shards=1)
    assert _most_calls_to_one_compiled_function(unsharded, "decode") == 1
    rows = 2 * export.MIN_SHARD_ROWS + 1
    seeds = tf.stack([tf.range(rows), 7 * tf.range(rows)], -1)
    temps = tf.linspace(0.0, 1.5, rows)
    plain, xla = (tf.saved_model.load(p).signatures for p in (plain_path, xla_path))
    expected = plain["sample"](temperature=temps, seed=seeds)["melody"]
    np.testing.assert_array_equal(xla["sample"](temperature=temps, seed=seeds)["melody"],
                                  expected)
    z = tf.random.stateless_normal([rows, model.config.z_size], [1, 2])
    np.testing.assert_array_equal(
        xla["decode"](z=z, temperature=temps, seed=seeds)["melody"],
        plain["decode"](z=z, temperature=temps, seed=seeds)["melody"])


def _while_loops(path: str) -> int:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(
        open(os.path.join(path, "saved_model.pb"), "rb").read())
    return sum(n.op in ("While", "StatelessWhile")
               for f in proto.meta_graphs[0].graph_def.library.function for n in f.node_def)


def test_hierarchical_export_decodes_small_requests_bar_parallel_with_the_same_melodies(
        tmp_path):
    """Requests of at most parallel_bars_rows rows take the parallel-bars decode (its loop of
    rounds is in the graph); every size draws what the export without it draws."""
    config, model, base, path = exported(tmp_path, "hierdec-mel_16bar")
    # By default on for the plain export; for XLA only with big weights (not a tiny model's).
    assert export.default_parallel_bars_rows(model, False) == export.PARALLEL_BARS_ROWS
    assert export.default_parallel_bars_rows(model, True) == 0
    sequential = export.export_saved_model(model, base, 2, parallel_bars_rows=0)
    assert _while_loops(path) > _while_loops(sequential)
    new, old = (tf.saved_model.load(p).signatures for p in (path, sequential))
    for rows in range(1, export.PARALLEL_BARS_ROWS + 2):
        seeds = tf.stack([tf.range(rows), tf.fill([rows], 3)], -1)
        temps = tf.linspace(0.0, 1.0, rows)
        np.testing.assert_array_equal(new["sample"](temperature=temps, seed=seeds)["melody"],
                                      old["sample"](temperature=temps, seed=seeds)["melody"])
    z = tf.random.stateless_normal([1, config.z_size], [1, 2])
    zero = dict(z=z, temperature=tf.zeros([1]), seed=tf.zeros([1, 2], tf.int32))
    np.testing.assert_array_equal(new["decode"](**zero)["melody"],
                                  model.decode(z, 0.0).numpy()[..., 0])


def test_trio_signatures_have_one_tensor_per_track(tmp_path):
    config, model, _, path = exported(tmp_path, "hierdec-trio_16bar")
    sig = tf.saved_model.load(path).signatures
    _, inputs = sig["encode"].structured_input_signature
    assert set(inputs) == {"melody", "bass", "drums", "seed"}
    out = sig["sample"](temperature=tf.constant([1.0]), seed=tf.constant([[1, 1]]))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "melody": (1, 256), "bass": (1, 256), "drums": (1, 256), "z": (1, config.z_size)}
    assert int(tf.reduce_max(out["drums"])) < 512 and int(tf.reduce_max(out["bass"])) < 90
    tokens = random_tokens(config, 1)
    recon = sig["reconstruct"](melody=tokens[..., 0], bass=tokens[..., 1], drums=tokens[..., 2],
                               temperature=tf.zeros([1]), seed=tf.zeros([1, 2], tf.int32))
    expected = model.decode(model.encode(tf.constant(tokens)).mean(), 0.0)
    for k, track in enumerate(("melody", "bass", "drums")):
        np.testing.assert_array_equal(recon[track], expected[..., k])


def test_tf1_session_loader_runs_the_signatures(melody_export):
    """TF Serving loads SavedModels into a TF1 session and restores variables by name; every
    signature must run that way too, with the same results as the TF2 loader."""
    _, _, _, path = melody_export
    graph = tf.Graph()
    with graph.as_default():
        session = tf.compat.v1.Session(graph=graph)
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    sig = meta.signature_def["sample"]
    feeds = {sig.inputs["temperature"].name: np.array([0.0, 1.0], np.float32),
             sig.inputs["seed"].name: np.array([[1, 2], [3, 4]], np.int32)}
    out = session.run({k: v.name for k, v in sig.outputs.items()}, feeds)
    expected = tf.saved_model.load(path).signatures["sample"](
        temperature=tf.constant([0.0, 1.0]), seed=tf.constant([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(out["melody"], expected["melody"])
    np.testing.assert_allclose(out["z"], expected["z"], atol=1e-6)


def test_load_model_rebuilds_the_keras_model(melody_export):
    _, model, _, path = melody_export
    rebuilt = export.load_model(path)
    assert [v.path for v in rebuilt.weights] == [v.path for v in model.weights]
    for a, b in zip(rebuilt.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_model_takes_an_export_base_like_saved_model(melody_export, tmp_path):
    """load_model refused an export base ('... is not an hmvae SavedModel'), which
    --saved_model and the client take as its newest version; it takes one now, by number
    (12 is newer than 3), or the version asked for."""
    import shutil

    _, model, _, path = melody_export
    base = tmp_path / "base"
    shutil.copytree(path, base / "12")
    shutil.copytree(path, base / "3")
    meta_path = base / "3" / "assets.extra" / export.CONFIG_ASSET
    meta = json.loads(meta_path.read_text())
    meta["config"]["z_size"] = 4  # version 3 no longer fits its weights
    meta_path.write_text(json.dumps(meta))
    newest = export.load_model(str(base))
    for a, b in zip(newest.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="does not match its config"):
        export.load_model(str(base), version=3)
    with pytest.raises(FileNotFoundError, match="has no version 5; it has 3, 12"):
        export.load_model(str(base), version=5)

@pytest.mark.parametrize("change", ["dec_rnn_size", "z_size"])
def test_load_model_refuses_an_export_its_config_does_not_fit(melody_export, tmp_path, change):
    import shutil

    _, _, _, path = melody_export
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    meta_path = copy / "assets.extra" / export.CONFIG_ASSET
    meta = json.loads(meta_path.read_text())
    meta["config"][change] = [16, 16, 16] if change == "dec_rnn_size" else 4
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its config"):
        export.load_model(str(copy))


def _product_dtypes(path: str) -> set[str]:
    """The dtypes (T attribute) of every MatMul/BatchMatMul in an export's graphs."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    graph = proto.meta_graphs[0].graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes
            if n.op in ("MatMul", "BatchMatMulV2", "BatchMatMulV3")}


def test_bfloat16_export_keeps_the_shipped_models_reconstructions(tmp_path, monkeypatch):
    """--dtype_policy=mixed_bfloat16 runs the products in bfloat16 and records it; on the
    shipped (trained) melody model its reconstructions of real tunes are float32's, and a
    row's melody still does not depend on its batch-mates. A server loading such an export
    asks XLA for the runtime that runs bfloat16 at speed."""
    from hmvae_tf.music import corpus
    from hmvae_tf.serving.service import Servable, export_dtype_policy

    model = export.load_model(os.path.join(os.path.dirname(__file__), "..", "saved_models",
                                           "mel_2bar", "1"))
    base = str(tmp_path / "export")
    fp32 = export.export_saved_model(model, base)
    bf16 = export.export_saved_model(model, base, dtype_policy="mixed_bfloat16")
    assert (export_dtype_policy(fp32), export_dtype_policy(bf16)) == ("float32",
                                                                      "mixed_bfloat16")
    assert _product_dtypes(fp32) == {"float32"}
    assert "bfloat16" in _product_dtypes(bf16)

    test_pieces = [p for p in corpus.embedded_pieces()
                   if corpus.split_of(p.piece_id) == "test"][:40]
    examples, _ = corpus.convert_pieces(("melody", 2, test_pieces))
    tunes = np.stack([e.tokens for e in examples[:96]]).astype(np.int32)
    n = len(tunes)
    assert n >= 64

    def reconstruct(path, rows):
        return tf.saved_model.load(path).signatures["reconstruct"](
            melody=tf.constant(rows), temperature=tf.zeros([len(rows)]),
            seed=tf.zeros([len(rows), 2], tf.int32))["melody"].numpy()

    want, got = reconstruct(fp32, tunes), reconstruct(bf16, tunes)
    assert (got == want).mean() >= 0.98
    assert (got == tunes).mean() >= (want == tunes).mean() - 0.01 > 0.8
    for k in (0, n // 2):
        np.testing.assert_array_equal(reconstruct(bf16, tunes[k:k + 1])[0], got[k])

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    Servable("fp32", 1, fp32)
    assert "XLA_FLAGS" not in os.environ
    Servable("bf16", 2, bf16)
    assert "--xla_cpu_use_thunk_runtime=false" in os.environ["XLA_FLAGS"]


def test_export_flag_offers_the_precision_policies():
    from hmvae_tf import export_options
    from hmvae_tf.model import precision
    assert export_options.DTYPE_POLICIES == precision.POLICIES


def test_metadata_records_the_options_that_make_the_export_again(melody_export, tmp_path):
    """A model card's reproduce command must make the same export: the options given are in
    the metadata, and reproduce_flags turns them back into the flags."""
    from hmvae_tf import export_options
    _, model, _, plain = melody_export
    made = export.export_saved_model(model, str(tmp_path / "e"), jit_compile=True,
                                     dtype_policy="mixed_bfloat16", decode_shards=3)
    options = [json.load(open(os.path.join(p, "assets.extra", export.CONFIG_ASSET)))["options"]
               for p in (plain, made)]
    assert export_options.reproduce_flags(options[0]) == ""
    flags = export_options.reproduce_flags(options[1])
    assert flags == " --jit_compile --dtype_policy=mixed_bfloat16 --decode_shards=3"
    parser = argparse.ArgumentParser()
    export_options.add_arguments(parser, "export")
    args = parser.parse_args(["--model_dir=m", "--export_base=e", *flags.split()])
    assert (args.jit_compile, args.dtype_policy, args.decode_shards) == (
        True, "mixed_bfloat16", 3)
    # What the defaults came to is recorded beside them: one shard for a plain export.
    in_effect = [export_options.read_metadata(p)["in_effect"] for p in (plain, made)]
    assert in_effect == [{"decode_shards": 1, "parallel_bars_rows": 0},
                         {"decode_shards": 3, "parallel_bars_rows": 0}]


def test_a_full_disk_is_one_line_and_a_killed_exports_leftover_is_named(tmp_path, monkeypatch,
                                                                        capsys):
    """`hmvae export` on a full disk says so in one line and leaves nothing; a folder that an
    export killed with SIGKILL left (its process gone) is pointed out, not loaded."""
    import subprocess

    from hmvae_tf import checkpoints, cli

    config = tiny_config()
    model = MusicVAE(config)
    model.build()
    model_dir, base = str(tmp_path / "run"), tmp_path / "export"
    checkpoints.save_config(model_dir, config)
    tf.train.CheckpointManager(checkpoints.make_checkpoint(model),
                               os.path.join(model_dir, checkpoints.CKPT_DIR), 1).save(1)
    gone = subprocess.Popen(["true"])  # a process id that is gone
    gone.wait()
    leftover = base / f".tmp-1-{gone.pid}"
    (leftover / "variables").mkdir(parents=True)
    (base / f".tmp-2-{os.getpid()}-other").mkdir()  # not an export's name

    def full_disk(obj, path, signatures=None):
        os.makedirs(os.path.join(path, "variables"))
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{path}/saved_model.pb.tmp1; No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    assert cli.main(["export", f"--model_dir={model_dir}", f"--export_base={base}"]) == 1
    out, err = capsys.readouterr()
    # A note, not a result: on stderr with the error (and the loading line), not on stdout.
    assert f"note: {leftover} is what an export that did not finish left behind" in err
    assert ".tmp-2-" not in err and out == ""
    error = err.splitlines()[-1]
    assert error.startswith("hmvae export: error: cannot write the export: ")
    assert error.endswith("No space left on device; nothing was exported (the "
                          "partial copy was removed)")
    assert "Traceback" not in err and err.count("\n") == 3
    assert sorted(os.listdir(base)) == sorted([leftover.name, f".tmp-2-{os.getpid()}-other"])


def test_from_saved_model_re_exports_the_weights_with_new_options(tmp_path, capsys):
    """`hmvae export --from_saved_model` must make an XLA variant of an export that draws the
    source's melodies, and keep where its weights came from and their attribute vectors,
    without a checkpoint."""
    from hmvae_tf import export_options
    from hmvae_tf.attributes import ATTRIBUTES_FILE
    config = tiny_config("cat-mel_2bar_small")
    model = MusicVAE(config)
    model.build()
    source = export.export_saved_model(model, str(tmp_path / "src"),
                                       extra_metadata={"model_dir": "/runs/m", "training_step": 7})
    # Attribute vectors depend on the weights alone: the new version must have them too
    # (they were left behind, and `hmvae attribute` found none for the XLA variant).
    vectors = os.path.join(source, "assets.extra", ATTRIBUTES_FILE)
    with open(vectors, "w") as f:
        json.dump({"format": "hmvae-attributes/1", "attributes": {"density": [0.5]}}, f)
    parser = argparse.ArgumentParser()
    export_options.add_arguments(parser, "export")
    target = str(tmp_path / "xla")
    args = parser.parse_args([f"--from_saved_model={tmp_path / 'src'}",
                              f"--export_base={target}", "--jit_compile"])
    assert export_options.run(args) == 0
    made = os.path.join(target, "1")
    meta = export_options.read_metadata(made)
    assert meta["options"]["jit_compile"] is True
    shards = meta["in_effect"]["decode_shards"]  # said in words, not as "2 shard(s)"
    assert ("XLA-compiled, decoding in one piece" if shards == 1 else
            f"XLA-compiled, decoding in {shards} shards") in capsys.readouterr().out
    assert (meta["model_dir"], meta["training_step"]) == ("/runs/m", 7)
    assert meta[export_options.RE_EXPORTED_FROM] == os.path.abspath(source)
    with open(os.path.join(made, "assets.extra", ATTRIBUTES_FILE)) as f:
        assert f.read() == open(vectors).read()
    assert b"_XlaMustCompile" in open(os.path.join(made, "saved_model.pb"), "rb").read()
    seeds, temps = tf.constant([[1, 2], [3, 4]]), tf.constant([0.0, 1.0])
    a, b = (tf.saved_model.load(p).signatures["sample"](temperature=temps, seed=seeds)
            for p in (source, made))
    np.testing.assert_array_equal(b["melody"], a["melody"])
    with pytest.raises(SystemExit) as both:  # one source or the other, as a usage error
        parser.parse_args(["--model_dir=m", f"--from_saved_model={source}", "--export_base=e"])
    assert both.value.code == 2
