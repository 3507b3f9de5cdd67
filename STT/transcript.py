"""Values handed between an STT backend, the manager and its callers."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoded:
    """What one backend heard, before the manager filters it."""

    text: str
    language: str
    language_probability: float


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when nothing usable was heard
    language: str | None
    probability: float  # confidence in `language` (1.0 when the language was fixed)
    duration_s: float  # of the audio that was transcribed
    latency_s: float
    backend: str  # "none" when every backend failed

    @property
    def heard(self) -> bool:
        return bool(self.text)
