"""The request logic of `hmvae serve` and its gRPC services (TF Serving's API, same messages).

Kept apart from server.py (the command line) because importing it imports TensorFlow.
"""
from __future__ import annotations

import collections
import concurrent.futures
import json
import math
import threading
import time
from typing import TYPE_CHECKING, Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from hmvae_tf import export_options, quiet_startup
from hmvae_tf.serving import protos
from hmvae_tf.serving.batching import BatchScheduler
from hmvae_tf.serving.errors import (ServingError, fit_status_message, from_exception,
                                     invalid_argument)
from hmvae_tf.serving.finite_inputs import nonfinite_input_problem
from hmvae_tf.serving.model_manager import ModelManager
from hmvae_tf.serving.run_modes import RunModeChooser, size_class
from hmvae_tf.serving.server import STATS_METHOD, STATS_SERVICE

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorflow.core.framework.tensor_pb2 import TensorProto
    from tensorflow.core.protobuf.meta_graph_pb2 import SignatureDef

MAX_MESSAGE_BYTES = (1 << 31) - 1  # a gRPC message, as tensorflow_model_server allows
# Signatures Predict can run (TF Serving's VerifySignature); others (__saved_model_init_op) not.
RUNNABLE_METHODS = {"tensorflow/serving/predict", "tensorflow/serving/classify",
                    "tensorflow/serving/regress"}


def export_dtype_policy(path: str) -> str | None:
    """The products' dtype policy an hmvae export records (None for other SavedModels)."""
    try:
        return export_options.dtype_policy(export_options.read_metadata(path))
    except (OSError, ValueError):
        return None


