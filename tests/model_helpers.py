"""Tiny configs and synthetic-but-structured token data for fast model tests."""
from __future__ import annotations

import numpy as np

from hmvae_tf.configs import get_config

TINY = "enc_rnn_size=[24],dec_rnn_size=[16,16],z_size=8,batch_size=8"
TINY_HIER = "enc_rnn_size=[24],dec_rnn_size=[16],conductor_rnn_size=[16],z_size=8,batch_size=4"


def tiny_config(name: str = "cat-mel_2bar_small", extra: str = ""):
    base = TINY_HIER if name.startswith("hierdec") else TINY
    return get_config(name, ",".join(p for p in (base, extra) if p))


def scale_melodies(n: int, steps: int, seed: int = 0) -> np.ndarray:
    """[n, steps, 1] melodies: eighth-note runs up a major scale from a random root, so a
    model can learn them quickly and the tokens are valid melody ids."""
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    out = np.zeros((n, steps), np.int32)
    for i in range(n):
        root = rng.integers(48, 72)
        for s in range(0, steps, 2):
            out[i, s] = root + scale[(s // 2) % len(scale)] - 21 + 2
    return out[..., None]


def random_tokens(config, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, c, size=(n, config.num_steps)) for c in config.track_classes],
                    -1).astype(np.int32)
