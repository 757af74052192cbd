"""q(z|x): a stacked bidirectional LSTM over the whole sequence, as a tfp distribution."""
from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class BidirectionalLstmEncoder(keras.layers.Layer):
    """Reads one-hot tokens [B, T, D]; the last layer's final forward and backward h go
    through two dense layers to give mu and sigma = softplus(dense) (not log-variance)."""

    def __init__(self, units: tuple[int, ...], z_size: int, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.layers_ = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(u, return_sequences=i + 1 < len(units),
                                  return_state=i + 1 == len(units)),
                name=f"bilstm_{i}")
            for i, u in enumerate(self.units)
        ]
        init = keras.initializers.RandomNormal(stddev=0.001)
        self.mu = keras.layers.Dense(z_size, kernel_initializer=init, name="mu")
        self.sigma = keras.layers.Dense(z_size, activation="softplus",
                                        kernel_initializer=init, name="sigma")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers_:
            layer.build(shape)
            shape = shape[:-1] + (2 * layer.forward_layer.units,)
        self.mu.build((shape[0], shape[-1]))
        self.sigma.build((shape[0], shape[-1]))

    def call(self, inputs, training=False) -> tfd.MultivariateNormalDiag:
        x = inputs
        for layer in self.layers_[:-1]:
            x = layer(x, training=training)
        _, h_fw, _, h_bw, _ = self.layers_[-1](x, training=training)
        features = tf.concat([h_fw, h_bw], axis=-1)
        return tfd.MultivariateNormalDiag(loc=self.mu(features), scale_diag=self.sigma(features))

    def set_use_cudnn(self, value) -> None:
        for layer in self.layers_:
            layer.forward_layer.use_cudnn = value
            layer.backward_layer.use_cudnn = value
