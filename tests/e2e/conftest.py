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
