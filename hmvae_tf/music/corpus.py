"""Source music for the dataset: the music21 corpus (ABC folk tunes, Bach chorales) and MIDI
folders, turned into NoteSequences and then into windows, in worker processes.

* ABC: tunes are cut out of each collection file (keeping the file header), renumbered and
  converted by Debian's `abc2midi` in a temporary folder (about 1000x faster than music21's
  ABC parser). abc2midi starts a tune with a pickup at time 0 and puts the time signature
  there, but gives the note on every bar line velocity 105 (`%%MIDI beat`), so
  `fix_abc2midi_downbeats` recovers the downbeat: the most common phase of those notes
  becomes a pickup time signature, and a later bar line that moved for good (a bar of the
  wrong length in the source) gets a new time signature, i.e. a new downbeat.
* MusicXML (Bach chorales): note_seq's reader (~26 ms per chorale) via
  `musicxml_io.read_musicxml`, which encodes the score's pickup measure where note_seq misses
  it; the grid resolves its duplicate time signatures and turns its pickup signature into a
  partial bar.
* MIDI: note_seq via `midi_io.read_midi`; a corrupt file is counted as 'unreadable'.

Each piece has a stable id (`music21/essenFolksong/han1.abc#12`, `music21/bach/bwv1.6.mxl`,
or the file's path relative to the MIDI folder) that decides its split by hash.
"""
from __future__ import annotations

import collections
import dataclasses
import fractions
import hashlib
import importlib.metadata
import importlib.util
import os
import pickle
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from . import grid
from .grid import Stats

if TYPE_CHECKING:
    from note_seq.protobuf.music_pb2 import NoteSequence

ABC_COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk",
                   "nottingham-dataset")
BACH_COLLECTION = "bach"
ABC2MIDI_FLAGS = ("-silent", "-NGUI", "-NGRA", "-NFNP")  # no chords, graces or dynamics
DOWNBEAT_VELOCITY = 105
SPLITS = (("train", 90), ("validation", 95), ("test", 100))


@dataclasses.dataclass(frozen=True)
class Piece:
    """One source piece: an ABC tune (text incl. file header), a MusicXML or a MIDI file."""

    piece_id: str
    kind: str            # 'abc' | 'musicxml' | 'midi'
    path: str
    abc_text: bytes = b""   # the tune without its X: line
    abc_header: bytes = b""  # the collection file's header (shared by its tunes)


