"""The satellite host's connection logic against fake satellites (in-process Wyoming servers, no models):
run-satellite on connect, reconnect with back-off, garbage / stalls / bad audio cut off with a reason,
and the `satellites` command's probe. The real wyoming-satellite runs in tests/e2e/test_satellites.py."""
from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest
from wyoming.audio import AudioChunk
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Attribution, Info, Satellite
from wyoming.pipeline import PipelineStage, RunPipeline

from Config import LuxaConfig
from Config.schema import SatelliteRoom, SatellitesConfig
from Core.errors import ConfigError
from Orchestrator.commands.satellites import probe
from Orchestrator.satellites.link import SatelliteLink
from Orchestrator.satellites.room import Models

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeSatellite:
    """A Wyoming server on a free loopback port; `behaviour` runs for each connection after run-satellite."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.run_satellites = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "FakeSatellite":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def uri(self) -> str:
        assert self.server is not None
        return f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            event = await async_read_event(reader)
            if event is not None and event.type == "describe":
                info = Info(satellite=Satellite(name="fake", area="kitchen", description="fake",
                                                attribution=Attribution(name="", url=""), installed=True, version=None))
                await async_write_event(info.event(), writer)
            elif event is not None and event.type == "run-satellite":
                self.run_satellites += 1
                await self.behaviour(reader, writer)
        finally:
            writer.close()


def _link(uri: str, **config: object) -> SatelliteLink:
    settings = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.1, **config}
    cfg = SatellitesConfig(rooms=[SatelliteRoom(name="kitchen", uri=uri)], **settings)  # type: ignore[arg-type]
    assistant = SimpleNamespace(config=LuxaConfig(), llm=SimpleNamespace(new_conversation=lambda: None))
    return SatelliteLink(cfg.rooms[0], cfg, Models(assistant))  # type: ignore[arg-type]


async def _run_for(link: SatelliteLink, seconds: float) -> None:
    task = asyncio.create_task(link.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _pipeline() -> Event:
    return RunPipeline(start_stage=PipelineStage.WAKE, end_stage=PipelineStage.TTS).event()


async def test_a_satellite_that_goes_away_is_reconnected_and_told_to_run_again():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    async with FakeSatellite(hang_up) as sat:
        link = _link(sat.uri)
        await _run_for(link, 0.6)
    assert sat.run_satellites >= 3, "every new connection starts with run-satellite"
    assert link.connections == sat.run_satellites
    assert link.last_error == "the satellite closed the connection"


async def test_an_unreachable_satellite_is_retried_with_growing_waits(caplog):
    async with FakeSatellite(lambda r, w: asyncio.sleep(0)) as sat:
        uri = sat.uri
    link = _link(uri, reconnect_initial_s=0.05, reconnect_max_s=0.2)
    with caplog.at_level(logging.INFO, "Orchestrator.satellites.link"):
        await _run_for(link, 0.8)
    waits = [r.getMessage() for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert waits[:4] == [f"satellite kitchen: reconnecting in {s} s" for s in ("0.05", "0.10", "0.20", "0.20")]
    assert link.connections == 0 and link.state in ("retrying", "connecting")


async def test_garbage_from_a_satellite_is_cut_off_with_its_reason(caplog):
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"this is not wyoming\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with FakeSatellite(garbage) as sat:
        link = _link(sat.uri)
        with caplog.at_level(logging.WARNING, "Orchestrator.satellites.link"):
            await _run_for(link, 0.6)
    assert "cut off: malformed event: header line is not JSON" in caplog.text
    assert sat.run_satellites >= 2, "cut off, then tried again"


async def test_a_satellite_that_stops_mid_stream_is_cut_off_after_the_stall_timeout(caplog):
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_write_event(_pipeline(), writer)
        await asyncio.sleep(5)

    async with FakeSatellite(stall) as sat:
        link = _link(sat.uri, stall_timeout_s=0.3)
        with caplog.at_level(logging.WARNING, "Orchestrator.satellites.link"):
            await _run_for(link, 3.0)
    assert "cut off: no event for 0.3 s while streaming" in caplog.text


async def test_audio_in_a_format_nobody_can_read_is_cut_off_after_max_bad_events(caplog):
    async def bad_audio(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_write_event(_pipeline(), writer)
        for _ in range(10):
            await async_write_event(AudioChunk(rate=16000, width=3, channels=1, audio=b"\0" * 960).event(), writer)
        await asyncio.sleep(5)

    async with FakeSatellite(bad_audio) as sat:
        link = _link(sat.uri, max_bad_events=5)
        with caplog.at_level(logging.WARNING, "Orchestrator.satellites.link"):
            await _run_for(link, 3.0)
    assert "cut off: 5 malformed audio chunks (audio width 3 is not supported" in caplog.text


async def test_probe_says_what_answers_and_what_does_not():
    async with FakeSatellite(lambda r, w: asyncio.sleep(0)) as sat:
        here = await probe(SatelliteRoom(name="kitchen", uri=sat.uri), 2.0, 1 << 20)
        uri = sat.uri
    gone = await probe(SatelliteRoom(name="kitchen", uri=uri), 2.0, 1 << 20)
    assert here == "reachable: satellite 'fake', area kitchen"
    assert gone.startswith("unreachable: ")


def test_rooms_are_checked_when_the_config_loads():
    from Config import load_config

    cfg = load_config(None, ['satellites.rooms=[{name: kitchen, uri: "tcp://kitchen.local:10700"}]'], environ={})
    assert cfg.satellites.rooms[0].uri == "tcp://kitchen.local:10700"
    with pytest.raises(ConfigError, match="satellites.rooms.0.uri"):
        load_config(None, ['satellites.rooms=[{name: kitchen, uri: "http://kitchen"}]'], environ={})



def test_the_satellites_command_lists_each_room_with_its_state(run_cli):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rooms = f'satellites.rooms=[{{name: attic, uri: "tcp://127.0.0.1:{port}"}}]'
    result = run_cli("--set", rooms, "satellites", "--timeout", "2", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "discovery: off" in result.stdout
    assert re.search(rf"^attic\s+configured\s+tcp://127.0.0.1:{port}\s+unreachable: ", result.stdout, re.M), \
        result.stdout
    empty = run_cli("satellites", timeout=60)
    assert empty.returncode == 0 and "no satellites configured" in empty.stdout


class _Answer:
    """What replies.stream gives: text pieces, aclose()."""

    def __init__(self, pieces: list[str]) -> None:
        self._pieces = iter(pieces)

    def __aiter__(self) -> "_Answer":
        return self

    async def __anext__(self) -> str:
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        return None


def _fake_assistant(asked: list[str]) -> SimpleNamespace:
    import numpy as np

    from Core.audio import Audio

    async def transcribe(audio, language):
        return SimpleNamespace(text="turn on the living room lamp", language="en")

    def stream(text, conversation, language):
        asked.append(text)
        return _Answer(["Sure. ", "The lamp is on."])

    async def say(text):
        return SimpleNamespace(audio=Audio(np.full(2205, 0.1, np.float32), 22050))

    return SimpleNamespace(config=LuxaConfig(), llm=SimpleNamespace(new_conversation=lambda: None),
                           stt=SimpleNamespace(transcribe=transcribe), replies=SimpleNamespace(stream=stream),
                           tts=SimpleNamespace(answer=lambda language=None: SimpleNamespace(say=say)))


async def test_a_satellite_that_woke_on_its_own_gets_transcript_and_reply_audio_then_listening_stops(corpus_dir):
    """The local-wake-word satellite's side: run-pipeline asr -> tts, a spoken question, then silence."""
    from Core.audio import float32_to_pcm16, load_audio

    question = load_audio(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav").to_rate(16000).samples
    pcm = float32_to_pcm16(question) + bytes(2 * 16000 * 2)  # the question, then 2 s of silence
    got: list[Event] = []
    done = asyncio.Event()

    async def satellite(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_write_event(RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(), writer)
        for i in range(0, len(pcm), 2048):
            await async_write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i:i + 2048]).event(), writer)
        while (event := await async_read_event(reader)) is not None:
            got.append(event)
            if event.type == "audio-stop":
                done.set()
        await asyncio.sleep(5)

    asked: list[str] = []
    async with FakeSatellite(satellite) as sat:
        cfg = SatellitesConfig(rooms=[SatelliteRoom(name="kitchen", uri=sat.uri)])
        link = SatelliteLink(cfg.rooms[0], cfg, Models(_fake_assistant(asked)))  # type: ignore[arg-type]
        task = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(done.wait(), 30)
            await asyncio.sleep(0.2)
            session = link.session
            assert session is not None and not session.listening, "after our transcript it stops streaming"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    kinds = [e.type for e in got]
    assert kinds[:3] == ["voice-started", "voice-stopped", "transcript"], kinds
    assert got[2].data["text"] == "turn on the living room lamp"
    assert kinds[3] == "audio-start" and kinds[-1] == "audio-stop" and "audio-chunk" in kinds
    assert asked == ["turn on the living room lamp"]
    assert link.state == "idle"


