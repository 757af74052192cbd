// A window's meter and tempi (grid.window_timing's WindowTiming), so that what the page
// writes or plays from a window's tokens shows the input's bars and follows its tempo changes
// as `hmvae interpolate` writes them; 4/4 at one tempo for tokens with no window behind them.
import {
  STEPS_PER_BAR, STEPS_PER_QUARTER, barSteps, isGridMeter, meterRegions, qpmAtStep,
  timeSignatureSteps,
} from './grid.js';

export const DEFAULT_QPM = 120;

/** The tempo events of a read file as grid.TempoMap holds them: [[beat, qpm]] ascending from
 * beat 0, the last one given at a tick, the first tempo (or MIDI's 120) from beat 0. */
function tempoBeats(midi) {
  const byTick = new Map();
  for (const t of midi.tempos || []) if (t.qpm > 0) byTick.set(Math.max(0, t.tick), t.qpm);
  const events = [...byTick.keys()].sort((a, b) => a - b)
    .map((tick) => [tick / midi.ppq, byTick.get(tick)]);
  if (!events.length || events[0][0] > 0) {
    events.unshift([0, events.length ? events[0][1] : DEFAULT_QPM]);
  }
  return events;
}

/** 4/4 at MIDI's 120 qpm: how tokens with no input window behind them are written. */
export const DEFAULT_TIMING = Object.freeze({ numerator: 4, denominator: 4,
  tempos: [[0, DEFAULT_QPM]] });

/** The meter and tempi of the `numBars` grid bars from `startBar` (a window's startBar), as
 * grid.window_timing gives them, so what is written from a window's tokens shows the input's
 * bars and plays at its tempo changes: {numerator, denominator, tempos: [[beat from the
 * window's start, qpm]]}. The meter is the window's own when its bars line up with the window
 * (a 2/4 window is 2/4 bars; a 4/2 window starting mid-bar is not), else 4/4, the grid's. */
export function windowTiming(midi, startBar, numBars) {
  const regions = meterRegions(timeSignatureSteps(midi));
  let [first, { origin, downbeat }, meter] = [0, regions[0], [4, 4]];
  for (const r of regions) {
    if (isGridMeter(r.n, r.d) && r.firstBar <= startBar) {
      [first, { origin, downbeat }, meter] = [r.firstBar, r, [r.n, r.d]];
    }
  }
  const step = origin + (startBar - first) * STEPS_PER_BAR;
  const bar = barSteps(...meter);
  if ((step - downbeat) % bar || (numBars * STEPS_PER_BAR) % bar) meter = [4, 4];
  const start = step / STEPS_PER_QUARTER;
  const end = start + (numBars * STEPS_PER_BAR) / STEPS_PER_QUARTER;
  const tempos = [[0, qpmAtStep(midi, step)]];
  const rounded = (qpm) => Math.round(qpm * 1000) / 1000;
  for (const [beat, qpm] of tempoBeats(midi)) {
    if (start < beat && beat < end && rounded(qpm) !== rounded(tempos[tempos.length - 1][1])) {
      tempos.push([beat - start, qpm]);
    }
  }
  return { numerator: meter[0], denominator: meter[1], tempos };
}

/** The same meter at one tempo (WindowTiming.at_tempo). */
export const atTempo = (timing, qpm) => ({ ...timing, tempos: [[0, qpm]] });

/** How an output is timed, as music_adapter.written times it: in its input window's meter and
 * tempi (`timing`, from slot A's file; none: 4/4), or at `qpm` throughout when the tempo
 * slider says another tempo than the window's first (the page's --qpm). */
export function writtenTiming(timing, qpm) {
  if (!timing) return atTempo(DEFAULT_TIMING, qpm);
  return qpm === timing.tempos[0][1] ? timing : atTempo(timing, qpm);
}

/** Beats from a window's start -> seconds, through its tempo changes (WindowTiming.to_seconds). */
export function timingSeconds(timing, beats) {
  let seconds = 0;
  let k = 0;
  while (k + 1 < timing.tempos.length && timing.tempos[k + 1][0] <= beats) {
    seconds += ((timing.tempos[k + 1][0] - timing.tempos[k][0]) * 60) / timing.tempos[k][1];
    k += 1;
  }
  return seconds + ((beats - timing.tempos[k][0]) * 60) / timing.tempos[k][1];
}
