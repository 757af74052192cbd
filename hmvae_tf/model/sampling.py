"""Randomness for decoding: Gumbel-max token choice, per-row stateless seeds.

Sampling a token as argmax(logits / temperature + Gumbel noise) is exact categorical
sampling, and drawing all the noise before the decode loop lets the same loop run with
stateless per-row noise (served models: a row's result depends only on its own seed, never
on what else shares the batch) or with stateful noise (the browser, where TF.js has no
stateless random ops).
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import tensorflow as tf

_TINY = 1e-20


def gumbel(shape: tf.Tensor | Sequence[int]) -> tf.Tensor:
    """Gumbel(0, 1) noise from TF's stateful generator (RandomUniform)."""
    return _gumbel_from_uniform(tf.random.uniform(shape))


def gumbel_from_seeds(seeds: tf.Tensor, row_shape: Sequence[int]) -> tf.Tensor:
    """Gumbel noise [B, *row_shape]; row b depends only on seeds[b] (int32 [B, 2])."""
    uniform = tf.map_fn(lambda s: tf.random.stateless_uniform(row_shape, seed=s), seeds,
                        fn_output_signature=tf.TensorSpec(row_shape, tf.float32))
    return _gumbel_from_uniform(uniform)


def normal_from_seeds(seeds: tf.Tensor, size: int) -> tf.Tensor:
    """Standard normal [B, size]; row b depends only on seeds[b]."""
    return tf.map_fn(lambda s: tf.random.stateless_normal([size], seed=s), seeds,
                     fn_output_signature=tf.TensorSpec([size], tf.float32))  # [0, size] too


MAX_SEED = 2**31 - 1  # seeds travel as int32


def row_seeds(seed: int | tf.Tensor, rows: int | tf.Tensor, same: bool = False) -> tf.Tensor:
    """Per-row stateless seeds int32 [rows, 2]. An int s gives row i the seed (s, i), or
    with `same` (s, 0) for every row: the serving client's convention, so a Python call with
    seed s draws what the served signatures draw for it (serving.client.row_seeds is its
    numpy twin, for a client without TensorFlow). Seeds given per row pass through; a scalar
    tensor (a tf.function's argument, which does not retrace per seed) is the int s."""
    if not isinstance(seed, numbers.Integral):
        seed = tf.convert_to_tensor(seed)
        if not seed.dtype.is_integer:
            raise ValueError(f"seeds are integers, not {seed.dtype.name} values")
        if seed.shape.rank != 0:
            return tf.cast(seed, tf.int32)
    elif isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed is an int in 0 .. {MAX_SEED}, not {seed!r}")
    column = tf.zeros([rows], tf.int32) if same else tf.range(rows, dtype=tf.int32)
    return tf.stack([tf.fill([rows], tf.cast(seed, tf.int32)), column], -1)


def split_seeds(seeds: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Two independent per-row seeds [B, 2] from one: one for z, one for the tokens."""
    seeds = tf.cast(seeds, tf.int32)
    first = tf.stack([seeds[:, 0], seeds[:, 1] * 2], -1)
    second = tf.stack([seeds[:, 0], seeds[:, 1] * 2 + 1], -1)
    return first, second


def _gumbel_from_uniform(u: tf.Tensor) -> tf.Tensor:
    return -tf.math.log(-tf.math.log(u + _TINY) + _TINY)


def gumbel_chooser(noise: tf.Tensor, temperature: tf.Tensor,
                   track_classes: tuple[int, ...]) -> Callable:
    """Token choice for MusicDecoder.autoregress: Gumbel-max at a per-row temperature,
    argmax where the temperature is 0. noise: [B, T, sum(C_k)].

    Rows at temperature 0 get zero noise and unit scale, so one argmax serves every row.
    A step's noise can be read more than once (bars in parallel reads it every round; run
    eagerly, a TensorArray that clears after a read refused the second).
    """
    hot = temperature > 0
    inverse = tf.where(hot, 1.0 / tf.where(hot, temperature, 1.0), 1.0)[:, None]
    noise = tf.where(hot[:, None, None], noise, tf.zeros_like(noise))
    offsets = [sum(track_classes[:k]) for k in range(len(track_classes))]
    per_track = [
        tf.TensorArray(noise.dtype, size=tf.shape(noise)[1], clear_after_read=False).unstack(
            tf.transpose(noise[..., o:o + c], [1, 0, 2]))
        for o, c in zip(offsets, track_classes)]

    def choose(t, k, logits):
        return tf.argmax(logits * inverse + per_track[k].read(t), -1, output_type=tf.int32)

    return choose
