"""MusicVAE as a subclassed Keras model: q(z|x) and p(z) are tfp distributions.

The objective is the paper's: mean over the batch of the summed cross-entropy plus
beta * mean(max(KL - free_bits * ln 2, 0)), with beta annealed and optional scheduled
sampling, trained by Adam with Magenta's learning-rate decay and global-norm clipping; a
gradient whose global norm is >= 10,000 or not finite is replaced by zeros (Magenta's
grad_norm_clip_to_zero).

Token tensors are [B, T, K] int32 (K tracks: 1 for melody or drums, 3 for a trio); a
one-track model also takes [B, T], the layout of `hmvae_tf.music` and the serving client.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from hmvae_tf.configs import Config, check_token_ids
from hmvae_tf.model import sampling
from hmvae_tf.model.decoders import MusicDecoder
from hmvae_tf.model.encoder import BidirectionalLstmEncoder
from hmvae_tf.model.lstm import cpu_shard_sizes, gpu_available
from hmvae_tf.model.schedules import (ExponentialDecayToFloor, ScheduleValue, kl_beta,
                                      sampling_probability)

if TYPE_CHECKING:
    from hmvae_tf.model.lstm_training import Activations

tfd = tfp.distributions
LN2 = math.log(2.0)
# The logged terms that are the loss and its parts, averaged over each checkpoint period, and
# those that are schedules' values at the step: logged as they stand at the period's last step
# (ScheduleValue), and in training only (a validation's copy only repeated the training value,
# or 0 for p_sample).
LOSS_TERMS = ("loss", "r_loss", "kl_bits", "accuracy")
SCHEDULE_TERMS = ("beta", "p_sample")


@keras.saving.register_keras_serializable(package="hmvae")
class MusicVAE(keras.Model):
    """Encoder q(z|x), prior p(z) = N(0, I), flat or hierarchical decoder p(x|z).

    Its weights depend on the config alone, so they exist as soon as it is constructed:
    `MusicVAE(config)` can fit, sample or `load_weights` at once. `model.save("m.keras")`
    keeps the config (and the optimizer's state); `keras.models.load_model` rebuilds it in a
    process that has imported this module.
    """

    def __init__(self, config: Config, **kwargs):
        if not isinstance(config, Config):  # a config's name reached `.validate` otherwise
            raise TypeError(f"MusicVAE takes a Config, not {config!r}: "
                            f"MusicVAE(get_config({config!r})) builds one from a name"
                            if isinstance(config, str) else
                            f"MusicVAE takes a Config (configs.get_config), not {config!r}")
        super().__init__(name=kwargs.pop("name", "music_vae"), **kwargs)
        config.validate()
        self.config = config
        self.track_classes = config.track_classes
        self.encoder = BidirectionalLstmEncoder(
            config.track_classes, config.enc_rnn_size, config.z_size, name="encoder")
        self.decoder = MusicDecoder(
            config.track_classes, config.num_steps, config.dec_rnn_size,
            config.conductor_rnn_size, config.conductor_length, name="decoder")
        self.teacher_forced_training = (
            config.sampling_schedule == "constant" and config.sampling_rate == 0)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in LOSS_TERMS}
        self.trackers.update({n: ScheduleValue(name=n) for n in SCHEDULE_TERMS})
        # Not left to the first call: train_step and decode reach the sub-layers without
        # Keras' __call__, so an unbuilt model failed deep inside the decoder.
        self.build()

    # --- construction ---------------------------------------------------------------------
    def build(self, input_shape=None):
        """Builds every weight from the config alone (once; the constructor already did), so
        a checkpoint can load before a call."""
        if self.built:
            return
        batch = None
        self.encoder.build((batch, self.config.num_steps, len(self.track_classes)))
        self.decoder.build((batch, self.config.z_size))
        self.built = True

    def get_config(self) -> dict[str, Any]:
        """The Config as plain JSON values, for Keras' `.keras` files."""
        return {"config": json.loads(self.config.to_json()), "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MusicVAE":
        """The model a `get_config` dict describes (weights come from the file)."""
        config = dict(config)
        return cls(Config.from_json(json.dumps(config.pop("config"))), **config)

    def compile_for_training(self, **kwargs: Any) -> None:
        """Adam with Magenta's decay to a floor; clipping happens in train_step."""
        c = self.config
        schedule = ExponentialDecayToFloor(c.learning_rate, c.decay_rate, c.min_learning_rate)
        self.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), **kwargs)

    def set_use_cudnn(self, value: bool) -> None:
        """False for graphs meant for CPU servers or browsers: no GPU-only LSTM kernel."""
        self.encoder.set_use_cudnn(value)
        for core in self.decoder.cores:
            core.rnn.set_use_cudnn(value)
        if self.decoder.hierarchical:
            self.decoder.conductor.set_use_cudnn(value)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss-term and schedule trackers, so that Keras resets them every epoch."""
        return list(self.trackers.values())

    def prior(self) -> tfd.Distribution:
        """p(z) = N(0, I): the KL term's target and where sampled z come from."""
        z = self.config.z_size
        return tfd.MultivariateNormalDiag(loc=tf.zeros([z]), scale_diag=tf.ones([z]))

    # --- the model ----------------------------------------------------------------------
    def model_tokens(self, tokens: tf.Tensor | Any) -> tf.Tensor:
        """Token ids as the layers take them, int32 [B, T, K]. A one-track model also takes
        [B, T] (a batch of `hmvae_tf.music` windows). Another shape, or float values, is a
        ValueError naming the shape due, instead of an error from deep inside a layer; the
        check reads the static shape, so a traced graph gets no extra ops. Eager calls also
        refuse ids outside a track's vocabulary."""
        tokens = tf.convert_to_tensor(tokens)
        steps, tracks = self.config.num_steps, len(self.track_classes)
        given = shape = tokens.shape
        if shape.rank == 2 and tracks == 1:
            tokens, shape = tokens[..., None], shape + [1]
        if shape.rank is not None and (
                shape.rank != 3 or not shape[1:].is_compatible_with([steps, tracks])):
            one_track = f" (or [batch, {steps}])" if tracks == 1 else ""
            single = given.rank == 1 or given.as_list() == [steps, tracks]
            raise ValueError(
                f"{self.config.name} takes tokens of shape [batch, {steps}, {tracks}]"
                f"{one_track}: {self.config.bars} bars of {'/'.join(self.config.tracks)}, not "
                f"{given.as_list()}"
                + ("; for one window add the batch axis: tokens[None]" if single else ""))
        if not tokens.dtype.is_integer:
            raise ValueError(f"tokens are integer class ids, not {tokens.dtype.name} values")
        if shape.rank is None:
            # A trace of unknown rank (Keras' distributed step after batches of two shapes):
            # add a one-track batch's axis at run time, and check the shape there.
            if tracks == 1:
                tokens = tf.cond(tf.rank(tokens) == 2, lambda: tokens[..., None],
                                 lambda: tokens)
            tokens = tf.ensure_shape(tokens, [None, steps, tracks])
        tokens = tf.cast(tokens, tf.int32)
        if tf.executing_eagerly():
            self._check_ids(tokens)
        return tokens

    def _one_window(self, tokens: tf.Tensor | Any, name: str) -> tf.Tensor:
        """One window [T, K] of `interpolate`'s [T], [T, K] or [1, T, K]; another shape (a
        window of another length, a batch) is a ValueError naming the shapes due, not a
        reshape's error, or a reshape of [2, T] into a wrong window."""
        tokens = tf.convert_to_tensor(tokens)
        steps, tracks = self.config.num_steps, len(self.track_classes)
        shape = tokens.shape
        accepted = ([[steps], [steps, 1], [1, steps], [1, steps, 1]] if tracks == 1
                    else [[steps, tracks], [1, steps, tracks]])
        fits = shape.rank is None or any(shape.is_compatible_with(a) for a in accepted)
        if not fits:
            raise ValueError(f"{name} is one window of {self.config.name}, "
                             f"{' or '.join(map(str, accepted))}, not {shape.as_list()}")
        return self.model_tokens(tf.reshape(tokens, [1, steps, tracks]))[0]

    def _check_ids(self, tokens: tf.Tensor) -> None:
        """ValueError for an id outside a track's vocabulary, in eager calls: encode took a
        negative id as a silent all-zero one-hot, and a large one failed in a gather."""
        check_token_ids(tokens.numpy(), self.config.tracks)

    def encode(self, tokens: tf.Tensor, training: bool = False) -> tfd.MultivariateNormalDiag:
        """q(z|x) for tokens [B, T, K] (or [B, T] for one track, `model_tokens`)."""
        return self.encoder(self.model_tokens(tokens), training=training)

    def call(self, tokens, training=False):
        """Teacher-forced reconstruction logits (per track: [B, T, C_k] each) from a posterior
        sample."""
        tokens = self.model_tokens(tokens)
        z = self.encode(tokens, training=training).sample()
        return self.decoder.teacher_forced_logits(z, tokens, training=training)

    def compute_terms(self, tokens: tf.Tensor, training: bool = False,
                      p_sample: tf.Tensor | None = None,
                      tape: tf.GradientTape | None = None) -> dict[str, tf.Tensor]:
        """The loss and its parts for one batch (means over this replica's examples).

        p_sample: scheduled sampling; each decoder input is the model's own sample with this
        probability (None: plain teacher forcing).
        tape: the tape recording this loss, if any. Scheduled sampling's pick loop then runs
        with the tape paused, and a flat decoder's teacher-forced pass reuses the activations
        that loop went through instead of running its LSTMs forward again (the tape must not
        record the loop: a compiled loop with float outputs cannot be differentiated).
        """
        tokens = self.model_tokens(tokens)
        q = self.encode(tokens, training=training)
        z = self.posterior_sample(q)
        inputs, forward = tokens, None
        if p_sample is not None:
            # The pick loop already ran the decoder's LSTMs on the inputs it picked; with the
            # CPU training recurrence that forward pass is reused, not run again.
            keep = (tape is not None and training and not self.decoder.hierarchical
                    and not gpu_available())
            if keep:
                with tape.stop_recording():
                    inputs, forward = self.scheduled_pass(z, tokens, p_sample,
                                                          keep_activations=True)
            else:
                inputs, _ = self.scheduled_pass(z, tokens, p_sample)
        logits = self.decoder.teacher_forced_logits(z, inputs, training=training,
                                                    forward=forward)
        step = self.optimizer.iterations if getattr(self, "optimizer", None) else 0
        return self.objective(tokens, logits, q, step)

    def scheduled_inputs(self, z: tf.Tensor, tokens: tf.Tensor, p_sample: tf.Tensor
                         ) -> tf.Tensor:
        """Scheduled sampling's decoder inputs [B, T, K]: at each step, the model's own sample
        with probability p_sample, else the target (`scheduled_pass`)."""
        return self.scheduled_pass(z, tokens, p_sample)[0]

    def scheduled_pass(self, z: tf.Tensor, tokens: tf.Tensor, p_sample: tf.Tensor,
                       keep_activations: bool = False
                       ) -> tuple[tf.Tensor, list[list[list[Activations]]] | None]:
        """Scheduled sampling's inputs, and with keep_activations (flat decoders; not under a
        recording tape) the decoder LSTMs' activations on them, per track and layer (else
        None): a list of `lstm_training.Activations`, one per batch shard.

        Training runs in two passes: this forward-only step loop picks the inputs, then
        teacher forcing on them computes the logits the loop computed, with the training
        LSTM's gradient. Samples are not differentiated through, so the loop keeps nothing for
        backprop: at batch 512 the peak memory drops by a fifth against differentiating the
        loop, at the same speed in float32. Keeping the loop's activations lets the second
        pass skip its forward (`MusicDecoder.teacher_forced_logits`' forward).
        """
        use_target = tf.random.uniform(tf.shape(tokens)[:2]) >= p_sample
        noise = sampling.gumbel(tf.concat([tf.shape(tokens)[:2], [sum(self.track_classes)]], 0))
        args = (tf.stop_gradient(z), tokens, use_target, noise)
        sizes = cpu_shard_sizes(tokens.shape[0])
        # Rows are independent: one compiled loop per core, side by side.
        shards = [args] if len(sizes) == 1 else zip(*(tf.split(a, sizes) for a in args))
        picked = [self._pick_inputs(*shard, keep_activations=keep_activations)
                  for shard in shards]
        if not keep_activations:
            return tf.concat(picked, 0), None
        # Per track and layer, the list of the shards' activations (the training recurrence
        # takes them as they are when it cuts the batch the same way).
        forward = [[list(shard_layers) for shard_layers in zip(*track)]
                   for track in zip(*(activations for _, activations in picked))]
        return tf.concat([tokens_ for tokens_, _ in picked], 0), forward

    @tf.function(jit_compile=True, autograph=False)
    def _pick_inputs(self, z, tokens, use_target, noise, keep_activations=False):
        """`scheduled_pass`' step loop, compiled by XLA (which fuses each step's gates):
        Gumbel-max at temperature 1 is sampling from the logits. keep_activations: also
        return the LSTM activations (`autoregress(with_activations=True)`)."""
        chooser = sampling.gumbel_chooser(noise, tf.ones(tf.shape(z)[:1]), self.track_classes)
        return self.decoder.autoregress(z, chooser, targets=tokens, use_target=use_target,
                                        with_activations=keep_activations)

    def posterior_sample(self, q: tfd.Distribution) -> tf.Tensor:
        """z ~ q(z|x), reparameterised so gradients reach mu and sigma."""
        return q.sample()

    def objective(self, tokens: tf.Tensor, logits: list[tf.Tensor], q: tfd.Distribution,
                  step: tf.Tensor | keras.Variable | int) -> dict[str, tf.Tensor]:
        """loss = mean_batch(sum_t CE) + beta(step) * mean_batch(max(KL - free_bits ln 2, 0))."""
        c = self.config
        ce = tf.add_n([
            tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(tokens[..., k], lg), -1)
            for k, lg in enumerate(logits)])
        kl = tfd.kl_divergence(q, self.prior())
        beta = kl_beta(step, c.max_beta, c.beta_rate)
        r_loss = tf.reduce_mean(ce)
        correct = tf.stack([tf.equal(tf.argmax(lg, -1, output_type=tf.int32), tokens[..., k])
                            for k, lg in enumerate(logits)], -1)
        return {
            "loss": r_loss + beta * tf.reduce_mean(free_bits_cost(kl, c.free_bits)),
            "r_loss": r_loss,
            "kl_bits": tf.reduce_mean(kl) / LN2,
            "accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
            "beta": beta,
        }

    # --- training -----------------------------------------------------------------------
    def train_step(self, data):
        """One Adam step on a batch of tokens, clipping the gradient summed over replicas."""
        tokens = tokens_only(data)
        c = self.config
        p_sample = None
        if not self.teacher_forced_training:
            p_sample = sampling_probability(self.optimizer.iterations, c.sampling_schedule,
                                            c.sampling_rate)
        strategy = tf.distribute.get_strategy()
        replicas = strategy.num_replicas_in_sync
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.compute_terms(tokens, training=True, p_sample=p_sample, tape=tape)
            # Each replica holds a slice of the batch; the optimizer sums replicas' gradients.
            scaled = terms["loss"] / replicas
        grads = tape.gradient(scaled, variables)
        if replicas > 1:
            # Keras clips before it all-reduces, which would clip each replica's share. Clip
            # the true (summed) gradient instead; the optimizer's sum of N copies of g / N is g.
            grads = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, grads)
            grads = [g / replicas for g in clip_or_zero(grads, c.clip_norm)]
        else:
            grads = clip_or_zero(grads, c.clip_norm)
        self.optimizer.apply(grads, variables)
        terms["p_sample"] = tf.constant(0.0) if p_sample is None else p_sample
        return self._update_trackers(terms)

    def test_step(self, data):
        """The loss terms on a batch without scheduled sampling, for validation (not the
        schedules' values: they are the training step's)."""
        terms = self.compute_terms(tokens_only(data), training=False)
        return self._update_trackers({name: terms[name] for name in LOSS_TERMS})

    def _update_trackers(self, terms):
        """Updates the trackers of `terms`; their results, the logs of this step."""
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        results = {name: self.trackers[name].result() for name in terms}
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras 3 averages multi-worker logs with strategy.reduce(MEAN, axis=0), which
            # fails on scalars (tensorflow/tensorflow#72388); a [1] vector reduces to a scalar.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    # --- inference ----------------------------------------------------------------------
    @property
    def noise_shape(self) -> list[int]:
        """One row's Gumbel noise for `decode`: [T, sum(C_k)]."""
        return [self.config.num_steps, sum(self.track_classes)]

    def latents(self, z: tf.Tensor | Any) -> tf.Tensor:
        """z as the decoder takes it, float32 [B, Z]: numpy's float64 (a mean or an attribute
        vector added in numpy) is cast, and another shape or integers are a ValueError
        naming the shape due (one z wants its batch axis: z[None])."""
        z = tf.convert_to_tensor(z)
        size = self.config.z_size
        if z.shape.rank is not None and (
                z.shape.rank != 2 or not z.shape[1:].is_compatible_with([size])):
            single = " (for one z add the batch axis: z[None])" if z.shape.rank == 1 else ""
            raise ValueError(f"{self.config.name} decodes z of shape [batch, {size}], not "
                             f"{z.shape.as_list()}{single}")
        if not z.dtype.is_floating:
            raise ValueError(f"z holds floats, not {z.dtype.name} values")
        return tf.cast(z, tf.float32)

    def decode(self, z: tf.Tensor, temperature: float | tf.Tensor = 0.0,
               seed: int | tf.Tensor | None = None, noise: tf.Tensor | None = None,
               bars_in_parallel: bool = False) -> tf.Tensor:
        """z [B, Z] -> tokens [B, T, K]. temperature: scalar or [B], finite and >= 0 (eager
        calls refuse others); 0 = argmax.

        Randomness comes from `noise` (Gumbel, [B, T, sum(C_k)]) if given, else from
        per-row stateless seeds `seed` (int32 [B, 2], or an int s: row i gets (s, i), as in
        the `decode` signature), else from TF's global generator. Inside
        `tf.function(jit_compile=True)` XLA draws other numbers for the same seeds (TF's
        stateless ops differ under XLA): for the eager and served draws, make the noise
        outside XLA, `sampling.gumbel_from_seeds(sampling.row_seeds(s, B), model.noise_shape)`,
        and pass it as `noise` (as the XLA export does). `sample`'s z alike.
        bars_in_parallel (hierarchical models): the same tokens through
        `MusicDecoder.autoregress_bars_in_parallel`, faster for a few rows.
        """
        z = self.latents(z)
        batch = tf.shape(z)[0]
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
        if tf.executing_eagerly() and not tf.reduce_all(
                (temperature >= 0) & (temperature < float("inf"))):
            # Where the serving client refuses them too: a row at -1 or NaN decoded by argmax.
            raise ValueError(f"temperature is finite and >= 0 (0 = argmax), not "
                             f"{temperature.numpy().tolist()}")
        if noise is None:
            if seed is not None:
                seed = sampling.row_seeds(seed, batch)
            noise = (sampling.gumbel_from_seeds(seed, self.noise_shape) if seed is not None
                     else sampling.gumbel(tf.concat([[batch], self.noise_shape], 0)))
        if not (bars_in_parallel and self.decoder.hierarchical):
            chooser = sampling.gumbel_chooser(noise, temperature, self.track_classes)
            return self.decoder.autoregress(z, chooser)
        # Rows become (sequence, bar) pairs, each with its bar's slice of the noise.
        bars = self.decoder.num_subsequences
        bar_noise = tf.reshape(noise, tf.stack([batch * bars, self.decoder.subsequence_steps,
                                                sum(self.track_classes)]))
        chooser = sampling.gumbel_chooser(bar_noise, tf.repeat(temperature, bars),
                                          self.track_classes)
        return self.decoder.autoregress_bars_in_parallel(z, chooser)

    def sample(self, n: int, temperature: float | tf.Tensor = 0.5,
               seed: int | tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """n new sequences from the prior: (tokens [n, T, K], z [n, Z]).

        seed: an int s gives row i the seed (s, i), as the `sample` signature and the serving
        client do, so the same s gives the same melodies; or per-row seeds int32 [n, 2];
        None draws from TF's global generator."""
        if isinstance(n, numbers.Number):
            if not (n >= 0 and n == int(n)):
                raise ValueError(f"n is a number of sequences, an int >= 0, not {n!r}")
            n = int(n)
        if seed is None:
            z = self.prior().sample(n)
            return self.decode(z, temperature), z
        z_seed, token_seed = sampling.split_seeds(sampling.row_seeds(seed, n))
        z = sampling.normal_from_seeds(z_seed, self.config.z_size)
        return self.decode(z, temperature, seed=token_seed), z

    def interpolate(self, tokens_a: tf.Tensor, tokens_b: tf.Tensor, num_steps: int = 8,
                    temperature: float | tf.Tensor = 0.0, seed: int | tf.Tensor | None = None
                    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Decodes num_steps points on the great circle between the two posterior means:
        (tokens [num_steps, T, K], z [num_steps, Z]).

        tokens_a, tokens_b: one window each, [T], [T, K] or [1, T, K]. The endpoints are
        reconstructions. seed: an int s gives every step the seed (s, 0), as the serving
        client's interpolate does (or per-row seeds int32 [num_steps, 2]).
        """
        pair = tf.stack([self._one_window(tokens_a, "tokens_a"),
                         self._one_window(tokens_b, "tokens_b")])
        mus = self.encode(pair).mean()
        alpha = tf.linspace(0.0, 1.0, num_steps)
        z = slerp(tf.repeat(mus[:1], num_steps, 0), tf.repeat(mus[1:], num_steps, 0), alpha)
        if seed is not None:
            seed = sampling.row_seeds(seed, num_steps, same=True)
        return self.decode(z, temperature, seed=seed), z


def tokens_only(data: Any) -> Any:
    """The token batch of what fit and evaluate hand a step: a tensor, or Keras' (x,) for
    arrays. (x, y) pairs are refused in one line: the model reconstructs its input."""
    tokens, target, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if target is not None or sample_weight is not None:
        raise ValueError("MusicVAE reconstructs its input: fit and evaluate take batches of "
                         "tokens alone, not (x, y) pairs; map the dataset to x, e.g. "
                         "dataset.map(lambda x, y: x)")
    return tokens


def _multi_worker(strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(tasks) for tasks in cluster.values()) > 1


# Magenta's grad_norm_clip_to_zero: a gradient whose global norm is not below this (NaN and
# inf included) is replaced by zeros, so one exploding batch cannot wreck the weights.
GRAD_NORM_CLIP_TO_ZERO = 10_000.0


def clip_or_zero(grads: list[tf.Tensor], clip_norm: float) -> list[tf.Tensor]:
    """Clipped to global norm clip_norm, or all zeros where the norm is >= 10,000 or not
    finite (Magenta's clip_mode=global_norm with grad_norm_clip_to_zero)."""
    grads = [tf.convert_to_tensor(g) for g in grads]
    norm = tf.linalg.global_norm(grads)
    clipped, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
    keep = norm < GRAD_NORM_CLIP_TO_ZERO
    return [tf.where(keep, g, tf.zeros_like(g)) for g in clipped]


def free_bits_cost(kl: tf.Tensor, free_bits: float) -> tf.Tensor:
    """KL in nats above the free-bits budget (a budget on the total over z's dimensions)."""
    return tf.maximum(kl - free_bits * LN2, 0.0)


def slerp(p0: tf.Tensor, p1: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """Spherical interpolation row by row: p0, p1 [B, Z], alpha [B]; falls back to linear
    interpolation where the two vectors are (nearly) parallel."""
    alpha = alpha[:, None]
    n0 = tf.math.l2_normalize(p0, -1)
    n1 = tf.math.l2_normalize(p1, -1)
    omega = tf.acos(tf.clip_by_value(tf.reduce_sum(n0 * n1, -1, keepdims=True), -1.0, 1.0))
    sin_omega = tf.sin(omega)
    safe = sin_omega > 1e-6
    denom = tf.where(safe, sin_omega, 1.0)
    spherical = (tf.sin((1.0 - alpha) * omega) * p0 + tf.sin(alpha * omega) * p1) / denom
    linear = (1.0 - alpha) * p0 + alpha * p1
    return tf.where(safe, spherical, linear)
