"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train one model."""
import json
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


def run_workers(model_dir, steps):
    """Trains model_dir to `steps` with two workers; returns each worker's RESULT dict."""
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "scripts", "multi_worker_train.py"),
             str(model_dir), str(steps)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append({**json.loads(out.strip().splitlines()[-1][len("RESULT "):]),
                        "stdout": out})
    return results


def test_two_workers_train_the_same_model_and_checkpoint_once(tmp_path):
    model_dir = tmp_path / "model"
    results = run_workers(model_dir, 6)
    assert all(r["replicas"] == 2 for r in results)
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
    assert all("from step 6" in r["stdout"] for r in resumed)
    assert all(r["step"] == 8 for r in resumed)
    assert resumed[0]["digest"] == resumed[1]["digest"]
    ckpts = sorted(p.name for p in (model_dir / "ckpt").iterdir() if p.name.endswith(".index"))
    assert ckpts == ["ckpt-3.index", "ckpt-6.index", "ckpt-8.index"]
