"""Wyoming PCM <-> LUXA audio: any rate, 8/16/32-bit, any channel count in; 16-bit mono out.

Wyoming audio is raw little-endian PCM described by rate, width (bytes) and channels. Inside
LUXA everything is float32 mono (Core.audio), so conversion happens once, at this edge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from Core.audio import STT_RATE, Audio, float32_to_pcm16, mixdown, to_float32

# little-endian; 8-bit is unsigned, like WAV
WIDTHS: dict[int, np.dtype] = {1: np.dtype("u1"), 2: np.dtype("<i2"), 4: np.dtype("<i4")}
NATIVE: dict[int, type] = {1: np.uint8, 2: np.int16, 4: np.int32}
MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 8


class FormatError(ValueError):
    """Audio the server cannot read: an unsupported format, or a chunk that does not fit it."""


@dataclass(frozen=True)
class PcmFormat:
    rate: int
    width: int
    channels: int

    def check(self) -> "PcmFormat":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.rate, self.width, self.channels)):
            raise FormatError("audio rate, width and channels must be integers")
        if self.width not in WIDTHS:
            raise FormatError(f"audio width {self.width} is not supported: use 1, 2 or 4 bytes per sample")
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise FormatError(f"audio rate {self.rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise FormatError(f"audio channels {self.channels} is outside 1-{MAX_CHANNELS}")
        return self

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels

    def seconds(self, n_bytes: int) -> float:
        return n_bytes / (self.frame_bytes * self.rate)


def to_audio(pcm: bytes, fmt: PcmFormat, rate: int = STT_RATE) -> Audio:
    """Raw PCM in `fmt` -> float32 mono at `rate`."""
    if len(pcm) % fmt.frame_bytes:
        raise FormatError(f"{len(pcm)} bytes of audio is not a whole number of {fmt.width}-byte "
                          f"x {fmt.channels}-channel frames")
    samples = to_float32(np.frombuffer(pcm, dtype=WIDTHS[fmt.width]).astype(NATIVE[fmt.width], copy=False))
    samples = mixdown(samples.reshape(-1, fmt.channels)) if fmt.channels > 1 else samples
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), fmt.rate).to_rate(rate)


def pcm16_chunks(audio: Audio, chunk_ms: int) -> list[bytes]:
    """Audio as 16-bit mono PCM at its own rate, cut into chunks of `chunk_ms`."""
    data = float32_to_pcm16(audio.samples)
    step = max(1, audio.sample_rate * chunk_ms // 1000) * 2
    return [data[i:i + step] for i in range(0, len(data), step)]
