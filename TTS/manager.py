"""UnifiedTTSManager: speak text through the first backend that works, never raising for text.

Chain (by tts.backends.*.priority): piper_native -> piper_cli -> system_voice -> qwen_clone ->
silent_emergency. Each member sits behind a circuit breaker and a timeout (Core.fallback);
output that is empty, NaN or silent counts as a failure. An LRU cache answers repeated text.

Audio comes out at the backend's native rate (22050 Hz for the joe voice, espeak-ng's 22050,
the emergency silence at audio.sample_rate); consumers resample with Audio.to_rate().
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from typing import Callable

from pydantic import ValidationError

from Config.schema import LuxaConfig, TtsBackendConfig, TtsVoiceConfig
from Core.audio import Audio, problem
from Core.breaker import BreakerState
from Core.errors import AllBackendsFailed, BackendError, ConfigError, TextInputError
from Core.fallback import ChainMember, FallbackChain
from Core.gpu import GpuStatus
from Core.metrics import StageMetrics, gauge
from TTS.answer import AnswerSession
from TTS.base import SpeechRequest, TtsBackend, TTSResult
from TTS.cache import AudioCache
from TTS.emergency import SilentEmergencyBackend
from TTS.piper_cli import PiperCliBackend
from TTS.piper_native import PiperNativeBackend
from TTS.qwen_clone import QwenCloneBackend
from TTS.system_voice import SystemVoiceBackend

log = logging.getLogger(__name__)

BACKENDS: dict[str, type[TtsBackend]] = {
    "piper_native": PiperNativeBackend,
    "piper_cli": PiperCliBackend,
    "system_voice": SystemVoiceBackend,
    "qwen_clone": QwenCloneBackend,
}
EMERGENCY = SilentEmergencyBackend.name
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*")
TARGET = gauge("luxa_tts_latency_target_seconds", "configured time-to-first-audio target (tts.latency_target_ms)")


class UnifiedTTSManager:
    def __init__(self, config: LuxaConfig, gpu: GpuStatus, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.gpu = gpu
        self.left_out: dict[str, str] = {}  # backend -> why it is not in the chain
        self.chain: FallbackChain[TtsBackend] = FallbackChain.of(
            "tts", [(backend.name, backend, timeout_s) for backend, timeout_s in self._build_backends()],
            config.circuit_breaker, clock, StageMetrics("tts", latency="synthesis_seconds", requests="synthesis_total"))
        self.cache = AudioCache(config.cache.max_bytes, config.cache.ttl_s, clock) if config.cache.enabled else None
        TARGET.set(config.tts.latency_target_ms / 1000.0)

    def _build_backends(self) -> list[tuple[TtsBackend, float]]:
        built = []
        for name, backend_config in sorted(self.config.tts.backends.items(), key=lambda kv: kv[1].priority):
            cls = BACKENDS.get(name)
            if cls is None:
                raise ConfigError(f"config: unknown TTS backend tts.backends.{name} (allowed: {', '.join(BACKENDS)})")
            if not backend_config.enabled:
                self.left_out[name] = f"disabled (tts.backends.{name}.enabled=false)"
                continue
            backend = cls(self.config, backend_config, self.gpu)
            reason = backend.unavailable()
            if reason:
                log.warning("TTS backend %s is enabled but left out of the chain: %s", name, reason)
                self.left_out[name] = reason
                continue
            built.append((backend, backend_config.timeout_s))
        emergency = SilentEmergencyBackend(self.config, TtsBackendConfig(), self.gpu)
        return built + [(emergency, TtsBackendConfig().timeout_s)]

    async def start(self) -> None:
        """Load every backend once; one that fails to start has its breaker opened, not the process."""
        await self.chain.start(lambda backend: backend.start())

    def answer(self, voice: str | None = None, speed: float | None = None, language: str | None = None,
               backend: str | None = None) -> AnswerSession:
        """A session for one answer: its first real voice speaks all of it (TTS.answer)."""
        tts = self.config.tts
        return AnswerSession(self._speak, self._request(voice, speed, language, backend), tts.max_input_chars,
                             tts.max_chars, only=backend)

    async def synthesize(self, text: str, voice: str | None = None, speed: float | None = None,
                         language: str | None = None, backend: str | None = None) -> TTSResult:
        """The whole text as one audio, in one voice; long text is spoken piece by piece and joined."""
        return await self.answer(voice, speed, language, backend).say(text)

    def health(self) -> dict:
        """{"backends": {name: closed|half_open|open|why it is left out}, "cache": {...}}."""
        backends = {**self.chain.health(), **self.left_out}
        cache = {"entries": len(self.cache), "bytes": self.cache.bytes} if self.cache else {"enabled": False}
        return {"backends": backends, "cache": cache}

    async def close(self) -> None:
        for member in self.chain.members:
            await member.backend.close()

    def _request(self, voice: str | None, speed: float | None, language: str | None, backend: str | None) -> SpeechRequest:
        tts = self.config.tts
        language = (language or tts.default_language).strip().lower()
        if not _LANGUAGE.fullmatch(language):
            raise TextInputError(f"language {language!r} is not a language code such as en or fr")
        speed = tts.speed if speed is None else speed
        try:
            tts.model_copy().speed = speed  # the schema owns the allowed range
        except ValidationError as err:
            raise TextInputError(f"speed {speed!r}: {err.errors()[0]['msg']}") from None
        voices = tts.voices.get(language) or TtsVoiceConfig()
        request = SpeechRequest("", language, float(speed), voice, voices.piper, voices.system, voices.clone)
        if backend is not None:
            self._check_forced(backend, request)
        if voice and not any(_handles(m.backend, request) for m in self.chain.members if m.name != EMERGENCY):
            raise TextInputError(f"unknown voice {voice!r}: no enabled TTS backend has a voice of that name")
        return request

    def _check_forced(self, backend: str, request: SpeechRequest) -> None:
        if backend in self.left_out:
            raise BackendError(f"TTS backend {backend} is not available: {self.left_out[backend]}")
        member = self.chain.member(backend)  # BackendError naming the known ones
        if not _handles(member.backend, request):
            raise BackendError(f"TTS backend {backend} has no voice for language {request.language!r}")

    async def _speak(self, request: SpeechRequest, only: str | None) -> TTSResult:
        start = time.perf_counter()
        members = [m for m in self.chain.members
                   if m.name != EMERGENCY and (only is None or m.name == only) and _handles(m.backend, request)]
        hit = self._cache_lookup(request, members)
        if hit is not None:
            return TTSResult(True, hit.backend, time.perf_counter() - start, hit.audio, cached=True, text=request.text)
        failures: list[str] = []
        for member in members:
            try:
                done = await self.chain.call(lambda b: b.synthesize(request), validate=_invalid, only=member.name)
            except AllBackendsFailed as err:
                failures.append(_reason(err))
                continue
            if self.cache is not None:
                self.cache.put(_cache_key(member.backend, request), done.value, member.name)
            return TTSResult(True, member.name, time.perf_counter() - start, done.value,
                             error="; ".join(failures) or None, text=request.text)
        failures = failures or ["no enabled TTS backend can speak this request"]
        silent = replace(request, failures=tuple(failures))
        done = await self.chain.call(lambda b: b.synthesize(silent), only=EMERGENCY)
        return TTSResult(False, EMERGENCY, time.perf_counter() - start, done.value, error="; ".join(failures),
                         text=request.text)

    def _cache_lookup(self, request: SpeechRequest, members: list[ChainMember]):
        """Look up what the chain would use now: the first backend whose breaker is not open."""
        if self.cache is None:
            return None
        for member in members:
            if member.breaker.state is not BreakerState.OPEN:
                return self.cache.get(_cache_key(member.backend, request))
        return None


def _handles(backend: TtsBackend, request: SpeechRequest) -> bool:
    if request.voice:
        return backend.accepts_voice(request.voice)
    return backend.voice_for(request) is not None


def _cache_key(backend: TtsBackend, request: SpeechRequest) -> tuple:
    return (request.text,) + backend.cache_key(request)


def _invalid(audio: Audio) -> str | None:
    if not isinstance(audio, Audio) or audio.sample_rate <= 0:
        return "not audio"
    return problem(audio.samples)


def _reason(err: AllBackendsFailed) -> str:
    """'tts: every backend failed (piper_cli: timed out after 1 s)' -> 'piper_cli: timed out after 1 s'."""
    text = str(err)
    return text[text.find("(") + 1: -1] if text.endswith(")") and "(" in text else text
