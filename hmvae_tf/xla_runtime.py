"""XLA's classic CPU runtime, asked for through XLA_FLAGS: the runtime that runs bfloat16
products at oneDNN's rate.

Outside `model` so that the server can ask for it for a bfloat16 export without importing
the model (serving needs only a SavedModel); `model.precision` asks for it when it traces
bfloat16 products.
"""
from __future__ import annotations

import os

XLA_CLASSIC_RUNTIME = "--xla_cpu_use_thunk_runtime=false"


def use_classic_xla_runtime() -> None:
    """Asks XLA's CPU backend for its classic runtime, the one that runs bfloat16 products at
    oneDNN's rate, unless XLA_FLAGS already chooses a runtime. XLA reads the flag at the
    process's first compile; later calls change nothing for this process."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_thunk_runtime" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_CLASSIC_RUNTIME}".strip()
