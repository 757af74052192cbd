"""Model cards, the interpolation metric and attribute vectors, on a tiny model trained briefly
on a tiny TFDS dataset built from generated MIDI (no corpus, no network)."""
import argparse
import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from music_helpers import write_midi

from hmvae_tf import (attributes, card_render, cli, configs, evaluate, export, model_card, plots,
                      reproduce, stop_signals, train)
from hmvae_tf.music import midi_io
from hmvae_tf.music.representations import get_representation
from model_helpers import tiny_config

DATASET = "hmvae_notesequences/mel_2bar"
# card_env's training: three checkpoint periods (three points on the training curves, three
# validations) are what the card reads; more steps in them only cost time.
TRAIN_STEPS, CHECKPOINT_EVERY = 6, 2


def _songs(folder, count=48, bars=5, seed=0):
    """Melodies whose density differs from piece to piece (and bar to bar): runs of
    sixteenths, eighths, quarters or half notes on a major scale from a random root."""
    rng = np.random.default_rng(seed)
    scale = [0, 2, 4, 5, 7, 9, 11, 12, 14]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        root, notes, t, degree = int(rng.integers(55, 70)), [], 0.0, 0
        base = float(rng.choice([0.25, 0.5, 1.0, 2.0]))
        while t < bars * 4:
            length = base if rng.random() < 0.8 else float(rng.choice([0.5, 1.0]))
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
            notes.append((t, min(t + length, bars * 4), root + scale[degree]))
            t += length
        write_midi(folder / f"song_{i:03d}.mid", [(0, False, notes)])


@pytest.fixture(scope="module")
def card_env(tmp_path_factory):
    """A tiny dataset, a tiny model trained on it for TRAIN_STEPS steps, its export, and its
    card."""
    from tfds_builders.hmvae_notesequences import Builder

    root = tmp_path_factory.mktemp("card")
    _songs(root / "midi")
    data_dir = str(root / "tfds")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HMVAE_TFDS_WORKERS", "1")
        builder = Builder(config="mel_2bar", data_dir=data_dir)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(root / "midi")))
    assert builder.info.splits["test"].num_examples >= 4
    config = tiny_config(extra="batch_size=16")
    model_dir = str(root / "runs" / "mel_2bar")
    train.train(config, model_dir, dataset=DATASET, data_dir=data_dir, num_steps=TRAIN_STEPS,
                checkpoint_every=CHECKPOINT_EVERY, eval_batches=1, seed=1, verbose=0)
    assert cli.main(["export", f"--model_dir={model_dir}",
                     f"--export_base={root / 'saved_models' / 'mel_2bar'}"]) == 0
    base = str(root / "saved_models" / "mel_2bar")
    argv = ["card", f"--model_dir={model_dir}", f"--export_base={base}",
            f"--data_dir={data_dir}", "--max_windows=200", "--interpolation_pairs=12",
            "--interpolation_steps=5", "--attribute_windows=300", "--attribute_test_windows=64",
            f"--compare={model_dir}", "--train_flags=--seed=1 --eval_batches=1"]
    printed, said = io.StringIO(), io.StringIO()  # the card's stdout and stderr
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
        assert cli.main(argv) == 0
    return {"printed": printed.getvalue(), "said": said.getvalue(),
            "root": root, "data_dir": data_dir, "config": config, "model_dir": model_dir,
            "base": base, "version": os.path.join(base, "1"),
            "metrics": json.load(open(os.path.join(base, model_card.METRICS))),
            "card": open(os.path.join(base, model_card.CARD)).read()}


def _is_png(path):
    """A real PNG: its signature and some content."""
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 100


def test_card_files_and_numbers(card_env):
    m, card, base = card_env["metrics"], card_env["card"], card_env["base"]
    ev = m["test"]
    assert ev["windows"] > 0 and 0 <= ev["sampled_accuracy"] <= 1
    monotone = m["interpolation"]["interp_monotone"]
    for value in (ev["teacher_forced_accuracy"], ev["sampled_accuracy"], ev["kl_bits"],
                  *([] if monotone is None else [monotone])):
        assert f"{value:.3f}" in card or f"{value:.1f}" in card
    if monotone is None:  # a briefly trained tiny model may decode every point alike
        assert m["interpolation"]["interp_pairs_same_ends"] == 1.0
        assert "the decoder ignores z and there is no smoothness to measure" in card
    for name in ("training_curves", "samples", "reconstructions", "interpolation"):
        path = os.path.join(base, "figures", f"{name}.png")
        assert _is_png(path), path
        assert f"figures/{name}.png" in card
    # The comparison row (here the same model from its checkpoint) equals the export's numbers.
    assert m["compare"][0]["sampled_accuracy"] == pytest.approx(ev["sampled_accuracy"], abs=1e-6)
    for section in ("## Quality on the test split", "## Model", "## Data", "## Training",
                    "## Reproduce", "hmvae train --config=cat-mel_2bar_small"):
        assert section in card
    # Without --split the card measures the test split, and says so where it says which.
    assert m["split"] == "test" and m["attributes"]["effects_source"]["split"] == "test"
    assert f"of the test split's {m['dataset']['splits']['test']} windows" in card
    assert "test windows and decoded at temperature 0" in card
    assert "Measured on the training split" not in card
    tr = m["training"]
    assert tr["step"] == TRAIN_STEPS and tr["steps_per_epoch"] == CHECKPOINT_EVERY
    assert tr["seconds"] and tr["seconds"] > 0
    assert m["dataset"]["splits"]["train"] > 0 and f"{m['dataset']['splits']['train']:,}" in card
    assert m["parameters"] > 1000


def test_card_prints_what_it_wrote_on_stdout_and_its_stages_on_stderr(card_env):
    """Its stages' lines ("mel_2bar: evaluating ...", then each stage's numbers and time)
    went to stdout with the result: `hmvae card ... > card.log` kept the progress too. Stdout
    holds the files written and the checks now."""
    printed = card_env["printed"].splitlines()
    assert printed[0].startswith(f"wrote {os.path.join(card_env['base'], model_card.CARD)}, ")
    checks = card_env["metrics"]["checks"]
    assert len(printed) == 1 + len(checks) and checks
    assert all(line.startswith("  [") for line in printed[1:]), printed
    said = card_env["said"].splitlines()
    stages = ["mel_2bar: evaluating ", "  interpolation: ", "  compare mel_2bar: sampled accuracy ",
              "  density vector: notes at amounts "]
    assert all(any(line.startswith(stage) for line in said) for stage in stages), said


