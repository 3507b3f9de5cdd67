"""Endpointing: the state machine with a scripted detector, then the real webrtcvad + Silero."""
from __future__ import annotations

import numpy as np
import pytest

from Config.schema import VadConfig
from Core.audio import STT_RATE, dbfs, load_audio
from STT.scoring import word_error_rate
from STT.vad import Endpointer, QuietInputGain, SpeechDetector

FRAME_MS = 30
FRAME = STT_RATE * FRAME_MS // 1000
# the fixed-silence state machine; the turn model has its tests in test_turn_model.py
CONFIG = VadConfig(end_silence_ms=300, pre_roll_ms=90, min_speech_ms=150, max_utterance_s=3.0, pause_ms=30,
                   turn_model=None)


class ScriptedDetector:
    """Speech when the frame's first sample is positive: tests write the script into the audio."""

    threshold = 0.5

    def speech_probability(self, frame: np.ndarray) -> float:
        return 1.0 if frame[0] > 0 else 0.0

    def reset(self) -> None:
        return None


def frames(pattern: str) -> list[np.ndarray]:
    """'S' speech frame, '.' silence frame; each frame's samples hold its index for tracing."""
    out = []
    for i, ch in enumerate(pattern):
        frame = np.full(FRAME, (i + 1) / 10_000, np.float32)
        out.append(frame if ch == "S" else -frame)
    return out


def feed(endpointer: Endpointer, pattern: str):
    return [e for f in frames(pattern) for e in endpointer.process(f)]


def scripted() -> Endpointer:
    return Endpointer(CONFIG, STT_RATE, FRAME_MS, detector=ScriptedDetector())


def frame_indices(audio) -> list[int]:
    return [int(round(abs(v) * 10_000)) - 1 for v in audio.samples[::FRAME]]


def test_a_burst_shorter_than_min_speech_emits_nothing():
    assert feed(scripted(), "....SSSS" + "." * 20) == []


def test_speech_then_silence_gives_start_pause_end_with_pre_roll_and_short_tail():
    events = feed(scripted(), "......" + "S" * 10 + "." * 12)
    assert [e.kind for e in events] == ["speech_start", "pause", "end"]
    end = events[-1]
    # 3 frames of pre-roll (90 ms) before speech at frame 6, 10 speech frames, 3 frames of tail
    assert frame_indices(end.audio) == list(range(3, 19))
    assert end.start_t == pytest.approx(3 * FRAME_MS / 1000)
    assert end.t == pytest.approx((6 + 10 + 10) * FRAME_MS / 1000)  # end_silence_ms = 10 frames
    assert frame_indices(events[1].audio) == list(range(3, 17)), "pause carries the utterance so far"


def test_speech_returning_before_end_silence_resumes_the_same_utterance():
    events = feed(scripted(), "S" * 6 + "..." + "S" * 6 + "." * 12)
    assert [e.kind for e in events] == ["speech_start", "pause", "resume", "pause", "end"]
    assert frame_indices(events[-1].audio)[:15] == list(range(15))


def test_short_gaps_inside_speech_do_not_count_as_a_pause():
    debounced = Endpointer(CONFIG.model_copy(update={"pause_ms": 120}), STT_RATE, FRAME_MS, detector=ScriptedDetector())
    events = feed(debounced, "S" * 6 + "..." + "S" * 6 + "." * 12)
    assert [e.kind for e in events] == ["speech_start", "pause", "end"]
    assert frame_indices(events[1].audio)[:15] == list(range(15)), "the pause comes after the real end"


def test_an_utterance_is_cut_at_max_utterance_s():
    events = feed(scripted(), "S" * 120)
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) >= 1 and ends[0].audio.duration_s == pytest.approx(CONFIG.max_utterance_s, abs=0.031)


def test_reset_drops_the_utterance_in_progress():
    endpointer = scripted()
    feed(endpointer, "S" * 8)
    endpointer.reset()
    assert feed(endpointer, "." * 20) == []


@pytest.mark.integration  # the real Silero VAD model
def test_frames_of_the_wrong_length_or_rate_are_refused():
    with pytest.raises(ValueError, match="480 samples"):
        SpeechDetector(VadConfig()).speech_probability(np.zeros(512, np.float32))
    with pytest.raises(ValueError, match="16000 Hz"):
        SpeechDetector(VadConfig(), sample_rate=8000)


# --- the real detector -------------------------------------------------------------------------

def stream(endpointer: Endpointer, samples: np.ndarray):
    usable = len(samples) // FRAME * FRAME
    return [e for i in range(0, usable, FRAME) for e in endpointer.process(samples[i:i + FRAME])]


