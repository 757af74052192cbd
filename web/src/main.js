// The demo page: pick a converted model, sample with a temperature, interpolate between two
// sequences (samples or dropped MIDI files), draw piano rolls, play, download .mid.
import { HmvaeModel, initBackend, tf } from './model.js';
import { melodyParts, pitchName } from './melody.js';
import { readMidiFile } from './midi_read.js';
import { interpolationToMidi, tokensToMidi } from './midi_write.js';
import { fileStem, inputTag, interpolationFileName, sampleFileName } from './names.js';
import { drawPianoRoll } from './pianoroll.js';
import { isPlaying, play, stop } from './player.js';
import { PROGRAM_NAMES } from './programs.js';
import { interpolationOctaves, slotWindows } from './register.js';
import { midiToTokens, windowTokens } from './representations.js';
import { writtenTiming } from './timing.js';
import { windowBarsText } from './window_text.js';
import { NoWindowError } from './windows.js';

const params = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);

const state = {
  index: [],
  entry: null,
  model: null,
  slots: { a: null, b: null },
  // The MIDI file behind a slot, while its part and window can still be chosen:
  // {midi, name, instrument (null: the busiest part in each window), window, and once listed
  // parts and windows}.
  sources: { a: null, b: null },
  counter: 0,
  interpolations: 0,
  // The tempo of playback and downloads: the slider's, or slot A's file's at its window (as
  // `hmvae interpolate` writes at a.mid's), which the slider's steps may not hold exactly.
  qpm: 120,
  errors: [],
  // The running action (sample, interpolate, model load): the next one starts after it.
  work: Promise.resolve(),
  // A sample or interpolation is running: Sample and Interpolate stay disabled until it ends.
  running: false,
  // Bumped by every model choice: a load that is no longer the latest choice does nothing.
  loadTicket: 0,
};

/** Runs fn after every earlier action has finished, so that a model is never disposed under a
 * running graph, and a result is drawn with the model that made it. */
function exclusive(fn) {
  const run = state.work.then(fn);
  state.work = run.catch(() => {});
  return run;
}

/** Resolves once the browser has had a chance to paint (TF.js on the CPU backend does not
 * yield while it runs, so a status set just before would never show). */
const painted = () => new Promise((resolve) => {
  requestAnimationFrame(() => setTimeout(resolve, 0));
  setTimeout(resolve, 100); // a hidden tab runs no animation frames
});

/** Enables Sample and Interpolate when they have what they need and nothing runs. */
function updateActions() {
  $('sample').disabled = state.running || !state.model;
  $('interpolate').disabled = state.running || !(state.slots.a && state.slots.b);
}

function setStatus(text, kind = 'ready') {
  const el = $('status');
  el.textContent = text;
  el.dataset.state = kind;
}

const reported = new WeakSet(); // errors already said (a failed start is also rethrown)

function report(err) {
  if (err instanceof Error) {
    if (reported.has(err)) return;
    reported.add(err);
  }
  const message = err instanceof Error ? err.message : String(err);
  state.errors.push(message);
  setStatus(message, 'error');
  console.error(err);
}

// An error nothing caught (a bug, or a browser the page did not expect) is said in the status
// line as well: in the console alone a visitor never sees it, and the page just stops working.
window.addEventListener('error', (ev) => report(ev.error || ev.message));
window.addEventListener('unhandledrejection', (ev) => report(ev.reason));

async function busy(label, fn) {
  setStatus(`${label}…`, 'busy');
  document.body.classList.add('busy');
  state.running = true;
  updateActions();
  await painted();
  const start = performance.now();
  try {
    const result = await fn();
    setStatus(`${state.entry.name}: ${label} in ${((performance.now() - start) / 1000).toFixed(2)} s`
      + ` (${tf.getBackend()})`, 'ready');
    return result;
  } catch (err) {
    report(err);
    return null;
  } finally {
    document.body.classList.remove('busy');
    state.running = false;
    updateActions();
  }
}

const temperature = () => Number($('temperature').value);
const qpm = () => state.qpm;

/** Plays and writes at `value` qpm from now on, and shows it on the tempo slider. */
function setTempo(value) {
  state.qpm = value;
  $('qpm').value = String(value);
  $('qpm-value').textContent = String(value);
}

