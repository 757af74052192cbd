"""Client library: one MusicVAE interface over TF Serving's gRPC API or an in-process SavedModel.

    from hmvae_tf.serving.client import MusicVAEClient
    vae = MusicVAEClient.connect(server="localhost:8500", model="mel_2bar")   # gRPC
    vae = MusicVAEClient.connect(saved_model="saved_models/mel_2bar/1")      # in-process
    vae = MusicVAEClient.connect(saved_model="saved_models/mel_16bar", version=1)
    tokens = vae.sample(4, temperature=0.5, seed=0)          # int32 [4, T] (or [4, T, tracks])
    z, mu, sigma = vae.encode(tokens)
    steps = vae.interpolate(tokens[0], tokens[1], num_steps=8)

The client learns the model's tracks, steps T and latent size Z from the signatures (the inputs
of `encode`), so it works with any model that has the serving contract of BUILD.md. Tokens of a
one-track model are [B, T]; a multi-track model's are [B, T, tracks] in `client.tracks` order
(melody, bass, drums). Row i of a call with seed s uses the per-row seed (s, i), so results are
reproducible and do not depend on how rows are chunked into requests or batched by a server;
seeds are 0 .. 2**31 - 1, as they travel as int32. A misused call (a string or a NoteSequence
where tokens are due, ragged lists, a float count or seed) is a ClientError that names the
argument, as is any call on a closed client.
MIDI <-> tokens is not here (see music_adapter.py): this module speaks tokens and latents only.
Where the model runs is client_backends.py (gRPC or in-process), the checks a server makes of
a signature's inputs signature_inputs.py, and ClientError client_errors.py.
"""
from __future__ import annotations

import math
import numbers
import operator
import os
import re
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import numpy as np

from hmvae_tf.arg_types import MAX_SEED
from hmvae_tf.configs import TRACK_CLASSES
from hmvae_tf.export_options import SIGNATURES, resolve_saved_model
from hmvae_tf.progress import Progress
from hmvae_tf.serving.client_backends import Backend, GrpcBackend, SavedModelBackend
from hmvae_tf.serving.client_errors import ClientError, invalid_argument
from hmvae_tf.serving.signature_inputs import conform_inputs

if TYPE_CHECKING:
    import numpy.typing as npt


# Where a NoteSequence or a MIDI file's path becomes tokens, for the message that refuses one.
_TOKENS_FROM_MUSIC = ("hmvae_tf.serving.music_adapter.representation_for(client.tracks)"
                      ".from_note_sequence(ns_or_midi_path, num_bars) makes them from music")


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum]: a count or a seed of a public call. A float,
    a string or a bool is refused (ClientError naming the argument), not truncated or
    compared with an int deep inside."""
    number = None
    if not isinstance(value, bool):
        try:
            number = operator.index(value)
        except TypeError:
            pass
    if number is None or number < minimum or (maximum is not None and number > maximum):
        span = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise invalid_argument(f"{name} must be an integer {span}, got {value!r}")
    return number


def _numeric_array(name: str, value: object, wanted: str, hint: str = "") -> np.ndarray:
    """np.asarray(value) for an argument that must hold numbers (`wanted` says which, for the
    message): a string, a path, a protobuf message (a NoteSequence), ragged nested lists or
    an array of anything but numbers is a ClientError naming the argument, not a numpy
    error or an array of shape []. hint: appended to the message for a string, path or
    message, which say the caller has music where numbers are due."""
    if isinstance(value, (str, bytes, os.PathLike)) or hasattr(value, "SerializeToString"):
        raise invalid_argument(f"{name} must be {wanted}, got a {type(value).__name__}"
                               + (f"; {hint}" if hint else ""))
    try:
        array = np.asarray(value)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise invalid_argument(f"{name} must be {wanted}, got nested sequences of different "
                               "lengths") from None
    if array.dtype.kind not in "biuf":
        got = (f"an array of {array.dtype.name}" if isinstance(value, np.ndarray)
               else "None" if value is None
               else f"a {type(value).__name__}" if array.ndim == 0
               else f"a {type(value).__name__} holding {array.dtype.name} values")
        raise invalid_argument(f"{name} must be {wanted}, got {got}")
    return array


def order_tracks(names: Iterable[str]) -> tuple[str, ...]:
    """Track names in the canonical order (melody, bass, drums), unknown ones after."""
    known = list(TRACK_CLASSES)
    return tuple(sorted(names, key=lambda n: (known.index(n) if n in known else len(known), n)))


def row_seeds(seed: int, n: int, start: int = 0) -> np.ndarray:
    """int32 [n, 2]: row i gets (seed, start + i), the convention of
    `model.sampling.row_seeds`, so that a served call and a Python one draw alike. Written
    twice on purpose: this client must not import TensorFlow (seconds at every start), and
    that one counts its rows in the model's graphs, where the batch size is a tensor
    (test_model checks that the two agree)."""
    rows = np.empty((n, 2), np.int32)
    rows[:, 0] = np.int64(seed) % (2 ** 31)
    rows[:, 1] = np.arange(start, start + n) % (2 ** 31)
    return rows


def _rows(arrays: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values())))


def _chunk(arrays: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: v[start:stop] for k, v in arrays.items()}


def _full(value: np.float32, start: int, stop: int) -> np.ndarray:
    """A chunk's per-row copies of a scalar input (temperature)."""
    return np.full([stop - start], value, np.float32)


