"""Acoustic echo cancellation: WebRTC's AEC3 (pywebrtc-audio) on the microphone frames, with what
the speaker played as the reference, so the user can interrupt a reply at a normal voice.

Alignment: the speaker's callback writes every block it plays (silence included) into `Reference`
at the time it reaches the speaker (the callback's time plus the output latency PortAudio reports);
each mic frame is paired with the reference at the time it was captured. What remains (the
acoustic path, errors in the reported latencies) is a delay of some tens of ms that AEC3's own
delay estimator finds; the read is shifted by `LEAD_S` so that a latency reported too short still
leaves the reference ahead of its echo (AEC3 cannot cancel an echo that comes before its reference).

speexdsp's filter (the words said over a reply) has no delay estimator: it needs its far end to
stay put against the mic sample for sample. The two timelines each follow the callbacks' times
within a dead band of 5 ms, slewing one sample a block, so against each other they wander by up to
10 ms at 1-2 ms/s; offline, a drift of 0.4 ms/s held speexdsp at 1-5 dB of 17-24 dB. So its far
end is read by sample count instead: `Reference` also keeps what played end to end, and the
canceller pairs the mic's samples with it at one offset, taken from the timelines while nothing
plays and kept through a reply; only a break (a re-anchored timeline, a gap in the mic's frames)
or the timelines parting by RESYNC_S (devices on different clocks) takes it again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, NamedTuple

import numpy as np

from Core.audio import STT_RATE, dbfs, to_int16
from Core.clock import SampleClock
from Core.errors import LuxaError

log = logging.getLogger(__name__)
INSTALL_HINT = "install it with `pip install -e '.[echo]'` (pywebrtc-audio) or run scripts/setup.sh"
RING_S = 4.0  # reference kept: far more than output latency + acoustic delay
JUMP_S = 0.06  # blocks this far on average from where the timeline lays them: a break (an underrun), re-anchor
RESTART_S = 0.5  # one block this far: a new stream, re-anchor at once
# the reference is read this much before the frame's capture time (see above); AEC3 cancels an echo
# 0-500 ms after its reference (measured), nothing that comes before it
LEAD_S = 0.04
ECHO_TAIL_S = 0.3  # after the speaker's last sound: acoustic delay + most of the room's reverberation
# and before it: the reported output latency may be off by tens of ms; an echo that came before its
# reference would reach barge-in whole
ECHO_AHEAD_S = 0.2
SILENT_FAR = 1e-3  # a reference below this (-60 dBFS) everywhere: nothing played, no echo to cancel
FAR_ACTIVE_DBFS = -45.0  # reference frames louder than this count for the ERLE
SETTLE_S = 1.0  # far-end speech AEC3 needs before its ERLE means anything
DECIDE_S = 10.0  # far-end speech after which the measured ERLE decides whether aec keeps the mic
MIC_BREAK_S = 0.005  # a mic frame this far from where the last one ended: a break in its timeline
RESYNC_S = 0.03  # the timelines this far from speexdsp's pairing during a reply: pair again


class EchoUnavailable(LuxaError):
    pass


class Cleaned(NamedTuple):
    """One mic frame, cleaned two ways."""

    barge: np.ndarray  # AEC3's output: our own voice is gone, so barge-in listens to this
    # speexdsp's adaptive filter alone: 10-15 dB of our voice is left, but nothing suppresses the
    # user's words said over it, as AEC3's suppressor does; the words of an interruption come from this
    words: np.ndarray


class LinearFilter:
    """speexdsp's echo canceller (its adaptive filter, no suppressor) over 16 kHz float32 frames."""

    def __init__(self, tail_ms: int = 200) -> None:
        from speexdsp_aec import SpeexAec  # ctypes over libspeexdsp; raises if either is missing

        self._aec = SpeexAec(STT_RATE, 10, tail_ms)

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = np.frombuffer(self._aec.process(to_int16(near), to_int16(far)), np.int16).astype(np.float32) / 32767
        return out if len(out) == len(near) else near  # a frame not a multiple of 10 ms: as heard


def linear_filter() -> LinearFilter | None:
    """speexdsp's filter for the words said over a reply, or None (one log line): AEC3's output then."""
    try:
        return LinearFilter()
    except (ImportError, OSError, RuntimeError) as err:
        log.info("echo cancellation: the words said over a reply come from AEC3 (speexdsp unavailable: %s)", err)
        return None


