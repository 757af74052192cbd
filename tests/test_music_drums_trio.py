"""Drum and trio converters on MIDI files with known content."""
import mido
import numpy as np
import pytest
from music_helpers import drum_class_counts, note_sequence, write_midi

from hmvae_tf.music import drums, melody, midi_io
from hmvae_tf.music.representations import get_representation
from hmvae_tf.music.windows import NoWindowError

DRUMS = get_representation("drums")
TRIO = get_representation("trio")
KICK, SNARE, CLOSED, OPEN, CRASH = 1, 2, 4, 8, 128


def beat_pattern(bars, offset=0.0):
    """Kick on 1 and 3, snare on 2 and 4, closed hats on eighths, crash on bar 0."""
    hits = []
    for b in range(bars):
        for i in range(8):
            t = offset + b * 4 + i * 0.5
            hits.append((t, t + 0.1, 42))
        for beat, pitch in ((0, 36), (1, 38), (2, 35), (3, 40)):  # 35/40: other kick/snare
            hits.append((offset + b * 4 + beat, offset + b * 4 + beat + 0.1, pitch))
    hits.append((offset, offset + 0.1, 49))
    return hits


def expected_bar(first=False):
    t = np.zeros(16, np.int32)
    t[::2] |= CLOSED
    t[[0, 8]] |= KICK
    t[[4, 12]] |= SNARE
    if first:
        t[0] |= CRASH
    return t


def test_drum_tokens_from_known_midi(tmp_path):
    hits = beat_pattern(4) + [(2.25, 2.35, 25)]  # 25 is not in the reduced mapping
    path = write_midi(tmp_path / "beat.mid", [(0, True, hits)])
    windows, stats = DRUMS.extract_windows(midi_io.read_midi(path), 2)
    assert stats["drum_notes_unmapped"] == 1
    np.testing.assert_array_equal(windows[0].tokens[:16], expected_bar(first=True))
    np.testing.assert_array_equal(windows[0].tokens[16:], expected_bar())
    # bars 1-2 and 2-3 are identical: deduplicated
    assert [w.start_bar for w in windows] == [0, 1]
    assert drum_class_counts(windows[0].tokens)[[0, 1, 2, 7]].tolist() == [4, 4, 16, 1]


def test_drum_round_trip_and_channel_10(tmp_path):
    rng = np.random.default_rng(1)
    cases = [rng.integers(0, 512, 32, dtype=np.int32) * (rng.random(32) < 0.5)
             for _ in range(10)]
    for tokens in cases:
        tokens = tokens.astype(np.int32)
        tokens[0] |= KICK  # a window holds at least one hit
        path = DRUMS.to_midi(tokens, tmp_path / "d.mid", qpm=133.0)
        channels = {m.channel for m in mido.MidiFile(path).tracks[-1] if m.type == "note_on"}
        assert channels == {9}
        ns = midi_io.read_midi(path)
        assert all(n.is_drum for n in ns.notes)
        np.testing.assert_array_equal(DRUMS.from_note_sequence(ns, 2), tokens)


def test_written_parts_are_named_and_no_empty_track_is_left(tmp_path):
    """A DAW shows the parts as the web page names them, and a drum file holds no empty
    channel-1 track (note_seq always makes instrument 0, also when nothing plays on it)."""
    beat = np.array([KICK, 0, CLOSED, 0] * 8, np.int32)
    tracks = mido.MidiFile(DRUMS.to_midi(beat, tmp_path / "d.mid")).tracks
    assert [t.name for t in tracks] == ["", "drums"]  # tempo map, then the drums
    line = np.array([62, 0, 0, 1] * 8, np.int32)
    # Two octaves down: the note ids move, NO_EVENT (0) and NOTE_OFF (1) do not (line - 24
    # made them ids -24 and -23, which rendered without a word before they were refused).
    trio = np.stack([line, np.where(line >= 2, line - 24, line), beat], -1)
    tracks = mido.MidiFile(TRIO.to_midi(trio, tmp_path / "t.mid")).tracks
    assert [t.name for t in tracks] == ["", "melody", "bass", "drums"]
    assert {m.channel for m in tracks[3] if m.type == "note_on"} == {9}


def test_drums_need_drum_notes(tmp_path):
    path = write_midi(tmp_path / "piano.mid", [(0, False, [(i, i + 1, 60) for i in range(8)])])
    windows, stats = DRUMS.extract_windows(midi_io.read_midi(path), 2)
    assert windows == [] and stats["skip/no_drums"] == 1
    with pytest.raises(NoWindowError, match="no drum notes"):
        DRUMS.from_note_sequence(str(path), 2)


