"""Check a reference recording before spending model time on it; one clear line when it is unusable."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from Config.schema import TtsCloneConfig
from Core.audio import SILENCE_DBFS, Audio, load_audio, problem
from Core.errors import AudioInputError

PEAK_TARGET = 0.9  # quiet recordings are common (FLEURS sits near -63 dBFS RMS): level them, do not refuse them


def load_reference(path: str | Path, clone: TtsCloneConfig) -> Audio:
    """The recording as mono float32, peak-normalised; AudioInputError naming what is wrong."""
    audio = load_audio(path)  # unreadable / missing / empty -> AudioInputError already
    samples = audio.samples
    why = problem(samples, silence_dbfs=-np.inf)  # empty or NaN; silence is judged on the peak below
    if why:
        raise AudioInputError(f"reference {path}: {why}")
    if audio.duration_s < clone.ref_min_s:
        raise AudioInputError(f"reference {path} is {audio.duration_s:.1f} s long: give at least "
                              f"{clone.ref_min_s:g} s of speech (tts.clone.ref_min_s)")
    if audio.duration_s > clone.ref_max_s:
        raise AudioInputError(f"reference {path} is {audio.duration_s:.1f} s long: give at most "
                              f"{clone.ref_max_s:g} s (tts.clone.ref_max_s); cut a clean passage")
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0 or 20.0 * np.log10(peak) < SILENCE_DBFS:
        raise AudioInputError(f"reference {path} is silent: record the speaker closer to the microphone")
    return Audio((samples * (PEAK_TARGET / peak)).astype(np.float32), audio.sample_rate)
