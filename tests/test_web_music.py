"""The page's MIDI <-> tokens code (web/src/'s midi_read.js ... midi_write.js, run by Node) agrees
with hmvae_tf.music.

A file dropped on the page must give the tokens the Python client gives, and a .mid the page
writes must read back as the tokens it was made from.
"""
import shutil

import mido
import numpy as np
import pytest

from hmvae_tf.music import midi_io
from hmvae_tf.music.representations import NoWindowError, get_representation
from music_helpers import note_sequence
from web_helpers import WEB_ROOT, music_cli, node_missing

MEL_REP = get_representation("melody")

pytestmark = pytest.mark.skipif(node_missing() is not None, reason=str(node_missing()))


def random_melody(rng, steps):
    """Canonical melody tokens: note-offs only right after a sounding note, at least one note."""
    tokens = np.zeros(steps, np.int32)
    sounding = False
    for s in range(steps):
        r = rng.random()
        if r < 0.3:
            tokens[s] = rng.integers(2, 90)
            sounding = True
        elif r < 0.4 and sounding:
            tokens[s] = 1
            sounding = False
    if not (tokens >= 2).any():
        tokens[rng.integers(0, steps)] = rng.integers(2, 90)
        tokens[:np.argmax(tokens >= 2)][tokens[:np.argmax(tokens >= 2)] == 1] = 0
    return tokens


def random_drums(rng, steps):
    tokens = np.where(rng.random(steps) < 0.4, rng.integers(1, 512, steps), 0).astype(np.int32)
    tokens[0] = max(tokens[0], 1)
    return tokens


def compare_files(tmp_path, cases):
    """cases: (name, representation, bars, window, writer(path)). Python and JS must give the
    same tokens, or both fail."""
    requests, expected = [], []
    for name, rep_name, bars, window, make in cases:
        path = tmp_path / f"{name}.mid"
        make(path)
        rep = get_representation(rep_name)
        try:
            tokens = rep.from_note_sequence(str(path), bars, window_index=window)
            expected.append({t: (tokens[:, k] if rep.multitrack else tokens).tolist()
                             for k, t in enumerate(rep.tracks)})
        except NoWindowError as err:
            expected.append(err)
        requests.append({"op": "midi_to_tokens", "path": str(path), "representation": rep_name,
                         "bars": bars, "window": window})
    for (name, rep_name, *_), want, got in zip(cases, expected, music_cli(requests)):
        if isinstance(want, Exception):
            assert "error" in got, f"{name}/{rep_name}: Python says {want}, JS gave {got}"
            assert got["kind"] == "NoWindowError", got
        else:
            assert "tokens" in got, f"{name}/{rep_name}: JS failed: {got.get('error')}"
            assert got["tokens"] == want, f"{name}/{rep_name}: JS and Python tokens differ"


@pytest.mark.parametrize("rep_name,bars", [("melody", 2), ("melody", 4), ("drums", 2),
                                           ("trio", 2)])
def test_python_midi_reads_back_in_js_and_js_midi_in_python(tmp_path, rep_name, bars):
    rng = np.random.default_rng(bars)
    rep = get_representation(rep_name)
    steps = bars * 16
    seqs = []
    for _ in range(6):
        if rep_name == "melody":
            seqs.append({"melody": random_melody(rng, steps)})
        elif rep_name == "drums":
            seqs.append({"drums": random_drums(rng, steps)})
        else:
            seqs.append({"melody": random_melody(rng, steps), "bass": random_melody(rng, steps),
                         "drums": random_drums(rng, steps)})
    for track, column in seqs[0].items():  # one sequence ends in two beats of rest
        sounding = column[:-8][column[:-8] != 0][-1:] >= 2
        column[-8:] = 0
        if track != "drums" and sounding.any():
            column[-8] = 1  # note-off
    requests = []
    for i, seq in enumerate(seqs):
        tokens = np.stack([seq[t] for t in rep.tracks], -1) if rep.multitrack else seq[rep.tracks[0]]
        rep.to_midi(tokens, tmp_path / f"py{i}.mid", qpm=100)
        requests.append({"op": "midi_to_tokens", "path": str(tmp_path / f"py{i}.mid"),
                         "representation": rep_name, "bars": bars})
        requests.append({"op": "tokens_to_midi", "out": str(tmp_path / f"js{i}.mid"), "qpm": 100,
                         "tokens": {t: v.tolist() for t, v in seq.items()}})
    answers = music_cli(requests)
    for i, seq in enumerate(seqs):
        got = answers[2 * i]
        assert "tokens" in got, got
        for t in rep.tracks:
            assert got["tokens"][t] == seq[t].tolist(), f"sequence {i}, {t}: JS read differs"
        assert answers[2 * i + 1] == {"ok": True}
        back = rep.from_note_sequence(str(tmp_path / f"js{i}.mid"), bars)
        for k, t in enumerate(rep.tracks):
            column = back[:, k] if rep.multitrack else back
            np.testing.assert_array_equal(column, seq[t], err_msg=f"sequence {i}, {t}")
        ns = midi_io.read_midi(tmp_path / f"js{i}.mid")
        assert abs(ns.tempos[0].qpm - 100) < 1e-3
        for side in "py", "js":  # both last the whole window, trailing rests included
            length = mido.MidiFile(tmp_path / f"{side}{i}.mid").length
            assert length == pytest.approx(bars * 4 * 60 / 100, abs=0.01), (side, i)


def _band_piece(qpm=100.0, jitter=0.0, time_signatures=((0.0, 4, 4),), tempos=None):
    """Four bars: two melody instruments (one with chords and an out-of-range note), a bass,
    drums (one unmapped pitch), off-grid timing."""
    rng = np.random.default_rng(7)
    j = lambda: float(rng.uniform(-jitter, jitter))  # noqa: E731
    notes = []
    for beat in range(16):
        notes.append((beat + j(), beat + 0.5 + j(), 60 + beat % 7, 0, False, 0))
        if beat % 4 == 0:  # chord: the highest onset wins
            notes += [(beat + 0.0, beat + 2.0, 64 + beat % 5, 0, False, 0),
                      (beat + 0.0, beat + 1.0, 55, 0, False, 0)]
    notes += [(b + 0.25, b + 0.75, 72 + b % 3, 5, False, 1) for b in range(0, 16, 3)]
    notes += [(3.0, 3.5, 110, 5, False, 1)]  # out of range
    notes += [(b, b + 1.5, 36 + b % 5, 33, False, 2) for b in range(0, 16, 2)]
    notes += [(b / 2, b / 2 + 0.25, [36, 38, 42, 46, 49, 51, 45, 48, 50, 25][b % 10], 0, True, 9)
              for b in range(32)]
    return note_sequence(notes, qpm=qpm, time_signatures=time_signatures, tempos=tempos)


def _writer(ns):
    return lambda path: midi_io.write_midi(ns, path)


def test_dropped_files_give_the_python_clients_tokens(tmp_path):
    band = _band_piece(jitter=0.06)
    pickup = _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4)))
    meters = _band_piece(time_signatures=((0.0, 4, 4), (4.0, 3, 4), (7.0, 2, 4)))
    tempo = _band_piece(tempos=[(0.0, 100.0), (3.0, 140.0)])
    waltz = _band_piece(time_signatures=((0.0, 3, 4),))
    late = note_sequence([(9.0, 10.0, 70), (11.0, 12.5, 72)])  # starts in bar 3
    empty = note_sequence([])
    # Only parts outside the melody programs: a flute line over a string pad and a bass.
    flute = note_sequence([(i, i + 0.5, 72 + i % 5, 73, False, 0) for i in range(10)]
                          + [(0, 8, 60, 48, False, 1), (0, 8, 64, 48, False, 1)]
                          + [(i, i + 1, 40, 33, False, 2) for i in range(8)])
    cases = []
    for name, ns in [("band", band), ("pickup", pickup), ("meters", meters), ("tempo", tempo),
                     ("waltz", waltz), ("late", late), ("empty", empty), ("flute", flute)]:
        for rep_name, bars, window in [("melody", 2, 0), ("melody", 2, 1), ("melody", 2, 2),
                                       ("melody", 4, 0), ("drums", 2, 0), ("drums", 2, 2),
                                       ("trio", 2, 0), ("trio", 2, 1), ("melody", 2, 9)]:
            cases.append((f"{name}-{rep_name}{bars}-w{window}", rep_name, bars, window,
                          _writer(ns)))
    compare_files(tmp_path, cases)


