"""TF Serving's ModelServerConfig as `hmvae serve` reads it, and version selection (no server)."""
from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from tensorflow_serving.apis import model_pb2

from hmvae_tf.serving.errors import ServingError
from hmvae_tf.serving.model_manager import (ModelManager, read_model_config, versions_on_disk)


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
    sources = {s.name: s for s in read_model_config(str(config))}
    assert sources["mel_2bar"].base_path == str(models / "mel_2bar")
    on_disk = versions_on_disk(sources["mel_2bar"].base_path)
    assert on_disk == [1, 3, 10]
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
    assert [v for v, _ in manager.states("m")] == [1, 2]
    assert any("loaded model m version 2" in line for line in logs)
    # A version that fails to load later is reported once and skipped; the rest keep serving.
    make_versions(tmp_path / "m", [13])
    manager._sync(manager.sources["m"])
    manager._sync(manager.sources["m"])
    assert manager.loaded() == {"m": [1, 2]}
    assert sum("cannot load" in line for line in logs) == 1


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
