"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train one model."""
import json
import re
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(model_dir, steps, batch_size=8):
    """Two worker processes training model_dir; `steps` and `batch_size` may be one per
    worker (as two differently started workers would be)."""
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    steps = steps if isinstance(steps, list) else [steps, steps]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "scripts", "multi_worker_train.py"),
             str(model_dir), str(steps[index]), str(batch_size)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def run_workers(model_dir, steps):
    """Trains model_dir to `steps` with two workers; returns each worker's RESULT dict."""
    procs = start_workers(model_dir, steps)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append({**json.loads(out.strip().splitlines()[-1][len("RESULT "):]),
                        "stdout": out, "stderr": err})
    return results


def test_two_workers_train_the_same_model_and_checkpoint_once(tmp_path):
    model_dir = tmp_path / "model"
    results = run_workers(model_dir, 6)
    assert all(r["replicas"] == 2 for r in results)
    # One progress display: the other worker says (on stderr, with the progress) that the
    # chief shows it, and shows none.
    assert "worker 1: training; the chief shows the progress" in results[1]["stderr"]
    assert not any("the chief shows the progress" in r["stdout"] for r in results)
    assert "the chief shows the progress" not in results[0]["stderr"]
    assert all(r["step"] == 6 for r in results)
    assert results[0]["digest"] == results[1]["digest"]
    assert results[0]["loss"] == results[1]["loss"]
    # Only the chief wrote checkpoints, config and logs; the other worker's scratch copy is gone.
    ckpts = sorted(p.name for p in (model_dir / "ckpt").iterdir() if p.name.endswith(".index"))
    assert ckpts == ["ckpt-3.index", "ckpt-6.index"]
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".worker_")]
    assert (model_dir / "config.json").exists()
    assert len((model_dir / "history.csv").read_text().strip().splitlines()) == 1 + 2

    # The same command with more steps resumes both workers from the chief's step-6 checkpoint
    # (the other worker's own copy was deleted), so they still hold one model.
    resumed = run_workers(model_dir, 8)
    assert all("from step 6" in r["stderr"] for r in resumed)
    assert all(r["step"] == 8 for r in resumed)
    assert resumed[0]["digest"] == resumed[1]["digest"]
    ckpts = sorted(p.name for p in (model_dir / "ckpt").iterdir() if p.name.endswith(".index"))
    assert ckpts == ["ckpt-3.index", "ckpt-6.index", "ckpt-8.index"]


def test_workers_started_differently_or_with_an_uneven_batch_stop_with_one_line(tmp_path):
    """Different --num_steps (or config) used to split the workers into mismatched
    collectives; a global batch that does not split across the replicas failed with a
    collective shape error. Both now stop every worker with a one-line error."""
    for steps, batch_size, message in (([6, 8], 8, "started with different --config/--hparams, "
                                                   "--num_steps"),
                                       (6, 9, "batch_size=9 is the global batch, which must "
                                              "split evenly across the 2 replicas")):
        procs = start_workers(tmp_path / f"m{batch_size}", steps, batch_size)
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 1, err[-3000:]
            assert message in out, out + err[-2000:]
        assert not (tmp_path / f"m{batch_size}" / "ckpt").exists()


def test_a_dead_worker_stops_the_other_with_one_line(tmp_path):
    """kill -9 of one worker: the other used to end in a 40-line gRPC traceback."""
    import signal
    import time

    model_dir = tmp_path / "model"
    procs = start_workers(model_dir, 100_000)
    deadline = time.time() + 300
    while not (model_dir / "config.json").exists():  # the chief has built the model
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.5)
    time.sleep(3)  # into fit's steps
    procs[1].send_signal(signal.SIGKILL)
    out, err = procs[0].communicate(timeout=300)
    procs[1].wait()
    assert procs[0].returncode == 1, err[-3000:]
    assert "ERROR WorkerLostError: lost contact with /job:worker/replica:0/task:1" in out, \
        out + err[-2000:]
    assert "restart every worker with the same command" in out


def test_a_malformed_tf_config_is_a_one_line_error_before_tensorflow_starts(monkeypatch):
    import pytest

    from hmvae_tf import distribution
    from hmvae_tf.cli import CommandError

    good = {"cluster": {"worker": ["localhost:1", "localhost:2"]},
            "task": {"type": "worker", "index": "1"}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(good))
    assert distribution.read_tf_config() == ({"worker": ["localhost:1", "localhost:2"]}, "worker", 1)
    for tf_config, message in (
            ("{bad json", "TF_CONFIG is not JSON"),
            (json.dumps({"cluster": good["cluster"]}), "needs a \"task\""),
            (json.dumps({**good, "task": {"type": "worker", "index": 5}}),
             "task index 5 is not one of the cluster's 2 worker address(es)"),
            (json.dumps({**good, "task": {"type": "evaluator", "index": 0}}),
             "task type 'evaluator' must be \"chief\" or \"worker\""),
            (json.dumps({"cluster": {"worker": "localhost:1"}, "task": good["task"]}),
             "a \"cluster\" of jobs, each a list of \"host:port\" addresses")):
        monkeypatch.setenv("TF_CONFIG", tf_config)
        with pytest.raises(CommandError, match=re.escape(message)):
            distribution.read_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(CommandError, match="needs TF_CONFIG"):
        distribution.make_strategy("multi_worker")


def test_a_waiting_worker_stops_on_sigterm_gives_up_on_time_and_names_a_held_port(tmp_path):
    """TensorFlow's own wait for the peers held the GIL with its SIGTERM handler installed:
    `kill` did nothing and the wait never ended. The Python wait before it answers to both,
    with the exit status of the signal: 143 for SIGTERM (it said 130, Ctrl-C's, to cluster
    managers), 130 for Ctrl-C."""
    import signal
    import time

    own, peer = free_ports(2)  # nobody ever listens on the peer's port
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{own}", f"127.0.0.1:{peer}"]},
                 "task": {"type": "worker", "index": 0}}
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": ROOT}
    cmd = [sys.executable, "-m", "hmvae_tf.cli", "train", "--strategy=multi_worker",
           f"--model_dir={tmp_path / 'm'}", "--config=cat-mel_2bar_small", "--num_steps=2"]

    # Ctrl-C as at a terminal: a suite started in the background (`nohup pytest &`) hands its
    # children SIGINT ignored, which Python, like any program, then leaves ignored.
    at_terminal = [sys.executable, "-c", "import os, signal, sys; "
                   "signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])", *cmd[1:]]
    for stop, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen(at_terminal, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # On stderr, after whatever TensorFlow says there as it starts.
        assert any("waiting for the other workers" in line for line in proc.stderr)
        time.sleep(1)
        start = time.monotonic()
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == status and time.monotonic() - start < 10, (stop, err[-2000:])
        assert "stopped while waiting for the other workers; nothing was trained" in err

    done = subprocess.run(cmd + ["--wait_for_workers=1.5"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"127.0.0.1:{peer} did not start within 1.5 s (--wait_for_workers)" in done.stderr

    with socket.create_server(("127.0.0.1", own)):  # e.g. another job's worker left waiting
        held = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert held.returncode == 1, held.stderr[-2000:]
    assert f"cannot listen on port {own}: Address already in use" in held.stderr
    assert not (tmp_path / "m").exists()
