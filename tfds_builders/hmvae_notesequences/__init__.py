"""TFDS builder for hmvae_notesequences (see hmvae_notesequences_dataset_builder.py)."""
from .hmvae_notesequences_dataset_builder import Builder  # noqa: F401
