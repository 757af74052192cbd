"""MusicVAE: shapes, the objective against hand-computed values, schedules, decoders."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from hmvae_tf.model import sampling, schedules
from hmvae_tf.model.vae import MusicVAE, free_bits_cost, slerp
from model_helpers import random_tokens, scale_melodies, tiny_config

tfd = tfp.distributions


def built(config):
    model = MusicVAE(config)
    model.build()
    return model


@pytest.mark.parametrize("name", ["cat-mel_2bar_small", "cat-drums_2bar_small",
                                  "hierdec-mel_16bar", "hierdec-trio_16bar"])
def test_shapes(name):
    config = tiny_config(name)
    model = built(config)
    tokens = tf.constant(random_tokens(config, 3))
    q = model.encode(tokens)
    assert isinstance(q, tfd.MultivariateNormalDiag)
    assert q.mean().shape == (3, config.z_size) and q.stddev().shape == (3, config.z_size)
    assert bool(tf.reduce_all(q.stddev() > 0))
    logits = model(tokens)
    assert [lg.shape for lg in logits] == [(3, config.num_steps, c) for c in config.track_classes]
    sampled, z = model.sample(2, temperature=1.0, seed=tf.constant([[1, 2], [3, 4]]))
    assert sampled.shape == (2, config.num_steps, len(config.tracks)) and z.shape == (2, 8)
    for k, classes in enumerate(config.track_classes):
        assert 0 <= int(tf.reduce_min(sampled[..., k])) and int(tf.reduce_max(sampled[..., k])) < classes


def test_hparams_resize_a_tied_conductor_like_magenta():
    """Magenta's one dec_rnn_size sizes conductor and core; shrinking it shrinks both."""
    from hmvae_tf.configs import get_config

    full = get_config("hierdec-mel_16bar")
    assert full.conductor_rnn_size == full.dec_rnn_size == (1024, 1024)
    quarter = get_config("hierdec-mel_16bar", "dec_rnn_size=[256,256]")
    assert quarter.dec_rnn_size == quarter.conductor_rnn_size == (256, 256)
    apart = get_config("hierdec-mel_16bar", "dec_rnn_size=[256],conductor_rnn_size=[64]")
    assert (apart.dec_rnn_size, apart.conductor_rnn_size) == ((256,), (64,))
    assert get_config("flat-mel_16bar", "dec_rnn_size=[256]").conductor_rnn_size == ()
    untied = get_config("hierdec-mel_16bar", "conductor_rnn_size=[512]")
    assert untied.override("dec_rnn_size=[128]").conductor_rnn_size == (512,)


def test_hparams_also_come_as_a_mapping():
    """get_config(name, {"z_size": 8}) failed with "'dict' object has no attribute 'strip'":
    only --hparams text was taken. A mapping now overrides as the same text would, ties the
    conductor alike and is checked alike."""
    from hmvae_tf.configs import ConfigError, get_config

    text = get_config("hierdec-mel_16bar", "enc_rnn_size=[32],dec_rnn_size=[16,16],z_size=8")
    mapping = get_config("hierdec-mel_16bar",
                         {"enc_rnn_size": [32], "dec_rnn_size": (16, 16), "z_size": 8})
    assert mapping == text and mapping.conductor_rnn_size == (16, 16)
    assert get_config("cat-mel_2bar_small", {"enc_rnn_size": 32}).enc_rnn_size == (32,)
    with pytest.raises(ConfigError, match="unknown hparam 'z_sise'"):
        get_config("cat-mel_2bar_small", {"z_sise": 8})


@pytest.mark.parametrize("hparams", ["sampling_rate=0", "sampling_rate=0.5",
                                     "sampling_schedule=constant,sampling_rate=1000"])
def test_sampling_rates_magenta_rejects_are_config_errors(hparams):
    """inverse_sigmoid k < 1 gave p_sample NaN then 1 (every input sampled) and a constant
    rate > 1 a 'probability' of 1000: both trained free-running without a word."""
    from hmvae_tf.configs import ConfigError, get_config

    with pytest.raises(ConfigError, match="sampling_rate"):
        get_config("cat-mel_2bar_small", hparams)
    assert get_config("cat-mel_2bar_small",
                      "sampling_schedule=constant,sampling_rate=0").sampling_rate == 0


def test_gradients_are_clipped_or_zeroed_like_magenta():
    """Global norm clipped to clip_norm; a norm >= 10,000, inf or NaN gives zeros (Magenta's
    grad_norm_clip_to_zero), so one exploding batch leaves the weights as they were."""
    from hmvae_tf.model.vae import clip_or_zero

    for scale, expected_norm in ((2.5, 1.0), (0.5, 0.5), (500.0, 1.0), (1e5, 0.0),
                                 (np.inf, 0.0), (np.nan, 0.0)):
        grads = [tf.constant([0.6, 0.8]) * scale, tf.zeros([3])]
        out = clip_or_zero(grads, 1.0)
        assert float(tf.linalg.global_norm(out)) == pytest.approx(expected_norm), scale
        assert all(np.isfinite(g.numpy()).all() for g in out)


