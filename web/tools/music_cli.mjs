// The page's MIDI <-> tokens code (src/music.js) from the command line, for tests that compare
// it with hmvae_tf.music. Reads one JSON request per line on stdin, writes one JSON answer per
// line:
//   {"op": "midi_to_tokens", "path": "a.mid", "representation": "melody", "bars": 2, "window": 0,
//    "instrument": null} -> {"tokens": {"melody": [...]}} or {"error": "..."}
//   {"op": "windows", "path": "a.mid", "representation": "melody", "bars": 2, "instrument": null}
//     -> {"windows": [{"startBar", "instrument", "program", "silentBars", "qpm", "tempo", "scoreBars",
//        "musicEndsBar", "sectionMeter", "leftOut", "label" (the page's text for the window's bars)}], "parts": [{"instrument", "program",
//        "name", "windows"}] (melody only)} or {"error": "..."}
//   {"op": "tokens_to_midi", "tokens": {"melody": [...]}, "qpm": 120, "out": "b.mid"} -> {"ok": true}
//   {"op": "write_window", "path": "a.mid", "representation": "melody", "bars": 2, "window": 0,
//    "instrument": null, "qpm": null, "out": "w.mid"} -> {"ok": true}: the .mid the page writes
//    for the window's tokens as an interpolation output with the file in slot A (its meter,
//    tempi and programs; at "qpm" throughout when given, as the tempo slider moved)
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  melodyParts, midiToTokens, midiWindows, readMidiFile, tokensToMidi, windowBarsText,
  writtenTiming,
} from '../src/music.js';

function handle(req) {
  if (req.op === 'midi_to_tokens') {
    try {
      const tokens = midiToTokens(new Uint8Array(readFileSync(req.path)), req.representation,
        req.bars, req.window || 0, req.path, req.instrument ?? null);
      return { tokens: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k, Array.from(v)])) };
    } catch (err) {
      return { error: err.message, kind: err.name };
    }
  }
  if (req.op === 'windows') {
    try {
      const midi = readMidiFile(new Uint8Array(readFileSync(req.path)), req.path);
      const windows = midiWindows(midi, req.representation, req.bars, req.instrument ?? null)
        .map(({ startBar, instrument, program, silentBars, qpm, tempo, scoreBars, musicEndsBar,
          sectionMeter, leftOut }) => ({
          startBar, instrument, program, silentBars, qpm, tempo, scoreBars, musicEndsBar,
          sectionMeter, leftOut,
          label: windowBarsText(scoreBars, musicEndsBar, sectionMeter) }));
      const parts = req.representation === 'melody' ? melodyParts(midi, req.bars) : [];
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
    const w = midiWindows(midi, req.representation, req.bars, req.instrument ?? null)[req.window || 0];
    writeFileSync(req.out, tokensToMidi(w.tokens, writtenTiming(w.timing, req.qpm ?? w.qpm),
      { programs: w.programs }));
    return { ok: true };
  }
  return { error: `unknown op ${req.op}` };
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line.trim()) process.stdout.write(`${JSON.stringify(handle(JSON.parse(line)))}\n`);
}
