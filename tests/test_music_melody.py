"""Melody tokens, the bar grid and MIDI I/O on inputs with known content."""
import re

import numpy as np
import pytest
from music_helpers import note_sequence, write_midi

from hmvae_tf.music import grid, melody, midi_io
from hmvae_tf.music.representations import get_representation
from hmvae_tf.music.windows import NoWindowError

MEL = get_representation("melody")


def tok(pitch):
    return pitch - melody.PITCH_OFFSET


def scale_ns(bars=4, qpm=120.0):
    """Eighth notes of a rising/falling line, `bars` 4/4 bars."""
    notes = []
    for i in range(bars * 8):
        pitch = 60 + (i % 8 if (i // 8) % 2 == 0 else 7 - i % 8)
        notes.append((i * 0.5, i * 0.5 + 0.5, pitch))
    return note_sequence(notes, qpm=qpm)


def test_tokens_of_simple_melody():
    ns = note_sequence([(0, 1, 60), (1, 1.5, 62), (2, 4, 64), (4, 8, 65)])
    tokens = MEL.from_note_sequence(ns, 2)
    expected = np.zeros(32, np.int32)
    expected[0], expected[4], expected[6], expected[8] = tok(60), tok(62), melody.NOTE_OFF, tok(64)
    expected[16] = tok(65)
    np.testing.assert_array_equal(tokens, expected)


def test_round_trip_through_midi_file(tmp_path):
    ns = scale_ns(bars=6, qpm=97.0)
    # Add repeated pitches, rests and a note held to the window end.
    windows, stats = MEL.extract_windows(ns, 2)
    assert len(windows) == 3 and windows[0].tokens.dtype == np.int32  # bars repeat: deduped
    rng = np.random.default_rng(0)
    extra = []
    for _ in range(20):  # random canonical token windows
        t = np.zeros(32, np.int32)
        sounding = False  # canonical: a note-off only ends a sounding note
        for s in np.sort(rng.choice(32, size=rng.integers(1, 12), replace=False)):
            off = sounding and rng.random() < 0.3
            t[s] = melody.NOTE_OFF if off else rng.integers(2, 90)
            sounding = not off
        extra.append(t)
    extra.append(np.array([tok(60)] * 32, np.int32))  # same pitch, every step
    for tokens in [w.tokens for w in windows] + extra:
        path = midi_io.write_midi(MEL.to_note_sequence(tokens, qpm=97.0), tmp_path / "w.mid")
        back = MEL.from_note_sequence(midi_io.read_midi(path), 2)
        np.testing.assert_array_equal(back, tokens)



def test_notes_whose_note_off_shares_their_note_on_tick_are_read(tmp_path):
    """Drum machines write a hit as a note-on and a note-off at one tick; pretty_midi drops
    such a note, so a drum part written that way vanished and `hmvae interpolate` said the
    file "has no notes". Each is read as a note of one tick; other notes are read as before
    (a note-on then a note-off of the same pitch at one tick, ending the note before)."""
    from music_helpers import write_raw_midi

    from hmvae_tf.music import drums
    hits = [(k * 48, kind, 9, 36 if k % 4 == 0 else 42) for k in range(16)
            for kind in ("on", "off")]  # eighth notes at 96 ticks per beat
    ns = midi_io.read_midi(write_raw_midi(tmp_path / "hits.mid", hits))
    assert len(ns.notes) == 16 and all(n.is_drum for n in ns.notes)
    assert ns.notes[1].start_time == 0.25 and ns.notes[1].end_time == pytest.approx(
        0.25 + 0.5 / 96)
    assert drums.find_window(ns, 2).tokens[:8].tolist() == [1, 0, 4, 0, 4, 0, 4, 0]
    # A line of such notes, and legato notes written note-on first, then note-off.
    line = [(k * 96, kind, 0, 60 + k) for k in range(4) for kind in ("on", "off")]
    line += [(384, "on", 0, 67), (480, "on", 0, 67), (480, "off", 0, 67), (576, "off", 0, 67)]
    ns = midi_io.read_midi(write_raw_midi(tmp_path / "line.mid", line))
    assert [(n.pitch, round(n.start_time * 4), round(n.end_time * 4, 3)) for n in ns.notes] == [
        (60, 0, 0.021), (61, 2, 2.021), (62, 4, 4.021), (63, 6, 6.021), (67, 8, 10),
        (67, 10, 12)]
    assert MEL.from_note_sequence(ns, 2)[:24].tolist() == [  # a note of 1 step each
        tok(60), 1, 0, 0, tok(61), 1, 0, 0, tok(62), 1, 0, 0, tok(63), 1, 0, 0,
        tok(67), 0, 0, 0, tok(67), 0, 0, 0]


def test_windows_come_from_midi_files_as_from_note_sequences(tmp_path):
    """from_note_sequence read a MIDI path, but extract_windows and extract_windows_batch
    failed on one with "'str' object has no attribute 'notes'"."""
    ns = scale_ns(bars=6, qpm=97.0)
    path = midi_io.write_midi(ns, tmp_path / "scale.mid")
    from_file = midi_io.read_midi(path)
    tokens = np.stack([w.tokens for w in MEL.extract_windows(str(path), 2)[0]])
    assert len(tokens) > 1
    np.testing.assert_array_equal(
        tokens, np.stack([w.tokens for w in MEL.extract_windows(from_file, 2)[0]]))
    batch = MEL.extract_windows_batch([path, from_file.SerializeToString()], 2)
    np.testing.assert_array_equal(batch.tokens[batch.piece == 0], tokens)
    np.testing.assert_array_equal(batch.tokens[batch.piece == 1], batch.tokens[batch.piece == 0])
    with pytest.raises(midi_io.MidiReadError, match="cannot read MIDI file"):
        MEL.extract_windows(tmp_path / "missing.mid", 2)


def test_a_row_of_the_models_output_renders_as_its_track(tmp_path):
    """MusicVAE gives [B, T, 1] for one track; a row of it, [T, 1], was refused ('tokens must
    have shape () after the time axis'). Drums render the same way; trio rows stay [T, 3]."""
    tokens = MEL.from_note_sequence(scale_ns(), 2)
    row = tokens[:, None]
    assert MEL.to_note_sequence(row, qpm=97.0) == MEL.to_note_sequence(tokens, qpm=97.0)
    path = MEL.to_midi(row, tmp_path / "row.mid")
    np.testing.assert_array_equal(MEL.from_note_sequence(path, 2), tokens)
    drums = get_representation("drums")
    hits = np.zeros(32, np.int32)
    hits[::4] = 1
    assert drums.to_note_sequence(hits[:, None]) == drums.to_note_sequence(hits)
    with pytest.raises(ValueError, match=r"one window, \[T\] \(or \[T, 1\]\), not \[32, 2\]$"):
        MEL.to_note_sequence(np.zeros((32, 2), np.int32))
    with pytest.raises(ValueError, match=r"trio tokens are one window, \[T, 3\], not \[32, 1\]"):
        get_representation("trio").to_note_sequence(np.zeros((32, 1), np.int32))


def test_tokens_outside_the_vocabulary_are_refused_in_one_line(tmp_path):
    """A melody transposed by hand past its range rendered MIDI pitch 219 and failed in
    to_midi ('data byte must be in range 0..127'); a negative id rendered as silence; a
    batch was refused as 'must have shape () after the time axis'; qpm=0 divided by zero."""
    tokens = MEL.from_note_sequence(scale_ns(), 2)
    for bad in (np.where(tokens >= 2, tokens + 100, tokens), tokens - 10):
        with pytest.raises(ValueError, match=r"melody tokens are the model's class ids 0\.\.89, "
                                             r"not -?\d+$"):
            MEL.to_midi(bad, tmp_path / "bad.mid")
    trio = get_representation("trio")
    window = np.zeros((32, 3), np.int32)
    window[0, 2] = 512
    with pytest.raises(ValueError, match=r"drums tokens are the model's class ids 0\.\.511, "
                                         r"not 512"):
        trio.to_note_sequence(window)
    with pytest.raises(ValueError, match=r"not \[2, 32\]; render a batch row by row: "
                                         r"tokens\[i\]"):
        MEL.to_note_sequence(np.stack([tokens, tokens]))
    with pytest.raises(ValueError, match=r"not \[2, 32, 1\]; render a batch row by row"):
        MEL.to_note_sequence(np.stack([tokens, tokens])[..., None])
    with pytest.raises(ValueError, match="integer class ids, not float32"):
        MEL.to_note_sequence(tokens.astype(np.float32))
    with pytest.raises(ValueError, match="qpm is a tempo .*, > 0, not 0"):
        MEL.to_note_sequence(tokens, qpm=0)
    assert len(MEL.to_note_sequence(tokens, qpm=97.0).notes) == int((tokens >= 2).sum())

def test_a_written_window_lasts_its_bars_even_when_it_ends_in_a_rest(tmp_path):
    """Players and DAWs take a file's length from its end-of-track events."""
    import mido

    ends_early = np.zeros(32, np.int32)
    ends_early[:4] = [tok(60), 0, melody.NOTE_OFF, 0]   # one eighth note, then 15 rests
    for tokens, qpm in ((ends_early, 120.0), (np.zeros(32, np.int32), 97.0)):
        ns = MEL.to_note_sequence(tokens, qpm=qpm)
        path = midi_io.write_midi(ns, tmp_path / "rest.mid")
        assert mido.MidiFile(path).length == pytest.approx(2 * 4 * 60 / qpm, abs=1e-3)
    assert midi_io.read_midi(path).notes == []


def test_polyphony_highest_note_wins_and_new_note_cuts():
    ns = note_sequence([(0, 2, 60), (0, 1, 67), (0, 4, 55),  # chord: 67 wins
                        (1, 3, 50)])                           # lower note still cuts 67
    tokens = MEL.from_note_sequence(ns, 1)
    assert tokens[0] == tok(67)
    assert tokens[4] == tok(50)
    assert tokens[12] == melody.NOTE_OFF
    assert set(np.nonzero(tokens)[0]) == {0, 4, 12}


def test_out_of_range_pitch_dropped_and_counted():
    ns = note_sequence([(0, 1, 110), (1, 2, 60), (2, 3, 20), (3, 4, 108)])
    windows, stats = MEL.extract_windows(ns, 1)
    assert stats["notes_out_of_range"] == 2
    t = windows[0].tokens
    assert t[4] == tok(60) and t[12] == 89 and t[0] == 0 and t[8] == melody.NOTE_OFF


def test_empty_and_corrupt_files(tmp_path):
    empty = write_midi(tmp_path / "empty.mid", [])
    with pytest.raises(NoWindowError, match="no notes"):
        MEL.from_note_sequence(str(empty), 2)
    _, stats = MEL.extract_windows(midi_io.read_midi(empty), 2)
    assert stats["skip/no_notes"] == 1
    zero = tmp_path / "zero.mid"
    zero.write_bytes(b"")
    with pytest.raises(midi_io.MidiReadError, match="empty"):
        midi_io.read_midi(zero)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(midi_io.MidiReadError, match="corrupt"):
        MEL.from_note_sequence(str(bad), 2)


def test_a_truncated_file_is_said_in_plain_words(tmp_path):
    """A download cut short was refused as "corrupt or unsupported (MIDIConversionError: Midi
    decoding error <class 'EOFError'>: )": now the message says the file is truncated and
    where it ends, and other decoding errors give the decoder's reason without the wrapper."""
    whole = write_midi(tmp_path / "whole.mid", [(0, False, [(i, i + 1, 60 + i) for i in range(8)])])
    data = whole.read_bytes()
    cases = {"track.mid": (data[:-20], "the file ends inside track 2 of 2"),
             "header.mid": (data[:10], "the file ends inside its header"),
             "tracks.mid": (data[:14] + data[14:14 + 8 + int.from_bytes(data[18:22], "big")],
                            "the file ends after track 1 of the 2 its header announces")}
    for name, (cut, where) in cases.items():
        (tmp_path / name).write_bytes(cut)
        with pytest.raises(midi_io.MidiReadError) as err:
            midi_io.read_midi(tmp_path / name)
        assert str(err.value) == (f"cannot read MIDI file {tmp_path / name}: it is truncated "
                                  f"or corrupt: {where}")
    midi_io.read_midi(whole)  # the whole file reads
    bad_byte = tmp_path / "byte.mid"
    bad_byte.write_bytes(data[:-30] + b"\xf5" * 30)
    with pytest.raises(midi_io.MidiReadError, match=r"corrupt or unsupported \(data byte must "
                       r"be in range 0\.\.127\)$") as err:
        midi_io.read_midi(bad_byte)
    assert "<class" not in str(err.value) and "MIDIConversionError" not in str(err.value)


def test_an_smpte_timed_file_is_refused_as_such(tmp_path):
    """A file whose header counts SMPTE frames (not ticks per beat) was refused as "corrupt or
    unsupported (Note end time must be greater than start time)": it is whole, and the page
    says "SMPTE time division is not supported", so the command line says so too."""
    data = write_midi(tmp_path / "beats.mid", [(0, False, [(0, 1, 60)])]).read_bytes()
    smpte = tmp_path / "smpte.mid"
    smpte.write_bytes(data[:12] + bytes([0x100 - 25, 40]) + data[14:])  # 25 fps, 40 ticks
    with pytest.raises(midi_io.MidiReadError) as err:
        midi_io.read_midi(smpte)
    assert str(err.value) == f"cannot read MIDI file {smpte}: SMPTE time division is not supported"


def test_a_score_given_for_a_midi_file_says_how_to_make_midi_of_it(tmp_path):
    """MusicXML (plain or .mxl) and ABC, which notation programs write, were refused as "no
    'MThd' header": the message now says what the file is and how to make MIDI of it."""
    import music21

    tune = music21.stream.Stream([music21.note.Note("C5", quarterLength=1) for _ in range(4)])
    xml = tune.write("musicxml", fp=str(tmp_path / "plain.musicxml"))
    mxl = tune.write("mxl", fp=str(tmp_path / "packed.mxl"))  # own stem: it removes the .musicxml
    abc = tmp_path / "tune.abc"
    abc.write_text("%abc-2.1\nX:1\nT:Scale\nM:4/4\nL:1/8\nK:C\nCDEF GABc|\n")
    for path, says in ((xml, "but a MusicXML file: export it as MIDI from the notation "
                             "program (File > Export)"),
                       (mxl, "but a compressed MusicXML file (.mxl): export it as MIDI"),
                       (abc, "but an ABC tune: convert it to MIDI with abc2midi")):
        with pytest.raises(midi_io.MidiReadError, match=re.escape(says)):
            midi_io.read_midi(path)
    text = tmp_path / "notes.mid"
    text.write_text("X marks the spot\n")  # neither: said as before
    with pytest.raises(midi_io.MidiReadError, match=re.escape("(no 'MThd' header)")):
        midi_io.read_midi(text)


def test_a_riff_midi_file_is_read_as_the_midi_file_inside(tmp_path):
    """RMID: a Standard MIDI File wrapped in a RIFF 'data' chunk (after an odd-sized one)."""
    smf = write_midi(tmp_path / "plain.mid", [(0, False, [(i, i + 1, 60 + i) for i in range(8)])])
    body = smf.read_bytes()
    info = b"INFO" + (3).to_bytes(4, "little") + b"abc" + b"\0"  # padded to even size
    chunks = info + b"data" + len(body).to_bytes(4, "little") + body
    rmid = tmp_path / "wrapped.mid"
    rmid.write_bytes(b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"RMID" + chunks)
    np.testing.assert_array_equal(MEL.from_note_sequence(str(rmid), 2),
                                  MEL.from_note_sequence(str(smf), 2))


def test_drums_only_file_has_no_melody(tmp_path):
    path = write_midi(tmp_path / "drums.mid",
                      [(0, True, [(i * 0.5, i * 0.5 + 0.1, 36) for i in range(32)])])
    windows, stats = MEL.extract_windows(midi_io.read_midi(path), 2)
    assert windows == [] and stats["skip/no_melody"] == 1
    with pytest.raises(NoWindowError, match="no pitched"):
        MEL.from_note_sequence(str(path), 2)


def test_three_four_is_skipped_with_reason(tmp_path):
    path = write_midi(tmp_path / "waltz.mid",
                      [(0, False, [(i, i + 1, 60 + i % 5) for i in range(24)])],
                      time_signature=(3, 4))
    windows, stats = MEL.extract_windows(midi_io.read_midi(path), 2)
    assert windows == []
    assert stats["skip/meter_not_4/4_compatible"] == 1 and stats["segments_meter_3/4"] == 1
    with pytest.raises(NoWindowError, match="3/4"):
        MEL.from_note_sequence(str(path), 2)


def test_two_four_bars_pair_into_four_four():
    # A note on every 2/4 downbeat: two 2/4 bars make one 16-step bar.
    ns = note_sequence([(2 * i, 2 * i + 1, 60 + i) for i in range(8)],
                       time_signatures=((0.0, 2, 4),))
    windows, _ = MEL.extract_windows(ns, 2)
    t = windows[0].tokens
    assert [int(i) for i in np.nonzero(t >= 2)[0]] == [0, 8, 16, 24]
    assert [w.start_bar for w in windows] == [0, 1, 2]


def test_four_two_splits_and_meter_change_segments():
    ns = note_sequence([(i, i + 1, 60 + i % 7) for i in range(40)],
                       time_signatures=((0.0, 4, 2), (16.0, 3, 4), (28.0, 4, 4)))
    stats = grid.Stats()
    segs = grid.segments(ns, stats)
    assert [(s.origin, s.num_bars) for s in segs] == [(0, 4), (112, 3)]
    assert stats["segments_meter_3/4"] == 1


def test_tempo_change_needs_no_split():
    # Quarter notes at 120 qpm for 2 beats, then 60 qpm: still one note per beat.
    ns = note_sequence([], tempos=[(0.0, 120.0), (1.0, 60.0)])
    for beat in range(8):
        sec = beat * 0.5 if beat < 2 else 1.0 + (beat - 2) * 1.0
        ns.notes.add(start_time=sec, end_time=sec + 0.25 if beat < 2 else sec + 0.5,
                     pitch=60 + beat, velocity=80)
    segs = grid.segments(ns)
    assert len(segs) == 1
    np.testing.assert_array_equal(segs[0].notes.start, np.arange(8) * 4)
    tokens = MEL.from_note_sequence(ns, 2)
    assert [int(i) for i in np.nonzero(tokens >= 2)[0]] == [0, 4, 8, 12, 16, 20, 24, 28]


def test_gap_of_a_bar_splits_melodies_and_windows_need_a_note():
    # Bars 0-1 play, bars 2-3 silent, bars 4-6 play; one held note over bars 7-9.
    notes = [(b * 4 + i, b * 4 + i + 1, 60 + i + b) for b in (0, 1, 4, 5, 6) for i in range(4)]
    notes.append((28, 40, 72))
    windows, _ = MEL.extract_windows(note_sequence(notes), 2)
    starts = [w.start_bar for w in windows]
    # Melody 1 spans bars 0-2 (its last note-off is at bar 2's first step); no window
    # crosses the gap; the held note (bars 7-9) gives no window starting at bar 8 or 9.
    assert starts == [0, 1, 4, 5, 6, 7]
    assert all((w.tokens >= 2).any() for w in windows)


def test_windows_are_deduplicated_and_canonical():
    one_bar = [(i, i + 1, 60 + i) for i in range(4)]
    notes = [(s + 4 * b, e + 4 * b, p) for b in range(6) for s, e, p in one_bar]
    notes.append((24, 26, 70))  # sustained across bars 6-7 then a new bar
    notes.append((28.5, 29, 72))
    windows, _ = MEL.extract_windows(note_sequence(notes), 2)
    keys = [w.tokens.tobytes() for w in windows]
    assert len(keys) == len(set(keys))
    for w in windows:  # no note-off before the first note-on
        first_on = int(np.argmax(w.tokens >= 2))
        assert not (w.tokens[:first_on] == melody.NOTE_OFF).any()


def test_kth_window_and_clear_error_past_the_end():
    ns = scale_ns(bars=4)
    first = MEL.from_note_sequence(ns, 2, window_index=0)
    third = MEL.from_note_sequence(ns, 2, window_index=1)
    assert not np.array_equal(first, third)
    with pytest.raises(NoWindowError, match="only 3 2-bar windows exist$"):  # bars 0, 1, 2
        MEL.from_note_sequence(ns, 2, window_index=3)


def test_short_input_is_padded_for_inference():
    tokens = MEL.from_note_sequence(note_sequence([(0, 1, 60)]), 2)
    assert tokens.shape == (32,) and tokens[0] == tok(60) and tokens[4] == melody.NOTE_OFF
    assert (tokens[5:] == 0).all()


def test_musicxml_style_pickup_and_duplicate_time_signatures():
    # Pickup of one beat encoded as 1/4 at 0 (plus a conflicting 4/4 at 0), 4/4 from beat 1.
    ns = note_sequence([(0, 1, 67)] + [(1 + i, 2 + i, 60 + i % 5) for i in range(8)],
                       time_signatures=((0.0, 4, 4), (0.0, 1, 4), (1.0, 4, 4)))
    segs = grid.segments(ns)
    assert len(segs) == 1 and segs[0].origin == -12
    tokens = MEL.from_note_sequence(ns, 2)
    assert tokens[12] == tok(67) and tokens[16] == tok(60)


def test_programs_filter_melody_instruments():
    ns = note_sequence([(i, i + 1, 40 + i, 33) for i in range(8)])  # bass program only
    windows, stats = MEL.extract_windows(ns, 2)
    assert windows == [] and stats["skip/no_melody"] == 1
    windows, _ = melody.extract_windows(ns, 2, programs=range(32, 40))
    assert len(windows) == 2 and windows[0].program == 33  # bar 2 holds the last note-off


def test_16_bar_windows_take_any_pitched_program_and_a_line_gives_100_bars_at_most():
    """As Magenta's converters: 2-bar melodies come from programs 0-31 only, 16-bar ones from
    any pitched instrument; only a line's first 100 bars are sliced (max_bars=100)."""
    flute = note_sequence([(i, i + 1, 60 + i % 12, 73) for i in range(4 * 40)])  # 40 bars
    assert MEL.extract_windows(flute, 2)[0] == []
    windows, _ = MEL.extract_windows(flute, 16)
    assert windows and {w.program for w in windows} == {73}
    # 250 bars of one unbroken line: windows start in its first 100 bars only.
    pitches = np.random.default_rng(0).integers(48, 84, 4 * 250)  # no window repeats
    long_line = note_sequence([(i, i + 1, int(p), 0) for i, p in enumerate(pitches)])
    starts = [w.start_bar for w in MEL.extract_windows(long_line, 2)[0]]
    assert max(starts) == 98 and len(set(starts)) == len(starts)
    assert max(w.start_bar for w in MEL.extract_windows(long_line, 16)[0]) == 84


def test_windows_after_a_tempo_change_carry_their_own_tempo():
    """120 qpm for 4 bars, then 80: windows from bar 4 on are rendered at 80 (the tokens are
    the same either way: time is counted in beats)."""
    from note_seq.protobuf import music_pb2

    from hmvae_tf.music import drums, trio

    def seconds(beat):
        return beat * 0.5 if beat < 16 else 8.0 + (beat - 16) * 0.75

    ns = music_pb2.NoteSequence()
    ns.tempos.add(time=0.0, qpm=120.0)
    ns.tempos.add(time=8.0, qpm=80.0)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    rng = np.random.default_rng(5)
    for b in range(4 * 20):  # 20 bars of quarter notes: lead, bass and drums
        for program, instrument, pitch, drum in ((0, 0, int(rng.integers(60, 84)), False),
                                                 (33, 1, int(rng.integers(36, 48)), False),
                                                 (0, 9, int(rng.choice([36, 38, 42])), True)):
            ns.notes.add(start_time=seconds(b), end_time=seconds(b + 1), pitch=pitch,
                         velocity=90, program=program, instrument=instrument, is_drum=drum)
    for windows in (MEL.extract_windows(ns, 2)[0], drums.extract_windows(ns, 2)[0],
                    trio.extract_windows(ns, 16)[0]):
        assert windows
        assert all(w.qpm == (120.0 if w.start_bar < 4 else 80.0) for w in windows), \
            [(w.start_bar, w.qpm) for w in windows]


def _reference_windows(ns, num_bars):
    """Plain-Python reference of training windows (per segment, per instrument)."""
    out, seen = [], set()
    for seg in grid.segments(ns):
        programs = melody.training_programs(num_bars)
        for tr in melody.segment_tracks(seg, melody.program_mask(programs), grid.Stats()):
            spans, first = [], tr.onsets[0] // 16
            for i in range(1, len(tr.onsets)):
                if tr.onsets[i] - tr.ends[i - 1] >= 16:
                    spans.append((first, tr.ends[i - 1] // 16))
                    first = tr.onsets[i] // 16
            spans.append((first, tr.ends[-1] // 16))
            for f, last in spans:
                for b in range(f, min(last + 2, f + 101) - num_bars):  # first 100 bars
                    w = tr.tokens[b * 16:(b + num_bars) * 16].copy()
                    ons = np.nonzero(w >= 2)[0]
                    if not len(ons):
                        continue
                    w[:ons[0]][w[:ons[0]] == 1] = 0
                    if w.tobytes() not in seen:
                        seen.add(w.tobytes())
                        out.append((seg.first_bar + b, tr.program, w))
    return out


def test_vectorised_windows_match_plain_reference():
    rng = np.random.default_rng(11)
    seqs = []
    for i in range(40):
        notes = []
        for inst in range(int(rng.integers(1, 4))):
            t = float(rng.integers(0, 8)) * 0.25
            for _ in range(int(rng.integers(0, 50))):
                dur = 0.25 * int(rng.integers(1, 9))
                notes.append((t, t + dur, int(rng.integers(15, 115)), int(rng.integers(0, 40)),
                              False, inst))
                if rng.random() < 0.2:  # chord tone
                    notes.append((t, t + dur / 2, int(rng.integers(40, 90)), 0, False, inst))
                t += dur * int(rng.integers(0, 2)) + 0.25 * int(rng.integers(0, 3)) + (
                    8.0 if rng.random() < 0.1 else 0.0)
        sigs = [((0.0, 4, 4),), ((0.0, 1, 4), (1.0, 4, 4)), ((0.0, 2, 4),),
                ((0.0, 4, 4), (12.0, 3, 4), (15.0, 4, 4))][i % 4]
        seqs.append(note_sequence(notes, qpm=float(rng.integers(60, 180)), time_signatures=sigs))
    for num_bars in (2, 4):
        batch = melody.extract_windows_batch(seqs, num_bars)
        for i, ns in enumerate(seqs):
            ref = _reference_windows(ns, num_bars)
            got = batch.windows(i)
            assert [(b, p) for b, p, _ in ref] == [(w.start_bar, w.program) for w in got]
            for (_, _, w_ref), w in zip(ref, got):
                np.testing.assert_array_equal(w.tokens, w_ref)


def test_find_window_reports_and_selects_the_part():
    lead = [(i, i + 1, 72 + i % 3, 0, False, 0) for i in range(8)]
    inner = [(i, i + 0.5, 60, 0, False, 1) for i in range(8)] + [
        (i + 0.5, i + 1, 62, 0, False, 1) for i in range(8)]  # more onsets: the default
    ns = note_sequence(lead + inner)
    window = melody.find_window(ns, 2)
    assert (window.instrument, window.program, window.start_bar) == (1, 0, 0)
    assert not window.other_programs
    np.testing.assert_array_equal(window.tokens, MEL.from_note_sequence(ns, 2))
    chosen = melody.find_window(ns, 2, instrument=0)
    assert chosen.instrument == 0 and chosen.tokens[0] == tok(72)
    np.testing.assert_array_equal(
        chosen.tokens, melody.from_note_sequence(ns, 2, instrument=0))
    with pytest.raises(NoWindowError, match="instrument 4 has no melody notes"):
        melody.find_window(ns, 2, instrument=4)


def test_inference_takes_a_line_outside_the_melody_programs_but_training_does_not():
    flute = note_sequence([(i, i + 1, 70 + i, 73) for i in range(8)])
    window = melody.find_window(flute, 2)
    assert window.program == 73 and window.other_programs and window.tokens[0] == tok(70)
    windows, stats = MEL.extract_windows(flute, 2)
    assert windows == [] and stats["skip/no_melody"] == 1
    # 16 bars: any pitched program is a melody program, in training and at inference, so the
    # busier flute wins over a sparse piano line and is not "other".
    piano = [(i * 4, i * 4 + 4, 60, 0, False, 0) for i in range(16)]
    busy_flute = [(i, i + 1, 70 + i % 5, 73, False, 1) for i in range(64)]
    window = melody.find_window(note_sequence(piano + busy_flute), 16)
    assert (window.program, window.other_programs) == (73, False)
    assert melody.find_window(note_sequence(piano + busy_flute), 2).program == 0


def test_too_few_windows_names_the_meter_that_cut_the_rest():
    ns = note_sequence([(i, i + 1, 60 + i % 7) for i in range(20)],
                       time_signatures=((0.0, 4, 4), (8.0, 3, 4)))
    with pytest.raises(NoWindowError, match=r"only 1 2-bar window exists \(the parts in "
                                            r"3/4 do not fit"):
        melody.find_window(ns, 2, window_index=5)


def test_window_says_what_it_padded_and_left_out(tmp_path):
    """A file shorter than the model's window is padded with silence, and notes outside
    MIDI pitch 21..108 are dropped: the window says both, and the command's line shows it."""
    from hmvae_tf.serving import music_adapter

    half_bar = note_sequence([(0, 0.25, 60), (0.25, 0.5, 64), (0.5, 1.0, 67)])
    window = melody.find_window(half_bar, 16)
    assert window.silent_bars == 15 and window.notes_out_of_range == 0
    assert melody.find_window(scale_ns(bars=4), 2, window_index=2).silent_bars == 0
    high = note_sequence([(i * 0.5, i * 0.5 + 0.5, 112 if i % 4 == 0 else 72)
                          for i in range(16)])  # two bars of eighths
    window = melody.find_window(high, 2)
    assert window.notes_out_of_range == 4 and window.silent_bars == 0
    path = tmp_path / "short.mid"
    midi_io.write_midi(half_bar, path)
    where = music_adapter.read_window(str(path), MEL, 16).where
    assert "bars 1-16 of instrument 0" in where
    assert where.endswith("; the music ends in bar 1, bars 2-16 are silence")
    path = tmp_path / "high.mid"
    midi_io.write_midi(high, path)
    where = music_adapter.read_window(str(path), MEL, 2).where
    assert where.endswith("; 4 notes outside MIDI pitch 21..108 left out")


def test_the_window_line_names_the_files_parts(tmp_path):
    """A chorale's tracks are named Soprano ... Bass: the line says the names beside the
    numbers, so a musician sees that the busiest part taken is the Tenor, not the tune."""
    from hmvae_tf.serving import music_adapter

    ns = note_sequence([(b, b + 1, 72, 0, False, 0) for b in range(0, 8, 2)]
                       + [(b / 2, b / 2 + 0.5, 55, 0, False, 1) for b in range(16)])
    for k, name in enumerate(("Soprano", "Tenor")):
        ns.instrument_infos.add(instrument=k, name=name)
    path = tmp_path / "two_parts.mid"
    midi_io.write_midi(ns, path)
    where = music_adapter.read_window(str(path), MEL, 2).where
    assert "bars 1-2 of instrument 1 'Tenor' (program 0" in where
    assert "other parts: instrument 0 'Soprano' (choose with --instrument)" in where


def test_the_window_line_names_the_other_parts_when_none_is_in_programs_0_31(tmp_path):
    """A flute and a horn line, no part in Magenta's 2-bar melody programs: the line said the
    flute's program was outside them, but not that the horn line was there to choose (it
    names the other parts for a file with such a part)."""
    from hmvae_tf.serving import music_adapter

    ns = note_sequence([(b / 2, b / 2 + 0.5, 72, 73, False, 0) for b in range(16)]
                       + [(b, b + 1, 55, 60, False, 1) for b in range(8)])
    path = tmp_path / "flute_horn.mid"
    midi_io.write_midi(ns, path)
    where = music_adapter.read_window(str(path), MEL, 2).where
    assert where == ("window 0: bars 1-2 of instrument 0 (program 73, Flute); its program is "
                     "outside programs 0-31, the melody programs of 2-bar training data; other "
                     "parts: instrument 1 (choose with --instrument)")
    assert "other parts" not in music_adapter.read_window(str(path), MEL, 2, instrument=1).where


def test_the_window_line_counts_the_notes_a_chord_or_second_voice_loses(tmp_path):
    """A piano part with both hands on one track: a melody is one voice, the highest note of
    each onset, so the left hand vanished from the reconstruction and the line did not say
    so, while it counts notes outside the pitch range it leaves out."""
    from hmvae_tf.serving import music_adapter

    right = [(b / 2, b / 2 + 0.5, 72 + b % 5) for b in range(16)]  # eighths, bars 1-2
    left = [(b, b + 1, 48 + b % 3) for b in range(0, 8, 2)]  # half notes, under the right
    chords = [(b, b + 1, p) for b in range(8, 12) for p in (60, 64)]  # bar 3: dyads
    path = tmp_path / "piano.mid"
    midi_io.write_midi(note_sequence(right + left + chords), path)
    where = music_adapter.read_window(str(path), MEL, 2).where
    assert where == ("window 0: bars 1-2 of instrument 0 (program 0, Acoustic Grand Piano); 4 "
                     "notes starting with a higher one left out (a melody takes the highest)")
    assert music_adapter.read_window(str(path), MEL, 2, bar=3).where.endswith(
        "; 4 notes starting with a higher one left out (a melody takes the highest)")  # dyads
    # A line of single notes leaves none out.
    path = tmp_path / "line.mid"
    midi_io.write_midi(note_sequence(right), path)
    assert "higher one" not in music_adapter.read_window(str(path), MEL, 2).where


def test_the_window_line_leaves_out_a_format_0_files_one_track_name(tmp_path):
    """A format 0 file holds every channel in one track, so its one track name labelled
    every part: the flute line read "instrument 2 'Drums' (program 73, Flute)". A name that
    several parts share names none of them; the programs tell them apart."""
    import mido
    import pretty_midi

    from hmvae_tf.serving import music_adapter

    pm = pretty_midi.PrettyMIDI()
    for program, is_drum, name, pitches in ((73, False, "Flute", [72, 74, 76, 79] * 4),
                                            (0, True, "Drums", [36, 38] * 8)):
        part = pretty_midi.Instrument(program, is_drum=is_drum, name=name)
        part.notes += [pretty_midi.Note(90, p, i * 0.25, i * 0.25 + 0.2)
                       for i, p in enumerate(pitches)]
        pm.instruments.append(part)
    pm.instruments.append(pretty_midi.Instrument(0, name="Piano"))  # a part without notes
    pm.instruments[-1].notes += [pretty_midi.Note(80, 60, i * 1.0, i * 1.0 + 0.9)
                                 for i in range(4)]
    pm.write(str(tmp_path / "format1.mid"))
    assert music_adapter.read_window(str(tmp_path / "format1.mid"), MEL, 2).where.startswith(
        "window 0: bars 1-2 of instrument 2 'Piano' (program 0")
    format1 = mido.MidiFile(tmp_path / "format1.mid")
    format0 = mido.MidiFile(type=0, ticks_per_beat=format1.ticks_per_beat)
    format0.tracks.append(mido.merge_tracks(format1.tracks))
    format0.save(tmp_path / "format0.mid")
    flute = {n.program: n.instrument
             for n in midi_io.read_midi(tmp_path / "format0.mid").notes}[73]
    where = music_adapter.read_window(str(tmp_path / "format0.mid"), MEL, 2,
                                      instrument=flute).where
    assert where.startswith(f"window 0: bars 1-2 of instrument {flute} (program 73, Flute)")
    assert "'" not in where


def test_the_window_line_numbers_a_pickup_bar_0(tmp_path):
    """A piece opening with a pickup (a short first time signature) numbers it bar 0, as
    musicians do; the line said "bars 1-2" for the pickup and the first full bar."""
    from hmvae_tf.serving import music_adapter

    ns = note_sequence([(0, 1, 67)] + [(1 + i, 2 + i, 60 + i % 5) for i in range(8)],
                       time_signatures=((0.0, 1, 4), (1.0, 4, 4)))
    path = tmp_path / "pickup.mid"
    midi_io.write_midi(ns, path)
    assert grid.starts_with_pickup(midi_io.read_midi(path))
    assert music_adapter.read_window(str(path), MEL, 2).where.startswith(
        "window 0: bars 0-1 of instrument 0")
    plain = note_sequence([(i, i + 1, 60 + i % 5) for i in range(8)])
    midi_io.write_midi(plain, tmp_path / "plain.mid")
    assert not grid.starts_with_pickup(plain)
    assert music_adapter.read_window(str(tmp_path / "plain.mid"), MEL, 2).where.startswith(
        "window 0: bars 1-2 of instrument 0")


def test_the_window_line_numbers_bars_as_the_score_does(tmp_path):
    """Windows are counted in 16-step grid bars, which the line printed as bar numbers: a
    2/4 piece's first 2-bar window said "bars 1-2" for its bars 1-4, and after four bars of
    3/4 the first 4/4 window said "bars 4-5" for bars 5-6."""
    from hmvae_tf.serving import music_adapter

    march = note_sequence([(i, i + 1, 60 + i % 5) for i in range(32)],
                          time_signatures=((0.0, 2, 4),))  # 16 bars of 2/4
    midi_io.write_midi(march, tmp_path / "march.mid")
    where = lambda name, bars, k=0: music_adapter.read_window(  # noqa: E731
        str(tmp_path / name), MEL, bars, k).where
    assert where("march.mid", 2).startswith("window 0: bars 1-4 of instrument 0")
    assert where("march.mid", 2, 1).startswith("window 1: bars 3-6 of instrument 0")
    assert where("march.mid", 16).endswith(
        "; the music ends in bar 16, bars 17-32 are silence")  # 32 bars of 2/4
    waltz_then_four = note_sequence([(i, i + 1, 60 + i % 5) for i in range(12 + 16)],
                                    time_signatures=((0.0, 3, 4), (12.0, 4, 4)))
    midi_io.write_midi(waltz_then_four, tmp_path / "change.mid")
    assert where("change.mid", 2).startswith("window 0: bars 5-6 of instrument 0")
    assert where("change.mid", 2, 2).startswith("window 2: bars 7-8 of instrument 0")
    # 4/4 throughout, and a pickup: as before.
    assert grid.ScoreBars(note_sequence([(0, 1, 60)])).at_step(16) == 2
    pickup = note_sequence([(0, 1, 67)] + [(1 + i, 2 + i, 60) for i in range(8)],
                           time_signatures=((0.0, 1, 4), (1.0, 4, 4)))
    assert [grid.ScoreBars(pickup).at_step(s) for s in (0, 4, 19, 20)] == [0, 1, 1, 2]
