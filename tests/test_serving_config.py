"""TF Serving's ModelServerConfig as `hmvae serve` reads it, and version selection (no server)."""
from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from tensorflow_serving.apis import model_pb2

from hmvae_tf.serving.errors import ServingError
from hmvae_tf.serving.model_manager import (AVAILABLE, ModelManager, read_model_config,
                                             versions_on_disk, write_models_config)


def make_versions(base, versions, partial=()):
    for v in versions:
        os.makedirs(base / str(v), exist_ok=True)
        (base / str(v) / "saved_model.pb").write_bytes(b"")
    for v in partial:  # an export still being written: no saved_model.pb yet
        os.makedirs(base / str(v), exist_ok=True)
    os.makedirs(base / "not_a_version", exist_ok=True)


def test_read_model_config_policies_and_relative_paths(tmp_path, monkeypatch):
    models = tmp_path / "saved_models"
    make_versions(models / "mel_2bar", [1, 3, 10], partial=[11])
    config = models / "models.config"
    config.write_text("""
        model_config_list {
          config { name: "mel_2bar" base_path: "mel_2bar" model_platform: "tensorflow" }
          config { name: "two" base_path: "mel_2bar"
                   model_version_policy { latest { num_versions: 2 } } }
          config { name: "pinned" base_path: "mel_2bar"
                   model_version_policy { specific { versions: 1 versions: 7 } }
                   version_labels { key: "stable" value: 1 } }
          config { name: "all" base_path: "%s" model_version_policy { all {} } }
        }""" % (models / "mel_2bar"))
    monkeypatch.chdir(tmp_path)  # relative base_path: not here, so beside the config file
    warnings = []
    sources = {s.name: s for s in read_model_config(str(config), log=warnings.append)}
    # Entries without model_platform are served, with a warning that TF Serving refuses them.
    assert [w.split("model ")[1].split(" has")[0] for w in warnings] == ["'two'", "'pinned'", "'all'"]
    assert all('add model_platform: "tensorflow"' in w for w in warnings)
    assert sources["mel_2bar"].base_path == str(models / "mel_2bar")
    on_disk = versions_on_disk(sources["mel_2bar"].base_path)
    assert on_disk == {1: "1", 3: "3", 10: "10"}
    on_disk = list(on_disk)
    assert sources["mel_2bar"].wanted(on_disk) == [10]
    assert sources["two"].wanted(on_disk) == [3, 10]
    assert sources["pinned"].wanted(on_disk) == [1]
    assert sources["pinned"].labels == {"stable": 1}
    assert sources["all"].wanted(on_disk) == [1, 3, 10]
    monkeypatch.chdir(models.parent)  # relative to the working directory wins when it exists
    (tmp_path / "mel_2bar").mkdir()
    assert read_model_config(str(config))[0].base_path == str(tmp_path / "mel_2bar")


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: \"a\" } }", "needs a name and a base_path"),
    ("model_config_list { config { name: \"a\" base_path: \"x\" model_platform: \"onnx\" } }",
     "only 'tensorflow'"),
    ("model_config_list { config { name: \"a\" base_path: \"x\" } config { name: \"a\" "
     "base_path: \"y\" } }", "configured twice"),
    ("model_config_list { config { nam: \"a\" } }", "bad ModelServerConfig text proto"),
])
def test_read_model_config_errors(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_model_config(str(path))


def test_rewriting_models_config_never_shows_a_reader_half_a_file(tmp_path):
    """A server that opens models.config while a writer replaces it (or while a write fails
    halfway) reads the whole old config."""
    path = str(tmp_path / "models.config")
    write_models_config(path, {"a": "/srv/a", "b": "/srv/b"})
    with open(path) as reader:  # `hmvae serve` starting as the file is rewritten
        write_models_config(path, {"c": "/srv/c"})
        assert [s.name for s in read_model_config(path)] == ["c"]
        text = reader.read()
    assert '"a"' in text and '"b"' in text and '"c"' not in text
    with pytest.raises(UnicodeEncodeError):  # a base path that cannot be written, halfway
        write_models_config(path, {"d": "/srv/d", "e": "/srv/\udce9"})
    assert [s.name for s in read_model_config(path)] == ["c"]
    assert os.listdir(tmp_path) == ["models.config"]


class FakeServable:
    signature_names = ("sample",)

    def __init__(self, name, version, path):
        if version == 13:
            raise RuntimeError("corrupt")
        self.version = version


def test_manager_lookups_and_statuses(tmp_path):
    make_versions(tmp_path / "m", [1, 2])
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "m" base_path: "%s" '
                      'model_version_policy { all {} } version_labels { key: "old" value: 1 } } }'
                      % (tmp_path / "m"))
    logs = []
    manager = ModelManager(read_model_config(str(config)), FakeServable, log=logs.append)
    manager.load_all()
    spec = model_pb2.ModelSpec(name="m")
    assert manager.get(spec)[1] == 2
    spec.version.value = 1
    assert manager.get(spec)[1] == 1
    assert manager.get(model_pb2.ModelSpec(name="m", version_label="old"))[1] == 1
    with pytest.raises(ServingError) as info:
        manager.get(model_pb2.ModelSpec(name="m", version_label="new"))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ServingError, match=r"Latest\(x\)"):
        manager.get(model_pb2.ModelSpec(name="x"))
    with pytest.raises(ServingError, match="Could not find version 5 of model m"):
        manager.states("m", 5)
    assert [v for v, *_ in manager.states("m")] == [2, 1]  # newest first, as TF Serving
    with pytest.raises(ServingError) as info:
        manager.get(model_pb2.ModelSpec(name=""))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("loaded model m version 2" in line for line in logs)
    # A version that fails to load later is reported once and skipped; the rest keep serving.
    make_versions(tmp_path / "m", [13])
    manager._sync(manager.sources["m"])
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [1, 2]}
    assert sum("cannot load" in line for line in logs) == 1
    assert manager.states("m", 13)[0][2].endswith("corrupt")  # GetModelStatus says why