async def test_a_reply_interrupted_over_the_network_is_kept_in_the_history_as_far_as_it_was_heard(corpus_dir):
    """Barge-in on a satellite: the room's conversation keeps the sentences played before the user spoke
    (and the cut mark), not the whole generated answer, as the local voice loop does (Orchestrator/turn.py)."""
    import numpy as np

    from Core.audio import Audio, float32_to_pcm16, load_audio
    from LLM.conversation import CUT_MARK, Conversation

    sentences = [f"Sentence number {n + 1} of the story." for n in range(15)]  # 15 s: slack for a loaded machine
    conversation = Conversation(system_prompt="test", token_budget=4000)

    def stream(text, conv, language):  # the LLM manager's bookkeeping: the question, then the whole answer
        conv.add_user(text)
        conv.add_assistant(" ".join(sentences))
        return _Answer([s + " " for s in sentences])

    async def say(text):  # one second of audio per sentence
        return SimpleNamespace(audio=Audio(np.full(22050, 0.1, np.float32), 22050))

    assistant = _fake_assistant([])
    assistant.replies = SimpleNamespace(stream=stream)
    assistant.tts = SimpleNamespace(answer=lambda language=None: SimpleNamespace(say=say))
    assistant.llm = SimpleNamespace(new_conversation=lambda: conversation)
    question = load_audio(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav").to_rate(16000).samples
    speech, silence = float32_to_pcm16(question), bytes(2 * 16000 * 1)  # 1 s: more than vad.end_silence_ms
    interrupted = asyncio.Event()

    async def stream_audio(writer: asyncio.StreamWriter, pcm: bytes) -> None:
        for i in range(0, len(pcm), 1024):  # in real time: LUXA's clock is the satellite's
            await async_write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i:i + 1024]).event(), writer)
            await asyncio.sleep(1024 / 2 / 16000)

    async def satellite(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_write_event(_pipeline(), writer)
        await stream_audio(writer, speech + silence)
        while (event := await async_read_event(reader)) is not None and event.type != "audio-start":
            pass
        await stream_audio(writer, bytes(2 * 16000 * 3 // 2))  # 1.5 s of the reply plays, then the user speaks
        await stream_audio(writer, speech)
        interrupted.set()
        await stream_audio(writer, silence)

    async with FakeSatellite(satellite) as sat:
        cfg = SatellitesConfig(rooms=[SatelliteRoom(name="kitchen", uri=sat.uri)], barge_in=True)
        link = SatelliteLink(cfg.rooms[0], cfg, Models(assistant))  # type: ignore[arg-type]
        task = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(interrupted.wait(), 60)
            for _ in range(100):  # the interrupting question is answered in turn: the history has 4 messages
                if len(conversation.turns) >= 4:
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    kept = conversation.turns[1].content
    assert conversation.turns[1].role == "assistant" and kept.endswith(CUT_MARK), conversation.turns
    assert kept.startswith(sentences[0]) and sentences[-1] not in kept, kept
    assert conversation.last_reply == kept.removesuffix(CUT_MARK)


def _advertise(zc, name: str, port: int):
    """What wyoming.zeroconf.register_server does for wyoming-satellite: `<name>._wyoming._tcp.local.`."""
    from zeroconf import ServiceInfo

    info = ServiceInfo("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.", addresses=[socket.inet_aton("127.0.0.1")],
                       port=port)
    zc.register_service(info)
    return info


async def test_satellites_advertised_over_zeroconf_are_discovered_and_served_once():
    """satellites.discovery with real mDNS (zeroconf on this machine's interfaces): a new satellite is
    connected as a room named after its service; one already configured by URI and a Wyoming service
    that is no satellite are left alone."""
    pytest.importorskip("zeroconf", reason="zeroconf is in the dev extra: bash scripts/setup.sh")
    import uuid

    from zeroconf.asyncio import AsyncZeroconf

    from Orchestrator.satellites.host import SatelliteHost

    async def stay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await async_read_event(reader)

    async def not_a_satellite(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (await async_read_event(reader)) is not None:
            await async_write_event(Info().event(), writer)
        writer.close()

    tag = uuid.uuid4().hex[:6]  # other tests on this machine may advertise too
    aiozc = AsyncZeroconf()
    async with FakeSatellite(stay) as configured, FakeSatellite(stay) as den:
        piper = await asyncio.start_server(not_a_satellite, "127.0.0.1", 0)
        cfg = SatellitesConfig(rooms=[SatelliteRoom(name="kitchen", uri=configured.uri)], discovery=True,
                               reconnect_initial_s=0.05, reconnect_max_s=0.1)
        assistant = SimpleNamespace(config=LuxaConfig(), llm=SimpleNamespace(new_conversation=lambda: None))
        host = SatelliteHost(assistant, cfg)  # type: ignore[arg-type]
        den_uri = den.uri
        host.start()
        try:
            for name, port in ((f"kitchen-{tag}", configured.server.sockets[0].getsockname()[1]),
                               (f"den-{tag}", den.server.sockets[0].getsockname()[1]),
                               (f"piper-{tag}", piper.sockets[0].getsockname()[1])):
                await asyncio.to_thread(_advertise, aiozc.zeroconf, name, port)
            for _ in range(100):
                if den.run_satellites:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # time for a wrong second link to the configured one, or to piper
        finally:
            await host.close()
            piper.close()
            await aiozc.async_close()
    ours = {link.room.name: link for link in host.links if link.room.name in ("kitchen", f"den-{tag}")}
    assert den.run_satellites == 1, "the advertised satellite was not served"
    assert ours[f"den-{tag}"].discovered and ours[f"den-{tag}"].room.uri == den_uri
    assert configured.run_satellites == 1, "a configured satellite was served twice"
    assert not any(link.room.name.startswith("piper") for link in host.links)


def test_the_satellites_command_lists_discovered_satellites(run_cli):
    pytest.importorskip("zeroconf", reason="zeroconf is in the dev extra: bash scripts/setup.sh")
    import uuid

    from zeroconf import Zeroconf

    with socket.socket() as s:  # a port nobody listens on: listed, and said to be unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"attic-{uuid.uuid4().hex[:6]}"
    zc = Zeroconf()
    try:
        _advertise(zc, name, port)
        result = run_cli("--set", "satellites.discovery=true", "satellites", "--timeout", "2", timeout=60)
    finally:
        zc.close()
    assert result.returncode == 0, result.stderr
    assert "Wyoming service(s) answered zeroconf" in result.stdout, result.stdout
    assert re.search(rf"^{name}\s+discovered\s+tcp://127.0.0.1:{port}\s+unreachable: ", result.stdout, re.M), \
        result.stdout
