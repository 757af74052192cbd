"""Latency and throughput of the `sample` signature: in-process vs gRPC through `hmvae serve`.

    PYTHONPATH=. python bench/bench_serving.py [--saved_model=saved_models/mel_2bar/1] [--seconds=3]

Without --saved_model it builds the toy contract model (hmvae_tf/serving/toy_model.py: T=32,
a 32-step LSTM sampler; --toy_dec_sizes=256,256 --toy_z_size=256 gives cat-mel_2bar_small's
decoder shape), or with --untrained_config=NAME our own export of that config with its initial
weights (a flat decoder's call costs the same whatever its weights: e.g. the original's
cat-mel_2bar_big, without training one). It measures, for each backend,
  1. one client, batch 1 and batch 64: p50 / p99 latency and throughput;
  2. batch-1 requests from 1, 4 and 16 concurrent clients (threads of this process);
backends:
  in-process          the client library's in-process backend: the server's execution path
                      (service.Servable, a TF1 session with one callable per signature) without
                      gRPC
  gRPC hmvae serve    `hmvae serve` in a subprocess, through the client library's gRPC backend
  gRPC + batching     the same with --enable_batching (TF Serving's default parameters unless
                      --batching_parameters_file is given)
Servers and clients share this machine's cores. It prints one table, then checks the two targets
with measurements made side by side, because this machine's speed drifts by tens of percent
over minutes and cells measured one after another would compare two different machines:
  - gRPC adds at most 2 ms to the p50 of a 1-sample call: --paired_calls rounds of one call to
    in-process and to gRPC, in alternating order, --pause_ms apart. Both run the same
    execution, so the difference is what gRPC itself costs. An empty gRPC call
    (GetModelStatus) takes its turn in the same rounds: the floor of that difference;
  - with 16 clients batching gives >= 3x the unbatched throughput: the two servers take turns,
    --rounds turns each. Beside it, the most any batching could give here: clients and server
    share the cores, so a call costs its gRPC work on both sides (measured with empty calls from
    as many clients) plus the model's work, which batching shrinks at best to the per-row cost
    of a full batch (measured on one core). The ratio of the two per-sample costs bounds the gain.
It reports; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hmvae_tf.serving.client import row_seeds  # noqa: E402
from hmvae_tf.serving.client_backends import GrpcBackend, SavedModelBackend  # noqa: E402
from hmvae_tf.serving.server import fetch_stats  # noqa: E402


def start_server(config: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "hmvae_tf.cli", "serve", "--port=0",
                             f"--model_config_file={config}", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    seen = []
    while True:
        line = lines.get(timeout=300)
        if line is None:
            raise RuntimeError("hmvae serve did not start:\n" + "".join(seen))
        seen.append(line)
        if line.startswith("listening on "):
            return proc, "localhost:" + line.split()[2].rsplit(":", 1)[1]


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def sample_inputs(batch: int, seed: int) -> dict:
    return {"temperature": np.full(batch, 0.5, np.float32), "seed": row_seeds(seed, batch)}


def call_back_to_back(call, clients: int, seconds: float) -> tuple[list[float], float]:
    """`clients` threads, released together, each run `call(client, i)` for i = 0, 1, ...
    until `seconds` have passed. Returns every call's seconds and the wall time."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(c):
        barrier.wait()
        i = 0
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            call(c, i)
            latencies[c].append(time.perf_counter() - t0)
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    return [x for per in latencies for x in per], time.perf_counter() - start


def measure(backend, batch: int, clients: int, seconds: float, warmup: int = 3) -> dict:
    """Each client thread calls sample(batch) back to back for `seconds`. For a gRPC backend
    also the mean time the server spent inside Predict (from hmvae serve's stats call)."""
    for i in range(warmup):
        backend.run("sample", sample_inputs(batch, i))
    address = getattr(backend, "address", None)
    before = fetch_stats(address) if address else None
    times, wall = call_back_to_back(
        lambda c, i: backend.run("sample", sample_inputs(batch, 1000 * c + i)), clients, seconds)
    lat = np.array(times) * 1000
    result = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
              "req_s": len(lat) / wall, "rows_s": len(lat) * batch / wall, "n": len(lat),
              "wall": wall,
              "server_ms": float("nan")}
    if address:
        after = fetch_stats(address)
        calls = after["requests"].get("Predict", 0) - before["requests"].get("Predict", 0)
        busy = (after["handler_seconds"].get("Predict", 0)
                - before["handler_seconds"].get("Predict", 0))
        result["server_ms"] = 1000 * busy / max(calls, 1)
    return result


