"""`hmvae serve`: TF Serving's gRPC API for machines without the tensorflow_model_server binary.

It reads the same `--model_config_file` (a ModelServerConfig text proto) and answers the same
RPCs with the same messages and status codes, so a client cannot tell it from TF Serving:

  tensorflow.serving.PredictionService/Predict           model_spec name, version or
                                                          version_label, signature_name
                                                          (default serving_default), output_filter
  tensorflow.serving.PredictionService/GetModelMetadata  metadata["signature_def"]: a packed
                                                          SignatureDefMap, straight from the
                                                          SavedModel's "serve" MetaGraph
  tensorflow.serving.ModelService/GetModelStatus         one ModelVersionStatus per version

Classify, Regress, MultiInference and ModelService/HandleReloadConfigRequest answer
UNIMPLEMENTED with a message that says what to use instead.

Status codes as TF Serving: unknown model or version -> NOT_FOUND ("Servable not found for
request: Latest(name)"); unknown signature -> FAILED_PRECONDITION ("Serving signature key "x"
not found."); missing or extra input, wrong dtype or shape, a NaN or infinite z or alpha
(or NaN temperature), a value the graph rejects -> INVALID_ARGUMENT with a message naming the
input; a full batching queue -> UNAVAILABLE.
A bad request never takes the server down.

Extra (not in TF Serving): `/hmvae.serving.ServerStats/Get` answers a JSON document with request
and batching counters (see `fetch_stats`), `--port=0` picks a free port (printed), and without
batching `--max_request_rows` (default 1000, TF Serving's max_batch_size) limits the rows of a
request, which TF Serving leaves unlimited: a model's memory grows with the rows it runs;
`--max_concurrent_rpcs` (default 16 x --grpc_max_threads) limits the calls in the server at
once, past which gRPC answers RESOURCE_EXHAUSTED instead of queueing them without bound.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from hmvae_tf import __version__, arg_types
from hmvae_tf.cli import HelpFormatter

# --max_request_rows: TF Serving's default max_batch_size, the most rows a batching server runs.
DEFAULT_MAX_REQUEST_ROWS = 1000

# --grpc_max_threads by default, and --max_concurrent_rpcs by default: calls in the server
# at once, per --grpc_max_threads.
DEFAULT_GRPC_THREADS = 64
RPCS_PER_THREAD = 16

# Extra RPC of hmvae serve (raw bytes in, JSON out): request and batching counters.
STATS_SERVICE, STATS_METHOD = "hmvae.serving.ServerStats", "Get"


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae serve`: tensorflow_model_server's names and defaults."""
    parser.description = """\
Serve exported SavedModels over TF Serving's gRPC API (PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus) on machines without the tensorflow_model_server
binary. Same flags, config files, messages and status codes as TF Serving:

  hmvae serve --port=8500 --model_config_file=saved_models/models.config [--enable_batching]

Each model's base_path holds numeric version directories; the newest is served (or what the
config's model_version_policy says) and versions that appear later are picked up; a new
version that fails to load leaves the old one serving and is retried. Logs (to stderr, as
TF Serving does) a line as each model version starts and ends loading, and the listening
address. Stop with Ctrl-C or SIGTERM: requests in flight get
up to 5 s to finish.

tensorflow_model_server itself wants absolute base paths in the config file; hmvae serve also
takes relative ones (the shipped saved_models/models.config has them)."""
    parser.formatter_class = _HelpFormatter
    g = parser.add_argument_group("models")
    g.add_argument("--model_config_file", default="",
                   help="ModelServerConfig text proto: model_config_list { config { name: "
                        "\"mel_2bar\" base_path: \"mel_2bar\" model_platform: \"tensorflow\" } }; "
                        "a relative base_path is looked up in the working directory, then beside "
                        "the config file (this or --model_base_path is required)")
    g.add_argument("--model_name", default="default",
                   help="name of the one model to serve (without --model_config_file)")
    g.add_argument("--model_base_path", default="",
                   help="base path of the one model to serve (required without "
                        "--model_config_file)")
    g.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                   help="seconds between looks for new or removed versions; 0 = only at start")
    g.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                   help="threads for the inside of one op (e.g. a matmul); 0 = TF's choice "
                        "(all cores). 1 serves small requests best: on 2 cores a 1-sample call "
                        "of the 2-bar model then costs 11 instead of 17-18 ms of CPU, and 16 "
                        "clients got the most samples/s, batched or not (2-core Zen 4: 772.6 "
                        "against 536.1 batched, 385.3 against 220.7 unbatched)")
    g.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                   help="threads for running independent ops at once; 0 = TF's choice")
    g.add_argument("--tensorflow_session_parallelism", type=int, default=0,
                   help="TF Serving's older flag: both of the above, where they are 0")
    g.add_argument("--max_num_load_retries", type=int, default=5,
                   help="times a version that failed to load is tried again")
    g.add_argument("--load_retry_interval_micros", type=int, default=60_000_000,
                   help="microseconds between those tries")
    g.add_argument("--allow_version_labels_for_unavailable_models", type=_bool, nargs="?",
                   const=True, default=False,
                   help="let a version label name a version that is not loaded (yet)")
    g = parser.add_argument_group("network")
    g.add_argument("--port", type=arg_types.port, default=8500,
                   help="gRPC port; 0 picks a free one")
    g.add_argument("--host", default="0.0.0.0", help="address to bind")
    g.add_argument("--grpc_max_threads", type=arg_types.int_at_least(1),
                   default=DEFAULT_GRPC_THREADS,
                   help="request threads (with batching, at least the number of concurrent "
                        "clients, so that their requests can meet in one batch)")
    g.add_argument("--max_concurrent_rpcs", type=arg_types.int_at_least(0), default=None,
                   help="the most calls in the server at once, running or waiting for a "
                        "thread; gRPC answers more with RESOURCE_EXHAUSTED (\"Concurrent RPC "
                        "limit exceeded!\") instead of letting them wait in memory without "
                        "bound. The default leaves normal load alone: a batching queue holds "
                        "only calls that have a thread, so the limit counts, beyond "
                        "--grpc_max_threads running calls, 15 waiting ones per thread, seconds "
                        "of work at about 10 ms per 1-sample call. 0 = no limit. Not a TF "
                        f"Serving flag (default: {RPCS_PER_THREAD} x --grpc_max_threads, "
                        f"{RPCS_PER_THREAD * DEFAULT_GRPC_THREADS} at its default)")
    g.add_argument("--max_request_rows", type=arg_types.int_at_least(0), default=None,
                   help="without --enable_batching, the most rows (dim 0) a Predict input may "
                        "have; more is INVALID_ARGUMENT. A model's memory grows with the rows "
                        "it runs (a 2-bar sample row about 33 KB, a 16-bar one 160 KB), so "
                        "without a limit one request can take all memory. 0 = no limit, as "
                        "TF Serving. With batching, max_batch_size limits requests instead "
                        "(as in TF Serving). Not a TF Serving flag (default: "
                        f"{DEFAULT_MAX_REQUEST_ROWS})")
    g.add_argument("--grpc_channel_arguments", default="",
                   help="gRPC server options, comma-separated key=value (e.g. "
                        "grpc.max_concurrent_streams=100; default: none)")
    g.add_argument("--rest_api_port", type=int, default=0,
                   help="TF Serving's HTTP/REST port; hmvae serve speaks gRPC only, so this "
                        "must stay 0 (accepted so TF Serving command lines work unchanged)")
    g = parser.add_argument_group("batching (as TF Serving's --enable_batching)")
    g.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False,
                   help="merge concurrent Predict calls to the same model version and signature "
                        "whose inputs have the same non-batch shape into one run of the model")
    g.add_argument("--batching_parameters_file", default="",
                   help="BatchingParameters text proto, e.g. 'max_batch_size { value: 64 } "
                        "batch_timeout_micros { value: 2000 } num_batch_threads { value: 2 } "
                        "max_enqueued_batches { value: 100 }'. Defaults as TF Serving: 1000, 0, "
                        "number of CPUs, 10. With 'enable_large_batch_splitting { value: true } "
                        "max_execution_batch_size { value: 16 }' batches run at most 16 rows and "
                        "a larger request (up to max_batch_size) is split across batches")


    g = parser.add_argument_group(
        "TF Serving flags accepted so its command lines run unchanged (no effect here)")
    g.add_argument("--xla_cpu_compilation_enabled", type=_bool, nargs="?", const=True,
                   default=False, help="XLA-compiled exports always run in hmvae serve")
    g.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                   help="exports carry no warm-up requests; the first call of each signature "
                        "and batch size is the slow one")
    g.add_argument("--model_config_file_poll_wait_seconds", type=int, default=0,
                   help="the config file is read once; restart to change the models")
    g.add_argument("--version", action="version",
                   version=f"hmvae serve {__version__} (TF Serving's gRPC API)")


