// MIDI <-> tokens in the browser, mirroring hmvae_tf/music (melody, drums, trio) so a file
// dropped on the page gives the tokens `hmvae interpolate a.mid b.mid` would give.
//
// Grid: 16 steps per 4/4 bar (4 per quarter), onsets and ends rounded half up from MIDI ticks.
// The piece is cut at time-signature changes; meters whose bar is a power-of-two number of
// steps (4/4, 2/4, 2/2, 4/2 ...) fit the grid, others are skipped; a region shorter than a bar
// of the next joins it as a partial (pickup) bar.
// Melody: 0 = no event, 1 = note-off, 2..89 = MIDI pitch 21..108; 2-bar windows from programs
// 0-31 (any pitched program when no part has one of those), longer ones from any pitched
// program, never drums; per instrument the highest of simultaneous onsets wins and a new note ends the sounding one.
// Drums: a 9-bit mask per step over the reduced drum classes (bit 0 kick ... bit 8 ride).
// Trio: melody (programs 0-31), bass (32-39), drums.
// Windows start on every bar; *Windows() list them in the order --window counts them, for the
// page's choosers, and melody windows can be taken from one part (--instrument); a window of a
// file shorter than it counts its silentBars at the end. Each window says the tempo in force at
// its first bar (qpm) and where it lies in the bars the score numbers (scoreBars), as
// `hmvae interpolate` reads and says them.
import * as tonejsMidi from '@tonejs/midi';
import * as midiFile from 'midi-file';

// The bundler reads @tonejs/midi's ES module; Node (tools/, tests) its CommonJS build.
const { Midi } = tonejsMidi.Midi ? tonejsMidi : tonejsMidi.default;
const { parseMidi, writeMidi } = midiFile.parseMidi ? midiFile : midiFile.default;

export const STEPS_PER_BAR = 16;
export const STEPS_PER_QUARTER = 4;
export const NO_EVENT = 0;
export const NOTE_OFF = 1;
export const MIN_PITCH = 21;
export const MAX_PITCH = 108;
export const PITCH_OFFSET = MIN_PITCH - 2; // token = pitch - PITCH_OFFSET
export const MELODY_PROGRAMS = [0, 31];
export const PITCHED_PROGRAMS = [0, 127];
export const BASS_PROGRAMS = [32, 39];
export const MELODY_VELOCITY = 80;
export const DRUM_VELOCITY = 100;
export const TRIO_PROGRAMS = { melody: 0, bass: 33 };
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
export const TRACK_CLASSES = { melody: 90, bass: 90, drums: 512 };
export const REPRESENTATION_TRACKS = {
  melody: ['melody'], drums: ['drums'], trio: ['melody', 'bass', 'drums'],
};

/** General MIDI program names (0-127), as pretty_midi and `hmvae interpolate` print them. */
export const PROGRAM_NAMES = [
  'Acoustic Grand Piano', 'Bright Acoustic Piano', 'Electric Grand Piano', 'Honky-tonk Piano',
  'Electric Piano 1', 'Electric Piano 2', 'Harpsichord', 'Clavinet', 'Celesta', 'Glockenspiel',
  'Music Box', 'Vibraphone', 'Marimba', 'Xylophone', 'Tubular Bells', 'Dulcimer', 'Drawbar Organ',
  'Percussive Organ', 'Rock Organ', 'Church Organ', 'Reed Organ', 'Accordion', 'Harmonica',
  'Tango Accordion', 'Acoustic Guitar (nylon)', 'Acoustic Guitar (steel)',
  'Electric Guitar (jazz)', 'Electric Guitar (clean)', 'Electric Guitar (muted)',
  'Overdriven Guitar', 'Distortion Guitar', 'Guitar Harmonics', 'Acoustic Bass',
  'Electric Bass (finger)', 'Electric Bass (pick)', 'Fretless Bass', 'Slap Bass 1', 'Slap Bass 2',
  'Synth Bass 1', 'Synth Bass 2', 'Violin', 'Viola', 'Cello', 'Contrabass', 'Tremolo Strings',
  'Pizzicato Strings', 'Orchestral Harp', 'Timpani', 'String Ensemble 1', 'String Ensemble 2',
  'Synth Strings 1', 'Synth Strings 2', 'Choir Aahs', 'Voice Oohs', 'Synth Choir', 'Orchestra Hit',
  'Trumpet', 'Trombone', 'Tuba', 'Muted Trumpet', 'French Horn', 'Brass Section', 'Synth Brass 1',
  'Synth Brass 2', 'Soprano Sax', 'Alto Sax', 'Tenor Sax', 'Baritone Sax', 'Oboe', 'English Horn',
  'Bassoon', 'Clarinet', 'Piccolo', 'Flute', 'Recorder', 'Pan Flute', 'Blown bottle', 'Shakuhachi',
  'Whistle', 'Ocarina', 'Lead 1 (square)', 'Lead 2 (sawtooth)', 'Lead 3 (calliope)',
  'Lead 4 chiff', 'Lead 5 (charang)', 'Lead 6 (voice)', 'Lead 7 (fifths)', 'Lead 8 (bass + lead)',
  'Pad 1 (new age)', 'Pad 2 (warm)', 'Pad 3 (polysynth)', 'Pad 4 (choir)', 'Pad 5 (bowed)',
  'Pad 6 (metallic)', 'Pad 7 (halo)', 'Pad 8 (sweep)', 'FX 1 (rain)', 'FX 2 (soundtrack)',
  'FX 3 (crystal)', 'FX 4 (atmosphere)', 'FX 5 (brightness)', 'FX 6 (goblins)', 'FX 7 (echoes)',
  'FX 8 (sci-fi)', 'Sitar', 'Banjo', 'Shamisen', 'Koto', 'Kalimba', 'Bagpipe', 'Fiddle', 'Shanai',
  'Tinkle Bell', 'Agogo', 'Steel Drums', 'Woodblock', 'Taiko Drum', 'Melodic Tom', 'Synth Drum',
  'Reverse Cymbal', 'Guitar Fret Noise', 'Breath Noise', 'Seashore', 'Bird Tweet',
  'Telephone Ring', 'Helicopter', 'Applause', 'Gunshot',
];