// --- piano rolls ---------------------------------------------------------------------------
/** Draws `tokens` into `canvas` fitted to `box`'s width, pitched notes moved by `octaves` as
 * they are played and downloaded (back out of the model's register: the roll shows what is
 * heard), and keeps what it shows on the canvas, so that a resized window (a phone turned)
 * redraws it to the new width. */
function drawRoll(canvas, tokens, box, octaves = 0) {
  canvas.roll = { tokens, box, octaves, numSteps: state.model.numSteps };
  drawPianoRoll(canvas, tokens, state.model.numSteps, box.clientWidth - 20, { octaves });
}

/** Redraws every shown piano roll to its box's present width. */
function redrawRolls() {
  for (const canvas of document.querySelectorAll('canvas.pianoroll')) {
    const { roll } = canvas;
    if (!roll || canvas.hidden || !canvas.isConnected) continue;
    drawPianoRoll(canvas, roll.tokens, roll.numSteps, roll.box.clientWidth - 20,
      { octaves: roll.octaves });
  }
}

let resizeTimer = 0;
/** A window being dragged fires resize events by the dozen: redraw once it rests. */
function onResize() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(redrawRolls, 150);
}

// --- cards -----------------------------------------------------------------------------------
/** How a card's tokens are played and written at the slider's tempo: an interpolation made
 * with a file in slot A (or a point of one sent there) in that window's meter and tempi and by
 * its programs, moved back to its ends' register (seq.written, as `hmvae interpolate` writes
 * a.mid's), anything else 4/4 with the default programs. */
function output(seq) {
  const { timing, programs, octaves } = seq.written || {};
  return { timing: writtenTiming(timing, qpm()), programs, octaves };
}

/** Makes link `a` download the .mid that write() makes when clicked, named fileName(qpm) (the
 * tempo is in the name, as the CLI's --qpm), at the slider's tempo at the time. */
function offerDownload(a, fileName, write) {
  a.href = '#';
  a.download = fileName(qpm());
  a.onclick = () => {
    a.download = fileName(qpm());
    const blob = new Blob([write()], { type: 'audio/midi' });
    if (a.dataset.url) URL.revokeObjectURL(a.dataset.url);
    a.dataset.url = URL.createObjectURL(blob);
    a.href = a.dataset.url;
  };
}

/** A card for `seq` ({tokens, stem, tag}: stem and tag name it in an interpolation's files
 * when it goes to A or B; written: see output()); fileName(qpm) names its download
 * (names.js). */
function card(seq, label, fileName, { slots = true } = {}) {
  const el = document.createElement('div');
  el.className = 'card';
  el.dataset.tokens = JSON.stringify(seq.tokens);
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = label;
  const canvas = document.createElement('canvas');
  canvas.className = 'pianoroll';
  drawRoll(canvas, seq.tokens, $('sample-list'), output(seq).octaves);
  const actions = document.createElement('div');
  actions.className = 'actions';
  const playBtn = document.createElement('button');
  playBtn.textContent = '▶ Play';
  playBtn.className = 'play';
  playBtn.addEventListener('click', async () => {
    if (playBtn.classList.contains('playing')) {
      stop();
      return;
    }
    if (isPlaying()) stop();
    const reset = () => {
      playBtn.classList.remove('playing');
      playBtn.textContent = '▶ Play';
    };
    playBtn.classList.add('playing');
    playBtn.textContent = '■ Stop';
    try {
      if (!(window.AudioContext || window.webkitAudioContext)) {
        throw new Error('this browser has no Web Audio; download the .mid instead');
      }
      const { timing, octaves } = output(seq);
      await play(seq.tokens, timing, reset, { octaves });
    } catch (err) {
      reset(); // a failed start must not leave the button at "Stop", where it does nothing
      report(new Error(`cannot play: ${err instanceof Error ? err.message : err}`));
    }
  });
  const download = document.createElement('a');
  download.textContent = '⬇ .mid';
  download.className = 'download';
  offerDownload(download, fileName, () => {
    const { timing, programs, octaves } = output(seq);
    return tokensToMidi(seq.tokens, timing, { programs, octaves });
  });
  actions.append(playBtn, download);
  if (slots) {
    for (const slot of ['a', 'b']) {
      const b = document.createElement('button');
      b.textContent = `→ ${slot.toUpperCase()}`;
      b.title = `use as interpolation ${slot === 'a' ? 'start' : 'end'}`;
      b.className = `to-${slot}`;
      b.addEventListener('click', () => setSlot(slot, sentToSlot(seq), label));
      actions.append(b);
    }
  }
  el.append(title, canvas, actions);
  return el;
}

