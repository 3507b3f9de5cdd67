"""Voice activity detection and endpointing for the live microphone stream.

webrtcvad costs a few microseconds per frame and rejects most silence; Silero (a few hundred
microseconds) runs only on frames the gate lets through and decides, because webrtcvad alone
fires on fans, keyboards and music. The endpointer turns per-frame decisions into utterances.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from Config.schema import VadConfig
from Core.audio import Audio, float32_to_pcm16
from STT.silero import SAMPLE_RATE, SileroStream
from STT.turn_model import load_or_none

log = logging.getLogger(__name__)

EventKind = Literal["speech_start", "pause", "resume", "end"]


@dataclass(frozen=True)
class EndpointEvent:
    kind: EventKind
    audio: Audio | None  # pause/end: the utterance (pre-roll included); None otherwise
    t: float  # stream time in seconds when the event was detected (end of the current frame)
    start_t: float | None = None  # stream time where the utterance (its pre-roll) begins


class QuietInputGain:
    """The gain the cheap gate hears frames at, so that a quiet microphone still opens it.

    webrtcvad judges energy as well as spectrum: speech recorded below about -55 dBFS never
    passes it, although Silero (level-independent) and Whisper hear it well. Frames are lifted
    until the input's noise floor (the 10th percentile of the last 3 s of frame levels) reaches
    `FLOOR_DBFS`, by at most `max_gain_db`. A normal microphone's floor already sits near -60
    dBFS or above, so it gets no gain; only very clean, quiet input is lifted. Only the gate's
    copy is lifted: Silero and STT get the frames as recorded.
    """

    FLOOR_DBFS = -60.0
    HISTORY_FRAMES = 100
    UPDATE_EVERY = 10  # frames between floor estimates: a percentile per frame costs more than the gate
    MIN_LEVEL = 1e-6  # digital silence: counts as -120 dBFS, not minus infinity

    def __init__(self, max_gain_db: float):
        self.max_gain = 10 ** (max_gain_db / 20)
        self.target = 10 ** (self.FLOOR_DBFS / 20)
        self._levels = np.empty(self.HISTORY_FRAMES)
        self._count = 0
        self.gain = 1.0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        if self.max_gain <= 1.0:
            return frame
        self._levels[self._count % self.HISTORY_FRAMES] = max(float(np.sqrt(np.dot(frame, frame) / frame.size)),
                                                               self.MIN_LEVEL)
        self._count += 1
        if self._count <= self.UPDATE_EVERY or self._count % self.UPDATE_EVERY == 0:
            known = self._levels[: min(self._count, self.HISTORY_FRAMES)]
            floor = float(np.partition(known, len(known) // 10)[len(known) // 10])  # 10th percentile
            self.gain = min(self.max_gain, max(1.0, self.target / floor))
        return frame if self.gain == 1.0 else np.clip(frame * self.gain, -1.0, 1.0)


def _check_format(sample_rate: int, frame_ms: int) -> int:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"VAD runs at {SAMPLE_RATE} Hz (Silero v6), got {sample_rate} Hz")
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"VAD frames are 10, 20 or 30 ms (webrtcvad), got {frame_ms} ms")
    return sample_rate * frame_ms // 1000


class SpeechDetector:
    """Per-frame speech decision for one continuous stream (the endpointer, or barge-in)."""

    def __init__(self, config: VadConfig, sample_rate: int = SAMPLE_RATE, frame_ms: int = 30):
        import webrtcvad

        self.frame_len = _check_format(sample_rate, frame_ms)
        self.sample_rate = sample_rate
        self.threshold = config.silero_threshold
        self._gate = webrtcvad.Vad(config.webrtc_aggressiveness)
        self._gate_gain = QuietInputGain(config.quiet_input_gain_db)
        self._silero = SileroStream()
        self._probability = 0.0

    def speech_probability(self, frame: np.ndarray) -> float:
        """Silero's probability for this frame; 0.0 when the cheap gate already said silence."""
        frame = np.asarray(frame, dtype=np.float32)
        if frame.shape != (self.frame_len,):
            raise ValueError(f"expected a mono frame of {self.frame_len} samples, got shape {frame.shape}")
        if not self._gate.is_speech(float32_to_pcm16(self._gate_gain.apply(frame)), self.sample_rate):
            self._silero.skip(frame)
            self._probability = 0.0
        else:
            fresh = self._silero.feed(frame)
            if fresh is not None:  # a 30 ms frame does not always complete a 32 ms window
                self._probability = fresh
        return self._probability

    def is_speech(self, frame: np.ndarray, threshold: float | None = None) -> bool:
        """Speech at `threshold` (default: the configured one)."""
        return self.speech_probability(frame) >= (self.threshold if threshold is None else threshold)

    def reset(self) -> None:
        self._silero.reset()
        self._probability = 0.0