class Reference:
    """What the speaker played, at 16 kHz on the monotonic clock. Written by the speaker's PortAudio
    thread, read by the loop: a lock, and nothing slow under it."""

    def __init__(self, seconds: float = RING_S) -> None:
        self._ring = np.zeros(int(seconds * STT_RATE), np.float32)
        self._end: int | None = None  # absolute index (monotonic s * 16000) after the last sample written
        self._lock = threading.Lock()
        self._resampler: Any = None
        self._rate = STT_RATE
        # callback times jitter by tens of ms; the device clock does not (Core.clock)
        self._clock = SampleClock(round(JUMP_S * STT_RATE), round(RESTART_S * STT_RATE))
        self._quiet = False  # the last block written was silence
        # the same samples end to end, as the device played them (no slews, no gaps): speexdsp's far end
        self._played = np.zeros(len(self._ring), np.float32)
        self._count = 0  # samples written to it so far
        self._last: tuple[int, int] | None = None  # (count, timeline position) of the last block's start

    @property
    def anchors(self) -> int:
        """How often the timeline started again (stream starts, underruns)."""
        return self._clock.anchors

    def write(self, samples: np.ndarray, rate: int, dac_time: float) -> None:
        """`samples` (device rate) start reaching the speaker at `dac_time` (time.monotonic())."""
        if rate != STT_RATE:
            if self._resampler is None or rate != self._rate:
                import soxr  # a stream resampler: block by block without clicks at the seams

                self._resampler, self._rate = soxr.ResampleStream(rate, STT_RATE, 1, dtype="float32"), rate
            samples = self._resampler.resample_chunk(np.asarray(samples, np.float32))
        n = len(samples)
        size = len(self._ring)
        if n == 0:
            return
        quiet = float(np.abs(samples).max()) < SILENT_FAR
        with self._lock:
            start = self._clock.place(round(dac_time * STT_RATE), n, quiet and self._quiet)
            self._quiet = quiet
            if self._end is not None and 0 < start - self._end < size:  # a gap: it played nothing then
                self._put(self._ring, self._end, np.zeros(start - self._end, np.float32))
            kept = samples[-size:] if n > size else samples
            self._put(self._ring, start, kept)
            self._end = start + len(kept)
            self._put(self._played, self._count, kept)
            self._last = (self._count, start)
            self._count += len(kept)

    @staticmethod
    def _put(ring: np.ndarray, start: int, samples: np.ndarray) -> None:
        size = len(ring)
        i = start % size
        head = min(len(samples), size - i)
        ring[i:i + head] = samples[:head]
        ring[:len(samples) - head] = samples[head:]

    def cut(self, at: float) -> None:
        """Nothing plays from `at` on: barge-in flushed what the device still held, which the
        callbacks had already written here as played."""
        start = round(at * STT_RATE)
        with self._lock:
            if self._end is not None and start < self._end:
                self._clear(self._ring, start, self._end)
                self._clear(self._played, self._count_at(start), self._count)

    def count_at(self, t: float) -> int | None:
        """The sample count (in the end-to-end ring) of the sample that reached the speaker at `t`."""
        with self._lock:
            return None if self._last is None else self._count_at(round(t * STT_RATE))

    def _count_at(self, position: int) -> int:
        assert self._last is not None
        count, start = self._last
        return count + position - start

    def read_count(self, count: int, n: int) -> np.ndarray:
        """`n` samples of the end-to-end ring from `count` on; zeros where nothing is known."""
        with self._lock:
            return self._window(self._played, self._count, count, n)

    def read(self, t0: float, n: int) -> np.ndarray:
        """The `n` samples that reached the speaker from `t0` on; zeros where nothing is known."""
        with self._lock:
            if self._end is None:
                return np.zeros(n, np.float32)
            return self._window(self._ring, self._end, round(t0 * STT_RATE), n)

    @staticmethod
    def _window(ring: np.ndarray, end: int, start: int, n: int) -> np.ndarray:
        """`n` samples of `ring` (written up to absolute index `end`) from `start` on; zeros where
        nothing is kept."""
        out = np.zeros(n, np.float32)
        lo, hi = max(start, end - len(ring)), min(start + n, end)
        if hi > lo:
            out[lo - start:hi - start] = ring[np.arange(lo, hi) % len(ring)]
        return out

    @staticmethod
    def _clear(ring: np.ndarray, start: int, end: int) -> None:
        """Silence `ring` (written up to absolute index `end`) from `start` on."""
        lo = max(start, end - len(ring))
        ring[np.arange(lo, end) % len(ring)] = 0.0


