"""What a researcher's `builder.info` says about the dataset, whether the repository is
checked out or installed."""
from tfds_builders.hmvae_notesequences import Builder


def test_the_dataset_cites_musicvae_and_music21(tmp_path):
    """`info.citation` was empty: TFDS takes it from CITATIONS.bib beside the builder."""
    info = Builder(config="mel_2bar", data_dir=str(tmp_path)).info
    assert "A Hierarchical Latent Vector Model for Learning Long-Term Structure" in info.citation
    assert "music21: A Toolkit for Computer-Aided Musicology" in info.citation
    assert info.citation.count("@inproceedings") == 2
    assert info.description.startswith("# hmvae_notesequences")
