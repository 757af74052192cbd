// A converted hmvae model in the browser: hmvae_model.json (written by `hmvae tfjs`) and one
// TF.js graph model per function (sample, decode, encode, interpolate) sharing weight files.
import * as tf from '@tensorflow/tfjs';

export const FORMAT = 'hmvae-tfjs/1';
// The decoders are while loops over 16th-note steps on a batch of a few rows: per-op overhead
// and reading the loop condition back every step dominate, so the plain JS backend beats
// WebGL by far (tiny model in headless Chromium: 0.17 s vs 4.1 s per sample). ?backend=webgl
// switches for large models on a real GPU.
export const DEFAULT_BACKEND = 'cpu';

// The graph models' manifests point at the same weight files (../weights/*.bin): fetch each
// file once per page and hand every loader its own Response of the bytes.
const fetched = new Map();
function sharedFetch(input, init) {
  const url = new URL(String(input), window.location.href).href;
  if (!fetched.has(url)) {
    fetched.set(url, fetch(url, init).then((res) => {
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      return res.arrayBuffer();
    }));
  }
  return fetched.get(url).then((buf) => new Response(buf, { status: 200 }));
}

const toArray = (x) => Array.from(x);

export class HmvaeModel {
  constructor(desc, graphs, url) {
    this.desc = desc;
    this.graphs = graphs;
    this.url = url;
    this.tracks = desc.tracks;
    this.numSteps = desc.num_steps;
    this.zSize = desc.z_size;
  }

  /** Loads hmvae_model.json at `url` and its graph models. */
  static async load(url, onProgress = () => {}) {
    const absolute = new URL(url, window.location.href);
    const res = await fetch(absolute.href);
    if (!res.ok) throw new Error(`${absolute.href}: HTTP ${res.status}`);
    const desc = await res.json();
    if (desc.format !== FORMAT) {
      throw new Error(`${absolute.href}: format ${desc.format}, this page reads ${FORMAT}`);
    }
    const graphs = {};
    const names = Object.keys(desc.graphs);
    let done = 0;
    await Promise.all(names.map(async (name) => {
      const graphUrl = new URL(desc.graphs[name].path, absolute).href;
      graphs[name] = await tf.loadGraphModel(graphUrl, { fetchFunc: sharedFetch });
      done += 1;
      onProgress(done / names.length, name);
    }));
    return new HmvaeModel(desc, graphs, absolute.href);
  }

  has(graph) {
    return graph in this.graphs;
  }

  /** Runs one graph; inputs are plain (nested) arrays keyed by the signature's input names,
   * outputs come back as plain arrays keyed by its output names. */
  async run(graph, inputs) {
    const spec = this.desc.graphs[graph];
    if (!spec) throw new Error(`this model has no ${graph} graph`);
    const feed = {};
    for (const [name, info] of Object.entries(spec.inputs)) {
      if (!(name in inputs)) throw new Error(`${graph}: missing input ${name}`);
      feed[name] = tf.tensor(inputs[name], undefined, info.dtype);
    }
    const outNames = Object.keys(spec.outputs);
    let outs;
    try {
      outs = await this.graphs[graph].executeAsync(feed, outNames);
    } finally {
      Object.values(feed).forEach((t) => t.dispose());
    }
    if (!Array.isArray(outs)) outs = [outs];
    const result = {};
    for (let i = 0; i < outNames.length; i++) {
      result[outNames[i]] = await outs[i].array();
      outs[i].dispose();
    }
    return result;
  }

  rows(result, n) {
    const seqs = [];
    for (let i = 0; i < n; i++) {
      const tokens = {};
      for (const t of this.tracks) tokens[t] = toArray(result[t][i]);
      seqs.push({ tokens, z: result.z ? toArray(result.z[i]) : undefined });
    }
    return seqs;
  }

  checkTemperature(temperature) {
    const t = Number(temperature);
    if (!(t >= 0)) throw new Error(`temperature must be >= 0, got ${temperature}`);
    return t;
  }

  /** n new sequences from the prior: [{tokens: {track: [T]}, z: [Z]}]. */
  async sample(n = 1, temperature = 0.5) {
    const t = this.checkTemperature(temperature);
    const out = await this.run('sample', { temperature: new Array(n).fill(t) });
    return this.rows(out, n);
  }

  /** Decodes latent vectors zRows [[Z], ...]; temperature 0 = argmax. */
  async decode(zRows, temperature = 0) {
    const t = this.checkTemperature(temperature);
    zRows.forEach((z) => {
      if (z.length !== this.zSize) throw new Error(`z must have ${this.zSize} values`);
    });
    const out = await this.run('decode', { z: zRows, temperature: new Array(zRows.length).fill(t) });
    return this.rows(out, zRows.length).map((s, i) => ({ ...s, z: toArray(zRows[i]) }));
  }

  checkTokens(tokens) {
    for (const t of this.tracks) {
      const seq = tokens[t];
      if (!seq || seq.length !== this.numSteps) {
        throw new Error(`${t} needs ${this.numSteps} tokens, got ${seq ? seq.length : 'none'}`);
      }
    }
    return tokens;
  }

  /** q(z|x) of token sequences: [{z, mu, sigma}]. */
  async encode(seqs) {
    const inputs = {};
    for (const t of this.tracks) inputs[t] = seqs.map((s) => toArray(this.checkTokens(s)[t]));
    const out = await this.run('encode', inputs);
    return seqs.map((_, i) => ({ z: out.z[i], mu: out.mu[i], sigma: out.sigma[i] }));
  }

  /** `steps` sequences on the great circle between the posterior means of a and b (token
   * sequences); the endpoints are reconstructions of a and b. */
  async interpolate(a, b, steps = 5, temperature = 0) {
    const t = this.checkTemperature(temperature);
    this.checkTokens(a);
    this.checkTokens(b);
    const alpha = [...Array(steps).keys()].map((i) => (steps > 1 ? i / (steps - 1) : 0));
    const inputs = { alpha, temperature: new Array(steps).fill(t) };
    for (const tr of this.tracks) { // one row each: the graph broadcasts them over alpha
      inputs[`${tr}_a`] = [toArray(a[tr])];
      inputs[`${tr}_b`] = [toArray(b[tr])];
    }
    const out = await this.run('interpolate', inputs);
    return this.rows(out, steps).map((s, i) => ({ ...s, alpha: alpha[i] }));
  }

  dispose() {
    Object.values(this.graphs).forEach((g) => g.dispose());
  }
}

/** Sets the TF.js backend (default cpu: see DEFAULT_BACKEND). */
export async function initBackend(requested = DEFAULT_BACKEND) {
  const ok = await tf.setBackend(requested);
  if (!ok) throw new Error(`TF.js backend ${requested} is not available here`);
  await tf.ready();
  return tf.getBackend();
}

export { tf };
