"""Training: the loss falls, MirroredStrategy matches one device, checkpoints resume."""
import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf import (checkpoints, data, model_card, plots, reproduce, run_settings,
                      stop_signals, train, training_record)
from hmvae_tf.cli import CommandError
from dataset_helpers import write_mel_2bar
from model_helpers import TINY, scale_melodies, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pipeline(config, n=64, seed=0):
    windows = tf.data.Dataset.from_tensor_slices(scale_melodies(n, config.num_steps, seed)[..., 0])
    return data.make_pipeline(windows, config, config.batch_size, training=True, seed=seed)


@pytest.fixture(scope="module")
def two_step_model(tmp_path_factory):
    """A tiny model trained 2 steps (a checkpoint at 2, seed 1, no validation), for the tests
    that need some trained model and not its training; they copy it (copy_model)."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path_factory.mktemp("two_step") / "m")
    train.train(config, model_dir, num_steps=2, checkpoint_every=2, eval_batches=0,
                train_data=pipeline(config), seed=1, verbose=0)
    return model_dir


def copy_model(model_dir, tmp_path) -> str:
    """A copy of model_dir as tmp_path/m, the test's own to change."""
    return shutil.copytree(model_dir, str(tmp_path / "m"))


def test_short_training_run_loss_falls(tmp_path):
    config = tiny_config(extra="batch_size=16,transpose=5")
    history = train.train(config, str(tmp_path / "m"), num_steps=120, checkpoint_every=40,
                          train_data=pipeline(config), seed=1, verbose=0)
    r_loss = history.history["r_loss"]
    assert len(r_loss) == 3
    assert r_loss[-1] < 0.75 * r_loss[0]
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]
    assert 0 < history.history["beta"][-1] < config.max_beta
    assert history.history["p_sample"][-1] > 0  # scheduled sampling is on for this config
    assert (tmp_path / "m" / "history.csv").exists()
    assert any((tmp_path / "m" / "logs").rglob("events.out.tfevents*"))
    # The checkpoint holds every trained weight: a fresh process-side load gets them all.
    loaded = checkpoints.load_model(str(tmp_path / "m"))
    trained = {v.path: v.numpy() for v in history.model.weights}
    assert {v.path for v in loaded.weights} == set(trained)
    for v in loaded.weights:
        np.testing.assert_array_equal(v.numpy(), trained[v.path], err_msg=v.path)


def test_hierarchical_train_step_compiles_with_xla(tmp_path):
    """`hmvae train --jit_compile`: XLA must be able to differentiate the LSTM loops."""
    config = tiny_config("hierdec-mel_16bar")
    history = train.train(config, str(tmp_path / "m"), num_steps=4, checkpoint_every=2,
                          train_data=pipeline(config, n=16), jit_compile=True, seed=1, verbose=0)
    assert history.model.jit_compile
    assert all(np.isfinite(history.history["loss"]))
    assert checkpoints.checkpoint_step(str(tmp_path / "m")) == 4


def start_script(name, *args, out_dir):
    """tests/scripts/<name> in a process of its own, its stdout and stderr into files in
    out_dir (a pipe nobody reads yet could fill and stop it); wait with script_output."""
    streams = [open(os.path.join(out_dir, f"{name}.{kind}"), "w+") for kind in ("out", "err")]
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "scripts", name), *args],
        stdout=streams[0], stderr=streams[1], text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])})
    proc.streams = streams
    return proc


def script_output(proc, timeout=600):
    """(returncode, stdout, stderr) of a start_script process, once it has ended."""
    proc.wait(timeout=timeout)
    texts = []
    for stream in proc.streams:
        stream.seek(0)
        texts.append(stream.read())
        stream.close()
    return proc.returncode, *texts


CLIP_NORMS = ["0.5", "1e6"]


@pytest.fixture(scope="module")
def mirrored_steps(tmp_path_factory):
    """{clip norm: mirrored_step.py's process} for each of CLIP_NORMS, started together: each
    mostly waits on one core (starting TensorFlow, tracing), and each case reads its own."""
    procs = {clip_norm: start_script(
        "mirrored_step.py", clip_norm,
        out_dir=str(tmp_path_factory.mktemp(f"mirrored_step_{clip_norm}")))
        for clip_norm in CLIP_NORMS}
    yield procs
    for proc in procs.values():  # ended already, unless a case failed before waiting
        proc.kill()
        proc.wait()
        for stream in proc.streams:
            stream.close()


@pytest.mark.parametrize("clip_norm", CLIP_NORMS)
def test_mirrored_strategy_matches_one_device(clip_norm, mirrored_steps):
    returncode, stdout, stderr = script_output(mirrored_steps[clip_norm])
    assert returncode == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["mirrored_loss"] == pytest.approx(result["single_loss"], rel=1e-5)
    assert result["max_weight_change"] > 1e-3
    assert result["max_weight_diff"] < 1e-4 * max(1.0, result["max_weight_change"])


@pytest.mark.parametrize("windows, validated", [(15, True), (7, False)])
def test_validation_under_two_replicas_leaves_out_the_split_s_short_last_batch(
        windows, validated, tmp_path):
    """A validation batch two replicas cannot share evenly (a split of 7 windows, in batches
    of 8) failed Keras's validation with a shape mismatch between the replicas (under
    MultiWorkerMirroredStrategy in its collectives). Such a batch, a split's short last one,
    is left out now: 15 windows validate on their whole batch, and a split without one
    trains without validation, saying so."""
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "scripts", "mirrored_validation.py"),
         str(tmp_path / "data"), str(tmp_path / "m"), str(windows)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])})
    assert out.returncode == 0, out.stdout[-1000:] + out.stderr[-3000:]
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert ("val_r_loss" in metrics) == validated and "r_loss" in metrics
    assert ("training without validation" in out.stderr) != validated
    assert "training without validation" not in out.stdout


def test_a_melody_stored_as_t_by_1_windows_is_transposed_as_a_whole():
    """[T, 1] melody windows used to get one shift per step (augment read the batch as
    [B, T]); they must get the very batches [T] windows give."""
    config = tiny_config(extra="batch_size=8")
    melodies = scale_melodies(32, config.num_steps, 0)
    batches = [next(iter(data.make_pipeline(tf.data.Dataset.from_tensor_slices(m), config,
                                            config.batch_size, training=True, seed=4)))
               for m in (melodies[..., 0], melodies)]
    np.testing.assert_array_equal(batches[0].numpy(), batches[1].numpy())
    assert batches[0].shape == (8, config.num_steps, 1)


def test_a_pipeline_takes_the_windows_as_an_array_or_tfds_examples():
    """make_pipeline took a tf.data.Dataset of windows alone: the WindowBatch.tokens array a
    script has at hand failed with "'numpy.ndarray' object has no attribute 'cache'", and
    tfds.load's examples (dicts holding `tokens`) failed inside its map."""
    config = tiny_config(extra="batch_size=8")
    melodies = scale_melodies(32, config.num_steps, 0)[..., 0]

    def first_batch(windows):
        return next(iter(data.make_pipeline(windows, config, config.batch_size,
                                            training=True, seed=4))).numpy()

    expected = first_batch(tf.data.Dataset.from_tensor_slices(melodies))
    np.testing.assert_array_equal(first_batch(melodies), expected)
    np.testing.assert_array_equal(first_batch(melodies.tolist()), expected)
    np.testing.assert_array_equal(
        first_batch(tf.data.Dataset.from_tensor_slices({"tokens": melodies,
                                                        "piece": np.arange(32)})), expected)


