"""run_lstm(training=True) (hand-written gradient, XLA loops) computes what the plain loop does."""
import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf.model.lstm import run_lstm


def _loss_and_grads(training, proj, kernel, h0, c0, reverse):
    weights = tf.random.stateless_normal(proj.shape[1:2] + kernel.shape[:1], seed=[3, 4])
    with tf.GradientTape() as tape:
        tape.watch([proj, kernel, h0, c0])
        outputs, h, c = run_lstm(proj, kernel, h0, c0, reverse=reverse, training=training)
        # Every output feeds the loss with its own weights, so no gradient term can cancel.
        loss = (tf.reduce_sum(outputs * weights) + 0.3 * tf.reduce_sum(h * weights[0])
                + 0.7 * tf.reduce_sum(tf.square(c)))
    return [outputs, h, c], tape.gradient(loss, [proj, kernel, h0, c0])


@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_and_gradients_match_autodiff(reverse):
    steps, batch, units = 7, 5, 6
    proj = tf.random.stateless_normal([steps, batch, 4 * units], seed=[0, 1])
    kernel = 0.5 * tf.random.stateless_normal([units, 4 * units], seed=[0, 2])
    h0 = 0.3 * tf.random.stateless_normal([batch, units], seed=[0, 3])
    c0 = 0.3 * tf.random.stateless_normal([batch, units], seed=[0, 4])
    want_out, want_grads = _loss_and_grads(False, proj, kernel, h0, c0, reverse)
    got_out, got_grads = _loss_and_grads(True, proj, kernel, h0, c0, reverse)
    for want, got in zip(want_out + want_grads, got_out + got_grads):
        assert float(tf.reduce_max(tf.abs(want))) > 1e-3  # the comparison is not of zeros
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_unused_outputs_get_zero_gradient():
    """A decoder uses only the outputs, an encoder only the final h: both must differentiate."""
    proj = tf.random.stateless_normal([4, 2, 8], seed=[1, 1])
    kernel = tf.random.stateless_normal([2, 8], seed=[1, 2])
    zeros = tf.zeros([2, 2])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([proj, kernel])
        outputs, h, _ = run_lstm(proj, kernel, zeros, zeros, training=True)
        want_outputs, want_h, _ = run_lstm(proj, kernel, zeros, zeros)
        only_h, want_only_h = tf.reduce_sum(h), tf.reduce_sum(want_h)
    got = tape.gradient(only_h, [proj, kernel])
    want = tape.gradient(want_only_h, [proj, kernel])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-6)


def test_only_training_takes_the_hand_written_gradient(monkeypatch):
    """The comparisons above go through run_lstm: make sure training=True really reaches
    lstm_training.recurrence (and that exports/evaluation, training=False, never do)."""
    from hmvae_tf.model import lstm_training

    calls = []
    real = lstm_training.recurrence
    monkeypatch.setattr(lstm_training, "recurrence",
                        lambda *args: calls.append(1) or real(*args))
    proj, kernel = tf.zeros([3, 2, 8]), tf.zeros([2, 8])
    zeros = tf.zeros([2, 2])
    run_lstm(proj, kernel, zeros, zeros)
    assert not calls
    run_lstm(proj, kernel, zeros, zeros, training=True)
    assert calls == [1]