def test_reproduce_command_rebuilds_the_config(card_env):
    config = card_env["config"]
    cmd = next(c for c in card_env["metrics"]["commands"] if c.startswith("hmvae train"))
    import shlex

    hparams = next(w for w in shlex.split(cmd) if w.startswith("--hparams="))
    assert "'--hparams=" in cmd or "--hparams='" in cmd  # brackets quoted from the shell
    assert configs.get_config("cat-mel_2bar_small", hparams.split("=", 1)[1]) == config
    assert f"--num_steps={TRAIN_STEPS}" in cmd and f"--checkpoint_every={CHECKPOINT_EVERY}" in cmd
    assert "--seed=1" in cmd


def test_card_says_when_the_export_multiplies_in_bfloat16(card_env):
    """The card's metrics are the rebuilt float32 model's; a bfloat16 export says so, and its
    reproduce command makes a float32 export only when that is what was exported."""
    m = copy.deepcopy(card_env["metrics"])
    assert m["export"]["dtype_policy"] == "float32"
    export_cmd = next(c for c in m["commands"] if c.startswith("hmvae export"))
    assert "--dtype_policy" not in export_cmd and "--jit_compile" not in export_cmd
    assert "products in" not in card_render.render_card("x", m)
    m["export"]["dtype_policy"] = "mixed_bfloat16"
    assert "The export runs its products in mixed_bfloat16" in card_render.render_card("x", m)


def test_attribute_vectors_and_examples(card_env):
    doc = attributes.load(os.path.join(card_env["version"], "assets.extra",
                                       attributes.ATTRIBUTES_FILE))
    z = card_env["config"].z_size
    assert set(doc["attributes"]) == {"density", "pitch"}
    for v in doc["attributes"].values():
        assert len(v["vector"]) == z and v["high_mean"] > v["low_mean"]
    eff = doc["effects"]["density"]
    assert eff["amounts"] == [-1.0, 0.0, 1.0] and len(eff["density"]) == 3
    # Examples: two test windows of different pieces that read back as the same tokens.
    examples = sorted(os.listdir(os.path.join(card_env["base"], "examples")))
    assert len(examples) == 2
    rep = get_representation("melody")
    for name in examples:
        tokens = rep.from_note_sequence(
            midi_io.read_midi(os.path.join(card_env["base"], "examples", name)), 2)
        assert (tokens >= 2).sum() >= 1


def test_evaluate_saved_model_with_interpolation(card_env, capsys, tmp_path):
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", f"--saved_model={card_env['base']}",
                     f"--data_dir={card_env['data_dir']}", "--max_windows=200",
                     "--interpolation_pairs=12", "--interpolation_steps=5",
                     f"--json_out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "interp monotone steps" in printed
    row = json.load(open(out))[0]
    m = card_env["metrics"]
    # Same windows, same pairs: `hmvae evaluate` reproduces the card's numbers.
    assert row["sampled_accuracy"] == pytest.approx(m["test"]["sampled_accuracy"], abs=1e-6)
    expected = m["interpolation"]["interp_monotone"]
    assert row["interp_monotone"] == (None if expected is None else pytest.approx(expected))
    assert row["interp_pairs_same_ends"] == m["interpolation"]["interp_pairs_same_ends"]
    assert row["step"] == TRAIN_STEPS


def test_evaluate_json_out_stopped_while_writing_keeps_the_earlier_file(card_env, tmp_path,
                                                                         monkeypatch, capsys):
    out = tmp_path / "eval.json"
    out.write_text('[{"earlier": true}]')

    def dump_then_fail(doc, f, **kwargs):  # a full disk after the first bytes
        f.write("[{")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", dump_then_fail)
    assert cli.main(["evaluate", f"--saved_model={card_env['base']}",
                     f"--data_dir={card_env['data_dir']}", "--max_windows=50",
                     "--interpolation_pairs=0", f"--json_out={out}"]) == 1
    # One line naming the file, not a traceback.
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"hmvae evaluate: error: No space left on device: {out}")
    assert out.read_text() == '[{"earlier": true}]'
    assert os.listdir(tmp_path) == ["eval.json"]  # no temporary file left behind


def test_attribute_command_applies_a_vector(card_env, capsys, tmp_path):
    example = sorted((card_env["root"] / "saved_models" / "mel_2bar" / "examples").iterdir())[0]
    assert cli.main(["attribute", str(example), "--name=density", "--amount=-2,2",
                     f"--saved_model={card_env['base']}", f"--out={tmp_path}"]) == 0
    printed = capsys.readouterr().out
    assert "amount +2" in printed and "amount -2" in printed
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 3 and any("recon" in n for n in written)
    assert any("density+2" in n for n in written)
    # A name the file does not have fails clearly.
    assert cli.main(["attribute", str(example), "--name=loudness",
                     f"--saved_model={card_env['base']}", f"--out={tmp_path}"]) == 1
    assert "no 'loudness' vector" in capsys.readouterr().err


