"""The LSTM recurrence for CPU training, with a hand-written gradient.

Differentiating `lstm.run_lstm`'s `tf.while_loop` makes TensorFlow accumulate the recurrent
kernel's gradient step by step: one [u, B] x [B, 4u] matmul and one [u, 4u] add per step,
each too small to use the CPU well at training batch sizes. cuDNN instead keeps the
gate activations, walks back through time computing only what depends on the step before, and
forms the weight gradient at the end as a single [u, T*B] x [T*B, 4u] matmul. This module does
the same with two loops, each compiled by XLA so that the gate arithmetic of a step is fused
into a few kernels instead of a dozen separate ops.

Only training uses it: exported graphs, evaluation and autoregressive loops keep `run_lstm`,
so no XLA op ends up in a SavedModel or TF.js graph; `run_lstm(..., training=True)` is the
only caller. The weights and the function computed are the same:
`tests/test_lstm_training.py` checks outputs and gradients against the plain loop's.
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from hmvae_tf.model import precision


def _unstack(x: tf.Tensor) -> tf.TensorArray:
    return tf.TensorArray(x.dtype, size=tf.shape(x)[0], clear_after_read=False).unstack(x)


def _preactivations(x, h, recurrent_kernel) -> list[tf.Tensor]:
    """The four gates' pre-activations x + h @ recurrent_kernel, split (`precision.add_product`
    keeps x out of a bfloat16 product's rounding)."""
    return tf.split(precision.add_product(x, h, recurrent_kernel), 4, axis=-1)


@tf.function(jit_compile=True, autograph=False)
def _forward(proj, recurrent_kernel, h0, c0):
    """Returns outputs, final h and c, every c_t and the gate activations [T, B, 4u]."""
    steps = tf.shape(proj)[0]
    inputs = _unstack(proj)

    def body(t, h, c, hs, cs, gates):
        zi, zf, zg, zo = _preactivations(inputs.read(t), h, recurrent_kernel)
        i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return (t + 1, h, c, hs.write(t, h), cs.write(t, c),
                gates.write(t, tf.concat([i, f, g, o], axis=-1)))

    arrays = [tf.TensorArray(proj.dtype, size=steps) for _ in range(3)]
    _, h, c, hs, cs, gates = tf.while_loop(lambda t, *_: t < steps, body, (0, h0, c0, *arrays),
                                           maximum_iterations=steps)
    return hs.stack(), h, c, cs.stack(), gates.stack()