def test_the_same_seed_trains_the_same(tmp_path):
    """--seed reproduces a run: the transposition's draws are stateless per batch, so the
    parallel map's order does not change them (a stateful draw made two runs differ)."""
    config = tiny_config(extra="batch_size=8,transpose=5")
    first, again = ([b.numpy() for b in pipeline(config, seed=3).take(12)] for _ in range(2))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any((a != first[0]).any() for a in first[1:])
    # Two runs with one seed, each in its own process (as two `hmvae train --seed=3`), and two
    # in this process (a notebook): the same losses. A pipeline made before train() seeds TF
    # shuffles under whatever global seed is set then (a first run sets it for the second), so
    # here each is made after seeding, as train() makes its own TFDS pipeline.
    def seeded_pipeline():
        keras.utils.set_random_seed(3)
        return pipeline(config, seed=3)

    script = ("import json, sys, keras; from hmvae_tf import train; from model_helpers import "
              "tiny_config; from test_training import pipeline; "
              "config = tiny_config(extra='batch_size=8,transpose=5'); "
              "keras.utils.set_random_seed(3); "
              "h = train.train(config, sys.argv[1], num_steps=6, checkpoint_every=3, "
              "train_data=pipeline(config, seed=3), seed=3, verbose=0); "
              "print(json.dumps(h.history['loss']))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
    # The two processes run side by side, and beside the two runs in this process (each
    # mostly waits on one core: starting TensorFlow, tracing the step).
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / name)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    try:
        in_process = [train.train(config, str(tmp_path / f"p{k}"), num_steps=6,
                                  checkpoint_every=3, train_data=seeded_pipeline(), seed=3,
                                  verbose=0).history["loss"] for k in range(2)]
        losses = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-2000:]
            losses.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert in_process[0] == in_process[1]
    assert losses[0] == losses[1] == in_process[0] and len(losses[0]) == 2


def test_resume_continues_step_and_optimizer_state(tmp_path):
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=20, checkpoint_every=10, train_data=pipeline(config),
                verbose=0)
    assert checkpoints.checkpoint_step(model_dir) == 20
    # The model alone, as export.load_model gives it: it returned (model, config).
    model = checkpoints.load_model(model_dir, for_training=True)
    assert model.config == config
    assert int(model.optimizer.iterations.numpy()) == 20
    # The step of the weights read, which export records (not a re-read of the newest one,
    # which a training still running may have moved on).
    assert checkpoints.load_model_at(model_dir)[2] == 20
    assert checkpoints.load_model_at(model_dir, step=10)[2] == 10
    slots = [v.numpy() for v in model.optimizer.variables if "momentum" in v.path]
    assert slots and any(np.abs(s).max() > 0 for s in slots)  # Adam moments were restored
    train.train(config, model_dir, num_steps=30, checkpoint_every=10, train_data=pipeline(config),
                verbose=0)
    assert checkpoints.checkpoint_step(model_dir) == 30
    rows = open(os.path.join(model_dir, "history.csv")).read().strip().splitlines()
    assert len(rows) == 1 + 3  # header + one row per period across both runs