def test_attribute_compute_through_the_client_matches_the_card(card_env, capsys, tmp_path):
    """--compute runs on the SavedModel's signatures; same windows, same vectors as the card
    (which used the Keras model rebuilt from the same export)."""
    path = tmp_path / "attributes.json"
    assert cli.main(["attribute", "--compute", f"--saved_model={card_env['base']}",
                     f"--data_dir={card_env['data_dir']}", "--max_windows=300",
                     "--test_windows=64", f"--attributes={path}"]) == 0
    assert "density: |v|" in capsys.readouterr().out
    mine = attributes.load(str(path))
    card = attributes.load(os.path.join(card_env["version"], "assets.extra",
                                        attributes.ATTRIBUTES_FILE))
    for name in ("density", "pitch"):
        np.testing.assert_allclose(mine["attributes"][name]["vector"],
                                   card["attributes"][name]["vector"], atol=1e-4)
    assert mine["model"]["training_step"] == TRAIN_STEPS
    assert mine["source"]["windows"] == card["source"]["windows"] > 0
    # The card's own vectors in the export are not replaced without --force.
    card_file = os.path.join(card_env["version"], "assets.extra", attributes.ATTRIBUTES_FILE)
    before = open(card_file).read()
    assert cli.main(["attribute", "--compute", f"--saved_model={card_env['base']}",
                     f"--data_dir={card_env['data_dir']}", "--max_windows=300"]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert open(card_file).read() == before


def _files(folder):
    """Every file under folder with its bytes (the SavedModel's variables left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "variables" not in p.parts}


@pytest.mark.parametrize("stop", [
    OSError(28, "No space left on device"),  # the disk fills up while the pictures are drawn
    KeyboardInterrupt(),  # Ctrl-C
    stop_signals.Terminated()])  # SIGTERM, as the command line raises it
def test_a_card_stopped_halfway_leaves_the_earlier_card_as_it_was(
        card_env, tmp_path, capsys, monkeypatch, stop):
    import shutil

    base = tmp_path / "mel_2bar"
    shutil.copytree(card_env["base"], base)
    before = _files(base)
    drawn = []

    def piano_rolls(windows, tracks, path, **kwargs):
        drawn.append(path)
        if len(drawn) == 2:  # samples.png is drawn: stop at the reconstructions
            raise stop
        return plots_piano_rolls(windows, tracks, path, **kwargs)

    plots_piano_rolls = plots.piano_rolls
    monkeypatch.setattr(plots, "piano_rolls", piano_rolls)
    status = cli.main(["card", f"--model_dir={card_env['model_dir']}", f"--export_base={base}",
                       f"--data_dir={card_env['data_dir']}", "--max_windows=40",
                       "--interpolation_pairs=2", "--attribute_windows=40",
                       "--attribute_test_windows=8"])
    err = capsys.readouterr().err
    assert len(drawn) == 2
    if isinstance(stop, OSError):
        assert status == 1
        assert f"No space left on device; {base} keeps its earlier card and files" in err
    else:
        assert status == (143 if isinstance(stop, stop_signals.Terminated) else 130)
    assert _files(base) == before  # card, metrics, figures, examples, attribute vectors
    assert sorted(os.listdir(base)) == sorted(os.listdir(card_env["base"]))  # no staging left


def test_card_on_the_validation_split_names_it_and_measures_its_windows(card_env, tmp_path):
    """`hmvae card` measured the test split whatever the build held, so a build of a few own
    MIDI files without one could get no card at all. --split=validation measures that split's
    windows (quality, interpolation, examples, the attribute vectors' effects; the vectors
    still come from the training split), and the card and its JSON name it wherever they
    named the test split."""
    import re
    import shutil

    from hmvae_tf import data

    builder = data.prepared_builder(DATASET, card_env["data_dir"])
    size = builder.info.splits["validation"].num_examples
    assert 0 < size < builder.info.splits["test"].num_examples  # which split was read shows
    pieces = {p.decode() for p in tfds.as_numpy(builder.as_dataset(split="validation").map(
        lambda ex: ex["piece_id"]))}
    base = tmp_path / "mel_2bar"
    shutil.copytree(card_env["base"], base)
    said = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
        assert cli.main(["card", f"--model_dir={card_env['model_dir']}", f"--export_base={base}",
                         f"--data_dir={card_env['data_dir']}", "--split=validation",
                         "--max_windows=200", "--interpolation_pairs=4",
                         "--interpolation_steps=3", "--attribute_windows=300",
                         "--attribute_test_windows=64"]) == 0
    m = json.load(open(base / model_card.METRICS))
    card = open(base / model_card.CARD).read()
    assert m["split"] == "validation" and m["test"]["windows"] == size
    assert m["attributes"]["source"]["split"] == "train"
    assert m["attributes"]["effects_source"] == {**m["attributes"]["effects_source"],
                                                 "split": "validation", "windows": size}
    # Example files are named after their piece (write_examples): validation pieces only.
    assert all(any(piece.replace(".", "_") in os.path.basename(p) for piece in pieces)
               for p in m["examples"]), (m["examples"], pieces)
    assert f"on {size} validation windows of {DATASET}" in said.getvalue()
    for line in ("## Quality on the validation split",
                 f"Measured on the first {size} of the validation split's {size} windows",
                 f"Added to the z of {size} validation windows and decoded at temperature 0",
                 "(validation-split windows; `hmvae demo`",
                 "the fifth prints this card's validation metrics"):
        assert line in card
    assert not re.search(r"\btest[ -](split|window)", card, re.IGNORECASE), card
    assert "Measured on the training split" not in card
    attrs = attributes.load(os.path.join(base, "1", "assets.extra", attributes.ATTRIBUTES_FILE))
    assert attrs["effects_source"]["split"] == "validation"


def test_a_card_measured_on_the_training_split_says_so():
    """--split=train is allowed, but its numbers are not held-out quality: the card says so
    in one plain sentence, which a card of a held-out split (or an older card, which names
    no split: the test split) does not carry."""
    m = _shipped_metrics()
    assert "split" not in m  # written before --split: read as the test split
    card = card_render.render_card("mel_2bar", m)
    assert "## Quality on the test split" in card and "training split**" not in card
    m["split"] = "validation"
    assert "training split**" not in card_render.render_card("mel_2bar", m)
    m["split"] = "train"
    card = card_render.render_card("mel_2bar", m)
    assert "## Quality on the train split" in card
    assert ("**Measured on the training split**: these are windows the model was trained on, "
            "not held-out ones") in card


def test_summary_table(card_env):
    table = card_render.summary_table(str(card_env["root"] / "saved_models"))
    assert "[mel_2bar](mel_2bar/MODEL_CARD.md)" in table and "(baseline)" in table


def test_summary_table_says_which_cards_were_not_measured_on_the_test_split(tmp_path):
    """--summary put a card measured on the validation (or training) split in one table with
    test-split cards, with nothing to tell them apart."""
    for name, split in (("a", None), ("b", "validation"), ("c", "train")):
        m = _shipped_metrics()
        if split:
            m["split"] = split
        m["name"] = name
        (tmp_path / name).mkdir()
        (tmp_path / name / model_card.METRICS).write_text(json.dumps(m))
    rows = card_render.summary_table(str(tmp_path)).splitlines()
    assert rows[2].startswith("| [a](a/MODEL_CARD.md) | ")
    assert rows[-2].startswith("| [b](b/MODEL_CARD.md) (validation split) | ")
    assert rows[-1].startswith("| [c](c/MODEL_CARD.md) (train split) | ")


# --- units ----------------------------------------------------------------------------------
def test_hamming_curves_and_monotone_steps():
    # One pair, 4 steps of 4 cells: A=0000 -> 1000 -> 1100 -> 1111 (monotone).
    steps = np.array([[[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]])[..., None]
    to_start, to_end = evaluate.hamming_curves(steps)
    np.testing.assert_array_equal(to_start, [[0, 1, 2, 4]])
    np.testing.assert_array_equal(to_end, [[4, 3, 2, 0]])
    assert (np.diff(to_start) >= 0).all() and (np.diff(to_end) <= 0).all()


class AngleCodec:
    """Stands in for a model's encode/decode: windows of 10 cells; window "a" encodes to
    [1, 0] and "b" to [0, 1]. decode maps the angle of z to how many of the cells are 1:
    evenly (walk), at the half-way point (jump), or not at all (ignores z)."""

    def __init__(self, kind: str):
        self.kind = kind

    def mu(self, tokens):
        return np.stack([[1.0, 0.0] if t.sum() == 0 else [0.0, 1.0] for t in tokens])

    def decode(self, z):
        share = np.arctan2(z[:, 1], z[:, 0]) / (np.pi / 2)
        ones = {"walk": np.round(share * 10), "jump": np.where(share > 0.5, 10, 0),
                "ignores z": np.zeros(len(z))}[self.kind].astype(int)
        return (np.arange(10)[None] < ones[:, None]).astype(np.int32)[..., None]


@pytest.mark.parametrize("kind", ["walk", "jump", "ignores z"])
def test_interpolation_metric_is_not_fooled_by_a_model_that_ignores_z(kind):
    a, b = np.zeros((3, 10, 1), np.int32), np.ones((3, 10, 1), np.int32)
    m = evaluate.interpolation_metrics(AngleCodec(kind), a, b, num_steps=11)
    if kind == "ignores z":  # every step alike: no smoothness to report, and it says so
        assert m["interp_pairs_same_ends"] == 1.0 and m["interp_endpoint_distance"] == 0
        assert m["interp_monotone"] is None and m["interp_largest_jump"] is None
        return
    assert m["interp_pairs_same_ends"] == 0 and m["interp_monotone"] == 1.0
    assert m["interp_largest_jump"] == pytest.approx(0.1 if kind == "walk" else 1.0)


class ScriptedModel:
    """Stands in for a MusicVAE whose errors are set by the tokens themselves: teacher-forced
    argmax is right where a token is even, the sampled one where it is not a multiple of 3.
    z carries the window, so decode can apply its rule; KL is 0."""

    def __init__(self, config):
        self.config, self.decoder = config, self
        self.cells = config.num_steps * len(config.tracks)

    def prior(self):
        import tensorflow_probability as tfp

        return tfp.distributions.MultivariateNormalDiag(tf.zeros([self.cells]))

    def encode(self, tokens):
        import tensorflow_probability as tfp

        loc = tf.reshape(tf.cast(tokens, tf.float32), [-1, self.cells])
        return tfp.distributions.MultivariateNormalDiag(loc)

    def _wrong_where(self, tokens, wrong):
        classes = tf.constant(self.config.track_classes)
        return tf.where(wrong, (tokens + 1) % classes, tokens)

    def teacher_forced_logits(self, z, tokens):
        argmax = self._wrong_where(tokens, tokens % 2 != 0)
        return [tf.one_hot(argmax[..., k], c) for k, c in enumerate(self.config.track_classes)]

    def decode(self, z, temperature, noise=None):
        tokens = tf.cast(tf.round(tf.reshape(z, [-1, self.config.num_steps,
                                                 len(self.config.tracks)])), tf.int32)
        return self._wrong_where(tokens, tokens % 3 == 0)


@pytest.mark.parametrize("name,hparams", [("cat-mel_2bar_small", "bars=4"),
                                          ("hierdec-trio_16bar", "")])
def test_per_bar_accuracy_is_the_overall_one_split_by_bar(name, hparams):
    config = configs.get_config(name, hparams)
    bars, per_bar = config.bars, configs.STEPS_PER_BAR
    rng = np.random.default_rng(0)
    tokens = np.stack([rng.integers(0, 90, (11, config.num_steps))
                       for _ in config.tracks], -1).astype(np.int32)
    # Make the bars differ: bar 1 all right teacher-forced and all wrong sampled (token 0),
    # the last bar the other way round (token 1), and window i right in bar 2 (both ways) only
    # if i is even (token 4; else 9).
    tokens[:, :per_bar] = 0
    tokens[:, -per_bar:] = 1
    tokens[:, per_bar:2 * per_bar] = np.where(np.arange(11) % 2 == 0, 4, 9)[:, None, None]
    # Uneven batches, cut by max_windows: windows 0..8 count, 9 and 10 do not.
    batches = [tokens[:4], tokens[4:7], tokens[7:]]
    result = evaluate.evaluate_model(ScriptedModel(config), batches, max_windows=9,
                                     progress=False)
    seen = tokens[:9]
    assert result["windows"] == 9
    for key, right in (("teacher_forced_accuracy", seen % 2 == 0),
                       ("sampled_accuracy", seen % 3 != 0)):
        values = result[f"{key}_per_bar"]
        assert len(values) == bars
        # Independent reference: the share of right cells in each bar of the 9 windows.
        want = right.reshape(9, bars, per_bar, -1).mean((0, 2, 3))
        np.testing.assert_allclose(values, want, atol=1e-9)
        assert np.mean(values) == pytest.approx(result[key], abs=1e-9)
        assert result[key] == pytest.approx(right.mean(), abs=1e-9)
    assert result["teacher_forced_accuracy_per_bar"][0] == 1.0
    assert result["teacher_forced_accuracy_per_bar"][-1] == 0.0
    assert result["sampled_accuracy_per_bar"][0] == 0.0
    assert result["sampled_accuracy_per_bar"][-1] == 1.0
    assert result["sampled_accuracy_per_bar"][1] == pytest.approx(5 / 9)  # windows 0, 2, .., 8
    # What always answering token 0 would score on the same 9 windows (not 10 or 11).
    assert result["baseline_token0"] == pytest.approx((seen == 0).mean(), abs=1e-12)
    table = evaluate.format_per_bar_table([{"model": "m", **result}])
    assert f"| bar {bars} |" in table and "| m | sampled | 0.000 | 0.556 |" in table


class FakeCodec:
    """z = (note count, mean pitch); decoding writes round(z0) sixteenth notes of pitch z1."""

    tracks, num_steps, z_size = ("melody",), 32, 2

    def mu(self, tokens):
        return np.stack([attributes.note_counts(tokens, self.tracks),
                         np.nan_to_num(attributes.mean_pitches(tokens, self.tracks), nan=60)],
                        -1).astype(np.float32)

    def decode(self, z):
        out = np.zeros((len(z), 32, 1), np.int32)
        for i, (count, pitch) in enumerate(z):
            out[i, :int(np.clip(round(count), 0, 32)), 0] = int(round(pitch)) - 19
        return out


def test_vectors_point_along_their_attribute():
    rng = np.random.default_rng(0)
    codec = FakeCodec()
    tokens = codec.decode(np.stack([rng.integers(1, 30, 200), rng.integers(50, 80, 200)], -1))
    vectors = attributes.compute_vectors(codec, tokens)
    density, pitch = np.array(vectors["density"]["vector"]), np.array(vectors["pitch"]["vector"])
    assert density[0] > 10 and abs(density[0]) > abs(density[1])
    assert pitch[1] > 10 and abs(pitch[1]) > abs(pitch[0])
    eff = attributes.measure_effect(codec, tokens[:50], density, amounts=(-0.5, 0.5))
    assert eff["amounts"] == [-0.5, 0.0, 0.5]
    assert eff["density"][0] < eff["density"][1] < eff["density"][2]
    assert eff["raised"] > 0.5 and eff["lowered"] > 0.5
    table = attributes.format_effects({"effects": {"density": eff}})
    assert "| density | +0.5 |" in table


def test_note_counts_melody_and_drums():
    melody = np.array([[2, 0, 1, 40, 0, 0, 50, 1]])
    assert attributes.note_counts(melody, ("melody",)).tolist() == [3]
    assert attributes.mean_pitches(melody, ("melody",))[0] == pytest.approx(
        np.mean([2 + 19, 40 + 19, 50 + 19]))
    drums = np.array([[0b101, 0, 0b111111111, 1]])
    assert attributes.note_counts(drums, ("drums",)).tolist() == [2 + 9 + 1]
    assert attributes.available(("drums",)) == ["density"]


def test_reproduce_commands_rebuild_a_subset_as_a_subset():
    """A card made on an HMVAE_TFDS_MAX_PIECES build must not tell readers to build it all."""
    import argparse

    from hmvae_tf import dataset_source, model_card
    from hmvae_tf.configs import get_config

    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args(["--model_dir=runs/m", "--export_base=saved_models/m"])
    config = get_config("cat-mel_2bar_small")

    def build_command(source, manual_dir=None):
        meta = {"source": source} if manual_dir is None else {
            "source": source, "manual_dir": manual_dir}
        facts = {"source": source, "manual_dir": dataset_source.manual_dir(meta)}
        commands = reproduce.reproduce_commands(
            config, {}, config.dataset, None, "runs/m", "saved_models/m", args,
            data_facts=facts)
        return next(c for c in commands if "tfds build" in c)

    assert build_command("embedded music21 corpus, subset of 300 pieces "
                         "(HMVAE_TFDS_MAX_PIECES=300)").startswith(
        "HMVAE_TFDS_MAX_PIECES=300 tfds build tfds_builders/hmvae_notesequences --config=mel_2bar")
    assert build_command("embedded music21 corpus").startswith("tfds build ")
    # A build that records its subset as a key of its own.
    commands = reproduce.reproduce_commands(
        config, {}, config.dataset, None, "runs/m", "saved_models/m", args,
        data_facts={"source": "embedded music21 corpus", "manual_dir": None,
                    "subset": {"pieces": 50, "of": 13359, "max_pieces": 50}})
    assert commands[0].startswith("HMVAE_TFDS_MAX_PIECES=50 tfds build ")
    # A build from a MIDI folder is rebuilt from that folder.
    assert build_command("manual_dir /data/groove midi").endswith(
        "--config=mel_2bar --manual_dir='/data/groove midi'")
    # The folder is the build's own metadata key; a build made before it had only `source`,
    # whose subset note is not part of the folder.
    assert build_command("manual_dir /data/a, b", manual_dir="/data/a, b").endswith(
        "--manual_dir='/data/a, b'")
    assert build_command("manual_dir /data/lmd, subset of 10 pieces "
                         "(HMVAE_TFDS_MAX_PIECES=10)").endswith("--manual_dir=/data/lmd")


def _shipped_metrics(name="mel_2bar"):
    return json.load(open(os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                       "saved_models", name, "metrics.json")))


def test_card_says_when_its_data_is_a_subset_build():
    """A subset build has the full build's name and version: the card's data section named
    it as the full dataset (the subset showed only inside the source's wording)."""
    m = _shipped_metrics()
    assert "subset" not in card_render.render_card("mel_2bar", m)
    m["dataset"]["subset"] = {"pieces": 300, "of": 13359, "max_pieces": 300}
    assert ("**A subset build**, not the full dataset: 300 of the 13,359 pieces of the "
            "embedded corpus (HMVAE_TFDS_MAX_PIECES=300).") in card_render.render_card(
                "mel_2bar", m)


def test_card_names_the_tools_that_made_its_data():
    m = _shipped_metrics()
    assert "Converted with" not in card_render.render_card("mel_2bar", m)  # not recorded then
    m["dataset"]["tool_versions"] = {"music21": "10.5.1", "abc2midi": None, "note_seq": "0.0.5"}
    assert ("Converted with music21 10.5.1, abc2midi (version unknown), note_seq 0.0.5."
            in card_render.render_card("mel_2bar", m))


def test_card_reads_the_prepared_dataset_as_hmvae_evaluate_does(tmp_path):
    """The card read the data with `tfds.builder`, which (once the builder is imported, as
    here) looks for this code's version alone: a data_dir holding an older build gave an
    unprepared dataset and 'no split test', while `hmvae evaluate` measured the older one."""
    from tfds_builders.hmvae_notesequences import Builder  # noqa: F401 - registers it

    from dataset_helpers import write_mel_2bar
    from hmvae_tf import data, dataset_version

    assert dataset_version.VERSION != "1.0.0"
    write_mel_2bar(tmp_path, "1.0.0", n=6, splits=("train", "test"))
    config = configs.get_config("cat-mel_2bar_small")
    tokens, pieces, _ = model_card.read_split(DATASET, "test", str(tmp_path), 0, config)
    want = np.stack(list(tfds.as_numpy(data.load_tokens(DATASET, "test", str(tmp_path)))))
    np.testing.assert_array_equal(tokens[..., 0], want)
    assert len(tokens) == 6 and all(p.startswith("test/") for p in pieces)
    facts = model_card.dataset_facts(DATASET, str(tmp_path))
    assert facts["version"] == "1.0.0" and facts["splits"] == {"train": 6, "test": 6}
    # Nothing prepared: the one-line advice of `hmvae train`, not an unprepared builder.
    with pytest.raises(FileNotFoundError, match="is not prepared in .*run `tfds build "
                                                "tfds_builders/hmvae_notesequences"):
        model_card.dataset_facts(DATASET, str(tmp_path / "empty"))


def test_reproduce_commands_for_a_pinned_dataset_version():
    """--dataset=hmvae_notesequences/mel_2bar:1.0.0 gave `tfds build --config=mel_2bar:1.0.0`,
    which names no config, and the card did not say that the code builds another version."""
    import argparse
    import re

    from tfds_builders.hmvae_notesequences import Builder

    from hmvae_tf import dataset_version

    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args(["--model_dir=runs/m", "--export_base=saved_models/m"])
    config = configs.get_config("cat-mel_2bar_small")
    pinned = "hmvae_notesequences/mel_2bar:1.0.0"
    build, train_cmd = reproduce.reproduce_commands(config, {}, pinned, "/d", "runs/m",
                                                     "saved_models/m", args)[:2]
    assert re.search(r"--config=(\S+)", build)[1] in {c.name for c in Builder.BUILDER_CONFIGS}
    assert build == ("tfds build tfds_builders/hmvae_notesequences --config=mel_2bar "
                     "--data_dir=/d")
    assert f"--dataset={pinned} " in train_cmd  # what the model was trained on
    # The card says which version the build writes, and which one the model was measured on.
    code = dataset_version.VERSION
    m = _shipped_metrics()
    m["dataset"].update(name=pinned, version="1.0.0", code_version=code)
    card = card_render.render_card("mel_2bar", m)
    assert (f"The first builds the dataset (offline, from the corpus inside music21) at version "
            f"{code}, the one this code builds, the second") in card
    assert (f"This model was measured on version 1.0.0, which this code cannot rebuild: the "
            f"commands read `{pinned}`, so they need a data_dir that still holds it.") in card
    m["dataset"].update(name="hmvae_notesequences/mel_2bar")
    assert (f"the commands read the newest version in the data_dir, {code} once built"
            in card_render.render_card("mel_2bar", m))
    m["dataset"].update(version=code)
    card = card_render.render_card("mel_2bar", m)
    assert f"at version {code}, the one this code builds, the second" in card
    assert "cannot rebuild" not in card


def test_reproduce_commands_quote_paths_the_shell_would_split():
    """Paths with a space or a shell character were written as they are: the commands split
    them (or expanded `$`) when pasted into a shell."""
    import argparse
    import shlex

    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args(["--compare=/runs/flat $HOME", "--train_flags=--seed=1"])
    config = configs.get_config("cat-mel_2bar_small")
    commands = reproduce.reproduce_commands(
        config, {"step": 10}, "my data/mel_2bar", "/data/tf ds", "/runs/my model",
        "/saved models/it's", args, data_facts={"manual_dir": "/midi/a&b"})
    words = [shlex.split(c) for c in commands]
    build, train_cmd, export_cmd, card_cmd, evaluate_cmd = words
    assert ["--data_dir=/data/tf ds", "--manual_dir=/midi/a&b"] == build[-2:]
    assert {"--dataset=my data/mel_2bar", "--data_dir=/data/tf ds",
            "--model_dir=/runs/my model_reproduced", "--seed=1"} <= set(train_cmd)
    assert export_cmd[2:] == ["--model_dir=/runs/my model_reproduced",
                              "--export_base=/saved models/it's_reproduced"]
    assert {"--model_dir=/runs/my model_reproduced", "--export_base=/saved models/it's_reproduced",
            "--compare=/runs/flat $HOME", "--train_flags=--seed=1"} <= set(card_cmd)
    assert "--saved_model=/saved models/it's" in evaluate_cmd
    # The card and evaluate lines measure the dataset the card measured, as train reads it.
    assert "--dataset=my data/mel_2bar" in card_cmd and "--dataset=my data/mel_2bar" in evaluate_cmd
    # The card's one-line commands too.
    m = _shipped_metrics()
    m["export"].update(base="/saved models/it's", version_dir="/saved models/it's/1")
    card = card_render.render_card("mel_2bar", m)
    sample = card.split("; as `")[1].split("`)")[0]
    assert "--saved_model=/saved models/it's/1" in shlex.split(sample)
    attribute = card.split("Apply one: `")[1].split("`")[0]
    assert "--saved_model=/saved models/it's" in shlex.split(attribute)


def test_card_and_evaluate_measure_the_same_windows_by_default():
    """The card measured 2000 test windows and `hmvae evaluate` 2048 by default, so the two
    reported different numbers for the same model."""
    import argparse

    defaults = []
    for module, command in ((model_card, "card"), (evaluate, "evaluate")):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser, command)
        defaults.append(parser.get_default("max_windows"))
    assert defaults[0] == defaults[1] == evaluate.DEFAULT_TEST_WINDOWS > 0


@pytest.mark.parametrize("base", ["mel_2bar", "mel_16bar"])
def test_attribute_compute_reads_the_windows_a_card_built_its_vectors_from(base, tmp_path,
                                                                          monkeypatch):
    """`hmvae attribute --compute` read 20,000 training and 512 test windows by default, the
    card 10,000 and 500 (4,000 and 200 for a 16-bar model), so rebuilding a shipped model's
    vectors gave other ones. The defaults are shared now, and the two helps say the same."""
    from hmvae_tf.serving import model_args

    version_dir = export.resolve_saved_model(os.path.join(
        os.path.dirname(__file__), "..", "saved_models", base))
    shipped = attributes.load(os.path.join(version_dir, "assets.extra",
                                           attributes.ATTRIBUTES_FILE))

    class Client:  # what _compute asks of a client before it encodes anything
        tracks, z_size, description = ("melody",), 4, "a stand-in"
        num_steps = shipped["model"]["num_steps"]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    read = []

    def read_windows(dataset, split, data_dir, max_windows, tracks):
        read.append((split, max_windows))
        if split == "test":
            raise ValueError("enough read")
        return np.zeros((1, Client.num_steps, 1), np.int32)

    monkeypatch.setattr(model_args, "connect", lambda args: Client())
    monkeypatch.setattr(attributes, "read_windows", read_windows)
    # No dataset here: the test split's check reads the build's info, as read_windows would.
    from hmvae_tf import data

    monkeypatch.setattr(data, "require_split", lambda *args, **kwargs: None)
    assert cli.main(["attribute", "--compute", f"--saved_model={version_dir}",
                     f"--attributes={tmp_path / 'vectors.json'}"]) == 1
    assert read == [("train", shipped["source"]["windows"]),
                    ("test", shipped["effects_source"]["windows"])]

    helps = {}
    for module, command in ((model_card, "card"), (attributes, "attribute")):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser, command)
        helps[command] = {a.dest: a.help for a in parser._actions}
    assert attributes.WINDOWS_HELP in helps["card"]["attribute_windows"]
    assert attributes.WINDOWS_HELP in helps["attribute"]["max_windows"]
    assert attributes.TEST_WINDOWS_HELP in helps["card"]["attribute_test_windows"]
    assert attributes.TEST_WINDOWS_HELP in helps["attribute"]["test_windows"]