def test_drums_on_another_channel_than_10_are_named_as_the_likely_cause(tmp_path):
    """A drum part written on a pitched channel (common in home-made and Lakh MIDI) gives no
    drum window; the error says to move it to channel 10, if the file has one (it told a
    file of a pitched part alone to move its drum part), and only when the file has no
    drum-channel notes at all."""
    beat = write_midi(tmp_path / "beat_ch1.mid", [(0, False, beat_pattern(4))])
    with pytest.raises(NoWindowError, match="if it has one, move it to channel 10"):
        DRUMS.from_note_sequence(str(beat), 2)
    with pytest.raises(NoWindowError, match="if it has one, move it to channel 10"):
        TRIO.from_note_sequence(str(trio_file(tmp_path, drum_channel=False)), 16)
    unmapped = write_midi(tmp_path / "unmapped.mid", [(0, True, [(0, 0.5, 25), (1, 1.5, 88)])])
    with pytest.raises(NoWindowError, match="no drum notes") as raised:
        DRUMS.from_note_sequence(str(unmapped), 2)
    assert "channel 10 (General MIDI" not in str(raised.value)
    trio = trio_file(tmp_path, with_bass=False)
    with pytest.raises(NoWindowError, match="no bass notes") as raised:
        TRIO.from_note_sequence(str(trio), 16)
    assert "move the drum part" not in str(raised.value)


def test_drum_spans_split_at_a_silent_bar():
    # bars 0-1, silence 2-3, bars 4-5 (with an open hat, so not a duplicate)
    hits = beat_pattern(2) + beat_pattern(2, offset=16.0) + [(17.5, 17.6, 46)]
    windows, _ = DRUMS.extract_windows(note_sequence([h + (0, True) for h in hits]), 2)
    assert [w.start_bar for w in windows] == [0, 4]


def test_a_drum_line_gives_windows_from_its_first_100_bars():
    """Magenta's drum converter (max_bars=100): a 150-bar groove is sliced over 100 bars."""
    rng = np.random.default_rng(3)
    hits = [(i * 0.5, i * 0.5 + 0.1, int(rng.choice([36, 38, 42, 46, 49])), 0, True)
            for i in range(8 * 150)]  # random eighths: no two windows alike
    starts = [w.start_bar for w in DRUMS.extract_windows(note_sequence(hits), 2)[0]]
    assert max(starts) == 98 and len(starts) == 99


def trio_file(tmp_path, bars=18, with_bass=True, drum_channel=True):
    lead = [(i * 0.5, i * 0.5 + 0.5, 60 + i % 12) for i in range(bars * 8)]
    pad = [(i * 4.0, i * 4.0 + 4, 72 + i % 3) for i in range(bars)]  # fewer onsets
    bass = [(i * 1.0, i * 1.0 + 1, 36 + i % 5) for i in range(bars * 4)]
    beat = beat_pattern(bars)
    tracks = [(0, False, pad), (5, False, lead), (0, drum_channel, beat)]
    if with_bass:
        tracks.append((33, False, bass))
    return write_midi(tmp_path / "trio.mid", tracks, qpm=110.0)


def test_trio_windows_pick_busiest_instruments_and_round_trip(tmp_path):
    ns = midi_io.read_midi(trio_file(tmp_path))
    windows, stats = TRIO.extract_windows(ns, 16)
    assert len(windows) >= 2 and windows[0].tokens.shape == (256, 3)
    w = windows[0]
    assert w.program == (5, 33)  # the lead (8 onsets/bar) beats the pad (1/bar)
    lead = w.tokens[:, 0]
    assert [int(x) for x in np.nonzero(lead >= 2)[0][:3]] == [0, 2, 4]
    assert lead[0] == 60 - melody.PITCH_OFFSET
    assert w.tokens[0, 1] == 36 - melody.PITCH_OFFSET and w.tokens[4, 1] == 37 - melody.PITCH_OFFSET
    np.testing.assert_array_equal(w.tokens[:16, 2], expected_bar(first=True))
    for win in windows:
        path = TRIO.to_midi(win.tokens, tmp_path / "rt.mid", qpm=win.qpm)
        back = midi_io.read_midi(path)
        programs = {(n.program, n.is_drum) for n in back.notes}
        assert programs == {(0, False), (33, False), (0, True)}
        np.testing.assert_array_equal(TRIO.from_note_sequence(back, 16), win.tokens)


