"""LSTM stacks with one set of Keras weights and three ways to run them.

- On a GPU, whole sequences go through `keras.layers.LSTM`, i.e. cuDNN.
- Elsewhere (CPU training, every exported graph), whole sequences go through `run`: the input
  projection of all steps is one matmul (or, for one-hot token inputs, a row gather) before a
  `tf.while_loop` that does only the recurrent matmul and the gates. On this project's 2-core
  CPUs that is about twice as fast as Keras' generic loop, and it never bakes a GPU-only op
  into an export.
  When training, the recurrence is `lstm_training.recurrence` instead: the same function
  with a cuDNN-style hand-written gradient.
- Autoregressive loops (sampling, scheduled sampling) call `step`, one step at a time.

Every product goes through `precision.matmul`, in float32 unless training chose bfloat16.

The weights are the LSTM layers' own (`kernel` [D, 4u], `recurrent_kernel` [u, 4u], `bias`
[4u], gate order i, f, c, o), so a checkpoint is the same whichever kernel ran.
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from hmvae_tf.model import lstm_training, precision


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU, i.e. whether whole sequences can go through cuDNN."""
    return bool(tf.config.list_logical_devices("GPU"))


# A compiled training loop gets its own batch shard per CPU core from this many rows per shard.
MIN_TRAINING_SHARD_ROWS = 32


def cpu_shard_sizes(batch: int | None) -> list[int]:
    """Row counts to cut a batch into for an XLA-compiled training loop on a CPU, one shard
    per core. XLA runs such a loop's small products on one core, so one loop leaves the other
    cores idle; independent shards run side by side on TensorFlow's inter-op threads (on 2
    cores, 1.25-1.4x for a 256-unit layer at batch 64 and 512). One shard where the batch
    size is unknown at trace time, the batch is small, or a GPU is there."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = min(cores or 1, (batch or 0) // MIN_TRAINING_SHARD_ROWS)
    if count <= 1 or gpu_available():
        return [batch]
    return [batch // count + (i < batch % count) for i in range(count)]


def run_lstm(proj: tf.Tensor, recurrent_kernel: tf.Tensor, h0: tf.Tensor, c0: tf.Tensor,
             reverse: bool = False, training: bool = False, shard_batch: bool = False,
             forward: list[lstm_training.Activations] | None = None
             ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The recurrence of one LSTM layer over time-major input projections.

    proj: [T, B, 4u] = x_t @ kernel + bias for every step. Returns (outputs [T, B, u] in
    input order, final h, final c); with reverse=True the layer reads the sequence backwards.
    training=True runs `lstm_training.recurrence`, the same function with a faster gradient
    (shard_batch: with the batch cut into one loop per CPU core, for a layer with nothing
    else to run beside it; not the encoder's two directions, which already run side by side:
    there, four loops on two cores were slower than two). forward (training, forward order
    only): the layer's activations on these inputs per batch shard, computed already by a step loop
    (`MusicDecoder.autoregress(with_activations=True)`), so that only the backward pass runs.
    """
    if forward is not None and (reverse or not training):
        raise ValueError("forward activations are reused only by a training forward-order layer")
    if reverse:
        proj = tf.reverse(proj, [0])
    kernel = precision.compute(recurrent_kernel)
    if training:
        sizes = cpu_shard_sizes(proj.shape[1]) if shard_batch else None
        out, h, c = lstm_training.recurrence(proj, kernel, h0, c0, shard_sizes=sizes,
                                             forward=forward)
    else:
        out, h, c = _loop(proj, kernel, h0, c0)
    return (tf.reverse(out, [0]) if reverse else out), h, c


def _loop(proj, recurrent_kernel, h0, c0):
    """The plain while loop (what exports, evaluation and autodiff see)."""
    steps = tf.shape(proj)[0]
    inputs = tf.TensorArray(proj.dtype, size=steps).unstack(proj)
    outputs = tf.TensorArray(proj.dtype, size=steps)

    def body(t, h, c, outputs):
        gates = precision.add_product(inputs.read(t), h, recurrent_kernel)
        gi, gf, gc, go = tf.split(gates, 4, axis=-1)
        c = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gc)
        h = tf.sigmoid(go) * tf.tanh(c)
        return t + 1, h, c, outputs.write(t, h)

    # maximum_iterations lets XLA (train --jit_compile) differentiate the loop.
    _, h, c, outputs = tf.while_loop(lambda t, *_: t < steps, body, (0, h0, c0, outputs),
                                     maximum_iterations=steps)
    return outputs.stack(), h, c


def project(x_tm: tf.Tensor, kernel: tf.Tensor | keras.Variable,
            bias: tf.Tensor | keras.Variable) -> tf.Tensor:
    """[T, B, D] @ [D, 4u] + bias as one matmul over all steps."""
    shape = tf.shape(x_tm)
    flat = tf.reshape(x_tm, [-1, shape[-1]])
    proj = precision.matmul(flat, precision.compute(kernel)) + bias
    return tf.reshape(proj, tf.concat([shape[:-1], [tf.shape(proj)[-1]]], 0))


def gather_rows(kernel: tf.Tensor | keras.Variable, tokens: tf.Tensor) -> tf.Tensor:
    """one_hot(tokens) @ kernel as a gather; negative ids (no token) give zero rows."""
    rows = tf.gather(kernel, tf.maximum(tokens, 0))
    return rows * tf.cast(tokens >= 0, rows.dtype)[..., None]


