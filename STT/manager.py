"""RobustSTTManager: hygiene, then the Whisper fallback chain, then the hallucination filter.

The chain's last word is "nothing heard" (an empty Transcript): a voice assistant that cannot
transcribe should stay quiet and keep listening, not crash the turn loop.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Protocol

from Config.schema import LuxaConfig
from Core.audio import Audio
from Core.errors import AllBackendsFailed, BackendError, ConfigError, LuxaError
from Core.fallback import FallbackChain
from Core.gpu import GpuStatus
from Core.metrics import histogram
from STT.filters import collapse_repeated_utterance, garbage_reason, strip_hallucinations
from STT.hygiene import prepare
from STT.transcript import Decoded, DecodeOptions, Transcript
from STT.whisper_backend import DEFAULT_OPTIONS, WhisperBackend

log = logging.getLogger(__name__)

RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
NOTHING_HEARD = "none"


class SttBackend(Protocol):
    """What the chain needs from a backend (WhisperBackend, or a fake in unit tests)."""

    name: str

    @property
    def loaded(self) -> bool: ...

    @property
    def multilingual(self) -> bool: ...  # False: English only, cannot translate

    async def load(self) -> None: ...
    async def warm_up(self) -> None: ...
    async def transcribe(self, audio: Audio, language: str | None, options: DecodeOptions) -> Decoded: ...
    async def close(self) -> None: ...


class RobustSTTManager:
    def __init__(self, config: LuxaConfig, gpu: GpuStatus, *,
                 backends: Mapping[str, SttBackend] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        """`backends` replaces the Whisper backends by name (unit tests); `clock` drives the breakers."""
        self.config = config
        self.stt = config.stt
        enabled = sorted((b.priority, name) for name, b in self.stt.backends.items() if b.enabled)
        if not enabled:
            raise ConfigError("stt.backends: no backend is enabled; enable at least one")
        members: list[tuple[str, SttBackend, float]] = []
        for _, name in enabled:
            backend = backends[name] if backends is not None else WhisperBackend(
                name, self.stt.backends[name], self.stt, config.models.dir, gpu)
            members.append((name, backend, self.stt.backends[name].timeout_s))
        self.chain: FallbackChain[SttBackend] = FallbackChain.of("stt", members, config.circuit_breaker, clock)
        self.rtf = histogram("luxa_stt_rtf", "STT real-time factor (processing time / audio time)",
                             ("backend",), buckets=RTF_BUCKETS)

    async def start(self) -> None:
        """Eager mode loads and warms every backend now; one that fails is skipped, not fatal."""
        if self.stt.load == "eager":
            await self.chain.start(_prepare)

    async def warm_up(self) -> None:
        await self.chain.start(_prepare, [m for m in self.chain.members if m.backend.loaded])

    async def transcribe(self, audio: Audio, language: str | None = None, options: DecodeOptions = DEFAULT_OPTIONS,
                         backend: str | None = None) -> Transcript:
        """Raises AudioInputError for unusable audio, ConfigError when no backend can do the task, BackendError
        for an unknown `backend` (one backend of the chain, forced); never raises because a backend failed."""
        start = time.perf_counter()
        language = self._language(language)
        capable = self._capable(options, backend)
        clean = prepare(audio, self.stt)
        try:
            result = await self.chain.call(lambda b: b.transcribe(clean, language, options), validate=self._invalid,
                                           only=backend, where=capable)
        except AllBackendsFailed as err:
            log.error("%s: nothing heard", err)
            return Transcript("", language, 0.0, clean.duration_s, time.perf_counter() - start, NOTHING_HEARD)
        decoded = result.value
        text = collapse_repeated_utterance(strip_hallucinations(decoded.text))
        if text != decoded.text:
            log.info("STT %s: dropped hallucinated or repeated text %r", result.backend, decoded.text)
        segments = tuple(s for s in decoded.segments if strip_hallucinations(s.text.strip()))
        self.rtf.labels(result.backend).observe(result.latency_s / clean.duration_s)
        return Transcript(text, decoded.language, decoded.language_probability, clean.duration_s,
                          time.perf_counter() - start, result.backend, segments)

    def _capable(self, options: DecodeOptions, backend: str | None) -> Callable[[SttBackend], bool] | None:
        """Translation skips the English-only models: they cannot fail at what they were never asked."""
        if options.task == "transcribe":
            return None
        if not any(m.backend.multilingual for m in self.chain.members if backend in (None, m.name)):
            raise ConfigError(f"no multilingual STT backend{f' {backend}' if backend else ''} to {options.task} "
                              f"with (English-only models such as tiny.en cannot)")
        return _multilingual

    def _language(self, requested: str | None) -> str | None:
        language = (requested or self.stt.language or "").strip().lower() or None
        if language is not None:
            from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's own list, no public name

            if language not in _LANGUAGE_CODES:
                raise ConfigError(f"unknown language {language!r}: use a Whisper language code such as en, fr, de")
        return language

    def _invalid(self, decoded: Decoded) -> str | None:
        """Garbage fails the backend so the next one is asked; subtitle credits are only stripped."""
        if not isinstance(decoded, Decoded):
            return f"expected a Decoded result, got {type(decoded).__name__}"
        return garbage_reason(decoded.text, self.stt.max_word_repeats, self.stt.max_char_repeats)

    def health(self) -> dict:
        states = self.chain.health()
        return {
            m.name: {"state": states[m.name], "loaded": bool(m.backend.loaded),
                     "model": self.stt.backends[m.name].model}
            for m in self.chain.members
        }

    async def close(self) -> None:
        for member in self.chain.members:
            try:
                await member.backend.close()
            except Exception:  # closing one backend must not keep the others open
                log.warning("closing STT backend %s failed", member.name, exc_info=True)


def _multilingual(backend: SttBackend) -> bool:
    return backend.multilingual


async def _prepare(backend: SttBackend) -> None:
    try:
        await backend.load()
        await backend.warm_up()
    except LuxaError:
        raise
    except Exception as err:  # a broken model file fails inside the engine: named, and skipped by the chain
        raise BackendError(f"{backend.name} unusable: {err}") from err
