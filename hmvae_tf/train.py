"""`hmvae train`: model.fit on a TFDS dataset under a tf.distribute strategy, resumable.

Training runs in checkpoint periods (Keras epochs of `--checkpoint_every` steps). After each
period the model and optimizer state are checkpointed; killing the process and running the
same command again restores the newest checkpoint and continues from its step. A run whose
loss turns NaN or infinite saves nothing from then on and ends with an error (exit 1); under
MultiWorkerMirroredStrategy a lost worker ends the others with an error naming it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hmvae_tf import arg_types, distribution, quiet_startup, run_settings, stop_signals
from hmvae_tf.progress import say

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from hmvae_tf.configs import Config

# Checkpoints a model directory keeps (the newest): the steps `hmvae evaluate --step` can pick.
KEPT_CHECKPOINTS = 3


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `hmvae train`."""
    from hmvae_tf.cli import examples

    parser.description = (
        "Train a MusicVAE config on a TFDS dataset (build it first with `tfds build`): "
        "model.fit under a tf.distribute strategy, a checkpoint every --checkpoint_every steps, "
        "TensorBoard logs and history.csv in --model_dir. Ctrl-C or SIGTERM saves a "
        "checkpoint, and the same command resumes from it.")
    parser.epilog = examples(
        "hmvae train --config=cat-mel_2bar_small --model_dir=runs/mel2 --num_steps=5000",
        "hmvae train --config=hierdec-mel_16bar --model_dir=runs/m16 "
        "--hparams=batch_size=64,z_size=128 --strategy=mirrored",
        "hmvae train --model_dir=runs/m16 --num_steps=60000    # resume, train further")
    parser.add_argument("--config", help="named config (e.g. cat-mel_2bar_small); default: "
                        "the one --model_dir already holds, which then resumes")
    parser.add_argument("--hparams", default="",
                        help="overrides of the config, e.g. "
                        "batch_size=64,enc_rnn_size=[256],z_size=128 (default: none)")
    parser.add_argument("--model_dir", required=True,
                        help="where config, checkpoints, TensorBoard logs and history go")
    parser.add_argument("--dataset", default=None,
                        help="TFDS name/config (default: the config's, e.g. "
                        "hmvae_notesequences/mel_2bar); a new model records it in its "
                        "config.json, which evaluate, card and a resume then read")
    parser.add_argument("--data_dir", type=arg_types.tfds_data_dir, default=None,
                        help=arg_types.DATA_DIR_HELP + "; its newest version of the dataset "
                        "is read")
    parser.add_argument("--num_steps", type=arg_types.int_at_least(1), default=50_000,
                        help="train until the global step reaches this")
    parser.add_argument("--checkpoint_every", type=arg_types.int_at_least(1), default=None,
                        help="steps per checkpoint period (a Keras epoch); the newest "
                        f"{KEPT_CHECKPOINTS} checkpoints are kept (hmvae evaluate --step picks "
                        "one). " + _KEPT_DEFAULT.format(
                            run_settings.COMMAND_DEFAULTS["checkpoint_every"]))
    parser.add_argument("--eval_batches", type=arg_types.int_at_least(0), default=None,
                        help="validation batches after each period (0: none). "
                        + _KEPT_DEFAULT.format(run_settings.COMMAND_DEFAULTS["eval_batches"]))
    parser.add_argument("--strategy", choices=distribution.STRATEGIES, default="default",
                        help="mirrored: all local GPUs (one replica on a machine without "
                        "one); multi_worker: MultiWorkerMirroredStrategy configured by "
                        "TF_CONFIG (every worker runs the same command; see BUILD.md). "
                        "batch_size is the global batch, split across the replicas")
    parser.add_argument("--wait_for_workers", type=arg_types.non_negative_float, default=0,
                        metavar="SECONDS",
                        help="multi_worker: how long a worker waits for the others of "
                        "TF_CONFIG to start before it gives up (default: 0, no limit). "
                        "Ctrl-C and SIGTERM stop a waiting worker (exit status 130 and 143)")
    parser.add_argument("--jit_compile", action="store_true",
                        help="compile the train step with XLA")
    parser.add_argument("--seed", type=arg_types.seed, default=None,
                        help=f"shuffle and init seed, 0..{arg_types.MAX_SEED} (default: a "
                        "resumed model's first recorded one, else a random one, shown at the "
                        "start and recorded in train_runs.jsonl). A resumed run adds its "
                        "starting step, so that it does not replay the data order of the "
                        "first steps")
    parser.add_argument("--dtype_policy", choices=("auto", "float32", "mixed_bfloat16"),
                        default=None,
                        help="mixed_bfloat16: the LSTM and decoder products run in bfloat16, "
                        "everything else (variables, states, losses) in float32: 1.3-1.8x "
                        "faster training on CPUs with AVX512_BF16 or AMX (slower elsewhere), "
                        "at float32's test accuracy (2-bar and hierarchical melody runs, "
                        "BUILD.md). auto: mixed_bfloat16 for melody models on such a CPU "
                        "without a GPU, else float32 (drum and trio models stay float32: "
                        "their bfloat16 accuracy is unmeasured). Checkpoints are the same "
                        "either way. Default: a resumed model's, the policy its last run "
                        "trained in (train_runs.jsonl), else "
                        + run_settings.COMMAND_DEFAULTS["dtype_policy"])


