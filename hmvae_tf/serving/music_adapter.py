"""MIDI <-> tokens for the serving commands: the one place hmvae_tf.serving touches music code.

The client speaks tokens and latents; the commands turn MIDI files into tokens and back
through the representation a model's tracks name (melody, drums or trio).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from hmvae_tf.configs import REPRESENTATION_TRACKS
from hmvae_tf.music import midi_io
from hmvae_tf.music.representations import get_representation

if TYPE_CHECKING:
    from note_seq.protobuf.music_pb2 import NoteSequence

    from hmvae_tf.music.representations import Representation

read_midi = midi_io.read_midi
write_midi = midi_io.write_midi


def representation_name(tracks: Iterable[str]) -> str:
    """'melody', 'drums' or 'trio' for a model's tracks (as in configs.REPRESENTATION_TRACKS)."""
    tracks = tuple(tracks)
    for name, rep_tracks in REPRESENTATION_TRACKS.items():
        if rep_tracks == tracks:
            return name
    raise ValueError(f"no representation has the tracks {', '.join(tracks)}")


def representation_for(tracks: Iterable[str]) -> Representation:
    """The converter between MIDI and a model's tokens, chosen by the model's tracks."""
    return get_representation(representation_name(tracks))


def concatenate(sequences: Iterable[NoteSequence]) -> NoteSequence:
    """One NoteSequence playing the given ones back to back."""
    from note_seq import sequences_lib

    return sequences_lib.concatenate_sequences(list(sequences))
