"""One train step on the same batch, on one device and under MirroredStrategy over two logical
CPUs; prints both losses and the largest weight difference as JSON.

Runs in its own process: logical devices must be configured before TensorFlow starts.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
from hmvae_tf.model.vae import MusicVAE  # noqa: E402
from model_helpers import scale_melodies, tiny_config  # noqa: E402


class MeanPosterior(MusicVAE):
    """z = mu, so both runs see the same z and differ only in how the batch is split."""

    def posterior_sample(self, q):
        return q.mean()


def one_step(strategy, weights, batch):
    with strategy.scope():
        model = MeanPosterior(config)
        model.build()
        # Plain SGD (lr 1): the weight change is exactly the clipped gradient, so comparing
        # weights compares gradients (Adam's first step is +-lr whatever the gradient size).
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    model.set_weights(weights)
    ds = tf.data.Dataset.from_tensors(batch)
    history = model.fit(ds, epochs=1, verbose=0)
    return history.history["loss"][0], model.get_weights()


# argv[1] = clip_norm: a small one makes clipping active (catches clipping each replica's
# share); a huge one leaves the raw gradient (catches a wrong loss scale, which clipping hides).
config = tiny_config(extra=f"batch_size=8,clip_norm={sys.argv[1]},max_beta=0.5,beta_rate=0.9,"
                     "sampling_schedule=constant,sampling_rate=0")  # no random decoder inputs
batch = tf.constant(scale_melodies(8, 32, seed=4))
with tf.distribute.get_strategy().scope():
    init = MeanPosterior(config)
    init.build()
weights = init.get_weights()
single_loss, single_w = one_step(tf.distribute.get_strategy(), weights, batch)
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
mirrored_loss, mirrored_w = one_step(mirrored, weights, batch)
print(json.dumps({
    "replicas": mirrored.num_replicas_in_sync,
    "single_loss": float(single_loss),
    "mirrored_loss": float(mirrored_loss),
    "max_weight_diff": max(float(abs(a - b).max()) for a, b in zip(single_w, mirrored_w)),
    "max_weight_change": max(float(abs(a - b).max()) for a, b in zip(single_w, weights)),
}))
