"""Pure logic of the Wyoming front door: PCM conversion, the bounded frame reader, info building,
and the handler's request bookkeeping (conversation ids) against a fake assistant."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.handle import Handled
from wyoming.info import Info

from Config import LuxaConfig
from Core.audio import Audio
from Orchestrator.wyoming.asr import AudioIn
from Orchestrator.wyoming.convert import FormatError, PcmFormat, pcm16_chunks, to_audio
from Orchestrator.wyoming.handler import LuxaEventHandler
from Orchestrator.wyoming.info import build_info, whisper_languages
from Orchestrator.wyoming.service import Busy, Gate, WyomingService
from Orchestrator.wyoming.wire import BadFrame, read_event


def _tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("width,dtype,scale,offset", [(1, np.uint8, 127, 128), (2, "<i2", 32767, 0),
                                                      (4, "<i4", 2**31 - 1, 0)])
def test_any_width_and_channel_count_becomes_the_same_16k_mono_audio(width, dtype, scale, offset):
    tone = _tone(48000)
    stereo = np.stack([tone, tone], axis=1)
    pcm = (np.round(stereo * scale) + offset).astype(dtype).tobytes()
    audio = to_audio(pcm, PcmFormat(48000, width, 2).check())
    assert audio.sample_rate == 16000
    expected = Audio(tone, 48000).to_rate(16000).samples
    assert abs(len(audio.samples) - len(expected)) <= 1
    n = min(len(expected), len(audio.samples))
    assert np.max(np.abs(audio.samples[:n] - expected[:n])) < 0.02


@pytest.mark.parametrize("fmt", [PcmFormat(16000, 3, 1), PcmFormat(100, 2, 1), PcmFormat(16000, 2, 0),
                                 PcmFormat(16000, 2, 99)])
def test_unsupported_formats_are_named(fmt):
    with pytest.raises(FormatError):
        fmt.check()


def test_a_chunk_that_is_not_whole_frames_is_refused():
    with pytest.raises(FormatError, match="whole"):
        AudioIn(PcmFormat(16000, 2, 2).check(), 10.0).add(b"\0" * 6, 16000, 2, 2)


def test_audio_past_the_limit_is_refused():
    audio_in = AudioIn(PcmFormat(16000, 2, 1).check(), 1.0)
    audio_in.add(b"\0" * 32000, 16000, 2, 1)
    with pytest.raises(ValueError, match="max_audio_s"):
        audio_in.add(b"\0" * 2, 16000, 2, 1)


def test_synthesised_audio_goes_out_in_chunks_of_the_configured_length():
    chunks = pcm16_chunks(Audio(_tone(22050, 1.0), 22050), 100)
    assert len(chunks) == 10 and len(chunks[0]) == 2205 * 2


async def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1024)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.parametrize("raw,reason", [
    (b"not json\n", "not JSON"),
    (b"[1, 2]\n", "JSON object"),
    (b'{"type": "audio-chunk", "payload_length": 1e12}\n', "non-negative integer"),
    (b'{"type": "audio-chunk", "payload_length": 99999999}\n', "above the limit"),
    (b'{"type": "describe", "data_length": 4}\nnull', "JSON object"),
    (b'{"type": "describe"' + b" " * 2000 + b"}\n", "too long"),
])
async def test_broken_framing_raises_with_a_reason(raw, reason):
    with pytest.raises(BadFrame, match=reason):
        await read_event(await _reader(raw), 4096)


async def test_the_bounded_reader_reads_what_the_package_writes():
    reader, writer = await _pipe()
    await async_write_event(Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\1\2"), writer)
    event = await read_event(reader, 4096)
    assert (event.type, event.data["rate"], event.payload) == ("audio-chunk", 16000, b"\1\2")
    writer.close()
    assert await read_event(reader, 4096) is None


async def _pipe():
    """A connected reader/writer pair over a loopback socket."""
    got: asyncio.Future = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(lambda r, w: got.set_result((r, w)), "127.0.0.1", 0)
    _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    reader, _ = await got
    server.close()
    return reader, writer


def test_whisper_languages_follow_the_model_and_the_fixed_language():
    assert whisper_languages("tiny.en", None) == ["en"]
    assert whisper_languages("whisper-base", "fr") == ["fr"]
    assert {"en", "fr", "de"} <= set(whisper_languages("whisper-base", None))


async def test_a_full_gate_refuses_at_once():
    gate = Gate(running=1, waiting=0)
    async with gate.slot():
        with pytest.raises(Busy):
            async with gate.slot():
                pass
    async with gate.slot():
        assert gate.depth == 1


class _Stream:
    def __init__(self, reply: str) -> None:
        self.pieces = [reply]
        self.result = SimpleNamespace(reply=reply, backend="fake", first_token_s=0.01)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.pieces:
            raise StopAsyncIteration
        return self.pieces.pop(0)

    async def aclose(self):
        pass


def _fake_assistant():
    config = LuxaConfig()
    seen = []

    def stream(text, conversation, language):
        conversation.turns.append(text)
        seen.append(list(conversation.turns))
        return _Stream(f"answer {len(conversation.turns)}")

    chain = SimpleNamespace(members=[])
    return SimpleNamespace(
        config=config, seen=seen,
        stt=SimpleNamespace(health=lambda: {}),
        tts=SimpleNamespace(chain=chain),
        llm=SimpleNamespace(new_conversation=lambda: SimpleNamespace(turns=[])),
        replies=SimpleNamespace(stream=stream),
    )


def test_info_lists_the_configured_models_and_the_conversation_agent():
    info = Info.from_event(build_info(_fake_assistant(), endpointing=True).event())
    assert [m.name for m in info.asr[0].models] == ["whisper-base", "tiny.en"]
    assert info.asr[0].requires_external_vad is False and info.asr[0].supports_transcript_streaming
    assert info.handle[0].models[0].name == "smollm2-135m" and info.handle[0].supports_handled_streaming
    assert info.tts[0].voices == []  # a chain with no voice backend lists no voice


async def test_a_conversation_id_keeps_its_history_across_connections():
    assistant = _fake_assistant()
    service = WyomingService(assistant, assistant.config.wyoming)
    server = await asyncio.start_server(lambda r, w: LuxaEventHandler(service, r, w).run(), "127.0.0.1", 0)
    address = server.sockets[0].getsockname()[:2]

    async def ask(text: str, context: dict | None) -> Handled:
        reader, writer = await asyncio.open_connection(*address)
        data = {"text": text, **({"context": context} if context else {})}
        await async_write_event(Event("transcript", data), writer)
        while (event := await async_read_event(reader)).type != "handled":
            assert event.type in ("handled-start", "handled-chunk", "handled-stop"), event
        writer.close()
        return Handled.from_event(event)

    first = await ask("my name is Anna", None)
    second = await ask("what is my name?", first.context)
    other = await ask("hello", None)
    server.close()
    assert second.context["conversation_id"] == first.context["conversation_id"]
    assert assistant.seen[1] == ["my name is Anna", "what is my name?"]
    assert other.context["conversation_id"] != first.context["conversation_id"] and assistant.seen[2] == ["hello"]
    assert json.dumps(second.context)


@pytest.mark.parametrize("uri,allowed", [("tcp://127.0.0.1:10300", True), ("tcp://localhost:1", True),
                                         ("tcp://[::1]:10300", True), ("unix:///tmp/luxa.sock", True),
                                         ("stdio://", True), ("tcp://0.0.0.0:10300", False),
                                         ("tcp://192.168.1.5:10300", False)])
def test_only_loopback_is_served_without_allow_remote(uri, allowed):
    from Config.schema import WyomingConfig
    from Core.errors import ConfigError
    from Orchestrator.wyoming.server import check_config

    if allowed:
        assert check_config(WyomingConfig(), uri) == uri
    else:
        with pytest.raises(ConfigError, match="allow_remote"):
            check_config(WyomingConfig(), uri)
        assert check_config(WyomingConfig(allow_remote=True), uri) == uri


def test_zeroconf_without_its_package_is_named_before_the_models_load(monkeypatch):
    import importlib.util

    from Config.schema import WyomingConfig
    from Core.errors import ConfigError
    from Orchestrator.wyoming.server import check_config

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ConfigError, match="pip install zeroconf"):
        check_config(WyomingConfig(zeroconf=True))


async def test_a_request_waits_for_the_local_voice_turn_to_end():
    local = {"busy": True}
    gate = Gate(running=1, waiting=1, local_busy=lambda: local["busy"], yield_s=5.0)
    started = asyncio.get_running_loop().create_future()

    async def wyoming_request():
        async with gate.slot():
            started.set_result(asyncio.get_running_loop().time())

    task = asyncio.create_task(wyoming_request())
    await asyncio.sleep(0.3)
    assert not started.done(), "a Wyoming request must not start during a local turn"
    local["busy"] = False
    await asyncio.wait_for(task, 1.0)
    assert started.done()


async def test_a_stuck_local_turn_does_not_starve_wyoming_forever():
    gate = Gate(running=1, waiting=0, local_busy=lambda: True, yield_s=0.2)
    async with gate.slot():
        pass  # got through after yield_s
