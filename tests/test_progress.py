"""Long work shows how far it is and how long is left: a bar on a terminal, a few plain lines
on stderr in a log, and nothing on stdout, where the results go."""
import io
import itertools

from hmvae_tf import cli, progress


class StepClock:
    """A clock that advances `step` seconds each time it is read."""

    def __init__(self, step: float):
        self.times = itertools.count(0.0, step)

    def __call__(self) -> float:
        return next(self.times)


def test_plain_lines_come_after_a_while_then_rarely_with_the_time_left():
    log = io.StringIO()
    clock = iter([0.0, 1.0, 6.0, 20.0, 36.5, 40.0])  # start, then one read per update
    with progress.Progress(10, "evaluating", "window", stream=log, terminal=False,
                           clock=lambda: next(clock)) as shown:
        for _ in range(5):
            shown.update(2)
    # 1 s: too early; 6 s: the first line; 20 s: within 30 s of it; 36.5 s: the next;
    # 40 s: the work is done, its results say so.
    assert log.getvalue().splitlines() == [
        "evaluating: 4/10 windows (40 %), 6 s, about 9 s left",
        "evaluating: 8/10 windows (80 %), 36 s, about 9 s left",
    ]


def test_a_disabled_or_empty_progress_says_nothing():
    log = io.StringIO()
    for total, enabled in ((10, False), (0, True)):
        with progress.Progress(total, "x", enabled=enabled, stream=log, terminal=False,
                               clock=StepClock(100)) as shown:
            shown.update(5)
    assert log.getvalue() == ""


def test_on_a_terminal_a_bar_with_the_time_left(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(progress, "BAR_DELAY", 0)
    with progress.Progress(4, "sampling", "sequence", stream=screen, terminal=True) as shown:
        shown.bar.ncols = 100  # a StringIO has no width
        for _ in range(4):
            shown.bar.refresh()
            shown.update()
    text = screen.getvalue()
    assert "sampling:" in text and "sequence" in text and "<" in text  # tqdm's ETA: [01:02<00:03]
    assert "about" not in text  # no plain lines on a terminal


def test_durations_read_as_train_says_them():
    assert [progress.duration(s) for s in (4.4, 185, 7620)] == ["4 s", "3 min 05 s",
                                                               "2 h 07 min"]


def test_sample_shows_its_progress_on_stderr_only(model_repo, tmp_path, capsys,
                                                  monkeypatch):
    """`hmvae sample -n 200` in a log: lines for the sampling (4 calls of 64 rows) and the
    writing, with the time left, on stderr; stdout holds the results alone."""
    monkeypatch.setattr(progress, "_clock", StepClock(10))
    assert cli.main(["sample", f"--saved_model={model_repo.mel_v1}", "-n", "200",
                     f"--out={tmp_path}"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0].startswith("loading ")
    assert any(line.startswith("sampling: 64/200 sequences (32 %)") and "left" in line
               for line in lines), err
    assert any(line.startswith("writing: ") and " MIDI files (" in line for line in lines), err
    assert "sampling" not in out and "writing:" not in out and "loading" not in out
    assert "wrote 200 MIDI files" in out


def test_evaluate_shows_its_progress_off_a_terminal(capsys, monkeypatch):
    """The evaluation bar was shown on a terminal only: a log got nothing for minutes."""
    import numpy as np

    from hmvae_tf import configs, evaluate
    from test_model_card import ScriptedModel

    config = configs.get_config("cat-mel_2bar_small")
    tokens = np.zeros((40, config.num_steps, 1), np.int32)
    monkeypatch.setattr(progress, "_clock", StepClock(10))
    evaluate.evaluate_all(ScriptedModel(config), tokens, batch_size=8)
    err = capsys.readouterr().err
    assert "evaluating: 8/40 windows (20 %), 10 s, about 40 s left" in err


def test_progress_loads_neither_tensorflow_nor_tqdm():
    """The light commands (the gRPC client) import it: they must stay light."""
    import subprocess
    import sys

    code = ("import sys; from hmvae_tf import progress; "
            "assert 'tqdm' not in sys.modules and 'tensorflow' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
