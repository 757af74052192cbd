"""`hmvae web`: serves the browser demo (web/) with Python's standard library.

    hmvae web --port=8080 [--models=web/models] [--saved_models=saved_models]

The page (web/index.html + the bundle web/build/app.js, built by `npm run build` in web/)
reads `models/index.json`; `/models/` is served from --models. Before serving, every export
base under --saved_models whose newest version has no current browser bundle in --models is
converted (`hmvae tfjs --saved_models=... --out=...`), so the shipped models are on the page.
"""
from __future__ import annotations

import argparse
import errno
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from hmvae_tf import arg_types
from hmvae_tf.progress import say

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB_ROOT = os.path.join(REPO_ROOT, "web")
BUNDLE = os.path.join("build", "app.js")
HIDDEN = ("/node_modules/", "/package-lock.json")
STDERR_FD = 2  # the process's stderr, for the output of the npm commands it runs


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from the web root; /models/ from the models folder."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
        ".bin": "application/octet-stream", ".map": "application/json",
        ".mid": "audio/midi", ".css": "text/css", ".wasm": "application/wasm",
    }

    def __init__(self, *args, models_dir: str, quiet: bool = False, **kwargs):
        self.models_dir = models_dir
        self.quiet = quiet
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.urlsplit(path).path
        if clean.startswith("/models/") or clean == "/models":
            rel = urllib.parse.unquote(clean[len("/models"):]).lstrip("/")
            parts = [p for p in rel.split("/") if p and p not in (".", "..")]
            return os.path.join(self.models_dir, *parts)
        return super().translate_path(path)

    def send_head(self):
        clean = urllib.parse.urlsplit(self.path).path
        if any(clean.startswith(h) or clean == h.rstrip("/") for h in HIDDEN):
            self.send_error(404, "not served")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        # The page and model descriptions change when rebuilt or reconverted.
        if urllib.parse.urlsplit(self.path).path.endswith((".json", ".html", "/", ".js")):
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def make_server(web_root: str = WEB_ROOT, models_dir: str | None = None, host: str = "127.0.0.1",
                port: int = 8080, quiet: bool = False) -> http.server.ThreadingHTTPServer:
    """A server for the page (port 0 picks a free port: see server.server_address)."""
    models_dir = os.path.abspath(models_dir or os.path.join(web_root, "models"))
    handler = functools.partial(Handler, directory=os.path.abspath(web_root),
                                models_dir=models_dir, quiet=quiet)
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(**kwargs: Any) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Starts make_server(**kwargs) in a daemon thread; returns (server, base URL)."""
    server = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


def bundle_sources(web_root: str) -> list[str]:
    """What build.mjs bundles from: the build script, the npm lock (the packages' versions) and
    everything under src/, subfolders included, with the folders themselves (a folder's time
    changes when a module in it is removed or renamed). style.css and index.html are served as
    they are, not bundled."""
    sources = [os.path.join(web_root, "package-lock.json"), os.path.join(web_root, "build.mjs")]
    for folder, _, files in os.walk(os.path.join(web_root, "src")):
        sources += [folder, *(os.path.join(folder, f) for f in files)]
    return sources


def bundle_is_current(web_root: str) -> bool:
    """True when the page's bundle is newer than every file it is built from."""
    bundle = os.path.join(web_root, BUNDLE)
    if not os.path.exists(bundle):
        return False
    built = os.path.getmtime(bundle)
    return all(os.path.getmtime(p) <= built for p in bundle_sources(web_root)
               if os.path.exists(p))


def build_bundle(web_root: str, log: Callable[[str], object] = say) -> None:
    """npm ci (when node_modules is missing) and npm run build in the web root. log: what it
    is doing (default: on stderr, as every command says it)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the page is not built and npm is not installed: install Node.js "
                           "and npm (scripts/setup_env.sh --web), then run `npm ci && npm run "
                           f"build` in {web_root}")
    # npm's own lines (npm ci's "added 120 packages in 3s" is on its stdout) are part of the
    # build's progress: they go to this process's stderr, so stdout keeps `hmvae web`'s address.
    if not os.path.isdir(os.path.join(web_root, "node_modules")):
        log(f"installing the page's npm packages in {web_root} (npm ci) ...")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=web_root, check=True, stdout=STDERR_FD)
    log(f"building the page ({BUNDLE}) ...")
    subprocess.run([npm, "run", "--silent", "build"], cwd=web_root, check=True,
                   stdout=STDERR_FD)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae web`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Serve the browser demo page, which samples, interpolates, draws and plays music with "
        "TF.js in the browser. Before it starts, the page bundle is built if stale and the "
        "export bases under --saved_models without a current TF.js bundle are converted.")
    parser.epilog = examples("hmvae web --port=8080",
                             "hmvae web --host=0.0.0.0 --port=8080 --no_convert")
    parser.add_argument("--port", type=arg_types.port, default=8080,
                        help="HTTP port of the page (0 picks a free one, printed)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--models", default=None,
                        help="converted models folder with index.json, as `hmvae tfjs --out` "
                        "writes it; it must exist (default: web/models)")
    parser.add_argument("--saved_models", default=os.path.join(REPO_ROOT, "saved_models"),
                        help="export bases to convert for the page when their bundle is "
                        "missing or stale ('' to skip)")
    parser.add_argument("--no_convert", action="store_true",
                        help="serve as is, without converting saved models")
    parser.add_argument("--no_build", action="store_true",
                        help="do not build the page bundle even when it is stale (a missing "
                             "bundle is an error: the page cannot run without it)")
    parser.add_argument("--web_root", default=WEB_ROOT, help="the page's folder")
    parser.add_argument("--quiet", action="store_true", help="no request log")


class SetupError(RuntimeError):
    """The page cannot be served (no index.html, no bundle and no way to build it, no
    converted model)."""


def prepare(web_root: str, models: str, saved_models: str | None = None, build: bool = True,
            convert: bool = True, log: Callable[[str], object] = say,
            warn: Callable[[str], object] | None = None, progress: bool = False) -> None:
    """Makes the page servable: builds a missing or stale bundle, converts the export bases
    under saved_models that have no current browser bundle in models (progress: show how
    far each conversion is, on stderr). log: what it is doing, each bundle's outcome included
    (default: on stderr, as `hmvae web` says it). Raises SetupError when it cannot be made
    servable, models/index.json missing included."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    bundle = os.path.join(web_root, BUNDLE)
    if not os.path.exists(os.path.join(web_root, "index.html")):
        raise SetupError(f"{web_root} has no index.html (--web_root)")
    if not bundle_is_current(web_root):
        if not build:
            if not os.path.exists(bundle):
                raise SetupError(f"{bundle} is missing; run `npm ci && npm run build` in "
                                 f"{web_root}")
        else:
            try:
                build_bundle(web_root, log=log)
            except (RuntimeError, subprocess.CalledProcessError) as err:
                if not os.path.exists(bundle):
                    raise SetupError(str(err)) from err
                warn(f"serving the existing, older bundle: {err}")
    if saved_models and convert:
        from hmvae_tf import tfjs, tfjs_bundles
        if tfjs_bundles.export_bases(saved_models):
            try:
                tfjs.convert_all(saved_models, models, log=log, progress=progress)
            except ImportError as err:  # tensorflowjs is an extra: pip install -e .[tfjs]
                warn(f"cannot convert {saved_models} for the page ({err}); serving the models "
                     "already converted")
    if not os.path.isfile(os.path.join(models, "index.json")):
        # A mistyped --models (or an empty folder) would serve a page that cannot do anything.
        what = "is not a folder" if os.path.exists(models) and not os.path.isdir(models) else (
            "has no index.json" if os.path.isdir(models) else "does not exist")
        raise SetupError(
            f"the models folder {models} {what}, so the page would have no model to offer: "
            "--models is the folder `hmvae tfjs` converts into; convert one with `hmvae tfjs "
            f"--saved_model=<export> --out={os.path.join(models, '<name>')}`")


def listen_error(host: str, port: int, err: OSError) -> str:
    """One line for a server that cannot listen, with what to do about the usual causes."""
    why = err.strerror or str(err)
    if err.errno == errno.EADDRINUSE:
        why += "; stop the server that has it, or choose another --port (0 picks a free one)"
    elif err.errno in (errno.EACCES, errno.EPERM):
        why += "; ports below 1024 need root: choose another --port"
    elif err.errno == errno.EADDRNOTAVAIL or isinstance(err, socket.gaierror):
        why += "; --host must name this machine (127.0.0.1, or 0.0.0.0 for every interface)"
    return f"cannot listen on {host}:{port}: {why}"


def run(args: argparse.Namespace) -> int:
    """`hmvae web`: serves the demo page until Ctrl-C; exit status."""
    from hmvae_tf.cli import CommandError

    web_root = os.path.abspath(args.web_root)
    models = os.path.abspath(args.models or os.path.join(web_root, "models"))
    # The port first: a port in use is said at once, not after minutes of building and
    # converting. Requests that come before the page is ready wait for it.
    try:
        server = make_server(web_root, models, args.host, args.port, quiet=args.quiet)
    except OSError as err:  # a port in use or taken, an address not on this machine
        raise CommandError(listen_error(args.host, args.port, err)) from None
    try:
        try:
            # Building and converting are what it does before it serves, said on stderr with
            # their progress: stdout holds the page's address alone.
            prepare(web_root, models, args.saved_models, build=not args.no_build,
                    convert=not args.no_convert, progress=True)
        except SetupError as err:
            raise CommandError(str(err)) from None  # "hmvae web: error: ...", as every command
        host, port = server.server_address[:2]
        print(f"serving {web_root} (models: {models}) at http://{host}:{port}/  (Ctrl-C stops)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    finally:
        server.server_close()
    return 0
