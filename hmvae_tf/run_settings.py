"""The settings of `hmvae train` that a resume keeps from the run before unless given again
(--checkpoint_every, --eval_batches, --dtype_policy), as it keeps the config and the seed:
`hmvae train --model_dir=m --num_steps=N` after a run with other values would otherwise move
the checkpoint grid, average val_ metrics over other batches or switch precision."""
from __future__ import annotations

# The settings, in the order notes name them.
SETTINGS = ("checkpoint_every", "eval_batches", "dtype_policy")
# A new model's settings (and those of a directory that recorded no run): the command's,
# whose "auto" picks the precision for the machine...
COMMAND_DEFAULTS = {"checkpoint_every": 500, "eval_batches": 8, "dtype_policy": "auto"}
# ...and train()'s from Python, which computes in float32 unless asked.
API_DEFAULTS = {**COMMAND_DEFAULTS, "dtype_policy": "float32"}


def setting_text(key: str, value: object) -> str:
    """How a note tells a setting's value: "a checkpoint every 500 steps", "1 validation
    batch", "products in float32"."""
    if key == "checkpoint_every":
        return "a checkpoint every step" if value == 1 else f"a checkpoint every {value} steps"
    if key == "eval_batches":
        return f"{value} validation batch{'' if value == 1 else 'es'}"
    return f"products in {value}"


def resolve(runs: list[dict], given: dict[str, object],
            defaults: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """Each of SETTINGS as `given` (None: not given); else as the last of the model
    directory's `runs` (checkpoints.read_runs) recorded it (the dtype policy it resolved to,
    so a resume on another machine keeps computing as before); else its default. Also the
    names of those taken from the record."""
    before = runs[-1] if runs else {}
    settings, kept = {}, []
    for key in SETTINGS:
        value = given.get(key)
        if value is None and before.get(key) is not None:
            value = before[key]
            kept.append(key)
        settings[key] = defaults[key] if value is None else value
    return settings, kept


def kept_note(settings: dict[str, object], kept: list[str],
              defaults: dict[str, object]) -> str | None:
    """A line naming the settings a resume kept from the run before where they are not what
    the defaults (resolved: `auto`'s precision on this machine) would have given; None when
    there are none."""
    shown = [key for key in kept if settings[key] != defaults[key]]
    if not shown:
        return None
    return ("note: as the run before (train_runs.jsonl), "
            + ", ".join(setting_text(key, settings[key]) for key in shown)
            + f"; {', '.join(f'--{key}' for key in shown)} to change")
