"""Speech out in the formats OpenAI's /v1/audio/speech offers, encoded as it is synthesised.

PyAV (FFmpeg) encodes mp3 (libmp3lame), opus (libopus in Ogg), aac (ADTS) and flac; wav and pcm
are written here. Bytes leave as soon as the container has them, so a streamed answer starts
playing while its later sentences are still being synthesised: the Ogg muxer is told to close a
page every 100 ms instead of once a second, and a streamed WAV declares an unknown length.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from Core.audio import Audio, float32_to_pcm16, wav_bytes

if TYPE_CHECKING:  # PyAV loads only when a muxed format is asked for
    from av import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import OutputContainer

UNKNOWN_SIZE = 0xFFFFFFFF
OGG_PAGE_US = "100000"


@dataclass(frozen=True)
class Format:
    media_type: str
    muxer: str | None = None  # None: written here (wav, pcm)
    codec: str | None = None
    rate: int | None = None  # fixed output rate; None keeps the voice's own


# pcm is OpenAI's raw 24 kHz 16-bit little-endian mono; Opus takes 8/12/16/24/48 kHz only.
FORMATS = {
    "wav": Format("audio/wav"),
    "pcm": Format("audio/pcm", rate=24000),
    "flac": Format("audio/flac", "flac", "flac"),
    "mp3": Format("audio/mpeg", "mp3", "libmp3lame"),
    "opus": Format("audio/ogg", "ogg", "libopus", 24000),
    "aac": Format("audio/aac", "adts", "aac"),
}


@functools.cache
def available() -> tuple[str, ...]:
    """The formats this FFmpeg build can encode (wav and pcm always); asked once per process."""
    import av

    def has(codec: str | None) -> bool:
        try:
            return codec is None or av.codec.Codec(codec, "w") is not None
        except Exception:  # av raises its own UnknownCodecError (or ValueError) for a missing encoder
            return False

    return tuple(name for name, fmt in FORMATS.items() if has(fmt.codec))


def _frame(samples: np.ndarray, rate: int) -> AudioFrame:
    import av

    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate = rate
    return frame


def encode_whole(audio: Audio, name: str) -> bytes:
    """One complete file, with exact lengths where the format has them (WAV)."""
    if name == "wav":
        return wav_bytes(audio)
    encoder = Encoder(name)
    return encoder.feed(audio) + encoder.finish()


class Encoder:
    """Audio pieces in, the bytes they make out; the first piece fixes the rate (resampled to it after)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.format = FORMATS[name]
        self.rate: int | None = self.format.rate
        self._started = False  # wav, pcm: the first piece went out (the WAV header with it)
        self._container: OutputContainer | None = None
        self._stream: AudioStream | None = None
        self._out: list[bytes] = []

    def feed(self, audio: Audio) -> bytes:
        if self.rate is None:
            self.rate = audio.sample_rate
        rate = self.rate
        samples = audio.to_rate(rate).samples
        if self.format.muxer is None:
            head = self._wav_header(rate) if self.name == "wav" and not self._started else b""
            self._started = True
            return head + float32_to_pcm16(samples)
        self._open(rate)
        self._encode(_frame(np.ascontiguousarray(np.clip(samples, -1.0, 1.0)[None, :], dtype=np.float32), rate))
        return self._take()

    def finish(self) -> bytes:
        if self.format.muxer is None or self._container is None:
            return b""
        self._encode(None)
        self._container.close()
        return self._take()

    def _open(self, rate: int) -> None:
        if self._container is not None:
            return
        import av

        codec = self.format.codec
        assert codec is not None, "every muxed format names its encoder"
        options = {"page_duration": OGG_PAGE_US} if self.format.muxer == "ogg" else {}
        self._container = av.open(self, mode="w", format=self.format.muxer, options=options)
        self._stream = cast("AudioStream", self._container.add_stream(codec, rate=rate, layout="mono"))

    def _encode(self, frame: AudioFrame | None) -> None:
        assert self._container is not None and self._stream is not None, "opened first"
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def write(self, data: bytes | memoryview) -> int:
        """PyAV writes the container here; no seek(), so nothing already sent is rewritten."""
        self._out.append(bytes(data))
        return len(data)

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _wav_header(self, rate: int) -> bytes:
        """A 16-bit mono WAV header of unknown length, as streaming players expect."""
        block = 2
        return (b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVEfmt " +
                struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * block, block, 16) +
                b"data" + struct.pack("<I", UNKNOWN_SIZE))