# The help's last sentence for the settings a resume keeps (run_settings).
_KEPT_DEFAULT = ("Default: a resumed model's, as its last run had it (train_runs.jsonl), "
                 "else {}")


def resolve_dtype_policy(name: str, config: Config) -> str:
    """`--dtype_policy` for `config` (`dtype_policy_and_note` without the note)."""
    return dtype_policy_and_note(name, config)[0]


def dtype_policy_and_note(name: str, config: Config) -> tuple[str, str]:
    """`--dtype_policy`: "auto" is mixed_bfloat16 where the CPU has bfloat16 instructions,
    training runs on it (no GPU) and bfloat16 was measured to keep `config`'s accuracy (melody
    models), else float32; other names stand, with a warning for mixed_bfloat16 where neither
    is there (emulated, slower). The note says what `auto` decided and how to change it, for
    the start-of-training line."""
    if name == "float32":
        return name, ""
    from hmvae_tf.model.lstm import gpu_available
    from hmvae_tf.model.precision import BF16_MEASURED_REPRESENTATIONS, cpu_has_bf16

    if name == "auto":
        if not cpu_has_bf16() or gpu_available():
            return "float32", ""
        if config.representation not in BF16_MEASURED_REPRESENTATIONS:
            return "float32", (f" (--dtype_policy=auto keeps {config.representation} models in "
                               "float32: their bfloat16 accuracy is unmeasured; "
                               "--dtype_policy=mixed_bfloat16 to use it)")
        return "mixed_bfloat16", " (--dtype_policy=auto; float32 with --dtype_policy=float32)"
    if not (cpu_has_bf16() or gpu_available()):
        print("warning: this CPU has no bfloat16 instructions (AVX512_BF16 or AMX); "
              "mixed_bfloat16 is emulated here and slower than float32", file=sys.stderr)
    return name, ""


def resolve_seed(runs: list[dict], seed: int | None,
                 strategy: tf.distribute.Strategy | None = None) -> tuple[int, str]:
    """The run's seed and where it comes from ("given", "recorded" or "drawn"): --seed; else
    the first seed the model directory's `runs` recorded (checkpoints.read_runs), which a
    resumed run continues (as the card's reproduce command gives it); else a new one from the
    OS's entropy, in --seed's range. Unseeded, a run could be neither reproduced nor resumed
    with the same draws.
    Workers of a multi-worker job all take the first worker's seed, so that their data
    orders agree."""
    origin = "given"
    if seed is None:
        # The first seed recorded: a directory an older version began unseeded records its
        # first drawn seed at its next resume, and the resumes after it continue that one.
        seed = next((r["seed"] for r in runs if r.get("seed") is not None), None)
        origin = "recorded"
    if seed is None:
        import secrets

        seed, origin = secrets.randbelow(arg_types.MAX_SEED + 1), "drawn"
    if strategy is not None and distribution.cluster_spec(strategy):
        seed = distribution.first_worker_value(strategy, seed)
    return seed, origin


