// Piano-roll drawing of token sequences on a canvas: pitched tracks (melody, bass) share a
// pitch axis fitted to their notes; drums get one row per drum class below.
import { DRUM_CLASS_NAMES, drumHits } from './drums.js';
import { STEPS_PER_BAR } from './grid.js';
import { melodyNotes, pitchName } from './melody.js';
import { movePitch } from './register.js';

const COLORS = { melody: '#3b6fd8', bass: '#2f9e5b', drums: '#d0672a' };
const DRUM_SHORT = ['kick', 'snare', 'hh', 'open', 'tom L', 'tom M', 'tom H', 'crash', 'ride'];
const PITCH_HEIGHT = 170; // px the pitch axis aims at

/** The notes and drum hits a roll of `tokens` ({track: [T]}) shows: {notes: [{start, end,
 * pitch, track}], hits: [{step, cls, pitch}]}, pitched notes moved by `octaves` as they are
 * played and written (movePitch): a melody read into the model's register is shown back in
 * the octave the user hears and downloads, not the one the model saw. */
export function rollNotes(tokens, octaves = 0) {
  const notes = ['melody', 'bass'].filter((t) => t in tokens).flatMap((t) => melodyNotes(
    tokens[t]).map((n) => ({ ...n, pitch: movePitch(n.pitch, octaves), track: t })));
  return { notes, hits: 'drums' in tokens ? drumHits(tokens.drums) : [] };
}

/** Draws `tokens` ({track: [T]}) into `canvas`, fitted to `width` px (a step gets 1..24 px, so
 * a 16-bar roll fits a slot; only a box narrower than that scrolls), pitched notes moved by
 * `octaves` (rollNotes); returns the number of notes and drum hits drawn. */
export function drawPianoRoll(canvas, tokens, numSteps, width = 600, { octaves = 0 } = {}) {
  const pitched = ['melody', 'bass'].filter((t) => t in tokens);
  const { notes, hits } = rollNotes(tokens, octaves);
  let lo = 60;
  let hi = 72;
  if (notes.length) {
    lo = Math.min(...notes.map((n) => n.pitch)) - 2;
    hi = Math.max(...notes.map((n) => n.pitch)) + 2;
    if (hi - lo < 12) {
      const pad = Math.ceil((12 - (hi - lo)) / 2);
      lo -= pad;
      hi += pad;
    }
  }
  const pitchRows = pitched.length ? hi - lo + 1 : 0;
  const GUTTER = pitchRows ? 28 : 38; // left label column
  // Whole pixels while there is room for 3 per step; below that fractional steps keep long
  // sequences inside their box.
  const fit = (width - GUTTER) / numSteps;
  const CELL = fit >= 3 ? Math.min(24, Math.floor(fit)) : Math.max(1, fit);
  const ROW = pitchRows ? Math.max(2, Math.min(8, Math.floor(PITCH_HEIGHT / pitchRows))) : 0;
  const DRUM_ROW = pitchRows ? 7 : 12; // px per drum class (drum models get labelled rows)
  const drumHeight = 'drums' in tokens ? DRUM_CLASS_NAMES.length * DRUM_ROW : 0;
  const gap = pitchRows && drumHeight ? 6 : 0;
  width = Math.ceil(GUTTER + numSteps * CELL);
  const height = pitchRows * ROW + gap + drumHeight;
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.fillStyle = '#fbfbfd';
  ctx.fillRect(0, 0, width, height);
  ctx.font = '9px sans-serif';
  ctx.textBaseline = 'middle';

  if (pitchRows) {
    for (let p = lo; p <= hi; p++) {
      const y = (hi - p) * ROW;
      const black = [1, 3, 6, 8, 10].includes(((p % 12) + 12) % 12);
      ctx.fillStyle = black ? '#eef0f5' : '#fbfbfd';
      ctx.fillRect(GUTTER, y, numSteps * CELL, ROW);
      if (p % 12 === 0 && ROW >= 2) {
        ctx.fillStyle = '#666';
        ctx.fillText(`C${p / 12 - 1}`, 2, y + ROW / 2);
      }
    }
  }
  const top = pitchRows * ROW + gap;
  if (drumHeight) {
    DRUM_CLASS_NAMES.forEach((name, c) => {
      const y = top + (DRUM_CLASS_NAMES.length - 1 - c) * DRUM_ROW;
      ctx.fillStyle = c % 2 ? '#f3f1ee' : '#fbfbfd';
      ctx.fillRect(GUTTER, y, numSteps * CELL, DRUM_ROW);
      if (!pitchRows) {
        ctx.fillStyle = '#666';
        ctx.fillText(DRUM_SHORT[c], 2, y + DRUM_ROW / 2);
      }
    });
    if (pitchRows) {
      ctx.fillStyle = '#666';
      ctx.fillText('drums', 2, top + drumHeight / 2);
    }
  }
  // Beat and bar lines (beats only where they are 6 px or more apart).
  for (let s = 0; s <= numSteps; s += 4) {
    if (s % STEPS_PER_BAR !== 0 && 4 * CELL < 6) continue;
    ctx.fillStyle = s % STEPS_PER_BAR === 0 ? '#9aa0ad' : '#dde0e6';
    ctx.fillRect(GUTTER + s * CELL, 0, 1, height);
  }
  const inset = CELL >= 3 ? 1 : 0; // a gap between repeated notes where there is room
  for (const n of notes) {
    ctx.fillStyle = COLORS[n.track];
    ctx.fillRect(GUTTER + n.start * CELL + inset, (hi - n.pitch) * ROW,
      Math.max(1, (n.end - n.start) * CELL - 2 * inset), Math.max(2, ROW - 1));
  }
  ctx.fillStyle = COLORS.drums;
  for (const h of hits) {
    const y = top + (DRUM_CLASS_NAMES.length - 1 - h.cls) * DRUM_ROW;
    const pad = CELL > 6 ? 2 : 0.5;
    ctx.fillRect(GUTTER + h.step * CELL + pad, y + 1, Math.max(1, CELL - 2 * pad), DRUM_ROW - 2);
  }
  const drawn = notes.length + hits.length;
  canvas.dataset.notes = String(drawn);
  canvas.title = drawn ? `${notes.length} notes, ${hits.length} drum hits` : 'silence';
  // What a screen reader says for the picture: how much music, and where.
  const parts = [];
  if (pitched.length) {
    const pitches = notes.map((n) => n.pitch);
    parts.push(notes.length ? `${notes.length} notes, ${pitchName(Math.min(...pitches))} to `
      + `${pitchName(Math.max(...pitches))}` : 'no notes');
  }
  if (drumHeight) parts.push(`${hits.length} drum hits`);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `piano roll, ${numSteps / STEPS_PER_BAR} bars: `
    + `${parts.join('; ')}`);
  return drawn;
}
