"""Keras layers and the subclassed MusicVAE model. Reads tensors only: no MIDI, no TFDS."""
