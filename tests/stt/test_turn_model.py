"""The end of turn that listens: smart-turn v3.2 on real speech, the endpointer's graded wait, faults."""
from __future__ import annotations

import logging
from concurrent.futures import Future

import numpy as np
import pytest

from Config.schema import VadConfig
from Core import models
from Core.audio import STT_RATE, dbfs, load_audio
from Core.errors import ModelMissingError
from STT.turn_model import TurnJudge, features
from STT.vad import Endpointer
from tests.stt.test_endpointer import FRAME, FRAME_MS, ScriptedDetector, feed

# --- the graded wait, with a scripted detector and a judge that answers at once -------------------

LOGIC = VadConfig(end_silence_ms=300, pre_roll_ms=90, min_speech_ms=150, max_utterance_s=30.0, pause_ms=30,
                  turn_model="scripted", turn_min_silence_ms=90, turn_unsure_silence_ms=300,
                  turn_max_silence_ms=900, turn_threshold=0.5, turn_sure_threshold=0.9)


class InstantJudge:
    """Answers every utterance with the same probability (or raises), and counts what it was asked."""

    def __init__(self, p: float | Exception):
        self.p = p
        self.asked: list[int] = []

    def submit(self, samples: np.ndarray) -> Future[float]:
        self.asked.append(len(samples))
        future: Future[float] = Future()
        if isinstance(self.p, Exception):
            future.set_exception(self.p)
        else:
            future.set_result(self.p)
        return future


def end_frame(p: float | Exception, pattern: str = "S" * 10 + "." * 40) -> int | None:
    """Index of the frame (counted from the first silent one) at which the turn ended."""
    events = feed(Endpointer(LOGIC, STT_RATE, FRAME_MS, detector=ScriptedDetector(), judge=InstantJudge(p)), pattern)
    ends = [e for e in events if e.kind == "end"]
    return round(ends[0].t * 1000 / FRAME_MS) - 10 if ends else None


def test_the_verdict_sets_the_silence_that_ends_the_turn():
    # asked on the 3rd silent frame (90 ms); this judge answers at once, so it is read on that frame
    assert end_frame(0.95) == 3  # sure: at once
    assert end_frame(0.7) == 10  # unsure: turn_unsure_silence_ms, 300 ms
    assert end_frame(0.1) == 30  # incomplete: turn_max_silence_ms, 900 ms


def test_a_failing_model_waits_for_the_maximum_silence_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="STT.vad"):
        assert end_frame(RuntimeError("onnx says no")) == 30
    assert "end-of-turn model failed (onnx says no)" in caplog.text


def test_speech_resuming_drops_the_verdict_and_the_next_pause_is_judged_again():
    judge = InstantJudge(0.1)
    endpointer = Endpointer(LOGIC, STT_RATE, FRAME_MS, detector=ScriptedDetector(), judge=judge)
    # a 600 ms pause judged incomplete does not end the turn; the speaker goes on
    events = feed(endpointer, "S" * 10 + "." * 20 + "S" * 10 + "." * 40)
    assert [e.kind for e in events] == ["speech_start", "pause", "resume", "pause", "end"]
    assert len(judge.asked) == 2 and judge.asked[1] > judge.asked[0]  # the whole utterance, pause included
    assert round(events[-1].t * 1000 / FRAME_MS) == 40 + 30


def test_without_a_model_the_fixed_silence_ends_the_turn():
    endpointer = Endpointer(LOGIC, STT_RATE, FRAME_MS, detector=ScriptedDetector(), judge=None)
    ends = [e for e in feed(endpointer, "S" * 10 + "." * 40) if e.kind == "end"]
    assert round(ends[0].t * 1000 / FRAME_MS) - 10 == 10  # end_silence_ms, 300 ms


# --- the model file ----------------------------------------------------------------------------

def test_a_missing_model_falls_back_to_the_fixed_silence_with_one_line(caplog):
    config = VadConfig(turn_model="no-such-turn-model", end_silence_ms=300, pre_roll_ms=90, min_speech_ms=150)
    with caplog.at_level(logging.WARNING, logger="STT.turn_model"):
        endpointer = Endpointer(config, STT_RATE, FRAME_MS, detector=ScriptedDetector())
        again = Endpointer(config, STT_RATE, FRAME_MS, detector=ScriptedDetector())  # one line per process
    assert endpointer.judge is None and again.judge is None
    ends = [e for e in feed(endpointer, "S" * 10 + "." * 40) if e.kind == "end"]
    assert round(ends[0].t * 1000 / FRAME_MS) - 10 == 10  # end_silence_ms, 300 ms
    lines = [r.getMessage() for r in caplog.records if r.name == "STT.turn_model"]
    assert len(lines) == 1 and "\n" not in lines[0] and "no-such-turn-model" in lines[0]
    assert "fixed silence" in lines[0]