def test_resume_from_an_odd_step_keeps_the_checkpoint_grid(tmp_path):
    """A run stopped by a signal saves at an odd step; resuming must still checkpoint at
    multiples of checkpoint_every (so two models share steps) and stop at num_steps."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=6, checkpoint_every=4, train_data=pipeline(config),
                verbose=0)
    train.train(config, model_dir, num_steps=12, checkpoint_every=4, train_data=pipeline(config),
                verbose=0)
    assert checkpoints.kept_steps(model_dir) == [6, 8, 12]
    # Its history rows say where they end, off the grid as they are: epoch 1 is logged twice
    # (steps 4 -> 6, then 6 -> 10), and neither replaces the other.
    history = plots.read_history(os.path.join(model_dir, "history.csv"))
    assert [(int(r["epoch"]), int(r["step"])) for r in history] == [(0, 4), (1, 6), (1, 10),
                                                                    (2, 12)]
    facts = {"history": history, "step": 10, "last_epoch": 1}
    assert [int(r["step"]) for r in training_record.history_upto(facts)] == [4, 6, 10]
    # TensorBoard's points are at those global steps too (Keras puts them at the epoch: 0, 1,
    # then 1 again), one event file per run; the card's training time stops at the export's.
    runs = training_record.event_times(os.path.join(model_dir, "logs", "train"))
    assert [sorted({step for _, step in points}) for _, _, points in runs] == [[4, 6], [10, 12]]
    assert 0 < training_record.training_time(model_dir, 10) < training_record.training_time(model_dir)


@pytest.mark.parametrize("stop, status", [(KeyboardInterrupt, 130),
                                          (stop_signals.Terminated, 143)])
@pytest.mark.parametrize("checkpoint", [None, 7])
def test_a_stopped_training_exits_with_its_signal_status(stop, status, checkpoint, tmp_path,
                                                         monkeypatch, capsys):
    """SIGTERM (a preempted job) and Ctrl-C both end in a saved checkpoint; the exit status
    says which came (it was 130, Ctrl-C's, for both): 128 + SIGTERM's 15, or SIGINT's 2.
    The line that says where a rerun goes on from is on stderr with the other stop line
    ("saved a checkpoint at step N"), not among the results, and names the step kept: it
    spoke of a checkpoint kept also when the stop came before the first one."""
    from hmvae_tf import cli
    from hmvae_tf.configs import get_config

    if checkpoint is not None:  # a model stopped earlier at step 7
        checkpoints.save_config(str(tmp_path), get_config("cat-mel_2bar_small"))
        (tmp_path / checkpoints.CKPT_DIR).mkdir()
        (tmp_path / checkpoints.CKPT_DIR / "checkpoint").write_text(
            f'model_checkpoint_path: "ckpt-{checkpoint}"\n')
        (tmp_path / checkpoints.CKPT_DIR / f"ckpt-{checkpoint}.index").write_bytes(b"")

    def stopped(*args, **kwargs):
        # The command has taken SIGTERM for train() (and keeps it until it returns).
        assert signal.getsignal(signal.SIGTERM) is stop_signals.raise_terminated
        raise stop

    monkeypatch.setattr(train, "train", stopped)
    assert cli.main(["train", "--config=cat-mel_2bar_small", f"--model_dir={tmp_path}"]) == status
    out, err = capsys.readouterr()
    assert out == ""  # no results: the start line is on stderr with the stop's lines
    assert err.startswith("training "), err
    assert err.splitlines()[-1] == (
        "stopped before the first checkpoint; rerun the same command to start again"
        if checkpoint is None else
        "stopped; the newest checkpoint (step 7) is kept: rerun the same command to resume "
        "from it")


# `hmvae train` whose train() has just returned, as fit's end leaves it (SIGTERM's handler
# back to the one before), and a SIGTERM that comes while the final metrics are printed.
SIGTERM_AFTER_TRAIN = """
import os, signal, sys
from hmvae_tf import cli, train


class History:
    @property
    def history(self):  # read for the final metrics' line
        os.kill(os.getpid(), signal.SIGTERM)
        return {"loss": [1.0]}


train.train = lambda *args, **kwargs: History()
sys.exit(cli.main(["train", "--config=cat-mel_2bar_small", "--model_dir=" + sys.argv[1]]))
"""


def test_a_sigterm_after_training_still_ends_the_command_cleanly(tmp_path):
    """train() puts the earlier SIGTERM handler back when it returns, and `hmvae train` had
    left it at the default: a SIGTERM while the final metrics were printed killed the process
    outright (its buffered output lost). The command keeps the handler until it returns."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", SIGTERM_AFTER_TRAIN, str(tmp_path / "m")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert any(line.startswith("training cat-mel_2bar_small in ")  # after TF's start-up lines
               for line in done.stderr.splitlines()), done.stderr[-2000:]
    assert done.stderr.strip().endswith("terminated (SIGTERM)")


class Recorder(keras.callbacks.Callback):
    """A user's callback: counts the batches, and notes at each epoch's end the newest
    checkpoint and the SIGTERM handler then in place."""

    def __init__(self, model_dir):
        super().__init__()
        self.model_dir, self.batches, self.at_epoch_end = model_dir, 0, []

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append((checkpoints.checkpoint_step(self.model_dir),
                                  signal.getsignal(signal.SIGTERM)))


def test_train_runs_the_user_s_callbacks_before_the_saver_and_leaves_sigterm_alone(tmp_path):
    """train() from a program of yours took the process's SIGTERM for good and had no place
    for your callbacks. They run now, before the checkpoint saver (a period's checkpoint
    follows them); SIGTERM is taken only with handle_sigterm (`hmvae train`), during fit."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")

    def own_handler(signum, frame):
        pass

    before = signal.signal(signal.SIGTERM, own_handler)
    try:
        recorder = Recorder(model_dir)
        train.train(config, model_dir, num_steps=8, checkpoint_every=4,
                    train_data=pipeline(config), verbose=0, callbacks=[recorder])
        assert recorder.batches == 8
        # At the end of the first period its checkpoint (step 4) is not written yet.
        assert recorder.at_epoch_end == [(None, own_handler), (4, own_handler)]
        assert signal.getsignal(signal.SIGTERM) is own_handler

        recorder = Recorder(model_dir)
        train.train(config, model_dir, num_steps=12, checkpoint_every=4,
                    train_data=pipeline(config), verbose=0, callbacks=[recorder],
                    handle_sigterm=True)
        assert recorder.at_epoch_end == [(8, stop_signals.raise_terminated)]
        assert signal.getsignal(signal.SIGTERM) is own_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_progress_bar_counts_the_steps_an_epoch_really_runs(tmp_path, capsys):
    """6 steps with checkpoints every 4: the second epoch runs 2 steps (StopAtStep), and
    Keras's own bar finished it as "4/4" (and its ms/step over 4)."""
    import re

    config = tiny_config(extra="batch_size=8")
    train.train(config, str(tmp_path / "m"), num_steps=6, checkpoint_every=4,
                train_data=pipeline(config), eval_data=None, eval_batches=0, verbose=2)
    out = capsys.readouterr().err  # progress, on stderr
    bars = re.findall(r"^(\d+)/(\d+) - ", out, re.M)
    assert bars == [("4", "4"), ("2", "2")]
    # Each period ends with the global step (and, but for the last, the time left).
    assert re.findall(r"^step (\d+)/6", out, re.M) == ["4", "6"]
    assert re.search(r"^step 4/6, about \d+ s left$", out, re.M)
    assert re.search(r"^step 6/6$", out, re.M)


@pytest.mark.parametrize("stderr_is_terminal", [True, False])
def test_train_shows_its_progress_on_stderr_and_its_results_on_stdout(
        stderr_is_terminal, tmp_path, capsys, monkeypatch):
    """Keras's bar went to stdout with the final metrics: `hmvae train ... > metrics.txt` kept
    the bar's lines, and the terminal showed no progress. As for the other long commands, the
    progress is on stderr (a bar where that is a terminal, a line per period elsewhere), and
    so are the start line and the notes: `> metrics.txt` keeps the final metrics alone."""
    import re

    from hmvae_tf import cli, dataset_version

    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=32)
    capsys.readouterr()
    # `hmvae train > metrics.txt` at a terminal: stdout a file, stderr the terminal.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: stderr_is_terminal)
    assert cli.main(["train", "--config=cat-mel_2bar_small", f"--hparams={TINY}",
                     f"--model_dir={tmp_path / 'm'}", f"--data_dir={data_dir}",
                     "--num_steps=4", "--checkpoint_every=2", "--eval_batches=0",
                     "--dtype_policy=float32", "--seed=1"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out
    final = json.loads(lines[0].removeprefix("final metrics: "))
    assert np.isfinite(final["loss"])
    assert "final metrics" not in err
    assert err.startswith("training cat-mel_2bar_small in "), err
    assert " with 1 replica, products in float32" in err.splitlines()[0]  # not "replica(s)"
    assert re.findall(r"^Epoch (\d)/2$", err, re.M) == ["1", "2"]
    assert re.findall(r"^step (\d)/4", err, re.M) == ["2", "4"]
    if stderr_is_terminal:  # Keras's bar, redrawn in place
        assert "\r" in err and "━" in err, err
    else:  # a line per period, no carriage returns to run into a log
        assert re.findall(r"^2/2 - ", err, re.M) == ["2/2 - ", "2/2 - "]
        assert "\r" not in err


def test_train_command_reads_the_newest_checkpoint_once(tmp_path, capsys, monkeypatch):
    """`hmvae train` read the newest checkpoint's step for its start line, and train() read
    it twice more (the workers' check, the seed's move past the steps done): one read now
    serves all three, so they cannot go by different checkpoints."""
    from hmvae_tf import cli, dataset_version

    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=32)
    model_dir = str(tmp_path / "m")

    def hmvae_train(num_steps):
        assert cli.main(["train", "--config=cat-mel_2bar_small", f"--hparams={TINY}",
                         f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                         f"--num_steps={num_steps}", "--checkpoint_every=2",
                         "--eval_batches=0", "--dtype_policy=float32", "--seed=1"]) == 0

    hmvae_train(2)
    reads = []
    read = checkpoints.checkpoint_step
    monkeypatch.setattr(checkpoints, "checkpoint_step",
                        lambda directory: reads.append(directory) or read(directory))
    hmvae_train(4)
    assert reads == [model_dir]
    assert [r["start_step"] for r in checkpoints.read_runs(model_dir)] == [0, 2]
    assert read(model_dir) == 4


def test_a_diverged_run_saves_nothing_after_its_last_finite_step(tmp_path):
    """A NaN loss stops training (TerminateOnNaN); the saver used to save the NaN weights as
    the newest checkpoint on the way out, so a resume continued from garbage."""
    import re

    config = tiny_config(extra="batch_size=8,learning_rate=1e30,min_learning_rate=1e30")
    model_dir = str(tmp_path / "m")
    with pytest.raises(train.TrainingDivergedError, match="a new --model_dir with a lower --hparams=learning_rate") as info:
        train.train(config, model_dir, num_steps=40, checkpoint_every=1,
                    train_data=pipeline(config), verbose=0)
    diverged = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    kept = checkpoints.kept_steps(model_dir)
    assert kept and max(kept) < diverged
    assert f"the newest checkpoint (step {max(kept)})" in str(info.value)
    model, _, step = checkpoints.load_model_at(model_dir)
    assert step == max(kept) and all(np.isfinite(v.numpy()).all() for v in model.weights)


class Died(BaseException):
    """The process ends here: no handler of train() or Keras runs (as after a SIGKILL)."""


def history_steps(model_dir):
    return [int(r["step"]) for r in csv.DictReader(open(os.path.join(model_dir, "history.csv")))]


@pytest.mark.parametrize("dies", ["after the checkpoint", "after the row"])
def test_history_has_one_row_per_period_after_a_crash_at_a_periods_end(dies, tmp_path,
                                                                       monkeypatch, capsys):
    """Killed right after the checkpoint of step 8 was written (before the validation and the
    row of its period, as it was saved), a resumed run went on from 8 and history.csv had no
    row for steps 5-8. Now the row comes first; killed between the two, the run resumes from
    4 and the row of 8 is written once, not twice, saying so on stderr (on stdout, it went
    into `hmvae train ... > metrics.txt`)."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")

    def dying(method):
        def call(self, *args):
            result = method(self, *args)
            if int(self.model.optimizer.iterations.numpy()) == 8:
                raise Died
            return result
        return call

    if dies == "after the checkpoint":
        monkeypatch.setattr(checkpoints.CheckpointSaver, "save",
                            dying(checkpoints.CheckpointSaver.save))
    else:
        monkeypatch.setattr(checkpoints.HistoryCSV, "on_epoch_end",
                            dying(checkpoints.HistoryCSV.on_epoch_end))
    with pytest.raises(Died):
        train.train(config, model_dir, num_steps=12, checkpoint_every=4,
                    train_data=pipeline(config), eval_data=pipeline(config).take(1), verbose=0)
    monkeypatch.undo()
    assert checkpoints.checkpoint_step(model_dir) == (8 if dies == "after the checkpoint" else 4)
    capsys.readouterr()
    train.train(config, model_dir, num_steps=12, checkpoint_every=4, train_data=pipeline(config),
                eval_data=pipeline(config).take(1), verbose=0)
    assert history_steps(model_dir) == [4, 8, 12]
    out, err = capsys.readouterr()
    dropped = ("history.csv: dropped 1 row past step 4, the checkpoint this run resumes "
               "from (their steps are trained again)")
    assert (dropped in err.splitlines()) == (dies == "after the row"), err
    assert "history.csv" not in out
    history = plots.read_history(os.path.join(model_dir, "history.csv"))
    assert all(np.isfinite(r["val_loss"]) for r in history)
    # TensorBoard: the killed run's points at 8 stay in its event file, but the resumed run
    # logs step 8 again, and TensorBoard keeps the newer (BUILD.md): one point per period,
    # the one history.csv has.
    raw = event_scalars(os.path.join(model_dir, "logs", "train"))
    assert [step for step, _ in raw["epoch_loss"]] == (
        [4, 8, 8, 12] if dies == "after the row" else [4, 8, 12])
    shown = {tag: as_tensorboard_shows(points) for tag, points in raw.items()}
    assert {tag: [step for step, _ in points] for tag, points in shown.items()} == \
        {tag: [4, 8, 12] for tag in raw}
    np.testing.assert_allclose([v for _, v in shown["epoch_loss"]],
                               [r["loss"] for r in history], rtol=1e-6)


def event_scalars(log_dir):
    """{tag: [(step, value)]} of a TensorBoard run directory's event files, in the order
    TensorBoard reads them (file name order: each run of `hmvae train` writes its own)."""
    from tensorflow.core.util import event_pb2

    scalars = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    (int(event.step), float(tf.make_ndarray(value.tensor))))
    return scalars


def as_tensorboard_shows(points):
    """The points of one tag as TensorBoard's loader keeps them: a point at step s replaces
    every earlier-read point at a step >= s ("preemption", for a job resumed from a
    checkpoint before steps it had logged; tensorboard/data/server/reservoir.rs)."""
    shown = []
    for step, value in points:
        shown = [p for p in shown if p[0] < step] + [(step, value)]
    return shown


def test_a_signal_logs_the_period_it_stops(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM saves the step reached, but Keras logs no row for the epoch it cut
    short: stopped during the validation after step 8, the resumed run's rows went 4, 12.
    The stopped period is logged with its training metrics (its validation did not run)."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")

    def stop_in_validation(self, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 8:
            raise stop_signals.Terminated

    monkeypatch.setattr(checkpoints.StopAtStep, "on_test_begin", stop_in_validation,
                        raising=False)
    with pytest.raises(stop_signals.Terminated):
        train.train(config, model_dir, num_steps=12, checkpoint_every=4,
                    train_data=pipeline(config), eval_data=pipeline(config).take(1), verbose=0)
    monkeypatch.undo()
    assert checkpoints.checkpoint_step(model_dir) == 8
    train.train(config, model_dir, num_steps=12, checkpoint_every=4, train_data=pipeline(config),
                eval_data=pipeline(config).take(1), verbose=0)
    history = plots.read_history(os.path.join(model_dir, "history.csv"))
    assert history_steps(model_dir) == [4, 8, 12]
    assert np.isfinite(history[1]["r_loss"]) and np.isnan(history[1]["val_r_loss"])
    assert np.isfinite(history[2]["val_r_loss"])


class StopAt(keras.callbacks.Callback):
    """Ctrl-C after the given global step (raised from fit's callbacks, as the signal's
    handler raises it between steps)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("verbose", [1, 2])
def test_a_stop_s_line_follows_the_progress_without_a_blank_line(verbose, tmp_path, capsys):
    """"saved a checkpoint" began with a newline, to end the line of Keras's bar redrawn in
    place (a terminal's, verbose 1); in a log (verbose 2: whole lines) it left a blank line."""
    config = tiny_config(extra="batch_size=8")
    with pytest.raises(KeyboardInterrupt):
        train.train(config, str(tmp_path / "m"), num_steps=6, checkpoint_every=2,
                    eval_batches=0, train_data=pipeline(config), verbose=verbose,
                    callbacks=[StopAt(3)])
    err = capsys.readouterr().err
    before, saved, _ = err.partition("saved a checkpoint at step 3\n")
    assert saved, err
    assert before.endswith("\n") and not before.endswith("\n\n"), before[-200:]
    # The bar's own line (its last redraw) is there before it, ended, not overwritten.
    last = before.splitlines()[-1]
    assert ("1/2" in last and "loss:" in last) if verbose == 1 else last == "Epoch 2/3", last


def test_a_full_disk_at_a_checkpoint_is_one_line_that_names_the_checkpoint_kept(
        tmp_path, monkeypatch):
    """TensorFlow says a full disk while saving as a ResourceExhaustedError, which came out of
    `hmvae train` as a traceback (and left the save's <prefix>_temp folder behind)."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    save = tf.train.CheckpointManager.save

    def full_from_step_8(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number < 8:
            return save(manager, checkpoint_number=checkpoint_number, **kwargs)
        temp = os.path.join(manager.directory, f"ckpt-{checkpoint_number}_temp")
        os.makedirs(temp)
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{temp}/part-00000-of-00001.data-00000-of-00001.tempstate1; "
            "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_from_step_8)
    with pytest.raises(train.TrainingStopped) as stopped:
        train.train(config, model_dir, num_steps=12, checkpoint_every=4,
                    train_data=pipeline(config), verbose=0)
    ckpt = os.path.join(model_dir, checkpoints.CKPT_DIR)
    assert str(stopped.value) == (
        f"cannot write the checkpoint of step 8 in {ckpt}: No space left on device; training "
        "stopped, and the newest checkpoint (step 4) is kept: the same command resumes from "
        "it once the folder can be written")
    assert checkpoints.checkpoint_step(model_dir) == 4
    assert not os.path.exists(os.path.join(ckpt, "ckpt-8_temp"))


def test_history_of_an_older_version_is_continued_in_its_own_columns(tmp_path):
    """A history.csv begun without the `step` column gets rows in its own columns on resume
    (CSVLogger appends under the header already there: an extra field would shift them)."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=4, checkpoint_every=4, train_data=pipeline(config),
                verbose=0)
    path = os.path.join(model_dir, "history.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [4]
    # Without validation, its columns wait for one, except the schedules' (never validated).
    assert "val_r_loss" in rows[0] and not {"val_beta", "val_p_sample"} & set(rows[0])
    header = [k for k in rows[0] if k != "step"]
    with open(path, "w", newline="") as f:  # as an older version wrote it
        writer = csv.DictWriter(f, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    train.train(config, model_dir, num_steps=8, checkpoint_every=4, train_data=pipeline(config),
                verbose=0)
    with open(path) as f:
        lines = [line.split(",") for line in f.read().splitlines()]
    assert lines[0] == header and all(len(line) == len(header) for line in lines)
    history = plots.read_history(path)
    assert [int(r["epoch"]) for r in history] == [0, 1]
    assert np.isfinite(history[1]["r_loss"])


def test_resume_refuses_a_different_config(tmp_path):
    config = tiny_config(extra="batch_size=8")
    checkpoints.save_config(str(tmp_path), config)
    with pytest.raises(CommandError, match="already holds"):
        train.resolve_config(str(tmp_path), "cat-mel_2bar_small", "z_size=4")
    assert train.resolve_config(str(tmp_path), None, "") == config
    with pytest.raises(CommandError, match="holds a cat-mel_2bar_small model, not a "
                                         "cat-drums_2bar_small one"):
        train.resolve_config(str(tmp_path), "cat-drums_2bar_small", "")


def test_the_command_that_started_a_model_resumes_it(tmp_path):
    """A model trained with --dataset records it; the same command line (with --config and
    --dataset) resumes it rather than being refused as another config."""
    model_dir = str(tmp_path)
    config = train.resolve_config(model_dir, "cat-mel_2bar_small", "z_size=8",
                                  "hmvae_notesequences/mel_2bar_other")
    checkpoints.save_config(model_dir, config)
    for dataset in ("hmvae_notesequences/mel_2bar_other", None):
        resumed = train.resolve_config(model_dir, "cat-mel_2bar_small", "z_size=8", dataset)
        assert resumed == config and resumed.dataset == "hmvae_notesequences/mel_2bar_other"
    with pytest.raises(CommandError, match="other hyper-parameters"):
        train.resolve_config(model_dir, "cat-mel_2bar_small", "z_size=16",
                             "hmvae_notesequences/mel_2bar_other")


def test_checkpoints_without_their_config_are_refused_not_restored(two_step_model, tmp_path):
    """A model directory that lost its config.json (or a folder of another model's ckpt/)
    was taken for a new model: its checkpoint was restored into --config's model, a
    traceback when the shapes differed and silently when they matched."""
    model_dir = copy_model(two_step_model, tmp_path)
    os.remove(os.path.join(model_dir, checkpoints.CONFIG_FILE))
    with pytest.raises(CommandError) as refused:
        train.resolve_config(model_dir, "cat-mel_2bar_small", "z_size=8")
    assert str(refused.value) == (
        f"{model_dir} holds checkpoints (the newest of step 2) but no config.json, which says "
        "what model they are: put it back to resume them, or train into a new --model_dir")


def test_a_refused_resume_names_the_hyper_parameters_that_differ(tmp_path):
    """Resuming with another --hparams (a new batch size, say) is refused, since the model
    directory keeps one config; the error said only "other hyper-parameters", leaving the user
    to diff config.json against the flags."""
    model_dir = str(tmp_path)
    checkpoints.save_config(model_dir, tiny_config(extra="batch_size=8"))
    with pytest.raises(CommandError) as refused:
        train.resolve_config(model_dir, None, "batch_size=16,enc_rnn_size=[32,32]")
    assert str(refused.value) == (
        f"{model_dir} already holds a cat-mel_2bar_small model, with other hyper-parameters "
        "(enc_rnn_size=[24] there, [32,32] asked; batch_size=8 there, 16 asked); to resume "
        "it, drop --config/--hparams; to train a new one, use a new --model_dir")


def test_train_command_asks_for_onednn_unless_the_user_chose():
    """`hmvae train` turns TensorFlow's oneDNN kernels on (they are off by default on AVX2
    CPUs, where training runs faster with them), and leaves other commands and an explicit
    TF_ENABLE_ONEDNN_OPTS=0 alone; the variable reaches TensorFlow in the training process."""
    from hmvae_tf import cli

    env = {}
    cli.apply_command_env(cli.chosen_command(["train", "--config=cat-mel_2bar_small"]), env)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    cli.apply_command_env("train", env)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    env = {}
    cli.apply_command_env(cli.chosen_command(["sample", "--saved_model=x"]), env)
    assert env == {}
    probe = ("from hmvae_tf import cli; cli.apply_command_env('train'); "
             "from tensorflow.python.util import _pywrap_util_port as port; "
             "print('oneDNN', port.IsMklEnabled())")
    clean = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", probe], env=clean, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "oneDNN True" in out


def test_auto_dtype_policy_is_bfloat16_only_for_melodies_on_a_cpu_with_bfloat16_and_no_gpu(
        monkeypatch):
    from hmvae_tf import configs
    from hmvae_tf.model import lstm, precision

    melody = configs.get_config("cat-mel_2bar_small")
    hier = configs.get_config("hierdec-mel_16bar")
    for has_bf16, gpu, want in ((True, False, "mixed_bfloat16"), (False, False, "float32"),
                                (True, True, "float32")):
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda: has_bf16)
        monkeypatch.setattr(lstm, "gpu_available", lambda: gpu)
        for config in (melody, hier):
            assert train.resolve_dtype_policy("auto", config) == want
            assert train.resolve_dtype_policy("float32", config) == "float32"
            assert train.resolve_dtype_policy("mixed_bfloat16", config) == "mixed_bfloat16"
        # Unmeasured in bfloat16: auto keeps drums and trios in float32; asking still works.
        for name in ("cat-drums_2bar_small", "hierdec-trio_16bar"):
            config = configs.get_config(name)
            assert train.resolve_dtype_policy("auto", config) == "float32"
            assert train.resolve_dtype_policy("mixed_bfloat16", config) == "mixed_bfloat16"


def test_train_command_without_its_dataset_says_what_to_build_and_leaves_no_model(
        tmp_path, capsys, monkeypatch):
    from hmvae_tf import cli
    # Registered, as in `tfds build`.
    from tfds_builders.hmvae_notesequences import Builder  # noqa: F401

    # Registered but not built (above), or not even registered: the same advice.
    with pytest.raises(FileNotFoundError, match="tfds build"):
        data.load_tokens("hmvae_no_such_dataset/x", "train", str(tmp_path / "no_data"))
    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    model_dir = tmp_path / "m"
    code = cli.main(["train", "--config=cat-drums_2bar_small", f"--model_dir={model_dir}",
                     f"--data_dir={tmp_path / 'no_data'}", "--num_steps=1"])
    out, err = capsys.readouterr()
    assert code == 1  # the command line is right; the data is missing
    assert "hmvae train: error: dataset 'hmvae_notesequences/drums_2bar' is not prepared" in err
    assert ("tfds build tfds_builders/hmvae_notesequences --config=drums_2bar "
            "--manual_dir=<folder of .mid files with drums>") in err  # not in the corpus
    assert "Traceback" not in err
    assert not (model_dir / checkpoints.CONFIG_FILE).exists()
    # So the same directory can then take another config without a "holds a model" refusal.
    config = train.resolve_config(str(model_dir), "cat-mel_2bar_small", "")
    assert config.name == "cat-mel_2bar_small"
    # A new model records the dataset it is given; a resumed one keeps its own.
    config = train.resolve_config(str(model_dir), "cat-mel_2bar_small", "", "mine/mel_2bar")
    assert config.dataset == "mine/mel_2bar"
    checkpoints.save_config(str(model_dir), config)
    assert train.resolve_config(str(model_dir), None, "", "other/mel_2bar") == config


def test_a_finished_model_without_its_dataset_has_nothing_to_do(two_step_model, tmp_path,
                                                                 capsys, monkeypatch):
    """train() said "nothing to do" only after it had loaded the data and built the model:
    the same command on a machine without the dataset failed with a missing-dataset error."""
    from hmvae_tf import cli

    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    model_dir = copy_model(two_step_model, tmp_path)
    capsys.readouterr()
    code = cli.main(["train", f"--model_dir={model_dir}", f"--data_dir={tmp_path / 'no_data'}",
                     "--num_steps=2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == ""  # nothing trained, no metrics
    assert err.splitlines()[-1] == (
        f"{model_dir} is already at step 2 >= --num_steps=2; nothing to do")
    assert "error" not in err and not (tmp_path / "no_data").exists()
    assert len(checkpoints.read_runs(model_dir)) == 1  # no run recorded


def test_training_on_an_older_build_of_the_dataset_says_so(tmp_path, capsys):
    """TFDS reads the newest version in the data_dir: a data_dir built before the builder
    moved on trained the model on the old windows without a word (the version showed up only
    in train_runs.jsonl)."""
    import tensorflow_datasets as tfds

    from hmvae_tf import dataset_version
    # Registered, as in a notebook that imported it: the old build is still the one read.
    from tfds_builders.hmvae_notesequences import Builder  # noqa: F401

    current, older = tfds.core.Version(dataset_version.VERSION), "1.0.0"
    assert current > older
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, older)
    model_dir = str(tmp_path / "m")
    train.train(tiny_config(extra="batch_size=8"), model_dir, data_dir=str(data_dir),
                num_steps=1, checkpoint_every=1, eval_batches=0, verbose=0)
    out = capsys.readouterr().err
    assert (f"note: hmvae_notesequences/mel_2bar in {data_dir} is version {older}, older than "
            f"the {current} this code builds") in out
    assert "tfds build tfds_builders/hmvae_notesequences --config=mel_2bar`" in out
    assert checkpoints.read_runs(model_dir)[-1]["dataset_version"] == older
    # Once the current version is built beside it, that one is read; the resumed model is
    # told that its earlier run read the older one.
    write_mel_2bar(data_dir, str(current))
    train.train(tiny_config(extra="batch_size=8"), model_dir, data_dir=str(data_dir),
                num_steps=2, checkpoint_every=1, eval_batches=0, verbose=0)
    out = capsys.readouterr().err
    assert "older than" not in out
    assert (f"note: the earlier runs of {model_dir} read hmvae_notesequences/mel_2bar version "
            f"{older}; this run reads version {current}") in out
    assert checkpoints.read_runs(model_dir)[-1]["dataset_version"] == str(current)
    # A run on the same version as before says nothing.
    train.train(tiny_config(extra="batch_size=8"), model_dir, data_dir=str(data_dir),
                num_steps=3, checkpoint_every=1, eval_batches=0, verbose=0)
    assert "note:" not in capsys.readouterr().err


def test_resuming_on_another_dataset_says_which_the_earlier_runs_read(tmp_path):
    """A resume given another --dataset trains the model on other windows. The note compared
    versions alone: at the same version it said nothing, at another it said the earlier runs
    had read this dataset at that version."""
    runs = [{"start_step": 0, "dataset": "hmvae_notesequences/mel_2bar",
             "dataset_version": "1.1.0"},
            {"start_step": 4, "dataset": "mine/mel_2bar", "dataset_version": "1.0.0"}]
    assert train._dataset_change("m", runs, "other/mel_2bar", "1.1.0") == (
        "note: the earlier runs of m read hmvae_notesequences/mel_2bar version "
        "1.1.0, mine/mel_2bar version 1.0.0; this run reads other/mel_2bar version 1.1.0")
    # Data an earlier run read: nothing to say.
    assert train._dataset_change("m", runs, "mine/mel_2bar", "1.0.0") is None
    assert train._dataset_change("m", runs, "hmvae_notesequences/mel_2bar", "1.1.0") is None


def test_a_resume_that_checkpoints_or_validates_otherwise_says_so(tmp_path, capsys):
    """A resume takes --checkpoint_every, --eval_batches and --dtype_policy from its own
    command line: `hmvae train --model_dir=m --num_steps=N` after a run with other values
    moved the checkpoint grid and averaged val_ metrics over other batches without a word."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    eval_data = pipeline(config, n=16).take(2)
    train.train(config, model_dir, num_steps=2, checkpoint_every=2, eval_batches=2,
                train_data=pipeline(config), eval_data=eval_data, seed=1, verbose=0)
    assert "note:" not in capsys.readouterr().err
    train.train(config, model_dir, num_steps=5, checkpoint_every=3, eval_batches=1,
                train_data=pipeline(config), eval_data=eval_data.take(1), seed=1, verbose=0)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == ["note: this run has a checkpoint every 3 steps (the run before: 2), 1 "
                     "validation batch (the run before: 2), as given; a resume without "
                     "--checkpoint_every, --eval_batches or --dtype_policy keeps the run "
                     "before's"]
    assert checkpoints.kept_steps(model_dir) == [2, 3, 5]  # the grid moved, as the note says
    # The same settings again: nothing to say.
    runs = checkpoints.read_runs(model_dir)
    assert train._settings_change(runs, runs[-1]) is None


def test_a_resume_reads_the_earlier_runs_once(tmp_path, monkeypatch):
    """train() read train_runs.jsonl four times as it started (the settings to keep, the
    seed, whether the dataset and the settings changed), each reader on its own; it reads
    the runs once and hands them to each."""
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=1, checkpoint_every=1, eval_batches=0,
                train_data=pipeline(config), verbose=0)
    reads = []
    read_runs = checkpoints.read_runs
    monkeypatch.setattr(checkpoints, "read_runs",
                        lambda path: reads.append(path) or read_runs(path))
    train.train(config, model_dir, num_steps=2, checkpoint_every=2,
                train_data=pipeline(config), verbose=0)
    assert reads == [model_dir]
    runs = read_runs(model_dir)
    assert [(r["start_step"], r["checkpoint_every"]) for r in runs] == [(0, 1), (1, 2)]
    assert runs[1]["seed"] == runs[0]["seed"]  # the recorded seed, from the one read


def test_a_resume_keeps_the_run_before_s_settings_unless_given(tmp_path, capsys, monkeypatch):
    """A resume took --checkpoint_every, --eval_batches and --dtype_policy from its own
    command line, defaults included: `hmvae train --model_dir=m --num_steps=N` after a run
    with --checkpoint_every=1 went back to 500-step periods. Not given, they are the run
    before's now (said where not the defaults); given, they are used."""
    from hmvae_tf import cli, dataset_version

    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=32)
    model_dir = str(tmp_path / "m")

    def hmvae_train(*flags):
        assert cli.main(["train", "--config=cat-mel_2bar_small", f"--hparams={TINY}",
                         f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--seed=1",
                         *flags]) == 0
        return capsys.readouterr().err

    capsys.readouterr()
    hmvae_train("--num_steps=1", "--checkpoint_every=1", "--eval_batches=0",
                "--dtype_policy=float32")
    said = hmvae_train("--num_steps=3")
    assert checkpoints.kept_steps(model_dir) == [1, 2, 3]  # 500: only 3 after 1
    run = checkpoints.read_runs(model_dir)[-1]
    assert (run["checkpoint_every"], run["eval_batches"], run["dtype_policy"]) == (1, 0,
                                                                                 "float32")
    kept = ["a checkpoint every step", "0 validation batches"]
    flags = ["--checkpoint_every", "--eval_batches"]
    if train.resolve_dtype_policy("auto", tiny_config()) != "float32":  # auto's pick here
        kept, flags = kept + ["products in float32"], flags + ["--dtype_policy"]
    assert (f"note: as the run before (train_runs.jsonl), {', '.join(kept)}; "
            f"{', '.join(flags)} to change") in said.splitlines(), said
    assert "products in float32" in said.splitlines()[0]
    # Given, a setting is used (and noted as a change); the others are still kept.
    said = hmvae_train("--num_steps=6", "--checkpoint_every=2")
    assert checkpoints.kept_steps(model_dir) == [3, 4, 6]
    assert "a checkpoint every 2 steps (the run before: 1)" in said
    assert checkpoints.read_runs(model_dir)[-1]["eval_batches"] == 0
    # train() from Python keeps them too where not given (its defaults: 500, 8, float32).
    config = tiny_config()
    train.train(config, model_dir, num_steps=7, train_data=pipeline(config), verbose=0)
    run = checkpoints.read_runs(model_dir)[-1]
    assert (run["checkpoint_every"], run["eval_batches"], run["dtype_policy"]) == (2, 0,
                                                                                 "float32")
    assert "note: as the run before (train_runs.jsonl), a checkpoint every 2 steps, 0 " \
        "validation batches; --checkpoint_every, --eval_batches to change" in \
        capsys.readouterr().err
    # A new model without the flags: the defaults, nothing kept to say.
    settings, kept = run_settings.resolve(checkpoints.read_runs(str(tmp_path / "new")),
                                          {"checkpoint_every": None, "eval_batches": None,
                                           "dtype_policy": None},
                                          run_settings.COMMAND_DEFAULTS)
    assert (settings, kept) == (run_settings.COMMAND_DEFAULTS, [])


@pytest.mark.parametrize("recorded", ["key", "source line only", "full build"])
def test_training_on_a_subset_build_says_so(tmp_path, capsys, recorded):
    """A HMVAE_TFDS_MAX_PIECES build has the full build's name and version; `hmvae train`
    trained on it without a word, as if on the whole corpus."""
    from hmvae_tf import dataset_version

    source = "embedded music21 corpus (ABC folk tunes via abc2midi + Bach chorales)"
    metadata = {"key": {"source": f"{source}, subset of 160 pieces (HMVAE_TFDS_MAX_PIECES=160)",
                        "manual_dir": None,
                        "subset": {"pieces": 160, "of": 13359, "max_pieces": 160}},
                # a build from before the subset had a key of its own
                "source line only": {
                    "source": f"{source}, subset of 160 pieces (HMVAE_TFDS_MAX_PIECES=160)"},
                "full build": {"source": source, "manual_dir": None, "subset": None}}[recorded]
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, metadata=metadata)
    capsys.readouterr()
    train.train(tiny_config(extra="batch_size=8"), str(tmp_path / "m"), data_dir=str(data_dir),
                num_steps=1, checkpoint_every=1, eval_batches=0, verbose=0)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    if recorded == "full build":
        assert not lines
        return
    taken = ("160 of the 13,359 pieces" if recorded == "key" else "160 pieces")
    assert lines == [f"note: hmvae_notesequences/mel_2bar in {data_dir} is a subset build, not "
                     f"the full dataset: {taken} of the embedded corpus "
                     "(HMVAE_TFDS_MAX_PIECES=160)"]