def paired_latency(calls: dict, rounds: int, pause: float) -> dict[str, np.ndarray]:
    """Milliseconds of each call in `calls` (name -> function of a round number), one call of
    each per round, the order rotating, with `pause` seconds before each call: TensorFlow's
    worker threads keep spinning for a while after a call, and without the pause they would
    slow the next call in the other process."""
    names = list(calls)
    for name in names:
        for i in range(3):
            calls[name](i)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            time.sleep(pause)
            t0 = time.perf_counter()
            calls[name](10_000 + i)
            times[name].append(1000 * (time.perf_counter() - t0))
    return {name: np.array(t) for name, t in times.items()}


def sample_call(backend):
    """A 1-sample call through `backend`, seeded by the round number."""
    return lambda i: backend.run("sample", sample_inputs(1, i))


def empty_call(address: str, model: str):
    """A gRPC round trip with no TensorFlow work on either side (ModelService.GetModelStatus):
    what the Python gRPC stacks of client and server cost by themselves on this machine."""
    import grpc

    from hmvae_tf.serving import protos

    apis = protos.apis()
    stub = apis.model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(address))
    request = apis.get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    return lambda i: stub.GetModelStatus(request, timeout=60)


def alternating_throughput(backends: dict, clients: int, seconds: float, rounds: int) -> dict:
    """Requests/s of batch-1 calls from `clients` threads, the backends taking `rounds` turns
    each of seconds/rounds, in alternating order."""
    done = {name: [0, 0.0] for name in backends}
    names = list(backends)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            m = measure(backends[name], 1, clients, seconds / rounds)
            done[name][0] += m["n"]
            done[name][1] += m["wall"]
    return {name: n / wall for name, (n, wall) in done.items()}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rpc_cpu_per_call(address: str, model: str, server_pid: int, clients: int,
                     seconds: float) -> tuple[float, float]:
    """CPU seconds an empty gRPC call (GetModelStatus, no TensorFlow work) costs the client
    (this process) and the server, with `clients` threads calling back to back: the part of
    every Predict that no batching can share out. The threads share one channel, as the
    Predict clients of `measure` do."""
    call = empty_call(address, model)
    call(0)
    server0, client0 = process_cpu_seconds(server_pid), time.process_time()
    times, _ = call_back_to_back(lambda c, i: call(i), clients, seconds)
    n = max(len(times), 1)
    return (time.process_time() - client0) / n, (process_cpu_seconds(server_pid) - server0) / n


def _seconds_on_one_core(version_dir: str, rows: int, calls: int, budget: float) -> float:
    import tensorflow as tf

    from hmvae_tf.serving.service import Servable

    one = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    servable = Servable("ceiling", 1, version_dir, one)
    inputs = sample_inputs(rows, 0)
    for _ in range(2):
        servable.run("sample", inputs)
    times: list[float] = []
    while len(times) < calls and sum(times) < budget:
        t0 = time.perf_counter()
        servable.run("sample", inputs)
        times.append(time.perf_counter() - t0)
    servable.session.close()
    return float(np.median(times))


