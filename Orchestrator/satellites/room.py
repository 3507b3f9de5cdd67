"""One connected satellite: its audio in, LUXA's endpointing, one turn at a time, reply audio out.

The satellite (wyoming-satellite) sends `run-pipeline` and then audio chunks: always (no local
wake word or VAD: the pipeline starts at `wake`), or after its own wake word (`asr`: it streams
until it gets our `transcript`). LUXA finds the end of each utterance with its own endpointer
(STT/vad.py), transcribes it, answers through `replies.stream` with this room's conversation,
and sends the reply back as audio-start / audio-chunk / audio-stop (16-bit mono at the voice's
rate, or the rate the satellite asked for; the satellite converts to its speaker's format).
While the reply plays, the room's microphone is not listened to (half duplex: a satellite has
no echo cancellation by default).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.vad import VoiceStarted, VoiceStopped

from Core.audio import STT_RATE, Audio
from Core.errors import AudioInputError, LuxaError
from Core.memory import release_free_heap
from Core.sentences import SentenceChunker
from Core.text import heard_text, speakable
from LLM.conversation import Conversation
from Orchestrator.hearing import hear
from Orchestrator.reply import CommandAnswer
from Orchestrator.satellites.metrics import LATENCY, TURNS
from Orchestrator.wyoming.convert import FormatError, PcmFormat, pcm16_chunks, to_audio

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant
    from Orchestrator.wake_word import WakeWordGate
    from STT.transcript import Transcript as Heard  # wyoming.asr has a Transcript too
    from STT.vad import Endpointer

log = logging.getLogger(__name__)

FRAME_MS = 30
PLAYBACK_MARGIN_S = 0.3  # the satellite's speaker pipe starts a little after the first chunk
LEAD_S = 0.5  # with barge-in, reply audio is sent at most this far ahead of its playback


class CutOff(Exception):
    """The satellite misbehaves (garbage, no end): the connection is closed with this reason."""


@dataclass
class Models:
    """Shared by every room: one lock per speech model, so rooms take turns step by step (FIFO), and
    as many answers at once as the LLM has contexts (llm.contexts): they generate side by side, and a
    room beyond that waits here, first come first served, not inside the LLM's first-token timeout."""

    assistant: Assistant
    stt: asyncio.Lock = field(default_factory=asyncio.Lock)
    tts: asyncio.Lock = field(default_factory=asyncio.Lock)
    llm: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.llm = asyncio.Semaphore(self.assistant.config.llm_contexts())