/** What a card's "→ A" / "→ B" puts in the slot: its tokens and octave move with the meter,
 * tempi and programs its card plays and downloads with (seq.written), as that download
 * dropped on the slot would give them, so that interpolations from the slot are written as the
 * card is (they came out 4/4 at one tempo, program 0). A sample's are the defaults. */
function sentToSlot(seq) {
  const { timing, programs } = seq.written || {};
  return { ...seq, timing, programs };
}

/** Says in the slot why a file meant for it was not taken (the status line at the top of the
 * page may be scrolled out of view), or clears that. */
function slotProblem(slot, message = '') {
  const el = $(`slot-${slot}`).querySelector('.slot-problem');
  el.textContent = message;
  el.hidden = !message;
}

function setSlot(slot, seq, label, source = null) {
  slotProblem(slot);
  // The interpolation shown was between the previous A and B.
  $('interp-list').classList.toggle('stale', $('interp-list').children.length > 0);
  state.slots[slot] = { ...seq, label };
  state.sources[slot] = source;
  const box = $(`slot-${slot}`);
  box.querySelector('.choose').hidden = !source;
  box.querySelector('.slot-label').textContent = `${slot.toUpperCase()}: ${label}`;
  const canvas = box.querySelector('canvas');
  canvas.hidden = false;
  // A file's window is in the model's register: drawn as it was read, as its outputs are
  // moved back (an interpolation's point sent here: as its card draws it).
  drawRoll(canvas, seq.tokens, box, -(seq.octaves || 0));
  updateActions(); // a sample sent to A during a run must not enable Interpolate
}

/** Empties a slot, as the page starts: no piece, no source, no problem said. */
function emptySlot(slot) {
  state.slots[slot] = null;
  state.sources[slot] = null;
  slotProblem(slot);
  const box = $(`slot-${slot}`);
  box.querySelector('.choose').hidden = true;
  box.querySelector('.slot-label').textContent =
    `${slot.toUpperCase()}: drop a .mid file here, or pick a sample with → ${slot.toUpperCase()}`;
  box.querySelector('canvas').hidden = true;
}

function clearSlots() {
  for (const slot of ['a', 'b']) emptySlot(slot);
  $('interpolate').disabled = true;
}

// --- actions ---------------------------------------------------------------------------------
function doSample() {
  return exclusive(() => sampleNow(Number($('count').value), temperature()));
}

async function sampleNow(n, temp) {
  if (!state.model) return;
  const seqs = await busy(`sampled ${n}`, () => state.model.sample(n, temp));
  if (!seqs) return;
  const list = $('sample-list');
  const model = state.entry.name;
  for (const seq of seqs) {
    state.counter += 1;
    const number = state.counter;
    Object.assign(seq, { stem: `sample${number}`, tag: '' });
    list.prepend(card(seq, `sample ${number} (t=${temp})`,
      (q) => sampleFileName({ model, temperature: temp, qpm: q, number })));
  }
  // New samples go into the empty slots, A first.
  const empty = ['a', 'b'].filter((slot) => !state.slots[slot]);
  empty.slice(0, seqs.length).forEach((slot, i) => {
    setSlot(slot, seqs[i], `sample ${state.counter - seqs.length + 1 + i}`);
  });
}

function doInterpolate() {
  return exclusive(() => interpolateNow(Number($('steps').value), temperature()));
}

