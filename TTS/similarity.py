"""How close a synthesised voice sounds to its reference: a cheap check, not a speaker verifier.

Three features that survive a change of words: the voice's median pitch (pYIN, 50-500 Hz),
its brightness (mean spectral centroid) and its timbre (mean MFCC, 13 coefficients), combined
as 0.3 pitch + 0.3 brightness + 0.4 MFCC cosine into a score in [0, 1]. Run at prompt
creation (reference vs the reference text spoken by the clone) and exported as a gauge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from Core.audio import Audio, problem
from Core.errors import AudioInputError
from Core.metrics import gauge

RATE = 16000  # both sides are compared at one rate: centroid and MFCC depend on it
PITCH_MIN_HZ, PITCH_MAX_HZ = 50.0, 500.0
WEIGHTS = (0.3, 0.3, 0.4)  # pitch, brightness, MFCC: the definition of the score (issue 6)
SIMILARITY = gauge("luxa_tts_clone_similarity", "voice similarity of the last clone prompt to its reference (0-1)")


@dataclass(frozen=True)
class VoiceFeatures:
    pitch_hz: float | None  # None when nothing is voiced
    centroid_hz: float
    mfcc: np.ndarray  # mean of 13 coefficients over the clip


@dataclass(frozen=True)
class Similarity:
    pitch: float
    brightness: float
    mfcc: float

    @property
    def score(self) -> float:
        w_pitch, w_bright, w_mfcc = WEIGHTS
        return w_pitch * self.pitch + w_bright * self.brightness + w_mfcc * self.mfcc


def features(audio: Audio) -> VoiceFeatures:
    import librosa

    y = audio.to_rate(RATE).samples.astype(np.float32)
    peak = float(np.max(np.abs(y))) if y.size and np.all(np.isfinite(y)) else 0.0
    # quiet is not silent: FLEURS clips sit near -63 dBFS RMS; every feature here ignores the level
    why = problem(y / peak) if peak > 0 else (problem(y) or "audio is silent")
    if why:
        raise AudioInputError(f"cannot measure a voice: {why}")
    y = y / peak
    f0, voiced, _ = librosa.pyin(y, fmin=PITCH_MIN_HZ, fmax=PITCH_MAX_HZ, sr=RATE)
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    pitch = float(np.median(voiced_f0)) if voiced_f0.size else None
    centroid = float(np.mean(librosa.feature.spectral_centroid(y=y, sr=RATE)))
    mfcc = librosa.feature.mfcc(y=y, sr=RATE, n_mfcc=13).mean(axis=1)
    return VoiceFeatures(pitch, centroid, mfcc)


def compare(a: VoiceFeatures, b: VoiceFeatures) -> Similarity:
    return Similarity(_pitch_similarity(a.pitch_hz, b.pitch_hz),
                      _ratio_similarity(a.centroid_hz, b.centroid_hz),
                      _cosine(a.mfcc[1:], b.mfcc[1:]))


def similarity(reference: Audio, candidate: Audio) -> Similarity:
    return compare(features(reference), features(candidate))


def _pitch_similarity(a: float | None, b: float | None) -> float:
    """1 for the same pitch, falling linearly to 0 an octave apart (pitch is heard on a log scale)."""
    if a is None or b is None:
        return 0.0 if (a is None) != (b is None) else 1.0
    return max(0.0, 1.0 - abs(np.log2(a / b)))


def _ratio_similarity(a: float, b: float) -> float:
    high = max(a, b)
    return 1.0 - abs(a - b) / high if high > 0 else 1.0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the mean MFCCs without c0: c0 is loudness, which says nothing about the voice
    and, being by far the largest, would push every pair towards 1."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return max(0.0, float(np.dot(a, b)) / norm) if norm > 0 else 0.0
