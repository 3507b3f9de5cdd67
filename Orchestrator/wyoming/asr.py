"""One transcribe request's audio as it arrives: checked, collected, and optionally endpointed.

With wyoming.endpointing the server tells clients it needs no external VAD
(`requires_external_vad=false`) and runs LUXA's own endpointer (STT/vad.py, the voice loop's)
on the incoming audio: the transcript goes out when the speaker stops, not when the client
stops streaming. The client's `vad_sensitivity` scales the trailing silence that ends a turn.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from Config.schema import VadConfig
from Core.audio import STT_RATE, Audio
from Orchestrator.wyoming.convert import FormatError, PcmFormat, to_audio

if TYPE_CHECKING:  # for mypy only: loaded when endpointing is on
    from STT.vad import Endpointer

# vad_sensitivity -> factor on vad.end_silence_ms (Home Assistant's names)
SENSITIVITY = {"relaxed": 1.5, "default": 1.0, "aggressive": 0.6}
FRAME_MS = 30


class AudioIn:
    def __init__(self, fmt: PcmFormat, max_audio_s: float, vad: VadConfig | None = None,
                 sensitivity: str | None = None) -> None:
        self.format = fmt
        self.max_audio_s = max_audio_s
        self._pcm = bytearray()
        self._endpointer: Endpointer | None = None
        self._pending = np.zeros(0, np.float32)
        if vad is not None:
            from STT.vad import Endpointer  # webrtcvad + Silero: only when endpointing is on

            factor = SENSITIVITY.get(str(getattr(sensitivity, "value", sensitivity) or "default"), 1.0)
            silence = min(3000, max(100, round(vad.end_silence_ms * factor)))
            longest = min(5000, max(100, round(vad.turn_max_silence_ms * factor)))
            self._endpointer = Endpointer(vad.model_copy(update={"end_silence_ms": silence,
                                                                 "turn_max_silence_ms": longest}), STT_RATE, FRAME_MS)

    def add(self, pcm: bytes, rate: int, width: int, channels: int) -> Audio | None:
        """Take one chunk; the utterance when the endpointer heard its end, else None.

        Raises FormatError for a chunk that does not fit the stream, ValueError past max_audio_s.
        """
        fmt = self.format
        if (rate, width, channels) != (fmt.rate, fmt.width, fmt.channels):
            raise FormatError(f"audio-chunk format {rate} Hz/{width} B/{channels} ch differs from "
                              f"audio-start's {fmt.rate}/{fmt.width}/{fmt.channels}")
        if len(pcm) % fmt.frame_bytes:
            raise FormatError(f"audio-chunk of {len(pcm)} bytes is not whole {fmt.frame_bytes}-byte frames "
                              "(wrong width or channels?)")
        self._pcm += pcm
        if fmt.seconds(len(self._pcm)) > self.max_audio_s:
            raise ValueError(f"audio longer than {self.max_audio_s:g} s (wyoming.max_audio_s)")
        return self._endpoint(self._endpointer, pcm) if self._endpointer is not None and pcm else None

    def audio(self) -> Audio:
        """Everything received, as float32 mono at 16 kHz."""
        return to_audio(bytes(self._pcm), self.format)

    def _endpoint(self, endpointer: Endpointer, pcm: bytes) -> Audio | None:
        # each chunk is resampled on its own: edge effects at chunk joins do not matter to a VAD
        samples = np.concatenate([self._pending, to_audio(pcm, self.format).samples])
        frame = STT_RATE * FRAME_MS // 1000
        whole = len(samples) // frame * frame
        self._pending = samples[whole:]
        for start in range(0, whole, frame):
            for event in endpointer.process(samples[start:start + frame]):
                if event.kind == "end":
                    return event.audio
        return None