async function interpolateNow(steps, temp) {
  const { a, b } = state.slots;
  if (!a || !b || !state.model) return;
  const seqs = await busy(`interpolated ${steps} steps`,
    () => state.model.interpolate(a.tokens, b.tokens, steps, temp));
  if (!seqs) return;
  const list = $('interp-list');
  // A or B changed while it ran (→ A, a dropped file): the result is already the previous
  // A and B's.
  list.classList.toggle('stale', state.slots.a !== a || state.slots.b !== b);
  state.interpolations += 1; // in the names, so each run's downloads have names of their own
  const run = state.interpolations;
  const model = state.entry.name;
  // Written in A's window meter and tempi, by its programs (when A holds a file or a point
  // sent there from an interpolation that had one: sentToSlot), each
  // moved back by its own octaves: the ends by their input's move into the model's register.
  // octaves: its move, which a point sent to A or B keeps (its roll and outputs moved back).
  const moves = interpolationOctaves(a.octaves || 0, b.octaves || 0, seqs.length);
  list.replaceChildren(...seqs.map((seq, i) => card(
    Object.assign(seq, { stem: `interp${run}_${i + 1}`, tag: '', octaves: moves[i],
      noShift: a.noShift || b.noShift, // its notes come from files read as written
      written: { timing: a.timing, programs: a.programs, octaves: -moves[i] } }),
    `interpolation ${run}: ${i + 1}/${steps} α=${seq.alpha.toFixed(2)}`,
    (q) => interpolationFileName({ model, a, b, temperature: temp, qpm: q, run, index: i,
      total: steps }),
    { slots: true })));
  // The whole run back to back in one file, as `hmvae interpolate` writes <prefix>_all.mid:
  // each point as its own download writes it (the same meter, tempi, programs and octaves).
  const all = $('interp-all');
  all.hidden = false;
  offerDownload(all, (q) => interpolationFileName({ model, a, b, temperature: temp, qpm: q, run,
    index: null, total: steps }), () => {
    const { timing, programs } = output(seqs[0]);
    return interpolationToMidi(seqs.map((seq) => ({ tokens: seq.tokens,
      octaves: output(seq).octaves })), timing, { programs });
  });
}

// --- MIDI files in the slots -----------------------------------------------------------------
const option = (value, text) => Object.assign(document.createElement('option'), { value, text });

function partText(p) {
  const what = p.trackName && p.trackName !== p.name ? `${p.trackName} (${p.name})` : p.name;
  return `#${p.instrument} ${what}, ${pitchName(p.lowest)}–${pitchName(p.highest)}, `
    + `${p.notes} notes`;
}

function windowText(w, auto, parts) {
  // Bars as the score numbers them (a pickup is bar 0, a 2/4 bar is half a grid bar), as
  // `hmvae interpolate` says them.
  const where = windowBarsText(w.scoreBars, w.musicEndsBar, w.sectionMeter, w.firstNoteBar)
    + w.leftOut + w.register;
  if (!auto || w.instrument === undefined) return where;
  // A track's name tells the voices of a chorale apart, where the program (all piano) does not.
  const trackName = parts.find((p) => p.instrument === w.instrument)?.trackName;
  return `${where} · #${w.instrument} ${trackName || PROGRAM_NAMES[w.program]}`;
}

/** Whether slots read a melody moved into the model's register (the box under the slots, on
 * by default), as `hmvae interpolate` does unless --no_octave_shift. */
const intoModelRegister = () => $('register').checked;

/** The source with its parts (listed once per file) and the chosen part's windows (listed
 * once per part), so that choosing another window re-reads nothing. A melody is read as
 * `hmvae interpolate` reads it: with the register box on, a line with notes outside MIDI
 * 21..108 moved by octaves, the window moved into the register the model learned
 * (register.js), the outputs moved back; with it off, as written (--no_octave_shift). */
function listed(src) {
  const { representation, bars } = state.model.desc;
  const parts = src.parts
    ?? (representation === 'melody' ? melodyParts(src.midi, bars, src.moved) : []);
  const windows = src.windows ?? slotWindows(src.midi, representation, bars, src.instrument,
    src.moved);
  return { ...src, parts, windows };
}

/** Fills a slot's part and window choosers from its listed source (the part chooser for
 * melody models only: drum and trio models take whole parts by role). */