def music21_corpus_dir() -> Path:
    """The music21 corpus folder, found without importing music21 (slow)."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("music21 is not installed: it carries the embedded corpus")
    return Path(list(spec.submodule_search_locations)[0]) / "corpus"


def split_of(piece_id: str) -> str:
    """Stable train/validation/test (90/5/5) assignment by a hash of the piece id."""
    bucket = int(hashlib.md5(piece_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return next(name for name, limit in SPLITS if bucket < limit)


def abc_tunes(path: str | os.PathLike) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(file header, [(X label, tune text)]) of an ABC file; duplicate labels get '.2' ..."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = data.split(b"\n")
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(b"X:")]
    if not starts:
        return data, []
    header = b"\n".join(line for line in lines[:starts[0]]
                        if not line.lstrip().startswith(b"%%abc"))
    tunes, seen = [], collections.Counter()
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        label = lines[s].split(b":", 1)[1].strip().decode("latin-1") or str(k + 1)
        seen[label] += 1
        if seen[label] > 1:
            label = f"{label}.{seen[label]}"
        tunes.append((label, b"\n".join(lines[s + 1:end])))
    return header, tunes


def embedded_pieces(corpus_dir: str | os.PathLike | None = None) -> list[Piece]:
    """Every tune of the ABC folk collections and every Bach chorale (.mxl) of music21."""
    root = Path(corpus_dir) if corpus_dir else music21_corpus_dir()
    pieces: list[Piece] = []
    for collection in ABC_COLLECTIONS:
        for path in sorted((root / collection).glob("*.abc")):
            header, tunes = abc_tunes(path)
            rel = f"music21/{collection}/{path.name}"
            for label, text in tunes:
                pieces.append(Piece(f"{rel}#{label}", "abc", str(path), text, header))
    bach = root / BACH_COLLECTION
    stems = set()
    for path in sorted(bach.glob("*.mxl")) + sorted(bach.glob("*.xml")):
        if path.stem in stems:
            continue
        stems.add(path.stem)
        pieces.append(Piece(f"music21/{BACH_COLLECTION}/{path.name}", "musicxml", str(path)))
    return pieces


DUPLICATE_PREFIX = "duplicate: "


def midi_files(root: str | os.PathLike) -> list[Path]:
    """Every .mid/.midi/.kar/.smf/.rmi file under a folder (recursively, any case), sorted.
    Not p.is_file(): a broken symlink must reach read_piece and be reported as unreadable."""
    from . import midi_io

    return sorted(p for p in Path(root).rglob("*")
                  if p.suffix.lower() in midi_io.MIDI_SUFFIXES and not p.is_dir())


def midi_folder_listing(files: Sequence[Path]) -> dict:
    """{"files", "bytes", "newest"} of a folder's `midi_files` ("newest": the latest
    modification time, in whole seconds): what a build records of its --manual_dir, so that
    a later `tfds build` of the same folder can tell that files were added, removed or edited
    since (TFDS would reuse the build as it is)."""
    size, newest = 0, 0
    for p in files:
        try:
            info = p.stat()
        except OSError:  # a broken symlink: counted, as the build reports it
            continue
        size, newest = size + info.st_size, max(newest, int(info.st_mtime))
    return {"files": len(files), "bytes": size, "newest": newest}


def midi_pieces(root: str | os.PathLike, stats: Stats | None = None,
                files: Sequence[Path] | None = None) -> list[Piece]:
    """Every .mid/.midi/.kar/.smf file under a folder (recursively, any case), ids relative
    to the folder; a broken symlink is kept so that it is reported as unreadable.

    Byte-identical copies (the same song in two folders, a symlink beside its target) are
    left out: they would put the same windows into two splits. The first path in sorted
    order is kept; `stats` (if given) gets 'skip/duplicate' and a
    'duplicate: <id> = <kept id>' key per copy. `files`: the folder's `midi_files`, when
    the caller has listed them already."""
    root = Path(root)
    files = midi_files(root) if files is None else files
    by_size: dict[int, list[Path]] = collections.defaultdict(list)
    for p in files:
        try:
            by_size[p.stat().st_size].append(p)
        except OSError:
            continue
    drop: set[Path] = set()
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        kept: dict[str, Path] = {}
        for p in same_size:  # sorted, so the first path of a group is kept
            try:
                digest = hashlib.md5(p.read_bytes()).hexdigest()
            except OSError:
                continue  # read_piece reports it as unreadable
            if digest in kept:
                drop.add(p)
                if stats is not None:
                    stats["skip/duplicate"] += 1
                    stats[f"{DUPLICATE_PREFIX}{p.relative_to(root).as_posix()} = "
                          f"{kept[digest].relative_to(root).as_posix()}"] = 1
            else:
                kept[digest] = p
    return [Piece(p.relative_to(root).as_posix(), "midi", str(p)) for p in files
            if p not in drop]


def subset(pieces: Sequence[Piece], max_pieces: int | None) -> list[Piece]:
    """An evenly spaced subset (covers every collection), for quick builds."""
    if not max_pieces or max_pieces >= len(pieces):
        return list(pieces)
    idx = np.linspace(0, len(pieces) - 1, max_pieces).round().astype(int)
    return [pieces[i] for i in sorted(set(idx.tolist()))]


# ----------------------------------------------------------------------------- reading


def abc2midi_available() -> bool:
    """Whether the ABC corpus can be converted here (abc2midi on PATH)."""
    return shutil.which("abc2midi") is not None


def abc2midi_version() -> str | None:
    """abc2midi's version ("4.84" of `abc2midi -ver`: "4.84 January 20 2023 abc2midi"), or
    None when it cannot be run."""
    try:
        run = subprocess.run(["abc2midi", "-ver"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    words = run.stdout.split()
    return words[0] if words else None


def tool_versions(pieces: Sequence[Piece]) -> dict[str, str | None]:
    """The versions of what made these pieces' NoteSequences, for the dataset's metadata:
    music21 (whose corpus the embedded pieces are; read from its installed files, without
    importing it), abc2midi (ABC tunes) and note_seq (MIDI and MusicXML)."""
    def package(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    versions: dict[str, str | None] = {}
    if any(p.piece_id.startswith("music21/") for p in pieces):  # embedded_pieces' ids
        versions["music21"] = package("music21")
    if any(p.kind == "abc" for p in pieces):
        versions["abc2midi"] = abc2midi_version()
    versions["note_seq"] = package("note_seq")
    return versions


def abc_to_note_sequences(pieces: Sequence[Piece]) -> list[tuple[Piece, object]]:
    """Converts ABC tunes with one abc2midi run; [(piece, NoteSequence or error text)]."""
    from . import midi_io
    if not abc2midi_available():
        raise FileNotFoundError(
            "abc2midi is not installed; it converts the ABC corpus (apt-get install abcmidi)")
    out = []
    with tempfile.TemporaryDirectory(prefix="hmvae_abc_") as tmp:
        # One file per header (tunes of one collection file share it); tunes renumbered.
        groups: dict[str, list[Piece]] = collections.defaultdict(list)
        for p in pieces:
            groups[p.path].append(p)
        jobs = []
        for g, (path, members) in enumerate(groups.items()):
            stem = f"t{g}_"
            body = [members[0].abc_header.rstrip(b"\n") + b"\n"]
            for i, p in enumerate(members, 1):
                body.append(f"X:{i}\n".encode() + p.abc_text.strip(b"\n") + b"\n")
            abc = Path(tmp) / f"{stem}.abc"
            abc.write_bytes(b"\n".join(body))
            jobs.append((abc, stem, members))
        for abc, stem, members in jobs:
            try:
                subprocess.run(["abc2midi", abc.name, *ABC2MIDI_FLAGS], cwd=tmp, timeout=300,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            except subprocess.TimeoutExpired:
                pass
            for i, p in enumerate(members, 1):
                mid = Path(tmp) / f"{stem}{i}.mid"
                if not mid.exists():
                    out.append((p, "abc2midi wrote no MIDI file"))
                    continue
                try:
                    out.append((p, fix_abc2midi_downbeats(midi_io.read_midi(mid))))
                except Exception as err:  # noqa: BLE001 - count and go on
                    out.append((p, str(err)))
    return out


def fix_abc2midi_downbeats(ns: NoteSequence) -> NoteSequence:
    """Moves abc2midi's time signatures onto the real downbeats (see module docstring)."""
    if not ns.notes:
        return ns
    tempo = grid.TempoMap([(t.time, t.qpm) for t in ns.tempos])
    notes = sorted(ns.notes, key=lambda n: n.start_time)
    vel = np.array([n.velocity for n in notes])
    loud_velocity = DOWNBEAT_VELOCITY if (vel == DOWNBEAT_VELOCITY).any() else int(vel.max())
    loud = [n for n in notes if n.velocity == loud_velocity]
    steps = grid.quantize_beats(tempo.to_beats(np.array([n.start_time for n in loud])))
    sigs = sorted(ns.time_signatures, key=lambda t: t.time) or []
    if not sigs:
        sigs = [ns.time_signatures.add(time=0.0, numerator=4, denominator=4)]
    sig_steps = grid.quantize_beats(tempo.to_beats(np.array([t.time for t in sigs])))
    new_sigs = []  # (time, num, den)
    for k, sig in enumerate(sigs):
        lo = int(sig_steps[k])
        hi = int(sig_steps[k + 1]) if k + 1 < len(sigs) else None
        new_sigs.append((sig.time, sig.numerator, sig.denominator))
        bar = grid.bar_steps(sig.numerator, sig.denominator)
        if bar != int(bar):
            continue
        bar = int(bar)
        sel = [i for i, s in enumerate(steps.tolist()) if s >= lo and (hi is None or s < hi)]
        if not sel:
            continue
        phases = (steps[sel] - lo) % bar
        phase = int(np.bincount(phases).argmax())
        anchor = lo
        if k == 0 and phase:
            # A pickup of `phase` steps: a short signature at the start, the meter at the
            # first downbeat (the way MusicXML encodes an anacrusis).
            frac = fractions.Fraction(phase, grid.STEPS_PER_BAR)
            new_sigs[-1] = (sig.time, frac.numerator, frac.denominator)
            anchor = lo + phase
            new_sigs.append((tempo.to_seconds(anchor / grid.STEPS_PER_QUARTER),
                             sig.numerator, sig.denominator))
        elif phase:
            anchor = lo + phase
        # Bar lines that moved for good: re-anchor where the next bar line agrees.
        sel = [i for i in sel if steps[i] >= anchor]
        for a, b in zip(sel, sel[1:]):
            if (steps[a] - anchor) % bar and not (steps[b] - steps[a]) % bar:
                new_sigs.append((tempo.to_seconds(steps[a] / grid.STEPS_PER_QUARTER),
                                 sig.numerator, sig.denominator))
                anchor = int(steps[a])
    del ns.time_signatures[:]
    for time, num, den in sorted(new_sigs, key=lambda x: x[0]):
        ns.time_signatures.add(time=time, numerator=num, denominator=den)
    return ns


