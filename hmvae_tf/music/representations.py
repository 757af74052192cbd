"""Registry: representation name -> the object that converts NoteSequences and tokens.

    rep = get_representation("trio")
    windows, stats = rep.extract_windows(ns, num_bars=16)   # training windows of a piece
    ns = rep.to_note_sequence(windows[0].tokens, qpm=120)   # tokens -> NoteSequence
    tokens = rep.from_note_sequence("song.mid", num_bars=16)  # inference: k-th valid window

Track names and class counts match hmvae_tf.configs.TRACK_CLASSES / REPRESENTATION_TRACKS.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hmvae_tf.configs import check_token_ids

from . import drums, melody, midi_io, trio
from .grid import DEFAULT_QPM, STEPS_PER_BAR, Stats
from .windows import NoWindowError, Window, WindowBatch

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from note_seq.protobuf.music_pb2 import NoteSequence


@dataclasses.dataclass(frozen=True)
class Representation:
    """How one kind of music becomes tokens: int32 [T] (one track) or [T, tracks]."""

    name: str
    tracks: tuple[str, ...]
    num_classes: tuple[int, ...]
    _extract: Callable[..., tuple[list[Window], Stats]]
    _extract_batch: Callable[..., WindowBatch]
    _render: Callable[..., Any]
    _infer: Callable[..., np.ndarray]

    @property
    def multitrack(self) -> bool:
        """Whether tokens carry a track axis ([T, tracks] rather than [T])."""
        return len(self.tracks) > 1

    def token_shape(self, num_bars: int) -> tuple[int, ...]:
        """Shape of a `num_bars` window's tokens, for checking inputs and building specs."""
        steps = num_bars * STEPS_PER_BAR
        return (steps, len(self.tracks)) if self.multitrack else (steps,)

    def extract_windows(self, ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                        stats: Stats | None = None) -> tuple[list[Window], Stats]:
        """Distinct training windows of a NoteSequence (or MIDI file, as
        `from_note_sequence` takes) and the counted skip reasons."""
        return self._extract(midi_io.as_note_sequence(ns)[0], num_bars, stats=stats)

    def extract_windows_batch(self, seqs: Sequence[NoteSequence | bytes | str | os.PathLike],
                              num_bars: int, stats: Sequence[Stats] | None = None
                              ) -> WindowBatch:
        """Training windows of many NoteSequences (or MIDI files) at once, as arrays
        (WindowBatch.piece says which input each row came from); stats: one Counter per
        input, filled in."""
        return self._extract_batch([midi_io.as_note_sequence(ns)[0] for ns in seqs], num_bars,
                                   stats=stats)

    def to_note_sequence(self, tokens: np.ndarray, qpm: float = DEFAULT_QPM, **kwargs: Any
                         ) -> NoteSequence:
        """Tokens -> NoteSequence in 4/4 at `qpm` (kwargs: program, velocity ...). A one-track
        representation also takes [T, 1], a row of the model's [B, T, K] output.

        Tokens edited by hand (a transposed melody) can leave the vocabulary: a ValueError
        names the track and the ids it takes, instead of a MIDI pitch above 127 that fails in
        `to_midi`, or a negative id that rendered as silence."""
        tokens = self._checked_window(np.asarray(tokens))
        if not qpm > 0 or not np.isfinite(qpm):
            raise ValueError(f"qpm is a tempo in quarter notes per minute, > 0, not {qpm!r}")
        return _name_tracks(self._render(tokens, qpm, **kwargs), self.tracks)

    def _checked_window(self, tokens: np.ndarray) -> np.ndarray:
        """One window's tokens in the layout `_render` takes, or a ValueError saying why not."""
        if not self.multitrack and tokens.ndim == 2 and tokens.shape[1] == 1:
            tokens = tokens[:, 0]
        if tokens.shape[1:] != self.token_shape(1)[1:]:
            layout = (f"[T, {len(self.tracks)}]" if self.multitrack else "[T] (or [T, 1])")
            batch = (tokens.shape[2:] == self.token_shape(1)[1:] if self.multitrack else
                     tokens.ndim == 2 and tokens.shape[1] % STEPS_PER_BAR == 0
                     or tokens.shape[2:] == (1,))
            raise ValueError(f"{self.name} tokens are one window, {layout}, not "
                             f"{list(tokens.shape)}"
                             + ("; render a batch row by row: tokens[i]" if batch else ""))
        if tokens.dtype.kind not in "iu":
            raise ValueError(f"{self.name} tokens are integer class ids, not "
                             f"{tokens.dtype.name} values")
        check_token_ids(tokens, self.tracks)
        return tokens

    def from_note_sequence(self, ns: NoteSequence | bytes | str | os.PathLike, num_bars: int,
                           window_index: int = 0) -> np.ndarray:
        """Tokens of the `window_index`-th valid window of a NoteSequence or MIDI file.

        Raises NoWindowError (a ValueError) saying why no window was found.
        """
        return self._infer(ns, num_bars, window_index)

    def to_midi(self, tokens: np.ndarray, path: str | os.PathLike, qpm: float = DEFAULT_QPM,
                **kwargs: Any) -> Path:
        """Tokens -> MIDI file (the shapes `to_note_sequence` takes)."""
        return midi_io.write_midi(self.to_note_sequence(tokens, qpm, **kwargs), path)


REPRESENTATIONS: dict[str, Representation] = {
    "melody": Representation("melody", ("melody",), (melody.NUM_CLASSES,),
                             melody.extract_windows, melody.extract_windows_batch,
                             melody.to_note_sequence,
                             melody.from_note_sequence),
    "drums": Representation("drums", ("drums",), (drums.NUM_CLASSES,),
                            drums.extract_windows, drums.extract_windows_batch,
                            drums.to_note_sequence,
                            drums.from_note_sequence),
    "trio": Representation("trio", trio.TRACKS, trio.NUM_CLASSES,
                           trio.extract_windows, trio.extract_windows_batch,
                           trio.to_note_sequence,
                           trio.from_note_sequence),
}


def get_representation(name: str) -> Representation:
    """The registered representation, with an error that lists the valid names."""
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; choose from "
                         f"{', '.join(REPRESENTATIONS)}")
    return REPRESENTATIONS[name]


__all__ = ["Representation", "REPRESENTATIONS", "get_representation", "NoWindowError",
           "Window", "WindowBatch"]


def _name_tracks(ns: NoteSequence, tracks: tuple[str, ...]) -> NoteSequence:
    """Names each instrument by its part (melody, bass, drums), as the web page names its
    tracks, so a DAW shows which is which: drum notes are the drums, and the pitched parts
    come in the representation's order of instrument numbers."""
    pitched = [t for t in tracks if t != "drums"]
    instruments = sorted({n.instrument for n in ns.notes if not n.is_drum})
    names = dict(zip(instruments, pitched)) if len(instruments) <= len(pitched) else {}
    names.update({n.instrument: "drums" for n in ns.notes if n.is_drum})
    for instrument, name in sorted(names.items()):
        ns.instrument_infos.add(instrument=instrument, name=name)
    return ns

