"""Server-side request batching with TF Serving's `--enable_batching` semantics.

Concurrent Predict calls that go to the same model version and signature, and whose inputs
agree in name, dtype and every non-batch dimension, wait in one queue; a batch thread takes
them together, concatenates each input along dim 0, runs the signature once and splits every
output back by rows. The knobs are TF Serving's `BatchingParameters` text proto
(`--batching_parameters_file`), with its defaults:

    max_batch_size { value: 1000 }      # rows per executed batch; larger requests are rejected
    batch_timeout_micros { value: 0 }   # how long a non-full batch may wait for more rows
    max_enqueued_batches { value: 10 }  # per queue; past it requests get UNAVAILABLE
    num_batch_threads { value: <cpus> } # batches executed in parallel (shared by all queues)
    allowed_batch_sizes: 8              # optional: pad each batch up to the next listed size
    allowed_batch_sizes: 64             #   (the last must equal max_batch_size)
    enable_large_batch_splitting { value: false }
    max_execution_batch_size { value: <max_batch_size> }

With enable_large_batch_splitting, max_batch_size limits a request and
max_execution_batch_size an executed batch (and the last allowed batch size): a request that
does not fit in the open batch fills its free rows and continues in the next batches, and its
pieces' outputs are joined again in order. A small execution size then closes batches as soon
as they are full without refusing larger requests.

With the default timeout of 0 a free batch thread takes whatever has queued, so requests merge
exactly when they arrive while the threads are busy: no latency is added to a lone request.
Each row of this project's signatures depends only on its own inputs and seed, so batching
never changes a result. One difference from TF Serving, on purpose: when a merged batch fails
(e.g. one request has a token out of range) it is run again in halves, and a half that fails
again is halved again, so only the bad request gets the error and the others their exact
answers, for about 2 log2(N) more runs among N requests (running each alone took N).
"""
from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from typing import Callable

import grpc
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from hmvae_tf.serving.errors import ServingError, from_exception, invalid_argument


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's batching knobs with its defaults (the module docstring says what each does)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # 0: max_batch_size

    @property
    def execution_batch_size(self) -> int:
        """Rows per executed batch at most."""
        return self.max_execution_batch_size or self.max_batch_size

    def validate(self) -> "BatchingParameters":
        """Itself, or a ValueError naming the setting TF Serving would also refuse."""
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1")
        if self.batch_timeout_micros < 0:
            raise ValueError("batch_timeout_micros must be >= 0")
        if self.max_execution_batch_size:
            if not self.enable_large_batch_splitting:
                raise ValueError("max_execution_batch_size applies only with "
                                 "enable_large_batch_splitting { value: true }")
            if not 1 <= self.max_execution_batch_size <= self.max_batch_size:
                raise ValueError("max_execution_batch_size must be between 1 and max_batch_size "
                                 f"({self.max_batch_size}); got {self.max_execution_batch_size}")
            most = -(-self.max_batch_size // self.max_execution_batch_size)
            if most > self.max_enqueued_batches:
                raise ValueError(f"a request of max_batch_size ({self.max_batch_size}) rows "
                                 f"takes {most} batches of max_execution_batch_size, more than "
                                 f"max_enqueued_batches ({self.max_enqueued_batches}) allows")
        sizes, last = self.allowed_batch_sizes, self.execution_batch_size
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != last):
            which = ("max_execution_batch_size" if self.max_execution_batch_size
                     else "max_batch_size")
            raise ValueError(f"allowed_batch_sizes must be increasing and end with {which} "
                             f"({last}); got {list(sizes)}")
        return self

    def describe(self) -> str:
        """One line of the settings in force, for the server's start-up log."""
        text = (f"max_batch_size={self.max_batch_size} batch_timeout_micros={self.batch_timeout_micros} "
                f"max_enqueued_batches={self.max_enqueued_batches} num_batch_threads={self.num_batch_threads}")
        if self.allowed_batch_sizes:
            text += f" allowed_batch_sizes={list(self.allowed_batch_sizes)}"
        if self.enable_large_batch_splitting:
            text += f" large batch splitting, max_execution_batch_size={self.execution_batch_size}"
        return text


