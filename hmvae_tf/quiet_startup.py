"""TensorFlow's start-up for the `hmvae` commands: its chatter kept off the terminal, and no JAX.

On a machine without a GPU, importing the `tensorflow` wheel prints a dozen lines such as
"Unable to register cuDNN factory", "computation placer already registered" and "failed call
to cuInit" before a command has said anything. They are harmless, but they read like errors.
TF_CPP_MIN_LOG_LEVEL hides only some of them: the ones logged through absl before absl's logging
is initialised go to stderr whatever it says. So, unless the user set TF_CPP_MIN_LOG_LEVEL
(then they see everything, as they asked), `install()` makes the first import of TensorFlow run
with file descriptor 2 sent to a temporary file, and so does the loading of the first TF1
session's graph (`first_session_load`), whose optimisation prints one more. Afterwards every
captured line that is not one of the known start-up lines is written to stderr as it was, so a
real warning still shows. TF_CPP_MIN_LOG_LEVEL becomes 3, which keeps the rest of TensorFlow's
C++ log (such as "failed call to cuInit") quiet: its errors reach the user as Python exceptions.

The cost of the capture: if TensorFlow's import itself crashes the process (a CPU it was not
built for), its last words stay in the temporary file. Set TF_CPP_MIN_LOG_LEVEL=0 to see them.

Whatever the log level, TensorFlow's import here runs without JAX. tensorflowjs (the `tfjs`
extra) installs JAX, and `import tensorflow` then imports it for TFLite's JAX converter,
which this project never uses: 1.4 s of every command's start (`python -X importtime`).
Hidden for that import only, JAX stays importable afterwards (`hmvae tfjs` needs it).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, MutableMapping

# Lines TensorFlow prints while it starts on a CPU-only machine, none of which asks the user to
# do anything.
KNOWN_STARTUP_LINES = re.compile(
    r"Unable to register cu(FFT|DNN|BLAS) factory"
    r"|All log messages before absl::InitializeLog\(\) is called"
    r"|computation placer already registered"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|cpu_feature_guard\.cc|^To enable the following instructions:"
    r"|oneDNN custom operations are on"
    r"|MLIR V1 optimization pass is not enabled"
    r"|oneDNN supports DT_INT32 only on platforms with AVX-512"
    # XLA's CPU service, the first time anything is compiled with it.
    r"|XLA service 0x[0-9a-f]+ initialized for platform"
    r"|StreamExecutor device \(\d+\): Host"
    r"|Compiled cluster using XLA!"
    # The TF.js converter: grappler's session per graph, and YDF's advert on import.
    r"|devices\.cc:\d+\] Number of eligible GPUs"
    r"|single_machine\.cc:\d+\] Starting new session"
    r"|Try https://ydf\.readthedocs\.io, the successor of TensorFlow Decision Forests")


def unknown_lines(text: str) -> str:
    """`text` without the lines that KNOWN_STARTUP_LINES matches."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not KNOWN_STARTUP_LINES.search(line))


@contextlib.contextmanager
def stderr_filtered() -> Iterator[None]:
    """Runs the block with fd 2 in a temporary file, then writes its unknown lines to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = unknown_lines(capture.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


_first_session = {"pending": False}
_first_session_lock = threading.Lock()


def first_session_load() -> contextlib.AbstractContextManager[None]:
    """stderr_filtered the first time it is asked for after `install()`, else a no-op: for
    loading a graph into a TF1 session, whose first optimisation logs through absl."""
    with _first_session_lock:
        pending, _first_session["pending"] = _first_session["pending"], False
    return stderr_filtered() if pending else contextlib.nullcontext()


_xla_started = {"done": False}


def start_xla() -> None:
    """Compiles a one-op function with XLA in stderr_filtered, once, if `install()` quiets:
    XLA's CPU service announces itself through absl on its first compile (three lines), which
    would otherwise land in the middle of a command's output (training's first step)."""
    with _first_session_lock:
        if _xla_started["done"] or not _set_by_us["level"]:
            return
        _xla_started["done"] = True
    import tensorflow as tf

    with stderr_filtered():
        tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(0.0))


@contextlib.contextmanager
def without_module(name: str) -> Iterator[None]:
    """Runs the block with `import name` failing (ImportError), unless it is imported already;
    afterwards it imports normally again."""
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # the import system's "not importable" marker
    try:
        yield
    finally:
        if sys.modules.get(name, ...) is None:
            del sys.modules[name]


class _StartupLoader(importlib.abc.Loader):
    """Wraps the loader of the `tensorflow` package: its import runs without JAX and, when
    quiet, in stderr_filtered."""

    def __init__(self, loader: importlib.abc.Loader, quiet: bool):
        self._loader, self._quiet = loader, quiet

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with (stderr_filtered() if self._quiet else contextlib.nullcontext()), \
                without_module("jax"):
            self._loader.exec_module(module)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, the normal way, and hands back its spec with _StartupLoader."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _StartupLoader(spec.loader, self.quiet)
        return spec


_set_by_us = {"level": False}


def child_environ() -> dict[str, str]:
    """This process's environment for an `hmvae` child process: without the
    TF_CPP_MIN_LOG_LEVEL that `install()` set, so that the child quiets its own start-up
    (a level the user set is kept, and the child then shows everything, as asked)."""
    environ = dict(os.environ)
    if _set_by_us["level"]:
        environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return environ


def install(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Makes TensorFlow's first import skip JAX and, unless TF_CPP_MIN_LOG_LEVEL is set, quiet
    (TF_CPP_MIN_LOG_LEVEL=3 for the rest of the process). Returns whether it quiets; nothing
    changes once TensorFlow is imported."""
    if "tensorflow" in sys.modules:
        return False
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in environ
    if quiet:
        environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        _first_session["pending"] = True
        _set_by_us["level"] = True
    if not any(isinstance(f, _TensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder(quiet))
    return quiet