class LSTMStack(keras.layers.Layer):
    """`len(units)` stacked LSTM layers; state is a list of (h, c) per layer."""

    def __init__(self, units: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.use_cudnn = True
        self.lstms = [
            keras.layers.LSTM(u, return_sequences=True, return_state=True, name=f"lstm_{i}")
            for i, u in enumerate(self.units)
        ]

    @property
    def state_size(self) -> int:
        """Total size of all (h, c) states, for a dense layer that initialises them."""
        return 2 * sum(self.units)

    def build(self, input_shape):
        """Builds every layer's weights from the input shape, before the first call."""
        shape = tuple(input_shape)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = shape[:-1] + (lstm.units,)

    def split_state(self, flat: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """[..., state_size] -> [(h, c)] per layer (Magenta's order: c then h per layer)."""
        sizes = [s for u in self.units for s in (u, u)]
        parts = tf.split(flat, sizes, axis=-1)
        return [(parts[2 * i + 1], parts[2 * i]) for i in range(len(self.units))]

    def zero_state(self, batch: tf.Tensor | int) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """All-zero (h, c) per layer, for runs that are given no initial state."""
        return [(tf.zeros(tf.stack([batch, u])), tf.zeros(tf.stack([batch, u])))
                for u in self.units]

    def call(self, inputs, initial_state=None, training=False):
        """inputs [B, T, D] -> outputs [B, T, units[-1]], final [(h, c)] per layer."""
        if self.use_cudnn and gpu_available():
            x, final = inputs, []
            for i, lstm in enumerate(self.lstms):
                state = None if initial_state is None else list(initial_state[i])
                x, h, c = lstm(x, initial_state=state, training=training)
                final.append((h, c))
            return x, final
        cell = self.lstms[0].cell
        proj = project(tf.transpose(inputs, [1, 0, 2]), cell.kernel, cell.bias)
        outputs, final = self.run(proj, initial_state, training=training)
        return tf.transpose(outputs, [1, 0, 2]), final

    def run(self, first_proj: tf.Tensor,
            initial_state: list[tuple[tf.Tensor, tf.Tensor]] | None = None,
            training: bool = False,
            forward: list[list[lstm_training.Activations]] | None = None
            ) -> tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]]:
        """Whole sequence from the first layer's precomputed input projection [T, B, 4u]
        (bias included). Returns time-major outputs [T, B, units[-1]] and final states.
        forward: per layer, the `lstm_training.Activations` of each batch shard, already
        computed on these inputs (training only; see `run_lstm`)."""
        if initial_state is None:
            initial_state = self.zero_state(tf.shape(first_proj)[1])
        proj, final = first_proj, []
        for i, lstm in enumerate(self.lstms):
            if i:
                proj = project(outputs, lstm.cell.kernel, lstm.cell.bias)
            outputs, h, c = run_lstm(proj, lstm.cell.recurrent_kernel, *initial_state[i],
                                     training=training, shard_batch=True,
                                     forward=None if forward is None else forward[i])
            final.append((h, c))
        return outputs, final

    # --- single steps, for autoregressive loops -------------------------------------------
    def input_kernels(self, one_hot_depth: int) -> tuple[tf.Tensor, tf.Tensor]:
        """First layer's kernel rows for the one-hot token part and the conditioning part."""
        kernel = self.lstms[0].cell.kernel
        return kernel[:one_hot_depth], kernel[one_hot_depth:]

    def project_condition(self, condition: tf.Tensor, one_hot_depth: int) -> tf.Tensor:
        """condition [..., E] -> the first layer's gate pre-activations from it, plus bias."""
        _, cond_kernel = self.input_kernels(one_hot_depth)
        return tf.linalg.matmul(condition, cond_kernel) + self.lstms[0].cell.bias

    def step_weights(self) -> tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]]:
        """The weights `step` needs, read once per decode instead of once per step: the first
        layer's recurrent kernel, and for deeper layers [kernel; recurrent_kernel] stacked so
        that each of them is one matmul on [x, h]."""
        first = precision.compute(self.lstms[0].cell.recurrent_kernel)
        deeper = [
            (precision.compute(tf.concat([lstm.cell.kernel, lstm.cell.recurrent_kernel], 0)),
             tf.convert_to_tensor(lstm.cell.bias)) for lstm in self.lstms[1:]]
        return first, deeper

    def step(self, first_proj: tf.Tensor, state: list[tuple[tf.Tensor, tf.Tensor]],
             weights: tuple[tf.Tensor, list[tuple[tf.Tensor, tf.Tensor]]] | None = None,
             with_gates: bool = False) -> tuple:
        """One step of the whole stack. first_proj: the first layer's input projection plus
        bias for this step ([B, 4u]); weights: `step_weights()`, computed once outside a loop.
        with_gates: also return each layer's activated gates i, f, g, o [B, 4u], what the
        training gradient keeps (`lstm_training.Activations`)."""
        first, deeper = weights or self.step_weights()
        new_state, gates_out = [], []
        for i, (h, c) in enumerate(state):
            if i == 0:
                gates = precision.add_product(first_proj, h, first)
            else:
                kernel, bias = deeper[i - 1]
                gates = precision.add_product(bias, tf.concat([x, h], -1), kernel)
            # One sigmoid over all four gates is cheaper here than four slices and four ops.
            gi, gf, _, go = tf.split(tf.sigmoid(gates), 4, axis=-1)
            units = self.units[i]
            gc = tf.tanh(gates[:, 2 * units:3 * units])
            c = gf * c + gi * gc
            x = go * tf.tanh(c)
            new_state.append((x, c))
            if with_gates:
                gates_out.append(tf.concat([gi, gf, gc, go], axis=-1))
        return (x, new_state, gates_out) if with_gates else (x, new_state)

    def set_use_cudnn(self, value: bool) -> None:
        """Exports for CPU servers and browsers must not bake in the GPU-only kernel."""
        self.use_cudnn = value
        for lstm in self.lstms:
            lstm.use_cudnn = value
