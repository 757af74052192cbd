"""Shared fixtures of the serving tests: toy contract SavedModels and running model servers.

The fixtures are registered by tests/conftest.py, so that each is made once per run (a
session-scoped fixture imported into a test module is made again for each such module); the
helpers (Conn, seeds, ServerProcess) are imported where used. Servers run as real
subprocesses (`python -m hmvae_tf.cli serve`).
A real TF Serving joins the round-trip tests when `tensorflow_model_server` is on PATH, or when
HMVAE_TF_SERVING_ADDRESS=host:port names one that is already running (it must then serve a
model with the serving contract under HMVAE_TF_SERVING_MODEL, default "mel").
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from hmvae_tf.serving.model_manager import write_models_config
from hmvae_tf.serving.toy_model import build_toy_saved_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 180


class ModelRepo:
    """<root>/models/{mel,two,hot}/<version>/ plus models.config beside them."""

    def __init__(self, root: str):
        self.root = root
        self.models = os.path.join(root, "models")
        build = lambda name, version, seed=0: build_toy_saved_model(  # noqa: E731
            os.path.join(self.models, name, str(version)), init_seed=seed)
        build("mel", 1)
        build("two", 1, seed=1)
        build("two", 2, seed=2)
        build("hot", 1, seed=1)
        self.mel_v1 = os.path.join(self.models, "mel", "1")
        # Relative base paths: resolved beside the config file (the server runs elsewhere).
        self.config = os.path.join(self.models, "models.config")
        # "pinned": version 1 of "two", by a specific version policy; labels are any text.
        write_models_config(self.config, {"mel": "mel", "two": "two", "hot": "hot", "pinned": "two"},
                            policies={"pinned": "specific { versions: 1 }"},
                            labels={"pinned": {"stable": 1, "team/a:b": 1}})
        # TF Serving resolves base paths against its working directory only.
        self.abs_config = os.path.join(self.models, "models_abs.config")
        write_models_config(self.abs_config, {n: os.path.join(self.models, n)
                                              for n in ("mel", "two", "hot")})


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory) -> ModelRepo:
    return ModelRepo(str(tmp_path_factory.mktemp("serving")))


class ServerProcess:
    """`hmvae serve` in a subprocess; collects its output; stops it with SIGTERM."""

    def __init__(self, args: list[str], cwd: str):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hmvae_tf.cli", "serve", "--port=0", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.address = None
        deadline = time.time() + START_TIMEOUT
        while self.address is None:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                raise RuntimeError("hmvae serve did not start:\n" + "".join(self.lines))
            if line.startswith("listening on "):
                port = line.split()[2].rsplit(":", 1)[1]
                self.address = f"localhost:{port}"

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def output(self) -> str:
        return "".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


@pytest.fixture(scope="session")
def hmvae_server(model_repo, tmp_path_factory):
    """hmvae serve without batching, run from an unrelated directory."""
    server = ServerProcess([f"--model_config_file={model_repo.config}",
                            "--file_system_poll_wait_seconds=0.5"],
                           cwd=str(tmp_path_factory.mktemp("cwd")))
    yield server
    code = server.stop()
    assert code == 0, server.output()
    assert "shutting down" in server.output() and "stopped:" in server.output()


@pytest.fixture(scope="session")
def batching_server(model_repo, tmp_path_factory):
    """hmvae serve --enable_batching with a parameters file that lets 16 requests meet, and
    splits larger requests into executed batches of at most 16 rows."""
    params = tmp_path_factory.mktemp("batching") / "batching.config"
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 50000 }\n"
                      "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 1 }\n"
                      "enable_large_batch_splitting { value: true }\n"
                      "max_execution_batch_size { value: 16 }\n")
    server = ServerProcess([f"--model_config_file={model_repo.config}", "--enable_batching",
                            f"--batching_parameters_file={params}"],
                           cwd=str(tmp_path_factory.mktemp("cwd")))
    yield server
    code = server.stop()
    assert code == 0, server.output()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_available(address: str, model: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.time() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        while time.time() < deadline:
            try:
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = model
                response = stub.GetModelStatus(request, timeout=5)
                if any(s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
                       for s in response.model_version_status):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"{model} never became AVAILABLE on {address}")


@pytest.fixture(scope="session", params=["hmvae_serve", "tensorflow_model_server"])
def any_server(request, model_repo, tmp_path_factory):
    """(address, model name, kind) of a server with the toy model "mel": hmvae serve, and a real
    TF Serving when one is available (else that variant is skipped, saying why)."""
    if request.param == "hmvae_serve":
        yield request.getfixturevalue("hmvae_server").address, "mel", "hmvae"
        return
    external = os.environ.get("HMVAE_TF_SERVING_ADDRESS")
    if external:
        yield external, os.environ.get("HMVAE_TF_SERVING_MODEL", "mel"), "tf_serving"
        return
    binary = shutil.which("tensorflow_model_server")
    if not binary:
        pytest.skip("no real TF Serving: tensorflow_model_server is not on PATH and "
                    "HMVAE_TF_SERVING_ADDRESS=host:port is not set")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("tfs") / "tensorflow_model_server.log", "w")
    proc = subprocess.Popen([binary, f"--port={port}",
                             f"--model_config_file={model_repo.abs_config}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_available(f"localhost:{port}", "mel")
        yield f"localhost:{port}", "mel", "tf_serving"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


class Conn:
    def __init__(self, address: str, model: str):
        self.channel = grpc.insecure_channel(address)
        self.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.model = model

    def predict(self, signature: str | None, inputs: dict, model: str | None = None,
                version: int | None = None, output_filter=(), timeout: float = 60):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model or self.model
        if version is not None:
            request.model_spec.version.value = version
        if signature is not None:
            request.model_spec.signature_name = signature
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        request.output_filter.extend(output_filter)
        response = self.predict_stub.Predict(request, timeout=timeout)
        return response, {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def metadata(self, model: str | None = None, fields=("signature_def",)):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
        request.model_spec.name = model or self.model
        return self.predict_stub.GetModelMetadata(request, timeout=60)

    def status(self, model: str | None = None, version: int | None = None):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model or self.model
        if version is not None:
            request.model_spec.version.value = version
        return self.model_stub.GetModelStatus(request, timeout=60)

    def signature_defs(self, model: str | None = None):
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        assert self.metadata(model).metadata["signature_def"].Unpack(sigmap)
        return sigmap.signature_def


def seeds(n, s=0):
    return np.stack([np.full(n, s, np.int32), np.arange(n, dtype=np.int32)], 1)