def test_reproduce_commands_measure_the_split_the_card_measured():
    """A card measured with --split=validation (a build without a test split) printed card and
    evaluate commands without it, which measured the test split, or stopped for the lack of
    one. They carry the card's --split now; a test-split card's commands are as before."""
    import shlex

    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    config = configs.get_config("cat-mel_2bar_small")
    for split, flag in (("test", []), ("validation", ["--split=validation"])):
        args = parser.parse_args([f"--split={split}", "--attribute_windows=300",
                                  "--attribute_test_windows=64"])
        commands = [shlex.split(c) for c in reproduce.reproduce_commands(
            config, {"step": 10}, DATASET, "/d", "runs/m", "saved_models/m", args)]
        build, train_cmd, export_cmd, card_cmd, evaluate_cmd = commands
        for words in (card_cmd, evaluate_cmd):
            assert [w for w in words if w.startswith("--split")] == flag, words
        for words in (build, train_cmd, export_cmd):
            assert not any(w.startswith("--split") for w in words), words


def test_reproduce_commands_train_and_export_into_new_directories():
    """Run as printed, the card's commands named the original training directory (so `hmvae
    train` resumed, or found finished, the run that made the model) and the shipped export
    base (a new version there, and its card rewritten)."""
    import argparse
    import re

    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args(["--model_dir=runs/m", "--export_base=saved_models/m"])
    config = configs.get_config("cat-mel_2bar_small")
    facts = {"step": 800, "steps_per_epoch": 400}

    def dirs(model_dir):
        commands = reproduce.reproduce_commands(config, facts, config.dataset, None,
                                                 model_dir, "saved_models/m/", args)
        return [dict(re.findall(r"--(model_dir|export_base|saved_model)=(\S+)", c))
                for c in commands[1:]]

    train_cmd, export_cmd, card_cmd, evaluate_cmd = dirs("runs/m/")
    new = {"model_dir": "runs/m_reproduced", "export_base": "saved_models/m_reproduced"}
    assert train_cmd == {"model_dir": "runs/m_reproduced"}
    assert export_cmd == card_cmd == new
    assert evaluate_cmd == {"saved_model": "saved_models/m"}  # only reads this export
    # An export that names no training directory: one named after the export.
    assert dirs("")[0] == {"model_dir": os.path.join("runs", "m_reproduced")}
    card = card_render.render_card("mel_2bar", json.load(open(os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "saved_models", "mel_2bar", "metrics.json"))))
    assert "directories of their own (`_reproduced` added to the original names)" in card


