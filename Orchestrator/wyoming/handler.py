"""One Wyoming connection: asr (transcribe + audio), tts (synthesize, streamed or not), handle.

Events are read by `run()` and worked off in order by a second task, so the reader sees a client
that goes away while a transcription or a synthesis is running and cancels that work. Every bad
input is answered with a Wyoming `error` event; a broken byte stream is answered and then
closed, anything else leaves the connection open for the next request.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop, NotHandled
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from Core.audio import Audio
from Core.errors import AudioInputError, LuxaError
from Core.sentences import SentenceChunker, split_sentences
from Core.text import sanitize, speakable
from LLM.inputs import check_user_text
from Orchestrator.wyoming.asr import AudioIn
from Orchestrator.wyoming.convert import FormatError, PcmFormat, pcm16_chunks
from Orchestrator.wyoming.service import CONNECTIONS, LATENCY, REQUESTS, Busy, WyomingService
from Orchestrator.wyoming.wire import BadFrame, read_event
from STT.transcript import Transcript as SttTranscript
from TTS.answer import AnswerSession

log = logging.getLogger(__name__)

EVENT_BACKLOG = 64  # events read ahead of the worker; then the reader waits (back-pressure)
OPENS = {"transcribe", "audio-start", "synthesize-start"}
CLOSES = {"audio-stop", "synthesize-stop"}
APOLOGY = "apology"


class RequestError(Exception):
    """A request the client got wrong: answered with an `error` event, the connection stays."""

    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.code = code


class LuxaEventHandler(AsyncEventHandler):
    def __init__(self, service: WyomingService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 cancel_on_eof: bool = True) -> None:
        super().__init__(reader, writer)
        self.service = service
        self.assistant = service.assistant
        self.cfg = service.config
        self.cancel_on_eof = cancel_on_eof  # stdio: end of input is not a client gone, finish the work
        self.conversation_id = uuid.uuid4().hex  # for clients that send no conversation id
        self._asr: Transcribe | None = None
        self._audio: AudioIn | None = None
        self._rejected = False  # this utterance was refused or answered: swallow the rest until audio-stop
        self._stream: _TextStream | None = None  # a streaming synthesis in progress

    # -- reading -----------------------------------------------------------------------------

    async def run(self) -> None:
        events: asyncio.Queue[Event | None] = asyncio.Queue(EVENT_BACKLOG)
        worker = asyncio.create_task(self._work(events), name="wyoming request worker")
        CONNECTIONS.inc()
        client_gone = False
        request_open = False
        try:
            while not worker.done():
                timeout = self.cfg.request_timeout_s if request_open else None
                try:
                    async with asyncio.timeout(timeout):
                        event = await read_event(self.reader, self.cfg.max_event_bytes)
                except TimeoutError:
                    REQUESTS.labels("connection", "timeout").inc()
                    await self._error(f"timeout: no event for {timeout:g} s in the middle of a request "
                                      "(wyoming.request_timeout_s); send audio-stop or synthesize-stop", "timeout")
                    break
                except BadFrame as err:
                    REQUESTS.labels("connection", "bad_frame").inc()
                    await self._error(f"malformed event: {err}; closing the connection", "bad-frame")
                    break
                except (ConnectionError, OSError):
                    event = None
                if event is None:
                    client_gone = self.cancel_on_eof
                    break
                request_open = (request_open or event.type in OPENS) and event.type not in CLOSES
                await events.put(event)
        except asyncio.CancelledError:  # the server stops: the work in progress stops with it
            client_gone = True
            raise
        finally:
            if client_gone or worker.done():
                worker.cancel()
            else:
                await events.put(None)
            await asyncio.gather(worker, return_exceptions=True)
            CONNECTIONS.dec()
            await self.disconnect()
            self.writer.close()

    async def _work(self, events: asyncio.Queue) -> None:
        while (event := await events.get()) is not None:
            try:
                await self.handle_event(event)
            except (ConnectionError, OSError):
                return  # the client went away while we answered

    async def handle_event(self, event: Event) -> bool:
        kind = _request_type(event.type)
        try:
            await self._dispatch(event)
        except RequestError as err:
            REQUESTS.labels(kind, err.code).inc()
            self._reset_asr()
            await self._error(str(err), err.code)
        except Busy as err:
            REQUESTS.labels(kind, "busy").inc()
            self._reset_asr()
            self._stream = None
            await self._error(str(err), "busy")
        except asyncio.CancelledError:  # the client went away (the reader saw it) or the server stops
            REQUESTS.labels(kind, "cancelled").inc()
            raise
        except (ConnectionError, OSError):  # the client went away while we wrote to it
            REQUESTS.labels(kind, "client_gone").inc()
            raise
        except LuxaError as err:
            REQUESTS.labels(kind, "invalid").inc()
            self._reset_asr()
            await self._error(str(err), "invalid")
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # a field missing or of the wrong type
            REQUESTS.labels(kind, "bad_event").inc()
            self._reset_asr()
            await self._error(f"bad {event.type} event: {type(err).__name__}: {err}", "bad-event")
        except Exception as err:  # our bug: the client gets a word, the server goes on
            log.exception("wyoming: %s failed", event.type)
            REQUESTS.labels(kind, "error").inc()
            await self._error(f"internal error: {err}", "internal")
        return True

    def _answered(self, kind: str, since: float) -> None:
        REQUESTS.labels(kind, "ok").inc()
        log.info("wyoming: %s answered in %.0f ms", kind, (time.perf_counter() - since) * 1000)

    async def _dispatch(self, event: Event) -> None:
        t = event.type
        if Describe.is_type(t):
            await self.write_event(await self.service.info_event())
            REQUESTS.labels("describe", "ok").inc()
        elif Ping.is_type(t):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(t):
            self._reset_asr()
            self._asr = self._transcribe(Transcribe.from_event(event))
        elif AudioStart.is_type(t):
            self._audio_start(AudioStart.from_event(event))
        elif AudioChunk.is_type(t):
            await self._audio_chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(t):
            await self._audio_stop()
        elif Synthesize.is_type(t):
            if self._stream is None:  # inside a stream it repeats the streamed text, for old servers
                await self._synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(t):
            self._synthesize_start(SynthesizeStart.from_event(event))
        elif SynthesizeChunk.is_type(t):
            await self._synthesize_chunk(SynthesizeChunk.from_event(event))
        elif SynthesizeStop.is_type(t):
            await self._synthesize_stop()
        elif Transcript.is_type(t):
            await self._handle(Transcript.from_event(event))
        else:
            log.debug("wyoming: ignoring event %s", t)  # the protocol's rule for unknown events

    # -- speech to text ------------------------------------------------------------------------

    def _reset_asr(self) -> None:
        self._asr = None
        self._audio = None
        self._rejected = False

    def _transcribe(self, request: Transcribe) -> Transcribe:
        """Any configured model name (or none) is the whole chain: it falls back by itself."""
        models = {b.model for b in self.assistant.config.stt.backends.values() if b.enabled} | {"luxa-asr"}
        if request.name is not None and request.name not in models:
            raise RequestError(f"unknown model {request.name!r}: this server has {', '.join(sorted(models))}",
                               "unknown-model")
        return request

    def _audio_start(self, start: AudioStart) -> None:
        if self._asr is None:
            raise RequestError("audio-start before transcribe: send transcribe (model, language) first", "no-transcribe")
        try:
            fmt = PcmFormat(start.rate, start.width, start.channels).check()
        except FormatError as err:
            raise RequestError(str(err), "bad-audio-format") from None
        vad = self.assistant.config.vad if self.cfg.endpointing else None
        self._audio = AudioIn(fmt, self.cfg.max_audio_s, vad, self._asr.vad_sensitivity)
        self._rejected = False

    async def _audio_chunk(self, chunk: AudioChunk) -> None:
        if self._rejected:
            return
        if self._audio is None:
            raise RequestError("audio-chunk without audio-start: send transcribe, then audio-start", "no-audio-start")
        try:
            utterance = self._audio.add(chunk.audio, chunk.rate, chunk.width, chunk.channels)
        except FormatError as err:
            self._rejected = True  # refused once; the rest of this utterance is dropped without more errors
            raise RequestError(str(err), "bad-audio-format") from None
        except ValueError as err:
            self._rejected = True
            raise RequestError(str(err), "audio-too-long") from None
        if utterance is not None and self._asr is not None:  # our endpointer heard the end: answer now
            request = self._asr
            self._rejected = True
            await self._answer_audio(request, utterance, time.perf_counter())

    async def _audio_stop(self) -> None:
        if self._rejected:
            self._reset_asr()
            return
        if self._audio is None or self._asr is None:
            raise RequestError("audio-stop without audio-start", "no-audio-start")
        request, audio_in = self._asr, self._audio
        self._reset_asr()
        stopped = time.perf_counter()
        await self._answer_audio(request, audio_in.audio(), stopped)

    async def _answer_audio(self, request: Transcribe, audio: Audio, since: float) -> None:
        try:
            async with self.service.gate.slot():
                result = await self.assistant.stt.transcribe(audio, request.language)
        except AudioInputError as err:  # empty, silent, too short: the STT's own hygiene says why
            raise RequestError(f"nothing to transcribe: {err}", "no-speech") from None
        LATENCY.labels("transcribe").observe(time.perf_counter() - since)
        await self._send_transcript(result)
        self._answered("transcribe", since)

    async def _send_transcript(self, result: SttTranscript) -> None:
        """The streaming events (one chunk per sentence), then the plain `transcript` every client reads."""
        language = result.language
        await self.write_event(TranscriptStart(language=language).event())
        for sentence in split_sentences(result.text) if result.text else []:
            await self.write_event(TranscriptChunk(text=sentence).event())
        await self.write_event(TranscriptStop().event())
        await self.write_event(Transcript(text=result.text, language=language).event())

    # -- text to speech ------------------------------------------------------------------------

    def _voice(self, voice: SynthesizeVoice | None) -> tuple[str | None, str | None]:
        if voice is None:
            return None, None
        return voice.name, voice.language

    def _checked(self, text: str) -> str:
        if not isinstance(text, str):
            raise RequestError("text must be a string", "bad-event")
        if len(text) > self.cfg.max_text_chars:
            raise RequestError(f"text of {len(text)} characters is above wyoming.max_text_chars="
                               f"{self.cfg.max_text_chars}", "text-too-long")
        try:
            return check_user_text(text, self.cfg.max_text_chars)
        except LuxaError as err:
            raise RequestError(str(err).replace("chat input", "text"), "bad-text") from None

    async def _synthesize(self, request: Synthesize) -> None:
        started = time.perf_counter()
        name, language = self._voice(request.voice)
        session = self.assistant.tts.answer(voice=name, language=language)  # unknown voice: TextInputError
        chunker = SentenceChunker(self.assistant.config.tts.first_chunk_max_words)  # a short first piece: first audio sooner
        text = sanitize(self._checked(request.text))
        sentences = [s for s in chunker.feed(text) + chunker.flush() if speakable(s)]
        rate = None
        for sentence in sentences:
            audio = await self._speak(session, sentence)
            if rate is None:
                rate = audio.sample_rate
                LATENCY.labels("synthesize").observe(time.perf_counter() - started)
                await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
            await self._send_audio(audio.to_rate(rate))
        await self.write_event(AudioStop().event())
        self._answered("synthesize", started)

    async def _speak(self, session: AnswerSession, text: str) -> Audio:
        """One sentence through the answer session; a first sentence with no real voice is an error."""
        async with self.service.gate.slot():
            result = await session.say(text)
        if not result.success and session.backend is None:
            raise RequestError(f"no TTS backend could speak this: {result.error}", "tts-failed")
        return result.audio

    async def _send_audio(self, audio: Audio) -> None:
        for data in pcm16_chunks(audio, self.cfg.audio_chunk_ms):
            await self.write_event(AudioChunk(rate=audio.sample_rate, width=2, channels=1, audio=data).event())

    def _synthesize_start(self, start: SynthesizeStart) -> None:
        name, language = self._voice(start.voice)
        session = self.assistant.tts.answer(voice=name, language=language)  # one voice for the whole stream
        self._stream = _TextStream(session, SentenceChunker(self.assistant.config.tts.first_chunk_max_words))

    async def _synthesize_chunk(self, chunk: SynthesizeChunk) -> None:
        stream = self._stream
        if stream is None:
            raise RequestError("synthesize-chunk without synthesize-start", "no-synthesize-start")
        stream.chars += len(chunk.text) if isinstance(chunk.text, str) else 0
        try:
            if stream.chars > self.cfg.max_text_chars:
                raise RequestError(f"streamed text above wyoming.max_text_chars={self.cfg.max_text_chars}",
                                   "text-too-long")
            if not isinstance(chunk.text, str) or chunk.text.strip():  # white space between words is fine
                self._checked(chunk.text)
        except RequestError:
            self._stream = None
            raise
        for sentence in stream.chunker.feed(chunk.text):
            await self._speak_sentence(stream, sentence)

    async def _synthesize_stop(self) -> None:
        stream = self._stream
        if stream is None:
            raise RequestError("synthesize-stop without synthesize-start", "no-synthesize-start")
        for sentence in stream.chunker.flush():
            await self._speak_sentence(stream, sentence)
        self._stream = None
        await self.write_event(SynthesizeStopped().event())
        self._answered("synthesize", stream.started)

    async def _speak_sentence(self, stream: "_TextStream", sentence: str) -> None:
        """Each sentence is its own audio-start..audio-stop, as wyoming-piper streams."""
        try:
            text = sanitize(sentence)
        except LuxaError:
            return  # a sentence of symbols only: nothing to say, not an error in a stream
        audio = await self._speak(stream.session, text)
        if not stream.spoke:
            LATENCY.labels("synthesize_stream").observe(time.perf_counter() - stream.started)
            stream.spoke = True
        await self.write_event(AudioStart(rate=audio.sample_rate, width=2, channels=1).event())
        await self._send_audio(audio)
        await self.write_event(AudioStop().event())

    # -- conversation ------------------------------------------------------------------------

    async def _handle(self, request: Transcript) -> None:
        asked = time.perf_counter()
        started: float | None = asked  # until the first piece of the answer
        text = self._checked(request.text)
        context = request.context if isinstance(request.context, dict) else {}
        conversation_id = str(context.get("conversation_id") or self.conversation_id)[:128]
        conversation = self.service.conversations.get(conversation_id)
        reply_context = {**context, "conversation_id": conversation_id}
        async with self.service.gate.slot():
            stream = self.assistant.replies.stream(text, conversation, request.language)
            try:
                await self.write_event(HandledStart(context=reply_context).event())
                async for piece in stream:
                    if started is not None:
                        LATENCY.labels("handle").observe(time.perf_counter() - started)
                        started = None
                    await self.write_event(HandledChunk(text=piece).event())
            finally:
                await stream.aclose()
        result = stream.result
        await self.write_event(HandledStop().event())
        answer = NotHandled if result.backend == APOLOGY else Handled
        await self.write_event(answer(text=result.reply, context=reply_context).event())
        self._answered("handle", asked)

    # -- answers -------------------------------------------------------------------------------

    async def _error(self, text: str, code: str) -> None:
        log.info("wyoming: error to client: %s (%s)", text, code)
        try:
            await self.write_event(Error(text=text, code=code).event())
        except (ConnectionError, OSError):
            pass


def _request_type(event_type: str) -> str:
    if event_type in ("transcribe", "audio-start", "audio-chunk", "audio-stop"):
        return "transcribe"
    if event_type.startswith("synthesize"):
        return "synthesize"
    if event_type == "transcript":
        return "handle"
    return event_type if event_type in ("describe", "ping") else "other"


@dataclass
class _TextStream:
    """A streaming synthesis: its answer session (one voice), the sentence cutter, what came so far."""

    session: AnswerSession
    chunker: SentenceChunker
    chars: int = 0
    started: float = field(default_factory=time.perf_counter)
    spoke: bool = False
