"""Fixtures for the TTS tests: a config builder, an injectable clock, and Whisper as the judge.

Whisper transcribing the synthesised audio back is the test that a voice said the words,
not merely produced sound.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from Config import LuxaConfig, load_config
from Core.audio import Audio
from Core.models import resolve
from tests.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_config():
    """load_config with --set style overrides, ignoring the caller's LUXA_* environment."""

    def make(*overrides: str) -> LuxaConfig:
        return load_config(overrides=list(overrides), environ={})

    return make


@pytest.fixture(scope="session")
def joe_voice() -> Path:
    return resolve("en_US-joe-medium", "piper").path


@pytest.fixture(scope="session")
def whisper():
    from faster_whisper import WhisperModel

    return WhisperModel(str(resolve("whisper-base", "whisper").path), device="cpu", compute_type="int8", cpu_threads=2)


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower()).replace("'", " ")
    return " ".join(text.split())


@pytest.fixture(scope="session")
def word_error_rate(whisper):
    """WER of whisper-base's transcript of `audio` against `reference`, both normalised."""
    import jiwer

    def score(audio: Audio, reference: str, language: str) -> tuple[float, str]:
        segments, _ = whisper.transcribe(audio.to_rate(16000).samples, language=language, beam_size=1)
        heard = " ".join(s.text for s in segments)
        return jiwer.wer(normalise(reference), normalise(heard)), heard

    return score