def _batching_parameters_class():
    """TF Serving's BatchingParameters message (session_bundle_config.proto), which the
    tensorflow-serving-api wheel does not ship; built at run time so the file is parsed by
    protobuf's own text format, with its errors (line:column, unknown field)."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(
        name="hmvae_tf/serving/batching_parameters.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    msg = f.message_type.add(name="BatchingParameters")
    F = descriptor_pb2.FieldDescriptorProto
    for number, (name, type_name) in enumerate([
            ("max_batch_size", ".google.protobuf.Int64Value"),
            ("batch_timeout_micros", ".google.protobuf.Int64Value"),
            ("max_enqueued_batches", ".google.protobuf.Int64Value"),
            ("num_batch_threads", ".google.protobuf.Int64Value"),
            ("thread_pool_name", ".google.protobuf.StringValue")], start=1):
        msg.field.add(name=name, number=number, type=F.TYPE_MESSAGE, type_name=type_name,
                      label=F.LABEL_OPTIONAL)
    msg.field.add(name="allowed_batch_sizes", number=6, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    msg.field.add(name="pad_variable_length_inputs", number=7, type=F.TYPE_BOOL,
                  label=F.LABEL_OPTIONAL)
    msg.field.add(name="enable_large_batch_splitting", number=8, type=F.TYPE_MESSAGE,
                  type_name=".google.protobuf.BoolValue", label=F.LABEL_OPTIONAL)
    msg.field.add(name="max_execution_batch_size", number=9, type=F.TYPE_MESSAGE,
                  type_name=".google.protobuf.Int64Value", label=F.LABEL_OPTIONAL)
    pool.Add(f)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def parse_batching_parameters(text: str) -> BatchingParameters:
    """Parses a BatchingParameters text proto; unset fields keep TF Serving's defaults."""
    proto = _batching_parameters_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as err:
        raise ValueError(f"bad BatchingParameters text proto: {err}") from None
    if proto.pad_variable_length_inputs:
        raise ValueError("pad_variable_length_inputs is not supported by hmvae serve "
                         "(the serving contract has fixed-length inputs)")
    values = {name: getattr(proto, name).value
              for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                           "num_batch_threads", "enable_large_batch_splitting",
                           "max_execution_batch_size") if proto.HasField(name)}
    return BatchingParameters(**values, allowed_batch_sizes=tuple(proto.allowed_batch_sizes)).validate()


class _Task:
    __slots__ = ("run", "inputs", "size", "deadline", "enqueued", "done", "outputs", "error")

    def __init__(self, run: Callable, inputs: dict[str, np.ndarray], size: int,
                 deadline: float | None = None):
        self.run, self.inputs, self.size, self.deadline = run, inputs, size, deadline
        self.enqueued = time.monotonic()
        self.done = threading.Event()
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: ServingError | None = None


class _Queue:
    """Tasks for one (servable, signature, input layout); batches in arrival order. Dropped
    when empty, so nothing keeps an unloaded model alive."""

    def __init__(self):
        self.batches: collections.deque[list[_Task]] = collections.deque()
        self.open_rows = 0  # rows in the last (open) batch


