"""gRPC round trips through `hmvae serve` (and a real TF Serving when one is available)."""
from __future__ import annotations

import os
import shutil
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2

from serving_fixtures import Conn, seeds  # noqa: F401

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


def contract(conn: Conn):
    """(tracks, T, Z) from the encode and decode signatures, as a client learns them."""
    sigs = conn.signature_defs()
    tracks = sorted(k for k in sigs["encode"].inputs if k != "seed")
    T = sigs["encode"].inputs[tracks[0]].tensor_shape.dim[1].size
    Z = sigs["decode"].inputs["z"].tensor_shape.dim[1].size
    return tracks, T, Z


def expect_error(code, fn, *args, **kwargs) -> str:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def test_round_trip(any_server):
    address, model, kind = any_server
    conn = Conn(address, model)
    status = conn.status()
    assert [s.state for s in status.model_version_status] == [AVAILABLE]
    assert status.model_version_status[0].status.error_code == 0

    meta = conn.metadata()
    assert meta.model_spec.name == model
    assert meta.metadata["signature_def"].type_url.endswith("/tensorflow.serving.SignatureDefMap")
    sigs = conn.signature_defs()
    assert {"sample", "encode", "decode", "reconstruct", "interpolate", "serving_default"} <= set(sigs)
    tracks, T, Z = contract(conn)
    assert sigs["encode"].inputs[tracks[0]].dtype == tf.int32.as_datatype_enum

    n = 3
    temp = np.full(n, 0.5, np.float32)
    response, out = conn.predict("sample", {"temperature": temp, "seed": seeds(n)})
    assert response.model_spec.name == model
    assert response.model_spec.signature_name == "sample"
    assert response.model_spec.version.value == meta.model_spec.version.value
    assert set(out) == {*tracks, "z"}
    assert out[tracks[0]].shape == (n, T) and out[tracks[0]].dtype == np.int32
    assert out["z"].shape == (n, Z) and out["z"].dtype == np.float32
    again = conn.predict("sample", {"temperature": temp, "seed": seeds(n)})[1]
    np.testing.assert_array_equal(out[tracks[0]], again[tracks[0]])  # seeded: reproducible
    default = conn.predict(None, {"temperature": temp, "seed": seeds(n)})
    assert default[0].model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(default[1][tracks[0]], out[tracks[0]])
    only_z = conn.predict("sample", {"temperature": temp, "seed": seeds(n)}, output_filter=["z"])[1]
    assert set(only_z) == {"z"}

    tokens = {t: out[t] for t in tracks}
    enc = conn.predict("encode", {**tokens, "seed": seeds(n)})[1]
    assert {k: v.shape for k, v in enc.items()} == {"z": (n, Z), "mu": (n, Z), "sigma": (n, Z)}
    assert (enc["sigma"] > 0).all()
    dec = conn.predict("decode", {"z": enc["mu"], "temperature": np.zeros(n, np.float32),
                                  "seed": seeds(n)})[1]
    assert set(dec) == set(tracks) and dec[tracks[0]].shape == (n, T)
    rec = conn.predict("reconstruct", {**tokens, "temperature": np.zeros(n, np.float32),
                                       "seed": seeds(n)})[1]
    np.testing.assert_allclose(rec["z"], enc["mu"], rtol=1e-5, atol=1e-5)  # z = mu
    np.testing.assert_array_equal(rec[tracks[0]], dec[tracks[0]])  # argmax decode of mu
    k = 5
    interp = {f"{t}_a": np.repeat(tokens[t][:1], k, 0) for t in tracks}
    interp.update({f"{t}_b": np.repeat(tokens[t][1:2], k, 0) for t in tracks})
    it = conn.predict("interpolate", {**interp, "alpha": np.linspace(0, 1, k).astype(np.float32),
                                      "temperature": np.zeros(k, np.float32),
                                      "seed": np.zeros((k, 2), np.int32)})[1]
    assert it[tracks[0]].shape == (k, T)
    np.testing.assert_allclose(it["z"][0], enc["mu"][0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(it["z"][-1], enc["mu"][1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(it[tracks[0]][0], dec[tracks[0]][0])


def test_not_found_and_failed_precondition(any_server):
    address, model, kind = any_server
    conn = Conn(address, model)
    inputs = {"temperature": np.ones(1, np.float32), "seed": seeds(1)}
    msg = expect_error(grpc.StatusCode.NOT_FOUND, conn.predict, "sample", inputs, model="no_such_model")
    assert "Servable not found for request: Latest(no_such_model)" in msg
    msg = expect_error(grpc.StatusCode.NOT_FOUND, conn.predict, "sample", inputs, version=777)
    assert f"Specific({model}, 777)" in msg
    expect_error(grpc.StatusCode.NOT_FOUND, conn.metadata, model="no_such_model")
    expect_error(grpc.StatusCode.NOT_FOUND, conn.status, model="no_such_model")
    expect_error(grpc.StatusCode.NOT_FOUND, conn.status, version=777)
    # TF Serving answers an unknown signature with FAILED_PRECONDITION, not NOT_FOUND.
    msg = expect_error(grpc.StatusCode.FAILED_PRECONDITION, conn.predict, "no_such_sig", inputs)
    assert 'Serving signature key "no_such_sig" not found' in msg
    assert conn.status().model_version_status[0].state == AVAILABLE  # still serving


def test_invalid_argument(any_server):
    address, model, kind = any_server
    conn = Conn(address, model)
    tracks, T, Z = contract(conn)
    ok = {"temperature": np.ones(2, np.float32), "seed": seeds(2)}
    IA = grpc.StatusCode.INVALID_ARGUMENT
    msgs = {
        "dtype": expect_error(IA, conn.predict, "sample", {**ok, "temperature": np.ones(2, np.int32)}),
        "shape": expect_error(IA, conn.predict, "sample", {**ok, "seed": np.zeros((2, 3), np.int32)}),
        "missing": expect_error(IA, conn.predict, "sample", {"temperature": ok["temperature"]}),
        "extra": expect_error(IA, conn.predict, "sample", {**ok, "bogus": np.ones(2, np.float32)}),
        "value": expect_error(IA, conn.predict, "encode", {
            **{t: np.full((1, T), 95 if t != "drums" else 600, np.int32) for t in tracks},
            "seed": seeds(1)}),
        "filter": expect_error(IA, conn.predict, "sample", ok, output_filter=["nope"]),
        "metadata": expect_error(IA, conn.metadata, fields=()),
    }
    assert "Missing but required: {seed}" in msgs["missing"]
    assert "Sent extra: {bogus}" in msgs["extra"]
    assert "output tensor alias not found in signature: nope" in msgs["filter"]
    if kind == "hmvae":  # our messages name the input and what was expected
        assert msgs["dtype"] == "input 'temperature' of signature 'sample' must be float32, got int32"
        assert msgs["shape"] == "input 'seed' of signature 'sample' must have shape [?,2], got [2,3]"
        assert "tokens must be < 90" in msgs["value"]
    _, out = conn.predict("sample", ok)  # still serving, and correctly
    assert out[tracks[0]].shape == (2, T)


def test_newest_version_and_policies(hmvae_server, model_repo):
    conn = Conn(hmvae_server.address, "two")
    inputs = {"temperature": np.zeros(2, np.float32), "seed": seeds(2)}
    response, latest = conn.predict("sample", inputs)
    assert response.model_spec.version.value == 2
    assert [(s.version, s.state) for s in conn.status().model_version_status] == [(2, AVAILABLE)]
    expect_error(grpc.StatusCode.NOT_FOUND, conn.predict, "sample", inputs, version=1)
    # The "pinned" entry serves version 1 of the same base path (specific version policy).
    response, pinned = conn.predict("sample", inputs, model="pinned")
    assert response.model_spec.version.value == 1
    assert not np.array_equal(pinned["z"], latest["z"]) or not np.array_equal(
        pinned["melody"], latest["melody"])
    assert "loaded model two version 2" in hmvae_server.output()
    assert "loaded model two version 1" not in hmvae_server.output()


def test_new_version_is_picked_up(hmvae_server, model_repo):
    from hmvae_tf.serving.client import MusicVAEClient

    conn = Conn(hmvae_server.address, "hot")
    inputs = {"temperature": np.zeros(1, np.float32), "seed": seeds(1)}
    assert conn.predict("sample", inputs)[0].model_spec.version.value == 1
    vae = MusicVAEClient.connect(server=hmvae_server.address, model="hot")  # unpinned
    assert vae.backend.served_version == 1
    base = os.path.join(model_repo.models, "hot")
    tmp = os.path.join(model_repo.root, "hot_v5_tmp")
    shutil.copytree(os.path.join(model_repo.models, "two", "2"), tmp)
    os.rename(tmp, os.path.join(base, "5"))  # atomic appearance, as an exporter should do
    deadline = time.time() + 60
    while time.time() < deadline:
        if conn.predict("sample", inputs)[0].model_spec.version.value == 5:
            break
        time.sleep(0.25)
    assert conn.predict("sample", inputs)[0].model_spec.version.value == 5
    states = {s.version: s.state for s in conn.status().model_version_status}
    assert states[5] == AVAILABLE and states[1] == get_model_status_pb2.ModelVersionStatus.END
    # The client connected to version 1 says which version answered (it said 1 for good).
    vae.sample(1)
    assert vae.backend.served_version == 5 and vae.description.endswith("version 5")
    vae.close()


def test_server_stats_call(hmvae_server):
    from hmvae_tf.serving.run_modes import RunModeChooser
    from hmvae_tf.serving.server import fetch_stats

    conn = Conn(hmvae_server.address, "mel")
    conn.status()
    # The server times both ways of 2-3 rows, after two runs on the pool with the call's
    # deadline as their timeout (not timed yet, they might come near it).
    for i in range(2 + 2 * (1 + RunModeChooser().trials)):
        conn.predict("sample", {"temperature": np.full(3, 0.5, np.float32), "seed": seeds(3, i)})
    stats = fetch_stats(hmvae_server.address)
    assert stats["run_modes"]["mel/1"]["sample rows 2-3"] in ("inline", "pooled")
    assert stats["batching"] is None
    assert stats["models"]["mel"] == [1]
    assert stats["requests"]["GetModelStatus"] >= 1
    assert stats["handler_seconds"]["GetModelStatus"] > 0


def test_sigterm_while_loading_never_binds_and_logs_go_to_stderr(model_repo, tmp_path):
    """A server stopped while its models load exits cleanly without ever listening, and its
    log lines are on stderr (as tensorflow_model_server's), leaving stdout empty."""
    import signal
    import subprocess
    import sys

    from hmvae_tf.serving.model_manager import write_models_config

    # Twelve models on one base path: loading takes long enough to be interrupted.
    config = write_models_config(str(tmp_path / "many.config"),
                                 {f"m{i}": os.path.join(model_repo.models, "mel")
                                  for i in range(12)})
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "hmvae_tf.cli", "serve", "--port=0",
                             f"--model_config_file={config}"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("loading model m0 "):
            proc.send_signal(signal.SIGTERM)
            break
    stdout, stderr = proc.communicate(timeout=120)
    log = "".join(seen) + stderr
    assert proc.returncode == 0, log
    assert "received SIGTERM" in log and "stopped before serving" in log
    assert "listening on" not in log
    assert stdout == ""


@pytest.mark.parametrize("batching", [False, True], ids=["unbatched", "batching"])
def test_a_run_past_its_grpc_deadline_stops_on_the_server(tmp_path, batching):
    """TF Serving hands a call's gRPC deadline to the session run. hmvae serve's callables ran
    on after the client had given up, holding the cores for the whole call (seconds here)."""
    from hmvae_tf.serving.model_manager import write_models_config
    from hmvae_tf.serving.server import fetch_stats
    from hmvae_tf.serving.toy_model import build_toy_saved_model
    from serving_fixtures import ServerProcess

    # 512 steps of a [1024, 1024] decoder over 64 rows: several seconds on 2 cores.
    build_toy_saved_model(str(tmp_path / "slow" / "1"), num_steps=512, dec_sizes=(1024, 1024))
    config = str(tmp_path / "models.config")
    write_models_config(config, {"slow": str(tmp_path / "slow")})
    server = ServerProcess([f"--model_config_file={config}"]
                           + (["--enable_batching"] if batching else []), cwd=str(tmp_path))
    try:
        conn = Conn(server.address, "slow")
        inputs = {"temperature": np.full(64, 0.5, np.float32), "seed": seeds(64)}
        with pytest.raises(grpc.RpcError) as info:
            conn.predict("sample", inputs, timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server's own run ends with DEADLINE_EXCEEDED about then; uncut it would end
        # seconds later, and as a success.
        start = time.monotonic()
        while "Predict:DEADLINE_EXCEEDED" not in fetch_stats(server.address)["requests"]:
            assert time.monotonic() - start < 3, fetch_stats(server.address)
            time.sleep(0.05)
        # A small call with room to spare still runs (and then keeps the fast path).
        for _ in range(3):
            _, out = conn.predict("sample", {"temperature": np.full(1, 0.5, np.float32),
                                             "seed": seeds(1)})
            assert out["melody"].shape == (1, 512)
    finally:
        assert server.stop() == 0, server.output()
