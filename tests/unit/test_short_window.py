"""The encoder-window trimming logic (the real model with it is in tests/stt)."""
from __future__ import annotations

import numpy as np

from STT.short_window import WHISPER_MAX_LENGTH, EncoderCache, max_new_tokens, trim_padding


def _window(content_frames: int) -> np.ndarray:
    """What faster-whisper hands its encoder: log-mel frames, then exact zeros up to 3000."""
    features = np.zeros((80, 3000), dtype=np.float32)
    features[:, :content_frames] = np.random.default_rng(1).uniform(-1.0, 1.0, (80, content_frames))
    return features


def test_padding_is_cut_to_the_asked_frames_after_the_last_voiced_frame():
    trimmed = trim_padding(_window(300), pad_frames=400)
    assert trimmed.shape == (80, 700)
    assert trimmed.flags["C_CONTIGUOUS"]  # CTranslate2 wants contiguous memory
    np.testing.assert_array_equal(trimmed, _window(300)[:, :700])


def test_a_full_window_and_a_batch_are_left_alone():
    full = _window(3000)
    assert trim_padding(full, 400) is full
    assert trim_padding(_window(2800), 400).shape == (80, 3000)
    batch = np.stack([_window(300)])
    assert trim_padding(batch, 400) is batch


def test_an_interior_zero_frame_does_not_end_the_content():
    features = _window(500)
    features[:, 100:200] = 0.0
    assert trim_padding(features, 100).shape == (80, 600)


def test_a_short_clip_keeps_padding_up_to_the_minimum_window():
    assert trim_padding(_window(200), 400, min_frames=1000).shape == (80, 1000)
    assert trim_padding(_window(800), 400, min_frames=1000).shape == (80, 1200)


def test_all_zero_features_keep_only_the_padding():
    assert trim_padding(np.zeros((80, 3000), dtype=np.float32), 400).shape == (80, 401)


def test_token_bound_grows_with_the_clip_and_stays_within_whisper():
    assert max_new_tokens(0.0) >= 16
    assert max_new_tokens(3.0) < max_new_tokens(10.0) < 200
    assert max_new_tokens(3600.0) <= WHISPER_MAX_LENGTH - 8


def test_the_encoder_cache_runs_the_encoder_once_per_features_and_keeps_the_latest():
    runs: list[float] = []

    def encode(features: np.ndarray) -> float:
        runs.append(float(features.sum()))
        return float(features.sum())

    cache = EncoderCache(size=2)
    a, b, c = (np.full((80, 1500), v, np.float32) for v in (1.0, 2.0, 3.0))
    assert cache.get(a, encode) == cache.get(a.copy(), encode) == 120000.0  # the same content, another array
    assert runs == [120000.0] and cache.hits == 1
    cache.get(b, encode)
    cache.get(c, encode)  # a is the oldest: dropped
    cache.get(a, encode)
    assert len(runs) == 4 and cache.hits == 1
    assert cache.get(a[:, :1000], encode) == 80000.0 and len(runs) == 5  # a shorter window is other features
