"""The live loop: mic frames -> endpointer -> (early) STT -> reply, with barge-in.

The frame loop never waits on a stage: a turn runs as its own task, so the microphone keeps
being read (for barge-in and for the next question) while the assistant thinks and speaks.
"""
from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from Core import metrics
from Core.audio import Audio, dbfs
from Core.errors import AudioInputError
from Core.logs import set_turn_id
from Core.memory import release_free_heap
from Orchestrator.echo import Cleaned
from Orchestrator.hearing import could_be_command, hear
from Orchestrator.preempt import PREEMPTIONS, HeldSink, Snapshot
from Orchestrator.turn import Sink, Stopwatch, TurnResult, TurnRunner
from STT.unfinished import sounds_unfinished
from STT.vad import Endpointer, EndpointEvent, SpeechDetector

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant
    from Orchestrator.audio_io import FileMicrophone, Microphone
    from Orchestrator.echo import EchoCanceller
    from Orchestrator.intents import Intents
    from STT.transcript import Transcript

log = logging.getLogger(__name__)

STATE = metrics.gauge("luxa_state", "1 for the assistant's current state", ("state",))
RESULTS_KEPT = 20
ANNOUNCE_POLL_S = 0.1  # how often a pending announcement looks for a gap between turns
CHIME_S = 0.15  # each of the two beeps before a timer's announcement
ECHO_REPORT_S = 20.0  # aec: the measured ERLE is logged every this much of our own voice
BARGE_GAPS_MS = 210  # with the echo cancelled, gaps this long in all may break the user's speech (below)
REPLAY_AEC_MS = 1500  # replayed on barge-in with the echo cancelled (see VoiceLoop.__init__)
# With speexdsp's words (Orchestrator.echo.Cleaned) the replay starts this long before the speech
# that barge-in heard: earlier frames hold what speexdsp leaves of our own voice, which Whisper
# transcribes, though AEC3 hears the first words late (0.2-1.0 s). Offline, the corpus commands over
# recorded replies, WER at 0 / -6 dB: 0.04 / 0.72 from 0.3 s before, 0.0 / 0.33 from 0.9 s (AEC3's
# output with its 1.5 s replay: 0.43 / 1.13). Live, 0.9 s put our own words in front of the user's
# ("People would often have the living room lamp"); 0.3 s did not (docs/BENCHMARKS.md).
REPLAY_WORDS_MS = 300
# AEC3's suppressor leaves only scraps of the first words said over a reply: the replay reaches back
# through speech frames this close to each other (the user's chopped words, not our voice's rare leftovers)
SPEECH_GAP_MS = 300
WORDS_AFTER_BARGE_S = 1.0  # the endpointer hears the words' signal this long after a barge-in (the echo's tail)
BARGE_INS = metrics.counter("luxa_barge_in_total", "replies interrupted by the user")


class Playback(Sink, Protocol):
    """The speaker, or a file for `turn`: a sink that says whether a reply is still being heard."""

    @property
    def speaking(self) -> bool: ...


class State(enum.Enum):
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass
class Tentative:
    """A reply started before the endpoint confirmed the turn (Orchestrator/preempt.py)."""

    sink: HeldSink
    watch: Stopwatch
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    transcript: str | None = None  # once early STT has it; shown when the turn is confirmed


