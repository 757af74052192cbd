"""The client library's input checks and error codes: the in-process backend checks input shapes
as a server does, float tokens are not truncated, and every ClientError carries a status code
an app can branch on."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hmvae_tf.export_options import SIGNATURES
from hmvae_tf.serving.client import ClientError, MusicVAEClient
from hmvae_tf.serving.client_backends import Backend, TensorSpec


@pytest.fixture(scope="module")
def local(model_repo):
    return MusicVAEClient.connect(saved_model=model_repo.mel_v1)


def test_in_process_call_checks_shapes_as_a_server_does(local):
    # The session's callables took these and ran a 31- or 64-step melody through the encoder.
    for steps in (31, 64):
        with pytest.raises(ClientError, match=r"input melody must have shape \[\?,32\], got "
                                              rf"\[1,{steps}\]") as err:
            local.call("encode", melody=[[1] * steps], seed=[[0, 0]])
        assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ClientError, match=r"input seed must have shape \[\?,2\]"):
        local.call("sample", temperature=[0.5], seed=[[0, 0, 0]])
    with pytest.raises(ClientError, match=r"input temperature must have shape \[\?\], got \[\]"):
        local.call("sample", temperature=0.5, seed=[[0, 0]])
    assert local.call("encode", melody=[[1] * 32], seed=[[0, 0]])["mu"].shape == (1, 8)


def test_tokens_are_not_truncated(local):
    tokens = local.sample(2, temperature=0.5, seed=0)
    with pytest.raises(ClientError, match="integer class ids, got float64 values that are not "
                                          "whole numbers") as err:
        local.encode(tokens + 0.5)
    assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ClientError, match="integer class ids"):
        local.reconstruct(np.full((1, 32), np.nan))
    # Whole numbers in a float array (e.g. parsed from JSON) still go.
    np.testing.assert_array_equal(local.encode(tokens.astype(np.float64))[1],
                                  local.encode(tokens)[1])


def test_client_errors_carry_a_status_code(local, hmvae_server):
    with pytest.raises(ClientError) as err:
        local.sample(1, temperature=float("nan"))
    assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ClientError) as err:
        local.call("sample", temperature=[-1.0], seed=[[0, 0]])  # the graph's own check
    assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ClientError) as err:
        local.call("nope", x=[1])
    assert err.value.code == "FAILED_PRECONDITION"
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server=hmvae_server.address, model="nope")
    assert err.value.code == "NOT_FOUND"
    with pytest.raises(ClientError, match="model 'mel' version 0 not found") as err:
        MusicVAEClient.connect(server=hmvae_server.address, model="mel", version=0)
    assert err.value.code == "NOT_FOUND"
    remote = MusicVAEClient.connect(server=hmvae_server.address, model="mel")
    try:
        with pytest.raises(ClientError) as err:
            remote.call("sample", temperature=[-1.0], seed=[[0, 0]])
        assert err.value.code == "INVALID_ARGUMENT"
        with pytest.raises(ClientError) as err:
            remote.call("sample", temperature=[0.5, 0.5], seed=[[0, 0]])
        assert err.value.code == "INVALID_ARGUMENT"
    finally:
        remote.close()
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server="localhost:1", model="mel", timeout=5)
    assert err.value.code == "UNAVAILABLE"
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server="localhost", model="mel")
    assert err.value.code is None


def test_a_version_label_picks_the_version(hmvae_server):
    """TF Serving's version labels (version_labels in the model config): the client library
    took numeric versions only (a label raised a TypeError deep inside protobuf)."""
    vae = MusicVAEClient.connect(server=hmvae_server.address, model="pinned", version="stable")
    try:
        assert vae.backend.served_version == 1 and vae.sample(1).shape == (1, 32)
    finally:
        vae.close()
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server=hmvae_server.address, model="pinned", version="nope")
    assert err.value.code == "INVALID_ARGUMENT" and "nope" in str(err.value)


def test_a_missing_version_says_which_versions_the_server_has(hmvae_server):
    """NOT_FOUND named only the version asked for; the server's ModelService (GetModelStatus)
    tells which it has. "two" serves its newest, 2; "pinned" serves version 1 of the same."""
    for model, version, has in (("two", 1, 2), ("pinned", 2, 1)):
        with pytest.raises(ClientError) as err:
            MusicVAEClient.connect(server=hmvae_server.address, model=model, version=version)
        assert err.value.code == "NOT_FOUND"
        assert str(err.value) == (
            f"model {model!r} version {version} not found on {hmvae_server.address}: Servable "
            f"not found for request: Specific({model}, {version}); available on the server: "
            f"version {has}")
    # An unknown model: GetModelStatus cannot tell more.
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server=hmvae_server.address, model="nope", version=1)
    assert str(err.value).endswith("Servable not found for request: Specific(nope, 1)")


def test_wait_for_ready_waits_for_a_server_that_starts_later(model_repo, tmp_path):
    """An app started beside its server: without wait_for_ready, connect fails at once."""
    import socket
    import threading
    import time

    from serving_fixtures import ServerProcess

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    address = f"localhost:{port}"
    start = time.monotonic()
    with pytest.raises(ClientError) as err:
        MusicVAEClient.connect(server=address, model="mel", timeout=30)
    assert err.value.code == "UNAVAILABLE" and time.monotonic() - start < 10
    # Waiting in vain: the message said only "did not answer within 1 s", as for a slow server.
    with pytest.raises(ClientError, match=rf"^{address} did not answer within 1 s, waiting for a "
                       r"server to come up \(wait_for_ready\) and for its answer: is `hmvae "
                       r"serve` or tensorflow_model_server running there\?$") as err:
        MusicVAEClient.connect(server=address, model="mel", timeout=1, wait_for_ready=True)
    assert err.value.code == "DEADLINE_EXCEEDED"
    connected = {}
    waiter = threading.Thread(target=lambda: connected.update(vae=MusicVAEClient.connect(
        server=address, model="mel", timeout=120, wait_for_ready=True)))
    waiter.start()
    time.sleep(1)
    server = ServerProcess([f"--model_config_file={model_repo.config}", f"--port={port}"],
                           cwd=str(tmp_path))
    try:
        waiter.join(120)
        vae = connected["vae"]
        assert vae.sample(1).shape == (1, 32)
        vae.close()
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("call, message", [
    # Each raised a bare TypeError or ValueError from Python or numpy, or ran anyway.
    (lambda c: c.sample("4"), r"^n must be an integer >= 1, got '4'$"),
    (lambda c: c.sample(2.5), r"^n must be an integer >= 1, got 2\.5$"),
    (lambda c: c.sample(None), r"^n must be an integer >= 1, got None$"),
    (lambda c: c.sample(2, seed=1.5), r"^seed must be an integer in 0\.\.2147483647, got 1\.5$"),
    (lambda c: c.sample(2, seed=2 ** 31), r"^seed must be an integer in 0\.\.2147483647"),
    (lambda c: c.sample(2, temperature="0.5"), r"^temperature must be a finite number >= 0"),
    # As the commands' --temperature: infinity went to the model.
    (lambda c: c.sample(2, temperature=float("inf")),
     r"^temperature must be a finite number >= 0 \(0 = argmax\), got inf$"),
    (lambda c: c.decode(np.zeros(8), temperature=np.inf), r"^temperature must be a finite"),
    (lambda c: c.interpolate([1] * 32, [1] * 32, temperature=np.float32("inf")),
     r"^temperature must be a finite"),
    (lambda c: c.encode("melody.mid"),
     r"^tokens must be integer class ids \[B, 32\] \(or one sequence \[32\]\), got a str; "
     r".*from_note_sequence"),
    (lambda c: c.encode([[1] * 32, [1] * 31]), r"^tokens must be .*, got nested sequences of "
                                                r"different lengths$"),
    (lambda c: c.encode(np.zeros((0, 32), np.int32)), r"^tokens hold no sequence"),
    (lambda c: c.encode({"melody": [1] * 32}), r"^tokens must be .*, got a dict$"),
    (lambda c: c.reconstruct(None), r"^tokens must be .*, got None$"),
    (lambda c: c.decode("0.5"), r"^z must be latent vectors \[B, 8\] \(or one \[8\]\), got a str"),
    (lambda c: c.decode([[0.0] * 8, [0.0] * 7]), r"^z must be .*different lengths$"),
    (lambda c: c.decode(np.full(8, np.nan)), r"^z must be finite"),
    (lambda c: c.interpolate([1] * 32, "b.mid"), r"^tokens_b must be integer class ids"),
    (lambda c: c.interpolate([1] * 32, [1] * 32, num_steps=2.0),
     r"^num_steps must be an integer >= 2, got 2\.0$"),
    (lambda c: c.call("encode", melody=[[1] * 32, [1]], seed=[[0, 0], [0, 1]]),
     r"^encode: input melody holds nested sequences of different lengths$"),
])
def test_misused_calls_say_which_argument_is_wrong(local, call, message):
    with pytest.raises(ClientError, match=message) as err:
        call(local)
    assert err.value.code == "INVALID_ARGUMENT"


def test_a_note_sequence_is_refused_with_advice_that_works(local):
    from hmvae_tf.serving import music_adapter
    from music_helpers import note_sequence

    ns = note_sequence([(beat, beat + 1, 60 + beat) for beat in range(8)])
    with pytest.raises(ClientError, match="got a NoteSequence; ") as err:
        local.encode(ns)
    # The message's recipe, as written there, gives tokens the client takes.
    assert "representation_for(client.tracks).from_note_sequence(ns_or_midi_path, num_bars)" \
        in str(err.value)
    tokens = music_adapter.representation_for(local.tracks).from_note_sequence(ns, 2)
    assert local.encode(tokens)[1].shape == (1, 8)


def test_a_closed_client_says_so(model_repo, hmvae_server):
    """A closed gRPC channel raised grpc's bare ValueError ("Cannot invoke RPC on closed
    channel!"); a closed in-process client spoke of TensorFlow sessions."""
    for vae in (MusicVAEClient.connect(server=hmvae_server.address, model="mel"),
                MusicVAEClient.connect(saved_model=model_repo.mel_v1)):
        with vae:
            assert vae.sample(1).shape == (1, 32)
        for call in (lambda: vae.sample(1), lambda: vae.encode([1] * 32),
                     lambda: vae.call("sample", temperature=[0.5], seed=[[0, 0]])):
            with pytest.raises(ClientError, match="this client is closed .*; connect again"):
                call()
        vae.close()  # closing twice is harmless


