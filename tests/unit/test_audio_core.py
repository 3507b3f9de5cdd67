"""Core.audio: conversions at the edges, resampling to 16 kHz, problem detection, file I/O."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from Core.audio import (
    STT_RATE, Audio, clipped_fraction, float32_to_pcm16, load_audio, mixdown, pcm16_to_float32, problem,
    resample, to_float32, to_int16, wav_bytes, write_wav,
)
from Core.errors import AudioInputError


def _sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_int16_to_float32_and_back_is_lossless():
    original = np.array([-32768, -12345, -1, 0, 1, 12345, 32767], dtype=np.int16)
    as_float = to_float32(original)
    assert as_float.dtype == np.float32
    assert as_float.min() >= -1.0 and as_float.max() < 1.0
    assert np.abs(to_int16(as_float).astype(np.int32) - original.astype(np.int32)).max() <= 1


def test_to_int16_clips_out_of_range_and_zeroes_nan():
    out = to_int16(np.array([2.0, -3.0, np.nan, np.inf], dtype=np.float32))
    assert out.tolist() == [32767, -32767, 0, 32767]


def test_pcm_bytes_round_trip():
    samples = _sine(440, STT_RATE, 0.1)
    data = float32_to_pcm16(samples)
    assert len(data) == 2 * len(samples)
    assert np.allclose(pcm16_to_float32(data), samples, atol=1 / 16384)


def test_mixdown_averages_channels_and_passes_mono_through():
    stereo = np.stack([np.full(10, 0.5, np.float32), np.full(10, -0.1, np.float32)], axis=1)
    assert np.allclose(mixdown(stereo), 0.2)
    mono = np.ones(10, np.float32)
    assert mixdown(mono) is mono


@pytest.mark.parametrize("source_rate", [44100, 48000, 22050])
def test_resample_to_16k_keeps_duration_and_pitch(source_rate: int):
    tone = _sine(1000.0, source_rate, 1.0)
    out = resample(tone, source_rate, STT_RATE)
    assert out.dtype == np.float32
    assert abs(len(out) - STT_RATE) <= 2
    assert abs(_peak_hz(out, STT_RATE) - 1000.0) < 5.0


def test_resample_at_the_same_rate_is_a_no_op():
    tone = _sine(300.0, STT_RATE, 0.1)
    assert np.array_equal(resample(tone, STT_RATE, STT_RATE), tone)


def test_audio_to_rate_and_duration():
    audio = Audio(_sine(440, 48000, 0.5), 48000)
    converted = audio.to_rate(STT_RATE)
    assert converted.sample_rate == STT_RATE
    assert converted.duration_s == pytest.approx(0.5, abs=0.001)


@pytest.mark.parametrize("samples, reason", [
    (np.zeros(0, np.float32), "empty"),
    (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
    (np.zeros(16000, np.float32), "silent"),
    (np.full(16000, 1e-5, np.float32), "silent"),
])
def test_problem_names_unusable_audio(samples: np.ndarray, reason: str):
    assert reason in problem(samples)


def test_problem_accepts_speech_level_audio():
    assert problem(_sine(200, STT_RATE, 0.5, amplitude=0.1)) is None


def test_clipped_fraction_counts_full_scale_samples():
    samples = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
    assert clipped_fraction(samples) == 0.5


@pytest.mark.parametrize("name, rate", [
    ("commands/living_room_light_en.wav", 16000),
    ("commands/turn_on_the_living_room_lamp.wav", 44100),  # stereo: mixed down
    ("commands/whats_your_name_french.wav", 44100),
    ("fleurs/fleurs-en-000.ogg", 16000),  # Opus
    ("fleurs/fleurs-fr-001.ogg", 16000),
])
def test_load_audio_reads_the_corpus_files(corpus_dir: Path, name: str, rate: int):
    audio = load_audio(corpus_dir / name)
    assert audio.sample_rate == rate
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert 1.0 < audio.duration_s < 30.0
    assert problem(audio.samples) is None


def test_missing_file_is_one_line_audio_input_error(tmp_path: Path):
    with pytest.raises(AudioInputError, match="not found") as caught:
        load_audio(tmp_path / "nope.wav")
    assert "\n" not in str(caught.value)


def test_empty_file_is_one_line_audio_input_error(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioInputError, match="empty"):
        load_audio(empty)


def test_file_that_is_not_audio_is_one_line_audio_input_error(tmp_path: Path):
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"this is a text file, not a RIFF header\n" * 50)
    with pytest.raises(AudioInputError, match="not a supported audio format") as caught:
        load_audio(junk)
    assert "\n" not in str(caught.value)


def test_write_wav_round_trips_through_load_audio(tmp_path: Path):
    target = tmp_path / "sub" / "tone.wav"
    tone = Audio(_sine(440, 22050, 0.25), 22050)
    write_wav(target, tone)
    back = load_audio(target)
    assert back.sample_rate == 22050
    assert np.allclose(back.samples, tone.samples, atol=1 / 16384)
    assert soundfile.info(str(target)).subtype == "PCM_16"


def test_write_wav_leaves_no_temporary_file_and_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch):
    target = tmp_path / "keep.wav"
    write_wav(target, Audio(_sine(440, 16000, 0.1), 16000))
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_wav(target, Audio(_sine(880, 16000, 0.2), 16000))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


def test_wav_bytes_is_a_readable_wav():
    import io

    data = wav_bytes(Audio(_sine(440, 16000, 0.1), 16000))
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == 16000 and len(samples) == 1600
