import * as tf from '@tensorflow/tfjs';
import { loadGraphModelFromFile } from './run_graph.mjs';
await tf.setBackend('cpu');
const model = await loadGraphModelFromFile(process.argv[2]);
const raw = JSON.parse(process.argv[3]);
const proto = Object.getPrototypeOf(model.executor);
let lastMap = null; let usedNodes = null; let lastContext = null;
const orig = proto.processChildNodes;
proto.processChildNodes = function (node, stack, context, tensorMap, added, used) {
  lastMap = tensorMap; usedNodes = used; lastContext = context;
  return orig.call(this, node, stack, context, tensorMap, added, used);
};
const feed = {};
for (const [name, info] of Object.entries(model.modelSignature.inputs)) {
  feed[name] = tf.tensor(raw[name], undefined, info.dtype === 'DT_INT32' ? 'int32' : 'float32');
}
try {
  await model.executeAsync(feed, Object.keys(model.modelSignature.outputs));
  console.log('OK');
} catch (e) {
  console.log(String(e).slice(0, 200));
  const nodes = model.executor.graph.nodes;
  const have = (n) => Object.keys(lastMap).some((k) => k === n || k.startsWith(n + '-'));
  for (const name of usedNodes) {
    const n = nodes[name];
    if (!n || have(name)) continue;
    const ins = n.inputNames.map((i) => i.split(':')[0].replace(/^\^/, ''));
    const missing = ins.filter((i) => !have(i));
    if (missing.length < ins.length || n.op === 'Merge') {
      console.log('BLOCKED', n.op, name, 'missing:', missing.map((m) => `${nodes[m] ? nodes[m].op : '?'}:${m}`).join(', '));
    }
  }
}
