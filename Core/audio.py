"""Audio values and conversions shared by every stage: float32 mono at a known rate.

Everything inside LUXA is float32 in [-1, 1], mono; int16 and bytes exist only at the edges
(devices, WAV files, engines that speak PCM).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from Core.errors import AudioInputError
from Core.files import atomic_write

STT_RATE = 16000
SILENCE_DBFS = -60.0
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, [-1, 1]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    def to_rate(self, rate: int) -> "Audio":
        return self if rate == self.sample_rate else Audio(resample(self.samples, self.sample_rate, rate), rate)

    def wav_bytes(self) -> bytes:
        return wav_bytes(self)


def to_float32(x: np.ndarray) -> np.ndarray:
    """int16/int32/float of any shape -> float32 with the same shape."""
    x = np.asarray(x)
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if x.dtype == np.int32:
        return x.astype(np.float32) / 2147483648.0
    if x.dtype == np.uint8:
        return (x.astype(np.float32) - 128.0) / 128.0
    return x.astype(np.float32, copy=False)


def to_int16(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float32(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int16).astype(np.float32) / 32768.0


def float32_to_pcm16(x: np.ndarray) -> bytes:
    return to_int16(x).tobytes()


def mixdown(x: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging; mono passes through."""
    x = np.asarray(x)
    return x.mean(axis=1, dtype=np.float32) if x.ndim == 2 else x


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    import soxr  # imported here: only the rare non-16 kHz path pays for it

    return soxr.resample(np.asarray(x, dtype=np.float32), src_rate, dst_rate, quality="HQ").astype(np.float32)


def dbfs(x: np.ndarray) -> float:
    if len(x) == 0:
        return -float("inf")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else -float("inf")


def problem(samples: np.ndarray, silence_dbfs: float = SILENCE_DBFS) -> str | None:
    """Why this audio is unusable (empty, NaN/Inf, all silence), or None when it is fine."""
    if samples.size == 0:
        return "empty audio"
    if not np.all(np.isfinite(samples)):
        return "audio contains NaN or Inf samples"
    if dbfs(samples) < silence_dbfs:
        return "audio is silent"
    return None


def clipped_fraction(samples: np.ndarray) -> float:
    return float(np.mean(np.abs(samples) >= CLIP_LEVEL)) if samples.size else 0.0


def load_audio(path: str | Path) -> Audio:
    """Read WAV/FLAC/Ogg (Opus, Vorbis) or anything FFmpeg reads; mono float32 at the file's rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioInputError(f"audio file is empty: {path}")
    try:
        import soundfile

        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return Audio(np.ascontiguousarray(mixdown(data)), int(rate))
    except Exception:
        pass  # libsndfile does not know every container: let FFmpeg try before giving up
    try:
        return _load_with_av(path)
    except Exception:
        raise AudioInputError(f"cannot read audio file {path}: not a supported audio format") from None


def _load_with_av(path: Path) -> Audio:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [
            frame.to_ndarray().reshape(-1)
            for packet in container.decode(stream)
            for frame in resampler.resample(packet)
        ]
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return Audio(samples, rate)


def wav_bytes(audio: Audio) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, to_int16(audio.samples), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: str | Path, audio: Audio) -> None:
    """Write atomically: a reader never sees a half-written file, a crash leaves the old one."""
    with atomic_write(path) as out:
        out.write(wav_bytes(audio))
