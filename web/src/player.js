// Playback with Tone.js synthesizers (no samples, nothing fetched): a triangle lead for the
// melody, a filtered saw for the bass, and one small synth per drum class.
import * as Tone from 'tone';
import { STEPS_PER_QUARTER, drumHits, melodyNotes } from './music.js';

let current = null;

function drumKit() {
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
  ].map((d) => ({ ...d, synth: d.synth.toDestination() }));
}

export function stop() {
  if (!current) return;
  clearTimeout(current.timer);
  current.synths.forEach((s) => s.dispose());
  const { onEnd } = current;
  current = null;
  if (onEnd) onEnd();
}

export function isPlaying() {
  return current !== null;
}

/** Plays tokens ({track: [T]}) at `qpm`; resolves when scheduled. onEnd runs when it stops. */
export async function play(tokens, qpm = 120, onEnd = null) {
  await Tone.start();
  stop();
  const step = 60 / qpm / STEPS_PER_QUARTER;
  const t0 = Tone.now() + 0.1;
  const synths = [];
  let length = 0;
  if (tokens.melody) {
    const lead = new Tone.PolySynth(Tone.Synth, {
      oscillator: { type: 'triangle' },
      envelope: { attack: 0.005, decay: 0.1, sustain: 0.35, release: 0.15 },
      volume: -8,
    }).toDestination();
    synths.push(lead);
    for (const n of melodyNotes(tokens.melody)) {
      lead.triggerAttackRelease(Tone.Frequency(n.pitch, 'midi').toFrequency(),
        (n.end - n.start) * step * 0.95, t0 + n.start * step, 0.8);
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
    }).toDestination();
    synths.push(bass);
    for (const n of melodyNotes(tokens.bass)) {
      bass.triggerAttackRelease(Tone.Frequency(n.pitch, 'midi').toFrequency(),
        (n.end - n.start) * step * 0.95, t0 + n.start * step, 0.8);
    }
    length = Math.max(length, tokens.bass.length);
  }
  if (tokens.drums) {
    const kit = drumKit();
    kit.forEach((d) => synths.push(d.synth));
    for (const h of drumHits(tokens.drums)) {
      const d = kit[h.cls];
      const time = t0 + h.step * step;
      if (d.pitch) d.synth.triggerAttackRelease(d.pitch, step, time);
      else if (d.synth instanceof Tone.NoiseSynth) d.synth.triggerAttackRelease(step, time);
      else d.synth.triggerAttackRelease('C4', step, time, 0.6);
    }
    length = Math.max(length, tokens.drums.length);
  }
  const seconds = length * step + 0.6;
  current = { synths, onEnd, timer: setTimeout(stop, seconds * 1000) };
  return seconds;
}
