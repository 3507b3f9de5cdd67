"""`run_assistant.py wyoming` as Home Assistant sees it: the real daemon, the real `wyoming` client,
real speech from the corpus, real Whisper, Piper and SmolLM2 behind it."""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.handle import Handled
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from Core.audio import Audio
from Orchestrator.wyoming.convert import PcmFormat, to_audio
from tests.wyoming.conftest import pcm, wer

pytestmark = pytest.mark.integration
READ_TIMEOUT_S = 60
CHUNK_BYTES = 4096
VOICE = "en_US-joe-medium"


def client(daemon) -> AsyncClient:
    return AsyncClient.from_uri(daemon.uri, connect_timeout=5, read_timeout=READ_TIMEOUT_S)


async def read_until(c: AsyncClient, *types: str) -> list[Event]:
    """Events up to and including the first of `types` (or an error)."""
    events = []
    while True:
        event = await c.read_event()
        assert event is not None, f"connection closed after {[e.type for e in events]}"
        events.append(event)
        if event.type in types or event.type == "error":
            return events


async def send_audio(c: AsyncClient, data: bytes, rate: int, width: int, channels: int, stop: bool = True) -> None:
    await c.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
    step = CHUNK_BYTES - CHUNK_BYTES % (width * channels)
    for i in range(0, len(data), step):
        await c.write_event(AudioChunk(rate=rate, width=width, channels=channels, audio=data[i:i + step]).event())
    if stop:
        await c.write_event(AudioStop().event())


async def transcribe(daemon, data: bytes, rate: int, width: int, channels: int, language: str = "en") -> list[Event]:
    async with client(daemon) as c:
        await c.write_event(Transcribe(name="whisper-base", language=language).event())
        await send_audio(c, data, rate, width, channels)
        return await read_until(c, "transcript")


def audio_of(events: list[Event]) -> Audio:
    start = next(e for e in events if e.type == "audio-start")
    fmt = PcmFormat(start.data["rate"], start.data["width"], start.data["channels"])
    data = b"".join(e.payload or b"" for e in events if e.type == "audio-chunk")
    return to_audio(data, fmt, fmt.rate)


async def test_describe_lists_the_real_models_voices_and_conversation_agent(daemon):
    async with client(daemon) as c:
        await c.write_event(Describe().event())
        info = Info.from_event(await c.read_event())
    asr, tts, handle = info.asr[0], info.tts[0], info.handle[0]
    whisper = {m.name: m for m in asr.models}
    assert "en" in whisper["whisper-base"].languages and "fr" in whisper["whisper-base"].languages
    assert whisper["tiny.en"].languages == ["en"] and all(m.installed for m in asr.models)
    assert asr.supports_transcript_streaming and asr.version and asr.attribution.name == "LUXA"
    voices = {v.name: v for v in tts.voices}
    assert voices[VOICE].languages == ["en"] and voices[VOICE].installed and "Piper" in voices[VOICE].attribution.name
    assert {"en-us", "fr-fr"} <= set(voices), "the system (espeak-ng) voices are listed"
    assert tts.supports_synthesize_streaming
    assert handle.models[0].name == "smollm2-135m" and handle.supports_handled_streaming


@pytest.mark.parametrize("rate,width,channels", [(16000, 2, 1), (44100, 4, 2), (22050, 1, 1)])
async def test_real_speech_at_any_rate_width_and_channels_is_transcribed(daemon, fleurs_en, rate, width, channels):
    audio, reference = fleurs_en
    if width == 1:  # 8 bits keep 48 dB: this quiet recording (about -50 dBFS) is brought up first, as a mic gain would
        audio = Audio(audio.samples * (0.5 / np.max(np.abs(audio.samples))), audio.sample_rate)
    started = time.perf_counter()
    events = await transcribe(daemon, pcm(audio, rate, width, channels), rate, width, channels)
    transcript = Transcript.from_event(events[-1])
    assert events[-1].type == "transcript", events[-1]
    assert transcript.language == "en"
    limit = 0.35 if width == 1 else 0.2  # 8-bit audio is noisier; whisper-base's FLEURS en WER is ~0.08-0.15
    assert wer(reference, transcript.text) <= limit, (transcript.text, reference)
    print(f"{rate} Hz/{width} B/{channels} ch: {transcript.text!r} in {time.perf_counter() - started:.2f} s")


async def test_the_transcript_is_also_streamed_before_the_final_event(daemon, fleurs_en):
    audio, _ = fleurs_en
    events = await transcribe(daemon, pcm(audio, 16000, 2, 1), 16000, 2, 1)
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript-stop", "transcript"], types
    chunks = [e.data["text"] for e in events if e.type == "transcript-chunk"]
    assert chunks and " ".join(chunks) == events[-1].data["text"]


async def test_synthesised_speech_is_transcribed_back_to_the_same_words(daemon):
    text = "Please turn off the kitchen light. It is getting late."
    async with client(daemon) as c:
        await c.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=VOICE)).event())
        events = await read_until(c, "audio-stop")
    assert [e.type for e in events].count("audio-start") == 1, "one audio stream for a whole synthesize"
    audio = audio_of(events)
    assert audio.sample_rate == 22050 and audio.duration_s > 2.0
    back = await transcribe(daemon, pcm(audio, 22050, 2, 1), 22050, 2, 1)
    assert wer(text, back[-1].data["text"]) <= 0.1, back[-1].data


