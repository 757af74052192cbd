"""The one error type of the serving code: a gRPC status code and a message, as TF Serving sends.

TensorFlow's error codes are gRPC's (tf.errors.INVALID_ARGUMENT == 3 == grpc INVALID_ARGUMENT),
so an op error raised by the graph maps to its status without a table of our own.
"""
from __future__ import annotations

import grpc

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request failed with `code` (grpc.StatusCode) and a message for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def status_from_number(number: int) -> grpc.StatusCode:
    """The gRPC status with this number (TF's error codes are the same), UNKNOWN if none."""
    return _BY_NUMBER.get(int(number), grpc.StatusCode.UNKNOWN)


def invalid_argument(message: str) -> ServingError:
    """The error for a request the caller must fix (bad shape, dtype, value)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """The error for an unknown model, version or signature."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def from_exception(err: BaseException) -> ServingError:
    """A ServingError for anything a model call raised: op errors keep their own code."""
    if isinstance(err, ServingError):
        return err
    number = getattr(err, "error_code", None)  # tf.errors.OpError
    if number is not None:
        return ServingError(status_from_number(number), op_error_message(getattr(err, "message", str(err))))
    if isinstance(err, (TypeError, ValueError)):
        return invalid_argument(str(err))
    return ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


def op_error_message(message: str) -> str:
    """The informative lines of a TF graph error (drops stack-trace boilerplate)."""
    keep = []
    for line in message.splitlines():
        s = line.strip()
        if (not s or s.startswith("Graph execution error") or s.startswith("Detected at node")
                or s.startswith("<stack traces") or (s.startswith("[[") and s.endswith("]]"))):
            continue
        keep.append(s)
    return " ".join(keep) or message.strip()
