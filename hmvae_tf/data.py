"""tf.data input pipelines: token windows from the TFDS dataset, shaped [B, T, K].

The windows are small int32 arrays, so a split is cached in memory after the first pass;
training shuffles, augments by transposition (melody and bass tracks only) and repeats.
"""
from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf
import tensorflow_datasets as tfds

from hmvae_tf import dataset_source, dataset_version
from hmvae_tf.configs import STEPS_PER_BAR, Config, ConfigError
from hmvae_tf.music import augment

SHUFFLE_BUFFER = 50_000


class SplitNotFoundError(FileNotFoundError):
    """The dataset is prepared but has no such split (a small --manual_dir build may have no
    test windows); the CLI prints it as a one-line error."""


def load_tokens(dataset: str, split: str, data_dir: str | None = None,
                shuffle_files: bool = False, config: Config | None = None) -> tf.data.Dataset:
    """The `tokens` feature of one split, as [T] or [T, K] int32 windows.

    The dataset is read as `tfds build` left it (see `prepared_builder`), so the builder code
    does not have to be importable here. With a config, a dataset whose windows do not fit it
    is a ConfigError before any pipeline is built.
    """
    builder = require_split(dataset, split, data_dir)
    if config is not None:
        check_fits(dataset, builder.info, config)
    ds = builder.as_dataset(split=split, shuffle_files=shuffle_files,
                            read_config=tfds.ReadConfig(try_autocache=False))
    return ds.map(lambda ex: ex["tokens"], num_parallel_calls=tf.data.AUTOTUNE)


def check_fits(dataset: str, info: tfds.core.DatasetInfo, config: Config) -> None:
    """ConfigError unless the dataset's windows have the config's length, track count and
    (where the build recorded it) representation."""
    shape = tuple(info.features["tokens"].shape)
    steps, tracks = shape[0], (shape[1] if len(shape) > 1 else 1)
    built = (info.metadata or {}).get("representation")
    if steps != config.num_steps or tracks != len(config.tracks) or (
            built and built != config.representation):
        what = (f"{built} windows" if built else
                f"windows of {tracks} tracks" if tracks > 1 else "one-track windows")
        raise ConfigError(
            f"{dataset} holds {steps}-step {what} ({steps // STEPS_PER_BAR} bars), but config "
            f"{config.name} takes {config.num_steps}-step {config.representation} windows "
            f"({config.bars} bars); give a matching --dataset (its default is "
            f"{_default_dataset(config)})")


def _default_dataset(config: Config) -> str:
    """The dataset a config names by default (`config.dataset` may hold the --dataset given)."""
    from hmvae_tf.configs import get_config

    try:
        return get_config(config.name).dataset
    except (KeyError, ConfigError, ValueError):
        return config.dataset


def to_model_layout(batch: tf.Tensor, config: Config) -> tf.Tensor:
    """A batch of dataset windows ([B, T] or [B, T, K]) -> [B, T, K] int32, checked
    against the config."""
    if batch.shape.rank == 2:
        batch = batch[..., None]
    steps, tracks = batch.shape[1], batch.shape[2]
    if steps is not None and steps != config.num_steps:
        raise ValueError(f"dataset windows have {steps} steps but config "
                         f"{config.name} expects {config.num_steps} ({config.bars} bars)")
    if tracks is not None and tracks != len(config.tracks):
        raise ValueError(f"dataset windows have {tracks} tracks but config "
                         f"{config.name} expects {len(config.tracks)} {config.tracks}")
    return tf.cast(batch, tf.int32)