def seed_note(seed: int, origin: str) -> str:
    """How the start-of-training line tells the seed: "seed 7", and for one not given, where
    it came from and the flag that repeats it."""
    if origin == "drawn":
        return f"seed {seed} (drawn; pass --seed={seed} to repeat)"
    if origin == "recorded":
        return f"seed {seed} (this model's, from train_runs.jsonl)"
    return f"seed {seed}"


def resolve_config(model_dir: str, name: str | None, hparams: str,
                   dataset: str | None = None) -> Config:
    """The config to train: the model directory's own when resuming, else --config. A new
    model records --dataset as its config's dataset, so that evaluate, card and a resume
    without the flag read the data it was trained on."""
    from hmvae_tf import checkpoints, configs
    from hmvae_tf.cli import CommandError
    from hmvae_tf.serving.model_args import out_dir_problem

    # Before the data and the model: a file in the way failed only when config.json was
    # written, as a bare "File exists: <path>".
    problem = out_dir_problem(model_dir, "--model_dir")
    if problem:
        raise CommandError(problem)
    saved = checkpoints.load_config(model_dir)
    if saved is None:
        orphan = checkpoints.checkpoint_step(model_dir)
        if orphan is not None:  # a new model would restore them, whatever model they hold
            raise CommandError(
                f"{model_dir} holds checkpoints (the newest of step {orphan}) but no "
                f"{checkpoints.CONFIG_FILE}, which says what model they are: put it back to "
                "resume them, or train into a new --model_dir")
        if not name:
            raise CommandError(f"{model_dir} holds no model yet: pass --config=<name> "
                               f"(one of {', '.join(configs.CONFIGS)})")
        config = configs.get_config(name, hparams)
        return dataclasses.replace(config, dataset=dataset) if dataset else config
    # --hparams alone applies to the saved config, so a change is refused, not ignored. The
    # dataset is not the model: the command that started it (its --dataset included) resumes.
    wanted = configs.get_config(name, hparams) if name else saved.override(hparams)
    if dataclasses.replace(wanted, dataset=saved.dataset) != saved:
        what = (f"not a {wanted.name} one" if wanted.name != saved.name
                else f"with other hyper-parameters ({_differences(saved, wanted)})")
        raise CommandError(
            f"{model_dir} already holds a {saved.name} model, {what}; to resume it, drop "
            "--config/--hparams; to train a new one, use a new --model_dir")
    return saved


def _differences(saved: Config, wanted: Config) -> str:
    """The hyper-parameters in which `wanted` differs from the model's `saved` config, in
    --hparams' syntax: "batch_size=8 there, 16 asked; ..." (which flag to drop or fix)."""
    from hmvae_tf.configs import hparam_text

    return "; ".join(
        f"{field.name}={hparam_text(getattr(saved, field.name))} there, "
        f"{hparam_text(getattr(wanted, field.name))} asked"
        for field in dataclasses.fields(saved)
        if field.name not in ("name", "dataset")
        and getattr(saved, field.name) != getattr(wanted, field.name))