def test_train_help_says_how_many_checkpoints_a_model_keeps(tmp_path):
    """`hmvae evaluate --step` takes a checkpoint "that must still be kept", and neither
    command said how many are: a researcher who meant to compare steps found them gone."""
    import argparse

    from hmvae_tf import evaluate

    helps = []
    for command in (train, evaluate):
        parser = argparse.ArgumentParser()
        command.add_arguments(parser, command.__name__)
        helps.append(" ".join(parser.format_help().split()))
    assert f"the newest {train.KEPT_CHECKPOINTS} checkpoints are kept" in helps[0]
    assert f"one of the newest {train.KEPT_CHECKPOINTS} it keeps" in helps[1]
    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=5, checkpoint_every=1, eval_batches=0,
                train_data=pipeline(config), seed=1, verbose=0)
    assert checkpoints.kept_steps(model_dir) == [1, 2, 3, 4, 5][-train.KEPT_CHECKPOINTS:]


def test_runs_are_recorded_and_the_card_reproduces_their_flags(tmp_path):
    """A run of 500-step periods that stops at 800 keeps checkpoints 500 and 800: read from
    the checkpoints alone the card's reproduce command said --checkpoint_every=300, and it
    never gave the --seed or dtype policy the model was trained with."""
    import argparse

    config = tiny_config(extra="batch_size=8")
    model_dir = str(tmp_path / "m")
    train.train(config, model_dir, num_steps=5, checkpoint_every=4, seed=7,
                train_data=pipeline(config), verbose=0)
    train.train(config, model_dir, num_steps=8, checkpoint_every=4, seed=7,
                train_data=pipeline(config), verbose=0)
    assert checkpoints.kept_steps(model_dir) == [4, 5, 8]  # gaps 1 and 3: neither is 4
    runs = checkpoints.read_runs(model_dir)
    assert [(r["start_step"], r["num_steps"], r["checkpoint_every"], r["seed"])
            for r in runs] == [(0, 5, 4, 7), (5, 8, 4, 7)]
    assert all(r["dtype_policy"] == "float32" for r in runs)
    # Nothing to do: no run recorded.
    train.train(config, model_dir, num_steps=8, checkpoint_every=4, seed=7,
                train_data=pipeline(config), verbose=0)
    assert len(checkpoints.read_runs(model_dir)) == 2

    facts = training_record.training_facts(model_dir, 8)
    assert facts["steps_per_epoch"] == 4
    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args([f"--model_dir={model_dir}", "--export_base=e"])
    command = next(c for c in reproduce.reproduce_commands(
        config, facts, config.dataset, None, model_dir, "e", args) if "hmvae train" in c)
    assert "--num_steps=8 --checkpoint_every=4 --seed=7 --dtype_policy=float32" in command
    # A seed given in --train_flags is not repeated.
    args.train_flags = "--seed=3"
    command = next(c for c in reproduce.reproduce_commands(
        config, facts, config.dataset, None, model_dir, "e", args) if "hmvae train" in c)
    assert command.count("--seed") == 1 and command.endswith("--seed=3")