def model_seconds_on_one_core(version_dir: str, rows: list[int], calls: int = 30,
                              budget: float = 10.0) -> list[float]:
    """Median seconds of a sample of each of `rows` rows in a session with one thread of each
    kind (inline and pooled then cost the same): the model's CPU cost of that call, without
    gRPC. At most `calls` timed calls after two warm-ups, fewer if they pass `budget` seconds.
    Runs in a child process: TensorFlow sizes a process's CPU thread pools by its first
    session, so a one-thread session here would leave the in-process backend one-threaded."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.starmap(_seconds_on_one_core, [(version_dir, r, calls, budget) for r in rows])


def export_untrained(config_name: str, export_base: str) -> str:
    """Exports `config_name`'s model as initialised: sampling from a flat decoder runs the same
    ops on the same shapes whatever the weights, so the timing is a trained model's."""
    from hmvae_tf.configs import get_config
    from hmvae_tf.export import export_saved_model
    from hmvae_tf.model.vae import MusicVAE

    config = get_config(config_name)
    if config.conductor_rnn_size:
        raise SystemExit(f"{config_name}: a hierarchical decoder's parallel-bar decode stops "
                         "when its tokens settle, so its cost depends on trained weights")
    model = MusicVAE(config)
    model.build()
    return export_saved_model(model, export_base, version=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--saved_model", default="", help="SavedModel version dir (default: toy model)")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell")
    ap.add_argument("--batching_parameters_file", default="",
                    help="BatchingParameters for the batching server (default: TF Serving's)")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--paired_calls", type=int, default=500,
                    help="rounds of side-by-side 1-sample calls for the gRPC overhead")
    ap.add_argument("--pause_ms", type=float, default=5.0,
                    help="pause before each of those calls")
    ap.add_argument("--rounds", type=int, default=6,
                    help="turns each of the batched and unbatched server for the batching gain "
                         "(2 x --seconds in all per server)")
    ap.add_argument("--server_flags", default="",
                    help="extra flags for both servers, e.g. '--tensorflow_intra_op_parallelism=1'")
    ap.add_argument("--untrained_config", default="",
                    help="instead of a SavedModel, export this named flat config with its initial "
                         "weights (e.g. cat-mel_2bar_big)")
    ap.add_argument("--toy_dec_sizes", default="32", help="toy model decoder LSTM sizes")
    ap.add_argument("--toy_z_size", type=int, default=8, help="toy model latent size")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_serving_")
    if args.saved_model:
        version_dir = os.path.abspath(args.saved_model)
        what = version_dir
    elif args.untrained_config:
        version_dir = export_untrained(args.untrained_config, os.path.join(tmp, "models", "bench"))
        what = f"{args.untrained_config} with its initial weights (exported untrained)"
    else:
        from hmvae_tf.serving.toy_model import build_toy_saved_model
        sizes = tuple(int(n) for n in args.toy_dec_sizes.split(","))
        version_dir = build_toy_saved_model(os.path.join(tmp, "models", "toy", "1"),
                                            z_size=args.toy_z_size, dec_sizes=sizes)
        what = (f"toy contract model (T=32, Z={args.toy_z_size}, decoder LSTM "
                f"{list(sizes)} sampling 32 steps)")
    from hmvae_tf.serving.model_manager import write_models_config
    config = write_models_config(os.path.join(tmp, "models.config"),
                                 {"bench": os.path.dirname(version_dir)})
    flags = args.server_flags.split()
    batching = flags + ["--enable_batching"] + (
        [f"--batching_parameters_file={args.batching_parameters_file}"]
        if args.batching_parameters_file else [])
    clients = [int(c) for c in args.clients.split(",")]

    print(f"model: {what}")
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start")
    print(f"server flags: {' '.join(flags) or '(defaults)'}; batching: "
          f"{args.batching_parameters_file or 'TF Serving defaults'}")
    # The model's own cost, measured first while nothing else runs.
    most = max(clients)
    one_row, full_batch = model_seconds_on_one_core(version_dir, [1, most])
    backends = {"in-process": SavedModelBackend(version_dir)}
    servers = []
    try:
        for label, extra in (("gRPC hmvae serve", flags), ("gRPC + batching", batching)):
            proc, address = start_server(config, extra)
            servers.append(proc)
            backends[label] = GrpcBackend(address, "bench")
        rows = []
        for label, backend in backends.items():
            for batch in (1, 64):
                rows.append((label, batch, 1, measure(backend, batch, 1, args.seconds)))
            for c in clients:
                if c != 1:
                    rows.append((label, 1, c, measure(backend, 1, c, args.seconds)))
        paired = paired_latency(
            {"in-process": sample_call(backends["in-process"]),
             "gRPC hmvae serve": sample_call(backends["gRPC hmvae serve"]),
             "empty gRPC call": empty_call(backends["gRPC hmvae serve"].address, "bench")},
            args.paired_calls, args.pause_ms / 1000)
        rpc = rpc_cpu_per_call(backends["gRPC hmvae serve"].address, "bench", servers[0].pid,
                               most, args.seconds) if most > 1 else None
        gains = alternating_throughput({k: backends[k] for k in
                                        ("gRPC hmvae serve", "gRPC + batching")},
                                       most, 2 * args.seconds, args.rounds) if most > 1 else None
        # How each server ended up running each signature and batch size (one model served).
        run_modes = {label: next(iter(fetch_stats(backends[label].address)["run_modes"].values()))
                     for label in ("gRPC hmvae serve", "gRPC + batching")}
    finally:
        for proc in servers:
            stop_server(proc)

    print(f"\n{'backend':<18} {'batch':>5} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'req/s':>8} {'samples/s':>10} {'calls':>6} {'server ms':>9}")
    for label, batch, c, r in rows:
        server = "" if np.isnan(r["server_ms"]) else f"{r['server_ms']:.2f}"
        print(f"{label:<18} {batch:>5} {c:>7} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['req_s']:>8.1f} {r['rows_s']:>10.1f} {r['n']:>6} {server:>9}")
    print("server ms: mean time inside the server's Predict handler (queueing for a batch "
          "included); the rest of a call's latency is the client, gRPC and the network stack")

    grpc_ms = paired["gRPC hmvae serve"]
    p50 = {name: float(np.median(t)) for name, t in paired.items()}
    print(f"\nside by side, {args.paired_calls} 1-sample calls each, rotating, "
          f"{args.pause_ms:g} ms apart: p50 "
          + ", ".join(f"{name} {ms:.2f} ms" for name, ms in p50.items()))
    over = p50["gRPC hmvae serve"] - p50["in-process"]
    print(f"gRPC overhead, p50 of a 1-sample call: {over:+.2f} ms over the in-process client, "
          f"the same execution without the wire (target <= 2 ms): "
          f"{'met' if over <= 2 else 'NOT met'}; p50 of the paired differences "
          f"{float(np.median(grpc_ms - paired['in-process'])):+.2f} ms")
    print(f"floor: an empty gRPC round trip (GetModelStatus, no TensorFlow work) takes "
          f"{p50['empty gRPC call']:.2f} ms p50 at the same pause: the Python gRPC client and "
          "server alone, which no change to the model or its execution can remove")
    for label, modes in run_modes.items():
        print(f"{label}: ran " + ", ".join(f"{k} {v}" for k, v in modes.items()))
    if gains:
        unbatched, batched = gains["gRPC hmvae serve"], gains["gRPC + batching"]
        gain = batched / unbatched
        print(f"batching gain at {most} clients, {args.rounds} alternating turns each: "
              f"{batched:.1f} vs {unbatched:.1f} samples/s = {gain:.2f}x throughput "
              f"(target >= 3x): {'met' if gain >= 3 else 'NOT met'}")
        rpc_ms = 1000 * sum(rpc)
        alone_ms, row_ms = 1000 * one_row, 1000 * full_batch / most
        cpus = os.cpu_count() or 1
        bound_unbatched, bound_batched = 1000 * cpus / (rpc_ms + alone_ms), 1000 * cpus / (rpc_ms + row_ms)
        print(f"ceiling: a gRPC call costs {rpc_ms:.2f} ms of CPU (client {1000 * rpc[0]:.2f} + "
              f"server {1000 * rpc[1]:.2f}, empty calls from {most} clients); the model "
              f"{alone_ms:.2f} ms for one sample alone and {row_ms:.2f} ms per sample in a batch of "
              f"{most} (one core). With all {cpus} cpus busy: at most {bound_unbatched:.0f} samples/s "
              f"unbatched, {bound_batched:.0f} with every batch full, so batching can give at most "
              f"{bound_batched / bound_unbatched:.2f}x here; measured {unbatched / bound_unbatched:.0%} "
              f"and {batched / bound_batched:.0%} of those bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