def test_notes_ending_at_their_own_tick_are_read_as_python_reads_them(tmp_path):
    """A drum machine's hits (note-on and note-off at one tick) are read as one-tick notes by
    the command line; the page must read them so too, and read the same tokens."""
    from music_helpers import write_raw_midi
    hits = [(k * 48, kind, 9, 36 if k % 4 == 0 else 42) for k in range(32) for kind in
            ("on", "off")]
    line = [(k * 96, kind, 0, 60 + k % 5) for k in range(8) for kind in ("on", "off")]
    line += [(768, "on", 0, 67), (864, "on", 0, 67), (864, "off", 0, 67), (960, "off", 0, 67),
             (960, "on", 0, 69), (960, "off", 0, 69), (960, "off", 0, 69)]  # a second off
    both = sorted(hits + line, key=lambda e: e[0])
    cases = []
    for name, events in (("hits", hits), ("line", line), ("both", both)):
        for rep_name in ("melody", "drums"):
            cases.append((f"{name}-{rep_name}", rep_name, 2, 0,
                          lambda path, events=events: write_raw_midi(path, events)))
    compare_files(tmp_path, cases)
    tokens = get_representation("drums").from_note_sequence(str(tmp_path / "both-drums.mid"), 2)
    assert (tokens > 0).sum() == 16  # every hit of the first two bars


def test_unreadable_files_are_told_in_the_command_lines_words(tmp_path):
    """A file that cannot be read as MIDI: `hmvae interpolate` says 'cannot read MIDI file
    a.mid: it is truncated or corrupt: the file ends inside track 2 of 2', or that a .mid is a
    MusicXML score or an ABC tune and how to make MIDI of it; the page said "not a readable MIDI
    file (not a Standard MIDI File (no 'MThd' header))" or "the file ends inside a chunk: 200
    bytes, ...". Over the same bytes (and names) the page's message is Python's, word for word,
    and a cut-off download is refused by both, not read as far as it goes. A whole file timed
    in SMPTE frames is refused as such by both (Python said "corrupt or unsupported (Note end
    time must be greater than start time)")."""
    whole = midi_io.write_midi(_band_piece(), tmp_path / "whole.mid").read_bytes()
    first_track_end = 14 + 8 + int.from_bytes(whole[18:22], "big")
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE score-partwise>\n'
           b'<score-partwise version="4.0"><part-list/></score-partwise>\n')
    abc = b"%abc-2.1\n% a comment\n\nX: 1\nT:Tune\nK:C\nCDEF|\n"
    rmid_body = whole[:-20]
    chunks = b"data" + len(rmid_body).to_bytes(4, "little") + rmid_body
    files = {
        "notes.txt": b"not a midi file",
        "empty.mid": b"",
        "cut.mid": whole[:-20],
        "cut200.mid": whole[:200],
        "header.mid": whole[:10],
        "one_track.mid": whole[:first_track_end],
        "score.mid": xml,
        "bom_score.mid": b"\xef\xbb\xbf  \r\n" + xml,
        "plain.xml": b"<?xml version='1.0'?><notes/>",
        "plain.mid": b"<?xml version='1.0'?><notes/>",
        "score.mxl": b"PK\x03\x04" + bytes(40),
        "zipped.mid": b"PK\x03\x04" + bytes(40),
        "tune.mid": abc,
        "tune_no_number.mid": b"X: T\nK:C\n",
        "cut.rmi": b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"RMID" + chunks,
        # 25 frames a second, 40 ticks a frame, in place of the ticks per beat.
        "smpte.mid": whole[:12] + bytes([0x100 - 25, 40]) + whole[14:],
    }
    requests, want = [], []
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(midi_io.MidiReadError) as err:
            midi_io.read_midi(path)
        want.append((name, str(err.value)))
        requests.append({"op": "midi_to_tokens", "path": str(path), "representation": "melody",
                         "bars": 2})
    for (name, message), got in zip(want, music_cli(requests)):
        assert got.get("kind") == "NoWindowError" and got["error"] == message, (name, got)
    said = " ".join(message for _, message in want)
    for words in ("the file is empty", "the file ends inside track 5 of 5",
                  "the file ends after track 1 of the 5 its header announces",
                  "the file ends inside its header", "but a MusicXML file: export it as MIDI",
                  "but a compressed MusicXML file (.mxl)", "but an ABC tune: convert it",
                  "(no 'MThd' header)", "smpte.mid: SMPTE time division is not supported"):
        assert words in said, words


def test_a_melody_above_midi_108_is_told_as_python_does(tmp_path):
    high = midi_io.write_midi(note_sequence([(0, 1, 110), (1, 2, 112)]), tmp_path / "high.mid")
    (got,) = music_cli([{"op": "midi_to_tokens", "path": str(high), "representation": "melody",
                         "bars": 2}])
    assert "some notes lie outside MIDI pitch 21..108" in got["error"]  # as Python says


def _python_windows(ns, bars, instrument=None):
    """(start_bar, instrument, program, tokens) of every window find_window counts."""
    from hmvae_tf.music import melody
    out = []
    while True:
        try:
            w = melody.find_window(ns, bars, len(out), instrument=instrument)
        except NoWindowError:
            return out
        out.append((w.start_bar, w.instrument, w.program, w.tokens.tolist()))


def test_part_and_window_choices_are_the_python_clients(tmp_path):
    """The page's part and window choosers offer what `hmvae interpolate --instrument/--window`
    takes: the same windows (bars, part, program) in the same order, the same tokens for each,
    and a part for every pitched instrument that has a window, named as the client names it."""
    import pretty_midi

    from hmvae_tf.music import corpus, melody
    chorale = next(p for p in corpus.embedded_pieces() if p.kind == "musicxml")
    flute = note_sequence([(i, i + 0.5, 72 + i % 5, 73, False, 0) for i in range(10)]
                          + [(0, 8, 60, 48, False, 1), (0, 8, 64, 48, False, 1)])
    files = {"chorale": corpus.read_piece(chorale), "band": _band_piece(jitter=0.06),
             "pickup": _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4))),
             "meters": _band_piece(time_signatures=((0.0, 4, 4), (4.0, 3, 4), (7.0, 2, 4))),
             "flute": flute}
    requests, expected, part_windows = [], [], {}
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        ns = midi_io.read_midi(path)  # the file's own instrument numbers
        parts = sorted(melody.ns_instruments(ns))
        for instrument in [None] + parts:
            want = _python_windows(ns, 2, instrument)
            if instrument is not None and want:
                part_windows.setdefault(name, {})[instrument] = len(want)
            requests.append({"op": "windows", "path": str(path), "representation": "melody",
                             "bars": 2, "instrument": instrument})
            expected.append(("windows", name, instrument, want))
            for k in sorted({0, len(want) // 2, len(want) - 1, len(want)}):
                requests.append({"op": "midi_to_tokens", "path": str(path),
                                 "representation": "melody", "bars": 2, "window": k,
                                 "instrument": instrument})
                expected.append(("tokens", name, instrument, want[k][3] if k < len(want) else None))
    answers = music_cli(requests)
    chorale_parts = None
    for (kind, name, instrument, want), got in zip(expected, answers):
        where = f"{name}, instrument {instrument}"
        if kind == "tokens":
            if want is None:
                assert got.get("kind") == "NoWindowError", (where, got)
            else:
                assert got.get("tokens", {}).get("melody") == want, where
            continue
        assert "windows" in got, (where, got)
        assert [(w["startBar"], w["instrument"], w["program"]) for w in got["windows"]] == \
            [w[:3] for w in want], where
        if instrument is None:
            # A part for each pitched instrument with windows of its own, named as Python does.
            assert {p["instrument"]: p["windows"] for p in got["parts"]} == \
                part_windows.get(name, {}), where
            for p in got["parts"]:
                assert p["name"] == pretty_midi.program_to_instrument_name(p["program"])
            if name == "chorale":
                chorale_parts = got["parts"]
    # The chorale is the case the choosers are for: several voices, the busiest one changing.
    assert chorale_parts is not None and len(chorale_parts) >= 4


def test_drum_and_trio_windows_are_the_python_clients(tmp_path):
    """The window chooser of drum and trio models lists as many windows as `--window` counts,
    each with the tokens Python gives it; an instrument applies to melody models only."""
    path = tmp_path / "band.mid"
    midi_io.write_midi(_band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4))), path)
    requests, expected = [], []
    for rep_name in ("drums", "trio"):
        rep = get_representation(rep_name)
        want = []
        while True:
            try:
                tokens = rep.from_note_sequence(str(path), 2, window_index=len(want))
            except NoWindowError:
                break
            want.append({t: (tokens[:, k] if rep.multitrack else tokens).tolist()
                         for k, t in enumerate(rep.tracks)})
        assert want, rep_name
        requests.append({"op": "windows", "path": str(path), "representation": rep_name,
                         "bars": 2})
        requests += [{"op": "midi_to_tokens", "path": str(path), "representation": rep_name,
                      "bars": 2, "window": k} for k in range(len(want))]
        expected.append((rep_name, want))
    requests.append({"op": "windows", "path": str(path), "representation": "drums", "bars": 2,
                     "instrument": 0})
    answers = iter(music_cli(requests))
    for rep_name, want in expected:
        listed = next(answers)
        assert len(listed["windows"]) == len(want) and listed["parts"] == [], rep_name
        assert [w["startBar"] for w in listed["windows"]] == sorted(
            w["startBar"] for w in listed["windows"])
        for k, tokens in enumerate(want):
            assert next(answers).get("tokens") == tokens, (rep_name, k)
    assert "melody models only" in next(answers)["error"]


