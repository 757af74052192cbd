// Melody <-> tokens, as hmvae_tf/music/melody.py: 0 = no event, 1 = note-off, 2..89 = MIDI
// pitch 21..108. 2-bar windows come from programs 0-31 (any pitched program when no part has
// one of those), longer ones from any pitched program, never drums; per instrument the highest
// of simultaneous onsets wins and a new note ends the sounding one. melodyWindows lists the
// windows in the order --window counts them, for the page's choosers, and a window can be
// taken from one part (--instrument).
import { maxOf, minOf } from './extremes.js';
import { STEPS_PER_BAR, segments } from './grid.js';
import { PROGRAM_NAMES } from './programs.js';
import {
  bestTrack, countSkip, explain, onlyFound, onsetCount, silentBars, skippedMeters, unusable,
  windowOf, windowStarts,
} from './windows.js';

export const NO_EVENT = 0;
export const NOTE_OFF = 1;
export const MIN_PITCH = 21;
export const MAX_PITCH = 108;
export const PITCH_OFFSET = MIN_PITCH - 2; // token = pitch - PITCH_OFFSET
export const MELODY_PROGRAMS = [0, 31];
export const PITCHED_PROGRAMS = [0, 127];
export const MELODY_VELOCITY = 80; // written notes' (melody.DEFAULT_VELOCITY)

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
 * chordOnsets (of the notes left out for starting with a higher one), octaves}]. moveOctaves:
 * a line with notes outside MIDI 21..108 is moved by whole octaves first (lineOctaves;
 * octaves says by how many), as melody.segment_tracks moves it for `hmvae interpolate`, which
 * moves the output back. */
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
    // Notes starting with a higher one (all is in onset order, highest first): left out.
    const chordOnsets = all.filter((n, i) => i > 0 && n.start === all[i - 1].start)
      .map((n) => n.start);
    const start = kept.map((n) => n.start);
    const end = kept.map((n, i) => (i + 1 < kept.length ? Math.min(n.end, kept[i + 1].start)
      : n.end));
    const length = (Math.floor(end[end.length - 1] / STEPS_PER_BAR) + 1) * STEPS_PER_BAR;
    const tokens = new Int32Array(length);
    kept.forEach((n, i) => {
      if (i + 1 === kept.length || end[i] < start[i + 1]) tokens[end[i]] = NOTE_OFF;
    });
    kept.forEach((n, i) => { tokens[start[i]] = n.pitch - PITCH_OFFSET; });
    return { instrument, program: kept[0].program, tokens, onsets: start, chordOnsets,
      octaves: moves.get(instrument) || 0 };
  });
}

/** No note-off before the first note-on (a window cut from inside a note). */
export function canonicalize(tokens) {
  for (let i = 0; i < tokens.length && tokens[i] < 2; i++) {
    if (tokens[i] === NOTE_OFF) tokens[i] = NO_EVENT;
  }
  return tokens;
}

/** instrument -> ascending onsets of its pitched notes outside MIDI 21..108 in a segment
 * (once its line is moved by the track's octaves), which a melody window leaves out. */
export function outOfRangeOnsets(seg, tracks) {
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
        chordNotes: onsetCount(tracks[k].chordOnsets, start, numBars),
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
