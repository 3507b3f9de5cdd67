"""The wake word gate on real audio: a Piper-spoken "Hey Jarvis" opens the loop, a plain command does not."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from Config import load_config
from Core.audio import Audio, STT_RATE, load_audio
from Core.gpu import GpuStatus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hey_jarvis() -> Audio:
    from piper import PiperVoice

    from Core.audio import pcm16_to_float32
    from Core.models import resolve

    voice = PiperVoice.load(str(resolve("en_US-joe-medium", "piper").path))
    chunks = list(voice.synthesize("Hey Jarvis."))
    samples = np.concatenate([pcm16_to_float32(c.audio_int16_bytes) for c in chunks])
    return Audio(samples, chunks[0].sample_rate).to_rate(STT_RATE)


@pytest.fixture(scope="module")
def command(corpus_dir) -> Audio:
    return load_audio(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav").to_rate(STT_RATE)


def _frames(audio: Audio):
    n = STT_RATE * 30 // 1000
    padded = np.concatenate([np.zeros(STT_RATE // 2, np.float32), audio.samples, np.zeros(STT_RATE, np.float32)])
    return [padded[i:i + n] for i in range(0, len(padded) - n + 1, n)]


def test_the_gate_opens_on_the_wake_word_and_not_on_other_speech(hey_jarvis, command):
    from Orchestrator.wake_word import WakeWordGate

    gate = WakeWordGate("hey_jarvis", 0.5, 8.0)
    assert not any(gate.heard(f) for f in _frames(command))
    assert not gate.awake
    assert any(gate.heard(f) for f in _frames(hey_jarvis))
    assert gate.awake


async def test_the_voice_loop_answers_only_after_the_wake_word(hey_jarvis, command):
    from Orchestrator.assistant import Assistant
    from Orchestrator.audio_io import FileMicrophone
    from Orchestrator.turn import FileSink
    from Orchestrator.voice_loop import VoiceLoop

    config = load_config(overrides=["wake_word.enabled=true", "llm.max_tokens=20"], environ={})
    assistant = Assistant(config, GpuStatus("cpu", 1))
    await assistant.start()
    try:
        async def run(audio: Audio) -> VoiceLoop:
            mic = FileMicrophone(audio, 30, config.vad.longest_end_silence_ms + 300, realtime=False)
            loop = VoiceLoop(assistant, mic, FileSink(), show=lambda s: None)
            await asyncio.wait_for(loop.run(asyncio.Event()), 120)
            return loop

        ignored = await run(command)
        gap = Audio(np.zeros(STT_RATE // 2, np.float32), STT_RATE)
        woken = await run(Audio(np.concatenate([hey_jarvis.samples, gap.samples, command.samples]), STT_RATE))
    finally:
        await assistant.close()
    assert not ignored.results
    assert len(woken.results) == 1 and "lamp" in woken.results[0].transcript.lower()
