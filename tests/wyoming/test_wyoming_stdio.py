"""`run_assistant.py wyoming --uri stdio://` with LUXA's own endpointing.

Over stdio the client is whoever holds the pipes (a supervisor, a test): the same events on
stdin/stdout, read and written here with the `wyoming` package's own functions.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

import numpy as np
import pytest
import pytest_asyncio
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from Core.audio import Audio
from tests.wyoming.conftest import REPO_ROOT, START_TIMEOUT_S, pcm, wer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]  # the pipes live in one loop


class StdioDaemon:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.log: list[str] = []

    async def send(self, *events) -> None:
        for event in events:
            await async_write_event(event if isinstance(event, Event) else event.event(), self.proc.stdin)

    async def until(self, *types: str) -> list[Event]:
        events = []
        while True:
            event = await asyncio.wait_for(async_read_event(self.proc.stdout), 60)
            assert event is not None, f"stdout closed after {[e.type for e in events]}"
            events.append(event)
            if event.type in types or event.type == "error":
                return events

    async def read_log(self) -> None:
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode(errors="replace").rstrip())
            sys.stderr.write(f"[luxa] {self.log[-1]}\n")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stdio_daemon():
    env = {k: v for k, v in os.environ.items() if not (k.startswith("LUXA_") and "__" in k)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-u", "run_assistant.py", "--set", "wyoming.endpointing=true", "--set", "llm.max_tokens=24",
        "wyoming", "--uri", "stdio://", cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    daemon = StdioDaemon(proc)
    logger = asyncio.ensure_future(daemon.read_log())
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any("LUXA Wyoming server on stdio://" in line for line in daemon.log):
        assert proc.returncode is None and time.monotonic() < deadline, "\n".join(daemon.log[-10:])
        await asyncio.sleep(0.1)
    yield daemon
    if proc.returncode is None:
        proc.stdin.close()  # end of input ends a stdio server
        try:
            await asyncio.wait_for(proc.wait(), 15)
        finally:
            if proc.returncode is None:
                proc.kill()
    await logger


async def test_stdio_describes_a_server_that_finds_the_end_of_speech_itself(stdio_daemon):
    await stdio_daemon.send(Describe())
    info = Info.from_event((await stdio_daemon.until("info"))[-1])
    assert info.asr[0].requires_external_vad is False


async def test_the_transcript_comes_when_the_speaker_stops_not_when_the_stream_does(stdio_daemon, fleurs_en):
    audio, reference = fleurs_en
    silence = Audio(np.zeros(16000 * 2, np.float32), 16000)
    speech_then_silence = pcm(audio, 16000, 2, 1) + pcm(silence, 16000, 2, 1)
    await stdio_daemon.send(Transcribe(language="en"), AudioStart(16000, 2, 1))
    for i in range(0, len(speech_then_silence), 3200):  # 100 ms chunks, never an audio-stop
        await stdio_daemon.send(AudioChunk(16000, 2, 1, speech_then_silence[i:i + 3200]))
    events = await stdio_daemon.until("transcript")
    assert events[-1].type == "transcript" and wer(reference, events[-1].data["text"]) <= 0.2, events[-1]
    await stdio_daemon.send(AudioStop(), Describe())  # the rest of the stream is dropped without a second answer
    assert [e.type for e in await stdio_daemon.until("info")] == ["info"]


async def test_stdio_synthesises(stdio_daemon):
    await stdio_daemon.send(Synthesize(text="Hello from the pipe."))
    events = await stdio_daemon.until("audio-stop")
    assert events[0].type == "audio-start" and sum(len(e.payload or b"") for e in events) > 22050


async def test_end_of_input_stops_a_stdio_server_cleanly(stdio_daemon):
    stdio_daemon.proc.stdin.close()
    assert await asyncio.wait_for(stdio_daemon.proc.wait(), 15) == 0
