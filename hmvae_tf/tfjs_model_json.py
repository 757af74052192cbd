"""The tensorflowjs converter's model.json files, checked and rewritten so TF.js runs them.

The converter's output needs three rewrites before the page can run it (each function says
why): its signature named after the function's own inputs and outputs (name_signature), the
control-dependency edges TF.js cannot run inside a lowered loop dropped
(strip_control_dependencies), and fused activations TF.js lacks split back out
(unfuse_activations). graph_ops and forbidden_ops then check that no op TF.js cannot run,
or that would make its results irreproducible, is left.
"""
from __future__ import annotations

import base64
import collections
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

# Ops the browser graphs must never contain: TF.js has no stateless random ops, and
# Assert/CheckNumerics/Print would only be stripped (or fail) there.
FORBIDDEN_OP_PREFIXES = ("Stateless",)
FORBIDDEN_OPS = {"Assert", "CheckNumerics", "Print", "PrintV2", "StatelessRandomUniformV2",
                 "RandomUniformInt", "CudnnRNN", "CudnnRNNV2", "CudnnRNNV3"}
ALLOWED_STATELESS = {"StatelessWhile", "StatelessIf"}  # control flow v2, not randomness


def graph_ops(model_json: dict) -> collections.Counter:
    """Op name -> count over a TF.js graph model's nodes, function library included."""
    topology = model_json["modelTopology"]
    ops = collections.Counter(n["op"] for n in topology.get("node", []))
    for fn in topology.get("library", {}).get("function", []):
        ops.update(n["op"] for n in fn.get("nodeDef", []))
    return ops


def forbidden_ops(ops: Iterable[str]) -> set[str]:
    """The ops among `ops` that TF.js lacks or that would make its results irreproducible."""
    return {op for op in ops if op in FORBIDDEN_OPS or (
        op.startswith(FORBIDDEN_OP_PREFIXES) and op not in ALLOWED_STATELESS)}


def signature_tensor_info(sig: dict) -> dict:
    """A model.json signature's tensors as the bundle's description lists them: name ->
    dtype and shape (-1 = any size)."""
    dtypes = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_BOOL": "bool"}
    return {k: {"dtype": dtypes.get(v["dtype"], v["dtype"]),
                "shape": [int(d.get("size", -1)) for d in v.get("tensorShape", {}).get("dim", [])]}
            for k, v in sorted(sig.items())}


def strip_control_dependencies(model_json_path: str) -> dict:
    """Drops control-dependency edges ("^node" inputs) and the NoOps that only carry them.

    Freezing turns the variable reads inside the decoder's while loop into constants but
    keeps the control edges around them (NoOps fed by the loop's Enter/Switch nodes). TF.js's
    executor never runs those NoOps inside a lowered loop frame, so every node behind them
    waits forever ("Cannot compute the outputs"). An inference graph's data edges already fix
    the order that matters: the stateful random ops have no ordering to keep.
    """
    def clean(nodes):
        kept = [n for n in nodes if n["op"] != "NoOp"]
        for n in kept:
            if "input" in n:
                n["input"] = [i for i in n["input"] if not i.startswith("^")]
        return kept

    return _rewrite_nodes(model_json_path, clean)


def _rewrite_nodes(model_json_path: str, rewrite) -> dict:
    """Replaces the node list of a model.json's graph and of each of its library functions
    by rewrite(nodes); writes the file back and returns its contents."""
    with open(model_json_path) as f:
        model_json = json.load(f)
    topology = model_json["modelTopology"]
    topology["node"] = rewrite(topology.get("node", []))
    for fn in topology.get("library", {}).get("function", []):
        if "nodeDef" in fn:
            fn["nodeDef"] = rewrite(fn["nodeDef"])
    with open(model_json_path, "w") as f:
        json.dump(model_json, f)
    return model_json


# Activations TF.js can run fused into a _FusedMatMul (tfjs-core's fused ops: relu, relu6,
# elu, leakyrelu, prelu, sigmoid; "linear" is no activation).
TFJS_FUSED_ACTIVATIONS = {"Relu", "Relu6", "Elu", "LeakyRelu", "Prelu", "Sigmoid"}


def unfuse_activations(model_json_path: str) -> dict:
    """Moves activations TF.js cannot run fused out of `_FusedMatMul` nodes, into nodes of
    their own under the fused node's name (so its consumers are unchanged).

    Where TensorFlow runs with oneDNN (by default on CPUs with AVX-512 VNNI/BF16 or AMX),
    grappler's remapper also fuses Tanh into a MatMul + BiasAdd, e.g. the dense layers that
    turn z into LSTM states. TF.js then fails at run time with "Activation tanh has not been
    implemented".
    """
    def decode(strings):
        return [base64.b64decode(s).decode() for s in strings]

    def encode(names):
        return [base64.b64encode(n.encode()).decode() for n in names]

    def split(nodes):
        out = []
        for node in nodes:
            fused = decode(node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", []))
            if node["op"] != "_FusedMatMul" or not fused or fused[-1] == "BiasAdd" \
                    or fused[-1] in TFJS_FUSED_ACTIVATIONS:
                out.append(node)
                continue
            product = {**node, "name": f"{node['name']}/product",
                       "attr": {**node["attr"], "fused_ops": {"list": {"s": encode(fused[:-1])}}}}
            activation = {"name": node["name"], "op": fused[-1], "input": [product["name"]],
                          "attr": {"T": node["attr"]["T"]}}
            if "device" in node:
                activation["device"] = node["device"]
            out += [product, activation]
        return out

    return _rewrite_nodes(model_json_path, split)


def name_signature(model_json_path: str,
                   signature_fn: tf.types.experimental.ConcreteFunction) -> dict:
    """Gives the graph model's signature the function's own input and output names.

    The converter names a signature tensor by matching dtype and shape against the
    SignatureDef and falls back to the raw tensor name ("alpha:0", "Identity_1:0") when
    several tensors look alike; rename from the function itself (inputs are placeholders
    named after their keys; outputs are the structured outputs in sorted-key order).
    """
    with open(model_json_path) as f:
        model_json = json.load(f)
    sig = model_json["signature"]
    by_tensor = {v["name"]: v for v in list(sig["inputs"].values())}
    inputs = {}
    for tensor in signature_fn.inputs:
        if tensor.dtype == "resource" or tensor.name not in by_tensor:
            continue
        inputs[tensor.name.split(":")[0]] = by_tensor[tensor.name]
    keys = sorted(signature_fn.structured_outputs)
    by_tensor = {v["name"]: v for v in sig["outputs"].values()}
    outputs = {key: by_tensor[t.name] for key, t in zip(keys, signature_fn.outputs)}
    if len(inputs) != len(sig["inputs"]) or len(outputs) != len(sig["outputs"]):
        raise RuntimeError(f"{model_json_path}: cannot name the signature's tensors "
                           f"({sorted(sig['inputs'])} -> {sorted(sig['outputs'])})")
    model_json["signature"] = {"inputs": inputs, "outputs": outputs}
    with open(model_json_path, "w") as f:
        json.dump(model_json, f)
    return model_json