def _connect_arguments_problem(server: object, model: object, saved_model: object,
                               version: object, timeout: object, batch_size: object) -> str | None:
    """What is wrong with the types or values of `MusicVAEClient.connect`'s arguments, or None:
    checked before a channel opens, as they failed later as bare TypeErrors and
    AttributeErrors (a port number as the server, a float version, a string timeout), or not
    at all (a timeout <= 0 became a DEADLINE_EXCEEDED of every call)."""
    if server is not None and not isinstance(server, str):
        return f"server must be a string, host:port, got {server!r}"
    if model is not None and not isinstance(model, str):
        return f"model must be the model's name (a string), got {model!r}"
    if saved_model is not None and not isinstance(saved_model, (str, os.PathLike)):
        return f"saved_model must be a directory path, got {saved_model!r}"
    if version is not None and not (isinstance(version, str) and version.strip()):
        if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 0:
            return (f"version must be a version number >= 0 or a version label (a string), "
                    f"got {version!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, numbers.Real) or not 0 < timeout < math.inf):
        return f"timeout must be a number of seconds > 0 (or None: no limit), got {timeout!r}"
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
            batch_size < 1:
        return f"batch_size must be an integer >= 1, got {batch_size!r}"
    return None


# What a signature's progress line calls the work and its rows.
_PROGRESS_WORDS = {"sample": ("sampling", "sequence"), "encode": ("encoding", "window"),
                   "decode": ("decoding", "sequence"), "reconstruct": ("reconstructing", "window"),
                   "interpolate": ("interpolating", "step")}


class MusicVAEClient:
    """MusicVAE's inference API (sample, encode, decode, reconstruct, interpolate) on a backend."""

    def __init__(self, backend: Backend, batch_size: int = 64):
        self.backend = backend
        self.batch_size = batch_size
        # True: a call of several chunks shows how far it is on stderr (hmvae_tf.progress), as
        # the commands want; off for a library's callers, who print what they choose.
        self.progress = False
        self._closed = False
        missing = [s for s in SIGNATURES if s not in backend.inputs]
        if missing:
            raise ClientError(f"{backend.description}: model lacks the signatures "
                              f"{', '.join(missing)} of the serving contract (has "
                              f"{', '.join(sorted(backend.inputs)) or 'none'})")
        enc = backend.inputs["encode"]
        self.tracks = order_tracks(k for k in enc if k != "seed")
        if not self.tracks:
            raise ClientError(f"{backend.description}: the encode signature has no token inputs")
        shape = enc[self.tracks[0]].shape
        if not shape or len(shape) != 2 or shape[1] is None:
            raise ClientError(f"{backend.description}: token input {self.tracks[0]!r} of encode "
                              f"has shape {shape}; the contract says [B, T] with a fixed T")
        self.num_steps = shape[1]
        zshape = backend.inputs["decode"]["z"].shape
        self.z_size = zshape[1] if zshape and len(zshape) == 2 else None

    @classmethod
    def connect(cls, server: str | None = None, model: str | None = None,
                saved_model: str | None = None, version: int | str | None = None,
                timeout: float = 60.0, batch_size: int = 64,
                wait_for_ready: bool = False) -> "MusicVAEClient":
        """gRPC when `server` (host:port) and `model` are given, else in-process `saved_model`:
        a SavedModel version directory, or an export base (its newest version directory).

        version: a number, a version label the server's config defines (e.g. "stable"), or
        None for the newest; in-process, a number picks the version directory under an
        export base (a label is refused: only a server's config defines labels).
        wait_for_ready: calls (the metadata read here included) wait up to `timeout` for a
        server that is not up yet, or restarting, instead of failing at once with
        UNAVAILABLE: for an app started beside its server."""
        problem = _connect_arguments_problem(server, model, saved_model, version, timeout,
                                             batch_size)
        if problem:
            raise ClientError(problem)
        if bool(server) == bool(saved_model):
            raise ClientError("give either a server (host:port) with a model name, or a "
                              "SavedModel directory")
        if server:
            if not model:
                raise ClientError("a model name is needed with a server address")
            scheme = re.match(r"(https?|grpcs?)://", server, re.IGNORECASE)
            if scheme:  # gRPC would look up "http://host:port" as a host name
                raise ClientError(f"the server address is host:port, without {scheme[0]} (this "
                                  f"client speaks gRPC, TF Serving's default port 8500): "
                                  f"{server[scheme.end():]!r}, not {server!r}")
            if not server.startswith("unix:") and not re.search(r":\d+$", server):
                # gRPC would quietly try port 443.
                raise ClientError(f"the server address needs a port, host:port (TF Serving's "
                                  f"gRPC default is 8500), not {server!r}")
            return cls(GrpcBackend(server, model, version, timeout, wait_for_ready), batch_size)
        if isinstance(version, str):
            raise ClientError(f"version={version!r} is a version label, which only a server's "
                              "model config defines; in-process, give a version number")
        try:  # as --saved_model and --model_version: the version was ignored here
            path = resolve_saved_model(os.fspath(saved_model), version)
        except FileNotFoundError as err:
            raise ClientError(str(err)) from None
        return cls(SavedModelBackend(path), batch_size)

    @property
    def description(self) -> str:
        """Where the model runs (server and version, or SavedModel path), for messages."""
        return self.backend.description

    def close(self) -> None:
        """Releases the backend's channel or session; later calls raise a ClientError."""
        if not self._closed:
            self._closed = True
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- tokens <-> per-track tensors ---------------------------------------------------------
    def split_tracks(self, tokens: npt.ArrayLike, suffix: str = "", name: str = "tokens"
                     ) -> dict[str, np.ndarray]:
        """[B, T] or [B, T, tracks] -> {track+suffix: int32 [B, T]}; checks type, shape and
        range, and says what is wrong with the argument `name`."""
        want = 2 if len(self.tracks) == 1 else 3
        one = ", ".join(map(str, [self.num_steps, len(self.tracks)][:want - 1]))
        tokens = _numeric_array(name, tokens, f"integer class ids [B, {one}] (or one sequence "
                                f"[{one}])", hint=_TOKENS_FROM_MUSIC)
        if tokens.ndim == want - 1:
            tokens = tokens[None]
        if tokens.ndim != want or tokens.shape[1] != self.num_steps or (
                want == 3 and tokens.shape[2] != len(self.tracks)):
            layout = "[B, T]" if want == 2 else f"[B, T, {len(self.tracks)}]"
            raise invalid_argument(f"{name} of shape {list(tokens.shape)} do not fit this model: "
                                   f"it takes {layout} with T = {self.num_steps}")
        if not len(tokens):
            raise invalid_argument(f"{name} hold no sequence (shape {list(tokens.shape)})")
        if tokens.dtype.kind == "f" and not np.array_equal(tokens, np.round(tokens)):
            # astype(int32) would truncate 61.7 to 61 (and NaN to anything) without a word.
            raise invalid_argument(f"{name} must be integer class ids, got {tokens.dtype.name} "
                                   "values that are not whole numbers")
        per_track = [tokens] if want == 2 else [tokens[..., i] for i in range(len(self.tracks))]
        out = {}
        for track, values in zip(self.tracks, per_track):
            classes = TRACK_CLASSES.get(track)
            if classes and (values.min(initial=0) < 0 or values.max(initial=0) >= classes):
                raise invalid_argument(f"{track} tokens must be in [0, {classes}); got values "
                               f"{values.min()}..{values.max()}")
            out[track + suffix] = values.astype(np.int32)
        return out

    def join_tracks(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Per-track outputs -> tokens [B, T] or [B, T, tracks], the layout split_tracks takes."""
        if len(self.tracks) == 1:
            return outputs[self.tracks[0]]
        return np.stack([outputs[t] for t in self.tracks], axis=-1)

    def _run(self, signature: str, n: int,
             chunk_inputs: Callable[[int, int], dict[str, np.ndarray]], seed: int,
             same_seed: bool = False) -> dict[str, np.ndarray]:
        """Runs rows 0 .. n - 1 in chunks of batch_size rows with per-row seeds (seed, row) or,
        with same_seed, (seed, 0) for every row; concatenates the outputs. chunk_inputs(start,
        stop) makes a chunk's inputs when it is sent, so a call holds one chunk's inputs at a
        time: sample(10**9) built a 4 GB temperature array before its first request."""
        seed = _check_int("seed", seed, 0, MAX_SEED)  # int32 on the wire: larger ones alias
        parts = []
        what, unit = _PROGRESS_WORDS.get(signature, (signature, "row"))
        with Progress(n, what, unit, enabled=self.progress and n > self.batch_size) as shown:
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                chunk = chunk_inputs(start, stop)
                chunk["seed"] = (np.repeat(row_seeds(seed, 1), stop - start, axis=0)
                                 if same_seed else row_seeds(seed, stop - start, start))
                parts.append(self._send(signature, chunk))
                shown.update(stop - start)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _send(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """backend.run, unless the client is closed: a closed gRPC channel raised a bare
        ValueError, a closed session a message about TensorFlow sessions."""
        if self._closed:
            raise ClientError(f"{self.description}: this client is closed (close() was called "
                              "or its with block ended); connect again")
        return self.backend.run(signature, inputs)

    @staticmethod
    def _temperature(temperature: float) -> np.float32:
        # The rule of the commands' --temperature (arg_types.non_negative_float): infinity
        # went to the model, which the CLI refuses.
        value = None if isinstance(temperature, (str, bytes)) else np.asarray(temperature)
        if value is None or value.ndim or value.dtype.kind not in "iuf" or \
                not 0 <= value < math.inf:  # NaN too
            raise invalid_argument(f"temperature must be a finite number >= 0 (0 = argmax), got "
                                   f"{temperature!r}")
        return np.float32(value)

    # --- MusicVAE's API -------------------------------------------------------------------------
    def sample(self, n: int, temperature: float = 0.5, seed: int = 0, return_z: bool = False
               ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """n new sequences from the prior: tokens [n, T(, tracks)] (and z [n, Z])."""
        n = _check_int("n", n, 1)
        t = self._temperature(temperature)
        out = self._run("sample", n, lambda start, stop: {"temperature": _full(t, start, stop)},
                        seed)
        tokens = self.join_tracks(out)
        return (tokens, out["z"]) if return_z else tokens

    def encode(self, tokens: npt.ArrayLike, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, mu, sigma), each float32 [B, Z]; z is a sample of q(z|x) with the row's seed."""
        inputs = self.split_tracks(tokens)
        out = self._run("encode", _rows(inputs), lambda start, stop: _chunk(inputs, start, stop),
                        seed)
        return out["z"], out["mu"], out["sigma"]

    def decode(self, z: npt.ArrayLike, temperature: float = 0.5, seed: int = 0) -> np.ndarray:
        """Tokens for latents z [B, Z] (or one [Z]), each row sampled with its own seed."""
        z = _numeric_array("z", z, f"latent vectors [B, {self.z_size}] (or one "
                                   f"[{self.z_size}])").astype(np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or (self.z_size and z.shape[1] != self.z_size):
            raise invalid_argument(f"z of shape {list(z.shape)} does not fit: the model takes "
                                   f"[B, {self.z_size}]")
        if not len(z):
            raise invalid_argument(f"z holds no latent vector (shape {list(z.shape)})")
        if not np.isfinite(z).all():  # the decoder turns NaN into silence without a word
            raise invalid_argument("z must be finite; it holds NaN or infinite values")
        t = self._temperature(temperature)
        out = self._run("decode", len(z), lambda start, stop: {
            "z": z[start:stop], "temperature": _full(t, start, stop)}, seed)
        return self.join_tracks(out)

    def reconstruct(self, tokens: npt.ArrayLike, temperature: float = 0.5, seed: int = 0
                    ) -> np.ndarray:
        """Each sequence decoded from its posterior mean: what the model keeps of an input."""
        inputs = self.split_tracks(tokens)
        t = self._temperature(temperature)
        out = self._run("reconstruct", _rows(inputs), lambda start, stop: {
            **_chunk(inputs, start, stop), "temperature": _full(t, start, stop)}, seed)
        return self.join_tracks(out)

    def interpolate(self, tokens_a: npt.ArrayLike, tokens_b: npt.ArrayLike, num_steps: int = 8,
                    temperature: float = 0.5,
                    seed: int = 0) -> np.ndarray:
        """num_steps sequences decoded along slerp(mu_a, mu_b, alpha), alpha = linspace(0, 1):
        the first and last are reconstructions of a and b. One sequence in, tokens
        [num_steps, T(, tracks)] out. Every step uses the same seed, so the sampling noise
        is shared and the steps change only as z does."""
        num_steps = _check_int("num_steps", num_steps, 2)
        a = self.split_tracks(tokens_a, "_a", name="tokens_a")
        b = self.split_tracks(tokens_b, "_b", name="tokens_b")
        if any(len(v) != 1 for v in (*a.values(), *b.values())):
            raise invalid_argument("interpolate takes one sequence for each end: tokens_a and "
                                   "tokens_b of one row each")
        t = self._temperature(temperature)

        def steps(start: int, stop: int) -> dict[str, np.ndarray]:
            # alpha: np.linspace(0, 1, num_steps)'s values (the same float32s), a chunk at a time.
            return {**{k: np.repeat(v, stop - start, axis=0) for k, v in {**a, **b}.items()},
                    "alpha": (np.arange(start, stop) / (num_steps - 1)).astype(np.float32),
                    "temperature": _full(t, start, stop)}

        return self.join_tracks(self._run("interpolate", num_steps, steps, seed, same_seed=True))

    def call(self, signature: str, **inputs: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Any signature with explicit inputs (seed included), for what the helpers don't cover.
        Plain Python lists are fine: they are cast to the signature's dtypes where that loses
        nothing (`conform_inputs`), on either backend."""
        return self._send(signature, conform_inputs(signature, inputs, self.backend.inputs))
