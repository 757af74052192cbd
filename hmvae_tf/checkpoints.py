"""A model directory: its config, its checkpoints (weights and optimizer state), and how to
get a trained model back from it.

Layout of `--model_dir`:
    config.json        the exact Config the model was built from
    ckpt/              tf.train.CheckpointManager checkpoints: model, optimizer (Adam moments,
                       step count); resuming continues where the last one left off
    logs/              TensorBoard event files (scalars at the global step)
    history.csv        one row of metrics per checkpoint period, with the step it ends at
    train_runs.jsonl   one line per `hmvae train` run: the step it started from and the flags
                       the config does not hold (--num_steps, --checkpoint_every, --seed,
                       the dtype policy in effect, the dataset and its version)
"""
from __future__ import annotations

import contextlib
import csv
import errno
import math
import os
import shutil
import sys
from typing import TextIO

import keras
import tensorflow as tf

from hmvae_tf import progress
from hmvae_tf.configs import Config
from hmvae_tf.model.vae import SCHEDULE_TERMS, MusicVAE

CONFIG_FILE = "config.json"
CKPT_DIR = "ckpt"
RUNS_FILE = "train_runs.jsonl"


def save_config(model_dir: str, config: Config) -> None:
    """Writes config.json atomically: the file that makes a folder a model directory."""
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, CONFIG_FILE + ".tmp")
    with open(tmp, "w") as f:
        f.write(config.to_json())
    os.replace(tmp, os.path.join(model_dir, CONFIG_FILE))


def load_config(model_dir: str) -> Config | None:
    """The model directory's Config, or None when it holds no model yet."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return Config.from_json(f.read())


def record_run(model_dir: str, run: dict) -> None:
    """Appends one training run's flags to train_runs.jsonl (a model card's reproduce command
    reads --checkpoint_every and --seed from it instead of guessing them)."""
    import json

    with open(os.path.join(model_dir, RUNS_FILE), "a") as f:
        f.write(json.dumps(run, sort_keys=True) + "\n")


def read_runs(model_dir: str) -> list[dict]:
    """The runs train_runs.jsonl records, oldest first (empty for an older model directory)."""
    import json

    path = os.path.join(model_dir, RUNS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _step_of(path: str) -> int:
    """Checkpoints are numbered by global step: .../ckpt-<step>."""
    return int(path.rsplit("-", 1)[1])


def checkpoint_step(model_dir: str) -> int | None:
    """The global step of the newest checkpoint."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CKPT_DIR))
    return _step_of(latest) if latest else None


def kept_steps(model_dir: str) -> list[int]:
    """Global steps of every checkpoint the directory still keeps, oldest first."""
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, CKPT_DIR))
    paths = state.all_model_checkpoint_paths if state else []
    return sorted(_step_of(p) for p in paths)


def make_checkpoint(model: MusicVAE) -> tf.train.Checkpoint:
    """Weights by their Keras path (plus the optimizer's state when training).

    Not `tf.train.Checkpoint(model=model)`: Keras 3 hides the layers it keeps in lists (the
    decoder's cores, an LSTM stack's layers) from TF checkpoints, so they would silently not
    be saved. Paths are stable because every layer is named explicitly.
    """
    weights = {v.path: v for v in model.weights}
    if getattr(model, "optimizer", None) is not None:
        # Create Adam's slots now so a restore fills them instead of deferring.
        model.optimizer.build(model.trainable_variables)
        return tf.train.Checkpoint(weights=weights, optimizer=model.optimizer)
    return tf.train.Checkpoint(weights=weights)


def load_model(model_dir: str, for_training: bool = False,
               step: int | None = None) -> MusicVAE:
    """The newest checkpoint of a model directory (or the one saved at global `step`), ready
    for inference (or, with `for_training`, compiled with the optimizer's state restored, for
    `fit` and `evaluate`). The model alone, as export.load_model gives an export's: its
    config is `model.config`."""
    return load_model_at(model_dir, for_training, step)[0]