function fillChoosers(slot, src) {
  const { representation } = state.model.desc;
  const partSelect = $(`part-${slot}`);
  partSelect.closest('label').hidden = representation !== 'melody';
  partSelect.replaceChildren(option('', 'the busiest in each window'),
    ...src.parts.map((p) => option(String(p.instrument), partText(p))));
  partSelect.value = src.instrument === null ? '' : String(src.instrument);
  $(`window-${slot}`).replaceChildren(...src.windows.map((w, i) => option(String(i),
    windowText(w, src.instrument === null, src.parts))));
  $(`window-${slot}`).value = String(src.window);
}

/** Takes the source's chosen window into the slot; throws NoWindowError when it has none. */
function takeWindow(slot, unlisted) {
  const src = listed(unlisted);
  const { representation, bars } = state.model.desc;
  // No window: windowTokens throws the NoWindowError that says why.
  const tokens = src.windows.length ? src.windows[src.window].tokens
    : windowTokens(src.midi, representation, bars, 0, src.name, src.instrument, src.moved);
  const {
    qpm: windowQpm, tempo, timing, programs, octaves,
  } = src.windows[src.window];
  // timing and programs: the window's meter, tempi and instruments, which interpolations
  // from slot A take; octaves: its move into the model's register, which outputs undo.
  const seq = { tokens: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k,
    Array.from(v)])), stem: fileStem(src.name), tag: inputTag(src.window, src.instrument),
  noShift: !src.moved && representation === 'melody', timing, programs, octaves };
  setSlot(slot, seq, src.name, src);
  fillChoosers(slot, src);
  // The interpolation plays and downloads at A's tempo there, as `hmvae interpolate` writes
  // at a.mid's (the slider can still change it, as --qpm).
  if (slot === 'a') setTempo(windowQpm);
  const chosen = $(`window-${slot}`).selectedOptions[0];
  setStatus(`${src.name}: window ${src.window + 1} of ${src.windows.length}, `
    + `${chosen ? chosen.textContent : ''}, ${tempo} → ${slot.toUpperCase()}`, 'ready');
}

/** Reads a MIDI file into a slot after the running action: a file dropped while a model
 * loads waits for it (it used to be ignored without a word), and a slot does not change
 * under a running interpolation. */
function readMidi(file, slot) {
  return exclusive(() => readMidiNow(file, slot));
}

/** A file's problem, said in its slot and in the status line, naming the file once ('a.mid:
 * no usable ...', 'cannot read MIDI file a.mid: ...', as `hmvae interpolate` says them). */
function fileProblem(slot, name, err) {
  const message = err instanceof Error ? err.message : String(err);
  slotProblem(slot, message.includes(`${name}:`) ? message : `${name}: ${message}`);
  report(err instanceof NoWindowError ? err.message : err);
}

async function readMidiNow(file, slot) {
  try {
    if (!state.model) throw new Error('no model is loaded to read it for: choose one above');
    // Reading runs on the main thread (a 2,000-bar file takes seconds): say so, and let the
    // status paint before the page is busy (painted(): a hidden tab runs no animation frame,
    // and every later action waits for this one).
    setStatus(`reading ${file.name} (${(file.size / 1e3).toFixed(0)} kB)…`, 'loading');
    await painted();
    const midi = readMidiFile(new Uint8Array(await file.arrayBuffer()), file.name);
    takeWindow(slot, { midi, name: file.name, instrument: null, window: 0,
      moved: intoModelRegister() });
  } catch (err) {
    fileProblem(slot, file.name, err);
  }
}

function setupChoosers() {
  for (const slot of ['a', 'b']) {
    const choose = (change) => {
      const src = state.sources[slot];
      if (!src) return;
      try {
        takeWindow(slot, { ...src, ...change() });
      } catch (err) {
        fileProblem(slot, src.name, err);
      }
    };
    $(`part-${slot}`).addEventListener('change', (ev) => choose(() => ({
      instrument: ev.target.value === '' ? null : Number(ev.target.value), window: 0,
      windows: undefined })));
    $(`window-${slot}`).addEventListener('change', (ev) => choose(() => ({
      window: Number(ev.target.value) })));
  }
  $('register').addEventListener('change', () => exclusive(rereadSlots));
}

