"""numpy <-> TensorProto without TensorFlow (hmvae_tf.serving.protos) agrees with tf's own
conversions, and a gRPC client process never loads the TensorFlow runtime."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf.serving import protos

ARRAYS = [
    np.arange(12, dtype=np.int32).reshape(3, 4) - 5,
    np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5),
    np.array([[1.5, -2.25]], np.float64),
    np.array([3, -(2 ** 40)], np.int64),
    np.array([0, 255, 7], np.uint8),
    np.array([-128, 5], np.int8),
    np.array([True, False, True]),
    np.array([0.5, -3.0], np.float16),
    np.array(7, np.int32),                         # a scalar
    np.zeros((0, 3), np.float32),                  # no elements
    np.array([b"ab", b"", b"\xff"], object),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_conversions_agree_with_tensorflow(array):
    ours = protos.make_tensor_proto(array)
    theirs = tf.make_tensor_proto(array)
    assert ours.dtype == theirs.dtype
    assert list(ours.tensor_shape.dim) == list(theirs.tensor_shape.dim)
    for proto in (ours, theirs):
        back = protos.make_ndarray(proto)
        assert back.dtype == tf.make_ndarray(proto).dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)
        np.testing.assert_array_equal(tf.make_ndarray(proto), array)


def test_typed_value_fields_as_tensorflow_model_server_sends_them():
    """tensorflow_model_server answers with int_val/float_val, not tensor_content; fewer values
    than elements repeat the last one."""
    cases = [tf.make_tensor_proto(2.5, dtype=tf.float32, shape=[2, 3]),
             tf.make_tensor_proto([1, 2], dtype=tf.int64, shape=[4]),
             tf.make_tensor_proto(True, shape=[3])]
    typed = tf.make_tensor_proto(0, dtype=tf.int32, shape=[3])
    typed.ClearField("int_val")
    typed.int_val.extend([4, -1, 9])
    half = tf.make_tensor_proto(np.float16(0), shape=[2])
    half.ClearField("half_val")
    half.half_val.extend(np.array([1.5, -2.0], np.float16).view(np.uint16).tolist())
    empty = tf.make_tensor_proto(0.0, dtype=tf.float32, shape=[2])
    empty.ClearField("float_val")
    for proto in [*cases, typed, half, empty]:
        assert not proto.tensor_content
        expected = tf.make_ndarray(proto)
        got = protos.make_ndarray(proto)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(protos.make_ndarray(typed), [4, -1, 9])
    assert protos.numpy_dtype(tf.int32.as_datatype_enum) == np.int32
    with pytest.raises(ValueError, match="DT_COMPLEX64"):
        protos.make_ndarray(tf.make_tensor_proto(np.array([1j], np.complex64)))


def test_grpc_commands_run_without_loading_tensorflow(hmvae_server, tmp_path):
    """`hmvae sample --server` only needs TF Serving's messages: the runtime (seconds of
    import) must stay unloaded, and a later real import must still work in that process."""
    script = textwrap.dedent(f"""
        import sys
        from hmvae_tf import cli
        code = cli.main(["sample", "--server={hmvae_server.address}", "--model=mel", "-n", "2",
                         "--out={tmp_path}"])
        assert code == 0, code
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.python"))
        assert not loaded, loaded
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        request = predict_pb2.PredictRequest()
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1, 2]))
        assert tf.make_ndarray(request.inputs["x"]).tolist() == [1, 2]
        print("ok")
        """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
    assert len(list(tmp_path.glob("mel_sample_*.mid"))) == 2


def test_server_conversions_fall_back_to_tensorflow_for_other_dtypes():
    """hmvae serve converts with the numpy-only functions, and with TensorFlow's for the dtypes
    those do not know, so any tensor a SavedModel takes or gives still crosses the wire."""
    from hmvae_tf.serving.service import to_ndarray, to_tensor_proto

    floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    assert to_tensor_proto(floats) == protos.make_tensor_proto(floats)
    for array in (np.array([1 + 2j, -3j], np.complex64),
                  np.array([[0.5, -1.0]], tf.bfloat16.as_numpy_dtype)):
        proto = to_tensor_proto(array)
        assert proto.dtype == tf.as_dtype(array.dtype).as_datatype_enum
        back = to_ndarray(proto)
        assert back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)