export class NoWindowError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NoWindowError';
  }
}

// --- grid ------------------------------------------------------------------------------------
// Math.max(...values) passes every value as an argument: past ~120k of them (the notes of a
// long many-part file) it throws "Maximum call stack size exceeded".
const maxOf = (values) => values.reduce((a, b) => (b > a ? b : a), -Infinity);
const minOf = (values) => values.reduce((a, b) => (b < a ? b : a), Infinity);
const quantize = (ticks, ppq) => Math.floor((Math.max(0, ticks) / ppq) * STEPS_PER_QUARTER + 0.5);
const barSteps = (n, d) => (n * STEPS_PER_BAR) / d;

export function isGridMeter(n, d) {
  if (n <= 0 || d <= 0) return false;
  const steps = barSteps(n, d);
  if (steps !== Math.floor(steps) || steps < 1) return false;
  return (steps & (steps - 1)) === 0;
}

function timeSignatureSteps(midi) {
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

function meterRegions(events) {
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
  return regions;
}

/** A Standard MIDI File's notes as the Python side reads it (note_seq through pretty_midi):
 * {ppq, timeSignatures: [{tick, numerator, denominator}] and tempos: [{tick, qpm}] (track 0
 * only, as pretty_midi reads them), instruments:
 * [{program, channel, track, trackName, isDrum, notes: [{startTick, endTick, pitch, velocity}]}]}.
 * One instrument per (program, channel, track) in order of its first finished note; a
 * note-off ends every open note of its pitch and channel that began at an earlier tick; the
 * program is the channel's at the note-off; channel 10 is drums. Throws an Error saying why
 * in midi_io.read_midi's words when the data is not a whole Standard MIDI File (`name`, the
 * file's, tells a MusicXML score by its extension, as Python does). */
export function readMidi(data, name = '') {
  const raw = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (!raw.length) throw new Error('the file is empty');
  const bytes = unwrapRmid(raw);
  if (bytes.length < 4 || String.fromCharCode(...bytes.subarray(0, 4)) !== 'MThd') {
    const score = scoreFormat(bytes, name);
    throw new Error(`not a Standard MIDI File ${score ? `but ${score}` : "(no 'MThd' header)"}`);
  }
  const truncated = truncation(bytes);
  if (truncated) throw new Error(`it is truncated or corrupt: ${truncated}`);
  // The header's division counts SMPTE frames, not ticks per beat (checked where Python does).
  if (bytes[12] & 0x80) throw new Error('SMPTE time division is not supported');
  let parsed;
  try {
    parsed = parseMidi(bytes);
  } catch (err) {
    throw new Error(`corrupt or unsupported (${err.message || err})`);
  }
  const instruments = new Map();
  const timeSignatures = [];
  const tempos = [];
  const trackNames = [];
  parsed.tracks.forEach((events, track) => {
    let tick = 0;
    const open = new Map(); // channel,pitch -> [[startTick, velocity]]
    const program = new Array(16).fill(0);
    for (const ev of events) {
      tick += ev.deltaTime;
      if (ev.type === 'trackName' && !trackNames[track]) {
        trackNames[track] = ev.text.trim();
      } else if (ev.type === 'timeSignature' && track === 0) {
        timeSignatures.push({ tick, numerator: ev.numerator, denominator: ev.denominator });
      } else if (ev.type === 'setTempo' && track === 0 && ev.microsecondsPerBeat > 0) {
        tempos.push({ tick, qpm: 6e7 / ev.microsecondsPerBeat });
      } else if (ev.type === 'programChange') {
        program[ev.channel] = ev.programNumber;
      } else if (ev.type === 'noteOn' && ev.velocity > 0) {
        const key = `${ev.channel},${ev.noteNumber}`;
        if (!open.has(key)) open.set(key, []);
        open.get(key).push([tick, ev.velocity]);
      } else if (ev.type === 'noteOff' || (ev.type === 'noteOn' && ev.velocity === 0)) {
        const key = `${ev.channel},${ev.noteNumber}`;
        if (!open.has(key)) continue;
        const notes = open.get(key);
        const close = notes.filter(([start]) => start !== tick);
        const keep = notes.filter(([start]) => start === tick);
        for (const [start, velocity] of close) {
          const id = `${program[ev.channel]},${ev.channel},${track}`;
          if (!instruments.has(id)) {
            instruments.set(id, { program: program[ev.channel], channel: ev.channel, track,
              isDrum: ev.channel === 9, notes: [] });
          }
          instruments.get(id).notes.push({ startTick: start, endTick: tick, pitch: ev.noteNumber,
            velocity });
        }
        if (close.length && keep.length) open.set(key, keep);
        else open.delete(key);
      }
    }
  });
  for (const inst of instruments.values()) inst.trackName = trackNames[inst.track] || '';
  return { ppq: parsed.header.ticksPerBeat, timeSignatures, tempos,
    instruments: [...instruments.values()] };
}

/** The Standard MIDI File inside a RIFF MIDI (RMID) file, which some Windows-era collections
 * hold under .mid names (as hmvae_tf.music.midi_io reads it); other data as it is. */
function unwrapRmid(bytes) {
  const tag = (at) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'RMID') return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 12; at + 8 <= bytes.length;) {
    const size = view.getUint32(at + 4, true);
    if (tag(at) === 'data') return bytes.subarray(at + 8, at + 8 + size);
    at += 8 + size + (size & 1); // RIFF chunks are padded to even sizes
  }
  return bytes;
}

