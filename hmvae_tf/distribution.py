"""The tf.distribute side of `hmvae train`: which strategy a --strategy name stands for,
TF_CONFIG read and checked, and what the workers of a multi-worker job must agree on
(seed, checkpoint step, command) or learn from each other (a lost peer), so that a
misconfigured cluster ends in one clear line instead of mismatched collectives."""
from __future__ import annotations

import json
import os
import signal
import sys
from typing import TYPE_CHECKING

from hmvae_tf.progress import say

if TYPE_CHECKING:
    import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str, wait_for_workers: float | None = None) -> tf.distribute.Strategy:
    """The tf.distribute strategy a --strategy name stands for. multi_worker: first waits for
    the other workers of TF_CONFIG (at most wait_for_workers seconds; None: no limit)."""
    if name == "multi_worker":  # checked before the seconds TensorFlow's import takes
        cluster, task_type, index = read_tf_config()
        address = cluster[task_type][index]
        _wait_for_other_workers(address, task_type, index,
                                [a for job in cluster.values() for a in job if a != address],
                                wait_for_workers)
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        from hmvae_tf.cli import CommandError

        # TensorFlow's own wait for the workers (short now: all have started) blocks where
        # Python's Ctrl-C handler never runs: until training starts there is nothing to save.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as err:
            if "Could not start gRPC server" not in str(err):
                raise
            raise CommandError(
                f"could not start this worker's server at {address} (TF_CONFIG's "
                f"cluster.{task_type}[{index}]): is the port in use, or the host not this "
                "machine?") from None
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return tf.distribute.get_strategy()


def _wait_for_other_workers(address: str, task_type: str, index: int, others: list[str],
                            timeout: float | None) -> None:
    """`worker_rendezvous.wait_for_peers` with its failures as one-line CommandErrors."""
    from hmvae_tf import worker_rendezvous
    from hmvae_tf.cli import CommandError

    if not others:
        return
    limit = f", at most {timeout:g} s" if timeout else ""
    say(f"{task_type} {index} at {address}: waiting for the other workers of TF_CONFIG "
        f"({', '.join(others)}) to start{limit}")
    try:
        waited = worker_rendezvous.wait_for_peers(address, others, timeout or None)
    except worker_rendezvous.PortInUseError as err:
        raise CommandError(
            f"this worker's address {address} (TF_CONFIG's cluster.{task_type}[{index}]): "
            f"{err.strerror}; is a worker of another job still running there?") from None
    except worker_rendezvous.WaitTimeoutError as err:
        raise CommandError(f"{err} (--wait_for_workers); start every worker of TF_CONFIG "
                           "with the same command, or check their addresses") from None
    except KeyboardInterrupt:
        print("stopped while waiting for the other workers; nothing was trained",
              file=sys.stderr)
        raise
    say(f"{task_type} {index}: all {len(others) + 1} workers have started "
        f"(waited {waited:.0f} s)")


TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def read_tf_config() -> tuple[dict[str, list[str]], str, int]:
    """TF_CONFIG's cluster, task type and index, checked: a malformed one is a one-line
    CommandError here, not a traceback from deep inside TensorFlow."""
    from hmvae_tf.cli import CommandError

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise CommandError("--strategy=multi_worker needs TF_CONFIG (cluster and task) set, "
                           f"e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CommandError(f"TF_CONFIG is not JSON ({err}); e.g. '{TF_CONFIG_EXAMPLE}'") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    jobs = {name: list(job.values()) if isinstance(job, dict) else job
            for name, job in cluster.items()} if isinstance(cluster, dict) else {}
    if not (jobs and all(
            isinstance(job, list) and job and all(isinstance(a, str) and ":" in a for a in job)
            for job in jobs.values())):
        raise CommandError("TF_CONFIG needs a \"cluster\" of jobs, each a list of "
                           f"\"host:port\" addresses; e.g. '{TF_CONFIG_EXAMPLE}'")
    if not isinstance(task, dict) or "type" not in task:
        raise CommandError("TF_CONFIG needs a \"task\" with this process's \"type\" and "
                           f"\"index\"; e.g. '{TF_CONFIG_EXAMPLE}'")
    task_type = task["type"]
    if task_type not in ("chief", "worker") or task_type not in cluster:
        raise CommandError(f"TF_CONFIG's task type {task_type!r} must be \"chief\" or "
                           f"\"worker\" and a job of its cluster ({', '.join(cluster)})")
    index = task.get("index", 0)
    if isinstance(index, str) and index.isdigit():  # TensorFlow takes int(index)
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, int) or not (
            0 <= index < len(jobs[task_type])):
        raise CommandError(f"TF_CONFIG's task index {index!r} is not one of the cluster's "
                           f"{len(jobs[task_type])} {task_type} address(es)")
    return jobs, task_type, index