/** Reads the slots' files again as the register box now says (after the running action, as a
 * dropped file is), keeping each one's part and window where it still has that window. A file
 * with no usable window under the new setting empties its slot (the piece read before no longer
 * matches the box, and a file with no window fills no slot) and says why there; the slot keeps
 * the file, which the box's other setting reads in again. */
function rereadSlots() {
  if (!state.model) return;
  const { representation, bars } = state.model.desc;
  const moved = intoModelRegister();
  for (const slot of ['a', 'b']) {
    const src = state.sources[slot];
    if (!src || src.moved === moved) continue;
    try {
      const windows = slotWindows(src.midi, representation, bars, src.instrument, moved);
      takeWindow(slot, { ...src, moved, parts: undefined, windows,
        window: src.window < windows.length ? src.window : 0 });
    } catch (err) {
      // The interpolation shown was between the previous A and B.
      $('interp-list').classList.toggle('stale', $('interp-list').children.length > 0);
      emptySlot(slot);
      state.sources[slot] = { ...src, moved, parts: undefined, windows: undefined };
      updateActions();
      fileProblem(slot, src.name, err);
    }
  }
}

function setupDrop() {
  const files = (ev) => [...(ev.dataTransfer ? ev.dataTransfer.files : [])];
  document.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', (ev) => {
    if (ev.target === document.documentElement || ev.target === document.body) {
      document.body.classList.remove('dragging');
    }
  });
  document.addEventListener('drop', async (ev) => {
    ev.preventDefault();
    document.body.classList.remove('dragging');
    const all = files(ev);
    const dropped = all.slice(0, 2);
    const slotEl = ev.target.closest ? ev.target.closest('.slot') : null;
    if (slotEl && dropped.length === 1) {
      await readMidi(dropped[0], slotEl.dataset.slot);
      return;
    }
    const order = dropped.length === 2 ? ['a', 'b'] : [state.slots.a ? 'b' : 'a'];
    for (let i = 0; i < dropped.length; i++) await readMidi(dropped[i], order[i]);
    const left = all.slice(2).map((f) => f.name);
    if (left.length) {
      // A and B hold two pieces: say which files were not taken rather than drop them unseen.
      const el = $('status');
      setStatus(`${el.textContent} (A and B take two files: ${left.length} left out, `
        + `${left.join(', ')})`, el.dataset.state);
    }
  });
  for (const slot of ['a', 'b']) {
    const input = $(`file-${slot}`);
    input.addEventListener('change', async () => {
      if (input.files.length) await readMidi(input.files[0], slot);
      input.value = '';
    });
  }
}

// --- models ----------------------------------------------------------------------------------
async function loadIndex() {
  const url = params.get('models') || 'models/index.json';
  const res = await fetch(url);
  if (!res.ok) {
    throw new Error(`no model list at ${url} (HTTP ${res.status}); convert a model with `
      + '`hmvae tfjs --saved_model=... --out=web/models/<name>`');
  }
  const index = await res.json();
  const base = new URL(url, window.location.href);
  state.index = (index.models || []).map((m) => ({ ...m, url: new URL(m.path, base).href }));
  if (!state.index.length) throw new Error(`${url} lists no models`);
  const select = $('model');
  select.replaceChildren(...state.index.map((m) => {
    const opt = document.createElement('option');
    opt.value = m.name;
    opt.textContent = `${m.name} (${m.config_name}, ${m.bars} bars, `
      + `${(m.weight_bytes / 1e6).toFixed(1)} MB)`;
    return opt;
  }));
}

/** Loads the chosen model once the running action is done; of quick successive choices only
 * the last one loads. */
function loadModel(name) {
  const ticket = ++state.loadTicket;
  return exclusive(() => (ticket === state.loadTicket ? loadNow(name) : state.model));
}

