"""MIDI <-> tokens for the serving commands: the ONE place hmvae_tf.serving touches music code.

The client commands need four things, and get them only through this module:
    representation_for(tracks) -> object with .tracks, .to_note_sequence(tokens, qpm),
                                  .from_note_sequence(ns, num_bars, window_index=0)
    read_midi(path) -> NoteSequence          write_midi(ns, path)
    concatenate(sequences) -> NoteSequence   (one file with all steps of an interpolation)

REPLACE WHEN hmvae_tf.music LANDS: the music package (being written in parallel) will provide
`hmvae_tf.music.representations.get_representation(name)` and `hmvae_tf.music.midi_io`
(`read_midi`, `write_midi`) with exactly this shape. As soon as those modules exist they are
used for every representation (melody, drums, trio). Until then `_FallbackMelody` below stands
in for melodies only, so the commands and their tests run; delete it (and the fallback
branches) once the music package is merged.
"""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from hmvae_tf.configs import REPRESENTATION_TRACKS, STEPS_PER_BAR


def _music_available() -> bool:
    try:
        return (importlib.util.find_spec("hmvae_tf.music.representations") is not None
                and importlib.util.find_spec("hmvae_tf.music.midi_io") is not None)
    except ModuleNotFoundError:
        return False


def _import_note_seq() -> None:
    """Imports note_seq without pydub's ffmpeg warning (audio is never used here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        import note_seq  # noqa: F401


def representation_name(tracks) -> str:
    """'melody', 'drums' or 'trio' for a model's tracks (as in configs.REPRESENTATION_TRACKS)."""
    tracks = tuple(tracks)
    for name, rep_tracks in REPRESENTATION_TRACKS.items():
        if rep_tracks == tracks:
            return name
    raise ValueError(f"no representation has the tracks {', '.join(tracks)}")


def representation_for(tracks):
    name = representation_name(tracks)
    _import_note_seq()
    if _music_available():
        from hmvae_tf.music.representations import get_representation
        return get_representation(name)
    if name != "melody":
        raise ValueError(f"MIDI conversion for {name} models needs hmvae_tf.music, which is not "
                         "installed yet (only melodies are supported until it lands)")
    return _FallbackMelody()


def read_midi(path: str):
    """A NoteSequence; ValueError with the reason when the file is not readable MIDI."""
    if _music_available():
        from hmvae_tf.music import midi_io
        return midi_io.read_midi(path)
    _import_note_seq()
    from note_seq import midi_io
    try:
        return midi_io.midi_file_to_note_sequence(path)
    except (midi_io.MIDIConversionError, OSError, EOFError) as err:
        raise ValueError(f"cannot read MIDI: {err}") from None


def write_midi(ns, path: str) -> None:
    if _music_available():
        from hmvae_tf.music import midi_io
        return midi_io.write_midi(ns, path)
    _import_note_seq()
    from note_seq import midi_io
    midi_io.note_sequence_to_midi_file(ns, path)


def concatenate(sequences):
    from note_seq import sequences_lib
    return sequences_lib.concatenate_sequences(list(sequences))


class _FallbackMelody:
    """Minimal stand-in for the music package's melody representation (see module doc).

    90 classes per 16th-note step: 0 = no event (the current note or rest goes on),
    1 = note-off, 2..89 = note-on of MIDI pitch 21..108; 16 steps per 4/4 bar."""

    tracks = ("melody",)
    MIN_PITCH, MAX_PITCH, NO_EVENT, NOTE_OFF = 21, 108, 0, 1

    def to_note_sequence(self, tokens, qpm: float = 120.0):
        from note_seq.protobuf import music_pb2

        tokens = np.asarray(tokens).reshape(-1)
        step = 60.0 / qpm / 4
        ns = music_pb2.NoteSequence(ticks_per_quarter=220)
        ns.tempos.add(qpm=qpm)
        ns.time_signatures.add(numerator=4, denominator=4)
        pitch, start = None, 0

        def close(end):
            if pitch is not None:
                ns.notes.add(pitch=pitch, velocity=80, start_time=start * step,
                             end_time=end * step, instrument=0, program=0)

        for t, tok in enumerate(tokens.tolist()):
            if tok == self.NO_EVENT:
                continue
            close(t)
            pitch, start = (tok - 2 + self.MIN_PITCH, t) if tok >= 2 else (None, t)
        close(len(tokens))
        ns.total_time = len(tokens) * step
        return ns

    def from_note_sequence(self, ns, num_bars: int, window_index: int = 0) -> np.ndarray:
        """Tokens [num_bars * 16] of the window_index-th num_bars window (1-bar hop) that has
        notes; the highest note wins where notes overlap. ValueError says why none fits."""
        from note_seq import sequences_lib

        for ts in ns.time_signatures:
            if (ts.numerator, ts.denominator) not in ((4, 4), (2, 4), (2, 2), (4, 2)):
                raise ValueError(f"time signature {ts.numerator}/{ts.denominator} at "
                                 f"{ts.time:.2f}s does not fit 16 steps per 4/4 bar")
        try:
            q = sequences_lib.quantize_note_sequence(ns, steps_per_quarter=4)
        except (sequences_lib.MultipleTempoError, sequences_lib.MultipleTimeSignatureError,
                sequences_lib.BadTimeSignatureError, sequences_lib.NegativeTimeError) as err:
            raise ValueError(f"cannot put the notes on a 16th-note grid: {err}") from None
        notes = [n for n in q.notes if not n.is_drum
                 and self.MIN_PITCH <= n.pitch <= self.MAX_PITCH]
        if not notes:
            raise ValueError("no pitched (non-drum) notes in MIDI range 21..108")
        # Monophonic line: at each onset step keep the highest note; a note lasts until it
        # ends or the next onset.
        onsets: dict[int, object] = {}
        for n in notes:
            s = n.quantized_start_step
            if s not in onsets or n.pitch > onsets[s].pitch:
                onsets[s] = n
        starts = sorted(onsets)
        total = max(max(n.quantized_end_step for n in notes), starts[-1] + 1)
        length = max(num_bars, -(-total // STEPS_PER_BAR)) * STEPS_PER_BAR
        tokens = np.zeros(length, np.int32)
        for i, s in enumerate(starts):
            n = onsets[s]
            tokens[s] = n.pitch - self.MIN_PITCH + 2
            end = max(n.quantized_end_step, s + 1)
            nxt = starts[i + 1] if i + 1 < len(starts) else length
            if end < nxt and end < length:
                tokens[end] = self.NOTE_OFF
        size = num_bars * STEPS_PER_BAR
        windows = [tokens[b:b + size] for b in range(0, length - size + 1, STEPS_PER_BAR)
                   if (tokens[b:b + size] >= 2).any()]
        if window_index >= len(windows):
            raise ValueError(f"has {len(windows)} {num_bars}-bar window(s) with notes; "
                             f"window {window_index} was asked for")
        return windows[window_index].copy()
