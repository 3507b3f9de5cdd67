from __future__ import annotations

import pytest

from tests.e2e.harness import VirtualAudio, have_pulseaudio


@pytest.fixture
def virtual_audio(tmp_path_factory):
    """A fresh server per test: one test unplugging the mic must not leave state to the next."""
    if not have_pulseaudio():
        pytest.fail("PulseAudio tools missing: run `bash scripts/setup.sh --test`")
    audio = VirtualAudio(tmp_path_factory.mktemp("pulse"))
    audio.start_noise_floor()
    yield audio
    audio.close()


@pytest.fixture(scope="session")
def whisper_base():
    """The real whisper-base, to check what the assistant said (transcribes the recordings)."""
    from faster_whisper import WhisperModel

    from Core.models import resolve

    return WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8", cpu_threads=2)