def test_interpolate_says_where_a_drum_or_trio_window_came_from(tmp_path):
    """`hmvae interpolate` names the bars (and for a trio the parts' programs) it read, as it
    does for melodies; drum and trio inputs said only "window 0"."""
    from hmvae_tf.serving.music_adapter import read_window

    hits = beat_pattern(4, offset=8.0)  # two silent bars first
    path = write_midi(tmp_path / "late.mid", [(0, True, hits)])
    read = read_window(str(path), DRUMS, 2, window_index=1)
    tokens, where = read.tokens, read.where
    assert where == "window 1: bars 3-4 of the drums"  # window 0: bars 2-3, a silent bar first
    np.testing.assert_array_equal(tokens, DRUMS.from_note_sequence(str(path), 2, 1))
    path = trio_file(tmp_path)
    read = read_window(str(path), TRIO, 16, window_index=1)
    tokens, where = read.tokens, read.where
    assert where.startswith("window 1: bars 2-17; melody program 5 (") and "bass program 33" in where
    np.testing.assert_array_equal(tokens, TRIO.from_note_sequence(str(path), 16, 1))


def test_interpolate_says_which_drum_hits_of_the_window_it_left_out(tmp_path):
    """Hits of pitches outside the 9 classes (a Roland snare roll 25, a pitch 90) are left out
    of the tokens; the window line counts those of its own bars, as it does for a melody's
    notes out of range."""
    from hmvae_tf.serving.music_adapter import read_window

    extra = [(1.0, 1.1, 25), (2.0, 2.1, 25), (5.0, 5.1, 90), (13.0, 13.1, 25)]  # bars 1, 2, 4
    path = write_midi(tmp_path / "roll.mid", [(0, True, beat_pattern(4) + extra)])
    assert read_window(str(path), DRUMS, 2).where == (
        "window 0: bars 1-2 of the drums; 3 drum hits (pitches 25, 90) left out: outside the "
        "9 drum classes")
    assert read_window(str(path), DRUMS, 2, bar=3).where == (
        "bars 3-4 of the drums; 1 drum hit (pitch 25) left out: outside the 9 drum classes")
    lead = [(i * 0.5, i * 0.5 + 0.5, 60 + i % 12) for i in range(16 * 8)]
    bass = [(i * 1.0, i * 1.0 + 1, 36 + i % 5) for i in range(16 * 4)]
    trio = write_midi(tmp_path / "t.mid", [(0, False, lead), (33, False, bass),
                                           (0, True, beat_pattern(16) + extra)])
    assert read_window(str(trio), TRIO, 16).where.endswith(
        "drums; 4 drum hits (pitches 25, 90) left out: outside the 9 drum classes")
    assert "left out" not in read_window(str(trio_file(tmp_path)), TRIO, 16).where


def test_reading_a_drum_or_trio_window_segments_the_piece_once(tmp_path, monkeypatch):
    """The left-out drum hits the window line counts come from the segments the window finder
    searched (the piece was segmented again for them), and are those of the window's bars."""
    from hmvae_tf.music import grid
    from hmvae_tf.serving.music_adapter import read_window

    calls = []
    real = grid.segments
    monkeypatch.setattr(grid, "segments", lambda *args: calls.append(1) or real(*args))
    roll = write_midi(tmp_path / "roll.mid", [(0, True, beat_pattern(4) + [(5.0, 5.1, 25)])])
    for rep, path, where in ((DRUMS, roll, "window 1: bars 2-3 of the drums; 1 drum hit"),
                             (TRIO, trio_file(tmp_path), "window 1: bars 2-3; melody")):
        calls.clear()
        window = read_window(str(path), rep, 2, window_index=1)
        assert len(calls) == 1, rep.name
        assert window.where.startswith(where), window.where
    found = drums.find_window(str(roll), 2, at_bar=2)
    assert found.start_bar == 2 and found.unmapped_drums == []


