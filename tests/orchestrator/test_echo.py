"""Echo cancellation (Orchestrator/echo.py): the reference timeline, the real WebRTC AEC3 on a
synthetic echo, and how the barge-in mode is chosen and given up."""
from __future__ import annotations

import asyncio
import collections
import logging
import sys
from types import SimpleNamespace

import numpy as np

from Config import load_config
from Orchestrator import echo, voice_loop
from Orchestrator.echo import Cleaned, EchoCanceller, LinearFilter, Reference, make_canceller
from Orchestrator.voice_loop import VoiceLoop, barge_mode

RATE = 16000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a syllable rhythm: broadband like speech, and reproducible."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.convolve(rng.normal(0, 0.1, n), np.ones(6) / 6, mode="same")
    return (x * (0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 2.5 * np.arange(n) / RATE)))).astype(np.float32)


def test_reference_keeps_jittery_blocks_contiguous_and_reads_them_back_by_time():
    ref = Reference()
    played = speechlike(1.0)
    t0 = 1000.0
    jitter = [0.0, 0.012, -0.015, 0.02, -0.017]  # callback times wander; the device plays on without gaps
    for i, start in enumerate(range(0, len(played), 640)):
        ref.write(played[start:start + 640], RATE, t0 + start / RATE + jitter[i % len(jitter)])
    assert ref.anchors == 1
    assert np.array_equal(ref.read(t0 + 0.25, 480), played[4000:4480])
    assert not ref.read(t0 - 5.0, 480).any()  # before anything was played: silence
    before = ref.read(t0 - 0.01, 480)  # straddling the start: zeros, then the first samples
    assert not before[:160].any() and np.array_equal(before[160:], played[:320])


def test_reference_reanchors_after_a_restart_and_resamples_a_44100_hz_device():
    ref = Reference()
    for i in range(3):  # 0.3 s played at 44.1 kHz
        ref.write(np.ones(4410, np.float32), 44100, 50.0 + i * 0.1)
    ref.write(np.ones(4410, np.float32), 44100, 50.9)  # 0.6 s later than contiguous: the stream restarted
    assert ref.anchors == 2
    assert ref.read(50.1, 1600).mean() > 0.9  # at 16 kHz, where it was played
    assert abs(ref.read(50.32, 960)).max() < 0.05  # the gap stays silent
    assert ref.read(50.91, 480).mean() > 0.9  # (the resampler holds back the end of the last block)


def test_a_reply_after_silence_is_laid_where_the_device_plays_it_not_where_a_late_first_block_said():
    ref = Reference()
    t0, block = 500.0, 640
    silence = np.zeros(block, np.float32)
    ref.write(silence, RATE, t0 + 0.02)  # the stream's first callback came 20 ms late: the anchor
    for i in range(1, 75):  # 3 s of idle stream (the speaker plays silence between replies)
        ref.write(silence, RATE, t0 + i * block / RATE)
    reply = speechlike(1.0)
    start = t0 + 75 * block / RATE
    for j in range(0, len(reply), block):
        ref.write(reply[j:j + block], RATE, start + j / RATE)
    assert ref.anchors == 1
    # within a few ms of where it was played (the timeline's dead band is 5 ms); without the settling
    # in silence it lay about 20 ms late minus 1 sample per block, and then drifted while it played
    heard = ref.read(start - 0.01, 16000)
    lag_ms = (int(np.argmax(np.correlate(heard, reply[:8000], mode="valid"))) - 160) / 16
    assert abs(lag_ms) <= 5.0, lag_ms