def test_the_shipped_model_missing_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(models, "package_dir", lambda package: None)
    with pytest.raises(ModelMissingError) as caught:
        TurnJudge.load("smart-turn-v3.2")
    assert "pipecat-ai" in str(caught.value) and "\n" not in str(caught.value)


# --- the real model on real speech ---------------------------------------------------------------

@pytest.fixture(scope="module")
def judge() -> TurnJudge:
    return TurnJudge.load("smart-turn-v3.2")


def levelled(path) -> np.ndarray:
    """At a speaking level (bench turn-end's -20 dBFS RMS): some corpus clips are far quieter."""
    x = load_audio(path).to_rate(STT_RATE).samples
    return np.clip(x * 10 ** ((-20 - dbfs(x)) / 20), -1, 1).astype(np.float32)


def first_end(judge: TurnJudge, samples: np.ndarray, config: VadConfig):
    """(silence heard before the first end, in s; the endpointer). A pending verdict is waited for
    before the next frame, so the outcome does not hang on how busy the machine is (bench turn-end
    paces frames in real time instead)."""
    rng = np.random.default_rng(0)
    floor = rng.normal(0, 10 ** (-60 / 20), len(samples)).astype(np.float32)  # the e2e rig's noise floor
    samples = samples + floor
    endpointer = Endpointer(config, STT_RATE, FRAME_MS, judge=judge)
    pause_t = None
    for i in range(0, len(samples) // FRAME * FRAME, FRAME):
        if endpointer.judging:
            endpointer.wait_judgement(30.0)
        for event in endpointer.process(samples[i:i + FRAME]):
            if event.kind == "pause":
                pause_t = event.t
            if event.kind == "end":
                assert pause_t is not None
                return event.t - pause_t + config.pause_ms / 1000, endpointer
    return None, endpointer


@pytest.mark.integration  # the real Silero VAD and smart-turn models
def test_a_complete_command_ends_long_before_the_maximum_silence(corpus_dir, judge):
    speech = levelled(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav")
    pad = np.zeros(STT_RATE // 2, np.float32)
    config = VadConfig()
    silence, endpointer = first_end(judge, np.concatenate([pad, speech, np.zeros(2 * STT_RATE, np.float32)]),
                                    config)
    assert silence is not None and endpointer.last_turn_probability is not None
    assert endpointer.last_turn_probability >= config.turn_sure_threshold
    # ended by the "sure" verdict, before even the unsure wait
    assert silence < config.turn_unsure_silence_ms / 1000


@pytest.mark.integration  # the real Silero VAD and smart-turn models
def test_a_sentence_cut_before_its_last_word_waits_for_the_maximum_silence(corpus_dir, judge):
    """fleurs-en-001 stopped before "sentence" ("... in the middle of a"), then 1.5 s of silence."""
    speech = levelled(corpus_dir / "fleurs" / "fleurs-en-001.ogg")
    cut = int(7.12 * STT_RATE)  # where the last word begins (Whisper's word timestamps, bench turn-end's cache)
    pad = np.zeros(STT_RATE // 2, np.float32)
    config = VadConfig()
    silence, endpointer = first_end(judge, np.concatenate([pad, speech[:cut], np.zeros(2 * STT_RATE, np.float32)]),
                                    config)
    assert silence is not None
    assert endpointer.last_turn_probability is not None and endpointer.last_turn_probability < config.turn_threshold
    assert silence >= config.turn_max_silence_ms / 1000


@pytest.mark.integration  # the real smart-turn model
@pytest.mark.parametrize("samples", [np.zeros(0, np.float32), np.full(16000, np.nan, np.float32),
                                     np.full(16000, np.inf, np.float32), np.zeros(16000, np.float32),
                                     np.random.default_rng(1).normal(0, 5, 20 * STT_RATE).astype(np.float32)],
                         ids=["empty", "nan", "inf", "digital silence", "20 s of loud noise"])
def test_garbage_audio_gets_a_probability_not_an_exception(judge, samples):
    assert features(samples).shape == (1, 80, 800)
    p = judge.probability(samples)
    assert 0.0 <= p <= 1.0


@pytest.mark.integration  # the real smart-turn model
def test_the_judge_thread_gives_the_same_verdict_as_a_direct_call(corpus_dir, judge):
    speech = levelled(corpus_dir / "commands" / "living_room_light_en.wav")
    assert judge.submit(speech).result(timeout=30) == pytest.approx(judge.probability(speech))
