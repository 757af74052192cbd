"""A signature's inputs checked against its specs, as a model server checks a Predict
request: the in-process backend runs the check a server would, and MusicVAEClient.call casts
plain lists to the signature's dtypes where that loses nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from hmvae_tf.serving.client_errors import ClientError, invalid_argument
from hmvae_tf.serving.finite_inputs import nonfinite_input_problem

if TYPE_CHECKING:
    from hmvae_tf.serving.client_backends import TensorSpec


def _input_specs(signature: str, inputs: Mapping, specs: dict[str, dict[str, TensorSpec]]
                 ) -> dict[str, TensorSpec]:
    """The signature's input specs; ClientError for an unknown signature, or when `inputs`
    does not name exactly its inputs."""
    wanted = specs.get(signature)
    if wanted is None:
        raise ClientError(f"no signature {signature!r}; the model has {', '.join(sorted(specs))}",
                          "FAILED_PRECONDITION")
    if set(inputs) != set(wanted):
        raise invalid_argument(f"{signature} takes the inputs {', '.join(sorted(wanted))}; got "
                               f"{', '.join(sorted(inputs)) or 'none'}")
    return wanted


def check_inputs(signature: str, inputs: Mapping[str, np.ndarray],
                 specs: dict[str, dict[str, TensorSpec]]) -> None:
    """ClientError (INVALID_ARGUMENT, or FAILED_PRECONDITION for an unknown signature) unless
    `inputs` has exactly the signature's input names, dtypes and shapes, and the contract's
    float inputs hold numbers, as a server checks a Predict request. specs: a backend's
    `inputs`."""
    for name, spec in _input_specs(signature, inputs, specs).items():
        value = np.asarray(inputs[name])
        if spec.dtype != np.dtype(object) and value.dtype != spec.dtype:
            raise invalid_argument(f"{signature}: input {name} must be {spec.dtype.name}, got "
                                   f"{value.dtype.name}")
        if spec.shape is not None and (value.ndim != len(spec.shape) or any(
                w is not None and w != s for w, s in zip(spec.shape, value.shape))):
            want = ",".join("?" if w is None else str(w) for w in spec.shape)
            raise invalid_argument(f"{signature}: input {name} must have shape [{want}], got "
                                   f"[{','.join(map(str, value.shape))}]")
    problem = nonfinite_input_problem(signature, inputs)
    if problem:  # as `hmvae serve` refuses it: old exports decode NaN to silence
        raise invalid_argument(problem)


def conform_inputs(signature: str, inputs: dict, specs: dict[str, dict[str, TensorSpec]]
                   ) -> dict[str, np.ndarray]:
    """`inputs` (arrays or nested lists) as the arrays `signature` takes: cast to its dtypes
    where that loses nothing, as tf.constant would. ClientError for an unknown signature,
    missing or extra inputs, or a lossy cast. specs: a backend's `inputs`."""
    wanted = _input_specs(signature, inputs, specs)
    conformed = {}
    for name, value in inputs.items():
        dtype = wanted[name].dtype
        try:
            value = np.asarray(value)
        except ValueError:  # numpy's "inhomogeneous shape"
            raise invalid_argument(f"{signature}: input {name} holds nested sequences of "
                                   "different lengths") from None
        if value.dtype != dtype:
            if not _casts_losslessly(value, dtype):
                raise invalid_argument(f"{signature}: input {name} must be {dtype.name}, got "
                                       f"{value.dtype.name}"
                                       + (" out of its range" if value.dtype.kind in "iu" else ""))
            value = value.astype(dtype)
        conformed[name] = value
    return conformed


def _casts_losslessly(value: np.ndarray, dtype: np.dtype) -> bool:
    if not np.can_cast(value.dtype, dtype, "same_kind"):
        return False
    if dtype.kind not in "iu" or not value.size:
        return True
    info = np.iinfo(dtype)
    return bool(info.min <= value.min() and value.max() <= info.max)
