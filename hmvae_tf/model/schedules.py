"""The paper's schedules, all functions of the global step (the optimizer's iteration count)."""
from __future__ import annotations

import keras
import tensorflow as tf


def kl_beta(step: tf.Tensor | keras.Variable | int, max_beta: float, beta_rate: float
            ) -> tf.Tensor:
    """beta = (1 - beta_rate^step) * max_beta: the KL weight anneals from 0 to max_beta."""
    # float64: 0.99999 is not exact in float32, and its 100,000th power is off by 0.1%.
    step = tf.cast(step, tf.float64)
    beta = (1.0 - tf.pow(tf.constant(beta_rate, tf.float64), step)) * max_beta
    return tf.cast(beta, tf.float32)


def sampling_probability(step: tf.Tensor | keras.Variable | int, schedule: str, rate: float
                         ) -> tf.Tensor:
    """Probability that a decoder input is the model's own sample, not the target.

    inverse_sigmoid with rate k: 1 - k / (k + exp(step / k)); constant: `rate`.
    """
    if schedule == "constant":
        return tf.constant(rate, tf.float32)
    k = tf.constant(rate, tf.float32)
    step = tf.cast(step, tf.float32)
    # exp overflows to inf for very large steps; 1 - k / inf = 1, which is the right limit.
    return 1.0 - k / (k + tf.exp(step / k))


@keras.saving.register_keras_serializable(package="hmvae")
class ExponentialDecayToFloor(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = (initial - floor) * decay_rate^step + floor (Magenta's schedule)."""

    def __init__(self, initial: float, decay_rate: float, floor: float):
        self.initial = initial
        self.decay_rate = decay_rate
        self.floor = floor

    def __call__(self, step):
        step = tf.cast(step, tf.float64)
        decay = tf.pow(tf.constant(self.decay_rate, tf.float64), step)
        return tf.cast((self.initial - self.floor) * decay + self.floor, tf.float32)

    def get_config(self) -> dict[str, float]:
        """The constructor's arguments, so a saved optimizer can rebuild the schedule."""
        return {"initial": self.initial, "decay_rate": self.decay_rate, "floor": self.floor}


class ScheduleValue(keras.metrics.Metric):
    """A schedule's value at the latest step, as a Keras metric: fit logs it beside the losses
    (progress bar, history.csv, TensorBoard), but as it stands at the period's last step, where
    a Mean tracker logged its mean over the period, which lags a schedule that moves."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        # Every replica holds the same value; read across them, it stays that value.
        self.value = self.add_variable(shape=(), initializer="zeros", aggregation="mean",
                                       name="value")

    def update_state(self, value: tf.Tensor | float) -> None:
        self.value.assign(tf.cast(value, self.dtype))

    def result(self) -> tf.Tensor:
        # A copy: fit keeps an epoch's results while validation resets the metrics, and a
        # converted variable would still read its later value.
        return tf.identity(self.value)
