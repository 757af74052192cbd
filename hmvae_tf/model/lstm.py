"""A stack of LSTM layers that runs whole sequences with Keras and single steps by hand.

Whole, teacher-forced sequences go through `keras.layers.LSTM` (cuDNN on a GPU, Keras' own
loop on a CPU). Autoregressive loops (sampling, scheduled sampling) need one step at a time
with the same weights; `step` does that with the cells' kernels directly so the constant part
of the first layer's input (the latent code or conductor embedding) is projected once per
sequence instead of once per step, and a one-hot token input is a row gather, not a matmul.
"""
from __future__ import annotations

import keras
import tensorflow as tf


class LSTMStack(keras.layers.Layer):
    """`len(units)` stacked LSTM layers; state is a list of (h, c) per layer."""

    def __init__(self, units: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.lstms = [
            keras.layers.LSTM(u, return_sequences=True, return_state=True, name=f"lstm_{i}")
            for i, u in enumerate(self.units)
        ]

    @property
    def state_size(self) -> int:
        """Total size of all (h, c) states, for a dense layer that initialises them."""
        return 2 * sum(self.units)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = shape[:-1] + (lstm.units,)

    def split_state(self, flat: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """[..., state_size] -> [(h, c)] per layer (Magenta's order: c then h per layer)."""
        sizes = [s for u in self.units for s in (u, u)]
        parts = tf.split(flat, sizes, axis=-1)
        return [(parts[2 * i + 1], parts[2 * i]) for i in range(len(self.units))]

    def call(self, inputs, initial_state=None, training=False):
        """inputs [B, T, D] -> outputs [B, T, units[-1]], final [(h, c)] per layer."""
        x = inputs
        final = []
        for i, lstm in enumerate(self.lstms):
            state = None if initial_state is None else list(initial_state[i])
            x, h, c = lstm(x, initial_state=state, training=training)
            final.append((h, c))
        return x, final

    # --- single steps, for autoregressive loops -------------------------------------------
    def input_kernels(self, one_hot_depth: int):
        """First layer's kernel rows for the one-hot token part and the conditioning part."""
        kernel = self.lstms[0].cell.kernel
        return kernel[:one_hot_depth], kernel[one_hot_depth:]

    def project_condition(self, condition: tf.Tensor, one_hot_depth: int) -> tf.Tensor:
        """condition [..., E] -> the first layer's gate pre-activations from it, plus bias."""
        _, cond_kernel = self.input_kernels(one_hot_depth)
        return tf.linalg.matmul(condition, cond_kernel) + self.lstms[0].cell.bias

    def step(self, token_rows: tf.Tensor, cond_proj: tf.Tensor, state):
        """One step. token_rows: the gathered kernel rows of the input token ([B, 4u], zeros
        for the start step); cond_proj: `project_condition` of this step's conditioning."""
        x = token_rows + cond_proj
        new_state = []
        for i, lstm in enumerate(self.lstms):
            cell = lstm.cell
            h, c = state[i]
            if i == 0:
                gates = x + tf.linalg.matmul(h, cell.recurrent_kernel)
            else:
                gates = (tf.linalg.matmul(x, cell.kernel)
                         + tf.linalg.matmul(h, cell.recurrent_kernel) + cell.bias)
            gi, gf, gc, go = tf.split(gates, 4, axis=-1)
            c = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gc)
            h = tf.sigmoid(go) * tf.tanh(c)
            new_state.append((h, c))
            x = h
        return x, new_state

    def set_use_cudnn(self, value) -> None:
        """Exports for CPU servers and browsers must not bake in the GPU-only kernel."""
        for lstm in self.lstms:
            lstm.use_cudnn = value