class RoomSession:
    """One connection's worth of a room: created on connect, dropped on disconnect."""

    def __init__(self, name: str, models: Models, conversation: Conversation, language: str | None,
                 send: Callable[[Event], Awaitable[None]], chunk_ms: int, max_bad: int,
                 state: Callable[[str], None], barge_in: bool = False) -> None:
        self.name = name
        self.models = models
        self.assistant = models.assistant
        self.conversation = conversation
        self.language = language
        self._send = send
        self._chunk_ms = chunk_ms
        self._max_bad = max_bad
        self._state = state
        self.pipeline: RunPipeline | None = None
        self.snd_rate: int | None = None  # the reply's rate when the satellite asked for one (snd_format)
        self.listening = False  # audio is expected (a pipeline runs and no turn is answered)
        self._endpointer: Endpointer | None = None
        self._wake: WakeWordGate | None = None
        self._pending = np.zeros(0, np.float32)
        self._bad = 0
        self._muted_until = 0.0
        self.turn: asyncio.Task | None = None
        self._early: asyncio.Task | None = None  # STT started at the pause (vad.early_stt), as the voice loop does
        self.barge_in = barge_in  # listen while the reply plays; speech stops it
        self._speaking = False  # reply audio is being sent
        self._barged = False  # this turn was interrupted: the utterance that did it is being collected
        self._said: list[tuple[float, str]] = []  # this reply's sentences: (end of its audio in s, text)
        self._first_sent: float | None = None  # when this reply's first audio went out (perf_counter)

    # -- events from the satellite -------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        if RunPipeline.is_type(event.type):
            self._run_pipeline(RunPipeline.from_event(event), _snd_rate(event))
        elif AudioChunk.is_type(event.type):
            await self._audio(AudioChunk.from_event(event))
        elif AudioStart.is_type(event.type) or AudioStop.is_type(event.type):
            self._reset_listening()  # a new stream, or the satellite gave up waiting (its VAD timeout)
        else:
            log.debug("satellite %s: ignoring %s", self.name, event.type)

    def _run_pipeline(self, run: RunPipeline, snd_rate: int | None) -> None:
        from STT.vad import Endpointer  # webrtcvad + Silero: loaded once a satellite streams

        self.pipeline = run
        self.snd_rate = snd_rate
        if self._endpointer is None:
            self._endpointer = Endpointer(self.assistant.config.vad, STT_RATE, FRAME_MS)
        wake_cfg = self.assistant.config.wake_word
        if run.start_stage == PipelineStage.WAKE and wake_cfg.enabled and self._wake is None:
            from Orchestrator.wake_word import WakeWordGate

            self._wake = WakeWordGate(wake_cfg.model, wake_cfg.threshold, wake_cfg.listen_window_s)
        self._reset_listening()
        self.listening = True
        log.info("satellite %s: pipeline %s -> %s%s", self.name, run.start_stage.value, run.end_stage.value,
                 f" (LUXA listens for {wake_cfg.model})" if self._wake is not None and
                 run.start_stage == PipelineStage.WAKE else "")
        self._state("listening")

    def _reset_listening(self) -> None:
        self._cancel_early()
        self._pending = np.zeros(0, np.float32)
        if self._endpointer is not None:
            self._endpointer.reset()

    async def _audio(self, chunk: AudioChunk) -> None:
        interruptible = self.barge_in and (self._speaking or self._barged)
        if not self.listening or self._endpointer is None or (self.turn is not None and not interruptible):
            return  # between pipelines, or while a turn is answered (half duplex)
        try:
            fmt = PcmFormat(chunk.rate, chunk.width, chunk.channels).check()
            samples = to_audio(chunk.audio, fmt).samples
        except FormatError as err:
            self._bad += 1
            if self._bad >= self._max_bad:
                raise CutOff(f"{self._bad} malformed audio chunks ({err})") from None
            return
        if time.monotonic() < self._muted_until and not self.barge_in:
            return  # the reply is still playing on the satellite's speaker
        samples = np.concatenate([self._pending, samples])
        frame = STT_RATE * FRAME_MS // 1000
        whole = len(samples) // frame * frame
        self._pending = samples[whole:]
        for start in range(0, whole, frame):
            if await self._frame(samples[start:start + frame]):
                return

    async def _frame(self, frame: np.ndarray) -> bool:
        """True when an utterance ended and its turn started; the satellite hears of speech start and end
        (voice-started / voice-stopped: its LEDs and stt-start/stt-stop commands)."""
        assert self._endpointer is not None
        if self._wake is not None and self.pipeline is not None and self.pipeline.start_stage == PipelineStage.WAKE \
                and not self._wake.awake:
            self._wake.heard(frame)
            return False
        for event in self._endpointer.process(frame):
            if event.kind == "speech_start":
                if self.turn is not None and not self._barged:
                    self._barged = True
                    log.info("satellite %s: barge-in: the user speaks, the reply stops", self.name)
                    self.turn.cancel()
                await self._send(VoiceStarted().event())
            if event.kind == "resume":
                self._cancel_early()
            if event.kind == "pause" and event.audio is not None and self.assistant.config.vad.early_stt:
                # transcribe during the end-of-turn silence; thrown away if the user goes on
                self._cancel_early()
                self._early = asyncio.create_task(self._transcribe(event.audio), name=f"satellite {self.name} stt")
            if event.kind == "end" and event.audio is not None:
                if self.turn is not None:  # the interrupted turn: let it finish stopping
                    await asyncio.gather(self.turn, return_exceptions=True)
                self._barged = False
                await self._send(VoiceStopped().event())
                early, self._early = self._early, None
                self.turn = asyncio.create_task(self._turn(event.audio, time.perf_counter(), early),
                                                name=f"satellite {self.name} turn")
                return True
        return False

    def _cancel_early(self) -> None:
        if self._early is not None and not self._early.done():
            self._early.cancel()
        self._early = None

    async def _transcribe(self, audio: Audio) -> Heard:
        async with self.models.stt:
            return await self.assistant.stt.transcribe(audio, self.language)

    # -- one turn ------------------------------------------------------------------------------

    async def _turn(self, audio: Audio, ended: float, early: asyncio.Task | None = None) -> None:
        self._state("thinking")
        outcome = "error"
        try:
            outcome = await self._answer(audio, ended, early)
        except (ConnectionError, OSError) as err:  # the reader sees the connection end and reconnects
            outcome = "disconnected"
            log.warning("satellite %s: connection lost during a turn: %s", self.name, err)
        except asyncio.CancelledError:
            if early is not None:
                early.cancel()
            outcome = "interrupted" if self._barged else "cancelled"
            if self._barged:
                heard = self._heard()
                turns = self.conversation.turns
                said = turns[-1].content if turns and turns[-1].role == "assistant" else ""
                self.conversation.set_last_reply(heard)  # as the voice loop: the history keeps what was heard
                log.info("satellite %s: luxa (interrupted): %s   [heard %d of %d words]", self.name, heard,
                         len(heard.split()), len(said.split()))
            raise
        except LuxaError as err:
            log.warning("satellite %s: turn failed: %s", self.name, err)
        except Exception:
            log.exception("satellite %s: turn failed", self.name)
        finally:
            TURNS.labels(self.name, outcome).inc()
            self.turn = None
            self._speaking = False
            if not self._barged:  # an interrupting utterance is being collected: keep it
                self._reset_listening()
            if self._wake is not None:
                self._wake.keep_awake()  # a follow-up needs no wake word, as in the voice loop
            run = self.pipeline
            if run is not None and run.start_stage != PipelineStage.WAKE and not run.restart_on_end:
                self.listening = False  # it woke on its own: it stops streaming after our transcript
            if outcome != "disconnected":
                self._state("listening" if self.listening else "idle")
            # as after a local turn: the turn's freed buffers go back to the system, off the loop
            asyncio.get_running_loop().run_in_executor(None, release_free_heap)

    async def _answer(self, audio: Audio, ended: float, early: asyncio.Task | None) -> str:
        try:
            heard = await early if early is not None else await self._transcribe(audio)
        except AudioInputError as err:
            log.info("satellite %s: nothing to transcribe (%s)", self.name, err)
            heard = None
        if heard is not None and heard.text:
            async with self.models.stt:  # a short command misheard is heard again, as in the voice loop
                heard = await hear(self.assistant, audio, heard)
        stt_ms = round(1000 * (time.perf_counter() - ended))  # after the endpoint: early STT makes it ~0
        text = heard.text if heard is not None else ""
        language = heard.language if heard is not None else self.language
        await self._send(Transcript(text=text, language=language).event())
        if not text:
            return "no_speech"
        log.info("satellite %s: you: %s", self.name, text)
        run = self.pipeline
        if run is not None and run.end_stage == PipelineStage.ASR:
            return "transcribed"
        reply, first_audio, seconds = await self._reply(text, language, run)
        if first_audio is not None:
            LATENCY.labels(self.name).observe(first_audio - ended)
            self._muted_until = time.monotonic() + max(0.0, seconds - (time.perf_counter() - first_audio)) \
                + PLAYBACK_MARGIN_S
        latency = f"   [first audio {1000 * (first_audio - ended):.0f} ms]" if first_audio is not None else ""
        log.info("satellite %s: luxa: %s%s", self.name, reply, latency)
        log.info("satellite %s: timings (ms after the endpoint) {'stt': %d, 'first_audio': %s}", self.name, stt_ms,
                 round(1000 * (first_audio - ended)) if first_audio is not None else None)
        return "answered"

    def _heard(self) -> str:
        """What the room heard of the reply so far: the satellite plays from the first chunk on, in real time."""
        if self._first_sent is None:
            return ""
        return heard_text(self._said, time.perf_counter() - self._first_sent)

    async def _reply(self, text: str, language: str | None, run: RunPipeline | None) -> tuple[str, float | None, float]:
        """Stream the answer: LLM text -> sentences -> TTS -> audio events; (text, first audio time, seconds)."""
        a = self.assistant
        speak = run is None or run.end_stage == PipelineStage.TTS
        rate = self.snd_rate
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        pieces: list[str] = []

        async def write() -> None:
            chunker = SentenceChunker(a.config.tts.first_chunk_max_words)
            stream = a.replies.stream(text, self.conversation, language)
            # an answer holds one of the LLM's contexts to its end; a command's answer (no LLM) waits
            # for none
            async with nullcontext() if isinstance(stream, CommandAnswer) else self.models.llm:
                try:
                    async for piece in stream:
                        pieces.append(piece)
                        for sentence in chunker.feed(piece):
                            await sentences.put(sentence)
                finally:
                    await stream.aclose()
            for sentence in chunker.flush():
                await sentences.put(sentence)
            await sentences.put(None)

        writer = asyncio.create_task(write())
        first: float | None = None
        seconds = 0.0
        self._said, self._first_sent = [], None
        voice = a.tts.answer(language=language) if speak else None
        try:
            while (sentence := await sentences.get()) is not None:
                if voice is None or not speakable(sentence):
                    continue
                async with self.models.tts:
                    spoken = await voice.say(sentence)
                if spoken.audio is None or not spoken.audio.samples.size:
                    continue
                out = spoken.audio if rate is None else spoken.audio.to_rate(rate)
                if first is None:
                    first = self._first_sent = time.perf_counter()
                    self._state("speaking")
                    self._speaking = True
                    log.info("satellite %s: [speaking]", self.name)
                    await self._send(AudioStart(rate=out.sample_rate, width=2, channels=1).event())
                for data in pcm16_chunks(out, self._chunk_ms):
                    if self.barge_in:  # paced: a barge-in leaves little audio queued on the satellite
                        await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - first) - LEAD_S))
                    await self._send(AudioChunk(rate=out.sample_rate, width=2, channels=1, audio=data).event())
                    seconds += len(data) / 2 / out.sample_rate
                self._said.append((seconds, sentence))
            await writer
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if first is not None:
                await self._send(AudioStop().event())
        return "".join(pieces).strip(), first, seconds

    async def close(self) -> None:
        """The connection is gone: a turn in progress stops."""
        self._cancel_early()
        if self.turn is not None:
            self.turn.cancel()
            await asyncio.gather(self.turn, return_exceptions=True)


def _snd_rate(event: Event) -> int | None:
    """run-pipeline's optional snd_format (wyoming 1.4's field; newer packages dropped it from the class)."""
    fmt = (event.data or {}).get("snd_format")
    rate = fmt.get("rate") if isinstance(fmt, dict) else None
    return rate if isinstance(rate, int) and 8000 <= rate <= 192000 else None
