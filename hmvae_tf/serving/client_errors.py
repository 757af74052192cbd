"""The client's one error type, raised by MusicVAEClient, its backends and its input checks.

A module of its own so the backends (client_backends) and the checks (signature_inputs)
raise the error the client does without importing the client.
"""
from __future__ import annotations


class ClientError(Exception):
    """A failure the user can act on (server unreachable, model not found, bad input).

    `code` says which, as the name of a gRPC status, so an app can tell failures apart
    without reading the message: "UNAVAILABLE" (no server at the address), "NOT_FOUND"
    (model or version not served), "INVALID_ARGUMENT" (bad input, checked by the client or
    by the model), "DEADLINE_EXCEEDED" (no answer within the timeout), "FAILED_PRECONDITION"
    (no such signature), or another status a server sent; None for set-up errors (no port in
    the address, not a SavedModel directory, a model without the serving contract) and for a
    call on a closed client."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def invalid_argument(message: str) -> ClientError:
    """The ClientError of a bad input (INVALID_ARGUMENT), found by the client's checks."""
    return ClientError(message, "INVALID_ARGUMENT")
