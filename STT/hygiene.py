"""Audio hygiene: turn what a caller hands in into 16 kHz mono float32 Whisper can use, or refuse.

Refusing here with one clear line is cheaper and kinder than letting Whisper hallucinate on
silence or crash on NaN deep inside a worker thread.
"""
from __future__ import annotations

import logging

import numpy as np

from Config.schema import SttConfig
from Core import audio as core_audio
from Core.audio import STT_RATE, Audio
from Core.errors import AudioInputError

log = logging.getLogger(__name__)


def prepare(audio: Audio, config: SttConfig) -> Audio:
    """Validate, mix down and resample; raise AudioInputError (one line) for unusable audio."""
    if audio.sample_rate <= 0:
        raise AudioInputError(f"invalid sample rate {audio.sample_rate} Hz")
    samples = core_audio.mixdown(core_audio.to_float32(audio.samples))
    if samples.ndim != 1:
        raise AudioInputError(f"audio must be mono or (frames, channels), got shape {audio.samples.shape}")
    if samples.size and np.all(np.isfinite(samples)):
        duration = samples.size / audio.sample_rate
        if duration < config.min_audio_s:
            raise AudioInputError(f"audio is too short: {duration:.2f} s (stt.min_audio_s={config.min_audio_s:g})")
        if duration > config.max_audio_s:
            raise AudioInputError(f"audio is too long: {duration:.1f} s (stt.max_audio_s={config.max_audio_s:g})")
    reason = core_audio.problem(samples, config.silence_dbfs)
    if reason:
        raise AudioInputError(reason)
    clipped = core_audio.clipped_fraction(samples)
    if clipped > config.clipped_warn_fraction:
        log.warning("audio is clipped (%.1f%% of samples at full scale): transcribing anyway", 100 * clipped)
    samples = np.clip(samples, -1.0, 1.0)
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), audio.sample_rate).to_rate(STT_RATE)
