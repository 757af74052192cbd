// Drums <-> tokens, as hmvae_tf/music/drums.py: a 9-bit mask per step over the reduced drum
// classes (bit 0 kick ... bit 8 ride); every drum instrument (channel 10) is merged, and hits
// outside the classes are counted for the window line.
import { maxOf } from './extremes.js';
import { STEPS_PER_BAR, segments } from './grid.js';
import {
  countSkip, explain, onlyFound, onsetCount, silentBars, unusable, windowOf, windowStarts,
} from './windows.js';

export const DRUM_VELOCITY = 100; // written hits' (drums.DEFAULT_VELOCITY)

export const DRUM_CLASS_NAMES = ['kick', 'snare', 'closed hi-hat', 'open hi-hat', 'low tom',
  'mid tom', 'high tom', 'crash', 'ride'];
export const DRUM_CLASS_PITCHES = [
  [36, 35],
  [38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
  [42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22],
  [46, 67, 72, 74, 79, 81, 26],
  [45, 29, 41, 43, 61, 64, 84],
  [48, 47, 60, 63, 77, 86, 87],
  [50, 30, 62, 76, 83],
  [49, 52, 55, 57, 58],
  [51, 53, 59, 82],
];
const PITCH_TO_CLASS = new Int8Array(128).fill(-1);
DRUM_CLASS_PITCHES.forEach((pitches, c) => pitches.forEach((p) => { PITCH_TO_CLASS[p] = c; }));

/** drums.count_pitched_only: a file with notes but none on the drum channel often has its
 * drum part on another channel, which the user can fix once told. */
export function countPitchedOnly(midi, stats) {
  if (stats.no_drums && midi.instruments.some((inst) => inst.notes.length)
    && !midi.instruments.some((inst) => inst.isDrum && inst.notes.length)) {
    stats.drums_elsewhere = 1;
  }
}

/** grid bar -> pitches of its drum hits that none of the 9 classes holds, over a file's
 * segments (counted as Segment.first_bar counts), for drums.unmapped_hits. */
export function unmappedDrumsByBar(segs) {
  const byBar = new Map();
  for (const seg of segs) {
    for (const n of seg.notes) {
      if (!n.isDrum || (n.pitch >= 0 && n.pitch < 128 && PITCH_TO_CLASS[n.pitch] >= 0)) continue;
      const bar = seg.firstBar + Math.floor(n.start / STEPS_PER_BAR);
      if (!byBar.has(bar)) byBar.set(bar, []);
      byBar.get(bar).push(n.pitch);
    }
  }
  return byBar;
}

export function drumTrack(seg) {
  const steps = [];
  const classes = [];
  for (const n of seg.notes) {
    if (!n.isDrum) continue;
    const c = n.pitch >= 0 && n.pitch < 128 ? PITCH_TO_CLASS[n.pitch] : -1;
    if (c < 0) continue;
    steps.push(n.start);
    classes.push(c);
  }
  if (!steps.length) return null;
  const length = (Math.floor(maxOf(steps) / STEPS_PER_BAR) + 1) * STEPS_PER_BAR;
  const tokens = new Int32Array(length);
  steps.forEach((s, i) => { tokens[s] |= 1 << classes[i]; });
  return { tokens, onsets: [...new Set(steps)].sort((a, b) => a - b) };
}

/** Every drum window (one with a hit), in window order: [{startBar, tokens: {drums}}]. */
export function drumWindows(midi, numBars, stats = {}) {
  const segs = segments(midi, stats);
  if (!segs.length && !stats.no_notes) stats.no_grid_notes = 1;
  const windows = [];
  for (const seg of segs) {
    const track = drumTrack(seg);
    if (!track) continue;
    stats.any_track = 1;
    for (const start of windowStarts(seg.numBars, numBars)) {
      if (!onsetCount(track.onsets, start, numBars)) continue;
      windows.push({ startBar: seg.firstBar + start, silentBars: silentBars(seg, start, numBars),
        qpm: seg.qpmAtBar(start), programs: [],
        tokens: { drums: windowOf(track.tokens, start, numBars) } });
    }
  }
  return windows;
}

export function drumsFromMidi(midi, numBars, windowIndex = 0, name = 'MIDI file') {
  const stats = {};
  const windows = drumWindows(midi, numBars, stats);
  if (windowIndex < windows.length) return windows[windowIndex].tokens.drums;
  if (windows.length) {
    throw unusable(name, 'drum', numBars, onlyFound('drum', windowIndex, windows.length, numBars));
  }
  countSkip(stats, stats.any_track, 'no_drums');
  countPitchedOnly(midi, stats);
  throw unusable(name, 'drum', numBars, explain(midi, stats, 'drum', numBars));
}

/** [{step, cls, pitch}] of drum tokens. */
export function drumHits(tokens) {
  const hits = [];
  for (let s = 0; s < tokens.length; s++) {
    for (let c = 0; c < DRUM_CLASS_PITCHES.length; c++) {
      if ((tokens[s] >> c) & 1) hits.push({ step: s, cls: c, pitch: DRUM_CLASS_PITCHES[c][0] });
    }
  }
  return hits;
}
