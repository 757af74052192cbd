"""TF Serving's gRPC messages and numpy <-> TensorProto, for clients that never run TensorFlow.

tensorflow-serving-api's generated modules import TensorProto and friends from
`tensorflow.core.*`, and importing any `tensorflow.*` module first runs `tensorflow/__init__.py`,
which loads the whole runtime: about 12 s on a 2-core CPU, for a client that only needs a few
protobuf classes. Those classes live in plain generated modules under packages whose
`__init__.py` files are empty, so `apis()` imports them with a bare placeholder standing in for
the top-level package, then removes the placeholder. A later `import tensorflow` in the same
process loads the real package and reuses the already-loaded message modules. When TensorFlow
is already loaded, or not installed, the import is the ordinary one.

`make_tensor_proto` and `make_ndarray` do what `tf.make_tensor_proto` and `tf.make_ndarray`
do for numeric, bool and string arrays, with numpy alone. They read both encodings a server may
answer with: `tensor_content` bytes, and the typed `*_val` fields that tensorflow_model_server
fills (where fewer values than elements means "repeat the last one").
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    from tensorflow.core.framework.tensor_pb2 import TensorProto

_MODULES = ("predict_pb2", "prediction_service_pb2_grpc", "get_model_metadata_pb2",
            "get_model_status_pb2", "model_service_pb2_grpc")

@functools.cache
def apis() -> types.SimpleNamespace:
    """The tensorflow_serving.apis modules a client needs, by their module names."""
    placeholder = None
    if "tensorflow" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow")
        if spec is not None and spec.submodule_search_locations:
            placeholder = types.ModuleType("tensorflow")
            placeholder.__path__ = list(spec.submodule_search_locations)
            sys.modules["tensorflow"] = placeholder
    try:
        modules = {name: importlib.import_module(f"tensorflow_serving.apis.{name}")
                   for name in _MODULES}
        modules["types_pb2"] = importlib.import_module("tensorflow.core.framework.types_pb2")
        modules["tensor_pb2"] = importlib.import_module("tensorflow.core.framework.tensor_pb2")
    finally:
        if placeholder is not None and sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]
    return types.SimpleNamespace(**modules)


# DataType enum name -> (numpy dtype, the TensorProto field that holds its values).
_DTYPES = {
    "DT_FLOAT": (np.float32, "float_val"),
    "DT_DOUBLE": (np.float64, "double_val"),
    "DT_HALF": (np.float16, "half_val"),
    "DT_INT8": (np.int8, "int_val"),
    "DT_INT16": (np.int16, "int_val"),
    "DT_INT32": (np.int32, "int_val"),
    "DT_INT64": (np.int64, "int64_val"),
    "DT_UINT8": (np.uint8, "int_val"),
    "DT_UINT16": (np.uint16, "int_val"),
    "DT_UINT32": (np.uint32, "uint32_val"),
    "DT_UINT64": (np.uint64, "uint64_val"),
    "DT_BOOL": (np.bool_, "bool_val"),
    "DT_STRING": (np.object_, "string_val"),
}
_NAMES = {np.dtype(t): name for name, (t, _) in _DTYPES.items()}


class UnsupportedType(ValueError):
    """A dtype these numpy-only conversions do not handle (TensorFlow's own may)."""


def _type_name(data_type: int) -> str:
    return apis().types_pb2.DataType.Name(data_type)


def numpy_dtype(data_type: int) -> np.dtype:
    """A DataType enum value (as in TensorInfo.dtype) -> its numpy dtype; `object` for a type
    this client cannot convert, so a model's metadata still loads and only sending such a
    tensor fails."""
    return np.dtype(_DTYPES.get(_type_name(data_type), (np.object_,))[0])


def _data_type(dtype: np.dtype) -> int:
    name = "DT_STRING" if dtype.kind in "OSU" else _NAMES.get(dtype)
    if name is None:
        raise UnsupportedType(f"cannot send a numpy array of dtype {dtype} to a model server")
    return apis().types_pb2.DataType.Value(name)


def make_tensor_proto(value: npt.ArrayLike) -> TensorProto:
    """A numpy array (or anything np.asarray takes) -> TensorProto, numbers as tensor_content."""
    array = np.asarray(value)
    proto = apis().tensor_pb2.TensorProto(dtype=_data_type(array.dtype))
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if array.dtype.kind in "OSU":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode()
                                for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def tensor_shape(proto: TensorProto) -> list[int]:
    """The dimensions of a TensorProto; ValueError for a shape that no tensor has (unknown
    rank, a negative dimension such as -1), which TensorFlow refuses too."""
    if proto.tensor_shape.unknown_rank:
        raise ValueError("its tensor_shape has unknown_rank set; a tensor's rank must be known")
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(size < 0 for size in shape):
        raise ValueError(f"its tensor_shape [{','.join(map(str, shape))}] has a negative "
                         "dimension")
    return shape


def make_ndarray(proto: TensorProto) -> np.ndarray:
    """TensorProto -> numpy array, from tensor_content or from the typed value fields.
    ValueError (saying what is wrong) for a proto whose shape and values disagree."""
    name = _type_name(proto.dtype)
    if name not in _DTYPES:
        raise UnsupportedType(f"tensors of type {name} are not supported by this client")
    np_dtype, field = _DTYPES[name]
    shape = tensor_shape(proto)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content:
        little = np.dtype(np_dtype).newbyteorder("<")
        if len(proto.tensor_content) != count * little.itemsize:
            raise ValueError(f"its tensor_content has {len(proto.tensor_content)} bytes; shape "
                             f"[{','.join(map(str, shape))}] of {name} takes "
                             f"{count * little.itemsize}")
        return np.frombuffer(proto.tensor_content, little).astype(np_dtype).reshape(shape)
    stored = getattr(proto, field)
    if len(stored) > count:
        raise ValueError(f"its {field} has {len(stored)} values, more than the {count} "
                         f"elements of shape [{','.join(map(str, shape))}]")
    if name == "DT_STRING":
        values = np.empty(len(stored), object)
        values[:] = list(stored)
    elif name == "DT_HALF":  # half_val holds the float16 bit patterns
        values = np.asarray(stored, np.uint16).view(np.float16)
    else:
        values = np.asarray(stored, np_dtype)
    if values.size == count:
        return values.reshape(shape)
    # Fewer values than elements: the last one repeats (none: zeros), filled in place so a
    # short proto costs one array of its shape, not two.
    array = np.empty(count, np_dtype)
    array[:values.size] = values
    array[values.size:] = values[-1] if values.size else (b"" if name == "DT_STRING" else 0)
    return array.reshape(shape)
