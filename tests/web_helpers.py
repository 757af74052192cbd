"""Shared by the web tests: where the page lives, Node, the page bundle, Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

from hmvae_tf import web

WEB_ROOT = web.WEB_ROOT
NODE_MODULES = os.path.join(WEB_ROOT, "node_modules")
CHROMIUM = os.environ.get("HMVAE_CHROMIUM", "/usr/bin/chromium")
# Flags that work in this project's containers: no sandbox (root), no GPU, no network chatter.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def node_missing() -> str | None:
    """Why Node-based tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup_env.sh --web installs it)"
    if not os.path.isdir(NODE_MODULES):
        return f"the page's npm packages are missing: run `npm ci` in {WEB_ROOT}"
    return None


def run_node(script: str, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Runs a script under web/ with Node; returns stdout (raises with stderr on failure)."""
    proc = subprocess.run(["node", script, *args], cwd=WEB_ROOT, input=stdin, text=True,
                          capture_output=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"node {script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def run_graph(model_json: str, inputs: dict) -> dict:
    """A converted graph model run by TF.js in Node (cpu backend)."""
    out = run_node("tools/run_graph.mjs", model_json, json.dumps(inputs))
    return json.loads(out.strip().splitlines()[-1])


def music_cli(requests: list[dict]) -> list[dict]:
    """The page's MIDI <-> tokens code (web/src/, through tools/music_cli.mjs), one answer per
    request."""
    out = run_node("tools/music_cli.mjs", stdin="".join(json.dumps(r) + "\n" for r in requests))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ensure_bundle() -> str | None:
    """Builds web/build/app.js when missing or stale (if npm packages are installed);
    returns why the page cannot be served, or None."""
    if web.bundle_is_current(WEB_ROOT):
        return None
    if node_missing():
        if os.path.exists(os.path.join(WEB_ROOT, web.BUNDLE)):
            return None  # stale but usable
        return f"the page bundle web/{web.BUNDLE} is missing and cannot be built: {node_missing()}"
    web.build_bundle(WEB_ROOT, log=lambda *_: None)
    return None
