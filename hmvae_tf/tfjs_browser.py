"""The functions `hmvae tfjs` converts for the browser, traced from an exported model.

The served SavedModel draws its randomness from per-row stateless seeds, which TF.js lacks:
here the model is rebuilt from the SavedModel (export.load_model) and each graph of the
page (sample, decode, encode, interpolate) is traced anew, drawing z and the Gumbel noise
with the stateful random ops TF.js has and carrying no Assert ops.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

    from hmvae_tf.model.vae import MusicVAE

GRAPHS = ("sample", "decode", "encode", "interpolate")


def load_exported_model(saved_model_dir: str) -> tuple[MusicVAE, dict]:
    """(MusicVAE with the SavedModel's weights, the export's metadata dict)."""
    from hmvae_tf.export import load_model
    from hmvae_tf.export_options import read_metadata

    meta = read_metadata(saved_model_dir)
    model = load_model(saved_model_dir)
    # As in export: never bake the GPU-only LSTM kernel into a graph.
    model.set_use_cudnn(False)
    return model, meta


def browser_module(model: MusicVAE) -> tf.Module:
    """A tf.Module whose functions use only TF.js-supported ops (stateful randomness)."""
    import tensorflow as tf

    from hmvae_tf.model.vae import slerp

    tracks = model.config.tracks

    class BrowserModule(tf.Module):
        def __init__(self):
            super().__init__(name="hmvae_browser")
            self.model = model

        def _stack(self, inputs, suffix=""):
            return tf.stack([inputs[t + suffix] for t in tracks], axis=-1)

        def _unstack(self, tokens):
            return {t: tokens[..., k] for k, t in enumerate(tracks)}

        def sample(self, temperature):
            batch = tf.shape(temperature)[0]
            z = tf.random.normal(tf.stack([batch, model.config.z_size]))
            return {**self._unstack(model.decode(z, temperature)), "z": z}

        def decode(self, z, temperature):
            return self._unstack(model.decode(z, temperature))

        def encode(self, **inputs):
            q = model.encode(self._stack(inputs))
            mu, sigma = q.mean(), q.stddev()
            return {"z": mu + sigma * tf.random.normal(tf.shape(mu)), "mu": mu, "sigma": sigma}

        def interpolate(self, **inputs):
            # a and b may be single rows (broadcast over alpha's rows): the page then encodes
            # each once instead of once per step.
            a, b = self._stack(inputs, "_a"), self._stack(inputs, "_b")
            n = tf.shape(a)[0]
            mus = model.encode(tf.concat([a, b], 0)).mean()
            rows = tf.stack([tf.shape(inputs["alpha"])[0], model.config.z_size])
            z = slerp(tf.broadcast_to(mus[:n], rows), tf.broadcast_to(mus[n:], rows),
                      inputs["alpha"])
            return {**self._unstack(model.decode(z, inputs["temperature"])), "z": z}

    return BrowserModule()


def concrete_functions(module: tf.Module, graphs: Sequence[str] = GRAPHS) -> dict:
    """The browser functions traced at the model's window and latent sizes (batch left open)."""
    import tensorflow as tf

    config = module.model.config
    T, Z = config.num_steps, config.z_size
    rows = tf.TensorSpec([None], tf.float32)
    track = tf.TensorSpec([None, T], tf.int32)
    specs = {
        "sample": dict(temperature=rows),
        "decode": dict(z=tf.TensorSpec([None, Z], tf.float32), temperature=rows),
        "encode": {t: track for t in config.tracks},
        "interpolate": dict(**{t + "_a": track for t in config.tracks},
                            **{t + "_b": track for t in config.tracks},
                            alpha=rows, temperature=rows),
    }
    fns = {}
    for name in graphs:
        named = {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in specs[name].items()}
        fns[name] = tf.function(getattr(module, name)).get_concrete_function(**named)
    return fns
