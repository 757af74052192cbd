"""`hmvae serve` against malformed and hostile requests: each gets the status TF Serving would
send (INVALID_ARGUMENT for a request over a limit TF Serving lacks) and a message that says
what is wrong, without the server allocating what a request merely claims."""
from __future__ import annotations

import tracemalloc

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from hmvae_tf.serving import protos
from hmvae_tf.serving.errors import ServingError
from hmvae_tf.serving.service import check_inputs
from serving_fixtures import Conn, seeds  # noqa: F401

IA = grpc.StatusCode.INVALID_ARGUMENT


def sample_signature() -> meta_graph_pb2.SignatureDef:
    """The contract's `sample` inputs: temperature float32[B], seed int32[B, 2]."""
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for name, dtype, dims in (("temperature", types_pb2.DT_FLOAT, [-1]),
                              ("seed", types_pb2.DT_INT32, [-1, 2])):
        info = sig.inputs[name]
        info.name, info.dtype = f"{name}:0", dtype
        for d in dims:
            info.tensor_shape.dim.add(size=d)
    return sig


def proto(dtype: int, shape: list[int], content: bytes | None = None, **values
          ) -> tensor_pb2.TensorProto:
    """A TensorProto written by hand, as a client that skips every check would send it."""
    t = tensor_pb2.TensorProto(dtype=dtype)
    for d in shape:
        t.tensor_shape.dim.add(size=d)
    if content is not None:
        t.tensor_content = content
    for field, vals in values.items():
        getattr(t, field).extend(vals)
    return t


def good_seed(rows: int = 2) -> tensor_pb2.TensorProto:
    return tf.make_tensor_proto(np.zeros((rows, 2), np.int32))


def refused(tensors: dict, **kwargs) -> str:
    with pytest.raises(ServingError) as info:
        check_inputs(sample_signature(), "sample", tensors, **kwargs)
    assert info.value.code == IA, info.value
    return info.value.message


@pytest.mark.parametrize("temperature, reason", [
    (proto(types_pb2.DT_FLOAT, [-1], float_val=[0.5]), "has a negative dimension"),
    (proto(types_pb2.DT_FLOAT, [-2], float_val=[0.5]), "has a negative dimension"),
    (proto(types_pb2.DT_FLOAT, [-1], content=b"\0" * 8), "has a negative dimension"),
], ids=["-1", "-2", "-1 content"])
def test_a_negative_dimension_is_refused_not_inferred(temperature, reason):
    """numpy's reshape took any negative dimension as 'infer it', so [-1] with one value went
    to the model as a tensor of shape [1] (TensorFlow refuses such a proto)."""
    message = refused({"temperature": temperature, "seed": good_seed(1)})
    assert message.startswith("tensor parsing error: temperature: ") and reason in message


def test_unknown_rank_is_refused():
    temperature = proto(types_pb2.DT_FLOAT, [2], float_val=[0.5, 0.5])
    temperature.tensor_shape.unknown_rank = True
    assert "unknown_rank" in refused({"temperature": temperature, "seed": good_seed()})


@pytest.mark.parametrize("temperature, reason", [
    (proto(types_pb2.DT_FLOAT, [2], content=b"\0" * 7), "has 7 bytes; shape [2] of DT_FLOAT takes 8"),
    (proto(types_pb2.DT_FLOAT, [2], content=b"\0" * 12), "has 12 bytes; shape [2] of DT_FLOAT takes 8"),
    (proto(types_pb2.DT_FLOAT, [2], float_val=[1, 2, 3]), "float_val has 3 values, more than the 2"),
], ids=["short content", "long content", "too many values"])
def test_content_that_disagrees_with_the_shape_says_how(temperature, reason):
    message = refused({"temperature": temperature, "seed": good_seed()})
    assert message.startswith("tensor parsing error: temperature: ") and reason in message


def test_a_shape_is_checked_before_its_values_are_made():
    """Typed values repeat the last one up to the shape's size: an 80-byte request could make
    the server fill gigabytes before its shape was found wrong."""
    tracemalloc.start()
    try:
        message = refused({"temperature": proto(types_pb2.DT_FLOAT, [2], float_val=[0.5]),
                           "seed": proto(types_pb2.DT_INT32, [10 ** 7, 3], int_val=[1])})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == "input 'seed' of signature 'sample' must have shape [?,2], got [10000000,3]"
    assert peak < 1 << 20, peak  # the claimed tensor is 120 MB
    message = refused({"temperature": proto(types_pb2.DT_FLOAT, [2 ** 40], float_val=[0.5]),
                       "seed": good_seed()})
    assert "more than a request can carry" in message


