// Windowing shared by the representations, as hmvae_tf/music/windows.py: windows start on
// every bar (a window of a file shorter than it counts its silentBars at the end), the busiest
// part per window, and the NoWindowError that says why a file gave no window, in the window
// finders' words (count_skip, explain).
import { STEPS_PER_BAR } from './grid.js';

export class NoWindowError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NoWindowError';
  }
}

/** Index of the first of the ascending `sorted` values that is >= value. */
function lowerBound(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Onsets (ascending steps) inside a window: two binary searches, so the windows of a long
 * many-part file do not each rescan every note. */
export function onsetCount(onsets, startBar, numBars) {
  return lowerBound(onsets, (startBar + numBars) * STEPS_PER_BAR)
    - lowerBound(onsets, startBar * STEPS_PER_BAR);
}

export function bestTrack(tracks, startBar, numBars) {
  let best = -1;
  let most = 0;
  tracks.forEach((t, k) => {
    const c = onsetCount(t.onsets, startBar, numBars);
    if (c > most) { most = c; best = k; }
  });
  return best;
}

export function windowOf(tokens, startBar, numBars) {
  const steps = numBars * STEPS_PER_BAR;
  const out = new Int32Array(steps);
  const from = startBar * STEPS_PER_BAR;
  for (let i = 0; i < steps; i++) out[i] = from + i < tokens.length ? tokens[from + i] : 0;
  return out;
}

export const windowStarts = (totalBars, numBars) => [
  ...Array(Math.max(1, totalBars - numBars + 1)).keys()];
/** Bars of a window past the end of its segment's music (a file shorter than the model's
 * window is padded with silence), as find_window's silent_bars. */
export const silentBars = (seg, start, numBars) => Math.max(0, start + numBars - seg.numBars);

// The counted reasons windows.explain says, in its order and words.
const EXPLAINED = [
  ['no_pitched', 'it has no pitched (non-drum) notes in MIDI pitch 21..108'],
  ['no_drums', 'it has no drum notes (channel 10) of the 9 drum classes'],
  ['drums_elsewhere', 'all its notes are on pitched instruments (a drum part on another MIDI '
    + 'channel than 10 is read as one: if it has one, move it to channel 10, General MIDI\'s '
    + 'drum channel)'],
  ['notes_out_of_range', 'some notes lie outside MIDI pitch 21..108'],
];

/** The meters off the 16-step grid whose notes were skipped, sorted as Python sorts them. */
export const skippedMeters = (stats) => Object.keys(stats)
  .filter((k) => k.startsWith('segments_meter_')).map((k) => k.slice('segments_meter_'.length))
  .sort();

/** The distinct meters of a piece, for messages (grid.piece_meters). */
const pieceMeters = (midi) => [...new Set(midi.timeSignatures.map((t) => `${t.numerator}/`
  + `${t.denominator}`))].sort();

/** Records the one reason a file gave no window, as windows.count_skip: none past having no
 * notes or none on the grid; `missing` when no segment had the parts, else too short. */
export function countSkip(stats, anyTrack, missing) {
  if (stats.no_notes || stats.no_grid_notes) return;
  stats[anyTrack ? 'too_short' : missing] = 1;
}


/** Why no window came out, as windows.explain says it from the counted reasons (after the
 * `reasons` the caller knows better: a trio's missing parts). */
export function explain(midi, stats, what, numBars, reasons = []) {
  const why = [...reasons];
  if (stats.no_notes) why.push('it has no notes');
  const skipped = skippedMeters(stats);
  if (skipped.length) {
    why.push(`its meter (${skipped.join(', ')}) does not fit the 16-steps-per-4/4-bar grid `
      + '(use 4/4, 2/4, 2/2, 4/2 ...)');
  }
  for (const [key, text] of EXPLAINED) if (stats[key]) why.push(text);
  if (stats.too_short) why.push(`no ${numBars}-bar stretch has all its parts`);
  const meters = pieceMeters(midi);
  return `no ${numBars}-bar ${what} window: ${why.join('; ') || 'nothing usable was found'} `
    + `(meters in file: ${(meters.length ? meters : ['4/4']).join(', ')})`;
}

// What each model reads from a file, in the commands' 'no usable ...' lines (usable_what).
const USABLE = { melody: 'melody', drum: 'drums', trio: 'melody+bass+drums' };

/** The line `hmvae interpolate` prints for a file without the window asked for
 * (music_adapter.read_input): '<file>: no usable melody for a 2-bar model: <why>', `why` in
 * the window finder's words (`explain`, or that only `found` windows exist). */
export function unusable(name, kind, numBars, why) {
  return new NoWindowError(`${name}: no usable ${USABLE[kind]} for a ${numBars}-bar model: `
    + `${why}`);
}

/** 'asked for drum window 3 but only 2 2-bar windows exist', as the finders say it. */
export const onlyFound = (what, windowIndex, found, numBars) => `asked for ${what} window `
  + `${windowIndex} but only ${found} ${numBars}-bar `
  + (found === 1 ? 'window exists' : 'windows exist');