def test_card_says_when_the_runs_were_given_different_seeds():
    """A run resumed with another --seed was told nowhere: the card's train command gave the
    first run's --seed as if it were how the whole model was trained. The card now names the
    seeds and the step each took over, and what the command gives instead."""
    import argparse

    def run(start, seed):
        return {"start_step": start, "num_steps": start + 500, "checkpoint_every": 250,
                "seed": seed, "dtype_policy": "float32"}

    m = _shipped_metrics()
    m["training"]["runs"] = [run(0, 7), run(500, 7), run(1000, 9)]
    card = card_render.render_card("mel_2bar", m)
    assert ("**the runs were given different seeds (seed 7 from step 0, seed 9 from step "
            "1,000), which one command cannot repeat: the train command below gives the first "
            "run's seed**") in card
    parser = argparse.ArgumentParser()
    model_card.add_arguments(parser, "card")
    args = parser.parse_args(["--model_dir=runs/m", "--export_base=saved_models/m"])
    train_cmd = reproduce.reproduce_commands(
        configs.get_config("cat-mel_2bar_small"), {"runs": m["training"]["runs"]},
        "hmvae_notesequences/mel_2bar", None, "runs/m", "saved_models/m", args)[1]
    assert "--seed=7" in train_cmd.split() and "--seed=9" not in train_cmd
    # An older directory whose first run was unseeded, resumed with a seed drawn later.
    m["training"]["runs"] = [run(0, None), run(500, 123)]
    assert ("(unseeded from step 0, seed 123 from step 500), which one command cannot repeat: "
            "the train command below draws a seed of its own, as the first run did**"
            in card_render.render_card("mel_2bar", m))
    # One seed throughout: nothing to say.
    m["training"]["runs"] = [run(0, 7), run(500, 7)]
    assert "different seeds" not in card_render.render_card("mel_2bar", m)


