"""MusicXML -> NoteSequence through note_seq's reader, with the score's pickup measure encoded.

note_seq marks a pickup (a first measure shorter than its time signature) with a short time
signature only when the measure's duration, counted in the file's own divisions, is smaller
than the meter's numerator: a quarter-note pickup passes with 1 division per quarter and is
missed with 4 or 10080. A missed pickup leaves the first section's bar lines where 4/4 from
time 0 puts them, one pickup's length before the score's. `read_musicxml` parses the file
once, reads the pickup off the first measure and encodes it as note_seq does when it sees
one (and as `corpus.fix_abc2midi_downbeats` does for ABC): a short signature at time 0 and
the meter at the first downbeat, which the grid turns into a partial bar.
"""
from __future__ import annotations

import fractions
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from . import grid

if TYPE_CHECKING:
    from note_seq import musicxml_parser
    from note_seq.protobuf.music_pb2 import NoteSequence

MAX_PICKUP_DENOMINATOR = 64  # a pickup's length in whole notes, read from seconds


def read_musicxml(path: str | os.PathLike) -> NoteSequence:
    """NoteSequence of a MusicXML file (.xml or .mxl), pickup included (module docstring).
    A file note_seq cannot parse raises its MusicXMLConversionError, as
    `musicxml_file_to_sequence_proto` does."""
    from note_seq import musicxml_parser, musicxml_reader

    try:
        document = musicxml_parser.MusicXMLDocument(str(path))
    except musicxml_parser.MusicXMLParseError as err:
        raise musicxml_reader.MusicXMLConversionError(err) from err
    return encode_pickup(document, musicxml_reader.musicxml_to_sequence_proto(document))


def encode_pickup(document: musicxml_parser.MusicXMLDocument, ns: NoteSequence
                  ) -> NoteSequence:
    """`ns` (read from `document`) with the score's pickup as a short time signature at 0 and
    the meter at the first downbeat (in place; returned). Unchanged when the score has no
    pickup or note_seq already put a signature on the first downbeat."""
    pickup = score_pickup(document, ns)
    if pickup is None:
        return ns
    downbeat, length, (numerator, denominator) = pickup
    if any(math.isclose(t.time, downbeat, abs_tol=1e-6) for t in ns.time_signatures):
        return ns  # note_seq saw this pickup
    kept = [(t.time, t.numerator, t.denominator) for t in ns.time_signatures
            if t.time > downbeat]
    del ns.time_signatures[:]
    for time, num, den in [(0.0, length.numerator, length.denominator),
                           (downbeat, numerator, denominator), *kept]:
        ns.time_signatures.add(time=time, numerator=num, denominator=den)
    return ns


def score_pickup(document: musicxml_parser.MusicXMLDocument, ns: NoteSequence
                 ) -> tuple[float, fractions.Fraction, tuple[int, int]] | None:
    """(first downbeat in seconds, pickup length in whole notes, meter) when the score's first
    measure is shorter than its time signature, else None. MusicXML numbers such a measure 0
    and/or marks it implicit="yes", but not always (some chorales number it 1), so its length
    decides: where the second measure starts, in quarters through `ns`'s tempi."""
    measures = document.parts[0].measures if document.parts else []
    if len(measures) < 2:
        return None
    meter = _written_meter(measures[0])
    if meter is None:
        return None
    downbeat = float(measures[1].start_time_position)
    tempo = grid.TempoMap([(t.time, t.qpm) for t in ns.tempos])
    quarters = float(tempo.to_beats(np.array([downbeat]))[0])
    length = fractions.Fraction(quarters / 4).limit_denominator(MAX_PICKUP_DENOMINATOR)
    if not 0 < length < fractions.Fraction(*meter):
        return None
    return downbeat, length, meter


def _written_meter(measure: musicxml_parser.Measure) -> tuple[int, int] | None:
    """The time signature written in a measure's <attributes> (beats, beat-type), if any."""
    time = measure.xml_measure.find("attributes/time")
    if time is None:
        return None
    try:
        meter = int(time.findtext("beats", "")), int(time.findtext("beat-type", ""))
    except ValueError:  # "3+2" beats, senza misura: no single meter to pick a pickup from
        return None
    return meter if meter[0] > 0 and meter[1] > 0 else None
