"""q(z|x): a stacked bidirectional LSTM over the whole sequence, as a tfp distribution."""
from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from hmvae_tf.model.lstm import gather_rows, gpu_available, project, run_lstm

if TYPE_CHECKING:
    from collections.abc import Callable

    # direction(layer_index, reverse, x) -> (outputs [T, B, u], final h [B, u])
    Direction = Callable[[int, bool, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]

tfd = tfp.distributions


class BidirectionalLstmEncoder(keras.layers.Layer):
    """Reads token ids [B, T, K] (one-hot per track, tracks concatenated); the last layer's
    final forward and backward h go through two dense layers to give mu and
    sigma = softplus(dense) (not log-variance)."""

    def __init__(self, track_classes: tuple[int, ...], units: tuple[int, ...], z_size: int,
                 **kwargs):
        super().__init__(**kwargs)
        self.track_classes = tuple(track_classes)
        self.units = tuple(units)
        self.use_cudnn = True
        self.layers_ = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(u, return_sequences=i + 1 < len(units),
                                  return_state=i + 1 == len(units), name=f"lstm_{i}"),
                name=f"bilstm_{i}")
            for i, u in enumerate(self.units)
        ]
        init = keras.initializers.RandomNormal(stddev=0.001)
        self.mu = keras.layers.Dense(z_size, kernel_initializer=init, name="mu")
        self.sigma = keras.layers.Dense(z_size, activation="softplus",
                                        kernel_initializer=init, name="sigma")

    def build(self, input_shape):
        """Builds every layer's weights for tokens [B, T, K], before the first call."""
        shape = (input_shape[0], input_shape[1], sum(self.track_classes))
        for layer in self.layers_:
            layer.build(shape)
            shape = shape[:-1] + (2 * layer.forward_layer.units,)
        self.mu.build((shape[0], shape[-1]))
        self.sigma.build((shape[0], shape[-1]))

    def call(self, tokens, training=False) -> tfd.MultivariateNormalDiag:
        """q(z|x) for tokens [B, T, K]: Keras' LSTMs (cuDNN) on a GPU, `run_lstm` elsewhere."""
        if self.use_cudnn and gpu_available():
            features = self._keras_features(tokens, training)
        else:
            features = self.features_by_direction(
                tokens, lambda i, reverse, x: self.direction_pass(i, reverse, x, training))
        return self.posterior(features)

    def posterior(self, features: tf.Tensor) -> tfd.MultivariateNormalDiag:
        """q(z|x) from the last layer's final [h_fw, h_bw] [B, 2u]."""
        return tfd.MultivariateNormalDiag(loc=self.mu(features), scale_diag=self.sigma(features))

    def one_hot(self, tokens: tf.Tensor) -> tf.Tensor:
        """Tokens [..., K] -> the tracks' one-hot vectors concatenated, the Keras LSTMs' input."""
        return tf.concat([tf.one_hot(tokens[..., k], c) for k, c in enumerate(self.track_classes)],
                         axis=-1)

    def _keras_features(self, tokens, training):
        x = self.one_hot(tokens)
        for layer in self.layers_[:-1]:
            x = layer(x, training=training)
        _, h_fw, _, h_bw, _ = self.layers_[-1](x, training=training)
        return tf.concat([h_fw, h_bw], axis=-1)

    def features_by_direction(self, tokens: tf.Tensor, direction: Direction) -> tf.Tensor:
        """The last layer's final [h_fw, h_bw] [B, 2u] for tokens [B, T, K], the same function
        as the Keras layers, each direction of each layer computed by `direction(layer_index,
        reverse, x)` -> (outputs [T, B, u], final h): `direction_pass`, or in an XLA export a
        compiled call of it per direction, so that the session runs the two side by side."""
        x = tf.transpose(tokens, [1, 0, 2])
        for i in range(len(self.layers_)):
            (out_fw, h_fw), (out_bw, h_bw) = (direction(i, reverse, x)
                                              for reverse in (False, True))
            x = tf.concat([out_fw, out_bw], -1)
        return tf.concat([h_fw, h_bw], -1)

    def direction_pass(self, layer_index: int, reverse: bool, x: tf.Tensor,
                       training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """One direction of one layer over time-major x: token ids [T, B, K] for the first
        layer (its one-hot input is a row gather), the previous layer's outputs [T, B, 2u]
        after. Returns (outputs [T, B, u] in input order, final h [B, u])."""
        layer = self.layers_[layer_index]
        cell = (layer.backward_layer if reverse else layer.forward_layer).cell
        if layer_index == 0:
            proj, offset = cell.bias, 0
            for k, classes in enumerate(self.track_classes):
                proj = proj + gather_rows(cell.kernel[offset:offset + classes], x[..., k])
                offset += classes
        else:
            proj = project(x, cell.kernel, cell.bias)
        zeros = tf.zeros(tf.stack([tf.shape(x)[1], cell.units]))
        out, h, _ = run_lstm(proj, cell.recurrent_kernel, zeros, zeros, reverse=reverse,
                             training=training)
        return out, h

    def set_use_cudnn(self, value: bool) -> None:
        """False for exports: CPU servers and browsers have no GPU-only LSTM kernel."""
        self.use_cudnn = value
        for layer in self.layers_:
            layer.forward_layer.use_cudnn = value
            layer.backward_layer.use_cudnn = value