@pytest.mark.parametrize("kwargs, message", [
    # A bare AttributeError, TypeErrors from grpc or protobuf, or a DEADLINE_EXCEEDED of
    # every call for a timeout <= 0.
    (dict(server=8500, model="mel"), r"^server must be a string, host:port, got 8500$"),
    (dict(server="localhost:8500", model=3), r"^model must be the model's name"),
    (dict(server="localhost:8500", model="mel", version=1.5),
     r"^version must be a version number >= 0 or a version label \(a string\), got 1\.5$"),
    (dict(server="localhost:8500", model="mel", version=True), r"^version must be"),
    (dict(server="localhost:8500", model="mel", timeout="5"),
     r"^timeout must be a number of seconds > 0 \(or None: no limit\), got '5'$"),
    (dict(server="localhost:8500", model="mel", timeout=0), r"^timeout must be .*, got 0$"),
    (dict(server="localhost:8500", model="mel", batch_size=0),
     r"^batch_size must be an integer >= 1, got 0$"),
    (dict(saved_model=3), r"^saved_model must be a directory path, got 3$"),
])
def test_misused_connect_says_which_argument_is_wrong(kwargs, message):
    with pytest.raises(ClientError, match=message) as err:
        MusicVAEClient.connect(**kwargs)
    assert err.value.code is None  # a set-up error, refused before any channel opens


