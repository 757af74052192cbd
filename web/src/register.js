// Moving a melody window by whole octaves into the register the melody models learned, and
// their output back, as hmvae_tf/music/register.py and music_adapter.into_register do for
// `hmvae interpolate`: a piccolo or a bass line is then not read as notes the model never saw.
// The models learned MIDI 48..84 (C3..C6); outside it their reconstructions lose the tune, and
// an octave is the one move that leaves a melody itself.
import { MAX_PITCH, MIN_PITCH, PITCH_OFFSET } from './melody.js';
import { midiWindows } from './representations.js';

export const LOW_PITCH = 48;
export const HIGH_PITCH = 84;
const MIDDLE = (LOW_PITCH + HIGH_PITCH) / 2;

/** Octaves to move melody tokens by so that their notes lie in LOW_PITCH..HIGH_PITCH: 0 when
 * they already do (or there are none); else the move leaving the fewest notes outside, and of
 * those the one centring the notes best (the smaller move if two do), as
 * register.octave_shift. */
export function octaveShift(tokens) {
  const pitches = Array.from(tokens).filter((t) => t >= 2).map((t) => t + PITCH_OFFSET);
  if (!pitches.length || pitches.every((p) => p >= LOW_PITCH && p <= HIGH_PITCH)) return 0;
  const mean = pitches.reduce((a, b) => a + b, 0) / pitches.length;
  const cost = (octaves) => [
    pitches.filter((p) => p + 12 * octaves < LOW_PITCH || p + 12 * octaves > HIGH_PITCH).length,
    Math.abs(mean + 12 * octaves - MIDDLE), Math.abs(octaves)];
  let best = -7;
  for (let octaves = -6; octaves <= 7; octaves++) {
    const [a, b] = [cost(octaves), cost(best)];
    const k = a.findIndex((x, i) => x !== b[i]);
    if (k >= 0 && a[k] < b[k]) best = octaves;
  }
  return best;
}

/** Melody tokens with every note moved by `octaves` octaves; a note that would leave MIDI
 * 21..108 stays an octave (or more) nearer, inside it (register.shift_octaves). */
export function shiftOctaves(tokens, octaves) {
  if (!octaves) return tokens;
  return tokens.map((t) => {
    if (t < 2) return t;
    let pitch = t + PITCH_OFFSET + 12 * octaves;
    while (pitch > MAX_PITCH) pitch -= 12;
    while (pitch < MIN_PITCH) pitch += 12;
    return pitch - PITCH_OFFSET;
  });
}

/** A pitch moved by `octaves` octaves, staying an octave (or more) nearer where it would leave
 * MIDI 0..127 (register.move_notes): output is moved back to its input's register as MIDI
 * rather than tokens, so a line read from above MIDI 108 comes back there. */
export function movePitch(pitch, octaves) {
  let moved = pitch + 12 * octaves;
  while (moved > 127) moved -= 12;
  while (moved < 0) moved += 12;
  return moved;
}

/** Python's round(): halves to the even neighbour (round(0.5) is 0, round(1.5) is 2). */
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 ? r - 1 : r;
}

/** The octaves to move each of `steps` interpolation outputs back by: each end its own
 * input's, the steps between walking from one to the other (register.interpolation_octaves). */
export function interpolationOctaves(start, end, steps) {
  return Array.from({ length: steps },
    (_, i) => roundHalfEven(start + ((end - start) * i) / Math.max(steps - 1, 1)));
}

/** What a window line says of a move: 'read 2 octaves down (...) and written back up'. */
export function describe(octaves) {
  const count = `${Math.abs(octaves)} octave${Math.abs(octaves) > 1 ? 's' : ''}`;
  const [there, back] = octaves < 0 ? ['down', 'up'] : ['up', 'down'];
  return `read ${count} ${there} (it has notes outside MIDI ${LOW_PITCH}..${HIGH_PITCH}, the `
    + `register the model learned) and written back ${back}`;
}

/** A melody model's window (midiWindows, read with moveOctaves) moved by whole octaves into
 * the register the model learned when its notes lie outside it, as
 * music_adapter.into_register: {...window, tokens moved, octaves (with the line's own move:
 * what the outputs are moved back by), register ('; read 1 octave down ...', or '')}. Other
 * models' windows come back as they are (drums have no register; a trio's parts are read as
 * written). */
export function intoRegister(window, representation) {
  if (representation !== 'melody') return { ...window, octaves: 0, register: '' };
  const more = octaveShift(window.tokens.melody);
  const octaves = (window.octaves || 0) + more;
  if (!octaves) return { ...window, octaves: 0, register: '' };
  return { ...window, tokens: { melody: shiftOctaves(window.tokens.melody, more) }, octaves,
    register: `; ${describe(octaves)}` };
}

/** A read file's windows as a slot takes them (midiWindows): with `moveIntoRegister` (the
 * page's "move into the model's register" box, on by default) a melody line moved by octaves
 * to fit MIDI 21..108 and each window into the register the model learned (intoRegister), as
 * `hmvae interpolate` reads it; without, as written, as its --no_octave_shift reads it
 * ({...window, octaves: 0, register: ''}). */
export function slotWindows(midi, representation, bars, instrument, moveIntoRegister) {
  return midiWindows(midi, representation, bars, instrument, moveIntoRegister)
    .map((w) => (moveIntoRegister ? intoRegister(w, representation)
      : { ...w, octaves: 0, register: '' }));
}
