"""MODEL_CARD.md and the cards' summary table, rendered from the metrics documents (metrics.json)
that `hmvae card` measures: markdown only, nothing measured here."""
from __future__ import annotations

import glob
import json
import os

from hmvae_tf import dataset_source
from hmvae_tf.card_files import CARD, EXAMPLES, FIGURES, METRICS
from hmvae_tf.reproduce import REPRODUCED, seed_changes
from hmvae_tf.shell_text import shown


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no TensorBoard event files)"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _other_version(ds: dict) -> str:
    """When the card measured another dataset version than the reproduce command's `tfds
    build` writes: a sentence on which one the other commands read (else "")."""
    code = ds.get("code_version")
    if not code or code == ds["version"]:
        return ""
    text = (f" This model was measured on version {ds['version']}, which this code cannot "
            "rebuild: ")
    if ":" in ds["name"]:
        return text + (f"the commands read `{ds['name']}`, so they need a data_dir that "
                       "still holds it.")
    return text + (f"the commands read the newest version in the data_dir, {code} once built, "
                   "i.e. other windows than the ones measured here.")


def measured_split(m: dict) -> str:
    """The split a card measured (`hmvae card --split`; older cards, without the key, the
    test split)."""
    return m.get("split", "test")


def _training_split_warning(split: str) -> str:
    """The sentence that keeps a card measured on the training split from being read as
    held-out quality (else "")."""
    if split != "train":
        return ""
    return ("**Measured on the training split**: these are windows the model was trained on, "
            "not held-out ones, so the numbers below overstate how well it does on music it "
            "has not seen.")


