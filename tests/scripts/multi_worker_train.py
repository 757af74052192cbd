"""One worker of a MultiWorkerMirroredStrategy training (TF_CONFIG comes from the test).

Trains a tiny model on the same synthetic melodies as its peer, then prints a digest of its
weights so the test can check that both workers hold the same model.
"""
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from hmvae_tf import data, distribution, train  # noqa: E402
from hmvae_tf.cli import CommandError  # noqa: E402
from model_helpers import scale_melodies, tiny_config  # noqa: E402

strategy = distribution.make_strategy("multi_worker")  # before any other TensorFlow work

import tensorflow as tf  # noqa: E402

model_dir, steps = sys.argv[1], int(sys.argv[2])
batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 8
config = tiny_config(extra=f"batch_size={batch_size}")
windows = tf.data.Dataset.from_tensor_slices(scale_melodies(64, 32, seed=0)[..., 0])
pipeline = data.make_pipeline(windows, config, config.batch_size, training=True, seed=3)
try:
    history = train.train(config, model_dir, num_steps=steps,
                          checkpoint_every=min(steps // 2, 1000), strategy=strategy,
                          train_data=pipeline, seed=7, verbose=0)
except (train.TrainingStopped, ValueError, CommandError) as err:  # as `hmvae train` says them
    print(f"ERROR {type(err).__name__}: {err}", flush=True)
    sys.exit(1)
model = history.model
weights = model.get_weights()
digest = hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest()
print("RESULT " + json.dumps({
    "digest": digest, "replicas": strategy.num_replicas_in_sync,
    "step": int(model.optimizer.iterations.numpy()),
    "loss": history.history["loss"]}), flush=True)
