"""One answer's voice, from its first sentence to its last.

A reply is spoken sentence by sentence while the LLM is still writing it. The first backend that
produces real audio for the answer speaks all of it: when that backend fails later in the same
answer, the rest is left unspoken (the emergency silence, and one log line saying why) rather
than read on in another voice. The next answer starts afresh and may fall back. Every caller
speaks through a session: the voice loop, `--text`, `turn`, `say`, the control API, benchmarks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Awaitable, Callable

import numpy as np

from Core.audio import Audio
from Core.metrics import histogram
from Core.sentences import split_for_synthesis
from Core.text import sanitize
from TTS.base import SpeechRequest, TTSResult

log = logging.getLogger(__name__)

FIRST_AUDIO = histogram("luxa_tts_first_audio_seconds",
                        "time from an answer's first text handed to TTS to its first audio", ())

Speak = Callable[[SpeechRequest, "str | None"], Awaitable[TTSResult]]


class AnswerSession:
    def __init__(self, speak: Speak, base: SpeechRequest, max_input_chars: int, max_chars: int,
                 only: str | None = None) -> None:
        """`speak(request, only)` is the manager's chain for one piece; `only` forces a backend."""
        self._speak = speak
        self._base = base
        self._max_input_chars = max_input_chars
        self._max_chars = max_chars
        self.backend = only  # pinned by the first real audio, or forced by the caller
        self.first_audio_s: float | None = None
        self._started: float | None = None
        self._lost = False

    async def say(self, text: str) -> TTSResult:
        """`text` as one audio (long text is synthesised piece by piece and joined).

        Raises TextInputError for text with nothing speakable in it.
        """
        pieces = split_for_synthesis(sanitize(text, self._max_input_chars), self._max_chars)
        if self._started is None:
            self._started = time.perf_counter()
        results = [await self._piece(piece) for piece in pieces]
        return join(results)

    async def _piece(self, text: str) -> TTSResult:
        result = await self._speak(replace(self._base, text=text), self.backend)
        if result.success:
            self.backend = self.backend or result.backend
            if self.first_audio_s is None and self._started is not None:
                self.first_audio_s = time.perf_counter() - self._started
                FIRST_AUDIO.observe(self.first_audio_s)
        elif self.backend is not None and not self._lost:
            self._lost = True  # said once per answer: the breaker and the chain log the details
            log.warning("tts: %s, this answer's voice, failed mid-answer (%s); what is left of the answer "
                        "is not spoken rather than spoken in another voice", self.backend, result.error)
        return result


def join(results: list[TTSResult]) -> TTSResult:
    """Pieces of one text as one result, at the rate of the first real voice."""
    if len(results) == 1:
        return results[0]
    rate = next((r.audio.sample_rate for r in results if r.success), results[0].audio.sample_rate)
    samples = np.concatenate([r.audio.to_rate(rate).samples for r in results])
    errors = [r.error for r in results if r.error]
    real = next((r for r in results if r.success), results[0])
    return TTSResult(all(r.success for r in results), real.backend, sum(r.latency_s for r in results),
                     Audio(samples, rate), all(r.cached for r in results), "; ".join(errors) or None,
                     " ".join(r.text for r in results))
