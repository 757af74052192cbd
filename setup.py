"""Package metadata for hmvae-tf.

One pinned environment, verified together on Python 3.11 (see BUILD.md): TF 2.19 is the
newest TensorFlow beside which tensorflowjs 4.22 installs, and tensorflow-metadata / ydf are
held back because their newest releases carry protobuf-6 code that TF 2.19 cannot import.
"""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tensorflow==2.19.0",
    "tf-keras==2.19.0",  # tensorflow-probability imports it even though the model uses Keras 3
    "keras==3.15.1",
    "tensorflow-probability==0.25.0",
    "tensorflow-datasets==4.9.10",
    "tensorflow-metadata==1.17.3",
    "tensorflow-serving-api==2.19.0",
    # The `tfds` command imports its Beam and Croissant sub-commands at start-up, so
    # `tfds build` needs both even for builders that use neither; Beam also runs large
    # MIDI collections in parallel (--beam_pipeline_options).
    "apache-beam==2.77.0",
    "mlcroissant==1.1.1",
    "note-seq==0.0.5",
    "music21==10.5.1",
    "numpy==2.1.3",
    "protobuf==5.29.6",
    "grpcio==1.85.3",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "psutil==7.2.2",
    "setuptools<81",  # tensorflow-hub (pulled by tensorflowjs) still imports pkg_resources
]

EXTRAS_REQUIRE = {
    "tfjs": ["tensorflowjs==4.22.0", "ydf==0.13.0"],
    "test": ["pytest==9.1.1", "playwright==1.65.2"],  # drives Debian's chromium; never `playwright install`
}

setup(
    name="hmvae-tf",
    version="0.1.0",
    description="MusicVAE (hierarchical latent vector model for music) in TensorFlow 2 / Keras 3",
    packages=find_packages(include=["hmvae_tf", "hmvae_tf.*", "tfds_builders", "tfds_builders.*"]),
    # TFDS reads a builder's description and citation from these files beside its code.
    package_data={"tfds_builders.hmvae_notesequences": ["README.md", "CITATIONS.bib"]},
    python_requires=">=3.11,<3.12",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["hmvae=hmvae_tf.cli:main"]},
)
