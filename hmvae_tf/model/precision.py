"""Which dtype the LSTM and decoder products run in: float32, or bfloat16 where the CPU has it.

Keras' `mixed_bfloat16` policy would also run every small dense layer, the softmax and the
distributions in bfloat16; here the name means less. Variables, LSTM states, gates, logits and
losses all stay float32, and only the matrix products run in bfloat16. Those products are
nearly all of a step's arithmetic: the recurrent products, the input projections and the
weight gradients. Each kernel is cast once per call (`compute`); `matmul` casts its other
operand to the kernel's dtype and the product back. The output layer's product, which gives
the logits the loss reads, stays float32 (it is small). Checkpoints are the same under both
policies.

On a CPU with AVX512_BF16 or AMX, oneDNN runs a bfloat16 product about 1.8x as fast as float32.
Elsewhere bfloat16 is emulated and slower. XLA's CPU backend reaches that rate only through its
classic runtime, so choosing the policy also sets `--xla_cpu_use_thunk_runtime=false` for the
compiled recurrences of `lstm_training` (it must happen before the first XLA compile). A flag
the user set in XLA_FLAGS is kept. That runtime fuses an addition into oneDNN's bfloat16
matmul and rounds the sum to bfloat16, so LSTM pre-activations add their float32 part to the
product gate by gate (`add_product`); with that, bfloat16 training reached float32's test
accuracy on melodies (BUILD.md), and `hmvae train --dtype_policy=auto` (the default) picks it
for melody models on CPUs that have it. Drum and trio models stay float32 under `auto`: their
bfloat16 accuracy has not been measured (the embedded corpus has no drums), so they get it
only when asked for.

The policy is read when a graph is traced: set it before building the train function.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from hmvae_tf.xla_runtime import XLA_CLASSIC_RUNTIME, use_classic_xla_runtime  # noqa: F401

if TYPE_CHECKING:
    import keras

_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}
POLICIES = tuple(_DTYPES)
# Representations whose models trained to float32's test accuracy under mixed_bfloat16
# (BUILD.md: flat 2-bar and hierarchical 16-bar melody models): `auto` picks bfloat16 for these.
BF16_MEASURED_REPRESENTATIONS = frozenset({"melody"})
_policy = "float32"


def cpu_has_bf16() -> bool:
    """True where the CPU has bfloat16 dot-product instructions (AVX512_BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def set_policy(name: str) -> None:
    """Runs later-traced products in `name`'s dtype (one of POLICIES)."""
    global _policy
    if name not in _DTYPES:
        raise ValueError(f"unknown precision policy {name!r}; one of {', '.join(POLICIES)}")
    _policy = name
    if matmul_dtype() == tf.bfloat16:
        use_classic_xla_runtime()


def policy_name() -> str:
    """The policy in force, so a caller can restore it or record it with the model."""
    return _policy


def matmul_dtype() -> tf.DType:
    """The dtype products run in under the current policy."""
    return _DTYPES[_policy]


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """`set_policy(name)` for the duration of a block (graphs traced inside keep it). XLA_FLAGS
    is restored too, so that processes started later do not inherit it; XLA reads it once, at
    its first compile, which for training happens inside the block."""
    previous, flags = policy_name(), os.environ.get("XLA_FLAGS")
    set_policy(name)
    try:
        yield
    finally:
        set_policy(previous)
        if flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = flags


def compute(kernel: tf.Tensor | keras.Variable) -> tf.Tensor:
    """A kernel in the products' dtype (cast once, outside loops)."""
    return tf.cast(kernel, matmul_dtype())


def matmul(x: tf.Tensor, kernel: tf.Tensor, **kwargs: Any) -> tf.Tensor:
    """x @ kernel in kernel's dtype, returned in x's dtype."""
    if x.dtype == kernel.dtype:
        return tf.linalg.matmul(x, kernel, **kwargs)
    return tf.cast(tf.linalg.matmul(tf.cast(x, kernel.dtype), kernel, **kwargs), x.dtype)


def add_product(addend: tf.Tensor, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """addend + x @ kernel, in addend's dtype: an LSTM's gate pre-activations [..., 4u].

    With bfloat16 products the sum is formed gate by gate (four slices of the last axis).
    Added whole, XLA's classic CPU runtime (which the bfloat16 policy selects) fuses the
    addition into oneDNN's bfloat16 matmul, so the whole pre-activation, the float32 addend
    included, came back rounded to bfloat16: twice the error of rounding the product alone
    (one 32-step recurrence: 1.45e-3 against 7.8e-4 mean relative error to float32), and a
    sampling loop, whose addend is gathered per step, took 22 % longer. float32 adds whole.
    """
    product = matmul(x, kernel)
    if kernel.dtype == addend.dtype:
        return addend + product
    pieces = zip(tf.split(addend, 4, axis=-1), tf.split(product, 4, axis=-1))
    return tf.concat([a + b for a, b in pieces], axis=-1)
