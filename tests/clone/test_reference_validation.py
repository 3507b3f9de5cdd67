"""Reference recordings that cannot make a voice are refused with one line, before any model work."""
from __future__ import annotations

import numpy as np
import pytest

from Config.schema import TtsCloneConfig
from Core.audio import Audio, load_audio, write_wav
from Core.errors import AudioInputError
from TTS.clone_reference import PEAK_TARGET, load_reference

CLONE = TtsCloneConfig()


@pytest.fixture(scope="module")
def speech(corpus_dir) -> Audio:
    return load_audio(corpus_dir / "fleurs" / "fleurs-en-001.ogg")


def _wav(tmp_path, audio: Audio, name: str = "ref.wav"):
    path = tmp_path / name
    write_wav(path, audio)
    return path


def test_a_real_recording_is_accepted_and_levelled(speech, corpus_dir):
    ref = load_reference(corpus_dir / "fleurs" / "fleurs-en-002.ogg", CLONE)  # about -63 dBFS RMS
    assert np.max(np.abs(ref.samples)) == pytest.approx(PEAK_TARGET, rel=1e-4)
    assert ref.sample_rate == 16000


def test_too_short_reference(tmp_path, speech):
    path = _wav(tmp_path, Audio(speech.samples[: int(1.5 * speech.sample_rate)], speech.sample_rate))
    with pytest.raises(AudioInputError, match=r"1\.5 s long: give at least 3 s"):
        load_reference(path, CLONE)


def test_too_long_reference(tmp_path, speech):
    long = Audio(np.tile(speech.samples, 4), speech.sample_rate)  # 35 s
    with pytest.raises(AudioInputError, match=r"give at most 30 s"):
        load_reference(_wav(tmp_path, long), CLONE)


def test_silent_reference(tmp_path):
    with pytest.raises(AudioInputError, match="is silent"):
        load_reference(_wav(tmp_path, Audio(np.zeros(5 * 16000, np.float32), 16000)), CLONE)


def test_unreadable_reference(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples")
    with pytest.raises(AudioInputError, match="cannot read audio file"):
        load_reference(path, CLONE)


def test_missing_reference(tmp_path):
    with pytest.raises(AudioInputError, match="not found"):
        load_reference(tmp_path / "absent.wav", CLONE)


def test_limits_come_from_the_config(tmp_path, speech):
    path = _wav(tmp_path, Audio(speech.samples[: 2 * speech.sample_rate], speech.sample_rate))
    assert load_reference(path, TtsCloneConfig(ref_min_s=1.0)).duration_s == pytest.approx(2.0)