class TurnJudge(Protocol):
    """What the endpointer needs of an end-of-turn model (STT.turn_model.TurnJudge)."""

    def submit(self, samples: np.ndarray) -> Future[float]: ...


class Endpointer:
    """Frames in, utterance events out. Not thread-safe: one stream, one caller.

    With a turn model (vad.turn_model), the silence to wait for depends on what the model hears:
    after turn_min_silence_ms of trailing silence the utterance goes to the model on its own
    thread, and its verdict (read by a later frame) sets the wait. Sure it is complete
    (>= turn_sure_threshold): the turn ends now. Unsure (>= turn_threshold): after
    turn_unsure_silence_ms. Incomplete: after turn_max_silence_ms. Until the verdict is in, only the
    maximum ends the turn. Without a model (or when its file is missing) end_silence_ms ends it.
    """

    def __init__(self, config: VadConfig, sample_rate: int = SAMPLE_RATE, frame_ms: int = 30,
                 detector: SpeechDetector | None = None, judge: TurnJudge | Literal["config"] | None = "config",
                 wait_for_words: bool = False):
        self.config = config
        self.sample_rate = sample_rate
        self.frame_s = frame_ms / 1000
        self.detector = detector or SpeechDetector(config, sample_rate, frame_ms)
        self.judge = load_or_none(config.turn_model) if judge == "config" else judge
        self._pre_roll_frames = math.ceil(config.pre_roll_ms / frame_ms)
        self._min_speech_frames = math.ceil(config.min_speech_ms / frame_ms)
        # a burst too short to be speech is dropped after the plain silence, model or not
        self._burst_silence_frames = math.ceil(config.end_silence_ms / frame_ms)
        max_silence_ms = config.turn_max_silence_ms if self.judge is not None else config.end_silence_ms
        self._end_silence_frames = math.ceil(max_silence_ms / frame_ms)
        self._judge_frames = math.ceil(config.turn_min_silence_ms / frame_ms)
        self._unsure_frames = math.ceil(config.turn_unsure_silence_ms / frame_ms)
        self._judgement: Future[float] | None = None
        self._hold_frames = max(math.ceil(config.turn_max_silence_ms / frame_ms), self._end_silence_frames)
        self._expect_more = False  # the words so far stop mid-phrase (expect_more): wait for the maximum
        # the caller transcribes each pause (early STT) and says what the words say (words_heard):
        # until then only the maximum silence ends the turn
        self.wait_for_words = wait_for_words
        self._words_pending = False
        self._words_complete = False  # the words of this pause make a whole command
        self._verdict_frames = self._end_silence_frames  # the silence that ends this pause, once judged
        self.last_turn_probability: float | None = None  # the model's verdict on the latest pause
        # real speech has many one-frame gaps: early STT started on each would be thrown away
        self._pause_frames = min(max(1, math.ceil(config.pause_ms / frame_ms)), self._end_silence_frames)
        self._max_frames = int(config.max_utterance_s / self.frame_s)
        # Trailing silence kept in the utterance: as much as the pre-roll, for the same reason
        # (a soft last syllable is often scored as silence).
        self._keep_trailing = self._pre_roll_frames
        self._frames_seen = 0
        self.last_speech_probability = 0.0
        self.reset()

    @property
    def in_utterance(self) -> bool:
        return self._utterance is not None

    def reset(self) -> None:
        """Drop any utterance in progress (stream time keeps counting)."""
        self._pre: deque[np.ndarray] = deque(maxlen=max(self._pre_roll_frames, 1))
        self._utterance: list[np.ndarray] | None = None
        self._start_frame = 0
        self._speech_frames = 0
        self._silence_run = 0
        self._started = False
        self._paused = False
        self._forget_judgement()
        self.detector.reset()

    def process(self, frame: np.ndarray) -> list[EndpointEvent]:
        self.last_speech_probability = self.detector.speech_probability(frame)
        speech = self.last_speech_probability >= self.detector.threshold
        frame = np.asarray(frame, dtype=np.float32)
        self._frames_seen += 1
        if self._utterance is None:
            if not speech:
                if self._pre_roll_frames:
                    self._pre.append(frame)
                return []
            self._open_utterance()
        self._open.append(frame)
        return self._advance(speech)

    @property
    def _open(self) -> list[np.ndarray]:
        """The utterance being collected; only called while one is open."""
        assert self._utterance is not None
        return self._utterance

    def _open_utterance(self) -> None:
        self._utterance = list(self._pre)
        self._start_frame = self._frames_seen - 1 - len(self._pre)
        self._pre.clear()
        self._speech_frames = self._silence_run = 0
        self._started = self._paused = False
        self._verdict_frames = self._end_silence_frames
        self._expect_more = self._words_pending = self._words_complete = False

    def _advance(self, speech: bool) -> list[EndpointEvent]:
        events: list[EndpointEvent] = []
        if speech:
            self._speech_frames += 1
            self._silence_run = 0
            self._forget_judgement()  # the speaker went on: whatever the model says is moot
            self._verdict_frames = self._end_silence_frames
            self._expect_more = self._words_pending = self._words_complete = False
            if self._paused:
                self._paused = False
                events.append(self._event("resume"))
        else:
            self._silence_run += 1
        if not self._started:
            if self._speech_frames >= self._min_speech_frames:
                self._started = True
                events.append(self._event("speech_start"))
            elif self._silence_run >= self._burst_silence_frames:
                self._drop_burst()
            return events
        if self._silence_run == self._pause_frames:
            self._paused = True
            self._words_pending = self.wait_for_words
            events.append(self._event("pause", self._audio()))
        if self.judge is not None and self._silence_run == self._judge_frames:
            self.last_turn_probability = None
            self._verdict_frames = self._end_silence_frames
            self._judgement = self.judge.submit(self._audio().samples)
        self._read_verdict()
        held = self._expect_more or self._words_pending
        wait = self._hold_frames if held else min(self._end_silence_frames, self._verdict_frames)
        if not held and self._words_complete and not self._sounds_unfinished():
            wait = 0  # a synthetic or flat voice leaves the model unsure; the command is whole
        if self._silence_run >= wait or len(self._open) >= self._max_frames:
            events.append(self._event("end", self._audio()))
            self._utterance = None
            self._forget_judgement()
        return events

    def _sounds_unfinished(self) -> bool:
        """The model's verdict on this pause is in and says the voice goes on."""
        p = self.last_turn_probability
        return self.judge is not None and p is not None and p < self.config.turn_threshold

    def _read_verdict(self) -> None:
        """Once the model's verdict is in, the silence that ends this pause follows from it."""
        if self._judgement is None or not self._judgement.done():
            return
        judgement, self._judgement = self._judgement, None
        try:
            p = self.last_turn_probability = judgement.result()
        except Exception as err:  # a broken judgement must not break listening: the max silence ends the turn
            log.warning("end-of-turn model failed (%s): waiting for the maximum silence", err)
            return
        log.debug("end-of-turn model: P(finished) %.2f after %d ms of silence", p,
                  round(self._silence_run * self.frame_s * 1000))
        if p >= self.config.turn_sure_threshold:
            self._verdict_frames = 0
        elif p >= self.config.turn_threshold:
            self._verdict_frames = self._unsure_frames

    def _forget_judgement(self) -> None:
        if self._judgement is not None:
            self._judgement.cancel()  # a judgement already running finishes on its thread, unread
            self._judgement = None

    def words_heard(self, unfinished: bool, complete: bool = False) -> None:
        """What the words of this pause say (with wait_for_words). Stopping mid-phrase ("turn on the"),
        the pause ends the turn only after vad.turn_max_silence_ms, whatever the sound says. A whole
        command (`complete`: "what time is it") ends it now, unless the model heard a voice that goes
        on. Else the sound decides. Until the speaker speaks again."""
        if self._utterance is not None and self._started:
            self._words_pending = False
            self._expect_more = self._expect_more or unfinished
            self._words_complete = complete and not self._expect_more

    @property
    def judging(self) -> bool:
        """A verdict has been asked for and not read yet (benchmarks pace frames on it)."""
        return self._judgement is not None

    def wait_judgement(self, timeout: float) -> None:
        """Block up to `timeout` s for the pending verdict: for a benchmark that feeds faster than real time."""
        if self._judgement is not None:
            try:
                self._judgement.exception(timeout)
            except Exception:  # timed out, cancelled: the next frame reads (or waits on) it
                pass

    def _drop_burst(self) -> None:
        """Too little speech (a click, a cough): forget it, but keep its tail as pre-roll."""
        if self._pre_roll_frames:
            self._pre.extend(self._open[-self._pre_roll_frames:])
        self._utterance = None

    def _audio(self) -> Audio:
        trailing = self._silence_run - min(self._silence_run, self._keep_trailing)
        frames = self._open[:len(self._open) - trailing]
        return Audio(np.concatenate(frames), self.sample_rate)

    def _event(self, kind: EventKind, audio: Audio | None = None) -> EndpointEvent:
        return EndpointEvent(kind, audio, round(self._frames_seen * self.frame_s, 6),
                             round(self._start_frame * self.frame_s, 6))
