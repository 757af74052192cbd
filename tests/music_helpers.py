"""Builders of small MIDI files / NoteSequences with known content for the music tests."""
from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import note_seq  # noqa: F401  (silences pydub's ffmpeg warning once)
    import pretty_midi
    from note_seq.protobuf import music_pb2


def note_sequence(notes, qpm=120.0, time_signatures=((0.0, 4, 4),), tempos=None):
    """notes: (start_beat, end_beat, pitch[, program, is_drum, instrument, velocity]).

    time_signatures: (beat, numerator, denominator); tempos: (seconds, qpm).
    """
    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = 220
    spb = 60.0 / qpm
    for t, q in (tempos or [(0.0, qpm)]):
        ns.tempos.add(time=t, qpm=q)
    for t, num, den in time_signatures:
        ns.time_signatures.add(time=t * spb, numerator=num, denominator=den)
    for n in notes:
        start, end, pitch = n[:3]
        program = n[3] if len(n) > 3 else 0
        is_drum = n[4] if len(n) > 4 else False
        instrument = n[5] if len(n) > 5 else (9 if is_drum else 0)
        velocity = n[6] if len(n) > 6 else 90
        ns.notes.add(start_time=start * spb, end_time=end * spb, pitch=pitch,
                     velocity=velocity, program=program, is_drum=is_drum,
                     instrument=instrument)
    ns.total_time = max((x.end_time for x in ns.notes), default=0.0)
    return ns


def write_midi(path, tracks, qpm=120.0, time_signature=(4, 4)):
    """tracks: list of (program, is_drum, [(start_beat, end_beat, pitch), ...])."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*time_signature, 0.0))
    spb = 60.0 / qpm
    for program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        for start, end, pitch in notes:
            inst.notes.append(pretty_midi.Note(90, pitch, start * spb, end * spb))
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def write_raw_midi(path, events, ticks_per_beat=96):
    """A one-track MIDI file of (tick, 'on' | 'off', channel, pitch) events in that order, as
    sequencers write them (a drum machine's hit: its note-on and note-off at one tick)."""
    import mido
    mid = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    before = 0
    for tick, kind, channel, pitch in events:
        track.append(mido.Message("note_on", channel=channel, note=pitch,
                                  velocity=100 if kind == "on" else 0, time=tick - before))
        before = tick
    mid.save(str(path))
    return path


def drum_class_counts(tokens) -> np.ndarray:
    """How many hits of each of the 9 drum classes a drum token sequence has (bit c of a
    token is class c)."""
    t = np.asarray(tokens)
    return np.array([int(np.count_nonzero(t >> c & 1)) for c in range(9)])
