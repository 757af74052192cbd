// Tokens -> Standard MIDI File, as hmvae's Python client writes its outputs
// (music_adapter.written): in an input window's meter and tempi, by its programs, moved back
// to its register; one output, or an interpolation's outputs back to back as <prefix>_all.mid.
import * as tonejsMidi from '@tonejs/midi';
import * as midiFile from 'midi-file';
import { DRUM_VELOCITY, drumHits } from './drums.js';
import { STEPS_PER_QUARTER } from './grid.js';
import { MELODY_VELOCITY, melodyNotes } from './melody.js';
import { movePitch } from './register.js';
import { DEFAULT_QPM, DEFAULT_TIMING, atTempo } from './timing.js';
import { TRIO_PROGRAMS } from './trio.js';

// The bundler reads @tonejs/midi's ES module; Node (tools/, tests) its CommonJS build.
const { Midi } = tonejsMidi.Midi ? tonejsMidi : tonejsMidi.default;
// midi-file is CommonJS: its functions come as the module or as its default export.
const { parseMidi, writeMidi } = midiFile.parseMidi ? midiFile : midiFile.default;

/** A Standard MIDI File (Uint8Array) of a token sequence {track: tokens}, as hmvae's Python
 * client writes it (music_adapter.written): in `timing`'s meter and tempi (windowTiming; a
 * number: 4/4 at that qpm), its pitched parts played by `programs` in track order (a window's:
 * a melody's, a trio's melody and bass; by default melody program 0, trio bass 33), its
 * pitched notes moved by `octaves` (back to the input's register: movePitch), drums on
 * channel 10. */
export function tokensToMidi(tokens, timing = DEFAULT_QPM, { programs = [], octaves = 0 } = {}) {
  return piecesToMidi([{ tokens, octaves }], timing, programs);
}

/** One Standard MIDI File (Uint8Array) of an interpolation's outputs [{tokens, octaves}]
 * played back to back, as `hmvae interpolate` writes its <prefix>_all.mid (the per-step
 * sequences concatenated): each output as tokensToMidi writes it (`timing`'s meter once, its
 * tempi again at every output's start, `programs`, each output moved by its own octaves), one
 * after the other on the same tracks. */
export function interpolationToMidi(outputs, timing = DEFAULT_QPM, { programs = [] } = {}) {
  return piecesToMidi(outputs, timing, programs);
}

/** tokensToMidi of `pieces` [{tokens, octaves}], each starting where the one before ends. */
function piecesToMidi(pieces, timing, programs) {
  const { numerator, denominator, tempos } = typeof timing === 'number'
    ? atTempo(DEFAULT_TIMING, timing) : timing;
  const midi = new Midi();
  const ppq = midi.header.ppq;
  const tick = ppq / STEPS_PER_QUARTER;
  const starts = []; // each piece's first step
  let length = 0;
  for (const piece of pieces) {
    starts.push(length);
    length += trackLength(piece.tokens);
  }
  midi.header.tempos = starts.flatMap((start) => tempos.map(([beat, bpm]) => ({
    ticks: Math.round(beat * ppq) + start * tick, bpm })));
  midi.header.timeSignatures.push({ ticks: 0, timeSignature: [numerator, denominator],
    measures: 0 });
  midi.header.update();
  const first = pieces[0].tokens;
  const trio = 'bass' in first;
  ['melody', 'bass'].filter((name) => name in first).forEach((name, part) => {
    const track = midi.addTrack();
    track.name = name;
    track.channel = name === 'bass' ? 1 : 0;
    track.instrument.number = programs[part] ?? (trio ? TRIO_PROGRAMS[name] : 0);
    pieces.forEach(({ tokens, octaves = 0 }, k) => {
      for (const n of melodyNotes(tokens[name])) {
        track.addNote({ midi: movePitch(n.pitch, octaves), ticks: (starts[k] + n.start) * tick,
          durationTicks: (n.end - n.start) * tick, velocity: MELODY_VELOCITY / 127 });
      }
    });
  });
  if ('drums' in first) {
    const track = midi.addTrack();
    track.name = 'drums';
    track.channel = 9;
    pieces.forEach(({ tokens }, k) => {
      for (const h of drumHits(tokens.drums)) {
        track.addNote({ midi: h.pitch, ticks: (starts[k] + h.step) * tick, durationTicks: tick,
          velocity: DRUM_VELOCITY / 127 });
      }
    });
  }
  return lastingWholeWindow(midi.toArray(), length * tick);
}

function trackLength(tokens) {
  return Math.max(...Object.values(tokens).map((t) => t.length));
}

/** The file with every track's end moved to `endTick` if it came earlier: a window that ends
 * in a rest keeps its length in players and DAWs (as the Python side writes it). */
function lastingWholeWindow(bytes, endTick) {
  const parsed = parseMidi(bytes);
  for (const track of parsed.tracks) {
    const last = track[track.length - 1];
    const ticks = track.reduce((sum, event) => sum + event.deltaTime, 0);
    if (last && last.type === 'endOfTrack' && ticks < endTick) last.deltaTime += endTick - ticks;
  }
  return new Uint8Array(writeMidi(parsed));
}
