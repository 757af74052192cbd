"""`python -m tfds_builders build ...`: TFDS's own `tfds build` command, same flags and code.

The `tfds` entry point of tensorflow-datasets 4.9.10 imports every CLI command at start-up,
and two of them (`convert_format`, `build_croissant`) need apache-beam and mlcroissant; without
those packages `tfds build` dies with "No module named 'apache_beam'" before reading its
flags. This launcher wires only TFDS's `build` command (tensorflow_datasets.scripts.cli.build),
so these two commands are the same:

    tfds build tfds_builders/hmvae_notesequences --config=mel_2bar --data_dir=/tmp/x
    python -m tfds_builders build tfds_builders/hmvae_notesequences --config=mel_2bar --data_dir=/tmp/x
"""
from __future__ import annotations

import dataclasses
import logging as python_logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import simple_parsing  # noqa: E402
from absl import app  # noqa: E402
from absl import logging  # noqa: E402

import tensorflow_datasets as tfds  # noqa: E402
from tensorflow_datasets.scripts.cli import build, cli_utils  # noqa: E402


@dataclasses.dataclass(frozen=True, kw_only=True)
class Args(cli_utils.Args):
    """TFDS `build`, without the CLI's optional commands."""

    command: build.Args = simple_parsing.subparsers({"build": build.Args})

    def execute(self) -> None:
        self.command.execute()


def main(args: Args) -> None:
    # As tensorflow_datasets.scripts.cli.main.main: all datasets visible, readable logs.
    tfds.core.visibility.set_availables([
        tfds.core.visibility.DatasetType.TFDS_PUBLIC,
        tfds.core.visibility.DatasetType.COMMUNITY_PUBLIC,
    ])
    formatter = python_logging.Formatter("{levelname}[{filename}]: {message}", style="{")
    logging.use_python_logging(quiet=True)
    logging.set_verbosity(logging.INFO)
    handler = logging.get_absl_handler().python_handler
    handler.setFormatter(formatter)
    handler.setStream(tfds.core.utils.tqdm_utils.TqdmStream())
    args.execute()


def launch() -> None:
    app.run(main, flags_parser=cli_utils.make_flags_parser(
        Args, description="TFDS build (tensorflow_datasets.scripts.cli.build)"))


if __name__ == "__main__":
    launch()