class BatchScheduler:
    """Shared batch threads over many queues (TF Serving's SharedBatchScheduler, in short)."""

    def __init__(self, params: BatchingParameters):
        self.params = params.validate()
        self._cond = threading.Condition()
        self._queues: dict[tuple, _Queue] = {}
        self._order: list[tuple] = []  # round-robin over queues
        self._next = 0
        self._stopping = False
        # requests; split_requests and the tasks (pieces) they became; executed batches, their
        # rows and padded rows; bisect_runs (runs of the halves of a failed batch).
        self.stats = collections.Counter()
        self.batch_sizes = collections.Counter()  # rows per executed batch -> count
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for t in self._threads:
            t.start()

    # --- called by request threads ----------------------------------------------------------
    def run(self, key: tuple, run: Callable, inputs: dict[str, np.ndarray],
            deadline: float | None = None) -> dict[str, np.ndarray]:
        """Runs `inputs` as part of a batch of the requests with the same `key` (and input
        layout): `run(merged_inputs, deadline) -> outputs` is called once per batch. Returns this
        request's rows of every output; blocks until done. deadline (time.monotonic()): as
        in TF Serving, a batch whose every request is past its deadline when it leaves the
        queue is not run (RESOURCE_EXHAUSTED): its callers have given up. `run` gets the
        batch's deadline as its second argument: the latest of its requests', None if one of
        them has none, so that the run ends when no caller waits for it any more."""
        size = self._check(inputs)
        layout = tuple(sorted((n, a.dtype.str, a.shape[1:]) for n, a in inputs.items()))
        qkey = (key, layout)
        with self._cond:
            if self._stopping:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
            q = self._queues.get(qkey)
            if q is None:
                q = self._queues[qkey] = _Queue()
                self._order.append(qkey)
            pieces = self._pieces(q, size)
            # validate() makes an empty queue take any request, so a new queue is never refused.
            new_batches = len(pieces) - (1 if pieces[0][2] else 0)
            if len(q.batches) + new_batches > self.params.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was "
                                   "submitted is full")
            tasks = []
            for start, end, joins_open_batch in pieces:
                if not joins_open_batch:
                    q.batches.append([])
                    q.open_rows = 0
                part = inputs if (start, end) == (0, size) else {
                    n: a[start:end] for n, a in inputs.items()}
                tasks.append(_Task(run, part, end - start, deadline))
                q.batches[-1].append(tasks[-1])
                q.open_rows += end - start
            self.stats.update(requests=1, split_requests=int(len(tasks) > 1))
            self._cond.notify(len(tasks))
        for task in tasks:
            task.done.wait()
        failed = next((t.error for t in tasks if t.error is not None), None)
        if failed is not None:
            raise failed
        if len(tasks) == 1:
            return tasks[0].outputs
        return {k: np.concatenate([t.outputs[k] for t in tasks]) for k in tasks[0].outputs}

    def _pieces(self, q: _Queue, size: int) -> list[tuple[int, int, bool]]:
        """How a request of `size` rows goes into `q`: (start, end, joins the open batch) per
        piece. Without splitting one piece, in the open batch if it fits there; with splitting
        the open batch's free rows first, then batches of the execution size."""
        limit = self.params.execution_batch_size
        free = limit - q.open_rows if q.batches else 0
        if not self.params.enable_large_batch_splitting or size <= free:
            return [(0, size, size <= free)]
        pieces = [(0, free, True)] if free > 0 else []
        for start in range(max(free, 0), size, limit):
            pieces.append((start, min(start + limit, size), False))
        return pieces

    def check_size(self, size: int) -> None:
        """INVALID_ARGUMENT, as TF Serving's, for a request of more rows than max_batch_size:
        also called before a request's tensors are made, so that none is made for nothing."""
        if size > self.params.max_batch_size:
            raise invalid_argument(f"Task size {size} is larger than maximum input batch size "
                                   f"{self.params.max_batch_size}")

    def _check(self, inputs: dict[str, np.ndarray]) -> int:
        sizes = set()
        for array in inputs.values():
            if array.ndim == 0:
                raise invalid_argument("Batching Run() input tensors must have at least one dimension")
            sizes.add(array.shape[0])
        if len(sizes) != 1:
            raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        self.check_size(size)
        if size == 0:
            raise invalid_argument("Batching Run() input tensors must have a non-empty 0th dimension")
        return size

    # --- batch threads ----------------------------------------------------------------------
    def _take_ready(self) -> list[_Task] | float | None:
        """A ready batch, or the seconds until the earliest open batch times out (None: idle)."""
        now = time.monotonic()
        timeout = self.params.batch_timeout_micros / 1e6
        wait = None
        n = len(self._order)
        for i in range(n):
            pos = (self._next + i) % n
            qkey = self._order[pos]
            q = self._queues[qkey]
            batch = q.batches[0]
            closed = len(q.batches) > 1 or q.open_rows >= self.params.execution_batch_size
            remaining = batch[0].enqueued + timeout - now
            if closed or remaining <= 0 or self._stopping:
                q.batches.popleft()
                if q.batches:
                    self._next = (pos + 1) % n
                else:  # drop the empty queue; the next one moves into its place
                    del self._queues[qkey]
                    del self._order[pos]
                    self._next = pos % (n - 1) if n > 1 else 0
                return batch
            wait = remaining if wait is None else min(wait, remaining)
        return wait

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    ready = self._take_ready()
                    if isinstance(ready, list):
                        break
                    if self._stopping:
                        return
                    self._cond.wait(ready)
            self._execute(ready)

    def _execute(self, batch: list[_Task]) -> None:
        now = time.monotonic()
        if all(t.deadline is not None and t.deadline <= now for t in batch):
            for t in batch:
                t.error = ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       "Run() timeout exceeded while waiting in batching queue")
            with self._cond:
                self.stats.update(expired_batches=1, expired_tasks=len(batch))
            for t in batch:
                t.done.set()
            return
        rows = sum(t.size for t in batch)
        target = self._padded_size(rows)
        try:
            self._run_together(batch)
        except BaseException as err:  # noqa: BLE001 - reported to the callers, never raised here
            if len(batch) > 1:
                self._bisect(batch)
            else:
                batch[0].error = from_exception(err)
        with self._cond:
            self.stats.update(batches=1, tasks=len(batch), rows=rows, padded_rows=target - rows)
            self.batch_sizes[target] += 1
        for t in batch:
            t.done.set()

    def _padded_size(self, rows: int) -> int:
        """Rows a run of `rows` rows executes: the next allowed batch size, if any are set."""
        return next((s for s in self.params.allowed_batch_sizes if s >= rows), rows)

    def _run_together(self, tasks: list[_Task]) -> None:
        """One run of the tasks' rows, merged and padded to an allowed batch size, with the
        latest of their deadlines (None if one has none); sets every task's outputs, or
        raises and sets none."""
        rows = sum(t.size for t in tasks)
        target = self._padded_size(rows)
        deadline = None if any(t.deadline is None for t in tasks) else max(
            t.deadline for t in tasks)
        if len(tasks) == 1 and target == rows:
            outputs = tasks[0].run(tasks[0].inputs, deadline)
            self._check_outputs(outputs, rows)
            tasks[0].outputs = outputs
            return
        merged = {name: np.concatenate([t.inputs[name] for t in tasks]
                                       + self._padding(tasks[0].inputs[name], target - rows))
                  for name in tasks[0].inputs}
        outputs = tasks[0].run(merged, deadline)
        self._check_outputs(outputs, target)
        parts, start = [], 0
        for t in tasks:
            parts.append({k: v[start:start + t.size] for k, v in outputs.items()})
            start += t.size
        for t, part in zip(tasks, parts):
            t.outputs = part

    @staticmethod
    def _padding(array: np.ndarray, rows: int) -> list[np.ndarray]:
        # Like TF Serving: pad with copies of the first row; padded outputs are dropped.
        return [np.repeat(array[:1], rows, axis=0)] if rows > 0 else []

    @staticmethod
    def _check_outputs(outputs: dict[str, np.ndarray], rows: int) -> None:
        for name, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != rows:
                raise ServingError(grpc.StatusCode.INTERNAL,
                                   f"Batched output tensor '{name}' has shape {list(value.shape)}: its "
                                   "0th dimension does not equal the sum of the 0th dimension sizes "
                                   f"of the input tensors ({rows})")

    def _bisect(self, tasks: list[_Task]) -> None:
        """A merged run of `tasks` failed: runs each half once, and splits again only a half
        that fails, so that only the bad requests get an error and the others their answers.
        One bad request among N costs 2 log2(N) runs more, not N (16 clients: 8, not 16)."""
        half = len(tasks) // 2
        for part in (tasks[:half], tasks[half:]):
            with self._cond:
                self.stats.update(bisect_runs=1)
            try:
                self._run_together(part)
            except BaseException as err:  # noqa: BLE001 - reported to the callers
                if len(part) > 1:
                    self._bisect(part)
                else:
                    part[0].error = from_exception(err)

    def snapshot(self) -> dict:
        """Counters, executed batch sizes and queue count, read consistently for /stats."""
        with self._cond:
            return {**{k: int(v) for k, v in self.stats.items()},
                    "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                    "queues": len(self._queues)}

    def stop(self) -> None:
        """Finishes what is queued, then ends the batch threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