@tf.function(jit_compile=True, autograph=False)
def _backward(gates, cs, c0, d_outputs, d_h, d_c, recurrent_kernel):
    """Walks back through time; returns d(pre-activations) [T, B, 4u], d h0 and d c0."""
    steps = tf.shape(gates)[0]
    c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
    gates_ta, cs_ta, c_prev_ta, d_out_ta = (_unstack(x) for x in (gates, cs, c_prev, d_outputs))
    kernel_t = tf.transpose(recurrent_kernel)

    def body(t, dh_next, dc_next, dzs):
        i, f, g, o = tf.split(gates_ta.read(t), 4, axis=-1)
        dh = d_out_ta.read(t) + dh_next
        tanh_c = tf.tanh(cs_ta.read(t))
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        dz = tf.concat([dc * g * i * (1 - i), dc * c_prev_ta.read(t) * f * (1 - f),
                        dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=-1)
        return t - 1, precision.matmul(dz, kernel_t), dc * f, dzs.write(t, dz)

    _, dh0, dc0, dzs = tf.while_loop(
        lambda t, *_: t >= 0, body, (steps - 1, d_h, d_c, tf.TensorArray(gates.dtype, size=steps)),
        maximum_iterations=steps)
    return dzs.stack(), dh0, dc0


class Activations(NamedTuple):
    """What the backward loop needs from a layer's forward pass, whole batch, time-major:
    outputs [T, B, u], final h and c [B, u], every c_t [T, B, u] and the activated gates
    i, f, g, o [T, B, 4u]. A forward-only step loop that already ran the layer on the same
    inputs (scheduled sampling's pick loop) can hand them over instead of a second forward."""
    outputs: tf.Tensor
    h: tf.Tensor
    c: tf.Tensor
    cs: tf.Tensor
    gates: tf.Tensor


def recurrence(proj: tf.Tensor, recurrent_kernel: tf.Tensor, h0: tf.Tensor, c0: tf.Tensor,
               shard_sizes: list[int] | None = None,
               forward: list[Activations] | None = None
               ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`lstm.run_lstm`'s recurrence (forward order) with the gradient above: returns
    (outputs [T, B, u], final h, final c). The products run in recurrent_kernel's dtype
    (bfloat16 under `precision`'s mixed policy); everything else in proj's.

    shard_sizes: row counts (summing to B) to cut the batch into, one compiled loop per shard;
    the loops run side by side (`lstm.cpu_shard_sizes` says when that pays). None: one loop.
    forward: this layer's forward pass on these very inputs, already computed, as a list of
    batch shards (used as they are if they match shard_sizes, else joined and cut again);
    then only the backward loops run (proj's value is not read, only its gradient given)."""
    if shard_sizes and len(shard_sizes) > 1:
        cut = lambda x, axis: tf.split(x, shard_sizes, axis)  # noqa: E731
    else:
        cut = lambda x, axis: [x]  # noqa: E731

    @tf.custom_gradient
    def run(proj, recurrent_kernel, h0, c0):
        # stop_gradient: a tape must not try to differentiate the compiled loop itself (it
        # cannot: its TensorLists may not cross the XLA boundary); `grad` is the gradient.
        kernel = tf.stop_gradient(recurrent_kernel)
        c0s = cut(tf.stop_gradient(c0), 0)
        if forward is None:
            shards = [_forward(p, kernel, h, c) for p, h, c in
                      zip(cut(tf.stop_gradient(proj), 1), cut(tf.stop_gradient(h0), 0), c0s)]
        else:
            shards = [tuple(tf.stop_gradient(x) for x in shard) for shard in forward]
            if [shard[1].shape[0] for shard in shards] != list(shard_sizes or [proj.shape[1]]):
                shards = list(zip(*(cut(x, axis) for x, axis in
                                    zip(_join(shards, len(_BATCH_AXES)), _BATCH_AXES))))
        outputs, h, c = _join(shards)

        def grad(d_outputs, d_h, d_c):
            d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
            d_h = tf.zeros_like(h) if d_h is None else d_h
            d_c = tf.zeros_like(c) if d_c is None else d_c
            d_proj, dh0, dc0 = _join([
                _backward(gates, cs, c0_, d_out, dh, dc, recurrent_kernel)
                for (_, _, _, cs, gates), c0_, d_out, dh, dc in
                zip(shards, c0s, cut(d_outputs, 1), cut(d_h, 0), cut(d_c, 0))])
            units = tf.shape(h0)[-1]
            h_prev = tf.concat([h0[None], outputs[:-1]], axis=0)
            as_kernel = recurrent_kernel.dtype
            d_kernel = tf.linalg.matmul(tf.cast(tf.reshape(h_prev, [-1, units]), as_kernel),
                                        tf.cast(tf.reshape(d_proj, [-1, 4 * units]), as_kernel),
                                        transpose_a=True)
            return d_proj, d_kernel, dh0, dc0

        return (outputs, h, c), grad

    return run(proj, recurrent_kernel, h0, c0)


# The batch axis of each field of `Activations` (and of `_backward`'s three results).
_BATCH_AXES = (1, 0, 0, 1, 1)


def _join(shards, fields: int = 3):
    """Per-shard (time-major [T, b, .], [b, .], [b, .], ...) -> the first `fields`, whole
    batch."""
    if len(shards) == 1:
        return tuple(shards[0][:fields])
    return tuple(tf.concat([s[i] for s in shards], axis)
                 for i, axis in enumerate(_BATCH_AXES[:fields]))
