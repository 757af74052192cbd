"""Apache Beam transform that converts source pieces into dataset rows, for large collections.

`tfds build ... --beam_pipeline_options=direct_num_workers=2,direct_running_mode=multi_processing`
makes the dataset builder return one `ConvertPieces` per split instead of its own worker
pool, so TFDS runs the conversion and the writing on Beam: local worker processes with the
DirectRunner, or any other runner. The conversion is the same `corpus.convert_pieces` the
default path uses, on chunks of pieces so that the batched window extraction still pays.

The functions live here rather than in the builder file because Beam workers unpickle them
by module name, and `hmvae_tf` is importable in every worker while the builder file is not.
"""
from __future__ import annotations

import collections
import json
import os
from typing import Iterable, Sequence

import apache_beam as beam

from . import corpus

STATS_FILE = "{split}.json"


def _convert_chunk(chunk: tuple[int, list[corpus.Piece]], rep_name: str, num_bars: int):
    """(chunk index, pieces) -> (rows, counts); counts as a plain dict to travel light."""
    _, pieces = chunk
    examples, stats = corpus.convert_pieces((rep_name, num_bars, pieces))
    return [(ex.key, ex.features()) for ex in examples], dict(stats)


def _sum_counts(counts: Iterable[dict]) -> dict:
    total = collections.Counter()
    for c in counts:
        total.update(c)
    return dict(total)


def _write_counts(counts: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(counts, f)


class ConvertPieces(beam.PTransform):
    """Pieces of one split -> (key, example) rows for TFDS. The split's counts (pieces read,
    skips by reason, windows) are summed across workers and written as JSON to
    `<stats_dir>/<split>.json`, which the builder reads back for its report."""

    def __init__(self, rep_name: str, num_bars: int, pieces: Sequence[corpus.Piece],
                 chunk_size: int, stats_dir: str, split: str):
        super().__init__()
        self.rep_name, self.num_bars = rep_name, num_bars
        self.chunks = list(enumerate(corpus.chunk(pieces, chunk_size)))
        self.stats_path = os.path.join(stats_dir, STATS_FILE.format(split=split))

    def expand(self, pbegin):
        """Chunks spread over workers and converted; counts go to JSON, rows downstream."""
        converted = (
            pbegin
            | "CreateChunks" >> beam.Create(self.chunks)
            # Without a reshuffle the runner may keep every chunk in one bundle on one worker.
            | "Distribute" >> beam.Reshuffle()
            | "Convert" >> beam.Map(_convert_chunk, self.rep_name, self.num_bars))
        _ = (converted
             | "Counts" >> beam.Map(lambda result: result[1])
             | "SumCounts" >> beam.CombineGlobally(_sum_counts)
             | "WriteCounts" >> beam.Map(_write_counts, self.stats_path))
        return converted | "Rows" >> beam.FlatMap(lambda result: result[0])


def read_counts(stats_dir: str, split: str) -> dict | None:
    """A split's summed counts, or None if the pipeline wrote none (e.g. a remote runner)."""
    path = os.path.join(stats_dir, STATS_FILE.format(split=split))
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
