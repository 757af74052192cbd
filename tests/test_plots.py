"""Piano-roll pictures of the model cards: what their axes say."""
import numpy as np

from hmvae_tf import plots
from hmvae_tf.music.drums import DRUM_CLASS_NAMES


def _roll_axis(tokens, tracks):
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    plots.draw_roll(ax, tokens, tracks)
    return fig, ax


def test_drum_roll_rows_are_named_by_drum_class_not_pitch():
    """A drum model's roll shows its 9 class rows named kick ... ride, with no pitch labels
    (C4, C5) over an empty pitch range that no drum hit is drawn in."""
    beat = np.array([1 | 4, 0, 4, 0, 2 | 4, 0, 4, 256] * 4, np.int32)  # kick, hats, snare, ride
    fig, ax = _roll_axis(beat, ("drums",))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(DRUM_CLASS_NAMES)
    lo, hi = ax.get_ylim()
    ticks = ax.get_yticks()
    ys = [p.get_y() + p.get_height() / 2 for p in ax.patches]
    assert lo < min(ys) and max(ys) < hi and hi - lo <= len(DRUM_CLASS_NAMES) + 1
    kick_row = ticks[labels.index("kick")]
    assert sum(abs(y - kick_row) < 1e-6 for y in ys) == 4  # the 4 kicks sit on its row
    plots._pyplot().close(fig)


def test_trio_roll_keeps_pitch_labels_and_names_the_drum_rows():
    line = np.array([62, 0, 0, 1] * 8, np.int32)
    beat = np.array([1, 0, 2, 0] * 8, np.int32)
    fig, ax = _roll_axis(np.stack([line, line - 24, beat], -1), ("melody", "bass", "drums"))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "drums" and labels[1:] and all(s.startswith("C") for s in labels[1:])
    drums_row = ax.get_yticks()[0]
    red = [p.get_y() + p.get_height() / 2 for p in ax.patches
           if p.get_facecolor()[:3] == (0xd6 / 255, 0x27 / 255, 0x28 / 255)]
    assert red and all(abs(y - drums_row) <= 4 for y in red)  # its label sits among the hits
    plots._pyplot().close(fig)
