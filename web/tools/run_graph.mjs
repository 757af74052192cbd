// Runs a converted graph model in Node (TF.js cpu backend) on JSON inputs, for tests and
// debugging without a browser: node tools/run_graph.mjs <model.json> '<json inputs>'
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export function loadGraphModelFromFile(path) {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) buffers.push(readFileSync(join(dirname(path), p)));
    specs.push(...group.weights);
  }
  const data = Buffer.concat(buffers);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata,
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await tf.setBackend('cpu');
  const model = await loadGraphModelFromFile(process.argv[2]);
  const raw = JSON.parse(process.argv[3]);
  const feed = {};
  for (const [name, info] of Object.entries(model.modelSignature.inputs)) {
    const dtype = info.dtype === 'DT_INT32' ? 'int32' : 'float32';
    feed[name] = tf.tensor(raw[name], undefined, dtype);
  }
  const names = Object.keys(model.modelSignature.outputs);
  let outs = await model.executeAsync(feed, names);
  if (!Array.isArray(outs)) outs = [outs];
  const result = {};
  for (let i = 0; i < names.length; i++) result[names[i]] = await outs[i].array();
  console.log(JSON.stringify(result));
}