class Servable:
    """One loaded version of a model, run the way TF Serving runs it: the "serve" MetaGraph in a
    TF1 Session, each signature a callable feeding and fetching the SignatureDef's tensors.

    Each signature is a C++ callable (Session::MakeCallable, as TF Serving's session runs):
    feeds, fetches and run options are bound once, so a call skips `Session.run`'s per-call
    feed_dict and fetch handling in Python, 0.5-1 ms of a 1-sample call on 2 cores.

    A call runs either inline in the calling thread or on the session's inter-op pool,
    whichever that signature and batch size class measured faster on its own calls, re-timed
    now and then (run_modes.py: a sampler's chain of small ops wants inline, an encoder's two
    directions the pool). Results are the same either way."""

    INLINE = tf.compat.v1.RunOptions(inter_op_thread_pool=-1)
    POOLED = tf.compat.v1.RunOptions()
    DEADLINE_MARGIN = 4

    def __init__(self, name: str, version: int, path: str, session_config=None):
        self.name, self.version, self.path = name, version, path
        if export_dtype_policy(path) == "mixed_bfloat16":
            # Its bfloat16 products run at oneDNN's rate only in XLA's classic CPU runtime;
            # that takes effect if no XLA compile has run in this process yet.
            from hmvae_tf.xla_runtime import use_classic_xla_runtime

            use_classic_xla_runtime()
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        level = tf.get_logger().level
        tf.get_logger().setLevel("ERROR")  # the TF1 loader's deprecation notice
        try:
            with self.graph.as_default(), quiet_startup.first_session_load():
                meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        finally:
            tf.get_logger().setLevel(level)
        self.signature_defs = dict(meta.signature_def)
        self._io = {key: (sorted(sig.inputs), sorted(sig.outputs))
                    for key, sig in self.signature_defs.items()
                    if sig.method_name in RUNNABLE_METHODS and sig.outputs}  # not e.g. init ops
        self.signature_names = tuple(self._io)
        self._callables: dict[tuple[str, bool], object] = {}
        self._callables_lock = threading.Lock()
        self.run_modes = RunModeChooser()

    def _callable(self, signature: str, inline: bool):
        """The signature's callable, made on its first run: making one prunes and optimises the
        graph (0.3-0.5 s for the 2-bar model; all twelve at load took 7 s), and most signatures
        of a model are never run."""
        fn = self._callables.get((signature, inline))
        if fn is None:
            with self._callables_lock:
                fn = self._callables.get((signature, inline))
                if fn is None:
                    sig = self.signature_defs[signature]
                    inputs, outputs = self._io[signature]
                    options = config_pb2.CallableOptions(
                        feed=[sig.inputs[k].name for k in inputs],
                        fetch=[sig.outputs[k].name for k in outputs],
                        run_options=self.INLINE if inline else self.POOLED)
                    fn = self.session._make_callable_from_options(options)  # pylint: disable=protected-access
                    self._callables[(signature, inline)] = fn
        return fn

    def run(self, signature: str, inputs: dict, deadline: float | None = None) -> dict:
        """Output alias -> array for input alias -> array, inline or pooled as measured best.

        deadline (time.monotonic()), as TF Serving passes a call's gRPC deadline to the
        session: a run still going then stops with DEADLINE_EXCEEDED, so a client that gave up
        frees the server. The callables bind their RunOptions once, so a call that may come
        near its deadline (its recent calls took over 1/DEADLINE_MARGIN of the time left, or
        none has been timed) goes through `Session.run` with the timeout instead, about 1 ms
        slower; calls far inside their deadline (a 1-sample call under the client library's
        60 s) keep the callable."""
        names, outputs = self._io[signature]
        args = [inputs[n] for n in names]
        rows = args[0].shape[0] if args and args[0].ndim else 1
        key = (signature, size_class(rows))
        timeout = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                   "Deadline exceeded before the model ran")
            recent = self.run_modes.slowest_recent(key)
            if recent is None or recent * self.DEADLINE_MARGIN > left:
                timeout = left
        start = time.perf_counter()
        if timeout is None:
            # Until timed, one row runs inline (a sampler's B=1 call is a long chain of tiny
            # ops) and more rows on the pool (an encoder's two directions overlap there).
            inline = self.run_modes.pick(key, first=rows <= 1)
            values = self._callable(signature, inline)(*args)
        else:
            # On the pool: a run inline in this thread is never timed out by TensorFlow.
            inline = False
            values = self._run_with_timeout(signature, args, timeout)
        self.run_modes.record(key, inline, time.perf_counter() - start)
        return dict(zip(outputs, values))

    def _run_with_timeout(self, signature: str, args: list, seconds: float) -> list:
        """One `Session.run` of the signature on the inter-op pool, which TensorFlow stops
        after `seconds`."""
        sig = self.signature_defs[signature]
        names, outputs = self._io[signature]
        options = tf.compat.v1.RunOptions(timeout_in_ms=max(1, math.ceil(1000 * seconds)))
        return self.session.run([sig.outputs[k].name for k in outputs],
                                {sig.inputs[k].name: a for k, a in zip(names, args)},
                                options=options)


def to_ndarray(proto: TensorProto) -> np.ndarray:
    """TensorProto -> array: the numpy-only converter for the dtypes it knows (2-3x faster per
    tensor than TensorFlow's, whose conversions parse numpy's version string on every call),
    TensorFlow's for the rest."""
    try:
        return protos.make_ndarray(proto)
    except protos.UnsupportedType:
        return tf.make_ndarray(proto)


def to_tensor_proto(array: np.ndarray) -> TensorProto:
    """Array -> TensorProto, the same way round as `to_ndarray`."""
    try:
        return protos.make_tensor_proto(array)
    except protos.UnsupportedType:
        return tf.make_tensor_proto(array)


def _names(keys) -> str:
    return ",".join(sorted(keys))


def _dtype_name(enum: int) -> str:
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype enum {enum}"