def _bool(text: str) -> bool:
    """TF Serving's boolean flags: --flag, --flag=true, --flag=false (also 1/0)."""
    value = str(text).lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _channel_arguments(text: str) -> list[tuple[str, object]]:
    """'a=1,b=x' -> [("a", 1), ("b", "x")] (numbers as ints, as gRPC wants them)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--grpc_channel_arguments: {item!r} is not key=value")
        pairs.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return pairs


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """Keeps the description's layout; hides empty defaults, as every command's help does."""


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C or SIGTERM; returns the exit status (2 for bad flags)."""
    log = _log
    if args.rest_api_port:
        log("error: --rest_api_port: hmvae serve has no REST API (gRPC only); use "
            "tensorflow_model_server for REST, or leave it at 0")
        return 2
    if args.batching_parameters_file and not args.enable_batching:
        log("error: --batching_parameters_file needs --enable_batching (as in TF Serving)")
        return 2
    if args.max_request_rows is not None and args.enable_batching:
        log("error: --max_request_rows applies without --enable_batching; with batching, "
            "max_batch_size (--batching_parameters_file, default 1000) limits requests")
        return 2
    if not args.model_config_file and not args.model_base_path:
        log("error: give --model_config_file (or --model_base_path with --model_name)")
        return 2

    from hmvae_tf.serving import model_manager
    from hmvae_tf.serving.batching import BatchingParameters, parse_batching_parameters

    try:
        channel_arguments = _channel_arguments(args.grpc_channel_arguments)
        if args.model_config_file:
            sources = model_manager.read_model_config(args.model_config_file, log=log)
        else:
            sources = model_manager.single_model_config(args.model_name, args.model_base_path)
        batching = None
        if args.enable_batching:
            batching = BatchingParameters().validate()
            if args.batching_parameters_file:
                with open(args.batching_parameters_file) as f:
                    batching = parse_batching_parameters(f.read())
    except (OSError, ValueError) as err:
        log(f"error: {err}")
        return 2

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from hmvae_tf.serving.service import ModelServer

    server = ModelServer(
        sources, batching, log=log,
        intra_op_threads=args.tensorflow_intra_op_parallelism or args.tensorflow_session_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism or args.tensorflow_session_parallelism,
        max_request_rows=(DEFAULT_MAX_REQUEST_ROWS if args.max_request_rows is None
                          else args.max_request_rows))
    server.manager.max_load_retries = args.max_num_load_retries
    server.manager.load_retry_interval = args.load_retry_interval_micros / 1e6
    try:
        server.manager.load_all(strict=True,
                                labels_may_wait=args.allow_version_labels_for_unavailable_models)
        if stop.is_set():  # Ctrl-C or SIGTERM while loading: never bind the port
            server.stop()
            log("stopped before serving")
            return 0
        port = server.start(args.host, args.port, args.grpc_max_threads, channel_arguments,
                            max_concurrent_rpcs=rpc_limit(args))
    except (OSError, ValueError, RuntimeError) as err:
        log(f"error: {err}")
        server.stop()
        return 1
    server.manager.start_polling(args.file_system_poll_wait_seconds)
    if batching:
        log(f"batching: {batching.describe()}")
    log(f"listening on {args.host}:{port} (gRPC: tensorflow.serving.PredictionService, "
        "tensorflow.serving.ModelService)")

    while not stop.wait(0.5):
        pass
    server.stop()
    log("stopped: " + server.summary())
    return 0


def rpc_limit(args: argparse.Namespace) -> int | None:
    """--max_concurrent_rpcs as gRPC takes it: None for no limit (0), by default
    RPCS_PER_THREAD x --grpc_max_threads."""
    if args.max_concurrent_rpcs is None:
        return RPCS_PER_THREAD * args.grpc_max_threads
    return args.max_concurrent_rpcs or None


def _log(message: str) -> None:
    """Log lines go to stderr, as tensorflow_model_server's do (stdout stays free)."""
    print(message, file=sys.stderr, flush=True)


def fetch_stats(address: str, timeout: float = 10.0) -> dict:
    """The stats document of a running `hmvae serve` (not available from TF Serving)."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        raw = channel.unary_unary(f"/{STATS_SERVICE}/{STATS_METHOD}")(b"", timeout=timeout)
    return json.loads(raw)


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="hmvae serve")
    add_arguments(p, "serve")
    sys.exit(run(p.parse_args()))
