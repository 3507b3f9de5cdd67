"""The last member of the chain: a short silence instead of an exception.

The orchestrator must never stop mid-turn because speech failed; silence keeps the turn
(and the playback timing) going while the CRITICAL log line and the counter tell the operator.
"""
from __future__ import annotations

import logging

import numpy as np

from Core.audio import Audio
from Core.metrics import counter
from TTS.base import SpeechRequest, TtsBackend

log = logging.getLogger(__name__)
EMERGENCIES = counter("luxa_tts_emergency_total", "TTS requests answered with emergency silence")


class SilentEmergencyBackend(TtsBackend):
    name = "silent_emergency"

    def voice_for(self, request: SpeechRequest) -> str | None:
        return "silence"

    def accepts_voice(self, voice: str) -> bool:
        return True

    async def synthesize(self, request: SpeechRequest) -> Audio:
        EMERGENCIES.inc()
        reasons = "; ".join(request.failures) or "no backend could take the request"
        log.critical("every TTS backend failed, speaking %.2f s of silence instead of %r (%s)",
                     self.config.tts.emergency_silence_s, request.text[:80], reasons)
        # the pipeline's own rate: silence has no native rate, and this one needs no resampling
        rate = self.config.audio.sample_rate
        return Audio(np.zeros(int(round(self.config.tts.emergency_silence_s * rate)), np.float32), rate)