def check_inputs(signature: SignatureDef, sig_name: str, tensors: Mapping[str, TensorProto],
                 check_rows: Callable[[int], None] | None = None) -> dict:
    """TensorProtos -> arrays, checked against the SignatureDef (names, dtypes, shapes), and
    the contract's float inputs for NaN and infinities (`finite_inputs`), before the request
    runs or joins a batch. check_rows(rows) raises a ServingError for an input of too many
    rows (dim 0).

    Every proto's dtype and shape are checked before any is decoded: a proto's typed values
    repeat the last one up to its shape's size, so a few bytes can claim a huge tensor, which
    must be refused, not allocated (TensorFlow would fill it)."""
    sent, expected = set(tensors), set(signature.inputs)
    if sent != expected:
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{_names(sent)}}}) != len({{{_names(expected)}}}). "
            f"Sent extra: {{{_names(sent - expected)}}}. "
            f"Missing but required: {{{_names(expected - sent)}}}.")
    for alias, proto in tensors.items():
        info = signature.inputs[alias]
        if proto.dtype != info.dtype:
            raise invalid_argument(
                f"input '{alias}' of signature '{sig_name}' must be "
                f"{_dtype_name(info.dtype)}, got {_dtype_name(proto.dtype)}")
        try:
            shape = protos.tensor_shape(proto)
        except ValueError as err:
            raise invalid_argument(f"tensor parsing error: {alias}: {err}") from None
        if not info.tensor_shape.unknown_rank:
            want = [d.size for d in info.tensor_shape.dim]
            if len(want) != len(shape) or any(w not in (-1, s) for w, s in zip(want, shape)):
                raise invalid_argument(
                    f"input '{alias}' of signature '{sig_name}' must have shape "
                    f"[{','.join('?' if w < 0 else str(w) for w in want)}], got "
                    f"[{','.join(map(str, shape))}]")
        if shape and check_rows is not None:
            check_rows(shape[0])
        size = math.prod(shape) * _element_bytes(proto.dtype)
        if size > MAX_MESSAGE_BYTES:
            raise invalid_argument(
                f"tensor parsing error: {alias}: shape [{','.join(map(str, shape))}] holds "
                f"{size} bytes, more than a request can carry ({MAX_MESSAGE_BYTES})")
    arrays = {}
    for alias, proto in tensors.items():
        try:
            arrays[alias] = to_ndarray(proto)
        except ValueError as err:
            raise invalid_argument(f"tensor parsing error: {alias}: {err}") from None
        except Exception:  # noqa: BLE001
            raise invalid_argument(f"tensor parsing error: {alias}") from None
    problem = nonfinite_input_problem(sig_name, arrays)
    if problem:
        raise invalid_argument(problem)
    return arrays


def _element_bytes(enum: int) -> int:
    """Bytes per element of a decoded tensor (a pointer's 8 for strings and other types of no
    fixed size, whose values are objects)."""
    try:
        return tf.dtypes.as_dtype(enum).size or 8
    except TypeError:
        return 8