/** Where a Standard MIDI File ends too early (inside its header, inside a track, or before
 * the tracks its header announces), in midi_io._truncation's words, else null: a cut-off
 * download is refused, as Python's reader refuses it, where midi-file would read the part
 * that is there. */
function truncation(bytes) {
  if (bytes.length < 14) return 'the file ends inside its header';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const announced = view.getUint16(10);
  let at = 8 + view.getUint32(4);
  for (let track = 0; track < announced; track++) { // in order, as the tracks are read
    if (at + 8 > bytes.length) {
      return `the file ends after track ${track} of the ${announced} its header announces`;
    }
    at += 8 + view.getUint32(at + 4);
    if (at > bytes.length) return `the file ends inside track ${track + 1} of ${announced}`;
  }
  return null;
}

/** A file name's extension, lower-cased ('.xml'), '' for none: as Python's Path.suffix. */
function suffixOf(name) {
  const base = String(name).split(/[\\/]/).pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 && dot < base.length - 1 ? base.slice(dot).toLowerCase() : '';
}

/** What a file that is not MIDI is, and how to make MIDI of it, when it is a score of the
 * kinds notation programs write (musicians drop those first), in midi_io._score_format's
 * words; else null. `name` is the file's name, whose extension says as much as its bytes. */
function scoreFormat(bytes, name) {
  let start = 0;
  const blank = [0xef, 0xbb, 0xbf, 0x20, 0x09, 0x0d, 0x0a]; // a BOM and white space
  const first = bytes.subarray(0, 2000);
  while (start < first.length && blank.includes(first[start])) start++;
  const head = String.fromCharCode(...first.subarray(start)); // bytes as Latin-1
  const suffix = suffixOf(name);
  if (head.startsWith('<') && (head.includes('<score-partwise')
    || head.includes('<score-timewise') || ['.xml', '.musicxml'].includes(suffix))) {
    return 'a MusicXML file: export it as MIDI from the notation program (File > Export)';
  }
  if (head.startsWith('PK') && suffix === '.mxl') {
    return 'a compressed MusicXML file (.mxl): export it as MIDI from the notation program '
      + '(File > Export)';
  }
  if (/^(%[^\n]*\n[ \t\n\r\f\v]*)*X:[ \t\n\r\f\v]*\d/.test(head)) {
    return 'an ABC tune: convert it to MIDI with abc2midi';
  }
  return null;
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
  const pieceOrigin = Math.min(0, regions[0].origin);
  let [first, { origin, downbeat }, meter] = [0, regions[0], [4, 4]];
  for (const r of regions) {
    const regionFirst = Math.floor((r.origin - pieceOrigin) / STEPS_PER_BAR);
    if (isGridMeter(r.n, r.d) && regionFirst <= startBar) {
      [first, { origin, downbeat }, meter] = [regionFirst, r, [r.n, r.d]];
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

/** Bar numbers as the piece's score counts them (grid.ScoreBars): grid bars are the score's
 * bars only in 4/4 (a 2/4 piece has two in each, and after 3/4 bars the grid runs behind);
 * each meter region's bars count at their own length, and a pickup is bar 0.
 * span(gridBar, numBars) -> [first, last] score bar of numBars grid bars from a window's
 * startBar; atOffset(gridBar, steps): the score bar `steps` steps into a grid bar's window
 * (where a tempo change lies); musicAfter(gridBar): whether the piece has music past that
 * grid bar's start (a window padded with silence there stops at its section's end, not the music's);
 * meterOfBar(bar) -> [numerator, denominator] of a score bar's region. */
export function scoreBars(midi) {
  const regions = meterRegions(timeSignatureSteps(midi));
  const pieceOrigin = Math.min(0, regions[0].origin);
  const rows = []; // {lo, downbeat, bar (the downbeat's number), length (steps per bar), meter}
  const grid = []; // [first grid bar, origin step] of each grid-meter region
  for (const { lo, downbeat, origin, n, d } of regions) {
    let bar = 1; // a pickup before the first downbeat is bar 0
    if (rows.length) {
      const prev = rows[rows.length - 1];
      bar = prev.bar + Math.ceil((lo - prev.downbeat) / prev.length) + (downbeat > lo ? 1 : 0);
    }
    rows.push({ lo, downbeat, bar, length: barSteps(n, d), meter: [n, d] });
    if (isGridMeter(n, d)) grid.push([Math.floor((origin - pieceOrigin) / STEPS_PER_BAR), origin]);
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
  const stepOf = (gridBar) => {
    let [first, origin] = grid.length ? grid[0] : [0, 0];
    for (const g of grid) if (g[0] <= gridBar) [first, origin] = g;
    return origin + (gridBar - first) * STEPS_PER_BAR;
  };
  return {
    atStep,
    span(gridBar, numBars) {
      const step = stepOf(gridBar);
      return [atStep(step), atStep(step + numBars * STEPS_PER_BAR - 1)];
    },
    /** The score's bar holding the step `steps` after grid bar `gridBar` starts. */
    atOffset: (gridBar, steps) => atStep(stepOf(gridBar) + steps),
    musicAfter: (gridBar) => end > stepOf(gridBar),
    meterOfBar(bar) {
      let { meter } = rows[0];
      for (const r of rows) if (r.bar - (r.downbeat > r.lo ? 1 : 0) <= bar) ({ meter } = r);
      return meter;
    },
  };
}

/** Python's f'{round(qpm, 3):g}' (MIDI's 89.99991 is 90). */
const shownQpm = (qpm) => String(Number((Math.round(qpm * 1000) / 1000).toPrecision(6)));

/** A window's tempi in a few words, as music_adapter.tempo_text says them: '120 qpm', '120
 * qpm, then 90 from bar 3', and with more than two changes '120 qpm, then 5 changes in bars
 * 3-6 (90-140 qpm)', so a window with tempo changes does not show only its first tempo.
 * barAtBeat(beat): the score's bar number at a beat from the window's start. */
export function tempoText(timing, barAtBeat) {
  const [[, first], ...changes] = timing.tempos;
  if (!changes.length) return `${shownQpm(first)} qpm`;
  if (changes.length <= 2) {
    return `${shownQpm(first)} qpm, then ${changes.map(([beat, qpm]) => `${shownQpm(qpm)} from `
      + `bar ${barAtBeat(beat)}`).join(', ')}`;
  }
  const qpms = timing.tempos.map(([, qpm]) => qpm);
  return `${shownQpm(first)} qpm, then ${changes.length} changes in bars `
    + `${barAtBeat(changes[0][0])}-${barAtBeat(changes[changes.length - 1][0])} `
    + `(${shownQpm(minOf(qpms))}-${shownQpm(maxOf(qpms))} qpm)`;
}

/** 'bars 3–4', or 'bar 3' when a window lies in one bar of the score (a 4/2 bar holds two
 * grid bars), as music_adapter.bars_text says them. */
const barsText = (first, last) => (first === last ? `bar ${first}` : `bars ${first}–${last}`);

/** The page's words for where a window lies, in score bars (midiWindows' scoreBars,
 * musicEndsBar and sectionMeter), as `hmvae interpolate`'s window line says them
 * (music_adapter.bars_text and silence_note): 'bars 1–2', and for a file shorter than the
 * window '; the music ends in bar 1, bar 2 is silence' (a poor reconstruction of it is no
 * mystery then), or '... the rest of the window is silence' when no whole bar is (a 4/2 bar
 * spans two grid bars). A window cut short by a meter change (sectionMeter [n, d]: the music
 * goes on in the next section, which windows do not cross) says "the window's 4/4 section
 * ends in bar 4, bars 5–6 are read as silence" instead. */
export function windowBarsText([first, last], musicEndsBar, sectionMeter) {
  const where = barsText(first, last);
  if (musicEndsBar === undefined) return where;
  const ends = sectionMeter
    ? `the window's ${sectionMeter[0]}/${sectionMeter[1]} section ends in bar ${musicEndsBar}`
    : `the music ends in bar ${musicEndsBar}`;
  const silence = sectionMeter ? 'read as silence' : 'silence';
  if (last === musicEndsBar) return `${where}; ${ends}, the rest of the window is ${silence}`;
  return `${where}; ${ends}, ${barsText(musicEndsBar + 1, last)} `
    + `${last === musicEndsBar + 1 ? 'is' : 'are'} ${silence}`;
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
  // Bar numbers count grid bars from the piece's first one (a pickup bar is bar 0).
  const pieceOrigin = Math.min(0, regions[0].origin);
  const out = [];
  bySeg.forEach((segNotes, r) => {
    if (!segNotes.length) return;
    segNotes.sort((a, b) => a.instrument - b.instrument || a.start - b.start || b.pitch - a.pitch);
    const numSteps = maxOf(segNotes.map((n) => n.end));
    const { origin } = regions[r];
    out.push({ notes: segNotes, numSteps, numBars: Math.ceil(numSteps / STEPS_PER_BAR),
      firstBar: Math.floor((origin - pieceOrigin) / STEPS_PER_BAR), origin,
      qpmAtBar: (bar) => qpmAtStep(midi, origin + bar * STEPS_PER_BAR) });
  });
  return out;
}

// --- melody ----------------------------------------------------------------------------------
const inPitchRange = (pitch) => pitch >= MIN_PITCH && pitch <= MAX_PITCH;

/** instrument -> the whole octaves its line moves by so that the most of its `eligible` notes
 * lie in MIDI 21..108 (the smallest such move), for lines with notes outside, as
 * melody.line_octaves: a piccolo part written an octave up, or a track transposed above MIDI
 * 108, is then read rather than dropped note by note. The caller moves the output back. */
function lineOctaves(eligible) {
  const lines = new Map();
  for (const n of eligible) {
    if (!lines.has(n.instrument)) lines.set(n.instrument, []);
    lines.get(n.instrument).push(n.pitch);
  }
  const moves = new Map();
  for (const [instrument, pitches] of lines) {
    if (pitches.every(inPitchRange)) continue;
    let [best, most] = [0, -1];
    for (let k = -10; k <= 10; k++) {
      const inside = pitches.filter((p) => inPitchRange(p + 12 * k)).length;
      if (inside > most || (inside === most && Math.abs(k) < Math.abs(best))) {
        [best, most] = [k, inside];
      }
    }
    moves.set(instrument, best);
  }
  return moves;
}

/** Monophonic lines of a segment's eligible instruments: [{instrument, program, tokens, onsets,
 * octaves}]. moveOctaves: a line with notes outside MIDI 21..108 is moved by whole octaves
 * first (lineOctaves; octaves says by how many), as melody.segment_tracks moves it for
 * `hmvae interpolate`, which moves the output back. */
export function melodyTracks(seg, programs = MELODY_PROGRAMS, stats = {}, moveOctaves = false) {
  const eligible = seg.notes.filter((n) => !n.isDrum && n.program >= programs[0]
    && n.program <= programs[1]);
  const moves = moveOctaves ? lineOctaves(eligible) : new Map();
  const groups = new Map();
  for (const note of eligible) {
    const octaves = moves.get(note.instrument);
    const n = octaves ? { ...note, pitch: note.pitch + 12 * octaves } : note;
    if (!inPitchRange(n.pitch)) {
      stats.notes_out_of_range = (stats.notes_out_of_range || 0) + 1;
      continue;
    }
    if (!groups.has(n.instrument)) groups.set(n.instrument, []);
    groups.get(n.instrument).push(n);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((instrument) => {
    const all = groups.get(instrument);
    const kept = all.filter((n, i) => i === 0 || n.start !== all[i - 1].start);
    const start = kept.map((n) => n.start);
    const end = kept.map((n, i) => (i + 1 < kept.length ? Math.min(n.end, kept[i + 1].start)
      : n.end));
    const length = (Math.floor(end[end.length - 1] / STEPS_PER_BAR) + 1) * STEPS_PER_BAR;
    const tokens = new Int32Array(length);
    kept.forEach((n, i) => {
      if (i + 1 === kept.length || end[i] < start[i + 1]) tokens[end[i]] = NOTE_OFF;
    });
    kept.forEach((n, i) => { tokens[start[i]] = n.pitch - PITCH_OFFSET; });
    return { instrument, program: kept[0].program, tokens, onsets: start,
      octaves: moves.get(instrument) || 0 };
  });
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
function onsetCount(onsets, startBar, numBars) {
  return lowerBound(onsets, (startBar + numBars) * STEPS_PER_BAR)
    - lowerBound(onsets, startBar * STEPS_PER_BAR);
}

function bestTrack(tracks, startBar, numBars) {
  let best = -1;
  let most = 0;
  tracks.forEach((t, k) => {
    const c = onsetCount(t.onsets, startBar, numBars);
    if (c > most) { most = c; best = k; }
  });
  return best;
}

function windowOf(tokens, startBar, numBars) {
  const steps = numBars * STEPS_PER_BAR;
  const out = new Int32Array(steps);
  const from = startBar * STEPS_PER_BAR;
  for (let i = 0; i < steps; i++) out[i] = from + i < tokens.length ? tokens[from + i] : 0;
  return out;
}

/** No note-off before the first note-on (a window cut from inside a note). */
export function canonicalize(tokens) {
  for (let i = 0; i < tokens.length && tokens[i] < 2; i++) {
    if (tokens[i] === NOTE_OFF) tokens[i] = NO_EVENT;
  }
  return tokens;
}

const windowStarts = (totalBars, numBars) => [...Array(Math.max(1, totalBars - numBars + 1)).keys()];
/** Bars of a window past the end of its segment's music (a file shorter than the model's
 * window is padded with silence), as find_window's silent_bars. */
const silentBars = (seg, start, numBars) => Math.max(0, start + numBars - seg.numBars);

// The counted reasons windows.explain says, in its order and words.
const EXPLAINED = [
  ['no_pitched', 'it has no pitched (non-drum) notes in MIDI pitch 21..108'],
  ['no_drums', 'it has no drum notes (channel 10) of the 9 drum classes'],
  ['drums_elsewhere', 'all its notes are on pitched instruments, and a drum part written on '
    + 'another MIDI channel than 10 is read as one: move the drum part to channel 10 (General '
    + 'MIDI\'s drum channel)'],
  ['notes_out_of_range', 'some notes lie outside MIDI pitch 21..108'],
];

/** The meters off the 16-step grid whose notes were skipped, sorted as Python sorts them. */
const skippedMeters = (stats) => Object.keys(stats).filter((k) => k.startsWith('segments_meter_'))
  .map((k) => k.slice('segments_meter_'.length)).sort();

/** The distinct meters of a piece, for messages (grid.piece_meters). */
const pieceMeters = (midi) => [...new Set(midi.timeSignatures.map((t) => `${t.numerator}/`
  + `${t.denominator}`))].sort();

/** Records the one reason a file gave no window, as windows.count_skip: none past having no
 * notes or none on the grid; `missing` when no segment had the parts, else too short. */
function countSkip(stats, anyTrack, missing) {
  if (stats.no_notes || stats.no_grid_notes) return;
  stats[anyTrack ? 'too_short' : missing] = 1;
}

/** drums.count_pitched_only: a file with notes but none on the drum channel often has its
 * drum part on another channel, which the user can fix once told. */
function countPitchedOnly(midi, stats) {
  if (stats.no_drums && midi.instruments.some((inst) => inst.notes.length)
    && !midi.instruments.some((inst) => inst.isDrum && inst.notes.length)) {
    stats.drums_elsewhere = 1;
  }
}

/** Why no window came out, as windows.explain says it from the counted reasons (after the
 * `reasons` the caller knows better: a trio's missing parts). */
function explain(midi, stats, what, numBars, reasons = []) {
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
function unusable(name, kind, numBars, why) {
  return new NoWindowError(`${name}: no usable ${USABLE[kind]} for a ${numBars}-bar model: `
    + `${why}`);
}

/** 'asked for drum window 3 but only 2 2-bar window(s) exist', as the finders say it. */
const onlyFound = (what, windowIndex, found, numBars) => `asked for ${what} window `
  + `${windowIndex} but only ${found} ${numBars}-bar window(s) exist`;

/** instrument -> ascending onsets of its pitched notes outside MIDI 21..108 in a segment
 * (once its line is moved by the track's octaves), which a melody window leaves out. */
function outOfRangeOnsets(seg, tracks) {
  const moves = new Map(tracks.map((t) => [t.instrument, t.octaves]));
  const onsets = new Map();
  for (const n of seg.notes) {
    if (n.isDrum || !moves.has(n.instrument)
      || inPitchRange(n.pitch + 12 * moves.get(n.instrument))) continue;
    if (!onsets.has(n.instrument)) onsets.set(n.instrument, []);
    onsets.get(n.instrument).push(n.start);
  }
  return onsets;
}

/** grid bar -> pitches of its drum hits that none of the 9 classes holds, over a file's
 * segments (counted as Segment.first_bar counts), for drums.unmapped_hits. */
function unmappedDrumsByBar(segs) {
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

const plural = (count, one, many) => (count > 1 ? many : one);

/** What a window line says its tokens left out, as `hmvae interpolate` says it: '; 2 notes
 * outside MIDI pitch 21..108 left out' (a melody's), '; 3 drum hits (pitch 25) left out:
 * outside the 9 drum classes' (music_adapter._unmapped_drums), '' for nothing. */
export function leftOutText({ notesOutOfRange = 0, unmappedDrums = [] }) {
  let text = '';
  if (notesOutOfRange) {
    text += `; ${notesOutOfRange} ${plural(notesOutOfRange, 'note', 'notes')} outside MIDI pitch `
      + `${MIN_PITCH}..${MAX_PITCH} left out`;
  }
  if (unmappedDrums.length) {
    const pitches = [...new Set(unmappedDrums)].sort((a, b) => a - b);
    text += `; ${unmappedDrums.length} ${plural(unmappedDrums.length, 'drum hit', 'drum hits')} `
      + `(${plural(pitches.length, 'pitch', 'pitches')} ${pitches.join(', ')}) left out: `
      + `outside the ${DRUM_CLASS_NAMES.length} drum classes`;
  }
  return text;
}

/** Every melody window of `programs` (of `instrument` only, when given), in window order:
 * {windows: [{startBar, instrument, program, tokens: {melody}}], anyTrack}. */
function collectMelody(segs, programs, numBars, instrument, stats, moveOctaves) {
  const windows = [];
  let anyTrack = false;
  for (const seg of segs) {
    const tracks = melodyTracks(seg, programs, stats, moveOctaves)
      .filter((t) => instrument === null || t.instrument === instrument);
    anyTrack = anyTrack || tracks.length > 0;
    const outside = outOfRangeOnsets(seg, tracks);
    for (const start of windowStarts(seg.numBars, numBars)) {
      const k = bestTrack(tracks, start, numBars);
      if (k < 0) continue;
      windows.push({ startBar: seg.firstBar + start, instrument: tracks[k].instrument,
        program: tracks[k].program, programs: [tracks[k].program],
        silentBars: silentBars(seg, start, numBars), qpm: seg.qpmAtBar(start),
        notesOutOfRange: onsetCount(outside.get(tracks[k].instrument) || [], start, numBars),
        octaves: tracks[k].octaves,
        tokens: { melody: canonicalize(windowOf(tracks[k].tokens, start, numBars)) } });
    }
  }
  return { windows, anyTrack };
}

/** The melody windows `hmvae interpolate` counts with --window (and --instrument): in each
 * window the part with the most onsets, or only `instrument`, of programs 0-31 for 2 bars and
 * of any pitched program for longer windows (as the training data). A 2-bar file whose only
 * pitched parts lie outside programs 0-31 (a flute or violin line) gives those parts' windows,
 * as the Python client does, with otherPrograms set. moveOctaves: a line with notes outside
 * MIDI 21..108 is read moved by whole octaves (each window's octaves), as find_window's
 * move_octaves. */
export function melodyWindows(midi, numBars, instrument = null, stats = {}, moveOctaves = false) {
  const segs = segments(midi, stats);
  if (!segs.length && !stats.no_notes) stats.no_grid_notes = 1;
  const programs = numBars <= 2 ? MELODY_PROGRAMS : PITCHED_PROGRAMS;
  const search = collectMelody(segs, programs, numBars, instrument, stats, moveOctaves);
  if (!search.anyTrack && programs !== PITCHED_PROGRAMS) {
    const other = collectMelody(segs, PITCHED_PROGRAMS, numBars, instrument, {}, moveOctaves);
    if (other.anyTrack) return { ...other, otherPrograms: true };
  }
  return { ...search, otherPrograms: false };
}

/** The pitched parts a melody can be taken from, for a chooser: [{instrument, program, name,
 * trackName, notes, lowest, highest, windows}] for every non-drum instrument with at least one
 * `numBars`-bar melody window (`name` is the program's General MIDI name), read with
 * melodyWindows' moveOctaves. */
export function melodyParts(midi, numBars, moveOctaves = false) {
  const parts = [];
  midi.instruments.forEach((inst, instrument) => {
    if (inst.isDrum || !inst.notes.length) return;
    const { windows } = melodyWindows(midi, numBars, instrument, {}, moveOctaves);
    if (!windows.length) return;
    const pitches = inst.notes.map((n) => n.pitch);
    parts.push({ instrument, program: inst.program, name: PROGRAM_NAMES[inst.program],
      trackName: inst.trackName || '', notes: inst.notes.length,
      lowest: minOf(pitches), highest: maxOf(pitches), windows: windows.length });
  });
  return parts;
}

const PITCH_CLASSES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B'];
/** 'C4' for MIDI pitch 60. */
export const pitchName = (pitch) => `${PITCH_CLASSES[pitch % 12]}${Math.floor(pitch / 12) - 1}`;

export function melodyFromMidi(midi, numBars, windowIndex = 0, name = 'MIDI file',
  instrument = null, moveOctaves = false) {
  const stats = {};
  const { windows, anyTrack } = melodyWindows(midi, numBars, instrument, stats, moveOctaves);
  if (windowIndex < windows.length) return windows[windowIndex].tokens.melody;
  const which = instrument === null ? '' : ` of instrument ${instrument}`;
  if (windows.length) {
    const offGrid = skippedMeters(stats);
    throw unusable(name, 'melody', numBars, onlyFound(`melody`, `${windowIndex}${which}`,
      windows.length, numBars) + (offGrid.length ? ` (the parts in ${offGrid.join(', ')} do `
      + 'not fit the 16-steps-per-4/4-bar grid)' : ''));
  }
  if (instrument !== null) {
    const present = midi.instruments.map((inst, i) => (inst.isDrum ? -1 : i))
      .filter((i) => i >= 0);
    throw unusable(name, 'melody', numBars, `instrument ${instrument} has no melody notes `
      + `(pitched instruments in the file: ${present.join(', ') || 'none'})`);
  }
  // Any pitched program would have done (melodyWindows), so that is what the file lacks.
  countSkip(stats, anyTrack, 'no_pitched');
  throw unusable(name, 'melody', numBars, explain(midi, stats, 'melody', numBars));
}

// --- drums -----------------------------------------------------------------------------------
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

// --- trio ------------------------------------------------------------------------------------
/** Every trio window (melody, bass and drums all playing), in window order:
 * [{startBar, tokens: {melody, bass, drums}}]. */
export function trioWindows(midi, numBars, stats = {}) {
  const segs = segments(midi, stats);
  if (!segs.length && !stats.no_notes) stats.no_grid_notes = 1;
  const windows = [];
  for (const seg of segs) {
    const mel = melodyTracks(seg, MELODY_PROGRAMS, stats);
    const bass = melodyTracks(seg, BASS_PROGRAMS, stats);
    const drum = drumTrack(seg);
    for (const [role, present] of [['melody', mel.length], ['bass', bass.length], ['drums', drum]]) {
      if (!present) stats[`trio_segments_no_${role}`] = (stats[`trio_segments_no_${role}`] || 0) + 1;
    }
    if (!mel.length || !bass.length || !drum) continue;
    stats.any_track = 1;
    for (const start of windowStarts(seg.numBars, numBars)) {
      const m = bestTrack(mel, start, numBars);
      const b = bestTrack(bass, start, numBars);
      if (m < 0 || b < 0 || !onsetCount(drum.onsets, start, numBars)) continue;
      windows.push({ startBar: seg.firstBar + start, silentBars: silentBars(seg, start, numBars),
        qpm: seg.qpmAtBar(start), programs: [mel[m].program, bass[b].program], tokens: {
        melody: canonicalize(windowOf(mel[m].tokens, start, numBars)),
        bass: canonicalize(windowOf(bass[b].tokens, start, numBars)),
        drums: windowOf(drum.tokens, start, numBars),
      } });
    }
  }
  return windows;
}

/** Why a trio has no melody or bass part, as trio._missing_parts says it: the programs each
 * role takes and those the file's pitched parts play, since a part in the wrong program
 * family (a saxophone lead, a bass written as piano) is the usual cause and its program is
 * what to change. [] when neither is missing. */
function missingTrioParts(midi, stats) {
  const ranges = { melody: MELODY_PROGRAMS, bass: BASS_PROGRAMS };
  const missing = ['melody', 'bass'].filter((role) => stats[`trio_segments_no_${role}`]);
  if (!missing.length) return [];
  const reasons = missing.map((role) => `it has no ${role} notes (a trio's ${role} is `
    + `programs ${ranges[role][0]}-${ranges[role][1]})`);
  const played = [...new Set(midi.instruments.filter((inst) => !inst.isDrum
    && inst.notes.some((n) => n.velocity > 0)).map((inst) => inst.program))]
    .sort((a, b) => a - b);
  reasons.push(played.length ? `its pitched parts play program${played.length > 1 ? 's' : ''} `
    + played.join(', ') : 'it has no pitched notes');
  return reasons;
}

export function trioFromMidi(midi, numBars, windowIndex = 0, name = 'MIDI file') {
  const stats = {};
  const windows = trioWindows(midi, numBars, stats);
  if (windowIndex < windows.length) return windows[windowIndex].tokens;
  if (windows.length) {
    throw unusable(name, 'trio', numBars, onlyFound('trio', windowIndex, windows.length, numBars));
  }
  countSkip(stats, stats.any_track, 'no_trio_instruments');
  if (stats.trio_segments_no_drums) stats.no_drums = 1; // trio._count_drums_elsewhere
  countPitchedOnly(midi, stats);
  throw unusable(name, 'trio', numBars, explain(midi, stats, 'trio (melody + bass + drums)',
    numBars, missingTrioParts(midi, stats)));
}

/** A MIDI file (ArrayBuffer or Uint8Array) read for the page; `name` goes into messages.
 * Throws NoWindowError when it is not a readable Standard MIDI File, in the words
 * `hmvae interpolate` says it in (midi_io.read_midi): 'cannot read MIDI file a.mid: ...'. */
export function readMidiFile(data, name = 'MIDI file') {
  try {
    return readMidi(data, name);
  } catch (err) {
    throw new NoWindowError(`cannot read MIDI file ${name}: ${err.message}`);
  }
}

/** An instrument picks one line of a melody model's input; drum and trio models read whole
 * parts by role. */
function checkInstrument(representation, instrument) {
  if (instrument !== null && representation !== 'melody') {
    throw new Error('an instrument applies to melody models only');
  }
}

/** Every window of a read MIDI file for a representation, in the order --window counts them:
 * [{startBar, silentBars, qpm, scoreBars: [first, last], musicEndsBar (with silent bars only),
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
    for (let bar = w.startBar; bar < w.startBar + numBars; bar++) {
      w.unmappedDrums.push(...(unmapped.get(bar) || []));
    }
    w.leftOut = leftOutText(w);
    w.timing = windowTiming(midi, w.startBar, numBars);
    w.tempo = tempoText(w.timing, (beat) => score.atOffset(w.startBar,
      Math.floor(beat * STEPS_PER_QUARTER + 1e-6)));
    w.scoreBars = score.span(w.startBar, numBars);
    if (!w.silentBars) continue;
    w.musicEndsBar = score.span(w.startBar, numBars - w.silentBars)[1];
    // Windows do not cross a meter change: the next section's notes are not read.
    if (score.musicAfter(w.startBar + numBars - w.silentBars)) {
      w.sectionMeter = score.meterOfBar(w.musicEndsBar);
    }
  }
  return windows;
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

// --- tokens -> notes -> MIDI -----------------------------------------------------------------
/** [{start, end, pitch}] of melody tokens (a note lasts until the next event). */
export function melodyNotes(tokens) {
  const events = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] > NO_EVENT) events.push(i);
  const notes = [];
  events.forEach((s, i) => {
    if (tokens[s] >= 2) {
      notes.push({ start: s, end: i + 1 < events.length ? events[i + 1] : tokens.length,
        pitch: tokens[s] + PITCH_OFFSET });
    }
  });
  return notes;
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