def test_a_long_file_is_read(tmp_path):
    """A file of 140,000 notes (a long piece) gives the Python client's tokens; the page's
    reader used to fail with "Maximum call stack size exceeded" (a spread of every note)."""
    notes = [(t / 4, t / 4 + 0.2, [36, 42][k] if k else 60 + t % 12, 0, k == 1, 9 * k)
             for k in range(2) for t in range(70_000)]
    # Written once (most of this test's time), read as each representation.
    long_file = _writer(note_sequence(notes))(tmp_path / "long.mid")
    compare_files(tmp_path, [(f"long-{rep}", rep, 2, 3,
                              lambda path: shutil.copyfile(long_file, path))
                             for rep in ("melody", "drums")])


def test_a_riff_midi_file_gives_the_python_clients_tokens(tmp_path):
    """RMID (a Standard MIDI File in a RIFF 'data' chunk, after an odd-sized one) is read as the
    file inside, as hmvae_tf.music.midi_io reads it."""
    def rmid(path):
        body = midi_io.write_midi(_band_piece(), tmp_path / "plain.mid").read_bytes()
        info = b"INFO" + (3).to_bytes(4, "little") + b"abc" + b"\0"  # padded to even size
        chunks = info + b"data" + len(body).to_bytes(4, "little") + body
        path.write_bytes(b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"RMID" + chunks)
    compare_files(tmp_path, [("rmid", "melody", 2, 0, rmid), ("rmid-trio", "trio", 2, 0, rmid),
                             ("rmid-drums", "drums", 2, 0, rmid)])


def test_windows_of_a_short_file_count_its_silent_bars_as_python(tmp_path):
    """A file shorter than the model's window is padded with silence; the page's window chooser
    says how many bars are silent (it said only "bars 1-16" for one bar of music), counted as
    find_window's silent_bars that `hmvae interpolate` prints."""
    from hmvae_tf.music import melody
    requests, want = [], []
    for beats in (3, 6, 13):  # music in bars 1, 1-2 and 1-4
        path = tmp_path / f"short{beats}.mid"
        midi_io.write_midi(note_sequence([(b, b + 1, 60 + b % 7) for b in range(beats)]), path)
        ns = midi_io.read_midi(path)
        for bars in (2, 16):
            want.append(melody.find_window(ns, bars, 0).silent_bars)
            requests.append({"op": "windows", "path": str(path), "representation": "melody",
                             "bars": bars})
    got = [answer["windows"][0]["silentBars"] for answer in music_cli(requests)]
    assert got == want and min(want) == 0 < max(want)


def _python_read_windows(path, rep_name, bars):
    """Every window `hmvae interpolate` reads from a file (music_adapter.read_window)."""
    from hmvae_tf.serving import music_adapter
    rep = get_representation(rep_name)
    out = []
    while True:
        try:
            out.append(music_adapter.read_window(str(path), rep, bars, len(out)))
        except NoWindowError:
            return out


def _windows_both_ways(tmp_path, files, cases, python_value):
    """Each NoteSequence of `files` written as MIDI and read for every (representation, bars)
    of `cases` by Python and by the page: ([((name, representation, bars), [python_value of
    each Python window])], [the page's answer to each, in the same order])."""
    requests, want = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        for rep_name, bars in cases:
            want.append(((name, rep_name, bars),
                         [python_value(w) for w in _python_read_windows(path, rep_name, bars)]))
            requests.append({"op": "windows", "path": str(path), "representation": rep_name,
                             "bars": bars})
    return want, music_cli(requests)


def test_windows_say_the_tempo_python_writes_them_at(tmp_path):
    """`hmvae interpolate` writes at the tempo in force at a.mid's window; the page ignored a
    file's tempo events (it wrote at the slider's). Each window the page lists carries the
    tempo Python reads for it: before and after a tempo change, one on a bar line, a pickup."""
    files = {
        "slow": _band_piece(qpm=90.0),
        "change": _band_piece(tempos=[(0.0, 100.0), (3.0, 140.0)]),
        "on_a_bar_line": _band_piece(tempos=[(0.0, 100.0), (2.4, 75.0)]),  # bar 2 at 100 qpm
        "pickup": _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4)),
                              tempos=[(0.0, 100.0), (1.2, 80.0), (4.2, 132.5)]),
    }
    want, pages = _windows_both_ways(tmp_path, files, [("melody", 2), ("drums", 2), ("trio", 2)],
                                     lambda w: w.qpm)
    want = [(name, rep_name, qpms) for (name, rep_name, _), qpms in want]
    for (name, rep_name, qpms), got in zip(want, pages):
        assert qpms, (name, rep_name)
        assert [w["qpm"] for w in got["windows"]] == pytest.approx(qpms, abs=1e-9), \
            (name, rep_name)
    changing = {name: set(qpms) for name, rep_name, qpms in want if rep_name == "melody"}
    assert changing["slow"] == {90.0} and len(changing["change"]) == 2
    assert len(changing["on_a_bar_line"]) == 2 and len(changing["pickup"]) >= 2, changing


def _python_label(where):
    """The bars and silence of a window line `hmvae interpolate` prints (read_window's where),
    with the page's en dash in bar ranges: what the page's window chooser must say."""
    import re
    bars = re.match(r"window \d+: (bars? \d+(?:-\d+)?)", where).group(1)
    lead = re.search(r"; (bars? \d+(?:-\d+)? (?:is|are) read as silence, the window's first "
                     r"note is in bar \d+)", where)
    silence = re.search(r"; ((?:the music|the window's)[^;]*)", where)
    text = (bars + (f"; {lead.group(1)}" if lead else "")
            + (f"; {silence.group(1)}" if silence else ""))
    return re.sub(r"(\d)-(\d)", "\\1–\\2", text)


def _labels_and_python(files, cases, tmp_path):
    """[(where, page labels, Python's labels)] of each file's windows for each (rep, bars)."""
    requests, want = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        for rep_name, bars in cases:
            wheres = [w.where for w in _python_read_windows(path, rep_name, bars)]
            if not wheres:
                continue
            want.append(((name, rep_name, bars), [_python_label(w) for w in wheres]))
            requests.append({"op": "windows", "path": str(path), "representation": rep_name,
                             "bars": bars})
    return [(where, [w["label"] for w in got["windows"]], labels)
            for (where, labels), got in zip(want, music_cli(requests))]


