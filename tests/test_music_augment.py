"""Transposition augmentation inside tf.data."""
import numpy as np
import tensorflow as tf

from hmvae_tf.music import augment


def test_shift_keeps_notes_in_range_and_events():
    tokens = np.zeros(32, np.int32)
    tokens[[0, 4, 8]] = [87, 2, 50]   # MIDI 106, 21, 69
    tokens[12] = 1
    lo, hi = augment.shift_range(tokens, "melody", 5)
    assert (int(lo), int(hi)) == (0, 2)
    seen = set()
    for i in range(60):
        out = augment.random_transpose(tokens, "melody", 5, seed=tf.constant([i, 7])).numpy()
        k = int(out[8] - tokens[8])
        seen.add(k)
        np.testing.assert_array_equal(out[[0, 4, 8]], tokens[[0, 4, 8]] + k)
        assert out[12] == 1 and (out[[1, 2, 3, 13]] == 0).all()
    assert seen == {0, 1, 2}


def test_batch_gets_one_shift_per_example_and_full_range():
    batch = np.zeros((64, 32), np.int32)
    batch[:, 0] = 50
    batch[:, 5] = 60
    out = augment.random_transpose(tf.constant(batch), "melody", 5).numpy()
    k = out[:, 0] - 50
    np.testing.assert_array_equal(out[:, 5] - 60, k)
    assert set(k.tolist()) <= set(range(-5, 6)) and len(set(k.tolist())) > 5


def test_trio_moves_melody_and_bass_together_never_drums():
    t = np.zeros((2, 256, 3), np.int32)
    t[:, 0, 0], t[:, 0, 1], t[:, 0, 2] = 60, 20, 37
    t[:, 16, 2] = 5
    out = augment.random_transpose(t, "trio", 5, seed=tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(out[:, 0, 0] - 60, out[:, 0, 1] - 20)
    np.testing.assert_array_equal(out[..., 2], t[..., 2])
    drums = np.arange(32, dtype=np.int32)
    np.testing.assert_array_equal(augment.random_transpose(drums, "drums").numpy(), drums)


def test_works_in_dataset_map():
    ds = tf.data.Dataset.from_tensor_slices(np.full((8, 32), 40, np.int32)).batch(4)
    ds = ds.map(lambda tokens: augment.random_transpose(tokens, "melody", 5))
    for batch in ds:
        assert batch.shape == (4, 32) and ((batch >= 35) & (batch <= 45)).numpy().all()