class RepairableServable(FakeServable):
    broken: set = set()
    paths: list = []

    def __init__(self, name, version, path):
        RepairableServable.paths.append(path)
        if version in self.broken:
            raise RuntimeError("not a valid checkpoint")
        self.version = version


def test_a_new_version_that_fails_to_load_leaves_the_old_one_serving(tmp_path):
    """As TF Serving's availability-preserving policy: a half-copied new version does not
    take the model down, and it loads on a retry once complete."""
    make_versions(tmp_path / "m", [3])
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "m" base_path: "%s" } }'
                      % (tmp_path / "m"))
    manager = ModelManager(read_model_config(str(config)), RepairableServable,
                           log=lambda *_: None)
    manager.load_all()
    RepairableServable.broken = {4}
    make_versions(tmp_path / "m", [4])
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [3]}
    assert manager.get(model_pb2.ModelSpec(name="m"))[1] == 3
    assert "not a valid checkpoint" in manager.states("m", 4)[0][2]
    manager._sync(manager.sources["m"])  # within the retry interval: not tried again
    assert sum(p.endswith("4") for p in RepairableServable.paths) == 1
    RepairableServable.broken = set()  # the copy has finished
    manager.load_retry_interval = 0
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [4]}
    assert manager.states("m", 4)[0][1:] == (AVAILABLE, "")

    # A base path that cannot be listed for a moment changes nothing.
    os.rename(tmp_path / "m", tmp_path / "m.moving")
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [4]}
    os.rename(tmp_path / "m.moving", tmp_path / "m")

    # Zero-padded version folders load from their own name; odd digit names are skipped.
    make_versions(tmp_path / "m", ["0007", "²"])
    assert versions_on_disk(str(tmp_path / "m")) == {3: "3", 4: "4", 7: "0007"}
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [7]}
    assert RepairableServable.paths[-1] == str(tmp_path / "m" / "0007")


def test_serve_rejects_bad_command_lines(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def serve(*args):
        p = subprocess.run([sys.executable, "-m", "hmvae_tf.cli", "serve", *args], env=env,
                           capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr

    code, out = serve("--model_config_file=x", "--rest_api_port=8501")
    assert code == 2 and "no REST API" in out
    code, out = serve("--model_config_file=x", "--batching_parameters_file=y")
    assert code == 2 and "needs --enable_batching" in out
    code, out = serve("--model_config_file=x", "--enable_batching", "--max_request_rows=10")
    assert code == 2 and "--max_request_rows applies without --enable_batching" in out
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "m" base_path: "%s" } }' % (tmp_path / "missing"))
    code, out = serve(f"--model_config_file={tmp_path / 'models.config'}", "--port=0")
    assert code == 1 and "base_path" in out and "does not exist" in out
    # A relative one names both places it was looked for.
    (tmp_path / "rel.config").write_text(
        'model_config_list { config { name: "m" base_path: "models/m" } }')
    code, out = serve(f"--model_config_file={tmp_path / 'rel.config'}", "--port=0")
    assert code == 1 and f"{os.path.join(os.getcwd(), 'models', 'm')} or " \
        f"{tmp_path / 'models' / 'm'} (a relative base_path" in out


def test_serve_takes_tf_serving_command_lines():
    """tensorflow_model_server's flag forms parse: `--flag=true` booleans, the older
    --tensorflow_session_parallelism, retries, channel arguments and flags with no effect here
    (they used to stop `hmvae serve` with "unrecognized arguments")."""
    import argparse

    from hmvae_tf.serving import server

    parser = argparse.ArgumentParser()
    server.add_arguments(parser, "serve")
    args = parser.parse_args([
        "--model_config_file=x", "--enable_batching=true", "--xla_cpu_compilation_enabled=true",
        "--enable_model_warmup=false", "--model_config_file_poll_wait_seconds=60",
        "--tensorflow_session_parallelism=1", "--max_num_load_retries=2",
        "--load_retry_interval_micros=500000", "--allow_version_labels_for_unavailable_models",
        "--grpc_channel_arguments=grpc.max_concurrent_streams=100,grpc.primary_user_agent=x"])
    assert args.enable_batching is True and args.enable_model_warmup is False
    assert args.allow_version_labels_for_unavailable_models is True
    assert (args.max_num_load_retries, args.load_retry_interval_micros) == (2, 500000)
    assert server._channel_arguments(args.grpc_channel_arguments) == [
        ("grpc.max_concurrent_streams", 100), ("grpc.primary_user_agent", "x")]
    assert parser.parse_args(["--enable_batching"]).enable_batching is True
    assert parser.parse_args([]).enable_batching is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--enable_batching=maybe"])
    with pytest.raises(ValueError, match="not key=value"):
        server._channel_arguments("grpc.max_concurrent_streams")
