// Playback with Tone.js synthesizers (no samples, nothing fetched): a triangle lead for the
// melody, a filtered saw for the bass, and one small synth per drum class.
import * as Tone from 'tone';
import { drumHits } from './drums.js';
import { STEPS_PER_QUARTER } from './grid.js';
import { melodyNotes } from './melody.js';
import { movePitch } from './register.js';
import { DEFAULT_TIMING, atTempo, timingSeconds } from './timing.js';

let current = null;

function drumKit(output) {
  const kick = () => new Tone.MembraneSynth({ volume: -4 });
  const noise = (decay, volume) => new Tone.NoiseSynth({
    noise: { type: 'white' }, envelope: { attack: 0.001, decay, sustain: 0 }, volume,
  });
  const metal = (decay, volume) => new Tone.MetalSynth({
    envelope: { attack: 0.001, decay, release: 0.01 }, harmonicity: 5.1, modulationIndex: 32,
    resonance: 4000, octaves: 1.5, volume,
  });
  const tom = (pitch) => ({ synth: new Tone.MembraneSynth({ volume: -10 }), pitch });
  return [
    { synth: kick(), pitch: 'C1' },
    { synth: noise(0.15, -14) },
    { synth: metal(0.05, -30) },
    { synth: metal(0.3, -30) },
    tom('G1'),
    tom('C2'),
    tom('E2'),
    { synth: metal(1.2, -32) },
    { synth: metal(0.6, -34) },
  ].map((d) => ({ ...d, synth: d.synth.connect(output) }));
}

export function stop() {
  if (!current) return;
  clearTimeout(current.timer);
  const { synths, output, endsAt, onEnd } = current;
  current = null;
  // Silent at once; disposed once the hits and notes already scheduled are over: a drum synth
  // disposed before its scheduled hits makes each of them throw an uncaught InvalidAccessError.
  output.gain.cancelScheduledValues(0);
  output.gain.value = 0;
  const left = Math.max(0, endsAt - Tone.now()) + 1.5; // + the longest release (crash)
  setTimeout(() => {
    synths.forEach((s) => s.dispose());
    output.dispose();
  }, left * 1000);
  if (onEnd) onEnd();
}

export function isPlaying() {
  return current !== null;
}

/** Plays tokens ({track: [T]}) in `timing`'s tempi (music.windowTiming, as the .mid is
 * written; a number: at that qpm), pitched notes moved by `octaves` (as written: back to the
 * input's register); resolves when scheduled. onEnd runs when it stops. */
export async function play(tokens, timing = 120, onEnd = null, { octaves = 0 } = {}) {
  await Tone.start();
  stop();
  const tempi = typeof timing === 'number' ? atTempo(DEFAULT_TIMING, timing) : timing;
  const seconds = (steps) => timingSeconds(tempi, steps / STEPS_PER_QUARTER);
  const step = seconds(1); // a drum hit's length
  const t0 = Tone.now() + 0.1;
  const output = new Tone.Gain(1).toDestination(); // stop() mutes it
  const synths = [];
  let length = 0;
  if (tokens.melody) {
    const lead = new Tone.PolySynth(Tone.Synth, {
      oscillator: { type: 'triangle' },
      envelope: { attack: 0.005, decay: 0.1, sustain: 0.35, release: 0.15 },
      volume: -8,
    }).connect(output);
    synths.push(lead);
    for (const n of melodyNotes(tokens.melody)) {
      lead.triggerAttackRelease(Tone.Frequency(movePitch(n.pitch, octaves), 'midi').toFrequency(),
        (seconds(n.end) - seconds(n.start)) * 0.95, t0 + seconds(n.start), 0.8);
    }
    length = Math.max(length, tokens.melody.length);
  }
  if (tokens.bass) {
    const bass = new Tone.PolySynth(Tone.MonoSynth, {
      oscillator: { type: 'sawtooth' },
      filter: { Q: 2, type: 'lowpass' },
      filterEnvelope: { attack: 0.01, decay: 0.2, sustain: 0.3, baseFrequency: 200, octaves: 2 },
      envelope: { attack: 0.01, decay: 0.2, sustain: 0.5, release: 0.1 },
      volume: -14,
    }).connect(output);
    synths.push(bass);
    for (const n of melodyNotes(tokens.bass)) {
      bass.triggerAttackRelease(Tone.Frequency(movePitch(n.pitch, octaves), 'midi').toFrequency(),
        (seconds(n.end) - seconds(n.start)) * 0.95, t0 + seconds(n.start), 0.8);
    }
    length = Math.max(length, tokens.bass.length);
  }
  if (tokens.drums) {
    const kit = drumKit(output);
    kit.forEach((d) => synths.push(d.synth));
    for (const h of drumHits(tokens.drums)) {
      const d = kit[h.cls];
      const time = t0 + seconds(h.step);
      if (d.pitch) d.synth.triggerAttackRelease(d.pitch, step, time);
      else if (d.synth instanceof Tone.NoiseSynth) d.synth.triggerAttackRelease(step, time);
      else d.synth.triggerAttackRelease('C4', step, time, 0.6);
    }
    length = Math.max(length, tokens.drums.length);
  }
  const total = seconds(length) + 0.6;
  current = { synths, output, endsAt: t0 + seconds(length), onEnd,
    timer: setTimeout(stop, total * 1000) };
  return total;
}