def test_initial_state_layers_start_near_zero_like_magenta():
    """Magenta's initial_cell_state_from_embedding kernel is N(0, 0.001^2)."""
    model = built(tiny_config("hierdec-mel_16bar"))
    kernels = [v for v in model.weights if "initial_state" in v.path and "kernel" in v.path]
    assert len(kernels) == 2  # the conductor's and the core decoder's
    assert all(float(np.std(k.numpy())) < 0.002 for k in kernels)


def test_objective_matches_hand_computation():
    config = tiny_config(extra="free_bits=2,max_beta=0.5,beta_rate=0.99")
    model = built(config)
    rng = np.random.default_rng(0)
    tokens = random_tokens(config, 2)
    logits = [tf.constant(rng.normal(size=(2, 32, 90)), tf.float32)]
    mu = rng.normal(size=(2, 8)).astype(np.float32)
    sigma = np.exp(rng.normal(size=(2, 8)) * 0.3).astype(np.float32)
    q = tfd.MultivariateNormalDiag(mu, sigma)
    terms = model.objective(tf.constant(tokens), logits, q, step=100)

    lg = logits[0].numpy().astype(np.float64)
    log_softmax = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_softmax, tokens[..., :1], -1)[..., 0].sum(-1)  # [2]
    kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * np.log(sigma)).sum(-1)          # [2]
    beta = (1 - 0.99 ** 100) * 0.5
    kl_cost = np.maximum(kl - 2 * math.log(2), 0)
    expected = ce.mean() + beta * kl_cost.mean()
    np.testing.assert_allclose(terms["r_loss"].numpy(), ce.mean(), rtol=1e-5)
    np.testing.assert_allclose(terms["kl_bits"].numpy(), kl.mean() / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(terms["beta"].numpy(), beta, rtol=1e-6)
    np.testing.assert_allclose(terms["loss"].numpy(), expected, rtol=1e-5)
    accuracy = (lg.argmax(-1) == tokens[..., 0]).mean()
    np.testing.assert_allclose(terms["accuracy"].numpy(), accuracy, rtol=1e-6)


def test_free_bits_budget_is_on_the_total_kl():
    kl = tf.constant([0.5, 3.0, 10.0])  # nats, total over z per example
    np.testing.assert_allclose(free_bits_cost(kl, 2.0).numpy(),
                               np.maximum(kl.numpy() - 2 * math.log(2), 0), rtol=1e-6)
    assert free_bits_cost(kl, 0.0).numpy().tolist() == pytest.approx([0.5, 3.0, 10.0])


def test_schedules():
    assert float(schedules.kl_beta(0, 0.2, 0.99999)) == 0.0
    np.testing.assert_allclose(float(schedules.kl_beta(100_000, 0.2, 0.99999)),
                               (1 - 0.99999 ** 100_000) * 0.2, rtol=1e-4)
    # Inverse sigmoid: almost always the target early, almost always a sample late.
    p = [float(schedules.sampling_probability(s, "inverse_sigmoid", 1000.0))
         for s in (0, 1000 * math.log(1000), 20_000, 10**7)]
    assert p[0] == pytest.approx(1 - 1000 / 1001, rel=1e-4)
    assert p[1] == pytest.approx(0.5, rel=1e-3)
    assert p[2] > 0.99 and p[3] == 1.0
    assert float(schedules.sampling_probability(123, "constant", 0.25)) == 0.25
    lr = schedules.ExponentialDecayToFloor(1e-3, 0.9999, 1e-5)
    np.testing.assert_allclose(float(lr(0)), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(float(lr(10_000)), (1e-3 - 1e-5) * 0.9999 ** 10_000 + 1e-5,
                               rtol=1e-4)


def test_teacher_forced_and_autoregressive_paths_agree():
    """The loop used for sampling and scheduled sampling computes the same logits as the
    whole-sequence (Keras LSTM) path when it is fed the targets."""
    for name in ("cat-mel_2bar_small", "hierdec-trio_16bar"):
        config = tiny_config(name)
        model = built(config)
        tokens = tf.constant(random_tokens(config, 2, seed=3))
        z = tf.random.normal([2, config.z_size])
        expected = model.decoder.teacher_forced_logits(z, tokens)
        never = lambda t, k, logits: tf.zeros(tf.shape(logits)[:1], tf.int32)  # noqa: E731
        _, looped = model.decoder.autoregress(
            z, never, targets=tokens, use_target=tf.ones(tokens.shape[:2], tf.bool),
            return_logits=True)
        for a, b in zip(expected, looped):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["cat-mel_2bar_small", "hierdec-trio_16bar"])
def test_scheduled_inputs_mix_targets_and_the_models_samples(name):
    """Scheduled sampling's inputs: the targets at p_sample 0, the model's own samples at 1
    (an output bias that makes one class near-certain shows they come from its logits)."""
    config = tiny_config(name)
    model = built(config)
    tokens = tf.constant(random_tokens(config, 4, seed=5))
    z = tf.random.normal([4, config.z_size])
    np.testing.assert_array_equal(model.scheduled_inputs(z, tokens, 0.0).numpy(), tokens.numpy())
    favourite = [3, 1, 2]
    for core, c in zip(model.decoder.cores, favourite):
        core.output_layer.bias.assign(tf.one_hot(c, core.num_classes) * 60.0)
    sampled = model.scheduled_inputs(z, tokens, 1.0).numpy()
    for k in range(len(config.track_classes)):
        assert (sampled[..., k] == favourite[k]).all()
    tf.random.set_seed(0)
    mixed, target = model.scheduled_inputs(z, tokens, 0.5).numpy()[..., 0], tokens.numpy()[..., 0]
    assert ((mixed == target) | (mixed == favourite[0])).all()
    informative = target != favourite[0]  # where a sample and the target differ
    assert 0.3 < (mixed[informative] == favourite[0]).mean() < 0.7


def test_scheduled_inputs_in_batch_shards_are_the_same(monkeypatch):
    """On a multi-core CPU the step loop runs one shard of rows per core; forced shards give
    the inputs one loop gives for the same noise."""
    from hmvae_tf.model import vae

    config = tiny_config("cat-mel_2bar_small")
    model = built(config)
    tokens = tf.constant(random_tokens(config, 5, seed=6))
    z = tf.random.normal([5, config.z_size])

    def picked(sizes):
        monkeypatch.setattr(vae, "cpu_shard_sizes", lambda batch: sizes)
        tf.random.set_seed(11)
        return model.scheduled_inputs(z, tokens, 0.5).numpy()

    whole, sharded = picked([5]), picked([2, 3])
    assert (whole != tokens.numpy()).any()  # some inputs are the model's samples
    np.testing.assert_array_equal(sharded, whole)


@pytest.mark.parametrize("name", ["cat-mel_2bar_small", "hierdec-trio_16bar"])
def test_teacher_forcing_on_scheduled_inputs_has_the_step_loops_loss_and_gradients(
        monkeypatch, name):
    """Training's second pass (teacher forcing with the training LSTM on the inputs the step
    loop picked) has the loss and gradients of backprop through that step loop itself."""
    config = tiny_config(name)
    model = built(config)
    tokens = tf.constant(random_tokens(config, 3, seed=7))
    z = tf.constant(np.random.default_rng(7).normal(size=(3, config.z_size)), tf.float32)
    inputs = model.scheduled_inputs(z, tokens, 0.5)
    replay = lambda t, k, logits: inputs[:, t, k]  # noqa: E731
    never = tf.zeros(tokens.shape[:2], tf.bool)
    variables = model.decoder.trainable_variables

    def loss_and_grads(logits_of):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = sum(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tokens[..., k], lg)) for k, lg in enumerate(logits_of()))
        return loss, tape.gradient(loss, [z] + variables)

    two_pass = loss_and_grads(lambda: model.decoder.teacher_forced_logits(z, inputs, True))
    step_loop = loss_and_grads(lambda: model.decoder.autoregress(
        z, replay, targets=tokens, use_target=never, return_logits=True, training=True)[1])
    np.testing.assert_allclose(two_pass[0].numpy(), step_loop[0].numpy(), rtol=1e-5)
    # compute_terms, the training loss, takes that route when p_sample is given.
    monkeypatch.setattr(model, "posterior_sample", lambda q: z)
    monkeypatch.setattr(model, "scheduled_pass", lambda z_, tokens_, p, **kw: (inputs, None))
    r_loss = model.compute_terms(tokens, training=True, p_sample=tf.constant(0.5))["r_loss"]
    np.testing.assert_allclose(r_loss.numpy() * 3, step_loop[0].numpy(), rtol=1e-5)
    for a, b in zip(two_pass[1], step_loop[1]):
        # Two float32 routes through up to 256 steps: gradients of size ~10 differ in the
        # sixth digit (an unseeded z once gave 1.1e-5 on 5.57).
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                   tf.convert_to_tensor(b).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sizes, decoder_sizes", [([6], [6]), ([2, 4], [2, 4]), ([2, 4], [6]),
                                                   ([6], [3, 3])])
