"""PNG pictures for model cards: training curves from history.csv, and piano rolls of token
windows (samples, reconstructions, interpolations). matplotlib with the Agg backend (no display).
"""
from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TRACK_COLORS = {"melody": "#1f77b4", "bass": "#2ca02c", "drums": "#d62728"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- training curves ------------------------------------------------------------------------
def read_history(path: str) -> list[dict]:
    """history.csv rows as floats in training order, one per step they end at (or, in a file
    without the `step` column, per epoch); of rows logged twice (a run resumed from an older
    checkpoint) the last."""
    with open(path) as f:
        rows = [{k: float(v) if v not in ("", None, "NA") else np.nan for k, v in row.items()}
                for row in csv.DictReader(f)]
    key = "step" if rows and all(np.isfinite(r.get("step", np.nan)) for r in rows) else "epoch"
    by_key = {}
    for row in rows:
        by_key[int(row[key])] = row
    return [by_key[k] for k in sorted(by_key)]


def row_step(row: dict, steps_per_epoch: int) -> int:
    """The global step a history row ends at: its `step`, or the end of its epoch."""
    step = row.get("step", np.nan)
    return int(step) if np.isfinite(step) else (int(row["epoch"]) + 1) * steps_per_epoch


def training_curves(history: list[dict], steps_per_epoch: int, path: str,
                    title: str = "") -> str:
    """Reconstruction loss, KL (bits), beta (and the scheduled-sampling probability) and
    accuracy, train and validation, against the training step."""
    plt = _pyplot()
    steps = np.array([row_step(row, steps_per_epoch) for row in history])
    panels = [("r_loss", "reconstruction loss (nats / window)"), ("kl_bits", "KL (bits)"),
              ("beta", "beta (KL weight)"), ("accuracy", "teacher-forced accuracy")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, (key, label) in zip(axes.flat, panels):
        ax.plot(steps, [r.get(key, np.nan) for r in history], label="train", color="#1f77b4")
        if key != "beta" and any(np.isfinite(r.get("val_" + key, np.nan)) for r in history):
            ax.plot(steps, [r.get("val_" + key, np.nan) for r in history], label="validation",
                    color="#ff7f0e")
        if key == "beta" and any(r.get("p_sample", 0) > 0 for r in history):
            ax.plot(steps, [r.get("p_sample", np.nan) for r in history], "--",
                    label="p(sampled input)", color="#7f7f7f")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --- piano rolls ----------------------------------------------------------------------------
def _notes(tokens: np.ndarray, tracks) -> list[tuple[str, int, int, int]]:
    """(track, start, end, pitch-or-drum-row) of every note in tokens [T, K]."""
    from hmvae_tf.music.melody import token_notes

    out = []
    for k, track in enumerate(tracks):
        values = tokens[:, k]
        if track == "drums":
            for step in np.flatnonzero(values):
                for bit in range(9):
                    if int(values[step]) >> bit & 1:
                        out.append((track, int(step), int(step) + 1, bit))
        else:
            out += [(track, s, e, p) for s, e, p in token_notes(values)]
    return out


def draw_roll(ax: Axes, tokens: np.ndarray, tracks: Sequence[str], title: str = "",
              pitch_range: tuple[int, int] | None = None) -> None:
    """One window's piano roll on a matplotlib axis; drums as rows under the pitched notes,
    named by drum class (a drum model's roll has no pitch axis)."""
    from hmvae_tf.music.drums import DRUM_CLASS_NAMES

    tokens = np.asarray(tokens)
    if tokens.ndim == 1:
        tokens = tokens[:, None]
    steps = len(tokens)
    notes = _notes(tokens, tracks)
    pitches = [p for t, _, _, p in notes if t != "drums"]
    lo, hi = pitch_range or _padded(pitches)
    drum_base = lo - 11
    height = max(0.8, (hi - lo) / 25)
    for track, start, end, p in notes:
        y = drum_base + p if track == "drums" else p
        ax.add_patch(_rect((start, y - height / 2), end - start, height,
                           TRACK_COLORS.get(track, "k")))
    for bar in range(0, steps + 1, 16):
        ax.axvline(bar, color="#444", lw=0.6)
    if steps <= 64:
        for beat in range(0, steps, 4):
            ax.axvline(beat, color="#bbb", lw=0.3)
    pitched = any(track != "drums" for track in tracks)
    bottom = drum_base - 1 if "drums" in tracks else lo
    ax.set_xlim(0, steps)
    # A drums-only roll has no pitch axis: its rows are the 9 drum classes, labelled so.
    ax.set_ylim(bottom, hi if pitched else drum_base + len(DRUM_CLASS_NAMES))
    ax.tick_params(labelsize=6)
    ticks = [p for p in range(int(lo), int(hi) + 1) if p % 12 == 0] if pitched else []
    labels = [f"C{p // 12 - 1}" for p in ticks]
    if "drums" in tracks and not pitched:
        ticks = [drum_base + row for row in range(len(DRUM_CLASS_NAMES))]
        labels = list(DRUM_CLASS_NAMES)
    elif "drums" in tracks:  # a trio's 9 drum rows are too close for 9 names: one says them
        ticks = [drum_base + len(DRUM_CLASS_NAMES) // 2] + ticks
        labels = ["drums"] + labels
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_xticks(range(0, steps + 1, 16 if steps <= 64 else 64))
    if title:
        ax.set_title(title, fontsize=8, loc="left")


def _rect(xy, width, height, color):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, facecolor=color, edgecolor="none")


def _padded(pitches) -> tuple[int, int]:
    """A pitch range around the notes, at least an octave and a half high."""
    if not pitches:
        return 58, 78
    lo, hi = min(pitches) - 2, max(pitches) + 2
    missing = max(0, 20 - (hi - lo))
    return lo - missing // 2, hi + missing - missing // 2


def _shared_range(windows, tracks):
    return _padded([p for w in windows for t, _, _, p in _notes(
        np.asarray(w).reshape(len(w), -1), tracks) if t != "drums"])


def piano_rolls(windows: Iterable[np.ndarray], tracks: Sequence[str], path: str,
                titles: Sequence[str] | None = None, title: str = "", columns: int = 1) -> str:
    """A grid of piano rolls (one per window, [T] or [T, K] tokens) sharing the pitch range."""
    plt = _pyplot()
    windows = [np.asarray(w) for w in windows]
    rows = -(-len(windows) // columns)
    steps = len(windows[0])
    width = (5.0 if columns <= 2 else 3.6) * columns if steps <= 64 else 12.0
    fig, axes = plt.subplots(rows, columns, figsize=(width, 1.25 * rows + 0.6), squeeze=False)
    shared = _shared_range(windows, tracks)
    for i, ax in enumerate(axes.flat):
        if i >= len(windows):
            ax.axis("off")
            continue
        draw_roll(ax, windows[i], tracks, (titles or [""] * len(windows))[i], shared)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