def test_card_counts_the_runs_in_words_that_agree_with_their_number():
    """The training line said "Trained in 1 run(s) ..., started at step(s) 0"."""
    m = _shipped_metrics()
    m["training"]["runs"] = [{"start_step": 0, "num_steps": 500}]
    assert "Trained in 1 run of `hmvae train`, started at step 0" in card_render.render_card(
        "mel_2bar", m)
    m["training"]["runs"].append({"start_step": 500, "num_steps": 1500})
    assert ("Trained in 2 runs of `hmvae train`, started at steps 0, 500"
            in card_render.render_card("mel_2bar", m))


def test_reproduce_command_trains_with_xla_when_the_model_was():
    """train_runs.jsonl records --jit_compile, but the card's train command left it out, so
    the model it repeats would round its sums differently from the first step."""
    runs = [{"start_step": 0, "seed": 3, "dtype_policy": "float32", "jit_compile": True}]
    assert reproduce.recorded_train_flags(runs).split() == [
        "--seed=3", "--dtype_policy=float32", "--jit_compile"]
    assert "--jit_compile" not in reproduce.recorded_train_flags(
        [dict(runs[0], jit_compile=False)])
    assert reproduce.recorded_train_flags(runs, "--jit_compile").count("--jit_compile") == 0


def test_attribute_compute_on_a_build_without_a_test_split_names_the_way_out(tmp_path, capsys,
                                                                            monkeypatch):
    """A build of a few own MIDI files can have no test split: --compute failed after
    encoding every training window, with no word of --test_windows=0. It now stops before
    reading any window, and names it; with it the vectors are built."""
    from dataset_helpers import write_mel_2bar

    from hmvae_tf import dataset_version
    from hmvae_tf.serving import model_args

    version_dir = export.resolve_saved_model(os.path.join(
        os.path.dirname(__file__), "..", "saved_models", "mel_2bar"))
    write_mel_2bar(tmp_path / "data", dataset_version.VERSION, splits=("train", "validation"))
    capsys.readouterr()  # the stand-in build's progress

    class Client:  # what _compute asks of a client before it encodes anything
        tracks, z_size, description, num_steps = ("melody",), 4, "a stand-in", 32

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    read = []
    monkeypatch.setattr(model_args, "connect", lambda args: Client())

    def read_windows(dataset, split, data_dir, max_windows, tracks):
        read.append(split)
        return np.zeros((1, 32, 1), np.int32)

    monkeypatch.setattr(attributes, "read_windows", read_windows)
    monkeypatch.setattr(attributes, "build", lambda *a, **k: {"attributes": {}})
    argv = ["attribute", "--compute", f"--saved_model={version_dir}",
            f"--data_dir={tmp_path / 'data'}", f"--attributes={tmp_path / 'vectors.json'}"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("has no split 'test' to measure the vectors on; it has ['train', 'validation']: "
            "pass --measure_split=validation or pass --test_windows=0") in err
    assert read == []
    assert cli.main([*argv, "--test_windows=0"]) == 0
    assert read == ["train"]
    built = []
    monkeypatch.setattr(attributes, "build", lambda *a, **k: built.append(k) or {"attributes": {}})
    assert cli.main([*argv, "--force", "--measure_split=validation"]) == 0
    assert read == ["train", "train", "validation"]
    assert built[0]["source"]["test_split"] == "validation"


def test_card_refuses_a_build_without_a_test_split_before_loading_the_model(tmp_path, capsys,
                                                                            monkeypatch):
    """`hmvae card` on a build of a few own MIDI files without a test split loaded the export
    (seconds) before it found the split missing, as `hmvae evaluate` did; the split is now
    checked first, from the export's metadata and the build's info, and nothing is written."""
    import shutil

    from dataset_helpers import write_mel_2bar

    from hmvae_tf import dataset_version

    shipped = export.resolve_saved_model(os.path.join(
        os.path.dirname(__file__), "..", "saved_models", "mel_2bar"))
    base = tmp_path / "exports" / "mine"
    (base / "1" / "assets.extra").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")  # never loaded: load_any is stopped
    shutil.copy(os.path.join(shipped, "assets.extra", "hmvae_config.json"),
                base / "1" / "assets.extra")
    write_mel_2bar(tmp_path / "data", dataset_version.VERSION, splits=("train", "validation"))
    capsys.readouterr()  # the stand-in build's progress

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate, "load_any", no_load)
    before = sorted(p.relative_to(base) for p in base.rglob("*"))
    assert cli.main(["card", f"--export_base={base}", f"--data_dir={tmp_path / 'data'}"]) == 1
    err = capsys.readouterr().err
    assert err == ("hmvae card: error: hmvae_notesequences/mel_2bar has no split 'test' to "
                   "measure the card on; it has ['train', 'validation']: measure it on another "
                   "with --split=validation\n")
    assert sorted(p.relative_to(base) for p in base.rglob("*")) == before


