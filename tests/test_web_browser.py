"""End to end in headless Chromium: the page loads a converted model, samples and draws piano
rolls, interpolates (samples and dropped MIDI files), plays, downloads .mid, and decodes a
fixed latent vector to exactly the tokens of the SavedModel's `decode` signature.

Needs Debian's chromium (/usr/bin/chromium, or $HMVAE_CHROMIUM) and the page bundle (built
here from web/node_modules when missing); skips only when one of them cannot be had. Driven by
Python Playwright with the system browser (never `playwright install`). A screenshot goes to
tests/artifacts/web_page.png.
"""
import contextlib
import json
import os

import mido
import numpy as np
import pytest
import tensorflow as tf

from hmvae_tf import tfjs, web
from hmvae_tf.music import melody, midi_io, register
from hmvae_tf.music.representations import get_representation
from hmvae_tf.serving import music_adapter
from model_helpers import scale_melodies
from music_helpers import note_sequence
from web_helpers import CHROMIUM, CHROMIUM_ARGS, ensure_bundle

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")

if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's `chromium` package "
                "(apt-get install -y chromium chromium-driver) to run the browser test",
                allow_module_level=True)
_why = ensure_bundle()
if _why:
    pytest.skip(_why, allow_module_level=True)

try:
    from playwright.sync_api import sync_playwright
except ImportError as err:  # a setup error, not a reason to skip
    raise ImportError("the browser test drives Chromium with Python Playwright: "
                      "pip install playwright==1.65.2 (no `playwright install` needed)") from err


@contextlib.contextmanager
def chromium_page(**options):
    """A fresh page of headless Chromium (Playwright's new_page options), closed afterwards."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[a for a in CHROMIUM_ARGS if a != "--headless"])
        try:
            yield browser.new_page(**options)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(tiny_melody_export, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    config, _, saved_model = tiny_melody_export
    models = tmp / "models"
    tfjs.convert(saved_model, str(models / "mel_2bar"))
    server, url = web.serve_in_thread(models_dir=str(models), port=0, quiet=True)
    yield config, saved_model, url, tmp
    server.shutdown()
    server.server_close()


def pitch_name(pitch):
    """'C4' for MIDI pitch 60, the page's spelling."""
    return ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"][pitch % 12] + \
        str(pitch // 12 - 1)


def wait_ready(page, timeout=90_000):
    page.wait_for_function(
        "['ready', 'error'].includes(document.getElementById('status').dataset.state)",
        timeout=timeout)
    state = page.get_attribute("#status", "data-state")
    assert state == "ready", page.inner_text("#status")


def set_range(page, selector, value):
    page.eval_on_selector(selector, "(el, v) => { el.value = v; "
                          "el.dispatchEvent(new Event('input')); }", str(value))


