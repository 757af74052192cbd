"""`hmvae serve` against malformed and hostile requests: each gets the status TF Serving would
send and a message that says what is wrong, without the server allocating what a request
merely claims, and without other clients noticing."""
from __future__ import annotations

import tracemalloc

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from hmvae_tf.serving import protos
from hmvae_tf.serving.errors import ServingError
from hmvae_tf.serving.service import check_inputs

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