async def test_streamed_text_is_spoken_sentence_by_sentence_before_the_text_ends(daemon):
    async with client(daemon) as c:
        await c.write_event(SynthesizeStart(voice=SynthesizeVoice(name=VOICE)).event())
        await c.write_event(SynthesizeChunk(text="The first sentence is here. The sec").event())
        first = await read_until(c, "audio-chunk")  # before the rest of the text is even sent
        assert first[0].type == "audio-start"
        await c.write_event(SynthesizeChunk(text="ond one follows it.").event())
        # Home Assistant repeats the whole text in a plain synthesize for older servers: not spoken twice
        await c.write_event(Synthesize(text="The first sentence is here. The second one follows it.").event())
        await c.write_event(SynthesizeStop().event())
        events = first + await read_until(c, "synthesize-stopped")
    types = [e.type for e in events]
    assert types[-1] == "synthesize-stopped", types
    assert types.count("audio-start") == types.count("audio-stop") == 2, "one audio stream per sentence"
    second = events[types.index("audio-stop") + 1:]
    heard = await transcribe(daemon, pcm(audio_of(second), 16000, 2, 1), 16000, 2, 1)
    assert wer("the second one follows it", heard[-1].data["text"]) <= 0.2, heard[-1].data


async def ask(daemon, text: str, context: dict | None = None) -> list[Event]:
    async with client(daemon) as c:  # Home Assistant asks each question on a new connection
        await c.write_event(Transcript(text=text, context=context, language="en").event())
        return await read_until(c, "handled", "not-handled")


async def test_a_question_is_answered_and_its_conversation_id_carries_the_context(daemon):
    def prompt_tokens() -> float:
        return daemon.metric("luxa_llm_tokens_total", backend="primary", direction="in")

    events = await ask(daemon, "What is the capital of France?")
    answer = Handled.from_event(events[-1])
    assert events[-1].type == "handled" and answer.text.strip(), events[-1]
    assert events[0].type == "handled-start" and any(e.type == "handled-chunk" for e in events)
    conversation = answer.context["conversation_id"]

    before = prompt_tokens()
    follow_up = await ask(daemon, "And of Germany?", answer.context)
    with_history = prompt_tokens() - before
    assert follow_up[-1].data["context"]["conversation_id"] == conversation and follow_up[-1].data["text"].strip()
    before = prompt_tokens()
    fresh = await ask(daemon, "And of Germany?")
    alone = prompt_tokens() - before
    assert fresh[-1].data["context"]["conversation_id"] != conversation
    # the follow-up reached the model with the first question and answer in front of it
    assert with_history > alone + 5, (with_history, alone)


def _silence() -> bytes:
    return b"\0" * 32000


