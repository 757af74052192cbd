"""`hmvae train --dtype_policy=mixed_bfloat16`: the products run in bfloat16, nothing else does,
and training computes what float32 training computes to bfloat16's precision."""
import os

import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf import checkpoints, data, train
from hmvae_tf.model import precision
from hmvae_tf.model.lstm import run_lstm
from hmvae_tf.model.vae import MusicVAE
from model_helpers import random_tokens, scale_melodies, tiny_config


def _loss_and_grads(model, tokens):
    with tf.GradientTape() as tape:
        terms = model.compute_terms(tokens, training=True, p_sample=tf.constant(0.5))
    return terms["r_loss"], tape.gradient(terms["r_loss"], model.trainable_variables)


def _matmul_dtypes(fn, *args):
    """dtypes of every MatMul in fn's graph and in the functions it calls (loop bodies)."""
    graph_def = tf.function(fn).get_concrete_function(*args).graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes
            if n.op in ("MatMul", "BatchMatMulV2", "_MklMatMul")}


@pytest.mark.parametrize("name", ["cat-mel_2bar_small", "hierdec-mel_16bar"])
def test_mixed_bfloat16_runs_the_products_in_bfloat16_and_matches_float32(name):
    config = tiny_config(name)
    model = MusicVAE(config)
    model.build()
    tokens = tf.constant(random_tokens(config, 4))
    with precision.policy("float32"):
        tf.random.set_seed(5)
        want_loss, want_grads = tf.function(_loss_and_grads)(model, tokens)
        assert _matmul_dtypes(lambda t: _loss_and_grads(model, t), tokens) == {"float32"}
    with precision.policy("mixed_bfloat16"):
        tf.random.set_seed(5)
        got_loss, got_grads = tf.function(_loss_and_grads)(model, tokens)
        # The training graph's products, forward and backward, are bfloat16; the few small
        # dense layers (mu, sigma, initial states) stay float32.
        assert "bfloat16" in _matmul_dtypes(lambda t: _loss_and_grads(model, t), tokens)
    assert precision.policy_name() == "float32"  # the block restored the default
    assert got_loss.dtype == tf.float32
    np.testing.assert_allclose(float(got_loss), float(want_loss), rtol=2e-2)
    for variable, got, want in zip(model.trainable_variables, got_grads, want_grads):
        assert got.dtype == tf.float32, variable.path
        scale = float(tf.reduce_max(tf.abs(want)))
        if scale > 1e-3:
            # bfloat16 keeps 8 bits of mantissa: agreement to a few percent of the largest entry.
            assert float(tf.reduce_max(tf.abs(got - want))) < 0.05 * scale, variable.path


def test_the_training_recurrence_in_bfloat16_is_close_to_float32():
    steps, batch, units = 9, 6, 8
    proj = tf.random.stateless_normal([steps, batch, 4 * units], seed=[0, 1])
    kernel = 0.5 * tf.random.stateless_normal([units, 4 * units], seed=[0, 2])
    zeros = tf.zeros([batch, units])
    results = {}
    for name in precision.POLICIES:
        with precision.policy(name), tf.GradientTape() as tape:
            tape.watch([proj, kernel])
            outputs, h, _ = run_lstm(proj, kernel, zeros, zeros, training=True)
            loss = tf.reduce_sum(outputs * tf.range(units, dtype=tf.float32)) + tf.reduce_sum(h)
        results[name] = [outputs, *tape.gradient(loss, [proj, kernel])]
    for want, got in zip(results["float32"], results["mixed_bfloat16"]):
        assert got.dtype == tf.float32
        assert not np.array_equal(got.numpy(), want.numpy())  # bfloat16 did run
        np.testing.assert_allclose(got.numpy(), want.numpy(),
                                   atol=0.03 * float(tf.reduce_max(tf.abs(want))))


