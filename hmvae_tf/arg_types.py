"""argparse value types for the `hmvae` commands: a bad number is refused where it is typed,
with argparse's one-line usage error, not after the model has run (a zero tempo failed only
when the MIDI file was written) or as a silently different value (a seed past 2**31 wrapped).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# Sampling seeds travel as int32 (TF Serving's seed inputs), so larger ones would alias.
MAX_SEED = 2**31 - 1


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {value}")
        return value
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0, e.g. a temperature."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0, e.g. a tempo."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def finite_floats(text: str) -> list[float]:
    """A comma list of finite numbers, each once, in the order given."""
    values = [_finite(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r}")
    return list(dict.fromkeys(values))


def seed(text: str) -> int:
    """A sampling seed: 0 .. 2**31 - 1."""
    value = int_at_least(0)(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_SEED} (seeds are int32), not {value}")
    return value


def version_or_label(text: str) -> int | str:
    """A model version: a number >= 0, or any other text as a version label ("stable"), which
    a server's model config maps to a number (TF Serving's version_labels)."""
    try:
        int(text)
    except ValueError:
        if not text.strip():
            raise argparse.ArgumentTypeError("expected a version number or a version label, "
                                             "got ''") from None
        return text
    return int_at_least(0)(text)


# A MIDI file stores a tempo as microseconds per quarter note in 24 bits (1 .. 16,777,215),
# so slower than 3.58 qpm cannot be written at all, and at very fast tempos it rounds away.
MIN_QPM, MAX_QPM = 4.0, 1000.0


def qpm(text: str) -> float:
    """A tempo in quarter notes per minute that a MIDI file can hold: MIN_QPM .. MAX_QPM."""
    value = _finite(text)
    if not MIN_QPM <= value <= MAX_QPM:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_QPM:g} and {MAX_QPM:g} quarter notes per minute, not {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (a free one) .. 65535: gRPC took --port=70000 as 4464 (70000 - 65536)
    and listened there, and Python's HTTP server failed with a traceback."""
    value = int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {value}")
    return value


def per_input(minimum: int) -> Callable[[str], tuple[int, int]]:
    """'N' (both inputs) or 'A,B' (the first input, the second): integers >= minimum."""
    one = int_at_least(minimum)

    def parse(text: str) -> tuple[int, int]:
        parts = text.split(",")
        if len(parts) > 2:
            raise argparse.ArgumentTypeError(f"expected N or A,B (one per input), got {text!r}")
        values = [one(p.strip()) for p in parts]
        return (values[0], values[-1])
    return parse


# Help texts of the flags several commands share, so that each reads the same everywhere.
DATA_DIR_HELP = "TFDS data_dir (default: TFDS's, ~/tensorflow_datasets)"
DATASET_HELP = "TFDS name/config (default: the model's, from its config)"
SEED_HELP = f"seed, 0..{MAX_SEED}: the same seed gives the same output"
TEMPERATURE_HELP = "softmax temperature; 0 = argmax (deterministic)"
# What --instrument's number is. Parts are numbered as note_seq (pretty_midi) reads the file:
# one per program, channel and track, from 0, track by track and within a track in the order
# each part's first note ends; drums count, tracks without notes do not, a program change
# starts a new part. Neither a MIDI track's number (a conductor track has none) nor, in a
# format 0 file, a channel's: the window line's number is what to pass.
INSTRUMENT_NUMBER = (
    "the part's number as the input's window line prints it ('of instrument 2', 'other parts: "
    "instrument 0, 3') and the page's part chooser shows it (#2): parts are numbered from 0 in "
    "the file's track order, within a track (all of a format 0 file) in the order each part's "
    "first note ends, so it is not a MIDI channel or track number")
# How a melody model's input line is chosen (music/melody.find_window), for --instrument.
MELODY_PART_RULE = (
    "the part (one program on one MIDI channel of one track) with the most note onsets in the "
    "window, drums never; for 2-bar models one in programs 0-31 (keyboards, guitars ...: "
    "Magenta's 2-bar melody programs) if the file has one; of simultaneous notes, the highest")
BAR_HELP = ("start the window at this bar, numbered as the score numbers it (and as the printed "
            "window line does; a pickup is bar 0), instead of choosing it by --window")
NO_OCTAVE_SHIFT_HELP = (
    "melody models: read the input as written (notes above MIDI 108, the top of the models' "
    "notes, are then left out). By default a line with notes outside MIDI 48..84 (C3..C6, the "
    "register the models learned), a piccolo or a bass line, is read moved by whole octaves "
    "into it and the output is moved back into its own register (the input's line says so)")
MEASURE_BATCH_HELP = ("windows per model call while measuring (the results do not depend on "
                      "it; lower it to use less memory)")


def tfds_data_dir(text: str) -> str:
    """A TFDS data_dir. TFDS takes a given data_dir as it is, and the shell leaves `~` after
    `--data_dir=` unexpanded, so `--data_dir=~/tensorflow_datasets` meant a folder named `~`
    in the current directory (where `tfds build` with the same flag writes, too)."""
    if text.startswith("~"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: the shell does not expand ~ after '=', and TFDS would use a folder "
            f"named '~' in the current directory; write --data_dir {text} (with a space) "
            f"or --data_dir=$HOME{text[1:]}, in `tfds build` as well")
    return text