def test_connect_takes_a_path_object(model_repo):
    """A pathlib.Path failed deep inside TF's loader ("Expected binary or unicode string")."""
    import pathlib

    with MusicVAEClient.connect(saved_model=pathlib.Path(model_repo.mel_v1)) as vae:
        assert vae.sample(1).shape == (1, 32)


def test_in_process_version_picks_the_version_directory(model_repo):
    """connect(saved_model=..., version=N) ran whatever directory it was given: the version was
    ignored without a word (a label too). It now reads as --saved_model and --model_version."""
    base = os.path.join(model_repo.models, "two")
    with MusicVAEClient.connect(saved_model=os.path.join(base, "1")) as v1, \
            MusicVAEClient.connect(saved_model=os.path.join(base, "2")) as v2:
        first, second = v1.sample(2, seed=5), v2.sample(2, seed=5)
    assert not np.array_equal(first, second)  # the two versions tell apart
    with MusicVAEClient.connect(saved_model=base, version=1) as vae:
        assert vae.description.endswith(os.path.join("two", "1"))
        np.testing.assert_array_equal(vae.sample(2, seed=5), first)
    with MusicVAEClient.connect(saved_model=base) as vae:  # an export base: its newest version
        np.testing.assert_array_equal(vae.sample(2, seed=5), second)
    with pytest.raises(ClientError, match="is the SavedModel of version 2, not 1") as err:
        MusicVAEClient.connect(saved_model=os.path.join(base, "2"), version=1)
    assert err.value.code is None
    with pytest.raises(ClientError, match=r"has no version 7; it has 1, 2"):
        MusicVAEClient.connect(saved_model=base, version=7)
    with pytest.raises(ClientError, match="'stable' is a version label, which only a server's"):
        MusicVAEClient.connect(saved_model=base, version="stable")


