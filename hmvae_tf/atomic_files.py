"""Files written whole or not at all.

A command killed, interrupted or failing while it writes (a full disk, a value that cannot be
written halfway through) must neither leave half a file under the real name, where a later
run, a player or a server would take it for a good one, nor destroy the file it was about to
replace. So each file is written under a hidden temporary name in the same folder (the same
file system, and no glob for the real names matches it) and renamed over the real name only
once complete: os.replace is atomic, a reader sees the old file or the new one.

This guards against the writing process failing, not against a power cut (there is no
fsync): what the commands write can be made again.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from typing import IO, Any


def temporary_name(path: str | os.PathLike) -> str:
    """A hidden, unused name beside `path` for writing it."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Opens a temporary file to write (mode "w" or "wb") that replaces `path` when the block
    ends without an exception, and is deleted when it does not. An OSError that names no file
    (a full disk shows when the file is closed) is raised naming `path`."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    tmp = temporary_name(path)
    try:
        with open(tmp, mode.replace("w", "x"), **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, os.fspath(path)) from err
        raise


def write_text(path: str | os.PathLike, text: str) -> str:
    """Writes `text` to `path` whole or not at all; returns the path."""
    with replacing(path) as f:
        f.write(text)
    return os.fspath(path)


def write_json(path: str | os.PathLike, doc: Any, **dump_kwargs: Any) -> str:
    """json.dump of `doc` to `path`, whole or not at all; returns the path."""
    with replacing(path) as f:
        json.dump(doc, f, **dump_kwargs)
    return os.fspath(path)
