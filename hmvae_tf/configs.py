"""Named MusicVAE configurations under Magenta's names, overridable from the command line.

Each config is a frozen dataclass; `--hparams=enc_rnn_size=[256],z_size=128` goes through
`Config.override`, so shrinking a published model for a CPU never needs a code change.
Values follow Magenta's `music_vae/configs.py` (Magenta 2.1.4), except in two places, on
purpose: every config anneals beta with beta_rate=0.99999, where Magenta's drum, 16-bar melody
and trio configs keep its default beta_rate=0 (beta = max_beta from the first step), and the
16-bar melody and trio configs transpose by up to +-5 semitones, where Magenta's have no
augmenter. `--hparams=beta_rate=0,transpose=0` gives Magenta's settings for those.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Track name -> number of token classes per step. Every representation uses 16 steps per
# 4/4 bar; a trio's tokens are [T, 3] in this order.
TRACK_CLASSES = {"melody": 90, "bass": 90, "drums": 512}
REPRESENTATION_TRACKS = {
    "melody": ("melody",),
    "drums": ("drums",),
    "trio": ("melody", "bass", "drums"),
}
STEPS_PER_BAR = 16


def check_token_ids(tokens: Any, tracks: Sequence[str]) -> None:
    """ValueError naming the first id outside its track's vocabulary in integer tokens
    [..., K] (K = len(tracks)): the model's one-hot took a negative id as silence and a
    large one failed in a gather; a MIDI rendering wrote pitches above 127."""
    by_track = np.asarray(tokens).reshape(-1, len(tracks))
    for k, track in enumerate(tracks):
        classes = TRACK_CLASSES[track]
        ids = by_track[:, k]
        outside = ids[(ids < 0) | (ids >= classes)]
        if outside.size:
            raise ValueError(f"{track} tokens are the model's class ids 0..{classes - 1}, "
                             f"not {int(outside[0])}")


class ConfigError(ValueError):
    """A config name or --hparams value that cannot make a model; the CLI prints it as a
    one-line error."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a model, its objective and its training."""

    name: str
    representation: str = "melody"  # key of REPRESENTATION_TRACKS
    bars: int = 2
    # Encoder: stacked bidirectional LSTM, units per direction per layer.
    enc_rnn_size: tuple[int, ...] = (512,)
    # Core (or flat) decoder LSTM layers.
    dec_rnn_size: tuple[int, ...] = (256, 256)
    # Conductor LSTM layers; empty = flat decoder.
    conductor_rnn_size: tuple[int, ...] = ()
    # Conductor steps (subsequences); bars / conductor_length bars per core-decoder run.
    conductor_length: int = 0
    z_size: int = 256
    batch_size: int = 512
    # Objective.
    free_bits: float = 0.0
    max_beta: float = 0.2
    beta_rate: float = 0.99999
    # Scheduled sampling: "constant" (p_sample = sampling_rate) or "inverse_sigmoid" (rate k).
    sampling_schedule: str = "constant"
    sampling_rate: float = 0.0
    # Optimiser.
    learning_rate: float = 1e-3
    decay_rate: float = 0.9999
    min_learning_rate: float = 1e-5
    clip_norm: float = 1.0
    # Data augmentation: uniform transposition in [-transpose, +transpose] semitones.
    transpose: int = 0
    # Default TFDS config this model trains on.
    dataset: str = "hmvae_notesequences/mel_2bar"

    @property
    def tracks(self) -> tuple[str, ...]:
        """The representation's tracks, in the order of the token tensor's last axis."""
        return REPRESENTATION_TRACKS[self.representation]

    @property
    def track_classes(self) -> tuple[int, ...]:
        """Token classes of each track (its softmax size)."""
        return tuple(TRACK_CLASSES[t] for t in self.tracks)

    @property
    def num_steps(self) -> int:
        """Sixteenth-note steps in one window."""
        return self.bars * STEPS_PER_BAR

    @property
    def hierarchical(self) -> bool:
        """True when a conductor drives the decoder (the hierdec configs)."""
        return bool(self.conductor_rnn_size)

    def override(self, hparams: str | Mapping[str, Any]) -> "Config":
        """Returns a copy with `k=v,k=[a,b],...` applied (Magenta's --hparams syntax), or a
        mapping's {k: v} as Python writes it ({"enc_rnn_size": [32], "z_size": 8}).

        Magenta sizes the conductor and the core decoder with one `dec_rnn_size`, so its
        hierdec configs have both the same size. Here they are two fields; overriding
        `dec_rnn_size` alone resizes such a tied conductor too, so `--hparams` shrinks a config
        the way Magenta's flag would (give `conductor_rnn_size` to set it apart)."""
        if not hparams:
            return self
        if isinstance(hparams, Mapping):
            hparams = ",".join(f"{key}={hparam_text(tuple(v) if isinstance(v, list) else v)}"
                               for key, v in hparams.items())
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in _split_hparams(hparams):
            if key not in fields or key == "name":
                raise ConfigError(
                    f"unknown hparam {key!r}; known: {', '.join(sorted(set(fields) - {'name'}))}"
                    + (" (the name is the named config: --config)" if key == "name" else ""))
            changes[key] = _parse_value(key, raw, getattr(self, key))
        tied = self.hierarchical and self.conductor_rnn_size == self.dec_rnn_size
        if tied and "dec_rnn_size" in changes and "conductor_rnn_size" not in changes:
            changes["conductor_rnn_size"] = changes["dec_rnn_size"]
        cfg = dataclasses.replace(self, **changes)
        cfg._check_conductor_change(self, changes)
        cfg.validate()
        return cfg

    def _check_conductor_change(self, before: "Config", changes: dict[str, Any]) -> None:
        """Refuses an override that a flat decoder would silently ignore: a conductor_length
        without a conductor, or a conductor removed while its conductor_length stays."""
        if self.hierarchical or not self.conductor_length:
            return
        if before.hierarchical and "conductor_rnn_size" in changes:
            flat = [c.name for c in CONFIGS.values()
                    if not c.hierarchical and (c.dataset, c.bars) == (self.dataset, self.bars)]
            raise ConfigError(
                f"conductor_rnn_size=[] makes {self.name} a flat decoder, which ignores its "
                f"conductor_length={self.conductor_length}: "
                + (f"for a flat model of the same data use --config={flat[0]}, or "
                   if flat else "")
                + "give conductor_length=0 as well to drop the conductor")
        if "conductor_length" in changes:
            raise ConfigError(
                f"conductor_length={self.conductor_length} applies only to a hierarchical "
                f"decoder, with a conductor (conductor_rnn_size), and {self.name} has a flat "
                "one: drop it, or give conductor_rnn_size=[...] too")

    def validate(self) -> None:
        """Fails early, at --hparams time, on values the model could not be built with."""
        if self.representation not in REPRESENTATION_TRACKS:
            raise ConfigError(f"representation must be one of {sorted(REPRESENTATION_TRACKS)}")
        if self.hierarchical and (self.conductor_length <= 0 or self.bars % self.conductor_length):
            raise ConfigError("conductor_length must divide bars for a hierarchical decoder")
        if self.sampling_schedule not in ("constant", "inverse_sigmoid"):
            raise ConfigError("sampling_schedule must be 'constant' or 'inverse_sigmoid'")
        for key in ("bars", "z_size", "batch_size"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, not {getattr(self, key)}")
        for key in ("enc_rnn_size", "dec_rnn_size", "conductor_rnn_size"):
            if any(units <= 0 for units in getattr(self, key)):
                raise ConfigError(
                    f"{key} must list positive layer sizes, not {getattr(self, key)}")
        if not self.enc_rnn_size or not self.dec_rnn_size:
            raise ConfigError("enc_rnn_size and dec_rnn_size need at least one layer")
        for key in ("learning_rate", "decay_rate", "clip_norm"):
            if not math.isfinite(getattr(self, key)) or getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, not {getattr(self, key)}")
        if not math.isfinite(self.min_learning_rate) or self.min_learning_rate < 0:
            raise ConfigError(f"min_learning_rate must be >= 0, not {self.min_learning_rate}")
        if self.min_learning_rate > self.learning_rate:
            # lr = (lr0 - min) * decay_rate**step + min would rise toward the floor.
            raise ConfigError(f"min_learning_rate ({self.min_learning_rate}) must not exceed "
                              f"learning_rate ({self.learning_rate})")
        for key in ("free_bits", "max_beta", "sampling_rate", "transpose", "conductor_length"):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{key} must be >= 0, not {value}")
        # Magenta's bounds: a constant rate is a probability, an inverse-sigmoid rate k >= 1
        # (k = 0 made p_sample NaN, then 1: every input sampled, not teacher forcing).
        if self.sampling_schedule == "constant" and self.sampling_rate > 1:
            raise ConfigError("a constant sampling_rate is a probability, in [0, 1], not "
                              f"{self.sampling_rate}")
        if self.sampling_schedule == "inverse_sigmoid" and self.sampling_rate < 1:
            raise ConfigError(
                f"an inverse_sigmoid sampling_rate must be >= 1, not {self.sampling_rate}; "
                "to train without scheduled sampling give "
                "sampling_schedule=constant,sampling_rate=0")
        # Rates of exponential decays toward a limit: beta = max_beta * (1 - beta_rate**step),
        # lr = (lr0 - min) * decay_rate**step + min.
        if not 0 <= self.beta_rate < 1:
            raise ConfigError(f"beta_rate must be in [0, 1), not {self.beta_rate}")
        if not self.decay_rate <= 1:
            raise ConfigError(f"decay_rate must be in (0, 1], not {self.decay_rate}")

    def to_json(self) -> str:
        """Stable text (sorted keys) for config.json and the export's assets."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        """The Config a `to_json` text describes (lists back to tuples, so it compares equal)."""
        data = json.loads(text)
        for f in dataclasses.fields(cls):
            if isinstance(f.default, tuple) and f.name in data:
                data[f.name] = tuple(data[f.name])
        return cls(**data)


def _split_hparams(text: str) -> list[tuple[str, str]]:
    """Splits `a=1,b=[2,3],c=x` on the commas that are not inside brackets."""
    parts = [p for p in re.split(r",(?![^\[]*\])", text.strip()) if p.strip()]
    out = []
    for part in parts:
        if part.count("[") != part.count("]"):
            raise ConfigError(f"hparam {part.strip()!r} has unbalanced brackets; lists are "
                              "written name=[a,b]")
        if "=" not in part:
            raise ConfigError(f"hparam {part!r} is not of the form name=value")
        key, raw = part.split("=", 1)
        out.append((key.strip(), raw.strip()))
    return out


def hparam_text(value: Any) -> str:
    """A hyper-parameter's value as --hparams writes it, which _parse_value reads back: lists
    as [a,b]."""
    if isinstance(value, tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def _parse_value(key: str, raw: str, current: Any) -> Any:
    try:
        if isinstance(current, tuple):
            match = re.fullmatch(r"\[([^\[\]]*)\]|(\d+)", raw.strip())
            if not match:
                raise ValueError("a list is written [a,b] (or a single number)")
            inner = next(g for g in match.groups() if g is not None)
            return tuple(int(v) for v in inner.split(",") if v.strip())
        if isinstance(current, bool):
            return raw.lower() in ("1", "true", "yes")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        return raw
    except ValueError as err:
        raise ConfigError(f"bad value {raw!r} for hparam {key!r}: {err}") from None


_MEL_2BAR = dict(representation="melody", bars=2, dataset="hmvae_notesequences/mel_2bar")
_MEL_16BAR = dict(representation="melody", bars=16, dataset="hmvae_notesequences/mel_16bar")

CONFIGS: dict[str, Config] = {
    c.name: c
    for c in [
        Config(
            name="cat-mel_2bar_small", **_MEL_2BAR,
            enc_rnn_size=(512,), dec_rnn_size=(256, 256), z_size=256, batch_size=512,
            free_bits=0.0, max_beta=0.2, beta_rate=0.99999,
            sampling_schedule="inverse_sigmoid", sampling_rate=1000.0, transpose=5),
        Config(
            name="cat-mel_2bar_big", **_MEL_2BAR,
            enc_rnn_size=(2048,), dec_rnn_size=(2048, 2048, 2048), z_size=512, batch_size=512,
            free_bits=0.0, max_beta=0.5, beta_rate=0.99999,
            sampling_schedule="inverse_sigmoid", sampling_rate=1000.0, transpose=5),
        Config(
            name="cat-drums_2bar_small", representation="drums", bars=2,
            dataset="hmvae_notesequences/drums_2bar",
            enc_rnn_size=(512,), dec_rnn_size=(256, 256), z_size=256, batch_size=512,
            free_bits=48.0, max_beta=0.2, beta_rate=0.99999,
            sampling_schedule="inverse_sigmoid", sampling_rate=1000.0),
        Config(
            name="flat-mel_16bar", **_MEL_16BAR,
            enc_rnn_size=(2048, 2048), dec_rnn_size=(2048, 2048, 2048), z_size=512,
            batch_size=512, free_bits=256.0, max_beta=0.2, beta_rate=0.99999, transpose=5),
        Config(
            name="hierdec-mel_16bar", **_MEL_16BAR,
            enc_rnn_size=(2048, 2048), conductor_rnn_size=(1024, 1024), conductor_length=16,
            dec_rnn_size=(1024, 1024), z_size=512, batch_size=512,
            free_bits=256.0, max_beta=0.2, beta_rate=0.99999, transpose=5),
        Config(
            name="hierdec-trio_16bar", representation="trio", bars=16,
            dataset="hmvae_notesequences/trio_16bar",
            enc_rnn_size=(2048, 2048), conductor_rnn_size=(1024, 1024), conductor_length=16,
            dec_rnn_size=(1024, 1024), z_size=512, batch_size=256,
            free_bits=256.0, max_beta=0.2, beta_rate=0.99999, transpose=5),
    ]
}


def get_config(name: str, hparams: str | Mapping[str, Any] = "") -> Config:
    """Looks up a named config and applies `--hparams` overrides (text, or a mapping:
    `Config.override`)."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose from: {', '.join(CONFIGS)}")
    return CONFIGS[name].override(hparams)
