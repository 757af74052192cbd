"""The docs against the code: what README.md, BUILD.md and hmvae_tf/music/README.md name exists.

After many sessions the docs drifted where nothing checked them: modules missing from the
layouts. These checks read the docs' text and the package's files only (no TensorFlow), so
they cost milliseconds.
"""
from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def modules(package_dir: str) -> set[str]:
    folder = os.path.join(ROOT, package_dir)
    return {f for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py"}


def test_every_module_is_in_its_layout():
    """README's Layout names each module of hmvae_tf/, hmvae_tf/music/README.md each of
    hmvae_tf/music/ (its own line, or after a comma in a line of several)."""
    layout = read("README.md").split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"([\w]+\.py)", layout))
    assert not modules("hmvae_tf") - named, "README.md's Layout lacks these modules"
    music = set(re.findall(r"`([\w]+\.py)`", read("hmvae_tf/music/README.md")))
    assert not modules("hmvae_tf/music") - music, "hmvae_tf/music/README.md lacks these modules"
