"""Prepared hmvae_notesequences datasets written without the real builder (which builds only
the code's version from real music): any version, any splits, any build metadata."""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from model_helpers import scale_melodies


def write_mel_2bar(data_dir, version: str, n: int = 16, splits: tuple = ("train",),
                   metadata: dict | None = None) -> None:
    """An hmvae_notesequences/mel_2bar of `n` scale windows per split at `version`, with
    `metadata` as its build metadata, as `tfds build` of that version would leave it."""

    class HmvaeNotesequences(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(version)
        BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="mel_2bar")]

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self, metadata=tfds.core.MetadataDict(metadata or {}),
                features=tfds.features.FeaturesDict({
                    "tokens": tfds.features.Tensor(shape=(32,), dtype=np.int32),
                    "piece_id": tfds.features.Text(),
                    "start_bar": tfds.features.Scalar(dtype=np.int32)}))

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(split) for split in splits}

        def _generate_examples(self, split):
            for i, tokens in enumerate(scale_melodies(n, 32, seed=len(split))[..., 0]):
                yield i, {"tokens": tokens, "piece_id": f"{split}/piece{i}", "start_bar": 0}

    HmvaeNotesequences(config="mel_2bar", data_dir=str(data_dir)).download_and_prepare()
