"""Where a MusicVAEClient's model runs: over gRPC on a model server (GrpcBackend) or in this
process (SavedModelBackend), both reading the signatures' specs and turning their failures
into ClientErrors that say what to do.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping

import numpy as np

from hmvae_tf.serving.client_errors import ClientError
from hmvae_tf.serving.signature_inputs import check_inputs

if TYPE_CHECKING:
    from tensorflow.core.protobuf.meta_graph_pb2 import SignatureDef


class TensorSpec:
    """Name, numpy dtype and shape (None = any size) of one signature input or output."""

    def __init__(self, dtype, shape):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape) if shape is not None else None

    def __repr__(self):
        return f"TensorSpec({self.dtype.name}, {self.shape})"


class Backend:
    """Runs a named signature on a dict of numpy arrays; knows the signatures' specs."""

    description = ""
    inputs: dict[str, dict[str, TensorSpec]]   # signature -> input name -> spec
    outputs: dict[str, dict[str, TensorSpec]]  # signature -> output name -> spec

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The signature's outputs for these inputs (seed included), as numpy arrays."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases the channel or session; the backend is unusable afterwards."""
        pass


# The largest request or answer the gRPC client sends or takes (servers take up to 2 GB): far
# above what the helpers send, chunked by batch_size; a call() with very many rows can pass it.
MAX_MESSAGE_BYTES = 256 << 20

# The longest deadline handed to gRPC: past about 7e9 s (now + timeout overflowing int64
# nanoseconds) gRPC takes it as already past, and every call failed with DEADLINE_EXCEEDED
# at once. 1e9 s (31 years) waits as long as any larger timeout would.
MAX_GRPC_TIMEOUT = 1e9