def cluster_spec(strategy: tf.distribute.Strategy) -> dict:
    """The strategy's cluster spec as a dict; empty when this process trains alone."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver.cluster_spec().as_dict() if resolver is not None else {}


def first_worker_value(strategy: tf.distribute.Strategy, value: int) -> int:
    """`value` as the first worker (the chief) has it, on every worker of the job."""
    import tensorflow as tf

    @tf.function  # eagerly, every collective call logs an overhead warning
    def gather():
        return strategy.gather(strategy.run(lambda: tf.constant([[value]], tf.int64)),
                               axis=0)

    return int(gather().numpy()[0, 0])


def task_info(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, worker index) for this process."""
    cluster = cluster_spec(strategy)
    if not cluster:
        return True, 0
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in cluster)
    return is_chief, task_id


def check_workers_agree(strategy: tf.distribute.Strategy, step: int, model_dir: str,
                         job: str = "") -> None:
    """Stops a multi-worker job whose workers would restore different steps (a model directory
    the workers do not share): training on would average the gradients of different models.
    `job` (the config and step options) must match too: workers with another --num_steps or
    config, or a worker of another job left listening on the same port, would train in
    mismatched collectives. Runs before the model is built: a restore creates variables (the
    checkpoint's save counter), whose creation is a collective broadcast, so workers that
    restore different things would otherwise fail in mismatched collectives first."""
    import hashlib

    import tensorflow as tf

    from hmvae_tf.cli import CommandError

    if not cluster_spec(strategy):
        return
    key = int.from_bytes(hashlib.sha256(job.encode()).digest()[:7], "big")

    @tf.function  # eagerly, every collective call logs an overhead warning
    def gather():
        return strategy.gather(strategy.run(lambda: tf.constant([[step, key]], tf.int64)),
                               axis=0)

    rows = gather().numpy().tolist()
    if len({key for _, key in rows}) > 1:
        raise CommandError(
            "the workers were started with different --config/--hparams, --num_steps or "
            "--checkpoint_every (or a worker of another job holds a port of TF_CONFIG): "
            "start every worker with the same command")
    steps = sorted({step for step, _ in rows})
    if len(steps) > 1:
        raise CommandError(
            f"the workers found different newest checkpoints in {model_dir} (steps {steps}): "
            "the model directory must be on a file system every worker sees")


def shared_evenly(batches: tf.data.Dataset, replicas: int) -> tf.data.Dataset:
    """`batches` without those whose rows do not split evenly across the replicas (a split's
    short last batch): under MirroredStrategy and MultiWorkerMirroredStrategy, Keras's
    validation fails on one with a shape mismatch between the replicas' shares."""
    if replicas == 1:
        return batches
    import tensorflow as tf

    return batches.filter(lambda batch: tf.shape(batch)[0] % replicas == 0)


def lost_peers(strategy: tf.distribute.Strategy, err: BaseException) -> str | None:
    """For an error saying a multi-worker job lost a worker (UnavailableError: a peer stopped
    sending heartbeats or cannot be reached), the other task(s) it names ("another worker" if
    none); else None (other collective errors, such as a shape mismatch, stand)."""
    import re

    import tensorflow as tf

    if not cluster_spec(strategy) or not isinstance(err, tf.errors.UnavailableError):
        return None
    resolver = strategy.cluster_resolver
    me = f"/job:{resolver.task_type}/replica:0/task:{resolver.task_id or 0}"
    peers = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", err.message or "")) - {me})
    return ", ".join(peers) or "another worker"
