"""What a prepared hmvae_notesequences build was made from, read from its metadata.

The builder stores its --manual_dir folder as a key of its own; builds made before that carry
only the human-readable `source` line ("manual_dir <folder>[, subset of ...]"), which is
parsed here, in one place, for them. No TensorFlow or TFDS at import: the builder, `hmvae
train` and the model card all read it.
"""
from __future__ import annotations

import re
from typing import Mapping

MANUAL_PREFIX = "manual_dir "
# What the builder appends to `source` for a HMVAE_TFDS_MAX_PIECES build.
_SUBSET_SUFFIX = re.compile(r", subset of (?P<pieces>\d+) pieces \((?P<env>\w+)=(?P<limit>\d+)\)$")


def manual_dir(metadata: Mapping | None) -> str | None:
    """The --manual_dir folder the build read, or None for the embedded corpus (or a build
    that recorded no source)."""
    metadata = metadata or {}
    if "manual_dir" in metadata:
        return metadata["manual_dir"] or None
    source = str(metadata.get("source") or "")
    if not source.startswith(MANUAL_PREFIX):
        return None
    return _SUBSET_SUFFIX.sub("", source[len(MANUAL_PREFIX):])
