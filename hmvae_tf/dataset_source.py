"""What a prepared hmvae_notesequences build was made from, read from its metadata.

The builder stores its --manual_dir folder and the subset it took (HMVAE_TFDS_MAX_PIECES) as
keys of their own; builds made before that carry only the human-readable `source` line
("manual_dir <folder>[, subset of N pieces (HMVAE_TFDS_MAX_PIECES=L)]"), which is parsed
here, in one place, for them. No TensorFlow or TFDS at import: the builder, `hmvae
train` and the model card all read it.
"""
from __future__ import annotations

import re
from typing import Mapping

MANUAL_PREFIX = "manual_dir "
MAX_PIECES_ENV = "HMVAE_TFDS_MAX_PIECES"
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


def subset(metadata: Mapping | None) -> dict | None:
    """{"pieces": taken, "of": source pieces (None in builds that did not record it),
    "max_pieces": the HMVAE_TFDS_MAX_PIECES limit} of a subset build; None for a full one."""
    metadata = metadata or {}
    if "subset" in metadata:
        return metadata["subset"] or None
    found = _SUBSET_SUFFIX.search(str(metadata.get("source") or ""))
    if not found:
        return None
    return {"pieces": int(found["pieces"]), "of": None, "max_pieces": int(found["limit"])}


def subset_text(metadata: Mapping | None) -> str | None:
    """"160 of the 13,359 pieces of the embedded corpus (HMVAE_TFDS_MAX_PIECES=160)" for a
    subset build, None for a full one: such a build has the full build's name and version."""
    taken = subset(metadata)
    if taken is None:
        return None
    where = "--manual_dir" if manual_dir(metadata) else "the embedded corpus"
    count = (f"{taken['pieces']:,} of the {taken['of']:,} pieces" if taken.get("of")
             else f"{taken['pieces']:,} pieces")
    return f"{count} of {where} ({MAX_PIECES_ENV}={taken['max_pieces']})"