def test_the_left_out_drum_hits_are_those_of_the_windows_own_section(tmp_path):
    """4/4 for two and a half bars, then 2/4: the 4/4 section's half bar and the 2/4 section's
    first bar had the same grid bar number, and the window there (the 2/4 section's) was
    said to leave out the snare roll of the 4/4 section's half bar, which it does not hold.
    (The 2/4 section's first grid bar is now grid bar 3, after the half bar's 2.)"""
    from hmvae_tf.music import grid
    from hmvae_tf.serving.music_adapter import read_window

    kicks = [(b, b + 0.25, 36, 0, True, 9) for b in range(8)]
    roll = [(9, 9.25, 25, 0, True, 9)]  # beat 9: the 4/4 section's half bar
    snares = [(b, b + 0.25, 38, 0, True, 9) for b in range(10, 18)]
    ns = note_sequence(kicks + roll + snares, time_signatures=((0, 4, 4), (10, 2, 4)))
    assert [s.first_bar for s in grid.segments(ns)] == [0, 3]
    window = drums.find_window(ns, 1, at_bar=3)
    assert drums.token_hits(window.tokens) == [(0, 38), (4, 38), (8, 38), (12, 38)]
    assert window.unmapped_drums == []
    path = tmp_path / "broken_bar.mid"
    midi_io.write_midi(ns, path)
    assert read_window(str(path), DRUMS, 1, bar=4).where == "bars 4-5 of the drums"
    assert drums.find_window(ns, 1, at_bar=1).unmapped_drums == []  # the kicks' bar 1
    half_bar = drums.find_window(ns, 2, at_bar=1)  # bars 1-2 of the 4/4 section hold it
    assert half_bar.unmapped_drums == [25]


def test_trio_without_bass_is_skipped_with_reason(tmp_path):
    path = trio_file(tmp_path, with_bass=False)
    windows, stats = TRIO.extract_windows(midi_io.read_midi(path), 16)
    assert windows == [] and stats["skip/no_trio_instruments"] == 1
    with pytest.raises(NoWindowError, match="no bass notes"):
        TRIO.from_note_sequence(str(path), 16)


def test_a_trio_part_in_another_program_family_is_told_with_the_programs(tmp_path):
    """A trio's melody must be programs 0-31 at any window length (not 'for 2-bar windows',
    as a melody model's message says) and its bass 32-39: the error names those and the
    programs the file's parts play, so the user knows which part to change."""
    lead = [(i * 0.5, i * 0.5 + 0.5, 60 + i % 12) for i in range(16 * 8)]
    bass = [(i * 1.0, i * 1.0 + 1, 36 + i % 5) for i in range(16 * 4)]
    sax = write_midi(tmp_path / "sax.mid", [(65, False, lead), (33, False, bass),
                                            (0, True, beat_pattern(16))])
    with pytest.raises(NoWindowError) as raised:
        TRIO.from_note_sequence(str(sax), 16)
    message = str(raised.value)
    assert "no melody notes (a trio's melody is programs 0-31)" in message
    assert "its pitched parts play programs 33, 65" in message
    assert "2-bar" not in message and "no bass" not in message
    piano_bass = write_midi(tmp_path / "pb.mid", [(0, False, lead), (1, False, bass),
                                                  (0, True, beat_pattern(16))])
    with pytest.raises(NoWindowError) as raised:
        TRIO.from_note_sequence(str(piano_bass), 16)
    assert "no bass notes (a trio's bass is programs 32-39); its pitched parts play " \
        "programs 0, 1" in str(raised.value)


def test_batch_extraction_equals_one_by_one(tmp_path):
    """Vectorising over many pieces must not mix them up (spans, dedupe, skips)."""
    from hmvae_tf.music.grid import Stats
    rng = np.random.default_rng(5)
    seqs = []
    for i in range(12):
        mel = [(k * 0.5, k * 0.5 + 0.5 * rng.integers(1, 4), int(rng.integers(50, 80)), 0,
                False, int(rng.integers(0, 2))) for k in range(int(rng.integers(0, 60)))]
        hits = [(h[0] + 0.25 * (i % 2), h[1] + 0.25 * (i % 2), h[2], 0, True)
                for h in beat_pattern(int(rng.integers(0, 5)))]
        sigs = ((0.0, 4, 4),) if i % 4 else ((0.0, 3, 4),)
        seqs.append(note_sequence(mel + hits, time_signatures=sigs))
    for rep in (get_representation("melody"), DRUMS):
        stats = [Stats() for _ in seqs]
        batch = rep.extract_windows_batch(seqs, 2, stats)
        for i, ns in enumerate(seqs):
            alone, alone_stats = rep.extract_windows(ns, 2)
            together = batch.windows(i)
            assert len(alone) == len(together)
            for a, b in zip(alone, together):
                np.testing.assert_array_equal(a.tokens, b.tokens)
                assert (a.start_bar, a.program, a.qpm) == (b.start_bar, b.program, b.qpm)
            assert alone_stats == stats[i]
