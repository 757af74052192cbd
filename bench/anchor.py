"""Runs the Magenta baseline (../shared/anchors/magenta) in the same session as our benchmarks.

The anchor scripts time Magenta 2.1.4's own graph. They need magenta + tf-slim (installed once
from PyPI with --no-deps into bench/.anchor/site, never into our environment) and a corpus of
400 real tunes built by the anchor's prep_data.py (about 7 minutes, once). Everything they write
goes to bench/.anchor/ here; the anchor folder itself is only read.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHOR = os.environ.get("HMVAE_ANCHOR_DIR") or os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "anchors", "magenta"))
OUT_DIR = os.path.join(HERE, ".anchor")
SITE = os.path.join(OUT_DIR, "site")


def available() -> bool:
    return os.path.isfile(os.path.join(ANCHOR, "bench_train.py"))


def _env() -> dict:
    return {**os.environ, "OUT_DIR": OUT_DIR,
            "PYTHONPATH": os.pathsep.join([SITE, ANCHOR])}


def ensure_ready(python: str = sys.executable) -> None:
    """Installs magenta into the anchor's site/ and builds its corpus, once."""
    if not available():
        raise FileNotFoundError(f"no Magenta anchor at {ANCHOR} (set HMVAE_ANCHOR_DIR)")
    if not os.path.isdir(SITE):
        print(f"installing magenta==2.1.4 tf-slim==1.1.0 into {SITE} (no deps)", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--target", SITE,
                        "magenta==2.1.4", "tf-slim==1.1.0"], check=True)
    if not os.path.exists(os.path.join(OUT_DIR, "data", "tunes.pkl")):
        os.makedirs(os.path.join(OUT_DIR, "logs"), exist_ok=True)
        print("building the anchor's 400-tune corpus (about 7 minutes, once)", flush=True)
        with open(os.path.join(OUT_DIR, "logs", "prep_data.log"), "w") as log:
            subprocess.run([python, os.path.join(ANCHOR, "prep_data.py"), "400"], check=True,
                           env=_env(), stdout=log, stderr=subprocess.STDOUT)


def run(script: str, args: list[str], python: str = sys.executable,
        rss_limit_mb: int = 20000) -> dict:
    """Runs an anchor script under its memory watchdog; returns its RESULT json (plus
    `peak_rss_mb`), or {"error": ...} if it failed or ran out of memory."""
    ensure_ready(python)
    os.makedirs(os.path.join(OUT_DIR, "results"), exist_ok=True)
    json_out = os.path.join(OUT_DIR, "results", f"{os.getpid()}_{script}.json")
    log_path = os.path.join(OUT_DIR, "logs", f"{script}.log")
    cmd = [python, os.path.join(ANCHOR, "memwatch.py"), str(rss_limit_mb), log_path, "--",
           python, os.path.join(ANCHOR, script), *args, "--json_out", json_out]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    log = open(log_path).read() if os.path.exists(log_path) else proc.stdout + proc.stderr
    if not os.path.exists(json_out):
        return {"error": f"anchor {script} failed (exit {proc.returncode}); see {log_path}"}
    with open(json_out) as f:
        result = json.load(f)
    os.remove(json_out)
    result["peak_rss_mb"] = peak_rss_mb(log)
    return result


def run_worker(cmd: list[str]) -> tuple[dict, subprocess.CompletedProcess]:
    """Runs one of our bench scripts in `--worker` mode; returns the dict it printed on its
    last `RESULT <json>` line (or {"error": its stderr's tail}) and the finished process."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"error": proc.stderr[-2000:]}, proc
    return json.loads(lines[-1][len("RESULT "):]), proc


def peak_rss_mb(time_v_log: str) -> float | None:
    for line in time_v_log.splitlines():
        if "Maximum resident set size" in line:
            return int(line.rsplit(":", 1)[1]) / 1024
    return None