def train(config: Config, model_dir: str, *, dataset: str | None = None,
          data_dir: str | None = None, num_steps: int = 1000,
          checkpoint_every: int | None = None, eval_batches: int | None = None,
          strategy: tf.distribute.Strategy | None = None, jit_compile: bool = False,
          seed: int | None = None, dtype_policy: str | None = None,
          train_data: tf.data.Dataset | None = None, eval_data: tf.data.Dataset | None = None,
          verbose: str | int = "auto", callbacks: Sequence[keras.callbacks.Callback] = (),
          handle_sigterm: bool = False,
          start_step: int | None = None) -> keras.callbacks.History | None:
    """Trains (or resumes) `config` in `model_dir` until the global step reaches num_steps.

    train_data / eval_data: optional ready pipelines ([B, T, K] batches) instead of TFDS.
    dtype_policy: one of `precision.POLICIES`, for this call's training only.
    checkpoint_every, eval_batches, dtype_policy: None keeps what the model directory's last
    run recorded (a resume goes on as before; a note names those not at their default),
    else 500 steps, 8 batches and float32 (`run_settings.API_DEFAULTS`: no "auto" here); a
    value given that differs from the run before is noted.
    seed: None takes `resolve_seed`'s (the model directory's first recorded seed, else a
    drawn one), recorded in train_runs.jsonl as a given seed is.
    verbose: Keras's (1: a bar, 2: a line per checkpoint period, 0: none), on stderr as
    all progress is, so that stdout keeps the results.
    callbacks: Keras callbacks of yours, run after train's own (step limit, progress, NaN
    check, logs) and before the checkpoint saver, so a period's checkpoint follows them all.
    handle_sigterm: while fit runs, SIGTERM stops it as Ctrl-C does: the step reached is
    saved and stop_signals.Terminated raised; the earlier handler is back on return. Off by
    default, so that a call from a program of yours leaves the process's signals alone;
    `hmvae train` (`run`) takes SIGTERM itself around the whole call and its final print.
    start_step: the step of the model directory's newest checkpoint (0: none) where the
    caller has read it already (`hmvae train`, for its start line), so that both go by one
    read; None reads it here. It moves the seed on; training goes on from the step restored.
    At or past num_steps there is nothing to do: train() says so and returns before it loads
    the data or builds the model (a finished model needs no dataset on the machine).
    Returns the Keras History of this run (None if there was nothing left to do).
    """
    import keras
    import tensorflow as tf

    from hmvae_tf import checkpoints, data
    from hmvae_tf.model import precision
    from hmvae_tf.model.vae import MusicVAE

    strategy = strategy or tf.distribute.get_strategy()
    runs = checkpoints.read_runs(model_dir)  # the earlier runs: read once, for all below
    settings, kept = run_settings.resolve(
        runs, {"checkpoint_every": checkpoint_every, "eval_batches": eval_batches,
               "dtype_policy": dtype_policy}, run_settings.API_DEFAULTS)
    checkpoint_every, eval_batches, dtype_policy = (
        settings["checkpoint_every"], settings["eval_batches"], settings["dtype_policy"])
    dataset_version = None
    is_chief, worker = distribution.task_info(strategy)
    if start_step is None:
        start_step = checkpoints.checkpoint_step(model_dir) or 0
    distribution.check_workers_agree(strategy, start_step, model_dir,
                         job=f"{config.to_json()} {num_steps} {checkpoint_every}")
    # Before the data: a finished model on a machine without its dataset has nothing to load.
    if start_step >= num_steps:
        say(_nothing_to_do(model_dir, start_step, num_steps))
        return None
    if seed is None:
        seed = resolve_seed(runs, None, strategy)[0]
    seed_flag = seed
    # A resumed run continues with new draws: the same seed again would replay the data
    # order (and noise) of the run's first steps.
    seed += start_step
    keras.utils.set_random_seed(seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        from hmvae_tf.configs import ConfigError

        # Keras would fail in its first step with an AddN shape error between replicas.
        raise ConfigError(
            f"batch_size={config.batch_size} is the global batch, which must split evenly "
            f"across the {replicas} replicas: give a multiple of {replicas}")
    read_from = dataset or config.dataset  # the name the notes and the run record give
    # The data first: a dataset that is not there must not leave a half-made model directory.
    if train_data is None:
        train_data = data.dataset_for(config, "train", data_dir, config.batch_size,
                                      training=True, dataset=dataset, seed=seed)
        dataset_version = data.prepared_version(read_from, data_dir)
        for note in (data.build_line(read_from, data_dir),
                     data.version_note(read_from, dataset_version, data_dir),
                     data.subset_note(read_from, data_dir)):
            if note:
                say(note)
        if eval_data is None and eval_batches:
            try:
                eval_data = data.dataset_for(config, "validation", data_dir, config.batch_size,
                                             training=False, dataset=dataset)
            except data.SplitNotFoundError:  # no validation split (e.g. a tiny dataset)
                say(f"{read_from} has no validation split: training without validation")
                eval_data = None
            else:  # the split's short last batch is left out before the count is taken
                eval_data = distribution.shared_evenly(eval_data, replicas).take(eval_batches)
                if replicas > 1 and not any(True for _ in eval_data.take(1)):
                    say(f"{read_from}'s validation split holds less than "
                        f"one batch of {config.batch_size} windows, and not a number that "
                        f"splits evenly across the {replicas} replicas: training without "
                        "validation")
                    eval_data = None

    period = min(checkpoint_every, num_steps)
    saver = checkpoints.CheckpointSaver(model_dir, max_to_keep=KEPT_CHECKPOINTS,
                                        is_chief=is_chief, worker_index=worker, every=period)
    with strategy.scope():
        model = MusicVAE(config)
        model.build()
        model.compile_for_training(jit_compile=jit_compile)
        saver.set_model(model)
        saver.attach(model)  # creates the optimizer's variables: inside the scope
        step = saver.restore()
    if is_chief:  # once the model is built: a config it cannot build leaves no model directory
        checkpoints.save_config(model_dir, config)
    if step >= num_steps:  # a start_step the caller read before a newer checkpoint came
        say(_nothing_to_do(model_dir, step, num_steps))
        return None
    run_record = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # --checkpoint_every as given (a resume keeps it): the period is min(it, num_steps).
        "start_step": step, "num_steps": num_steps, "checkpoint_every": checkpoint_every,
        "seed": seed_flag, "dtype_policy": dtype_policy, "jit_compile": jit_compile,
        "eval_batches": eval_batches, "replicas": strategy.num_replicas_in_sync,
        "dataset": read_from, "dataset_version": dataset_version}
    notes = [run_settings.kept_note(settings, kept, run_settings.API_DEFAULTS)]
    if step:
        say(f"resuming {config.name} in {model_dir} from step {step}")
        notes += [_dataset_change(model_dir, runs, read_from,
                                  dataset_version),
                  _settings_change(runs, run_record)]
    for note in notes:
        if note:
            say(note)
    if not is_chief:  # the same metrics as the chief's, so one progress bar is enough
        say(f"worker {worker}: training; the chief shows the progress and writes {model_dir}")
        verbose = 0

    if is_chief:
        checkpoints.record_run(model_dir, run_record)
    epochs = math.ceil(num_steps / period)
    progbar = checkpoints.StepProgbar(num_steps)
    ours = [checkpoints.StopAtStep(num_steps), progbar, keras.callbacks.TerminateOnNaN()]
    history_csv = checkpoints.HistoryCSV(model_dir) if is_chief else None
    if is_chief:
        ours += [
            checkpoints.StepTensorBoard(os.path.join(model_dir, "logs"), update_freq="epoch"),
            history_csv,
        ]
    # The saver last, after the user's callbacks too: a period's checkpoint follows its logs
    # (CheckpointSaver).
    all_callbacks = [*ours, *callbacks, saver]
    quiet_startup.start_xla()  # XLA's start-up lines, kept out of the first step's output
    # The save on the way out is inside too: a second SIGTERM there is a Terminated as well.
    with (stop_signals.sigterm_as_interrupt() if handle_sigterm
          else contextlib.nullcontext()):
        try:
            with precision.policy(dtype_policy):  # fit traces the train and eval steps
                history = model.fit(train_data, epochs=epochs, initial_epoch=step // period,
                                    steps_per_epoch=period, validation_data=eval_data,
                                    callbacks=all_callbacks, verbose=verbose,
                                    shuffle=False)  # the pipeline shuffles; Keras would warn
        except KeyboardInterrupt:
            # The stop's lines start on their own line after the bar redrawn in place (a
            # terminal's), not after a blank one in a log's line-per-period progress.
            if progbar.mid_line:
                print(file=sys.stderr)
            # The interrupt lands between steps, so the state is a consistent step to keep.
            if saver.save_if_sound() and saver.is_chief:  # others save to a scratch folder
                print(f"saved a checkpoint at step {saver.model_step()}", file=sys.stderr)
                history_csv.log_stopped_epoch()
            raise
        except checkpoints.CheckpointWriteError as err:
            kept = checkpoints.checkpoint_step(model_dir)
            raise TrainingStopped(
                f"cannot write the checkpoint of step {saver.model_step()} in {err.filename}: "
                f"{err.strerror}; training stopped, "
                + (f"and the newest checkpoint (step {kept}) is kept: the same command "
                   "resumes from it once the folder can be written" if kept else
                   "and no checkpoint had been saved before")) from None
        except Exception as err:  # noqa: BLE001 - only a lost worker becomes a one-line error
            lost = distribution.lost_peers(strategy, err)
            if lost is None:
                raise
            kept = checkpoints.checkpoint_step(model_dir)
            raise WorkerLostError(
                f"lost contact with {lost} of the multi-worker job ({type(err).__name__}); "
                "restart every worker with the same command to resume from "
                + (f"the newest checkpoint (step {kept})" if kept else "the start")) from None
    if saver.diverged_at is not None:
        kept = checkpoints.checkpoint_step(model_dir)
        raise TrainingDivergedError(
            f"the loss became NaN or infinite at step {saver.diverged_at}; training stopped "
            "and saved nothing from then on, "
            + (f"so the newest checkpoint (step {kept}) is from before it and the same "
               "command resumes there (with a new data order: the seed moves on with the step)"
               if kept else "and no checkpoint had been saved before")
            + ". If it diverges again, train a new --model_dir with a lower "
            "--hparams=learning_rate (or clip_norm), or check the data")
    return history


