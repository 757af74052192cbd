"""`hmvae train`'s loop under MirroredStrategy over two logical CPUs, on a prepared mel_2bar
whose validation split has `n` windows (argv: data_dir, model_dir, n); prints the metrics
of the run as JSON, or ERROR and the exception's type.

Runs in its own process: logical devices must be configured before TensorFlow starts.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]
from hmvae_tf import dataset_version, train  # noqa: E402
from dataset_helpers import write_mel_2bar  # noqa: E402
from model_helpers import tiny_config  # noqa: E402

data_dir, model_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
write_mel_2bar(data_dir, dataset_version.VERSION, n=n, splits=("train", "validation"))
try:
    history = train.train(tiny_config(extra="batch_size=8"), model_dir, data_dir=data_dir,
                          num_steps=2, checkpoint_every=2, eval_batches=4, verbose=0,
                          strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
except Exception as err:  # noqa: BLE001 - the test names what went wrong
    print("ERROR " + type(err).__name__, flush=True)
    sys.exit(1)
print(json.dumps(sorted(history.history)), flush=True)
