"""The speaker's recovery logic, with a stand-in for sounddevice (the real thing: tests/e2e).

A device that stops calling back, one that cannot be opened, one whose abort never returns: the
reply must finish on a new stream or be given up, and no wait may outlast its bound.
"""
from __future__ import annotations

import asyncio
import threading
import time
import types

import numpy as np
import pytest

from Core.audio import Audio
from Orchestrator import audio_io
from Orchestrator.audio_io import CLOSE_WAIT_S, Speaker

RATE = 16000
SLACK_S = 0.5  # scheduling on shared CI cores; the bounds under test are far tighter than a hang


class FakeStream:
    """An output stream: `live` ones pull from the callback every 10 ms like a device; others stall."""

    def __init__(self, callback, live: bool, abort_blocks: threading.Event | None = None) -> None:
        self.callback = callback
        self.live = live
        self.active = False
        self.abort_blocks = abort_blocks
        self._closed = threading.Event()

    def start(self) -> None:
        self.active = True
        if self.live:
            threading.Thread(target=self._pull, daemon=True).start()

    def _pull(self) -> None:
        when = types.SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0)
        while not self._closed.wait(0.01):
            self.callback(np.zeros((RATE // 100, 1), np.float32), RATE // 100, when, None)

    def abort(self) -> None:
        if self.abort_blocks is not None:
            self.abort_blocks.wait()  # a call into a frozen audio server
        self.active = False

    def close(self) -> None:
        self._closed.set()


class FakeDevices:
    """The part of the sounddevice module that Speaker.open uses; hands out the streams in order."""

    def __init__(self, *streams: dict) -> None:
        self.plans = list(streams)
        self.opened: list[FakeStream] = []
        self.default = types.SimpleNamespace(device=(0, 0))

    def query_devices(self, index: int | None = None):
        device = {"name": "fake", "max_input_channels": 0, "max_output_channels": 1, "default_samplerate": RATE}
        return [device] if index is None else device

    def OutputStream(self, callback, **kwargs) -> FakeStream:
        plan = self.plans.pop(0) if self.plans else {"fails": True}
        if plan.get("fails"):
            raise OSError("Error opening OutputStream: device unavailable")
        self.opened.append(FakeStream(callback, plan.get("live", True), plan.get("abort_blocks")))
        return self.opened[-1]


@pytest.fixture
def devices(monkeypatch):
    def install(*streams: dict) -> FakeDevices:
        fake = FakeDevices(*streams)
        monkeypatch.setattr(audio_io, "_sd", lambda: fake)
        return fake

    return install


def _speaker() -> Speaker:
    return Speaker(None, latency_s=0.05, initial_backoff_s=0.05, max_backoff_s=0.1, stall_s=0.2)


def _say(speaker: Speaker, seconds: float, label: str) -> None:
    speaker.play(Audio(np.full(int(RATE * seconds), 0.1, np.float32), RATE), label)


async def test_a_stalled_stream_is_replaced_and_the_reply_finishes_on_the_new_one(devices, caplog):
    fake = devices({"live": False}, {"live": True})
    speaker = _speaker()
    speaker.open()
    speaker.begin()
    _say(speaker, 0.3, "hello there")
    await asyncio.wait_for(speaker.drain(), 0.3 + 0.05 + 0.2 + 0.1 + SLACK_S)
    speaker.close()
    assert "speaker lost: no output callback" in caplog.text
    assert speaker.heard() == "hello there"
    assert len(fake.opened) == 2 and fake.opened[0].active is False  # the stalled one was aborted


async def test_drain_gives_up_after_the_queued_audio_plus_a_margin_when_no_stream_opens(devices, caplog):
    fake = devices({"live": True})
    speaker = _speaker()
    speaker.open()
    fake.opened[0].active = False  # the server went away: the stream's thread ended
    speaker.begin()
    _say(speaker, 0.3, "nobody will hear this")
    started = time.monotonic()
    await asyncio.wait_for(speaker.drain(), 5.0)
    took = time.monotonic() - started
    speaker.close()
    assert took < 0.3 + 0.05 + 0.2 + 0.1 + SLACK_S
    assert not speaker.speaking
    assert caplog.text.count("gave up on the last") == 1
    assert caplog.text.count("speaker unavailable") >= 2  # it kept trying, with back-off


async def test_close_returns_even_when_the_audio_server_never_answers_abort(devices, caplog):
    frozen = threading.Event()
    devices({"live": True, "abort_blocks": frozen})
    speaker = _speaker()
    speaker.open()
    started = time.monotonic()
    speaker.close()
    took = time.monotonic() - started
    frozen.set()
    assert took < CLOSE_WAIT_S + SLACK_S
    assert "did not close" in caplog.text