DROP = """([files, selector]) => {
    const dt = new DataTransfer();
    for (const [bytes, name] of files) {
        dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'audio/midi'}));
    }
    document.querySelector(selector).dispatchEvent(
        new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def card_tokens(page, selector):
    return [json.loads(t) for t in page.eval_on_selector_all(
        selector, "cards => cards.map(c => c.dataset.tokens)")]


def saved_model_interpolation(sig, slots, n):
    """The SavedModel's argmax interpolation between the page's two slots, n points."""
    return sig["interpolate"](
        melody_a=np.repeat([slots[0]["melody"]], n, 0).astype(np.int32),
        melody_b=np.repeat([slots[1]["melody"]], n, 0).astype(np.int32),
        alpha=np.linspace(0, 1, n).astype(np.float32), temperature=tf.zeros([n]),
        seed=tf.zeros([n, 2], tf.int32))["melody"].numpy()


def test_page_end_to_end(served, tmp_path):
    config, saved_model, url, tmp = served
    sig = tf.saved_model.load(saved_model).signatures
    rep = get_representation("melody")
    requests, problems = [], []
    with chromium_page(viewport={"width": 1200, "height": 900}, accept_downloads=True) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.goto(url)
        wait_ready(page)
        assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == [
            "mel_2bar"]
        assert "cat-mel_2bar_small" in page.inner_text("#model-info")
        # What the page is for and what to press, before anything else.
        intro = page.inner_text("#intro")
        assert "Sample" in intro and "Interpolate" in intro and "MIDI" in intro, intro

        # A fixed latent vector: the browser's argmax decode is the SavedModel's, exactly.
        z = np.random.default_rng(11).normal(0, 1.5, (4, config.z_size)).astype(np.float32)
        got = page.evaluate("z => window.hmvae.decode(z, 0)", z.tolist())
        want = sig["decode"](z=z, temperature=tf.zeros([4]),
                             seed=tf.zeros([4, 2], tf.int32))["melody"].numpy()
        np.testing.assert_array_equal(np.array([g["melody"] for g in got]), want)
        single = page.evaluate("z => window.hmvae.decode(z, 0)", z[0].tolist())
        assert single["melody"] == want[0].tolist()

        # Sampling renders piano rolls with notes.
        set_range(page, "#temperature", 1.0)
        page.click("#sample")
        page.wait_for_function(
            "document.querySelectorAll('#sample-list canvas.pianoroll').length === 2")
        wait_ready(page)
        notes = page.eval_on_selector_all("#sample-list canvas.pianoroll",
                                          "cs => cs.map(c => Number(c.dataset.notes))")
        assert len(notes) == 2 and sum(notes) > 0
        painted = page.eval_on_selector("#sample-list canvas.pianoroll", """c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
              if (d[i + 2] > d[i] + 80 && d[i + 2] > d[i + 1] + 40) n++;  // note blue
            return n; }""")
        samples = card_tokens(page, "#sample-list .card")
        first_pitches = [n.pitch for n in
                         rep.to_note_sequence(np.array(samples[0]["melody"])).notes]
        first_notes = len(first_pitches)
        assert (painted > 0) == (first_notes > 0)
        # A screen reader hears what the picture shows: how many notes, from where to where.
        role, label = page.eval_on_selector("#sample-list canvas.pianoroll",
                                            "c => [c.getAttribute('role'), c.ariaLabel]")
        assert role == "img" and label == "piano roll, 2 bars: " + (
            f"{len(first_pitches)} notes, {pitch_name(min(first_pitches))} to "
            f"{pitch_name(max(first_pitches))}" if first_pitches else "no notes"), label

        # The two samples fill A and B; interpolate at temperature 0 = the SavedModel's.
        set_range(page, "#temperature", 0)
        page.click("#interpolate")
        page.wait_for_function(
            "document.querySelectorAll('#interp-list canvas.pianoroll').length === 5")
        wait_ready(page)
        slots = page.evaluate("['a', 'b'].map(s => window.hmvae.state.slots[s].tokens)")
        n = 5
        want = saved_model_interpolation(sig, slots, n)
        shown = card_tokens(page, "#interp-list .card")
        np.testing.assert_array_equal(np.array([s["melody"] for s in shown]), want)
        # Each point downloads under a name of its own, which says which run it came from,
        # built as `hmvae interpolate` builds its names (they used to end in "_").
        names = page.eval_on_selector_all("#interp-list a.download",
                                          "links => links.map(a => a.download)")
        assert names == [f"mel_2bar_interp_sample1_sample2_t0_run1_{i:02d}-of-05.mid"
                         for i in range(1, n + 1)], names

        # MIDI files: one opened on slot A, one dropped on slot B.
        melodies = scale_melodies(2, 32, seed=9)[..., 0]
        paths = [tmp_path / "a.mid", tmp_path / "b.mid"]
        for m, path, qpm in zip(melodies, paths, (90, 120)):
            rep.to_midi(m, path, qpm=qpm)
        page.set_input_files("#file-a", str(paths[0]))
        page.wait_for_function("window.hmvae.state.slots.a.label === 'a.mid'")
        page.evaluate("""([bytes, name]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'audio/midi'}));
            document.querySelector('#slot-b .slot-label').dispatchEvent(
                new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", [list(paths[1].read_bytes()), "b.mid"])
        page.wait_for_function("window.hmvae.state.slots.b.label === 'b.mid'")
        slots = page.evaluate("['a', 'b'].map(s => window.hmvae.state.slots[s].tokens)")
        for slot, path in zip(slots, paths):
            assert slot["melody"] == rep.from_note_sequence(str(path), 2).tolist()
        # A's tempo is the interpolation's (the slider shows it), as `hmvae interpolate` writes
        # at a.mid's; the page used to write at the slider's 120 whatever the file's.
        assert (page.input_value("#qpm"), page.inner_text("#qpm-value")) == ("90", "90")
        # The new interpolation is the SavedModel's between the two files. (Waiting for the
        # first card to merely change was flaky: a near-random model can reconstruct two
        # different tunes identically.)
        want = saved_model_interpolation(sig, slots, n)
        page.evaluate("document.querySelector('#interp-list .card').dataset.tokens = 'stale'")
        page.click("#interpolate")
        page.wait_for_function(
            "document.querySelector('#interp-list .card').dataset.tokens !== 'stale'")
        wait_ready(page)
        shown = card_tokens(page, "#interp-list .card")
        np.testing.assert_array_equal(np.array([s["melody"] for s in shown]), want)
        with page.expect_download() as info:
            page.click("#interp-list .card a.download")
        info.value.save_as(tmp_path / "interpolation.mid")
        assert info.value.suggested_filename == "mel_2bar_interp_a_b_t0_q90_run2_01-of-05.mid"
        assert midi_io.read_midi(tmp_path / "interpolation.mid").tempos[0].qpm == \
            pytest.approx(90, abs=1e-3)
        # The whole run in one file beside them, as `hmvae interpolate`'s <prefix>_all.mid:
        # every point back to back, written as its own download is.
        with page.expect_download() as info:
            page.click("#interp-all")
        info.value.save_as(tmp_path / "all.mid")
        assert info.value.suggested_filename == "mel_2bar_interp_a_b_t0_q90_run2_all.mid"
        reads = [music_adapter.read_input(str(p), rep, 2, 0, None, None, True) for p in paths]
        moves = register.interpolation_octaves(reads[0][1], reads[1][1], n)
        whole = music_adapter.concatenate(
            music_adapter.written(rep, np.array(s["melody"]), reads[0][0].timing, None, -k,
                                  reads[0][0].programs) for s, k in zip(shown, moves))
        got, want_notes = (sorted((note.start_time, note.pitch, note.program, note.end_time)
                                  for note in ns.notes)
                           for ns in (midi_io.read_midi(tmp_path / "all.mid"), whole))
        assert [g[1:3] for g in got] == [w[1:3] for w in want_notes] and want_notes
        np.testing.assert_allclose([(g[0], g[3]) for g in got],
                                   [(w[0], w[3]) for w in want_notes], atol=5e-3)

        # A two-part file: the slot offers both parts and every window; choosing one takes
        # what `hmvae interpolate --instrument --window` takes.
        duet = note_sequence([(b / 2, b / 2 + 0.5, 72 + b % 5, 0, False, 0) for b in range(24)]
                             + [(b, b + 1, 55 + b % 3, 0, False, 1) for b in range(12)])
        duet_path = tmp_path / "duet.mid"
        midi_io.write_midi(duet, duet_path)
        page.set_input_files("#file-a", str(duet_path))
        page.wait_for_function("window.hmvae.state.slots.a.label === 'duet.mid'")
        assert page.is_visible("#part-a") and page.is_visible("#window-a")
        parts = page.eval_on_selector_all("#part-a option", "os => os.map(o => o.value)")
        assert parts == ["", "0", "1"]
        busiest = melody.find_window(str(duet_path), 2)
        slot_tokens = "window.hmvae.state.slots.a.tokens.melody"
        assert page.evaluate(slot_tokens) == busiest.tokens.tolist()
        page.select_option("#part-a", "1")
        want = melody.find_window(str(duet_path), 2, instrument=1)
        assert want.instrument == 1 and want.tokens.tolist() != busiest.tokens.tolist()
        page.wait_for_function(f"JSON.stringify({slot_tokens}) === "
                               f"'{json.dumps(want.tokens.tolist(), separators=(',', ':'))}'")
        windows = page.eval_on_selector_all("#window-a option", "os => os.map(o => o.text)")
        assert windows[:2] == ["bars 1–2", "bars 2–3"] and len(windows) == 2
        page.select_option("#window-a", "1")
        want = melody.find_window(str(duet_path), 2, 1, instrument=1)
        page.wait_for_function(f"JSON.stringify({slot_tokens}) === "
                               f"'{json.dumps(want.tokens.tolist(), separators=(',', ':'))}'")
        assert "bars 2–3" in page.inner_text("#status")
        # Its interpolations' files say the part and window, as `hmvae interpolate` says
        # --instrument and --window in its names.
        assert page.evaluate("[hmvae.state.slots.a.stem, hmvae.state.slots.a.tag]") == \
            ["duet", "_w1_i1"]
        # A sample sent to the slot has no parts to choose.
        page.click("#sample-list .card button.to-a")
        page.wait_for_function("window.hmvae.state.slots.a.label !== 'duet.mid'")
        assert not page.is_visible("#part-a")

        # .mid download: the file reads back as the card's tokens do through Python's own
        # MIDI round trip (MIDI cannot hold e.g. a note-off before the first note).
        with page.expect_download() as info:
            page.click("#sample-list .card a.download")
        saved = tmp_path / "download.mid"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "mel_2bar_sample_t1_02.mid"
        card_ns = rep.to_note_sequence(np.array(samples[0]["melody"]))
        assert rep.from_note_sequence(str(saved), 2).tolist() == \
            rep.from_note_sequence(card_ns, 2).tolist() or first_notes == 0
        ns = midi_io.read_midi(saved)
        assert len(ns.notes) == first_notes

        # Play, then stop.
        page.click("#sample-list .card button.play")
        page.wait_for_function(
            "document.querySelector('#sample-list .card button.play').textContent"
            ".includes('Stop')")
        page.click("#sample-list .card button.play")
        page.wait_for_function(
            "document.querySelector('#sample-list .card button.play').textContent"
            ".includes('Play')")

        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "web_page.png"), full_page=True)
        assert page.evaluate("window.hmvae.backend()") == "cpu"
        assert page.evaluate("window.hmvae.state.errors") == []
    assert not problems, problems
    outside = [r for r in requests if not r.startswith((url, "data:", "blob:"))]
    assert not outside, f"the page fetched from outside its server: {outside}"
    assert any(r.endswith("/models/mel_2bar/decode/model.json") for r in requests)
    weights = [r for r in requests if "/weights/" in r]
    assert len(weights) == len(set(weights)), "a shared weight file was fetched twice"


