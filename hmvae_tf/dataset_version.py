"""The version of the hmvae_notesequences dataset this code builds, and its release notes.

One place for both readers: the TFDS builder (its VERSION and RELEASE_NOTES) and `hmvae
train`, which tells a user whose data_dir holds another version. `hmvae` reads a prepared
dataset from its files and must not import the builder (importing it registers the builder
with TFDS, which then looks only for the code's version in the data_dir).
"""

# TFDS's versioning guide: MAJOR when the rows of an existing config change (other windows, a
# different split), MINOR when rows only gain features, PATCH when they read the same. 1.1.0
# changed windows (a MAJOR change by that rule); it keeps its released number, so that 1.1.0
# builds and the runs and cards that recorded it keep their name. 2.0.0 changes only the
# start_bar of some rows, but that is a change of rows, so MAJOR. 3.0.0 changes rows of
# --manual_dir builds only (the embedded corpus's are 2.0.0's): MAJOR too. 4.0.0 changes the
# windows (tokens and start_bar) of Bach chorales, rows of the embedded corpus: MAJOR.
VERSION = "4.0.0"

RELEASE_NOTES = {
    "1.0.0": "First release: mel_2bar, mel_16bar, drums_2bar, trio_16bar.",
    "1.1.0": "As Magenta's converters: melody and drum lines give windows from their "
             "first 100 bars only, mel_16bar takes any pitched program; a --manual_dir's "
             "byte-identical copies are read once, .kar/.smf/RMID files are read; a window "
             "after a tempo change is rendered at its own tempo. Embedded "
             "corpus: mel_2bar train 93,790 -> 93,751, mel_16bar 28,647 -> 28,591 windows.",
    "2.0.0": "The same windows (tokens) as 1.1.0; start_bar numbers every 16-step bar of a "
             "piece once, as `--bar` reads it: after a section that ends inside such a bar "
             "(a meter change mid bar, e.g. the Bach chorales' fermata bars written as 3/4 + "
             "1/4), the later bars are numbered one higher than in 1.1.0, where two sections "
             "shared a number. Embedded corpus, mel_2bar: start_bar changes in 1,553 / 32 / "
             "123 of the 93,751 / 4,857 / 5,383 train / validation / test rows (173 / 4 / 12 "
             "pieces).",
    "3.0.0": "A --manual_dir file's notes whose note-off shares the note-on's tick (a drum "
             "machine's hits, written without length) are read as notes of one tick: "
             "pretty_midi dropped them, so such a drum part gave no window. The embedded "
             "corpus has no such note: its rows are 2.0.0's. A --manual_dir build records its "
             "folder's MIDI listing (manual_dir_listing), and a later build of the folder "
             "changed since stops instead of reusing it.",
    "4.0.0": "A Bach chorale's pickup measure is read from the score (its first measure, "
             "shorter than its time signature): note_seq's MusicXML reader left it out of 230 "
             "of the 410 chorales, whose first section then had its bar lines where its meter "
             "counted from the first note puts them, a pickup's length (mostly one quarter) "
             "before the score's, so its windows held the wrong bars. ABC tunes and MIDI files "
             "are read as before. Embedded corpus, mel_2bar: the chorales' train / validation / "
             "test rows go from 7,663 / 144 / 567 to 7,883 / 149 / 584, of which 1,431 / 29 / "
             "132 are new (1,403 / 29 / 132 with other tokens, the rest with another start_bar) "
             "and 1,211 / 24 / 115 are gone, in 193 / 5 / 17 pieces (the first section now ends "
             "on a bar line, as the later ones do, so its last bar starts a window too): 93,971 "
             "/ 4,862 / 5,400 windows in all. mel_16bar: the chorales' 1,121 / 3 / 38 rows "
             "become 1,122 / 3 / 41 (6 / 0 / 9 new, 5 / 0 / 6 gone, in 5 pieces): 28,592 / "
             "1,538 / 1,785 in all.",
}