def read_piece(piece: Piece) -> NoteSequence:
    """NoteSequence of one piece of any kind. An ABC tune takes an abc2midi run of its own:
    for many tunes, `note_sequences` converts them in one run per collection file."""
    if piece.kind == "midi":
        from . import midi_io
        return midi_io.read_midi(piece.path)
    if piece.kind == "musicxml":
        from . import musicxml_io
        return musicxml_io.read_musicxml(piece.path)
    if piece.kind == "abc":
        [(_, result)] = abc_to_note_sequences([piece])
        if isinstance(result, str):
            raise ValueError(f"cannot convert ABC tune {piece.piece_id}: {result}")
        return result
    raise ValueError(f"unknown piece kind {piece.kind!r}")


def note_sequences(pieces: Sequence[Piece]) -> Iterator[tuple[Piece, object]]:
    """(piece, NoteSequence or error text) for a batch of pieces, in order."""
    abc = [p for p in pieces if p.kind == "abc"]
    converted = dict((p.piece_id, r) for p, r in abc_to_note_sequences(abc)) if abc else {}
    for p in pieces:
        if p.kind == "abc":
            yield p, converted[p.piece_id]
            continue
        try:
            yield p, read_piece(p)
        except Exception as err:  # noqa: BLE001 - counted as unreadable
            yield p, f"{type(err).__name__}: {err}"