class ErleMeter:
    """Echo return loss enhancement while the speaker plays: raw mic energy over cleaned energy.

    Per 30 ms frame with the far end active, after AEC3 has settled; the median over frames, so
    that a few frames of the user talking over the reply (double talk) do not drag it down.
    """

    def __init__(self) -> None:
        self.far_s = 0.0
        self._frames: list[float] = []

    def add(self, raw: np.ndarray, clean: np.ndarray, far: np.ndarray) -> None:
        if dbfs(far) < FAR_ACTIVE_DBFS:
            return
        self.far_s += len(far) / STT_RATE
        if self.far_s < SETTLE_S:
            return
        if len(self._frames) >= 10_000:  # a daemon answers for days: the last ~5 minutes of our voice
            del self._frames[:1000]
        raw_e, clean_e = float(np.mean(raw.astype(np.float64) ** 2)), float(np.mean(clean.astype(np.float64) ** 2))
        if raw_e > 1e-9:  # echo at all: a mic that does not hear the speaker (a headset) has nothing to cancel
            self._frames.append(10.0 * np.log10(raw_e / max(clean_e, 1e-12)))

    @property
    def erle_db(self) -> float | None:
        return float(np.median(self._frames)) if self._frames else None

    def recent_db(self, seconds: float) -> float | None:
        """The median over the last `seconds` of far-end frames (None before there are that many)."""
        n = int(seconds * STT_RATE / 480)
        return float(np.median(self._frames[-n:])) if len(self._frames) >= n else None

    @property
    def echo_heard(self) -> bool:
        return bool(self._frames)


