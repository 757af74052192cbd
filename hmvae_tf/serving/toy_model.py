"""A tiny SavedModel with the exact serving contract of BUILD.md, for tests and benchmarks.

It is not MusicVAE: weights are random and nothing is trained. It has what the serving code
must handle, though: the five signatures (plus `serving_default`), tokens named per track,
batch-major inputs, an autoregressive LSTM decoder that runs a `while` loop over the T steps
(so a call has a fixed cost that batching amortises, like the real sampler; `dec_sizes=(256, 256)`
gives cat-mel_2bar_small's decoder shape), stateless per-row randomness (the
same row and seed give the same result whatever else is in the batch), and graph-side checks
that turn bad values (token out of range, negative temperature) into INVALID_ARGUMENT.

    python -m hmvae_tf.serving.toy_model --export_base=/tmp/models/mel --version=1
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from hmvae_tf.configs import TRACK_CLASSES


def _rows(fn, seeds, dtype=tf.float32):
    """Applies fn(seed[2]) to every row's seed: one independent stream per row."""
    return tf.map_fn(fn, seeds, fn_output_signature=dtype)


class ToyMusicVAE(tf.Module):
    """hidden: encoder width; dec_sizes: decoder LSTM layer sizes."""

    def __init__(self, tracks=("melody",), num_steps=32, z_size=8, hidden=32, init_seed=0,
                 dec_sizes=(32,)):
        super().__init__()
        self.tracks = tuple(tracks)
        self.classes = tuple(TRACK_CLASSES[t] for t in self.tracks)
        self.num_steps, self.z_size, self.hidden = num_steps, z_size, hidden
        self.dec_sizes = tuple(dec_sizes)
        rng = np.random.default_rng(init_seed)

        def var(*shape, scale=1.0):
            return tf.Variable(rng.normal(0, scale / np.sqrt(shape[0]), shape).astype(np.float32))

        self.enc_in = [var(c, hidden) for c in self.classes]
        self.enc_pos = [var(c, hidden) for c in self.classes]
        self.enc_mu = var(hidden, z_size, scale=2.0)
        self.enc_sigma = var(hidden, z_size)
        # Decoder: LSTM layers; layer 0 reads [previous tokens one-hot | z]; initial states
        # tanh(dense(z)) as in MusicVAE.
        self.dec_init = [var(z_size, 2 * n) for n in self.dec_sizes]
        sizes_in = [sum(self.classes) + z_size, *self.dec_sizes[:-1]]
        self.dec_kernel = [var(i + n, 4 * n) for i, n in zip(sizes_in, self.dec_sizes)]
        self.dec_bias = [tf.Variable(np.zeros(4 * n, np.float32)) for n in self.dec_sizes]
        self.dec_out = [var(self.dec_sizes[-1], c, scale=4.0) for c in self.classes]

        T, Z = num_steps, z_size
        tok = {t: tf.TensorSpec([None, T], tf.int32, name=t) for t in self.tracks}
        tok_a = {t: tf.TensorSpec([None, T], tf.int32, name=f"{t}_a") for t in self.tracks}
        tok_b = {t: tf.TensorSpec([None, T], tf.int32, name=f"{t}_b") for t in self.tracks}
        temp = tf.TensorSpec([None], tf.float32, name="temperature")
        seed = tf.TensorSpec([None, 2], tf.int32, name="seed")
        zspec = tf.TensorSpec([None, Z], tf.float32, name="z")
        alpha = tf.TensorSpec([None], tf.float32, name="alpha")
        self.sample = tf.function(self._sample, input_signature=[temp, seed])
        self.decode = tf.function(self._decode_sig, input_signature=[zspec, temp, seed])
        self.encode = tf.function(self._encode_sig, input_signature=[tok, seed])
        self.reconstruct = tf.function(self._reconstruct, input_signature=[tok, temp, seed])
        self.interpolate = tf.function(
            self._interpolate, input_signature=[tok_a, tok_b, alpha, temp, seed])

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        """Signature name -> function, as tf.saved_model.save takes them (the serving contract)."""
        return {"serving_default": self.sample, "sample": self.sample, "decode": self.decode,
                "encode": self.encode, "reconstruct": self.reconstruct,
                "interpolate": self.interpolate}

    # --- pieces ---------------------------------------------------------------------------
    def _mu_sigma(self, tokens):
        T = self.num_steps
        pos = tf.linspace(-1.0, 1.0, T)[None, :, None]
        h = 0.0
        for track, c, w_in, w_pos in zip(self.tracks, self.classes, self.enc_in, self.enc_pos):
            x = tokens[track]
            tf.debugging.assert_non_negative(x, message=f"{track} tokens must be >= 0")
            tf.debugging.assert_less(x, c, message=f"{track} tokens must be < {c}")
            emb = tf.einsum("btc,ch->bth", tf.one_hot(x, c), w_in)
            emb_pos = tf.einsum("btc,ch->bth", tf.one_hot(x, c), w_pos)
            h += tf.reduce_mean(emb, axis=1) + tf.reduce_mean(pos * emb_pos, axis=1)
        h = tf.tanh(h)
        return h @ self.enc_mu, tf.nn.softplus(h @ self.enc_sigma)

    def _decode(self, z, temperature, seed):
        tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0")
        T = self.num_steps
        total = sum(self.classes)
        u = _rows(lambda s: tf.random.stateless_uniform([T, total], s, 1e-6, 1.0 - 1e-6), seed)
        gumbel = -tf.math.log(-tf.math.log(u))
        gumbels = tf.split(gumbel, self.classes, axis=-1)
        batch = tf.shape(z)[0]
        temp = temperature[:, None]
        states = []
        for w, n in zip(self.dec_init, self.dec_sizes):
            h, c = tf.split(tf.tanh(z @ w), 2, axis=-1)
            states.append((h, c))
        prev = tf.zeros([batch, sum(self.classes)])
        outs = [tf.TensorArray(tf.int32, size=T) for _ in self.classes]
        for t in tf.range(T):
            x = tf.concat([prev, z], axis=-1)
            new_states = []
            for (h, c), kernel, bias in zip(states, self.dec_kernel, self.dec_bias):
                i, f, g, o = tf.split(tf.concat([x, h], -1) @ kernel + bias, 4, axis=-1)
                c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                new_states.append((h, c))
                x = h
            states = new_states
            new_prev, new_outs = [], []
            for i, (w, c) in enumerate(zip(self.dec_out, self.classes)):
                logits = x @ w
                noisy = logits / tf.maximum(temp, 1e-6) + gumbels[i][:, t, :]
                token = tf.where(temperature > 0, tf.argmax(noisy, -1, output_type=tf.int32),
                                 tf.argmax(logits, -1, output_type=tf.int32))
                new_outs.append(outs[i].write(t, token))
                new_prev.append(tf.one_hot(token, c))
            prev, outs = tf.concat(new_prev, -1), new_outs
        return {track: tf.transpose(o.stack()) for track, o in zip(self.tracks, outs)}

    # --- signatures ------------------------------------------------------------------------
    def _sample(self, temperature, seed):
        z = _rows(lambda s: tf.random.stateless_normal([self.z_size], s), seed)
        dec_seed = _rows(lambda s: tf.random.experimental.stateless_fold_in(s, 1), seed, tf.int32)
        out = self._decode(z, temperature, dec_seed)
        out["z"] = z
        return out

    def _decode_sig(self, z, temperature, seed):
        return self._decode(z, temperature, seed)

    def _encode_sig(self, tokens, seed):
        mu, sigma = self._mu_sigma(tokens)
        eps = _rows(lambda s: tf.random.stateless_normal([self.z_size], s), seed)
        return {"z": mu + sigma * eps, "mu": mu, "sigma": sigma}

    def _reconstruct(self, tokens, temperature, seed):
        mu, _ = self._mu_sigma(tokens)
        out = self._decode(mu, temperature, seed)
        out["z"] = mu
        return out

    def _interpolate(self, tokens_a, tokens_b, alpha, temperature, seed):
        mu_a, _ = self._mu_sigma(tokens_a)
        mu_b, _ = self._mu_sigma(tokens_b)
        z = slerp(mu_a, mu_b, alpha)
        out = self._decode(z, temperature, seed)
        out["z"] = z
        return out