def test_aec3_removes_a_delayed_reverberant_echo_and_keeps_the_users_speech():
    canceller = EchoCanceller()
    played = speechlike(6.0, seed=1)
    played[int(4.4 * RATE):] = 0.0  # the user's words stop the reply (barge-in)
    t0 = 100.0
    for start in range(0, len(played), 640):
        canceller.reference.write(played[start:start + 640], RATE, t0 + start / RATE)
    room = np.zeros(int(0.09 * RATE) + 800, np.float32)  # 90 ms away, -6 dB, a short decaying tail
    room[int(0.09 * RATE)] = 0.5
    room[-800:] += np.random.default_rng(2).normal(0, 0.01, 800).astype(np.float32) * np.exp(-np.arange(800) / 200)
    heard = np.convolve(played, room)[: len(played)].astype(np.float32)
    user = speechlike(1.5, seed=3) * 0.5
    mic = heard.copy()
    mic[4 * RATE:4 * RATE + len(user)] += user
    out = np.concatenate([canceller.clean(mic[i:i + 480], t0 + i / RATE).barge for i in range(0, len(mic) - 479, 480)])
    echo_only = slice(3 * RATE, 4 * RATE)  # after convergence
    erle = 10 * np.log10(np.sum(mic[echo_only] ** 2) / np.sum(out[echo_only] ** 2))
    assert erle > 15.0, erle
    assert canceller.meter.erle_db is not None and canceller.meter.erle_db > 10.0  # the running estimate (median per frame)
    assert canceller.cpu_us_per_10ms > 0.0
    # once the reply has stopped the user's words come through whole (while both talk, AEC3's
    # suppressor takes 10 dB or more off them too: the bench measures what that costs STT)
    after = slice(int(4.8 * RATE), 4 * RATE + len(user))
    kept = np.sum(out[after] ** 2) / np.sum(mic[after] ** 2)
    assert 0.5 < kept < 2.0, kept
    # ... as heard, untouched, once nothing has played for the echo's tail: AEC3's suppressor would
    # otherwise go on muffling them after double talk
    assert np.array_equal(out[int(4.8 * RATE):], mic[int(4.8 * RATE):len(out)])
    assert not np.array_equal(out[int(4.0 * RATE):int(4.2 * RATE)], mic[int(4.0 * RATE):int(4.2 * RATE)])


def test_a_barge_in_cuts_the_reference_where_the_flushed_audio_would_have_played():
    ref = Reference()
    for i in range(25):  # 1 s written ahead of the speaker, as the callbacks do
        ref.write(np.ones(640, np.float32), RATE, 10.0 + i * 0.04)
    ref.cut(10.5)  # the device's buffer was flushed: nothing after this reached the speaker
    assert ref.read(10.2, 1600).min() == 1.0
    assert not ref.read(10.5, 8000).any()


def test_the_self_test_reaches_the_threshold_with_the_real_library():
    assert echo.self_test() > load_config(environ={}).audio.aec_min_erle_db


def test_auto_is_aec_with_a_working_canceller_else_half_duplex():
    assert barge_mode("auto", SimpleNamespace()) == "aec"  # type: ignore[arg-type]
    assert barge_mode("auto", None) == "half_duplex"
    assert barge_mode("aec", None) == "half_duplex"
    assert barge_mode("headset", SimpleNamespace()) == "headset"  # type: ignore[arg-type]
    assert make_canceller("headset", False, 10.0) is None  # no canceller where the mode needs none


