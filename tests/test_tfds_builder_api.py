"""What the builder relies on in TFDS beyond its documented `_info`, `_split_generators` and
`_generate_examples`: fails on a TFDS upgrade that changes it (tensorflow-datasets is pinned
to 4.9.10; see Builder._download_and_prepare for why each is needed)."""
import dataclasses
import inspect

import tensorflow_datasets as tfds

from tfds_builders.hmvae_notesequences import Builder

# The TFDS methods the builder overrides on purpose.
OVERRIDDEN = {"_info", "_split_generators", "_generate_examples", "_download_and_prepare",
              "download_and_prepare"}
# What the builder keeps on itself during a build.
BUILD_STATE = {"_asked_manual_dir", "_beam_stats_dir", "_beam_run", "_scan_stats",
               "_provenance"}


def test_download_and_prepare_still_calls_the_overridden_step():
    """DatasetBuilder.download_and_prepare calls `_download_and_prepare(dl_manager=...,
    download_config=...)` and writes the info after it; GeneratorBasedBuilder's takes both."""
    params = list(inspect.signature(
        tfds.core.GeneratorBasedBuilder._download_and_prepare).parameters)
    assert params == ["self", "dl_manager", "download_config"]
    source = inspect.getsource(tfds.core.DatasetBuilder.download_and_prepare)
    call = source.index("self._download_and_prepare(")
    assert source.index("self.info.write_to_directory(", call) > call
    fields = {f.name for f in dataclasses.fields(tfds.download.DownloadConfig)}
    assert {"manual_dir", "beam_options", "beam_runner", "download_mode"} <= fields


def test_the_builders_own_names_do_not_shadow_tfds(tmp_path):
    """A `_report` or `_pieces` that TFDS one day defines would be silently replaced by the
    builder's: only the methods in OVERRIDDEN may have a TFDS namesake."""
    base = tfds.core.GeneratorBasedBuilder
    own = {name for name, value in vars(Builder).items()
           if callable(value) or isinstance(value, staticmethod)}
    assert OVERRIDDEN <= own
    shadowed = {name for name in own - OVERRIDDEN if hasattr(base, name)}
    assert not shadowed
    fresh = Builder(config="mel_2bar", data_dir=str(tmp_path))
    assert not BUILD_STATE & (set(vars(fresh)) | set(dir(base)))