def slerp(a: tf.Tensor, b: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """Spherical interpolation per row; linear where a and b are (anti)parallel."""
    an = a / tf.maximum(tf.norm(a, axis=-1, keepdims=True), 1e-12)
    bn = b / tf.maximum(tf.norm(b, axis=-1, keepdims=True), 1e-12)
    omega = tf.acos(tf.clip_by_value(tf.reduce_sum(an * bn, -1, keepdims=True), -1.0, 1.0))
    so = tf.sin(omega)
    t = alpha[:, None]
    safe = so > 1e-6
    so1 = tf.where(safe, so, 1.0)
    wa = tf.where(safe, tf.sin((1.0 - t) * omega) / so1, 1.0 - t)
    wb = tf.where(safe, tf.sin(t * omega) / so1, t)
    return wa * a + wb * b


def build_toy_saved_model(export_dir: str, tracks: Sequence[str] = ("melody",),
                          num_steps: int = 32, z_size: int = 8, hidden: int = 32,
                          init_seed: int = 0, dec_sizes: Sequence[int] = (32,)) -> str:
    """Writes the toy model as a SavedModel at export_dir (e.g. <base>/models/mel/1)."""
    module = ToyMusicVAE(tracks, num_steps, z_size, hidden, init_seed, dec_sizes)
    tf.saved_model.save(module, export_dir, signatures=module.signatures())
    return export_dir


def main(argv: list[str] | None = None) -> int:
    """Writes one toy model version under --export_base, for tests and benchmarks."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--export_base", required=True, help="model base path; writes <base>/<version>/")
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--tracks", default="melody", help="comma-separated: melody,bass,drums")
    p.add_argument("--num_steps", type=int, default=32)
    p.add_argument("--z_size", type=int, default=8)
    p.add_argument("--init_seed", type=int, default=0)
    p.add_argument("--dec_sizes", default="32", help="decoder LSTM sizes, e.g. 256,256")
    a = p.parse_args(argv)
    out = build_toy_saved_model(os.path.join(a.export_base, str(a.version)),
                                tuple(a.tracks.split(",")), a.num_steps, a.z_size,
                                init_seed=a.init_seed,
                                dec_sizes=tuple(int(n) for n in a.dec_sizes.split(",")))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