def test_without_the_library_one_line_says_half_duplex_and_how_to_install(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # import fails as if not installed
    with caplog.at_level(logging.WARNING, logger="Orchestrator.echo"):
        assert make_canceller("auto", False, 10.0) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "half_duplex" in lines[0] and "pip install" in lines[0], lines


def test_a_canceller_failing_its_self_test_is_not_used(monkeypatch, caplog):
    monkeypatch.setattr(echo, "self_test", lambda: 3.0)
    with caplog.at_level(logging.WARNING, logger="Orchestrator.echo"):
        assert make_canceller("auto", False, 10.0) is None
    assert "3.0 dB" in caplog.text


# --- the voice loop's aec policy (logic: a stand-in detector, no model) ---

class EverySpeech:
    def __init__(self, *args, **kwargs) -> None:
        self.is_speech = lambda frame, threshold=None: True

    def reset(self) -> None:
        return None

    def process(self, frame: np.ndarray) -> list:
        return []


class FakeCanceller:
    """What the loop asks of a canceller: clean(), converged, verdict(), meter."""

    def __init__(self, converged: bool, verdict: bool | None, linear: bool = False) -> None:
        self.converged = converged
        self._verdict = verdict
        self.meter = SimpleNamespace(erle_db=4.0, far_s=5.0)
        self.words_meter = SimpleNamespace(erle_db=None)
        self.cpu_us_per_10ms = 50.0
        self.linear = object() if linear else None

    def clean(self, frame: np.ndarray, captured_at: float | None) -> Cleaned:
        return Cleaned(frame * 0.5, frame * 0.25 if self.linear else frame * 0.5)

    def verdict(self, min_erle_db: float) -> bool | None:
        return self._verdict


class Speaker:
    speaking = True
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


async def aec_loop(canceller: FakeCanceller, monkeypatch, *overrides: str) -> tuple[VoiceLoop, Speaker]:
    monkeypatch.setattr(voice_loop, "Endpointer", EverySpeech)
    monkeypatch.setattr(voice_loop, "SpeechDetector", EverySpeech)
    config = load_config(overrides=["audio.barge_in=aec", *overrides], environ={})
    speaker = Speaker()
    loop = VoiceLoop(SimpleNamespace(config=config), SimpleNamespace(frame_time=1.0), speaker,
                     show=lambda s: None, echo=canceller)  # type: ignore[arg-type]
    loop.turn_task = asyncio.create_task(asyncio.sleep(60))
    return loop, speaker


def normal_voice() -> np.ndarray:
    return np.full(480, 10 ** (-30 / 20), np.float32)  # -30 dBFS: far below half_duplex's loud gate


async def test_aec_lets_a_normal_voice_interrupt_once_converged(monkeypatch):
    loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=None), monkeypatch)
    assert loop.barge_mode == "aec"
    heard = [loop._hear_while_busy(*loop._cancel_echo(normal_voice())) for _ in range(12)]
    assert speaker.stopped == 1 and heard.count(True) == 1  # the frame that interrupted goes to the endpointer
    await asyncio.sleep(0)
    assert loop.turn_task.cancelled()


async def test_aec_before_convergence_lets_only_loud_speech_interrupt(monkeypatch):
    loop, speaker = await aec_loop(FakeCanceller(converged=False, verdict=None), monkeypatch)
    heard = [loop._hear_while_busy(*loop._cancel_echo(normal_voice())) for _ in range(30)]
    assert not any(heard) and speaker.stopped == 0
    loop.turn_task.cancel()


async def test_a_poor_measured_erle_falls_back_to_half_duplex_with_one_line(monkeypatch, caplog):
    loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=False), monkeypatch)
    frame = normal_voice()
    with caplog.at_level(logging.WARNING, logger="Orchestrator.voice_loop"):
        out = loop._cancel_echo(frame)
    assert loop.barge_mode == "half_duplex" and loop.echo is None  # the loop stops calling it: raw frames
    assert np.array_equal(out.barge, frame) and np.array_equal(out.words, frame)
    assert [r.levelname for r in caplog.records if "half_duplex instead of aec" in r.getMessage()] == ["WARNING"]
    assert not loop._hear_while_busy(frame, frame)  # a normal voice no longer interrupts
    loop.turn_task.cancel()


class Scripted:
    """A barge-in detector that hears speech where `pattern` (repeated) says so."""

    def __init__(self, pattern: list[bool]) -> None:
        self._flags = iter(pattern * 100)

    def is_speech(self, frame: np.ndarray, threshold: float | None = None) -> bool:
        return next(self._flags)


class Counting(EverySpeech):
    """An endpointer that counts the frames replayed into it."""

    def __init__(self) -> None:
        self.fed = 0

    def process(self, frame: np.ndarray) -> list:
        self.fed += 1
        return []


CHOPPED = [True, True, False]  # the user's words as AEC3's suppressor leaves them over the reply


