"""What a model directory records of its training (history.csv, train_runs.jsonl, TensorBoard
event files, kept checkpoints), read back for a model card: steps, checkpoint period, history
and the time spent training, up to the exported step."""
from __future__ import annotations

import glob
import os

import numpy as np


def event_times(log_dir: str) -> list[tuple[str, float, list[tuple[float, int]]]]:
    """Per TensorBoard event file under log_dir: (path, start time, [(wall time, step)] of its
    summaries)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    out = []
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents*"),
                                 recursive=True)):
        start, points = None, []
        try:
            for record in tf.data.TFRecordDataset(path):
                event = event_pb2.Event.FromString(record.numpy())
                start = event.wall_time if start is None else start
                if event.HasField("summary"):
                    points.append((event.wall_time, int(event.step)))
        except tf.errors.DataLossError:  # a file being written: keep what was read
            pass
        if start is not None:
            out.append((path, start, points))
    return out


def training_time(model_dir: str, step: int | None = None) -> float | None:
    """Seconds spent training, from the train event files' wall times (each run of `hmvae
    train` writes its own file, so pauses between resumed runs do not count), up to the
    summary of global step `step` (the export's) when given. (Files written before the
    summaries were put at the global step have epoch numbers there, which are never past it:
    such a file counts whole.)"""
    files = [f for f in event_times(os.path.join(model_dir, "logs"))
             if os.sep + "train" + os.sep in f[0] or os.path.basename(
                 os.path.dirname(f[0])) == "train"]
    if not files:
        return None
    total = 0.0
    for _, start, points in files:
        kept = [t for t, at in points if step is None or at <= step]
        if kept:
            total += max(kept) - start
    return total


def steps_per_epoch_from_checkpoints(model_dir: str) -> int | None:
    """The checkpoint period: the largest gap between the kept checkpoints' steps (a save at
    an interruption makes a smaller one)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "ckpt"))
    if state is None:
        return None
    steps = sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)
    return int(np.max(np.diff(steps))) if len(steps) > 1 else None


def training_facts(model_dir: str, step: int | None) -> dict:
    """Steps, steps per checkpoint period (= history.csv row), history and wall time of a
    training directory, up to `step` (the exported one)."""
    from hmvae_tf import plots

    facts: dict = {"model_dir": model_dir, "step": step, "steps_per_epoch": None,
                   "last_epoch": None, "seconds": None, "history": []}
    if not model_dir or not os.path.isdir(model_dir):
        return facts
    history_path = os.path.join(model_dir, "history.csv")
    history = plots.read_history(history_path) if os.path.exists(history_path) else []
    facts["history"] = history
    # What `hmvae train` recorded of its runs (train_runs.jsonl) up to the exported step; the
    # kept checkpoints only suggest the period (--num_steps off the grid, or a stop, leaves a
    # smaller gap: 500-step periods ending at 800 kept 500 and 800, and read as 300).
    from hmvae_tf.checkpoints import read_runs

    runs = [r for r in read_runs(model_dir) if step is None or r["start_step"] < step]
    facts["runs"] = runs
    # A run records --checkpoint_every as given; its period stops at its --num_steps.
    period = (min(runs[-1]["checkpoint_every"], runs[-1]["num_steps"]) if runs
              else steps_per_epoch_from_checkpoints(model_dir))
    if not period and history and step:
        period = max(1, int(round(step / (max(int(r["epoch"]) for r in history) + 1))))
    facts["steps_per_epoch"] = period
    if period and step:
        facts["last_epoch"] = step // period - 1
    if os.path.isdir(os.path.join(model_dir, "logs")):
        facts["seconds"] = training_time(model_dir, step)
    if history:
        upto = history_upto(facts) or history
        facts["final"] = {k: v for k, v in upto[-1].items() if np.isfinite(v)}
    return facts


def history_upto(facts: dict) -> list[dict]:
    """The history rows up to the exported step: by their `step` column, or in an older file
    without it, by the epoch that step falls in."""
    def kept(row: dict) -> bool:
        if np.isfinite(row.get("step", np.nan)):
            return facts["step"] is None or row["step"] <= facts["step"]
        return facts["last_epoch"] is None or row["epoch"] <= facts["last_epoch"]

    return [r for r in facts["history"] if kept(r)]