def make_pipeline(windows: tf.data.Dataset | Any, config: Config, batch_size: int,
                  training: bool, seed: int | None = None) -> tf.data.Dataset:
    """Windows -> batches [B, T, K]: cache, then (training) shuffle, repeat and transpose
    each window by its own random shift (melody and bass only).

    windows: a dataset of [T] or [T, K] windows, or of the TFDS examples that hold them
    (`tfds.load(...)`: their `tokens`), or the windows as one array [N, T(, K)] (a
    `WindowBatch.tokens`), which a research script has at hand more often than a dataset.
    """
    if not isinstance(windows, tf.data.Dataset):
        windows = tf.data.Dataset.from_tensor_slices(tf.convert_to_tensor(windows))
    elif isinstance(windows.element_spec, dict) and "tokens" in windows.element_spec:
        windows = windows.map(lambda example: example["tokens"])
    ds = windows.cache()
    if training:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    # Model layout [B, T, K] first: `augment` reads a rank-2 melody batch as [B, T], so a
    # melody dataset stored as [T, 1] windows would otherwise get one shift per step.
    ds = ds.map(lambda b: to_model_layout(b, config), num_parallel_calls=tf.data.AUTOTUNE)
    if training and config.transpose and seed is None:
        ds = ds.map(lambda b: _transpose(b, config), num_parallel_calls=tf.data.AUTOTUNE)
    elif training and config.transpose:
        # Batch i draws from the stateless seed (seed, i): the same seed gives the same
        # shifts however the parallel map interleaves (a stateful draw would not).
        def transpose(i, batch):
            return _transpose(batch, config, seed=tf.stack([tf.constant(seed, tf.int64), i]))

        ds = ds.enumerate().map(transpose, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _transpose(batch: tf.Tensor, config: Config, seed: tf.Tensor | None = None) -> tf.Tensor:
    """`augment.random_transpose` on a [B, T, K] batch, one shift per window."""
    if config.representation == "melody":
        return augment.random_transpose(batch[..., 0], "melody", config.transpose,
                                        seed=seed)[..., None]
    return augment.random_transpose(batch, config.representation, config.transpose, seed=seed)


def default_data_dir() -> str:
    """The data_dir TFDS reads without --data_dir: ~/tensorflow_datasets, or TFDS_DATA_DIR as
    set when TFDS was imported."""
    return tfds.core.constants.DATA_DIR


def prepared_builder(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder | None:
    """The dataset's newest version in data_dir, read from its files (None if it has none).

    `tfds.builder` would do the same only while the builder code is not imported; once it is
    (a test, a notebook), it looks for the code's version alone and calls an older build
    unprepared. Reading the files gives every caller the same dataset.
    """
    try:
        return tfds.core.read_only_builder.builder_from_files(dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        return None


def require_prepared(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """`prepared_builder`, or a FileNotFoundError that says how to build the dataset."""
    builder = prepared_builder(dataset, data_dir)
    if builder is None:
        where = data_dir or default_data_dir()
        if dataset.startswith("hmvae_notesequences/"):
            how = _build_hint(dataset) + " first"
        else:
            how = ("build it with `tfds build` first, or check the name (this project's "
                   "datasets are hmvae_notesequences/<config>)")
        raise FileNotFoundError(f"dataset {dataset!r} is not prepared in {where}: {how}")
    return builder


def held_out_splits(splits: list[str]) -> list[str]:
    """The splits of a build other than the training split: what a measurement can use
    instead of a missing test split."""
    return [s for s in splits if s != "train"]


def require_split(dataset: str, split: str, data_dir: str | None, purpose: str = "",
                  remedy: str | Callable[[list[str]], str] = "") -> tfds.core.DatasetBuilder:
    """`require_prepared`, or a SplitNotFoundError when the build has no such split: read
    from the build's info alone, so a command can check it before loading a model. A small
    --manual_dir build may lack one; the command says what it needed the split for
    (`purpose`: "to measure the card on") and what to do instead (`remedy`, or what it
    makes of the splits the build has: "measure it with --split=validation")."""
    builder = require_prepared(dataset, data_dir)
    if split not in builder.info.splits:
        splits = list(builder.info.splits)
        if callable(remedy):
            remedy = remedy(splits)
        raise SplitNotFoundError(
            f"{dataset} has no split {split!r}{' ' + purpose if purpose else ''}; it has "
            f"{splits}{': ' + remedy if remedy else ''}")
    return builder


def prepared_version(dataset: str, data_dir: str | None) -> str | None:
    """The version of the prepared TFDS dataset `load_tokens` reads (None if it cannot be
    told), for the record of a training run."""
    try:
        return str(prepared_builder(dataset, data_dir).info.version)
    except Exception:  # noqa: BLE001 - a record, never a reason to stop training
        return None


def version_note(dataset: str, version: str | None, data_dir: str | None) -> str | None:
    """A line for a user whose data_dir holds an hmvae_notesequences config at another
    version than this code builds (TFDS reads the newest version there without a word, so
    an old build would train the model on the old windows); None when they agree, or when
    the dataset name pins its version (`...:1.0.0`)."""
    if (not dataset.startswith("hmvae_notesequences/") or ":" in dataset or version is None
            or version == dataset_version.VERSION):
        return None
    where = data_dir or default_data_dir()
    code = dataset_version.VERSION
    if tfds.core.Version(version) > tfds.core.Version(code):
        return (f"note: {dataset} in {where} is version {version}, newer than the {code} "
                f"this code builds; training on {version}")
    return (f"note: {dataset} in {where} is version {version}, older than the {code} this "
            f"code builds (what changed: RELEASE_NOTES in hmvae_tf/dataset_version.py); "
            f"training on {version} as it is. For {code}, {_build_hint(dataset)}: it is "
            f"written beside {version} and read from then on")


def subset_note(dataset: str, data_dir: str | None) -> str | None:
    """A line for a user about to train on a subset build (HMVAE_TFDS_MAX_PIECES), which has
    the full build's name and version; None for a full build (or one that cannot be read)."""
    builder = prepared_builder(dataset, data_dir)
    text = dataset_source.subset_text(builder.info.metadata if builder else None)
    if text is None:
        return None
    return (f"note: {dataset} in {data_dir or default_data_dir()} is a subset build, "
            f"not the full dataset: {text}")


def build_line(dataset: str, data_dir: str | None) -> str | None:
    """"data: hmvae_notesequences/mel_2bar version 4.0.0 in DIR, built from the MIDI files
    under FOLDER; windows per split: train 363, validation 16": which build a run reads (a
    data_dir may hold a build of own MIDI files or of the embedded corpus under one name);
    None when it cannot be read."""
    builder = prepared_builder(dataset, data_dir)
    if builder is None:
        return None
    info = builder.info
    metadata = info.metadata or {}
    folder = dataset_source.manual_dir(metadata)
    source = (f", built from the MIDI files under {folder}" if folder
              else ", built from the embedded corpus" if metadata.get("source") else "")
    counts = ", ".join(f"{name} {split.num_examples:,}" for name, split in info.splits.items())
    return (f"data: {dataset.split(':')[0]} version {info.version} in "
            f"{data_dir or default_data_dir()}{source}; windows per split: {counts}")


def _build_hint(dataset: str) -> str:
    """The `tfds build` command that prepares an hmvae_notesequences config."""
    name = dataset.split("/")[-1].split(":")[0]
    # Drum and trio data are not in the embedded corpus: they need a MIDI folder.
    manual = (" --manual_dir=<folder of .mid files with drums>"
              if name.startswith(("drums", "trio")) else "")
    return (f"run `tfds build tfds_builders/hmvae_notesequences --config={name}{manual}` "
            "(with the same --data_dir)")


def dataset_for(config: Config, split: str, data_dir: str | None, batch_size: int,
                training: bool, dataset: str | None = None,
                seed: int | None = None) -> tf.data.Dataset:
    """The pipeline for one split of the config's (or the given) TFDS dataset."""
    windows = load_tokens(dataset or config.dataset, split, data_dir, shuffle_files=training,
                          config=config)
    return make_pipeline(windows, config, batch_size, training, seed)