async def test_with_the_echo_cancelled_chopped_speech_within_the_window_interrupts(monkeypatch):
    loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=None), monkeypatch)
    loop.barge_detector = Scripted(CHOPPED)
    frames = 0
    while speaker.stopped == 0 and frames < 60:
        loop._hear_while_busy(*loop._cancel_echo(normal_voice()))
        frames += 1
    # 250 ms of speech (9 frames of 30 ms) within 460 ms (15 frames): two of every three frames are
    # speech, so the 9th speech frame, the 13th frame, interrupts
    assert speaker.stopped == 1 and frames == 13
    loop.turn_task.cancel()


async def test_without_echo_cancellation_speech_must_last_in_a_row(monkeypatch):
    monkeypatch.setattr(voice_loop, "Endpointer", EverySpeech)
    monkeypatch.setattr(voice_loop, "SpeechDetector", EverySpeech)
    config = load_config(overrides=["audio.barge_in=headset"], environ={})
    speaker = Speaker()
    loop = VoiceLoop(SimpleNamespace(config=config), SimpleNamespace(frame_time=1.0), speaker,
                     show=lambda s: None)  # type: ignore[arg-type]
    loop.turn_task = asyncio.create_task(asyncio.sleep(60))
    loop.barge_detector = Scripted(CHOPPED)
    for _ in range(60):
        loop._hear_while_busy(normal_voice(), normal_voice())
    assert speaker.stopped == 0  # a run of two frames is a cough, whatever the window holds
    loop.barge_detector = Scripted([True])
    for _ in range(9):
        loop._hear_while_busy(normal_voice(), normal_voice())
    assert speaker.stopped == 1
    loop.turn_task.cancel()


async def test_a_barge_in_replays_the_last_1_5_s_with_the_echo_cancelled_else_only_the_onset(monkeypatch):
    fed = {}
    for converged in (True, False):
        loop, speaker = await aec_loop(FakeCanceller(converged=converged, verdict=None), monkeypatch)
        loop.endpointer = Counting()
        loud = np.full(480, 0.5, np.float32)  # before convergence only loud speech interrupts
        for _ in range(100):  # 3 s of audio fill the replay buffer; the window is emptied so none interrupts
            loop._hear_while_busy(loud, loud)
            loop._barge_window.clear()
        assert speaker.stopped == 0
        for _ in range(9):
            loop._hear_while_busy(loud, loud)
        assert speaker.stopped == 1
        fed[converged] = loop.endpointer.fed
        loop.turn_task.cancel()
    frame_ms = 30
    assert fed[True] == voice_loop.REPLAY_AEC_MS // frame_ms - 1  # the frame that fired is fed by the caller
    assert fed[False] == (300 + 250) // frame_ms + 1 - 1  # pre_roll + barge_in_min: our own voice before it


