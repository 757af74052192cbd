"""Server-side batching: the scheduler alone (no TF), then through `hmvae serve --enable_batching`."""
from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from hmvae_tf.serving.batching import BatchingParameters, BatchScheduler, parse_batching_parameters
from hmvae_tf.serving.errors import ServingError
from serving_fixtures import Conn


def concurrently(n, fn):
    """Runs fn(i) for i < n in n threads released together; returns results in order."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, [None] * n

    def work(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as err:  # noqa: BLE001
            errors[i] = err

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


class SlowDouble:
    """A fake signature: doubles x row-wise; fails on rows < 0; records the batch sizes."""

    def __init__(self, delay=0.02):
        self.calls, self.delay, self.lock = [], delay, threading.Lock()

    def __call__(self, inputs, deadline=None):
        x = inputs["x"]
        with self.lock:
            self.calls.append(len(x))
        time.sleep(self.delay)
        if (x < 0).any():
            raise ValueError("x must be >= 0")
        return {"y": x * 2, "s": x.sum(axis=1)}


def test_parse_batching_parameters():
    p = parse_batching_parameters("""
        max_batch_size { value: 64 }
        batch_timeout_micros { value: 2000 }
        max_enqueued_batches { value: 7 }
        num_batch_threads { value: 3 }
        thread_pool_name { value: "x" }
        allowed_batch_sizes: 16
        allowed_batch_sizes: 64
    """)
    assert p == BatchingParameters(64, 2000, 7, 3, (16, 64))
    assert parse_batching_parameters("max_batch_size { value: 8 }").batch_timeout_micros == 0
    with pytest.raises(ValueError, match="max_batch_sise"):
        parse_batching_parameters("max_batch_sise { value: 8 }")
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        parse_batching_parameters("max_batch_size { value: 8 } allowed_batch_sizes: 4")


def test_concurrent_tasks_are_merged_and_split_back():
    sched = BatchScheduler(BatchingParameters(max_batch_size=32, batch_timeout_micros=100_000,
                                              num_batch_threads=1))
    run = SlowDouble()
    try:
        results, errors = concurrently(12, lambda i: sched.run(
            "k", run, {"x": np.full((2, 3), i, np.int64)}))
    finally:
        sched.stop()
    assert errors == [None] * 12
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"], np.full((2, 3), 2 * i))
        np.testing.assert_array_equal(out["s"], [3 * i, 3 * i])
    assert sum(run.calls) == 24 and len(run.calls) < 12 and max(run.calls) <= 32
    assert sched.snapshot()["tasks"] == 12


def test_a_batch_whose_callers_all_gave_up_is_not_run():
    """As TF Serving's batching session: requests past their gRPC deadline when their batch
    leaves the queue are not run (RESOURCE_EXHAUSTED); one live batch-mate runs them all."""
    sched = BatchScheduler(BatchingParameters(max_batch_size=32, batch_timeout_micros=50_000,
                                              num_batch_threads=1))
    run = SlowDouble()
    x = {"x": np.ones((1, 3), np.int64)}
    try:
        gone = time.monotonic() + 0.01  # expires while the batch waits out its 50 ms
        with pytest.raises(ServingError) as info:
            sched.run("k", run, x, deadline=gone)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "timeout exceeded while waiting in batching queue" in info.value.message
        assert run.calls == []
        results, errors = concurrently(2, lambda i: sched.run(
            "k", run, x, deadline=gone if i == 0 else time.monotonic() + 30))
        assert errors == [None, None] and run.calls == [2]
        assert sched.snapshot()["expired_tasks"] == 1
    finally:
        sched.stop()


def test_max_batch_size_and_different_shapes_are_respected():
    sched = BatchScheduler(BatchingParameters(max_batch_size=4, batch_timeout_micros=50_000,
                                              num_batch_threads=1))
    run = SlowDouble()
    try:
        # Rows of width 3 and width 5 cannot share a batch; no batch exceeds 4 rows.
        results, errors = concurrently(8, lambda i: sched.run(
            "k", run, {"x": np.full((1, 3 if i % 2 else 5), i)}))
        assert errors == [None] * 8
        assert max(run.calls) <= 4
        with pytest.raises(ServingError) as info:
            sched.run("k", run, {"x": np.zeros((5, 3))})
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "larger than maximum input batch size 4" in info.value.message
        with pytest.raises(ServingError, match="equal 0th-dimension"):
            sched.run("k", run, {"x": np.zeros((2, 3)), "x2": np.zeros((3, 3))})
    finally:
        sched.stop()
    for i, out in enumerate(results):
        assert out["y"].shape == (1, 3 if i % 2 else 5)


def test_a_bad_request_does_not_fail_its_batch_mates():
    sched = BatchScheduler(BatchingParameters(max_batch_size=64, batch_timeout_micros=100_000,
                                              num_batch_threads=1))
    run = SlowDouble()
    try:
        results, errors = concurrently(6, lambda i: sched.run(
            "k", run, {"x": np.full((1, 2), -1 if i == 3 else i)}))
    finally:
        sched.stop()
    assert isinstance(errors[3], ServingError)
    assert errors[3].code == grpc.StatusCode.INVALID_ARGUMENT and "x must be >= 0" in errors[3].message
    assert [e for i, e in enumerate(errors) if i != 3] == [None] * 5
    assert results[5]["y"].tolist() == [[10, 10]]


@pytest.mark.parametrize("bad", [0, 6, 15])
def test_a_bad_request_in_a_full_batch_costs_log_n_runs_not_n(bad):
    """A failed merged batch ran each of its requests alone: with 16 clients one bad request
    made 16 more runs. Halving it, the good halves run once and only the half holding the bad
    request is split again: 2 log2(16) = 8 more runs, wherever it sits in the batch."""
    n = 16
    sched = BatchScheduler(BatchingParameters(max_batch_size=n, batch_timeout_micros=10_000_000,
                                              num_batch_threads=1))
    run = SlowDouble(delay=0)
    try:  # 16 rows fill the batch, which runs at once instead of waiting out the timeout
        results, errors = concurrently(n, lambda i: sched.run(
            "k", run, {"x": np.full((1, 2), -1 if i == bad else i)}))
        snapshot = sched.snapshot()
    finally:
        sched.stop()
    assert run.calls[0] == n, run.calls  # one merged batch of all 16
    assert [i for i, e in enumerate(errors) if e is not None] == [bad]
    assert errors[bad].code == grpc.StatusCode.INVALID_ARGUMENT
    assert "x must be >= 0" in errors[bad].message
    for i, out in enumerate(results):
        if i != bad:
            assert out["y"].tolist() == [[2 * i, 2 * i]] and out["s"].tolist() == [2 * i]
    assert sorted(run.calls[1:]) == [1, 1, 2, 2, 4, 4, 8, 8], run.calls
    assert snapshot["bisect_runs"] == 8


def test_allowed_batch_sizes_pad_and_full_queue_is_unavailable():
    sched = BatchScheduler(BatchingParameters(max_batch_size=8, batch_timeout_micros=0,
                                              num_batch_threads=1, max_enqueued_batches=1,
                                              allowed_batch_sizes=(4, 8)))
    run = SlowDouble(delay=0.3)
    try:
        out = sched.run("k", run, {"x": np.ones((3, 2))})
        assert run.calls == [4] and out["y"].shape == (3, 2)  # padded to 4, cut back to 3
        # One batch running, one queued (max_enqueued_batches=1), the next is refused.
        results, errors = concurrently(3, lambda i: sched.run("k", run, {"x": np.ones((8, 2))}))
    finally:
        sched.stop()
    refused = [e for e in errors if e is not None]
    assert refused and all(e.code == grpc.StatusCode.UNAVAILABLE for e in refused)


def test_parse_and_validate_large_batch_splitting():
    text = """
        max_batch_size { value: 64 }
        max_enqueued_batches { value: 8 }
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 16 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 16
    """
    p = parse_batching_parameters(text)
    assert p.enable_large_batch_splitting and p.execution_batch_size == 16
    assert p.max_batch_size == 64 and p.allowed_batch_sizes == (8, 16)
    # Without an execution size, splitting executes up to max_batch_size rows.
    assert parse_batching_parameters(
        "max_batch_size { value: 8 } enable_large_batch_splitting { value: true }"
    ).execution_batch_size == 8
    for bad, message in [
            ("max_batch_size { value: 8 } max_execution_batch_size { value: 4 }",
             "only with enable_large_batch_splitting"),
            (text.replace("value: 16", "value: 128"), "between 1 and max_batch_size"),
            (text.replace("allowed_batch_sizes: 16", "allowed_batch_sizes: 64"),
             "end with max_execution_batch_size"),
            (text.replace("value: 8 }", "value: 3 }"), "takes 4 batches")]:
        with pytest.raises(ValueError, match=message):
            parse_batching_parameters(bad)


def test_large_requests_are_split_into_execution_sized_batches():
    sched = BatchScheduler(BatchingParameters(
        max_batch_size=10, batch_timeout_micros=10_000_000, num_batch_threads=1,
        enable_large_batch_splitting=True, max_execution_batch_size=4))
    run = SlowDouble(delay=0.01)
    try:
        x = np.arange(24).reshape(8, 3)
        out = sched.run("k", run, {"x": x})  # two full batches of 4, no wait
        np.testing.assert_array_equal(out["y"], 2 * x)
        np.testing.assert_array_equal(out["s"], x.sum(axis=1))
        assert run.calls == [4, 4]
        run.calls.clear()
        # Four 1-row requests fill a batch of 4, which runs at once instead of waiting out
        # the 10 s timeout; requests of 3 rows share batches with each other's pieces.
        started = time.monotonic()
        results, errors = concurrently(4, lambda i: sched.run("k", run, {"x": np.full((1, 2), i)}))
        assert errors == [None] * 4 and time.monotonic() - started < 5
        assert run.calls == [4] and [r["y"].tolist() for r in results] == [[[2 * i] * 2] for i in range(4)]
        run.calls.clear()
        results, errors = concurrently(4, lambda i: sched.run("k", run, {"x": np.full((3, 1), i)}))
        assert errors == [None] * 4 and run.calls == [4, 4, 4]
        for i, r in enumerate(results):
            assert r["y"].tolist() == [[2 * i]] * 3
        snap = sched.snapshot()
        assert snap["split_requests"] >= 2 and snap["padded_rows"] == 0
    finally:
        sched.stop()


def test_a_bad_piece_fails_only_its_own_request():
    sched = BatchScheduler(BatchingParameters(
        max_batch_size=8, batch_timeout_micros=100_000, num_batch_threads=1,
        enable_large_batch_splitting=True, max_execution_batch_size=2))
    run = SlowDouble()
    try:
        def request(i):
            x = np.full((3, 1), i)
            if i == 1:
                x[2] = -1  # in the request's last piece
            return sched.run("k", run, {"x": x})

        results, errors = concurrently(3, request)
    finally:
        sched.stop()
    assert isinstance(errors[1], ServingError) and "x must be >= 0" in errors[1].message
    assert errors[0] is None and errors[2] is None
    assert results[2]["y"].tolist() == [[4]] * 3 and max(run.calls) <= 2


def test_batched_server_merges_and_matches_sequential(batching_server, hmvae_server):
    from hmvae_tf.serving.server import fetch_stats

    n = 16
    conn = Conn(batching_server.address, "mel")
    plain = Conn(hmvae_server.address, "mel")

    def request(i):
        rows = 1 + i % 2
        seed = np.stack([np.full(rows, 7, np.int32), np.arange(10 * i, 10 * i + rows, dtype=np.int32)], 1)
        return {"temperature": np.full(rows, 0.7, np.float32), "seed": seed}

    expected = [plain.predict("sample", request(i))[1] for i in range(n)]  # sequential, unbatched
    before = fetch_stats(batching_server.address)["batching"]
    results, errors = concurrently(n, lambda i: conn.predict("sample", request(i))[1])
    after = fetch_stats(batching_server.address)["batching"]
    assert errors == [None] * n
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got["melody"], want["melody"])
        np.testing.assert_allclose(got["z"], want["z"], rtol=1e-6)
    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    # The fixture splits at 16 rows, so a 2-row request can straddle two batches: two tasks.
    assert delta("requests") == n
    assert delta("tasks") == n + delta("split_requests")
    assert delta("rows") == sum(1 + i % 2 for i in range(n))
    batches = delta("batches")
    assert batches <= n // 2, f"{n} concurrent requests ran in {batches} batches: {after}"
    # Sequential calls on the batching server give the same rows too.
    for i in (0, 5):
        np.testing.assert_array_equal(conn.predict("sample", request(i))[1]["melody"],
                                      expected[i]["melody"])
    assert batching_server.alive()


def test_a_large_request_is_split_on_the_server_and_joined_back(batching_server, hmvae_server):
    """40 rows against max_execution_batch_size 16: three executed batches, the same rows as
    the unbatched server, in order."""
    from hmvae_tf.serving.server import fetch_stats

    rows = 40
    seed = np.stack([np.full(rows, 3, np.int32), np.arange(rows, dtype=np.int32)], 1)
    request = {"temperature": np.full(rows, 0.9, np.float32), "seed": seed}
    before = fetch_stats(batching_server.address)["batching"]
    got = Conn(batching_server.address, "mel").predict("sample", request)[1]
    after = fetch_stats(batching_server.address)["batching"]
    want = Conn(hmvae_server.address, "mel").predict("sample", request)[1]
    np.testing.assert_array_equal(got["melody"], want["melody"])
    np.testing.assert_allclose(got["z"], want["z"], rtol=1e-6)
    assert after.get("split_requests", 0) - before.get("split_requests", 0) == 1
    assert after["batches"] - before.get("batches", 0) == 3
    assert max(int(k) for k in after["batch_sizes"]) <= 16