def load_model_at(model_dir: str, for_training: bool = False,
                  step: int | None = None) -> tuple[MusicVAE, Config, int]:
    """load_model, and the step of the checkpoint it read: asking checkpoint_step() after
    the load can name a newer checkpoint that a running training wrote in between."""
    config = load_config(model_dir)
    if config is None:
        raise FileNotFoundError(f"{model_dir} is not a model directory (no {CONFIG_FILE}); "
                                f"train one with `hmvae train --model_dir={model_dir}`")
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CKPT_DIR))
    if latest is None:
        raise FileNotFoundError(f"{model_dir} has no checkpoint yet")
    if step is not None:
        state = tf.train.get_checkpoint_state(os.path.join(model_dir, CKPT_DIR))
        wanted = [p for p in state.all_model_checkpoint_paths if p.endswith(f"-{step}")]
        if not wanted:
            kept = ", ".join(p.rsplit("-", 1)[1] for p in state.all_model_checkpoint_paths)
            raise FileNotFoundError(f"{model_dir} has no checkpoint of step {step} (kept: {kept})")
        latest = wanted[0]
    model = MusicVAE(config)
    model.build()
    if for_training:
        model.compile_for_training()
    status = make_checkpoint(model).read(latest)
    status.assert_existing_objects_matched()  # every weight (and slot) came from the file
    if not for_training:
        status.expect_partial()  # the optimizer's state stays unread
    return model, config, int(latest.rsplit("-", 1)[1])


# How TensorFlow's file system ends the messages of a refused write, and their errno.
_WRITE_ERRNOS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                 "Read-only file system": errno.EROFS, "Permission denied": errno.EACCES}


class CheckpointWriteError(OSError):
    """The file system refused a checkpoint: full, over quota, read-only or forbidden."""


class CheckpointSaver(keras.callbacks.Callback):
    """Saves model + optimizer every `every` global steps and when training stops for any
    reason. Saving on the global-step grid keeps checkpoint steps
    aligned across runs even when one was resumed from an odd step (after SIGTERM), so two
    models can be compared at the same step. With MultiWorkerMirroredStrategy every worker
    takes part in the save, but only the chief writes into the model directory.

    A step's checkpoint is written at the next hook with the same weights: the next batch's
    start, or, at the end of a period, the epoch's end, after its validation and its
    history.csv row (the saver comes last among the callbacks). A process killed in between
    then resumes from the period before and logs this one again (HistoryCSV drops the row
    it had), instead of resuming past a period that has no row."""

    def __init__(self, model_dir: str, max_to_keep: int = 3, is_chief: bool = True,
                 worker_index: int = 0, every: int = 500):
        super().__init__()
        self.every = every
        self.is_chief = is_chief
        self.chief_directory = os.path.join(model_dir, CKPT_DIR)
        self.directory = self.chief_directory if is_chief else os.path.join(
            model_dir, f".worker_{worker_index}_tmp")
        self.max_to_keep = max_to_keep
        self.manager: tf.train.CheckpointManager | None = None
        # The step at which the loss or the weights stopped being finite: nothing is saved
        # from then on, so the newest checkpoint stays the last good state.
        self.diverged_at: int | None = None
        self.save_due = False  # a grid step has ended and its checkpoint is not written yet

    def attach(self, model: MusicVAE) -> tf.train.CheckpointManager:
        """Binds the saver to a built, compiled model (its weights and optimizer state)."""
        self.manager = tf.train.CheckpointManager(
            make_checkpoint(model), self.directory, max_to_keep=self.max_to_keep)
        return self.manager

    def restore(self) -> int:
        """Restores the newest checkpoint, if any; returns the step it was taken at.

        Every worker reads the chief's checkpoint (its own scratch copy is deleted after each
        save), so a resumed multi-worker job starts all workers from the same state; as with
        any MultiWorkerMirroredStrategy job, the model directory must be on a file system the
        workers share."""
        latest = tf.train.latest_checkpoint(self.chief_directory)
        if latest:
            self.manager.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.model_step())

    def model_step(self) -> int:
        """The global step: the optimizer's iteration count, restored with it."""
        return int(self.manager.checkpoint.optimizer.iterations.numpy())

    def save(self) -> str:
        """Saves now, numbered by the global step; returns the checkpoint's path. A file
        system that refuses it (full, read-only) is a CheckpointWriteError, and the newest
        checkpoint stays the one before."""
        step = self.model_step()
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError) as err:
            # TensorFlow's file system says a full disk as running out of memory, which stands.
            reason = next((r for r in _WRITE_ERRNOS if r in err.message), None)
            if reason is None:
                raise
            # The unfinished save's shards (TensorFlow leaves them in <prefix>_temp).
            shutil.rmtree(os.path.join(self.directory, f"ckpt-{step}_temp"), ignore_errors=True)
            raise CheckpointWriteError(_WRITE_ERRNOS[reason], reason, self.directory) from None
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path

    def weights_finite(self) -> bool:
        """Whether every trainable weight is finite (a diverged step leaves NaN or inf)."""
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                                   for v in self.model.trainable_weights]))

    def save_if_sound(self) -> bool:
        """Saves unless training has diverged or the weights are not finite (then marks the
        divergence); returns whether it saved."""
        self.save_due = False
        if self.diverged_at is not None:
            return False
        if not self.weights_finite():
            self.diverged_at = self.model_step()
            return False
        self.save()
        return True

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.save_due:
            self.save_if_sound()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.diverged_at is not None:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = self.model_step()
        elif self.model_step() % self.every == 0:
            self.save_due = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_due:
            self.save_if_sound()

    def on_train_end(self, logs: dict | None = None) -> None:
        latest = self.manager.latest_checkpoint
        if latest is None or not latest.endswith(f"-{self.model_step()}"):
            self.save_if_sound()


