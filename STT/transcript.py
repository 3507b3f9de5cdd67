"""Values handed between an STT backend, the manager and its callers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DecodeOptions:
    """What a caller may ask of one decoding besides the language (the OpenAI routes use all of it)."""

    task: Literal["transcribe", "translate"] = "transcribe"  # translate: any language -> English text
    prompt: str | None = None  # earlier text or spellings that condition the decoder
    temperature: float | None = None  # None or 0: stt.temperatures, hotter only when decoding fails
    word_timestamps: bool = False


@dataclass(frozen=True)
class Word:
    start: float  # seconds from the start of the audio
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One decoded span with Whisper's own figures (what OpenAI's verbose_json reports)."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Decoded:
    """What one backend heard, before the manager filters it."""

    text: str
    language: str
    language_probability: float
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when nothing usable was heard
    language: str | None
    probability: float  # confidence in `language` (1.0 when the language was fixed)
    duration_s: float  # of the audio that was transcribed
    latency_s: float
    backend: str  # "none" when every backend failed
    segments: tuple[Segment, ...] = ()  # what `text` was made of, with times

    @property
    def heard(self) -> bool:
        return bool(self.text)