class Recording(EverySpeech):
    """An endpointer that keeps the frames replayed into it."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def process(self, frame: np.ndarray) -> list:
        self.frames.append(frame)
        return []


async def test_with_speexdsps_words_the_replay_starts_just_before_the_speech_barge_in_heard(monkeypatch):
    loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=None, linear=True), monkeypatch)
    loop.endpointer = Recording()
    pattern = [False] * 40 + [True] * 20  # 1.2 s of our voice's leftovers, then the user
    loop.barge_detector = Scripted(pattern)
    for _ in range(len(pattern)):
        loop._hear_while_busy(*loop._cancel_echo(normal_voice()))
        if speaker.stopped:
            break
    assert speaker.stopped == 1
    replayed = loop.endpointer.frames
    # the window's first speech frame and the 7 after it (the 9th is fed by the caller), and the
    # 300 ms before it: not the 1.5 s AEC3's output gets, in which speexdsp leaves our own voice
    assert len(replayed) == 8 + voice_loop.REPLAY_WORDS_MS // 30
    assert all(np.allclose(f, normal_voice() * 0.25) for f in replayed)  # the words' signal, not AEC3's
    assert loop._words_until > 0  # the frames after it too, while the echo's tail lasts
    loop.turn_task.cancel()


async def test_the_words_replay_reaches_back_through_chopped_speech_but_not_to_a_lone_leftover(monkeypatch):
    loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=None, linear=True), monkeypatch)
    loop.endpointer = Recording()
    # a lone speech frame of our own voice's leftovers at 10; the user from 31, chopped by AEC3's
    # suppressor (one frame in four heard), then clear from 43: barge-in fires on frame 49
    pattern = [False] * 10 + [True] + [False] * 20 + [True, False, False, False] * 3 + [True] * 9
    loop.barge_detector = Scripted(pattern)
    for i in range(len(pattern)):
        loop._hear_while_busy(*loop._cancel_echo(normal_voice()))
        if speaker.stopped:
            break
    assert (speaker.stopped, i) == (1, 49)
    # frames 31-48 (49 is fed by the caller) and the 300 ms before 31; not back to frame 10
    assert len(loop.endpointer.frames) == 18 + voice_loop.REPLAY_WORDS_MS // 30
    loop.turn_task.cancel()


def test_speexdsps_filter_takes_most_of_the_echo_and_leaves_the_users_words():
    linear = LinearFilter()
    rng = np.random.default_rng(3)
    far = speechlike(4.0, seed=1)
    echo = np.concatenate([np.zeros(480, np.float32), far])[:len(far)] * 0.5  # 30 ms late, -6 dB
    user = np.zeros_like(far)
    user[3 * RATE:] = speechlike(1.0, seed=2) * 0.5
    mic = echo + user + rng.normal(0, 1e-4, len(far)).astype(np.float32)
    out = np.concatenate([linear.process(mic[i:i + 480], far[i:i + 480]) for i in range(0, len(mic) - 479, 480)])
    converged = slice(2 * RATE, 3 * RATE)  # our voice alone, after two seconds
    erle = 10 * np.log10(np.sum(mic[converged] ** 2) / np.sum(out[converged] ** 2))
    assert erle >= 10.0, erle
    words = slice(3 * RATE, 4 * RATE)  # the user over the echo: their words come through (no suppressor)
    kept = 10 * np.log10(np.sum(out[words] ** 2) / np.sum(user[words] ** 2))
    assert kept > -3.0, kept


def test_convergence_stays_once_reached_while_the_user_talks_over_the_reply():
    canceller = EchoCanceller(min_erle_db=10.0)
    canceller.meter = SimpleNamespace(recent_db=lambda s: 6.0, far_s=5.0, echo_heard=True)  # type: ignore[assignment]
    assert not canceller.converged
    canceller.meter.recent_db = lambda s: 25.0
    assert canceller.converged
    canceller.meter.recent_db = lambda s: 9.0  # the user's voice in the mic lowers the measured ERLE
    assert canceller.converged


def test_trailing_run_counts_the_latest_flags_in_a_row():
    assert voice_loop.trailing_run(collections.deque([True, False, True, True])) == 2
    assert voice_loop.trailing_run(collections.deque([True, True, False])) == 0
    assert voice_loop.trailing_run(collections.deque()) == 0


class Probability:
    """A barge-in detector that gives every frame the same Silero probability."""

    def __init__(self, p: float) -> None:
        self.p = p

    def is_speech(self, frame: np.ndarray, threshold: float | None = None) -> bool:
        return self.p >= (0.5 if threshold is None else threshold)


async def test_the_cancelled_signal_has_its_own_speech_threshold(monkeypatch):
    # AEC3's suppressor leaves the user's words over a reply at Silero probabilities of 0.3-0.5
    fired = {}
    for threshold in ("0.5", "0.3"):
        loop, speaker = await aec_loop(FakeCanceller(converged=True, verdict=None), monkeypatch,
                                       f"audio.aec_speech_threshold={threshold}")
        loop.barge_detector = Probability(0.4)
        for _ in range(9):
            loop._hear_while_busy(*loop._cancel_echo(normal_voice()))
        fired[threshold] = speaker.stopped
        loop.turn_task.cancel()
    assert fired == {"0.5": 0, "0.3": 1}
    # before it has converged the mic still holds our own voice: the configured VAD threshold
    loop, speaker = await aec_loop(FakeCanceller(converged=False, verdict=None), monkeypatch,
                                   "audio.aec_speech_threshold=0.3")
    loop.barge_detector = Probability(0.4)
    loud = np.full(480, 0.5, np.float32)
    for _ in range(30):
        loop._hear_while_busy(loud, loud)
    assert speaker.stopped == 0
    loop.turn_task.cancel()


def test_speexdsp_runs_only_while_something_plays():
    calls = []

    class CountingFilter:
        def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
            calls.append(float(np.abs(far).max()))
            return near

    canceller = EchoCanceller(linear=CountingFilter())  # type: ignore[arg-type]
    frame = speechlike(0.03)
    for i in range(10):  # nothing played: the user's words as heard, no speexdsp
        assert np.array_equal(canceller.clean(frame, 100.0 + i * 0.03).words, frame)
    assert calls == []
    canceller.reference.write(speechlike(1.0, seed=4), RATE, 101.0)
    canceller.clean(frame, 101.5)
    assert len(calls) == 1 and calls[0] > 0


def test_speexdsps_far_end_stays_sample_exact_while_the_two_timelines_wander_apart():
    # both devices run on one clock, but their callback times jitter independently: the mic's and the
    # reference's timelines slew against each other by some ms; speexdsp must not see that as drift
    from Core.clock import SampleClock

    pairs = []

    class Pairing:
        def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
            pairs.append((near.copy(), far.copy()))
            return near

    canceller = EchoCanceller(linear=Pairing())  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    played = np.concatenate([np.zeros(RATE, np.float32), speechlike(6.0, seed=6)])
    delay = 800  # the echo reaches the mic 50 ms after the sample left the speaker
    mic = np.concatenate([np.zeros(delay, np.float32), played])[:len(played)]
    t0, block = 200.0, 480
    mic_clock = SampleClock(960, 8000)  # as Orchestrator.audio_io.Microphone places its blocks
    for i in range(0, len(played) - block + 1, block):
        # a speaker block is written ~latency ahead of the mic block captured at the same moment;
        # the reported times wander by +-8 ms, slowly and differently for the two devices
        ref_jitter = 0.008 * np.sin(i / RATE * 0.7) + rng.normal(0, 0.003)
        mic_jitter = 0.008 * np.sin(i / RATE * 1.3 + 2) + rng.normal(0, 0.003)
        canceller.reference.write(played[i:i + block], RATE, t0 + i / RATE + ref_jitter)
        at = mic_clock.place(round((t0 + i / RATE + mic_jitter) * RATE), block) / RATE
        canceller.clean(mic[i:i + block], at)
    assert len(pairs) > 180  # speexdsp ran through the 6 s reply
    # the echo lies at one lag behind its far end in every frame the filter saw: no drift at all
    lags = set()
    for near, far in pairs[5:]:
        if np.abs(near).max() > 0.05 and np.abs(far).max() > 0.05:
            c = np.correlate(np.concatenate([np.zeros(2000, np.float32), far]), near, mode="valid")
            lags.add(int(np.argmax(c)))
    assert len(lags) == 1, sorted(lags)


def test_speexdsps_pairing_is_taken_again_after_a_break():
    canceller = EchoCanceller(linear=LinearFilter())
    canceller.reference.write(speechlike(1.0), RATE, 300.0)
    canceller.clean(speechlike(0.03), 300.3)
    first = canceller._paired
    canceller.reference.write(speechlike(1.0, seed=1), RATE, 302.0)  # the stream restarted: a new anchor
    canceller.clean(speechlike(0.03), 302.3)
    assert canceller._paired is not None and first is not None
    assert canceller._paired - first > 0.9 * RATE  # paired where the new block lies, not 30 ms on
