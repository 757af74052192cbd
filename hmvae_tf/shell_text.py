"""Paths as a user types them in the commands we print (model cards, `hmvae demo`): relative
when under the current directory, and quoted for the shell only when they need it."""
from __future__ import annotations

import os
import shlex


def typed(path: str) -> str:
    """A path as typed from the current directory (relative when inside it)."""
    if not path:
        return path
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def shown(path: str) -> str:
    """`typed(path)` for a shell command: quoted only when it holds a space or a character
    the shell would read (an ordinary path stays as it is)."""
    return shlex.quote(typed(path)) if path else path