def test_teacher_forcing_reuses_the_pick_loops_activations(monkeypatch, sizes, decoder_sizes):
    """Under a training tape, a flat decoder's second pass takes the LSTM activations the
    pick loop went through instead of running forward again: same inputs, loss and
    gradients as running it (also with the batch in shards, cut the same way in both passes
    or not), and train_step goes that way."""
    from hmvae_tf.model import lstm, lstm_training, vae

    monkeypatch.setattr(vae, "cpu_shard_sizes", lambda batch: sizes)
    monkeypatch.setattr(lstm, "cpu_shard_sizes", lambda batch: decoder_sizes)
    config = tiny_config("cat-mel_2bar_small")
    model = built(config)
    tokens = tf.constant(random_tokens(config, 6, seed=8))
    z = tf.random.normal([6, config.z_size])
    variables = model.decoder.trainable_variables

    def second_pass(keep):
        tf.random.set_seed(12)
        with tf.GradientTape() as tape:
            tape.watch(z)
            with tape.stop_recording():
                inputs, forward = model.scheduled_pass(z, tokens, 0.5, keep_activations=keep)
            logits = model.decoder.teacher_forced_logits(z, inputs, True, forward=forward)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tokens[..., 0], logits[0]))
        return inputs, forward, loss, tape.gradient(loss, [z] + variables)

    rerun, reused = second_pass(False), second_pass(True)
    assert rerun[1] is None and len(reused[1][0]) == len(config.dec_rnn_size)
    np.testing.assert_array_equal(reused[0].numpy(), rerun[0].numpy())
    assert (reused[0].numpy() != tokens.numpy()).any()  # some inputs are samples
    np.testing.assert_allclose(reused[2].numpy(), rerun[2].numpy(), rtol=1e-6)
    for a, b in zip(reused[3], rerun[3]):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                   tf.convert_to_tensor(b).numpy(), atol=1e-5)

    # The training step hands the loop's activations over (and only it: no tape, no reuse).
    given = []
    real = lstm_training.recurrence
    monkeypatch.setattr(lstm_training, "recurrence",
                        lambda *a, forward=None, **kw: given.append(forward) or real(
                            *a, forward=forward, **kw))
    model.compile_for_training()
    model.train_step(tokens)
    decoder_layers = given[-len(config.dec_rnn_size):]
    assert all(isinstance(f, lstm_training.Activations) or (
        isinstance(f, list) and len(f) == len(sizes)
        and all(isinstance(s, lstm_training.Activations) for s in f)) for f in decoder_layers)
    given.clear()
    model.compute_terms(tokens, training=True, p_sample=tf.constant(0.5))
    assert given and all(f is None for f in given)