class ModelServer:
    """Models, batching and the three RPCs; `start` puts them on a gRPC port."""

    def __init__(self, sources, batching=None, log=print, intra_op_threads: int = 0,
                 inter_op_threads: int = 0, max_request_rows: int = 0):
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                                          inter_op_parallelism_threads=inter_op_threads)
        self.manager = ModelManager(
            sources, lambda name, version, path: Servable(name, version, path, config), log=log)
        self.scheduler = BatchScheduler(batching) if batching else None
        # Without batching, the most rows a Predict input may have (0: any number).
        self.max_request_rows = max_request_rows
        self.requests = collections.Counter()  # per method, and per method:ERROR_CODE
        self.busy_seconds = collections.Counter()  # per method: time inside the handler
        self._lock = threading.Lock()
        self._grpc = None
        self._started = time.time()

    # --- RPCs -------------------------------------------------------------------------------
    def predict(self, request: predict_pb2.PredictRequest, deadline: float | None = None
                ) -> predict_pb2.PredictResponse:
        """TF Serving's Predict: checks the request as it does, runs it (batched if enabled).
        deadline: the call's gRPC deadline (time.monotonic()), for the batching queue and the
        run (`Servable.run`)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable, version = self.manager.get(request.model_spec)
        sig_name = request.model_spec.signature_name or "serving_default"
        if sig_name not in servable.signature_names:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{sig_name}" not found.')
        signature = servable.signature_defs[sig_name]
        inputs = check_inputs(signature, sig_name, request.inputs, self._check_rows)
        aliases = list(request.output_filter) or list(signature.outputs)
        if len(set(aliases)) != len(aliases):
            dup = next(a for a in aliases if aliases.count(a) > 1)
            raise invalid_argument(f"duplicate output tensor alias: {dup}")
        for alias in aliases:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{_names(signature.outputs)}}}.")
        try:
            if self.scheduler is not None:
                outputs = self.scheduler.run(
                    (id(servable), sig_name),
                    lambda x, batch_deadline: servable.run(sig_name, x, batch_deadline),
                    inputs, deadline=deadline)
            else:
                outputs = servable.run(sig_name, inputs, deadline)
        except Exception as err:  # noqa: BLE001 - every failure becomes a status
            raise from_exception(err) from None
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = sig_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(to_tensor_proto(outputs[alias]))
        return response

    def _check_rows(self, rows: int) -> None:
        """Refuses a request of more rows than one run may take: with batching max_batch_size
        (as TF Serving), else --max_request_rows. A model's memory grows with the rows it
        runs (a 16-bar sample row holds about 160 KB), so a request of a million rows, a few
        bytes of typed values, would take all the machine's memory."""
        if self.scheduler is not None:
            self.scheduler.check_size(rows)
        elif self.max_request_rows and rows > self.max_request_rows:
            raise invalid_argument(
                f"the request has {rows} rows, more than the {self.max_request_rows} that "
                "hmvae serve --max_request_rows allows; send fewer rows per request")

    def get_model_metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                           ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """The served version's SignatureDefs, which clients read to learn a model's tensors."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable, version = self.manager.get(request.model_spec)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in servable.signature_defs.items():
            sigmap.signature_def[key].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(sigmap)
        return response

    def get_model_status(self, request: get_model_status_pb2.GetModelStatusRequest
                         ) -> get_model_status_pb2.GetModelStatusResponse:
        """The state of one or every version of a model, for readiness checks."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        # As TF Serving: a version_label is ignored here (every version is reported).
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, state, error in self.manager.states(spec.name, version):
            status = response.model_version_status.add(version=v, state=state)
            if error:  # a failed load, as TF Serving reports it: END with the load's error
                status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
                status.status.error_message = error
            else:
                status.status.error_code = 0  # OK
        return response

    def stats(self) -> dict:
        """Request counts, handler time, models, run modes and batching, for the stats RPC."""
        with self._lock:
            requests = dict(self.requests)
            handler_seconds = {m: round(t, 6) for m, t in self.busy_seconds.items()}
        return {"uptime_seconds": round(time.time() - self._started, 3),
                "requests": requests,
                "handler_seconds": handler_seconds,  # total time inside each RPC's handler
                "models": self.manager.loaded(),
                # how each signature and batch size runs, once measured (run_modes.py)
                "run_modes": {f"{name}/{version}": servable.run_modes.describe()
                              for name, version, servable in self.manager.servables()},
                "batching": self.scheduler.snapshot() if self.scheduler else None}

    def summary(self) -> str:
        """Request and batch counts in one line, for the log when the server stops."""
        s = self.stats()
        text = ", ".join(f"{k} {v}" for k, v in sorted(s["requests"].items())) or "no requests"
        if s["batching"]:
            b = s["batching"]
            text += f"; batching: {b.get('tasks', 0)} requests in {b.get('batches', 0)} batches"
        return text

    # --- gRPC -------------------------------------------------------------------------------
    def call(self, method: str, fn: Callable[[Message], Message], request: Message,
             context: grpc.ServicerContext) -> Message:
        """Runs one RPC: counts it, times it and turns any failure into a gRPC status."""
        start = time.perf_counter()
        try:
            response = fn(request)
            error = None
        except ServingError as err:
            error = err
        except Exception as err:  # noqa: BLE001 - never let a request kill the server
            error = from_exception(err)
        with self._lock:
            self.requests[method] += 1
            self.busy_seconds[method] += time.perf_counter() - start
            if error is not None:
                self.requests[f"{method}:{error.code.name}"] += 1
        if error is not None:
            context.abort(error.code, fit_status_message(error.message))
        return response

    def start(self, host: str, port: int, max_threads: int = 64,
              channel_arguments: list[tuple[str, object]] = (),
              max_concurrent_rpcs: int | None = None) -> int:
        """Serves on host:port (0: a free port); returns the port. channel_arguments: gRPC
        server options (TF Serving's --grpc_channel_arguments), over the defaults.
        max_concurrent_rpcs: calls in the server at once, running or waiting for one of the
        max_threads (None: no limit); gRPC answers more with RESOURCE_EXHAUSTED, where they
        would queue in memory without bound."""
        options = dict([("grpc.so_reuseport", 0),
                        # TF Serving's limit both ways (kint32max), not gRPC's 4 MB
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        options.update(channel_arguments)
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
            options=list(options.items()), maximum_concurrent_rpcs=max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), server)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            STATS_SERVICE, {STATS_METHOD: grpc.unary_unary_rpc_method_handler(
                lambda _request, _context: json.dumps(self.stats()).encode())})])
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as err:
            raise OSError(f"cannot listen on {address}: {err}") from None
        if not bound:
            raise OSError(f"cannot listen on {address} (port in use?)")
        server.start()
        self._grpc = server
        return bound

    def stop(self, grace: float = 5.0) -> None:
        """Stops taking requests, lets those in flight finish (up to `grace` s), stops threads."""
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.manager.stop()


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ModelServer):
        self.core = core

    def Predict(self, request, context):
        remaining = context.time_remaining()  # None: the client set no deadline
        deadline = None if remaining is None else time.monotonic() + remaining
        return self.core.call("Predict", lambda r: self.core.predict(r, deadline), request,
                              context)

    def GetModelMetadata(self, request, context):
        return self.core.call("GetModelMetadata", self.core.get_model_metadata, request, context)

    def Classify(self, request, context):
        return self.core.call("Classify", _unimplemented("PredictionService/Classify"), request,
                              context)

    def Regress(self, request, context):
        return self.core.call("Regress", _unimplemented("PredictionService/Regress"), request,
                              context)

    def MultiInference(self, request, context):
        return self.core.call("MultiInference", _unimplemented("PredictionService/MultiInference"),
                              request, context)


def _unimplemented(method: str, why: str = "") -> Callable[[Message], Message]:
    """An RPC of TF Serving's API that hmvae serve does not answer: UNIMPLEMENTED (gRPC's
    own message, "Method not implemented!", said neither which method nor what to use)."""
    def fail(_request):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"hmvae serve does not implement {method}"
                           + (why or "; it answers PredictionService/Predict and "
                              "GetModelMetadata and ModelService/GetModelStatus (the exports' "
                              "signatures are all Predict signatures)"))
    return fail


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ModelServer):
        self.core = core

    def GetModelStatus(self, request, context):
        return self.core.call("GetModelStatus", self.core.get_model_status, request, context)

    def HandleReloadConfigRequest(self, request, context):
        return self.core.call(
            "HandleReloadConfigRequest",
            _unimplemented("ModelService/HandleReloadConfigRequest",
                           ": it reads --model_config_file once, at start; restart it to change "
                           "the models (new versions under a base path are picked up by "
                           "themselves)"), request, context)
