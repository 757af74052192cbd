// Trio <-> tokens, as hmvae_tf/music/trio.py: a melody (programs 0-31), a bass (32-39) and
// drums, each window taking the busiest part of each role; a file without one of them is told
// which programs the role takes and which its parts play.
import { countPitchedOnly, drumTrack } from './drums.js';
import { segments } from './grid.js';
import { PROGRAM_NAMES } from './programs.js';
import {
  MELODY_PROGRAMS, canonicalize, melodyTracks, outOfRangeOnsets,
} from './melody.js';
import {
  bestTrack, countSkip, explain, onlyFound, onsetCount, silentBars, unusable, windowOf,
  windowStarts,
} from './windows.js';

export const BASS_PROGRAMS = [32, 39];
// The programs a trio's output is written with when no input window gives its own.
export const TRIO_PROGRAMS = { melody: 0, bass: 33 };

/** Every trio window (melody, bass and drums all playing), in window order:
 * [{startBar, partsLeftOut (what its melody's and bass's one-voice lines leave out:
 * [{role, notesOutOfRange, chordNotes}], as trio.find_window counts them), instruments (its
 * melody's and bass's), tokens: {melody, bass, drums}}]. */
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
    const outside = [outOfRangeOnsets(seg, mel), outOfRangeOnsets(seg, bass)];
    for (const start of windowStarts(seg.numBars, numBars)) {
      const m = bestTrack(mel, start, numBars);
      const b = bestTrack(bass, start, numBars);
      if (m < 0 || b < 0 || !onsetCount(drum.onsets, start, numBars)) continue;
      const partsLeftOut = [['melody', mel[m]], ['bass', bass[b]]].map(([role, t], i) => ({
        role,
        notesOutOfRange: onsetCount(outside[i].get(t.instrument) || [], start, numBars),
        chordNotes: onsetCount(t.chordOnsets, start, numBars),
      }));
      windows.push({ startBar: seg.firstBar + start, silentBars: silentBars(seg, start, numBars),
        qpm: seg.qpmAtBar(start), programs: [mel[m].program, bass[b].program], partsLeftOut,
        instruments: [mel[m].instrument, bass[b].instrument],
        tokens: {
        melody: canonicalize(windowOf(mel[m].tokens, start, numBars)),
        bass: canonicalize(windowOf(bass[b].tokens, start, numBars)),
        drums: windowOf(drum.tokens, start, numBars),
      } });
    }
  }
  return windows;
}

/** "; other parts not read: instrument 0 'Lead Synth' (program 80), 3 (program 48) (a trio
 * reads one melody part, programs 0-31, and one bass part, 32-39)" for the pitched parts a trio
 * window does not read (`read`: its melody's and bass's instruments), '' for none, as
 * music_adapter.trio_other_parts says it: a pop song's lead outside programs 0-31 (a synth, a
 * saxophone) leaves a piano's chords as the trio's melody. A part is named by its track's name
 * when no other part shares it and it is no General MIDI program's name (part_names). */
export function trioOtherParts(midi, read) {
  const counts = new Map();
  for (const inst of midi.instruments) {
    if (inst.trackName) counts.set(inst.trackName, (counts.get(inst.trackName) || 0) + 1);
  }
  const others = [];
  midi.instruments.forEach((inst, k) => {
    if (inst.isDrum || read.includes(k) || !inst.notes.some((n) => n.velocity > 0)) return;
    const name = inst.trackName;
    const named = name && counts.get(name) === 1 && !PROGRAM_NAMES.includes(name);
    others.push(`${k}${named ? ` '${name}'` : ''} (program ${inst.program})`);
  });
  if (!others.length) return '';
  return `; other parts not read: instrument ${others.join(', ')} (a trio reads one melody `
    + 'part, programs 0-31, and one bass part, 32-39)';
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