def test_a_request_or_answer_over_the_message_limit_says_so(hmvae_server, monkeypatch):
    """A call() of very many rows failed with grpc's own words, "localhost:8500, model 'm':
    RESOURCE_EXHAUSTED: CLIENT: Sent message larger than max (310800126 vs. 268435456)",
    which do not say whose limit it is or what to do."""
    from hmvae_tf.serving import client_backends

    monkeypatch.setattr(client_backends, "MAX_MESSAGE_BYTES", 4096)  # the metadata still fits
    with MusicVAEClient.connect(server=hmvae_server.address, model="mel") as vae:
        assert vae.sample(1).shape == (1, 32)
        with pytest.raises(ClientError, match=r"model 'mel': the request \(0\.00\d+ MB\) is "
                           r"larger than this client's 0\.00391 MB gRPC message limit; send "
                           r"fewer rows per call$") as err:
            vae.call("decode", z=np.zeros((200, 8), np.float32),
                     temperature=np.zeros(200, np.float32), seed=np.zeros((200, 2), np.int32))
        assert err.value.code == "RESOURCE_EXHAUSTED"
        with pytest.raises(ClientError, match=r"the answer \(0\.00\d+ MB\) is larger than "
                                              r"this client's") as err:
            vae.sample(64)
        assert err.value.code == "RESOURCE_EXHAUSTED"


def test_a_very_long_timeout_waits_instead_of_failing_at_once(hmvae_server):
    """A timeout past about 7e9 s overflowed gRPC's deadline: every call failed at once with
    "did not answer within 1e+10 s" (--timeout=1e10 too)."""
    with MusicVAEClient.connect(server=hmvae_server.address, model="mel", timeout=1e10) as vae:
        assert vae.sample(1).shape == (1, 32)


