from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def whisper_base():
    """The real whisper-base, to check what the assistant said (transcribes the recordings)."""
    from faster_whisper import WhisperModel

    from Core.models import resolve

    return WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8", cpu_threads=2)
