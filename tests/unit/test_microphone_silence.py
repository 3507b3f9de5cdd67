"""A microphone that gives only digital silence (muted, a null source), with a stand-in for sounddevice.

Before issue 14 such an input was declared lost and reopened every dead_input_s, forever, with a
warning each time. Now it is reopened once (the device may have vanished behind PulseAudio's
back), then said to be silent once, and listened to; a real stream error still reopens it.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import types

import numpy as np
import pytest

from Orchestrator import audio_io
from Orchestrator.audio_io import Microphone

RATE = 16000
BLOCK = RATE * 30 // 1000
DEAD_AFTER_S = 0.3


class FakeInput:
    """An input stream calling back every 30 ms (sped up 10x) with what `source(n)` gives; `stall` stops it."""

    def __init__(self, callback, source) -> None:
        self.callback, self.source = callback, source
        self.count = 0
        self._closed = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._closed.wait(0.003):
            block = self.source(self.count)
            if block is None:
                continue  # the device went quiet: no callback at all
            self.count += 1
            self.callback(block.reshape(-1, 1), BLOCK, None, None)

    def abort(self) -> None:
        self._closed.set()

    def stop(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()

    active = False


class FakeDevices:
    """Each stream opened takes the next source; the last one serves every later stream."""

    def __init__(self, *sources) -> None:
        self.sources = list(sources)
        self.opened: list[FakeInput] = []
        self.default = types.SimpleNamespace(device=(0, 0))

    def query_devices(self, index: int | None = None):
        device = {"name": "fake mic", "max_input_channels": 1, "max_output_channels": 0, "default_samplerate": RATE}
        return [device] if index is None else device

    def check_input_settings(self, **kwargs) -> None:
        return None

    def InputStream(self, callback, **kwargs) -> FakeInput:
        self.opened.append(FakeInput(callback, self.sources.pop(0) if len(self.sources) > 1 else self.sources[0]))
        return self.opened[-1]


def silence(n: int) -> np.ndarray:
    return np.zeros(BLOCK, np.float32)


def noise(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(0, 0.01, BLOCK).astype(np.float32)


@pytest.fixture
def devices(monkeypatch):
    def install(*sources) -> FakeDevices:
        fake = FakeDevices(*sources)
        monkeypatch.setattr(audio_io, "_sd", lambda: fake)
        return fake

    return install


async def listen(mic: Microphone, frames: int) -> None:
    stop = asyncio.Event()
    got = 0
    async for _ in mic.frames(stop):
        got += 1
        if got >= frames:
            stop.set()


def frames_for(seconds: float) -> int:
    return int(seconds / 0.03)


async def test_a_muted_microphone_is_reopened_once_then_said_silent_once_and_listened_to(devices, caplog):
    fake = devices(silence)
    mic = Microphone(None, 30, 0.01, 0.05, dead_after_s=DEAD_AFTER_S, stall_s=1.0)
    with caplog.at_level(logging.INFO, logger="Orchestrator.audio_io"):
        await asyncio.wait_for(listen(mic, frames_for(8 * DEAD_AFTER_S)), 30)
    assert len(fake.opened) == 2 and mic.silent
    said = [r.getMessage() for r in caplog.records if "digital silence" in r.getMessage()]
    assert len(said) == 2 and "still listening" in said[-1], said


async def test_sound_after_a_silent_spell_is_heard_and_a_later_silence_is_said_again(devices, caplog):
    spells = DEAD_AFTER_S / 0.03

    def muted_then_unmuted_then_muted(n: int) -> np.ndarray:
        return noise(n) if 2 * spells < n < 4 * spells else silence(n)

    fake = devices(silence, muted_then_unmuted_then_muted, silence)
    mic = Microphone(None, 30, 0.01, 0.05, dead_after_s=DEAD_AFTER_S, stall_s=1.0)
    with caplog.at_level(logging.INFO, logger="Orchestrator.audio_io"):
        await asyncio.wait_for(listen(mic, frames_for(12 * DEAD_AFTER_S)), 30)
    messages = [r.getMessage() for r in caplog.records]
    assert any("hears sound again" in m for m in messages)
    assert len(fake.opened) == 3  # the first silence, and the one after the sound came back: once each
    assert mic.silent


async def test_a_stream_that_stops_calling_back_is_still_reopened(devices):
    def dies(n: int) -> np.ndarray | None:
        return noise(n) if n < 5 else None

    fake = devices(dies, noise)
    mic = Microphone(None, 30, 0.01, 0.05, dead_after_s=DEAD_AFTER_S, stall_s=0.2)
    await asyncio.wait_for(listen(mic, 30), 30)
    assert len(fake.opened) == 2 and mic.lost_count == 1 and not mic.silent