def loud_span(samples: np.ndarray, below_peak_db: float = 25.0) -> tuple[float, float]:
    """First and last 30 ms frame within `below_peak_db` of the loudest: where the speech is,
    judged by energy alone so the check does not rely on the VAD under test."""
    levels = np.array([dbfs(samples[i:i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME)])
    loud = np.flatnonzero(levels > levels.max() - below_peak_db)
    return loud[0] * FRAME / STT_RATE, (loud[-1] + 1) * FRAME / STT_RATE


@pytest.mark.integration  # the real Silero VAD model
@pytest.mark.parametrize("name", ["living_room_light_en.wav", "turn_on_the_living_room_lamp.wav",
                                  "whats_your_name_french.wav"])
def test_a_recording_padded_with_silence_gives_exactly_one_utterance_covering_the_speech(corpus_dir, name):
    speech = load_audio(corpus_dir / "commands" / name).to_rate(STT_RATE).samples
    pad_s = 1.0
    padded = np.concatenate([np.zeros(int(pad_s * STT_RATE), np.float32), speech,
                             np.zeros(2 * STT_RATE, np.float32)])
    events = stream(Endpointer(VadConfig()), padded)
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) == 1 and events[0].kind == "speech_start"
    first, last = loud_span(speech)
    begins, finishes = ends[0].start_t, ends[0].start_t + ends[0].audio.duration_s
    assert begins <= pad_s + first and finishes >= pad_s + last
    assert finishes <= pad_s + len(speech) / STT_RATE + 0.5, "trailing silence should be trimmed"


@pytest.mark.integration  # the real Silero VAD model
@pytest.mark.parametrize("gain_db, heard", [(30.0, True), (0.0, False)])
def test_quiet_clean_speech_opens_the_gate_only_with_the_quiet_input_gain(corpus_dir, gain_db, heard):
    """fleurs-en-004 as recorded, about -67 dBFS: webrtcvad alone never hears it."""
    speech = load_audio(corpus_dir / "fleurs" / "fleurs-en-004.ogg").to_rate(STT_RATE).samples
    assert dbfs(speech) < -60
    padded = np.concatenate([np.zeros(STT_RATE, np.float32), speech, np.zeros(2 * STT_RATE, np.float32)])
    ends = [e for e in stream(Endpointer(VadConfig(quiet_input_gain_db=gain_db)), padded) if e.kind == "end"]
    assert bool(ends) is heard
    if heard:  # most of the 4.3 s clip, not a fragment
        assert sum(e.audio.duration_s for e in ends) > 0.6 * len(speech) / STT_RATE


def test_quiet_input_gain_lifts_only_input_whose_noise_floor_is_under_60_dbfs():
    rng = np.random.default_rng(3)
    ordinary, clean = QuietInputGain(30.0), QuietInputGain(30.0)
    for _ in range(120):
        ordinary.apply(rng.normal(0, 10 ** (-50 / 20), FRAME).astype(np.float32))
        clean.apply(rng.normal(0, 10 ** (-80 / 20), FRAME).astype(np.float32))
    assert ordinary.gain == 1.0  # a normal microphone is left as it is
    assert 10 ** (15 / 20) < clean.gain <= 10 ** (21 / 20)  # -80 dBFS floor -> lifted by about 20 dB
    silent = QuietInputGain(30.0)
    loud = np.full(FRAME, 0.5, np.float32)
    for _ in range(50):
        silent.apply(np.zeros(FRAME, np.float32))
    assert np.abs(silent.apply(loud)).max() <= 1.0  # capped gain, clipped to full scale
    assert silent.gain == pytest.approx(10 ** (30 / 20))
    assert QuietInputGain(0.0).apply(loud) is loud


@pytest.mark.integration  # the real Silero VAD model
@pytest.mark.parametrize("kind", ["digital silence", "white noise", "brown noise", "faint hiss"])
def test_silence_and_noise_emit_nothing(kind):
    rng = np.random.default_rng(5)
    n = 5 * STT_RATE
    if kind == "digital silence":
        samples = np.zeros(n, np.float32)
    elif kind == "faint hiss":  # -85 dBFS: the quiet input gain lifts it by the full 30 dB
        samples = rng.normal(0, 10 ** (-85 / 20), n).astype(np.float32)
    elif kind == "white noise":
        samples = rng.normal(0, 0.1, n).astype(np.float32)
    else:
        walk = np.cumsum(rng.normal(0, 1, n))
        walk -= np.convolve(walk, np.ones(400) / 400, "same")  # keep the rumble from drifting off
        samples = (0.3 * walk / np.abs(walk).max()).astype(np.float32)
    assert stream(Endpointer(VadConfig()), samples) == []


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="session")
async def test_the_endpointed_utterance_transcribes_to_the_reference(real_stt, command_clips):
    clip = command_clips[0]
    speech = load_audio(clip.path).to_rate(STT_RATE).samples
    padded = np.concatenate([np.zeros(STT_RATE, np.float32), speech, np.zeros(STT_RATE, np.float32)])
    end = next(e for e in stream(Endpointer(VadConfig()), padded) if e.kind == "end")
    result = await real_stt.transcribe(end.audio, "en")
    assert word_error_rate([clip.reference], [result.text]) <= 0.2, result.text
