"""The files `hmvae card` writes, made beside the earlier ones and swapped in at the end.

Measuring takes minutes, and a card can fail or be stopped on the way (a wrong --data_dir,
Ctrl-C, SIGTERM, a full disk). Until then the export base must keep its earlier card, and
the figures, examples and attribute vectors that card describes: the new files are written
into a hidden folder of the export base (`.card-<random>/`; TF Serving, `hmvae serve` and
`--summary` ignore it, as any name that is not a version number) and moved into place only
once all of them are written, each with os.replace (atomic), MODEL_CARD.md last.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from types import TracebackType

CARD = "MODEL_CARD.md"
METRICS = "metrics.json"
FIGURES = "figures"
EXAMPLES = "examples"
# The pictures a card draws (training_curves only with a training history, reconstructions
# only with example windows): an earlier card's copy of one not drawn again is removed.
FIGURE_NAMES = ("training_curves", "samples", "reconstructions", "interpolation")
EXAMPLE_PATTERN = "example*.mid"


class CardFiles:
    """A card's files while it is made: written under `stage`, published into the export
    base by `publish`; the stage is removed on leaving the `with` block, whatever happened."""

    def __init__(self, export_base: str):
        self.export_base = export_base
        # Made first, so an export base that cannot be written fails before the measuring.
        self.stage = tempfile.mkdtemp(prefix=".card-", dir=export_base)
        os.makedirs(os.path.join(self.stage, FIGURES))
        os.makedirs(os.path.join(self.stage, EXAMPLES))

    def __enter__(self) -> CardFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def figure(self, name: str) -> str:
        """Where to draw figures/<name>.png."""
        return os.path.join(self.stage, FIGURES, name + ".png")

    def figures(self) -> list[str]:
        """The figures drawn so far, as file names."""
        return sorted(f for f in os.listdir(os.path.join(self.stage, FIGURES))
                      if f.endswith(".png"))

    def relative(self, staged_path: str) -> str:
        """A staged file's path relative to the export base, once published."""
        return os.path.relpath(staged_path, self.stage)

    def publish(self, metrics_text: str, card_text: str) -> None:
        """Moves the staged figures, examples, metrics.json and MODEL_CARD.md into the export
        base and removes the earlier card's figures and examples that were not made again.
        The texts are written into the stage first, so a full disk stops the card before
        anything is replaced."""
        for name, text in ((METRICS, metrics_text), (CARD, card_text)):
            with open(os.path.join(self.stage, name), "w") as f:
                f.write(text)
        figures = os.path.join(self.export_base, FIGURES)
        os.makedirs(figures, exist_ok=True)
        for name in FIGURE_NAMES:
            staged, final = self.figure(name), os.path.join(figures, name + ".png")
            if os.path.exists(staged):
                os.replace(staged, final)
            elif os.path.exists(final):
                os.remove(final)
        examples = os.path.join(self.export_base, EXAMPLES)
        os.makedirs(examples, exist_ok=True)
        made = sorted(os.listdir(os.path.join(self.stage, EXAMPLES)))
        for name in made:
            os.replace(os.path.join(self.stage, EXAMPLES, name), os.path.join(examples, name))
        for old in glob.glob(os.path.join(examples, EXAMPLE_PATTERN)):
            if os.path.basename(old) not in made:
                os.remove(old)
        for name in (METRICS, CARD):
            os.replace(os.path.join(self.stage, name), os.path.join(self.export_base, name))