def render_card(name: str, m: dict) -> str:
    """MODEL_CARD.md's markdown, built from the metrics document."""
    from hmvae_tf import attributes
    from hmvae_tf.evaluate import format_table

    cfg, ev, tr, ds = m["config"], m["test"], m["training"], m["dataset"]
    split = measured_split(m)
    lines = [f"# {name}: {cfg['name']} ({cfg['bars']}-bar {cfg['representation']}, "
             f"{'hierarchical' if cfg['conductor_rnn_size'] else 'flat'} decoder)", ""]
    lines += [
        f"SavedModel `{m['export']['version_dir']}` (exported {m['export'].get('exported_at', '?')} "
        f"from step {tr.get('step')} of `{tr['model_dir']}`); {m['parameters']:,} parameters. "
        f"Card written {m['written_at']} by `hmvae card` in {m['card_seconds']:.0f} s."
        + (f" The export runs its products in {m['export']['dtype_policy']}; the metrics below "
           "are those of the float32 model rebuilt from its weights."
           if m["export"].get("dtype_policy", "float32") != "float32" else ""), ""]

    lines += [f"## Quality on the {split} split", ""]
    warning = _training_split_warning(split)
    if warning:
        lines += [warning, ""]
    rows = [{"model": name, "config": cfg["name"], "step": tr.get("step"), **ev}]
    rows += [{**r, "model": r["label"]} for r in m.get("compare", [])]
    lines += [format_table(rows), ""]
    lines += [f"Measured on the first {ev['windows']} of the {split} split's "
              f"{ds['splits'].get(split, '?')} windows, z = posterior mean. Teacher-forced "
              "accuracy: the share of steps whose argmax under the true previous tokens is "
              "right; sampled: when the decoder feeds back its own argmax tokens (temperature "
              "0). KL in bits per window, reconstruction loss in nats per window.", ""]
    interp = m.get("interpolation")
    if interp and interp["interp_monotone"] is None:
        lines += [
            f"**Interpolation** between {interp['interp_pairs']} random pairs of those windows: "
            "every pair's two ends decode to the same tokens at temperature 0, so the decoder "
            "ignores z and there is no smoothness to measure.", ""]
    elif interp:
        lines += [
            f"**Interpolation** between {interp['interp_pairs']} random pairs of those windows, "
            f"{interp['interp_steps']} points on the slerp between their posterior means, "
            f"decoded at temperature 0 (endpoints are reconstructions): "
            + (f"over the {1 - interp['interp_pairs_same_ends']:.0%} of pairs whose ends "
               "decode differently, " if interp.get("interp_pairs_same_ends") else "")
            + f"**{interp['interp_monotone']:.3f}** of the steps are monotone (the Hamming "
            f"distance to the start does not fall and to the end does not rise; each alone: "
            f"{interp['interp_monotone_start']:.3f} / {interp['interp_monotone_end']:.3f}); "
            f"{interp['interp_pairs_fully_monotone']:.2f} of the pairs are monotone throughout"
            + (f"; a pair's largest step between neighbouring points changes on average "
               f"{interp['interp_largest_jump']:.2f} of what separates its ends (an even walk: "
               f"{1 / (interp['interp_steps'] - 1):.2f})" if "interp_largest_jump" in interp
               else "") + ". "
            "Mean Hamming distance (share of the window's steps that differ) per point; the "
            f"two reconstructed ends differ in {interp['interp_endpoint_distance']:.2f} of their "
            "steps:", "",
            "| point | " + " | ".join(str(i) for i in range(interp["interp_steps"])) + " |",
            "|---|" + "---|" * interp["interp_steps"],
            "| to start | " + " | ".join(f"{v:.2f}" for v in interp["interp_curve_start"]) + " |",
            "| to end | " + " | ".join(f"{v:.2f}" for v in interp["interp_curve_end"]) + " |", ""]
    attrs = m.get("attributes")
    if attrs:
        src = attrs["source"]
        effects_split = attrs.get("effects_source", {}).get("split", split)
        lines += [
            f"**Attribute vectors** (`{m['export']['attributes_file']}`): from "
            f"{src['windows']} {src.get('split', 'train')} windows, the mean z of the top "
            f"quarter minus the bottom quarter by each attribute ("
            + "; ".join(f"{k}: {v['definition']}, quarters' means {v['low_mean']:.1f} -> "
                        f"{v['high_mean']:.1f}, |v| = {v['norm']:.2f}"
                        for k, v in attrs["attributes"].items())
            + "). Added to the z of "
            f"{attrs.get('effects_source', {}).get('windows', 0)} {effects_split} windows and "
            f"decoded at temperature 0 (the {effects_split} windows themselves have "
            f"{next(iter(attrs.get('effects', {}).values()), {}).get('input_density', 0):.2f} "
            "notes on average):", "",
            attributes.format_effects(attrs), "",
            f"Apply one: `hmvae attribute in.mid --name=density --amount=1 "
            f"--saved_model={shown(m['export']['base'])} --out=out/`.", ""]
    if m["checks"]:
        lines += ["### Targets (issue 5)", "", "| check | value | |", "|---|---|---|"]
        for c in m["checks"]:
            verdict = {True: "pass", False: "**FAIL**", None: "reported"}[c["passed"]]
            lines.append(f"| {c['check']} | {c['value']} | {verdict} |")
        lines.append("")

    lines += ["## Model", "", "| hyper-parameter | value |", "|---|---|"]
    for key, value in cfg.items():
        lines.append(f"| `{key}` | {value} |")
    lines += ["", f"Named config `{cfg['name']}` with `--hparams={m['hparams'] or '(none)'}`.", ""]

    subset = dataset_source.subset_text(ds)  # a subset build has the full one's name
    tools = ds.get("tool_versions")  # what made the windows (builds since it was recorded)
    lines += ["## Data", "",
              f"TFDS `{ds['name']}` {ds['version']}"
              + (f" ({ds['source']})" if ds.get("source") else "") + ": windows per split "
              + ", ".join(f"{k} {v:,}" for k, v in ds["splits"].items())
              + (" (pieces: " + ", ".join(f"{k} {v:,}" for k, v in ds["pieces_per_split"].items())
                 + ")" if ds.get("pieces_per_split") else "")
              + ". Splits by piece (no piece in two splits)"
              + (f"; training transposes each window by up to ±{cfg['transpose']} semitones"
                 if cfg.get("transpose") else "") + "."
              + (f" **A subset build**, not the full dataset: {subset}." if subset else "")
              + (" Converted with " + ", ".join(f"{k} {v or '(version unknown)'}"
                                                for k, v in tools.items()) + "."
                 if tools else ""),
              ""]

    lines += ["## Training", ""]
    step, sec = tr.get("step"), tr.get("seconds")
    lines.append(f"{step:,} steps of batch {cfg['batch_size']} "
                 f"({step * cfg['batch_size'] / max(ds['splits'].get('train', 1), 1):.1f} epochs "
                 f"of the training split) in {_fmt_seconds(sec)} of training"
                 + (f" ({sec / step:.2f} s per step)" if sec and step else "")
                 + f" on {m['machine']}." if step else "Training steps unknown.")
    runs = tr.get("runs") or []
    if runs:
        versions = sorted({r["dataset_version"] for r in runs if r.get("dataset_version")})
        datasets = sorted({r["dataset"] for r in runs if r.get("dataset")})
        seeds = seed_changes(runs)
        lines += ["", ("Trained in 1 run of `hmvae train`, started at step "
                       if len(runs) == 1 else
                       f"Trained in {len(runs)} runs of `hmvae train`, started at steps ")
                  + ", ".join(f"{r['start_step']:,}" for r in runs)
                  + (" (a resumed run continues with seed + its start step, so a run "
                     "straight through to the same step draws other data)"
                     if len(runs) > 1 and runs[0].get("seed") is not None else "")
                  + (f"; dataset version at training: {', '.join(versions)}" if versions else "")
                  + (f" (**not** the {ds['version']} measured above)"
                     if versions and versions != [ds["version"]] else "")
                  + (f"; **the runs read different datasets: {', '.join(datasets)}**"
                     if len(datasets) > 1 else "")
                  + (f"; **the runs were given different seeds ({seeds}), which one command "
                     "cannot repeat: the train command below "
                     + ("gives the first run's seed**" if runs[0].get("seed") is not None
                        else "draws a seed of its own, as the first run did**")
                     if seeds else "") + "."]
    final = tr.get("final") or {}
    if final:
        keys = [k for k in ("r_loss", "kl_bits", "beta", "accuracy", "val_r_loss",
                            "val_kl_bits", "val_accuracy") if k in final]
        lines += ["", "Last checkpoint period: " + ", ".join(f"{k} {final[k]:.4g}" for k in keys)
                  + "."]
    if "training_curves.png" in m["figures"]:
        lines += ["", f"![training curves]({FIGURES}/training_curves.png)"]
    lines.append("")

    source = ("offline, from the corpus inside music21" if "embedded" in (ds.get("source") or "")
              else f"source: {ds.get('source') or 'see the dataset README'}")
    lines += ["## Reproduce", "", "```"] + m["commands"] + ["```", "",
              f"The first builds the dataset ({source})"
              + (f" at version {ds['code_version']}, the one this code builds"
                 if ds.get("code_version") else "") + ", the second "
              "trains a new model (resumable: the same command continues after an "
              "interruption), the third exports it, the fourth writes its card and attribute "
              f"vectors, the fifth prints this card's {split} metrics from this export. The new "
              f"model and its export go to directories of their own (`{REPRODUCED}` added to "
              "the original names): the original training directory would resume, or find "
              "finished, the run that made this model, and this export base would get a new "
              "version and a rewritten card." + _other_version(ds), ""]

    lines += ["## Pictures and files", "",
              f"Samples from the prior (temperature {m['samples']['temperature']:g}, "
              f"seed {m['samples']['seed']}; as `hmvae sample "
              f"--saved_model={shown(m['export']['version_dir'])} -n "
              f"{m['samples']['n']} --temperature={m['samples']['temperature']:g} "
              f"--seed={m['samples']['seed']}`):", "",
              f"![samples]({FIGURES}/samples.png)", ""]
    if "reconstructions.png" in m["figures"]:
        lines += [f"{split.capitalize()} windows and their reconstructions (temperature 0):",
                  "",
                  f"![reconstructions]({FIGURES}/reconstructions.png)", ""]
    lines += [f"Interpolation between the two example windows ({m['interpolation_figure']}):", "",
              f"![interpolation]({FIGURES}/interpolation.png)", "",
              f"- `{EXAMPLES}/`: " + ", ".join(f"`{os.path.basename(p)}`"
                                              for p in m["examples"])
              + f" ({split}-split windows; `hmvae demo` interpolates between the first two)",
              f"- `{METRICS}`: every number above",
              f"- `{m['export']['attributes_file']}`: the attribute vectors", ""]
    return "\n".join(lines)


