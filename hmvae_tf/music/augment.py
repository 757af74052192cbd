"""Transposition augmentation of token tensors inside tf.data (TensorFlow ops only).

Melody and bass pitch tokens (2..89) move by k semitones; no-event (0) and note-off (1) stay,
drums never move, and a trio's melody and bass move by the same k. Works on one window
([T] or [T, 3]) and on batches ([B, T] or [B, T, 3], one k per example).

Deviation from Magenta, on purpose: Magenta draws k uniformly in [-5, 5] and drops the notes
that leave MIDI 21..108. We draw k uniformly from the shifts that keep every note of the
window in range (the intersection of [-max_shift, max_shift] with what the window allows), so
an augmented window never loses notes or turns into a different rhythm.
"""
from __future__ import annotations


import tensorflow as tf

FIRST_PITCH_TOKEN = 2
LAST_PITCH_TOKEN = 89


def _melodic(tokens: tf.Tensor, representation: str) -> tuple[tf.Tensor, list[int]]:
    """The transposable part and the axes that make one example of it."""
    if representation == "melody":
        return tokens, [-1]
    if representation == "trio":
        return tokens[..., :2], [-2, -1]
    raise ValueError(f"cannot transpose representation {representation!r}")


def shift_range(tokens: tf.Tensor, representation: str = "melody", max_shift: int = 5
                ) -> tuple[tf.Tensor, tf.Tensor]:
    """(lo, hi) per example: the shifts in [-max_shift, max_shift] keeping notes in range."""
    mel, axes = _melodic(tf.convert_to_tensor(tokens), representation)
    is_pitch = mel >= FIRST_PITCH_TOKEN
    low = tf.reduce_min(tf.where(is_pitch, mel, LAST_PITCH_TOKEN), axis=axes)
    high = tf.reduce_max(tf.where(is_pitch, mel, FIRST_PITCH_TOKEN), axis=axes)
    lo = tf.maximum(-max_shift, FIRST_PITCH_TOKEN - low)
    hi = tf.minimum(max_shift, LAST_PITCH_TOKEN - high)
    return lo, hi


def transpose(tokens: tf.Tensor, shift: tf.Tensor | int, representation: str = "melody"
              ) -> tf.Tensor:
    """Adds `shift` (scalar or one per example) to the pitch tokens; drums are returned as is.

    The caller keeps notes in range (see shift_range); values are clipped to 2..89 anyway.
    """
    tokens = tf.convert_to_tensor(tokens)
    if representation == "drums":
        return tokens
    mel, axes = _melodic(tokens, representation)
    shift = tf.cast(shift, mel.dtype)
    for _ in axes:
        shift = shift[..., tf.newaxis] if shift.shape.rank else shift
    moved = tf.clip_by_value(mel + shift, FIRST_PITCH_TOKEN, LAST_PITCH_TOKEN)
    mel = tf.where(mel >= FIRST_PITCH_TOKEN, moved, mel)
    if representation == "trio":
        return tf.concat([mel, tokens[..., 2:]], axis=-1)
    return mel


def random_transpose(tokens: tf.Tensor, representation: str = "melody", max_shift: int = 5,
                     seed: tf.Tensor | None = None) -> tf.Tensor:
    """Transposes each example by k ~ Uniform{shifts keeping its notes in 21..108}.

    `seed` (int32/int64 [2]) makes it stateless and reproducible; otherwise tf.random is used.
    """
    tokens = tf.convert_to_tensor(tokens)
    if representation == "drums" or max_shift <= 0:
        return tokens
    lo, hi = shift_range(tokens, representation, max_shift)
    shape = tf.shape(lo)
    if seed is None:
        u = tf.random.uniform(shape, dtype=tf.float32)
    else:
        u = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)
    span = tf.cast(hi - lo + 1, tf.float32)
    k = lo + tf.cast(tf.floor(u * span), lo.dtype)
    k = tf.minimum(k, hi)
    return transpose(tokens, k, representation)

