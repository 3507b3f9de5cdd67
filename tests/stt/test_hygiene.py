"""Audio hygiene: every kind of unusable audio gets one clear line; fixable audio is fixed."""
import logging

import numpy as np
import pytest

from Config.schema import SttConfig
from Core.audio import STT_RATE, Audio, dbfs, load_audio
from Core.errors import AudioInputError
from STT.hygiene import prepare

CONFIG = SttConfig()
RNG = np.random.default_rng(7)


def speechlike(seconds: float, rate: int = STT_RATE, level: float = 0.1) -> np.ndarray:
    return (RNG.normal(0.0, level, int(seconds * rate))).astype(np.float32)


def refused(audio: Audio) -> str:
    with pytest.raises(AudioInputError) as err:
        prepare(audio, CONFIG)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_empty_audio_is_refused():
    assert "empty" in refused(Audio(np.zeros(0, np.float32), STT_RATE))


def test_audio_shorter_than_min_audio_s_is_refused():
    assert "too short" in refused(Audio(speechlike(CONFIG.min_audio_s / 2), STT_RATE))


def test_audio_longer_than_max_audio_s_is_refused():
    assert "too long" in refused(Audio(speechlike(CONFIG.max_audio_s + 1), STT_RATE))


def test_digital_silence_is_refused():
    assert "silent" in refused(Audio(np.zeros(STT_RATE, np.float32), STT_RATE))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_refused(bad):
    samples = speechlike(1.0)
    samples[100] = bad
    assert "NaN or Inf" in refused(Audio(samples, STT_RATE))


def test_a_zero_sample_rate_is_refused():
    assert "sample rate" in refused(Audio(speechlike(1.0), 0))


def test_clipped_audio_is_transcribed_with_a_warning(caplog):
    samples = np.clip(speechlike(1.0, level=2.0), -1.0, 1.0)
    with caplog.at_level(logging.WARNING, logger="STT.hygiene"):
        out = prepare(Audio(samples, STT_RATE), CONFIG)
    assert out.duration_s == pytest.approx(1.0)
    assert "clipped" in caplog.text


def test_stereo_44k_is_mixed_down_and_resampled_to_16k():
    stereo = np.stack([speechlike(1.5, 44100), speechlike(1.5, 44100)], axis=1)
    out = prepare(Audio(stereo, 44100), CONFIG)
    assert out.sample_rate == STT_RATE and out.samples.ndim == 1 and out.samples.dtype == np.float32
    assert out.duration_s == pytest.approx(1.5, abs=0.01)


def test_int16_samples_are_converted_to_float():
    pcm = (speechlike(1.0) * 32767).astype(np.int16)
    out = prepare(Audio(pcm, STT_RATE), CONFIG)
    assert out.samples.dtype == np.float32 and np.abs(out.samples).max() <= 1.0


def test_quiet_real_speech_is_not_mistaken_for_silence(corpus_dir):
    quiet = load_audio(corpus_dir / "fleurs" / "fleurs-en-004.ogg")  # about -67 dBFS
    assert dbfs(quiet.samples) < -60
    assert prepare(quiet, CONFIG).duration_s == pytest.approx(quiet.duration_s)


def test_an_unreadable_file_is_refused_in_one_line(tmp_path):
    bogus = tmp_path / "noise.wav"
    bogus.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(AudioInputError, match="cannot read audio file"):
        load_audio(bogus)


def test_quiet_audio_is_lifted_to_the_configured_level_and_loud_audio_is_left_alone():
    quiet = speechlike(1.0, level=10 ** (-60 / 20))
    assert dbfs(prepare(Audio(quiet, STT_RATE), CONFIG).samples) == pytest.approx(CONFIG.quiet_lift_dbfs, abs=0.1)
    loud = speechlike(1.0, level=0.1)
    np.testing.assert_array_equal(prepare(Audio(loud, STT_RATE), CONFIG).samples, loud)
    off = SttConfig(quiet_lift_dbfs=None)
    np.testing.assert_array_equal(prepare(Audio(quiet, STT_RATE), off).samples, quiet)


def test_the_lift_is_capped_at_40_db():
    faint = speechlike(1.0, level=10 ** (-78 / 20))  # just above stt.silence_dbfs
    lifted = prepare(Audio(faint, STT_RATE), SttConfig(quiet_lift_dbfs=-30.0)).samples
    assert dbfs(lifted) == pytest.approx(-38.0, abs=0.2)