class StopAtStep(keras.callbacks.Callback):
    """Ends training at global step `num_steps` exactly, also when a resumed run started off
    the epoch grid (Keras would otherwise run whole epochs past it)."""

    def __init__(self, num_steps: int):
        super().__init__()
        self.num_steps = num_steps

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) >= self.num_steps:
            self.model.stop_training = True


class StepProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar with each epoch's target the steps it really runs, on stderr.

    The last epoch of a run that ends at num_steps off the epoch grid (a resumed run, or
    --num_steps not a multiple of --checkpoint_every) is cut short by StopAtStep, and Keras's
    own bar would count it to the full period and then print "period/period" anyway.

    Progress goes to `stream` (default: sys.stderr), results to stdout, so that
    `hmvae train ... > metrics.txt` keeps the results and the terminal still shows the bar.
    Keras's ProgbarLogger and Progbar write to sys.stdout and take no stream (keras.io: "prints
    metrics to stdout"; `keras.config.disable_interactive_logging` sends them to absl's INFO
    log instead, hidden by default), so this callback's own hooks run with sys.stdout
    pointed at the stream: only the bar's writes move, not the rest of fit's output.
    """

    def __init__(self, num_steps: int, stream: TextIO | None = None):
        super().__init__()
        self.num_steps = num_steps
        self.stream = stream  # None: sys.stderr when written (so a test's capture sees it)
        # Whether the bar (verbose 1) is being redrawn in place, its line not ended: a line
        # written on the stream now (a stop's) must start on a new one.
        self.mid_line = False

    def _progress_stream(self) -> TextIO:
        return self.stream or sys.stderr

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.period = params["steps"]

    def on_train_begin(self, logs: dict | None = None) -> None:
        import time

        super().on_train_begin(logs)
        self.started = time.monotonic()
        self.start_step = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        self.target = max(1, min(self.period, self.num_steps - step))
        with contextlib.redirect_stdout(self._progress_stream()):
            super().on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        with contextlib.redirect_stdout(self._progress_stream()):
            super().on_train_batch_end(batch, logs)
        self.mid_line = self.verbose == 1  # verbose 2 writes whole lines, at epoch ends

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Keras's line, then the global step and an estimate of the time left: "Epoch 7/100"
        alone says neither (a resumed run's epochs restart off the grid)."""
        import time

        with contextlib.redirect_stdout(self._progress_stream()):
            super().on_epoch_end(epoch, logs)
        self.mid_line = False  # Keras ends the bar's line with the epoch's metrics
        if not self.verbose:
            return
        step = int(self.model.optimizer.iterations.numpy())
        done, left = step - self.start_step, max(0, self.num_steps - step)
        line = f"step {step:,}/{self.num_steps:,}"
        if done > 0 and left:
            seconds_left = (time.monotonic() - self.started) / done * left
            line += f", about {progress.duration(seconds_left)} left"
        print(line, file=self._progress_stream(), flush=True)


class StepTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback with each epoch's scalars at the global step it ends at.

    Keras puts them at the epoch number, which stops meaning a place in training once a run
    is resumed off the checkpoint grid or with another --checkpoint_every (two points at one
    x, or a gap). The tags stay Keras's own (`epoch_loss`, ...).

    A process killed after a period's points but before its checkpoint leaves them in its
    event file (HistoryCSV drops the row; nothing here rewrites event files): the resumed run
    logs that step again, and TensorBoard keeps a series' newer point at a step it read
    before. Its older loader (--load_fast=false) purges only on a SessionLog.START event,
    which tf.summary has no public API to write, and shows both (BUILD.md)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(int(self.model.optimizer.iterations.numpy()), logs)


class HistoryCSV(keras.callbacks.CSVLogger):
    """history.csv, appended across resumed runs, with the global step each row ends at.

    A run resumed off the checkpoint grid (stopped at step 2197 with period 1000) has epochs
    that end at 3197, 4197, ...: `epoch` alone no longer says where a row is, `step` does.
    Rows added to an existing file keep its columns (CSVLogger would write this run's own
    under the old header, shifted when validation or the step column came or went); a file
    begun by an older version goes on without `step`.

    The rows follow the checkpoints, one per period up to the step a run resumes from: rows
    past it (a process killed after a period's row but before its checkpoint, or a diverged
    run) describe training that is done again, so a resume drops them rather than log those
    steps twice; and a run stopped by Ctrl-C or SIGTERM logs the period it cut short
    (`log_stopped_epoch`), as far as the step it saved, where Keras would log nothing.
    """

    STEP = "step"

    def __init__(self, model_dir: str):
        self.path = os.path.join(model_dir, "history.csv")
        super().__init__(self.path, append=True)
        self._with_step = True
        self._logged_step = 0  # the step the newest row ends at
        self._epoch = 0
        self._batch_logs: dict | None = None  # this epoch's metrics so far

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._logged_step = int(self.model.optimizer.iterations.numpy())
        header = _header(self.path) if os.path.exists(self.path) else []
        if self.STEP in header:
            dropped = _drop_rows_after(self.path, header.index(self.STEP), self._logged_step)
            if dropped:
                # A note, with the progress on stderr: stdout keeps the results.
                print(f"history.csv: dropped {dropped} row{'' if dropped == 1 else 's'} past "
                      f"step {self._logged_step}, "
                      "the checkpoint this run resumes from (their steps are trained again)",
                      file=sys.stderr)
        super().on_train_begin(logs)
        if header:
            self.keys = header[1:]  # after "epoch"
        self._with_step = not header or self.STEP in header

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._batch_logs = epoch, None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batch_logs = logs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        self._logged_step = int(self.model.optimizer.iterations.numpy())
        if self._with_step:
            logs[self.STEP] = self._logged_step
        if self.keys is None:  # a new file: CSVLogger's columns, without a "val_step"
            self.keys = sorted(logs)  # nor validation copies of the schedules (beta, ...)
            if not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys
                              if k != self.STEP and k not in SCHEDULE_TERMS]
        super().on_epoch_end(epoch, logs)

    def log_stopped_epoch(self) -> None:
        """Logs the epoch a signal stopped, up to the step just saved: its training metrics so
        far, no validation (NA). Without it the next run's first row would follow the last
        full period, its steps missing (a whole period when the signal came during the
        period's validation, after its last step)."""
        step = int(self.model.optimizer.iterations.numpy())
        if self._batch_logs is not None and step > self._logged_step:
            self.on_epoch_end(self._epoch, {k: float(v) for k, v in self._batch_logs.items()})
        self.on_train_end()  # closes the file, which Keras leaves open on an interrupt


def _header(path: str) -> list[str]:
    with open(path) as f:
        line = f.readline().strip()
    return line.split(",") if line else []


def _drop_rows_after(path: str, step_column: int, step: int) -> int:
    """Rewrites a history.csv without its rows that end past `step`; how many it dropped."""
    with open(path, newline="") as f:
        lines = f.readlines()
    kept = lines[:1] + [line for line in lines[1:]
                        if not _ends_after(next(csv.reader([line]), []), step_column, step)]
    if len(kept) < len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            f.writelines(kept)
        os.replace(tmp, path)
    return len(lines) - len(kept)


def _ends_after(row: list[str], step_column: int, step: int) -> bool:
    try:
        return float(row[step_column]) > step
    except (IndexError, ValueError):  # a row without a step: not ours to judge
        return False
