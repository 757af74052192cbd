"""MIDI files <-> NoteSequences through note_seq, with errors that name the file."""
from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

from hmvae_tf import atomic_files

with warnings.catch_warnings():  # note_seq's audio imports warn about a missing ffmpeg
    warnings.simplefilter("ignore")
    import mido
    import note_seq
    import pretty_midi
    from note_seq.protobuf import music_pb2

# Standard MIDI Files under their usual names (.kar: karaoke MIDI; .rmi: RIFF-wrapped MIDI),
# compared lower-cased.
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf", ".rmi")


class MidiReadError(ValueError):
    """A MIDI file could not be read (missing, empty, corrupt, SMPTE-timed)."""


def read_midi(path: str | os.PathLike) -> music_pb2.NoteSequence:
    """Reads a MIDI file; raises MidiReadError naming the file and the cause."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MidiReadError(f"cannot read MIDI file {path}: {err.strerror or err}") from err
    if not data:
        raise MidiReadError(f"cannot read MIDI file {path}: the file is empty")
    data = _unwrap_rmid(data)
    if not data.startswith(b"MThd"):
        score = _score_format(data, path)
        raise MidiReadError(f"cannot read MIDI file {path}: not a Standard MIDI File "
                            + (f"but {score}" if score else "(no 'MThd' header)"))
    truncated = _truncation(data)
    if truncated:
        raise MidiReadError(f"cannot read MIDI file {path}: it is truncated or corrupt: "
                            f"{truncated}")
    if data[12] & 0x80:  # the header's division counts SMPTE frames, not ticks per beat
        raise MidiReadError(f"cannot read MIDI file {path}: SMPTE time division is not "
                            "supported")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), charset="latin1")  # pretty_midi's charset
        _lengthen_zero_length_notes(midi)
        ns = note_seq.midi_to_note_sequence(pretty_midi.PrettyMIDI(mido_object=midi))
    except Exception as err:  # note_seq/pretty_midi/mido raise many kinds
        raise MidiReadError(f"cannot read MIDI file {path}: corrupt or unsupported "
                            f"({_reason(err)})") from err
    ns.filename = str(path)
    return ns


def _lengthen_zero_length_notes(midi: mido.MidiFile) -> None:
    """Ends each note whose note-off shares its note-on's tick one tick later (in place).

    Drum machines and some sequencers write a hit as a note-on and a note-off at the same
    tick; pretty_midi drops such a note, so a drum part written that way vanished and the
    commands said the file "has no notes". The track is only rewritten when it has one."""
    for track in midi.tracks:
        # The notes open per (channel, pitch), as pretty_midi will see them once the late
        # note-offs are moved: their start ticks.
        tick, opened, late, moved, moved_from = 0, {}, [], [], 0
        for i, msg in enumerate(track):
            tick += msg.time
            if moved and tick > moved_from:  # the moved note-offs come first at their tick
                for key in moved:
                    _end_notes(opened, key, moved_from + 1)
                moved = []
            key = (msg.channel, msg.note) if msg.type in ("note_on", "note_off") else None
            if key and msg.type == "note_on" and msg.velocity:
                opened.setdefault(key, []).append(tick)
            elif key and opened.get(key):
                if all(start == tick for start in opened[key]):
                    late.append(i)  # pretty_midi ends only notes begun at an earlier tick
                    moved.append(key)
                    moved_from = tick
                else:
                    _end_notes(opened, key, tick)
        if late:
            _delay_by_one_tick(track, late)


def _end_notes(opened: dict, key: tuple[int, int], tick: int) -> None:
    """A note-off at `tick` as pretty_midi reads it: it ends the open notes of its key begun
    at an earlier tick, and those begun at its own tick stay open only if it ended some."""
    starts = opened.get(key, [])
    same = [start for start in starts if start == tick]
    if same and len(same) < len(starts):
        opened[key] = same
    else:
        opened.pop(key, None)


def _delay_by_one_tick(track: mido.MidiTrack, late: list[int]) -> None:
    """Moves the messages at `late` (indices) one tick later, after the other messages of
    their tick, and keeps the end of track last; the other messages keep their ticks."""
    ticks, tick = [], 0
    for msg in track:
        tick += msg.time
        ticks.append(tick)
    for i in late:
        ticks[i] += 1
    end = max(ticks)
    for i, msg in enumerate(track):
        if msg.type == "end_of_track":
            ticks[i] = end
    order = sorted(range(len(track)), key=lambda i: (ticks[i], track[i].type == "end_of_track"))
    messages, before = [], 0
    for i in order:
        messages.append(track[i].copy(time=ticks[i] - before))
        before = ticks[i]
    track[:] = messages


def _truncation(data: bytes) -> str | None:
    """Where a Standard MIDI File ends too early (inside its header, inside a track, or
    before the tracks its header announces), else None: a download cut short is the usual
    corrupt file, and mido says only EOFError."""
    if len(data) < 14:
        return "the file ends inside its header"
    announced = int.from_bytes(data[10:12], "big")
    at = 8 + int.from_bytes(data[4:8], "big")
    for track in range(announced):  # the tracks are read in order, as mido reads them
        if at + 8 > len(data):
            return (f"the file ends after track {track} of the {announced} its header "
                    "announces")
        at += 8 + int.from_bytes(data[at + 4:at + 8], "big")
        if at > len(data):
            return f"the file ends inside track {track + 1} of {announced}"
    return None


def _reason(err: Exception) -> str:
    """The decoder's own reason for refusing a file, without note_seq's wrapper ("Midi
    decoding error <class ...>:"), which says nothing to a musician."""
    inner = err.__context__ if type(err).__name__ == "MIDIConversionError" else None
    cause = inner if inner is not None else err
    return str(cause).strip() or type(cause).__name__


def _score_format(data: bytes, path: Path) -> str | None:
    """What `data` is and how to make MIDI of it, when it is a score of the kinds notation
    programs write, which musicians hand to the MIDI commands first (they read MIDI only);
    else None."""
    head = data[:2000].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") and (b"<score-partwise" in head or b"<score-timewise" in head
                                  or path.suffix.lower() in (".xml", ".musicxml")):
        return "a MusicXML file: export it as MIDI from the notation program (File > Export)"
    if head.startswith(b"PK") and path.suffix.lower() == ".mxl":
        return ("a compressed MusicXML file (.mxl): export it as MIDI from the notation "
                "program (File > Export)")
    if re.match(rb"(%[^\n]*\n\s*)*X:\s*\d", head):
        return "an ABC tune: convert it to MIDI with abc2midi"
    return None


