"""`hmvae export`: a trained model as a versioned SavedModel with the serving signatures.

The signature set and its tensors are the serving contract in BUILD.md: every input is
batch-major (so TF Serving's request batching can merge calls), tokens are one tensor per
track, and randomness comes from per-row stateless seeds, so a call is reproducible and a
row's result never depends on its batch-mates. The export is written beside its final
place and renamed into `<export_base>/<version>/` only when complete, so a server watching
the base path never loads half a model.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import time

import tensorflow as tf

from hmvae_tf.configs import STEPS_PER_BAR
# The contract's names and the defaults live with the command line, which loads no TensorFlow.
from hmvae_tf.export_options import (CONFIG_ASSET, MIN_SHARD_ROWS, PARALLEL_BARS_MIN_BYTES,
                                     PARALLEL_BARS_ROWS, SIGNATURES, XLA_DECODE_SHARDS,
                                     read_config, resolve_saved_model, temporary_folder)
from hmvae_tf.model import precision, sampling
from hmvae_tf.model.vae import MusicVAE, slerp
from hmvae_tf.progress import Progress


class ServingModule:
    """The functions behind the signatures, over a trained MusicVAE.

    Deliberately not a tf.Module holding the Keras model: see `saveable_root`.

    With jit_compile, XLA compiles only the numeric core (the posterior's moments, and the
    decoder given its noise). The input checks and the seeded noise stay outside it, for two
    reasons: XLA drops Assert ops, so a compiled signature would accept a negative temperature,
    out-of-range token ids or a NaN z without a word; and XLA derives its own stream from a
    stateless seed, so the same seed would give other melodies than the plain export.

    With decode_shards > 1, a request of at least decode_shards x MIN_SHARD_ROWS rows is
    decoded in that many independent pieces, which the session's inter-op pool runs at once
    (rows never depend on their batch-mates, so the melodies are the same). Measured on 2
    cores, XLA export of the 2-bar model, session path, side by side: at one intra-op thread
    (`hmvae serve --tensorflow_intra_op_parallelism=1`), where a single loop leaves a core
    idle, 1.6-2.0x at 32-128 rows; at TF's default threads 1.07-1.43x at 64 rows (five runs),
    where XLA's own threading of the small products pays less than two single-core loops,
    within 4 % at 32, 48, 96 and 128 rows, 7 % at 256. Once each encoder direction was its
    own compiled call, smaller requests gained too at TF's default threads (interleaved in one
    process, three runs): 8 rows 1.03-1.08x, 12 rows 1.16-1.26x, 16 rows 1.22-1.29x, 24 rows
    1.09-1.24x, so MIN_SHARD_ROWS went from 16 to 4. The plain export gained nothing at the
    default threads (64 and 128 rows), so only the XLA export shards by default.

    With parallel_bars_rows > 0 (hierarchical models), a request of at most that many rows is
    decoded with every bar at once (`MusicDecoder.autoregress_bars_in_parallel`): the same
    melodies, in a few batched passes over the bars instead of one pass per step.
    """

    def __init__(self, model: MusicVAE, jit_compile: bool = False, decode_shards: int = 1,
                 parallel_bars_rows: int = 0):
        if decode_shards < 1:
            raise ValueError(f"decode_shards must be >= 1, not {decode_shards}")
        if parallel_bars_rows < 0:
            raise ValueError(f"parallel_bars_rows must be >= 0, not {parallel_bars_rows}")
        self.model = model
        self.config = model.config
        self.tracks = model.config.tracks
        self.decode_shards = decode_shards
        self.parallel_bars_rows = self.bars_rows_for(model, parallel_bars_rows)
        compiled = (lambda fn: tf.function(fn, jit_compile=True)) if jit_compile else (
            lambda fn: fn)
        if jit_compile:
            # One compiled call per encoder direction: XLA runs a loop on one core, and two
            # calls let the session's inter-op pool run the directions side by side.
            self._direction = compiled(model.encoder.direction_pass)
            self._posterior = self._posterior_by_direction
        else:
            self._posterior = self._posterior_moments
        # Both are called with noise=, never with seed=.
        self._decode = compiled(model.decode)
        self._decode_bars = compiled(functools.partial(model.decode, bars_in_parallel=True))

    @staticmethod
    def bars_rows_for(model: MusicVAE, parallel_bars_rows: int) -> int:
        """parallel_bars_rows as it applies to the model: 0 for a flat decoder."""
        return parallel_bars_rows if model.decoder.hierarchical else 0

    # --- helpers ------------------------------------------------------------------------
    def _stack(self, inputs: dict, suffix: str = "") -> tf.Tensor:
        tokens = tf.stack([inputs[t + suffix] for t in self.tracks], axis=-1)
        for k, (track, classes) in enumerate(zip(self.tracks, self.model.track_classes)):
            tf.debugging.assert_less(
                tokens[..., k], classes, message=f"{track} token ids must be < {classes}")
            tf.debugging.assert_non_negative(tokens[..., k],
                                             message=f"{track} token ids must be >= 0")
        return tokens

    def _unstack(self, tokens: tf.Tensor) -> dict:
        return {t: tokens[..., k] for k, t in enumerate(self.tracks)}

    def _posterior_moments(self, tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        q = self.model.encode(tokens)
        return q.mean(), q.stddev()

    def _posterior_by_direction(self, tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`_posterior_moments` with each encoder direction one compiled call (XLA export)."""
        encoder = self.model.encoder
        q = encoder.posterior(encoder.features_by_direction(tokens, self._direction))
        return q.mean(), q.stddev()

    def _decode_seeded(self, z: tf.Tensor, temperature: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """model.decode(z, temperature, seed=seed), with the noise drawn outside XLA."""
        noise = sampling.gumbel_from_seeds(seed, self.model.noise_shape)
        if not self.parallel_bars_rows:
            return self._decode_rows(z, temperature, noise)
        return tf.cond(tf.shape(z)[0] <= self.parallel_bars_rows,
                       lambda: self._decode_bars(z, temperature, noise=noise),
                       lambda: self._decode_rows(z, temperature, noise))

    def _decode_rows(self, z: tf.Tensor, temperature: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """model.decode step by step, in decode_shards pieces if the request is big enough."""
        shards = self.decode_shards
        if shards == 1:
            return self._decode(z, temperature, noise=noise)
        batch = tf.shape(z)[0]

        def in_shards():
            ends = [batch * k // shards for k in range(shards + 1)]
            return tf.concat([self._decode(z[a:b], temperature[a:b], noise=noise[a:b])
                              for a, b in zip(ends, ends[1:])], 0)

        return tf.cond(batch >= shards * MIN_SHARD_ROWS, in_shards,
                       lambda: self._decode(z, temperature, noise=noise))

    @staticmethod
    def _finite(x: tf.Tensor, name: str) -> tf.Tensor:
        """x, refused (INVALID_ARGUMENT naming it) if it holds a NaN or an infinity, which the
        decoder would turn into silence or noise. One pass over a few floats per row; kept
        out of the compiled functions, as XLA drops the check."""
        return tf.debugging.check_numerics(x, f"{name} must be finite")

    @staticmethod
    def _check_rows(temperature: tf.Tensor, seed: tf.Tensor, batch: tf.Tensor):
        tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0")
        tf.debugging.assert_equal(tf.shape(temperature)[0], batch,
                                  message="temperature needs one value per row")
        tf.debugging.assert_equal(tf.shape(seed)[0], batch, message="seed needs one row per row")

    # --- signatures ---------------------------------------------------------------------
    def sample(self, temperature, seed):
        """The `sample` signature: z drawn from each row's seed, decoded; tokens per track and z."""
        batch = tf.shape(seed)[0]
        self._check_rows(temperature, seed, batch)
        z_seed, token_seed = sampling.split_seeds(seed)
        z = sampling.normal_from_seeds(z_seed, self.config.z_size)
        tokens = self._decode_seeded(z, temperature, token_seed)
        return {**self._unstack(tokens), "z": z}

    def decode(self, z, temperature, seed):
        """The `decode` signature: tokens per track for the given z, sampled with row seeds."""
        self._check_rows(temperature, seed, tf.shape(z)[0])
        return self._unstack(self._decode_seeded(self._finite(z, "z"), temperature, seed))

    def encode(self, **inputs):
        """The `encode` signature: mu, sigma and a z sampled from q(z|x) with each row's seed."""
        tokens = self._stack(inputs)
        seed = inputs["seed"]
        tf.debugging.assert_equal(tf.shape(seed)[0], tf.shape(tokens)[0],
                                  message="seed needs one row per row")
        mu, sigma = self._posterior(tokens)
        eps = sampling.normal_from_seeds(seed, self.config.z_size)
        return {"z": mu + sigma * eps, "mu": mu, "sigma": sigma}

    def reconstruct(self, **inputs):
        """The `reconstruct` signature: each row decoded from its posterior mean."""
        tokens = self._stack(inputs)
        self._check_rows(inputs["temperature"], inputs["seed"], tf.shape(tokens)[0])
        mu, _ = self._posterior(tokens)
        out = self._decode_seeded(mu, inputs["temperature"], inputs["seed"])
        return {**self._unstack(out), "z": mu}

    def interpolate(self, **inputs):
        """The `interpolate` signature: rows decoded at slerp(mu_a, mu_b, alpha)."""
        a, b = self._stack(inputs, "_a"), self._stack(inputs, "_b")
        batch = tf.shape(a)[0]
        self._check_rows(inputs["temperature"], inputs["seed"], batch)
        tf.debugging.assert_equal(tf.shape(inputs["alpha"])[0], batch,
                                  message="alpha needs one value per row")
        mus = self._endpoint_means(a, b)
        z = slerp(mus[:batch], mus[batch:], self._finite(inputs["alpha"], "alpha"))
        out = self._decode_seeded(z, inputs["temperature"], inputs["seed"])
        return {**self._unstack(out), "z": z}

    def _endpoint_means(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Posterior means of [a; b]. A client interpolating between one pair of tunes sends
        each endpoint repeated once per row; then the encoder runs on 2 rows, not 2B."""
        batch = tf.shape(a)[0]
        one_pair = tf.logical_and(tf.reduce_all(tf.equal(a, a[:1])),
                                  tf.reduce_all(tf.equal(b, b[:1])))
        # The two endpoints as one 2-row call: an encoder step reads its weights once for
        # both, and the encoder's directions run side by side (`_posterior_by_direction`).
        return tf.cond(
            one_pair,
            lambda: tf.repeat(self._posterior(tf.concat([a[:1], b[:1]], 0))[0], batch, 0),
            lambda: self._posterior(tf.concat([a, b], 0))[0])

    # --- tracing ------------------------------------------------------------------------
    def concrete_functions(self, shown: Progress | None = None) -> dict:
        """name -> concrete function with the contract's named inputs; `shown` counts each
        traced signature."""
        T, Z = self.config.num_steps, self.config.z_size
        rows = tf.TensorSpec([None], tf.float32)
        seed = tf.TensorSpec([None, 2], tf.int32)
        track = tf.TensorSpec([None, T], tf.int32)
        tracks = {t: track for t in self.tracks}
        specs = {
            "sample": dict(temperature=rows, seed=seed),
            "decode": dict(z=tf.TensorSpec([None, Z], tf.float32), temperature=rows, seed=seed),
            "encode": dict(**tracks, seed=seed),
            "reconstruct": dict(**tracks, temperature=rows, seed=seed),
            "interpolate": dict(**{t + "_a": track for t in self.tracks},
                                **{t + "_b": track for t in self.tracks},
                                alpha=rows, temperature=rows, seed=seed),
        }
        fns = {}
        for name, spec in specs.items():
            fn = tf.function(getattr(self, name))
            named = {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in spec.items()}
            fns[name] = fn.get_concrete_function(**named)
            if shown is not None:
                shown.update()
        fns["serving_default"] = fns["sample"]
        return fns


def saveable_root(functions: dict) -> tf.Module:
    """The object to save: the tf.Variables the signatures capture, and nothing else.

    Saving the Keras model itself would give every Keras variable a second tf.Variable in
    the SavedModel, and the TF1-style loader that TF Serving uses restores that copy while the
    signatures read the original, uninitialised one ("Could not find variable ..."). Keras'
    own ExportArchive avoids this the same way: it tracks the functions' captured variables.
    """
    root = tf.Module()
    seen, variables = set(), []
    for fn in functions.values():
        for v in fn.variables:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    root.model_variables = variables
    return root


def load_model(saved_model: str, version: int | None = None) -> MusicVAE:
    """A Keras MusicVAE rebuilt from an export: its config, and its weights matched by path.

    saved_model: a version directory, or an export base (its newest version, or `version`),
    as `--saved_model` and the serving client take them. The model is not compiled: call
    `model.compile_for_training()` before `model.evaluate` or `model.fit`."""
    saved_model_dir = resolve_saved_model(saved_model, version)
    model = MusicVAE(read_config(saved_model_dir))
    model.build()
    saved = {v.name.split(":")[0]: v for v in tf.saved_model.load(saved_model_dir).model_variables}
    missing = [v.path for v in model.weights if v.path not in saved]
    misfit = [v.path for v in model.weights
              if v.path in saved and tuple(v.shape) != tuple(saved[v.path].shape)]
    if missing or misfit:
        raise ValueError(f"{saved_model_dir} does not match its config: "
                         + (f"no {missing[:3]}" if missing else f"other shapes for {misfit[:3]}"))
    for v in model.weights:
        v.assign(saved[v.path])
    return model


def next_version(export_base: str) -> int:
    """One more than the newest version directory, so an export never replaces a served one."""
    versions = [int(d) for d in os.listdir(export_base) if d.isdigit()] if os.path.isdir(
        export_base) else []
    return max(versions, default=0) + 1


def default_parallel_bars_rows(model: MusicVAE, jit_compile: bool) -> int:
    """PARALLEL_BARS_ROWS for hierarchical models, unless the XLA export's sequential loop
    keeps the core decoder's weights in cache. Measured on 2 cores, 1 row, session path: the
    plain export 65-68 -> 39 ms (1/4 width) and 1225 -> 490 ms (full size); the XLA export
    786 -> 389 ms at full size (50 MB per step) but 22-24 -> 24-27 ms at 1/4 width (3 MB)."""
    if not model.decoder.hierarchical:
        return 0
    return (PARALLEL_BARS_ROWS if not jit_compile or decoder_step_bytes(model)
            >= PARALLEL_BARS_MIN_BYTES else 0)


def decoder_step_bytes(model: MusicVAE) -> int:
    """Bytes of weights one autoregressive step reads: every core decoder's `step_weights`
    and output kernel (50.7 MB for the full-size 16-bar model, 3.2 MB at 1/4 width)."""
    total = 0
    for core in model.decoder.cores:
        first, deeper = core.rnn.step_weights()
        total += sum(tf.convert_to_tensor(w).numpy().nbytes
                     for w in (first, *(k for k, _ in deeper), core.output_layer.kernel))
    return total


def export_saved_model(model: MusicVAE, export_base: str, version: int | None = None,
                       jit_compile: bool = False, extra_metadata: dict | None = None,
                       decode_shards: int | None = None,
                       parallel_bars_rows: int | None = None,
                       dtype_policy: str = "float32", progress: bool = False,
                       assets_from: str | None = None) -> str:
    """Writes `<export_base>/<version>/` atomically and returns its path (progress: show
    how far tracing and saving are, on stderr). assets_from: an export of the same weights
    whose other assets.extra files (its attribute vectors, which depend on the weights
    alone) the new version gets too, before it appears. decode_shards
    and parallel_bars_rows: see ServingModule; they default to XLA_DECODE_SHARDS with
    jit_compile (else 1) and PARALLEL_BARS_ROWS. dtype_policy: the products' dtype in the
    signatures' graphs (`precision.POLICIES`). The metadata records these options as given
    (None: the default), so the export can be made again (`export_options.reproduce_flags`),
    and, under `in_effect`, the shards and bars-at-once rows they came to."""
    options = {"jit_compile": jit_compile, "dtype_policy": dtype_policy,
               "decode_shards": decode_shards, "parallel_bars_rows": parallel_bars_rows}
    if decode_shards is None:
        decode_shards = XLA_DECODE_SHARDS if jit_compile else 1
    if parallel_bars_rows is None:
        parallel_bars_rows = default_parallel_bars_rows(model, jit_compile)
    os.makedirs(export_base, exist_ok=True)
    version = version or next_version(export_base)
    final = os.path.join(export_base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; versions are immutable, pick another --version")
    tmp = temporary_folder(export_base, version, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    # The graphs must not hold the GPU-only kernel; the model a caller goes on training in
    # the same process gets its own setting back below.
    use_cudnn = model.encoder.use_cudnn
    model.set_use_cudnn(False)
    try:
        # One stage per traced signature, and saving.
        shown = Progress(len(SIGNATURES) + 1, "exporting", "stage", enabled=progress)
        with precision.policy(dtype_policy), shown:  # the products' dtype is fixed when traced
            functions = ServingModule(model, jit_compile, decode_shards,
                                      parallel_bars_rows).concrete_functions(shown)
            tf.saved_model.save(saveable_root(functions), tmp, signatures=functions)
            shown.update()
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        if assets_from:
            _copy_extra_assets(assets_from, tmp)
        metadata = {
            "config": json.loads(model.config.to_json()),
            "tracks": list(model.config.tracks),
            "track_classes": list(model.config.track_classes),
            "steps_per_bar": STEPS_PER_BAR,
            "num_steps": model.config.num_steps,
            "z_size": model.config.z_size,
            "options": options,
            # What the options came to (defaults resolved): what the signatures do.
            "in_effect": {"decode_shards": decode_shards,
                          "parallel_bars_rows": ServingModule.bars_rows_for(
                              model, parallel_bars_rows)},
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra_metadata or {}),
        }
        with open(os.path.join(tmp, "assets.extra", CONFIG_ASSET), "w") as f:
            json.dump(metadata, f, indent=2)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.set_use_cudnn(use_cudnn)
    return final


def _copy_extra_assets(source: str, target: str) -> None:
    """Copies the assets.extra files of the export `source` into `target`'s, all but its
    config (the new export writes its own)."""
    folder = os.path.join(source, "assets.extra")
    names = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if n != CONFIG_ASSET and os.path.isfile(os.path.join(folder, n)))
    for name in names:
        shutil.copyfile(os.path.join(folder, name), os.path.join(target, "assets.extra", name))