def test_short_typed_values_fill_as_tensorflow_does():
    tensors = {"temperature": proto(types_pb2.DT_FLOAT, [3], float_val=[0.25, 0.5]),
               "seed": proto(types_pb2.DT_INT32, [3, 2])}
    arrays = check_inputs(sample_signature(), "sample", tensors)
    np.testing.assert_array_equal(arrays["temperature"], [0.25, 0.5, 0.5])
    np.testing.assert_array_equal(arrays["seed"], np.zeros((3, 2), np.int32))
    for name, t in tensors.items():
        np.testing.assert_array_equal(arrays[name], tf.make_ndarray(t))
    with pytest.raises(ValueError, match="negative"):
        protos.make_ndarray(proto(types_pb2.DT_INT32, [-1], int_val=[3]))


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def raw_predict(conn: Conn, tensors: dict, signature: str = "sample") -> grpc.RpcError | None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = conn.model
    request.model_spec.signature_name = signature
    for name, t in tensors.items():
        request.inputs[name].CopyFrom(t)
    try:
        conn.predict_stub.Predict(request, timeout=60)
    except grpc.RpcError as err:
        return err
    return None


def many_rows(rows: int) -> dict:
    """A sample request of `rows` rows in 30-odd bytes: one typed value each, repeated."""
    return {"temperature": proto(types_pb2.DT_FLOAT, [rows], float_val=[0.5]),
            "seed": proto(types_pb2.DT_INT32, [rows, 2], int_val=[0])}


def test_unbatched_requests_have_a_row_limit(hmvae_server):
    """Without batching nothing limited a request: a million 2-bar sample rows (a 12 MB
    request, or these few bytes) took over 20 GB while the model ran."""
    conn = Conn(hmvae_server.address, "mel")
    assert raw_predict(conn, many_rows(1000)) is None  # the default limit's worth runs
    err = raw_predict(conn, many_rows(1001))
    assert err is not None and err.code() == IA, err
    assert err.details() == ("the request has 1001 rows, more than the 1000 that hmvae serve "
                             "--max_request_rows allows; send fewer rows per request")


def test_batching_refuses_a_large_request_before_making_its_tensors(batching_server):
    """max_batch_size was checked after the tensors were made: 80 bytes claiming 25 million
    rows had the server fill 300 MB first (and GBs for more)."""
    conn = Conn(batching_server.address, "mel")
    before = peak_rss_mb(batching_server.proc.pid)
    err = raw_predict(conn, many_rows(25 * 10 ** 6))
    assert err is not None and err.code() == IA, err
    assert err.details() == "Task size 25000000 is larger than maximum input batch size 64"
    assert peak_rss_mb(batching_server.proc.pid) - before < 100
    _, out = conn.predict("sample", {"temperature": np.full(2, 0.5, np.float32), "seed": seeds(2)})
    assert out["melody"].shape[0] == 2


def test_a_status_message_that_echoes_a_huge_name_is_cut_to_fit(hmvae_server):
    """Messages echo the model name (and labels, inputs, metadata fields) the request gave: a
    100 KB name made the client refuse the answer's trailer, and it saw RESOURCE_EXHAUSTED
    "received metadata size exceeds hard limit" instead of NOT_FOUND."""
    from hmvae_tf.serving.errors import MAX_STATUS_MESSAGE_BYTES

    conn = Conn(hmvae_server.address, "mel")
    inputs = {"temperature": np.ones(1, np.float32), "seed": seeds(1)}
    with pytest.raises(grpc.RpcError) as info:
        conn.predict("sample", inputs, model="x" * 100_000)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
    details = info.value.details()
    assert details.startswith("Servable not found for request: Latest(xxx") and details.endswith("xx)")
    assert "characters cut" in details and len(details) <= MAX_STATUS_MESSAGE_BYTES
    with pytest.raises(grpc.RpcError) as info:  # 6 bytes each on the wire
        conn.metadata(fields=["signature_def", "é" * 20_000])
    assert info.value.code() == IA, info.value.details()
    assert info.value.details().startswith("Metadata field éé")
    with pytest.raises(grpc.RpcError) as info:
        conn.status(model="m" * 50_000)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()