def test_the_split_a_card_may_measure_instead_is_a_held_out_one_if_any():
    """The way out of a missing split names the build's held-out splits; the training split
    only when it is all there is, with what it means."""
    assert model_card.other_splits(["train", "validation"]) == (
        "measure it on another with --split=validation")
    assert model_card.other_splits(["train", "validation", "extra"]) == (
        "measure it on another with --split=validation or --split=extra")
    assert model_card.other_splits(["train"]) == (
        "only --split=train is left, which measures windows the model trained on (the card "
        "says so)")


def test_attribute_over_grpc_names_where_an_own_exports_vectors_are(tmp_path, monkeypatch):
    """A researcher serving their own export (`hmvae serve --model_base_path=exports/mel`)
    was told only 'pass --attributes=<file>' when `hmvae attribute --server` looked for the
    vectors under saved_models/; the line names the file in an export base to pass."""
    import types

    monkeypatch.chdir(tmp_path)
    args = types.SimpleNamespace(attributes="", saved_model=None, model="mel", model_version=None)
    client = types.SimpleNamespace(backend=types.SimpleNamespace(served_version=3))
    with pytest.raises(ValueError) as err:
        attributes._default_attributes_path(args, client)
    assert str(err.value).endswith(
        "for a model served from another export base, pass "
        "--attributes=<export base>/3/assets.extra/hmvae_attributes.json")
    (tmp_path / "saved_models" / "mel" / "3" / "assets.extra").mkdir(parents=True)
    found = tmp_path / "saved_models" / "mel" / "3" / "assets.extra" / "hmvae_attributes.json"
    found.write_text("{}")
    assert attributes._default_attributes_path(args, client) == str(found)
