// MIDI -> tokens for a model's representation (melody, drums, trio), as
// hmvae_tf/music/representations.py dispatches it: a file dropped on the page gives the tokens
// `hmvae interpolate a.mid b.mid` would give, and its windows what the page's choosers list,
// each with its tempo (qpm, tempo), its bars as the score numbers them (scoreBars) and what its
// tokens leave out, as `hmvae interpolate` reads and says them.
import { drumWindows, drumsFromMidi, unmappedDrumsByBar } from './drums.js';
import { STEPS_PER_QUARTER, scoreBars, segments } from './grid.js';
import { melodyFromMidi, melodyWindows } from './melody.js';
import { readMidiFile } from './midi_read.js';
import { windowTiming } from './timing.js';
import { trioFromMidi, trioOtherParts, trioWindows } from './trio.js';
import { leftOutText, tempoText } from './window_text.js';

/** An instrument picks one line of a melody model's input; drum and trio models read whole
 * parts by role. */
function checkInstrument(representation, instrument) {
  if (instrument !== null && representation !== 'melody') {
    throw new Error('an instrument applies to melody models only');
  }
}

/** Every window of a read MIDI file for a representation, in the order --window counts them:
 * [{startBar, silentBars, qpm, scoreBars: [first, last], firstNoteBar (when its first bars hold
 * no note), musicEndsBar (when bars at its end are silence, or the next section's),
 * sectionMeter (when the music goes on after a meter change), notesOutOfRange (a melody's)
 * and unmappedDrums (pitches of a drum part's hits outside the 9 classes), left out of its
 * tokens and said in leftOut (leftOutText), tempo (its tempi in words,
 * tempoText), timing (windowTiming: what
 * outputs written from it take), programs (of its pitched parts in track order: a melody's, a
 * trio's melody and bass; [] for drums, what outputs written from it play),
 * tokens: {track: Int32Array}}], melody windows also with {instrument, program}. scoreBars and
 * musicEndsBar number bars as the score does (scoreBars()), as `hmvae interpolate` says them.
 * `instrument` (melody only) takes that part's line instead of the busiest part's;
 * moveOctaves (melody only) reads a line with notes outside MIDI 21..108 moved by whole
 * octaves (each window's octaves), as read_window's move_octaves. */
export function midiWindows(midi, representation, numBars, instrument = null,
  moveOctaves = false) {
  checkInstrument(representation, instrument);
  let windows;
  if (representation === 'melody') {
    windows = melodyWindows(midi, numBars, instrument, {}, moveOctaves).windows;
  }
  else if (representation === 'drums') windows = drumWindows(midi, numBars);
  else if (representation === 'trio') windows = trioWindows(midi, numBars);
  else throw new Error(`unknown representation ${representation}`);
  const score = scoreBars(midi);
  const unmapped = representation === 'melody' ? new Map() : unmappedDrumsByBar(segments(midi));
  for (const w of windows) {
    w.unmappedDrums = [];
    // Its own segment's bars only (drums.unmapped_hits): the bars padded with silence after
    // them are the next segment's numbers, whose hits the window does not hold.
    for (let bar = w.startBar; bar < w.startBar + numBars - (w.silentBars || 0); bar++) {
      w.unmappedDrums.push(...(unmapped.get(bar) || []));
    }
    // A trio's line also names the pitched parts it does not read (a lead outside 0-31).
    w.leftOut = leftOutText(w)
      + (representation === 'trio' ? trioOtherParts(midi, w.instruments) : '');
    w.timing = windowTiming(midi, w.startBar, numBars);
    w.tempo = tempoText(w.timing, (beat) => score.atOffset(w.startBar,
      Math.floor(beat * STEPS_PER_QUARTER + 1e-6)));
    w.scoreBars = score.span(w.startBar, numBars);
    // A window that starts before the music it reads (music_adapter.leading_silence_note).
    const first = firstOnset(w.tokens);
    const noteBar = first < 0 ? w.scoreBars[0] : score.atOffset(w.startBar, first);
    if (noteBar > w.scoreBars[0]) w.firstNoteBar = noteBar;
    const endsBar = score.sectionEnd(w.startBar, numBars - w.silentBars);
    // Without a silent grid bar a window can still end in the next section's bars (4/4 for
    // two and a half bars, then 2/4), which it reads as silence (music_adapter.silence_note).
    if (!w.silentBars && endsBar === w.scoreBars[1]) continue;
    w.musicEndsBar = endsBar;
    // Windows do not cross a meter change: the next section's notes are not read.
    if (score.musicAfter(w.startBar + numBars - w.silentBars)) {
      w.sectionMeter = score.meterOfBar(w.musicEndsBar);
    }
  }
  return windows;
}

/** The first step of window tokens {track: Int32Array} where a melody or bass note starts or
 * a drum hits, -1 for none. */
function firstOnset(tokens) {
  const steps = Object.entries(tokens).map(([track, t]) => t.findIndex(
    (v) => (track === 'drums' ? v > 0 : v > 1))).filter((s) => s >= 0);
  return steps.length ? Math.min(...steps) : -1;
}

/** Tokens {track: Int32Array} of a read MIDI file's `windowIndex`-th window for a
 * representation (of `instrument`'s line, for melody models, when given; moveOctaves: as
 * midiWindows'). Throws
 * NoWindowError saying why there is no such window. */
export function windowTokens(midi, representation, numBars, windowIndex = 0, name = 'MIDI file',
  instrument = null, moveOctaves = false) {
  checkInstrument(representation, instrument);
  if (representation === 'melody') {
    return { melody: melodyFromMidi(midi, numBars, windowIndex, name, instrument, moveOctaves) };
  }
  if (representation === 'drums') return { drums: drumsFromMidi(midi, numBars, windowIndex, name) };
  if (representation === 'trio') return trioFromMidi(midi, numBars, windowIndex, name);
  throw new Error(`unknown representation ${representation}`);
}

/** windowTokens of a MIDI file (ArrayBuffer or Uint8Array). */
export function midiToTokens(data, representation, numBars, windowIndex = 0, name = 'MIDI file',
  instrument = null, moveOctaves = false) {
  return windowTokens(readMidiFile(data, name), representation, numBars, windowIndex, name,
    instrument, moveOctaves);
}
