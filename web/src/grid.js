// Notes on the 16-step grid, as hmvae_tf/music/grid.py puts them, so that every part of the
// page's MIDI reading answers "where are the bars?" the way `hmvae interpolate` does.
//
// Grid: 16 steps per 4/4 bar (4 per quarter), onsets and ends rounded half up from MIDI ticks.
// The piece is cut at time-signature changes; meters whose bar is a power-of-two number of
// steps (4/4, 2/4, 2/2, 4/2 ...) fit the grid, others are skipped; a region shorter than a bar
// of the next joins it as a partial (pickup) bar. Bars are also numbered as the score numbers
// them (scoreBars), for the window lines.
import { maxOf } from './extremes.js';

export const STEPS_PER_BAR = 16;
export const STEPS_PER_QUARTER = 4;

export const quantize = (ticks, ppq) => Math.floor((Math.max(0, ticks) / ppq) * STEPS_PER_QUARTER
  + 0.5);
export const barSteps = (n, d) => (n * STEPS_PER_BAR) / d;

export function isGridMeter(n, d) {
  if (n <= 0 || d <= 0) return false;
  const steps = barSteps(n, d);
  if (steps !== Math.floor(steps) || steps < 1) return false;
  return (steps & (steps - 1)) === 0;
}

export function timeSignatureSteps(midi) {
  const raw = midi.timeSignatures.map((t) => [quantize(t.tick, midi.ppq), t.numerator,
    t.denominator]);
  if (!raw.length) return [[0, 4, 4]];
  raw.sort((a, b) => a[0] - b[0]); // stable
  const byStep = new Map();
  for (const [step, n, d] of raw) {
    const cands = byStep.get(step) || [];
    const i = cands.findIndex((c) => c[0] === n && c[1] === d);
    if (i >= 0) cands.splice(i, 1);
    cands.push([n, d]);
    byStep.set(step, cands);
  }
  const steps = [...byStep.keys()];
  const out = [];
  steps.forEach((step, i) => {
    const cands = byStep.get(step);
    let choice = cands[cands.length - 1];
    if (cands.length > 1 && i + 1 < steps.length) {
      const length = steps[i + 1] - step;
      const fitting = cands.filter((c) => barSteps(...c) > 0
        && Number.isInteger(length / barSteps(...c)));
      if (fitting.length) choice = fitting[fitting.length - 1];
    }
    const last = out[out.length - 1];
    if (last && last[1] === choice[0] && last[2] === choice[1]) return;
    out.push([step, choice[0], choice[1]]);
  });
  if (out[0][0] > 0) out.unshift([0, 4, 4]);
  return out;
}

const FAR = 2 ** 40;

export function meterRegions(events) {
  const bounds = events.map((e) => e[0]).concat([FAR]);
  let regions = [];
  events.forEach((e, i) => {
    if (bounds[i + 1] > bounds[i]) regions.push([bounds[i], bounds[i + 1], bounds[i], e[1], e[2]]);
  });
  for (let i = regions.length - 2; i >= 0; i--) {
    const nxt = regions[i + 1];
    if (nxt[2] - regions[i][0] < barSteps(nxt[3], nxt[4])) {
      nxt[0] = regions[i][0];
      regions.splice(i, 1);
    }
  }
  regions = regions.map(([lo, hi, downbeat, n, d]) => {
    const origin = downbeat - Math.ceil((downbeat - lo) / STEPS_PER_BAR) * STEPS_PER_BAR;
    return { lo, hi, downbeat, origin, n, d };
  });
  // firstBar: the number of a region's grid bar 0, counted from the piece's first grid bar (a
  // pickup bar is 0) so that no two grid bars share one (grid._first_grid_bars): a grid region
  // ending in mid grid bar (4/4 for two and a half bars, then 2/4) keeps that partial bar's
  // number and the next starts at the following one.
  const pieceOrigin = Math.min(0, regions[0].origin);
  let free = 0; // the first number no grid region before has used
  for (const r of regions) {
    r.firstBar = Math.floor((r.origin - pieceOrigin) / STEPS_PER_BAR);
    if (isGridMeter(r.n, r.d)) {
      r.firstBar = Math.max(r.firstBar, free);
      free = r.firstBar + Math.ceil((r.hi - r.origin) / STEPS_PER_BAR);
    }
  }
  return regions;
}

/** The tempo (qpm, rounded to 3 decimals as Python records it) in force at grid step `step`:
 * the last tempo event at or before it, MIDI's 120 before the first one; a step before tick 0
 * (a pickup's) takes the tempo at tick 0. As grid.TempoMap.qpm_at_steps. */
export function qpmAtStep(midi, step) {
  let qpm = 120;
  for (const t of midi.tempos || []) {
    if (t.tick === 0 || t.tick / midi.ppq <= step / STEPS_PER_QUARTER + 1e-9) qpm = t.qpm;
  }
  return Math.round(qpm * 1000) / 1000;
}

/** Bar numbers as the piece's score counts them (grid.ScoreBars): grid bars are the score's
 * bars only in 4/4 (a 2/4 piece has two in each, and after 3/4 bars the grid runs behind);
 * each meter region's bars count at their own length, and a pickup is bar 0.
 * span(gridBar, numBars) -> [first, last] score bar of numBars grid bars from a window's
 * startBar (the first where its section's music starts: a pickup's bar); atOffset(gridBar,
 * steps): the score bar `steps` steps into a grid bar's window (where a tempo change lies);
 * musicAfter(gridBar): whether the piece has music past that
 * grid bar's start (a window padded with silence there stops at its section's end, not the music's);
 * sectionEnd(gridBar, numBars): the last score bar of numBars grid bars from gridBar that is in
 * their section (where a window's music ends when its bars after these are silence: a section
 * ending in mid grid bar ends in its half bar); meterOfBar(bar) -> [numerator, denominator] of
 * a score bar's region. */
