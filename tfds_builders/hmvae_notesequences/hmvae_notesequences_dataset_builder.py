"""hmvae_notesequences: MusicVAE training windows (melody, drums, trio) as TFDS.

    tfds build tfds_builders/hmvae_notesequences --config=mel_2bar            # embedded corpus
    tfds build tfds_builders/hmvae_notesequences --config=trio_16bar --manual_dir=~/lmd_full

Sources: with `--manual_dir`, every .mid/.midi/.kar/.smf/.rmi file under it (any case; RMID read as the
MIDI inside; byte-identical copies read once; Lakh MIDI, Groove MIDI, ...);
without it, the corpus that ships with music21 (about 13,000 ABC folk tunes via `abc2midi`
and 410 Bach chorales), which has no drums and no bass, so drums_2bar and trio_16bar need
`--manual_dir`. Splits train/validation/test (90/5/5) by a hash of the piece id.

Quick subsets: `HMVAE_TFDS_MAX_PIECES=300` converts an evenly spaced subset of the source
pieces (use its own --data_dir); TFDS's own `--max_examples_per_split=N` caps each split.
`HMVAE_TFDS_WORKERS=N` sets the number of worker processes (default: all cores; 1 = none).

Large collections: with TFDS's `--beam_pipeline_options` (or a Beam runner), conversion and
writing run on Apache Beam instead (`hmvae_tf.music.beam_convert`), e.g.
`--beam_pipeline_options=direct_num_workers=2,direct_running_mode=multi_processing` for local
worker processes; the counts are then collected from the workers after the pipeline.
Counts (files read, skips per reason, windows per split) are logged and stored in the
dataset's metadata (`builder.info.metadata`, metadata.json).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from hmvae_tf import dataset_source, dataset_version
from hmvae_tf.dataset_build_errors import BuildInputError, BuildInputMissingError
from hmvae_tf.music import corpus
from hmvae_tf.music.representations import get_representation

log = logging.getLogger(__name__)

MAX_PIECES_ENV = dataset_source.MAX_PIECES_ENV
WORKERS_ENV = "HMVAE_TFDS_WORKERS"


def _pieces_hash(count: int) -> str:
    """How many pieces a split's hash gave it, in the report's wording."""
    return f"{count} piece hashes into it" if count == 1 else f"{count} pieces hash into it"


def _not_a_folder_of_files(path: str) -> str:
    """Why TFDS refused a --manual_dir, in words: it says only "not found or empty"."""
    if not os.path.exists(path):
        return "does not exist"
    if not os.path.isdir(path):
        return "is a file, not a folder"
    return "is an empty folder"


@dataclasses.dataclass
class HmvaeConfig(tfds.core.BuilderConfig):
    """One representation at one window length.

    `embedded`: whether the music21 corpus can provide this representation. `max_pieces`
    limits the number of source pieces (0 = all; the env var HMVAE_TFDS_MAX_PIECES wins).
    """

    representation: str = "melody"
    num_bars: int = 2
    embedded: bool = True
    needs: str = ""
    max_pieces: int = 0


MANUAL_HINT = "pass --manual_dir=<folder of .mid files>"
UNREADABLE_SHOWN = 10  # the build report names this many unreadable pieces
PROGRESS_SECONDS = 30  # a line on the conversion's progress at most this often


class Builder(tfds.core.GeneratorBasedBuilder):
    """MusicVAE windows from NoteSequences."""

    # Kept in hmvae_tf.dataset_version, where `hmvae train` reads it without importing this.
    VERSION = tfds.core.Version(dataset_version.VERSION)
    RELEASE_NOTES = dataset_version.RELEASE_NOTES
    BUILDER_CONFIGS = [
        HmvaeConfig(name="mel_2bar", description="2-bar monophonic melodies (90 classes).",
                    representation="melody", num_bars=2,
                    needs="melody parts in programs 0-31 (pianos, organs, guitars ...: "
                          "Magenta's 2-bar melody programs; a flute, violin, voice or synth "
                          "lead is left out, mel_16bar takes them) in a 4/4-compatible meter"),
        HmvaeConfig(name="mel_16bar", description="16-bar monophonic melodies (90 classes).",
                    representation="melody", num_bars=16),
        HmvaeConfig(name="drums_2bar", description="2-bar drum patterns (512 classes).",
                    representation="drums", num_bars=2, embedded=False,
                    needs="MIDI files with drums (channel 10), e.g. Groove MIDI or Lakh MIDI"),
        HmvaeConfig(name="trio_16bar",
                    description="16-bar melody + bass + drums trios (90|90|512 classes).",
                    representation="trio", num_bars=16, embedded=False,
                    needs="MIDI files with melody (programs 0-31), bass (programs 32-39) "
                          "and drums, e.g. Lakh MIDI"),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Optional for mel_2bar and mel_16bar (they default to the corpus that ships with music21),
    required for drums_2bar and trio_16bar: a folder tree of .mid/.midi/.kar/.smf/.rmi files, e.g. Lakh MIDI
    (lmd_full) or Groove MIDI, given as --manual_dir=<folder>.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        rep = get_representation(cfg.representation)
        shape = rep.token_shape(cfg.num_bars)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "note_sequence": tfds.features.Tensor(shape=(), dtype=np.object_),
                "tokens": tfds.features.Tensor(shape=shape, dtype=np.int32),
                "piece_id": tfds.features.Text(),
                "start_bar": tfds.features.Scalar(dtype=np.int32),
                "program": tfds.features.Scalar(dtype=np.int32),
            }),
            supervised_keys=None,
            homepage="https://github.com/magenta/magenta/tree/main/magenta/models/music_vae",
            metadata=tfds.core.MetadataDict(),
        )

    def download_and_prepare(self, *args, download_config=None, **kwargs):
        """TFDS reuses a built dataset whatever --manual_dir says; a build asking for another
        folder than the one the dataset was made from stops instead of silently reusing it."""
        asked = getattr(download_config, "manual_dir", None)
        mode = getattr(download_config, "download_mode", None)
        reuse = mode in (None, tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        if asked and reuse and self.data_path.exists():
            source = str(self.info.metadata.get("source", ""))
            built = dataset_source.manual_dir(self.info.metadata)
            norm = lambda d: os.path.realpath(os.path.expanduser(str(d)))  # noqa: E731
            if built is None or norm(built) != norm(asked):
                raise BuildInputError(
                    f"{self.data_path} was built from the {source or 'an unknown source'}, "
                    f"not --manual_dir={asked}; TFDS would reuse it as it is. Pass --overwrite "
                    "to rebuild it, or another --data_dir.")
            changed = self._folder_change(asked)
            if changed:
                raise BuildInputError(
                    f"{self.data_path} was built from --manual_dir={asked}, which has changed "
                    f"since ({changed}); TFDS would reuse the build as it is. Pass --overwrite "
                    "to rebuild it, or another --data_dir.")
        return super().download_and_prepare(*args, download_config=download_config, **kwargs)

    def _folder_change(self, folder: str) -> str | None:
        """How the MIDI files under `folder` differ from those the build recorded ("12 MIDI
        files, 40,960 bytes when built; now 15, 52,001 bytes"), or None: the same, or a build
        made before the listing was recorded."""
        built = self.info.metadata.get("manual_dir_listing")
        if not built:
            return None
        now = corpus.midi_folder_listing(corpus.midi_files(os.path.expanduser(folder)))
        if now == dict(built):
            return None
        if (now["files"], now["bytes"]) == (built["files"], built["bytes"]):
            return f"a MIDI file was modified after the build, {built['files']} files as then"
        return (f"{built['files']:,} MIDI files, {built['bytes']:,} bytes when built; now "
                f"{now['files']:,}, {now['bytes']:,} bytes")

    # ------------------------------------------------------------------ sources

    def _manual_dir(self, dl_manager):
        """The --manual_dir folder, or None when the build was given none. TFDS then points
        at <download_dir>/manual; any other folder was asked for, and one that is missing or
        empty must stop the build rather than fall back to the embedded corpus. What was
        asked comes from the build's DownloadConfig (`_download_and_prepare`): the download
        manager keeps it private."""
        try:
            return dl_manager.manual_dir
        except (AssertionError, ValueError, NotADirectoryError) as err:
            asked = getattr(self, "_asked_manual_dir", None)
            asked = None if asked is None else os.path.expanduser(str(asked))
            default = os.path.join(str(dl_manager.download_dir), "manual")
            if asked is not None and os.path.normpath(asked) != os.path.normpath(default):
                raise BuildInputMissingError(
                    f"--manual_dir={asked} {_not_a_folder_of_files(asked)}; it should be a "
                    "folder holding the .mid/.midi/.kar/.smf/.rmi files to build from") from err
            return None

    def _pieces(self, dl_manager) -> tuple[list[corpus.Piece], str]:
        cfg = self.builder_config
        manual = self._manual_dir(dl_manager)
        self._scan_stats = collections.Counter()  # files left out before conversion
        # What the build was made from, as metadata keys of their own (not only in `source`).
        self._provenance = {"manual_dir": None if manual is None else str(manual)}
        if manual is not None:
            files = corpus.midi_files(manual)  # one walk of the folder, for both
            self._provenance["manual_dir_listing"] = corpus.midi_folder_listing(files)
            pieces = corpus.midi_pieces(manual, self._scan_stats, files)
            source = f"{dataset_source.MANUAL_PREFIX}{manual}"
            if not pieces:
                raise BuildInputError(f"{cfg.name}: no .mid/.midi/.kar/.smf/.rmi files under "
                                      f"--manual_dir={manual}")
        elif not cfg.embedded:
            raise BuildInputError(
                f"{cfg.name} needs {cfg.needs}: {MANUAL_HINT}. The embedded music21 corpus "
                "has no drums or bass, so it cannot make this dataset.")
        else:
            if not corpus.abc2midi_available():
                raise BuildInputMissingError(
                    f"{cfg.name} from the embedded corpus needs abc2midi to read the ABC "
                    "tunes: apt-get install abcmidi (or pass --manual_dir=<MIDI folder>)")
            pieces = corpus.embedded_pieces()
            source = "embedded music21 corpus (ABC folk tunes via abc2midi + Bach chorales)"
        limit = int(os.environ.get(MAX_PIECES_ENV) or cfg.max_pieces or 0)
        total = len(pieces)
        if limit:
            pieces = corpus.subset(pieces, limit)
        # A subset build has the full build's name and version: only this tells them apart.
        self._provenance["subset"] = None
        if len(pieces) < total:
            source += f", subset of {len(pieces)} pieces ({MAX_PIECES_ENV}={limit})"
            self._provenance["subset"] = {"pieces": len(pieces), "of": total,
                                          "max_pieces": limit}
        # What converted them: the windows change with the corpus and the readers' versions.
        self._provenance["tool_versions"] = corpus.tool_versions(pieces)
        return pieces, source

    def _download_and_prepare(self, dl_manager, download_config):
        """TFDS's generation of the splits, with what the split generators cannot see or do
        themselves: the --manual_dir the user asked for (`_manual_dir`), whether the build
        runs on Beam (then a folder for the workers' counts, removed afterwards), and on Beam
        the report and the empty-split checks, once the pipeline has run and before TFDS
        writes the dataset's info.

        Not a public TFDS method: 4.9.10 has no public hook between "splits written" and
        "info written" (`download_and_prepare` writes the info as soon as this returns, and
        `_post_download_and_prepare_hook` runs once the dataset is in place, too late to stop
        an empty build). It is the abstract method of `tfds.core.DatasetBuilder` that its
        docstring tells subclasses to overwrite, with this signature since TFDS 1.0, rather
        than GeneratorBasedBuilder's internal `_generate_splits`; tests/test_tfds_builder_api.py
        fails if a TFDS upgrade changes what this relies on."""
        self._asked_manual_dir = download_config.manual_dir
        use_beam = (download_config.beam_options is not None
                    or download_config.beam_runner is not None)
        self._beam_stats_dir = tempfile.mkdtemp(prefix="hmvae_beam_") if use_beam else None
        self._beam_run = None  # set when the Beam transforms are made
        try:
            try:
                super()._download_and_prepare(dl_manager, download_config)
            except Exception as err:
                stop = self._beam_empty_split() if use_beam else None
                if stop is None:
                    raise
                raise stop from err
            if self._beam_run is not None:  # not when --max_examples_per_split=0 skipped it
                self._report_beam(self.info.splits.values())
        finally:
            if use_beam:
                shutil.rmtree(self._beam_stats_dir, ignore_errors=True)

    def _split_generators(self, dl_manager):
        """Converts every piece once (in worker processes), spooling each split's examples to
        a temporary file, so the report and the splits' sizes are known before writing and
        an empty train split fails before anything is written."""
        cfg = self.builder_config
        pieces, source = self._pieces(dl_manager)
        dups = self._scan_stats["skip/duplicate"]
        self._say(f"hmvae_notesequences/{cfg.name}: reading {len(pieces)} "
                  f"piece{'' if len(pieces) == 1 else 's'} from the {source}"
                  + (f" ({dups} byte-identical cop{'y' if dups == 1 else 'ies'} left out)"
                     if dups else ""))
        chunk_size = 128 if pieces and pieces[0].kind == "abc" else 32
        if getattr(self, "_beam_stats_dir", None):
            return self._beam_split_generators(pieces, source, chunk_size)
        spool = Path(tempfile.mkdtemp(prefix=f"hmvae_{cfg.name}_"))
        counts = collections.Counter()
        split_pieces = collections.Counter(corpus.split_of(p.piece_id) for p in pieces)
        stats = collections.Counter()
        workers = int(os.environ.get(WORKERS_ENV) or 0)
        stats.update(self._scan_stats)
        t0 = time.time()
        last_said, done = t0, 0
        try:
            for part_counts, part in corpus.spool_all(cfg.representation, cfg.num_bars,
                                                      pieces, spool, workers=workers,
                                                      chunk_size=chunk_size):
                stats.update(part)
                counts.update(part_counts)
                done = min(done + chunk_size, len(pieces))
                now = time.time()
                if now - last_said >= PROGRESS_SECONDS and done < len(pieces):
                    last_said = now
                    left = (now - t0) / done * (len(pieces) - done)
                    self._say(f"hmvae_notesequences/{cfg.name}: converted {done}/{len(pieces)} "
                              f"pieces, {sum(counts.values())} windows, "
                              f"{stats['skip/unreadable']} unreadable so far "
                              f"({now - t0:.0f}s, about {left:.0f}s left)")
        except BaseException:
            shutil.rmtree(spool, ignore_errors=True)
            raise
        seconds = time.time() - t0
        self._report(source, len(pieces) + stats["skip/duplicate"], split_pieces, counts,
                     stats, seconds)
        if not counts["train"]:
            shutil.rmtree(spool, ignore_errors=True)
            raise BuildInputError(self._empty_message(stats))
        out = {}
        for name, _ in corpus.SPLITS:
            if counts[name]:
                out[name] = self._generate_examples(name, spool)
            else:
                self._say(f"hmvae_notesequences/{cfg.name}: split {name!r} has no window "
                          f"({_pieces_hash(split_pieces[name])}); it is left out")
        return out

    def _beam_split_generators(self, pieces, source, chunk_size):
        """One Beam transform per split that has pieces; the report comes after the run."""
        from hmvae_tf.music import beam_convert

        cfg = self.builder_config
        by_split = collections.defaultdict(list)
        for piece in pieces:
            by_split[corpus.split_of(piece.piece_id)].append(piece)
        self._beam_run = {"source": source, "pieces": len(pieces), "t0": time.time(),
                          "split_pieces": collections.Counter(
                              {k: len(v) for k, v in by_split.items()})}
        self._say(f"hmvae_notesequences/{cfg.name}: converting on Apache Beam, chunks of "
                  f"{chunk_size} pieces")
        shared = beam_convert.SharedConversion(cfg.representation, cfg.num_bars, by_split,
                                               chunk_size, self._beam_stats_dir)
        return {name: beam_convert.ConvertPieces(shared, name)
                for name, _ in corpus.SPLITS if by_split[name]}

    def _report_beam(self, split_infos) -> None:
        from hmvae_tf.music import beam_convert

        run = self._beam_run
        stats, counts, missing = collections.Counter(self._scan_stats), collections.Counter(), []
        for info in split_infos:
            counts[info.name] = info.num_examples
            part = beam_convert.read_counts(self._beam_stats_dir, info.name)
            if part is None:
                missing.append(info.name)
            else:
                stats.update(part)
        if missing:
            self._say(f"hmvae_notesequences: no counts came back for {missing} (a runner whose "
                      "workers cannot write to this machine's temp folder); windows per split "
                      "are still in the dataset info")
        self._report_run(run, counts, stats)
        if not counts["train"]:
            raise BuildInputError(self._empty_message(stats))

    def _report_run(self, run: dict, counts: collections.Counter,
                    stats: collections.Counter) -> None:
        """The build report of a Beam run (`_beam_run`) from the counts read back."""
        self._report(run["source"], run["pieces"] + stats["skip/duplicate"],
                     run["split_pieces"], counts, stats, time.time() - run["t0"])

    def _beam_empty_split(self) -> BuildInputError | None:
        """Why the Beam pipeline stopped, when it is a split without windows: TFDS refuses to
        write an empty split on Beam (its own traceback otherwise), where the default path
        leaves it out. The workers wrote every split's counts before any split was written;
        None when they are missing (a remote runner) or show no empty split."""
        from hmvae_tf.music import beam_convert

        run = getattr(self, "_beam_run", None)
        if run is None:  # the pipeline never started: not a split's fault
            return None
        parts = {name: beam_convert.read_counts(self._beam_stats_dir, name)
                 for name in run["split_pieces"]}
        if any(part is None for part in parts.values()):
            return None
        counts = collections.Counter({name: part.get("windows", 0)
                                      for name, part in parts.items()})
        empty = [name for name, part in parts.items() if not counts[name]]
        if not empty:
            return None
        stats = collections.Counter(self._scan_stats)
        for part in parts.values():
            stats.update(part)
        self._report_run(run, counts, stats)
        if not counts["train"]:
            return BuildInputError(self._empty_message(stats))
        cfg = self.builder_config
        return BuildInputError(
            f"{cfg.name}: no {cfg.num_bars}-bar {cfg.representation} window in the "
            + " or ".join(f"{name} split ({_pieces_hash(run['split_pieces'][name])})"
                          for name in empty)
            + ", and TFDS cannot leave a split out of a Beam build: build without "
            "--beam_pipeline_options (empty splits are left out), or add files.")

    def _generate_examples(self, split: str, spool: Path):
        try:
            for ex in corpus.read_spool(spool, split):
                yield ex.key, ex.features()
        finally:  # also when --max_examples_per_split stops early
            for path in spool.glob(f"*-{split}.pkl"):
                path.unlink(missing_ok=True)
            if spool.exists() and not any(spool.iterdir()):
                spool.rmdir()

    # ------------------------------------------------------------------ report

    @staticmethod
    def _say(line: str) -> None:
        """Shown once on the console: in the log at INFO where that is shown (`tfds build`),
        printed where it is not (the builder used from Python)."""
        log.info(line)
        if not log.isEnabledFor(logging.INFO):
            print(line, flush=True)

    def _empty_message(self, stats) -> str:
        cfg = self.builder_config
        reasons = ", ".join(f"{k[5:]}: {v}" for k, v in sorted(stats.items())
                            if k.startswith("skip/")) or "no readable pieces"
        need = cfg.needs or "music in a 4/4-compatible meter"
        # Given a folder, the user needs other files, not the flag they just passed.
        hint = "" if getattr(self, "_provenance", {}).get("manual_dir") else f"; {MANUAL_HINT}"
        return (f"{cfg.name}: no {cfg.num_bars}-bar {cfg.representation} window in the train "
                f"split (pieces skipped: {reasons}). It needs {need}{hint}."
                + self._drums_elsewhere_hint(stats))

    @staticmethod
    def _drums_elsewhere_hint(stats) -> str:
        """' 3 files have notes but none on channel 10 ...' when drum windows were looked for
        in files without a drum part (drums.count_pitched_only): their drums are often just
        on another channel, which the user can fix once told; '' otherwise."""
        count = stats.get("drums_elsewhere", 0)
        if not count:
            return ""
        # Melody files without drums count too, so the advice is conditional.
        these = "these files have" if count > 1 else "it has"
        return (f" {count} file{'s have' if count > 1 else ' has'} notes but none on MIDI "
                "channel 10, so a drum part written on another channel is read as a pitched "
                f"instrument: if {these} one, move it to channel 10 (General MIDI's drum "
                "channel).")

    def _report(self, source, pieces, split_pieces, counts, stats, seconds) -> None:
        cfg = self.builder_config
        meta = {
            "source": source,
            **self._provenance,
            "pieces": pieces,
            "pieces_read": stats.get("pieces_read", 0),
            "pieces_with_windows": stats.get("pieces_with_windows", 0),
            "skipped": {k[5:]: v for k, v in sorted(stats.items()) if k.startswith("skip/")},
            "details": {k: v for k, v in sorted(stats.items())
                        if not k.startswith(("skip/", corpus.UNREADABLE_PREFIX,
                                             corpus.DUPLICATE_PREFIX)) and k not in (
                            "pieces_read", "pieces_with_windows", "windows")},
            "unreadable": sorted(k[len(corpus.UNREADABLE_PREFIX):] for k in stats
                                 if k.startswith(corpus.UNREADABLE_PREFIX)),
            "duplicates": sorted(k[len(corpus.DUPLICATE_PREFIX):] for k in stats
                                 if k.startswith(corpus.DUPLICATE_PREFIX)),
            "representation": cfg.representation,
            "bars": cfg.num_bars,
            "pieces_per_split": {name: split_pieces[name] for name, _ in corpus.SPLITS},
            "windows_per_split": {name: counts[name] for name, _ in corpus.SPLITS},
            "conversion_seconds": round(seconds, 1),
        }
        self.info.metadata.clear()
        self.info.metadata.update(meta)
        skipped = ", ".join(f"{k}={v}" for k, v in meta["skipped"].items()) or "none"
        self._say(
            f"hmvae_notesequences/{self.builder_config.name}: {pieces} pieces, "
            f"{meta['pieces_read']} read, {meta['pieces_with_windows']} with windows; "
            f"skipped: {skipped}; windows per split: {meta['windows_per_split']}; "
            f"conversion {seconds:.1f}s")
        self._say("hmvae_notesequences details: " + str(meta["details"]))
        shown = meta["unreadable"][:UNREADABLE_SHOWN]
        if shown:
            more = len(meta["unreadable"]) - len(shown)
            self._say("unreadable pieces (all of them are in metadata.json):\n  "
                      + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else ""))
