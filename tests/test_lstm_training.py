"""run_lstm(training=True) (hand-written gradient, XLA loops) computes what the plain loop does."""
import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf.model.lstm import run_lstm


def _loss_and_grads(training, proj, kernel, h0, c0, reverse, shard_batch=False):
    weights = tf.random.stateless_normal(proj.shape[1:2] + kernel.shape[:1], seed=[3, 4])
    with tf.GradientTape() as tape:
        tape.watch([proj, kernel, h0, c0])
        outputs, h, c = run_lstm(proj, kernel, h0, c0, reverse=reverse, training=training,
                                 shard_batch=shard_batch)
        # Every output feeds the loss with its own weights, so no gradient term can cancel.
        loss = (tf.reduce_sum(outputs * weights) + 0.3 * tf.reduce_sum(h * weights[0])
                + 0.7 * tf.reduce_sum(tf.square(c)))
    return [outputs, h, c], tape.gradient(loss, [proj, kernel, h0, c0])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shards", [None, [2, 3]])
def test_outputs_and_gradients_match_autodiff(monkeypatch, reverse, shards):
    """Also with the batch cut into shards (one compiled loop each, as on a multi-core CPU);
    the shards are forced here, so the test does not depend on this machine's cores."""
    from hmvae_tf.model import lstm, lstm_training

    loops = []
    real_forward = lstm_training._forward
    monkeypatch.setattr(lstm_training, "_forward",
                        lambda *args: loops.append(args[0].shape[1]) or real_forward(*args))
    if shards:
        monkeypatch.setattr(lstm, "cpu_shard_sizes", lambda batch: shards)
    steps, batch, units = 7, 5, 6
    proj = tf.random.stateless_normal([steps, batch, 4 * units], seed=[0, 1])
    kernel = 0.5 * tf.random.stateless_normal([units, 4 * units], seed=[0, 2])
    h0 = 0.3 * tf.random.stateless_normal([batch, units], seed=[0, 3])
    c0 = 0.3 * tf.random.stateless_normal([batch, units], seed=[0, 4])
    want_out, want_grads = _loss_and_grads(False, proj, kernel, h0, c0, reverse)
    got_out, got_grads = _loss_and_grads(True, proj, kernel, h0, c0, reverse,
                                         shard_batch=bool(shards))
    assert loops == (shards or [batch])
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
                        lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    proj, kernel = tf.zeros([3, 2, 8]), tf.zeros([2, 8])
    zeros = tf.zeros([2, 2])
    run_lstm(proj, kernel, zeros, zeros)
    assert not calls
    run_lstm(proj, kernel, zeros, zeros, training=True)
    assert calls == [1]


def test_cpu_shard_sizes_give_each_core_a_shard_of_enough_rows(monkeypatch):
    from hmvae_tf.model import lstm

    monkeypatch.setattr(lstm.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3},
                        raising=False)
    assert lstm.cpu_shard_sizes(512) == [128] * 4
    assert lstm.cpu_shard_sizes(100) == [34, 33, 33]  # 3 shards of >= 32 rows
    assert lstm.cpu_shard_sizes(63) == [63]
    assert lstm.cpu_shard_sizes(None) == [None]  # batch unknown when traced
    monkeypatch.setattr(lstm.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert lstm.cpu_shard_sizes(512) == [512]
