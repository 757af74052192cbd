"""Apache Beam transform that converts source pieces into dataset rows, for large collections.

`tfds build ... --beam_pipeline_options=direct_num_workers=2,direct_running_mode=multi_processing`
makes the dataset builder return one `ConvertPieces` per split instead of its own worker
pool, so TFDS runs the conversion and the writing on Beam: local worker processes with the
DirectRunner, or any other runner. The conversion is the same `corpus.convert_pieces` the
default path uses, on chunks of pieces so that the batched window extraction still pays;
the splits share one conversion (`SharedConversion`), whose counts are written before TFDS
writes any split.

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


def _convert_chunk(chunk: tuple[str, int, list[corpus.Piece]], rep_name: str, num_bars: int):
    """(split, chunk index, pieces) -> (split, rows, counts); counts as a plain dict to travel
    light."""
    split, _, pieces = chunk
    examples, stats = corpus.convert_pieces((rep_name, num_bars, pieces))
    return split, [(ex.key, ex.features()) for ex in examples], dict(stats)


def _sum_counts(counts: Iterable[dict]) -> dict:
    total = collections.Counter()
    for c in counts:
        total.update(c)
    return dict(total)


def _write_counts(counts_by_split: dict, stats_dir: str) -> dict:
    for split, counts in counts_by_split.items():
        with open(os.path.join(stats_dir, STATS_FILE.format(split=split)), "w") as f:
            json.dump(counts, f)
    return counts_by_split


def _rows(result, written):
    """The rows of a converted chunk, once every split's counts are on disk (`written`, a
    side input, only orders the steps)."""
    del written
    return result[1]


class SharedConversion:
    """Every split's pieces, converted by one set of stages that the splits' transforms read.

    One conversion for all splits, rather than one per split, so that the counts of every
    split are written before any split's rows reach TFDS's writer: TFDS stops a Beam pipeline
    on a split without examples ("The total number of generated examples is 0"), and the
    builder then reads these counts to say which pieces gave no window and why, as the
    default path does. The stages are added to the pipeline by the first split's transform.
    """

    def __init__(self, rep_name: str, num_bars: int,
                 pieces_by_split: dict[str, Sequence[corpus.Piece]], chunk_size: int,
                 stats_dir: str):
        self.rep_name, self.num_bars, self.stats_dir = rep_name, num_bars, stats_dir
        self.splits = [split for split, pieces in pieces_by_split.items() if pieces]
        self.chunks = [(split, i, part) for split in self.splits
                       for i, part in enumerate(corpus.chunk(pieces_by_split[split],
                                                             chunk_size))]
        self._applied = None  # (pipeline, {split: converted chunks}, counts written)

    def outputs(self, pipeline: beam.Pipeline, split: str):
        """(this split's converted chunks, every split's counts once written)."""
        if self._applied is None or self._applied[0] is not pipeline:
            index = {name: i for i, name in enumerate(self.splits)}
            converted = (
                pipeline
                | "ConvertAll/CreateChunks" >> beam.Create(self.chunks)
                # Without a reshuffle the runner may keep every chunk in one bundle.
                | "ConvertAll/Distribute" >> beam.Reshuffle()
                | "ConvertAll/Convert" >> beam.Map(_convert_chunk, self.rep_name,
                                                   self.num_bars))
            parts = converted | "ConvertAll/BySplit" >> beam.Partition(
                lambda result, _: index[result[0]], len(self.splits))
            written = (converted
                       | "ConvertAll/Counts" >> beam.Map(lambda result: (result[0], result[2]))
                       | "ConvertAll/SumCounts" >> beam.CombinePerKey(_sum_counts)
                       | "ConvertAll/AllSplits" >> beam.combiners.ToDict()
                       | "ConvertAll/WriteCounts" >> beam.Map(_write_counts, self.stats_dir))
            self._applied = (pipeline, dict(zip(self.splits, parts)), written)
        return self._applied[1][split], self._applied[2]


class ConvertPieces(beam.PTransform):
    """One split's (key, example) rows for TFDS, from the shared conversion. Each split's
    counts (pieces read, skips by reason, windows), summed across workers, are written as
    JSON to `<stats_dir>/<split>.json` before any row is handed on; the builder reads them
    back for its report."""

    def __init__(self, shared: SharedConversion, split: str):
        super().__init__()
        self.shared, self.split = shared, split

    def expand(self, pbegin):
        """This split's converted chunks, held until every split's counts are written."""
        converted, written = self.shared.outputs(pbegin.pipeline, self.split)
        return converted | "Rows" >> beam.FlatMap(_rows, beam.pvalue.AsSingleton(written))


def read_counts(stats_dir: str, split: str) -> dict | None:
    """A split's summed counts, or None if the pipeline wrote none (e.g. a remote runner)."""
    path = os.path.join(stats_dir, STATS_FILE.format(split=split))
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
