from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def whisper_base():
    """The real whisper-base, to check what the assistant said (transcribes the recordings)."""
    from faster_whisper import WhisperModel

    from Core.models import resolve

    return WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture
def question(corpus_dir):
    """A spoken command from the corpus: the question most e2e tests ask."""
    return corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav"


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """A private PulseAudio server where the speaker comes back into the mic: ~65 ms late, 6 dB
    quieter, reverberant (audio_harness.EchoPath). One per module: each echo test runs one daemon."""
    from audio_harness import EchoPath, VirtualAudio

    audio = VirtualAudio(tmp_path_factory.mktemp("pulse"))
    audio.start_noise_floor()
    path = EchoPath(audio, delay_ms=40.0, gain_db=-6.0)
    yield audio
    path.close()
    audio.close()