class EchoCanceller:
    """WebRTC's AEC3 (pywebrtc-audio) over 16 kHz float32 mic frames; optionally WebRTC's noise
    suppression after it. Chosen over speexdsp on measurements (docs/BENCHMARKS.md): 25-35 dB of
    echo removed against 8-12 dB, converged within the first reply, and its own delay estimator
    follows the drift between what the device clocks say and what they do; speexdsp's filter did
    not (in the daemon it removed nothing once the reference drifted by a few ms).

    AEC3's suppressor also takes the user's words said over a reply (at -6 dB most of them come out
    at -60 dBFS), so those come from speexdsp's filter alone (`linear`), on the timeline that
    Core.clock now holds still: 9-14 dB of echo removed and the words left whole. Barge-in still
    listens to AEC3: Silero hears our own voice in what speexdsp leaves (11 of 12 replies, offline)."""

    def __init__(self, noise_suppression: bool = False, min_erle_db: float = 10.0,
                 linear: LinearFilter | None = None) -> None:
        try:
            from pywebrtc_audio import AudioProcessor
        except ImportError:
            raise EchoUnavailable(f"echo cancellation needs pywebrtc-audio: {INSTALL_HINT}") from None
        self._processor = AudioProcessor(STT_RATE, echo_cancellation=True, noise_suppression=noise_suppression)
        self.noise_suppression = noise_suppression
        self.linear = linear
        self.min_erle_db = min_erle_db
        self.decided: bool | None = None  # the verdict on this device, once DECIDE_S of our voice was heard
        self.decided_erle_db: float | None = None
        self._converged = False
        self.reference = Reference()
        self.meter = ErleMeter()
        self.words_meter = ErleMeter()  # speexdsp's filter: what it removes of our voice from the words
        self._paired: int | None = None  # the reference count that speexdsp pairs with the next mic sample
        self._paired_anchors = 0  # the reference's re-anchors when it was taken
        self._frame_end: float | None = None  # where the last mic frame ended on its timeline
        self.cpu_s = 0.0  # CPU in the canceller, for the cost per 10 ms frame
        self.blocks = 0

    def clean(self, frame: np.ndarray, captured_at: float | None) -> Cleaned:
        """`frame` without the speaker's echo; `captured_at`: monotonic time of its first sample.
        Cleaned by AEC3 for barge-in, and by the linear filter (if any) for the words.

        Once nothing has played for ECHO_TAIL_S the frame goes on as heard: AEC3 still hears it (its
        state follows the room), but its suppressor, trained on the double talk of an interruption,
        went on muffling the user's words after the reply had stopped. Offline, the corpus
        interruptions at 0 / -6 dB (reply stopped 0.6 s into the words): WER 0.53 / 0.57 from its
        output; with the frames as heard from 0.15, 0.3 or 0.45 s after the echo's end 0.22 / 0.21,
        0.21 / 0.24, 0.29 / 0.29; with no echo at all 0.19 / 0.13."""
        tail, ahead = round(ECHO_TAIL_S * STT_RATE), round(ECHO_AHEAD_S * STT_RATE)
        if captured_at is None:  # a source with no clock (a file): nothing played can be in it
            around = np.zeros(tail + len(frame) + ahead, np.float32)
        else:
            around = self.reference.read(captured_at - LEAD_S - ECHO_TAIL_S, tail + len(frame) + ahead)
        far = around[tail:tail + len(frame)]
        quiet = np.abs(around).max(initial=0.0) < SILENT_FAR
        words_far = far
        if captured_at is not None and self.linear is not None:
            paired = self._pair(captured_at, len(frame), quiet)
            if paired is not None and not quiet:  # a quiet frame goes on as heard: no far end needed
                words_far = self.reference.read_count(paired, len(frame))
        started = time.thread_time()  # CPU of this thread (both filters run on it): other threads' load does not count
        out = self._processor.process(np.ascontiguousarray(frame, np.float32), far)
        # speexdsp only while something plays (a quiet frame goes on as heard); the ECHO_AHEAD_S of
        # silence it hears before the next reply, as long as its 200 ms tail, clears its far-end history
        words = frame if quiet else out if self.linear is None else self.linear.process(frame, words_far)
        self.cpu_s += time.thread_time() - started
        self.blocks += len(frame) // (STT_RATE // 100)
        self.meter.add(frame, out, far)
        if self.linear is not None and not quiet:
            self.words_meter.add(frame, words, words_far)
        return Cleaned(frame if quiet else out, words)

    def _pair(self, captured_at: float, n: int, quiet: bool) -> int | None:
        """The reference count paired with this frame's first sample (speexdsp's far end): the played
        samples end to end, at one offset from the mic's (module docstring). Paired again from the
        timelines while nothing plays, and on a break. None: nothing has played yet."""
        wanted = self.reference.count_at(captured_at - LEAD_S)
        if wanted is None:
            return None
        broke = (self._paired is None or self.reference.anchors != self._paired_anchors
                 or self._frame_end is None or abs(captured_at - self._frame_end) > MIC_BREAK_S
                 or abs(wanted - self._paired) > RESYNC_S * STT_RATE)
        if quiet or broke:
            self._paired, self._paired_anchors = wanted, self.reference.anchors
        assert self._paired is not None
        paired, self._paired = self._paired, self._paired + n
        self._frame_end = captured_at + n / STT_RATE
        return paired

    @property
    def converged(self) -> bool:
        """The echo is measured to be cancelled: ERLE at least min_erle_db over a second of our voice
        (until then barge-in is half_duplex's); or the mic does not hear our voice at all (a headset:
        nothing to cancel). Once true it stays so (the verdict after DECIDE_S may still give up on
        aec): the user talking over the reply lowers the measured ERLE too (the mic hears more than
        the echo), and at the echo's level it fell under 10 dB within half a second of their words,
        which closed the gate on the very interruption it was to let through."""
        if self._converged:
            return True
        recent = self.meter.recent_db(SETTLE_S)
        if recent is None:
            self._converged = self.meter.far_s >= DECIDE_S and not self.meter.echo_heard
        else:
            self._converged = recent >= self.min_erle_db
        return self._converged

    @property
    def cpu_us_per_10ms(self) -> float:
        return 1e6 * self.cpu_s / max(self.blocks, 1)

    def verdict(self, min_erle_db: float) -> bool | None:
        """None until DECIDE_S of far-end speech; then whether the canceller does its job here."""
        if self.decided is not None:  # once: later windows hold double talk (the user interrupting)
            return self.decided
        if self.meter.far_s < DECIDE_S:
            return None
        erle = self.meter.recent_db(DECIDE_S / 2)  # the second half: AEC3 converges in the first
        self.decided_erle_db = erle
        self.decided = erle is None or erle >= min_erle_db  # no echo heard at all: nothing to fail at
        return self.decided


