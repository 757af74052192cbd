"""MusicXML reading: the score's pickup measure is encoded where note_seq's reader misses it."""
import warnings

import pytest

from hmvae_tf.music import corpus, grid, musicxml_io

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from note_seq import musicxml_reader


def chorale(name: str) -> corpus.Piece:
    """A Bach chorale of the embedded corpus, as `corpus.embedded_pieces` lists it."""
    path = corpus.music21_corpus_dir() / corpus.BACH_COLLECTION / f"{name}.mxl"
    return corpus.Piece(f"music21/{corpus.BACH_COLLECTION}/{path.name}", "musicxml", str(path))


def score_measure_steps(name: str) -> list[tuple[int, int]]:
    """(number, first grid step) of the first part's measures, as music21 reads the score."""
    music21 = pytest.importorskip("music21")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = music21.corpus.parse(f"{corpus.BACH_COLLECTION}/{name}")
    return [(m.number, round(float(m.offset) * grid.STEPS_PER_QUARTER))
            for m in score.parts[0].getElementsByClass("Measure")]


def test_a_pickup_note_seq_misses_puts_the_first_bar_line_one_quarter_in():
    """bwv102.7 opens with a one-quarter measure 0 (10080 divisions per quarter, so note_seq
    sees no pickup and gave 4/4 from time 0: bar lines a quarter before the score's)."""
    ns = corpus.read_piece(chorale("bwv102.7"))
    assert grid.starts_with_pickup(ns)
    measures = score_measure_steps("bwv102.7")
    assert measures[:2] == [(0, 0), (1, grid.STEPS_PER_QUARTER)]
    bars = grid.ScoreBars(ns)
    # The score's bar lines of the first section (before the 3/4 fermata bar, measure 4)
    # are the grid's: bar 0 is the pickup, bars 1-3 start where the score's measures do.
    for (number, step), (_, next_step) in zip(measures[:4], measures[1:5]):
        assert bars.at_step(step) == bars.at_step(next_step - 1) == number
    assert grid.segments(ns)[0].origin == grid.STEPS_PER_QUARTER - grid.STEPS_PER_BAR


def test_a_chorale_whose_pickup_note_seq_reads_is_unchanged():
    piece = chorale("bwv1.6")
    assert corpus.read_piece(piece) == musicxml_reader.musicxml_file_to_sequence_proto(
        piece.path)


def score_xml(first_measure_quarters: int, number: str = "1") -> str:
    """A one-part 4/4 MusicXML score: a first measure of that many quarters, then a full one."""
    def notes(count):
        return "".join("<note><pitch><step>C</step><octave>4</octave></pitch><duration>4"
                       "</duration><voice>1</voice><type>quarter</type></note>"
                       for _ in range(count))
    return ("<?xml version='1.0'?><score-partwise><part-list><score-part id='P1'><part-name>"
            "Voice</part-name></score-part></part-list><part id='P1'>"
            f"<measure number='{number}'><attributes><divisions>4</divisions><time><beats>4"
            f"</beats><beat-type>4</beat-type></time></attributes>"
            f"{notes(first_measure_quarters)}</measure><measure number='2'>{notes(4)}</measure>"
            "</part></score-partwise>")


@pytest.mark.parametrize("quarters, number, pickup", [
    (3, "1", "3/4"),  # shorter than 4/4 but not numbered 0: still a pickup (as bwv274's)
    (2, "0", "1/2"),  # a half-bar pickup (bwv119.9)
    (4, "0", None),   # a full first bar, whatever its number
])
def test_the_first_measures_length_decides_the_pickup(tmp_path, quarters, number, pickup):
    path = tmp_path / "score.xml"
    path.write_text(score_xml(quarters, number))
    signatures = [(t.time, f"{t.numerator}/{t.denominator}")
                  for t in musicxml_io.read_musicxml(path).time_signatures]
    if pickup is None:
        assert signatures == [(0.0, "4/4")]
    else:
        assert signatures == [(0.0, pickup), (quarters * 0.5, "4/4")]


def test_a_file_note_seq_cannot_parse_raises_its_conversion_error(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<score-partwise><part id='P1'><measure><note><pitch><step>H</step>"
                    "<octave>4</octave></pitch><duration>1</duration></note></measure></part>"
                    "</score-partwise>")
    with pytest.raises(musicxml_reader.MusicXMLConversionError):
        musicxml_io.read_musicxml(path)