def test_server_serves_page_and_models_only(served):
    import urllib.error
    import urllib.request

    _, _, url, _ = served

    def get(path):
        with urllib.request.urlopen(url + path) as r:
            return r.status, r.headers.get("Content-Type"), r.read()

    assert get("")[0] == 200 and b"hmvae" in get("index.html")[2]
    status, ctype, body = get("models/index.json")
    assert status == 200 and ctype == "application/json"
    assert json.loads(body)["models"][0]["name"] == "mel_2bar"
    assert get("build/app.js")[1] == "text/javascript"
    for hidden in ("node_modules/", "package-lock.json", "models/../../../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            get(hidden)
        assert err.value.code == 404


def test_quick_choices_and_clicks_run_one_after_another(served, tmp_path):
    """Model loads and runs never overlap: of quick model choices only the last loads (no
    model is left undisposed), and Sample is disabled while a run is under way."""
    _, _, url, _ = served
    problems = []
    with chromium_page() as page:
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(url)
        wait_ready(page)
        loaded = page.evaluate("() => hmvae.tf.memory().numTensors")
        after = page.evaluate("""async () => {
            const loads = [1, 2, 3].map(() => hmvae.loadModel('mel_2bar'));
            await Promise.all(loads);
            return hmvae.tf.memory().numTensors;
        }""")
        assert after == loaded  # three loads at once used to keep three models
        during, count = page.evaluate("""async () => {
            const sample = document.getElementById('sample');
            sample.click();
            const during = await new Promise((r) => setTimeout(() => r(sample.disabled), 0));
            sample.click();  // disabled: does nothing
            await hmvae.state.work;
            return [during, document.querySelectorAll('#sample-list .card').length];
        }""")
        assert during and count == int(page.input_value("#count"))
        assert not page.is_disabled("#sample")
        # A new model starts counting again; single samples fill A, then B.
        labels = page.evaluate("""async () => {
            await hmvae.loadModel('mel_2bar');
            document.getElementById('count').value = '1';
            const seen = [];
            for (let i = 0; i < 3; i++) {
                document.getElementById('sample').click();
                await hmvae.state.work;
                seen.push(['a', 'b'].map((s) => hmvae.state.slots[s]?.label ?? null));
            }
            return seen;
        }""")
        assert labels == [["sample 1", None], ["sample 1", "sample 2"],
                          ["sample 1", "sample 2"]]
        # A changed while an interpolation runs: its result shows as the previous A and B's
        # (it used to show as the new ones').
        stale = page.evaluate("""async () => {
            document.getElementById('interpolate').click();
            while (document.getElementById('status').dataset.state !== 'busy') {
                await new Promise((r) => setTimeout(r, 0));
            }
            document.querySelector('#sample-list .card button.to-a').click();  // sample 3
            // Interpolate stays disabled until the run ends (→ A used to enable it).
            const during = document.getElementById('interpolate').disabled;
            await hmvae.state.work;
            return [hmvae.state.slots.a.label,
                    document.getElementById('interp-list').classList.contains('stale'),
                    document.querySelectorAll('#interp-list .card').length, during,
                    document.getElementById('interpolate').disabled];
        }""")
        assert stale == ["sample 3 (t=0.5)", True, int(page.input_value("#steps")), True, False]
        # A file dropped while a model loads goes into its slot once the model is there (it
        # used to be ignored without a word).
        path = tmp_path / "tune.mid"
        get_representation("melody").to_midi(scale_melodies(1, 32, seed=3)[0, :, 0], path)
        during, label = page.evaluate("""async (file) => {
            hmvae.loadModel('mel_2bar');
            await new Promise((r) => setTimeout(r, 0));
            const during = hmvae.model;
            (""" + DROP + """)([[file], '#slot-b']);
            await hmvae.state.work;
            return [during, hmvae.state.slots.b?.label ?? null];
        }""", [list(path.read_bytes()), path.name])
        assert during is None and label == "tune.mid"
    assert not problems, problems


def test_the_register_box_reads_files_as_written_when_off(served, tmp_path):
    """`hmvae interpolate --no_octave_shift` reads a file as written; the page always moved a
    melody into MIDI 48..84. Its "move into the model's register" box (on by default, saying
    what it does) reads the slots' files as written when off, and again moved when on, each
    time with the tokens and window line the command line reads (and keeps a chosen window)."""
    _, _, url, _ = served
    rep = get_representation("melody")
    files = {"piccolo.mid": note_sequence([(b / 2, b / 2 + 0.5, 98 + b % 13)
                                           for b in range(24)]),
             "bass.mid": note_sequence([(b, b + 1, 28 + b % 12, 33, False, 0)
                                        for b in range(12)])}
    paths = [midi_io.write_midi(ns, tmp_path / name) for name, ns in files.items()]

    def python(path, shift, window=0):
        read, octaves = music_adapter.read_input(str(path), rep, 2, window, None, None, shift)
        return read.tokens.tolist(), octaves

    def slots(page):
        return page.evaluate("""['a', 'b'].map((s) => [hmvae.state.slots[s].tokens.melody,
            hmvae.state.slots[s].octaves || 0,
            document.getElementById(`window-${s}`).selectedOptions[0].textContent])""")

    with chromium_page(viewport={"width": 1200, "height": 900}) as page:
        page.goto(url)
        wait_ready(page)
        assert page.is_visible("#register") and page.is_checked("#register")
        assert "--no_octave_shift" in page.get_attribute("label.register", "title")
        page.set_input_files("#file-a", str(paths[0]))
        page.wait_for_function("window.hmvae.state.slots.a?.label === 'piccolo.mid'")
        page.uncheck("#register")  # B's file is then read as written as well
        page.evaluate("() => hmvae.state.work")
        page.set_input_files("#file-b", str(paths[1]))
        page.wait_for_function("window.hmvae.state.slots.b?.label === 'bass.mid'")
        page.evaluate("() => hmvae.state.work")
        (a_tokens, a_octaves, a_text), (b_tokens, b_octaves, b_text) = slots(page)
        assert (a_tokens, a_octaves) == python(paths[0], False)
        assert (b_tokens, b_octaves) == python(paths[1], False)
        assert "octave" not in a_text + b_text and "left out" in a_text, (a_text, b_text)
        names = lambda: page.eval_on_selector_all(  # noqa: E731
            "#interp-list a.download, #interp-all", "links => links.map(a => a.download)")
        page.click("#interpolate")  # its files are named _noshift, as the command line's
        page.evaluate("() => hmvae.state.work")
        assert len(names()) == 6 and all("_t0.5_noshift_" in n for n in names()), names()
        page.select_option("#window-b", "1")
        page.check("#register")  # both files read again, moved; B keeps its window
        page.evaluate("() => hmvae.state.work")
        (a_tokens, a_octaves, a_text), (b_tokens, b_octaves, b_text) = slots(page)
        assert (a_tokens, a_octaves) == python(paths[0], True) and a_octaves < 0
        assert (b_tokens, b_octaves) == python(paths[1], True, window=1) and b_octaves > 0
        assert "written back up" in a_text and "written back down" in b_text, (a_text, b_text)
        assert python(paths[0], True) != python(paths[0], False)  # the box changed something
        # The rolls show what plays and downloads, not the model's octave: a slot its file's
        # window as written, an interpolation point its notes moved back by its own octaves.
        def roll_text(pitches):  # as a roll's aria-label says it
            return f"{len(pitches)} notes, {pitch_name(min(pitches))} to " \
                f"{pitch_name(max(pitches))}" if pitches else "no notes"

        def file_pitches(path, window):  # the window's notes in the file (2 s bars)
            return [n.pitch for n in midi_io.read_midi(path).notes
                    if 2 * window <= n.start_time < 2 * window + 4 - 1e-6]

        def rolls(selector):
            return [label.split(": ", 1)[1] for label in page.eval_on_selector_all(
                selector, "cs => cs.map(c => c.getAttribute('aria-label'))")]

        assert rolls("#slot-a canvas, #slot-b canvas") == [
            roll_text(file_pitches(paths[0], 0)), roll_text(file_pitches(paths[1], 1))]
        page.click("#interpolate")
        page.evaluate("() => hmvae.state.work")
        assert len(names()) == 6 and not any("noshift" in n for n in names()), names()
        a_read = music_adapter.read_input(str(paths[0]), rep, 2, 0, None, None, True)[0]
        moves = register.interpolation_octaves(a_octaves, b_octaves, 5)
        written = [music_adapter.written(rep, np.array(t["melody"]), a_read.timing, None, -k,
                                         a_read.programs)
                   for t, k in zip(card_tokens(page, "#interp-list .card"), moves)]
        assert rolls("#interp-list canvas") == [
            roll_text([n.pitch for n in ns.notes]) for ns in written]

        # A file with a window only when moved: with the box off, its slot said why but kept
        # the moved piece, which no longer matched the box. It now empties the slot, and the
        # box on again reads the file in again.
        high = midi_io.write_midi(note_sequence([(b / 2, b / 2 + 0.5, 110 + b % 7)
                                                 for b in range(16)]), tmp_path / "high.mid")
        page.set_input_files("#file-a", str(high))
        page.wait_for_function("window.hmvae.state.slots.a?.label === 'high.mid'")
        page.evaluate("() => hmvae.state.work")
        page.uncheck("#register")
        page.evaluate("() => hmvae.state.work")
        held = page.evaluate("""() => [hmvae.state.slots.a, hmvae.state.slots.b?.label,
            document.querySelector('#slot-a canvas').hidden,
            document.querySelector('#slot-a .choose').hidden]""")
        assert held == [None, "bass.mid", True, True], held
        assert page.is_disabled("#interpolate")
        problem = page.inner_text("#slot-a .slot-problem")
        assert problem.startswith("high.mid: no usable melody for a 2-bar model") and \
            "some notes lie outside MIDI pitch 21..108" in problem, problem
        page.check("#register")
        page.evaluate("() => hmvae.state.work")
        (a_tokens, a_octaves, _), _ = slots(page)
        assert (a_tokens, a_octaves) == python(high, True) and a_octaves < 0
        assert not page.is_visible("#slot-a .slot-problem")


def test_points_of_a_noshift_run_sent_to_a_and_b_keep_noshift_in_their_names(served, tmp_path):
    """A point of an interpolation between files read as written ("move into the model's
    register" off) sent to A or B lost `_noshift`: interpolations between such points were
    named as if read moved, unlike the files their notes came from."""
    _, _, url, _ = served
    paths = [midi_io.write_midi(note_sequence([(b / 2, b / 2 + 0.5, low + b % 9)
                                               for b in range(16)]), tmp_path / name)
             for name, low in (("high.mid", 86), ("low.mid", 40))]
    names = lambda page: page.eval_on_selector_all(  # noqa: E731
        "#interp-list a.download, #interp-all", "links => links.map(a => a.download)")
    with chromium_page() as page:
        page.goto(url)
        wait_ready(page)
        page.uncheck("#register")
        for slot, path in zip("ab", paths):
            page.set_input_files(f"#file-{slot}", str(path))
            page.wait_for_function(f"window.hmvae.state.slots.{slot}?.label === "
                                   f"'{os.path.basename(path)}'")
            page.evaluate("() => hmvae.state.work")
        page.click("#interpolate")
        page.evaluate("() => hmvae.state.work")
        assert all("_noshift_" in n for n in names(page)), names(page)
        page.click("#interp-list .card:nth-child(2) button.to-a")
        page.click("#interp-list .card:nth-child(4) button.to-b")
        page.wait_for_function("window.hmvae.state.slots.b.label.startsWith('interpolation 1')")
        page.click("#interpolate")
        page.evaluate("() => hmvae.state.work")
        run2 = names(page)
        assert len(run2) == 6 and all("_interp_interp1_2_interp1_4_" in n and "_noshift_" in n
                                      for n in run2), run2
        assert page.evaluate("window.hmvae.state.errors") == []


def written_as(path):
    """A .mid's meters and tempo events as (beat, ...) and its tracks' programs, as a player
    reads them (program changes count in tracks with no notes, which a NoteSequence drops)."""
    midi = mido.MidiFile(path)
    meters, tempos, programs = [], [], []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            beat = tick / midi.ticks_per_beat
            if msg.type == "time_signature":
                meters.append((beat, msg.numerator, msg.denominator))
            elif msg.type == "set_tempo":
                tempos.append((beat, round(mido.tempo2bpm(msg.tempo), 3)))
            elif msg.type == "program_change":
                programs.append(msg.program)
    return meters, tempos, programs


def test_a_point_sent_to_a_slot_keeps_its_meter_tempi_and_programs(served, tmp_path):
    """A point sent to A ("→ A") kept its notes but not the meter, tempi and programs its
    card plays and downloads with: interpolations from it came out 4/4 at one tempo with
    program 0. They now come out as from that card's download dropped on A."""
    _, _, url, _ = served
    # 2/4 at 100 qpm, 140 from beat 4 (inside the first 2-bar window), on a violin.
    tune = note_sequence([(b, b + 1, 60 + b % 7, 40) for b in range(12)], qpm=100,
                         time_signatures=((0.0, 2, 4),), tempos=[(0.0, 100.0), (2.4, 140.0)])
    other = note_sequence([(b, b + 1, 67 - b % 5) for b in range(12)])
    files = {name: [list(midi_io.write_midi(ns, tmp_path / name).read_bytes()), name]
             for name, ns in (("a.mid", tune), ("b.mid", other))}
    with chromium_page(accept_downloads=True) as page:
        page.goto(url)
        wait_ready(page)

        def drop(name, slot):
            page.evaluate(DROP, [[files[name]], f"#slot-{slot}"])
            page.wait_for_function(f"window.hmvae.state.slots.{slot}?.label === '{name}'")

        def interpolate():
            page.click("#interpolate")
            page.evaluate("() => hmvae.state.work")
            wait_ready(page)

        def download(selector, name):
            with page.expect_download() as info:
                page.click(selector)
            info.value.save_as(tmp_path / name)
            return tmp_path / name

        drop("a.mid", "a")
        drop("b.mid", "b")
        interpolate()
        # The point with the most notes: its download is a file slot A can take.
        notes = [sum(t >= 2 for t in c["melody"]) for c in card_tokens(page, "#interp-list .card")]
        point = f"#interp-list .card:nth-child({notes.index(max(notes)) + 1})"
        card = download(f"{point} a.download", "card.mid")
        assert written_as(card) == ([(0, 2, 4)], [(0, 100), (4, 140)], [40])
        files["card.mid"] = [list(card.read_bytes()), "card.mid"]

        page.click(f"{point} button.to-a")
        page.wait_for_function("window.hmvae.state.slots.a.label.startsWith('interpolation 1')")
        interpolate()
        sent = written_as(download("#interp-list .card a.download", "sent.mid"))
        drop("card.mid", "a")
        interpolate()
        dropped = written_as(download("#interp-list .card a.download", "dropped.mid"))
        assert sent == dropped == written_as(card), (sent, dropped)
        assert page.evaluate("window.hmvae.state.errors") == []


def test_three_dropped_files_and_a_long_roll(served, tmp_path):
    """Dropping three files fills A and B and names the third as left out (it used to vanish
    without a word); a file a slot cannot take says why in the slot; a short file's silent bars
    are named; "open .mid" works from the keyboard; a 16-bar roll fits a slot's width instead
    of scrolling; a phone-width screen stacks the slots."""
    _, _, url, _ = served
    rep = get_representation("melody")
    files = []
    for i, m in enumerate(scale_melodies(3, 32, seed=5)[..., 0]):
        path = tmp_path / f"tune{i}.mid"
        rep.to_midi(m, path)
        files.append([list(path.read_bytes()), path.name])
    with chromium_page(viewport={"width": 1200, "height": 900}) as page:
        page.goto(url)
        wait_ready(page)
        page.evaluate(DROP, [files, "body"])
        page.wait_for_function("(window.hmvae.state.slots.b || {}).label === 'tune1.mid'")
        assert page.evaluate("window.hmvae.state.slots.a.label") == "tune0.mid"
        status = page.inner_text("#status")
        assert "1 left out, tune2.mid" in status, status

        # A file the slot cannot take says why in the slot itself (the status line may be
        # scrolled away), and the slot keeps its piece; the next file it takes clears that.
        page.evaluate(DROP, [[[list(b"not MIDI"), "notes.txt"]], "#slot-a"])
        page.wait_for_selector("#slot-a .slot-problem", state="visible")
        problem = page.inner_text("#slot-a .slot-problem")
        # In `hmvae interpolate`'s words, naming the file once.
        assert problem == ("cannot read MIDI file notes.txt: not a Standard MIDI File "
                           "(no 'MThd' header)"), problem
        assert page.evaluate("window.hmvae.state.slots.a.label") == "tune0.mid"
        assert not page.is_visible("#slot-b .slot-problem")
        page.evaluate(DROP, [[files[2]], "#slot-a"])
        page.wait_for_function("window.hmvae.state.slots.a.label === 'tune2.mid'")
        assert not page.is_visible("#slot-a .slot-problem")
        # "open .mid" works from the keyboard: the file input takes the focus (its label
        # shows it); a display:none input could not. (That Space then opens the chooser is
        # the browser's part; pressing it here timed out now and then on a loaded machine.)
        assert page.evaluate("""() => { const input = document.getElementById('file-b');
            input.focus(); return document.activeElement === input
                && getComputedStyle(input.closest('label')).outlineStyle !== 'none'; }""")
        # A file read in a tab that runs no animation frames (hidden) still lands: it used to
        # wait for a frame, and every later action with it.
        page.evaluate("window.requestAnimationFrame = () => 0")
        page.set_input_files("#file-b", str(tmp_path / "tune1.mid"))
        page.wait_for_function("window.hmvae.state.slots.b.label === 'tune1.mid'", timeout=5000)
        # A file shorter than the model's 2 bars: the window chooser says the rest is silence.
        short = tmp_path / "short.mid"
        midi_io.write_midi(note_sequence([(b, b + 1, 60 + b) for b in range(3)]), short)
        page.evaluate(DROP, [[[list(short.read_bytes()), short.name]], "#slot-b"])
        page.wait_for_function("window.hmvae.state.slots.b.label === 'short.mid'")
        window = page.inner_text("#window-b option")
        assert window.startswith("bars 1–2; the music ends in bar 1, bar 2 is silence"), window
        # Windows are labelled with the score's bars, as `hmvae interpolate` says them: a 2/4
        # bar is half a grid bar (the page used to say "bars 1–2" for bars 1-4).
        duple = tmp_path / "duple.mid"
        midi_io.write_midi(note_sequence([(b, b + 1, 60 + b % 7) for b in range(12)],
                                         time_signatures=((0.0, 2, 4),)), duple)
        page.evaluate(DROP, [[[list(duple.read_bytes()), duple.name]], "#slot-b"])
        page.wait_for_function("window.hmvae.state.slots.b.label === 'duple.mid'")
        labels = page.eval_on_selector_all("#window-b option", "os => os.map(o => o.text)")
        assert [text.split(" · ")[0] for text in labels] == ["bars 1–4", "bars 3–6"], labels

        # 16 bars of a scale, drawn into a slot 400 px wide: every note, no overflow.
        width, notes, slot_width = page.evaluate("""() => {
            const canvas = document.querySelector('#slot-a canvas');
            const melody = [];
            for (let bar = 0; bar < 16; bar++) {
                for (let s = 0; s < 16; s++) melody.push(s % 4 === 0 ? 2 + 60 + bar : 1);
            }
            const drawn = hmvae.drawPianoRoll(canvas, {melody}, 256, 400);
            return [parseFloat(canvas.style.width), drawn,
                    document.getElementById('slot-a').clientWidth];
        }""")
        assert notes == 64
        assert width <= 400 < slot_width, (width, slot_width)

        # On a phone-width screen A and B stack, and nothing is wider than the page (the model
        # list and the slots' choosers stuck out); the rolls are redrawn to the new width
        # (they kept the width they were first drawn at, and scrolled).
        roll_width = "parseFloat(document.querySelector('#slot-b canvas').style.width)"
        wide_roll = page.evaluate(roll_width)
        page.set_viewport_size({"width": 375, "height": 740})
        page.wait_for_function(f"{roll_width} < {wide_roll}", timeout=5000)
        assert page.evaluate(f"{roll_width} <= document.getElementById('slot-b').clientWidth")
        page.set_viewport_size({"width": 1200, "height": 900})  # turned back
        page.wait_for_function(f"{roll_width} === {wide_roll}", timeout=5000)
        page.set_viewport_size({"width": 375, "height": 740})
        layout = page.evaluate("""() => {
            const [a, b] = ['slot-a', 'slot-b'].map(
                (id) => document.getElementById(id).getBoundingClientRect());
            const wide = [...document.querySelectorAll('select')].filter((s) => s.offsetParent)
                .filter((s) => s.getBoundingClientRect().right
                    > (s.closest('.slot') || document.body).getBoundingClientRect().right)
                .map((s) => s.id);
            return {stacked: b.top >= a.bottom, wide, overflow:
                document.documentElement.scrollWidth - document.documentElement.clientWidth};
        }""")
        assert layout == {"stacked": True, "wide": [], "overflow": 0}, layout


def test_an_unavailable_backend_falls_back_to_the_cpu(served):
    """?backend=webgl without WebGL (or an unknown backend) used to stop the page before it
    listed a model; it now runs on the cpu backend and says why."""
    _, _, url, _ = served
    with chromium_page() as page:
        page.goto(url + "?backend=wasm&model=gone")  # not bundled; not in the list
        wait_ready(page)
        assert page.evaluate("window.hmvae.backend()") == "cpu"
        assert "?backend=wasm" in page.inner_text("#backend")
        assert not page.is_disabled("#sample")
        # An unknown ?model= loads the first model and says so (it used to, silently).
        assert 'the list has no model "gone"' in page.inner_text("#status")
        # A listed model whose folder is gone says what to do about it.
        (served[3] / "models" / "broken.json").write_text(json.dumps({"models": [{
            "name": "gone", "path": "gone/hmvae_model.json", "config_name": "x",
            "bars": 2, "weight_bytes": 1}]}))
        page.goto(url + "?models=models/broken.json")
        page.wait_for_function("document.getElementById('status').dataset.state "
                               "=== 'error'", timeout=60_000)
        status = page.inner_text("#status")
        assert "cannot load gone:" in status and "HTTP 404" in status
        assert "convert it again with `hmvae tfjs`" in status
        # The page's code itself missing (a static server on an unbuilt web/) says so, where
        # the status line used to read "loading…" for ever.
        page.route("**/build/app.js", lambda route: route.fulfill(status=404))
        page.goto(url)
        page.wait_for_function("document.getElementById('status').dataset.state === 'error'",
                               timeout=10_000)
        status = page.inner_text("#status")
        assert "(build/app.js) did not load" in status and "npm run build" in status, status


def test_without_web_audio_the_page_samples_and_says_it_cannot_play(served):
    """No Web Audio: sampling and downloads work; Play says why it cannot play and stays a
    Play button (it used to say "param must be an AudioParam" and stick at "Stop"). Uncaught
    errors reach the status line."""
    _, _, url, _ = served
    with chromium_page() as page:
        page.add_init_script("for (const k of ['AudioContext', 'webkitAudioContext', "
                             "'OfflineAudioContext', 'webkitOfflineAudioContext']) "
                             "delete window[k];")
        page.goto(url)
        wait_ready(page)
        page.click("#sample")
        page.wait_for_function("document.querySelectorAll('#sample-list .card').length")
        wait_ready(page)
        page.click("#sample-list .card button.play")
        page.wait_for_function(
            "document.getElementById('status').dataset.state === 'error'")
        assert "no Web Audio" in page.inner_text("#status")
        assert "Play" in page.inner_text("#sample-list .card button.play")
        # An error nothing caught shows in the status line too, not in the console only.
        for fail in ("setTimeout(() => { throw new Error('a bug in a timer'); }, 0)",
                     "void Promise.reject(new Error('a bug in a promise'))"):
            page.evaluate(fail)
            message = fail.split("'")[1]
            page.wait_for_function(f"document.getElementById('status').textContent === '{message}'")
            assert page.get_attribute("#status", "data-state") == "error"


def test_stopping_drums_and_a_trio_mid_way_throws_nothing(served):
    """Stop while drum hits are still scheduled: each hit used to throw an uncaught
    InvalidAccessError (the drum synths were disposed under them)."""
    _, _, url, _ = served
    problems = []
    with chromium_page() as page:
        page.on("pageerror", lambda e: problems.append(f"page error: {e.name} {e}"))
        page.goto(url)
        wait_ready(page)
        drums = [5 if s % 2 == 0 else 0 for s in range(32)]
        melody = [2 + 40 + s // 2 if s % 2 == 0 else 1 for s in range(32)]
        for tokens in ({"drums": drums}, {"melody": melody, "bass": melody, "drums": drums}):
            page.evaluate("""async (tokens) => {  // a card of these tokens
                const m = hmvae.model, sample = m.sample;
                m.sample = async () => [{tokens, z: []}];
                document.getElementById('count').value = '1';
                document.getElementById('sample').click();
                await hmvae.state.work;
                m.sample = sample;
            }""", tokens)
            button = "#sample-list .card button.play"
            page.click(button)
            page.wait_for_function(
                f"document.querySelector('{button}').textContent.includes('Stop')")
            page.wait_for_timeout(400)
            page.click(button)
            page.wait_for_function(
                f"document.querySelector('{button}').textContent.includes('Play')")
            page.wait_for_timeout(3500)  # past the last scheduled hit
    assert not problems, problems[:3]