def test_window_labels_number_bars_as_python_does(tmp_path):
    """The window chooser numbered 16-step grid bars ("bars 1–2" for the first window of a
    2/4 piece, whose first window is 4 of its bars); it now says the bars `hmvae interpolate`
    says (grid.ScoreBars): in 2/4, after two 3/4 bars, with a pickup (bar 0), and where the
    music of a short file ends, in the window line's words."""
    files = {
        "two_four": _band_piece(time_signatures=((0.0, 2, 4),)),
        "waltz_then_common": _band_piece(time_signatures=((0.0, 3, 4), (6.0, 4, 4))),
        "pickup": _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4))),
        "short_two_four": note_sequence([(b, b + 1, 60 + b) for b in range(3)],
                                        time_signatures=((0.0, 2, 4),)),
    }
    compared = _labels_and_python(files, [("melody", 2), ("melody", 4), ("drums", 2),
                                          ("trio", 2)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    first = {where: labels[0] for where, _, labels in compared}
    assert first[("two_four", "melody", 2)] == "bars 1–4"
    assert first[("waltz_then_common", "melody", 2)] == "bars 3–4"
    assert first[("pickup", "melody", 2)] == "bars 0–1"
    assert any("the music ends in bar" in label for *_, labels in compared
               for label in labels)  # a short file's end was compared


def test_a_window_that_starts_before_the_music_is_labelled_as_python_does(tmp_path):
    """A file whose parts enter after empty bars: window 0 starts on them, and the window line
    of `hmvae interpolate` says which bars it reads as silence; the page said only the bars."""
    late = [(8 + b, 9 + b, 60 + b % 5, 5) for b in range(8)]  # bars 3-4 (and 2/4: 5-8)
    late += [(8 + b, 9 + b, 36 + b % 5, 33, False, 1) for b in range(8)]
    late += [(8 + b, 8.25 + b, 36, 0, True) for b in range(8)]
    files = {"late": note_sequence(late),
             "late_two_four": note_sequence(late, time_signatures=((0.0, 2, 4),))}
    compared = _labels_and_python(files, [("melody", 2), ("melody", 16), ("drums", 2),
                                          ("trio", 16)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    first = {where: labels[0] for where, _, labels in compared}
    assert first[("late", "melody", 2)] == (
        "bars 2–3; bar 2 is read as silence, the window's first note is in bar 3")
    assert first[("late", "trio", 16)].startswith(
        "bars 1–16; bars 1–2 are read as silence, the window's first note is in bar 3; ")
    assert "bars 3–4 are read as silence" in first[("late_two_four", "melody", 2)]


def test_a_window_within_one_bar_is_labelled_as_python_does(tmp_path):
    """A 2-bar window lies within one 4/2 bar: the page said "bars 1–1" where `hmvae
    interpolate` says "bar 1", and nothing where it says the rest of the window is silence
    (no whole bar of the score is silent when the music ends in the window's one bar)."""
    drum_hits = lambda beats: [(b, b + 0.25, 36, 0, True, 9) for b in beats]  # noqa: E731
    files = {
        "four_two": note_sequence([(b, b + 1, 60 + b % 7) for b in range(16)] + drum_hits(
            range(16)) + [(b, b + 2, 36, 33, False, 1) for b in range(0, 16, 2)],
                                  time_signatures=((0.0, 4, 2),)),
        "short_four_two": note_sequence([(b, b + 1, 60 + b) for b in range(3)] + drum_hits(
            range(3)) + [(0, 3, 36, 33, False, 1)], time_signatures=((0.0, 4, 2),)),
    }
    compared = _labels_and_python(files, [("melody", 2), ("melody", 4), ("drums", 2),
                                          ("trio", 2)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    labels = {label for *_, want in compared for label in want}
    assert "bar 1" in labels, labels
    assert "bar 1; the music ends in bar 1, the rest of the window is silence" in labels, labels


def test_a_window_cut_short_by_a_meter_change_is_labelled_as_python_does(tmp_path):
    """A window padded with silence at a meter change (windows do not cross one): the page
    said "the music ends in bar 4" where the music goes on in the next section; it now says,
    as `hmvae interpolate`, that the window's 4/4 section ends there and the rest is read as
    silence."""
    drum_hits = lambda beats: [(b, b + 0.25, 36, 0, True, 9) for b in beats]  # noqa: E731
    files = {  # four 4/4 bars, then 3/4 (off the grid) and 2/4 sections
        "meters": note_sequence([(b, b + 1, 60 + b % 5) for b in range(30)] + drum_hits(
            range(30)) + [(b, b + 2, 36, 33, False, 1) for b in range(0, 30, 2)],
                                time_signatures=((0.0, 4, 4), (16.0, 3, 4), (22.0, 2, 4)))}
    files["waltz_end"] = note_sequence([(b, b + 1, 60 + b % 5) for b in range(10)]
                                       + drum_hits(range(10)) + [(b, b + 2, 36, 33, False, 1)
                                                                 for b in range(0, 10, 2)],
                                       time_signatures=((0.0, 4, 4), (8.0, 3, 4)))
    compared = _labels_and_python(files, [("melody", 2), ("melody", 4), ("drums", 4),
                                          ("trio", 4), ("melody", 16)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    labels = [label for *_, want in compared for label in want]
    assert any("section ends in bar" in label and "read as silence" in label
               for label in labels), labels


def test_a_window_ending_in_the_next_sections_bars_is_labelled_as_python_does(tmp_path):
    """4/4 for two and a half bars, then 2/4 (and a 4/4 bar and a half, then 3/4): the window
    from bar 2 has no silent grid bar but ends in the next section's bar, which it reads as
    silence; `hmvae interpolate` says so and the page must too, not only "bars 2–4"."""
    drum_hits = lambda beats: [(b, b + 0.25, 36, 0, True, 9) for b in beats]  # noqa: E731
    notes = lambda count: ([(b, b + 1, 60 + b % 5) for b in range(count)]  # noqa: E731
                           + drum_hits(range(count))
                           + [(b, b + 1, 36, 33, False, 1) for b in range(count)])
    files = {"broken": note_sequence(notes(18), time_signatures=((0.0, 4, 4), (10.0, 2, 4))),
             "waltz": note_sequence(notes(12), time_signatures=((0.0, 4, 4), (6.0, 3, 4)))}
    compared = _labels_and_python(files, [("melody", 2), ("drums", 2), ("trio", 2)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    labels = [label for *_, want in compared for label in want]
    assert ("bars 2–4; the window's 4/4 section ends in bar 3, bar 4 is read as silence"
            in labels), labels
    assert ("bars 1–3; the window's 4/4 section ends in bar 2, bar 3 is read as silence"
            in labels), labels

def test_a_pickup_between_sections_is_labelled_as_python_does(tmp_path):
    """4/4, a 1/4 bar (after a 3/4 bar, as the Bach chorales write a fermata), then 4/4: the
    window of the second 4/4 section starts in the pickup's bar (grid.ScoreBars._music_step),
    not in the bar before it whose last beats its grid bar begins in."""
    drum_hits = lambda beats: [(b, b + 0.25, 36, 0, True, 9) for b in beats]  # noqa: E731
    beats = range(20)
    notes = ([(b, b + 1, 60 + b % 5) for b in beats] + drum_hits(beats)
             + [(b, b + 1, 36, 33, False, 1) for b in beats])
    files = {"pickup": note_sequence(notes, time_signatures=((0.0, 4, 4), (8.0, 1, 4),
                                                             (9.0, 4, 4))),
             "fermata": note_sequence(notes, time_signatures=((0.0, 4, 4), (8.0, 3, 4),
                                                              (11.0, 1, 4), (12.0, 4, 4)))}
    compared = _labels_and_python(files, [("melody", 2), ("drums", 2), ("trio", 2)], tmp_path)
    for where, got, want in compared:
        assert got == want, where
    for (name, *_), _, labels in compared:
        firsts = [label.split("–")[0] for label in labels]
        assert len(set(firsts)) == len(firsts), firsts  # no two windows from one bar
        assert {"pickup": "bars 3", "fermata": "bars 4"}[name] in firsts, firsts


def _no_window_messages(tmp_path, files, reps):
    """[(where, Python's NoWindowError message, the page's)] of each file for each model."""
    requests, want = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        for rep_name in reps:
            with pytest.raises(NoWindowError) as err:
                get_representation(rep_name).from_note_sequence(str(path), 2)
            want.append(((name, rep_name), str(err.value)))
            requests.append({"op": "midi_to_tokens", "path": str(path),
                             "representation": rep_name, "bars": 2})
    return [(where, message, got.get("error", got))
            for (where, message), got in zip(want, music_cli(requests))]


def test_a_drum_part_on_another_channel_is_told_as_python_does(tmp_path):
    """A file whose notes are all on pitched channels (a drum part written on channel 1): the
    page said only "no General MIDI drum hits on channel 10", where the command line tells to
    move the drum part to channel 10. Both say it, and neither does for a file that has
    channel-10 notes (of no drum class) or only notes off the grid (3/4)."""
    kit_on_piano = [(b / 2, b / 2 + 0.25, [36, 38, 42][b % 3], 0, False, 0) for b in range(16)]
    files = {
        "kit_on_piano": note_sequence(kit_on_piano),
        "band_without_drums": note_sequence(kit_on_piano + [(b, b + 1, 40, 33, False, 1)
                                                            for b in range(8)]),
        "unmapped_drums": note_sequence([(b, b + 0.5, 25, 0, True, 9) for b in range(8)]
                                        + [(b, b + 1, 60, 0, False, 0) for b in range(8)]),
        "waltz_only": note_sequence(kit_on_piano, time_signatures=((0.0, 3, 4),)),
    }
    hint = "if it has one, move it to channel 10"
    compared = _no_window_messages(tmp_path, files, ("drums", "trio"))
    for where, python, page in compared:
        assert (hint in page) == (hint in python), (where, python, page)
    told = {where for where, python, _ in compared if hint in python}
    assert ("kit_on_piano", "drums") in told and ("band_without_drums", "trio") in told, told
    assert ("unmapped_drums", "drums") not in told and ("waltz_only", "drums") not in told, told


def test_a_trio_without_melody_or_bass_names_the_programs_as_python_does(tmp_path):
    """A trio model given a file whose lead or bass is in the wrong program family: the page
    said only "needs a melody (programs 0-31), a bass (32-39) and drums"; the command line
    names the part that is missing, the programs it takes and the programs the file plays,
    which is what the user has to change. The page now says the same clauses."""
    import re
    drums = [(b / 2, b / 2 + 0.25, 36, 0, True, 9) for b in range(16)]
    lead = lambda program: [(b, b + 1, 72 + b % 5, program, False, 0)  # noqa: E731
                            for b in range(8)]
    bass = lambda program: [(b, b + 2, 40, program, False, 1)  # noqa: E731
                            for b in range(0, 8, 2)]
    files = {
        "sax_lead": note_sequence(lead(65) + bass(33) + drums),
        "piano_bass": note_sequence(lead(0) + bass(0) + drums),
        "strings_only": note_sequence(lead(48) + drums),
        "drums_only": note_sequence(drums),
    }
    clause = re.compile(r"it has no (?:melody|bass) notes \(a trio's [^)]*\)"
                        r"|its pitched parts play programs? [\d, ]+\d|it has no pitched notes")
    compared = _no_window_messages(tmp_path, files, ("trio",))
    for where, python, page in compared:
        assert clause.findall(page) == clause.findall(python), (where, python, page)
    said = {where[0]: clause.findall(python) for where, python, _ in compared}
    assert said["sax_lead"] == ["it has no melody notes (a trio's melody is programs 0-31)",
                                "its pitched parts play programs 33, 65"], said
    assert said["drums_only"][-1] == "it has no pitched notes", said
    assert len(said["strings_only"]) == 3, said


def test_the_tempo_slider_reaches_the_tempo_of_slow_and_fast_files(tmp_path):
    """A file taken into slot A sets the tempo slider to its window's tempo (the one `hmvae
    interpolate` writes at); the slider ran from 60 to 200 qpm, so a 40 or 250 qpm file's
    tempo pinned it at an end while the page played at another. The window tempi the page
    reads for such files (as Python reads them) lie within the slider's range."""
    import html.parser

    class Slider(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            if dict(attrs).get("id") == "qpm":
                self.range = float(dict(attrs)["min"]), float(dict(attrs)["max"])

    slider = Slider()
    with open(f"{WEB_ROOT}/index.html", encoding="utf-8") as f:
        slider.feed(f.read())
    requests, want = [], []
    for qpm in (40.0, 250.0):  # a slow chorale, a fast reel
        path = tmp_path / f"q{qpm:g}.mid"
        midi_io.write_midi(_band_piece(qpm=qpm), path)
        want += [w.qpm for w in _python_read_windows(path, "melody", 2)]
        requests.append({"op": "windows", "path": str(path), "representation": "melody",
                         "bars": 2})
    got = [w["qpm"] for answer in music_cli(requests) for w in answer["windows"]]
    assert got == pytest.approx(want) and {40.0, 250.0} <= set(got)
    low, high = slider.range
    assert all(low <= qpm <= high for qpm in got), (slider.range, sorted(set(got)))


def _midi_written(path):
    """What a written .mid holds, as Python reads it back: its time signatures, tempo events,
    and notes (pitch, program, drum or not, start and end in seconds), in a stable order."""
    ns = midi_io.read_midi(path)
    return ([(ts.time, ts.numerator, ts.denominator) for ts in ns.time_signatures],
            [(t.time, t.qpm) for t in ns.tempos],
            sorted((n.start_time, n.pitch, n.program, n.is_drum, n.end_time) for n in ns.notes))


def _assert_same_midi(got, want, where):
    (got_meters, got_tempos, got_notes), (meters, tempos, notes) = got, want
    assert [m[1:] for m in got_meters] == [m[1:] for m in meters], (where, got_meters, meters)
    assert [m[0] for m in got_meters] == pytest.approx([m[0] for m in meters], abs=1e-3), where
    assert len(got_tempos) == len(tempos), (where, got_tempos, tempos)
    assert np.array(got_tempos) == pytest.approx(np.array(tempos), abs=2e-3), where
    assert [n[1:4] for n in got_notes] == [n[1:4] for n in notes], where
    assert np.array([(n[0], n[4]) for n in got_notes]) == pytest.approx(
        np.array([(n[0], n[4]) for n in notes]), abs=5e-3), where


def test_downloads_take_slot_as_files_meter_tempi_and_programs_as_python(tmp_path):
    """`hmvae interpolate` writes its outputs in a.mid's window meter (when it fits the grid,
    else 4/4), at the window's tempo changes and with the programs of the parts it read; the
    page wrote every download in 4/4 at one tempo with program 0. The .mid the page writes for
    a window (as an interpolation output with the file in slot A) is Python's for it: time
    signature, tempo events, note times and programs; with the slider moved, at its tempo
    throughout in the window's meter, as --qpm."""
    from hmvae_tf.serving import music_adapter
    drums = [(b / 2, b / 2 + 0.25, [36, 38, 42][b % 3], 0, True, 9) for b in range(32)]
    trio_parts = ([(b, b + 0.5, 64 + b % 5, 4, False, 0) for b in range(16)]
                  + [(b, b + 1.5, 38 + b % 3, 34, False, 1) for b in range(0, 16, 2)] + drums)
    files = {
        "tempo_change": _band_piece(tempos=[(0.0, 100.0), (3.0, 140.0), (4.5, 75.0)]),
        "two_four": _band_piece(qpm=90.0, time_signatures=((0.0, 2, 4),)),
        "four_two": _band_piece(time_signatures=((0.0, 4, 2),)),  # window 1 starts mid-bar
        "pickup": _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4)),
                              tempos=[(0.0, 100.0), (1.2, 80.0)]),
        "flute": note_sequence([(b / 2, b / 2 + 0.5, 72 + b % 5, 73, False, 0)
                                for b in range(16)], qpm=132.0),
        "trio": note_sequence(trio_parts, tempos=[(0.0, 110.0), (2.5, 95.0)]),
    }
    requests, want = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        for rep_name in ("melody", "drums", "trio"):
            rep = get_representation(rep_name)
            for window, read in enumerate(_python_read_windows(path, rep_name, 2)[:3]):
                for qpm in (None, 150.0):
                    out = tmp_path / f"{name}_{rep_name}_{window}_{qpm}"
                    written = music_adapter.written(rep, read.tokens, read.timing, qpm,
                                                    programs=read.programs)
                    midi_io.write_midi(written, f"{out}.py.mid")
                    want.append(((name, rep_name, window, qpm), out))
                    requests.append({"op": "write_window", "path": str(path),
                                     "representation": rep_name, "bars": 2, "window": window,
                                     "qpm": qpm, "out": f"{out}.js.mid"})
    assert all(answer == {"ok": True} for answer in music_cli(requests))
    meters, changes, programs = set(), 0, set()
    for where, out in want:
        expected = _midi_written(f"{out}.py.mid")
        _assert_same_midi(_midi_written(f"{out}.js.mid"), expected, where)
        meters |= {m[1:] for m in expected[0]}
        changes += len(expected[1]) > 1
        programs |= {n[2] for n in expected[2] if not n[3]}
    # What was compared: other meters than 4/4, tempo changes, programs other than 0.
    assert {(2, 4), (4, 2), (4, 4)} <= meters and changes >= 3, (meters, changes)
    assert {4, 34, 73} <= programs, programs


def test_window_tempi_are_said_as_python_says_them(tmp_path):
    """The page said a window's first tempo only ("100 qpm") where `hmvae interpolate` says
    its changes too ("100 qpm, then 140 from bar 2", or a count and range for more than two):
    each window's tempo words are Python's (music_adapter.tempo_text), bars numbered as the
    score numbers them (2/4, a pickup)."""
    files = {
        "steady": _band_piece(qpm=89.99991),
        "one_change": _band_piece(tempos=[(0.0, 100.0), (3.0, 140.0)]),
        "two_changes": _band_piece(tempos=[(0.0, 100.0), (3.0, 140.0), (4.5, 75.5)]),
        "many_changes": _band_piece(tempos=[(0.0, 100.0), (1.0, 110.0), (2.0, 120.0),
                                            (3.0, 90.0), (4.0, 132.25)]),
        "two_four": _band_piece(time_signatures=((0.0, 2, 4),),
                                tempos=[(0.0, 100.0), (3.0, 140.0)]),
        "pickup": _band_piece(time_signatures=((0.0, 1, 4), (1.0, 4, 4)),
                              tempos=[(0.0, 100.0), (1.2, 80.0), (4.2, 132.5)]),
    }
    want, pages = _windows_both_ways(
        tmp_path, files, [("melody", 2), ("melody", 4), ("drums", 2), ("trio", 2)],
        lambda w: w.tempo)
    said = set()
    for (where, tempi), got in zip(want, pages):
        assert tempi and [w["tempo"] for w in got["windows"]] == tempi, where
        said |= set(tempi)
    assert "90 qpm" in said and any(", then 140 from bar " in t for t in said), said
    assert any(t.count(" from bar ") == 2 for t in said), said
    assert any(" changes in bars " in t for t in said), said


def test_windows_count_what_they_leave_out_as_python_does(tmp_path):
    """`hmvae interpolate`'s window line counts the notes a melody window leaves out (outside
    MIDI 21..108) and the drum hits outside the 9 drum classes; the page's window chooser
    said nothing of them, so a missing cowbell or a piccolo's lost notes were a mystery.
    Each window's words for them are Python's."""
    import re
    high = note_sequence([(b, b + 1, [72, 110, 76, 112, 79][b % 5]) for b in range(12)]
                         + [(b / 2, b / 2 + 0.25, [36, 25, 42, 21, 38][b % 5], 0, True, 9)
                            for b in range(24)]
                         + [(b, b + 2, 40, 33, False, 1) for b in range(0, 12, 2)])
    files = {"band": _band_piece(), "high": high}
    clauses = re.compile(r"; \d+ (?:(?:melody|bass) )?notes? outside MIDI pitch [^;]*left out"
                         r"|; \d+ (?:(?:melody|bass) )?notes? starting with a higher one left "
                         r"out \([^)]*\)"
                         r"|; \d+ drum hits? \([^)]*\) left out: outside the \d+ drum classes"
                         r"|; other parts not read: [^;]*")
    requests, want = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        for rep_name, instrument in (("melody", None), ("melody", 1), ("melody", 0),
                                     ("drums", None), ("trio", None)):
            wheres = _every_window_line(path, get_representation(rep_name), instrument)
            want.append(((name, rep_name, instrument),
                         ["".join(clauses.findall(w)) for w in wheres]))
            requests.append({"op": "windows", "path": str(path), "representation": rep_name,
                             "bars": 2, "instrument": instrument})
    said = set()
    for (where, left), got in zip(want, music_cli(requests)):
        assert left and [w["leftOut"] for w in got["windows"]] == left, where
        said |= set(left)
    text = " ".join(said)
    assert "; 1 note outside" in text and re.search(r"; [2-9] notes outside MIDI pitch", text)
    assert "(pitches 21, 25) left out: outside the 9 drum classes" in text, said
    assert "1 drum hit (pitch 25)" in text, said


def test_windows_count_the_notes_a_second_voice_loses_as_python_does(tmp_path):
    """A melody keeps the highest note of each onset: `hmvae interpolate`'s line counts the
    others it leaves out (a left hand, a chord's lower notes); the page's chooser says so in
    the same words."""
    import re
    right = [(b / 2, b / 2 + 0.5, 72 + b % 5) for b in range(32)]
    left = [(b, b + 1, 48 + b % 3) for b in range(0, 16, 2)]
    chords = [(b, b + 1, p, 0, False, 1) for b in range(16) for p in (60, 64, 67)]
    path = tmp_path / "piano.mid"
    midi_io.write_midi(note_sequence(right + left + chords), path)
    clause = re.compile(r"; \d+ notes? starting with a higher one left out \([^)]*\)")
    requests, want = [], []
    for instrument in (None, 0, 1):
        wheres = _every_window_line(path, MEL_REP, instrument)
        want.append(["".join(clause.findall(w)) for w in wheres])
        requests.append({"op": "windows", "path": str(path), "representation": "melody",
                         "bars": 2, "instrument": instrument})
    for left_out, got in zip(want, music_cli(requests)):
        assert [w["leftOut"] for w in got["windows"]] == left_out
    assert want[1][0] == "; 4 notes starting with a higher one left out (a melody takes the " \
                         "highest)" and want[2][0].startswith("; 16 notes")


def test_trio_windows_count_what_their_melody_and_bass_leave_out_as_python_does(tmp_path):
    """A trio's melody and bass are one voice each, the highest: `hmvae interpolate`'s line
    counts, per part, the notes that start with a higher one (a comping piano's chords, an
    octave-doubled bass) and those outside MIDI 21..108, in a melody line's words; the page's
    chooser says the same."""
    import re
    from hmvae_tf.serving import music_adapter
    chords = [(b, b + 1, p, 0, False, 0) for b in range(8) for p in (60, 64, 67)]
    high = [(b + 0.5, b + 1, 110, 0, False, 0) for b in range(0, 8, 4)]
    octaves = [(b, b + 1, p, 33, False, 1) for b in range(0, 8, 2) for p in (36, 48)]
    drums = [(b / 2, b / 2 + 0.25, 36, 0, True, 9) for b in range(16)]
    path = tmp_path / "band.mid"
    midi_io.write_midi(note_sequence(chords + high + octaves + drums), path)
    rep = get_representation("trio")
    clause = re.compile(r"; \d+ (?:melody|bass) notes? (?:starting with a higher one|outside "
                        r"MIDI pitch)[^;]*")
    wheres = []
    while True:
        try:
            wheres.append(music_adapter.read_window(str(path), rep, 1, len(wheres)).where)
        except NoWindowError:
            break
    want = ["".join(clause.findall(w)) for w in wheres]
    [got] = music_cli([{"op": "windows", "path": str(path), "representation": "trio",
                        "bars": 1}])
    assert [w["leftOut"] for w in got["windows"]] == want
    assert want[0] == ("; 1 melody note outside MIDI pitch 21..108 left out; 8 melody notes "
                       "starting with a higher one left out (a melody takes the highest); 2 "
                       "bass notes starting with a higher one left out (a bass takes the "
                       "highest)"), want


def test_trio_windows_name_the_parts_they_do_not_read_as_python_does(tmp_path):
    """A pop song's lead is often a synth (program 80), outside a trio's melody programs 0-31:
    the trio then took the piano as its melody and dropped the lead and the strings without a
    word. `hmvae interpolate`'s line names the pitched parts a trio window does not read (by
    track name when it is the part's own, not a General MIDI name), and the page's chooser says
    the same."""
    import re

    import pretty_midi
    from hmvae_tf.serving import music_adapter

    def song(path, parts):
        pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        for name, program, is_drum, notes in parts:
            inst = pretty_midi.Instrument(program, is_drum, name)
            inst.notes += [pretty_midi.Note(90, p, b / 2, b / 2 + 0.4) for b, p in notes]
            pm.instruments.append(inst)
        pm.write(str(path))
        return str(path)

    lead = ("Lead Synth", 80, False, [(b, 72 + b % 5) for b in range(16)])
    piano = ("Piano", 0, False, [(b, 60 + b % 3) for b in range(0, 16, 2)])
    strings = ("String Ensemble 1", 48, False, [(b, 67) for b in range(0, 16, 4)])
    bass = ("Bass", 34, False, [(b, 36 + b % 2) for b in range(0, 16, 2)])
    kit = ("Drums", 0, True, [(b, 36) for b in range(16)])
    files = {"pop": song(tmp_path / "pop.mid", [lead, bass, piano, strings, kit]),
             "band": song(tmp_path / "band.mid", [piano, bass, kit])}
    clause = re.compile(r"; other parts not read: [^;]*")
    want = {}
    for name, path in files.items():
        wheres = []
        while True:
            try:
                wheres.append(music_adapter.read_window(path, get_representation("trio"), 2,
                                                        len(wheres)).where)
            except NoWindowError:
                break
        want[name] = ["".join(clause.findall(w)) for w in wheres]
    got = music_cli([{"op": "windows", "path": path, "representation": "trio", "bars": 2}
                     for path in files.values()])
    for name, page in zip(files, got):
        assert [w["leftOut"] for w in page["windows"]] == want[name], name
    assert want["pop"] == ["; other parts not read: instrument 0 'Lead Synth' (program 80), 3 "
                           "(program 48) (a trio reads one melody part, programs 0-31, and one "
                           "bass part, 32-39)"] * 3, want
    assert want["band"] == [""] * 3, want


def test_files_without_the_window_are_told_in_the_command_lines_words(tmp_path):
    """A file with no usable window, or a window number past its windows: `hmvae interpolate`
    says '<file>: no usable drums for a 2-bar model: no 2-bar drum window: it has no drum
    notes (channel 10) of the 9 drum classes (meters in file: 4/4)'; the page said the same in
    other words ("no 2-bar drum window (no General MIDI drum hits on channel 10)", "the file
    has no notes"). The page's messages are now the command line's, word for word."""
    from hmvae_tf.serving import music_adapter
    drums = [(b / 2, b / 2 + 0.25, 36, 0, True, 9) for b in range(16)]
    files = {
        "empty": note_sequence([]),
        "waltz": note_sequence([(b, b + 1, 60) for b in range(8)] + drums,
                               time_signatures=((0.0, 3, 4),)),
        "waltz_then_common": note_sequence([(b, b + 1, 60) for b in range(12)],
                                           time_signatures=((0.0, 3, 4), (6.0, 4, 4))),
        "drums_only": note_sequence(drums),
        "high": note_sequence([(0, 1, 110), (1, 2, 112)]),
        "unmapped": note_sequence([(b, b + 0.5, 25, 0, True, 9) for b in range(8)]
                                  + [(b, b + 1, 60, 0, False, 0) for b in range(8)]),
        "sax": note_sequence([(b, b + 1, 72, 65, False, 0) for b in range(8)]
                             + [(b, b + 2, 40, 33, False, 1) for b in range(0, 8, 2)] + drums),
        "duet": note_sequence([(b, b + 1, 60 + b % 5, 0, False, 0) for b in range(8)]
                              + [(b, b + 1, 67, 0, False, 1) for b in range(4)] + drums),
        "band": _band_piece(),
    }
    requests, want = [], []
    for name, ns in files.items():
        path = str(tmp_path / f"{name}.mid")
        midi_io.write_midi(ns, path)
        for rep_name, window, instrument, shift in (
                ("melody", 0, None, False), ("melody", 4, None, False), ("melody", 3, 1, False),
                ("melody", 0, 7, False), ("melody", 0, None, True), ("melody", 4, None, True),
                ("drums", 0, None, False), ("drums", 4, None, False), ("trio", 0, None, False),
                ("trio", 4, None, False)):
            try:
                music_adapter.read_input(path, get_representation(rep_name), 2, window,
                                         instrument, None, octave_shift=shift)
                continue
            except music_adapter.UnusableInput as err:
                want.append(((name, rep_name, window, instrument, shift), str(err)))
            requests.append({"op": "midi_to_tokens", "path": path, "representation": rep_name,
                             "bars": 2, "window": window, "instrument": instrument,
                             "octave_shift": shift})
    for (where, message), got in zip(want, music_cli(requests)):
        assert got.get("kind") == "NoWindowError" and got["error"] == message, where
    said = " ".join(message for _, message in want)
    for words in ("it has no notes", "does not fit the 16-steps-per-4/4-bar grid",
                  "but only 1 2-bar window exists (the parts in 3/4", "instrument 7 has no",
                  "asked for drum window 4", "asked for trio window 4", "no usable drums for",
                  "no usable melody+bass+drums for"):
        assert words in said, words


def test_melody_files_are_read_into_the_models_register_as_the_command_line_reads_them(
        tmp_path):
    """`hmvae interpolate` moves a melody line with notes outside MIDI 21..108 by whole
    octaves, then the window into MIDI 48..84, the register the model learned (saying "read 2
    octaves up (...) and written back down"), and moves its outputs back; the page read the
    line as it was (a piccolo's high notes left out, a bass line far below what the model
    knows) and wrote outputs there. Read as the page reads a file into a slot, every window
    has the command line's tokens, move and words, and the page writes a reconstruction back
    in the file's register as Python does."""
    import re
    from hmvae_tf.music import register
    from hmvae_tf.serving import music_adapter
    files = {
        "piccolo": note_sequence([(b / 2, b / 2 + 0.5, 98 + b % 13) for b in range(24)]),
        "bass_line": note_sequence([(b, b + 1, 28 + b % 12, 33, False, 0) for b in range(12)]),
        "middle": note_sequence([(b, b + 1, 60 + b % 12) for b in range(12)]),
        "above_midi": note_sequence([(b, b + 1, 110 + b % 6) for b in range(8)]),
        "band": _band_piece(),
    }
    moved = re.compile(r"; (\d+ notes? outside MIDI pitch [^;]*left out"
                       r"|\d+ notes? starting with a higher one left out \([^)]*\)"
                       r"|read \d+ octaves? [^;]*written back (?:up|down))")
    rep = get_representation("melody")
    requests, want = [], []
    for name, ns in files.items():
        path = str(tmp_path / f"{name}.mid")
        midi_io.write_midi(ns, path)
        for bars, instrument in ((2, None), (4, None), (2, 1)):
            reads = []
            while True:
                try:
                    reads.append(music_adapter.read_input(path, rep, bars, len(reads),
                                                          instrument, None, True))
                except music_adapter.UnusableInput:
                    break
            if not reads:
                continue
            want.append(((name, bars, instrument), reads))
            requests.append({"op": "windows", "path": path, "representation": "melody",
                             "bars": bars, "instrument": instrument, "octave_shift": True})
            read, octaves = reads[0]
            out = tmp_path / f"{name}_{bars}_{instrument}"
            midi_io.write_midi(music_adapter.written(rep, read.tokens, read.timing,
                                                     octaves=-octaves, programs=read.programs),
                               f"{out}.py.mid")
            requests.append({"op": "write_window", "path": path, "representation": "melody",
                             "bars": bars, "instrument": instrument, "octave_shift": True,
                             "out": f"{out}.js.mid"})
    answers = iter(music_cli(requests))
    shifts = set()
    for where, reads in want:
        got = next(answers)["windows"]
        assert len(got) == len(reads), where
        for k, (w, (read, octaves)) in enumerate(zip(got, reads)):
            assert w["tokens"]["melody"] == read.tokens.tolist(), (where, k)
            assert w["octaves"] == octaves, (where, k)
            assert w["leftOut"] + w["register"] == "".join(
                f"; {c}" for c in moved.findall(read.where)), (where, k)
            shifts.add(octaves)
        assert next(answers) == {"ok": True}
        out = tmp_path / "_".join(map(str, where))
        _assert_same_midi(_midi_written(f"{out}.js.mid"), _midi_written(f"{out}.py.mid"), where)
    # No move, a piccolo or a line above MIDI 108 down, a bass line up.
    assert min(shifts) < 0 < max(shifts) and 0 in shifts, shifts
    cases = [(a, b, n) for a in (-3, 0, 1) for b in (-1, 0, 2) for n in (1, 2, 3, 5, 8)]
    got = music_cli([{"op": "interpolation_octaves", "start": a, "end": b, "steps": n}
                     for a, b, n in cases])
    assert [g["octaves"] for g in got] == [register.interpolation_octaves(*c) for c in cases]


def test_the_whole_interpolation_download_is_the_command_lines_all_file(tmp_path):
    """`hmvae interpolate` also writes every output back to back as one <prefix>_all.mid (the
    per-step files concatenated: a.mid's meter, its tempi again at each output's start, its
    programs, each output moved back by its own octaves); the page offered only the per-step
    files. The page's one-file download of the same outputs holds Python's notes, tempi and
    meter, with the slider left at the file's tempo and moved."""
    from hmvae_tf.music import register
    from hmvae_tf.serving import music_adapter
    drums = [(b / 2, b / 2 + 0.25, [36, 38, 42][b % 3], 0, True, 9) for b in range(32)]
    trio_parts = ([(b, b + 0.5, 64 + b % 5, 4, False, 0) for b in range(16)]
                  + [(b, b + 1.5, 38 + b % 3, 34, False, 1) for b in range(0, 16, 2)] + drums)
    files = {  # a melody read moved down (a piccolo), in 2/4 with tempo changes; a trio
        "piccolo": note_sequence([(b / 2, b / 2 + 0.5, 98 + b % 13, 72, False, 0)
                                  for b in range(24)], time_signatures=((0.0, 2, 4),),
                                 tempos=[(0.0, 100.0), (3.0, 140.0)]),
        "trio": note_sequence(trio_parts, tempos=[(0.0, 110.0), (2.5, 95.0)]),
    }
    rng = np.random.default_rng(3)
    requests, want = [], []
    for name, ns in files.items():
        midi_io.write_midi(ns, tmp_path / f"{name}.mid")
    for name, rep_name in (("piccolo", "melody"), ("trio", "melody"), ("trio", "drums"),
                           ("trio", "trio")):
        path = tmp_path / f"{name}.mid"
        rep = get_representation(rep_name)
        read, octaves = music_adapter.read_input(str(path), rep, 2, 0, None, None, True)
        outputs = []
        for _ in range(4):
            if rep_name == "drums":
                outputs.append({"drums": random_drums(rng, 32)})
            else:
                outputs.append({t: random_melody(rng, 32) if t != "drums"
                                else random_drums(rng, 32) for t in rep.tracks})
        for column in outputs[-1].values():  # the last output ends in two beats of rest
            column[-8:] = 0
        moves = [-k for k in register.interpolation_octaves(octaves, 0, len(outputs))]
        for qpm in (None, 150.0):
            sequences = [music_adapter.written(
                rep, np.stack([o[t] for t in rep.tracks], -1) if rep.multitrack
                else o[rep.tracks[0]], read.timing, qpm, move, read.programs)
                for o, move in zip(outputs, moves)]
            out = tmp_path / f"{name}_{rep_name}_{qpm}"
            midi_io.write_midi(music_adapter.concatenate(sequences), f"{out}.py.mid")
            want.append(((name, rep_name, qpm), out, moves))
            requests.append({"op": "write_interpolation", "path": str(path),
                             "representation": rep_name, "bars": 2, "qpm": qpm,
                             "octave_shift": True, "out": f"{out}.js.mid",
                             "outputs": [{"tokens": {t: v.tolist() for t, v in o.items()},
                                          "octaves": move}
                                         for o, move in zip(outputs, moves)]})
    assert all(answer == {"ok": True} for answer in music_cli(requests))
    shifted = False
    for where, out, moves in want:
        expected = _midi_written(f"{out}.py.mid")
        _assert_same_midi(_midi_written(f"{out}.js.mid"), expected, where)
        assert mido.MidiFile(f"{out}.js.mid").length == pytest.approx(
            mido.MidiFile(f"{out}.py.mid").length, abs=0.01), where
        assert len(expected[1]) >= 4 or where[2], where  # each output's tempo changes
        shifted |= len(set(moves)) > 1
    assert shifted  # outputs moved by octaves of their own were compared


def test_piano_rolls_show_the_pitches_played_and_downloaded(tmp_path):
    """With the register box on, the page moves a melody into MIDI 48..84 for the model and
    its outputs back when played and downloaded; the piano rolls drew the notes as the model
    saw them, an octave or more from what played and downloaded. A slot's roll now holds the
    pitches the page writes for its window (the file's own: a piccolo high, a bass line low),
    and an interpolation point's roll the pitches its part of the run's download holds."""
    from hmvae_tf.music import register
    from hmvae_tf.serving import music_adapter
    files = {  # read moved down twice (a line above MIDI 108), down, and up
        "above_midi": note_sequence([(b, b + 1, 110 + b % 6) for b in range(8)]),
        "piccolo": note_sequence([(b / 2, b / 2 + 0.5, 98 + b % 13) for b in range(24)]),
        "bass_line": note_sequence([(b, b + 1, 28 + b % 12, 33, False, 0) for b in range(12)]),
    }
    rep = get_representation("melody")
    requests, cases = [], []
    for name, ns in files.items():
        path = tmp_path / f"{name}.mid"
        midi_io.write_midi(ns, path)
        read, octaves = music_adapter.read_input(str(path), rep, 2, 0, None, None, True)
        assert octaves, name  # the model sees the window in another octave
        window = {"path": str(path), "representation": "melody", "bars": 2,
                  "octave_shift": True}
        requests += [{"op": "roll_window", **window},
                     {"op": "write_window", **window, "out": str(tmp_path / f"{name}.js.mid")}]
        cases.append((name, ns, read.tokens))
    answers = iter(music_cli(requests))
    for name, ns, tokens in cases:
        roll = next(answers)
        assert next(answers) == {"ok": True}, name
        shown = [n["pitch"] for n in sorted(roll["notes"], key=lambda n: (n["start"], n["pitch"]))]
        written = [n[1] for n in _midi_written(tmp_path / f"{name}.js.mid")[2]]
        in_window = [n.pitch for n in sorted(ns.notes, key=lambda n: (n.start_time, n.pitch))
                     if n.start_time < 4.0 - 1e-6]  # 2 bars at 120 qpm
        assert shown == written == in_window, name
        assert shown != [t + 19 for t in tokens if t >= 2], name  # not the model's octave

    # Every point of an interpolation between the piccolo (read down) and a melody read as
    # written: each point's roll holds the pitches of its part of the run's one-file download.
    read, octaves = music_adapter.read_input(str(tmp_path / "piccolo.mid"), rep, 2, 0, None,
                                             None, True)
    rng = np.random.default_rng(5)
    outputs = [{"melody": random_melody(rng, 32).tolist()} for _ in range(4)]
    moves = [-k for k in register.interpolation_octaves(octaves, 0, len(outputs))]
    assert len(set(moves)) > 1  # points moved back by octaves of their own
    rolls = music_cli([{"op": "roll", "tokens": o, "octaves": k}
                       for o, k in zip(outputs, moves)]
                      + [{"op": "write_interpolation", "path": str(tmp_path / "piccolo.mid"),
                          "representation": "melody", "bars": 2, "octave_shift": True,
                          "out": str(tmp_path / "all.js.mid"),
                          "outputs": [{"tokens": o, "octaves": k}
                                      for o, k in zip(outputs, moves)]}])
    assert rolls.pop() == {"ok": True}
    shown = [n["pitch"] for roll in rolls
             for n in sorted(roll["notes"], key=lambda n: (n["start"], n["pitch"]))]
    assert shown == [n[1] for n in _midi_written(tmp_path / "all.js.mid")[2]]


def test_windows_after_a_meter_change_in_mid_bar_are_python_windows(tmp_path):
    """4/4 for two and a half bars, then 2/4: the 4/4 section's half bar and the 2/4 section's
    first grid bar had one grid bar number, so the page said the drum window of bars 4-7
    left out the snare roll (pitch 25) of the half bar, which it does not hold; and a 4/4
    half bar before 2/4 was labelled with the 2/4 section's bars. Each window's tokens,
    label and words for what it leaves out are Python's."""
    import re
    hits = lambda beats, pitch: [(b, b + 0.25, pitch, 0, True, 9) for b in beats]  # noqa: E731
    band = lambda beats: ([(b, b + 1, 60 + b % 12) for b in beats]  # noqa: E731
                          + [(b, b + 1, 36 + b % 5, 33, False, 1) for b in beats])
    files = {
        "broken_bar": note_sequence(band(range(18)) + hits(range(10), 36) + hits([9.5], 25)
                                    + hits(range(10, 18), 38),
                                    time_signatures=((0, 4, 4), (10, 2, 4))),
        "half_bar_first": note_sequence(band(range(10)) + hits(range(10), 38)
                                        + hits([2.5], 25),
                                        time_signatures=((0, 4, 4), (2, 2, 4))),
    }
    left_out = re.compile(r"; \d+ drum hits? \([^)]*\) left out: outside the \d+ drum classes")
    want, pages = _windows_both_ways(
        tmp_path, files, [("melody", 2), ("drums", 2), ("trio", 2), ("drums", 1)],
        lambda w: (_python_label(w.where), "".join(left_out.findall(w.where)),
                   np.asarray(w.tokens).T.tolist() if np.ndim(w.tokens) > 1
                   else [np.asarray(w.tokens).tolist()]))
    labels, said = set(), set()
    for (where, windows), got in zip(want, pages):
        assert windows and "windows" in got, (where, got)
        page = [(w["label"], w["leftOut"], list(w["tokens"].values())) for w in got["windows"]]
        assert page == windows, where
        labels |= {label for label, *_ in windows}
        said |= {left for _, left, _ in windows}
    assert "; 1 drum hit (pitch 25) left out: outside the 9 drum classes" in said, said
    assert "bars 4–7" in labels and ("bars 1–4; the window's 4/4 section ends in bar 1, bars 2–4 "
                                     "are read as silence") in labels, labels


def _every_window_line(path, rep, instrument) -> list[str]:
    """The command line's window line ("where") of each 2-bar window of a file, in order."""
    from hmvae_tf.serving import music_adapter

    wheres = []
    while True:
        try:
            wheres.append(music_adapter.read_window(str(path), rep, 2, len(wheres),
                                                    instrument).where)
        except NoWindowError:
            return wheres
