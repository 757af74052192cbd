// Standard MIDI Files read as the Python side reads them (note_seq through pretty_midi, as
// hmvae_tf/music/midi_io.read_midi), so a file dropped on the page has the notes, meters and
// tempi `hmvae interpolate` reads; a file that is not MIDI is told in midi_io's words.
import * as midiFile from 'midi-file';
import { NoWindowError } from './windows.js';

// midi-file is CommonJS: its functions come as the module or as its default export, as the
// bundler or Node (tools/, tests) loads it.
const { parseMidi } = midiFile.parseMidi ? midiFile : midiFile.default;

/** A Standard MIDI File's notes as the Python side reads it (note_seq through pretty_midi):
 * {ppq, timeSignatures: [{tick, numerator, denominator}] and tempos: [{tick, qpm}] (track 0
 * only, as pretty_midi reads them), instruments:
 * [{program, channel, track, trackName, isDrum, notes: [{startTick, endTick, pitch, velocity}]}]}.
 * One instrument per (program, channel, track) in order of its first finished note; a
 * note-off ends every open note of its pitch and channel that began at an earlier tick (one
 * that would end only notes begun at its own tick ends them a tick later); the
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
    // A note-off that would end only notes begun at its own tick (a drum machine's hit, a
    // zero-length note) ends them one tick later, before that tick's other events, as
    // midi_io._lengthen_zero_length_notes moves it for pretty_midi: [[channel, pitch]] at
    // movedTo.
    let moved = [];
    let movedTo = 0;
    const noteOff = (channel, pitch, at) => {
      const key = `${channel},${pitch}`;
      if (!open.has(key)) return;
      const notes = open.get(key);
      const close = notes.filter(([start]) => start !== at);
      const keep = notes.filter(([start]) => start === at);
      for (const [start, velocity] of close) {
        const id = `${program[channel]},${channel},${track}`;
        if (!instruments.has(id)) {
          instruments.set(id, { program: program[channel], channel, track,
            isDrum: channel === 9, notes: [] });
        }
        instruments.get(id).notes.push({ startTick: start, endTick: at, pitch, velocity });
      }
      if (close.length && keep.length) open.set(key, keep);
      else open.delete(key);
    };
    const endMoved = () => {
      for (const [channel, pitch] of moved) noteOff(channel, pitch, movedTo);
      moved = [];
    };
    for (const ev of events) {
      tick += ev.deltaTime;
      if (moved.length && tick >= movedTo) endMoved();
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
        if (open.get(key).every(([start]) => start === tick)) {
          moved.push([ev.channel, ev.noteNumber]);
          movedTo = tick + 1;
        } else {
          noteOff(ev.channel, ev.noteNumber, tick);
        }
      }
    }
    endMoved();
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