async function loadNow(name) {
  const entry = state.index.find((m) => m.name === name) || state.index[0];
  const unknown = name && entry.name !== name ? ` (the list has no model "${name}")` : '';
  stop();
  if (state.model) state.model.dispose();
  state.model = null;
  state.entry = entry;
  $('model').value = entry.name;
  $('sample').disabled = true;
  $('sample-list').replaceChildren();
  $('interp-list').replaceChildren();
  $('interp-list').classList.remove('stale');
  $('interp-all').hidden = true;
  // Drum and trio models read every part as written: the register box is a melody model's.
  $('register').closest('label').hidden = true;
  state.counter = 0;
  state.interpolations = 0;
  clearSlots();
  setStatus(`loading ${entry.name}…`, 'loading');
  const start = performance.now();
  try {
    state.model = await HmvaeModel.load(entry.url, (frac, graph) => {
      setStatus(`loading ${entry.name}: ${graph} (${Math.round(frac * 100)}%)`, 'loading');
    });
  } catch (err) { // a folder removed or half-copied after index.json was written
    throw new Error(`cannot load ${entry.name}: ${err.message}; convert it again with `
      + '`hmvae tfjs`, or remove it from models/index.json');
  }
  const d = state.model.desc;
  $('model-info').textContent = `${d.config_name}: ${d.representation} (${d.tracks.join(', ')}), `
    + `${d.bars} bars × ${d.steps_per_bar} steps, z ${d.z_size}`
    + `${d.hierarchical ? ', hierarchical decoder' : ''}`;
  updateActions();
  $('interp-section').hidden = !state.model.has('interpolate');
  document.body.dataset.representation = d.representation;
  $('register').closest('label').hidden = d.representation !== 'melody';
  setStatus(`${entry.name} ready in ${((performance.now() - start) / 1000).toFixed(1)} s `
    + `(${tf.getBackend()})${unknown}`, 'ready');
  return state.model;
}

// --- test hook -------------------------------------------------------------------------------
const plain = (seq) => seq.tokens;
window.hmvae = {
  state,
  get model() { return state.model; },
  tf,
  drawPianoRoll,
  backend: () => tf.getBackend(),
  loadModel,
  /** decode(z [Z] or [[Z], ...], temperature = 0) -> tokens {track: [T]} (or a list). */
  async decode(z, temp = 0) {
    const rows = Array.isArray(z[0]) ? z : [z];
    const seqs = await state.model.decode(rows, temp);
    return Array.isArray(z[0]) ? seqs.map(plain) : plain(seqs[0]);
  },
  async sample(n = 1, temp = 0.5) { return state.model.sample(n, temp); },
  async encode(tokens) { return (await state.model.encode([tokens]))[0]; },
  async interpolate(a, b, steps = 5, temp = 0) {
    return (await state.model.interpolate(a, b, steps, temp)).map(plain);
  },
  midiToTokens(bytes, representation, bars, windowIndex = 0, instrument = null) {
    const t = midiToTokens(new Uint8Array(bytes), representation, bars, windowIndex, 'MIDI file',
      instrument);
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.from(v)]));
  },
  tokensToMidi(tokens, tempo = 120) { return Array.from(tokensToMidi(tokens, tempo)); },
};

async function main() {
  $('temperature').addEventListener('input', () => {
    $('temperature-value').textContent = temperature().toFixed(2);
  });
  $('qpm').addEventListener('input', () => setTempo(Number($('qpm').value)));
  setTempo(Number($('qpm').value));
  $('sample').addEventListener('click', doSample);
  $('interpolate').addEventListener('click', doInterpolate);
  $('model').addEventListener('change', () => {
    window.hmvae.ready = loadModel($('model').value).catch(report);
  });
  setupDrop();
  setupChoosers();
  window.addEventListener('resize', onResize); // orientation changes resize too
  clearSlots();
  setStatus('starting TF.js…', 'loading');
  let backend;
  let fallback = '';
  try {
    backend = await initBackend(params.get('backend') || undefined);
  } catch (err) { // e.g. ?backend=webgl without WebGL: the page still works on the cpu
    backend = await initBackend();
    fallback = ` (?backend=${params.get('backend')}: ${err.message})`;
    console.warn(`${err.message}; using the ${backend} backend`);
  }
  $('backend').textContent = `TF.js ${tf.version.tfjs}, ${backend} backend${fallback}`;
  await loadIndex();
  return loadModel(params.get('model'));
}

window.hmvae.ready = main().catch((err) => {
  report(err);
  throw err;
});
