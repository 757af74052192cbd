"""Inline vs pooled execution of a signature: chosen by timing, results unchanged."""
from __future__ import annotations

import numpy as np

from hmvae_tf.serving.run_modes import RunModeChooser, size_class, size_class_rows
from hmvae_tf.serving.toy_model import build_toy_saved_model


def feed(chooser: RunModeChooser, key, inline_seconds, pooled_seconds) -> list[bool]:
    """Picks and records until each list is used up; returns the picks."""
    durations = {True: list(inline_seconds), False: list(pooled_seconds)}
    picks = []
    while durations[True] or durations[False]:
        inline = chooser.pick(key)
        picks.append(inline)
        chooser.record(key, inline, durations[inline].pop(0))
    return picks


def test_size_classes_group_powers_of_two():
    assert [size_class(n) for n in (1, 2, 3, 4, 7, 8, 64)] == [1, 2, 2, 3, 3, 4, 7]
    assert [size_class_rows(c) for c in (1, 2, 4)] == ["1", "2-3", "8-15"]


def test_chooser_alternates_skips_warm_ups_and_keeps_the_faster_way():
    chooser = RunModeChooser(trials=2, recheck_every=4)
    # Warm-ups say the opposite of the timed calls: inline 1 ms then 9 ms; pooled 500 ms
    # (the first run of a callable) then 2 ms.
    picks = feed(chooser, ("sample", 1), [0.001, 0.009, 0.008], [0.5, 0.002, 0.003])
    assert picks == [True, False] * 3
    assert chooser.decided() == {("sample", 1): False}
    assert chooser.describe() == {"sample rows 1": "pooled"}
    # Other keys are measured on their own; `first` says which way goes first.
    assert chooser.pick(("encode", 4), first=False) is False
    assert chooser.pick(("encode", 4), first=False) is True
    feed(chooser, ("sample", 4), [0.5, 0.001, 0.001], [0.001, 0.009, 0.009])
    assert chooser.describe() == {"sample rows 1": "pooled", "sample rows 8-15": "inline"}


def test_chooser_rechecks_the_other_way_and_changes_its_mind():
    chooser = RunModeChooser(trials=2, recheck_every=4)
    key = ("sample", 1)
    feed(chooser, key, [0.1, 0.009, 0.008], [0.1, 0.002, 0.003])  # pooled looks faster
    # Every 4th call re-times inline, which is now the faster way.
    picks = [chooser.pick(key) for _ in range(8)]
    assert picks == [False, False, False, True] * 2
    for inline in picks:
        chooser.record(key, inline, 0.001 if inline else 0.005)
    assert chooser.decided() == {key: True}
    assert [chooser.pick(key) for _ in range(4)] == [True, True, True, False]


def test_servable_runs_both_ways_with_identical_results(tmp_path):
    from hmvae_tf.serving.service import Servable

    path = build_toy_saved_model(str(tmp_path / "mel" / "1"), dec_sizes=(32, 32))
    servable = Servable("mel", 1, path)
    inputs = {"temperature": np.full(3, 0.7, np.float32),
              "seed": np.array([[1, 0], [1, 1], [2, 5]], np.int32)}
    results = [servable.run("sample", inputs) for _ in range(2 * (1 + servable.run_modes.trials))]
    assert ("sample", size_class(3)) in servable.run_modes.decided()
    assert set(servable._callables) == {("sample", True), ("sample", False)}
    for result in results[1:]:
        assert set(result) == set(results[0])
        for name, value in result.items():
            np.testing.assert_array_equal(value, results[0][name])
    assert len(np.unique(results[0]["melody"], axis=0)) > 1  # rows differ: seeds were used
