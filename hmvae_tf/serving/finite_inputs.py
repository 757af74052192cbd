"""The serving contract's float inputs must hold numbers, checked before a model runs.

A NaN or infinite `z` or `alpha` decodes to silence or noise with status OK, and the exports
made before their graphs checked it (`export.ServingModule`) are still served, so `hmvae serve`
and the in-process client refuse such a request themselves. Inputs are known by the
contract's names (BUILD.md, "Serving contract"); numpy only, as the gRPC client loads no
TensorFlow.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

# A latent point, and where between two latent points: any non-finite value is garbage.
FINITE_INPUTS = ("z", "alpha")
# +inf is the limit of a hot sampler (every token equally likely) and 0 is argmax, as the
# graphs have always taken them; NaN is refused (the graphs refuse it as "not >= 0", and a
# negative temperature, with that message).
NOT_NAN_INPUTS = ("temperature",)


def nonfinite_input_problem(signature: str, inputs: Mapping[str, np.ndarray]) -> str | None:
    """The message for the first contract input holding a value it must not (e.g. "input 'z'
    of signature 'decode' must be finite, got nan in row 2"), or None. One vectorised pass
    over each float input: a few floats per row, nothing beside a model run."""
    for name in (*FINITE_INPUTS, *NOT_NAN_INPUTS):
        array = inputs.get(name)
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            continue
        if name in FINITE_INPUTS:
            if np.isfinite(array).all():
                continue
            bad, rule = ~np.isfinite(array), "must be finite"
        else:
            if not np.isnan(array).any():
                continue
            bad, rule = np.isnan(array), "must be a number >= 0 (0 = argmax)"
        where = np.argwhere(bad)[0]
        row = f" in row {where[0]}" if array.ndim else ""
        return f"input '{name}' of signature '{signature}' {rule}, got {array[tuple(where)]}{row}"
    return None