BAD_REQUESTS = {
    "audio with no audio-start": ([Transcribe(), AudioChunk(16000, 2, 1, b"\1\0" * 800)], "no-audio-start"),
    "audio-start before transcribe": ([AudioStart(16000, 2, 1)], "no-transcribe"),
    "a 24-bit width": ([Transcribe(), AudioStart(16000, 3, 1)], "bad-audio-format"),
    "a chunk in another width": ([Transcribe(), AudioStart(16000, 2, 1), AudioChunk(16000, 4, 1, b"\0" * 8)],
                                 "bad-audio-format"),
    "a silent utterance": ([Transcribe(), AudioStart(16000, 2, 1), AudioChunk(16000, 2, 1, _silence()), AudioStop()],
                           "no-speech"),
    "an empty utterance": ([Transcribe(), AudioStart(16000, 2, 1), AudioStop()], "no-speech"),
    "an unknown model": ([Transcribe(name="whisper-huge")], "unknown-model"),
    "an unknown language": ([Transcribe(language="xx"), AudioStart(16000, 2, 1),
                             AudioChunk(16000, 2, 1, (np.sin(np.arange(16000) / 3) * 8000).astype("<i2").tobytes()),
                             AudioStop()], "invalid"),
    "a huge text": ([Synthesize(text="word " * 100)], "text-too-long"),
    "a binary text": ([Synthesize(text="hello \x00\x01\x02 world")], "bad-text"),
    "an empty text": ([Synthesize(text="   ")], "bad-text"),
    "an unknown voice": ([Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody"))], "invalid"),
    "a huge question": ([Transcript(text="why " * 100)], "text-too-long"),
    "a chunk outside a text stream": ([SynthesizeChunk(text="hello")], "no-synthesize-start"),
    "an event without its fields": ([Event("audio-start", {"rate": 16000})], "bad-event"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
async def test_bad_requests_get_an_error_event_and_the_connection_keeps_serving(daemon, name):
    events, code = BAD_REQUESTS[name]
    async with client(daemon) as c:
        for event in events:
            await c.write_event(event if isinstance(event, Event) else event.event())
        error = await c.read_event()
        assert error.type == "error" and error.data["code"] == code, (name, error)
        assert error.data["text"]
        await c.write_event(Describe().event())  # the same connection answers the next request
        assert (await c.read_event()).type == "info"


BAD_FRAMES = {
    "a header that is not JSON": b"this is not json\n",
    "a header without a type": b'{"data": {}}\n',
    "a payload length that is not a number": b'{"type": "audio-chunk", "payload_length": "many"}\n',
    "a payload above the limit": b'{"type": "audio-chunk", "payload_length": 1000000000}\n',
    "a data block that is not JSON": b'{"type": "describe", "data_length": 5}\nhello',
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
async def test_broken_framing_gets_an_error_event_while_another_client_is_served(daemon, name):
    host, port = daemon.uri.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    async with client(daemon) as other:  # connected before, served after
        writer.write(BAD_FRAMES[name])
        await writer.drain()
        header = json.loads(await asyncio.wait_for(reader.readline(), 10))
        data = json.loads(await reader.readexactly(header["data_length"]))
        assert header["type"] == "error" and data["code"] == "bad-frame", (name, header, data)
        assert await asyncio.wait_for(reader.read(), 10) == b"", "the broken connection is closed"
        writer.close()
        await other.write_event(Describe().event())
        assert (await other.read_event()).type == "info"


async def test_a_client_that_never_sends_audio_stop_gets_a_timeout_error(daemon, fleurs_en):
    async with client(daemon) as c:
        await c.write_event(Transcribe(language="en").event())
        await send_audio(c, pcm(fleurs_en[0], 16000, 2, 1)[:16000], 16000, 2, 1, stop=False)
        started = time.perf_counter()
        error = await c.read_event()
        assert error.type == "error" and error.data["code"] == "timeout", error
        assert time.perf_counter() - started < 5  # wyoming.request_timeout_s=2 here


async def test_a_client_that_vanishes_mid_request_has_its_work_cancelled_and_the_server_goes_on(daemon, fleurs_en):
    data = pcm(fleurs_en[0], 16000, 2, 1)
    def gone() -> float:
        return sum(daemon.metric("luxa_wyoming_requests_total", type="synthesize", outcome=o)
                   for o in ("cancelled", "client_gone"))

    before = gone()
    async with client(daemon) as c:  # gone mid-audio
        await c.write_event(Transcribe(language="en").event())
        await send_audio(c, data[: len(data) // 2], 16000, 2, 1, stop=False)
    async with client(daemon) as c:  # gone mid-synthesis, its work cancelled
        words = ["apple", "river", "mountain", "garden", "window", "candle", "forest", "bridge", "silver", "meadow"]
        await c.write_event(Synthesize(text=" ".join(f"The {w} is quiet tonight." for w in words)).event())
        await c.read_event()
    events = await transcribe(daemon, data, 16000, 2, 1)
    assert events[-1].type == "transcript" and events[-1].data["text"]
    assert gone() == before + 1, "the synthesis stopped when its client left"


async def test_requests_are_counted_by_type_and_outcome_on_the_daemons_metrics(daemon, fleurs_en):
    await transcribe(daemon, pcm(fleurs_en[0], 16000, 2, 1), 16000, 2, 1)
    host, port = daemon.uri.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"garbage\n")
    await reader.read()  # the error event, then the server closes
    writer.close()
    assert daemon.metric("luxa_wyoming_requests_total", type="transcribe", outcome="ok") >= 1
    assert daemon.metric("luxa_wyoming_requests_total", type="connection", outcome="bad_frame") >= 1
    assert daemon.metric("luxa_wyoming_latency_seconds_count", type="transcribe") >= 1
    assert daemon.metric("luxa_wyoming_connections") == 0


async def test_more_requests_than_the_queue_holds_get_a_busy_error_not_silence(daemon, corpus_dir):
    from Core.audio import load_audio

    long_clip = pcm(load_audio(corpus_dir / "fleurs" / "fleurs-fr-001.ogg"), 16000, 2, 1)

    async def one() -> Event:
        async with client(daemon) as c:
            await c.write_event(Transcribe(language="fr").event())
            await send_audio(c, long_clip, 16000, 2, 1, stop=False)
            await asyncio.sleep(0.5)  # all three are fully sent before any is stopped
            await c.write_event(AudioStop().event())
            return (await read_until(c, "transcript"))[-1]

    results = await asyncio.gather(one(), one(), one())
    codes = sorted(e.data.get("code", e.type) for e in results)
    assert codes == ["busy", "transcript", "transcript"], [e.data for e in results]
    assert "wyoming.queue_size" in next(e.data["text"] for e in results if e.type == "error")


def test_a_public_address_is_refused_unless_allowed(run_cli):
    done = run_cli("wyoming", "--uri", "tcp://0.0.0.0:10300", timeout=60)
    assert done.returncode == 2 and "wyoming.allow_remote" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("wyoming", "--uri", "http://127.0.0.1:10300", timeout=60)
    assert done.returncode == 2 and "tcp://HOST:PORT" in done.stderr