class VoiceLoop:
    def __init__(self, assistant: Assistant, mic: Microphone | FileMicrophone, speaker: Playback,
                 show: Callable[[str], None] = print, on_state: Callable[[State], None] | None = None,
                 on_frame: Callable[[], None] | None = None, echo: EchoCanceller | None = None) -> None:
        self.assistant = assistant
        self.config = assistant.config
        self.mic = mic
        self.speaker = speaker
        self.show = show
        self.on_state = on_state or (lambda state: None)
        # each mic frame consumed: how the watchdog knows that this loop still moves
        self.on_frame = on_frame or (lambda: None)
        self.runner = TurnRunner(assistant, on_text=lambda piece: None)
        # with early STT the words of each pause are known soon: the turn ends when they and the sound agree
        self.endpointer = Endpointer(self.config.vad, 16000, self.config.audio.frame_ms,
                                     wait_for_words=self.config.vad.early_stt and self.config.vad.turn_words)
        # its own detector: Silero keeps per-stream state, and barge-in sees frames the endpointer may not
        self.barge_detector = SpeechDetector(self.config.vad, 16000, self.config.audio.frame_ms)
        self.state = State.LISTENING
        self.turn_ids = itertools.count(1)
        self.turn_task: asyncio.Task | None = None
        self.early: asyncio.Task | None = None
        self._words_task: asyncio.Task | None = None  # a pause transcript matched as a command
        self.tentative: Tentative | None = None
        self._discarded: asyncio.Task | None = None  # a thrown-away reply, until it has put the history back
        self.speech_end: float | None = None
        # which of the latest frames were speech (see _hear_while_busy)
        self._barge_window: collections.deque[bool] = collections.deque(
            maxlen=(self.config.audio.barge_in_min_ms + BARGE_GAPS_MS) // self.config.audio.frame_ms)
        # echo cancellation on every mic frame (barge-in mode aec); None: the frames as heard
        self.echo = echo
        self.barge_mode = barge_mode(self.config.audio.barge_in, echo)
        self._echo_report_at = 0.0  # seconds of our own voice heard at which the next ERLE line is logged
        # frames heard while busy, replayed into the endpointer on barge-in so the first
        # syllables of the interruption are part of the next utterance. With the echo cancelled,
        # more: AEC3's suppressor chops the first words said over the reply, barge-in fires only once
        # 250 ms in a row are heard as speech, and that was often well after the user began (the
        # turn then opened on "...ving room light"); the reply's cancelled echo before them is quiet.
        # Without it, what came before is our own voice, which the endpointer would take for the user.
        frame_ms = self.config.audio.frame_ms
        self._replay_frames = (self.config.vad.pre_roll_ms + self.config.audio.barge_in_min_ms) // frame_ms + 1
        self._replay_aec_frames = REPLAY_AEC_MS // frame_ms
        self._replay_words_frames = REPLAY_WORDS_MS // frame_ms
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(self._replay_frames,
                                                                                     self._replay_aec_frames))
        self._words_until = 0.0  # till then the endpointer hears the words' signal (after a barge-in)
        self._recent_speech: collections.deque[bool] = collections.deque(maxlen=self._recent.maxlen)
        # the latest turns, for `turn` and tests; bounded, because a daemon answers for days
        self.results: collections.deque[TurnResult] = collections.deque(maxlen=RESULTS_KEPT)
        self.wake = None
        if self.config.wake_word.enabled:
            from Orchestrator.wake_word import WakeWordGate

            w = self.config.wake_word
            self.wake = WakeWordGate(w.model, w.threshold, w.listen_window_s)
        self._announcements: set[asyncio.Task] = set()
        self._set_state(State.LISTENING)

    def _set_state(self, state: State) -> None:
        for s in State:
            STATE.labels(s.value).set(1 if s is state else 0)
        if state is not self.state or state is State.LISTENING:
            self.state = state
            self.on_state(state)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, or a finite source (a file) runs out and its last turn is answered."""
        intents = getattr(self.assistant, "intents", None)
        if intents is not None:
            intents.on_timer_done(self.announce)
        try:
            async for frame in self.mic.frames(stop):
                self.on_frame()
                words = frame
                if self.echo is not None:
                    frame, words = self._cancel_echo(frame)
                if self._busy():
                    if not self._hear_while_busy(frame, words):
                        continue
                elif not self._awake(frame):
                    continue
                # right after a barge-in the user is still talking over the echo's tail; otherwise
                # (the gaps between a reply's sentences) AEC3's output, in which our voice is gone
                heard = words if time.monotonic() < self._words_until else frame
                for event in self.endpointer.process(heard):
                    self._on_event(event)
            if not stop.is_set() and self.turn_task is not None:
                await self.turn_task
        finally:
            if intents is not None:
                intents.timers.listeners.clear()
            tentative = self.tentative.task if self.tentative else None
            for task in (self.turn_task, self.early, tentative, *self._announcements):
                if task and not task.done():
                    task.cancel()
            self.speaker.stop()

    def _awake(self, frame: np.ndarray) -> bool:
        """Without a wake word: always. With one: only within the window it opened."""
        if self.wake is None or self.wake.awake or self.endpointer.in_utterance:
            return True
        if self.wake.heard(frame):
            self.endpointer.reset()
            self.show("[wake word]")
        return False

    def _busy(self) -> bool:
        return self.turn_task is not None and not self.turn_task.done()

    def _hear_while_busy(self, frame: np.ndarray, words: np.ndarray | None = None) -> bool:
        """Barge-in policy while a turn runs, on `frame` (AEC3's output with aec); `words`: the same
        frame for the endpointer (Orchestrator.echo.Cleaned), if it differs. True: feed the frame to
        the endpointer."""
        mode = self.barge_mode
        if mode == "off":
            return False
        self._recent.append(frame if words is None else words)
        self._recent_speech.append(False)
        speaking = self.speaker.speaking
        # without echo cancellation (or before it has converged) the mic hears our own voice: only loud speech counts
        gate = mode == "half_duplex" or (mode == "aec" and self.echo is not None and not self.echo.converged)
        if gate and speaking and dbfs(frame) < self.config.audio.barge_in_loud_dbfs:
            self._barge_window.clear()
            return False
        cancelled = mode == "aec" and not gate
        threshold = self.config.audio.aec_speech_threshold if cancelled else None
        self._barge_window.append(self.barge_detector.is_speech(frame, threshold))
        self._recent_speech[-1] = self._barge_window[-1]
        # Speech must last barge_in_min_ms in a row (a cough does not interrupt). While both talk
        # AEC3's suppressor chops the user's words into pieces, so with the echo cancelled that much
        # within a window BARGE_GAPS_MS longer counts; a run in a row would often come only after the
        # command was over (at -6 dB: 4 misses in 6 tries).
        frames = sum(self._barge_window) if cancelled else trailing_run(self._barge_window)
        if frames * self.config.audio.frame_ms >= self.config.audio.barge_in_min_ms:
            replay = self._replay_count(cancelled, self.echo is not None and self.echo.linear is not None)
            self._barge_in()
            if mode in ("half_duplex", "aec"):  # the endpointer did not hear these frames: replay them
                self.endpointer.reset()
                for earlier in list(self._recent)[-replay:-1]:
                    for event in self.endpointer.process(earlier):
                        self._on_event(event)
            return True
        return mode == "headset" or not speaking

    def _replay_count(self, cancelled: bool, own_words: bool) -> int:
        """How many of the latest frames (this one included) the endpointer hears on barge-in."""
        if not cancelled:
            return self._replay_frames
        if not own_words:
            return self._replay_aec_frames
        # from just before the first of the speech frames that lead up to this one
        speech = list(self._recent_speech)
        gap = SPEECH_GAP_MS // self.config.audio.frame_ms
        first = len(speech) - 1
        for i in range(len(speech) - 2, -1, -1):
            if first - i > gap:
                break
            if speech[i]:
                first = i
        return len(speech) - first + self._replay_words_frames

    def _cancel_echo(self, frame: np.ndarray) -> Cleaned:
        """The frame without our own voice; once the measured ERLE says the canceller cannot do its
        job on this device, half_duplex instead (one log line) and the raw frames from then on."""
        assert self.echo is not None
        clean = self.echo.clean(frame, getattr(self.mic, "frame_time", None))
        verdict = self.echo.verdict(self.config.audio.aec_min_erle_db)
        if verdict is False:
            log.warning("barge-in: half_duplex instead of aec: echo reduced by only %.1f dB on this device "
                        "(needs %.0f dB)", getattr(self.echo, "decided_erle_db", None) or 0.0,
                        self.config.audio.aec_min_erle_db)
            self.echo, self.barge_mode = None, "half_duplex"
            return Cleaned(frame, frame)
        if verdict and self.echo.meter.far_s >= self._echo_report_at:
            self._echo_report_at = self.echo.meter.far_s + ECHO_REPORT_S
            words = self.echo.words_meter.erle_db
            log.info("echo cancellation: ERLE %.1f dB over %.0f s of our own voice (speexdsp's, for the words: %s), "
                     "%.0f us per 10 ms frame", self.echo.meter.erle_db or 0.0, self.echo.meter.far_s,
                     "none" if words is None else f"{words:.1f} dB", self.echo.cpu_us_per_10ms)
        return clean

    def _barge_in(self) -> None:
        log.info("barge-in: the user spoke over the reply")
        BARGE_INS.inc()
        self._barge_window.clear()
        self._words_until = time.monotonic() + WORDS_AFTER_BARGE_S
        self.speaker.stop()
        if self.turn_task and not self.turn_task.done():
            self.turn_task.cancel()

    def _on_event(self, event: EndpointEvent) -> None:
        audio = event.audio
        if event.kind == "resume":
            self._cancel_early()
        elif audio is None:  # speech_start; a pause and an end always carry the utterance
            return
        elif event.kind == "pause":
            self.speech_end = time.perf_counter() - self.config.vad.pause_ms / 1000.0
            if self.config.vad.early_stt:
                # transcribe during the end-of-turn silence; thrown away if the user goes on
                self._cancel_early()
                self.early = asyncio.create_task(self.assistant.stt.transcribe(audio))
                self.early.add_done_callback(self._early_words)
                if self.config.vad.preemptive_reply and not self._busy():
                    self._preempt(audio, self.early, self.speech_end)
        elif event.kind == "end":
            if self.turn_task is not None:  # a reply still running is replaced (cancel is a no-op once done)
                self.turn_task.cancel()
            end = self.speech_end or time.perf_counter()
            if self.tentative is not None and self.tentative.task is not None:
                self.turn_task = self._confirm(self.tentative)
            else:
                self.turn_task = asyncio.create_task(self._turn(audio, self.early, end))
            self.tentative = None
            self.early = None
            self.speech_end = None

    def _early_words(self, early: asyncio.Task) -> None:
        """The words of the pause are in: stopping mid-phrase ("turn on the"), the turn waits for more;
        a whole command ends it; else the sound decides (STT.vad.Endpointer.words_heard)."""
        if early is not self.early or early.cancelled():
            return
        heard: Transcript | None = early.result() if early.exception() is None else None
        unfinished = heard is not None and sounds_unfinished(heard.text, heard.language)
        if heard is not None and unfinished:
            log.debug("the words stop mid-phrase (%r): waiting for more", heard.text[-40:])
        intents = getattr(self.assistant, "intents", None)
        if heard is None or unfinished or intents is None or not could_be_command(heard):
            self.endpointer.words_heard(unfinished)
            return
        self._words_task = asyncio.create_task(self._command_words(early, intents, heard))

    async def _command_words(self, early: asyncio.Task, intents: Intents, heard: Transcript) -> None:
        """A short pause transcript that is a whole question to a command ("what time is it") ends
        the turn now (the match is kept for the answer): smart-turn is often unsure of a flat or
        synthetic voice, which cost such commands the 600 ms unsure wait. A command that acts (a
        timer, a light) still waits: the user may go on ("... no, never mind")."""
        try:
            match = await intents.match_off_loop(heard.text, heard.language)
        except Exception as err:  # matching must never stop listening: the sound decides
            log.warning("command match on the pause failed: %s", err)
            match = None
        if early is self.early:
            self.endpointer.words_heard(False, complete=match is not None and match.whole_question)

    def _cancel_early(self) -> None:
        """The user went on: what was started on the pause is thrown away."""
        if self.early and not self.early.done():
            self.early.cancel()
        self.early = None
        tentative, self.tentative = self.tentative, None
        if tentative is not None and tentative.task is not None:
            tentative.task.cancel()
            self._discarded = tentative.task
            PREEMPTIONS.labels("wasted").inc()

    def _preempt(self, audio: Audio, early: asyncio.Task, speech_end: float) -> None:
        """Start the reply now into a held sink; the endpoint releases it, or a resume drops it."""
        tentative = Tentative(HeldSink(self.speaker), Stopwatch(speech_end))
        tentative.task = asyncio.create_task(self._turn(audio, early, speech_end, tentative))
        self.tentative = tentative

    def _confirm(self, tentative: Tentative) -> asyncio.Task:
        """The turn is over: the held reply is the answer, its audio goes to the speaker now."""
        assert tentative.task is not None
        PREEMPTIONS.labels("used").inc()
        tentative.watch.mark("endpoint")
        tentative.confirmed.set()
        if tentative.task.done():
            return tentative.task
        if tentative.transcript is not None:
            self.show(f"you: {tentative.transcript}")
        tentative.sink.release()
        self._set_state(State.SPEAKING if tentative.sink.speaking else State.THINKING)
        return tentative.task

    async def _turn(self, audio: Audio, early: asyncio.Task | None, speech_end: float,
                    tentative: Tentative | None = None) -> None:
        """One turn; whatever goes wrong in it ends that turn, never the loop."""
        discarded = self._discarded
        if discarded is not None and not discarded.done():
            await asyncio.wait({discarded})  # the history it restores must be back before this turn reads it
        conversation = self.assistant.llm.conversation
        before = Snapshot.of(conversation) if tentative is not None else None
        try:
            await self._answer(audio, early, speech_end, tentative)
        except asyncio.CancelledError:
            if before is not None and tentative is not None and not tentative.confirmed.is_set():
                before.restore(conversation)  # a reply nobody heard leaves no trace in the history
            raise
        except Exception as err:  # the managers' fallbacks should make this rare: keep listening
            log.error("turn failed: %s: %s", type(err).__name__, err, exc_info=log.isEnabledFor(logging.DEBUG))
            self._set_state(State.LISTENING)
        finally:
            # the turn's scratch buffers go back to the system instead of staying in the arenas
            asyncio.get_running_loop().run_in_executor(None, release_free_heap)

    async def _answer(self, audio: Audio, early: asyncio.Task | None, speech_end: float,
                      tentative: Tentative | None = None) -> None:
        """One turn; `tentative`: started on the pause, before the endpoint (see _preempt)."""
        turn_id = f"t{next(self.turn_ids)}"
        set_turn_id(turn_id)
        sink: Sink
        if tentative is not None:
            watch, sink, confirmed = tentative.watch, tentative.sink, tentative.confirmed
        else:
            watch, sink, confirmed = Stopwatch(speech_end), self.speaker, None
            watch.mark("endpoint")
            self._set_state(State.THINKING)

        def unconfirmed() -> bool:
            return confirmed is not None and not confirmed.is_set()

        try:
            transcript = await early if early else await self.assistant.stt.transcribe(audio)
        except AudioInputError as err:
            log.info("%s: ignored: %s", turn_id, err)
            self._set_state(State.LISTENING)
            return
        watch.mark("stt")
        if not transcript.text.strip():
            log.info("%s: nothing heard", turn_id)
            self._set_state(State.LISTENING)
            return
        transcript = await hear(self.assistant, audio, transcript)
        if tentative is not None:
            tentative.transcript = transcript.text
        if not unconfirmed():
            self.show(f"you: {transcript.text}")
        result = TurnResult(transcript.text, transcript.language, backends={"stt": transcript.backend})
        try:
            await self.runner.respond(result, sink, watch, confirmed=confirmed,
                                      on_first_audio=lambda: self._set_state(State.SPEAKING))
        except asyncio.CancelledError:
            if not unconfirmed():
                self.show(f"luxa (interrupted): {result.heard}")
                self.results.append(result)
            raise
        finally:
            if not unconfirmed():
                self._set_state(State.LISTENING)
        first = result.timings_ms.get("first_audio")
        self.show(f"luxa: {result.reply}" + (f"   [first audio {first / 1000:.2f} s]" if first else ""))
        if self.wake is not None:
            self.wake.keep_awake()  # a follow-up question needs no second wake word
        log.info("%s timings %s", turn_id, result.timings_ms)
        self.results.append(result)

    # --- announcements (a timer is done) ---
    def announce(self, text: str, language: str) -> None:
        """Say `text` after a chime, in the next gap: never over the user or over a reply."""
        task = asyncio.create_task(self._announce(text, language))
        self._announcements.add(task)
        task.add_done_callback(self._announcements.discard)

    async def _announce(self, text: str, language: str) -> None:
        while self._busy() or self.endpointer.in_utterance:
            await asyncio.sleep(ANNOUNCE_POLL_S)
        self.show(f"luxa: {text}")
        # as a turn, so that speech over it (a "stop") interrupts it like any reply
        self.turn_task = asyncio.create_task(self._say(text, language))

    async def _say(self, text: str, language: str) -> None:
        self._set_state(State.SPEAKING)
        try:
            self.speaker.begin()
            self.speaker.play(chime(self.config.intents.alert_hz), "")
            spoken = await self.assistant.tts.answer(language=language).say(text)
            if spoken.audio is not None and spoken.audio.samples.size:
                self.speaker.play(spoken.audio, text)
            await self.speaker.drain()
        except asyncio.CancelledError:
            self.speaker.stop()
            raise
        finally:
            self._set_state(State.LISTENING)


def trailing_run(flags: collections.deque[bool]) -> int:
    """How many of the latest flags (oldest first) in a row are true."""
    run = 0
    for flag in reversed(flags):
        if not flag:
            break
        run += 1
    return run


def barge_mode(configured: str, echo: EchoCanceller | None) -> str:
    """The barge-in mode in force: auto and aec are aec with a working canceller, else half_duplex."""
    if configured in ("auto", "aec"):
        return "aec" if echo is not None else "half_duplex"
    return configured


def chime(hz: float, rate: int = 16000) -> Audio:
    """Two short beeps with soft edges (no click), a gap between them."""
    t = np.arange(int(rate * CHIME_S)) / rate
    beep = 0.3 * np.sin(2 * np.pi * hz * t) * np.hanning(t.size)
    gap = np.zeros(int(rate * CHIME_S / 2))
    return Audio(np.concatenate([beep, gap, beep, gap]).astype(np.float32), rate)
