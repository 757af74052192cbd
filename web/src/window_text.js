// What a window line says in words (where it lies in the score's bars, its tempi, what its
// tokens left out), as music_adapter says them in `hmvae interpolate`'s window lines, so that
// the page's choosers and status line read like the command line.
import { maxOf, minOf } from './extremes.js';
import { DRUM_CLASS_NAMES } from './drums.js';
import { MAX_PITCH, MIN_PITCH } from './melody.js';

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
 * ends in bar 4, bars 5–6 are read as silence" instead. A window whose first bars hold no
 * note (firstNoteBar: a file that opens with empty bars) says '; bars 1–3 are read as silence,
 * the window's first note is in bar 4' first (music_adapter.leading_silence_note). */
export function windowBarsText([first, last], musicEndsBar, sectionMeter, firstNoteBar) {
  let where = barsText(first, last);
  if (firstNoteBar !== undefined) {
    where += `; ${barsText(first, firstNoteBar - 1)} ${firstNoteBar - 1 === first ? 'is' : 'are'} `
      + `read as silence, the window's first note is in bar ${firstNoteBar}`;
  }
  if (musicEndsBar === undefined) return where;
  const ends = sectionMeter
    ? `the window's ${sectionMeter[0]}/${sectionMeter[1]} section ends in bar ${musicEndsBar}`
    : `the music ends in bar ${musicEndsBar}`;
  const silence = sectionMeter ? 'read as silence' : 'silence';
  if (last === musicEndsBar) return `${where}; ${ends}, the rest of the window is ${silence}`;
  return `${where}; ${ends}, ${barsText(musicEndsBar + 1, last)} `
    + `${last === musicEndsBar + 1 ? 'is' : 'are'} ${silence}`;
}

const plural = (count, one, many) => (count > 1 ? many : one);

/** What a one-voice line leaves out, as music_adapter.one_voice_left_out says it: '; 2 notes
 * outside MIDI pitch 21..108 left out; 8 notes starting with a higher one left out (a melody
 * takes the highest)', with its role named for a trio's melody or bass ('; 3 bass notes ...
 * (a bass takes the highest)'), '' for nothing. */
function oneVoiceLeftOut(notesOutOfRange, chordNotes, role = '') {
  const what = role ? `${role} note` : 'note';
  let text = '';
  if (notesOutOfRange) {
    text += `; ${notesOutOfRange} ${what}${plural(notesOutOfRange, '', 's')} outside MIDI pitch `
      + `${MIN_PITCH}..${MAX_PITCH} left out`;
  }
  if (chordNotes) {
    text += `; ${chordNotes} ${what}${plural(chordNotes, '', 's')} starting with a higher one `
      + `left out (a ${role || 'melody'} takes the highest)`;
  }
  return text;
}

/** What a window line says its tokens left out, as `hmvae interpolate` says it: a melody's
 * notes outside MIDI 21..108 and notes starting with a higher one (oneVoiceLeftOut), those
 * of a trio's melody and bass (partsLeftOut: [{role, notesOutOfRange, chordNotes}]), '; 3 drum
 * hits (pitch 25) left out: outside the 9 drum classes' (music_adapter._unmapped_drums), ''
 * for nothing. */
export function leftOutText({
  notesOutOfRange = 0, chordNotes = 0, partsLeftOut = [], unmappedDrums = [],
}) {
  let text = oneVoiceLeftOut(notesOutOfRange, chordNotes);
  for (const part of partsLeftOut) {
    text += oneVoiceLeftOut(part.notesOutOfRange, part.chordNotes, part.role);
  }
  if (unmappedDrums.length) {
    const pitches = [...new Set(unmappedDrums)].sort((a, b) => a - b);
    text += `; ${unmappedDrums.length} ${plural(unmappedDrums.length, 'drum hit', 'drum hits')} `
      + `(${plural(pitches.length, 'pitch', 'pitches')} ${pitches.join(', ')}) left out: `
      + `outside the ${DRUM_CLASS_NAMES.length} drum classes`;
  }
  return text;
}