# ----------------------------------------------------------------------------- converting
# A stats key per unreadable piece, "unreadable: <piece id>: <error>", so that the build report
# can name them; the stats of workers and Beam shards add up as counters, which keeps them.
UNREADABLE_PREFIX = "unreadable: "



@dataclasses.dataclass
class Example:
    """One dataset row (the builder's features), made in a worker process."""

    key: str
    piece_id: str
    tokens: np.ndarray
    start_bar: int
    program: int
    note_sequence: bytes

    def features(self) -> dict:
        """The row as the TFDS builder's features dict (both build paths write this)."""
        return {"note_sequence": self.note_sequence, "tokens": self.tokens,
                "piece_id": self.piece_id, "start_bar": self.start_bar, "program": self.program}


def convert_pieces(task: tuple[str, int, Sequence[Piece]]) -> tuple[list[Example], Stats]:
    """Worker: pieces -> examples of one representation, with counted reasons.

    Stats keys: 'pieces_read', 'pieces_with_windows', 'windows', 'skip/<reason>' (exactly
    one per piece without a window) and detail counters from the converters.
    """
    from .representations import get_representation
    rep_name, num_bars, pieces = task
    rep = get_representation(rep_name)
    stats = Stats()
    read: list[tuple[Piece, object]] = []
    for piece, ns in note_sequences(pieces):
        if isinstance(ns, str):
            stats["skip/unreadable"] += 1
            stats[f"{UNREADABLE_PREFIX}{piece.piece_id}: {ns}"] = 1  # which, and why
        else:
            read.append((piece, ns))
    stats["pieces_read"] += len(read)
    piece_stats = [Stats() for _ in read]
    batch = rep.extract_windows_batch([ns for _, ns in read], num_bars, stats=piece_stats)
    for st in piece_stats:
        stats.update(st)
    stats["pieces_with_windows"] += len(set(batch.piece.tolist()))
    stats["windows"] += len(batch.piece)
    examples: list[Example] = []
    index = collections.Counter()
    programs = batch.program.tolist()
    for row, p in enumerate(batch.piece.tolist()):
        piece = read[p][0]
        tokens, qpm, start_bar = batch.tokens[row], float(batch.qpm[row]), int(batch.start_bar[row])
        kwargs = {}
        if rep_name == "melody":
            kwargs["program"] = program = programs[row]
        elif rep_name == "trio":
            kwargs["program"], kwargs["bass_program"] = programs[row]
            program = programs[row][0]
        else:
            program = 0
        rendered = rep.to_note_sequence(tokens, qpm, **kwargs)
        rendered.id = f"{piece.piece_id}@{start_bar}"
        rendered.filename = piece.piece_id
        examples.append(Example(f"{piece.piece_id}:{index[p]}", piece.piece_id, tokens,
                                start_bar, int(program), rendered.SerializeToString()))
        index[p] += 1
    return examples, stats


