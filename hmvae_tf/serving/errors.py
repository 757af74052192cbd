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


# The longest status message sent, as gRPC puts it on the wire (the grpc-message trailer,
# percent-encoded): clients refuse trailers over 8-16 KB, and then see RESOURCE_EXHAUSTED
# "received metadata size exceeds hard limit" instead of the server's status.
MAX_STATUS_MESSAGE_BYTES = 2048


def _wire_bytes(text: str) -> int:
    """Bytes of `text` in the grpc-message trailer: printable ASCII but % as is, others %XX."""
    return sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in text.encode("utf-8", "replace"))


def fit_status_message(message: str, limit: int = MAX_STATUS_MESSAGE_BYTES) -> str:
    """`message`, or its beginning and end with the middle cut out so that it fits `limit`
    bytes on the wire: a message echoes what the request named (a model, a label, an input,
    a metadata field), which may be megabytes long."""
    if len(message) * 12 <= limit or _wire_bytes(message) <= limit:  # 12: 4 UTF-8 bytes as %XX
        return message
    budget = (limit - 64) // 2  # each end's; 64 for the marker
    head = _prefix_within(message, budget)
    tail = _prefix_within(message[::-1], budget)[::-1]
    cut = len(message) - len(head) - len(tail)
    return f"{head} ...[{cut} characters cut]... {tail}"


def _prefix_within(text: str, budget: int) -> str:
    used = 0
    for i, char in enumerate(text):
        used += _wire_bytes(char)
        if used > budget:
            return text[:i]
    return text


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
    if isinstance(err, MemoryError):  # numpy's, as TensorFlow's own OOM: not a server bug
        return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"out of memory: {err}" if str(err) else "out of memory")
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