def test_training_with_mixed_bfloat16_learns_and_checkpoints_float32_weights(tmp_path):
    config = tiny_config(extra="batch_size=16")
    windows = tf.data.Dataset.from_tensor_slices(scale_melodies(64, config.num_steps)[..., 0])
    pipeline = data.make_pipeline(windows, config, config.batch_size, training=True, seed=0)
    history = train.train(config, str(tmp_path / "m"), num_steps=80, checkpoint_every=40,
                          train_data=pipeline, seed=1, dtype_policy="mixed_bfloat16", verbose=0)
    r_loss = history.history["r_loss"]
    assert r_loss[-1] < 0.8 * r_loss[0]
    assert precision.policy_name() == "float32"
    loaded = checkpoints.load_model(str(tmp_path / "m"))
    assert all(v.dtype == "float32" for v in loaded.weights)
    trained = {v.path: v.numpy() for v in history.model.weights}
    for v in loaded.weights:
        np.testing.assert_array_equal(v.numpy(), trained[v.path], err_msg=v.path)


def test_mixed_bfloat16_asks_xla_for_its_classic_cpu_runtime(monkeypatch):
    """Only that runtime gives XLA's bfloat16 products oneDNN's speed (bench/README.md)."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    with precision.policy("mixed_bfloat16"):
        assert os.environ["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x",
                                                   precision.XLA_CLASSIC_RUNTIME]
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"  # later processes: the user's
    monkeypatch.delenv("XLA_FLAGS")
    with precision.policy("mixed_bfloat16"):
        assert os.environ["XLA_FLAGS"] == precision.XLA_CLASSIC_RUNTIME
    assert "XLA_FLAGS" not in os.environ
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_thunk_runtime=true")
    with precision.policy("mixed_bfloat16"):  # the user's own choice stays
        assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_thunk_runtime=true"
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        precision.set_policy("float16")


_PREACTIVATIONS_PROBE = """
import numpy as np, tensorflow as tf
from hmvae_tf.model import lstm_training, precision
from hmvae_tf.model.lstm import LSTMStack
precision.set_policy("mixed_bfloat16")
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(32, 1024)).astype(np.float32))
h = tf.constant(rng.normal(size=(32, 256)).astype(np.float32))
stack = LSTMStack((256,))
stack.build((32, None, 91))
stack.lstms[0].cell.recurrent_kernel.assign(rng.normal(size=(256, 1024)).astype(np.float32) / 16)
kernel = precision.compute(stack.lstms[0].cell.recurrent_kernel)
product = tf.function(lambda h, k: precision.matmul(h, k), jit_compile=True)(h, kernel).numpy()

# The training recurrence's pre-activations.
training = tf.function(lambda x, h, k: tf.concat(lstm_training._preactivations(x, h, k), -1),
                       jit_compile=True)(x, h, kernel).numpy()
print("training max error", np.abs(training - (x.numpy() + product)).max())

# A sampling step (scheduled sampling's picks), whose input rows are gathered per step: its
# new cell state from c = 0 is sigmoid(i) * tanh(g).
table = tf.constant(rng.normal(size=(91, 1024)).astype(np.float32))
tokens = tf.constant(rng.integers(0, 91, size=32).astype(np.int32))
_, [(_, c)] = tf.function(lambda t, h: stack.step(tf.gather(table, t), [(h, tf.zeros_like(h))]),
                          jit_compile=True)(tokens, h)
zi, _, zg, _ = np.split(tf.gather(table, tokens).numpy() + product, 4, axis=-1)
print("sampling max error", np.abs(c.numpy() - tf.sigmoid(zi).numpy() * np.tanh(zg)).max())
"""


def test_bfloat16_preactivations_add_the_float32_input_to_the_rounded_product():
    """Inside the compiled training recurrence and a compiled sampling step (scheduled
    sampling's picks), x + h @ kernel must be x (float32) plus the product rounded to bfloat16,
    not the whole sum rounded to bfloat16. XLA's classic CPU runtime (a fresh process, so that
    XLA_FLAGS take effect) fused the addition into oneDNN's bfloat16 matmul on CPUs with AMX
    until the sum was formed per gate; elsewhere that fusion does not happen and this passes
    either way."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, XLA_FLAGS=precision.XLA_CLASSIC_RUNTIME, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", _PREACTIVATIONS_PROBE], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    errors = dict(line.split(" max error ") for line in out.stdout.splitlines()
                  if " max error " in line)
    assert set(errors) == {"training", "sampling"}, out.stdout
    # Rounding the sum (|x| ~ 1-4) to bfloat16 errs by up to 2e-2, and c by about 1e-3.
    for name, error in errors.items():
        assert float(error) <= 1e-5, (name, error)