def summary_table(saved_models: str) -> str:
    """One markdown table of the metrics.json of every export base under saved_models; a card
    measured on another split than test says which beside its name."""
    rows = []
    for path in sorted(glob.glob(os.path.join(saved_models, "*", METRICS))):
        with open(path) as f:
            m = json.load(f)
        ev, interp = m["test"], m.get("interpolation") or {}
        eff = (m.get("attributes") or {}).get("effects", {}).get("density")
        density = ""
        if eff:
            d = dict(zip(eff["amounts"], eff["density"]))
            density = " / ".join(f"{d[a]:.1f}" for a in sorted(d))
        split = measured_split(m)  # a card not of the test split says which it measured
        rows.append(f"| [{m['name']}]({os.path.relpath(os.path.dirname(path), saved_models)}/"
                    f"{CARD})" + (f" ({split} split)" if split != "test" else "")
                    + f" | {m['config']['name']} | {m['training'].get('step')} | "
                    f"{ev['teacher_forced_accuracy']:.3f} | {ev['sampled_accuracy']:.3f} | "
                    f"{ev['kl_bits']:.1f} | "
                    + (f"{interp['interp_monotone']:.3f}" if interp.get("interp_monotone")
                       is not None else "") + f" | {density} |")
        for c in m.get("compare", []):
            rows.append(f"| {c['label']} (baseline) | {c['config']} | {c.get('step')} | "
                        f"{c['teacher_forced_accuracy']:.3f} | {c['sampled_accuracy']:.3f} | "
                        f"{c['kl_bits']:.1f} | | |")
    head = ["| model | config | steps | TF acc | sampled acc | KL bits | interp monotone | "
            "notes at density -1 / 0 / +1 |", "|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + rows)
