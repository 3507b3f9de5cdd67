"""The default barge-in policy (audio.barge_in: half_duplex), on the voice loop's own logic.

Without echo cancellation the microphone hears the assistant's own voice, so while it speaks
only loud speech may interrupt; while it only thinks, the user is heard as usual.
"""
from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import numpy as np
import pytest

from Config import load_config
from Orchestrator import voice_loop
from Orchestrator.voice_loop import VoiceLoop

FRAME = 480  # 30 ms at 16 kHz


class QuietEndpointer:
    """Stands in for the VAD: the policy is logic, and a unit test loads no model."""

    def __init__(self, *args, **kwargs) -> None:
        self.is_speech = lambda frame, threshold=None: True  # as a barge-in detector: every frame is speech

    def reset(self) -> None:
        return None

    def process(self, frame: np.ndarray) -> list:
        return []


@pytest.fixture(autouse=True)
def no_vad_model(monkeypatch):
    monkeypatch.setattr(voice_loop, "Endpointer", QuietEndpointer)
    monkeypatch.setattr(voice_loop, "SpeechDetector", QuietEndpointer)


class Speaker:
    def __init__(self, speaking: bool):
        self.speaking = speaking
        self.stopped = 0

    def stop(self):
        self.stopped += 1


def frame(dbfs: float) -> np.ndarray:
    return np.full(FRAME, 10 ** (dbfs / 20), np.float32)


async def loop_with_a_turn(speaking: bool, mode: str = "half_duplex") -> tuple[VoiceLoop, Speaker]:
    config = load_config(environ={})
    config.audio.barge_in = mode
    speaker = Speaker(speaking)
    loop = VoiceLoop(SimpleNamespace(config=config), SimpleNamespace(), speaker, show=lambda s: None)
    loop.turn_task = asyncio.create_task(asyncio.sleep(60))
    return loop, speaker


def frames_for(ms: int) -> int:
    return ms // 30 + 1


async def test_while_speaking_speech_at_a_normal_level_never_interrupts():
    loop, speaker = await loop_with_a_turn(speaking=True)
    heard = [loop._hear_while_busy(frame(-30.0)) for _ in range(frames_for(2000))]
    assert not any(heard) and speaker.stopped == 0 and not loop.turn_task.cancelled()
    loop.turn_task.cancel()


async def test_while_speaking_loud_speech_for_barge_in_min_ms_interrupts():
    loop, speaker = await loop_with_a_turn(speaking=True)
    needed = math.ceil(loop.config.audio.barge_in_min_ms / loop.config.audio.frame_ms)
    heard = [loop._hear_while_busy(frame(-6.0)) for _ in range(needed)]
    await asyncio.sleep(0)
    assert heard[-1] is True and not any(heard[:-1])
    assert speaker.stopped == 1 and loop.turn_task.cancelled()


async def test_a_loud_burst_shorter_than_barge_in_min_ms_does_not_interrupt():
    loop, speaker = await loop_with_a_turn(speaking=True)
    for level in [-6.0] * 3 + [-30.0] + [-6.0] * 3:  # a cough, a pause, a cough
        loop._hear_while_busy(frame(level))
    assert speaker.stopped == 0
    loop.turn_task.cancel()


async def test_while_thinking_the_user_is_heard_at_any_level():
    loop, speaker = await loop_with_a_turn(speaking=False)
    assert loop._hear_while_busy(frame(-40.0)) is True
    loop.turn_task.cancel()


async def test_off_never_listens_while_busy():
    loop, speaker = await loop_with_a_turn(speaking=True, mode="off")
    assert not any(loop._hear_while_busy(frame(-6.0)) for _ in range(frames_for(1000)))
    assert speaker.stopped == 0
    loop.turn_task.cancel()