def _nothing_to_do(model_dir: str, step: int, num_steps: int) -> str:
    """What train() says when the model directory is already at --num_steps."""
    return f"{model_dir} is already at step {step} >= --num_steps={num_steps}; nothing to do"


def _dataset_change(model_dir: str, runs: list[dict], dataset: str,
                    version: str | None) -> str | None:
    """A line when a resumed run reads data the earlier `runs` of model_dir did not: another
    version of its dataset (a data_dir rebuilt after an update) or another dataset (a
    --dataset given at the resume). The model then goes on with other windows, which its card
    tells only afterwards."""
    earlier = sorted({(r.get("dataset") or dataset, r["dataset_version"])
                      for r in runs if r.get("dataset_version")})
    if version is None or not earlier or (dataset, version) in earlier:
        return None
    if all(name == dataset for name, _ in earlier):
        return (f"note: the earlier runs of {model_dir} read {dataset} version "
                f"{', '.join(v for _, v in earlier)}; this run reads version {version}")
    return (f"note: the earlier runs of {model_dir} read "
            f"{', '.join(f'{name} version {v}' for name, v in earlier)}; this run reads "
            f"{dataset} version {version}")


def _settings_change(runs: list[dict], run: dict) -> str | None:
    """A line when a resumed run checkpoints, validates or computes otherwise than the last
    of the earlier `runs` (--checkpoint_every, --eval_batches or --dtype_policy given with
    another value; without them a resume keeps the run before's, `run_settings`): otherwise
    the change shows only as a shift in history.csv and TensorBoard (other steps, val_
    metrics over other batches)."""
    before = runs[-1] if runs else {}
    changes = [f"{run_settings.setting_text(key, run[key])} (the run before: {before[key]})"
               for key in run_settings.SETTINGS
               if before.get(key) is not None and before[key] != run[key]]
    if not changes:
        return None
    return (f"note: this run has {', '.join(changes)}, as given; a resume without "
            "--checkpoint_every, --eval_batches or --dtype_policy keeps the run before's")


