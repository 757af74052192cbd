"""What a researcher's `builder.info` says about the dataset, whether the repository is
checked out or installed."""
import os
import subprocess
import sys

from tfds_builders.hmvae_notesequences import Builder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDER_DIR = os.path.join("tfds_builders", "hmvae_notesequences")


def test_the_dataset_cites_musicvae_and_music21(tmp_path):
    """`info.citation` was empty: TFDS takes it from CITATIONS.bib beside the builder."""
    info = Builder(config="mel_2bar", data_dir=str(tmp_path)).info
    assert "A Hierarchical Latent Vector Model for Learning Long-Term Structure" in info.citation
    assert "music21: A Toolkit for Computer-Aided Musicology" in info.citation
    assert info.citation.count("@inproceedings") == 2
    assert info.description.startswith("# hmvae_notesequences")


def test_an_installed_builder_keeps_its_description_and_citation(tmp_path):
    """setup.py shipped the builder's code only, so an installed (not editable) package gave
    the dataset no description and no citation."""
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    for name in ("README.md", "CITATIONS.bib"):
        with open(os.path.join(ROOT, BUILDER_DIR, name)) as src, \
                open(tmp_path / BUILDER_DIR / name) as built:
            assert built.read() == src.read(), name