def test_fit_status_message_keeps_both_ends():
    from hmvae_tf.serving.errors import _wire_bytes, fit_status_message

    assert fit_status_message("input 'x' is bad") == "input 'x' is bad"
    for text in ("a" * 5000, "%" * 5000, "é\x00" * 5000, "€" * 1000 + "!"):
        fitted = fit_status_message(f"head {text} tail", limit=600)
        assert _wire_bytes(fitted) <= 600 and "characters cut" in fitted
        assert fitted.startswith("head ") and fitted.endswith(" tail")


def test_methods_it_does_not_serve_say_so(hmvae_server):
    """Classify, Regress, MultiInference and config reloads got gRPC's bare "Method not
    implemented!"; the status stays UNIMPLEMENTED, and the message says what to use."""
    from tensorflow_serving.apis import (classification_pb2, inference_pb2,
                                         model_management_pb2, regression_pb2)
    from hmvae_tf.serving.server import fetch_stats

    conn = Conn(hmvae_server.address, "mel")
    calls = {"Classify": (conn.predict_stub.Classify, classification_pb2.ClassificationRequest()),
             "Regress": (conn.predict_stub.Regress, regression_pb2.RegressionRequest()),
             "MultiInference": (conn.predict_stub.MultiInference,
                                inference_pb2.MultiInferenceRequest()),
             "HandleReloadConfigRequest": (conn.model_stub.HandleReloadConfigRequest,
                                           model_management_pb2.ReloadConfigRequest())}
    for method, (stub, request) in calls.items():
        if method in ("Classify", "Regress"):
            request.model_spec.name = "mel"
        with pytest.raises(grpc.RpcError) as info:
            stub(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert info.value.details().startswith("hmvae serve does not implement ")
        assert method in info.value.details()
        assert ("restart it" if method == "HandleReloadConfigRequest" else "Predict") \
            in info.value.details()
    assert fetch_stats(hmvae_server.address)["requests"]["Classify:UNIMPLEMENTED"] >= 1


def test_running_out_of_memory_is_resource_exhausted():
    """numpy's MemoryError (merging a batch, encoding an answer) was INTERNAL, which says
    'server bug'; TensorFlow's own OOM is RESOURCE_EXHAUSTED, and so is this now."""
    from hmvae_tf.serving.errors import from_exception

    err = from_exception(MemoryError("Unable to allocate 7.45 GiB for an array"))
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.message == "out of memory: Unable to allocate 7.45 GiB for an array"
    assert from_exception(MemoryError()).message == "out of memory"


def decode_request(z: np.ndarray, temperature: float = 0.5) -> dict:
    rows = len(z)
    return {"z": tf.make_tensor_proto(z.astype(np.float32)),
            "temperature": tf.make_tensor_proto(np.full(rows, temperature, np.float32)),
            "seed": good_seed(rows)}


def interpolate_request(alpha: list[float], temperature: float = 0.0) -> dict:
    rows = len(alpha)
    tokens = tf.make_tensor_proto(np.ones((rows, 32), np.int32))
    return {"melody_a": tokens, "melody_b": tokens,
            "alpha": tf.make_tensor_proto(np.array(alpha, np.float32)),
            "temperature": tf.make_tensor_proto(np.full(rows, temperature, np.float32)),
            "seed": good_seed(rows)}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_z_or_alpha_is_refused_before_the_model_runs(hmvae_server, bad):
    """The decoder turned a NaN or infinite z (or an interpolation's alpha) into silence or
    noise with status OK; the shipped exports have no check of their own in the graph."""
    conn = Conn(hmvae_server.address, "mel")
    z = np.zeros((3, 8), np.float32)
    z[2, 5] = bad
    err = raw_predict(conn, decode_request(z), "decode")
    assert err is not None and err.code() == IA, err
    assert err.details() == f"input 'z' of signature 'decode' must be finite, got {bad} in row 2"
    err = raw_predict(conn, interpolate_request([0.0, bad]), "interpolate")
    assert err is not None and err.code() == IA, err
    assert err.details() == (f"input 'alpha' of signature 'interpolate' must be finite, got "
                             f"{bad} in row 1")
    assert raw_predict(conn, decode_request(np.zeros((3, 8))), "decode") is None
    assert raw_predict(conn, interpolate_request([0.0, 1.0]), "interpolate") is None


def test_temperature_takes_zero_and_infinity_but_not_nan(hmvae_server):
    """0 is argmax and +inf samples every token alike, as the graphs always took them; NaN
    is refused with a message that says what a temperature is (the graph said ">= 0")."""
    conn = Conn(hmvae_server.address, "mel")
    for value in (0.0, np.inf):
        assert raw_predict(conn, many_rows(2) | {
            "temperature": tf.make_tensor_proto(np.full(2, value, np.float32))}) is None
        assert raw_predict(conn, decode_request(np.zeros((1, 8)), value), "decode") is None
    err = raw_predict(conn, decode_request(np.zeros((2, 8)), np.nan), "decode")
    assert err is not None and err.code() == IA, err
    assert err.details() == ("input 'temperature' of signature 'decode' must be a number >= 0 "
                             "(0 = argmax), got nan in row 0")
    err = raw_predict(conn, {"temperature": tf.make_tensor_proto(np.float32([0.5, -1.0])),
                             "seed": good_seed(2)})
    assert err is not None and err.code() == IA and "temperature must be >= 0" in err.details()


def test_non_finite_values_of_other_inputs_are_left_to_the_model():
    """Only the contract's float inputs are checked: another model's input may hold NaN."""
    sig = sample_signature()
    sig.inputs["other"].CopyFrom(sig.inputs["temperature"])
    sig.inputs["other"].name = "other:0"
    nan = tf.make_tensor_proto(np.float32([np.nan, 1.0]))
    arrays = check_inputs(sig, "sample", {"temperature": tf.make_tensor_proto(np.float32([1, 1])),
                                          "seed": good_seed(), "other": nan})
    assert np.isnan(arrays["other"][0])
    message = refused({"temperature": nan, "seed": good_seed()})
    assert message == ("input 'temperature' of signature 'sample' must be a number >= 0 "
                       "(0 = argmax), got nan in row 0")


def test_calls_past_max_concurrent_rpcs_are_refused_not_queued():
    """grpc.server had no maximum_concurrent_rpcs: a flood of calls waited for a thread in
    memory without bound. Past the limit gRPC now answers RESOURCE_EXHAUSTED at once, the
    calls within it get their answers, and the limit frees as they end."""
    import threading

    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from hmvae_tf.serving.service import ModelServer

    entered, release = threading.Semaphore(0), threading.Event()

    def slow_predict(request, deadline=None):
        entered.release()
        release.wait(30)
        return predict_pb2.PredictResponse(model_spec=request.model_spec)

    server = ModelServer([], log=lambda _: None)
    server.predict = slow_predict
    port = server.start("localhost", 0, max_threads=8, max_concurrent_rpcs=2)
    channel = grpc.insecure_channel(f"localhost:{port}")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mel"
        running = [stub.Predict.future(request, timeout=30) for _ in range(2)]
        for _ in running:
            assert entered.acquire(timeout=30)
        for _ in range(3):  # threads are free (8), but the limit (2) is reached
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=30)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == "Concurrent RPC limit exceeded!"
        release.set()
        assert [f.result().model_spec.name for f in running] == ["mel", "mel"]
        assert stub.Predict(request, timeout=30).model_spec.name == "mel"
    finally:
        release.set()
        channel.close()
        server.stop(grace=0)


def test_max_concurrent_rpcs_defaults_to_16_calls_per_thread():
    import argparse

    from hmvae_tf.serving import server

    parser = argparse.ArgumentParser()
    server.add_arguments(parser, "serve")

    def limit(*argv):
        return server.rpc_limit(parser.parse_args(["--model_base_path=m", *argv]))

    assert limit() == 16 * 64 and limit("--grpc_max_threads=8") == 128
    assert limit("--max_concurrent_rpcs=5") == 5 and limit("--max_concurrent_rpcs=0") is None
    with pytest.raises(SystemExit):
        limit("--max_concurrent_rpcs=-1")
