"""The client library (gRPC and in-process give the same answers), the MIDI adapter and the
`hmvae sample` / `hmvae interpolate` commands."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from note_seq import midi_io
from note_seq.protobuf import music_pb2

from hmvae_tf import cli
from hmvae_tf.serving import music_adapter
from hmvae_tf.serving.client import ClientError, MusicVAEClient
from hmvae_tf.serving.toy_model import build_toy_saved_model


@pytest.fixture(scope="module")
def clients(hmvae_server, model_repo):
    grpc_client = MusicVAEClient.connect(server=hmvae_server.address, model="mel")
    local = MusicVAEClient.connect(saved_model=model_repo.mel_v1)
    yield grpc_client, local
    grpc_client.close()


def test_client_learns_the_model_and_both_backends_agree(clients):
    remote, local = clients
    for c in clients:
        assert (c.tracks, c.num_steps, c.z_size) == (("melody",), 32, 8)
    a = remote.sample(5, temperature=0.8, seed=3)
    b = local.sample(5, temperature=0.8, seed=3)
    assert a.shape == (5, 32) and a.dtype == np.int32 and ((a >= 0) & (a < 90)).all()
    np.testing.assert_array_equal(a, b)
    # Row i depends on (seed, i) only: chunking and the number of rows change nothing.
    local.batch_size = 2
    try:
        np.testing.assert_array_equal(local.sample(3, temperature=0.8, seed=3), a[:3])
    finally:
        local.batch_size = 64
    assert not np.array_equal(remote.sample(5, temperature=0.8, seed=4), a)

    z, mu, sigma = remote.encode(a)
    np.testing.assert_allclose(mu, local.encode(a)[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(remote.decode(mu, 0.0), local.decode(mu, 0.0))
    np.testing.assert_array_equal(remote.reconstruct(a, 0.0), remote.decode(mu, 0.0))
    steps = remote.interpolate(a[0], a[1], num_steps=6, temperature=0.0)
    assert steps.shape == (6, 32)
    np.testing.assert_array_equal(steps, local.interpolate(a[0], a[1], num_steps=6, temperature=0.0))
    np.testing.assert_array_equal(steps[0], remote.reconstruct(a[:1], 0.0)[0])
    np.testing.assert_array_equal(steps[-1], remote.reconstruct(a[1:2], 0.0)[0])


def test_client_errors(clients, hmvae_server, tmp_path):
    remote, _ = clients
    with pytest.raises(ClientError, match="T = 32"):
        remote.encode(np.zeros((2, 16), np.int32))
    with pytest.raises(ClientError, match=r"\[0, 90\)"):
        remote.encode(np.full((1, 32), 90))
    with pytest.raises(ClientError, match="temperature"):
        remote.sample(1, temperature=-1)
    with pytest.raises(ClientError, match="not found"):
        MusicVAEClient.connect(server=hmvae_server.address, model="nope")
    with pytest.raises(ClientError, match="no SavedModel at"):
        MusicVAEClient.connect(saved_model=str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"half a download")
    with pytest.raises(ClientError, match="cannot load the SavedModel at"):
        MusicVAEClient.connect(saved_model=str(tmp_path))


def test_in_process_call_casts_safely_and_reports_errors(clients):
    """`call` takes plain Python lists: it casts them to the signature's dtypes where that
    loses nothing, as the TF2 loader's tf.constant did, and the in-process backend turns every
    failure into a ClientError."""
    _, local = clients
    out = local.call("sample", temperature=[0.8], seed=[[3, 0]])  # float64 and int64 arrays
    np.testing.assert_array_equal(out["melody"], local.sample(1, temperature=0.8, seed=3))
    assert out["z"].dtype == np.float32
    with pytest.raises(ClientError, match="seed must be int32, got float64"):
        local.call("sample", temperature=[0.8], seed=[[3.5, 0]])
    with pytest.raises(ClientError, match="seed must be int32, got int64 out of its range"):
        local.call("sample", temperature=[0.8], seed=[[2 ** 40, 0]])
    with pytest.raises(ClientError, match="temperature must be >= 0"):
        local.call("sample", temperature=[-1.0], seed=[[3, 0]])
    with pytest.raises(ClientError, match="takes the inputs seed, temperature"):
        local.call("sample", temperature=[0.8])
    with pytest.raises(ClientError, match="no signature 'nope'"):
        local.call("nope", x=[1])


def test_multi_track_tokens(tmp_path):
    path = build_toy_saved_model(str(tmp_path / "trio" / "1"), tracks=("drums", "melody", "bass"),
                                 num_steps=16)
    c = MusicVAEClient.connect(saved_model=path)
    assert c.tracks == ("melody", "bass", "drums") and c.num_steps == 16
    t = c.sample(2, seed=1)
    assert t.shape == (2, 16, 3)
    assert t[..., 2].max() < 512 and t[..., :2].max() < 90
    assert c.reconstruct(t).shape == (2, 16, 3)
    assert c.interpolate(t[0], t[1], num_steps=3).shape == (3, 16, 3)


def melody_ns(pitches, step=0.125, start=0.0, drums=False):
    ns = music_pb2.NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=120)
    for i, p in enumerate(pitches):
        ns.notes.add(pitch=p, velocity=80, start_time=start + i * 2 * step,
                     end_time=start + (i * 2 + 1) * step, is_drum=drums, program=0)
    ns.total_time = start + len(pitches) * 2 * step
    return ns


def test_melody_adapter_round_trip():
    rep = music_adapter.representation_for(("melody",))
    tokens = np.zeros(32, np.int32)
    tokens[[0, 4, 8, 20]] = [40, 50, 60, 70]
    tokens[[2, 12, 24]] = 1
    ns = rep.to_note_sequence(tokens, qpm=120)
    assert [n.pitch for n in ns.notes] == [59, 69, 79, 89]
    np.testing.assert_array_equal(rep.from_note_sequence(ns, 2), tokens)
    # Overlapping notes: the highest wins at an onset.
    ns2 = melody_ns([60, 62])
    ns2.notes.add(pitch=48, velocity=80, start_time=0.0, end_time=0.5, program=0)
    got = rep.from_note_sequence(ns2, 1)
    assert got[0] == 60 - 21 + 2 and got[2] == 62 - 21 + 2
    with pytest.raises(ValueError, match="no pitched"):
        rep.from_note_sequence(melody_ns([36, 38], drums=True), 2)
    with pytest.raises(ValueError, match="window"):
        rep.from_note_sequence(melody_ns([60]), 2, window_index=3)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def read_notes(path):
    return len(midi_io.midi_file_to_note_sequence(path).notes)


@pytest.mark.parametrize("backend", ["grpc", "saved_model"])
def test_sample_and_interpolate_commands(backend, hmvae_server, model_repo, tmp_path, capsys):
    src = ([f"--server={hmvae_server.address}", "--model=mel"] if backend == "grpc"
           else [f"--saved_model={model_repo.mel_v1}"])
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "sample", *src, "-n", "3", "--temperature=0.5",
                                   "--seed=0", f"--out={out}")
    assert code == 0, stderr
    files = sorted(glob.glob(str(out / "mel_sample_t0.5_seed0_*-of-03.mid")))
    assert len(files) == 3
    for f in files:
        notes = read_notes(f)
        said = f"{notes:4d} note" if notes == 1 else f"{notes:4d} notes"
        assert notes > 0 and f"{os.path.basename(f)}" in stdout and said in stdout
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    midi_io.note_sequence_to_midi_file(melody_ns([60, 62, 64, 65, 67, 69, 71, 72]), str(a))
    midi_io.note_sequence_to_midi_file(melody_ns([72, 71, 69, 67, 65, 64, 62, 60], start=0.5), str(b))
    code, stdout, stderr = run_cli(capsys, "interpolate", str(a), str(b), *src, "--steps=4",
                                   f"--out={out}")
    assert code == 0, stderr
    steps = sorted(glob.glob(str(out / "mel_interp_a_b_t0.5_seed0_0*-of-04.mid")))
    assert len(steps) == 4 and all(read_notes(f) > 0 for f in steps)
    whole = out / "mel_interp_a_b_t0.5_seed0_all.mid"
    assert read_notes(str(whole)) == sum(read_notes(f) for f in steps)
    assert "interpolated" in stdout and "reconstructions" in stdout
    assert f"{a} (120 qpm): window 0: bars 1-2 of instrument 0 (program 0, Acoustic Grand Piano)" in stdout


def test_interpolate_says_which_part_it_took_and_takes_the_one_asked_for(
        model_repo, tmp_path, capsys):
    """A two-part file: by default the busier part (instrument 1), or --instrument's; a
    flute-only file (program 73, outside Magenta's melody programs) is used, with a note."""
    duet = melody_ns([60, 62, 64, 65])
    busy = melody_ns([72, 74, 76, 77, 79, 81, 83, 84])
    for note in busy.notes:
        duet.notes.add().CopyFrom(note)
        duet.notes[-1].instrument, duet.notes[-1].program = 1, 24
    flute = melody_ns([67, 69, 71, 72])
    for note in flute.notes:
        note.program = 73
    paths = {name: tmp_path / f"{name}.mid" for name in ("duet", "flute")}
    midi_io.note_sequence_to_midi_file(duet, str(paths["duet"]))
    midi_io.note_sequence_to_midi_file(flute, str(paths["flute"]))
    src = [f"--saved_model={model_repo.mel_v1}", "--steps=2", "--temperature=0",
           f"--out={tmp_path / 'out'}"]
    code, stdout, stderr = run_cli(capsys, "interpolate", str(paths["duet"]),
                                   str(paths["flute"]), *src)
    assert code == 0, stderr
    assert "duet.mid (120 qpm): window 0: bars 1-2 of instrument 1 (program 24, Acoustic Guitar (nylon)); " \
           "other parts: instrument 0 (choose with --instrument)" in stdout
    assert "flute.mid (120 qpm): window 0: bars 1-2 of instrument 0 (program 73, Flute); its program is " \
           "outside programs 0-31, the melody programs of 2-bar training data" in stdout
    first = midi_io.midi_file_to_note_sequence(
        str(tmp_path / "out" / "mel_interp_duet_flute_t0_seed0_01-of-02.mid"))
    code, stdout, stderr = run_cli(capsys, "interpolate", str(paths["duet"]),
                                   str(paths["flute"]), *src, "--instrument=0")
    assert code == 0, stderr
    assert "duet.mid (120 qpm): window 0: bars 1-2 of instrument 0 (program 0," in stdout
    # The reconstruction of the first input follows the chosen part's register.
    chosen = midi_io.midi_file_to_note_sequence(
        str(tmp_path / "out" / "mel_interp_duet_flute_t0_seed0_i0_01-of-02.mid"))
    mean = lambda ns: np.mean([n.pitch for n in ns.notes])  # noqa: E731
    assert mean(chosen) < mean(first)
    code, _, stderr = run_cli(capsys, "interpolate", str(paths["duet"]), str(paths["flute"]),
                              *src, "--instrument=5")
    assert code == 1 and "instrument 5 has no melody notes (pitched instruments in the " \
                         "file: 0, 1)" in stderr
    # One part of each input: the duet's quiet part to its busy part.
    code, stdout, stderr = run_cli(capsys, "interpolate", str(paths["duet"]), str(paths["duet"]),
                                   *src, "--instrument=0,1")
    assert code == 0, stderr
    assert stdout.count("duet.mid (120 qpm): window 0: bars 1-2 of instrument 0 (program 0,") == 1
    assert stdout.count("duet.mid (120 qpm): window 0: bars 1-2 of instrument 1 (program 24,") == 1
    ends = [midi_io.midi_file_to_note_sequence(str(
        tmp_path / "out" / f"mel_interp_duet_duet_t0_seed0_a_i0_b_i1_0{k}-of-02.mid"))
        for k in (1, 2)]
    assert mean(ends[0]) < mean(ends[1])
    code, _, stderr = run_cli(capsys, "interpolate", str(paths["flute"]), str(paths["duet"]),
                              *src, "--instrument=0,5")
    assert code == 1 and "duet.mid: no usable melody" in stderr and "instrument 5" in stderr


def test_command_errors(hmvae_server, model_repo, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", "--server=localhost:1", "--model=mel", "--timeout=5",
                           f"--out={tmp_path}")
    assert code == 1 and "cannot reach a model server at localhost:1" in err
    code, _, err = run_cli(capsys, "sample", f"--server={hmvae_server.address}", "--model=nope",
                           f"--out={tmp_path}")
    assert code == 1 and "model 'nope' not found" in err
    code, _, err = run_cli(capsys, "sample", f"--out={tmp_path}")
    assert code == 2 and "either --server" in err  # a usage error
    code, _, err = run_cli(capsys, "sample", "--server=localhost", "--model=mel",
                           f"--out={tmp_path}")
    assert code == 1 and "needs a port, host:port" in err
    # An app builder used to TF Serving's REST API: gRPC failed to look it up as a host name,
    # "cannot reach a model server at http://localhost:8500 (... Misformatted domain name)".
    code, _, err = run_cli(capsys, "sample", "--server=http://localhost:8500", "--model=mel",
                           f"--out={tmp_path}")
    assert code == 1 and err == (
        "hmvae sample: error: the server address is host:port, without http:// (this client "
        "speaks gRPC, TF Serving's default port 8500): 'localhost:8500', not "
        "'http://localhost:8500'\n")
    drums, junk = tmp_path / "drums.mid", tmp_path / "junk.mid"
    midi_io.note_sequence_to_midi_file(melody_ns([36, 38, 42], drums=True), str(drums))
    junk.write_bytes(b"not a midi file")
    src = f"--saved_model={model_repo.mel_v1}"
    code, _, err = run_cli(capsys, "interpolate", str(drums), str(drums), src, f"--out={tmp_path}")
    assert code == 1 and "drums.mid: no usable melody for a 2-bar model: no 2-bar melody window" in err
    code, _, err = run_cli(capsys, "interpolate", str(junk), str(drums), src, f"--out={tmp_path}")
    # An unreadable file is said as such, not as a file without a melody.
    assert code == 1 and "no usable melody" not in err
    assert f"cannot read MIDI file {junk}: not a Standard MIDI File" in err
    assert not glob.glob(str(tmp_path / "*interp*"))


def test_local_commands_take_an_export_base_as_its_newest_version(model_repo, tmp_path, capsys):
    base = os.path.join(model_repo.models, "two")  # versions 1 and 2
    code, stdout, stderr = run_cli(capsys, "sample", f"--saved_model={base}", "-n", "1",
                                   f"--out={tmp_path}")
    assert code == 0, stderr
    assert f"in-process SavedModel {os.path.join(base, '2')}" in stdout
    assert glob.glob(str(tmp_path / "two_sample_t0.5_seed0_01-of-01.mid"))
    code, _, stderr = run_cli(capsys, "sample", f"--saved_model={tmp_path}", f"--out={tmp_path}")
    assert code == 1 and "no SavedModel at" in stderr


def test_model_version_takes_a_version_label_on_a_server(hmvae_server, tmp_path, capsys):
    """--model_version took numbers only, while the client library takes TF Serving's version
    labels; "pinned" labels its version 1 "stable" (serving_fixtures.ModelRepo)."""
    code, stdout, stderr = run_cli(capsys, "sample", f"--server={hmvae_server.address}",
                                   "--model=pinned", "--model_version=stable", "-n", "1",
                                   f"--out={tmp_path}")
    assert code == 0, stderr
    assert "model pinned version 1" in stdout
    assert glob.glob(str(tmp_path / "pinned_stable_sample_t0.5_seed0_01-of-01.mid"))
    # A label is any text: it goes to the server as typed, and into file names with the
    # characters a file name cannot hold replaced (the `/` made a folder "pinned_team").
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "sample", f"--server={hmvae_server.address}",
                                   "--model=pinned", "--model_version=team/a:b", "-n", "1",
                                   f"--out={out}")
    assert code == 0, stderr
    assert "model pinned version 1" in stdout
    assert os.listdir(out) == ["pinned_team_a_b_sample_t0.5_seed0_01-of-01.mid"]
    code, _, stderr = run_cli(capsys, "sample", f"--server={hmvae_server.address}",
                              "--model=pinned", "--model_version=nope", f"--out={tmp_path}")
    assert code == 1
    assert stderr.strip().splitlines() == [
        f"hmvae sample: error: model 'pinned' version label 'nope' is not defined on "
        f"{hmvae_server.address} (Unrecognized servable version label: nope): the server's "
        "model config sets labels (version_labels)"]


def test_the_files_list_counts_one_note_as_one(capsys):
    """A sample of one note was listed as "   1 notes"."""
    from types import SimpleNamespace

    from hmvae_tf.serving import commands

    client = SimpleNamespace(description="m", tracks=("melody",), num_steps=32, z_size=4)
    commands._report(client, [("a.mid", 1), ("b.mid", 2)], "sampled")
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].endswith("   1 note") and lines[-1].endswith("   2 notes"), lines