def _unwrap_rmid(data: bytes) -> bytes:
    """The Standard MIDI File inside a RIFF MIDI (RMID) file, which some Windows-era collections
    hold under .mid names; other data is returned as it is."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    at = 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4:at + 8], "little")
        if data[at:at + 4] == b"data":
            return data[at + 8:at + 8 + size]
        at += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    return data


def write_midi(ns: music_pb2.NoteSequence, path: str | os.PathLike) -> Path:
    """Writes a NoteSequence as a MIDI file (drums on channel 10); creates parent folders.
    The file is replaced whole or not at all (atomic_files): a write that fails halfway
    leaves no truncated file and keeps an earlier file of the same name.

    The file lasts ns.total_time: a 2-bar melody that ends in a rest is still 2 bars long in a
    player or a DAW (pretty_midi ends every track at its last event, which drops the rest)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm = note_seq.sequence_proto_to_pretty_midi(ns)
    # note_seq always makes instrument 0; a drums-only sequence would carry it as an empty
    # track on channel 1.
    pm.instruments = [i for i in pm.instruments if i.notes or i.control_changes or i.pitch_bends]
    buffer = io.BytesIO()
    pm.write(buffer)
    midi = mido.MidiFile(file=io.BytesIO(buffer.getvalue()))
    end = pm.time_to_tick(ns.total_time)
    for track in midi.tracks:
        last = track[-1] if track else None
        ticks = sum(msg.time for msg in track)
        if last is not None and last.type == "end_of_track" and ticks < end:
            last.time += end - ticks
    with atomic_files.replacing(path, "wb") as f:
        midi.save(file=f)
    return path


def as_note_sequence(source: Any) -> tuple[music_pb2.NoteSequence, str]:
    """A NoteSequence, serialized NoteSequence bytes or a MIDI path -> (NoteSequence, name)."""
    if isinstance(source, music_pb2.NoteSequence):
        return source, source.filename or "NoteSequence"
    if isinstance(source, (bytes, bytearray)):
        return music_pb2.NoteSequence.FromString(bytes(source)), "NoteSequence"
    if isinstance(source, (str, os.PathLike)):
        return read_midi(source), str(source)
    raise TypeError(f"expected a NoteSequence or a MIDI file path, got {type(source).__name__}")