export function scoreBars(midi) {
  const regions = meterRegions(timeSignatureSteps(midi));
  const rows = []; // {lo, downbeat, bar (the downbeat's number), length (steps per bar), meter}
  const grid = []; // [first grid bar, origin step, end step, first step] of each grid region
  for (const { lo, hi, downbeat, origin, firstBar, n, d } of regions) {
    let bar = 1; // a pickup before the first downbeat is bar 0
    if (rows.length) {
      const prev = rows[rows.length - 1];
      bar = prev.bar + Math.ceil((lo - prev.downbeat) / prev.length) + (downbeat > lo ? 1 : 0);
    }
    rows.push({ lo, downbeat, bar, length: barSteps(n, d), meter: [n, d] });
    if (isGridMeter(n, d)) grid.push([firstBar, origin, hi, lo]);
  }
  // The music's last step, as ScoreBars counts the NoteSequence's total_time.
  let end = 0;
  for (const inst of midi.instruments) {
    for (const note of inst.notes) {
      if (note.velocity > 0) end = Math.max(end, quantize(note.endTick, midi.ppq));
    }
  }
  const atStep = (step) => {
    let row = rows[0];
    for (const r of rows) if (r.lo <= step) row = r;
    return step < row.downbeat ? row.bar - 1
      : row.bar + Math.floor((step - row.downbeat) / row.length);
  };
  const gridRegion = (gridBar) => { // [first, origin, end, lo] of the region holding gridBar
    let found = grid.length ? grid[0] : [0, 0, FAR, 0];
    for (const g of grid) if (g[0] <= gridBar) found = g;
    return found;
  };
  const stepOf = (gridBar) => {
    const [first, origin] = gridRegion(gridBar);
    return origin + (gridBar - first) * STEPS_PER_BAR;
  };
  // Where a window's music starts (grid.ScoreBars._music_step): a section's first grid bar
  // can start in the bar before its pickup (a 1/4 bar between 4/4 bars), whose steps it reads
  // as silence; its window starts in the pickup's bar.
  const musicStep = (gridBar) => Math.max(stepOf(gridBar), gridRegion(gridBar)[3]);
  return {
    atStep,
    span(gridBar, numBars) {
      return [atStep(musicStep(gridBar)),
        atStep(stepOf(gridBar) + numBars * STEPS_PER_BAR - 1)];
    },
    /** The score's bar holding the step `steps` after grid bar `gridBar` starts. */
    atOffset: (gridBar, steps) => atStep(stepOf(gridBar) + steps),
    musicAfter: (gridBar) => end > stepOf(gridBar),
    sectionEnd: (gridBar, numBars) => atStep(Math.min(stepOf(gridBar) + numBars * STEPS_PER_BAR,
      gridRegion(gridBar)[2]) - 1),
    meterOfBar(bar) {
      let { meter } = rows[0];
      for (const r of rows) if (r.bar - (r.downbeat > r.lo ? 1 : 0) <= bar) ({ meter } = r);
      return meter;
    },
  };
}

/** Grid segments of a read MIDI file (readMidi): [{notes, numSteps, numBars, firstBar, origin,
 * qpmAtBar(bar)}], notes relative to the segment's first grid bar (at absolute step origin),
 * sorted by instrument, onset, highest pitch first. */
export function segments(midi, stats = {}) {
  const notes = [];
  midi.instruments.forEach((inst, instrument) => {
    for (const note of inst.notes) {
      if (!(note.velocity > 0)) continue;
      const start = quantize(note.startTick, midi.ppq);
      const end = Math.max(quantize(note.endTick, midi.ppq), start + 1);
      notes.push({ start, end, pitch: note.pitch, instrument, program: inst.program,
        isDrum: inst.isDrum });
    }
  });
  if (!notes.length) {
    stats.no_notes = 1;
    return [];
  }
  const regions = meterRegions(timeSignatureSteps(midi));
  const bySeg = regions.map(() => []);
  for (const note of notes) {
    let r = 0;
    while (r + 1 < regions.length && regions[r + 1].lo <= note.start) r++;
    const reg = regions[r];
    if (!isGridMeter(reg.n, reg.d)) {
      const key = `segments_meter_${reg.n}/${reg.d}`;
      stats[key] = 1;
      stats.notes_in_skipped_meter = (stats.notes_in_skipped_meter || 0) + 1;
      continue;
    }
    const end = regions.length > 1 ? Math.min(note.end, reg.hi) : note.end;
    bySeg[r].push({ ...note, start: note.start - reg.origin, end: end - reg.origin });
  }
  const out = [];
  bySeg.forEach((segNotes, r) => {
    if (!segNotes.length) return;
    segNotes.sort((a, b) => a.instrument - b.instrument || a.start - b.start || b.pitch - a.pitch);
    const numSteps = maxOf(segNotes.map((n) => n.end));
    const { origin, firstBar } = regions[r]; // bars counted from the piece's first (pickup: 0)
    out.push({ notes: segNotes, numSteps, numBars: Math.ceil(numSteps / STEPS_PER_BAR),
      firstBar, origin,
      qpmAtBar: (bar) => qpmAtStep(midi, origin + bar * STEPS_PER_BAR) });
  });
  return out;
}
