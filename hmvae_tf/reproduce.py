"""The commands that rebuild a model from nothing (dataset, training, export, card) in new
directories, as its model card prints them."""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from typing import TYPE_CHECKING

from hmvae_tf import dataset_source
from hmvae_tf.shell_text import shown, typed

if TYPE_CHECKING:
    from hmvae_tf.configs import Config


def hparams_diff(config: Config) -> str:
    """The --hparams that turn the named config into this one (Magenta's syntax)."""
    from hmvae_tf import configs

    base = configs.CONFIGS.get(config.name)
    if base is None:
        return ""
    parts = []
    for field in dataclasses.fields(config):
        value, default = getattr(config, field.name), getattr(base, field.name)
        if field.name == "name" or value == default:
            continue
        parts.append(f"{field.name}={configs.hparam_text(value)}")
    return ",".join(parts)


def recorded_train_flags(runs: list[dict], train_flags: str = "") -> str:
    """--seed and --dtype_policy as the first recorded run had them (a run resumed later
    continues that run's seed), its --jit_compile (XLA fuses the products, so the sums
    round differently), and its --eval_batches when not the default (the validation
    columns of history.csv average over that many batches), unless --train_flags gives them.
    A later run given another --seed cannot be told in one command: `seed_changes` says it
    in the card."""
    from hmvae_tf.run_settings import COMMAND_DEFAULTS

    if not runs:
        return ""
    first, out = runs[0], ""
    if first.get("seed") is not None and "--seed" not in train_flags:
        out += f" --seed={first['seed']}"
    if first.get("dtype_policy") and "--dtype_policy" not in train_flags:
        out += f" --dtype_policy={first['dtype_policy']}"
    if first.get("jit_compile") and "--jit_compile" not in train_flags:
        out += " --jit_compile"
    batches = first.get("eval_batches")
    if (batches is not None and batches != COMMAND_DEFAULTS["eval_batches"]
            and "--eval_batches" not in train_flags):
        out += f" --eval_batches={batches}"
    return out


def seed_changes(runs: list[dict]) -> str:
    """The seeds the runs were given, from the step each took over ("seed 7 from step 0,
    seed 9 from step 500"), when they are not one seed; else "". A resume continues the first
    run's seed unless given another --seed, and one straight-through command gives one seed,
    so the card's train command cannot say how such a model was trained."""
    if len({r.get("seed") for r in runs}) <= 1:
        return ""
    changes, last = [], object()
    for r in runs:
        if r.get("seed") != last:
            last = r.get("seed")
            changes.append(("unseeded" if last is None else f"seed {last}")
                           + f" from step {r.get('start_step', 0):,}")
    return ", ".join(changes)


# Suffix of the directories the reproduce commands train and export into.
REPRODUCED = "_reproduced"


def reproduced_path(path: str) -> str:
    """A new directory beside `path` for a reproduction: the original training directory
    would resume (or find finished) the run that made the model, and the original export base
    would get a new version and a rewritten card. Not quoted: `shown` is for commands."""
    return typed(os.path.normpath(path)) + REPRODUCED


def reproduce_commands(config: Config, facts: dict, dataset: str,
                       data_dir: str | None, model_dir: str, export_base: str,
                       args: argparse.Namespace, export_flags: str = "",
                       data_facts: dict | None = None) -> list[str]:
    """The commands that rebuild the data (from the same --manual_dir, and a subset again,
    if the build was one: `data_facts`, as `dataset_facts` gives them), the model and its
    export (with `export_flags`) in new directories (reproduced_path) and their card, and
    that measure this export as its card did."""
    export_name = os.path.basename(os.path.normpath(export_base))
    new_model_dir = shlex.quote(reproduced_path(model_dir or os.path.join("runs", export_name)))
    new_export_base = shlex.quote(reproduced_path(export_base))
    data_flag = f" --data_dir={shlex.quote(data_dir)}" if data_dir else ""
    data_facts = data_facts or {}
    subset = dataset_source.subset(data_facts)
    manual = data_facts.get("manual_dir")  # the build's MIDI folder
    tfds_config = dataset.split("/")[-1].split(":")[0]  # `tfds build` takes no version
    hparams = hparams_diff(config)
    # Every command reads the dataset the card measured (the model's own unless --dataset).
    dataset_flag = f" --dataset={shlex.quote(dataset)}" if dataset != config.dataset else ""
    # The card and evaluate commands measure the split the card measured (`card --split`).
    split_flag = f" --split={shlex.quote(args.split)}" if args.split != "test" else ""
    train = (f"hmvae train --config={config.name}"
             # Quoted: zsh (and bash, when a file matches) would expand the brackets.
             + (f" --hparams={shlex.quote(hparams)}" if hparams else "")
             + f"{dataset_flag}{data_flag} --model_dir={new_model_dir}"
             + (f" --num_steps={facts['step']}" if facts.get("step") else "")
             + (f" --checkpoint_every={facts['steps_per_epoch']}"
                if facts.get("steps_per_epoch") else "")
             + recorded_train_flags(facts.get("runs") or [], args.train_flags)
             + (f" {args.train_flags}" if args.train_flags else ""))
    card = (f"hmvae card --model_dir={new_model_dir} --export_base={new_export_base}"
            f"{dataset_flag}{data_flag}{split_flag} --max_windows={args.max_windows}"
            f" --interpolation_pairs={args.interpolation_pairs}"
            f" --interpolation_steps={args.interpolation_steps}"
            f" --attribute_windows={args.attribute_windows}"
            f" --attribute_test_windows={args.attribute_test_windows} --seed={args.seed}"
            + "".join(f" --compare={shown(c)}" for c in args.compare)
            + (f" --train_flags={shlex.quote(args.train_flags)}" if args.train_flags else ""))
    evaluate = (f"hmvae evaluate --saved_model={shown(export_base)}{dataset_flag}{data_flag}"
                f"{split_flag} --max_windows={args.max_windows}"
                f" --interpolation_pairs={args.interpolation_pairs}"
                f" --interpolation_steps={args.interpolation_steps} --seed={args.seed}")
    return [
        (f"{dataset_source.MAX_PIECES_ENV}={subset['max_pieces']} " if subset else "")
        + f"tfds build tfds_builders/hmvae_notesequences --config={tfds_config}{data_flag}"
        + (f" --manual_dir={shlex.quote(manual)}" if manual else ""),
        train,
        f"hmvae export --model_dir={new_model_dir} --export_base={new_export_base}"
        + export_flags,
        card,
        evaluate,
    ]
