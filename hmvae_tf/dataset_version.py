"""The version of the hmvae_notesequences dataset this code builds, and its release notes.

One place for both readers: the TFDS builder (its VERSION and RELEASE_NOTES) and `hmvae
train`, which tells a user whose data_dir holds another version. `hmvae` reads a prepared
dataset from its files and must not import the builder (importing it registers the builder
with TFDS, which then looks only for the code's version in the data_dir).
"""

# TFDS's versioning guide: MAJOR when the rows of an existing config change (other windows, a
# different split), MINOR when rows only gain features, PATCH when they read the same. 1.1.0
# changed windows (a MAJOR change by that rule); it keeps its released number, so that 1.1.0
# builds and the runs and cards that recorded it keep their name.
VERSION = "1.1.0"

RELEASE_NOTES = {
    "1.0.0": "First release: mel_2bar, mel_16bar, drums_2bar, trio_16bar.",
    "1.1.0": "As Magenta's converters: melody and drum lines give windows from their "
             "first 100 bars only, mel_16bar takes any pitched program; a --manual_dir's "
             "byte-identical copies are read once, .kar/.smf/RMID files are read; a window "
             "after a tempo change is rendered at its own tempo. Embedded "
             "corpus: mel_2bar train 93,790 -> 93,751, mel_16bar 28,647 -> 28,591 windows.",
}