class _EmptyAnswerBackend(Backend):
    """A one-track 32-step model that answers each row with an empty row: what a call holds is
    then the client's own inputs, which tracemalloc measures without a model or a server."""

    description = "empty answers"

    def __init__(self):
        tokens, seed = TensorSpec(np.int32, [None, 32]), TensorSpec(np.int32, [None, 2])
        self.inputs = {name: {"seed": seed} for name in SIGNATURES}
        self.inputs["encode"]["melody"] = tokens
        self.inputs["decode"]["z"] = TensorSpec(np.float32, [None, 8])
        self.outputs = {}
        self.calls = 0
        self.sent = []  # each chunk's inputs, when recording
        self.recording = False

    def run(self, signature, inputs):
        self.calls += 1
        if self.recording:
            self.sent.append(inputs)
        return {"melody": np.zeros((len(inputs["seed"]), 0), np.int32)}


@pytest.mark.parametrize("call, rows, row_bytes", [
    (lambda c, n: c.sample(n), 1_000_000, 4),  # temperature
    (lambda c, n: c.interpolate([1] * 32, [2] * 32, num_steps=n), 20_000,
     2 * 32 * 4 + 4 + 4),  # both ends' tokens, alpha, temperature
])
def test_a_large_call_holds_one_chunk_of_inputs_at_a_time(call, rows, row_bytes):
    """sample(10**9) built a 4 GB temperature array before its first request, and interpolate
    repeated both ends' tokens for every step: the inputs are now made a chunk at a time."""
    import tracemalloc

    backend = _EmptyAnswerBackend()
    client = MusicVAEClient(backend, batch_size=1000)
    tracemalloc.start()
    try:
        assert len(call(client, rows)) == rows
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert backend.calls == rows // 1000
    # The whole request's inputs are rows * row_bytes; a chunk's are 1000 * row_bytes.
    assert peak < rows * row_bytes / 4


def test_chunks_carry_the_inputs_of_one_request():
    """Made a chunk at a time, the inputs are those one request would carry: the ends on every
    step, alpha = linspace(0, 1)'s float32s, seed (s, 0) on every step."""
    sent = {}
    for batch_size in (3, 64):
        backend = _EmptyAnswerBackend()
        backend.recording = True
        MusicVAEClient(backend, batch_size).interpolate([1] * 32, [2] * 32, num_steps=8,
                                                        temperature=0.3, seed=5)
        assert backend.calls == -(-8 // batch_size)
        sent[batch_size] = {k: np.concatenate([chunk[k] for chunk in backend.sent])
                            for k in backend.sent[0]}
    whole = sent[64]
    np.testing.assert_array_equal(whole["alpha"], np.linspace(0, 1, 8, dtype=np.float32))
    np.testing.assert_array_equal(whole["melody_b"], np.full((8, 32), 2))
    np.testing.assert_array_equal(whole["seed"], np.tile([5, 0], (8, 1)))
    assert whole["temperature"].dtype == np.float32 and (whole["temperature"] == 0.3).all()
    for name, value in whole.items():
        np.testing.assert_array_equal(sent[3][name], value, err_msg=name)


def test_in_process_call_refuses_non_finite_inputs_as_a_server_does(local):
    """`call` on an in-process export ran a NaN z to silence with no error: the same one-line
    message as `hmvae serve` sends, and the status an app branches on."""
    z = np.zeros((2, 8), np.float32)
    z[1, 0] = np.nan
    with pytest.raises(ClientError) as err:
        local.call("decode", z=z, temperature=[0.5, 0.5], seed=[[0, 0], [0, 1]])
    assert str(err.value) == "input 'z' of signature 'decode' must be finite, got nan in row 1"
    assert err.value.code == "INVALID_ARGUMENT"
    tokens = [[1] * 32]
    with pytest.raises(ClientError, match="^input 'alpha' of signature 'interpolate' must be "
                                          "finite, got inf in row 0$"):
        local.call("interpolate", melody_a=tokens, melody_b=tokens, alpha=[np.inf],
                   temperature=[0.0], seed=[[0, 0]])
    with pytest.raises(ClientError, match="^input 'temperature' of signature 'sample' must be "
                                          "a number >= 0"):
        local.call("sample", temperature=[np.nan], seed=[[0, 0]])
    assert local.call("sample", temperature=[np.inf], seed=[[0, 0]])["melody"].shape == (1, 32)
