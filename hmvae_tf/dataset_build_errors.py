"""Why a dataset build stopped, when the user can put it right (a --manual_dir that gives no
window, a missing folder, a data_dir built from another folder): shown as one line by
`tfds build`, raised as an ordinary exception to a Python caller.

`tfds build` runs under absl's `app.run`, which ends in a Python traceback for any exception
but absl's `app.UsageError`: that one it prints after a "USAGE: tfds [flags]" line, and exits
with status 1 (absl's documented way for a program's main to refuse its input). So these
errors are `UsageError`s too, and stay `ValueError` / `FileNotFoundError` for
`builder.download_and_prepare()` and `tfds.load` callers, which catch them as before. No
`sys.exit` in the builder: a Python caller gets the exception, never an exiting process.
"""
from __future__ import annotations

from absl import app


class BuildInputError(app.UsageError, ValueError):
    """The source gives nothing to build (no MIDI file, no window in the train split, a
    config that needs --manual_dir), or the data_dir holds a build of another source."""


class BuildInputMissingError(app.UsageError, FileNotFoundError):
    """Something the build reads is missing: the --manual_dir folder (or it is empty), or
    abc2midi for the embedded corpus."""