def test_hierarchical_bar_boundaries():
    """Bar k's first step reads bar k-1's last token and nothing else from bar k-1: the core
    decoder restarts from the conductor at every bar."""
    config = tiny_config("hierdec-mel_16bar")
    model = built(config)
    z = tf.random.normal([1, config.z_size])
    base = scale_melodies(1, config.num_steps)
    never = lambda t, k, logits: tf.zeros(tf.shape(logits)[:1], tf.int32)  # noqa: E731

    def logits_for(tokens):
        _, (lg,) = model.decoder.autoregress(
            z, never, targets=tf.constant(tokens), use_target=tf.ones([1, config.num_steps], bool),
            return_logits=True)
        return lg.numpy()[0]

    ref = logits_for(base)
    last_of_bar0 = base.copy()
    last_of_bar0[0, 15, 0] = 60
    inside_bar0 = base.copy()
    inside_bar0[0, 10, 0] = 60
    changed_last, changed_inside = logits_for(last_of_bar0), logits_for(inside_bar0)
    assert not np.allclose(changed_last[16], ref[16])   # bar 1 starts from token 15
    np.testing.assert_allclose(changed_inside[16:], ref[16:], atol=1e-6)  # nothing else leaks
    assert not np.allclose(changed_inside[11], ref[11])  # within a bar, tokens do matter


def test_flat_decoder_carries_state_across_bars():
    config = tiny_config()
    model = built(config)
    z = tf.random.normal([1, config.z_size])
    base = scale_melodies(1, config.num_steps)
    changed = base.copy()
    changed[0, 10, 0] = 60
    never = lambda t, k, logits: tf.zeros(tf.shape(logits)[:1], tf.int32)  # noqa: E731
    outs = []
    for tokens in (base, changed):
        _, (lg,) = model.decoder.autoregress(
            z, never, targets=tf.constant(tokens), use_target=tf.ones([1, 32], bool),
            return_logits=True)
        outs.append(lg.numpy()[0])
    assert not np.allclose(outs[0][20], outs[1][20])


