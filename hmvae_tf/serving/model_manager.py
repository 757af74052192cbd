"""Which SavedModels the server holds: TF Serving's ModelServerConfig, versions and polling.

A model is a base path holding numeric version directories (`saved_models/mel_2bar/1/`,
`.../2/`); the version policy (default: the newest one) says which are loaded. A poll thread
(`--file_system_poll_wait_seconds`, like TF Serving) loads versions that appear later and
unloads the ones the policy drops, so `hmvae export` to a served base path goes live.

As TF Serving's default (availability-preserving) version policy, a version the policy drops
is unloaded only once a version it wants is loaded: a new version that fails to load (a copy
still under way, a broken export) leaves the old one serving, and its load is retried
(`--max_num_load_retries` times, `--load_retry_interval_micros` apart). A base path that
cannot be listed for a moment (a folder being replaced) changes nothing.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING

import grpc
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from hmvae_tf import atomic_files
from hmvae_tf.serving.errors import ServingError, invalid_argument, not_found

if TYPE_CHECKING:
    from collections.abc import Callable

    from tensorflow_serving.apis.model_pb2 import ModelSpec

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


@dataclasses.dataclass
class ModelSource:
    """One `config { ... }` entry, with base_path resolved."""

    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = dataclasses.field(default_factory=dict)
    # Where a relative base_path was looked for and not found, for the error message.
    looked_in: tuple[str, ...] = ()

    def wanted(self, on_disk: list[int]) -> list[int]:
        """The versions on disk that the version policy says to serve, ascending."""
        if self.policy == "all":
            return sorted(on_disk)
        if self.policy == "specific":
            return sorted(v for v in on_disk if v in self.versions)
        return sorted(on_disk)[-self.num_versions:] if on_disk else []


def read_model_config(path: str, log: Callable[[str], object] | None = None
                      ) -> list[ModelSource]:
    """Parses a ModelServerConfig text proto (TF Serving's --model_config_file). log, if
    given, is told about entries that hmvae serve takes but tensorflow_model_server refuses."""
    with open(path) as f:
        text = f.read()
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"{path}: bad ModelServerConfig text proto: {err}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: needs a model_config_list (custom_model_config is not supported)")
    config_dir = os.path.dirname(os.path.abspath(path))
    sources, names = [], set()
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ValueError(f"{path}: every config needs a name and a base_path")
        if entry.name in names:
            raise ValueError(f"{path}: model {entry.name!r} is configured twice")
        names.add(entry.name)
        platform = entry.model_platform or "tensorflow"
        if not entry.model_platform and log is not None:
            log(f"warning: {path}: model {entry.name!r} has no model_platform; served as "
                "'tensorflow', but tensorflow_model_server refuses such a config (\"Illegal "
                "setting neither ModelServerConfig::model_type (deprecated) nor "
                "ModelServerConfig::model_platform\"): add model_platform: \"tensorflow\"")
        if platform != "tensorflow":
            raise ValueError(f"{path}: model {entry.name!r} has model_platform {platform!r}; "
                             "only 'tensorflow' SavedModels are served")
        base_path, looked_in = resolve_base_path(entry.base_path, config_dir)
        src = _source(entry, base_path)
        src.looked_in = looked_in
        sources.append(src)
    return sources


def write_models_config(path: str, models: dict[str, str],
                        policies: dict[str, str] | None = None,
                        labels: dict[str, dict[str, int]] | None = None) -> str:
    """Writes a TF Serving ModelServerConfig text proto serving {name: base_path};
    policies: {name: "specific { versions: 1 }"} sets a model_version_policy; labels:
    {name: {"stable": 1}} sets version_labels. The file is replaced whole (atomic_files), so
    a server starting meanwhile reads the old config or the new one, never an empty or half
    one, and a write that fails keeps the old one."""
    lines = ["model_config_list {"]
    for name, base in models.items():
        lines += ["  config {", f'    name: "{name}"', f'    base_path: "{base}"',
                  '    model_platform: "tensorflow"']
        if policies and name in policies:
            lines.append(f"    model_version_policy {{ {policies[name]} }}")
        for label, version in ((labels or {}).get(name) or {}).items():
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
        lines.append("  }")
    lines.append("}")
    return atomic_files.write_text(path, "\n".join(lines) + "\n")


def single_model_config(name: str, base_path: str) -> list[ModelSource]:
    """--model_name / --model_base_path, as TF Serving's one-model shorthand."""
    return [ModelSource(name=name, base_path=resolve_base_path(base_path, os.getcwd())[0])]


def _source(entry, base_path: str) -> ModelSource:
    src = ModelSource(name=entry.name, base_path=base_path, labels=dict(entry.version_labels))
    choice = entry.model_version_policy.WhichOneof("policy_choice")
    if choice == "all":
        src.policy = "all"
    elif choice == "specific":
        src.policy, src.versions = "specific", tuple(entry.model_version_policy.specific.versions)
        if not src.versions:
            raise ValueError(f"model {entry.name!r}: specific version policy lists no versions")
    elif choice == "latest":
        src.num_versions = max(1, entry.model_version_policy.latest.num_versions)
    return src


def resolve_base_path(base_path: str, config_dir: str) -> tuple[str, tuple[str, ...]]:
    """Absolute paths as given; relative ones against the working directory, then the
    config file's directory (TF Serving only tries the former). Also returns, for a relative
    path found in neither, the places it was looked for (for the error message)."""
    base_path = base_path.removeprefix("file://")
    if os.path.isabs(base_path):
        return base_path, ()
    candidates = tuple(os.path.abspath(os.path.join(root, base_path))
                       for root in (os.getcwd(), config_dir))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate, ()
    return os.path.abspath(base_path), candidates


def versions_on_disk(base_path: str) -> dict[int, str] | None:
    """Version -> directory name of the numeric subdirectories that hold a saved_model.pb(txt)
    (partial exports are skipped; "0007" is version 7, as in TF Serving); None when the base
    path cannot be listed, which must not read as "every version was removed"."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return None
    found: dict[int, str] = {}
    for name in sorted(names, key=len, reverse=True):  # of "7" and "007", "7" wins
        if not (name.isascii() and name.isdigit()):
            continue
        if any(os.path.isfile(os.path.join(base_path, name, f))
               for f in ("saved_model.pb", "saved_model.pbtxt")):
            found[int(name)] = name
    return dict(sorted(found.items()))


class ModelManager:
    """Holds the loaded servables of every configured model; thread-safe lookups."""

    def __init__(self, sources: list[ModelSource], load_fn: Callable[[str, int, str], object],
                 log: Callable[[str], object] = print):
        self.sources = {s.name: s for s in sources}
        self._load_fn = load_fn  # (name, version, path) -> servable
        self._log = log
        self._lock = threading.Lock()
        self._loaded: dict[str, dict[int, object]] = {s.name: {} for s in sources}
        self._states: dict[str, dict[int, int]] = {s.name: {} for s in sources}
        # (name, version) -> (failed loads, time of the last, error): retried, and reported
        # by GetModelStatus while the version is not loaded.
        self._failures: dict[tuple[str, int], tuple[int, float, str]] = {}
        self.max_load_retries = 5  # as TF Serving's --max_num_load_retries
        self.load_retry_interval = 60.0  # seconds (--load_retry_interval_micros)
        self._unlisted: set[str] = set()  # models whose base path could not be listed
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # --- loading ----------------------------------------------------------------------------
    def load_all(self, strict: bool = True, labels_may_wait: bool = False) -> None:
        """First load. strict: a missing base path or a version that fails to load is fatal.
        labels_may_wait: a version label may name a version not loaded yet (TF Serving's
        --allow_version_labels_for_unavailable_models)."""
        for src in self.sources.values():
            if strict and not os.path.isdir(src.base_path):
                where = (" or ".join(src.looked_in) + " (a relative base_path is looked up in "
                         "the working directory, then beside the config file)"
                         if src.looked_in else src.base_path)
                raise ValueError(f"model {src.name!r}: base_path does not exist: {where}")
            self._sync(src, strict)
            if not self._loaded[src.name]:
                self._log(f"warning: model {src.name!r}: no version directory with a "
                          f"saved_model.pb under {src.base_path} (policy {src.policy}); waiting")
        if not labels_may_wait:
            self._check_labels()

    def _sync(self, src: ModelSource, strict: bool = False) -> None:
        on_disk = versions_on_disk(src.base_path)
        if on_disk is None:
            if src.name not in self._unlisted and self._loaded[src.name]:
                self._log(f"warning: model {src.name!r}: cannot list {src.base_path}; "
                          "keeping the loaded versions")
            self._unlisted.add(src.name)
            return
        self._unlisted.discard(src.name)
        wanted = src.wanted(list(on_disk))
        for version in wanted:
            if version in self._loaded[src.name] or not self._may_try(src.name, version):
                continue
            path = os.path.join(src.base_path, on_disk[version])
            self._log(f"loading model {src.name} version {version} from {path}")
            try:
                servable = self._load_fn(src.name, version, path)
            except Exception as err:  # noqa: BLE001
                if strict:
                    raise ValueError(f"model {src.name!r} version {version}: cannot load "
                                     f"{path}: {err}") from err
                self._record_failure(src.name, version, path, err)
                continue
            with self._lock:
                self._loaded[src.name][version] = servable
                self._states[src.name][version] = AVAILABLE
                self._failures.pop((src.name, version), None)
            self._log(f"loaded model {src.name} version {version} from {path}: signatures "
                      + ", ".join(sorted(getattr(servable, "signature_names", ()))))
        with self._lock:
            loaded = self._loaded[src.name]
            # Availability first: drop unwanted versions only once a wanted one serves (or
            # when nothing is wanted any more: the versions were removed).
            if wanted and not any(v in loaded for v in wanted):
                return
            for version in [v for v in loaded if v not in wanted]:
                del loaded[version]
                self._states[src.name][version] = END
                self._log(f"unloaded model {src.name} version {version}")

    def _may_try(self, name: str, version: int) -> bool:
        """A version that failed to load is tried again after the retry interval, as many
        times as allowed."""
        failure = self._failures.get((name, version))
        if failure is None:
            return True
        count, last, _ = failure
        return count <= self.max_load_retries and time.monotonic() - last >= self.load_retry_interval

    def _record_failure(self, name: str, version: int, path: str, err: Exception) -> None:
        count = self._failures.get((name, version), (0, 0.0, ""))[0] + 1
        with self._lock:
            self._failures[(name, version)] = (count, time.monotonic(), f"{path}: {err}")
            self._states[name].setdefault(version, END)
        more = (f"retrying in {self.load_retry_interval:g} s" if count <= self.max_load_retries
                else "no more retries (a new version number, or a restart, loads it)")
        self._log(f"error: model {name!r} version {version}: cannot load {path} "
                  f"(attempt {count}; {more}): {err}")
        if count == 1:
            traceback.print_exc()

    def _check_labels(self) -> None:
        for src in self.sources.values():
            for label, version in src.labels.items():
                if version not in self._loaded[src.name]:
                    raise ValueError(f"model {src.name!r}: version label {label!r} points at "
                                     f"version {version}, which is not loaded")

    def start_polling(self, seconds: float) -> None:
        """Re-reads the base paths every `seconds` (<= 0: never), so new exports go live."""
        if seconds <= 0:
            return

        def loop():
            while not self._stop.wait(seconds):
                for src in self.sources.values():
                    try:
                        self._sync(src)
                    except Exception:  # noqa: BLE001 - one bad pass must not end the polling
                        self._log(f"error: model {src.name!r}: polling {src.base_path} failed")
                        traceback.print_exc()

        self._poller = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Ends the poll thread after its current pass."""
        self._stop.set()

    # --- lookups ----------------------------------------------------------------------------
    def get(self, model_spec: ModelSpec) -> tuple[object, int]:
        """The servable a ModelSpec asks for (version, version_label or the newest)."""
        name = model_spec.name
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        choice = model_spec.WhichOneof("version_choice")
        with self._lock:
            loaded = self._loaded.get(name, {})
            if choice == "version":
                version = model_spec.version.value
                if version not in loaded:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return loaded[version], version
            if choice == "version_label":
                src = self.sources.get(name)
                label = model_spec.version_label
                if src is None or label not in src.labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = src.labels[label]
                if version not in loaded:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return loaded[version], version
            if not loaded:
                raise not_found(f"Servable not found for request: Latest({name})")
            version = max(loaded)
            return loaded[version], version

    def states(self, name: str, version: int | None = None) -> list[tuple[int, int, str]]:
        """[(version, ModelVersionStatus.State, error)] as GetModelStatus reports them, newest
        first as TF Serving lists them; error is why a version that is not loaded failed to
        load ("" otherwise)."""
        with self._lock:
            states = self._states.get(name, {})
            if version is not None:
                if version not in states:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Could not find version {version} of model {name}")
                versions = [version]
            elif not states:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find any versions of model {name}")
            else:
                versions = sorted(states, reverse=True)
            return [(v, states[v], "" if v in self._loaded[name]
                     else self._failures.get((name, v), (0, 0.0, ""))[2]) for v in versions]

    def loaded(self) -> dict[str, list[int]]:
        """Model name -> versions loaded now, for the stats RPC."""
        with self._lock:
            return {name: sorted(v) for name, v in self._loaded.items()}

    def servables(self) -> list[tuple[str, int, object]]:
        """(name, version, servable) of every loaded version."""
        with self._lock:
            return [(name, version, servable) for name, versions in sorted(self._loaded.items())
                    for version, servable in sorted(versions.items())]
