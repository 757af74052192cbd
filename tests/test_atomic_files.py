"""Files written whole or not at all: a write that fails halfway keeps the earlier file and
leaves nothing under the real name, nor a temporary file beside it."""
import errno
import os

import pytest

from hmvae_tf import atomic_files


def test_a_failing_write_keeps_the_earlier_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('{"good": true}')
    with pytest.raises(TypeError):  # json.dump fails halfway, after writing a part
        atomic_files.write_json(path, {"a": list(range(1000)), "b": object()})
    assert path.read_text() == '{"good": true}'
    assert os.listdir(tmp_path) == ["doc.json"]
    atomic_files.write_json(path, {"new": 1})
    assert path.read_text() == '{"new": 1}' and os.listdir(tmp_path) == ["doc.json"]


def test_an_interrupted_write_leaves_no_file(tmp_path):
    path = tmp_path / "new.txt"
    with pytest.raises(KeyboardInterrupt), atomic_files.replacing(path) as f:
        f.write("half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_a_full_disk_is_reported_naming_the_file(tmp_path):
    path = tmp_path / "x.mid"
    with pytest.raises(OSError) as caught, atomic_files.replacing(path, "wb"):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a failed flush on close
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert os.listdir(tmp_path) == []


def test_the_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_files.write_text(tmp_path / "card.md", "text")
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # not a temporary file's 0600


def test_a_midi_file_that_fails_halfway_keeps_the_earlier_one(tmp_path, monkeypatch):
    """A full disk while `hmvae sample` writes out/x.mid: the x.mid of an earlier run stays,
    and no truncated file is left for a player to choke on."""
    import io

    import mido

    from hmvae_tf.music import midi_io
    from hmvae_tf.music.representations import get_representation

    rep = get_representation("melody")
    tokens = [2, 0, 0, 0, 30, 0, 1, 0] * 4
    path = tmp_path / "x.mid"
    midi_io.write_midi(rep.to_note_sequence(tokens), path)
    earlier = path.read_bytes()

    write_track = mido.midifiles.midifiles.write_track

    def full_disk(outfile, track):  # the disk fills up while the file is written
        if isinstance(outfile, io.BytesIO):  # pretty_midi's serialization in memory
            return write_track(outfile, track)
        outfile.write(b"MTrk")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mido.midifiles.midifiles, "write_track", full_disk)
    with pytest.raises(OSError, match="No space left"):
        midi_io.write_midi(rep.to_note_sequence(tokens[::-1]), path)
    with pytest.raises(OSError, match="No space left"):
        midi_io.write_midi(rep.to_note_sequence(tokens), tmp_path / "y.mid")
    assert path.read_bytes() == earlier
    assert os.listdir(tmp_path) == ["x.mid"]