def test_sampling_is_reproducible_and_rows_are_independent():
    config = tiny_config()
    model = built(config)
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]])
    temps = tf.constant([0.0, 1.0, 0.7])
    a, za = model.sample(3, temps, seeds)
    b, zb = model.sample(3, temps, seeds)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    single, zs = model.sample(1, temps[1:2], seeds[1:2])
    np.testing.assert_array_equal(single.numpy()[0], a.numpy()[1])
    np.testing.assert_allclose(zs.numpy()[0], za.numpy()[1])
    other, _ = model.sample(1, tf.constant([1.0]), tf.constant([[9, 9]]))
    assert not np.array_equal(other.numpy()[0], a.numpy()[1])


def test_an_int_seed_draws_what_the_served_signatures_draw_for_it():
    """sample(n, seed=7) failed ('Attempting to slice scalar input'): only per-row seeds
    [n, 2] worked. An int s now gives row i the seed (s, i), and every interpolation step
    (s, 0), as the serving client sends them, so Python and a server agree on a seed."""
    from hmvae_tf.export import ServingModule
    from hmvae_tf.serving.client import row_seeds

    config = tiny_config()
    model = built(config)
    served = ServingModule(model)
    temps = tf.fill([3], 0.8)
    tokens, z = model.sample(3, temperature=0.8, seed=7)
    expected = served.sample(temps, tf.constant(row_seeds(7, 3)))
    np.testing.assert_array_equal(tokens[..., 0], expected["melody"])
    np.testing.assert_allclose(z, expected["z"], atol=1e-6)
    assert len({row.tobytes() for row in tokens.numpy()}) == 3  # rows differ
    decoded = model.decode(z, temperature=0.8, seed=7)
    np.testing.assert_array_equal(
        decoded[..., 0], served.decode(z, temps, tf.constant(row_seeds(7, 3)))["melody"])
    a, b = scale_melodies(2, config.num_steps, seed=4)
    steps, zi = model.interpolate(a, b, num_steps=3, temperature=0.8, seed=5)
    one_seed = np.repeat(row_seeds(5, 1), 3, axis=0)
    expected = served.interpolate(melody_a=np.repeat(a.T, 3, 0), melody_b=np.repeat(b.T, 3, 0),
                                  alpha=tf.linspace(0.0, 1.0, 3), temperature=temps,
                                  seed=tf.constant(one_seed))
    np.testing.assert_array_equal(steps[..., 0], expected["melody"])
    np.testing.assert_allclose(zi, expected["z"], atol=1e-5)
    with pytest.raises(ValueError, match=r"a seed is an int in 0 \.\. 2147483647, not -1"):
        model.sample(1, seed=-1)

@pytest.mark.parametrize("name", ["hierdec-mel_16bar", "hierdec-trio_16bar"])
def test_decoding_every_bar_at_once_draws_the_sequential_melodies(name):
    """The parallel-bars decode must reach the sequential decode's tokens exactly. Argmax rows
    of an untrained tiny model keep changing bars' last tokens for many rounds (up to all 16
    here), so a loop stopped early would differ; sampled rows converge in two."""
    model = built(tiny_config(name))
    rows = 8
    seeds = tf.stack([tf.range(rows), tf.fill([rows], 5)], -1)
    z = tf.random.stateless_normal([rows, model.config.z_size], [3, 4])
    temps = tf.constant([0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.5])
    noise = sampling.gumbel_from_seeds(seeds, model.noise_shape)
    sequential = tf.function(lambda z, t, n: model.decode(z, t, noise=n))(z, temps, noise)
    parallel = tf.function(lambda z, t, n: model.decode(z, t, noise=n, bars_in_parallel=True))
    np.testing.assert_array_equal(parallel(z, temps, noise).numpy(), sequential.numpy())
    # One row at a time as well (what a served 1-sample request runs).
    np.testing.assert_array_equal(parallel(z[:1], temps[:1], noise[:1]).numpy(),
                                  sequential.numpy()[:1])


def test_sample_of_no_rows_is_empty_and_a_negative_count_is_one_clear_error():
    """sample(0, seed=s) failed in decode (its seeded z came out [0], not [0, Z]) while
    sample(0) gave no rows; sample(-1) failed deep in RandomStandardNormal."""
    model = built(tiny_config())
    for seed in (None, 1):
        tokens, z = model.sample(0, seed=seed)
        assert tokens.shape == (0, model.config.num_steps, 1) and z.shape == (0, 8)
    assert model.sample(2.0)[0].shape[0] == model.sample(2.0, seed=1)[0].shape[0] == 2
    for n in (-1, 2.5):
        with pytest.raises(ValueError, match=f"n is a number of sequences, an int >= 0, "
                                             f"not {n}"):
            model.sample(n, seed=1)


