"""Tiny exported SavedModels whose weights are not the initial ones, for the tfjs and web tests."""
from __future__ import annotations

import zlib

import numpy as np

from hmvae_tf import export
from hmvae_tf.model.vae import MusicVAE
from model_helpers import tiny_config


def export_tiny(tmp_path, name: str = "cat-mel_2bar_small"):
    """(config, model, SavedModel path) of a tiny `name` exported under
    tmp_path/export/<name without its kind>; the weights are moved off their initial values
    (livelier, and values an unrestored model could not have by chance)."""
    config = tiny_config(name)
    model = MusicVAE(config)
    model.build()
    for w in model.weights:
        rng = np.random.default_rng(zlib.crc32(w.path.encode()))
        w.assign(w.numpy() + rng.normal(0, 0.3, w.shape))
    path = export.export_saved_model(model, str(tmp_path / "export" / name.split("-")[1]))
    return config, model, path