def self_test(seconds: float = 2.0) -> float:
    """ERLE (dB) of the canceller on a synthetic echo (speech-like noise, 60 ms late, reverberant,
    -6 dB): proves that the library loads and cancels, before it is trusted with the microphone."""
    rng = np.random.default_rng(7)
    n = int(seconds * STT_RATE)
    far = np.convolve(rng.normal(0, 0.1, n), np.ones(8) / 8, mode="same").astype(np.float32)
    far *= (0.6 + 0.4 * np.sin(2 * np.pi * 3 * np.arange(n) / STT_RATE)).astype(np.float32)  # a syllable rhythm
    rir = np.zeros(int(0.06 * STT_RATE) + 1600, np.float32)
    rir[int(0.06 * STT_RATE)] = 0.5
    rir[-1600:] += rng.normal(0, 0.02, 1600).astype(np.float32) * np.exp(-np.arange(1600) / 400).astype(np.float32)
    echo = np.convolve(far, rir)[:n].astype(np.float32)
    from pywebrtc_audio import EchoCanceller as Aec3

    out = Aec3(STT_RATE).process(echo, far)
    tail = slice(n // 2, n)  # after convergence
    return float(10 * np.log10(np.sum(echo[tail] ** 2) / max(float(np.sum(out[tail] ** 2)), 1e-12)))


def make_canceller(mode: str, noise_suppression: bool, min_erle_db: float) -> EchoCanceller | None:
    """The canceller for barge-in mode `auto` or `aec`, or None (one log line says why) for
    half_duplex instead. Other modes need none."""
    if mode not in ("auto", "aec"):
        return None
    try:
        canceller = EchoCanceller(noise_suppression, min_erle_db, linear_filter())
        erle = self_test()
    except EchoUnavailable as err:
        log.warning("barge-in: half_duplex instead of aec: %s", err)
        return None
    if erle < min_erle_db:
        log.warning("barge-in: half_duplex instead of aec: the echo canceller's self-test reached %.1f dB "
                    "(needs %.0f dB)", erle, min_erle_db)
        return None
    log.info("barge-in: aec (echo cancellation self-test %.1f dB)", erle)
    return canceller



class EchoPathReport(NamedTuple):
    delay_ms: float | None  # speaker -> microphone, as recorded; None: the mic did not hear the speaker
    echo_dbfs: float  # how loud the speaker came back into the mic
    erle_db: float | None  # what the canceller removed of it (the second half, after convergence)


def measure_echo_path(input_device: int | None, output_device: int | None, seconds: float = 0.5,
                      repeats: int = 8) -> EchoPathReport:
    """Play a sweep (100 Hz - 7 kHz, `repeats` times: AEC3 adapts each band only while it is
    excited) on the speaker while recording the microphone (one duplex stream: the two buffers
    share a clock), then find the delay by cross-correlation and run the canceller over the
    recording; its ERLE is measured over the second half. Blocking, about 5 s."""
    import sounddevice as sd

    t = np.arange(int(seconds * STT_RATE)) / STT_RATE
    k = 7000 / 100  # logarithmic: equal time per octave
    sweep = (0.3 * np.sin(2 * np.pi * 100 * seconds / np.log(k) * (k ** (t / seconds) - 1))).astype(np.float32)
    played = np.concatenate([np.zeros(STT_RATE // 4, np.float32), *[sweep] * repeats,
                             np.zeros(STT_RATE // 2, np.float32)])
    recorded = sd.playrec(played, samplerate=STT_RATE, channels=1, dtype="float32", latency=0.2,
                          device=(input_device, output_device), blocking=True)[:, 0]
    echo = dbfs(recorded)
    size = 1 << (len(recorded) + len(played)).bit_length()
    c = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(played, size)), size)  # [lag] for lag >= 0
    lag = int(np.argmax(np.abs(c[:STT_RATE])))  # up to 1 s: device buffers + the room
    strength = float(np.abs(c[lag]) / np.sqrt(np.sum(played ** 2) * np.sum(recorded ** 2) + 1e-12))
    if strength < 0.1:  # the mic does not hear the speaker (a headset, a muted speaker): no echo path
        return EchoPathReport(None, echo, None)
    from pywebrtc_audio import EchoCanceller as Aec3

    n = len(played) // 160 * 160
    cleaned = Aec3(STT_RATE).process(recorded[:n], played[:n])
    half = slice(STT_RATE // 4 + len(sweep) * repeats // 2, STT_RATE // 4 + len(sweep) * repeats)
    erle = 10 * np.log10(np.sum(recorded[half] ** 2) / max(float(np.sum(cleaned[half] ** 2)), 1e-12))
    return EchoPathReport(lag * 1000 / STT_RATE, echo, float(erle))