def chunk(pieces: Sequence[Piece], size: int) -> list[list[Piece]]:
    """Pieces in runs of `size`, the unit of work handed to one worker."""
    return [list(pieces[i:i + size]) for i in range(0, len(pieces), size)]


def spool_pieces(task: tuple[str, int, Sequence[Piece], str, int]
                 ) -> tuple[dict[str, int], Stats]:
    """Worker: converts pieces and writes each split's examples (a pickled list) to
    <spool>/<chunk>-<split>.pkl, so they never travel through the parent process."""
    rep_name, num_bars, pieces, spool, index = task
    examples, stats = convert_pieces((rep_name, num_bars, pieces))
    by_split: dict[str, list[Example]] = collections.defaultdict(list)
    for ex in examples:
        by_split[split_of(ex.piece_id)].append(ex)
    for split, rows in by_split.items():
        with open(spool_path(spool, index, split), "wb") as f:
            pickle.dump(rows, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {k: len(v) for k, v in by_split.items()}, stats


def spool_path(spool: str | os.PathLike, index: int, split: str) -> Path:
    """Where chunk `index` spools its `split` examples (read_spool globs these names)."""
    return Path(spool) / f"{index:06d}-{split}.pkl"


def read_spool(spool: str | os.PathLike, split: str, delete: bool = True
               ) -> Iterator[Example]:
    """The examples of one split from a spool folder, in chunk order."""
    for path in sorted(Path(spool).glob(f"*-{split}.pkl")):
        with open(path, "rb") as f:
            rows = pickle.load(f)
        yield from rows
        if delete:
            path.unlink()


def spool_all(rep_name: str, num_bars: int, pieces: Sequence[Piece], spool: str | os.PathLike,
              workers: int = 0, chunk_size: int = 64
              ) -> Iterator[tuple[dict[str, int], Stats]]:
    """Converts pieces into a spool folder (see spool_pieces), chunk by chunk, in order."""
    tasks = [(rep_name, num_bars, c, str(spool), i)
             for i, c in enumerate(chunk(pieces, chunk_size))]
    yield from _run(spool_pieces, tasks, workers)


def _run(func, tasks: list, workers: int) -> Iterator:
    """func over tasks in `workers` processes (0 = all cores, 1 = in this process), in order."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield func(t)
        return
    import gc
    import multiprocessing
    # fork where available: a spawned worker would re-import the parent's main module (the
    # tfds CLI pulls in TensorFlow, ~15 s per worker). Workers touch only numpy, protobuf,
    # note_seq and abc2midi, never TensorFlow, so the parent's TF threads do not matter, with
    # one exception: the garbage collector. A forked worker that collected an inherited cycle
    # holding a TensorFlow object (a tf.data iterator left over from training in the same
    # process) would run its destructor, which waits for a parent thread the worker does not
    # have, forever. So the parent collects and freezes its objects while the workers fork:
    # their collectors never look at what they inherited.
    method = os.environ.get("HMVAE_MP_START") or (
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    ctx = multiprocessing.get_context(method)
    gc.collect()
    gc.freeze()
    try:
        pool = ctx.Pool(min(workers, len(tasks)))
    finally:
        gc.unfreeze()
    with pool:
        yield from pool.imap(func, tasks)
