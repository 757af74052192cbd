"""MIDI -> .wav with fluidsynth and a General MIDI soundfont, when both are installed."""
from __future__ import annotations

import os
import shutil
import subprocess

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/default.sf2")


def soundfont() -> str | None:
    """The soundfont to use: $HMVAE_SOUNDFONT, else the first Debian GM soundfont present."""
    candidates = [os.environ.get("HMVAE_SOUNDFONT", "")] + list(SOUNDFONTS)
    return next((p for p in candidates if p and os.path.isfile(p)), None)


def available() -> bool:
    """Whether render_wav can work here, so callers can skip audio instead of failing."""
    return shutil.which("fluidsynth") is not None and soundfont() is not None


def render_wav(midi_path: str, wav_path: str | None = None, rate: int = 44100) -> str:
    """Renders a MIDI file offline (no audio device) and returns the .wav path."""
    if not available():
        raise RuntimeError("rendering needs fluidsynth and a General MIDI soundfont "
                           "(Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    wav_path = wav_path or os.path.splitext(midi_path)[0] + ".wav"
    subprocess.run(["fluidsynth", "-ni", "-q", "-F", wav_path, "-r", str(rate), soundfont(),
                    midi_path], check=True, capture_output=True)
    return wav_path