def test_decoding_every_bar_at_once_runs_eagerly():
    """Run eagerly (no tf.function: a notebook's call), decode(bars_in_parallel=True) failed
    in its second round: 'Could not read index 0 twice because it was cleared'."""
    model = built(tiny_config("hierdec-mel_16bar"))
    z = tf.random.stateless_normal([2, model.config.z_size], [3, 4])
    for temperature in (0.0, 1.0):
        np.testing.assert_array_equal(
            model.decode(z, temperature, seed=2, bars_in_parallel=True),
            model.decode(z, temperature, seed=2))


def test_noise_made_outside_xla_gives_a_compiled_decode_the_seeds_draws():
    """decode's docstring: under jit_compile a seed draws other numbers (XLA's stateless
    ops differ), and noise from gumbel_from_seeds made outside XLA restores the draw."""
    model = built(tiny_config())
    z = tf.random.stateless_normal([3, model.config.z_size], [1, 1])
    noise = sampling.gumbel_from_seeds(sampling.row_seeds(3, 3), model.noise_shape)
    compiled = tf.function(lambda z, n: model.decode(z, 1.0, noise=n), jit_compile=True)
    np.testing.assert_array_equal(compiled(z, noise), model.decode(z, 1.0, seed=3))


def test_argmax_decode_ignores_the_seed():
    config = tiny_config()
    model = built(config)
    z = tf.random.normal([2, config.z_size])
    a = model.decode(z, 0.0, seed=tf.constant([[1, 1], [2, 2]]))
    b = model.decode(z, 0.0, seed=tf.constant([[7, 7], [8, 8]]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_decode_takes_numpy_float64_z_and_refuses_other_shapes_in_one_line():
    """z computed in numpy (a mean plus an attribute vector) is float64: decode failed deep in
    a matmul ('expected to be a double tensor but is a float tensor'), and a single z [Z]
    or a z of another model's size failed inside the decoder too."""
    config = tiny_config()
    model = built(config)
    z = np.random.default_rng(0).normal(size=(2, config.z_size))
    np.testing.assert_array_equal(model.decode(z), model.decode(z.astype(np.float32)))
    with pytest.raises(ValueError, match=r"z of shape \[batch, 8\], not \[8\] \(for one z "
                                         r"add the batch axis: z\[None\]\)"):
        model.decode(z[0])
    with pytest.raises(ValueError, match=r"z of shape \[batch, 8\], not \[2, 4\]$"):
        model.decode(z[:, :4])
    with pytest.raises(ValueError, match="z holds floats, not int64"):
        model.decode(np.zeros((2, config.z_size), np.int64))


def test_a_negative_or_nan_temperature_is_one_clear_error():
    """A temperature of -1 or NaN decoded by argmax without a word (the serving client
    refuses both); eager decode, sample and interpolate now refuse them."""
    model = built(tiny_config())
    z = tf.zeros([2, model.config.z_size])
    for bad in (-1.0, float("nan"), float("inf"), [0.5, -0.5]):
        with pytest.raises(ValueError, match=r"temperature is finite and >= 0 \(0 = argmax\)"):
            model.decode(z, bad, seed=1)
    with pytest.raises(ValueError, match="temperature is finite"):
        model.sample(2, temperature=-0.5, seed=1)
    assert model.decode(z, [0.0, 1.5], seed=1).shape == (2, model.config.num_steps, 1)


def test_a_scalar_seed_tensor_is_an_int_seed():
    """A seed passed into a tf.function (so that a new seed does not retrace) is a scalar
    tensor: it failed in map_fn ('Elements in elems must be 1+ dimensional'). It now draws
    what the int draws; a float seed is refused, not truncated."""
    config = tiny_config()
    model = built(config)
    z = tf.random.stateless_normal([3, config.z_size], [1, 2])
    decode = tf.function(lambda z, seed: model.decode(z, temperature=1.0, seed=seed))
    np.testing.assert_array_equal(decode(z, tf.constant(4)), model.decode(z, 1.0, seed=4))
    np.testing.assert_array_equal(model.sample(3, 1.0, seed=tf.constant(9, tf.int64))[0],
                                  model.sample(3, 1.0, seed=9)[0])
    with pytest.raises(ValueError, match="seeds are integers, not float32"):
        model.decode(z, 1.0, seed=tf.constant(4.5))


def test_slerp():
    p0 = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    p1 = tf.constant([[0.0, 2.0], [2.0, 0.0]])  # second row: parallel -> linear
    mid = slerp(p0, p1, tf.constant([0.5, 0.5])).numpy()
    np.testing.assert_allclose(mid[0], [math.sin(math.pi / 4) / 1.0, 2 * math.sin(math.pi / 4)],
                               rtol=1e-5)
    np.testing.assert_allclose(mid[1], [1.5, 0.0], rtol=1e-5)
    ends = slerp(p0, p1, tf.constant([0.0, 1.0])).numpy()
    np.testing.assert_allclose(ends, [[1.0, 0.0], [2.0, 0.0]], atol=1e-6)


def test_interpolate_endpoints_are_reconstructions():
    config = tiny_config()
    model = built(config)
    tokens = scale_melodies(2, 32)
    out, z = model.interpolate(tokens[0], tokens[1], num_steps=5)
    mus = model.encode(tf.constant(tokens)).mean()
    np.testing.assert_allclose(z.numpy()[[0, -1]], mus.numpy(), atol=1e-5)
    recon = model.decode(mus, 0.0)
    np.testing.assert_array_equal(out.numpy()[[0, -1]], recon.numpy())


def test_interpolate_takes_one_window_each_and_refuses_others_in_one_line():
    """A 4-bar window given to a 2-bar model failed in a reshape ('Input to reshape is a
    tensor with 64 values'), a [2, 16] array (two half windows) was reshaped into one
    window without a word, and an int64 window beside an int32 one failed in tf.stack."""
    config = tiny_config()
    model = built(config)
    a, b = scale_melodies(2, config.num_steps)
    steps, _ = model.interpolate(a[:, 0].astype(np.int64), b, num_steps=3)
    np.testing.assert_array_equal(steps, model.interpolate(a, b, num_steps=3)[0])
    with pytest.raises(ValueError, match=r"tokens_a is one window of cat-mel_2bar_small, "
                                         r"\[32\] or \[32, 1\] or \[1, 32\] or \[1, 32, 1\], "
                                         r"not \[64\]"):
        model.interpolate(np.concatenate([a, a])[:, 0], b)
    with pytest.raises(ValueError, match=r"tokens_b is one window .*, not \[2, 16\]"):
        model.interpolate(a, b.reshape(2, 16))
    trio = built(tiny_config("hierdec-trio_16bar"))
    window = random_tokens(trio.config, 1)
    with pytest.raises(ValueError, match=r"\[256, 3\] or \[1, 256, 3\], not \[768\]"):
        trio.interpolate(window.reshape(-1), window)


@pytest.mark.parametrize("name", ["cat-mel_2bar_small", "hierdec-trio_16bar"])
def test_loop_kernels_match_keras_layers(monkeypatch, name):
    """The CPU/export path (gathered input projections + our while loop) computes exactly
    what the Keras LSTM layers (the cuDNN path on a GPU) compute with the same weights."""
    from hmvae_tf.model import decoders, encoder, lstm

    config = tiny_config(name, "enc_rnn_size=[24,16]")
    model = built(config)
    tokens = tf.constant(random_tokens(config, 3, seed=5))
    z = tf.random.normal([3, config.z_size])
    q_loop = model.encode(tokens)
    logits_loop = model.decoder.teacher_forced_logits(z, tokens)
    for module in (decoders, encoder, lstm):
        monkeypatch.setattr(module, "gpu_available", lambda: True)
    q_keras = model.encode(tokens)
    logits_keras = model.decoder.teacher_forced_logits(z, tokens)
    np.testing.assert_allclose(q_loop.mean(), q_keras.mean(), atol=1e-6)
    np.testing.assert_allclose(q_loop.stddev(), q_keras.stddev(), atol=1e-6)
    for a, b in zip(logits_loop, logits_keras):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_a_new_model_is_built_and_trains_samples_and_loads_weights_at_once(tmp_path):
    """Every weight comes from the config, so MusicVAE(config) needs no build() or first call:
    fit and sample reach the decoder without Keras' __call__, and failed deep inside it
    ('LSTMCell' object has no attribute 'kernel'); load_weights refused an unbuilt model."""
    config = tiny_config()
    model = MusicVAE(config)
    assert model.built and len(model.weights) == len(built(config).weights)
    tokens, _ = model.sample(2, temperature=1.0, seed=tf.constant([[1, 2], [3, 4]]))
    assert tokens.shape == (2, config.num_steps, 1)
    model.compile_for_training()
    data = tf.data.Dataset.from_tensor_slices(scale_melodies(8, config.num_steps)).batch(4)
    history = model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 2 and np.isfinite(history.history["loss"][-1])
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    fresh = MusicVAE(config)
    fresh.load_weights(path)
    fresh.build()  # a second build changes nothing
    for a, b in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_one_track_models_take_the_music_layout_and_other_shapes_are_one_clear_error():
    """hmvae_tf.music gives a melody window as [T] and a batch as [B, T]; the model took only
    [B, T, 1] and failed inside the encoder's transpose ('Dimension must be 2 but is 3')."""
    config = tiny_config()
    model = MusicVAE(config)
    tokens = scale_melodies(3, config.num_steps)
    np.testing.assert_array_equal(model.encode(tokens[..., 0]).mean(), model.encode(tokens).mean())
    np.testing.assert_array_equal(model.encode(tokens.astype(np.int64)).mean(),
                                  model.encode(tokens).mean())
    tf.random.set_seed(3)
    flat = {k: float(v) for k, v in model.compute_terms(tokens[..., 0]).items()}
    tf.random.set_seed(3)
    assert flat == {k: float(v) for k, v in model.compute_terms(tokens).items()}
    with pytest.raises(ValueError, match=r"\[batch, 32, 1\] \(or \[batch, 32\]\).*not \[32\]; "
                                         r"for one window add the batch axis"):
        model.encode(tokens[0, :, 0])
    with pytest.raises(ValueError, match=r"not \[32, 1\]; for one window add the batch axis"):
        model.encode(tokens[0])  # a row of the model's own output
    with pytest.raises(ValueError, match=r"not \[3, 16, 1\]"):
        model(tokens[:, :16])
    with pytest.raises(ValueError, match="integer class ids, not float32"):
        model.encode(tokens.astype(np.float32))
    trio = MusicVAE(tiny_config("hierdec-trio_16bar"))
    with pytest.raises(ValueError, match=r"\[batch, 256, 3\]: 16 bars of melody/bass/drums, "
                                         r"not \[256, 3\]; for one window add the batch axis"):
        trio.encode(random_tokens(trio.config, 1)[0])


def test_tokens_of_unknown_rank_get_the_track_axis_at_run_time():
    """Keras' distributed step (MirroredStrategy) retraces with tokens of unknown rank after
    batches of two shapes: fit on a [B, T] tf.data pipeline then failed in the decoder
    ('Index out of range using input dim 2') instead of taking the music layout."""
    config = tiny_config()
    model = MusicVAE(config)
    tokens = scale_melodies(3, config.num_steps)
    means = tf.function(lambda x: model.encode(x).mean(),
                        input_signature=[tf.TensorSpec(None, tf.int32)])
    np.testing.assert_allclose(means(tokens[..., 0]), model.encode(tokens).mean(), atol=1e-6)
    np.testing.assert_allclose(means(tokens), model.encode(tokens).mean(), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Shape of tensor"):
        means(tokens[:, :16])


def test_eager_calls_refuse_ids_outside_the_vocabulary():
    """encode took a negative id (a melody shifted by hand, NO_EVENT included) as an all-zero
    one-hot and gave a posterior without a word; a large id failed inside a gather."""
    config = tiny_config()
    model = MusicVAE(config)
    tokens = scale_melodies(2, config.num_steps)
    for bad in (tokens - 12, np.where(tokens >= 2, tokens + 80, tokens)):
        with pytest.raises(ValueError, match=r"melody tokens are the model's class ids "
                                             r"0\.\.89, not -?\d+$"):
            model.encode(bad)
    trio = MusicVAE(tiny_config("hierdec-trio_16bar"))
    window = random_tokens(trio.config, 1)
    window[0, 5, 2] = 512
    with pytest.raises(ValueError, match=r"drums tokens are the model's class ids 0\.\.511, "
                                         r"not 512"):
        trio.compute_terms(window)


def test_fit_refuses_x_y_pairs_in_one_line():
    """An autoencoder habit, fit on (x, x): the pair reached the encoder stacked as one
    [2, B, T, K] tensor and failed in a transpose."""
    config = tiny_config()
    model = MusicVAE(config)
    model.compile_for_training()
    tokens = scale_melodies(4, config.num_steps)
    data = tf.data.Dataset.from_tensor_slices((tokens, tokens)).batch(4)
    with pytest.raises(ValueError, match=r"not \(x, y\) pairs; map the dataset to x"):
        model.fit(data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"not \(x, y\) pairs"):
        model.evaluate(data, verbose=0)


def test_a_keras_file_keeps_the_config_weights_and_optimizer_state(tmp_path):
    """model.save('m.keras') raised NotImplementedError ('must override get_config()'); the
    .keras file now rebuilds the same model, which resumes with Adam's state and step."""
    import keras

    config = tiny_config(extra="z_size=6")
    model = MusicVAE(config)
    model.compile_for_training()
    data = tf.data.Dataset.from_tensor_slices(scale_melodies(8, config.num_steps)).batch(4)
    model.fit(data, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MusicVAE) and loaded.config == config
    assert int(loaded.optimizer.iterations) == 2
    for a, b in zip(loaded.weights + loaded.optimizer.variables,
                    model.weights + model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(data, epochs=1, verbose=0)
    assert int(loaded.optimizer.iterations) == 4