def test_a_run_without_seed_draws_one_that_repeats_it_and_its_resume_continues(
        tmp_path, capsys, monkeypatch):
    """Without --seed, `hmvae train` ran unseeded and recorded "seed": null: the card could
    print no command that repeats the run, and a resumed run drew anew. A run now draws a
    seed, says and records it, and a resume continues it: the same two commands with that
    --seed train the very same weights."""
    from hmvae_tf import cli, dataset_version

    # `hmvae train` sets this for itself; keep it out of later tests' subprocesses.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=32)

    def hmvae_train(model_dir, num_steps, *flags):
        capsys.readouterr()
        assert cli.main(["train", "--config=cat-mel_2bar_small",
                         f"--hparams={TINY},transpose=5", f"--model_dir={model_dir}",
                         f"--data_dir={data_dir}", f"--num_steps={num_steps}",
                         "--checkpoint_every=3", "--eval_batches=0", "--dtype_policy=float32",
                         *flags]) == 0
        return capsys.readouterr().err.splitlines()[0]

    drawn_dir = str(tmp_path / "drawn")
    line = hmvae_train(drawn_dir, 3)
    seed = checkpoints.read_runs(drawn_dir)[0]["seed"]
    assert isinstance(seed, int) and 0 <= seed <= 2**31 - 1
    assert line.endswith(f", seed {seed} (drawn; pass --seed={seed} to repeat)")
    line = hmvae_train(drawn_dir, 6)  # resumed: the first run's seed, plus the step
    assert line.endswith(f", seed {seed} (this model's, from train_runs.jsonl)")
    assert [r["seed"] for r in checkpoints.read_runs(drawn_dir)] == [seed, seed]
    flags = reproduce.recorded_train_flags(checkpoints.read_runs(drawn_dir)) + " "
    assert f" --seed={seed} " in flags and " --eval_batches=0 " in flags, flags  # not the 8
    assert "--eval_batches" not in reproduce.recorded_train_flags(
        checkpoints.read_runs(drawn_dir), "--eval_batches=2")  # --train_flags wins
    # Already at --num_steps: nothing is trained, so no seed is said (it said one, and a
    # drawn one with "pass --seed to repeat").
    line = hmvae_train(drawn_dir, 6)
    assert line.endswith(", products in float32") and ", seed " not in line, line
    assert len(checkpoints.read_runs(drawn_dir)) == 2

    given_dir = str(tmp_path / "given")
    for num_steps in (3, 6):
        assert hmvae_train(given_dir, num_steps, f"--seed={seed}").endswith(f", seed {seed}")
    drawn, given = checkpoints.load_model(drawn_dir), checkpoints.load_model(given_dir)
    for a, b in zip(drawn.weights, given.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_a_directory_begun_unseeded_continues_the_first_seed_it_recorded(tmp_path):
    """A directory an older version began without a seed recorded "seed": null for its first
    run, and every resume then drew a seed of its own. The first seed recorded is the one the
    resumes after it continue."""
    from hmvae_tf import train as train_module

    runs = [{"start_step": 0, "seed": None}, {"start_step": 3, "seed": 41},
            {"start_step": 6, "seed": 41}]
    assert train_module.resolve_seed(runs, None) == (41, "recorded")
    assert train_module.resolve_seed(runs, 7) == (7, "given")


def test_schedules_are_logged_at_the_period_s_last_step_and_not_validated(tmp_path):
    """beta (and p_sample) were logged as their mean over the checkpoint period, which lags
    a schedule that moves, and val_beta and val_p_sample repeated the training value (or 0).
    They are logged at the period's last step now, in history.csv and TensorBoard, and
    validation logs the loss terms alone; an older history.csv with those columns goes on."""
    from hmvae_tf.model.schedules import kl_beta, sampling_probability

    # beta 1 - 0.5^step: over steps 0..3 of a period it is 0, .5, .75, .875 (mean .53).
    config = tiny_config(extra="batch_size=8,beta_rate=0.5,max_beta=1.0,"
                         "sampling_schedule=inverse_sigmoid,sampling_rate=2.0")
    model_dir = str(tmp_path / "m")
    history = train.train(config, model_dir, num_steps=8, checkpoint_every=4,
                          train_data=pipeline(config), eval_data=pipeline(config).take(1),
                          seed=1, verbose=0).history
    # A period's last step is its end's step - 1 (the optimizer counts the steps done).
    for end, beta, p_sample in zip((4, 8), history["beta"], history["p_sample"]):
        assert beta == pytest.approx(float(kl_beta(end - 1, 1.0, 0.5)))
        assert p_sample == pytest.approx(float(sampling_probability(end - 1,
                                                                    "inverse_sigmoid", 2.0)))
    assert "val_r_loss" in history
    assert not {"val_beta", "val_p_sample"} & set(history)
    path = os.path.join(model_dir, "history.csv")
    rows = plots.read_history(path)
    assert [r["beta"] for r in rows] == pytest.approx(history["beta"])
    assert not {"val_beta", "val_p_sample"} & set(rows[0])
    tensorboard = event_scalars(os.path.join(model_dir, "logs", "train"))
    assert tensorboard["epoch_beta"] == [(4, pytest.approx(history["beta"][0])),
                                         (8, pytest.approx(history["beta"][1]))]
    assert "epoch_beta" not in event_scalars(os.path.join(model_dir, "logs", "validation"))

    # A file begun with the val_ copies (an older version) keeps its columns: NA in them.
    with open(path) as f:
        old = list(csv.DictReader(f))
    header = list(old[0]) + ["val_beta", "val_p_sample"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, header, restval="0.5")
        writer.writeheader()
        writer.writerows(old)
    train.train(config, model_dir, num_steps=12, checkpoint_every=4,
                train_data=pipeline(config), eval_data=pipeline(config).take(1), seed=1,
                verbose=0)
    with open(path) as f:
        lines = [line.split(",") for line in f.read().splitlines()]
    assert lines[0] == header and all(len(line) == len(header) for line in lines)
    rows = plots.read_history(path)
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert np.isnan(rows[-1]["val_beta"]) and rows[0]["val_beta"] == 0.5
    assert rows[-1]["beta"] == pytest.approx(float(kl_beta(11, 1.0, 0.5)))
    plots.training_curves(rows, 4, str(tmp_path / "curves.png"))


def test_training_says_which_build_it_reads_and_its_windows(tmp_path, capsys,
                                                              monkeypatch):
    """The start line named the dataset alone: a researcher could not tell from it whether
    the data_dir held a build of their own MIDI folder or of the embedded corpus, at which
    version, nor how many windows it trains on."""
    from hmvae_tf import data, dataset_version

    data_dir = tmp_path / "tfds"
    write_mel_2bar(data_dir, dataset_version.VERSION, n=24, splits=("train", "validation"),
                   metadata={"source": "manual_dir /my/midi", "manual_dir": "/my/midi"})
    capsys.readouterr()
    train.train(tiny_config(extra="batch_size=8"), str(tmp_path / "m"), data_dir=str(data_dir),
                num_steps=1, checkpoint_every=1, eval_batches=1, verbose=0)
    said = capsys.readouterr().err.splitlines()
    assert (f"data: hmvae_notesequences/mel_2bar version {dataset_version.VERSION} in "
            f"{data_dir}, built from the MIDI files under /my/midi; windows per split: "
            "train 24, validation 24") in said
    corpus_dir = tmp_path / "corpus"
    write_mel_2bar(corpus_dir, dataset_version.VERSION, n=3,
                   metadata={"source": "embedded music21 corpus", "manual_dir": None})
    assert data.build_line("hmvae_notesequences/mel_2bar", str(corpus_dir)) == (
        f"data: hmvae_notesequences/mel_2bar version {dataset_version.VERSION} in "
        f"{corpus_dir}, built from the embedded corpus; windows per split: train 3")
    assert data.build_line("hmvae_notesequences/mel_2bar", str(tmp_path / "none")) is None
    # Without --data_dir, the folder TFDS reads (its default, from TFDS_DATA_DIR when that
    # is set as TFDS is imported), not "~/tensorflow_datasets" whatever it is.
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(corpus_dir))
    assert data.build_line("hmvae_notesequences/mel_2bar", None).startswith(
        f"data: hmvae_notesequences/mel_2bar version {dataset_version.VERSION} in "
        f"{corpus_dir}, built from the embedded corpus")
