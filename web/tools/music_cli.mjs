// The page's MIDI <-> tokens code (src/midi_read.js, representations.js, midi_write.js ...) from
// the command line, for tests that compare it with hmvae_tf.music. Reads one JSON request per
// line on stdin, writes one JSON answer per line:
//   {"op": "midi_to_tokens", "path": "a.mid", "representation": "melody", "bars": 2, "window": 0,
//    "instrument": null, "octave_shift": false} -> {"tokens": {"melody": [...]}}
//    or {"error": "..."}
//   {"op": "windows", "path": "a.mid", "representation": "melody", "bars": 2, "instrument": null}
//     -> {"windows": [{"startBar", "instrument", "program", "silentBars", "qpm", "tempo",
//        "scoreBars", "musicEndsBar", "sectionMeter", "leftOut", "tokens", "label" (the page's
//        text for the window's bars)}], "parts": [{"instrument", "program",
//        "name", "windows"}] (melody only)} or {"error": "..."}
//   {"op": "tokens_to_midi", "tokens": {"melody": [...]}, "qpm": 120, "out": "b.mid"} -> {"ok": true}
//   {"op": "write_window", "path": "a.mid", "representation": "melody", "bars": 2, "window": 0,
//    "instrument": null, "qpm": null, "octave_shift": false, "out": "w.mid"} -> {"ok": true}:
//    the .mid the page writes for the window's tokens as an interpolation output with the file
//    in slot A (its meter, tempi and programs; at "qpm" throughout when given, as the tempo
//    slider moved; moved back to the file's register with "octave_shift")
//   "windows", "write_window" and "write_interpolation" read the file as the page reads it into
//    a slot (register.js's slotWindows; windows also say "octaves" and "register"): with
//    "octave_shift": true as with the page's "move into the model's register" box on, else off
//   {"op": "write_interpolation", "path": "a.mid", "representation": "melody", "bars": 2,
//    "window": 0, "instrument": null, "qpm": null, "octave_shift": false,
//    "outputs": [{"tokens": {"melody": [...]}, "octaves": 0}, ...], "out": "all.mid"}
//    -> {"ok": true}: the page's one-file download of an interpolation's outputs with the file
//    in slot A (as write_window: its meter, tempi and programs), each output moved by its own
//    octaves, as `hmvae interpolate` writes <prefix>_all.mid
//   {"op": "interpolation_octaves", "start": 0, "end": 2, "steps": 5} -> {"octaves": [...]}
//   {"op": "roll_window", "path": "a.mid", "representation": "melody", "bars": 2, "window": 0,
//    "instrument": null, "octave_shift": false} -> {"notes": [{start, end, pitch, track}],
//    "hits": [{step, cls, pitch}]}: what the piano roll of a slot holding the window draws
//    (pianoroll.js's rollNotes, moved back out of the model's register as the slot draws it)
//   {"op": "roll", "tokens": {"melody": [...]}, "octaves": 0} -> {"notes", "hits"}: what the
//    roll of an output written with "octaves" (as write_interpolation's) draws
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { melodyParts } from '../src/melody.js';
import { readMidiFile } from '../src/midi_read.js';
import { interpolationToMidi, tokensToMidi } from '../src/midi_write.js';
import { rollNotes } from '../src/pianoroll.js';
import { interpolationOctaves, slotWindows } from '../src/register.js';
import { midiToTokens } from '../src/representations.js';
import { writtenTiming } from '../src/timing.js';
import { windowBarsText } from '../src/window_text.js';

/** The windows of a request's file, read as the page reads a file into a slot: with
 * "octave_shift" as with its "move into the model's register" box on (a melody line moved
 * into the register the model learned), else as with it off. */
function windowsOf(midi, req) {
  return slotWindows(midi, req.representation, req.bars, req.instrument ?? null,
    Boolean(req.octave_shift));
}

function handle(req) {
  if (req.op === 'midi_to_tokens') {
    try {
      const tokens = midiToTokens(new Uint8Array(readFileSync(req.path)), req.representation,
        req.bars, req.window || 0, req.path, req.instrument ?? null, Boolean(req.octave_shift));
      return { tokens: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k, Array.from(v)])) };
    } catch (err) {
      return { error: err.message, kind: err.name };
    }
  }
  if (req.op === 'windows') {
    try {
      const midi = readMidiFile(new Uint8Array(readFileSync(req.path)), req.path);
      const windows = windowsOf(midi, req)
        .map(({ startBar, instrument, program, silentBars, qpm, tempo, scoreBars, musicEndsBar,
          sectionMeter, firstNoteBar, leftOut, octaves, register, tokens }) => ({
          startBar, instrument, program, silentBars, qpm, tempo, scoreBars, musicEndsBar,
          sectionMeter, firstNoteBar, leftOut, octaves, register,
          tokens: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k, Array.from(v)])),
          label: windowBarsText(scoreBars, musicEndsBar, sectionMeter, firstNoteBar) }));
      const parts = req.representation === 'melody'
        ? melodyParts(midi, req.bars, Boolean(req.octave_shift)) : [];
      return { windows, parts };
    } catch (err) {
      return { error: err.message, kind: err.name };
    }
  }
  if (req.op === 'tokens_to_midi') {
    writeFileSync(req.out, tokensToMidi(req.tokens, req.qpm || 120));
    return { ok: true };
  }
  if (req.op === 'write_window') {
    const midi = readMidiFile(new Uint8Array(readFileSync(req.path)), req.path);
    const w = windowsOf(midi, req)[req.window || 0];
    if (!w) return { error: `${req.path} has no window ${req.window || 0}` };
    writeFileSync(req.out, tokensToMidi(w.tokens, writtenTiming(w.timing, req.qpm ?? w.qpm),
      { programs: w.programs, octaves: -(w.octaves || 0) }));
    return { ok: true };
  }
  if (req.op === 'write_interpolation') {
    const midi = readMidiFile(new Uint8Array(readFileSync(req.path)), req.path);
    const w = windowsOf(midi, req)[req.window || 0];
    if (!w) return { error: `${req.path} has no window ${req.window || 0}` };
    writeFileSync(req.out, interpolationToMidi(req.outputs,
      writtenTiming(w.timing, req.qpm ?? w.qpm), { programs: w.programs }));
    return { ok: true };
  }
  if (req.op === 'roll_window') {
    const midi = readMidiFile(new Uint8Array(readFileSync(req.path)), req.path);
    const w = windowsOf(midi, req)[req.window || 0];
    if (!w) return { error: `${req.path} has no window ${req.window || 0}` };
    return rollNotes(w.tokens, -(w.octaves || 0));
  }
  if (req.op === 'roll') return rollNotes(req.tokens, req.octaves || 0);
  if (req.op === 'interpolation_octaves') {
    return { octaves: interpolationOctaves(req.start, req.end, req.steps) };
  }
  return { error: `unknown op ${req.op}` };
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line.trim()) process.stdout.write(`${JSON.stringify(handle(JSON.parse(line)))}\n`);
}
