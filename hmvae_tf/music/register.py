"""Moving a melody window by whole octaves into the register the melody models learned, and
their output back, so a piccolo or a bass line is not read as notes the model never saw.

The embedded corpus (folk tunes, chorale parts) lies within about MIDI 48..84 (C3..C6), and
so do the shipped models' samples (5th to 95th percentile 52..84). Outside it their
reconstructions lose the tune: the 2-bar model at temperature 0 gets 84-91 % of a C major
scale's steps right at C4-F#4, 72 % at F#5 and 50 % at C2 or F#6, where it answers with
notes of the middle register. An octave is the one move that leaves a melody itself.
"""
from __future__ import annotations

import numpy as np

from .melody import MAX_PITCH, MIN_PITCH, PITCH_OFFSET

LOW_PITCH, HIGH_PITCH = 48, 84  # C3..C6, the register the melody models learned
_MIDDLE = (LOW_PITCH + HIGH_PITCH) / 2


def octave_shift(tokens: np.ndarray) -> int:
    """Octaves to move melody tokens by so that their notes lie in LOW_PITCH..HIGH_PITCH:
    0 when they already do (or there are none); else the move leaving the fewest notes
    outside, and of those the one centring the notes best (the smaller move if two do)."""
    pitches = np.asarray(tokens)[np.asarray(tokens) >= 2] + PITCH_OFFSET
    if not len(pitches) or (pitches.min() >= LOW_PITCH and pitches.max() <= HIGH_PITCH):
        return 0
    mean = float(pitches.mean())

    def cost(octaves: int) -> tuple[int, float, int]:
        moved = pitches + 12 * octaves
        outside = int(np.count_nonzero((moved < LOW_PITCH) | (moved > HIGH_PITCH)))
        return outside, abs(mean + 12 * octaves - _MIDDLE), abs(octaves)

    return min(range(-7, 8), key=cost)


def shift_octaves(tokens: np.ndarray, octaves: int) -> np.ndarray:
    """Melody tokens (any shape) with every note moved by `octaves` octaves; a note that
    would leave MIDI 21..108 stays an octave (or more) nearer, inside it."""
    tokens = np.asarray(tokens)
    if not octaves:
        return tokens
    pitch = tokens + PITCH_OFFSET + 12 * octaves
    pitch = np.where(pitch > MAX_PITCH, pitch - 12 * -(-(pitch - MAX_PITCH) // 12), pitch)
    pitch = np.where(pitch < MIN_PITCH, pitch + 12 * -(-(MIN_PITCH - pitch) // 12), pitch)
    return np.where(tokens >= 2, pitch - PITCH_OFFSET, tokens).astype(tokens.dtype)


def move_notes(ns, octaves: int):
    """The pitched notes of a NoteSequence moved by `octaves` octaves (in place; returned); a
    note that would leave MIDI 0..127 stays an octave (or more) nearer. Output is moved back
    this way, as MIDI rather than tokens, so a line read from above MIDI 108 (where the tokens
    end) comes back there and not an octave lower."""
    if not octaves:
        return ns
    for note in ns.notes:
        if not note.is_drum:
            pitch = note.pitch + 12 * octaves
            pitch -= 12 * -(-max(pitch - 127, 0) // 12)
            note.pitch = pitch + 12 * -(-max(-pitch, 0) // 12)
    return ns


def interpolation_octaves(start: int, end: int, steps: int) -> list[int]:
    """The octaves to move each of `steps` interpolation outputs back by: each end its own
    input's, the steps between walking from one to the other."""
    return [round(start + (end - start) * i / max(steps - 1, 1)) for i in range(steps)]


def describe(octaves: int) -> str:
    """What a window line says of a move: 'read 2 octaves down (...) and written back up'."""
    count = f"{abs(octaves)} octave{'s' if abs(octaves) > 1 else ''}"
    there, back = ("down", "up") if octaves < 0 else ("up", "down")
    return (f"read {count} {there} (it has notes outside MIDI {LOW_PITCH}..{HIGH_PITCH}, the "
            f"register the model learned) and written back {back}")
