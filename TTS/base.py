"""What every TTS backend implements, and the values passed between the manager and backends.

A new backend (the Qwen3-TTS clone, issue 6) subclasses TtsBackend in its own module and is
listed in TTS.manager.BACKENDS under its config name; the manager does the rest (breaker,
timeout, validation, cache, metrics).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from Config.schema import LuxaConfig, TtsBackendConfig
from Core.audio import Audio
from Core.errors import BackendError
from Core.gpu import GpuStatus


@dataclass(frozen=True)
class SpeechRequest:
    text: str  # already sanitised, at most tts.max_chars long
    language: str
    speed: float
    voice: str | None = None  # an explicit voice; backends that cannot use it skip the request
    piper_voice: str | None = None  # from tts.voices[language]
    system_voice: str | None = None
    clone_voice: str | None = None
    failures: tuple[str, ...] = ()  # why earlier backends failed (for the emergency's log line)


@dataclass
class TTSResult:
    success: bool  # False when only the emergency silence came out
    backend: str
    latency_s: float
    audio: Audio  # float32 mono at the backend's native rate (not resampled); silence from the emergency
    cached: bool = False
    error: str | None = None
    text: str = ""  # what this audio says: the orchestrator keeps in history only what was played


class TtsBackend(ABC):
    """One engine. Blocking work must run off the event loop; the manager applies the timeout."""

    name = "base"

    def __init__(self, config: LuxaConfig, backend_config: TtsBackendConfig, gpu: GpuStatus) -> None:
        self.config = config
        self.backend_config = backend_config
        self.gpu = gpu

    def unavailable(self) -> str | None:
        """Why this backend can never run in this process (package missing), or None.

        Such a backend is left out of the chain with one warning instead of failing each request.
        """
        return None

    async def start(self) -> None:
        """Load what must be loaded once; raising marks the backend broken (its breaker opens)."""

    def accepts_voice(self, voice: str) -> bool:
        """Whether an explicit `voice` from the caller names a voice of this backend."""
        return False

    @abstractmethod
    def voice_for(self, request: SpeechRequest) -> str | None:
        """The voice this backend would use, or None to skip the request (not a failure)."""

    def require_voice(self, request: SpeechRequest) -> str:
        """voice_for() when synthesising: the manager sends a backend only requests it has a voice for."""
        voice = self.voice_for(request)
        if voice is None:
            raise BackendError(f"tts backend {self.name} has no voice for this request ({request.language})")
        return voice

    def cache_key(self, request: SpeechRequest) -> tuple:
        """Everything besides the text that changes this backend's audio."""
        return (self.name, self.voice_for(request), request.speed)

    @abstractmethod
    async def synthesize(self, request: SpeechRequest) -> Audio:
        """Audio for request.text; raising (or returning empty/silent audio) is a failure."""

    async def close(self) -> None:
        """Release models and processes."""