class GrpcBackend(Backend):
    """A model on TF Serving (tensorflow_model_server or `hmvae serve`) over gRPC."""

    def __init__(self, address: str, model: str, version: int | str | None = None,
                 timeout: float = 60.0, wait_for_ready: bool = False):
        import grpc

        from hmvae_tf.serving import protos

        self._apis = protos.apis()
        self.address, self.model, self.version, self.timeout = address, model, version, timeout
        self.wait_for_ready = wait_for_ready
        self._grpc = grpc
        self._channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        self._stub = self._apis.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        try:
            self.inputs, self.outputs, served = self._metadata()
        except BaseException:
            self._channel.close()
            raise
        self.description = f"gRPC {address}, model {model} version {served}"
        self.served_version = served

    def _spec(self, request):
        request.model_spec.name = self.model
        if isinstance(self.version, str):  # a version label, e.g. "stable"
            request.model_spec.version_label = self.version
        elif self.version is not None:
            request.model_spec.version.value = self.version

    def _metadata(self):
        get_model_metadata_pb2 = self._apis.get_model_metadata_pb2
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request)
        response = self._call(self._stub.GetModelMetadata, request)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(sigmap):
            raise ClientError(f"{self.address}: metadata of model {self.model!r} holds no "
                              "SignatureDefMap")

        sigs = {k: v for k, v in sigmap.signature_def.items() if not k.startswith("__")}
        return (*signature_specs(sigs), response.model_spec.version.value)

    def _call(self, method, request):
        grpc = self._grpc
        try:
            timeout = None if self.timeout is None else min(self.timeout, MAX_GRPC_TIMEOUT)
            return method(request, timeout=timeout, wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as err:
            code, details = err.code(), err.details()
            label = self.version if isinstance(self.version, str) else None
            which = f"model {self.model!r}" + (
                f" version label {label!r}" if label is not None
                else f" version {self.version}" if self.version is not None else "")
            if label is not None and code == grpc.StatusCode.INVALID_ARGUMENT and \
                    "version label" in details:  # TF Serving: "Unrecognized servable ..."
                message = (f"{which} is not defined on {self.address} ({details}): the "
                           "server's model config sets labels (version_labels)"
                           + (f"; a number picks a version: version={label}"
                              if label.strip().isdigit() else ""))
            elif code == grpc.StatusCode.UNAVAILABLE:
                message = (f"cannot reach a model server at {self.address} ({details}); "
                           "is `hmvae serve` or tensorflow_model_server running there?")
            elif code == grpc.StatusCode.NOT_FOUND:
                message = f"{which} not found on {self.address}: {details}" + self._versions_note()
            elif too_large := re.search(r"CLIENT: (Sent|Received) message larger than max "
                                        r"\((\d+) vs\. \d+\)", details):
                # grpc's words: "CLIENT: Sent message larger than max (310800126 vs. 268435456)"
                side = "request" if too_large[1] == "Sent" else "answer"
                message = (f"{self.address}, {which}: the {side} ({int(too_large[2]) / 2**20:.3g} "
                           f"MB) is larger than this client's {MAX_MESSAGE_BYTES / 2**20:.3g} MB "
                           "gRPC message limit; send fewer rows per call")
            elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
                message = (f"{self.address} did not answer within {self.timeout:g} s"
                           if self.timeout is not None else f"{self.address}: {details}")
                if self.wait_for_ready:  # the time went on waiting for a server, most likely
                    message += (", waiting for a server to come up (wait_for_ready) and for "
                                "its answer: is `hmvae serve` or tensorflow_model_server "
                                "running there?")
            else:
                message = f"{self.address}, {which}: {code.name}: {details}"
            raise ClientError(message, code.name) from None

    def _versions_note(self) -> str:
        """"; available on the server: versions 1, 2", asked of the server's ModelService
        (GetModelStatus, which TF Serving and `hmvae serve` answer) for a NOT_FOUND message,
        which names only the version that is missing; "" when the server cannot tell (an
        unknown model, or no ModelService)."""
        apis = self._apis
        request = apis.get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model
        try:
            stub = apis.model_service_pb2_grpc.ModelServiceStub(self._channel)
            timeout = None if self.timeout is None else min(self.timeout, MAX_GRPC_TIMEOUT)
            statuses = stub.GetModelStatus(request, timeout=timeout).model_version_status
        except self._grpc.RpcError:
            return ""
        state = apis.get_model_status_pb2.ModelVersionStatus.State
        available = sorted(s.version for s in statuses if s.state == state.AVAILABLE)
        if available:
            return (f"; available on the server: version{'s' if len(available) > 1 else ''} "
                    + ", ".join(map(str, available)))
        if statuses:  # loading, or failed to load
            return ("; no version of it is available on the server ("
                    + ", ".join(f"version {s.version} {state.Name(s.state)}"
                                for s in sorted(statuses, key=lambda s: s.version)) + ")")
        return ""

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One Predict RPC; gRPC failures become ClientErrors that say what to do."""
        from hmvae_tf.serving.protos import make_ndarray, make_tensor_proto

        request = self._apis.predict_pb2.PredictRequest()
        self._spec(request)
        request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(make_tensor_proto(value))
        response = self._call(self._stub.Predict, request)
        served = response.model_spec.version.value
        if served and served != self.served_version:
            # Unpinned, calls go to whatever version is newest: say the one that answered.
            self.served_version = served
            self.description = f"gRPC {self.address}, model {self.model} version {served}"
        return {k: make_ndarray(v) for k, v in response.outputs.items()}

    def close(self) -> None:
        """Closes the gRPC channel."""
        self._channel.close()


class SavedModelBackend(Backend):
    """A SavedModel directory run in this process (no server), the way `hmvae serve` and TF
    Serving run it: the "serve" MetaGraph in a TF1 session, one callable per signature
    (`service.Servable`). Faster than `tf.saved_model.load`'s functions, whose Python call
    costs more than the graph at these sizes: one 2-bar sample 9.0 against 11.9 ms, an 8-step
    interpolation 38.1 against 55.8 ms (bench_infer --session, 2 cores)."""

    def __init__(self, path: str):
        import os

        import tensorflow as tf

        from hmvae_tf.serving.service import Servable

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ClientError(f"{path} is not a SavedModel directory (no saved_model.pb); give "
                              "a version directory such as saved_models/mel_2bar/1")
        self._op_error = tf.errors.OpError
        try:
            self._servable = Servable(os.path.basename(os.path.normpath(path)), 0, path)
        except (OSError, ValueError, tf.errors.OpError) as err:  # corrupt or partial export
            raise ClientError(f"cannot load the SavedModel at {path}: "
                              f"{getattr(err, 'message', None) or err}") from err
        self.inputs, self.outputs = signature_specs(
            {k: self._servable.signature_defs[k] for k in self._servable.signature_names})
        self.description = f"in-process SavedModel {path}"

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature in this process; graph errors become ClientErrors. Input names,
        dtypes and shapes are checked first, as a server checks them: the session's callables
        take any shape, and would run a 31-step melody through a 32-step encoder."""
        check_inputs(signature, inputs, self.inputs)
        try:
            return self._servable.run(signature, inputs)
        except self._op_error as err:
            from hmvae_tf.serving.errors import op_error_message, status_from_number
            raise ClientError(f"{signature}: {op_error_message(err.message)}",
                              status_from_number(err.error_code).name) from None

    def close(self) -> None:
        """Closes the TF session that holds the model."""
        self._servable.session.close()


def signature_specs(signature_defs: Mapping[str, SignatureDef]) -> tuple[dict, dict]:
    """SignatureDef protos by name -> (input specs, output specs), each signature -> name ->
    TensorSpec."""
    from hmvae_tf.serving.protos import numpy_dtype

    def specs(infos):
        return {k: TensorSpec(numpy_dtype(v.dtype),
                              None if v.tensor_shape.unknown_rank else
                              [d.size if d.size >= 0 else None for d in v.tensor_shape.dim])
                for k, v in infos.items()}

    return ({k: specs(v.inputs) for k, v in signature_defs.items()},
            {k: specs(v.outputs) for k, v in signature_defs.items()})
