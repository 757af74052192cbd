"""Embedded-corpus sources: ABC via abc2midi (downbeats from velocity 105), Bach MusicXML."""
import shutil

import numpy as np
import pytest

from hmvae_tf.music import corpus, melody
from hmvae_tf.music.representations import get_representation

MEL = get_representation("melody")
pytestmark = pytest.mark.skipif(shutil.which("abc2midi") is None, reason="needs abc2midi")

HEADER = b"% test collection\n"
PICKUP_TUNE = b"""T:Pickup test
M:4/4
L:1/8
K:C
GA | c2 d2 e2 f2 | g8 | e2 d2 c2 B2 | c6 :|
"""
WALTZ = b"""T:Waltz
M:3/4
L:1/4
K:G
G A B | c B A | G3 | D3 |
"""
REEL_2_4 = b"""T:Two-four
M:2/4
L:1/8
K:D
d | fe dc | BA GF | E2 D2 | D3 |
"""


def pieces(tmp_path):
    src = tmp_path / "coll.abc"
    src.write_bytes(HEADER + b"X:7\n" + PICKUP_TUNE + b"\nX:8\n" + WALTZ + b"\nX:8\n" + REEL_2_4)
    header, tunes = corpus.abc_tunes(src)
    assert [label for label, _ in tunes] == ["7", "8", "8.2"]
    return [corpus.Piece(f"test/coll.abc#{label}", "abc", str(src), text, header)
            for label, text in tunes]


def test_abc_pickup_gets_correct_downbeats(tmp_path):
    converted = dict((p.piece_id, ns) for p, ns in corpus.abc_to_note_sequences(pieces(tmp_path)))
    ns = converted["test/coll.abc#7"]
    sigs = [(round(t.time, 3), t.numerator, t.denominator) for t in ns.time_signatures]
    assert sigs == [(0.0, 1, 4), (0.5, 4, 4)]  # a quarter of pickup, 4/4 from beat 1
    tokens = MEL.from_note_sequence(ns, 2)
    # pickup G A on the last quarter of bar 0, C on the downbeat of bar 1
    assert tokens[12] == 67 - melody.PITCH_OFFSET and tokens[14] == 69 - melody.PITCH_OFFSET
    assert tokens[16] == 72 - melody.PITCH_OFFSET and tokens[20] == 74 - melody.PITCH_OFFSET
    assert (tokens[:12] == 0).all()


def test_read_piece_converts_one_abc_tune_as_the_batch_does(tmp_path):
    """read_piece took MIDI and MusicXML pieces only ('cannot read a 'abc' piece one by
    one'), though most embedded pieces are ABC tunes; it converts one now, to the
    NoteSequence the batched conversion gives."""
    tunes = pieces(tmp_path)
    batched = dict((p.piece_id, ns) for p, ns in corpus.abc_to_note_sequences(tunes))
    for tune in (tunes[0], tunes[2]):
        ns = corpus.read_piece(tune)
        assert ns.notes and ns.time_signatures == batched[tune.piece_id].time_signatures
        assert ns.notes == batched[tune.piece_id].notes

def test_abc_three_four_skipped_and_two_four_paired(tmp_path):
    examples, stats = corpus.convert_pieces(("melody", 2, pieces(tmp_path)))
    assert stats["pieces_read"] == 3 and stats["skip/meter_not_4/4_compatible"] == 1
    ids = {e.piece_id for e in examples}
    assert ids == {"test/coll.abc#7", "test/coll.abc#8.2"}
    reel = [e for e in examples if e.piece_id.endswith("8.2")][0]
    # 2/4 with an eighth pickup: d on step 14, then f e d c B A G F on the eighths
    assert reel.tokens[14] == 74 - melody.PITCH_OFFSET and reel.tokens[16] == 78 - melody.PITCH_OFFSET
    assert reel.start_bar == 0 and len(reel.note_sequence) > 0


def test_abc2midi_bar_shift_is_re_anchored():
    from music_helpers import note_sequence
    # 2/4 bars (8 steps): bar lines (velocity 105) at beats 0, 2, 4, 6, then a bar one eighth
    # too long moves them to 8.5, 10.5 for good.
    notes = []
    for beat in (0, 2, 4, 6, 8.5, 10.5):
        notes.append((beat, beat + 0.5, 60, 0, False, 0, 105))
        notes.append((beat + 0.5, beat + 1, 62, 0, False, 0, 80))
    ns = corpus.fix_abc2midi_downbeats(note_sequence(notes, time_signatures=((0.0, 2, 4),)))
    assert [(round(t.time, 3), t.numerator) for t in ns.time_signatures] == [(0.0, 2), (4.25, 2)]


def test_bach_chorale_from_musicxml():
    all_pieces = corpus.embedded_pieces()
    assert len(all_pieces) > 13000
    bach = [p for p in all_pieces if p.kind == "musicxml"]
    assert len(bach) >= 400 and bach[0].piece_id.startswith("music21/bach/")
    examples, stats = corpus.convert_pieces(("melody", 2, bach[:3]))
    assert stats["pieces_read"] == 3 and examples
    assert len({e.tokens.tobytes() for e in examples}) == len(examples)
    # Each voice is its own instrument: several programs/voices feed windows.
    ns = corpus.read_piece(bach[0])
    assert len({n.instrument for n in ns.notes}) >= 4


def test_split_is_stable_and_roughly_90_5_5():
    ids = [f"music21/x/{i}.abc#{i}" for i in range(4000)]
    splits = [corpus.split_of(i) for i in ids]
    assert splits == [corpus.split_of(i) for i in ids]
    frac = np.mean([s == "train" for s in splits])
    assert 0.87 < frac < 0.93