def stopped_line(model_dir: str) -> str:
    """What `hmvae train` says, on stderr, when Ctrl-C or SIGTERM stopped it: where the same
    command goes on from, which is the step train() saved on the way out, or the start when
    the stop came before the first checkpoint (while the data or the model was loading)."""
    from hmvae_tf import checkpoints

    kept = checkpoints.checkpoint_step(model_dir)
    if kept is None:
        return "stopped before the first checkpoint; rerun the same command to start again"
    return (f"stopped; the newest checkpoint (step {kept}) is kept: rerun the same command to "
            "resume from it")


class TrainingStopped(RuntimeError):
    """Training could not go on; the message says why and where a rerun resumes."""


class TrainingDivergedError(TrainingStopped):
    """The loss or the weights stopped being finite; the newest checkpoint predates it."""


class WorkerLostError(TrainingStopped):
    """A worker of a multi-worker job died or became unreachable."""


def run(args: argparse.Namespace) -> int:
    """`hmvae train`: trains or resumes, then prints the final metrics; exit status."""
    # First: multi-worker must precede other TF work.
    strategy = distribution.make_strategy(args.strategy, args.wait_for_workers or None)
    config = resolve_config(args.model_dir, args.config, args.hparams, args.dataset)
    from hmvae_tf import checkpoints

    # For the start line; train() reads them again for its notes on a resume.
    runs = checkpoints.read_runs(args.model_dir)
    settings, kept = run_settings.resolve(
        runs, {"checkpoint_every": args.checkpoint_every, "eval_batches": args.eval_batches,
               "dtype_policy": args.dtype_policy},
        run_settings.COMMAND_DEFAULTS)
    dtype_policy, note = dtype_policy_and_note(settings["dtype_policy"], config)
    seed, origin = resolve_seed(runs, args.seed, strategy)
    start_step = checkpoints.checkpoint_step(args.model_dir) or 0
    # What it is about to do, with the progress and the notes on stderr: stdout keeps the
    # final metrics (`hmvae train ... > metrics.txt`).
    replicas = strategy.num_replicas_in_sync
    say(f"training {config.name} in {args.model_dir} on "
        f"{args.dataset or config.dataset} with {replicas} replica{'' if replicas == 1 else 's'}, "
        f"products in {dtype_policy}{note}"
        # Already at --num_steps, no step draws: a seed said there (a drawn one with "pass
        # --seed to repeat") would tell of a run that does not happen.
        + ("" if start_step >= args.num_steps
           else f", {seed_note(seed, origin)}"))
    # Said where the defaults would have given otherwise (auto: as resolved here).
    kept_note = run_settings.kept_note(
        settings, kept, {**run_settings.COMMAND_DEFAULTS,
         "dtype_policy": resolve_dtype_policy(run_settings.COMMAND_DEFAULTS["dtype_policy"],
                                              config)})
    if kept_note and start_step < args.num_steps:
        say(kept_note)
    # SIGTERM stops the command as Ctrl-C does from here to its end, not only during fit
    # (train's handle_sigterm): train() puts the earlier handler back when it returns, so a
    # SIGTERM while the final metrics were printed killed the process outright, its buffered
    # output lost. The multi-worker start-up above stays killable by SIGTERM.
    with stop_signals.sigterm_as_interrupt():
        try:
            history = train(config, args.model_dir, dataset=args.dataset,
                            data_dir=args.data_dir, num_steps=args.num_steps,
                            checkpoint_every=settings["checkpoint_every"],
                            eval_batches=settings["eval_batches"], strategy=strategy,
                            jit_compile=args.jit_compile, seed=seed,
                            dtype_policy=dtype_policy, start_step=start_step,
                            # The progress goes to stderr (StepProgbar): a bar where
                            # that is a terminal, one line per period in a log.
                            verbose=1 if sys.stderr.isatty() else 2)
        except KeyboardInterrupt as stop:
            print(stopped_line(args.model_dir), file=sys.stderr)
            return stop_signals.exit_status(stop)
        except TrainingStopped as err:
            print(f"hmvae train: error: {err}", file=sys.stderr)
            return 1

        if history is not None and history.history:
            last = {k: float(f"{float(v[-1]):.4g}") for k, v in history.history.items()}
            print("final metrics:", json.dumps(last))
        return 0
